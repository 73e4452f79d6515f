//! Counting failed sign-ins — REST token requests, merchant-center passwords — in a
//! sliding window, so that guessing keys and passwords is slow and a stranger cannot lock a
//! merchant out. [`guarded`] runs one check under these limits.
//!
//! Three counters per request: the client address, the (appId, address) pair — both at
//! `limit` — and the appId alone at a much higher `app_limit`, which does not apply from an
//! address that signed in to that appId successfully within the last day. So a flood of
//! wrong keys from anywhere stops at `limit` per address, a distributed guess at an appId
//! stops at `app_limit`, and the merchant's own address keeps working through both.
//!
//! A request *reserves* its failure before the key is hashed (atomically, under one lock),
//! and gives it back on success: concurrent wrong guesses cannot overtake the count.

use ottgate_core::Timestamp;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

mod queue;

pub use queue::{Asker, HashQueue};

/// In memory, per process: it turns a flood away without touching the database. Gateways
/// sharing a PostgreSQL database also count in it ([`FailureLimiter::shared_attempt`]), so
/// the limits hold across all of them.
#[derive(Debug)]
pub struct FailureLimiter {
    /// Prefixes every counter's key, so limiters for different doors (REST tokens, the
    /// merchant center) never share a count, in memory or in the database.
    scope: &'static str,
    limit: usize,
    app_limit: usize,
    window: Duration,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    failures: HashMap<String, VecDeque<Timestamp>>,
    /// `(appId, address)` pairs that signed in, and when.
    trusted: HashMap<String, Timestamp>,
}

/// Beyond this many tracked keys, stale ones are dropped (a flood of distinct keys must
/// not grow memory without bound).
const MAX_KEYS: usize = 100_000;

/// How long a successful sign-in exempts its address from the appId's ceiling.
const TRUST: Duration = Duration::from_secs(24 * 3600);

/// A failure counted in advance for one token request; [`FailureLimiter::succeeded`] gives
/// it back.
#[derive(Debug)]
#[must_use]
pub struct Reservation {
    keys: Vec<String>,
    at: Timestamp,
    pair: String,
}

fn pair_key(scope: &str, app_id: &str, addr: Option<IpAddr>) -> String {
    match addr {
        Some(addr) => format!("{scope}pair:{app_id}|{addr}"),
        None => format!("{scope}pair:{app_id}|-"),
    }
}

