//! The REST handlers.

use crate::service::{CreatePaymentError, NewPayment};
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use ottgate_api::rest::{
    Envelope, ErrorResult, InAppPayRequest, InAppPayResult, PayRequest, PayResult,
    PaymentStatusResult, RefundRequest, RefundResult, RestCode, SecurePayResult,
    StatusQueryByReferenceRequest, StatusQueryRequest, TokenRequest, TokenResult,
};
use ottgate_core::{
    Amount, Attempt, AttemptId, AttemptStatus, Merchant, MerchantRef, Order, OrderKind,
    PaymentMethod,
};

use crate::service::passwords;
use url::Url;

use super::extract::{Authed, ClientAddr, JsonObject, RestError, RestResult, ok};
use super::idempotency::RequestKey;
use crate::outbound::check_callback_url;
use crate::service::payments::{PaymentView, StartError};
use crate::service::refunds::{RefundAsk, RefundError};
use crate::signin::{Gate, guarded};
use crate::state::AppState;
use ottgate_channels::{Device, PaymentStart};

const MAX_URL_CHARS: usize = 255;

#[utoipa::path(
    post,
    path = "/api/v1/auth/token",
    tag = "auth",
    request_body = TokenRequest,
    responses(
        (status = 200, description = "A bearer token valid for 900 s", body = Envelope<TokenResult>),
        (status = 400, description = "10005: appId or appKey missing or malformed", body = Envelope<ErrorResult>),
        (status = 401, description = "10003: no such appId/appKey pair", body = Envelope<ErrorResult>),
        (status = 429, description = "10003: too many failed attempts from this appId or address", body = Envelope<ErrorResult>),
    )
)]
pub async fn token(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    body: JsonObject,
) -> RestResult<TokenResult> {
    let app_id = body.required("appId", 64)?;
    let app_key = body.required("appKey", 128)?;
    let now = state.service.clock.now();
    let gate = guarded(
        &state.service,
        &state.auth_failures,
        &state.auth_hashing,
        &app_id,
        addr,
        now,
        || async {
            let record = state.service.merchant_by_app_id(&app_id).await?;
            let hash = record
                .as_ref()
                .map_or_else(|| passwords::decoy().to_owned(), |r| r.app_key_hash.clone());
            // The key before a rotation, while its grace lasts (checked only if the current
            // one does not match).
            let previous = record.as_ref().and_then(|r| {
                r.rotation
                    .previous_app_key
                    .clone()
                    .filter(|(_, until)| *until > now)
                    .map(|(hash, _)| hash)
            });
            let matches = tokio::task::spawn_blocking(move || {
                passwords::verify(&hash, &app_key)
                    || previous.is_some_and(|old| passwords::verify(&old, &app_key))
            })
            .await
            .unwrap_or(false);
            Ok::<_, RestError>(record.filter(|_| matches))
        },
    )
    .await?;
    let record = match gate {
        Gate::Passed(record) => record,
        Gate::Wrong => {
            tracing::warn!(app_id = ?app_id, client = ?addr, "token request with a wrong appId/appKey pair");
            return Err(RestError::new(
                StatusCode::UNAUTHORIZED,
                RestCode::AuthorizationFailed,
                "API Authorization failed",
            ));
        }
        Gate::TooMany => {
            return Err(RestError::new(
                StatusCode::TOO_MANY_REQUESTS,
                RestCode::AuthorizationFailed,
                "too many failed attempts; try again later",
            ));
        }
        Gate::Busy => {
            return Err(RestError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                RestCode::Other,
                "too many sign-ins at once; try again shortly",
            ));
        }
    };
    let (token, expired) = state.tokens.issue(&app_id, &record.merchant.id, now);
    ok(TokenResult { token, expired })
}

pub(super) fn url_field(body: &JsonObject, name: &str) -> Result<Url, RestError> {
    let raw = body.required(name, MAX_URL_CHARS)?;
    Url::parse(&raw)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| RestError::invalid(format!("{name} must be an absolute http(s) URL")))
}

