//! REST local-card routes (docs/cards.md): `payment3dsV2` (the card in the request; an
//! approved card is authorised, a challenge card answers `THREEDS_AUTH_CHALLENGE` with the
//! form that takes the buyer to 3-D Secure), `local-card/refund` and `local-card/reverse`
//! (the void of a payment not captured yet). In sandbox mode the gateway's test acquirer
//! serves them; without one they are refused. A card number is never stored or logged:
//! only the sandbox's published test cards are taken, and any other number is refused
//! before anything — an idempotency key included — is written.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use ottgate_api::rest::{
    Envelope, ErrorResult, LocalCardPaymentRequest, LocalCardPaymentResult, RefundRequest,
    RefundResult, RestCode, ReverseRequest, ReverseResult,
};
use ottgate_channels::VerifiedResult;
use ottgate_core::{
    Amount, AttemptId, AttemptOutcome, MerchantRef, OrderKind, PaymentMethod, PaymentStatus,
};

use super::extract::{Authed, JsonObject, RestError, RestResult, ok};
use super::idempotency::RequestKey;
use super::pay::{refund_payment, url_field};
use crate::outbound::check_callback_url;
use crate::sandbox::{TestCard, expiry_to_come};
use crate::service::{CreatePaymentError, NewPayment, VoidError};
use crate::state::AppState;

fn unsupported_card() -> RestError {
    RestError::new(
        StatusCode::BAD_REQUEST,
        RestCode::UnsupportedCard,
        "accountNumber is not one of the sandbox's test cards (docs/cards.md)",
    )
}

fn no_acquirer() -> RestError {
    RestError::new(
        StatusCode::CONFLICT,
        RestCode::NoChannel,
        "card payments need a card acquirer and none is configured on this gateway (its test \
         acquirer serves them in sandbox mode)",
    )
}

/// The card's brand as `ccType` says it, from its first digit.
fn card_type(number: &str) -> &'static str {
    match number.trim_start().as_bytes().first() {
        Some(b'5' | b'2') => "MC",
        _ => "VISA",
    }
}

/// Checks the optional address fields against OTT Pay's lengths.
fn check_avs(body: &JsonObject) -> Result<(), RestError> {
    for (name, max) in [
        ("sslAvsAddress", 50),
        ("sslAvsCity", 40),
        ("sslAvsProvince", 40),
        ("sslAvsZip", 10),
        ("accountName", 100),
        ("sessionId", 128),
        ("email", 128),
        ("sslEciInd", 8),
        ("ssl3dsecureValue", 64),
        ("sslDirServerTranId", 64),
    ] {
        body.optional(name, max)?;
    }
    if let Some(country) = body.optional("sslAvsCountry", 2)?
        && (country.len() != 2 || !country.bytes().all(|b| b.is_ascii_alphabetic()))
    {
        return Err(RestError::invalid(
            "sslAvsCountry must be a two-letter ISO 3166 country code",
        ));
    }
    Ok(())
}

