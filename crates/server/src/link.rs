//! OTT Pay's link flows: payments started by a plain link or plain JSON, without the
//! envelope's encryption or signature, naming the merchant by its `merCode`
//! (docs/link-flows.md). `GET /h5Pay` (WeChat Pay inside WeChat), `GET /wapPay` and
//! `GET /webPay` (Alipay in a phone or PC browser) send the browser on; `POST /inAppPay`
//! answers what a merchant's app hands the wallet's SDK. Whoever holds a `merCode` can start
//! a payment, so a merchant's link flows are off until it switches them on; the result
//! reaches it by the usual encrypted callback.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use ottgate_channels::{Device, PaymentStart};
use ottgate_core::{
    Amount, Attempt, Currency, Merchant, MerchantRef, Money, Order, OrderKind, PaymentMethod,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use url::Url;

use crate::outbound::check_callback_url;
use crate::service::payments::StartError;
use crate::service::{CreatePaymentError, MerchantRecord, NewPayment};
use crate::state::AppState;

const MAX_URL_CHARS: usize = 255;

/// Why a link was refused: the status and a message naming the field.
#[derive(Debug)]
struct LinkError(StatusCode, String);

impl LinkError {
    fn invalid(message: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, message.into())
    }

    /// A failure of ours: logged with its cause (`what` failed), answered without it.
    fn internal(what: &str, e: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %e, "link flow: {what}");
        Self(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
    }
}

/// A browser link's refusal: plain text a merchant's developer can read.
impl IntoResponse for LinkError {
    fn into_response(self) -> Response {
        (self.0, self.1).into_response()
    }
}

/// The parameters of a link or a plain JSON body, by name (the first of a repeated one).
struct Params(HashMap<String, String>);

impl Params {
    fn from_query(query: Option<&str>) -> Self {
        let mut map = HashMap::new();
        for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            map.entry(k.into_owned()).or_insert_with(|| v.into_owned());
        }
        Self(map)
    }

    /// A JSON object's fields, numbers taken as their text (`"amount": 1` and `"1"` alike).
    fn from_json(body: &[u8]) -> Result<Self, LinkError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|_| LinkError::invalid("the body must be a JSON object"))?;
        let Value::Object(object) = value else {
            return Err(LinkError::invalid("the body must be a JSON object"));
        };
        let mut map = HashMap::new();
        for (k, v) in object {
            let text = match v {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Null => continue,
                _ => {
                    return Err(LinkError::invalid(format!(
                        "{k} must be a string or number"
                    )));
                }
            };
            map.insert(k, text);
        }
        Ok(Self(map))
    }

    fn optional(&self, name: &str, max: usize) -> Result<Option<&str>, LinkError> {
        match self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            Some(v) if v.chars().count() > max => Err(LinkError::invalid(format!(
                "{name} must be at most {max} characters"
            ))),
            other => Ok(other),
        }
    }

    fn required(&self, name: &str, max: usize) -> Result<&str, LinkError> {
        self.optional(name, max)?
            .ok_or_else(|| LinkError::invalid(format!("{name} is required")))
    }
}

/// An absolute http(s) URL, given plainly or (`base64`) as standard Base64 of one.
fn url_param(params: &Params, name: &str, base64: bool) -> Result<Url, LinkError> {
    let raw = params.required(
        name,
        if base64 {
            4 * MAX_URL_CHARS
        } else {
            MAX_URL_CHARS
        },
    )?;
    let text = if base64 {
        // Lenient: a plain URL where Base64 is documented is taken as it is.
        let engine = base64::engine::general_purpose::STANDARD;
        match engine.decode(raw.replace(' ', "+")) {
            Ok(bytes) => String::from_utf8(bytes)
                .map_err(|_| LinkError::invalid(format!("{name} is not Base64 of a URL")))?,
            Err(_) if raw.starts_with("http") => raw.to_owned(),
            Err(_) => return Err(LinkError::invalid(format!("{name} is not Base64 of a URL"))),
        }
    } else {
        raw.to_owned()
    };
    Url::parse(&text)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .filter(|u| u.as_str().len() <= MAX_URL_CHARS)
        .ok_or_else(|| LinkError::invalid(format!("{name} must be an absolute http(s) URL")))
}