impl FailureLimiter {
    pub fn new(limit: u32, app_limit: u32, window: Duration) -> Self {
        Self {
            scope: "",
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            app_limit: usize::try_from(app_limit).unwrap_or(usize::MAX),
            window,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The same limiter counting under its own keys (`scope` ends with `:`).
    pub fn scoped(self, scope: &'static str) -> Self {
        Self { scope, ..self }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts one failure for this request now, unless a counter it touches is used up
    /// (`None`: refuse with 429, without hashing anything).
    pub fn reserve(
        &self,
        app_id: &str,
        addr: Option<IpAddr>,
        now: Timestamp,
    ) -> Option<Reservation> {
        let pair = pair_key(self.scope, app_id, addr);
        let mut inner = self.lock();
        let trusted = inner
            .trusted
            .get(&pair)
            .is_some_and(|since| since.plus(TRUST) > now);
        let scope = self.scope;
        let mut keys = vec![(pair.clone(), self.limit)];
        if let Some(addr) = addr {
            keys.push((format!("{scope}ip:{addr}"), self.limit));
        }
        if !trusted {
            keys.push((format!("{scope}app:{app_id}"), self.app_limit));
        }
        if inner.failures.len() + keys.len() > MAX_KEYS {
            self.forget_stale(&mut inner, now);
        }
        let window = self.window;
        let blocked = keys.iter().any(|(key, limit)| {
            inner.failures.get_mut(key).is_some_and(|entries| {
                prune(entries, window, now);
                entries.len() >= *limit
            })
        });
        if blocked {
            return None;
        }
        for (key, _) in &keys {
            inner
                .failures
                .entry(key.clone())
                .or_default()
                .push_back(now);
        }
        Some(Reservation {
            keys: keys.into_iter().map(|(k, _)| k).collect(),
            at: now,
            pair,
        })
    }

    /// Whether `account` signed in from `addr` within the trust period: such a request is
    /// served first by the hash queue.
    pub fn is_trusted(&self, account: &str, addr: Option<IpAddr>, now: Timestamp) -> bool {
        let pair = pair_key(self.scope, account, addr);
        self.lock()
            .trusted
            .get(&pair)
            .is_some_and(|since| since.plus(TRUST) > now)
    }

    /// The same request, for the count every gateway on a shared database keeps.
    pub fn shared_attempt(
        &self,
        app_id: &str,
        addr: Option<IpAddr>,
        now: Timestamp,
    ) -> ottgate_store::SignInAttempt {
        let scope = self.scope;
        let pair = pair_key(scope, app_id, addr);
        let limit = u32::try_from(self.limit).unwrap_or(u32::MAX);
        let mut counters = vec![(pair.clone(), limit)];
        if let Some(addr) = addr {
            counters.push((format!("{scope}ip:{addr}"), limit));
        }
        ottgate_store::SignInAttempt {
            counters,
            app_counter: (
                format!("{scope}app:{app_id}"),
                u32::try_from(self.app_limit).unwrap_or(u32::MAX),
            ),
            pair,
            trust: TRUST,
            now,
            window: self.window,
        }
    }

    /// The key was right: the reserved failure is given back, and the address is trusted
    /// for this appId.
    pub fn succeeded(&self, reservation: Reservation) {
        let pair = reservation.pair.clone();
        let at = reservation.at;
        self.release(reservation);
        self.lock().trusted.insert(pair, at);
    }

    /// The key was never checked (the request was turned away for another reason): the
    /// reserved failure is given back, and nothing is trusted.
    pub fn release(&self, reservation: Reservation) {
        let mut inner = self.lock();
        for key in &reservation.keys {
            if let Some(entries) = inner.failures.get_mut(key)
                && let Some(i) = entries.iter().rposition(|t| *t == reservation.at)
            {
                entries.remove(i);
            }
        }
    }

    fn forget_stale(&self, inner: &mut Inner, now: Timestamp) {
        let window = self.window;
        inner
            .failures
            .retain(|_, entries| entries.back().is_some_and(|t| t.plus(window) > now));
        inner.trusted.retain(|_, since| since.plus(TRUST) > now);
        if inner.failures.len() >= MAX_KEYS {
            inner.failures.clear();
        }
        if inner.trusted.len() >= MAX_KEYS {
            inner.trusted.clear();
        }
    }
}

/// How a sign-in checked under the limits went.
#[derive(Debug)]
pub enum Gate<T> {
    /// Right: what the check found.
    Passed(T),
    /// Wrong; the failure stays counted.
    Wrong,
    /// Refused unchecked: too many failures (429).
    TooMany,
    /// Refused unchecked: too many hashes already running (503).
    Busy,
}

/// The most a sign-in waits for its turn to hash before it is turned away (503).
const HASH_QUEUE_WAIT: Duration = Duration::from_secs(10);

/// Runs `check` (a key or password against its argon2id hash: `Some` when right) under
/// `limiter`: the failure is counted before the hash is computed — in this process, and in
/// the database when gateways share it — so concurrent guesses cannot overtake the limit;
/// hashes take turns in `hashing` (trusted pairs first, then address by address, no address
/// or account beyond its share); a right answer gives the failure back and trusts the
/// (account, address) pair.
pub async fn guarded<T, E, Fut>(
    service: &crate::service::Service,
    limiter: &FailureLimiter,
    hashing: &HashQueue,
    account: &str,
    addr: Option<IpAddr>,
    now: Timestamp,
    check: impl FnOnce() -> Fut,
) -> Result<Gate<T>, E>
where
    Fut: Future<Output = Result<Option<T>, E>>,
    E: From<crate::service::ServiceError>,
{
    let store = &*service.store;
    let Some(reservation) = limiter.reserve(account, addr, now) else {
        return Ok(Gate::TooMany);
    };
    let shared = if store.is_shared() {
        match store
            .reserve_sign_in(limiter.shared_attempt(account, addr, now))
            .await
        {
            Ok(Some(reserved)) => Some(reserved),
            Ok(None) => {
                limiter.release(reservation);
                return Ok(Gate::TooMany);
            }
            Err(e) => {
                limiter.release(reservation);
                return Err(crate::service::ServiceError::from(e).into());
            }
        }
    } else {
        None
    };
    // Each hash takes ~19 MiB: only a few at once, the rest wait their turn (briefly).
    let asker = Asker {
        account,
        address: addr,
        trusted: limiter.is_trusted(account, addr, now),
    };
    let Ok(_permit) = hashing.acquire(&asker, HASH_QUEUE_WAIT).await else {
        limiter.release(reservation);
        if let Some(reserved) = shared {
            store
                .release_sign_in(reserved, None)
                .await
                .map_err(crate::service::ServiceError::from)?;
        }
        return Ok(Gate::Busy);
    };
    let Some(found) = check().await? else {
        return Ok(Gate::Wrong);
    };
    if let Some(reserved) = shared {
        let pair = limiter.shared_attempt(account, addr, now).pair;
        store
            .release_sign_in(reserved, Some((pair, now)))
            .await
            .map_err(crate::service::ServiceError::from)?;
    }
    limiter.succeeded(reservation);
    Ok(Gate::Passed(found))
}

fn prune(entries: &mut VecDeque<Timestamp>, window: Duration, now: Timestamp) {
    while entries.front().is_some_and(|t| t.plus(window) <= now) {
        entries.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_epoch_millis(0).plus(Duration::from_secs(secs))
    }

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([203, 0, 113, last]))
    }

    #[test]
    fn failures_block_an_address_until_they_leave_the_window() {
        let limiter = FailureLimiter::new(3, 100, Duration::from_secs(60));
        for i in 0..3 {
            assert!(limiter.reserve("ON1", ip(1), at(i)).is_some());
        }
        assert!(limiter.reserve("ON1", ip(1), at(10)).is_none());
        assert!(
            limiter.reserve("ON2", ip(1), at(10)).is_none(),
            "the address is out of tries, whatever appId it names"
        );
        assert!(
            limiter.reserve("ON1", ip(2), at(10)).is_some(),
            "others are not"
        );
        assert!(
            limiter.reserve("ON1", ip(1), at(61)).is_some(),
            "the oldest failure left the window"
        );
    }

    #[test]
    fn a_request_turned_away_unchecked_gives_back_its_failure_but_earns_no_trust() {
        let limiter = FailureLimiter::new(10, 2, Duration::from_secs(60));
        for i in 0..5 {
            let r = limiter.reserve("ON1", ip(1), at(i)).unwrap();
            limiter.release(r);
        }
        for i in 0..2 {
            assert!(limiter.reserve("ON1", ip(i), at(10)).is_some());
        }
        assert!(
            limiter.reserve("ON1", ip(1), at(11)).is_none(),
            "the appId's ceiling applies: the address never signed in"
        );
    }

    #[test]
    fn a_success_gives_its_reservation_back() {
        let limiter = FailureLimiter::new(2, 100, Duration::from_secs(60));
        for i in 0..10 {
            let r = limiter.reserve("ON1", ip(1), at(i)).unwrap();
            limiter.succeeded(r);
        }
        assert!(limiter.reserve("ON1", ip(1), at(11)).is_some());
    }

    #[test]
    fn strangers_cannot_lock_out_a_merchants_own_address() {
        let limiter = FailureLimiter::new(10, 20, Duration::from_secs(300));
        let own = limiter.reserve("ON1", ip(1), at(0)).unwrap();
        limiter.succeeded(own);
        // Ten wrong keys from each of ten addresses: a hundred failures for ON1.
        let mut refused = 0;
        for stranger in 10..20 {
            for i in 0..10 {
                if limiter.reserve("ON1", ip(stranger), at(1 + i)).is_none() {
                    refused += 1;
                }
            }
        }
        assert_eq!(refused, 80, "the appId's ceiling stops the guessing at 20");
        assert!(
            limiter.reserve("ON1", ip(1), at(20)).is_some(),
            "the merchant's own address still signs in"
        );
        assert!(
            limiter.reserve("ON1", ip(99), at(20)).is_none(),
            "a new address waits for the window"
        );
    }
}
