//! Decrypted data of the direct-payment actions — `ACTIVEPAY` "1.0" (a QR code the
//! merchant shows), `H5PAY` "2.0" (WeChat Pay in a phone browser) — and of
//! `EX_RATE_QUERY` "1.0". Field names are the wire names; docs/envelope.md says what
//! each action decides where OTT Pay's pages are silent.

use ottgate_envelope::Fields;
use serde::{Deserialize, Serialize};

use crate::{FieldError, FieldReader};

/// ACTIVEPAY "1.0" request data. Every field is optional here so that the server can name
/// the one that is missing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivePayRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merchant_id: Option<String>,
    /// The merchant's own id for the payment; the gateway assigns one when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator_id: Option<String>,
    /// Cents, the tip included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    /// The part of `amount` that is a tip (also read from `Tip`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tip: Option<String>,
    /// `ALIPAY`, `WECHATPAY` or `UNIONPAY`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub biz_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_back_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remarks: Option<String>,
    /// The merchant's default currency when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency_type: Option<String>,
}

impl ActivePayRequest {
    pub fn read(fields: &Fields) -> Result<Self, FieldError> {
        let r = FieldReader(fields);
        Ok(Self {
            merchant_id: r.optional_nonempty("merchant_id")?,
            order_id: r.optional_nonempty("order_id")?,
            operator_id: r.optional("operator_id")?,
            amount: r.optional("amount")?,
            tip: match r.optional_nonempty("tip")? {
                Some(tip) => Some(tip),
                None => r.optional_nonempty("Tip")?,
            },
            biz_type: r.optional("biz_type")?,
            call_back_url: r.optional("call_back_url")?,
            remarks: r.optional("remarks")?,
            currency_type: r.optional_nonempty("currency_type")?,
        })
    }
}

/// ACTIVEPAY response data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivePayResponse {
    /// The merchant's id for the payment, or the one the gateway assigned.
    pub order_id: String,
    pub merchant_id: String,
    /// What the QR code the merchant shows must contain.
    pub code_url: String,
    pub biz_type: String,
    pub amount: String,
    pub tip: String,
    pub currency_type: String,
    /// The wallet's order number, when the wallet gives one before payment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bizpay_order_id: Option<String>,
    /// When the code stops being payable, `yyyyMMddHHmmss` Beijing time.
    pub expire_time: String,
}

/// H5PAY "2.0" request data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct H5PayRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merchant_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shop_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency_type: Option<String>,
    /// `WECHATPAY`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub biz_type: Option<String>,
    /// Accepted and ignored (a JSAPI field; MWEB has no buyer id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator_id: Option<String>,
    /// `form`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submit_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_back_url: Option<String>,
    /// Not in OTT Pay's table; when given, the buyer's browser comes back there with the
    /// signed result, as from the checkout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remarks: Option<String>,
}

impl H5PayRequest {
    pub fn read(fields: &Fields) -> Result<Self, FieldError> {
        let r = FieldReader(fields);
        Ok(Self {
            merchant_id: r.optional_nonempty("merchant_id")?,
            shop_id: r.optional_nonempty("shop_id")?,
            amount: r.optional("amount")?,
            order_id: r.optional_nonempty("order_id")?,
            currency_type: r.optional("currency_type")?,
            biz_type: r.optional("biz_type")?,
            open_id: r.optional_nonempty("open_id")?,
            operator_id: r.optional("operator_id")?,
            submit_type: r.optional_nonempty("submit_type")?,
            call_back_url: r.optional("call_back_url")?,
            redirect_url: r.optional_nonempty("redirect_url")?,
            remarks: r.optional("remarks")?,
        })
    }
}

/// H5PAY response data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct H5PayResponse {
    pub order_id: String,
    pub merchant_id: String,
    /// Cents, any convenience fee included (ottgate charges none).
    pub amount: String,
    /// WeChat Pay's H5 page (MWEB link): send the buyer's phone browser there.
    pub payinfo: String,
    pub time_zone_id: String,
}

/// EX_RATE_QUERY "1.0" request data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExRateQueryRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merchant_id: Option<String>,
    /// ISO 4217, e.g. `CAD`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee_type: Option<String>,
}

impl ExRateQueryRequest {
    pub fn read(fields: &Fields) -> Result<Self, FieldError> {
        let r = FieldReader(fields);
        Ok(Self {
            merchant_id: r.optional_nonempty("merchant_id")?,
            fee_type: r.optional("fee_type")?,
        })
    }
}

/// EX_RATE_QUERY response data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExRateQueryResponse {
    #[serde(rename = "rspCode")]
    pub rsp_code: String,
    #[serde(rename = "rspMsg")]
    pub rsp_msg: String,
    #[serde(rename = "feeType")]
    pub fee_type: String,
    /// CNY per unit of `feeType`, times 10^8, as an integer (6.5 → `650000000`).
    pub rate: String,
    /// The day the rate is for, `yyyyMMdd`.
    #[serde(rename = "rateTime")]
    pub rate_time: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: serde_json::Value) -> Fields {
        match v {
            serde_json::Value::Object(m) => m,
            _ => Fields::new(),
        }
    }

    #[test]
    fn tip_is_read_from_either_spelling_and_numbers_as_text() {
        let r = ActivePayRequest::read(&fields(json!({"Tip": "25", "amount": 1234}))).unwrap();
        assert_eq!(r.tip.as_deref(), Some("25"));
        assert_eq!(r.amount.as_deref(), Some("1234"));
        let r = ActivePayRequest::read(&fields(json!({"tip": "5", "Tip": "25"}))).unwrap();
        assert_eq!(r.tip.as_deref(), Some("5"));
    }
}

/// MAPPPAY request data (docs/envelope.md, MAPPPAY).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MiniProgramPayRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator_id: Option<String>,
    /// Cents.
    pub amount: String,
    pub biz_type: String,
    /// The mini-program's app id.
    pub app_id: String,
    /// The buyer's openid under `app_id` (from `wx.login`).
    pub open_id: String,
    pub call_back_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sale_num: Option<String>,
}

/// What the mini-program hands `wx.requestPayment` (`packageStr` as `package`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MiniProgramPayInfo {
    pub app_id: String,
    pub time_stamp: String,
    pub nonce_str: String,
    pub package_str: String,
    pub sign_type: String,
    pub pay_sign: String,
}

/// MAPPPAY response data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MiniProgramPayResponse {
    #[serde(rename = "payInfo")]
    pub pay_info: MiniProgramPayInfo,
    pub merchant_id: String,
    pub order_id: String,
    pub amount: String,
    #[serde(default)]
    pub sale_num: String,
}

/// PASSIVEPAY "1.0" request data (docs/instore.md).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassivePayRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator_id: Option<String>,
    /// Cents, any tip included.
    pub amount: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sale_num: Option<String>,
    /// The code the buyer's wallet shows.
    pub auth_code: String,
    /// `ALIPAY`, `WECHATPAY` or `UNIONPAY`; from the code's prefix when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub biz_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terminal_no: Option<String>,
    /// Not OTT Pay's: where to send the callback once paid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_back_url: Option<String>,
}

/// PASSIVEPAY response data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassivePayResponse {
    /// `success`, `failure` or `PROCESSING` (ask STATUS_QUERY).
    pub order_status: String,
    pub order_id: String,
    pub merchant_id: String,
    pub amount: String,
    pub tip: String,
    pub currency_type: String,
    pub biz_type: String,
    pub trade_time: String,
    #[serde(default)]
    pub sale_num: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer_login_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bizpay_order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal_no: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
