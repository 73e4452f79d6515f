//! What wallets tell us, server to server: notifications (verified, checked against the
//! attempt, then applied through [`AppState::apply_result`]) and, when a notification is
//! late or lost, the answer to our own query (reconciliation).

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use ottgate_channels::alipay::{self, Notice, TradeStatus, parse_form};
use ottgate_channels::unionpay::{self, Verdict};
use ottgate_channels::wechat::{self, WeChatConnector};
use ottgate_channels::{QueryPayment, QueryRefund, QueryResult, RefundQueryResult, VerifiedResult};
use ottgate_core::{
    Attempt, AttemptOutcome, AttemptStatus, OrderId, PaymentMethod, Refund, RefundId, RefundStatus,
};
use ottgate_store::SettleOutcome;

use crate::payments::ServiceError;
use crate::state::AppState;

/// Why a notification was not applied. Each is logged as rejected and answered so that the
/// wallet tries again (a forged or broken one will simply never succeed).
#[derive(Debug, thiserror::Error)]
pub enum Rejected {
    #[error("no connector for this channel")]
    NoConnector,
    #[error("signature does not verify")]
    BadSignature,
    #[error("malformed notification: {0}")]
    Malformed(String),
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
    #[error("Alipay does not confirm sending it (notify_verify)")]
    NotConfirmed,
    #[error("notify_verify could not be asked: {0}")]
    Unconfirmed(String),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<ottgate_store::StoreError> for Rejected {
    fn from(e: ottgate_store::StoreError) -> Self {
        Rejected::Service(e.into())
    }
}

/// `POST /notify/alipay`: answers `success` once the notification is applied (or was
/// already), anything else makes Alipay try again.
pub async fn alipay_endpoint(State(state): State<AppState>, body: Bytes) -> Response {
    match alipay_notification(&state, &body).await {
        Ok(()) => "success".into_response(),
        Err(e) => {
            rejected(&state, "alipay", &e);
            "fail".into_response()
        }
    }
}

/// `POST /notify/wechatpay`: answers WeChat's `SUCCESS` XML once the notification is
/// applied (or was already); a `FAIL` answer makes WeChat Pay try again.
pub async fn wechat_endpoint(State(state): State<AppState>, body: Bytes) -> Response {
    let answer = match wechat_notification(&state, &body).await {
        Ok(()) => wechat::ACK_SUCCESS.to_owned(),
        Err(e) => {
            rejected(&state, "wechatpay", &e);
            wechat::ack_fail(&e.to_string())
        }
    };
    (
        [(axum::http::header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        answer,
    )
        .into_response()
}

/// Verifies and applies a WeChat Pay payment notification (also used in-process by the
/// sandbox helper).
pub async fn wechat_notification(state: &AppState, body: &[u8]) -> Result<(), Rejected> {
    let connector = state.channels.wechat().ok_or(Rejected::NoConnector)?;
    let text = std::str::from_utf8(body).map_err(|_| Rejected::Malformed("not UTF-8".into()))?;
    let fields = wechat::parse_message(text).map_err(|e| Rejected::Malformed(e.to_string()))?;
    if !connector.verify(&fields) {
        return Err(Rejected::BadSignature);
    }
    let notice =
        WeChatConnector::read_notice(&fields).map_err(|e| Rejected::Malformed(e.to_string()))?;
    let attempt = attempt_of(state, &notice.out_trade_no, PaymentMethod::WeChatPay).await?;
    if !connector.addressed_to(&fields, &state.channel_ids_of(&attempt).await?) {
        return Err(Rejected::WrongMerchant);
    }
    if !wechat::amount_matches(&notice.total_fee, &notice.fee_type, attempt.money) {
        return Err(Rejected::AmountMismatch);
    }
    state
        .metrics
        .outcome(&state.metrics.notifications, "accepted");
    if notice.paid {
        if notice.transaction_id.is_empty() {
            return Err(Rejected::Malformed(
                "a payment without transaction_id".into(),
            ));
        }
        apply(
            state,
            &attempt,
            AttemptOutcome::Paid,
            Some(notice.transaction_id),
        )
        .await
    } else {
        apply(state, &attempt, AttemptOutcome::Failed, None).await
    }
}

/// `POST /notify/unionpay`: HTTP 200 once the notification is applied (or was already);
/// anything else (400 here) makes UnionPay send it again.
pub async fn unionpay_endpoint(State(state): State<AppState>, body: Bytes) -> Response {
    match unionpay_notification(&state, &body).await {
        Ok(()) => "ok".into_response(),
        Err(e) => {
            rejected(&state, "unionpay", &e);
            (axum::http::StatusCode::BAD_REQUEST, "rejected").into_response()
        }
    }
}

/// Verifies and applies a UnionPay payment or refund notification (also used in-process by
/// the sandbox helper).
pub async fn unionpay_notification(state: &AppState, body: &[u8]) -> Result<(), Rejected> {
    let connector = state.channels.unionpay().ok_or(Rejected::NoConnector)?;
    let fields = unionpay::parse_form(body);
    if !connector.verify(&fields) {
        return Err(Rejected::BadSignature);
    }
    if !connector.addressed_to_us(&fields) {
        return Err(Rejected::WrongMerchant);
    }
    match unionpay::Notice::read(&fields).map_err(|e| Rejected::Malformed(e.to_string()))? {
        unionpay::Notice::Payment {
            order_id,
            query_id,
            txn_amt,
            currency_code,
            resp_code,
        } => {
            let attempt = attempt_of(state, &order_id, PaymentMethod::UnionPay).await?;
            if !unionpay::amount_matches(&txn_amt, &currency_code, attempt.money) {
                return Err(Rejected::AmountMismatch);
            }
            state
                .metrics
                .outcome(&state.metrics.notifications, "accepted");
            match Verdict::of(&resp_code) {
                Verdict::Succeeded => {
                    apply(state, &attempt, AttemptOutcome::Paid, Some(query_id)).await
                }
                // Not final: the query (reconciliation) will tell.
                Verdict::Undecided => Ok(()),
                Verdict::Failed => apply(state, &attempt, AttemptOutcome::Failed, None).await,
            }
        }
        unionpay::Notice::Refund {
            order_id,
            orig_query_id,
            txn_amt,
            currency_code,
            resp_code,
        } => {
            let (refund, attempt) = refund_of(state, &order_id, PaymentMethod::UnionPay).await?;
            // The refund must be of the payment UnionPay names, for the amount we asked.
            if attempt.bizpay_order_id.as_deref() != Some(orig_query_id.as_str()) {
                return Err(Rejected::UnknownRefund);
            }
            if !unionpay::amount_matches(&txn_amt, &currency_code, refund.money) {
                return Err(Rejected::AmountMismatch);
            }
            state
                .metrics
                .outcome(&state.metrics.notifications, "accepted");
            let status = match Verdict::of(&resp_code) {
                Verdict::Succeeded => RefundStatus::Success,
                Verdict::Undecided => return Ok(()),
                Verdict::Failed => RefundStatus::Failed,
            };
            let channel_ref = fields.get("queryId").cloned();
            let refund = state
                .store
                .finish_refund(&refund.id, status, channel_ref, state.clock.now())
                .await?;
            tracing::info!(refund_id = %refund.id, status = refund.status.code(), resp_code, "refund result from UnionPay");
            Ok(())
        }
    }
}

/// Counts and logs a notification that was not applied.
fn rejected(state: &AppState, channel: &'static str, reason: &Rejected) {
    state
        .metrics
        .outcome(&state.metrics.notifications, "rejected");
    tracing::warn!(channel, reason = ?reason.to_string(), "notification rejected");
}

/// The refund a wallet names, and the payment it refunds (which must have gone through
/// that wallet).
async fn refund_of(
    state: &AppState,
    refund_id: &str,
    method: PaymentMethod,
) -> Result<(Refund, Attempt), Rejected> {
    let id = RefundId::parse(refund_id).map_err(|_| Rejected::UnknownRefund)?;
    let refund = state
        .store
        .refund(&id)
        .await?
        .ok_or(Rejected::UnknownRefund)?;
    let attempt = attempt_of(state, refund.payment_id.as_str(), method).await?;
    Ok((refund, attempt))
}

async fn attempt_of(
    state: &AppState,
    out_trade_no: &str,
    method: PaymentMethod,
) -> Result<Attempt, Rejected> {
    let id = OrderId::parse(out_trade_no).map_err(|_| Rejected::UnknownTrade)?;
    let attempt = state
        .store
        .attempt(&id)
        .await?
        .ok_or(Rejected::UnknownTrade)?;
    if attempt.method != method {
        return Err(Rejected::WrongChannel);
    }
    Ok(attempt)
}

/// Verifies and applies an Alipay notification (the endpoint's work; also used in-process
/// by the sandbox helper, so that its payments take exactly this path).
pub async fn alipay_notification(state: &AppState, body: &[u8]) -> Result<(), Rejected> {
    let connector = state.channels.alipay().ok_or(Rejected::NoConnector)?;
    let params = parse_form(body);
    if !connector.verify(&params) {
        return Err(Rejected::BadSignature);
    }
    match Notice::read(&params).map_err(|e| Rejected::Malformed(e.to_string()))? {
        Notice::Trade {
            out_trade_no,
            trade_no,
            total_fee,
            currency,
            status,
        } => {
            let attempt = attempt_of(state, &out_trade_no, PaymentMethod::Alipay).await?;
            if !alipay::amount_matches(&total_fee, &currency, attempt.money) {
                return Err(Rejected::AmountMismatch);
            }
            let outcome = match status {
                TradeStatus::Finished => Some(AttemptOutcome::Paid),
                TradeStatus::Closed => Some(AttemptOutcome::Failed),
                // Unknown or waiting statuses change nothing (never taken for paid).
                TradeStatus::Pending => None,
            };
            // Only a notification that would change something needs Alipay's word that it
            // sent it (a duplicate or a stale one is acknowledged as is).
            if outcome.is_some() && attempt.status == AttemptStatus::Pending {
                confirm_with_alipay(connector, &params).await?;
            }
            state
                .metrics
                .outcome(&state.metrics.notifications, "accepted");
            match outcome {
                Some(outcome) => apply(state, &attempt, outcome, Some(trade_no)).await,
                None => Ok(()),
            }
        }
        Notice::Refund {
            out_trade_no,
            out_return_no,
            succeeded,
            error_code,
        } => {
            let (refund, attempt) = refund_of(state, &out_return_no, PaymentMethod::Alipay).await?;
            // The refund must be of the payment Alipay names.
            if attempt.id.as_str() != out_trade_no {
                return Err(Rejected::UnknownRefund);
            }
            if refund.status == RefundStatus::Pending {
                confirm_with_alipay(connector, &params).await?;
            }
            state
                .metrics
                .outcome(&state.metrics.notifications, "accepted");
            let status = if succeeded {
                RefundStatus::Success
            } else {
                RefundStatus::Failed
            };
            let refund = state
                .store
                .finish_refund(&refund.id, status, None, state.clock.now())
                .await?;
            tracing::info!(refund_id = %refund.id, status = refund.status.code(), error = ?error_code, "refund result from Alipay");
            Ok(())
        }
    }
}

/// `notify_verify`, when configured: Alipay must confirm it sent this notification. If
/// Alipay cannot be asked, the notification is refused, so Alipay sends it again (and a
/// payment is also recovered by reconciliation).
async fn confirm_with_alipay(
    connector: &alipay::AlipayConnector,
    params: &alipay::sign::Params,
) -> Result<(), Rejected> {
    if !connector.config().notify_verify {
        return Ok(());
    }
    let notify_id = params
        .get("notify_id")
        .filter(|id| !id.is_empty())
        .ok_or_else(|| Rejected::Malformed("no notify_id".into()))?;
    match connector.confirm_notification(notify_id).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(Rejected::NotConfirmed),
        Err(e) => Err(Rejected::Unconfirmed(e.to_string())),
    }
}

async fn apply(
    state: &AppState,
    attempt: &Attempt,
    outcome: AttemptOutcome,
    bizpay: Option<String>,
) -> Result<(), Rejected> {
    let result = VerifiedResult {
        attempt_id: attempt.id.clone(),
        outcome,
        bizpay_order_id: bizpay,
    };
    match state.apply_result(result).await? {
        SettleOutcome::Applied { .. } | SettleOutcome::AlreadyApplied { .. } => Ok(()),
        // A contradiction (e.g. "closed" after "paid") is logged by apply_result; the wallet
        // has told us, and re-sending will not change it: acknowledge.
        SettleOutcome::Rejected { .. } => Ok(()),
    }
}

impl AppState {
    /// Asks the wallet about a refund it accepted but has not reported on, and records a
    /// definite answer. Returns whether anything changed.
    pub async fn reconcile_refund(&self, refund: &Refund) -> Result<bool, ServiceError> {
        if refund.status != RefundStatus::Pending {
            return Ok(false);
        }
        let attempt = self
            .store
            .attempt(&refund.payment_id)
            .await?
            .ok_or(ServiceError::NotFound("attempt"))?;
        let Some(channel) = self
            .channels
            .for_method(attempt.method)
            .filter(|c| c.can_query_refunds())
        else {
            self.store
                .mark_refund_checked(&refund.id, self.clock.now())
                .await?;
            return Ok(false);
        };
        let answer = channel
            .query_refund(&QueryRefund {
                refund_id: refund.id.clone(),
                requested_at: refund.created_at,
                money: refund.money,
                channel_ids: self.channel_ids_of(&attempt).await?,
            })
            .await;
        self.store
            .mark_refund_checked(&refund.id, self.clock.now())
            .await?;
        let (status, channel_ref) = match answer {
            Ok(RefundQueryResult::Succeeded { channel_refund_id }) => {
                (RefundStatus::Success, channel_refund_id)
            }
            Ok(RefundQueryResult::Failed) => (RefundStatus::Failed, None),
            Ok(RefundQueryResult::Pending) => return Ok(false),
            Err(e) => {
                tracing::warn!(refund_id = %refund.id, error = %e, "refund reconciliation query failed");
                return Ok(false);
            }
        };
        let finished = self
            .store
            .finish_refund(&refund.id, status, channel_ref, self.clock.now())
            .await?;
        let changed = finished.status == status && finished.status != RefundStatus::Pending;
        if changed {
            self.metrics
                .outcome(&self.metrics.notifications, "reconciled");
            tracing::info!(refund_id = %refund.id, status = status.code(), "refund settled by reconciliation query");
        }
        Ok(changed)
    }

    /// Asks the wallet about a pending attempt and applies a definite answer. Returns
    /// whether anything changed.
    pub async fn reconcile(&self, attempt: &Attempt) -> Result<bool, ServiceError> {
        if attempt.status != AttemptStatus::Pending {
            return Ok(false);
        }
        let Some(channel) = self.channels.for_method(attempt.method) else {
            return Ok(false);
        };
        let terms = self.wallet_terms(attempt).await?;
        let answer = channel
            .query(&QueryPayment {
                attempt_id: attempt.id.clone(),
                money: attempt.money,
                started_at: attempt.created_at,
                flow: terms.flow,
                channel_ids: terms.ids,
            })
            .await;
        self.store
            .mark_checked(&attempt.id, self.clock.now())
            .await?;
        let outcome = match answer {
            Ok(QueryResult::Paid { money: Some(m), .. }) if m != attempt.money => {
                tracing::warn!(attempt_id = %attempt.id, "wallet reports a payment of another amount; not applied");
                return Ok(false);
            }
            Ok(QueryResult::Paid {
                bizpay_order_id, ..
            }) => (AttemptOutcome::Paid, Some(bizpay_order_id)),
            Ok(QueryResult::Closed) => (AttemptOutcome::Failed, None),
            Ok(QueryResult::Pending | QueryResult::NotFound) => return Ok(false),
            Err(e) => {
                tracing::warn!(attempt_id = %attempt.id, error = %e, "reconciliation query failed");
                return Ok(false);
            }
        };
        let applied = self
            .apply_result(VerifiedResult {
                attempt_id: attempt.id.clone(),
                outcome: outcome.0,
                bizpay_order_id: outcome.1,
            })
            .await?;
        let changed = matches!(applied, SettleOutcome::Applied { .. });
        if changed {
            self.metrics
                .outcome(&self.metrics.notifications, "reconciled");
            tracing::info!(attempt_id = %attempt.id, outcome = outcome.0.code(), "settled by reconciliation query");
        }
        Ok(changed)
    }
}