fn callback_param(
    state: &AppState,
    params: &Params,
    name: &str,
    base64: bool,
) -> Result<Url, LinkError> {
    let url = url_param(params, name, base64)?;
    check_callback_url(&url, state.service.settings.allow_private_callbacks)
        .map_err(|e| LinkError::invalid(format!("{name} {e}")))?;
    Ok(url)
}

/// The merchant `merCode` names, if it has switched its link flows on.
async fn merchant_of(state: &AppState, params: &Params) -> Result<MerchantRecord, LinkError> {
    let code = params.required("merCode", 64)?;
    state
        .service
        .merchant_for_link(code)
        .await
        .map_err(|e| LinkError::internal("merchant lookup failed", &e))?
        .ok_or_else(|| {
            LinkError(
                StatusCode::FORBIDDEN,
                "merCode: no merchant with link flows switched on has this code".into(),
            )
        })
}

/// A link's `amount`: in the currency's units (`10`, `10.5`, `10.50`), as the links' one
/// known integration sends it (docs/link-flows.md).
fn major_amount(params: &Params, currency: Currency) -> Result<Amount, LinkError> {
    let raw = params.required("amount", 16)?;
    Money::parse_major(raw, currency)
        .map(|m| m.amount)
        .filter(|a| a.minor() > 0)
        .ok_or_else(|| {
            LinkError::invalid(format!(
                "amount must be a positive amount in {} with at most two decimals, e.g. 10.50",
                currency.code()
            ))
        })
}

fn reference(params: &Params) -> Result<Option<MerchantRef>, LinkError> {
    params
        .optional("orderId", 64)?
        .map(MerchantRef::parse)
        .transpose()
        .map_err(|_| {
            LinkError::invalid("orderId must be 1 to 64 printable ASCII characters without spaces")
        })
}

/// Creates the payment, or finds it again when the same link is opened twice (a reload):
/// the same `orderId`, kind, method and amount, still payable.
async fn create_or_resume(
    state: &AppState,
    merchant: &Merchant,
    new: NewPayment,
) -> Result<(Order, Attempt), LinkError> {
    let internal = |e: &dyn std::fmt::Display| LinkError::internal("payment not created", e);
    let (kind, method, amount, reference) =
        (new.kind, new.method, new.amount, new.reference.clone());
    match state.service.create_payment(merchant, new).await {
        Ok(created) => Ok(created),
        Err(CreatePaymentError::ReferenceUsed) => {
            let used = || {
                LinkError(
                    StatusCode::CONFLICT,
                    "orderId has already been used for another payment".into(),
                )
            };
            let reference = reference.ok_or_else(used)?;
            let order = state
                .service
                .order_by_reference(&merchant.id, &reference)
                .await
                .map_err(|e| internal(&e))?
                .filter(|o| o.kind == kind && o.money.amount == amount)
                .filter(|o| o.check_payable(state.service.clock.now()).is_ok())
                .ok_or_else(used)?;
            let attempt = state
                .service
                .attempts_of(&order.id)
                .await
                .map_err(|e| internal(&e))?
                .into_iter()
                .find(|a| a.method == method)
                .ok_or_else(used)?;
            Ok((order, attempt))
        }
        Err(CreatePaymentError::Service(e)) => Err(internal(&e)),
    }
}

fn unavailable(
    state: &AppState,
    merchant: &Merchant,
    method: PaymentMethod,
    kind: OrderKind,
) -> Result<(), LinkError> {
    match state.service.unavailable(merchant, method, kind) {
        Some(reason) => Err(LinkError(StatusCode::CONFLICT, reason)),
        None => Ok(()),
    }
}

async fn open_wallet(
    state: &AppState,
    order: &Order,
    merchant: &Merchant,
    attempt: &Attempt,
    device: Device,
) -> Result<PaymentStart, LinkError> {
    state
        .service
        .open_wallet(order, merchant, attempt, device)
        .await
        .map_err(|e| match e {
            StartError::Service(e) => LinkError::internal("wallet not opened", &e),
            other => LinkError(
                StatusCode::BAD_GATEWAY,
                format!("the payment channel failed: {other}"),
            ),
        })
}

