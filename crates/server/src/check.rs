//! What `ottgate check` asks a sandbox gateway (docs/checker.md): the merchant's recent
//! payments with where their callbacks go, the calls the merchant's shop made to the
//! gateway (its queries and refunds, so the checker can see whether a shop asked before it
//! believed a callback), the callbacks delivered and what the shop answered, what happens to
//! a payment (paid, declined, expired, paid after expiry, refunded), and faults on one
//! order (callbacks held back, the shop's answers dropped, queries lagging behind). One route, `POST /sandbox/v1/check`, taking the
//! envelope of `/processV2` sealed with the merchant's sign key — only the merchant (or
//! whoever holds its key) can ask — and answering sealed with it. Sandbox mode only.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use ottgate_api::{EnvelopeRequest, EnvelopeResponse, RspCode};
use ottgate_core::{AttemptOutcome, MerchantId, OrderId, Timestamp};
use ottgate_envelope::{Fields, open, seal};
use serde_json::{Value, json};

use crate::calls::Faults;
use crate::service::PaymentFilter;
use crate::service::refunds::RefundAsk;
use crate::state::AppState;

fn refused(code: RspCode, message: &str) -> Response {
    (
        axum::http::StatusCode::BAD_REQUEST,
        Json(EnvelopeResponse::error(code, message)),
    )
        .into_response()
}

/// `POST /sandbox/v1/check`.
pub async fn check(State(state): State<AppState>, body: Bytes) -> Response {
    let Ok(request) = EnvelopeRequest::parse(&body) else {
        return refused(RspCode::ParamError, "the body must be an envelope");
    };
    let Ok(merchant_id) = MerchantId::parse(&request.merchant_id) else {
        return refused(RspCode::ParamInvalid, "merchant_id not found");
    };
    let signing = match state.service.signing(&merchant_id).await {
        Ok(Some(s)) => s,
        Ok(None) => return refused(RspCode::ParamInvalid, "merchant_id not found"),
        Err(e) => return refused(RspCode::Fail, &e.to_string()),
    };
    let Ok(opened) = open(&request.data, &request.md5, &signing.key) else {
        return refused(
            RspCode::ParamError,
            "the data is not sealed with this merchant's key",
        );
    };
    let answer = match request.action.as_str() {
        "CHECK_PAYMENTS" => payments(&state, &merchant_id, &opened.fields).await,
        "CHECK_CALLS" => Ok(calls(&state, &merchant_id, &opened.fields)),
        "CHECK_CALLBACKS" => callbacks(&state, &merchant_id, &opened.fields).await,
        "CHECK_SETTLE" => settle(&state, &merchant_id, &opened.fields).await,
        "CHECK_RESEND" => resend(&state, &merchant_id, &opened.fields).await,
        "CHECK_FAULTS" => owned_order(&state, &merchant_id, &opened.fields)
            .await
            .map(|(order, _)| faults(&state, &order, &opened.fields)),
        "CHECK_REPORT" => Ok(report(&state, &merchant_id, &opened.fields)),
        _ => Err(
            "action must be CHECK_PAYMENTS, CHECK_CALLS, CHECK_CALLBACKS, CHECK_SETTLE, CHECK_FAULTS, CHECK_RESEND or CHECK_REPORT"
                .to_owned(),
        ),
    };
    match answer {
        Ok(Value::Object(fields)) => {
            Json(EnvelopeResponse::sealed(seal(&fields, &signing.key))).into_response()
        }
        Ok(_) => refused(RspCode::Fail, "internal error"),
        Err(message) => refused(RspCode::ParamInvalid, &message),
    }
}

fn since(fields: &Fields) -> Timestamp {
    let millis = fields
        .get("since")
        .and_then(|v| {
            v.as_str()
                .and_then(|s| s.parse().ok())
                .or_else(|| v.as_i64())
        })
        .unwrap_or(0);
    Timestamp::from_epoch_millis(millis)
}

fn text(fields: &Fields, name: &str) -> Result<String, String> {
    fields
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| format!("{name} is required"))
}

