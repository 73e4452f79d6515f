//! The audit log of what merchant-center admins did.

use crate::Result;
use async_trait::async_trait;
use ottgate_core::{MerchantId, Timestamp};

/// One admin action, as the settings page's audit log shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub merchant_id: MerchantId,
    /// The user's email.
    pub actor: String,
    /// What was done: `refund`, `resend`, `rotate_sign_key`, …
    pub action: String,
    /// What it was done to (a payment id, a delivery id, a method).
    pub subject: String,
    /// Anything else worth keeping (an amount), never a secret.
    pub detail: String,
    pub at: Timestamp,
}

#[async_trait]
pub trait Audit: Send + Sync {
    /// Appends to the audit log.
    async fn record_audit(&self, entry: AuditEntry) -> Result<()>;

    /// A merchant's latest `limit` audit entries, newest first.
    async fn audit_log(&self, merchant: &MerchantId, limit: u32) -> Result<Vec<AuditEntry>>;
}

/// This table's SQL where both backends agree, written once (`sql!`: `?N` for SQLite,
/// `$N` for PostgreSQL).
pub(crate) mod q {
    use crate::sql::Sql;

    pub(crate) const INSERT: Sql = sql!(
        "INSERT INTO audit_log (merchant_id, actor, action, subject, detail, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
    );
    pub(crate) const OF_MERCHANT: Sql = sql!(
        "SELECT merchant_id, actor, action, subject, detail, at FROM audit_log
         WHERE merchant_id = ?1 ORDER BY id DESC LIMIT ?2"
    );
}
