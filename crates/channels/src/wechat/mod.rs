//! WeChat Pay API v2, institutional mode (docs/wechatpay.md): the connector.
//!
//! Every call is a signed XML POST answered in signed XML. Desktop buyers and merchant-shown
//! QR codes get `NATIVE` (a `weixin://` code), mobile browsers `MWEB` (a redirect to
//! WeChat's H5 page). Results arrive as signed XML notifications, acknowledged in XML.
//! `pay/queryexchagerate` gives the day's exchange rate (docs/wallets.md).

pub mod bill;
pub mod sign;
pub mod simulator;
mod wallet;

use async_trait::async_trait;
use ottgate_core::{Clock, Currency, Money, Secret};
use rand::Rng;
use sign::{Fields, SignType};
use std::fmt;
use std::time::Duration;
use url::Url;
pub use wallet::{Section, WALLET};

use crate::notification::stated_minor;
use crate::xml;
use crate::{
    Acknowledgement, BarcodePayment, BarcodeResult, BarcodeRules, Channel, ChannelError,
    ChannelIds, Device, ExchangeRate, Flow, Notification, NotificationError, Outcome, PaymentStart,
    QueryPayment, QueryRefund, QueryResult, RefundPayment, RefundQueryResult, RefundResult,
    StartAction, StartPayment, Subject, UndoPayment, UndoResult,
};

/// What the gateway needs to act as a WeChat Pay institution.
#[derive(Clone)]
pub struct WeChatConfig {
    /// The API root, e.g. `https://apihk.mch.weixin.qq.com/` (ending in `/`).
    pub api_url: Url,
    pub appid: String,
    /// The institution's merchant id.
    pub mch_id: String,
    /// The shop, under the institution.
    pub sub_mch_id: String,
    pub api_key: Secret,
    pub sign_type: SignType,
    /// Where WeChat posts results (our `/notify/wechatpay`).
    pub notify_url: Url,
    /// `spbill_create_ip` for NATIVE orders: the server's address.
    pub server_ip: String,
    /// A simulator's "scan with your phone" page, shown beside NATIVE QR codes.
    pub test_scan_url: Option<Url>,
    /// The API client certificate and its private key (PEM), presented on `secapi/`
    /// calls (refunds). The simulator does not ask for one.
    pub client_identity_pem: Option<Secret>,
    /// Inside WeChat's browser (REST `public-pay`): where WeChat signs the buyer in
    /// (`connect/oauth2/authorize`), where a code is exchanged for the buyer's `openid`
    /// (`sns/oauth2/access_token`), with the Official Account's (`appid`'s) AppSecret.
    /// Without the secret there is no payment inside WeChat.
    pub oauth: WeChatOAuth,
    pub test_mode: bool,
}

/// WeChat's sign-in of a buyer inside its browser (OAuth 2.0, `snsapi_base`).
#[derive(Debug, Clone)]
pub struct WeChatOAuth {
    pub authorize_url: Url,
    pub token_url: Url,
    pub app_secret: Option<Secret>,
    /// A simulator's stand-in for WeChat's JavaScript bridge (test mode only).
    pub bridge_script: Option<Url>,
}

impl WeChatOAuth {
    /// WeChat's own endpoints, with `app_secret`.
    pub fn live(app_secret: Option<Secret>) -> Result<Self, ChannelError> {
        let url = |u: &str| Url::parse(u).map_err(|e| ChannelError::Config(e.to_string()));
        Ok(Self {
            authorize_url: url("https://open.weixin.qq.com/connect/oauth2/authorize")?,
            token_url: url("https://api.weixin.qq.com/sns/oauth2/access_token")?,
            app_secret,
            bridge_script: None,
        })
    }
}

impl fmt::Debug for WeChatConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeChatConfig")
            .field("api_url", &self.api_url.as_str())
            .field("appid", &self.appid)
            .field("mch_id", &self.mch_id)
            .field("sub_mch_id", &self.sub_mch_id)
            .field("sign_type", &self.sign_type)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct WeChatConnector {
    config: WeChatConfig,
    http: reqwest::Client,
    /// For `secapi/` calls: presents the client certificate when one is configured.
    secure_http: reqwest::Client,
}

/// Whether an answer must carry WeChat Pay's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signed {
    Always,
    /// Only checked when present (`queryexchagerate`, whose published answer has none).
    WhenSignatureSent,
}

/// A verified payment notification, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub out_trade_no: String,
    pub transaction_id: String,
    pub total_fee: String,
    pub fee_type: String,
    /// `result_code=SUCCESS`.
    pub paid: bool,
}