/// A pay route's body, read and checked.
struct PayBody {
    amount: Amount,
    callback_url: Url,
    /// Absent only where the route has none (`weixin/active-pay`: the buyer pays on
    /// another device).
    return_url: Option<Url>,
    remark: Option<String>,
    reference: Option<MerchantRef>,
    /// The merchant's sale number (`alipay/inapp-pay`'s `saleNumber`).
    sale_number: Option<String>,
}

impl PayBody {
    fn read(state: &AppState, body: &JsonObject, kind: OrderKind) -> Result<Self, RestError> {
        let amount = Amount::parse(&body.required("amount", 64)?)
            .map_err(|e| RestError::invalid(e.to_string()))?;
        let callback_url = url_field(body, "callbackURL")?;
        check_callback_url(
            &callback_url,
            state.service.settings.allow_private_callbacks,
        )
        .map_err(|e| RestError::invalid(format!("callbackURL {e}")))?;
        let reference = body
            .optional("reference", 64)?
            .map(|r| MerchantRef::parse(&r))
            .transpose()
            .map_err(|_| {
                RestError::invalid(
                    "reference must be 1 to 64 printable ASCII characters without spaces",
                )
            })?;
        Ok(Self {
            amount,
            callback_url,
            // A QR code or an app payment has no browser to send back.
            return_url: match kind {
                OrderKind::Qr | OrderKind::App => None,
                _ => Some(url_field(body, "returnURL")?),
            },
            remark: body.optional("remark", 128)?,
            reference,
            sale_number: body.optional("saleNumber", 32)?,
        })
    }
}

/// Creates the order of `request` with its one attempt, by `method`.
async fn create(
    state: &AppState,
    merchant: &Merchant,
    kind: OrderKind,
    method: PaymentMethod,
    request: PayBody,
) -> Result<(Order, Attempt), RestError> {
    let new = NewPayment {
        kind,
        method,
        amount: request.amount,
        currency: None,
        callback_url: request.callback_url,
        return_url: request.return_url,
        remarks: request.remark,
        reference: request.reference,
        sale_num: request.sale_number,
    };
    state
        .service
        .create_payment(merchant, new)
        .await
        .map_err(|e| match e {
            CreatePaymentError::ReferenceUsed => RestError::invalid(e.to_string()),
            CreatePaymentError::Service(e) => RestError::internal(&e),
        })
}

/// A REST payment created, its wallet opened: what a pay route answers from.
struct Started {
    order: Order,
    attempt: Attempt,
    /// `None` for a payment inside WeChat: its wallet opens once WeChat names the buyer.
    start: Option<PaymentStart>,
}

/// Creates a payment by `method` (its order and one attempt) and opens the wallet: what
/// every pay route does.
async fn start_payment(
    state: &AppState,
    merchant: &Merchant,
    (method, kind): (PaymentMethod, OrderKind),
    body: &JsonObject,
) -> Result<Started, RestError> {
    let request = PayBody::read(state, body, kind)?;
    if let Some(reason) = state.service.unavailable(merchant, method, kind) {
        return Err(RestError::new(
            StatusCode::CONFLICT,
            RestCode::NoChannel,
            reason,
        ));
    }
    let (order, attempt) = create(state, merchant, kind, method, request).await?;
    tracing::info!(payment_id = %attempt.id, merchant_id = %merchant.id, kind = kind.code(), method = %method, amount = %order.money.amount, "REST payment created");
    if kind.in_wallet() {
        return Ok(Started {
            order,
            attempt,
            start: None,
        });
    }
    let device = if kind == OrderKind::Web {
        Device::Desktop
    } else {
        Device::Mobile
    };
    let start = state
        .service
        .open_wallet(&order, merchant, &attempt, device)
        .await
        .map_err(|e| match e {
            StartError::Service(e) => RestError::internal(&e),
            other => RestError::new(
                StatusCode::BAD_GATEWAY,
                RestCode::GatewayError,
                format!("the payment channel failed: {other}"),
            ),
        })?;
    Ok(Started {
        order,
        attempt,
        start: Some(start),
    })
}

fn no_start(what: &str) -> RestError {
    RestError::new(
        StatusCode::BAD_GATEWAY,
        RestCode::GatewayError,
        format!("the payment channel did not give {what}"),
    )
}

