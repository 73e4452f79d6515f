//! Merchant callbacks, delivered. A callback is an outbox row written in the same
//! transaction as the payment it announces. The worker leases due rows, POSTs each body
//! (through `outbound::CallbackSender`), records every attempt, and reschedules failures on
//! the retry schedule until one is acknowledged (any 2xx) or the schedule runs out.
//! [`deliver_due`] is one step of that loop, so tests can drain the queue deterministically
//! with an injected clock.

use futures::future::join_all;
use ottgate_store::{Delivery, DeliveryAttemptRecord, DeliveryClaim, NextStep, StoreError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::service::ServiceError;
use crate::state::AppState;

/// How long the worker waits, once woken by a payment, before claiming: at a few thousand
/// payments a second one claim (a write) then covers a dozen callbacks instead of one,
/// for a few milliseconds more before a callback leaves.
const CLAIM_GATHER: Duration = Duration::from_millis(5);

/// What one pass of the worker did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    pub attempted: usize,
    pub delivered: usize,
    pub retrying: usize,
    pub exhausted: usize,
}

/// Leases up to `limit` callbacks due now to this process.
async fn claim(state: &AppState, limit: u32) -> Result<Vec<Delivery>, StoreError> {
    let settings = &state.service.settings;
    state
        .service
        .store
        .claim_due_deliveries(DeliveryClaim {
            now: state.service.clock.now(),
            lease: settings.delivery_lease,
            owner: state.worker_id.clone(),
            limit,
        })
        .await
}

/// Delivers every callback due now (up to the concurrency limit) and waits for them: one
/// deterministic step, for tests and tools. The background worker ([`run`]) does not wait
/// for a batch: a slow merchant holds one slot, never the others' callbacks.
pub async fn deliver_due(state: &AppState) -> Result<DeliveryReport, ServiceError> {
    let due = claim(state, state.service.settings.callback_concurrency).await?;
    let outcomes = join_all(due.into_iter().map(|d| deliver_one(state, d))).await;
    let mut report = DeliveryReport::default();
    for outcome in outcomes {
        report.attempted += 1;
        match outcome? {
            NextStep::Delivered => report.delivered += 1,
            NextStep::RetryAt(_) => report.retrying += 1,
            NextStep::Exhausted => report.exhausted += 1,
        }
    }
    Ok(report)
}

/// The callback worker: keeps up to `callback_concurrency` callbacks in flight, claiming
/// more as each finishes, when woken (a payment was just settled) and every poll
/// interval. On shutdown it claims nothing more and finishes (and records) what it began.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let settings = &state.service.settings;
    let slots = Arc::new(Semaphore::new(
        usize::try_from(settings.callback_concurrency).unwrap_or(1),
    ));
    let mut in_flight = JoinSet::new();
    loop {
        let free = u32::try_from(slots.available_permits()).unwrap_or(0);
        let mut claimed = 0;
        if free > 0 {
            match claim(&state, free).await {
                Ok(due) => {
                    claimed = due.len();
                    for d in due {
                        let Ok(slot) = slots.clone().try_acquire_owned() else {
                            break; // cannot happen: `free` slots were free
                        };
                        let state = state.clone();
                        in_flight.spawn(async move {
                            let _slot = slot;
                            if let Err(e) = deliver_one(&state, d).await {
                                tracing::error!(error = %e, "recording a callback attempt failed");
                            }
                        });
                    }
                }
                Err(e) => tracing::error!(error = %e, "claiming due callbacks failed"),
            }
        }
        while in_flight.try_join_next().is_some() {}
        if shutdown.is_cancelled() {
            break;
        }
        // Every free slot filled: more may be due right away, once one frees.
        let wait = if free > 0 && claimed == usize::try_from(free).unwrap_or(0) {
            Duration::ZERO
        } else {
            settings.delivery_poll_interval
        };
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = state.service.delivery_wakeup.notified() => {
                // Woken by a payment: let the ones settling beside it join the same claim
                // (a write) instead of claiming one callback per write.
                tokio::time::sleep(CLAIM_GATHER).await;
            }
            () = tokio::time::sleep(wait), if slots.available_permits() > 0 => {}
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
        }
    }
    while in_flight.join_next().await.is_some() {}
    tracing::info!("callback worker stopped");
}

