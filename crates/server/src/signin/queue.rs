//! The password-hash queue, shared fairly. An argon2id check costs ~19 MiB and tens of
//! milliseconds, so only `permits` run at once and the rest wait their turn — but a
//! first-come queue lets a flood of wrong keys from thousands of addresses, each within its
//! failure limit, keep a merchant's own sign-in waiting until it gives up. So:
//!
//! - a request from an (account, address) pair that signed in before (trusted, see
//!   [`super::FailureLimiter`]) goes before every other;
//! - the others take turns address by address (round robin), not in arrival order;
//! - no address and no account holds more than `share` places, running or waiting: beyond
//!   that a request is turned away at once (503) instead of lengthening everyone's wait.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::oneshot;

/// The queue. Every [`HashPermit`] returns its place when dropped.
#[derive(Debug)]
pub struct HashQueue {
    permits: usize,
    share: usize,
    inner: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    running: usize,
    next_id: u64,
    /// Trusted requests, in arrival order.
    trusted: VecDeque<Waiter>,
    /// Everyone else's, per address, and the order addresses take their turns in.
    by_address: HashMap<String, VecDeque<Waiter>>,
    turns: VecDeque<String>,
    /// Places held (running or waiting) per address and per account.
    held: HashMap<String, usize>,
}

#[derive(Debug)]
struct Waiter {
    id: u64,
    wake: oneshot::Sender<()>,
}

/// Who is asking to hash.
#[derive(Debug, Clone)]
pub struct Asker<'a> {
    pub account: &'a str,
    pub address: Option<std::net::IpAddr>,
    /// The pair signed in successfully before: served first.
    pub trusted: bool,
}

/// Why no hash may run for this request now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its address or account already holds its share of places.
    OverShare,
    /// Its turn did not come within the wait.
    TimedOut,
}

/// A place among the running hashes; given back when dropped.
#[derive(Debug)]
#[must_use]
pub struct HashPermit<'a> {
    queue: &'a HashQueue,
    keys: [String; 2],
}

impl Drop for HashPermit<'_> {
    fn drop(&mut self) {
        self.queue.finished(&self.keys);
    }
}

/// A request waiting for its turn: dropped (its client left, its wait timed out) it leaves
/// the queue, or gives back the place it was handed in the meantime.
struct Waiting<'a> {
    queue: &'a HashQueue,
    id: u64,
    keys: [String; 2],
    done: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut state = self.queue.lock();
        let removed = state.remove_waiting(self.id);
        drop(state);
        if removed {
            self.queue.release_place(&self.keys);
        } else {
            // Handed a place just as it stopped waiting: give it to the next.
            self.queue.finished(&self.keys);
        }
    }
}

impl State {
    fn remove_waiting(&mut self, id: u64) -> bool {
        if let Some(i) = self.trusted.iter().position(|w| w.id == id) {
            self.trusted.remove(i);
            return true;
        }
        for waiters in self.by_address.values_mut() {
            if let Some(i) = waiters.iter().position(|w| w.id == id) {
                waiters.remove(i);
                return true;
            }
        }
        false
    }

    /// The next waiter whose turn it is: trusted first, then address by address.
    fn next(&mut self) -> Option<Waiter> {
        if let Some(w) = self.trusted.pop_front() {
            return Some(w);
        }
        while let Some(address) = self.turns.pop_front() {
            let Some(waiters) = self.by_address.get_mut(&address) else {
                continue;
            };
            let Some(w) = waiters.pop_front() else {
                self.by_address.remove(&address);
                continue;
            };
            if waiters.is_empty() {
                self.by_address.remove(&address);
            } else {
                self.turns.push_back(address);
            }
            return Some(w);
        }
        None
    }
}

