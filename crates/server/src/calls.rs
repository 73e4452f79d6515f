//! The calls merchants' shops make to a sandbox gateway — their queries and refunds — kept
//! in memory for `ottgate check` (docs/checker.md), which asks whether a shop asked the
//! gateway before it believed a callback.

use ottgate_core::{MerchantId, OrderId, Timestamp};
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

/// What `ottgate check` asked the sandbox to do to one order, to see how the shop copes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// The order's callbacks are not sent: each attempt is recorded as held back and tried
    /// again on the retry schedule, until the checker releases them.
    pub hold_callbacks: bool,
    /// The shop's answers to this many callback attempts are dropped, as if they never
    /// reached the gateway (a 500 or a time-out after the shop did its work).
    pub lose_answers: u32,
    /// Until then, queries about the order answer as if it were still processing.
    pub queries_lag_until: Option<Timestamp>,
}

/// The faults set for orders by `ottgate check` (sandbox mode; in memory, on the gateway
/// that was asked).
#[derive(Debug, Default)]
pub struct CheckFaults(Mutex<HashMap<OrderId, Faults>>);

impl CheckFaults {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<OrderId, Faults>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets `order`'s faults, replacing any before; none clears them.
    pub fn set(&self, order: &OrderId, faults: Faults) {
        let mut all = self.lock();
        if faults == Faults::default() {
            all.remove(order);
        } else {
            all.insert(order.clone(), faults);
        }
    }

    /// Whether `order`'s callbacks are held back.
    pub fn holds(&self, order: &OrderId) -> bool {
        self.lock().get(order).is_some_and(|f| f.hold_callbacks)
    }

    /// Whether the shop's answer to this attempt of `order`'s callback is to be dropped
    /// (counting it).
    pub fn take_lost_answer(&self, order: &OrderId) -> bool {
        let mut all = self.lock();
        match all.get_mut(order) {
            Some(f) if f.lose_answers > 0 => {
                f.lose_answers -= 1;
                true
            }
            _ => false,
        }
    }

    /// Whether queries about `order` answer "still processing" at `now`.
    pub fn lags(&self, order: &OrderId, now: Timestamp) -> bool {
        self.lock()
            .get(order)
            .and_then(|f| f.queries_lag_until)
            .is_some_and(|until| now < until)
    }
}
