//! PREPAY_INIT and PREPAY_QUERY: creating and reading checkout orders.

use crate::service::{CreateOutcome, NewOrder, ServiceError};
use ottgate_api::prepay::{
    PaymentAttempt, PrepayInitRequest, PrepayInitResponse, PrepayQueryRequest, PrepayQueryResponse,
    to_fields,
};
use ottgate_core::{Amount, MerchantRef, Money, Order, OrderKind, OrderStatus};
use ottgate_envelope::Fields;
use std::time::Duration;
use url::Url;

use super::error::ProtocolError;
use super::fields::{
    callback_url, currency, must_match_envelope, operator, required, text_field, url_field,
};
use crate::service::Signing;
use crate::state::AppState;
use ottgate_api::RspCode;

/// Longest payment window accepted: 30 days.
pub const MAX_DURATION_SECS: u64 = 30 * 24 * 3600;
/// A PREPAY_INIT request that passed every rule.
struct ValidInit {
    reference: MerchantRef,
    sale_num: String,
    money: Money,
    redirect_url: Url,
    callback_url: Url,
    duration_secs: u64,
    email: Option<String>,
    remarks: Option<String>,
}

fn validate_init(
    state: &AppState,
    signing: &Signing,
    r: PrepayInitRequest,
) -> Result<ValidInit, ProtocolError> {
    let merchant = &signing.merchant;
    must_match_envelope(Some(r.merchant_id), signing)?;
    if required(r.shop_id, "shop_id")? != merchant.shop_id.as_str() {
        return Err(ProtocolError::invalid(
            "shop_id is not a shop of this merchant",
        ));
    }
    operator(r.operator_id, merchant)?;
    let reference =
        MerchantRef::parse(&required(r.prepay_order_id, "prepay_order_id")?).map_err(|_| {
            ProtocolError::format(
                "prepay_order_id must be 1 to 64 printable ASCII characters without spaces",
            )
        })?;
    let sale_num = required(r.sale_num, "sale_num")?;
    if sale_num.len() > 64 || sale_num.chars().any(char::is_control) {
        return Err(ProtocolError::format(
            "sale_num must be at most 64 characters",
        ));
    }
    let amount = r
        .amount
        .ok_or_else(|| ProtocolError::invalid("missing required field: amount"))?;
    let amount = Amount::parse(&amount).map_err(|e| ProtocolError::format(e.to_string()))?;
    let currency = currency(&required(r.currency_type, "currency_type")?, merchant)?;
    if required(r.biz_type, "biz_type")? != "PREPAY" {
        return Err(ProtocolError::format("biz_type must be PREPAY"));
    }
    let redirect_url = url_field(r.redirect_url, "redirect_url")?;
    let callback_url = callback_url(&state.service.settings, r.call_back_url)?;
    let duration = required(r.duration, "duration")?;
    let duration_secs = duration
        .parse::<u64>()
        .ok()
        .filter(|d| {
            duration.bytes().all(|b| b.is_ascii_digit()) && (1..=MAX_DURATION_SECS).contains(d)
        })
        .ok_or_else(|| {
            ProtocolError::format(format!(
                "duration must be a whole number of seconds from 1 to {MAX_DURATION_SECS}"
            ))
        })?;
    let email = text_field(r.email, "email")?;
    if email.as_deref().is_some_and(|e| !e.contains('@')) {
        return Err(ProtocolError::format("email must be an e-mail address"));
    }
    Ok(ValidInit {
        reference,
        sale_num,
        money: Money::new(amount, currency),
        redirect_url,
        callback_url,
        duration_secs,
        email,
        remarks: text_field(r.remarks, "remarks")?,
    })
}