/// A browser or QR payment: where the buyer goes (or the code to show).
async fn pay(
    state: &AppState,
    merchant: &Merchant,
    route: (PaymentMethod, OrderKind),
    body: &JsonObject,
) -> RestResult<PayResult> {
    let (method, kind) = route;
    let started = start_payment(state, merchant, route, body).await?;
    let answer = |pay_info: String| PayResult {
        pay_info,
        merchant_id: merchant.id.to_string(),
        payment_id: started.attempt.id.to_string(),
        amount: started.order.money.amount.to_string(),
        biz_pay_order_id: None,
        time_zone_id: None,
    };
    let Some(start) = &started.start else {
        return ok(answer(
            state
                .service
                .in_wallet_url(&started.order.token)
                .to_string(),
        ));
    };
    // A browser payment is a page to send the browser to; a QR payment, the code's text.
    let pay_info = match kind {
        OrderKind::Qr => start.scannable(),
        _ => start.redirect_url().map(ToString::to_string),
    }
    .ok_or_else(|| no_start("a payment page or code"))?;
    let wechat_h5 = method == PaymentMethod::WeChatPay && kind == OrderKind::Wap;
    ok(PayResult {
        biz_pay_order_id: if kind == OrderKind::Web {
            start.channel_order_id.clone()
        } else {
            None
        },
        time_zone_id: wechat_h5.then(|| state.service.settings.time_zone_id.clone()),
        ..answer(pay_info)
    })
}

/// An app payment: what the merchant's app hands the wallet's app SDK.
async fn pay_in_app(
    state: &AppState,
    merchant: &Merchant,
    method: PaymentMethod,
    body: &JsonObject,
) -> Result<(Started, Vec<(String, String)>), RestError> {
    let started = start_payment(state, merchant, (method, OrderKind::App), body).await?;
    let params = started
        .start
        .as_ref()
        .and_then(PaymentStart::app_params)
        .ok_or_else(|| no_start("what the app SDK takes"))?
        .to_vec();
    Ok((started, params))
}

#[utoipa::path(
    post,
    path = "/api/v1/pay/alipay/wap-pay",
    tag = "pay",
    request_body = PayRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Send the buyer's mobile browser to `payInfo`", body = Envelope<PayResult>),
        (status = 400, description = "10005: a field is missing or malformed (the message names it)", body = Envelope<ErrorResult>),
        (status = 401, description = "90000: missing, malformed, expired or invalid token", body = Envelope<ErrorResult>),
        (status = 409, description = "20031: Alipay is not available for this merchant", body = Envelope<ErrorResult>),
    )
)]
pub async fn wap_pay(
    State(state): State<AppState>,
    authed: Authed,
    body: JsonObject,
) -> RestResult<PayResult> {
    let route = (PaymentMethod::Alipay, OrderKind::Wap);
    pay(&state, &authed.merchant, route, &body).await
}

#[utoipa::path(
    post,
    path = "/api/v1/pay/alipay/web-pay",
    tag = "pay",
    request_body = PayRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Send the buyer's PC browser to `payInfo`", body = Envelope<PayResult>),
        (status = 400, description = "10005: a field is missing or malformed (the message names it)", body = Envelope<ErrorResult>),
        (status = 401, description = "90000: missing, malformed, expired or invalid token", body = Envelope<ErrorResult>),
        (status = 409, description = "20031: Alipay is not available for this merchant", body = Envelope<ErrorResult>),
    )
)]
pub async fn web_pay(
    State(state): State<AppState>,
    authed: Authed,
    body: JsonObject,
) -> RestResult<PayResult> {
    let route = (PaymentMethod::Alipay, OrderKind::Web);
    pay(&state, &authed.merchant, route, &body).await
}

