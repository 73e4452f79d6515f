//! Alipay Global cross-border MAPI (docs/alipay.md): the connector.
//!
//! Payments are signed redirects to `gateway.do` (`create_forex_trade_wap` on mobile,
//! `create_forex_trade` on desktop). Results arrive as signed form POSTs to our notify URL
//! and are read with [`AlipayConnector::verify`] then [`Notice::read`]; `single_trade_query`
//! and `forex_refund` are signed GETs answered in XML. A QR code the merchant shows is
//! Alipay's in-store "transaction QR code": `alipay.acquire.precreate`, queried with
//! `alipay.acquire.overseas.query` and refunded with `alipay.acquire.overseas.spot.refund`
//! (docs/wallets.md says what of these is verified and what is assumed).

pub mod compare;
pub mod sign;
pub mod simulator;
mod wallet;

use async_trait::async_trait;
use ottgate_core::{Currency, Money, Timestamp};
use sign::{Params, SignType, SigningMaterial, VerifyingMaterial};
use std::fmt;
use std::time::Duration;
use url::Url;
pub use wallet::{Section, WALLET};

use crate::xml;
use crate::{
    Acknowledgement, BarcodePayment, BarcodeResult, BarcodeRules, Channel, ChannelError, Device,
    Flow, Notification, NotificationError, Outcome, PaymentRef, PaymentStart, QueryPayment,
    QueryRefund, QueryResult, RefundPayment, RefundQueryResult, RefundResult, StartAction,
    StartPayment, Stated, Subject, UndoPayment, UndoResult,
};

/// What the gateway needs to act as an Alipay acquirer.
#[derive(Clone)]
pub struct AlipayConfig {
    /// `https://intlmapi.alipay.com/gateway.do` (or the built-in simulator's): where buyers'
    /// browsers are sent.
    pub gateway_url: Url,
    /// Where our own server-to-server requests go, when not `gateway_url` (a sandbox
    /// reaches its simulator directly, whatever its public URL).
    pub api_url: Option<Url>,
    /// The acquirer's PID: 16 digits starting `2088`.
    pub partner: String,
    pub sign_type: SignType,
    /// Ours: the MD5 key, or our RSA private key.
    pub signing: SigningMaterial,
    /// Alipay's: the MD5 key, or Alipay's RSA public key.
    pub verifying: VerifyingMaterial,
    /// Where Alipay posts results (our `/notify/alipay`).
    pub notify_url: Url,
    /// `secondary_merchant_industry` (4-digit MCC-style code).
    pub industry: String,
    /// Confirm each notification with `notify_verify` before applying it.
    pub notify_verify: bool,
    /// True when this points at a simulator.
    pub test_mode: bool,
}

impl fmt::Debug for AlipayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlipayConfig")
            .field("gateway_url", &self.gateway_url.as_str())
            .field("partner", &self.partner)
            .field("sign_type", &self.sign_type)
            .field("notify_url", &self.notify_url.as_str())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct AlipayConnector {
    config: AlipayConfig,
    http: reqwest::Client,
}

/// A trade status, as Alipay reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradeStatus {
    Finished,
    Closed,
    /// `WAIT_BUYER_PAY`, or anything we do not know: never taken for paid.
    Pending,
}

impl TradeStatus {
    pub fn parse(s: &str) -> Self {
        match s {
            // TRADE_SUCCESS is the domestic "paid" state; accept it defensively (docs/alipay.md).
            "TRADE_FINISHED" | "TRADE_SUCCESS" => TradeStatus::Finished,
            "TRADE_CLOSED" => TradeStatus::Closed,
            _ => TradeStatus::Pending,
        }
    }
}

/// A verified notification, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Trade {
        out_trade_no: String,
        trade_no: String,
        total_fee: String,
        currency: String,
        status: TradeStatus,
    },
    Refund {
        out_trade_no: String,
        out_return_no: String,
        succeeded: bool,
        error_code: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoticeError {
    #[error("notification lacks {0}")]
    Missing(&'static str),
}

impl Notice {
    /// Reads an already verified notification: a refund result if it names `out_return_no`,
    /// a trade status otherwise.
    pub fn read(params: &Params) -> Result<Self, NoticeError> {
        let get = |name: &'static str| {
            params
                .get(name)
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or(NoticeError::Missing(name))
        };
        if let Some(out_return_no) = params.get("out_return_no").filter(|v| !v.is_empty()) {
            return Ok(Notice::Refund {
                out_trade_no: get("out_trade_no")?,
                out_return_no: out_return_no.clone(),
                succeeded: params
                    .get("refund_status")
                    .is_some_and(|s| s == "REFUND_SUCCESS"),
                error_code: params.get("error_code").filter(|v| !v.is_empty()).cloned(),
            });
        }
        Ok(Notice::Trade {
            out_trade_no: get("out_trade_no")?,
            trade_no: get("trade_no")?,
            total_fee: get("total_fee")?,
            // An in-store (QR) trade prices in `trans_currency`.
            currency: get("currency").or_else(|_| get("trans_currency"))?,
            status: TradeStatus::parse(&get("trade_status")?),
        })
    }
}

/// Reads a form body or query string, decoding exactly once (a `+` in Base64 must not
/// become a space twice over).
pub fn parse_form(body: &[u8]) -> Params {
    url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// What the buyer sees as `subject`: Alipay refuses "special characters", so only letters,
/// digits, spaces and parentheses are kept.
fn subject(name: &str) -> String {
    let kept: String = name
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '(' | ')'))
        .collect();
    let kept = kept.split_whitespace().collect::<Vec<_>>().join(" ");
    if kept.is_empty() {
        "Order".to_owned()
    } else {
        kept.chars().take(256).collect()
    }
}

