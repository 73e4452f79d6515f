//! Upstream payment channels: how a payment attempt reaches a wallet, and how a wallet's
//! result comes back as a verified outcome.
//!
//! Every connector implements [`Channel`]. The server never talks to a wallet except
//! through it, and every result, whatever its origin, arrives as a [`VerifiedResult`] and
//! takes the same path to the store (mark paid exactly once, enqueue the callback).

pub mod alipay;
#[doc(hidden)]
pub mod fuzz;
mod notification;
mod registry;
mod sandbox;
pub mod simkit;
pub mod unionpay;
pub mod wechat;
pub mod xml;

pub use notification::{
    Acknowledgement, Notification, NotificationError, Outcome, PaymentRef, Stated, Subject,
};
pub use registry::{
    LiveChannel, MaskedString, SandboxOptions, Sandboxed, TestKeyFiles, WALLETS, Wallet,
    WalletSections, with_trailing_slash,
};
pub use sandbox::SandboxChannel;

use async_trait::async_trait;
pub use ottgate_core::ChannelIds;
use ottgate_core::{
    AttemptId, AttemptOutcome, MerchantId, Money, PaymentMethod, RefundId, Timestamp,
};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use url::Url;

/// The buyer's kind of device: wallets have a mobile and a desktop flavour of checkout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Device {
    Mobile,
    Desktop,
}

impl Device {
    /// From a browser's `User-Agent`: phones and tablets are mobile.
    pub fn from_user_agent(user_agent: &str) -> Self {
        let ua = user_agent.to_ascii_lowercase();
        let mobile = ["mobile", "android", "iphone", "ipad", "micromessenger"]
            .iter()
            .any(|m| ua.contains(m));
        if mobile {
            Device::Mobile
        } else {
            Device::Desktop
        }
    }
}

/// How the buyer meets the wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flow {
    /// The buyer's browser on this device goes to the wallet (the hosted checkout, the
    /// REST payments, H5PAY).
    Browser(Device),
    /// The merchant shows a QR code that the buyer scans with the wallet's app (ACTIVEPAY):
    /// there is no browser to send back.
    MerchantQr,
    /// The buyer is inside the wallet's own browser (WeChat's, for REST `public-pay`): our
    /// page asks the wallet's app to pay, for the buyer it signed in
    /// ([`StartPayment::payer`]).
    InWallet,
    /// The merchant's own phone app hands the wallet's app SDK what we answer (REST
    /// `alipay/inapp-pay`, `unionpay/inapp-secure-pay`): no browser is involved.
    App,
    /// The merchant's till scans the code the buyer's wallet shows (PASSIVEPAY): the
    /// payment is made by [`Channel::barcode_pay`], never started in a browser.
    Barcode,
}

/// What a connector needs to start paying one attempt.
#[derive(Debug, Clone)]
pub struct StartPayment {
    pub attempt_id: AttemptId,
    pub method: PaymentMethod,
    pub money: Money,
    /// Shown to the buyer by the wallet.
    pub subject: String,
    pub merchant_id: MerchantId,
    pub merchant_name: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// Where the wallet sends the buyer's browser back to (our return endpoint).
    pub return_url: Url,
    pub flow: Flow,
    /// The buyer as the wallet's browser identified them ([`Channel::payer_id`]): WeChat's
    /// `openid`, for a [`Flow::InWallet`] payment.
    pub payer: Option<String>,
    /// The app `payer` is known under, when it is the merchant's own (a WeChat
    /// mini-program's app id: the order is placed with `sub_appid`/`sub_openid`).
    pub payer_app: Option<String>,
    /// How the wallets know the merchant (e.g. its WeChat Pay sub-merchant id).
    pub channel_ids: ChannelIds,
}

/// How the buyer reaches the wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartAction {
    /// Send the browser to this URL.
    Redirect(Url),
    /// Show `content` as a QR code for the buyer's phone to scan. A simulated wallet adds a
    /// `test_link` that does what scanning would (a headless test has no phone).
    QrCode {
        content: String,
        test_link: Option<Url>,
    },
    /// Have the browser POST these fields to this URL (an auto-submitted form).
    PostForm {
        action: Url,
        fields: Vec<(String, String)>,
    },
    /// Inside the wallet's browser: have our page hand these signed parameters to the
    /// wallet's app (WeChat's `getBrandWCPayRequest`). `bridge_script` is a simulator's
    /// stand-in for the app's JavaScript bridge, loaded by the page in test mode only.
    WalletBridge {
        params: Vec<(String, String)>,
        bridge_script: Option<Url>,
    },
    /// For the merchant's app to hand the wallet's app SDK: Alipay's signed
    /// `mobile.securitypay.pay` parameters, UnionPay's `tn`.
    AppSdk { params: Vec<(String, String)> },
}