#[utoipa::path(
    post,
    path = "/api/v1/payment/local-card/payment3dsV2",
    tag = "pay",
    request_body = LocalCardPaymentRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`authorised` (the money held; captured after `card_capture_delay_secs` unless reversed) or `THREEDS_AUTH_CHALLENGE` with `escape3DSChallengeForm` to render in the buyer's browser", body = Envelope<LocalCardPaymentResult>),
        (status = 400, description = "10005: a field is missing or malformed; 20008: not a test card (refused, nothing kept)", body = Envelope<ErrorResult>),
        (status = 401, description = "90000: missing, malformed, expired or invalid token", body = Envelope<ErrorResult>),
        (status = 402, description = "20030: the card was declined (the payment is recorded as failed; no money moved)", body = Envelope<ErrorResult>),
        (status = 409, description = "20031: cards are not available for this merchant, or no card acquirer (live mode)", body = Envelope<ErrorResult>),
    )
)]
pub async fn payment_3ds_v2(
    State(state): State<AppState>,
    authed: Authed,
    body: JsonObject,
) -> RestResult<LocalCardPaymentResult> {
    if !state.service.settings.sandbox {
        return Err(no_acquirer());
    }
    let number = body.required("accountNumber", 32)?;
    let card = TestCard::of(&number).ok_or_else(|| {
        tracing::info!(merchant_id = %authed.merchant.id, "local-card payment: a card number that is not a test card was refused");
        unsupported_card()
    })?;
    let amount = Amount::parse(
        &body
            .optional_text("amount", 32)?
            .ok_or_else(|| RestError::invalid("amount is required"))?,
    )
    .ok()
    .filter(|a| a.minor() > 0)
    .ok_or_else(|| RestError::invalid("amount must be a positive whole number of cents"))?;
    let callback_url = if body.optional("callBackURL", 255)?.is_some() {
        url_field(&body, "callBackURL")?
    } else {
        url_field(&body, "callbackURL")
            .map_err(|_| RestError::invalid("callBackURL is required (an absolute http(s) URL)"))?
    };
    check_callback_url(
        &callback_url,
        state.service.settings.allow_private_callbacks,
    )
    .map_err(|e| RestError::invalid(format!("callBackURL {e}")))?;
    let front_url = url_field(&body, "frontURL")?;
    if !expiry_to_come(
        &body.required("accountExpire", 5)?,
        state.service.clock.now(),
    ) {
        return Err(RestError::invalid(
            "accountExpire must be MMYY, this month or later",
        ));
    }
    let cvn2 = body.required("cvn2", 4)?;
    if !(3..=4).contains(&cvn2.len()) || !cvn2.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RestError::invalid("cvn2 must be 3 or 4 digits"));
    }
    check_avs(&body)?;
    let reference = body
        .optional("reference", 64)?
        .map(|r| MerchantRef::parse(&r))
        .transpose()
        .map_err(|_| {
            RestError::invalid(
                "reference must be 1 to 64 printable ASCII characters without spaces",
            )
        })?;
    let merchant = &authed.merchant;
    if !merchant.offers(PaymentMethod::Gp) {
        return Err(RestError::new(
            StatusCode::CONFLICT,
            RestCode::NoChannel,
            "card payments are not enabled for this merchant",
        ));
    }
    let (order, attempt) = state
        .service
        .create_payment(
            merchant,
            NewPayment {
                kind: OrderKind::LocalCard,
                method: PaymentMethod::Gp,
                amount,
                currency: None,
                callback_url,
                return_url: Some(front_url),
                remarks: None,
                reference,
                sale_num: None,
            },
        )
        .await
        .map_err(|e| match e {
            CreatePaymentError::ReferenceUsed => RestError::invalid(e.to_string()),
            CreatePaymentError::Service(e) => RestError::internal(&e),
        })?;
    tracing::info!(payment_id = %attempt.id, merchant_id = %merchant.id, amount = %order.money.amount, "local-card payment created");
    let answer = |status: &str, held: bool, form: Option<String>| LocalCardPaymentResult {
        payment_status: status.to_owned(),
        payment_id: attempt.id.to_string(),
        merchant_id: merchant.id.to_string(),
        cc_type: card_type(&number).to_owned(),
        amount: order.money.amount.to_string(),
        receipt_amount: if held {
            order.money.amount.to_string()
        } else {
            "0".into()
        },
        total_amount: order.money.amount.to_string(),
        trade_time: attempt.created_at.beijing_java(),
        escape_3ds_challenge_form: form,
    };
    match card {
        TestCard::Approved => {
            state
                .service
                .authorise_card(&attempt)
                .await
                .map_err(|e| RestError::internal(&e))?;
            ok(answer(PaymentStatus::Authorised.code(), true, None))
        }
        TestCard::Challenge => {
            let url = state.service.card_page_url(&attempt.id);
            let form = format!(
                "<form id=\"ottgate-3ds\" method=\"GET\" action=\"{url}\"></form>\
                 <script>document.getElementById('ottgate-3ds').submit();</script>"
            );
            ok(answer("THREEDS_AUTH_CHALLENGE", false, Some(form)))
        }
        TestCard::Declined => {
            state
                .service
                .apply_result_to(
                    &order,
                    &attempt,
                    VerifiedResult {
                        attempt_id: attempt.id.clone(),
                        outcome: AttemptOutcome::Failed,
                        bizpay_order_id: None,
                        buyer_paid: None,
                    },
                )
                .await
                .map_err(|e| RestError::internal(&e))?;
            Err(RestError::new(
                StatusCode::PAYMENT_REQUIRED,
                RestCode::PaymentFailed,
                format!(
                    "payment failed: the card was declined (paymentId {}; no money moved)",
                    attempt.id
                ),
            ))
        }
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/payment/local-card/refund",
    tag = "refund",
    request_body = RefundRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Refunded, as `/api/v1/pay/refund`", body = Envelope<RefundResult>),
        (status = 400, description = "10005: a field is missing or malformed", body = Envelope<ErrorResult>),
        (status = 401, description = "90000: missing, malformed, expired or invalid token", body = Envelope<ErrorResult>),
        (status = 404, description = "20019: no such payment for this merchant", body = Envelope<ErrorResult>),
        (status = 409, description = "20020: not captured (void it with local-card/reverse) or not paid; 20014: more than remains; 20041: already fully refunded", body = Envelope<ErrorResult>),
    )
)]
pub async fn local_card_refund(
    State(state): State<AppState>,
    authed: Authed,
    key: Option<Extension<RequestKey>>,
    body: JsonObject,
) -> RestResult<RefundResult> {
    if !state.service.settings.sandbox {
        return Err(no_acquirer());
    }
    refund_payment(&state, &authed, key, &body).await
}

