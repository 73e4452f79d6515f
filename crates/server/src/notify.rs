//! What wallets tell us, server to server: notifications (read and verified by the
//! wallet's connector, checked here against the payment or refund they name — owner,
//! merchant account, money — then applied through [`Service::apply_result`](crate::service::Service::apply_result)).
//! When a notification is late or lost, `service::reconcile` asks instead. No wallet is
//! named here: `/notify/{wallet}` finds its connector by name (docs/wallets.md).

use crate::service::SettleOutcome;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use ottgate_channels::{
    Channel, NotificationError, Outcome, PaymentRef, Stated, Subject, VerifiedResult,
};
use ottgate_core::{
    Attempt, AttemptId, AttemptOutcome, AttemptStatus, Money, Refund, RefundId, RefundStatus,
};
use std::sync::Arc;

use crate::service::ServiceError;
use crate::state::AppState;

/// Why a notification was not applied. Each is logged as rejected and answered so that the
/// wallet tries again (a forged or broken one will simply never succeed).
#[derive(Debug, thiserror::Error)]
pub enum Rejected {
    #[error("no connector for this channel")]
    NoConnector,
    #[error(transparent)]
    Unreadable(#[from] NotificationError),
    #[error("unknown out_trade_no")]
    UnknownTrade,
    #[error("the trade is not a payment through this channel")]
    WrongChannel,
    #[error("addressed to another merchant account")]
    WrongMerchant,
    #[error("amount or currency does not match the payment")]
    AmountMismatch,
    #[error("unknown refund")]
    UnknownRefund,
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// `POST /notify/{wallet}`: the wallet's own acknowledgement once the notification is
/// applied (or was already); its refusal otherwise, so that it sends it again.
pub async fn endpoint(
    State(state): State<AppState>,
    Path(wallet): Path<String>,
    body: Bytes,
) -> Response {
    let Some(channel) = state.service.channels.by_name(&wallet) else {
        return (StatusCode::NOT_FOUND, "no such wallet").into_response();
    };
    let refusal = match receive_with(&state, &channel, &body).await {
        Ok(()) => None,
        Err(e) => {
            state
                .service
                .metrics
                .outcome(&state.service.metrics.notifications, "rejected");
            tracing::warn!(channel = channel.name(), reason = ?e.to_string(), "notification rejected");
            Some(e.to_string())
        }
    };
    tracing::info!(
        path = %format_args!("/notify/{}", channel.name()),
        accepted = refusal.is_none(),
        "wallet notification"
    );
    let ack = channel.acknowledge(refusal.as_deref());
    (
        StatusCode::from_u16(ack.status).unwrap_or(StatusCode::OK),
        [(header::CONTENT_TYPE, ack.content_type)],
        ack.body,
    )
        .into_response()
}

/// Verifies, checks and applies a notification `wallet` sent (the endpoint's work; also
/// used in-process by the sandbox helper, so that its payments take exactly this path).
pub async fn receive(state: &AppState, wallet: &str, body: &[u8]) -> Result<(), Rejected> {
    let channel = state
        .service
        .channels
        .by_name(wallet)
        .ok_or(Rejected::NoConnector)?;
    receive_with(state, &channel, body).await
}

async fn receive_with(
    state: &AppState,
    channel: &Arc<dyn Channel>,
    body: &[u8],
) -> Result<(), Rejected> {
    let notification = channel.read_notification(body)?;
    match &notification.subject {
        Subject::Payment { attempt_id } => {
            let attempt = attempt_of(state, attempt_id, channel.name()).await?;
            if let Some(sub_merchant) = &notification.sub_merchant
                && !channel
                    .addressed_to(sub_merchant, &state.service.channel_ids_of(&attempt).await?)
            {
                return Err(Rejected::WrongMerchant);
            }
            check_money(notification.money, attempt.money)?;
            let outcome = match &notification.outcome {
                Outcome::Succeeded { wallet_ref } => {
                    Some((AttemptOutcome::Paid, wallet_ref.clone()))
                }
                Outcome::Failed => Some((AttemptOutcome::Failed, None)),
                // Not final: the query (reconciliation) will tell.
                Outcome::Undecided => None,
            };
            // Only a notification that would change something needs confirming (a
            // duplicate or a stale one is acknowledged as is).
            if outcome.is_some() && attempt.status == AttemptStatus::Pending {
                channel.confirm_notification(&notification).await?;
            }
            state
                .service
                .metrics
                .outcome(&state.service.metrics.notifications, "accepted");
            match outcome {
                Some((outcome, wallet_ref)) => {
                    let result = VerifiedResult {
                        attempt_id: attempt.id.clone(),
                        outcome,
                        bizpay_order_id: wallet_ref,
                        buyer_paid: notification.buyer_paid.clone(),
                    };
                    apply(state, result).await
                }
                None => Ok(()),
            }
        }
        Subject::Refund { refund_id, payment } => {
            let (refund, attempt) = refund_of(state, refund_id, channel.name()).await?;
            // The refund must be of the payment the wallet names.
            let same_payment = match payment {
                PaymentRef::Ours(id) => attempt.id.as_str() == id,
                PaymentRef::Wallets(id) => attempt.bizpay_order_id.as_deref() == Some(id),
            };
            if !same_payment {
                return Err(Rejected::UnknownRefund);
            }
            check_money(notification.money, refund.money)?;
            let (status, wallet_ref) = match &notification.outcome {
                Outcome::Succeeded { wallet_ref } => (RefundStatus::Success, wallet_ref.clone()),
                Outcome::Failed => (RefundStatus::Failed, None),
                Outcome::Undecided => {
                    state
                        .service
                        .metrics
                        .outcome(&state.service.metrics.notifications, "accepted");
                    return Ok(());
                }
            };
            if refund.status == RefundStatus::Pending {
                channel.confirm_notification(&notification).await?;
            }
            state
                .service
                .metrics
                .outcome(&state.service.metrics.notifications, "accepted");
            let refund = state
                .service
                .finish_refund(&refund.id, status, wallet_ref)
                .await?;
            tracing::info!(refund_id = %refund.id, status = refund.status.code(), channel = channel.name(), "refund result from the wallet");
            Ok(())
        }
    }
}

/// The money a notification states must be exactly ours (when it states any).
fn check_money(stated: Stated, ours: Money) -> Result<(), Rejected> {
    match stated {
        Stated::Money(money) if money == ours => Ok(()),
        Stated::Unstated => Ok(()),
        Stated::Money(_) | Stated::Unreadable => Err(Rejected::AmountMismatch),
    }
}

/// The refund a wallet names, and the payment it refunds (which must have gone through
/// that wallet).
async fn refund_of(
    state: &AppState,
    refund_id: &str,
    wallet: &str,
) -> Result<(Refund, Attempt), Rejected> {
    let id = RefundId::parse(refund_id).map_err(|_| Rejected::UnknownRefund)?;
    let refund = state
        .service
        .refund_by_id(&id)
        .await?
        .ok_or(Rejected::UnknownRefund)?;
    let attempt = attempt_of(state, refund.payment_id.as_str(), wallet).await?;
    Ok((refund, attempt))
}

/// The attempt a wallet names, which must be paid through that wallet.
async fn attempt_of(
    state: &AppState,
    out_trade_no: &str,
    wallet: &str,
) -> Result<Attempt, Rejected> {
    let id = AttemptId::parse(out_trade_no).map_err(|_| Rejected::UnknownTrade)?;
    let attempt = state
        .service
        .attempt(&id)
        .await?
        .ok_or(Rejected::UnknownTrade)?;
    if state
        .service
        .channels
        .for_method(attempt.method)
        .map(|c| c.name())
        != Some(wallet)
    {
        return Err(Rejected::WrongChannel);
    }
    Ok(attempt)
}

async fn apply(state: &AppState, result: VerifiedResult) -> Result<(), Rejected> {
    match state.service.apply_result(result).await? {
        SettleOutcome::Applied { .. } | SettleOutcome::AlreadyApplied { .. } => Ok(()),
        // A contradiction (e.g. "closed" after "paid") is logged by apply_result; the wallet
        // has told us, and re-sending will not change it: acknowledge.
        SettleOutcome::Rejected { .. } => Ok(()),
    }
}
