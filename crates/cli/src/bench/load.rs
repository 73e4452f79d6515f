//! Driving a phase: a fixed number of clients each waiting for its answer before the next
//! request (closed loop), or requests started on a fixed schedule whatever the answers
//! (open loop: latency is measured from the scheduled start, so a gateway that falls behind
//! shows its queueing instead of hiding it — no coordinated omission).

use futures::future::BoxFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::target::Usage;

/// How a phase loads the gateway.
#[derive(Debug, Clone, Copy)]
pub enum Load {
    /// This many clients, each one request at a time.
    Closed(usize),
    /// This many requests started per second.
    Open(u64),
}

/// What one request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Failed,
    /// Nothing left to send (the pre-sealed requests ran out).
    Exhausted,
}

/// One request of a phase: `op(i)` for the i-th.
pub type Op = Arc<dyn Fn(u64) -> BoxFuture<'static, Outcome> + Send + Sync>;

/// Requests in flight at most in open loop; beyond, a request is counted failed unsent.
const MAX_IN_FLIGHT: u64 = 20_000;

/// What a phase measured.
#[derive(Debug, Default)]
pub struct Measured {
    pub requests: usize,
    pub errors: u64,
    pub elapsed: Duration,
    pub latencies_us: Vec<u64>,
    pub exhausted: bool,
    /// The spawned server's use before and after.
    pub server: Option<(Usage, Usage)>,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Runs `op` under `load` for `seconds`.
pub async fn run(load: Load, seconds: u64, op: Op) -> Measured {
    let errors = Arc::new(AtomicU64::new(0));
    let exhausted = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let latencies_us = match load {
        Load::Closed(clients) => {
            let next = Arc::new(AtomicU64::new(0));
            let workers: Vec<_> = (0..clients.max(1))
                .map(|_| {
                    let (op, next, errors, exhausted) =
                        (op.clone(), next.clone(), errors.clone(), exhausted.clone());
                    tokio::spawn(async move {
                        let mut latencies = Vec::new();
                        while Instant::now() < deadline {
                            let t0 = Instant::now();
                            match op(next.fetch_add(1, Ordering::Relaxed)).await {
                                Outcome::Ok => {}
                                Outcome::Failed => {
                                    errors.fetch_add(1, Ordering::Relaxed);
                                }
                                Outcome::Exhausted => {
                                    exhausted.fetch_add(1, Ordering::Relaxed);
                                    break;
                                }
                            }
                            latencies.push(micros(t0.elapsed()));
                        }
                        latencies
                    })
                })
                .collect();
            let mut all = Vec::new();
            for worker in workers {
                all.extend(worker.await.unwrap_or_default());
            }
            all
        }
        Load::Open(per_second) => {
            let per_second = per_second.max(1);
            let in_flight = Arc::new(AtomicU64::new(0));
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
            let mut i = 0u64;
            'schedule: loop {
                let now = Instant::now();
                // Start every request due by now.
                loop {
                    let due = started + Duration::from_nanos(i * 1_000_000_000 / per_second);
                    if due >= deadline {
                        break 'schedule;
                    }
                    if due > now {
                        tokio::time::sleep_until(due.into()).await;
                        break;
                    }
                    if in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
                        errors.fetch_add(1, Ordering::Relaxed);
                    } else {
                        in_flight.fetch_add(1, Ordering::Relaxed);
                        let (op, tx, errors, exhausted, in_flight) = (
                            op.clone(),
                            tx.clone(),
                            errors.clone(),
                            exhausted.clone(),
                            in_flight.clone(),
                        );
                        tokio::spawn(async move {
                            let outcome = op(i).await;
                            in_flight.fetch_sub(1, Ordering::Relaxed);
                            match outcome {
                                Outcome::Ok => {}
                                Outcome::Failed => {
                                    errors.fetch_add(1, Ordering::Relaxed);
                                }
                                Outcome::Exhausted => {
                                    exhausted.fetch_add(1, Ordering::Relaxed);
                                    return;
                                }
                            }
                            // From when it was due, not when it was sent.
                            let _ = tx.send(micros(due.elapsed()));
                        });
                    }
                    i += 1;
                }
            }
            drop(tx);
            let mut all = Vec::new();
            while let Some(latency) = rx.recv().await {
                all.push(latency);
            }
            all
        }
    };
    Measured {
        requests: latencies_us.len(),
        errors: errors.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
        latencies_us,
        exhausted: exhausted.load(Ordering::Relaxed) > 0,
        server: None,
    }
}

/// The `p`-th percentile of sorted `values`, in milliseconds.
pub fn percentile_ms(sorted_us: &[u64], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let n = sorted_us.len();
    let rank = ((n as f64 * p).ceil() as usize).clamp(1, n) - 1;
    sorted_us[rank] as f64 / 1000.0
}