/// The merchant's payments created since `since`, oldest first, with where their callback
/// and browser return go.
async fn payments(
    state: &AppState,
    merchant: &MerchantId,
    fields: &Fields,
) -> Result<Value, String> {
    let filter = PaymentFilter {
        merchant: merchant.clone(),
        status: None,
        method: None,
        from: Some(since(fields)),
        to: None,
        search: None,
        before: None,
        limit: 200,
    };
    let service = &state.service;
    let mut found = service.payments(&filter).await.map_err(|e| e.to_string())?;
    found.reverse();
    let mut out = Vec::with_capacity(found.len());
    for p in found {
        let order = service
            .existing_order(&p.order_id)
            .await
            .map_err(|e| e.to_string())?;
        let (order, _) = service.as_of_now(order).await.map_err(|e| e.to_string())?;
        out.push(json!({
            "order_id": order.id.as_str(),
            "payment_id": p.payment_id.map(|a| a.to_string()),
            "reference": order.reference.as_ref().map(ToString::to_string),
            "kind": order.kind.code(),
            "status": order.status.code(),
            "amount": order.money.amount.to_string(),
            "currency": order.money.currency.code(),
            "callback_url": order.callback_url,
            "redirect_url": order.redirect_url,
            "created": order.created_at.epoch_millis(),
        }));
    }
    Ok(json!({ "payments": out }))
}

fn calls(state: &AppState, merchant: &MerchantId, fields: &Fields) -> Value {
    let calls: Vec<Value> = state
        .calls
        .of(merchant, since(fields))
        .into_iter()
        .map(|c| json!({"at": c.at.epoch_millis(), "call": c.call, "about": c.about}))
        .collect();
    json!({ "calls": calls })
}

/// The merchant's order named by `order_id` (another merchant's is not found), with its
/// attempts.
async fn owned_order(
    state: &AppState,
    merchant: &MerchantId,
    fields: &Fields,
) -> Result<(ottgate_core::Order, Vec<ottgate_core::Attempt>), String> {
    let id = OrderId::parse(&text(fields, "order_id")?)
        .map_err(|_| "order_id is malformed".to_owned())?;
    state
        .service
        .merchant_order(merchant, &id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "order_id not found".to_owned())
}