/// `timeout_rule`-free expiry: `order_gmt_create` + `order_valid_time` (seconds, > 60).
fn validity(created: Timestamp, expires: Timestamp) -> (String, String) {
    let secs = created.until(expires).as_secs().clamp(61, 2_592_000);
    (created.beijing_display(), secs.to_string())
}

impl AlipayConnector {
    pub fn new(config: AlipayConfig) -> Result<Self, ChannelError> {
        let http = crate::build_http(crate::upstream_http())?;
        Ok(Self { config, http })
    }

    pub fn config(&self) -> &AlipayConfig {
        &self.config
    }

    fn base(&self, service: &str) -> Params {
        let mut p = Params::new();
        p.insert("service".into(), service.into());
        p.insert("partner".into(), self.config.partner.clone());
        p.insert("_input_charset".into(), "UTF-8".into());
        p
    }

    /// Adds `sign_type` and `sign`.
    fn signed(&self, mut params: Params) -> Result<Params, ChannelError> {
        let signature = sign::sign(&params, self.config.sign_type, &self.config.signing)
            .map_err(|e| ChannelError::Config(e.to_string()))?;
        params.insert("sign_type".into(), self.config.sign_type.code().into());
        params.insert("sign".into(), signature);
        Ok(params)
    }

    fn url_with(&self, params: &Params) -> Url {
        with_query(&self.config.gateway_url, params)
    }

    /// The URL of a server-to-server request.
    fn api_url_with(&self, params: &Params) -> Url {
        with_query(
            self.config
                .api_url
                .as_ref()
                .unwrap_or(&self.config.gateway_url),
            params,
        )
    }

    /// Whether a notification, return or response carries Alipay's valid signature of the
    /// configured type.
    pub fn verify(&self, params: &Params) -> bool {
        sign::verify(params, self.config.sign_type, &self.config.verifying)
    }

    /// The shop the payment is for, as Alipay's cross-border services name it: its id and
    /// name, and its MCC (the deployment's industry when the merchant has none).
    fn secondary_merchant(&self, payment: &StartPayment) -> [(String, String); 3] {
        let industry = payment
            .channel_ids
            .mcc
            .clone()
            .unwrap_or_else(|| self.config.industry.clone());
        [
            (
                "secondary_merchant_id".into(),
                payment.merchant_id.to_string(),
            ),
            (
                "secondary_merchant_name".into(),
                subject(&payment.merchant_name),
            ),
            ("secondary_merchant_industry".into(), industry),
        ]
    }

    /// The signed URL of a payment (the buyer's browser goes there).
    pub fn payment_url(&self, payment: &StartPayment) -> Result<Url, ChannelError> {
        let wap = payment.flow == Flow::Browser(Device::Mobile);
        let mut p = self.base(if wap {
            "create_forex_trade_wap"
        } else {
            "create_forex_trade"
        });
        let (gmt_create, valid_secs) = validity(payment.created_at, payment.expires_at);
        let fields = [
            ("notify_url", self.config.notify_url.to_string()),
            ("return_url", payment.return_url.to_string()),
            ("out_trade_no", payment.attempt_id.to_string()),
            ("subject", subject(&payment.subject)),
            ("total_fee", payment.money.major_plain()),
            ("currency", payment.money.currency.code().to_owned()),
            (
                "product_code",
                if wap {
                    "NEW_WAP_OVERSEAS_SELLER"
                } else {
                    "NEW_OVERSEAS_SELLER"
                }
                .to_owned(),
            ),
            ("order_gmt_create", gmt_create),
            ("order_valid_time", valid_secs),
        ];
        p.extend(fields.into_iter().map(|(k, v)| (k.to_owned(), v)));
        p.extend(self.secondary_merchant(payment));
        if wap {
            p.insert("app_pay".into(), "Y".into());
        }
        Ok(self.url_with(&self.signed(p)?))
    }

    /// The signed `mobile.securitypay.pay` parameters of an app payment, for Alipay's app
    /// SDK (signed as every MAPI request is; docs/alipay.md, App payments).
    pub fn app_payment(&self, payment: &StartPayment) -> Result<Params, ChannelError> {
        let mut p = self.base("mobile.securitypay.pay");
        let fields = [
            ("notify_url", self.config.notify_url.to_string()),
            ("out_trade_no", payment.attempt_id.to_string()),
            ("subject", subject(&payment.subject)),
            ("payment_type", "1".to_owned()),
            ("seller_id", self.config.partner.clone()),
            ("total_fee", payment.money.major_plain()),
            ("currency", payment.money.currency.code().to_owned()),
            ("forex_biz", "FP".to_owned()),
            ("product_code", "NEW_WAP_OVERSEAS_SELLER".to_owned()),
            (
                "it_b_pay",
                pay_timeout(payment.created_at, payment.expires_at),
            ),
        ];
        p.extend(fields.into_iter().map(|(k, v)| (k.to_owned(), v)));
        p.extend(self.secondary_merchant(payment));
        self.signed(p)
    }

