//! ACTIVEPAY "1.0" and H5PAY "2.0": payments through one wallet that start at once — a QR
//! code the merchant shows the buyer, or WeChat Pay's H5 page in the buyer's phone browser.
//! The merchant names the payment with its own `order_id` (or the gateway assigns one);
//! the same request again replays the first answer, another under the same `order_id` is
//! `ORDER_USED` (docs/envelope.md).

use crate::service::{CreateOutcome, NewOrder, ServiceError};
use ottgate_api::RspCode;
use ottgate_api::direct::{ActivePayRequest, ActivePayResponse, H5PayRequest, H5PayResponse};
use ottgate_api::prepay::to_fields;
use ottgate_channels::{Device, PaymentStart};
use ottgate_core::{
    Amount, Attempt, Currency, Merchant, MerchantRef, Money, Order, OrderKind, PaymentMethod,
};
use ottgate_envelope::Fields;
use url::Url;

use super::error::ProtocolError;
use super::fields::{
    callback_url, currency, optional_merchant, optional_operator, required, text_field, url_field,
};
use crate::service::Signing;
use crate::service::payments::{Buyer, StartError};
use crate::state::AppState;

/// A direct payment that passed every rule.
pub(super) struct Valid {
    pub(super) kind: OrderKind,
    pub(super) method: PaymentMethod,
    /// The merchant's own `order_id`.
    pub(super) reference: Option<MerchantRef>,
    pub(super) money: Money,
    pub(super) tip: u64,
    pub(super) callback_url: Url,
    pub(super) redirect_url: Option<Url>,
    pub(super) remarks: Option<String>,
    /// The buyer as the merchant's own app knows them: (app id, openid) — MAPPPAY's.
    pub(super) payer: Option<(String, String)>,
    pub(super) sale_num: Option<String>,
}

pub(super) fn merchant_order_id(
    value: Option<String>,
) -> Result<Option<MerchantRef>, ProtocolError> {
    value
        .map(|id| MerchantRef::parse(&id))
        .transpose()
        .map_err(|_| {
            ProtocolError::format(
                "order_id must be 1 to 64 printable ASCII characters without spaces",
            )
        })
}

pub(super) fn amount(value: Option<String>) -> Result<Amount, ProtocolError> {
    let raw = value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ProtocolError::invalid("missing required field: amount"))?;
    Amount::parse(&raw).map_err(|e| ProtocolError::format(e.to_string()))
}

/// The currency asked for, or the merchant's default.
fn currency_or_default(
    value: Option<String>,
    merchant: &Merchant,
) -> Result<Currency, ProtocolError> {
    match value.filter(|v| !v.is_empty()) {
        Some(code) => currency(&code, merchant),
        None => Ok(merchant.default_currency()),
    }
}

/// Cents, `0` allowed, never more than the amount it is part of.
pub(super) fn tip(value: Option<String>, amount: Amount) -> Result<u64, ProtocolError> {
    let Some(raw) = value else {
        return Ok(0);
    };
    let bad = || ProtocolError::format("tip must be a whole number of cents, at most the amount");
    let canonical = raw == "0" || (!raw.starts_with('0') && raw.len() <= 11);
    if !canonical || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    raw.parse::<u64>()
        .ok()
        .filter(|t| *t <= amount.minor())
        .ok_or_else(bad)
}

fn validate_active_pay(
    state: &AppState,
    signing: &Signing,
    r: ActivePayRequest,
) -> Result<Valid, ProtocolError> {
    let merchant = &signing.merchant;
    optional_merchant(r.merchant_id, signing)?;
    let reference = merchant_order_id(r.order_id)?;
    optional_operator(r.operator_id, merchant)?;
    let amount = amount(r.amount)?;
    let tip = tip(r.tip, amount)?;
    let biz_type = required(r.biz_type, "biz_type")?;
    let method = match biz_type.to_ascii_uppercase().parse::<PaymentMethod>() {
        Ok(m @ (PaymentMethod::Alipay | PaymentMethod::WeChatPay | PaymentMethod::UnionPay)) => m,
        _ => {
            return Err(ProtocolError::format(
                "biz_type must be ALIPAY, WECHATPAY or UNIONPAY",
            ));
        }
    };
    let callback_url = callback_url(&state.service.settings, r.call_back_url)?;
    let currency = currency_or_default(r.currency_type, merchant)?;
    Ok(Valid {
        kind: OrderKind::ActivePay,
        method,
        reference,
        money: Money::new(amount, currency),
        tip,
        callback_url,
        redirect_url: None,
        remarks: text_field(r.remarks, "remarks")?,
        payer: None,
        sale_num: None,
    })
}