impl StartAction {
    /// A QR code that holds a wallet's URL. A simulated wallet's code is its own page, so in
    /// test mode a link to it does what scanning would.
    pub(crate) fn qr_url(content: String, test_mode: bool) -> Self {
        let test_link = test_mode.then(|| Url::parse(&content).ok()).flatten();
        StartAction::QrCode { content, test_link }
    }
}

/// Where the buyer goes next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentStart {
    pub action: StartAction,
    /// The channel's order number for this attempt, when known up front (web-pay's
    /// `bizPayOrderId`; the `bizpay_order_id` its notification will carry).
    pub channel_order_id: Option<String>,
}

impl PaymentStart {
    /// The URL a browser can be sent to, for the redirect kind of start.
    pub fn redirect_url(&self) -> Option<&Url> {
        match &self.action {
            StartAction::Redirect(url) => Some(url),
            _ => None,
        }
    }

    /// What a merchant shows as a QR code: the code's content, or a wallet page's URL (a
    /// page is as scannable as any code); `None` for a form a browser must post.
    pub fn scannable(&self) -> Option<String> {
        match &self.action {
            StartAction::QrCode { content, .. } => Some(content.clone()),
            StartAction::Redirect(url) => Some(url.to_string()),
            StartAction::PostForm { .. }
            | StartAction::WalletBridge { .. }
            | StartAction::AppSdk { .. } => None,
        }
    }

    /// What the merchant's app hands the wallet's app SDK, for a [`Flow::App`] payment.
    pub fn app_params(&self) -> Option<&[(String, String)]> {
        match &self.action {
            StartAction::AppSdk { params } => Some(params),
            _ => None,
        }
    }
}

/// A buyer's wallet code scanned at the merchant's till (PASSIVEPAY), to charge.
#[derive(Debug, Clone)]
pub struct BarcodePayment {
    pub attempt_id: AttemptId,
    /// The merchant (the wallet's secondary merchant).
    pub merchant_id: String,
    pub money: Money,
    /// The code the buyer's wallet shows.
    pub auth_code: String,
    /// What the buyer's records show.
    pub description: String,
    /// The till, when the merchant names one.
    pub terminal: Option<String>,
    pub started_at: Timestamp,
    pub channel_ids: ChannelIds,
}

/// The wallet's synchronous answer to a barcode payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BarcodeResult {
    /// Taken.
    Paid {
        bizpay_order_id: String,
        /// The wallet's buyer identity (WeChat `openid`, Alipay `alipay_buyer_login_id`).
        buyer: Option<String>,
        /// The amount, when the wallet states it (the caller checks it).
        money: Option<Money>,
    },
    /// Definitely refused (a bad or used code, no balance…): nothing taken.
    Declined { reason: String },
    /// Not decided yet (the buyer is typing a password; the wallet had a system error):
    /// ask again on the wallet's schedule ([`BarcodeRules`]), then undo.
    Undecided { reason: String },
}

/// Undoing a barcode payment that was never decided (WeChat `reverse`, Alipay `cancel`,
/// UnionPay's void): whatever happened at the wallet, the buyer keeps the money.
#[derive(Debug, Clone)]
pub struct UndoPayment {
    pub attempt_id: AttemptId,
    /// The wallet's transaction id, if one is known (UnionPay voids by it).
    pub bizpay_order_id: Option<String>,
    pub money: Money,
    pub started_at: Timestamp,
    pub channel_ids: ChannelIds,
    /// When the undo is asked.
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UndoResult {
    /// Done: the payment is closed, or refunded if it had been taken.
    Undone,
    /// Not done; the wallet says to ask again (`recall=Y`, `retry_flag=Y`, a pending void).
    Again { reason: String },
    /// Refused for good (e.g. past the undo window): the payment must be settled another
    /// way (queried and refunded by hand). Kept visible, retried rarely.
    Refused { reason: String },
}

/// How an undecided barcode payment is followed, as the wallet publishes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarcodeRules {
    /// The first query, after the undecided answer.
    pub first_query: std::time::Duration,
    /// Then every…
    pub query_every: std::time::Duration,
    /// …until this long after the payment was created; then undo.
    pub query_for: std::time::Duration,
    /// No undo before this long after the payment was created.
    pub undo_not_before: std::time::Duration,
    /// An undo the wallet did not do is asked again after…
    pub undo_every: std::time::Duration,
}

