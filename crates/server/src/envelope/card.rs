//! Card actions: `CC_PURCHASE` and `CC_PREAUTH` "2.0" (on `/processV3` as on `/processV2`)
//! and `CC_QUERYPAY` "2.0" (docs/cards.md). In sandbox mode the gateway's test acquirer serves
//! them: `codeUrl` is its hosted card page, where the published test cards approve,
//! decline or ask for 3-D Secure. Without a card acquirer (live mode) they are refused
//! with a message that says so. No card number is ever stored or logged.

use ottgate_api::RspCode;
use ottgate_api::card::{CcPurchaseRequest, CcPurchaseResponse, CcQueryPayResponse};
use ottgate_api::prepay::to_fields;
use ottgate_core::{
    Amount, Currency, MerchantRef, Money, OrderKind, PaymentMethod, PaymentStatus, Timestamp,
};
use ottgate_envelope::Fields;
use std::time::Duration;

use super::direct::{Valid, create};
use super::error::ProtocolError;
use super::fields::{optional_merchant, optional_operator, required, url_field};
use crate::outbound::check_callback_url;
use crate::sandbox::TestCard;
use crate::service::Signing;
use crate::state::AppState;

/// How far `txnTime` may be from now, read as UTC or as Beijing time.
const TXN_TIME_TOLERANCE: Duration = Duration::from_secs(15 * 60);

/// The acquirers a card purchase can name: `channelType` with its `bizType`.
const CARD_PRODUCTS: [(&str, &str); 3] = [
    ("ELAVONECOM", "converge_hosted"),
    ("UPAYONLINE", "securePay"),
    ("PORTICOECOM", "portico_card"),
];

fn no_acquirer() -> ProtocolError {
    ProtocolError::new(
        RspCode::Fail,
        "card payments need a card acquirer and none is configured on this gateway (its test \
         acquirer serves them in sandbox mode)",
    )
}

/// `orderId`: 1 to 20 letters and digits.
fn card_order_id(value: Option<String>) -> Result<MerchantRef, ProtocolError> {
    let id = required(value, "orderId")?;
    if id.len() > 20 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ProtocolError::format(
            "orderId must be 1 to 20 letters and digits",
        ));
    }
    MerchantRef::parse(&id).map_err(|_| ProtocolError::format("orderId is malformed"))
}

/// `txnTime`, `yyyyMMddHHmmss`, within 15 minutes of now whether it was written in UTC
/// (as integrations do) or in Beijing time (as OTT Pay's other times are).
fn check_txn_time(value: Option<String>, now: Timestamp) -> Result<(), ProtocolError> {
    let raw = required(value, "txnTime")?;
    let as_beijing = (raw.len() == 14)
        .then(|| Timestamp::parse_beijing(&raw))
        .flatten()
        .ok_or_else(|| ProtocolError::format("txnTime must be yyyyMMddHHmmss"))?;
    let as_utc = as_beijing.plus(Duration::from_secs(8 * 3600));
    let near = |t: Timestamp| {
        let tolerance = i64::try_from(TXN_TIME_TOLERANCE.as_millis()).unwrap_or(i64::MAX);
        (t.epoch_millis() - now.epoch_millis()).abs() <= tolerance
    };
    if near(as_beijing) || near(as_utc) {
        Ok(())
    } else {
        Err(ProtocolError::format(
            "txnTime must be the time of the request (UTC or Beijing time, within 15 minutes)",
        ))
    }
}

