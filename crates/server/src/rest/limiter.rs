//! Counting failed token requests, per appId and per client address, in a sliding window.

use ottgate_core::Timestamp;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

/// In memory, per process: a limit for one process's share of the traffic. Enough to stop
/// guessing app keys; a deployment with many processes multiplies it by their number.
#[derive(Debug)]
pub struct FailureLimiter {
    limit: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Timestamp>>>,
}

/// Beyond this many tracked keys, the oldest-looking are dropped (a flood of distinct
/// keys must not grow memory without bound).
const MAX_KEYS: usize = 100_000;

impl FailureLimiter {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn prune(&self, entries: &mut VecDeque<Timestamp>, now: Timestamp) {
        while entries.front().is_some_and(|t| t.plus(self.window) <= now) {
            entries.pop_front();
        }
    }

    /// Whether `key` has used up its failures in the current window.
    pub fn is_blocked(&self, key: &str, now: Timestamp) -> bool {
        let mut map = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match map.get_mut(key) {
            Some(entries) => {
                self.prune(entries, now);
                entries.len() >= self.limit
            }
            None => false,
        }
    }

    pub fn record_failure(&self, key: &str, now: Timestamp) {
        let mut map = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MAX_KEYS && !map.contains_key(key) {
            map.retain(|_, entries| entries.back().is_some_and(|t| t.plus(self.window) > now));
            if map.len() >= MAX_KEYS {
                map.clear();
            }
        }
        let entries = map.entry(key.to_owned()).or_default();
        self.prune(entries, now);
        entries.push_back(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_block_until_they_leave_the_window() {
        let limiter = FailureLimiter::new(3, Duration::from_secs(60));
        let t0 = Timestamp::from_epoch_millis(0);
        for i in 0..3 {
            assert!(!limiter.is_blocked("app:ON1", t0));
            limiter.record_failure("app:ON1", t0.plus(Duration::from_secs(i)));
        }
        assert!(limiter.is_blocked("app:ON1", t0.plus(Duration::from_secs(10))));
        assert!(!limiter.is_blocked("app:ON2", t0), "keys are independent");
        assert!(
            !limiter.is_blocked("app:ON1", t0.plus(Duration::from_secs(61))),
            "the oldest failure left the window"
        );
    }
}