fn validate_h5_pay(
    state: &AppState,
    signing: &Signing,
    r: H5PayRequest,
) -> Result<Valid, ProtocolError> {
    let merchant = &signing.merchant;
    optional_merchant(r.merchant_id, signing)?;
    if r.shop_id.is_some_and(|s| s != merchant.shop_id.as_str()) {
        return Err(ProtocolError::invalid(
            "shop_id is not a shop of this merchant",
        ));
    }
    let reference = merchant_order_id(r.order_id)?;
    optional_operator(r.operator_id, merchant)?;
    let amount = amount(r.amount)?;
    if r.biz_type
        .as_deref()
        .is_some_and(|b| !b.is_empty() && !b.eq_ignore_ascii_case("WECHATPAY"))
    {
        return Err(ProtocolError::format("biz_type must be WECHATPAY"));
    }
    if r.submit_type
        .as_deref()
        .is_some_and(|s| !s.eq_ignore_ascii_case("form"))
    {
        return Err(ProtocolError::format("submit_type must be form"));
    }
    let callback_url = callback_url(&state.service.settings, r.call_back_url)?;
    let redirect_url = match r.redirect_url {
        Some(raw) => Some(url_field(Some(raw), "redirect_url")?),
        None => None,
    };
    let currency = currency_or_default(r.currency_type, merchant)?;
    Ok(Valid {
        kind: OrderKind::H5Pay,
        method: PaymentMethod::WeChatPay,
        reference,
        money: Money::new(amount, currency),
        tip: 0,
        callback_url,
        redirect_url,
        remarks: text_field(r.remarks, "remarks")?,
        payer: None,
        sale_num: None,
    })
}

pub async fn active_pay(
    state: &AppState,
    signing: &Signing,
    fields: &Fields,
    md5: &str,
) -> Result<Fields, ProtocolError> {
    let valid = validate_active_pay(state, signing, ActivePayRequest::read(fields)?)?;
    create(state, signing, valid, md5, |order, attempt, start| {
        let code_url = start.scannable().ok_or_else(|| {
            ProtocolError::new(
                RspCode::Fail,
                "this wallet has no QR code for the merchant to show",
            )
        })?;
        Ok(to_fields(&ActivePayResponse {
            order_id: order.merchant_order_id(&attempt.id),
            merchant_id: order.merchant_id.to_string(),
            code_url,
            biz_type: attempt.method.code().to_owned(),
            amount: order.money.amount.to_string(),
            tip: order.tip.to_string(),
            currency_type: order.money.currency.code().to_owned(),
            bizpay_order_id: None,
            expire_time: order.expires_at.beijing_compact(),
        }))
    })
    .await
}

pub async fn h5_pay(
    state: &AppState,
    signing: &Signing,
    fields: &Fields,
    md5: &str,
) -> Result<Fields, ProtocolError> {
    let valid = validate_h5_pay(state, signing, H5PayRequest::read(fields)?)?;
    create(state, signing, valid, md5, |order, attempt, start| {
        let payinfo = start.redirect_url().ok_or_else(|| {
            ProtocolError::new(RspCode::Fail, "WeChat Pay gave no H5 page for this payment")
        })?;
        Ok(to_fields(&H5PayResponse {
            order_id: order.merchant_order_id(&attempt.id),
            merchant_id: order.merchant_id.to_string(),
            amount: order.money.amount.to_string(),
            payinfo: payinfo.to_string(),
            time_zone_id: state.service.settings.time_zone_id.clone(),
        }))
    })
    .await
}

