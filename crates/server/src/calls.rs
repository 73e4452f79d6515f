//! The calls merchants' shops make to a sandbox gateway — their queries and refunds — kept
//! in memory for `ottgate check` (docs/checker.md), which asks whether a shop asked the
//! gateway before it believed a callback.

use ottgate_core::{MerchantId, Timestamp};
use std::collections::{HashMap, VecDeque};
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

/// One case of an `ottgate check` run, as the checker reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedCase {
    pub case: String,
    pub verdict: String,
    pub why: String,
}

/// Each merchant's last `ottgate check` run, for its merchant center (sandbox mode; kept in
/// memory, so a restart forgets it).
#[derive(Debug, Default)]
pub struct CheckRuns(Mutex<HashMap<MerchantId, (Timestamp, Vec<CheckedCase>)>>);

impl CheckRuns {
    pub fn keep(&self, merchant: &MerchantId, at: Timestamp, cases: Vec<CheckedCase>) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(merchant.clone(), (at, cases));
    }

    pub fn last(&self, merchant: &MerchantId) -> Option<(Timestamp, Vec<CheckedCase>)> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(merchant)
            .cloned()
    }
}
