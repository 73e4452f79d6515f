//! Which pending rows reconciliation asks the wallets about: see
//! [`crate::Attempts::attempts_to_reconcile`] and [`crate::Refunds::refunds_to_reconcile`].

use ottgate_core::Timestamp;

/// Rows still pending, created at or before `created_before` and not asked about since
/// `checked_before` (oldest first, at most `limit`), each marked checked at `now` in the
/// same step — so gateways reconciling at the same time never take the same row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub created_before: Timestamp,
    pub checked_before: Timestamp,
    pub now: Timestamp,
    pub limit: u32,
}