/// `GET /h5Pay?merCode=&orderId=&operId=&amount=&newURL=`: WeChat Pay inside WeChat's own
/// browser. The browser goes on to our in-WeChat page; afterwards it comes back to `newURL`
/// with `amount`, `orderID`, `tranID`, `status` and ottgate's `sign`.
pub async fn h5_pay(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    h5_pay_inner(&state, &Params::from_query(query.as_deref()))
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn h5_pay_inner(state: &AppState, params: &Params) -> Result<Response, LinkError> {
    let record = merchant_of(state, params).await?;
    let merchant = &record.merchant;
    let amount = major_amount(params, merchant.default_currency())?;
    let new_url = url_param(params, "newURL", false)?;
    let reference = reference(params)?;
    // h5Pay names no callback URL: the merchant's link callback is where its result goes.
    let callback_url = record
        .link
        .callback_url
        .as_deref()
        .and_then(|u| Url::parse(u).ok())
        .ok_or_else(|| {
            LinkError(
                StatusCode::CONFLICT,
                "h5Pay needs the merchant's link callback URL (ottgate merchant link-flows --callback-url)".into(),
            )
        })?;
    let (method, kind) = (PaymentMethod::WeChatPay, OrderKind::H5Link);
    unavailable(state, merchant, method, kind)?;
    let new = NewPayment {
        kind,
        method,
        amount,
        currency: None,
        callback_url,
        return_url: Some(new_url),
        remarks: None,
        reference,
        sale_num: None,
    };
    let (order, attempt) = create_or_resume(state, merchant, new).await?;
    tracing::info!(payment_id = %attempt.id, merchant_id = %merchant.id, kind = kind.code(), "link payment created");
    Ok(Redirect::to(state.service.in_wallet_url(&order.token).as_str()).into_response())
}

/// `GET /wapPay?merCode=&merchantId=&orderId=&operId=&amount=&returnURL=&notifyURL=`
/// (the URLs Base64): Alipay in a phone browser.
pub async fn wap_pay(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    alipay_link(
        &state,
        &Params::from_query(query.as_deref()),
        OrderKind::Wap,
    )
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

/// `GET /webPay?…`: as `/wapPay`, plus `submit_type` and `remarks`; Alipay in a PC browser.
pub async fn web_pay(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    alipay_link(
        &state,
        &Params::from_query(query.as_deref()),
        OrderKind::Web,
    )
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

async fn alipay_link(
    state: &AppState,
    params: &Params,
    kind: OrderKind,
) -> Result<Response, LinkError> {
    let record = merchant_of(state, params).await?;
    let merchant = &record.merchant;
    if let Some(named) = params.optional("merchantId", 32)?
        && named != merchant.id.as_str()
    {
        return Err(LinkError::invalid(
            "merchantId is not the merchant of this merCode",
        ));
    }
    let amount = major_amount(params, merchant.default_currency())?;
    let return_url = url_param(params, "returnURL", true)?;
    let callback_url = callback_param(state, params, "notifyURL", true)?;
    let new = NewPayment {
        kind,
        method: PaymentMethod::Alipay,
        amount,
        currency: None,
        callback_url,
        return_url: Some(return_url),
        remarks: params.optional("remarks", 128)?.map(str::to_owned),
        reference: reference(params)?,
        sale_num: None,
    };
    unavailable(state, merchant, new.method, kind)?;
    let (order, attempt) = create_or_resume(state, merchant, new).await?;
    let device = if kind == OrderKind::Web {
        Device::Desktop
    } else {
        Device::Mobile
    };
    let start = open_wallet(state, &order, merchant, &attempt, device).await?;
    let to = start.redirect_url().ok_or_else(|| {
        LinkError(
            StatusCode::BAD_GATEWAY,
            "Alipay gave no payment page".into(),
        )
    })?;
    tracing::info!(payment_id = %attempt.id, merchant_id = %merchant.id, kind = kind.code(), "link payment created");
    Ok(Redirect::to(to.as_str()).into_response())
}

/// `POST /inAppPay` with plain JSON: `merCode` (or `merchant_id`), `amount` (cents),
/// `bizType` (`WECHATPAY`, `ALIPAYONLINE`, `APUSDONLINE`), `call_back_url`, `userId`.
/// Answers `tradeNo` and what the merchant's app hands the wallet's SDK.
pub async fn in_app_pay(State(state): State<AppState>, body: Bytes) -> Response {
    match in_app_pay_inner(&state, &body).await {
        Ok(answer) => Json(answer).into_response(),
        Err(LinkError(status, message)) => (
            status,
            Json(json!({"rsp_code": "FAIL", "rsp_msg": message})),
        )
            .into_response(),
    }
}

async fn in_app_pay_inner(state: &AppState, body: &[u8]) -> Result<Value, LinkError> {
    let params = Params::from_json(body)?;
    // Integrations leave merCode out and name the merchant by merchant_id; either must be
    // a merchant that switched its link flows on.
    let record = match params.optional("merCode", 64)? {
        Some(_) => merchant_of(state, &params).await?,
        None => {
            let id = params
                .required("merchant_id", 32)
                .map_err(|_| LinkError::invalid("merCode or merchant_id is required"))?;
            let id = ottgate_core::MerchantId::parse(id)
                .map_err(|_| LinkError::invalid("merchant_id is not a merchant id"))?;
            state
                .service
                .merchant_record(&id)
                .await
                .map_err(|e| LinkError::internal("merchant lookup failed", &e))?
                .filter(|r| r.link.enabled)
                .ok_or_else(|| {
                    LinkError(
                        StatusCode::FORBIDDEN,
                        "merchant_id: no merchant with link flows switched on has this id".into(),
                    )
                })?
        }
    };
    let merchant = &record.merchant;
    if let Some(named) = params.optional("merchant_id", 32)?
        && named != merchant.id.as_str()
    {
        return Err(LinkError::invalid(
            "merchant_id is not the merchant of this merCode",
        ));
    }
    params.optional("userId", 64)?;
    let (method, currency) = match params.required("bizType", 16)? {
        "WECHATPAY" => (PaymentMethod::WeChatPay, None),
        "ALIPAYONLINE" => (PaymentMethod::Alipay, None),
        "APUSDONLINE" => (PaymentMethod::Alipay, Some(Currency::Usd)),
        _ => {
            return Err(LinkError::invalid(
                "bizType must be WECHATPAY, ALIPAYONLINE or APUSDONLINE",
            ));
        }
    };
    if let Some(c) = currency
        && !merchant.currencies.contains(&c)
    {
        return Err(LinkError::invalid(format!(
            "bizType APUSDONLINE needs {} among the merchant's currencies",
            c.code()
        )));
    }
    let amount = Amount::parse(params.required("amount", 16)?)
        .ok()
        .filter(|a| a.minor() > 0)
        .ok_or_else(|| LinkError::invalid("amount must be a positive whole number of cents"))?;
    let callback_url = callback_param(state, &params, "call_back_url", false)?;
    let kind = OrderKind::App;
    unavailable(state, merchant, method, kind)?;
    let new = NewPayment {
        kind,
        method,
        amount,
        currency,
        callback_url,
        return_url: None,
        remarks: None,
        reference: reference(&params)?,
        sale_num: None,
    };
    let (order, attempt) = create_or_resume(state, merchant, new).await?;
    let start = open_wallet(state, &order, merchant, &attempt, Device::Mobile).await?;
    let sdk = start.app_params().ok_or_else(|| {
        LinkError(
            StatusCode::BAD_GATEWAY,
            "the payment channel gave nothing for the app".into(),
        )
    })?;
    let mut answer = json!({
        "rsp_code": "SUCCESS",
        "tradeNo": attempt.id.to_string(),
        "merchant_id": merchant.id.as_str(),
        "amount": order.money.amount.to_string(),
        "currency": order.money.currency.code(),
    });
    if method == PaymentMethod::Alipay {
        let pay_sign: serde_json::Map<String, Value> = sdk
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        answer["paySign"] = Value::String(Value::Object(pay_sign).to_string());
    } else {
        for (k, v) in sdk {
            answer[k.as_str()] = Value::String(v.clone());
        }
        answer["prepay_id"] = Value::String(start.channel_order_id.clone().unwrap_or_default());
    }
    tracing::info!(payment_id = %attempt.id, merchant_id = %merchant.id, kind = kind.code(), method = %method, "link payment created");
    Ok(answer)
}