#[utoipa::path(
    post,
    path = "/api/v1/payment/local-card/reverse",
    tag = "refund",
    request_body = ReverseRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Voided before capture: nothing taken, the payment `orderclosed` (P00007); asked again, the same answer", body = Envelope<ReverseResult>),
        (status = 400, description = "10005: paymentId missing or malformed", body = Envelope<ErrorResult>),
        (status = 401, description = "90000: missing, malformed, expired or invalid token", body = Envelope<ErrorResult>),
        (status = 404, description = "20019: no such payment for this merchant", body = Envelope<ErrorResult>),
        (status = 409, description = "20020: already captured (refund it instead) or closed; 20021: not a card payment", body = Envelope<ErrorResult>),
    )
)]
pub async fn local_card_reverse(
    State(state): State<AppState>,
    authed: Authed,
    body: JsonObject,
) -> RestResult<ReverseResult> {
    if !state.service.settings.sandbox {
        return Err(no_acquirer());
    }
    let id = body.required("paymentId", 64)?;
    let not_found = || RestError::not_found("Original payment not exist");
    let id = AttemptId::parse(&id).map_err(|_| not_found())?;
    let conflict = |code, message: String| RestError::new(StatusCode::CONFLICT, code, message);
    let (order, attempt) = state
        .service
        .void_card(&authed.merchant.id, &id)
        .await
        .map_err(|e| match e {
            VoidError::NotFound => not_found(),
            VoidError::NotACard => conflict(RestCode::NotRevocable, e.to_string()),
            VoidError::Finished(_) => {
                conflict(RestCode::OriginalPaymentNotRefundable, e.to_string())
            }
            VoidError::Service(e) => RestError::internal(&e),
        })?;
    let status = PaymentStatus::of(&attempt, order.status, 0);
    ok(ReverseResult {
        reverse_id: format!("RV{}", attempt.id),
        payment_id: attempt.id.to_string(),
        payment_status: status.code().into(),
        state_code: status.state_code().into(),
    })
}