pub async fn init(
    state: &AppState,
    signing: &Signing,
    fields: &Fields,
    md5: &str,
) -> Result<Fields, ProtocolError> {
    let valid = validate_init(state, signing, PrepayInitRequest::read(fields)?)?;
    let now = state.service.clock.now();
    let merchant = &signing.merchant;
    let order = Order {
        reference: Some(valid.reference.clone()),
        sale_num: valid.sale_num,
        redirect_url: valid.redirect_url.to_string(),
        email: valid.email,
        remarks: valid.remarks,
        ..Order::new(
            OrderKind::Checkout,
            merchant,
            valid.money,
            valid.callback_url.to_string(),
            now,
            Duration::from_secs(valid.duration_secs),
        )
    };
    let response = to_fields(&PrepayInitResponse {
        prepay_order_id: valid.reference.to_string(),
        payinfo: state.service.checkout_url(&order.token).to_string(),
        expire_time: order.expires_at.beijing_compact(),
    });
    let response_text = serde_json::Value::Object(response.clone()).to_string();
    let request_md5 = md5.to_ascii_uppercase();
    let created = state
        .service
        .create_order(NewOrder {
            order: order.clone(),
            request_md5: request_md5.clone(),
            response_data: response_text,
            first_attempt: None,
        })
        .await?;
    match created {
        CreateOutcome::Created { id, .. } => {
            tracing::info!(order_id = %id, merchant_id = %merchant.id, prepay_order_id = %valid.reference, amount = %order.money.amount, currency = %order.money.currency, "checkout order created");
            Ok(response)
        }
        CreateOutcome::Exists {
            request_md5: first_md5,
            response_data,
        } if first_md5 == request_md5 => {
            tracing::info!(prepay_order_id = %valid.reference, "identical PREPAY_INIT retried; replaying the first response");
            match serde_json::from_str(&response_data) {
                Ok(serde_json::Value::Object(fields)) => Ok(fields),
                _ => Err(ProtocolError::internal(&ServiceError::Corrupt(
                    "stored response",
                ))),
            }
        }
        CreateOutcome::Exists { .. } => Err(ProtocolError::new(
            RspCode::OrderUsed,
            "prepay_order_id has already been used for a different order",
        )),
    }
}

pub async fn query(
    state: &AppState,
    signing: &Signing,
    fields: &Fields,
) -> Result<Fields, ProtocolError> {
    let r = PrepayQueryRequest::read(fields)?;
    must_match_envelope(Some(r.merchant_id), signing)?;
    let raw_ref = required(r.prepay_order_id, "prepay_order_id")?;
    let not_found = || ProtocolError::invalid("prepay_order_id not found");
    let reference = MerchantRef::parse(&raw_ref).map_err(|_| not_found())?;
    let merchant = &signing.merchant;
    let (order, attempts) = state
        .service
        .checkout_order(&merchant.id, &reference)
        .await?
        .ok_or_else(not_found)?;
    let now = state.service.clock.now();
    if let Some(asked) = &r.order_id
        && !attempts.iter().any(|a| a.id.as_str() == asked)
    {
        return Err(ProtocolError::invalid(
            "order_id does not belong to this prepay_order_id",
        ));
    }
    let order_id = order
        .paid_attempt
        .clone()
        .or_else(|| attempts.last().map(|a| a.id.clone()));
    let response = PrepayQueryResponse {
        rsp_code: RspCode::Success.as_str().into(),
        rsp_msg: RspCode::Success.default_message().into(),
        merchant_id: merchant.id.to_string(),
        merchant_name: merchant.name.as_str().into(),
        amount: order.money.amount.to_string(),
        tip: "0".into(),
        shop_id: order.shop_id.to_string(),
        operator_id: order.operator_id.to_string(),
        status: if state.query_lags(&order.id) {
            OrderStatus::Processing
        } else {
            order.status_at(now)
        }
        .prepay_query_status()
        .into(),
        call_back_url: order.callback_url.clone(),
        redirect_url: order.redirect_url.clone(),
        biz_type: "PREPAY".into(),
        prepay_order_id: order.reference_str().to_owned(),
        bizpay_order_id: order.paid_attempt.as_ref().and_then(|paid| {
            attempts
                .iter()
                .find(|a| &a.id == paid)
                .and_then(|a| a.bizpay_order_id.clone())
        }),
        order_id: order_id.map(|id| id.to_string()),
        sale_num: order.sale_num.clone(),
        email: order.email.clone(),
        remarks: order.remarks.clone(),
        currency_type: order.money.currency.code().into(),
        duration: order.duration_secs.to_string(),
        create_time: order.created_at.beijing_compact(),
        expire_time: order.expires_at.beijing_compact(),
        payments_methods: attempts
            .iter()
            .map(|a| PaymentAttempt {
                method: a.method.code().into(),
                order_id: a.id.to_string(),
                status: a.status.code().into(),
                amount: a.money.amount.to_string(),
                create_time: a.created_at.beijing_compact(),
            })
            .collect(),
    };
    Ok(to_fields(&response))
}
