//! Card actions: `CC_PURCHASE` "2.0" and `CC_QUERYPAY` "2.0" (docs/cards.md). Their fields
//! are camelCase where OTT Pay's card pages spell them so, snake_case where they do.

use serde::{Deserialize, Serialize};

use crate::fields::{FieldError, FieldReader};
use ottgate_envelope::Fields;

/// `CC_PURCHASE` request data, as strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CcPurchaseRequest {
    pub order_id: Option<String>,
    pub merchant_id: Option<String>,
    pub shop_id: Option<String>,
    pub operator_id: Option<String>,
    pub txn_time: Option<String>,
    pub txn_amt: Option<String>,
    pub currency: Option<String>,
    pub front_url: Option<String>,
    pub back_url: Option<String>,
    pub channel_type: Option<String>,
    pub biz_type: Option<String>,
    pub cc_channel_type: Option<String>,
    /// SecurePay's card number: checked against the sandbox's test cards, never kept.
    pub cc_number: Option<String>,
}

impl CcPurchaseRequest {
    pub fn read(fields: &Fields) -> Result<Self, FieldError> {
        let r = FieldReader(fields);
        Ok(Self {
            order_id: r.optional_nonempty("orderId")?,
            merchant_id: match r.optional_nonempty("merchant_id")? {
                Some(id) => Some(id),
                None => r.optional_nonempty("merId")?,
            },
            shop_id: r.optional_nonempty("shopId")?,
            operator_id: r.optional("operator_id")?,
            txn_time: r.optional_nonempty("txnTime")?,
            txn_amt: r.optional_nonempty("txnAmt")?,
            currency: r.optional_nonempty("currency")?,
            front_url: r.optional_nonempty("frontUrl")?,
            back_url: r.optional_nonempty("backUrl")?,
            channel_type: r.optional_nonempty("channelType")?,
            biz_type: r.optional_nonempty("bizType")?,
            cc_channel_type: r.optional_nonempty("cc_channelType")?,
            cc_number: r.optional_nonempty("cc_number")?,
        })
    }
}

/// `CC_PURCHASE` response data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CcPurchaseResponse {
    #[serde(rename = "rspCode")]
    pub rsp_code: String,
    #[serde(rename = "rspMsg")]
    pub rsp_msg: String,
    /// Where to send the buyer's browser: the hosted card page.
    #[serde(rename = "codeUrl")]
    pub code_url: String,
    /// Cents.
    pub amount: String,
    #[serde(rename = "orderId")]
    pub order_id: String,
}

/// `CC_QUERYPAY` response data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CcQueryPayResponse {
    #[serde(rename = "rspCode")]
    pub rsp_code: String,
    #[serde(rename = "rspMsg")]
    pub rsp_msg: String,
    pub order_status: String,
    /// `yyyyMMddHHmmss`, Beijing time.
    pub trade_time: String,
    #[serde(rename = "orderId")]
    pub order_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bizpay_order_id: Option<String>,
    pub amount: String,
    pub receipt_amount: String,
    pub buyer_pay_amount: String,
    pub tip: String,
    pub refund_amount: String,
}