impl HashQueue {
    /// `permits` hashes at once; `share` places at most per address and per account.
    pub fn new(permits: usize, share: usize) -> Self {
        Self {
            permits: permits.max(1),
            share: share.max(1),
            inner: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A place to hash in, within `wait`.
    pub async fn acquire(
        &self,
        asker: &Asker<'_>,
        wait: Duration,
    ) -> Result<HashPermit<'_>, Refusal> {
        let address = match asker.address {
            Some(a) => format!("ip:{a}"),
            None => "ip:-".to_owned(),
        };
        let keys = [address.clone(), format!("account:{}", asker.account)];
        let wake = {
            let mut state = self.lock();
            let over = keys
                .iter()
                .any(|k| state.held.get(k).copied().unwrap_or(0) >= self.share);
            if over && !asker.trusted {
                return Err(Refusal::OverShare);
            }
            for k in &keys {
                *state.held.entry(k.clone()).or_insert(0) += 1;
            }
            let nobody_waits = state.trusted.is_empty() && state.by_address.is_empty();
            if state.running < self.permits && nobody_waits {
                state.running += 1;
                return Ok(HashPermit { queue: self, keys });
            }
            let (tx, rx) = oneshot::channel();
            state.next_id += 1;
            let id = state.next_id;
            let waiter = Waiter { id, wake: tx };
            if asker.trusted {
                state.trusted.push_back(waiter);
            } else {
                let state = &mut *state;
                let waiters = state.by_address.entry(address.clone()).or_default();
                if waiters.is_empty() {
                    state.turns.push_back(address);
                }
                waiters.push_back(waiter);
            }
            (rx, id)
        };
        let (rx, id) = wake;
        let mut waiting = Waiting {
            queue: self,
            id,
            keys: keys.clone(),
            done: false,
        };
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(())) => {
                waiting.done = true;
                Ok(HashPermit { queue: self, keys })
            }
            // Timed out (or the queue went away): `waiting` leaves the queue as it drops.
            _ => Err(Refusal::TimedOut),
        }
    }

    /// A place given back without a hash having run in it.
    fn release_place(&self, keys: &[String; 2]) {
        let mut state = self.lock();
        for k in keys {
            if let Some(n) = state.held.get_mut(k) {
                *n -= 1;
                if *n == 0 {
                    state.held.remove(k);
                }
            }
        }
    }

    /// A hash finished: its place goes to the next waiter whose turn it is.
    fn finished(&self, keys: &[String; 2]) {
        self.release_place(keys);
        let mut state = self.lock();
        state.running -= 1;
        if let Some(next) = state.next() {
            // Its place passes to it. If its request is gone already (its `Waiting` dropped
            // between our lock and its own), that drop finds it no longer waiting and gives
            // the place back through `finished` — so it is counted as taken either way.
            let _ = next.wake.send(());
            state.running += 1;
        }
    }

    /// Hashes running now, and requests waiting (for metrics and tests).
    pub fn load(&self) -> (usize, usize) {
        let state = self.lock();
        let waiting =
            state.trusted.len() + state.by_address.values().map(VecDeque::len).sum::<usize>();
        (state.running, waiting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;
    use std::sync::Arc;

    fn ip(n: u32) -> Option<IpAddr> {
        Some(IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n)))
    }

    fn asker(account: &str, address: Option<IpAddr>, trusted: bool) -> Asker<'_> {
        Asker {
            account,
            address,
            trusted,
        }
    }

    const LONG: Duration = Duration::from_secs(30);

    /// Queues `n` waiters from distinct addresses and accounts behind a held permit; each
    /// records its turn in `order` and gives the place back at once.
    fn flood(
        queue: &Arc<HashQueue>,
        n: u32,
        order: &Arc<Mutex<Vec<String>>>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        (0..n)
            .map(|i| {
                let (queue, order) = (queue.clone(), order.clone());
                tokio::spawn(async move {
                    let account = format!("stranger-{i}");
                    let permit = queue
                        .acquire(&asker(&account, ip(1000 + i), false), LONG)
                        .await;
                    if permit.is_ok() {
                        order.lock().unwrap().push(account);
                    }
                })
            })
            .collect()
    }

    async fn settle() {
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_trusted_sign_in_goes_before_a_flood_of_strangers() {
        let queue = Arc::new(HashQueue::new(1, 8));
        let order = Arc::new(Mutex::new(Vec::new()));
        let busy = queue
            .acquire(&asker("x", ip(1), false), LONG)
            .await
            .unwrap();
        let strangers = flood(&queue, 200, &order);
        settle().await;
        assert_eq!(queue.load(), (1, 200));
        let merchant = {
            let (queue, order) = (queue.clone(), order.clone());
            tokio::spawn(async move {
                let _p = queue
                    .acquire(&asker("ON1", ip(7), true), LONG)
                    .await
                    .unwrap();
                order.lock().unwrap().push("merchant".into());
            })
        };
        settle().await;
        drop(busy);
        merchant.await.unwrap();
        for s in strangers {
            s.await.unwrap();
        }
        let order = order.lock().unwrap();
        assert_eq!(order.len(), 201);
        assert_eq!(order[0], "merchant", "served before 200 who came first");
        assert_eq!(queue.load(), (0, 0));
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn addresses_take_turns_and_none_holds_more_than_its_share() {
        let queue = Arc::new(HashQueue::new(1, 3));
        let busy = queue
            .acquire(&asker("x", ip(1), false), LONG)
            .await
            .unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        // One greedy address sends six at once (other accounts each): three get places,
        // three are turned away at once.
        let mut greedy = Vec::new();
        for i in 0..6 {
            let (queue, order) = (queue.clone(), order.clone());
            greedy.push(tokio::spawn(async move {
                let account = format!("greedy-{i}");
                match queue.acquire(&asker(&account, ip(2), false), LONG).await {
                    Ok(_p) => {
                        order.lock().unwrap().push("greedy".to_owned());
                        true
                    }
                    Err(refusal) => {
                        assert_eq!(refusal, Refusal::OverShare);
                        false
                    }
                }
            }));
            settle().await;
        }
        // Then one request from another address: its turn comes second, not fourth.
        let other = {
            let (queue, order) = (queue.clone(), order.clone());
            tokio::spawn(async move {
                let _p = queue
                    .acquire(&asker("ON2", ip(3), false), LONG)
                    .await
                    .unwrap();
                order.lock().unwrap().push("other".into());
            })
        };
        settle().await;
        drop(busy);
        other.await.unwrap();
        let mut admitted = 0;
        for g in greedy {
            admitted += usize::from(g.await.unwrap());
        }
        assert_eq!(admitted, 3, "the address's share");
        let order = order.lock().unwrap();
        assert_eq!(order.as_slice(), ["greedy", "other", "greedy", "greedy"]);
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn one_account_from_many_addresses_holds_no_more_than_its_share() {
        let queue = Arc::new(HashQueue::new(1, 2));
        let _busy = queue
            .acquire(&asker("x", ip(1), false), LONG)
            .await
            .unwrap();
        let mut tries = Vec::new();
        for i in 0..5 {
            let queue = queue.clone();
            tries.push(tokio::spawn(async move {
                queue
                    .acquire(&asker("ON9", ip(100 + i), false), Duration::from_secs(1))
                    .await
                    .map(|_| ())
            }));
            settle().await;
        }
        let mut refusals = Vec::new();
        for t in tries {
            if let Err(r) = t.await.unwrap() {
                refusals.push(r);
            }
        }
        // Two waited (and timed out behind the held permit), three were turned away.
        assert_eq!(
            refusals,
            [
                Refusal::TimedOut,
                Refusal::TimedOut,
                Refusal::OverShare,
                Refusal::OverShare,
                Refusal::OverShare
            ]
        );
        assert_eq!(queue.load(), (1, 0), "the timed-out left the queue");
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_waiter_that_goes_away_gives_its_place_to_the_next() {
        let queue = Arc::new(HashQueue::new(1, 8));
        let busy = queue
            .acquire(&asker("x", ip(1), false), LONG)
            .await
            .unwrap();
        let gone = {
            let queue = queue.clone();
            tokio::spawn(async move {
                let _ = queue.acquire(&asker("a", ip(2), false), LONG).await;
            })
        };
        settle().await;
        let next = {
            let queue = queue.clone();
            tokio::spawn(
                async move { queue.acquire(&asker("b", ip(3), false), LONG).await.is_ok() },
            )
        };
        settle().await;
        gone.abort();
        let _ = gone.await;
        drop(busy);
        assert!(next.await.unwrap());
        assert_eq!(queue.load(), (0, 0));
    }
}
