//! Merchant-center sessions. The cookie carries a random token; the store keeps only its
//! SHA-256, so a copy of the database signs nobody in.

use crate::{Result, UserRecord};
use async_trait::async_trait;
use ottgate_core::Timestamp;

/// A signed-in merchant-center session. The cookie carries a random token; the store
/// keeps only its SHA-256, so a copy of the database signs nobody in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub id_hash: String,
    pub user_id: i64,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

#[async_trait]
pub trait Sessions: Send + Sync {
    /// Records a merchant-center sign-in.
    async fn insert_session(&self, session: NewSession) -> Result<()>;

    /// The user of the session whose token hashes to `id_hash`, if it has not expired.
    async fn session_user(&self, id_hash: &str, now: Timestamp) -> Result<Option<UserRecord>>;

    /// Signs a session out (nothing happens if there is none).
    async fn end_session(&self, id_hash: &str) -> Result<()>;

    /// Forgets up to `limit` sessions expired by `now`; how many.
    async fn prune_sessions(&self, now: Timestamp, limit: u32) -> Result<u64>;
}

/// This table's SQL where both backends agree, written once (`sql!`: `?N` for SQLite,
/// `$N` for PostgreSQL).
pub(crate) mod q {
    use crate::sql::Sql;

    pub(crate) const END: Sql = sql!("DELETE FROM sessions WHERE id_hash = ?1");
    pub(crate) const END_OF_USER_BY_EMAIL: Sql =
        sql!("DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE email = ?1)");
    pub(crate) const INSERT: Sql = sql!(
        "INSERT INTO sessions (id_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)"
    );
    pub(crate) const USER_OF: Sql = sql!(
        "SELECT u.* FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.id_hash = ?1 AND s.expires_at > ?2"
    );
}