impl Notice {
    /// Reads an already verified payment notification.
    pub fn read(fields: &Fields) -> Result<Self, NoticeError> {
        if fields.get("return_code").map(String::as_str) != Some("SUCCESS") {
            return Err(NoticeError::NotSuccessful);
        }
        let get = |name: &'static str| {
            fields
                .get(name)
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or(NoticeError::Missing(name))
        };
        Ok(Self {
            out_trade_no: get("out_trade_no")?,
            transaction_id: fields.get("transaction_id").cloned().unwrap_or_default(),
            total_fee: get("total_fee")?,
            fee_type: fields
                .get("fee_type")
                .cloned()
                .unwrap_or_else(|| "CNY".into()),
            paid: fields.get("result_code").map(String::as_str) == Some("SUCCESS"),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoticeError {
    #[error("notification is not XML: {0}")]
    NotXml(String),
    #[error("return_code is not SUCCESS")]
    NotSuccessful,
    #[error("notification lacks {0}")]
    Missing(&'static str),
}

/// The acknowledgement WeChat expects (anything else makes it re-send).
pub const ACK_SUCCESS: &str = "<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>";

/// A refusal, so WeChat tries again.
pub fn ack_fail(message: &str) -> String {
    format!(
        "<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[{}]]></return_msg></xml>",
        message.replace("]]>", "")
    )
}

/// Parses a flat `<xml>…</xml>` message into its fields.
pub fn parse_message(body: &str) -> Result<Fields, xml::XmlError> {
    Ok(xml::parse(body)?.flat())
}

/// Writes fields as a flat `<xml>` message, values in CDATA.
pub fn to_xml(fields: &Fields) -> String {
    let mut out = String::from("<xml>");
    for (k, v) in fields {
        out.push_str(&format!("<{k}><![CDATA[{}]]></{k}>", v.replace("]]>", "")));
    }
    out.push_str("</xml>");
    out
}

pub fn nonce() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::thread_rng();
    (0..32)
        .map(|_| char::from(CHARS[rng.gen_range(0..CHARS.len())]))
        .collect()
}

/// The body WeChat shows the buyer: at most 127 characters.
fn body(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .filter(|c| !c.is_control() && *c != '<' && *c != '>' && *c != '&')
        .collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() {
        "Order".into()
    } else {
        cleaned.chars().take(127).collect()
    }
}

impl WeChatConnector {
    pub fn new(config: WeChatConfig) -> Result<Self, ChannelError> {
        let http = crate::build_http(crate::upstream_http())?;
        let secure_http = match &config.client_identity_pem {
            Some(pem) => {
                let identity = reqwest::Identity::from_pem(pem.expose_secret().as_bytes())
                    .map_err(|_| {
                        ChannelError::Config(
                            "the WeChat Pay client certificate is not a PEM certificate and key"
                                .into(),
                        )
                    })?;
                crate::build_http(crate::upstream_http().identity(identity))?
            }
            None => http.clone(),
        };
        Ok(Self {
            config,
            http,
            secure_http,
        })
    }

    pub fn config(&self) -> &WeChatConfig {
        &self.config
    }

    /// `unifiedorder` for `payment` as `trade_type`, with that type's own fields (`extra`):
    /// WeChat's answer once it says SUCCESS, and the fields that were sent.
    async fn unified_order(
        &self,
        payment: &StartPayment,
        trade_type: &str,
        extra: Fields,
    ) -> Result<(Fields, Fields), ChannelError> {
        let mut f = self.base(&payment.channel_ids);
        let fields = [
            ("body", body(&payment.subject)),
            ("out_trade_no", payment.attempt_id.to_string()),
            ("fee_type", payment.money.currency.code().to_owned()),
            ("total_fee", payment.money.amount.minor().to_string()),
            ("spbill_create_ip", self.config.server_ip.clone()),
            ("time_start", payment.created_at.beijing_compact()),
            ("time_expire", payment.expires_at.beijing_compact()),
            ("notify_url", self.config.notify_url.to_string()),
            ("trade_type", trade_type.to_owned()),
        ];
        f.extend(fields.into_iter().map(|(k, v)| (k.to_owned(), v)));
        f.extend(extra);
        let answer = self.call("pay/unifiedorder", f.clone()).await?;
        if answer.get("result_code").map(String::as_str) != Some("SUCCESS") {
            let code = answer.get("err_code").map_or("FAIL", String::as_str);
            return Err(ChannelError::upstream(format!("unifiedorder: {code}")));
        }
        Ok((answer, f))
    }

    /// The `prepay_id` of a SUCCESS `unifiedorder` answer.
    fn prepay_id(answer: &Fields) -> Result<String, ChannelError> {
        answer
            .get("prepay_id")
            .cloned()
            .ok_or_else(|| ChannelError::upstream("unifiedorder: no prepay_id"))
    }

    /// Now, in Unix seconds, as the bridge and the SDK take their `timeStamp`.
    fn unix_now() -> String {
        ottgate_core::SystemClock
            .now()
            .epoch_millis()
            .div_euclid(1000)
            .to_string()
    }

    /// `unifiedorder` with `trade_type=JSAPI` for the buyer WeChat signed in, then the
    /// parameters of `getBrandWCPayRequest`, `paySign` over exactly `appId`, `nonceStr`,
    /// `package`, `signType`, `timeStamp` (docs/wechatpay.md).
    async fn start_in_wechat(&self, payment: &StartPayment) -> Result<PaymentStart, ChannelError> {
        let openid = payment.payer.clone().ok_or_else(|| {
            ChannelError::Config("a payment inside WeChat needs the buyer's openid".into())
        })?;
        // A buyer of the merchant's own mini-program is known under its app id: the order
        // names both (institutional mode), and the page signs with that app id.
        let (extra, app_id) = match &payment.payer_app {
            Some(app) => (
                Fields::from([
                    ("sub_appid".to_owned(), app.clone()),
                    ("sub_openid".to_owned(), openid),
                ]),
                app.clone(),
            ),
            None => (
                Fields::from([("openid".to_owned(), openid)]),
                self.config.appid.clone(),
            ),
        };
        let (answer, _) = self.unified_order(payment, "JSAPI", extra).await?;
        let prepay_id = Self::prepay_id(&answer)?;
        let params = pay_request(&self.config, &app_id, &prepay_id, &Self::unix_now());
        Ok(PaymentStart {
            action: StartAction::WalletBridge {
                params: params.into_iter().collect(),
                bridge_script: self.config.oauth.bridge_script.clone(),
            },
            channel_order_id: Some(prepay_id),
        })
    }

    /// `unifiedorder` with `trade_type=APP`, then the parameters the merchant's app hands
    /// WeChat's SDK (`PayReq`), signed (docs/wechatpay.md, App payments).
    async fn start_in_app(&self, payment: &StartPayment) -> Result<PaymentStart, ChannelError> {
        let (answer, sent) = self.unified_order(payment, "APP", Fields::new()).await?;
        let prepay_id = Self::prepay_id(&answer)?;
        let sub_mch_id = sent.get("sub_mch_id").map_or("", String::as_str);
        let params = app_request(&self.config, sub_mch_id, &prepay_id, &Self::unix_now());
        Ok(PaymentStart {
            action: StartAction::AppSdk {
                params: params.into_iter().collect(),
            },
            channel_order_id: Some(prepay_id),
        })
    }

    /// The fields of every request; the merchant's own `sub_mch_id` when it has one.
    fn base(&self, ids: &ChannelIds) -> Fields {
        let sub_mch_id = ids
            .wechat_sub_mch_id
            .as_ref()
            .unwrap_or(&self.config.sub_mch_id);
        let mut f = Fields::new();
        f.insert("appid".into(), self.config.appid.clone());
        f.insert("mch_id".into(), self.config.mch_id.clone());
        f.insert("sub_mch_id".into(), sub_mch_id.clone());
        f.insert("nonce_str".into(), nonce());
        if self.config.sign_type == SignType::HmacSha256 {
            f.insert("sign_type".into(), SignType::HmacSha256.code().into());
        }
        f
    }

    /// Whether a message is about this account (`appid` and `mch_id`).
    pub fn is_for_our_account(&self, fields: &Fields) -> bool {
        fields.get("appid") == Some(&self.config.appid)
            && fields.get("mch_id") == Some(&self.config.mch_id)
    }

    /// Whether a message carries WeChat's valid signature, of the configured type.
    pub fn verify(&self, fields: &Fields) -> bool {
        SignType::of(fields) == Some(self.config.sign_type)
            && sign::verify(fields, &self.config.api_key)
    }

    /// `pay/downloadbill`: the `ALL` bill of `bill_date` (`yyyyMMdd`, a Beijing day) for
    /// the sub-merchant `ids` name (`None`: the whole account), read strictly ([`bill::parse`]). `Ok(None)`: WeChat Pay
    /// has no bill for that day (`No Bill Exist`: no trades, or not generated yet — asked
    /// again later). A bill that does not read whole is an error naming why.
    pub async fn download_bill(
        &self,
        ids: Option<&ChannelIds>,
        bill_date: &str,
    ) -> Result<Option<Vec<bill::BillRow>>, ChannelError> {
        let Some(text) = self.download_bill_text(ids, bill_date).await? else {
            return Ok(None);
        };
        bill::parse(&text)
            .map(Some)
            .map_err(|e| ChannelError::upstream(format!("pay/downloadbill: {e}")))
    }

    /// The `ALL` bill's text, or `None` for `No Bill Exist` (see [`Self::download_bill`]).
    async fn download_bill_text(
        &self,
        ids: Option<&ChannelIds>,
        bill_date: &str,
    ) -> Result<Option<String>, ChannelError> {
        let mut fields = self.base(ids.unwrap_or(&ChannelIds::default()));
        if ids.is_none() {
            fields.remove("sub_mch_id");
        }
        fields.insert("bill_date".into(), bill_date.to_owned());
        fields.insert("bill_type".into(), "ALL".into());
        fields.insert("tar_type".into(), "GZIP".into());
        let body = self.post_signed_bytes("pay/downloadbill", fields).await?;
        // A bill comes gzipped (a tenth of the text); a refusal is WeChat's XML.
        let text = if body.starts_with(&[0x1f, 0x8b]) {
            gunzip(&body).map_err(|e| {
                ChannelError::upstream(format!("pay/downloadbill: the gzipped bill {e}"))
            })?
        } else {
            String::from_utf8(body.to_vec()).map_err(|_| {
                ChannelError::upstream("pay/downloadbill: an answer that is not UTF-8")
            })?
        };
        if text.trim_start().starts_with("<xml>") {
            let answer = parse_message(&text)
                .map_err(|e| ChannelError::upstream_from("WeChat Pay answer unreadable", e))?;
            let message = answer.get("return_msg").map_or("", String::as_str);
            if message.contains("No Bill Exist") {
                return Ok(None);
            }
            return Err(ChannelError::upstream(format!(
                "pay/downloadbill: {message}"
            )));
        }
        Ok(Some(text))
    }

    /// POSTs a signed request and returns the verified answer (with `return_code=SUCCESS`).
    async fn call(&self, path: &str, fields: Fields) -> Result<Fields, ChannelError> {
        self.call_checked(path, fields, Signed::Always).await
    }

    async fn call_checked(
        &self,
        path: &str,
        fields: Fields,
        signed: Signed,
    ) -> Result<Fields, ChannelError> {
        let text = self.post_signed(path, fields).await?;
        let answer = parse_message(&text)
            .map_err(|e| ChannelError::upstream_from("WeChat Pay answer unreadable", e))?;
        if answer.get("return_code").map(String::as_str) != Some("SUCCESS") {
            return Err(ChannelError::upstream(format!(
                "{path}: {}",
                answer
                    .get("return_msg")
                    .map_or("communication failure", String::as_str)
            )));
        }
        let unsigned_allowed = signed == Signed::WhenSignatureSent && !answer.contains_key("sign");
        if !unsigned_allowed && !self.verify(&answer) {
            return Err(ChannelError::upstream(format!(
                "{path}: answer is not signed by WeChat Pay"
            )));
        }
        Ok(answer)
    }

    /// Signs `fields`, POSTs them as XML to `path` and returns the answer's text, unread:
    /// an API answer or, for `pay/downloadbill`, a bill.
    async fn post_signed(&self, path: &str, fields: Fields) -> Result<String, ChannelError> {
        let body = self.post_signed_bytes(path, fields).await?;
        String::from_utf8(body.to_vec())
            .map_err(|_| ChannelError::upstream("WeChat Pay answer is not UTF-8"))
    }

    /// [`Self::post_signed`], the answer as bytes (a gzipped bill).
    async fn post_signed_bytes(
        &self,
        path: &str,
        mut fields: Fields,
    ) -> Result<axum::body::Bytes, ChannelError> {
        let signature = sign::sign(&fields, self.config.sign_type, &self.config.api_key);
        fields.insert("sign".into(), signature);
        let url = self
            .config
            .api_url
            .join(path)
            .map_err(|e| ChannelError::Config(e.to_string()))?;
        let http = if path.starts_with("secapi/") {
            &self.secure_http
        } else {
            &self.http
        };
        let response = http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=utf-8")
            .body(to_xml(&fields))
            .send()
            .await
            .map_err(|e| ChannelError::unreachable("WeChat Pay", e))?;
        response
            .bytes()
            .await
            .map_err(|e| ChannelError::upstream_from("WeChat Pay answer unreadable", e))
    }
}

/// The most a gzipped bill may unpack to: far beyond a day of the largest account (a
/// million rows is some 250 MB), and short of a gzip bomb.
const MAX_BILL_BYTES: u64 = 1 << 30;

/// A gzipped bill's text, or why it is not one.
fn gunzip(body: &[u8]) -> Result<String, &'static str> {
    use std::io::Read;
    let mut text = String::new();
    let read = flate2::read::GzDecoder::new(body)
        .take(MAX_BILL_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|_| "does not unpack (cut short or not gzip) or is not UTF-8")?;
    if read as u64 > MAX_BILL_BYTES {
        return Err("unpacks to more than 1 GiB");
    }
    Ok(text)
}

/// The simulated WeChat Pay's institution (sandbox mode and tests).
pub mod testkeys {
    pub const APPID: &str = "wx0000000000000001";
    pub const MCH_ID: &str = "1900000001";
    pub const SUB_MCH_ID: &str = "1900000002";
    pub const API_KEY: &str = "OttSimWeChatApiKey00000000000000";
    /// The Official Account's AppSecret, for signing buyers in inside WeChat.
    pub const APP_SECRET: &str = "OttSimWeChatAppSecret00000000000";
}

/// A connector configured against the simulated WeChat Pay mounted at `sim/wechatpay/`
/// on the gateway, and that simulator's configuration.
pub fn sandbox(
    urls: impl Into<crate::SandboxUrls>,
    sign_type: SignType,
    time_scale: f64,
) -> Result<(WeChatConfig, simulator::WeChatSimConfig), ChannelError> {
    let urls = urls.into();
    let config = WeChatConfig {
        api_url: urls.internal("sim/wechatpay/")?,
        appid: testkeys::APPID.into(),
        mch_id: testkeys::MCH_ID.into(),
        sub_mch_id: testkeys::SUB_MCH_ID.into(),
        api_key: Secret::new(testkeys::API_KEY),
        sign_type,
        notify_url: urls.internal("notify/wechatpay")?,
        server_ip: "127.0.0.1".into(),
        test_scan_url: Some(urls.public("sim/wechatpay/scan")?),
        client_identity_pem: None,
        oauth: WeChatOAuth {
            authorize_url: urls.public("sim/wechatpay/connect/oauth2/authorize")?,
            token_url: urls.internal("sim/wechatpay/sns/oauth2/access_token")?,
            app_secret: Some(Secret::new(testkeys::APP_SECRET)),
            bridge_script: Some(urls.public("sim/wechatpay/jsbridge.js")?),
        },
        test_mode: true,
    };
    let sim = simulator::WeChatSimConfig {
        appid: testkeys::APPID.into(),
        mch_id: testkeys::MCH_ID.into(),
        api_key: Secret::new(testkeys::API_KEY),
        app_secret: Secret::new(testkeys::APP_SECRET),
        time_scale,
        base_url: urls.public("sim/wechatpay/")?,
        notify_targets: crate::simkit::NotifyTargets::Under(urls.internal.clone()),
        exchange_rates: simulator::default_exchange_rates(),
    };
    Ok((config, sim))
}

/// `getBrandWCPayRequest`'s (and `wx.requestPayment`'s) parameters for `prepay_id`, signed
/// (`paySign`) under `app_id`: ours, or the merchant's mini-program's.
pub fn pay_request(
    config: &WeChatConfig,
    app_id: &str,
    prepay_id: &str,
    time_stamp: &str,
) -> Fields {
    let mut p = Fields::new();
    p.insert("appId".into(), app_id.to_owned());
    p.insert("timeStamp".into(), time_stamp.to_owned());
    p.insert("nonceStr".into(), nonce());
    p.insert("package".into(), format!("prepay_id={prepay_id}"));
    p.insert("signType".into(), config.sign_type.code().to_owned());
    let pay_sign = sign::sign(&p, config.sign_type, &config.api_key);
    p.insert("paySign".into(), pay_sign);
    p
}

/// The SDK's `PayReq` for `prepay_id`: `partnerid` is the sub-merchant the order was
/// placed for, `package` the fixed `Sign=WXPay`, signed as the order was (`sign`).
pub fn app_request(
    config: &WeChatConfig,
    partner_id: &str,
    prepay_id: &str,
    timestamp: &str,
) -> Fields {
    let mut p = Fields::new();
    p.insert("appid".into(), config.appid.clone());
    p.insert("partnerid".into(), partner_id.to_owned());
    p.insert("prepayid".into(), prepay_id.to_owned());
    p.insert("package".into(), "Sign=WXPay".into());
    p.insert("noncestr".into(), nonce());
    p.insert("timestamp".into(), timestamp.to_owned());
    let signature = sign::sign(&p, config.sign_type, &config.api_key);
    p.insert("sign".into(), signature);
    p
}

/// WeChat amounts are integers in minor units.
pub fn amount_matches(total_fee: &str, fee_type: &str, expected: Money) -> bool {
    fee_type.parse::<Currency>().ok() == Some(expected.currency)
        && total_fee.parse::<u64>().ok() == Some(expected.amount.minor())
}

/// What the buyer paid in yuan: `cash_fee` when `cash_fee_type` is CNY, with the
/// cross-border `rate` (CNY per unit × 10^8) when WeChat Pay sends one.
fn buyer_paid(fields: &Fields) -> Option<ottgate_core::BuyerPaid> {
    if fields.get("cash_fee_type").map(String::as_str) != Some("CNY") {
        return None;
    }
    Some(ottgate_core::BuyerPaid {
        cny: fields.get("cash_fee")?.parse().ok()?,
        rate: fields
            .get("rate")
            .filter(|r| !r.is_empty() && r.len() <= 20)
            .cloned(),
    })
}

fn minor_money(total_fee: Option<&String>, fee_type: Option<&String>) -> Option<Money> {
    let currency = fee_type?.parse::<Currency>().ok()?;
    Some(Money::new(
        ottgate_core::Amount::from_minor(total_fee?.parse().ok()?).ok()?,
        currency,
    ))
}

#[async_trait]
impl Channel for WeChatConnector {
    fn name(&self) -> &'static str {
        "wechatpay"
    }

    fn is_test_mode(&self) -> bool {
        self.config.test_mode
    }

    /// An XML payment result: signed with our API key, for our `appid` and `mch_id`.
    fn read_notification(&self, body: &[u8]) -> Result<Notification, NotificationError> {
        let malformed = |e: &dyn fmt::Display| NotificationError::Malformed(e.to_string());
        let text = std::str::from_utf8(body).map_err(|e| malformed(&e))?;
        let fields = parse_message(text).map_err(|e| malformed(&e))?;
        if !self.verify(&fields) {
            return Err(NotificationError::BadSignature);
        }
        if !self.is_for_our_account(&fields) {
            return Err(NotificationError::NotOurAccount);
        }
        let notice = Notice::read(&fields).map_err(|e| malformed(&e))?;
        let outcome = match notice.paid {
            true if notice.transaction_id.is_empty() => {
                return Err(malformed(&"a payment without transaction_id"));
            }
            true => Outcome::Succeeded {
                wallet_ref: Some(notice.transaction_id),
            },
            false => Outcome::Failed,
        };
        Ok(Notification {
            subject: Subject::Payment {
                attempt_id: notice.out_trade_no,
            },
            money: stated_minor(Some(&notice.total_fee), notice.fee_type.parse().ok()),
            outcome,
            sub_merchant: fields.get("sub_mch_id").cloned(),
            message_id: None,
            buyer_paid: buyer_paid(&fields),
        })
    }

    /// The shop the notification names is the merchant's own (or the deployment's).
    fn addressed_to(&self, sub_merchant: &str, ids: &ChannelIds) -> bool {
        sub_merchant
            == ids
                .wechat_sub_mch_id
                .as_ref()
                .unwrap_or(&self.config.sub_mch_id)
    }

    /// WeChat's XML `SUCCESS`; a `FAIL` makes it send the notification again.
    fn acknowledge(&self, refused: Option<&str>) -> Acknowledgement {
        Acknowledgement {
            status: 200,
            content_type: "text/xml; charset=utf-8",
            body: match refused {
                None => ACK_SUCCESS.to_owned(),
                Some(reason) => ack_fail(reason),
            },
        }
    }

    /// `pay/queryexchagerate` (sic): WeChat Pay's CNY rate for `fee_type` on `date`
    /// (`yyyyMMdd`, Beijing). `None` when WeChat Pay has no rate for that currency.
    fn reads_statements(&self) -> bool {
        true
    }

    /// The day's `ALL` bill of the whole service-provider account (no `sub_mch_id`).
    async fn statement(
        &self,
        day: ottgate_core::recon::WalletDay,
    ) -> Result<Option<Vec<ottgate_core::recon::StatementLine>>, ChannelError> {
        let Some(text) = self.download_bill_text(None, &day.compact()).await? else {
            return Ok(None);
        };
        bill::parse_statement(&text)
            .map(Some)
            .map_err(|e| ChannelError::upstream(format!("pay/downloadbill: {e}")))
    }

    async fn exchange_rate(
        &self,
        fee_type: &str,
        date: &str,
    ) -> Result<Option<ExchangeRate>, ChannelError> {
        let mut f = self.base(&ChannelIds::default());
        f.insert("fee_type".into(), fee_type.to_owned());
        f.insert("date".into(), date.to_owned());
        // The published answer lists no signature; one that carries one must verify.
        let answer = self
            .call_checked("pay/queryexchagerate", f, Signed::WhenSignatureSent)
            .await?;
        match (
            answer.get("result_code").map(String::as_str),
            answer.get("err_code").map(String::as_str),
        ) {
            (None | Some("SUCCESS"), _) => {}
            (_, Some("SYSTEMERROR")) => {
                return Err(ChannelError::upstream(
                    "queryexchagerate: WeChat Pay system error",
                ));
            }
            _ => return Ok(None),
        }
        let Some(rate) = answer.get("rate").filter(|r| !r.is_empty()) else {
            return Ok(None);
        };
        let rate = rate
            .parse::<u64>()
            .ok()
            .filter(|r| *r > 0)
            .ok_or_else(|| ChannelError::upstream("queryexchagerate: rate is not a number"))?;
        if answer.get("fee_type").is_some_and(|f| f != fee_type) {
            return Err(ChannelError::upstream(
                "queryexchagerate answered about another currency",
            ));
        }
        Ok(Some(ExchangeRate {
            fee_type: fee_type.to_owned(),
            rate,
            rate_time: answer
                .get("rate_time")
                .filter(|t| !t.is_empty())
                .cloned()
                .unwrap_or_else(|| date.to_owned()),
        }))
    }

    fn payer_sign_in(&self, back: &Url, state: &str) -> Option<Url> {
        self.config.oauth.app_secret.as_ref()?;
        let mut url = self.config.oauth.authorize_url.clone();
        url.query_pairs_mut()
            .append_pair("appid", &self.config.appid)
            .append_pair("redirect_uri", back.as_str())
            .append_pair("response_type", "code")
            .append_pair("scope", "snsapi_base")
            .append_pair("state", state);
        url.set_fragment(Some("wechat_redirect"));
        Some(url)
    }

    /// `sns/oauth2/access_token`: the `openid` a sign-in `code` names (docs/wechatpay.md).
    async fn payer_id(&self, code: &str) -> Result<String, ChannelError> {
        let secret = self.config.oauth.app_secret.as_ref().ok_or_else(|| {
            ChannelError::Config("[wechatpay] app_secret is not configured".into())
        })?;
        let mut url = self.config.oauth.token_url.clone();
        url.query_pairs_mut()
            .append_pair("appid", &self.config.appid)
            .append_pair("secret", secret.expose_secret())
            .append_pair("code", code)
            .append_pair("grant_type", "authorization_code");
        let answer: serde_json::Value = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| ChannelError::unreachable("WeChat", e))?
            .json()
            .await
            .map_err(|e| ChannelError::upstream_from("WeChat sign-in answer unreadable", e))?;
        match answer.get("openid").and_then(|v| v.as_str()) {
            Some(openid) if !openid.is_empty() => Ok(openid.to_owned()),
            _ => Err(ChannelError::upstream(format!(
                "WeChat sign-in: {} {}",
                answer
                    .get("errcode")
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                answer
                    .get("errmsg")
                    .and_then(|v| v.as_str())
                    .unwrap_or("no openid")
            ))),
        }
    }