    /// `notify_verify`: asks Alipay whether it really sent the notification `notify_id`
    /// (the sender check of docs/alipay.md, Notifications). `Ok(false)` is Alipay saying no.
    pub async fn confirm_notification_id(&self, notify_id: &str) -> Result<bool, ChannelError> {
        let mut params = Params::new();
        params.insert("service".into(), "notify_verify".into());
        params.insert("partner".into(), self.config.partner.clone());
        params.insert("notify_id".into(), notify_id.to_owned());
        let response = self
            .http
            .get(self.api_url_with(&params))
            .send()
            .await
            .map_err(|e| ChannelError::unreachable("Alipay", e))?;
        let text = response
            .text()
            .await
            .map_err(|e| ChannelError::unreachable("Alipay", e))?;
        Ok(text.trim() == "true")
    }

    /// GETs a signed server-to-server request and parses the XML answer.
    async fn call(&self, params: Params) -> Result<xml::Element, ChannelError> {
        let text = self.get_signed(params).await?;
        xml::parse(&text).map_err(|e| ChannelError::upstream_from("Alipay answer unreadable", e))
    }

    /// GETs `gateway.do` with `params` signed; the answer's text (of a 2xx answer).
    async fn get_signed(&self, params: Params) -> Result<String, ChannelError> {
        let url = self.api_url_with(&self.signed(params)?);
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| ChannelError::unreachable("Alipay", e))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| ChannelError::unreachable("Alipay", e))?;
        if !status.is_success() {
            return Err(ChannelError::upstream(format!(
                "Alipay answered HTTP {status}"
            )));
        }
        Ok(text)
    }

    /// The children of `<response><{node}>`, once the document's `sign` verifies over them
    /// (the scope `single_trade_query` signs; assumed for the in-store services too).
    fn signed_response(
        &self,
        doc: &xml::Element,
        node: &str,
        service: &str,
    ) -> Result<Params, ChannelError> {
        let fields = doc
            .child("response")
            .and_then(|r| r.child(node))
            .map(xml::Element::flat)
            .unwrap_or_default();
        let mut signed = fields.clone();
        for name in ["sign", "sign_type"] {
            signed.insert(
                name.into(),
                doc.child_text(name).unwrap_or_default().to_owned(),
            );
        }
        if !self.verify(&signed) {
            return Err(ChannelError::upstream(format!(
                "{service} answer is not signed by Alipay"
            )));
        }
        Ok(fields)
    }

    /// An in-store service's answer: its signed `<response><alipay>` fields when
    /// `is_success=T`, Alipay's error code otherwise.
    async fn in_store_call(&self, params: Params) -> Result<Params, ChannelError> {
        let service = params.get("service").cloned().unwrap_or_default();
        let doc = self.call(params).await?;
        if doc.child_text("is_success") != Some("T") {
            return Err(ChannelError::upstream(format!(
                "{service}: {}",
                doc.child_text("error").unwrap_or("failed without a code")
            )));
        }
        self.signed_response(&doc, "alipay", &service)
    }

    /// `alipay.acquire.precreate`: Alipay's QR code for a trade the buyer scans.
    async fn precreate(&self, payment: &StartPayment) -> Result<PaymentStart, ChannelError> {
        let mut p = self.base("alipay.acquire.precreate");
        let industry = payment
            .channel_ids
            .mcc
            .clone()
            .unwrap_or_else(|| self.config.industry.clone());
        let extend = serde_json::json!({
            "secondary_merchant_id": payment.merchant_id.as_str(),
            "secondary_merchant_name": subject(&payment.merchant_name),
            "secondary_merchant_industry": industry,
            "store_id": payment.merchant_id.as_str(),
            "store_name": subject(&payment.merchant_name),
        });
        let fields = [
            ("notify_url", self.config.notify_url.to_string()),
            ("timestamp", payment.created_at.beijing_display()),
            ("out_trade_no", payment.attempt_id.to_string()),
            ("subject", subject(&payment.subject)),
            ("product_code", "OVERSEAS_MBARCODE_PAY".to_owned()),
            ("total_fee", payment.money.major_plain()),
            ("trans_currency", payment.money.currency.code().to_owned()),
            ("currency", payment.money.currency.code().to_owned()),
            ("seller_id", self.config.partner.clone()),
            (
                "it_b_pay",
                pay_timeout(payment.created_at, payment.expires_at),
            ),
            ("extend_params", extend.to_string()),
        ];
        p.extend(fields.into_iter().map(|(k, v)| (k.to_owned(), v)));
        let answer = self.in_store_call(p).await?;
        let get = |name: &str| answer.get(name).map_or("", String::as_str);
        if get("result_code") != "SUCCESS" {
            return Err(ChannelError::upstream(format!(
                "alipay.acquire.precreate: {}",
                answer
                    .get("detail_error_code")
                    .map_or("FAIL", String::as_str)
            )));
        }
        if get("out_trade_no") != payment.attempt_id.as_str() || get("qr_code").is_empty() {
            return Err(ChannelError::upstream(
                "alipay.acquire.precreate answered about another trade",
            ));
        }
        Ok(PaymentStart {
            action: StartAction::qr_url(get("qr_code").to_owned(), self.config.test_mode),
            channel_order_id: None,
        })
    }

    /// `alipay.acquire.overseas.query` about an in-store (QR) trade.
    async fn query_in_store(&self, payment: &QueryPayment) -> Result<QueryResult, ChannelError> {
        let mut p = self.base("alipay.acquire.overseas.query");
        p.insert("partner_trans_id".into(), payment.attempt_id.to_string());
        let answer = self.in_store_call(p).await?;
        let get = |name: &str| answer.get(name).map_or("", String::as_str);
        if get("result_code") != "SUCCESS" {
            return match get("detail_error_code") {
                "TRADE_NOT_EXIST" => Ok(QueryResult::NotFound),
                code => Err(ChannelError::upstream(format!(
                    "alipay.acquire.overseas.query: {code}"
                ))),
            };
        }
        if get("partner_trans_id") != payment.attempt_id.as_str() {
            return Err(ChannelError::upstream(
                "alipay.acquire.overseas.query answered about another trade",
            ));
        }
        Ok(match TradeStatus::parse(get("alipay_trans_status")) {
            TradeStatus::Finished => QueryResult::Paid {
                bizpay_order_id: get("alipay_trans_id").to_owned(),
                money: get("currency")
                    .parse::<Currency>()
                    .ok()
                    .and_then(|currency| Money::parse_major(get("trans_amount"), currency)),
            },
            TradeStatus::Closed => QueryResult::Closed,
            TradeStatus::Pending => QueryResult::Pending,
        })
    }

    /// `alipay.acquire.overseas.spot.refund`: an in-store trade's refund, decided at once.
    async fn refund_in_store(&self, refund: &RefundPayment) -> Result<RefundResult, ChannelError> {
        let mut p = self.base("alipay.acquire.overseas.spot.refund");
        let fields = [
            ("notify_url", self.config.notify_url.to_string()),
            ("partner_trans_id", refund.payment_id.to_string()),
            ("partner_refund_id", refund.refund_id.to_string()),
            ("refund_amount", refund.money.major_plain()),
            ("currency", refund.money.currency.code().to_owned()),
            ("refund_reason", "merchant refund".to_owned()),
        ];
        p.extend(fields.into_iter().map(|(k, v)| (k.to_owned(), v)));
        let answer = self.in_store_call(p).await?;
        let get = |name: &str| answer.get(name).map_or("", String::as_str);
        match (get("result_code"), get("detail_error_code")) {
            ("SUCCESS", _) => {
                if get("partner_refund_id") != refund.refund_id.as_str() {
                    return Err(ChannelError::upstream(
                        "spot.refund answered about another refund",
                    ));
                }
                Ok(RefundResult::Succeeded {
                    channel_refund_id: answer
                        .get("alipay_trans_id")
                        .cloned()
                        .unwrap_or_else(|| refund.refund_id.to_string()),
                })
            }
            // Not decided (Alipay's own word for it is UNKNOW): asked about again later.
            ("UNKNOW", _) | (_, "SYSTEM_ERROR" | "SYSTEM_EXCEPTION") => {
                Err(ChannelError::upstream("spot.refund: Alipay system error"))
            }
            (_, code) => Ok(RefundResult::Refused {
                reason: if code.is_empty() { "FAIL" } else { code }.to_owned(),
            }),
        }
    }
}

