//! `PASSIVEPAY` "1.0": the merchant's till scans the code the buyer's wallet shows
//! (docs/instore.md). The answer is synchronous — `order_status` `success`, `failure` with
//! the wallet's reason, or `PROCESSING` when the wallet has not decided within
//! `passive_pay_wait_ms` — and the gateway follows an undecided payment to its end on the
//! wallet's own rule, so `STATUS_QUERY` soon gives the final result.

use ottgate_api::FieldReader;
use ottgate_core::{Money, Order, OrderKind, PaymentMethod};
use ottgate_envelope::Fields;
use serde_json::{Value, json};

use super::direct::{amount, first_payment, merchant_order_id, tip};
use super::error::ProtocolError;
use super::fields::{
    callback_url, either, optional_merchant, optional_operator, required, text_field,
};
use crate::service::instore::BarcodeStatus;
use crate::service::{CreateOutcome, NewOrder, Signing};
use crate::state::AppState;
use ottgate_api::RspCode;

/// How long a barcode order stays open: far longer than any wallet's rule, so a payment
/// being undone is never closed under it.
const BARCODE_ORDER_TTL: std::time::Duration = std::time::Duration::from_secs(86_400);

/// The wallet a buyer's code belongs to, by its prefix (docs/instore.md): WeChat Pay 18
/// digits from `10` to `15`, Alipay 16 to 24 digits from `25` to `30`, UnionPay from `62`.
pub fn wallet_of_code(code: &str) -> Option<PaymentMethod> {
    let two = code.get(..2)?.parse::<u8>().ok()?;
    match (two, code.len()) {
        (10..=15, 18) => Some(PaymentMethod::WeChatPay),
        (25..=30, 16..=24) => Some(PaymentMethod::Alipay),
        (62, _) => Some(PaymentMethod::UnionPay),
        _ => None,
    }
}

/// `auth_code`: the 10 to 24 digits a wallet shows.
fn auth_code(value: Option<String>) -> Result<String, ProtocolError> {
    let code = required(value, "auth_code")?;
    let code = code.trim().to_owned();
    if !(10..=24).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ProtocolError::format(
            "auth_code must be the 10 to 24 digits the buyer's wallet shows",
        ));
    }
    Ok(code)
}

fn biz_type(value: Option<String>, code: &str) -> Result<PaymentMethod, ProtocolError> {
    match value.filter(|v| !v.is_empty()) {
        Some(b) => match b.to_ascii_uppercase().as_str() {
            "ALIPAY" => Ok(PaymentMethod::Alipay),
            "WECHATPAY" => Ok(PaymentMethod::WeChatPay),
            "UNIONPAY" => Ok(PaymentMethod::UnionPay),
            _ => Err(ProtocolError::format(
                "biz_type must be ALIPAY, WECHATPAY or UNIONPAY",
            )),
        },
        None => wallet_of_code(code).ok_or_else(|| {
            ProtocolError::format(
                "biz_type is required: auth_code's prefix names no wallet (WeChat Pay 10-15, \
                 Alipay 25-30, UnionPay 62)",
            )
        }),
    }
}