/// The callbacks of a merchant's order: each delivery, its body, and every answer.
async fn callbacks(
    state: &AppState,
    merchant: &MerchantId,
    fields: &Fields,
) -> Result<Value, String> {
    let (order, _) = owned_order(state, merchant, fields).await?;
    let service = &state.service;
    let deliveries = service
        .deliveries_of(&order.id)
        .await
        .map_err(|e| e.to_string())?;
    let out: Vec<Value> = deliveries
        .into_iter()
        .map(|(d, attempts)| {
            json!({
                "notify_id": d.notify_id.to_string(),
                "event": d.event,
                "state": d.state.code(),
                "url": d.url,
                "body": d.body,
                "answers": attempts.iter().map(|a| json!({
                    "at": a.started_at.epoch_millis(),
                    "http_status": a.http_status,
                    "error": a.error,
                    "answer": a.response_start,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(json!({ "callbacks": out }))
}

/// What happens to a payment, as the checker plays it: the buyer pays (`paid`), is declined
/// (`failed`) or only starts paying (`started`); the order expires unpaid (`expired`); the
/// wallet's success arrives after the order expired (`paid_late`); or the merchant refunds
/// the paid order in full (`refunded`).
async fn settle(state: &AppState, merchant: &MerchantId, fields: &Fields) -> Result<Value, String> {
    let outcome = text(fields, "outcome")?;
    let (order, attempts) = owned_order(state, merchant, fields).await?;
    let payment = match outcome.as_str() {
        "paid" => crate::sandbox::act_as_buyer(state, &order, AttemptOutcome::Paid).await?,
        "failed" => crate::sandbox::act_as_buyer(state, &order, AttemptOutcome::Failed).await?,
        "started" => crate::sandbox::start_paying(state, &order).await?.id,
        "paid_late" => crate::sandbox::pay_after_expiry(state, &order, &attempts).await?,
        "expired" => {
            if !state
                .service
                .expire_now(&order.id)
                .await
                .map_err(|e| e.to_string())?
            {
                return Err("the order is not open".into());
            }
            return Ok(json!({ "order_id": order.id.as_str() }));
        }
        "refunded" => {
            let paid = order
                .paid_attempt
                .as_ref()
                .and_then(|id| attempts.iter().find(|a| &a.id == id))
                .ok_or("the order is not paid")?;
            let ask = RefundAsk {
                merchant: merchant.clone(),
                payment_id: paid.id.clone(),
                amount: paid.money.amount,
                merchant_refund_id: None,
                request_key: None,
                requested_by: ottgate_core::RefundedBy::Checker,
                reason: None,
            };
            let state2 = state.clone();
            state
                .service
                .to_completion(async move { state2.service.refund(ask).await })
                .await
                .map_err(|e| e.to_string())?;
            paid.id.clone()
        }
        _ => {
            return Err(
                "outcome must be paid, failed, started, expired, paid_late or refunded".into(),
            );
        }
    };
    Ok(json!({ "order_id": order.id.as_str(), "payment_id": payment.to_string() }))
}

/// Sets what the sandbox does to one order (replacing what was set before; nothing clears
/// it): its callbacks held back (`hold_callbacks`), the shop's answers to the next
/// `lose_answers` callback attempts dropped, queries answering "still processing" for
/// `lag_queries_secs`.
fn faults(state: &AppState, order: &ottgate_core::Order, fields: &Fields) -> Value {
    let number = |name: &str| fields.get(name).and_then(Value::as_u64).unwrap_or(0);
    let lag = number("lag_queries_secs").min(600);
    let faults = Faults {
        hold_callbacks: fields
            .get("hold_callbacks")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        lose_answers: u32::try_from(number("lose_answers").min(10)).unwrap_or(0),
        queries_lag_until: (lag > 0).then(|| {
            state
                .service
                .clock
                .now()
                .plus(std::time::Duration::from_secs(lag))
        }),
    };
    state.check_faults.set(&order.id, faults);
    json!({ "order_id": order.id.as_str() })
}

/// The gateway sends an order's first callback again, now, as its delivery worker would:
/// `times` times, one after another or all at once (`at_once`), with a fresh
/// `OTTGate-Signature` (`signature` `genuine`), none (`none`), one made an hour ago
/// (`stale`), or one made with a secret that does not sign now (`old`). Answers what the shop answered to each.
async fn resend(state: &AppState, merchant: &MerchantId, fields: &Fields) -> Result<Value, String> {
    let (order, _) = owned_order(state, merchant, fields).await?;
    let deliveries = state
        .service
        .deliveries_of(&order.id)
        .await
        .map_err(|e| e.to_string())?;
    let (delivery, _) = deliveries
        .into_iter()
        .next()
        .ok_or("the order has no callback to send again")?;
    let times = fields
        .get("times")
        .and_then(Value::as_u64)
        .unwrap_or(1)
        .clamp(1, 10);
    let at_once = fields
        .get("at_once")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let now = state.service.clock.now();
    let secrets = crate::workers::delivery::webhook_secrets(state, merchant, now)
        .await
        .map_err(|e| e.to_string())?;
    let mut secrets: Vec<String> = secrets
        .iter()
        .map(|s| s.expose_secret().to_owned())
        .collect();
    let signed_at = match fields
        .get("signature")
        .and_then(Value::as_str)
        .unwrap_or("genuine")
    {
        "genuine" => Some(now),
        "stale" => Some(now.minus(std::time::Duration::from_secs(3_600))),
        "old" => {
            // A secret that no longer signs: the one before the current, once its grace
            // period is over; for a merchant who never rotated it (or still in grace), the
            // one it would get next — either way not one the shop should take.
            let webhook = state
                .service
                .signing(merchant)
                .await
                .map_err(|e| e.to_string())?
                .map(|s| s.webhook)
                .unwrap_or_default();
            let version = if webhook.version > 0 && secrets.len() == 1 {
                webhook.version - 1
            } else {
                webhook.version + 1
            };
            let old = state.service.keyring.webhook_secret(merchant, version);
            secrets = vec![old.expose_secret().to_owned()];
            Some(now)
        }
        "none" => None,
        _ => return Err("signature must be genuine, stale, old or none".into()),
    };
    let signature = match signed_at {
        Some(at) => {
            let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
            crate::outbound::signature(&secrets, at.epoch_millis().div_euclid(1000), &delivery.body)
        }
        None => String::new(),
    };
    let send = || {
        state
            .callbacks
            .post(&delivery.url, &delivery.body, &signature)
    };
    let answers = if at_once {
        futures::future::join_all((0..times).map(|_| send())).await
    } else {
        let mut answers = Vec::new();
        for _ in 0..times {
            answers.push(send().await);
        }
        answers
    };
    let answers: Vec<Value> = answers
        .into_iter()
        .map(|a| match a {
            Ok(a) => json!({"http_status": a.status, "answer": a.body_start}),
            Err(e) => json!({"http_status": 0, "answer": e}),
        })
        .collect();
    Ok(json!({ "answers": answers }))
}

/// The checker's verdicts, kept as the merchant's last run for its merchant center.
fn report(state: &AppState, merchant: &MerchantId, fields: &Fields) -> Value {
    let cases: Vec<crate::calls::CheckedCase> = fields
        .get("cases")
        .and_then(Value::as_array)
        .map(|cases| {
            cases
                .iter()
                .take(100)
                .map(|c| {
                    let s = |name: &str| {
                        c.get(name)
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .chars()
                            .take(300)
                            .collect::<String>()
                    };
                    crate::calls::CheckedCase {
                        case: s("case"),
                        verdict: s("verdict"),
                        why: s("why"),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let kept = cases.len();
    state
        .check_runs
        .keep(merchant, state.service.clock.now(), cases);
    json!({ "kept": kept })
}