fn with_query(base: &Url, params: &Params) -> Url {
    let mut url = base.clone();
    url.query_pairs_mut().clear().extend_pairs(params.iter());
    url
}

/// `it_b_pay`: how long the QR trade may wait, in whole minutes (`1m` to `15d`).
fn pay_timeout(created: Timestamp, expires: Timestamp) -> String {
    let minutes = created
        .until(expires)
        .as_secs()
        .div_ceil(60)
        .clamp(1, 15 * 24 * 60);
    format!("{minutes}m")
}

#[async_trait]
impl Channel for AlipayConnector {
    fn name(&self) -> &'static str {
        "alipay"
    }

    fn is_test_mode(&self) -> bool {
        self.config.test_mode
    }

    /// A form POST: a trade's status, or a refund's result; signed as the configured type.
    fn read_notification(&self, body: &[u8]) -> Result<Notification, NotificationError> {
        let params = parse_form(body);
        if !self.verify(&params) {
            return Err(NotificationError::BadSignature);
        }
        let message_id = params.get("notify_id").filter(|id| !id.is_empty()).cloned();
        let notice =
            Notice::read(&params).map_err(|e| NotificationError::Malformed(e.to_string()))?;
        Ok(match notice {
            Notice::Trade {
                out_trade_no,
                trade_no,
                total_fee,
                currency,
                status,
            } => Notification {
                subject: Subject::Payment {
                    attempt_id: out_trade_no,
                },
                money: currency
                    .parse::<Currency>()
                    .ok()
                    .and_then(|c| Money::parse_major(&total_fee, c))
                    .map_or(Stated::Unreadable, Stated::Money),
                outcome: match status {
                    TradeStatus::Finished => Outcome::Succeeded {
                        wallet_ref: Some(trade_no),
                    },
                    TradeStatus::Closed => Outcome::Failed,
                    TradeStatus::Pending => Outcome::Undecided,
                },
                sub_merchant: None,
                message_id,
                buyer_paid: None,
            },
            Notice::Refund {
                out_trade_no,
                out_return_no,
                succeeded,
                ..
            } => Notification {
                subject: Subject::Refund {
                    refund_id: out_return_no,
                    payment: PaymentRef::Ours(out_trade_no),
                },
                money: Stated::Unstated,
                outcome: if succeeded {
                    Outcome::Succeeded { wallet_ref: None }
                } else {
                    Outcome::Failed
                },
                sub_merchant: None,
                message_id,
                buyer_paid: None,
            },
        })
    }

    /// `notify_verify`, unless configured off: Alipay must confirm it sent this.
    async fn confirm_notification(
        &self,
        notification: &Notification,
    ) -> Result<(), NotificationError> {
        if !self.config.notify_verify {
            return Ok(());
        }
        let notify_id = notification
            .message_id
            .as_deref()
            .ok_or_else(|| NotificationError::Malformed("no notify_id".into()))?;
        match self.confirm_notification_id(notify_id).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(NotificationError::NotConfirmed),
            Err(e) => Err(NotificationError::Unconfirmed(e.to_string())),
        }
    }

    /// The body `success`; anything else makes Alipay send it again.
    fn acknowledge(&self, refused: Option<&str>) -> Acknowledgement {
        Acknowledgement::text(200, if refused.is_none() { "success" } else { "fail" })
    }

    async fn start(&self, payment: &StartPayment) -> Result<PaymentStart, ChannelError> {
        match payment.flow {
            Flow::MerchantQr => return self.precreate(payment).await,
            Flow::InWallet => {
                return Err(ChannelError::Config(
                    "Alipay has no payment inside its own browser here".into(),
                ));
            }
            Flow::App => {
                return Ok(PaymentStart {
                    action: StartAction::AppSdk {
                        params: self.app_payment(payment)?.into_iter().collect(),
                    },
                    channel_order_id: Some(payment.attempt_id.to_string()),
                });
            }
            Flow::Barcode => return Err(crate::barcode_not_started()),
            Flow::Browser(_) => {}
        }
        Ok(PaymentStart {
            action: StartAction::Redirect(self.payment_url(payment)?),
            // What Alipay will know this payment by until it creates its own trade_no.
            channel_order_id: Some(payment.attempt_id.to_string()),
        })
    }

    /// `single_trade_query`. The `<trade>` node is signed; an answer whose signature does
    /// not verify is an error, never a result.
    async fn query(&self, payment: &QueryPayment) -> Result<QueryResult, ChannelError> {
        if matches!(payment.flow, Flow::MerchantQr | Flow::Barcode) {
            return self.query_in_store(payment).await;
        }
        let mut p = self.base("single_trade_query");
        p.insert("out_trade_no".into(), payment.attempt_id.to_string());
        let doc = self.call(p).await?;
        if doc.child_text("is_success") != Some("T") {
            return match doc.child_text("error") {
                Some("TRADE_NOT_EXIST") => Ok(QueryResult::NotFound),
                Some(code) => Err(ChannelError::upstream(format!(
                    "single_trade_query: {code}"
                ))),
                None => Err(ChannelError::upstream(
                    "single_trade_query failed without a code",
                )),
            };
        }
        let trade = self.signed_response(&doc, "trade", "single_trade_query")?;
        if trade.get("out_trade_no").map(String::as_str) != Some(payment.attempt_id.as_str()) {
            return Err(ChannelError::upstream(
                "single_trade_query answered about another trade",
            ));
        }
        Ok(
            match TradeStatus::parse(trade.get("trade_status").map_or("", String::as_str)) {
                TradeStatus::Finished => QueryResult::Paid {
                    bizpay_order_id: trade.get("trade_no").cloned().unwrap_or_default(),
                    // Whether the query's total_fee is in CNY or the settlement currency is an
                    // open question (docs/alipay.md): it is not used to check the amount.
                    money: None,
                },
                TradeStatus::Closed => QueryResult::Closed,
                TradeStatus::Pending => QueryResult::Pending,
            },
        )
    }

    fn reads_statements(&self) -> bool {
        true
    }

    /// `forex_compare_file` for the one day: the partner's payments and refunds
    /// (docs/reconciliation.md). Alipay refuses a range ending today or later (`Finish
    /// date not ahead of today`): not ready yet.
    async fn statement(
        &self,
        day: ottgate_core::recon::WalletDay,
    ) -> Result<Option<Vec<ottgate_core::recon::StatementLine>>, ChannelError> {
        let mut p = self.base("forex_compare_file");
        p.insert("start_date".into(), day.compact());
        p.insert("end_date".into(), day.compact());
        let text = self
            .get_signed(p)
            .await
            .map_err(|e| ChannelError::upstream(format!("forex_compare_file: {e}")))?;
        if text.contains(compare::NOT_READY) {
            return Ok(None);
        }
        // A refusal is one line of text (or Alipay's XML), never a file line.
        if !text.contains('|') && text.trim() != compare::NO_DATA {
            let said: String = text.trim().chars().take(200).collect();
            return Err(ChannelError::upstream(format!(
                "forex_compare_file: {said}"
            )));
        }
        compare::parse(&text)
            .and_then(compare::statement_lines)
            .map(Some)
            .map_err(|e| ChannelError::upstream(format!("forex_compare_file: {e}")))
    }

    fn can_query_refunds(&self) -> bool {
        true
    }

    /// `alipay.acquire.refund.query`, for online (`forex_refund`) and in-store refunds
    /// alike: the answer is read only once its signature verifies (docs/alipay.md).
    async fn query_refund(&self, refund: &QueryRefund) -> Result<RefundQueryResult, ChannelError> {
        let mut p = self.base("alipay.acquire.refund.query");
        p.insert("out_trade_no".into(), refund.payment_id.to_string());
        p.insert("out_return_no".into(), refund.refund_id.to_string());
        let answer = self.in_store_call(p).await?;
        let get = |name: &str| answer.get(name).map_or("", String::as_str);
        let about_it = get("out_return_no") == refund.refund_id.as_str();
        match (get("response_code"), get("refund_result_code")) {
            ("SUCCESS", _) if !about_it => Err(ChannelError::upstream(
                "alipay.acquire.refund.query answered about another refund",
            )),
            ("SUCCESS", "SUCCESS") => Ok(RefundQueryResult::Succeeded {
                channel_refund_id: None,
            }),
            ("SUCCESS", "PROCESSING") => Ok(RefundQueryResult::Pending),
            ("SUCCESS", "FAILED" | "CANCELED") => Ok(RefundQueryResult::Failed),
            // Not known at all: still in flight, unless it was asked for long ago.
            ("NOT_FOUND", _) => Ok(
                if refund.asked_at.epoch_millis() - refund.requested_at.epoch_millis()
                    > REFUND_NOT_FOUND_GRACE_MS
                {
                    RefundQueryResult::Failed
                } else {
                    RefundQueryResult::Pending
                },
            ),
            (code, result) => Err(ChannelError::upstream(format!(
                "alipay.acquire.refund.query: {code} {result}"
            ))),
        }
    }

    /// `forex_refund`, asynchronous: the result comes to the notify URL.
    /// Alipay's barcode practice (docs/instore.md): query 5 s after an undecided answer,
    /// then every 3 s up to 60 s after the payment began; then `alipay.acquire.cancel`,
    /// again every 5 s while Alipay says `retry_flag=Y` or does not answer.
    fn barcode_rules(&self) -> Option<BarcodeRules> {
        Some(BarcodeRules {
            first_query: Duration::from_secs(5),
            query_every: Duration::from_secs(3),
            query_for: Duration::from_secs(60),
            undo_not_before: Duration::ZERO,
            undo_every: Duration::from_secs(5),
        })
    }

    /// `alipay.acquire.overseas.spot.pay`: `SUCCESS` with `TRADE_SUCCESS` is paid; `UNKNOW`
    /// (the buyer confirms on the phone), `WAIT_BUYER_PAY`, a system error or no answer are
    /// undecided; any other failure is final.
    async fn barcode_pay(&self, payment: &BarcodePayment) -> Result<BarcodeResult, ChannelError> {
        let mut p = self.base("alipay.acquire.overseas.spot.pay");
        let industry = payment
            .channel_ids
            .mcc
            .clone()
            .unwrap_or_else(|| self.config.industry.clone());
        let mut extend = serde_json::json!({
            "secondary_merchant_id": payment.merchant_id,
            "secondary_merchant_name": subject(&payment.description),
            "secondary_merchant_industry": industry,
            "store_id": payment.merchant_id,
            "store_name": subject(&payment.description),
        });
        if let Some(terminal) = &payment.terminal {
            extend["terminal_id"] = serde_json::Value::String(terminal.clone());
        }
        let fields = [
            ("notify_url", self.config.notify_url.to_string()),
            ("alipay_seller_id", self.config.partner.clone()),
            ("quantity", "1".to_owned()),
            ("trans_name", subject(&payment.description)),
            ("partner_trans_id", payment.attempt_id.to_string()),
            ("currency", payment.money.currency.code().to_owned()),
            ("trans_amount", payment.money.major_plain()),
            ("buyer_identity_code", payment.auth_code.clone()),
            ("identity_code_type", "barcode".to_owned()),
            ("trans_create_time", payment.started_at.beijing_compact()),
            ("biz_product", "OVERSEAS_MBARCODE_PAY".to_owned()),
            ("extend_info", extend.to_string()),
        ];
        p.extend(fields.into_iter().map(|(k, v)| (k.to_owned(), v)));
        let answer = match self.in_store_call(p).await {
            Ok(answer) => answer,
            Err(ChannelError::Upstream { message, .. }) => {
                return Ok(BarcodeResult::Undecided { reason: message });
            }
            Err(e) => return Err(e),
        };
        let get = |name: &str| answer.get(name).map_or("", String::as_str);
        if !get("partner_trans_id").is_empty()
            && get("partner_trans_id") != payment.attempt_id.as_str()
        {
            return Ok(BarcodeResult::Undecided {
                reason: "spot.pay answered about another trade".into(),
            });
        }
        Ok(
            match (
                get("result_code"),
                get("alipay_trans_status"),
                get("detail_error_code"),
            ) {
                ("SUCCESS", "TRADE_SUCCESS", _) => BarcodeResult::Paid {
                    bizpay_order_id: get("alipay_trans_id").to_owned(),
                    buyer: answer.get("alipay_buyer_login_id").cloned(),
                    money: get("currency")
                        .parse::<Currency>()
                        .ok()
                        .and_then(|currency| Money::parse_major(get("trans_amount"), currency)),
                },
                ("SUCCESS" | "UNKNOW", _, _) | (_, _, "SYSTEM_ERROR" | "SYSTEM_EXCEPTION") => {
                    BarcodeResult::Undecided {
                        reason: format!("UNKNOW {}", get("alipay_trans_status"))
                            .trim()
                            .to_owned(),
                    }
                }
                (_, _, code) => BarcodeResult::Declined {
                    reason: if code.is_empty() { "FAIL" } else { code }.to_owned(),
                },
            },
        )
    }

    /// `alipay.acquire.cancel`: closes the trade, or refunds it if paid (same Beijing day).
    /// `retry_flag=Y`, a system error or no answer: ask again; `N`: refused for good.
    async fn undo(&self, payment: &UndoPayment) -> Result<UndoResult, ChannelError> {
        let mut p = self.base("alipay.acquire.cancel");
        p.insert("timestamp".into(), payment.at.epoch_millis().to_string());
        p.insert("out_trade_no".into(), payment.attempt_id.to_string());
        let answer = match self.in_store_call(p).await {
            Ok(answer) => answer,
            Err(ChannelError::Upstream { message, .. }) => {
                return Ok(UndoResult::Again { reason: message });
            }
            Err(e) => return Err(e),
        };
        let get = |name: &str| answer.get(name).map_or("", String::as_str);
        Ok(match (get("result_code"), get("retry_flag")) {
            ("SUCCESS", _) => UndoResult::Undone,
            (_, "Y") | ("UNKNOWN", _) => UndoResult::Again {
                reason: format!("retry_flag=Y {}", get("detail_error_code"))
                    .trim()
                    .to_owned(),
            },
            _ => UndoResult::Refused {
                reason: get("detail_error_code").to_owned(),
            },
        })
    }

    async fn refund(&self, refund: &RefundPayment) -> Result<RefundResult, ChannelError> {
        if matches!(refund.flow, Flow::MerchantQr | Flow::Barcode) {
            return self.refund_in_store(refund).await;
        }
        let mut p = self.base("forex_refund");
        let fields = [
            ("notify_url", self.config.notify_url.to_string()),
            ("out_return_no", refund.refund_id.to_string()),
            ("out_trade_no", refund.payment_id.to_string()),
            ("return_amount", refund.money.major_plain()),
            ("currency", refund.money.currency.code().to_owned()),
            ("gmt_return", refund.at.beijing_compact()),
            ("reason", "merchant refund".to_owned()),
            ("is_sync", "N".to_owned()),
        ];
        p.extend(fields.into_iter().map(|(k, v)| (k.to_owned(), v)));
        let doc = self.call(p).await?;
        match (doc.child_text("is_success"), doc.child_text("error")) {
            (Some("T"), _) => Ok(RefundResult::Pending),
            (_, Some("SYSTEM_EXCEPTION" | "SYSTEM_ERROR")) | (_, None) => {
                Err(ChannelError::upstream("forex_refund: Alipay system error"))
            }
            (_, Some(code)) => Ok(RefundResult::Refused {
                reason: code.to_owned(),
            }),
        }
    }
}

