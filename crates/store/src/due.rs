//! Which pending rows reconciliation asks the wallets about: see
//! [`crate::Attempts::attempts_to_reconcile`] and [`crate::Refunds::refunds_to_reconcile`].

use ottgate_core::Timestamp;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Due {
    pub(crate) created_before: Timestamp,
    pub(crate) checked_before: Timestamp,
    pub(crate) now: Timestamp,
    pub(crate) limit: u32,
}
