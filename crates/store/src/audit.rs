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
