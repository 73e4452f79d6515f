//! Decrypted data of the checkout actions (PREPAY_INIT, PREPAY_QUERY) and of the merchant
//! callback. Field names are the wire names, exactly.

use ottgate_envelope::Fields;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::{FieldError, FieldReader};

/// Serializes a data struct into the flat object that gets sealed. A field without a value
/// is left out, never sent as `null`: integrations that sign by concatenating values would
/// sign the text `null` (docs/envelope.md, "No null").
pub fn to_fields<T: Serialize>(value: &T) -> Fields {
    match serde_json::to_value(value) {
        Ok(Value::Object(mut fields)) => {
            drop_nulls(&mut fields);
            fields
        }
        // Every type here serializes to an object; an empty object is the harmless fallback.
        _ => Fields::new(),
    }
}

/// Removes every `null` member, at any depth.
fn drop_nulls(fields: &mut Fields) {
    fields.retain(|_, v| !v.is_null());
    for value in fields.values_mut() {
        match value {
            Value::Object(inner) => drop_nulls(inner),
            Value::Array(items) => items.iter_mut().for_each(|item| {
                if let Value::Object(inner) = item {
                    drop_nulls(inner);
                }
            }),
            _ => {}
        }
    }
}

/// Reads a data struct out of an opened object (used by clients on responses).
pub fn from_fields<T: DeserializeOwned>(fields: &Fields) -> Result<T, serde_json::Error> {
    serde_json::from_value(Value::Object(fields.clone()))
}

/// PREPAY_INIT "2.0" request data. Every field is optional here so that the server can say
/// precisely which one is missing; `amount` is required although the published table
/// forgets it (docs/envelope.md).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrepayInitRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merchant_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shop_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prepay_order_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sale_num: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub biz_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_back_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remarks: Option<String>,
}

impl PrepayInitRequest {
    /// Reads the request leniently (numbers accepted as text); only a value of the wrong
    /// JSON type is an error here. Missing and malformed values are the validator's call.
    pub fn read(fields: &Fields) -> Result<Self, FieldError> {
        let r = FieldReader(fields);
        Ok(Self {
            merchant_id: r.optional("merchant_id")?,
            shop_id: r.optional("shop_id")?,
            operator_id: r.optional("operator_id")?,
            prepay_order_id: r.optional("prepay_order_id")?,
            sale_num: r.optional("sale_num")?,
            amount: r.optional("amount")?,
            currency_type: r.optional("currency_type")?,
            biz_type: r.optional("biz_type")?,
            redirect_url: r.optional("redirect_url")?,
            call_back_url: r.optional("call_back_url")?,
            duration: r.optional("duration")?,
            email: r.optional("email")?,
            remarks: r.optional("remarks")?,
        })
    }
}

/// PREPAY_INIT response data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrepayInitResponse {
    pub prepay_order_id: String,
    /// `{public_url}/checkout/{token}`; the merchant may append `?selected=`.
    pub payinfo: String,
    /// `yyyyMMddHHmmss`, Beijing time.
    pub expire_time: String,
}

/// PREPAY_QUERY "2.0" request data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrepayQueryRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merchant_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prepay_order_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
}

impl PrepayQueryRequest {
    pub fn read(fields: &Fields) -> Result<Self, FieldError> {
        let r = FieldReader(fields);
        Ok(Self {
            merchant_id: r.optional("merchant_id")?,
            prepay_order_id: r.optional("prepay_order_id")?,
            order_id: r.optional_nonempty("order_id")?,
        })
    }
}

/// PREPAY_QUERY response data: every field OTT Pay lists (docs/envelope.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrepayQueryResponse {
    #[serde(rename = "rspCode")]
    pub rsp_code: String,
    #[serde(rename = "rspMsg")]
    pub rsp_msg: String,
    pub merchant_id: String,
    pub merchant_name: String,
    pub amount: String,
    pub tip: String,
    pub shop_id: String,
    pub operator_id: String,
    /// `SUCCESS`, `ORDERCLOSE` or `PROCESSING`.
    pub status: String,
    pub call_back_url: String,
    pub redirect_url: String,
    pub biz_type: String,
    pub prepay_order_id: String,
    /// The paying attempt's order id once paid; otherwise the latest attempt's; absent
    /// before any method was chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// The wallet's transaction id, once paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bizpay_order_id: Option<String>,
    pub sale_num: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remarks: Option<String>,
    pub currency_type: String,
    pub duration: String,
    pub create_time: String,
    pub expire_time: String,
    pub payments_methods: Vec<PaymentAttempt>,
}

/// One element of `payments_methods`: a payment attempt on the prepay order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentAttempt {
    pub method: String,
    pub order_id: String,
    /// `PROCESSING`, `SUCCESS`, `FAIL`, `CANCELLED` or `ORDERCLOSE`.
    pub status: String,
    pub amount: String,
    pub create_time: String,
}

/// The decrypted data of a payment callback (docs/envelope.md, Callbacks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackData {
    /// `yyyyMMddHHmmss`, Beijing time.
    pub finish_time: String,
    /// The payment (attempt) id: REST `paymentId`.
    pub order_id: String,
    /// Checkout orders only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prepay_order_id: Option<String>,
    /// The merchant's own reference, when the order has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    pub merchant_id: String,
    /// Absent from a card payment's callback, which is only a trigger (docs/cards.md).
    #[serde(default)]
    pub order_status: String,
    pub amount: String,
    pub currency_type: String,
    pub tip: String,
    pub bizpay_order_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remarks: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sale_num: Option<String>,
    pub convenience_fee: String,
    /// Stable across retries of the same notification, for de-duplication: ottgate's
    /// addition, so empty when read from a callback OTT Pay itself sent (it has none).
    #[serde(default)]
    pub notify_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A callback as OTT Pay itself sends it has no `notify_id` (ottgate's addition): it
    /// is read all the same, so the SDK verifies callbacks from either.
    #[test]
    fn a_callback_without_notify_id_is_read() {
        let body = r#"{"finish_time":"20230313222334","order_id":"16787175891440000",
            "merchant_id":"ON00004652","order_status":"SUCCESS","amount":"1234",
            "currency_type":"CAD","tip":"0","bizpay_order_id":"4200001234",
            "convenience_fee":"0"}"#;
        let data: CallbackData = serde_json::from_str(body).unwrap();
        assert_eq!(data.notify_id, "");
        assert_eq!(data.order_id, "16787175891440000");
    }
}
