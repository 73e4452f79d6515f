//! The REST API v1 (`/api/v1/...`, docs/rest.md): request and response bodies, the
//! `{status, result}` envelope, and the numeric error codes. Field names are the wire's
//! camelCase ones, including its spellings (`callbackURL`, `returnURL`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Every REST response: `{"status":"SUCCESS","result":{…}}` or
/// `{"status":"ERROR","result":{"code":…,"message":…}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Envelope<T> {
    /// `SUCCESS` or `ERROR`.
    pub status: String,
    pub result: T,
}

impl<T> Envelope<T> {
    pub fn success(result: T) -> Self {
        Self {
            status: "SUCCESS".into(),
            result,
        }
    }
}

/// The `result` of an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorResult {
    pub code: u32,
    pub message: String,
}

/// REST error codes (docs/rest.md; 20014, 20031, 20041 and 90000 come from third-party integrations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RestCode {
    /// appId/appKey pair not found, or too many failed attempts.
    AuthorizationFailed,
    /// A field is missing, of the wrong type, too long or malformed.
    InvalidParameter,
    /// The channel refused or failed.
    GatewayError,
    DatabaseError,
    /// Refund amount larger than what remains.
    RefundExceedsPaid,
    /// No such payment for this merchant.
    OriginalPaymentNotExist,
    /// The payment is not in a state that allows this (e.g. refunding an unpaid payment).
    OriginalPaymentNotRefundable,
    /// No channel serves this payment method here.
    NoChannel,
    /// Anything else.
    Other,
    AlreadyFullyRefunded,
    /// Missing, malformed, expired or wrongly signed bearer token.
    Unauthorized,
    /// A card number the acquirer does not take (in the sandbox: not a test card).
    UnsupportedCard,
    /// The card was declined: no money moved.
    PaymentFailed,
    /// The payment cannot be voided (not a card payment).
    NotRevocable,
}

impl RestCode {
    pub fn number(self) -> u32 {
        match self {
            RestCode::AuthorizationFailed => 10003,
            RestCode::InvalidParameter => 10005,
            RestCode::GatewayError => 10200,
            RestCode::DatabaseError => 20004,
            RestCode::RefundExceedsPaid => 20014,
            RestCode::OriginalPaymentNotExist => 20019,
            RestCode::OriginalPaymentNotRefundable => 20020,
            RestCode::NoChannel => 20031,
            RestCode::Other => 20034,
            RestCode::AlreadyFullyRefunded => 20041,
            RestCode::Unauthorized => 90000,
            RestCode::UnsupportedCard => 20008,
            RestCode::PaymentFailed => 20030,
            RestCode::NotRevocable => 20021,
        }
    }
}

/// `POST /api/v1/auth/token`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenRequest {
    /// Issued with the merchant (`ottgate merchant add` prints it).
    pub app_id: String,
    /// Issued with the merchant, shown once.
    pub app_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenResult {
    /// HS512 JWT for `Authorization: Bearer …`, valid 900 s.
    pub token: String,
    /// When it expires, Unix epoch milliseconds.
    pub expired: i64,
}

/// `POST /api/v1/pay/alipay/wap-pay` and `…/web-pay`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PayRequest {
    /// Cents, digits only (`"100"` is 1.00 in the merchant's default currency).
    pub amount: String,
    /// Where the encrypted payment callback is POSTed. At most 255 characters.
    #[serde(rename = "callbackURL")]
    pub callback_url: String,
    /// Where the buyer's browser returns after paying. At most 255 characters. Not taken
    /// by `weixin/active-pay` (the buyer pays on their phone): left out when empty.
    #[serde(rename = "returnURL", default, skip_serializing_if = "String::is_empty")]
    pub return_url: String,
    /// At most 128 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remark: Option<String>,
    /// ottgate extension: the merchant's own reference (at most 64 printable ASCII
    /// characters, unique per merchant), for `status-query-by-reference` and callbacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PayResult {
    /// Where to send the buyer's browser: the wallet's payment page.
    pub pay_info: String,
    pub merchant_id: String,
    pub payment_id: String,
    /// Cents.
    pub amount: String,
    /// The channel's order number (web-pay only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub biz_pay_order_id: Option<String>,
    /// The merchant's time zone (WeChat h5-pay only), e.g. `America/Toronto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone_id: Option<String>,
}