#[utoipa::path(
    post,
    path = "/api/v1/pay/weixin/active-pay",
    tag = "pay",
    request_body = PayRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Show `payInfo` (`weixin://wxpay/bizpayurl?…`) as a QR code; the buyer scans it with WeChat. No returnURL: the buyer pays on their phone", body = Envelope<PayResult>),
        (status = 400, description = "10005: a field is missing or malformed (the message names it)", body = Envelope<ErrorResult>),
        (status = 401, description = "90000: missing, malformed, expired or invalid token", body = Envelope<ErrorResult>),
        (status = 409, description = "20031: WeChat Pay is not available for this merchant", body = Envelope<ErrorResult>),
    )
)]
pub async fn weixin_active_pay(
    State(state): State<AppState>,
    authed: Authed,
    body: JsonObject,
) -> RestResult<PayResult> {
    let route = (PaymentMethod::WeChatPay, OrderKind::Qr);
    pay(&state, &authed.merchant, route, &body).await
}

#[utoipa::path(
    post,
    path = "/api/v1/pay/weixin/h5-pay",
    tag = "pay",
    request_body = PayRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Send the buyer's mobile browser (outside WeChat) to `payInfo`, WeChat's H5 page; after paying it comes back to returnURL", body = Envelope<PayResult>),
        (status = 400, description = "10005: a field is missing or malformed (the message names it)", body = Envelope<ErrorResult>),
        (status = 401, description = "90000: missing, malformed, expired or invalid token", body = Envelope<ErrorResult>),
        (status = 409, description = "20031: WeChat Pay is not available for this merchant", body = Envelope<ErrorResult>),
    )
)]
pub async fn weixin_h5_pay(
    State(state): State<AppState>,
    authed: Authed,
    body: JsonObject,
) -> RestResult<PayResult> {
    let route = (PaymentMethod::WeChatPay, OrderKind::Wap);
    pay(&state, &authed.merchant, route, &body).await
}

#[utoipa::path(
    post,
    path = "/api/v1/pay/weixin/public-pay",
    tag = "pay",
    request_body = PayRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Open `payInfo` inside WeChat (an Official Account page): WeChat signs the buyer in, the page asks WeChat to pay, then returns to returnURL", body = Envelope<PayResult>),
        (status = 400, description = "10005: a field is missing or malformed (the message names it)", body = Envelope<ErrorResult>),
        (status = 401, description = "90000: missing, malformed, expired or invalid token", body = Envelope<ErrorResult>),
        (status = 409, description = "20031: WeChat Pay (inside WeChat) is not available for this merchant or deployment", body = Envelope<ErrorResult>),
    )
)]
pub async fn weixin_public_pay(
    State(state): State<AppState>,
    authed: Authed,
    body: JsonObject,
) -> RestResult<PayResult> {
    let route = (PaymentMethod::WeChatPay, OrderKind::InWallet);
    pay(&state, &authed.merchant, route, &body).await
}

#[utoipa::path(
    post,
    path = "/api/v1/pay/alipay/inapp-pay",
    tag = "pay",
    request_body = InAppPayRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Hand `paySign` to Alipay's app SDK in the merchant's app; the result comes by callback", body = Envelope<InAppPayResult>),
        (status = 400, description = "10005: a field is missing or malformed (the message names it)", body = Envelope<ErrorResult>),
        (status = 401, description = "90000: missing, malformed, expired or invalid token", body = Envelope<ErrorResult>),
        (status = 409, description = "20031: Alipay is not available for this merchant", body = Envelope<ErrorResult>),
    )
)]
pub async fn alipay_in_app_pay(
    State(state): State<AppState>,
    authed: Authed,
    body: JsonObject,
) -> RestResult<InAppPayResult> {
    // OTT Pay marks userId required without saying what it is: checked if sent, kept nowhere.
    body.optional("userId", 64)?;
    let (started, params) =
        pay_in_app(&state, &authed.merchant, PaymentMethod::Alipay, &body).await?;
    let pay_sign: serde_json::Map<String, serde_json::Value> = params
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    ok(InAppPayResult {
        pay_sign: serde_json::Value::Object(pay_sign).to_string(),
        amount: started.order.money.major_plain(),
        payment_id: started.attempt.id.to_string(),
        merchant_id: authed.merchant.id.to_string(),
    })
}