    async fn start(&self, payment: &StartPayment) -> Result<PaymentStart, ChannelError> {
        match payment.flow {
            Flow::InWallet => return self.start_in_wechat(payment).await,
            Flow::App => return self.start_in_app(payment).await,
            Flow::Barcode => return Err(crate::barcode_not_started()),
            Flow::Browser(_) | Flow::MerchantQr => {}
        }
        let mweb = payment.flow == Flow::Browser(Device::Mobile);
        let extra = if mweb {
            let scene = serde_json::json!({"h5_info": {"type": "Wap", "wap_url": payment.return_url.origin().ascii_serialization(), "wap_name": body(&payment.merchant_name)}});
            Fields::from([("scene_info".to_owned(), scene.to_string())])
        } else {
            Fields::from([("product_id".to_owned(), payment.attempt_id.to_string())])
        };
        let trade_type = if mweb { "MWEB" } else { "NATIVE" };
        let (answer, _) = self.unified_order(payment, trade_type, extra).await?;
        let prepay_id = answer.get("prepay_id").cloned();
        let action = if mweb {
            let mweb_url = answer
                .get("mweb_url")
                .ok_or_else(|| ChannelError::upstream("unifiedorder: no mweb_url"))?;
            let mut url = Url::parse(mweb_url)
                .map_err(|_| ChannelError::upstream("unifiedorder: bad mweb_url"))?;
            // Where WeChat's H5 page sends the buyer afterwards (docs/wechatpay.md).
            url.query_pairs_mut()
                .append_pair("redirect_url", payment.return_url.as_str());
            StartAction::Redirect(url)
        } else {
            let code_url = answer
                .get("code_url")
                .cloned()
                .ok_or_else(|| ChannelError::upstream("unifiedorder: no code_url"))?;
            let test_link = self.config.test_scan_url.clone().map(|mut u| {
                u.query_pairs_mut().append_pair("code_url", &code_url);
                u
            });
            StartAction::QrCode {
                content: code_url,
                test_link,
            }
        };
        Ok(PaymentStart {
            action,
            channel_order_id: prepay_id,
        })
    }