/// A barcode payment is made by [`Channel::barcode_pay`], never started.
pub(crate) fn barcode_not_started() -> ChannelError {
    ChannelError::Config("a barcode payment is charged, not started in a browser".into())
}

/// What a connector needs to ask the wallet about an attempt.
#[derive(Debug, Clone)]
pub struct QueryPayment {
    pub attempt_id: AttemptId,
    pub money: Money,
    /// When the attempt started (UnionPay finds a transaction by its id and this time).
    pub started_at: Timestamp,
    /// As when the payment started (a QR payment is asked about where it was made).
    pub flow: Flow,
    /// As when the payment started.
    pub channel_ids: ChannelIds,
}

/// The wallet's answer to a query, already authenticated by the connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryResult {
    /// Paid; with the amount when the wallet states it reliably (the caller checks it).
    Paid {
        bizpay_order_id: String,
        money: Option<Money>,
    },
    /// Closed without payment (expired or cancelled at the wallet).
    Closed,
    /// Not paid yet — or a status we do not know, which is never taken for paid.
    Pending,
    /// The wallet has no such trade (yet: Alipay creates it only once the buyer logs in).
    NotFound,
}

/// A wallet result whose authenticity the connector has established (signature, amount,
/// currency and order ownership checked). Only these reach the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedResult {
    pub attempt_id: AttemptId,
    pub outcome: AttemptOutcome,
    /// The wallet's transaction id (`bizpay_order_id`).
    pub bizpay_order_id: Option<String>,
    /// What the buyer paid in yuan, when the wallet said so.
    pub buyer_paid: Option<ottgate_core::BuyerPaid>,
}

/// What a connector needs to refund (part of) a payment.
#[derive(Debug, Clone)]
pub struct RefundPayment {
    pub refund_id: RefundId,
    /// When the refund is requested.
    pub at: Timestamp,
    pub payment_id: AttemptId,
    /// The wallet's transaction id of the payment, when known.
    pub bizpay_order_id: Option<String>,
    /// How much to refund.
    pub money: Money,
    /// What the payment being refunded was for (WeChat Pay and UnionPay
    /// ask for it alongside the refund amount).
    pub payment_total: Money,
    /// As when the payment started (a QR payment is refunded where it was made).
    pub flow: Flow,
    /// As when the payment started.
    pub channel_ids: ChannelIds,
}

/// A wallet's answer to a refund request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundResult {
    /// Refunded; the wallet's reference for it.
    Succeeded { channel_refund_id: String },
    /// Accepted, result to come asynchronously.
    Pending,
    /// Refused; nothing was refunded.
    Refused { reason: String },
}

/// What to ask about a refund still waiting for its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryRefund {
    pub refund_id: RefundId,
    /// The payment refunded (the attempt).
    pub payment_id: AttemptId,
    /// When it was requested (the `at` of its [`RefundPayment`]).
    pub requested_at: Timestamp,
    /// When it is asked about, by the gateway's clock (a wallet that does not know a
    /// refund long after it was asked for never got it).
    pub asked_at: Timestamp,
    pub money: Money,
    pub channel_ids: ChannelIds,
}

/// The wallet's word on a refund, already authenticated by the connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundQueryResult {
    Succeeded {
        channel_refund_id: Option<String>,
    },
    Failed,
    /// Not decided yet, unknown to the wallet, or a wallet that cannot be asked.
    Pending,
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("channel is misconfigured: {0}")]
    Config(String),
    /// The wallet could not be asked, or answered with a failure or something unreadable.
    #[error("channel request failed: {message}")]
    Upstream {
        message: String,
        /// What went wrong underneath (the transport, the parser), when something did.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl ChannelError {
    /// The wallet answered with a failure we can only describe.
    pub fn upstream(message: impl Into<String>) -> Self {
        ChannelError::Upstream {
            message: message.into(),
            source: None,
        }
    }

    /// The wallet's answer could not be had or read, because of `source`.
    pub fn upstream_from(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        ChannelError::Upstream {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }

    /// `wallet` could not be reached, or did not answer in time.
    pub(crate) fn unreachable(wallet: &str, e: reqwest::Error) -> Self {
        let message = if e.is_timeout() {
            format!("{wallet} did not answer in time")
        } else {
            format!("{wallet} could not be reached")
        };
        Self::upstream_from(message, e)
    }
}

/// Where a sandbox's simulated wallets and the gateway are reached. Buyers' browsers use
/// `public`; server-to-server traffic — the gateway's requests to a simulator, a
/// simulator's notifications to the gateway — uses `internal`, so a sandbox behind a TLS
/// proxy (an `https://` public URL that only the proxy serves) still completes payments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxUrls {
    pub public: Url,
    pub internal: Url,
}

