//! `MAPPPAY` ("1.0" or "1.1"): WeChat Pay inside the merchant's mini-program, for the buyer
//! it names (`open_id` under its `app_id`). The gateway places a JSAPI order for that buyer
//! and answers `payInfo`, what the mini-program hands `wx.requestPayment`
//! (docs/envelope.md, MAPPPAY).

use ottgate_api::FieldReader;
use ottgate_api::RspCode;
use ottgate_api::prepay::to_fields;
use ottgate_core::{Amount, MerchantRef, Money, OrderKind, PaymentMethod};
use ottgate_envelope::Fields;
use serde_json::{Value, json};

use super::direct::{Valid, create, tip};
use super::error::ProtocolError;
use super::fields::{
    callback_url, either, optional_merchant, optional_operator, required, text_field,
};
use crate::service::Signing;
use crate::state::AppState;

pub async fn mini_program_pay(
    state: &AppState,
    signing: &Signing,
    fields: &Fields,
    md5: &str,
) -> Result<Fields, ProtocolError> {
    let r = FieldReader(fields);
    let merchant = &signing.merchant;
    optional_merchant(r.optional_nonempty("merchant_id")?, signing)?;
    let reference = r
        .optional_nonempty("order_id")?
        .map(|id| MerchantRef::parse(&id))
        .transpose()
        .map_err(|_| {
            ProtocolError::format(
                "order_id must be 1 to 64 printable ASCII characters without spaces",
            )
        })?;
    optional_operator(r.optional("operator_id")?, merchant)?;
    let amount = Amount::parse(&required(r.optional("amount")?, "amount")?)
        .map_err(|e| ProtocolError::format(e.to_string()))?;
    let tip = tip(either(&r, ["Tip", "tip"])?, amount)?;
    if r.optional_nonempty("biz_type")?
        .is_some_and(|b| !b.eq_ignore_ascii_case("WECHATPAY"))
    {
        return Err(ProtocolError::format("biz_type must be WECHATPAY"));
    }
    let app_id = required(either(&r, ["app_id", "appId"])?, "app_id")?;
    let open_id = required(either(&r, ["open_id", "openId"])?, "open_id")?;
    for (name, value) in [("app_id", &app_id), ("open_id", &open_id)] {
        if value.len() > 128 || !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ProtocolError::format(format!(
                "{name} must be at most 128 printable ASCII characters"
            )));
        }
    }
    let callback_url = callback_url(&state.service.settings, r.optional("call_back_url")?)?;
    let sale_num = text_field(r.optional("sale_num")?, "sale_num")?;
    let valid = Valid {
        kind: OrderKind::MiniProgram,
        method: PaymentMethod::WeChatPay,
        reference,
        money: Money::new(amount, merchant.default_currency()),
        tip,
        callback_url,
        redirect_url: None,
        remarks: text_field(r.optional("remarks")?, "remarks")?,
        payer: Some((app_id, open_id)),
        sale_num,
    };
    create(state, signing, valid, md5, |order, attempt, start| {
        let ottgate_channels::StartAction::WalletBridge { params, .. } = &start.action else {
            return Err(ProtocolError::new(
                RspCode::Fail,
                "WeChat Pay gave nothing for the mini-program to pay with",
            ));
        };
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map_or(String::new(), |(_, v)| v.clone())
        };
        let pay_info = json!({
            "appId": get("appId"),
            "timeStamp": get("timeStamp"),
            "nonceStr": get("nonceStr"),
            "packageStr": get("package"),
            "signType": get("signType"),
            "paySign": get("paySign"),
        });
        let mut answer = Fields::new();
        answer.insert("payInfo".into(), pay_info);
        answer.insert(
            "merchant_id".into(),
            Value::String(order.merchant_id.to_string()),
        );
        answer.insert(
            "order_id".into(),
            Value::String(order.merchant_order_id(&attempt.id)),
        );
        answer.insert(
            "amount".into(),
            Value::String(order.money.amount.to_string()),
        );
        answer.insert("sale_num".into(), Value::String(order.sale_num.clone()));
        Ok(to_fields(&Value::Object(answer)))
    })
    .await
}