    /// `orderquery`: `trade_state` SUCCESS (or REFUND: paid, then refunded) is paid;
    /// CLOSED, REVOKED and PAYERROR are closed; anything else is pending.
    async fn query(&self, payment: &QueryPayment) -> Result<QueryResult, ChannelError> {
        let mut f = self.base(&payment.channel_ids);
        f.insert("out_trade_no".into(), payment.attempt_id.to_string());
        let answer = self.call("pay/orderquery", f).await?;
        if answer.get("result_code").map(String::as_str) != Some("SUCCESS") {
            return match answer.get("err_code").map(String::as_str) {
                Some("ORDERNOTEXIST") => Ok(QueryResult::NotFound),
                code => Err(ChannelError::upstream(format!(
                    "orderquery: {}",
                    code.unwrap_or("FAIL")
                ))),
            };
        }
        if answer.get("out_trade_no").map(String::as_str) != Some(payment.attempt_id.as_str()) {
            return Err(ChannelError::upstream(
                "orderquery answered about another order",
            ));
        }
        Ok(match answer.get("trade_state").map(String::as_str) {
            Some("SUCCESS" | "REFUND") => QueryResult::Paid {
                bizpay_order_id: answer.get("transaction_id").cloned().unwrap_or_default(),
                money: minor_money(answer.get("total_fee"), answer.get("fee_type")),
            },
            Some("CLOSED" | "REVOKED" | "PAYERROR") => QueryResult::Closed,
            _ => QueryResult::Pending,
        })
    }