impl SandboxUrls {
    /// `path` under the public URL: where buyers' browsers go.
    pub fn public(&self, path: &str) -> Result<Url, ChannelError> {
        url_under(&self.public, path)
    }

    /// `path` under the internal URL: where the gateway and its simulators reach each other.
    pub fn internal(&self, path: &str) -> Result<Url, ChannelError> {
        url_under(&self.internal, path)
    }
}

impl From<&Url> for SandboxUrls {
    /// Both at one URL.
    fn from(url: &Url) -> Self {
        Self {
            public: url.clone(),
            internal: url.clone(),
        }
    }
}

/// `path` under a simulator's or the gateway's base URL (sandbox wiring).
pub(crate) fn url_under(base: &Url, path: &str) -> Result<Url, ChannelError> {
    base.join(path)
        .map_err(|e| ChannelError::Config(e.to_string()))
}

/// How connectors talk to wallets: 15 s per request, redirects never followed (a wallet
/// answers; it does not send us elsewhere).
pub(crate) fn upstream_http() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
}

pub(crate) fn build_http(builder: reqwest::ClientBuilder) -> Result<reqwest::Client, ChannelError> {
    builder
        .build()
        .map_err(|e| ChannelError::Config(format!("HTTP client: {e}")))
}

/// An upstream payment channel.
#[async_trait]
pub trait Channel: Send + Sync + fmt::Debug {
    /// A stable name for logs and metrics (`sandbox`, `alipay`, …).
    fn name(&self) -> &'static str;

    /// Whether this is a test-mode wallet (shown as such to the buyer).
    fn is_test_mode(&self) -> bool;

    async fn start(&self, payment: &StartPayment) -> Result<PaymentStart, ChannelError>;

    /// Asks the wallet where the attempt stands (reconciliation, and browser returns that
    /// beat the notification).
    async fn query(&self, payment: &QueryPayment) -> Result<QueryResult, ChannelError>;

    async fn refund(&self, refund: &RefundPayment) -> Result<RefundResult, ChannelError>;

    /// How this wallet's undecided barcode payments are followed; `None`: it takes no
    /// barcode payments.
    fn barcode_rules(&self) -> Option<BarcodeRules> {
        None
    }

    /// Charges the code the buyer's wallet shows (PASSIVEPAY). A repeat with the same
    /// attempt is the same payment at the wallet, never a second charge.
    async fn barcode_pay(&self, _payment: &BarcodePayment) -> Result<BarcodeResult, ChannelError> {
        Err(ChannelError::Config(format!(
            "{} takes no barcode payments",
            self.name()
        )))
    }

    /// Undoes an undecided barcode payment.
    async fn undo(&self, _payment: &UndoPayment) -> Result<UndoResult, ChannelError> {
        Err(ChannelError::Config(format!(
            "{} takes no barcode payments",
            self.name()
        )))
    }

    /// Where to send a buyer inside the wallet's own browser so the wallet names them
    /// (WeChat's OAuth `snsapi_base`): it comes back to `back` with `code` and `state`.
    /// `None` where the wallet has no such sign-in.
    fn payer_sign_in(&self, _back: &Url, _state: &str) -> Option<Url> {
        None
    }

    /// The buyer a [`Channel::payer_sign_in`] `code` names (WeChat's `openid`).
    async fn payer_id(&self, _code: &str) -> Result<String, ChannelError> {
        Err(ChannelError::Config(format!(
            "{} has no in-wallet sign-in",
            self.name()
        )))
    }

    /// Whether [`Channel::query_refund`] can tell anything (a refund decided later whose
    /// notification was lost is then recovered by asking).
    fn can_query_refunds(&self) -> bool {
        false
    }

