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
