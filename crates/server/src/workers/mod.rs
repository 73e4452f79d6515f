//! Background work: delivering callbacks and closing expired orders. Each loop is built
//! around a single-step function that tests call directly.

use ottgate_store::StoreError;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

pub mod delivery;

/// One sweeper step: closes every order past its expiry (returning how many), and forgets
/// idempotency keys past their retention.
pub async fn sweep_expired(state: &AppState) -> Result<usize, StoreError> {
    // Card authorisations due for capture first: a capture due before its hold ends is
    // never lost to the hold's end.
    match state.service.capture_due().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(captured = n, "card authorisations captured"),
        Err(e) => tracing::warn!(error = %e, "capturing card authorisations failed"),
    }
    let mut total = 0;
    loop {
        let closed = state
            .service
            .store
            .expire_due(state.service.clock.now(), 500)
            .await?;
        for id in &closed {
            tracing::info!(order_id = %id, "order expired");
        }
        total += closed.len();
        if closed.len() < 500 {
            break;
        }
    }
    // Idempotency keys past their retention, and finished callbacks past the event log's,
    // are only dead weight (one batch of each a sweep).
    let settings = &state.service.settings;
    let now = state.service.clock.now();
    let ago = |d: std::time::Duration| {
        ottgate_core::Timestamp::from_epoch_millis(
            now.epoch_millis() - i64::try_from(d.as_millis()).unwrap_or(0),
        )
    };
    let store = &state.service.store;
    store
        .prune_idempotency(ago(settings.idempotency_retention), 1_000)
        .await?;
    store
        .prune_events(ago(settings.event_retention), 1_000)
        .await?;
    store.prune_sessions(now, 1_000).await?;
    Ok(total)
}

/// Asks the wallets about payments, and refunds, pending longer than `reconcile_after`
/// (and not asked within it): one reconciliation step. Returns how many were settled by
/// the answers.
pub async fn reconcile_due(state: &AppState) -> Result<usize, StoreError> {
    let now = state.service.clock.now();
    let age = state.service.settings.reconcile_after;
    let earlier = ottgate_core::Timestamp::from_epoch_millis(
        now.epoch_millis() - i64::try_from(age.as_millis()).unwrap_or(i64::MAX),
    );
    let due = ottgate_store::Due {
        created_before: earlier,
        checked_before: earlier,
        now,
        limit: 50,
    };
    let attempts = state.service.store.attempts_to_reconcile(due).await?;
    let mut settled = 0;
    for attempt in attempts {
        match state.service.reconcile(&attempt).await {
            Ok(true) => settled += 1,
            Ok(false) => {}
            Err(e) => tracing::warn!(attempt_id = %attempt.id, error = %e, "reconciliation failed"),
        }
    }
    let refunds = state.service.store.refunds_to_reconcile(due).await?;
    for refund in refunds {
        match state.service.reconcile_refund(&refund).await {
            Ok(true) => settled += 1,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(refund_id = %refund.id, error = %e, "refund reconciliation failed");
            }
        }
    }
    Ok(settled)
}

/// Spawns the delivery worker and the expiry sweeper (which also reconciles). They stop taking new work when
/// `shutdown` is cancelled and finish what they started (an in-flight callback attempt is
/// completed and recorded), so awaiting the handles drains them.
pub fn spawn(state: &AppState, shutdown: &CancellationToken) -> Vec<JoinHandle<()>> {
    vec![
        tokio::spawn(delivery::run(state.clone(), shutdown.clone())),
        tokio::spawn(sweep_loop(state.clone(), shutdown.clone())),
        tokio::spawn(barcode_loop(state.clone(), shutdown.clone())),
        tokio::spawn(statements_loop(state.clone(), shutdown.clone())),
    ]
}

/// The daily reconciliation of the wallets' statements (`statements_ready_at`): every
/// `statements_check_interval`, the days due (`Service::reconcile_due_statements`).
async fn statements_loop(state: AppState, shutdown: CancellationToken) {
    if state.service.settings.statements_ready_at.is_empty() {
        return;
    }
    loop {
        for (wallet, day, result) in state
            .service
            .reconcile_due_statements(&state.worker_id)
            .await
        {
            match result {
                Ok(crate::service::statements::DayRun::NotReady) => {
                    tracing::info!(wallet, day = %day, "statement not published yet");
                }
                Ok(crate::service::statements::DayRun::Done { .. }) => {}
                Err(e) => {
                    tracing::warn!(wallet, day = %day, error = %e, "statement reconciliation failed")
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(state.service.settings.statements_check_interval) => {}
        }
    }
    tracing::info!("statement schedule stopped");
}

/// Follows undecided in-store barcode payments on their wallets' schedules
/// (`Service::barcode_due`): twice a second, the jobs that are due.
async fn barcode_loop(state: AppState, shutdown: CancellationToken) {
    loop {
        if let Err(e) = state.service.barcode_due().await {
            tracing::error!(error = %e, "barcode pass failed");
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
        }
    }
    tracing::info!("barcode follow-up stopped");
}

async fn sweep_loop(state: AppState, shutdown: CancellationToken) {
    loop {
        if let Err(e) = sweep_expired(&state).await {
            tracing::error!(error = %e, "expiry sweep failed");
        }
        if let Err(e) = reconcile_due(&state).await {
            tracing::error!(error = %e, "reconciliation pass failed");
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(state.service.settings.expiry_sweep_interval) => {}
        }
    }
    tracing::info!("expiry sweeper stopped");
}