/// How long after a refund was asked for Alipay may still not know it before it counts as
/// never received (and so failed, its amount free again): an hour.
const REFUND_NOT_FOUND_GRACE_MS: i64 = 3_600_000;

/// The public test keys of `testkeys/` (never for live use).
pub mod testkeys {
    pub const MERCHANT_PRIVATE: &str = include_str!("../../testkeys/merchant_private.pem");
    pub const MERCHANT_PUBLIC: &str = include_str!("../../testkeys/merchant_public.pem");
    pub const WALLET_PRIVATE: &str = include_str!("../../testkeys/wallet_private.pem");
    pub const WALLET_PUBLIC: &str = include_str!("../../testkeys/wallet_public.pem");
    pub const MD5_KEY: &str = "ottsimtestmd5key0123456789abcdef";
    pub const PARTNER: &str = "2088000000000001";
}

/// Reads an RSA private key in PKCS#8 or PKCS#1 PEM.
pub fn private_key_pem(pem: &str) -> Result<rsa::RsaPrivateKey, ChannelError> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    rsa::RsaPrivateKey::from_pkcs8_pem(pem)
        .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(pem))
        .map_err(|_| ChannelError::Config("not an RSA private key in PKCS#8 or PKCS#1 PEM".into()))
}

/// Reads an RSA public key in SPKI (`BEGIN PUBLIC KEY`) or PKCS#1 PEM.
pub fn public_key_pem(pem: &str) -> Result<rsa::RsaPublicKey, ChannelError> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::pkcs8::DecodePublicKey;
    rsa::RsaPublicKey::from_public_key_pem(pem)
        .or_else(|_| rsa::RsaPublicKey::from_pkcs1_pem(pem))
        .map_err(|_| ChannelError::Config("not an RSA public key in SPKI or PKCS#1 PEM".into()))
}