/// Creates the payment and its attempt (or finds them again, for the same request), asks
/// the wallet to start it, and answers with `answer`; the first answer is kept to replay.
pub(super) async fn create(
    state: &AppState,
    signing: &Signing,
    valid: Valid,
    md5: &str,
    answer: impl Fn(&Order, &Attempt, &PaymentStart) -> Result<Fields, ProtocolError>,
) -> Result<Fields, ProtocolError> {
    let merchant = &signing.merchant;
    if state.service.channel_for(merchant, valid.method).is_err() {
        return Err(ProtocolError::invalid(format!(
            "biz_type {} is not available for this merchant",
            valid.method.code()
        )));
    }
    if let Some(reference) = &valid.reference
        && let Ok(id) = ottgate_core::AttemptId::parse(reference.as_str())
        && state.service.is_payment_of(&merchant.id, &id).await?
    {
        // Looked up later, the id would name two payments (docs/envelope.md).
        return Err(ProtocolError::new(
            RspCode::OrderUsed,
            "order_id is the gateway's id of another of your payments; choose another order_id",
        ));
    }
    let now = state.service.clock.now();
    let ttl = state.service.settings.rest_payment_ttl;
    let order = Order {
        reference: valid.reference.clone(),
        tip: valid.tip,
        redirect_url: valid.redirect_url.map(String::from).unwrap_or_default(),
        remarks: valid.remarks,
        sale_num: valid.sale_num.unwrap_or_default(),
        ..Order::new(
            valid.kind,
            merchant,
            valid.money,
            valid.callback_url.to_string(),
            now,
            ttl,
        )
    };
    let request_md5 = md5.to_ascii_uppercase();
    let created = state
        .service
        .create_order(NewOrder {
            order: order.clone(),
            request_md5: request_md5.clone(),
            // Known once the wallet has answered (set_response_data).
            response_data: String::new(),
            first_attempt: Some(valid.method),
        })
        .await?;
    let (order, attempt) = match created {
        CreateOutcome::Created {
            id,
            attempt: Some(attempt),
        } => {
            tracing::info!(order_id = %id, attempt_id = %attempt.id, merchant_id = %merchant.id, kind = valid.kind.code(), method = %valid.method, amount = %order.money.amount, "direct payment created");
            (Order { id, ..order }, attempt)
        }
        CreateOutcome::Created { attempt: None, .. } => {
            return Err(ProtocolError::internal(&ServiceError::NotFound("attempt")));
        }
        CreateOutcome::Exists {
            request_md5: first,
            response_data,
        } if first == request_md5 => {
            if let Some(replay) = stored_answer(&response_data) {
                tracing::info!(order_id = ?valid.reference.as_ref().map(MerchantRef::as_str), "identical request retried; replaying the first response");
                return Ok(replay);
            }
            // The first request created the payment but never got the wallet's answer
            // (it failed, or is still on its way): ask the wallet again.
            first_payment(state, merchant, valid.reference.as_ref()).await?
        }
        CreateOutcome::Exists { .. } => {
            return Err(ProtocolError::new(
                RspCode::OrderUsed,
                "order_id has already been used for a different order",
            ));
        }
    };
    let device = Device::Mobile;
    let (app, id) = valid.payer.unzip();
    let start = state
        .service
        .open_wallet_for(&order, merchant, &attempt, device, Buyer { id, app })
        .await
        .map_err(|e| match e {
            StartError::Service(e) => ProtocolError::internal(&e),
            other => ProtocolError::new(
                RspCode::Fail,
                format!("the payment could not be started: {other}"),
            ),
        })?;
    let response = answer(&order, &attempt, &start)?;
    let text = serde_json::Value::Object(response.clone()).to_string();
    state.service.record_answer(&order.id, text).await?;
    Ok(response)
}

fn stored_answer(response_data: &str) -> Option<Fields> {
    match serde_json::from_str(response_data).ok()? {
        serde_json::Value::Object(fields) => Some(fields),
        _ => None,
    }
}

/// The payment a merchant created under `reference`, and its attempt.
pub(super) async fn first_payment(
    state: &AppState,
    merchant: &Merchant,
    reference: Option<&MerchantRef>,
) -> Result<(Order, Attempt), ProtocolError> {
    let missing = || ProtocolError::internal(&ServiceError::NotFound("order"));
    let reference = reference.ok_or_else(missing)?;
    let order = state
        .service
        .order_by_reference(&merchant.id, reference)
        .await?
        .ok_or_else(missing)?;
    let attempt = state
        .service
        .first_attempt(&order.id)
        .await?
        .ok_or_else(missing)?;
    Ok((order, attempt))
}