#[utoipa::path(
    post,
    path = "/api/v1/pay/unionpay/inapp-secure-pay",
    tag = "pay",
    request_body = PayRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Hand `tn` to UnionPay's app SDK in the merchant's app (no returnURL); the result comes by callback", body = Envelope<SecurePayResult>),
        (status = 400, description = "10005: a field is missing or malformed (the message names it)", body = Envelope<ErrorResult>),
        (status = 401, description = "90000: missing, malformed, expired or invalid token", body = Envelope<ErrorResult>),
        (status = 409, description = "20031: UnionPay is not available for this merchant", body = Envelope<ErrorResult>),
        (status = 502, description = "10200: UnionPay did not give a transaction number", body = Envelope<ErrorResult>),
    )
)]
pub async fn unionpay_in_app_pay(
    State(state): State<AppState>,
    authed: Authed,
    body: JsonObject,
) -> RestResult<SecurePayResult> {
    let (started, params) =
        pay_in_app(&state, &authed.merchant, PaymentMethod::UnionPay, &body).await?;
    let tn = params
        .into_iter()
        .find_map(|(k, v)| (k == "tn").then_some(v))
        .ok_or_else(|| no_start("a transaction number"))?;
    ok(SecurePayResult {
        payment_id: started.attempt.id.to_string(),
        encoding: "UTF-8".into(),
        merchant_id: authed.merchant.id.to_string(),
        tn,
        amount: started.order.money.amount.to_string(),
    })
}

fn status_result(v: &PaymentView) -> PaymentStatusResult {
    let paid = if v.attempt.status == AttemptStatus::Paid {
        v.attempt.money.amount.minor()
    } else {
        0
    };
    let refunded = v.refunded();
    PaymentStatusResult {
        payment_id: v.attempt.id.to_string(),
        merchant_id: v.order.merchant_id.to_string(),
        reference: v.order.reference.as_ref().map(ToString::to_string),
        total_amount: v.attempt.money.amount.to_string(),
        receipt_amount: paid.saturating_sub(refunded).to_string(),
        pay_amount: paid.to_string(),
        refund_amount: refunded.to_string(),
        currency: v.attempt.money.currency.code().into(),
        payment_status: v.status.code().into(),
        state_code: v.status.state_code().into(),
        payment_method: v.attempt.method.code().into(),
        biz_pay_order_id: v.attempt.bizpay_order_id.clone(),
        trade_time: v.trade_time().beijing_java(),
        remark: v.order.remarks.clone(),
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/payment/status-query",
    tag = "payment",
    request_body = StatusQueryRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The payment's status, refunds included (any kind of payment)", body = Envelope<PaymentStatusResult>),
        (status = 400, description = "10005: paymentId missing or malformed", body = Envelope<ErrorResult>),
        (status = 401, description = "90000: missing, malformed, expired or invalid token", body = Envelope<ErrorResult>),
        (status = 404, description = "20019: no such payment for this merchant", body = Envelope<ErrorResult>),
    )
)]
pub async fn status_query(
    State(state): State<AppState>,
    authed: Authed,
    body: JsonObject,
) -> RestResult<PaymentStatusResult> {
    let id = body.required("paymentId", 64)?;
    state.note_call(&authed.merchant.id, "REST status-query", Some(&id));
    let view = state
        .service
        .payment(&authed.merchant.id, &id)
        .await?
        .ok_or_else(|| RestError::not_found("payment not found"))?;
    ok(status_result(&state.as_queried(view)))
}

#[utoipa::path(
    post,
    path = "/api/v1/payment/status-query-by-reference",
    tag = "payment",
    request_body = StatusQueryByReferenceRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The status of the payment with this merchant reference", body = Envelope<PaymentStatusResult>),
        (status = 400, description = "10005: reference missing or malformed", body = Envelope<ErrorResult>),
        (status = 401, description = "90000: missing, malformed, expired or invalid token", body = Envelope<ErrorResult>),
        (status = 404, description = "20019: no payment with this reference for this merchant", body = Envelope<ErrorResult>),
    )
)]
pub async fn status_query_by_reference(
    State(state): State<AppState>,
    authed: Authed,
    body: JsonObject,
) -> RestResult<PaymentStatusResult> {
    // As long as a remark may be: a remark can stand for the reference (docs/rest.md).
    let reference = body.required("reference", 128)?;
    state.note_call(
        &authed.merchant.id,
        "REST status-query-by-reference",
        Some(&reference),
    );
    let view = state
        .service
        .payment_by_reference(&authed.merchant.id, &reference)
        .await?
        .ok_or_else(|| RestError::not_found("payment not found"))?;
    ok(status_result(&state.as_queried(view)))
}