/// A connector and the simulated Alipay it talks to, both on the gateway
/// (`/sim/alipay/…`, results to `/notify/alipay`), with the public test keys.
pub fn sandbox(
    urls: impl Into<crate::SandboxUrls>,
    sign_type: SignType,
    time_scale: f64,
) -> Result<(AlipayConfig, simulator::AlipaySimConfig), ChannelError> {
    let urls = urls.into();
    let (signing, verifying) = match sign_type {
        SignType::Md5 => (
            SigningMaterial::Md5(ottgate_core::Secret::new(testkeys::MD5_KEY)),
            VerifyingMaterial::Md5(ottgate_core::Secret::new(testkeys::MD5_KEY)),
        ),
        _ => (
            SigningMaterial::Rsa(Box::new(private_key_pem(testkeys::MERCHANT_PRIVATE)?)),
            VerifyingMaterial::Rsa(Box::new(public_key_pem(testkeys::WALLET_PUBLIC)?)),
        ),
    };
    let config = AlipayConfig {
        gateway_url: urls.public("sim/alipay/gateway.do")?,
        api_url: Some(urls.internal("sim/alipay/gateway.do")?),
        partner: testkeys::PARTNER.into(),
        sign_type,
        signing,
        verifying,
        notify_url: urls.internal("notify/alipay")?,
        industry: "5331".into(),
        notify_verify: true,
        test_mode: true,
    };
    let sim = simulator::AlipaySimConfig {
        partner: testkeys::PARTNER.into(),
        md5_key: ottgate_core::Secret::new(testkeys::MD5_KEY),
        partner_public: public_key_pem(testkeys::MERCHANT_PUBLIC)?,
        wallet_private: private_key_pem(testkeys::WALLET_PRIVATE)?,
        time_scale,
        base_url: urls.public("sim/alipay/")?,
        notify_targets: crate::simkit::NotifyTargets::Under(urls.internal.clone()),
    };
    Ok((config, sim))
}

