//! Decrypted data of the common envelope actions STATUS_QUERY "1.0" and REFUND "1.0".
//! Their response tables were not captured (docs/envelope.md); the fields here are ottgate's,
//! named in the envelope API's own style.

use ottgate_envelope::Fields;
use serde::{Deserialize, Serialize};

use crate::{FieldError, FieldReader};

/// STATUS_QUERY request data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusQueryRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merchant_id: Option<String>,
    /// The payment's id: a callback's `order_id`, a checkout attempt, a REST `paymentId`.
    /// Read from `orderId` too (the card integrations' spelling) when `order_id` is absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
}

impl StatusQueryRequest {
    pub fn read(fields: &Fields) -> Result<Self, FieldError> {
        let r = FieldReader(fields);
        let order_id = match r.optional_nonempty("order_id")? {
            Some(id) => Some(id),
            None => r.optional("orderId")?,
        };
        Ok(Self {
            merchant_id: r.optional_nonempty("merchant_id")?,
            order_id,
        })
    }
}

/// STATUS_QUERY response data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusQueryResponse {
    #[serde(rename = "rspCode")]
    pub rsp_code: String,
    #[serde(rename = "rspMsg")]
    pub rsp_msg: String,
    pub merchant_id: String,
    pub order_id: String,
    /// `init`, `success`, `partial_refunded`, `fully_refunded` or `orderclosed`.
    pub order_status: String,
    /// The REST `stateCode` of the same status (`P00003`, …).
    pub state_code: String,
    /// `WECHATPAY`, `ALIPAY`, `UNIONPAY` or `GP`.
    pub payment_method: String,
    pub amount: String,
    pub refund_amount: String,
    pub currency_type: String,
    pub tip: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bizpay_order_id: Option<String>,
    /// When the payment was settled (or created, if not yet), `yyyyMMddHHmmss` Beijing time.
    pub trade_time: String,
    pub create_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prepay_order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// A card payment's amount and currency under the names card integrations read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_amount: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

/// REFUND request data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merchant_id: Option<String>,
    /// The merchant's own id for this refund (optional; generated if absent). Sending the
    /// same id again with the same amount replays the refund.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// The payment to refund.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ori_order_id: Option<String>,
    /// Cents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_amt: Option<String>,
}

impl RefundRequest {
    pub fn read(fields: &Fields) -> Result<Self, FieldError> {
        let r = FieldReader(fields);
        Ok(Self {
            merchant_id: r.optional_nonempty("merchant_id")?,
            order_id: r.optional_nonempty("order_id")?,
            ori_order_id: r.optional("ori_order_id")?,
            refund_amt: r.optional("refund_amt")?,
        })
    }
}

/// REFUND response data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundResponse {
    #[serde(rename = "rspCode")]
    pub rsp_code: String,
    #[serde(rename = "rspMsg")]
    pub rsp_msg: String,
    pub merchant_id: String,
    /// The merchant's refund id if it gave one, else ottgate's.
    pub order_id: String,
    /// ottgate's refund id (`REF…`).
    pub refund_id: String,
    pub ori_order_id: String,
    pub refund_amt: String,
    /// `success`, `pending` or `failed`.
    pub refund_status: String,
    pub currency_type: String,
    pub trade_time: String,
}