pub async fn passive_pay(
    state: &AppState,
    signing: &Signing,
    fields: &Fields,
    md5: &str,
) -> Result<Fields, ProtocolError> {
    let r = FieldReader(fields);
    let merchant = &signing.merchant;
    optional_merchant(r.optional_nonempty("merchant_id")?, signing)?;
    let reference = merchant_order_id(r.optional_nonempty("order_id")?)?;
    optional_operator(r.optional("operator_id")?, merchant)?;
    let amount = amount(r.optional("amount")?)?;
    let tip = tip(either(&r, ["Tip", "tip"])?, amount)?;
    let code = auth_code(r.optional("auth_code")?)?;
    let method = biz_type(r.optional("biz_type")?, &code)?;
    let sale_num = text_field(r.optional("sale_num")?, "sale_num")?;
    let terminal = text_field(r.optional("terminal_no")?, "terminal_no")?;
    let callback = match r.optional_nonempty("call_back_url")? {
        Some(url) => callback_url(&state.service.settings, Some(url))?.to_string(),
        None => String::new(),
    };
    if !merchant.offers(method) || state.service.channel_for(merchant, method).is_err() {
        return Err(ProtocolError::invalid(format!(
            "biz_type {} is not available for this merchant",
            method.code()
        )));
    }
    let takes_barcodes = state
        .service
        .channels
        .for_method(method)
        .is_some_and(|c| c.barcode_rules().is_some());
    if !takes_barcodes {
        return Err(ProtocolError::invalid(format!(
            "biz_type {}: this gateway's {} connector takes no barcode payments yet",
            method.code(),
            method.code()
        )));
    }
    let now = state.service.clock.now();
    let order = Order {
        reference,
        tip,
        sale_num: sale_num.unwrap_or_default(),
        terminal,
        ..Order::new(
            OrderKind::Barcode,
            merchant,
            Money::new(amount, merchant.default_currency()),
            callback,
            now,
            BARCODE_ORDER_TTL,
        )
    };
    let request_md5 = md5.to_ascii_uppercase();
    let created = state
        .service
        .create_order(NewOrder {
            order: order.clone(),
            request_md5: request_md5.clone(),
            response_data: String::new(),
            first_attempt: Some(method),
        })
        .await?;
    let (order, attempt) = match created {
        CreateOutcome::Created {
            id,
            attempt: Some(attempt),
        } => {
            tracing::info!(order_id = %id, attempt_id = %attempt.id, merchant_id = %merchant.id, method = %method, amount = %order.money.amount, terminal = ?order.terminal, "barcode payment created");
            (Order { id, ..order }, attempt)
        }
        CreateOutcome::Created { attempt: None, .. } => {
            return Err(ProtocolError::internal(
                &crate::service::ServiceError::NotFound("attempt"),
            ));
        }
        CreateOutcome::Exists {
            request_md5: first,
            response_data,
        } if first == request_md5 => {
            if let Ok(Value::Object(replay)) = serde_json::from_str::<Value>(&response_data) {
                tracing::info!("identical PASSIVEPAY retried; replaying its final answer");
                return Ok(replay);
            }
            // The first is still being decided (or died before asking): never a second
            // charge — the job, once written, is what asks the wallet.
            first_payment(state, merchant, order.reference.as_ref()).await?
        }
        CreateOutcome::Exists { .. } => {
            return Err(ProtocolError::new(
                RspCode::OrderUsed,
                "order_id has already been used for a different order",
            ));
        }
    };
    let charged = state
        .service
        .charge_barcode(&order, merchant, &attempt, &code)
        .await?;
    let mut status = charged.status;
    if status == BarcodeStatus::Processing {
        status = state
            .service
            .await_barcode(&attempt, state.service.settings.passive_pay_wait)
            .await?;
    }
    let attempt = state.service.existing_attempt(&attempt.id).await?;
    let (order_status, reason, buyer) = match &status {
        BarcodeStatus::Paid { buyer } => ("success", None, buyer.clone()),
        BarcodeStatus::Failed { reason } => ("failure", Some(reason.clone()), None),
        BarcodeStatus::Processing => ("PROCESSING", None, None),
    };
    let mut answer = json!({
        "order_status": order_status,
        "order_id": order.merchant_order_id(&attempt.id),
        "merchant_id": merchant.id.as_str(),
        "amount": order.money.amount.to_string(),
        "tip": order.tip.to_string(),
        "currency_type": order.money.currency.code(),
        "biz_type": method.code(),
        "trade_time": attempt.settled_at.unwrap_or(attempt.created_at).beijing_compact(),
        "sale_num": order.sale_num,
    });
    let mut put = |name: &str, value: Option<String>| {
        if let Some(v) = value {
            answer[name] = Value::String(v);
        }
    };
    put("buyer_login_id", buyer);
    put("bizpay_order_id", attempt.bizpay_order_id.clone());
    put("terminal_no", order.terminal.clone());
    put("reason", reason);
    let Value::Object(answer) = answer else {
        return Err(ProtocolError::internal(
            &crate::service::ServiceError::Corrupt("answer"),
        ));
    };
    if order_status != "PROCESSING" {
        // A final answer is what a repeat of this request gets; written together with the
        // job's close (one group commit on SQLite).
        let text = Value::Object(answer.clone()).to_string();
        let (recorded, closed) = tokio::join!(
            state.service.record_answer(&order.id, text),
            state.service.close_barcode(&attempt.id, &status),
        );
        recorded?;
        closed?;
    }
    if let Some(answered) = charged.wallet_answered {
        state
            .service
            .metrics
            .barcode_answer
            .observe(answered.elapsed().as_secs_f64());
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_names_its_wallet_by_its_prefix() {
        assert_eq!(
            wallet_of_code("134567890123456789"),
            Some(PaymentMethod::WeChatPay)
        );
        assert_eq!(
            wallet_of_code("284567890123456789"),
            Some(PaymentMethod::Alipay)
        );
        assert_eq!(
            wallet_of_code("6291234567890123456"),
            Some(PaymentMethod::UnionPay)
        );
        assert_eq!(
            wallet_of_code("1345678901234567"),
            None,
            "WeChat codes are 18 digits"
        );
        assert_eq!(wallet_of_code("994567890123456789"), None);
        assert!(auth_code(Some("12ab".into())).is_err());
        assert!(auth_code(Some("123456789".into())).is_err());
        assert_eq!(
            auth_code(Some(" 134567890123456789 ".into())).unwrap(),
            "134567890123456789"
        );
    }
}