    /// Quick Pay (docs/instore.md): query 5 s after an undecided answer, then every 10 s
    /// up to 30 s after the payment began; `reverse` no earlier than 15 s after it, again
    /// every 10 s while WeChat says `recall=Y` or does not answer.
    fn barcode_rules(&self) -> Option<BarcodeRules> {
        Some(BarcodeRules {
            first_query: Duration::from_secs(5),
            query_every: Duration::from_secs(10),
            query_for: Duration::from_secs(30),
            undo_not_before: Duration::from_secs(15),
            undo_every: Duration::from_secs(10),
        })
    }

    /// `pay/micropay`: answered at once, no notification follows. `USERPAYING` (the buyer
    /// confirms on the phone), `SYSTEMERROR`, `BANKERROR`, `ORDERPAID` and no answer at all
    /// are undecided; any other refusal is final.
    async fn barcode_pay(&self, payment: &BarcodePayment) -> Result<BarcodeResult, ChannelError> {
        let mut f = self.base(&payment.channel_ids);
        let fields = [
            ("body", body(&payment.description)),
            ("out_trade_no", payment.attempt_id.to_string()),
            ("total_fee", payment.money.amount.minor().to_string()),
            ("fee_type", payment.money.currency.code().to_owned()),
            ("spbill_create_ip", self.config.server_ip.clone()),
            ("auth_code", payment.auth_code.clone()),
        ];
        f.extend(fields.into_iter().map(|(k, v)| (k.to_owned(), v)));
        if let Some(terminal) = &payment.terminal {
            f.insert("device_info".into(), terminal.chars().take(32).collect());
        }
        let answer = match self.call("pay/micropay", f).await {
            Ok(answer) => answer,
            Err(ChannelError::Upstream { message, .. }) => {
                return Ok(BarcodeResult::Undecided { reason: message });
            }
            Err(e) => return Err(e),
        };
        let get = |name: &str| answer.get(name).map_or("", String::as_str);
        if get("result_code") == "SUCCESS" {
            if get("out_trade_no") != payment.attempt_id.as_str() {
                return Ok(BarcodeResult::Undecided {
                    reason: "micropay answered about another order".into(),
                });
            }
            return Ok(BarcodeResult::Paid {
                bizpay_order_id: get("transaction_id").to_owned(),
                buyer: answer.get("openid").cloned(),
                money: minor_money(answer.get("total_fee"), answer.get("fee_type")),
            });
        }
        Ok(match get("err_code") {
            code @ ("USERPAYING" | "SYSTEMERROR" | "BANKERROR" | "ORDERPAID" | "") => {
                BarcodeResult::Undecided {
                    reason: if code.is_empty() { "FAIL" } else { code }.to_owned(),
                }
            }
            code => BarcodeResult::Declined {
                reason: format!("{code}: {}", get("err_code_des")),
            },
        })
    }

