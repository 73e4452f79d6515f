//! The calls merchants' shops make to a sandbox gateway — their queries and refunds — kept
//! in memory for `ottgate check` (docs/checker.md), which asks whether a shop asked the
//! gateway before it believed a callback.

use ottgate_core::{MerchantId, Timestamp};
use std::collections::VecDeque;
use std::sync::Mutex;

/// How many calls the log keeps (all merchants together).
const KEPT: usize = 10_000;

/// One call a merchant's shop made to the gateway.
#[derive(Debug, Clone)]
pub struct Call {
    pub at: Timestamp,
    pub merchant: MerchantId,
    /// `STATUS_QUERY`, `PREPAY_QUERY`, `REFUND`, `REST status-query`, …
    pub call: String,
    /// The id it asked about (an order id, a reference, a payment id), when it named one.
    pub about: Option<String>,
}

/// The calls shops made, newest last (sandbox mode; kept in memory only).
#[derive(Debug, Default)]
pub struct CallLog(Mutex<VecDeque<Call>>);

impl CallLog {
    pub fn record(&self, call: Call) {
        let mut calls = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if calls.len() >= KEPT {
            calls.pop_front();
        }
        calls.push_back(call);
    }

    pub fn of(&self, merchant: &MerchantId, since: Timestamp) -> Vec<Call> {
        let calls = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        calls
            .iter()
            .filter(|c| &c.merchant == merchant && c.at.epoch_millis() >= since.epoch_millis())
            .cloned()
            .collect()
    }
}