#[utoipa::path(
    post,
    path = "/api/v1/pay/refund",
    tag = "refund",
    request_body = RefundRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Refunded (partial refunds allowed; their sum never exceeds what was paid)", body = Envelope<RefundResult>),
        (status = 400, description = "10005: a field is missing or malformed (the message names it)", body = Envelope<ErrorResult>),
        (status = 401, description = "90000: missing, malformed, expired or invalid token", body = Envelope<ErrorResult>),
        (status = 404, description = "20019: no such payment for this merchant", body = Envelope<ErrorResult>),
        (status = 409, description = "20020: not paid; 20014: more than remains; 20041: already fully refunded", body = Envelope<ErrorResult>),
        (status = 502, description = "10200: the payment channel refused the refund", body = Envelope<ErrorResult>),
    )
)]
pub async fn refund(
    State(state): State<AppState>,
    authed: Authed,
    key: Option<Extension<RequestKey>>,
    body: JsonObject,
) -> RestResult<RefundResult> {
    refund_payment(&state, &authed, key, &body).await
}

/// A refund (`oriPaymentId`, `refundAmount`): what `pay/refund` and `local-card/refund` do.
pub(super) async fn refund_payment(
    state: &AppState,
    authed: &Authed,
    key: Option<Extension<RequestKey>>,
    body: &JsonObject,
) -> RestResult<RefundResult> {
    let ori = body.required("oriPaymentId", 64)?;
    state.note_call(&authed.merchant.id, "REST refund", Some(&ori));
    let amount = Amount::parse(&body.required("refundAmount", 64)?)
        .map_err(|e| RestError::invalid(e.to_string().replacen("amount", "refundAmount", 1)))?;
    let not_found = || RestError::not_found("Original payment not exist");
    let payment_id = AttemptId::parse(&ori).map_err(|_| not_found())?;
    let conflict = |code, message: String| RestError::new(StatusCode::CONFLICT, code, message);
    let refund = state
        .service
        .refund(RefundAsk {
            merchant: authed.merchant.id.clone(),
            payment_id,
            amount,
            merchant_refund_id: None,
            request_key: key.map(|Extension(RequestKey(key))| format!("rest:{key}")),
            requested_by: ottgate_core::RefundedBy::Rest,
            reason: None,
        })
        .await
        .map(|refunded| refunded.refund)
        .map_err(|e| match e {
            RefundError::PaymentNotFound => not_found(),
            RefundError::NotPaid => conflict(
                RestCode::OriginalPaymentNotRefundable,
                "original payment is not paid, so it cannot be refunded".into(),
            ),
            RefundError::Authorised => {
                conflict(RestCode::OriginalPaymentNotRefundable, e.to_string())
            }
            RefundError::Exceeds { refundable: 0 } => conflict(
                RestCode::AlreadyFullyRefunded,
                "original payment is already fully refunded".into(),
            ),
            RefundError::Exceeds { refundable } => conflict(
                RestCode::RefundExceedsPaid,
                format!("refundAmount exceeds the refundable amount ({refundable})"),
            ),
            RefundError::IdReused => conflict(RestCode::Other, e.to_string()),
            RefundError::Refused(reason) => {
                RestError::new(StatusCode::BAD_GATEWAY, RestCode::GatewayError, reason)
            }
            RefundError::Service(e) => RestError::internal(&e),
        })?;
    ok(RefundResult {
        refund_id: refund.id.to_string(),
        ori_payment_id: refund.payment_id.to_string(),
        refund_amount: refund.money.amount.to_string(),
        refund_status: refund.status.code().into(),
        trade_time: refund
            .finished_at
            .unwrap_or(refund.created_at)
            .beijing_java(),
        sale_number: None,
        exchange_rate: None,
    })
}