    /// `secapi/pay/reverse` (client certificate, as refunds): closes the order, or refunds
    /// it if it was paid. `recall=Y`, a system error or no answer: ask again.
    async fn undo(&self, payment: &UndoPayment) -> Result<UndoResult, ChannelError> {
        let mut f = self.base(&payment.channel_ids);
        f.insert("out_trade_no".into(), payment.attempt_id.to_string());
        let answer = match self.call("secapi/pay/reverse", f).await {
            Ok(answer) => answer,
            Err(ChannelError::Upstream { message, .. }) => {
                return Ok(UndoResult::Again { reason: message });
            }
            Err(e) => return Err(e),
        };
        let get = |name: &str| answer.get(name).map_or("", String::as_str);
        Ok(match (get("result_code"), get("recall"), get("err_code")) {
            ("SUCCESS", _, _) => UndoResult::Undone,
            (_, "Y", code) | (_, _, code @ ("SYSTEMERROR" | "USERPAYING" | "")) => {
                UndoResult::Again {
                    reason: if code.is_empty() { "recall" } else { code }.to_owned(),
                }
            }
            (_, _, code) => UndoResult::Refused {
                reason: format!("{code}: {}", get("err_code_des")),
            },
        })
    }

    /// `secapi/pay/refund`. Its client certificate is a deployment concern (see the
    /// README); the simulator does not ask for one. A SUCCESS answer is taken as refunded.
    fn can_query_refunds(&self) -> bool {
        true
    }

