//! Idempotency keys: a request that creates or moves money runs once per key; the same request again gets the first answer.

use crate::Result;
use async_trait::async_trait;
use ottgate_core::{MerchantId, Timestamp};
use std::time::Duration;

/// A request asking to run once per key.
#[derive(Debug, Clone)]
pub struct IdempotencyClaim {
    pub merchant_id: MerchantId,
    /// What the key is for (a route, an envelope action): keys of different scopes never
    /// meet.
    pub scope: String,
    pub key: String,
    /// What makes two requests "the same" (a hash of the body).
    pub request_hash: String,
    pub now: Timestamp,
    /// How long the claim holds while its request runs.
    pub lease: Duration,
    /// How long a finished answer is replayed.
    pub retention: Duration,
}

/// A claimed key: whose, for what, which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub merchant_id: MerchantId,
    pub scope: String,
    pub key: String,
}

/// The answer a claimed key replays from now on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyAnswer {
    pub key: IdempotencyKey,
    pub status: u16,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Idempotency {
    /// The key is ours: run the request, then finish (or release) it.
    Fresh,
    /// The same request was answered before: answer this.
    Replay { status: u16, body: String },
    /// The same request is running right now.
    InProgress,
    /// The key was used for another request.
    Mismatch,
}

#[async_trait]
pub trait IdempotencyKeys: Send + Sync {
    /// Claims an idempotency key (atomically: of two concurrent claims one is `Fresh`).
    async fn claim_idempotency(&self, claim: IdempotencyClaim) -> Result<Idempotency>;

    /// Records the answer to replay for a claimed key.
    async fn finish_idempotency(&self, answer: IdempotencyAnswer) -> Result<()>;

    /// Gives a claimed key up unanswered (the request failed inside; it may be retried).
    async fn release_idempotency(&self, key: IdempotencyKey) -> Result<()>;

    /// Forgets keys created before `before` (at most `limit`); returns how many.
    async fn prune_idempotency(&self, before: Timestamp, limit: u32) -> Result<u64>;
}

/// This table's SQL where both backends agree, written once (`sql!`: `?N` for SQLite,
/// `$N` for PostgreSQL).
pub(crate) mod q {
    use crate::sql::Sql;

    /// A key's row — locked on PostgreSQL until the claim decides.
    pub(crate) const KEY: Sql = sql!(
        "SELECT request_hash, state, response_status, response_body, created_at, locked_until
         FROM idempotency_keys WHERE merchant_id = ?1 AND scope = ?2 AND key = ?3",
        pg_suffix = " FOR UPDATE"
    );

    pub(crate) const FINISH: Sql = sql!(
        "UPDATE idempotency_keys SET state = 'done', response_status = ?1, response_body = ?2
         WHERE merchant_id = ?3 AND scope = ?4 AND key = ?5"
    );
    pub(crate) const RELEASE: Sql = sql!(
        "DELETE FROM idempotency_keys WHERE merchant_id = ?1 AND scope = ?2 AND key = ?3 AND state = 'started'"
    );
}