/// The secrets that sign `merchant`'s callbacks now: the current one, and the one before it
/// while its grace period lasts. The version comes with the merchant's signing material
/// (kept for a second, and dropped at once when this gateway rotates the secret).
pub(crate) async fn webhook_secrets(
    state: &AppState,
    merchant: &ottgate_core::MerchantId,
    now: ottgate_core::Timestamp,
) -> Result<Vec<ottgate_core::Secret>, ServiceError> {
    let webhook = state
        .service
        .signing(merchant)
        .await?
        .map(|s| s.webhook)
        .unwrap_or_default();
    let keyring = &state.service.keyring;
    let version = webhook.version;
    let mut secrets = vec![keyring.webhook_secret(merchant, version)];
    if version > 0 && webhook.previous_until.is_some_and(|until| until > now) {
        secrets.push(keyring.webhook_secret(merchant, version - 1));
    }
    Ok(secrets)
}

async fn deliver_one(state: &AppState, d: Delivery) -> Result<NextStep, ServiceError> {
    let started_at = state.service.clock.now();
    let secrets = webhook_secrets(state, &d.merchant_id, started_at).await?;
    let signature = crate::outbound::signature(
        &secrets
            .iter()
            .map(|s| s.expose_secret())
            .collect::<Vec<_>>(),
        started_at.epoch_millis().div_euclid(1000),
        &d.body,
    );
    let started = Instant::now();
    // `ottgate check` may hold an order's callbacks back, or drop the shop's answer to one
    // (sandbox mode only).
    let checked = state.service.settings.sandbox;
    let result = if checked && state.check_faults.holds(&d.order_id) {
        Err("held back by ottgate check".to_owned())
    } else {
        let answer = state.callbacks.post(&d.url, &d.body, &signature).await;
        match answer {
            Ok(a) if checked && state.check_faults.take_lost_answer(&d.order_id) => Err(format!(
                "the shop's answer (HTTP {}) was dropped by ottgate check",
                a.status
            )),
            other => other,
        }
    };
    let duration = started.elapsed();
    state
        .service
        .metrics
        .callback_latency
        .observe(duration.as_secs_f64());
    let attempt_no = d.attempts + 1;
    let (http_status, error, response_start) = match result {
        Ok(answer) if (200..300).contains(&answer.status) => {
            (Some(answer.status), None, Some(answer.body_start))
        }
        Ok(answer) => (
            Some(answer.status),
            Some(format!("HTTP {}", answer.status)),
            Some(answer.body_start),
        ),
        Err(e) => (None, Some(e), None),
    };
    let next = match (
        &error,
        state
            .service
            .settings
            .retry_schedule
            .delay_after(attempt_no),
    ) {
        (None, _) => NextStep::Delivered,
        (Some(_), Some(gap)) => NextStep::RetryAt(started_at.plus(gap)),
        (Some(_), None) => NextStep::Exhausted,
    };
    let record = DeliveryAttemptRecord {
        delivery_id: d.id,
        lease_owner: state.worker_id.clone(),
        started_at,
        duration,
        http_status,
        error: error.clone(),
        response_start,
        next,
    };
    if !state.service.store.record_delivery_attempt(record).await? {
        tracing::warn!(notify_id = %d.notify_id, "callback lease lost to another worker; attempt not recorded");
        return Ok(next);
    }
    let outcome = match next {
        NextStep::Delivered => "delivered",
        NextStep::RetryAt(_) => "retry",
        NextStep::Exhausted => "exhausted",
    };
    state
        .service
        .metrics
        .outcome(&state.service.metrics.callback_attempts, outcome);
    match (&error, next) {
        (None, _) => tracing::info!(
            notify_id = %d.notify_id, order_id = %d.order_id, attempt = attempt_no,
            status = http_status, "callback delivered"
        ),
        (Some(e), NextStep::RetryAt(at)) => tracing::warn!(
            notify_id = %d.notify_id, order_id = %d.order_id, attempt = attempt_no, error = %e,
            retry_at = %at.rfc3339(), "callback failed; will retry"
        ),
        (Some(e), _) => tracing::error!(
            notify_id = %d.notify_id, order_id = %d.order_id, attempt = attempt_no, error = %e,
            "callback failed; retry schedule exhausted"
        ),
    }
    Ok(next)
}