    /// `refundquery` by `out_refund_no`: for a refund whose answer never came back (a
    /// timeout or SYSTEMERROR leaves it pending). `REFUNDNOTEXIST` — asked a minute or
    /// more after a request that times out in 15 s — means it never reached WeChat: failed,
    /// its amount released. `CHANGE` (refund stuck, handled by hand at WeChat) stays pending.
    async fn query_refund(&self, refund: &QueryRefund) -> Result<RefundQueryResult, ChannelError> {
        let mut f = self.base(&refund.channel_ids);
        f.insert("out_refund_no".into(), refund.refund_id.to_string());
        let answer = self.call("pay/refundquery", f).await?;
        let get = |name: &str| answer.get(name).map_or("", String::as_str);
        if get("result_code") != "SUCCESS" {
            return match get("err_code") {
                "REFUNDNOTEXIST" => Ok(RefundQueryResult::Failed),
                code => Err(ChannelError::upstream(format!("refundquery: {code}"))),
            };
        }
        if get("out_refund_no_0") != refund.refund_id.as_str() {
            return Err(ChannelError::upstream(
                "refundquery answered about another refund",
            ));
        }
        Ok(match get("refund_status_0") {
            "SUCCESS" if get("refund_fee_0") == refund.money.amount.minor().to_string() => {
                RefundQueryResult::Succeeded {
                    channel_refund_id: answer.get("refund_id_0").cloned(),
                }
            }
            "SUCCESS" => {
                return Err(ChannelError::upstream(
                    "refundquery reports another refund amount",
                ));
            }
            "REFUNDCLOSE" => RefundQueryResult::Failed,
            _ => RefundQueryResult::Pending,
        })
    }