    /// Asks the wallet about a refund it accepted but has not reported on.
    async fn query_refund(&self, _refund: &QueryRefund) -> Result<RefundQueryResult, ChannelError> {
        Ok(RefundQueryResult::Pending)
    }

    /// Reads a notification the wallet posted to `/notify/{name}`: verified (signature,
    /// and that it is for our account), in no wallet's words.
    fn read_notification(&self, _body: &[u8]) -> Result<Notification, NotificationError> {
        Err(NotificationError::Unexpected)
    }

    /// Asks the wallet to confirm it sent `notification` (Alipay's `notify_verify`), before
    /// it may change anything. Most wallets' signatures are enough: nothing to ask.
    async fn confirm_notification(
        &self,
        _notification: &Notification,
    ) -> Result<(), NotificationError> {
        Ok(())
    }

    /// Whether a notification's `sub_merchant` is the merchant whose wallet ids are `ids`.
    fn addressed_to(&self, _sub_merchant: &str, _ids: &ChannelIds) -> bool {
        true
    }

    /// The answer the wallet expects: accepting (it stops re-sending), or refusing (it
    /// tries again), with why.
    fn acknowledge(&self, refused: Option<&str>) -> Acknowledgement {
        match refused {
            None => Acknowledgement::text(200, "ok"),
            Some(_) => Acknowledgement::text(400, "rejected"),
        }
    }

    /// Whether [`Channel::statement`] reads this wallet's statements.
    fn reads_statements(&self) -> bool {
        false
    }

    /// The wallet's statement of `day` for the whole account: every payment and refund it
    /// booked that day (docs/reconciliation.md), read strictly. `Ok(None)`: not published
    /// yet — ask again later.
    async fn statement(
        &self,
        _day: ottgate_core::recon::WalletDay,
    ) -> Result<Option<Vec<ottgate_core::recon::StatementLine>>, ChannelError> {
        Err(ChannelError::Config(format!(
            "ottgate does not read {}'s statements yet",
            self.name()
        )))
    }

    /// Today's rate of `fee_type` in CNY (× 10^8) on `date` (`yyyyMMdd`), where the wallet
    /// quotes them (WeChat Pay); `Ok(None)` when it has none for that currency.
    async fn exchange_rate(
        &self,
        _fee_type: &str,
        _date: &str,
    ) -> Result<Option<ExchangeRate>, ChannelError> {
        Err(ChannelError::Config(
            "this wallet quotes no exchange rates".into(),
        ))
    }
}

/// A day's exchange rate, as a wallet states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeRate {
    pub fee_type: String,
    /// CNY per unit of `fee_type`, times 10^8.
    pub rate: u64,
    /// The day it is for, `yyyyMMdd`.
    pub rate_time: String,
}

/// Which channel serves each payment method in this deployment, and which receives the
/// notifications posted to `/notify/{name}`.
#[derive(Debug, Clone, Default)]
pub struct Channels {
    by_method: BTreeMap<PaymentMethod, Arc<dyn Channel>>,
    by_name: BTreeMap<&'static str, Arc<dyn Channel>>,
}

impl Channels {
    /// Every method on the built-in test wallet (sandbox mode starts from here, then the
    /// simulated wallets take over their methods).
    pub fn sandbox(public_url: &Url) -> Self {
        let sandbox: Arc<dyn Channel> = Arc::new(SandboxChannel::new(public_url.clone()));
        Self {
            by_method: PaymentMethod::ALL
                .into_iter()
                .map(|m| (m, sandbox.clone()))
                .collect(),
            by_name: BTreeMap::new(),
        }
    }

    /// No channel at all: a live deployment before any connector is configured offers no
    /// method (never a free test wallet).
    pub fn none() -> Self {
        Self::default()
    }

    /// `method` is paid through `channel` from now on, which receives its notifications at
    /// `/notify/{channel.name()}`.
    pub fn with(mut self, method: PaymentMethod, channel: Arc<dyn Channel>) -> Self {
        self.by_name.insert(channel.name(), channel.clone());
        self.by_method.insert(method, channel);
        self
    }

    pub fn for_method(&self, method: PaymentMethod) -> Option<Arc<dyn Channel>> {
        self.by_method.get(&method).cloned()
    }

    /// The channel whose notifications arrive at `/notify/{name}`.
    pub fn by_name(&self, name: &str) -> Option<Arc<dyn Channel>> {
        self.by_name.get(name).cloned()
    }
}