/// Whether a notification's amount and currency are exactly the payment's.
pub fn amount_matches(total_fee: &str, currency: &str, expected: Money) -> bool {
    currency.parse::<Currency>().ok() == Some(expected.currency)
        && Money::parse_major(total_fee, expected.currency) == Some(expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_keep_only_what_alipay_accepts() {
        assert_eq!(
            subject("Maple Tea House (Yonge St.) & Co."),
            "Maple Tea House (Yonge St) Co"
        );
        assert_eq!(subject("枫茶 Tea"), "枫茶 Tea");
        assert_eq!(subject("\"&&\""), "Order");
    }

    #[test]
    fn notices_are_read_as_trades_or_refunds() {
        let form = parse_form(b"out_trade_no=1&trade_no=2&total_fee=0.01&currency=CAD&trade_status=WAIT_SOMETHING_NEW&sign=x");
        assert!(
            matches!(
                Notice::read(&form),
                Ok(Notice::Trade {
                    status: TradeStatus::Pending,
                    ..
                })
            ),
            "unknown statuses are pending"
        );
        let refund = parse_form(b"out_trade_no=1&out_return_no=REF1&refund_status=REFUND_FAIL&error_code=RETURN_AMOUNT_EXCEED");
        assert_eq!(
            Notice::read(&refund),
            Ok(Notice::Refund {
                out_trade_no: "1".into(),
                out_return_no: "REF1".into(),
                succeeded: false,
                error_code: Some("RETURN_AMOUNT_EXCEED".into())
            })
        );
        assert_eq!(
            Notice::read(&parse_form(b"trade_no=2")),
            Err(NoticeError::Missing("out_trade_no"))
        );
    }

    #[test]
    fn a_plus_in_a_signature_survives_one_decode() {
        let form = parse_form(b"sign=ab%2Bcd%3D%3D&subject=Tea+House");
        assert_eq!(
            (form["sign"].as_str(), form["subject"].as_str()),
            ("ab+cd==", "Tea House")
        );
    }

    #[test]
    fn amounts_must_match_exactly() {
        let m = Money::new(
            ottgate_core::Amount::from_minor(1234).unwrap(),
            Currency::Cad,
        );
        assert!(amount_matches("12.34", "CAD", m));
        assert!(!amount_matches("12.35", "CAD", m));
        assert!(!amount_matches("12.34", "USD", m));
        assert!(!amount_matches("12.340", "CAD", m));
    }
}