/// `POST /api/v1/pay/alipay/inapp-pay`: a pay request (its `returnURL` not used) and two
/// fields of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InAppPayRequest {
    #[serde(flatten)]
    pub pay: PayRequest,
    /// OTT Pay marks it required without saying what it is (the buyer's id in the
    /// merchant's app, as integrations send it); ottgate takes it as optional and keeps it
    /// nowhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The merchant's sale number, at most 32 characters; echoed by refunds' `saleNumber`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sale_number: Option<String>,
}

/// What `alipay/inapp-pay` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InAppPayResult {
    /// A JSON object of the signed `mobile.securitypay.pay` parameters, as one string:
    /// what the merchant's app hands Alipay's app SDK.
    pub pay_sign: String,
    /// In the currency's units with two decimals (`"10.00"`), as OTT Pay shows it.
    pub amount: String,
    pub payment_id: String,
    pub merchant_id: String,
}

/// What `unionpay/inapp-secure-pay` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecurePayResult {
    pub payment_id: String,
    /// Always `UTF-8`.
    pub encoding: String,
    pub merchant_id: String,
    /// UnionPay's transaction number, for the merchant's app to hand UnionPay's app SDK.
    pub tn: String,
    /// Cents.
    pub amount: String,
}

/// `POST /api/v1/payment/status-query`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusQueryRequest {
    pub payment_id: String,
}

/// `POST /api/v1/payment/status-query-by-reference`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatusQueryByReferenceRequest {
    /// A REST payment's `reference`, or a checkout order's `prepay_order_id`.
    pub reference: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentStatusResult {
    pub payment_id: String,
    pub merchant_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Cents.
    pub total_amount: String,
    /// Cents the merchant receives: paid minus refunded (0 before payment).
    pub receipt_amount: String,
    /// Cents the buyer paid (0 before payment).
    pub pay_amount: String,
    /// Cents refunded so far.
    pub refund_amount: String,
    pub currency: String,
    /// `init`, `success`, `partial_refunded`, `fully_refunded` or `orderclosed`.
    pub payment_status: String,
    /// `P00001` init, `P00003` success, `P00005` partial_refunded, `P00004` fully_refunded,
    /// `P00006` cancelled, `P00008` failed, `P00010` expired.
    pub state_code: String,
    /// `WECHATPAY`, `ALIPAY`, `UNIONPAY` or `GP`.
    pub payment_method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub biz_pay_order_id: Option<String>,
    /// When the payment was settled (or created, if not yet), e.g. `Mar 13, 2023 10:52:49 AM`
    /// (Beijing time).
    pub trade_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remark: Option<String>,
}

/// `POST /api/v1/pay/refund`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundRequest {
    /// The `paymentId` to refund.
    pub ori_payment_id: String,
    /// Cents.
    pub refund_amount: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundResult {
    pub refund_id: String,
    pub ori_payment_id: String,
    pub refund_amount: String,
    /// `success`, `pending` or `failed`.
    pub refund_status: String,
    /// e.g. `Mar 13, 2023 10:52:49 AM` (Beijing time).
    pub trade_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sale_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange_rate: Option<String>,
}

/// `POST /api/v1/payment/local-card/payment3dsV2`: a card payment whose card data comes in
/// the request (docs/cards.md). Only the sandbox's published test cards are taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalCardPaymentRequest {
    /// Cents, as a JSON number (a string of digits is taken too).
    pub amount: u64,
    /// The callback URL (`callbackURL` is taken too).
    #[serde(rename = "callBackURL")]
    pub call_back_url: String,
    /// Where the buyer's browser comes back after a 3-D Secure challenge.
    #[serde(rename = "frontURL")]
    pub front_url: String,
    pub account_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
    /// MMYY.
    pub account_expire: String,
    pub cvn2: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_avs_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_avs_city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_avs_province: Option<String>,
    /// ISO 3166 alpha-2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_avs_country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_avs_zip: Option<String>,
    /// The merchant's own reference (unique per merchant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The 3-D Secure 2 browser data; taken and not used by the sandbox.
    #[serde(rename = "purchase3DSAddition", default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub purchase_3ds_addition: Option<serde_json::Value>,
}

/// What `payment3dsV2` answers: `authorised` (the money held, captured later), or
/// `THREEDS_AUTH_CHALLENGE` with the form to put in the buyer's browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalCardPaymentResult {
    /// `authorised` or `THREEDS_AUTH_CHALLENGE`.
    pub payment_status: String,
    pub payment_id: String,
    pub merchant_id: String,
    /// `VISA` or `MC`.
    pub cc_type: String,
    /// Cents.
    pub amount: String,
    /// Cents held (0 while the challenge is pending).
    pub receipt_amount: String,
    pub total_amount: String,
    /// e.g. `Mar 13, 2023 10:52:49 AM` (Beijing time).
    pub trade_time: String,
    /// An HTML form that takes the buyer's browser to the 3-D Secure challenge (only with
    /// `THREEDS_AUTH_CHALLENGE`).
    #[serde(rename = "escape3DSChallengeForm", default, skip_serializing_if = "Option::is_none")]
    pub escape_3ds_challenge_form: Option<String>,
}

