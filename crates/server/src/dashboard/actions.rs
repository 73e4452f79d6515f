//! What an admin can do from a payment's page: refund it (through the same path as the
//! APIs, so the never-exceed rule holds however the refunds arrive), capture or void a held
//! card authorisation, and send a callback again. Each form must carry the session's `csrf_token` (else 403, nothing done); a viewer
//! is refused (403); another merchant's payment or callback is not found (404). Every
//! action done is recorded in the audit log.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use ottgate_core::{Money, NotifyId, RefundStatus};
use serde::Deserialize;

use super::confirm;
use super::once::FormToken;
use super::pages::owned_order;
use super::session::{CsrfForm, Signed};
use super::{ErrorKind, admit, audit, error_page, internal};
use crate::service::refunds::{RefundAsk, RefundError, Refunded};
use crate::state::AppState;

#[derive(Debug, Default, Deserialize)]
pub struct RefundForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    amount: String,
    /// Why, in the merchant's words (optional; kept with the refund, shown on the payment).
    #[serde(default)]
    reason: String,
    /// `yes` on the confirmation's form; without it the refund is only shown to confirm.
    #[serde(default)]
    confirm: String,
}

fn back_to(order_id: &str, notice: &str) -> Response {
    Redirect::to(&format!("/dashboard/payments/{order_id}?notice={notice}")).into_response()
}

/// Back to the payment, saying why `typed` was refused and keeping it in the box.
fn amount_refused(order_id: &str, notice: &str, typed: &str) -> Response {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("notice", notice)
        .append_pair("amount", typed)
        .finish();
    Redirect::to(&format!("/dashboard/payments/{order_id}?{query}#refund")).into_response()
}

/// The longest refund reason kept, in characters (more is cut).
const REASON_CHARS: usize = 200;

/// Minor units of `paid` still refundable: what no refund took or holds (a failed one
/// gives its amount back).
pub(super) fn refundable(paid: u64, refunds: &[ottgate_core::Refund]) -> u64 {
    let held: u64 = refunds
        .iter()
        .filter(|r| r.status != RefundStatus::Failed)
        .map(|r| r.money.amount.minor())
        .sum();
    paid.saturating_sub(held)
}

/// `POST /dashboard/payments/{order_id}/refund` with `amount` in major units (`3.00`):
/// checked, then shown to confirm; with `confirm=yes`, made.
pub async fn refund(
    State(state): State<AppState>,
    signed: Signed,
    Path(order_id): Path<String>,
    token: Option<Extension<FormToken>>,
    Form(form): Form<RefundForm>,
) -> Response {
    if let Some(refused) = admit(&state, &signed, &form.csrf_token) {
        return refused;
    }
    let lang = signed.lang;
    let order = match owned_order(&state, &signed, &order_id).await {
        Ok(Some((order, _))) => order,
        Ok(None) => return error_page(lang, ErrorKind::NotFound),
        Err(e) => return internal(lang, &e),
    };
    let Some(payment) = order.paid_attempt.clone() else {
        return back_to(&order_id, "bad_amount");
    };
    let typed = form.amount.trim();
    let reason: String = form
        .reason
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(REASON_CHARS)
        .collect();
    let currency = order.money.currency;
    let Some(money) = Money::parse_major(typed, currency).filter(|m| m.amount.minor() > 0) else {
        return amount_refused(&order_id, "amount_not_number", typed);
    };
    let refunds = match state.service.refunds_of(&payment).await {
        Ok(r) => r,
        Err(e) => return internal(lang, &e),
    };
    let left = refundable(order.money.amount.minor(), &refunds);
    if money.amount.minor() > left {
        return amount_refused(&order_id, "amount_too_much", typed);
    }
    if !confirm::confirmed(&form.confirm) {
        let t = signed.t();
        let show = |minor: u64| {
            ottgate_core::Amount::from_minor(minor).map_or_else(
                |_| currency.major_plain(minor),
                |a| Money::new(a, currency).major_plain(),
            ) + " "
                + currency.code()
        };
        let mut facts = vec![
            (t.payment_id.to_owned(), payment.to_string()),
            (t.paid.to_owned(), show(order.money.amount.minor())),
            (t.refund_amount.to_owned(), show(money.amount.minor())),
            (
                t.refundable.to_owned(),
                show(left - money.amount.minor()) + " " + t.left_after,
            ),
        ];
        if !reason.is_empty() {
            facts.push((t.refund_reason.to_owned(), reason.clone()));
        }
        return confirm::page(
            &signed,
            "payments",
            confirm::Confirm {
                heading: t.confirm_refund.to_owned(),
                facts,
                what: t.confirm_refund_what.to_owned(),
                action: format!("/dashboard/payments/{order_id}/refund"),
                fields: vec![
                    ("amount".to_owned(), money.major_plain()),
                    ("reason".to_owned(), reason.clone()),
                ],
                button: format!("{} {}", t.refund, show(money.amount.minor())),
                cancel: format!("/dashboard/payments/{order_id}"),
            },
        );
    }
    let result = state
        .service
        .refund(RefundAsk {
            merchant: signed.merchant.id.clone(),
            payment_id: payment.clone(),
            amount: money.amount,
            merchant_refund_id: None,
            request_key: token.map(|Extension(FormToken(t))| format!("dashboard:{t}")),
            requested_by: ottgate_core::RefundedBy::User(signed.user.email.to_string()),
            reason: (!reason.is_empty()).then_some(reason),
        })
        .await;
    match result {
        Ok(Refunded {
            replayed: true,
            refund,
        }) => {
            tracing::info!(payment_id = %payment, refund_id = %refund.id, "merchant-center refund form sent again; refunded once");
            back_to(&order_id, "once")
        }
        Ok(Refunded { refund, .. }) => {
            // The amount and the reason given: what was asked, in no language (the
            // refund's state lives on the payment's page).
            let detail = match &refund.reason {
                Some(reason) => format!(
                    "{} {} · {reason}",
                    money.major_plain(),
                    money.currency.code()
                ),
                None => format!("{} {}", money.major_plain(), money.currency.code()),
            };
            audit(&state, &signed, "refund", payment.as_str(), detail).await;
            tracing::info!(payment_id = %payment, refund_id = %refund.id, user = ?signed.user.email, "refund from the merchant center");
            let notice = if refund.status == RefundStatus::Success {
                "refunded"
            } else {
                "refund_pending"
            };
            back_to(&order_id, notice)
        }
        Err(RefundError::Exceeds { .. }) => amount_refused(&order_id, "amount_too_much", typed),
        Err(
            RefundError::NotPaid
            | RefundError::Authorised
            | RefundError::Refused(_)
            | RefundError::IdReused,
        ) => back_to(&order_id, "bad_amount"),
        Err(RefundError::PaymentNotFound) => error_page(lang, ErrorKind::NotFound),
        Err(e) => internal(lang, &e),
    }
}