/// `CC_PURCHASE` (`kind` `Card`) or `CC_PREAUTH` (`CardPreAuth`: the approved card is only
/// authorised, for the merchant to capture or void).
pub async fn purchase(
    state: &AppState,
    signing: &Signing,
    fields: &Fields,
    md5: &str,
    kind: OrderKind,
) -> Result<Fields, ProtocolError> {
    if !state.service.settings.sandbox {
        return Err(no_acquirer());
    }
    let r = CcPurchaseRequest::read(fields)?;
    let merchant = &signing.merchant;
    optional_merchant(r.merchant_id, signing)?;
    if r.shop_id.is_some_and(|s| s != merchant.shop_id.as_str()) {
        return Err(ProtocolError::invalid(
            "shopId is not a shop of this merchant",
        ));
    }
    let reference = card_order_id(r.order_id)?;
    optional_operator(r.operator_id, merchant)?;
    check_txn_time(r.txn_time, state.service.clock.now())?;
    let amount = Amount::parse(&required(r.txn_amt, "txnAmt")?)
        .ok()
        .filter(|a| a.minor() > 0)
        .ok_or_else(|| ProtocolError::format("txnAmt must be a positive whole number of cents"))?;
    let currency = match r.currency {
        Some(code) => {
            let c = code
                .to_ascii_uppercase()
                .parse::<Currency>()
                .map_err(|_| ProtocolError::format("currency is not a known currency"))?;
            if !merchant.currencies.contains(&c) {
                return Err(ProtocolError::invalid(format!(
                    "currency {} is not one of this merchant's currencies ({})",
                    c.code(),
                    merchant.currency_list()
                )));
            }
            c
        }
        None => merchant.default_currency(),
    };
    let channel_type = required(r.channel_type, "channelType")?;
    let biz_type = required(r.biz_type, "bizType")?;
    if !CARD_PRODUCTS.contains(&(channel_type.as_str(), biz_type.as_str())) {
        return Err(ProtocolError::format(
            "channelType and bizType must be ELAVONECOM with converge_hosted, UPAYONLINE with \
             securePay, or PORTICOECOM with portico_card",
        ));
    }
    // SecurePay carries the card number: in the sandbox only a test card, and never kept.
    if let Some(number) = r.cc_number
        && TestCard::of(&number).is_none()
    {
        return Err(ProtocolError::format(
            "cc_number is not one of the sandbox's test cards (docs/cards.md)",
        ));
    }
    let front_url = url_field(r.front_url, "frontUrl")?;
    let back_url = url_field(r.back_url, "backUrl")?;
    check_callback_url(&back_url, state.service.settings.allow_private_callbacks)
        .map_err(|e| ProtocolError::format(format!("backUrl {e}")))?;
    if !merchant.offers(PaymentMethod::Gp) {
        return Err(ProtocolError::invalid(
            "card payments are not enabled for this merchant",
        ));
    }
    let valid = Valid {
        kind,
        method: PaymentMethod::Gp,
        reference: Some(reference),
        money: Money::new(amount, currency),
        tip: 0,
        callback_url: back_url,
        redirect_url: Some(front_url),
        remarks: None,
        payer: None,
        sale_num: None,
    };
    // The same data as CC_PURCHASE and as CC_PREAUTH are two requests, not a repeat.
    let request = match kind {
        OrderKind::CardPreAuth => format!("{md5}:PREAUTH"),
        _ => md5.to_owned(),
    };
    create(state, signing, valid, &request, |order, attempt, _start| {
        Ok(to_fields(&CcPurchaseResponse {
            rsp_code: RspCode::Success.as_str().into(),
            rsp_msg: RspCode::Success.default_message().into(),
            code_url: state.service.card_page_url(&attempt.id).to_string(),
            amount: order.money.amount.to_string(),
            order_id: order.merchant_order_id(&attempt.id),
        }))
    })
    .await
}

/// `CC_QUERYPAY` "2.0": a card payment by the merchant's `orderId` (the gateway's id works
/// too), with Portico's answer fields.
pub async fn query(
    state: &AppState,
    signing: &Signing,
    fields: &Fields,
) -> Result<Fields, ProtocolError> {
    if !state.service.settings.sandbox {
        return Err(no_acquirer());
    }
    let r = ottgate_api::FieldReader(fields);
    optional_merchant(r.optional_nonempty("merchant_id")?, signing)?;
    let order_id = required(r.optional_nonempty("orderId")?, "orderId")?;
    let merchant = &signing.merchant;
    let view = state
        .service
        .payment(&merchant.id, &order_id)
        .await?
        .ok_or_else(|| ProtocolError::invalid("orderId not found"))?;
    let paid = if matches!(
        view.status,
        PaymentStatus::Success | PaymentStatus::PartialRefunded | PaymentStatus::FullyRefunded
    ) {
        view.attempt.money.amount.to_string()
    } else {
        "0".into()
    };
    Ok(to_fields(&CcQueryPayResponse {
        rsp_code: RspCode::Success.as_str().into(),
        rsp_msg: RspCode::Success.default_message().into(),
        order_status: view.status.code().into(),
        trade_time: view.trade_time().beijing_compact(),
        order_id: view.order.merchant_order_id(&view.attempt.id),
        bizpay_order_id: view.attempt.bizpay_order_id.clone(),
        amount: view.attempt.money.amount.to_string(),
        receipt_amount: paid.clone(),
        buyer_pay_amount: paid,
        tip: view.order.tip.to_string(),
        refund_amount: view.refunded().to_string(),
    }))
}