    async fn refund(&self, refund: &RefundPayment) -> Result<RefundResult, ChannelError> {
        let mut f = self.base(&refund.channel_ids);
        let fields = [
            ("out_trade_no", refund.payment_id.to_string()),
            ("out_refund_no", refund.refund_id.to_string()),
            ("total_fee", refund.payment_total.amount.minor().to_string()),
            ("refund_fee", refund.money.amount.minor().to_string()),
            ("refund_fee_type", refund.money.currency.code().to_owned()),
        ];
        f.extend(fields.into_iter().map(|(k, v)| (k.to_owned(), v)));
        let answer = self.call("secapi/pay/refund", f).await?;
        match (
            answer.get("result_code").map(String::as_str),
            answer.get("err_code").map(String::as_str),
        ) {
            (Some("SUCCESS"), _) => Ok(RefundResult::Succeeded {
                channel_refund_id: answer.get("refund_id").cloned().unwrap_or_default(),
            }),
            (_, Some("SYSTEMERROR")) | (_, None) => {
                Err(ChannelError::upstream("refund: WeChat Pay system error"))
            }
            (_, Some(code)) => Ok(RefundResult::Refused {
                reason: code.to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_the_official_accounts_secret_no_buyer_is_signed_in_inside_wechat() {
        let public = Url::parse("http://127.0.0.1:1/").unwrap();
        let (mut config, _) = sandbox(&public, SignType::Md5, 1.0).unwrap();
        let back = public.join("checkout/x/wechat").unwrap();
        let with = WeChatConnector::new(config.clone()).unwrap();
        let url = with.payer_sign_in(&back, "A1").unwrap();
        let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(
            (
                query["appid"].as_str(),
                query["scope"].as_str(),
                query["state"].as_str()
            ),
            (testkeys::APPID, "snsapi_base", "A1")
        );
        assert_eq!(query["redirect_uri"], back.as_str());
        config.oauth.app_secret = None;
        let without = WeChatConnector::new(config).unwrap();
        assert!(without.payer_sign_in(&back, "A1").is_none());
    }

    #[test]
    fn messages_round_trip_through_xml() {
        let mut f = Fields::new();
        f.insert("return_code".into(), "SUCCESS".into());
        f.insert("body".into(), "Tea & <cakes>".into());
        let xml = to_xml(&f);
        assert_eq!(parse_message(&xml).unwrap(), f);
    }

    #[test]
    fn amounts_are_minor_units_in_the_right_currency() {
        let m = Money::new(
            ottgate_core::Amount::from_minor(1234).unwrap(),
            Currency::Cad,
        );
        assert!(amount_matches("1234", "CAD", m));
        assert!(!amount_matches("12.34", "CAD", m));
        assert!(!amount_matches("1234", "CNY", m));
    }

    #[test]
    fn notices_need_success_and_an_order() {
        let mut f = Fields::new();
        f.insert("return_code".into(), "FAIL".into());
        assert_eq!(Notice::read(&f), Err(NoticeError::NotSuccessful));
        f.insert("return_code".into(), "SUCCESS".into());
        assert_eq!(Notice::read(&f), Err(NoticeError::Missing("out_trade_no")));
        f.insert("out_trade_no".into(), "1".into());
        f.insert("total_fee".into(), "5".into());
        f.insert("result_code".into(), "FAIL".into());
        assert!(!Notice::read(&f).unwrap().paid);
    }
}