/// `POST /dashboard/deliveries/{delivery_id}/resend`: the callback is due again now, and
/// retried on the schedule until acknowledged.
pub async fn resend(
    State(state): State<AppState>,
    signed: Signed,
    Path(delivery_id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(refused) = admit(&state, &signed, &form.csrf_token) {
        return refused;
    }
    let lang = signed.lang;
    let Ok(id) = NotifyId::parse(&delivery_id) else {
        return error_page(lang, ErrorKind::NotFound);
    };
    let delivery = match state.service.redeliver(&signed.merchant.id, &id).await {
        Ok(Some(d)) => d,
        Ok(None) => return error_page(lang, ErrorKind::NotFound),
        Err(e) => return internal(lang, &e),
    };
    audit(
        &state,
        &signed,
        "resend",
        id.as_str(),
        delivery.event.clone(),
    )
    .await;
    tracing::info!(notify_id = %id, user = ?signed.user.email, "callback resent from the merchant center");
    back_to(delivery.order_id.as_str(), "resent")
}

#[derive(Debug, Default, Deserialize)]
pub struct HoldForm {
    #[serde(default)]
    csrf_token: String,
}

/// What an admin does to a held card authorisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    /// Take the money (a `CC_PREAUTH`, or a local-card payment before its automatic
    /// capture).
    Capture,
    /// Release it: nothing is taken.
    Void,
}

/// Captures or voids the held authorisation of the signed-in merchant's order `order_id`,
/// audited; back to the payment's page with what happened.
async fn act_on_hold(
    state: &AppState,
    signed: &Signed,
    order_id: &str,
    csrf: &str,
    hold: Hold,
) -> Response {
    if let Some(refused) = admit(state, signed, csrf) {
        return refused;
    }
    let attempt = match owned_order(state, signed, order_id).await {
        Ok(Some((_, attempts))) => match attempts.into_iter().find(|a| a.is_authorised()) {
            Some(a) => a,
            None => return back_to(order_id, "not_held"),
        },
        Ok(None) => return error_page(signed.lang, ErrorKind::NotFound),
        Err(e) => return internal(signed.lang, &e),
    };
    let done = match hold {
        Hold::Capture => match state.service.capture(&attempt.id).await {
            Ok(outcome) => matches!(outcome, crate::service::SettleOutcome::Applied { .. }),
            Err(e) => return internal(signed.lang, &e),
        },
        Hold::Void => match state
            .service
            .void_card(&signed.merchant.id, &attempt.id)
            .await
        {
            Ok(_) => true,
            Err(crate::service::VoidError::Service(e)) => return internal(signed.lang, &e),
            Err(_) => false,
        },
    };
    if !done {
        return back_to(order_id, "not_held");
    }
    let (action, notice) = match hold {
        Hold::Capture => ("capture", "captured"),
        Hold::Void => ("void", "voided"),
    };
    audit(state, signed, action, attempt.id.as_str(), String::new()).await;
    back_to(order_id, notice)
}

/// `POST /dashboard/payments/{order_id}/capture`.
pub async fn capture(
    State(state): State<AppState>,
    signed: Signed,
    Path(order_id): Path<String>,
    Form(form): Form<HoldForm>,
) -> Response {
    act_on_hold(&state, &signed, &order_id, &form.csrf_token, Hold::Capture).await
}

/// `POST /dashboard/payments/{order_id}/void`.
pub async fn void(
    State(state): State<AppState>,
    signed: Signed,
    Path(order_id): Path<String>,
    Form(form): Form<HoldForm>,
) -> Response {
    act_on_hold(&state, &signed, &order_id, &form.csrf_token, Hold::Void).await
}
