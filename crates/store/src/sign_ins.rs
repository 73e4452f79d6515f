//! Failed sign-ins counted in the database, so the limits hold across every gateway sharing it.

use crate::Result;
use async_trait::async_trait;
use ottgate_core::Timestamp;
use std::time::Duration;

/// A failed REST sign-in, counted before the app key is checked (so concurrent guesses
/// cannot overtake the limit) against every counter it touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInAttempt {
    /// Counters that always apply, with their limits (the address; the appId from it).
    pub counters: Vec<(String, u32)>,
    /// The per-appId counter and its ceiling, which does not apply to a trusted pair.
    pub app_counter: (String, u32),
    /// The (appId, address) pair: trusted for `trust` after it signs in.
    pub pair: String,
    pub trust: Duration,
    pub now: Timestamp,
    /// Failures older than this no longer count.
    pub window: Duration,
}

#[async_trait]
pub trait SignIns: Send + Sync {
    /// Counts a failed sign-in in advance against each counter, atomically, unless one of
    /// them already holds its limit within the window (`None`: refuse). Returns what to give
    /// back if the key turns out right.
    async fn reserve_sign_in(&self, attempt: SignInAttempt) -> Result<Option<Vec<i64>>>;

    /// Gives reserved failures back; `trust` (the pair, and when) marks a sign-in that
    /// succeeded.
    async fn release_sign_in(
        &self,
        reserved: Vec<i64>,
        trust: Option<(String, Timestamp)>,
    ) -> Result<()>;
}

/// This table's SQL where both backends agree, written once (`sql!`: `?N` for SQLite,
/// `$N` for PostgreSQL).
pub(crate) mod q {
    use crate::sql::Sql;

    pub(crate) const FAILURES: Sql =
        sql!("SELECT COUNT(*) FROM sign_in_failures WHERE key = ?1 AND at > ?2");
    pub(crate) const FORGET_OLD: Sql = sql!(
        "DELETE FROM sign_in_failures WHERE id IN
         (SELECT id FROM sign_in_failures WHERE at <= ?1 LIMIT 100)"
    );
    pub(crate) const RESERVE: Sql =
        sql!("INSERT INTO sign_in_failures (key, at) VALUES (?1, ?2) RETURNING id");
    pub(crate) const TRUST: Sql = sql!(
        "INSERT INTO sign_in_trust (pair, since) VALUES (?1, ?2)
             ON CONFLICT (pair) DO UPDATE SET since = excluded.since"
    );
    pub(crate) const TRUSTED: Sql =
        sql!("SELECT 1 FROM sign_in_trust WHERE pair = ?1 AND since > ?2");
}