/// `POST /api/v1/payment/local-card/reverse`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReverseRequest {
    /// The card payment to void before it is captured.
    pub payment_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReverseResult {
    pub reverse_id: String,
    pub payment_id: String,
    /// `orderclosed`.
    pub payment_status: String,
    /// `P00007` (voided).
    pub state_code: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_are_the_documented_ones() {
        let pay: PayRequest = serde_json::from_str(
            r#"{"amount":"1000","callbackURL":"https://your.callback.url","returnURL":"https://your.return.url","remark":""}"#,
        )
        .unwrap();
        assert_eq!(pay.callback_url, "https://your.callback.url");
        let result = serde_json::to_value(Envelope::success(PayResult {
            pay_info: "u".into(),
            merchant_id: "ON00000097".into(),
            payment_id: "1".into(),
            amount: "1000".into(),
            biz_pay_order_id: None,
            time_zone_id: None,
        }))
        .unwrap();
        assert_eq!(
            result,
            serde_json::json!({"status":"SUCCESS","result":{"payInfo":"u","merchantId":"ON00000097","paymentId":"1","amount":"1000"}})
        );
        let refund = serde_json::to_value(RefundRequest {
            ori_payment_id: "1".into(),
            refund_amount: "5".into(),
        })
        .unwrap();
        assert_eq!(
            refund,
            serde_json::json!({"oriPaymentId":"1","refundAmount":"5"})
        );
    }
}

/// `GET /api/v1/events`: the merchant's callbacks, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventsResult {
    pub events: Vec<EventItem>,
    /// When the page is full: pass it as `cursor` for the next (older) page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One callback (an event) and its delivery so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventItem {
    /// The callback's `notify_id`: the same in every retry of its body.
    pub id: String,
    /// `payment.paid`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The payment's id (the callback's `order_id`).
    pub order_id: String,
    /// RFC 3339, UTC.
    pub created: String,
    /// `pending` (being delivered or waiting for its next try), `delivered` or `exhausted`
    /// (every try failed; it can be resent).
    pub state: String,
    /// Tries so far.
    pub attempts: u32,
    /// The HTTP status of the last try; absent if it had none (not tried, or no answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_http_status: Option<u16>,
    /// Why the last try failed (`HTTP 500`, `timed out`, …), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// RFC 3339, UTC: when the next try is due, while the callback is pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt: Option<String>,
    /// The merchant's own reference of the payment, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// `POST /api/v1/events/{id}/redeliver`: the callback is due again now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RedeliverResult {
    pub id: String,
    /// `pending`.
    pub state: String,
}

/// `GET /api/v1/settlements?date=yyyy-MM-dd`: what the merchant is owed for a wallet day
/// (Beijing), one statement per currency. Amounts are in cents (minor units), as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SettlementsResult {
    /// The wallet day, `yyyy-MM-dd` (Beijing).
    pub date: String,
    pub statements: Vec<SettlementStatement>,
}

/// One currency's statement of the day: totals, and the lines they are the sums of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SettlementStatement {
    pub currency: String,
    /// The payments' amounts.
    pub gross: String,
    pub refunds: String,
    /// The fees on the payments (refunds return none).
    pub fees: String,
    /// `gross - refunds - fees`; negative when refunds outweigh the day.
    pub net: String,
    pub payments: u64,
    pub refund_count: u64,
    /// The yuan (fen) the buyers paid, where the wallet said.
    pub buyer_cny: String,
    pub lines: Vec<SettlementLine>,
}

/// A payment or refund of the day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SettlementLine {
    /// `payment` or `refund`.
    #[serde(rename = "type")]
    pub line_type: String,
    /// The paymentId, or the refund's id.
    pub id: String,
    /// `WECHATPAY`, `ALIPAY`, `UNIONPAY` or `GP`.
    pub method: String,
    pub amount: String,
    pub fee: String,
    /// What it adds to the net.
    pub net: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer_cny: Option<String>,
    /// The wallet's exchange rate, as it stated it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fx_rate: Option<String>,
}
