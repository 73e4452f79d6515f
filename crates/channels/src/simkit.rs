//! What every wallet simulator shares: injected faults, and a notifier that re-sends on the
//! wallet's own schedule (scaled for tests) until the receiver acknowledges.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use url::Url;

/// A fault to inject into the next matching notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub kind: FaultKind,
    /// Only the notification about this order (out_trade_no / orderId); any when absent.
    #[serde(default)]
    pub out_trade_no: Option<String>,
    /// For `delay` and `slow_answer`.
    #[serde(default)]
    pub delay_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Never sent (not even retried).
    Drop,
    /// Sent twice at once.
    Duplicate,
    /// Held back and sent after the next notification.
    Reorder,
    /// Sent after `delay_ms`.
    Delay,
    /// Sent with a signature that does not verify (the first delivery; re-sends are sound).
    CorruptSignature,
    /// Correctly signed, but for a larger amount than the order's (the first delivery).
    WrongAmount,
    /// Correctly signed, but in another currency (the first delivery).
    WrongCurrency,
    /// Not a notification fault: the wallet carries out the next refund of this order but
    /// its answer is lost (WeChat Pay answers `SYSTEMERROR`).
    LoseAnswer,
    /// Not a notification fault: the wallet carries out the next refund of this order, then
    /// holds its answer for `delay_ms` (1 s if absent) — a slow wallet, for testing what a
    /// gateway does while it waits.
    SlowAnswer,
    /// Not a notification fault: the next undo of this barcode payment is not done, and
    /// the wallet says to send it again (WeChat `recall=Y`, Alipay `retry_flag=Y`,
    /// UnionPay `03`).
    AskAgain,
    /// A statement fault (kept until the simulator restarts): the payment or refund named
    /// (`out_trade_no` is our attempt's or refund's id) is missing from the statement.
    OmitFromStatement,
    /// A statement fault: the statement states one minor unit more for the payment or
    /// refund named.
    StatementAmount,
    /// A statement fault: the statement states the payment or refund named in another
    /// currency (USD, or CAD for a USD trade).
    StatementCurrency,
    /// A statement fault: the statement carries a paid trade with this `out_trade_no`, of
    /// 1.00 CAD, that the gateway never started.
    UnknownTrade,
    /// A statement fault: the next statement download says the file is not ready yet.
    StatementNotReady,
    /// A statement fault: the next statement download is cut off half-way.
    StatementCut,
}

impl FaultKind {
    /// Whether this fault is about the wallet's statement rather than its notifications.
    pub fn is_statement_fault(self) -> bool {
        matches!(
            self,
            FaultKind::OmitFromStatement
                | FaultKind::StatementAmount
                | FaultKind::StatementCurrency
                | FaultKind::UnknownTrade
                | FaultKind::StatementNotReady
                | FaultKind::StatementCut
        )
    }
}

/// Cuts a statement off in the middle of a line (a download cut short).
pub fn cut_half_way(text: &mut String) {
    let mut at = text.len() / 2;
    while at > 0 && (!text.is_char_boundary(at) || text[..at].ends_with('\n')) {
        at -= 1;
    }
    text.truncate(at);
}

/// The statement faults armed at a simulator: how its statement misstates trades
/// (docs/reconciliation.md). Each simulator applies them to its own file format.
#[derive(Debug, Default)]
pub struct StatementFaults {
    armed: Mutex<Vec<(FaultKind, String)>>,
}

impl StatementFaults {
    /// Arms `fault` if it is a statement fault; returns whether it was one.
    pub fn arm(&self, fault: &Fault) -> bool {
        if !fault.kind.is_statement_fault() {
            return false;
        }
        let about = fault.out_trade_no.clone().unwrap_or_default();
        lock(&self.armed).push((fault.kind, about));
        true
    }

    /// Whether a one-time fault (`StatementNotReady`, `StatementCut`) is armed for this
    /// download; it is used up by asking.
    pub fn take(&self, kind: FaultKind) -> bool {
        let mut armed = lock(&self.armed);
        match armed.iter().position(|(k, _)| *k == kind) {
            Some(i) => {
                armed.remove(i);
                true
            }
            None => false,
        }
    }

    /// Whether `kind` is armed for the trade `id`.
    pub fn has(&self, kind: FaultKind, id: &str) -> bool {
        lock(&self.armed)
            .iter()
            .any(|(k, about)| *k == kind && about == id)
    }

    /// The ids of the trades the gateway never started (`UnknownTrade`).
    pub fn unknown_trades(&self) -> Vec<String> {
        lock(&self.armed)
            .iter()
            .filter(|(k, _)| *k == FaultKind::UnknownTrade)
            .map(|(_, about)| about.clone())
            .collect()
    }
}

/// What a simulator asks the notifier to deliver.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub url: Url,
    pub content_type: &'static str,
    /// The order it is about (for matching faults).
    pub about: String,
}

/// Builds the body for each attempt (a wallet stamps every delivery anew), given the
/// fault to apply to its content (`WrongAmount`, `WrongCurrency`, `CorruptSignature`).
pub type BodyFn = Arc<dyn Fn(Option<FaultKind>) -> String + Send + Sync>;

/// Whether the receiver's answer acknowledges the notification.
pub type AckFn = fn(u16, &str) -> bool;

/// A simulator's state, even after a panic elsewhere held its lock.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A simulator's clock: the wall clock, as the wallets' own.
pub(crate) fn now() -> ottgate_core::Timestamp {
    use ottgate_core::Clock;
    ottgate_core::SystemClock.now()
}

/// What the buyer does at a simulated wallet's cashier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuyerAction {
    Pay,
    Fail,
}

/// A simulated wallet refused (in its own words).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SimulatorError(pub String);

/// What every simulated wallet offers the gateway it runs in (and `ottgate simulate`):
/// its routes, and a buyer to play for tests without a browser.
pub trait SimulatedWallet: Send + Sync + std::fmt::Debug {
    /// The wallet it plays: mounted at `/sim/{name}/`, notifying `/notify/{name}`.
    fn name(&self) -> &'static str;

    /// Its routes, relative to where it is mounted.
    fn router(&self) -> axum::Router;

    /// Whether it holds the trade `out_trade_no` (a simulator forgets on restart).
    fn knows(&self, out_trade_no: &str) -> bool;

    /// The buyer it plays, as the wallet names buyers to a merchant inside its own app
    /// (WeChat's openid), for a payment that needs one; `None` where none is needed.
    fn buyer(&self) -> Option<&'static str> {
        None
    }

    /// Plays the buyer of `out_trade_no`: brings the wallet what `start` (how our gateway
    /// started the payment, when the wallet does not hold the trade yet) carries, pays or
    /// fails, and returns the signed notification body the wallet would post.
    fn complete_as_buyer(
        &self,
        out_trade_no: &str,
        start: Option<&crate::PaymentStart>,
        action: BuyerAction,
    ) -> Result<String, SimulatorError>;
}

/// Simulated wallets, by name: those inside a sandbox gateway, or `ottgate simulate`'s.
#[derive(Debug, Clone, Default)]
pub struct Simulators(Vec<Arc<dyn SimulatedWallet>>);

impl Simulators {
    pub fn add(&mut self, simulator: Arc<dyn SimulatedWallet>) {
        self.0.push(simulator);
    }

    /// The simulator playing the wallet `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn SimulatedWallet>> {
        self.0.iter().find(|s| s.name() == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn SimulatedWallet>> {
        self.0.iter()
    }

    /// Every simulator under `/sim/{name}`.
    pub fn mount<S: Clone + Send + Sync + 'static>(
        &self,
        mut router: axum::Router<S>,
    ) -> axum::Router<S> {
        for sim in &self.0 {
            router = router.nest_service(&format!("/sim/{}", sim.name()), sim.router());
        }
        router
    }
}

/// Where a simulator may send notifications. Never simply wherever a request says: the
/// simulators' test keys are public, so anyone can sign a request naming any
/// `notify_url`, and a simulator that posted there would be an open relay into the
/// network it runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyTargets {
    /// Only `{root}notify/{wallet}`: a sandbox gateway's own route, under its root URL.
    Under(Url),
    /// Any URL whose path ends in `/notify/{wallet}`: a gateway's notification route,
    /// wherever that gateway runs (`ottgate simulate`).
    GatewayRoutes,
}

impl NotifyTargets {
    pub fn allows(&self, url: &Url, wallet: &str) -> bool {
        let route = format!("notify/{wallet}");
        let plain = url.query().is_none() && url.fragment().is_none();
        match self {
            NotifyTargets::Under(root) => {
                plain && root.join(&route).is_ok_and(|allowed| &allowed == url)
            }
            NotifyTargets::GatewayRoutes => {
                plain
                    && matches!(url.scheme(), "http" | "https")
                    && url.path().ends_with(&format!("/{route}"))
            }
        }
    }
}

/// A simulator's notifier: fault queue, the reorder slot, and the retry loop.
pub struct Notifier {
    http: reqwest::Client,
    /// The gaps between attempts after the first, unscaled.
    gaps: &'static [Duration],
    time_scale: f64,
    ack: AckFn,
    faults: Mutex<Vec<Fault>>,
    held: Mutex<Option<(Delivery, BodyFn)>>,
    name: &'static str,
    targets: NotifyTargets,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("wallet", &self.name)
            .field("time_scale", &self.time_scale)
            .finish_non_exhaustive()
    }
}

impl Notifier {
    pub fn new(
        name: &'static str,
        gaps: &'static [Duration],
        time_scale: f64,
        ack: AckFn,
        targets: NotifyTargets,
    ) -> Arc<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Arc::new(Self {
            http,
            gaps,
            time_scale: time_scale.max(0.001),
            ack,
            faults: Mutex::new(Vec::new()),
            held: Mutex::new(None),
            name,
            targets,
        })
    }

    pub fn add_fault(&self, fault: Fault) {
        tracing::info!(
            wallet = self.name,
            ?fault,
            "simulated wallet: fault injected"
        );
        lock(&self.faults).push(fault);
    }

    /// The first queued notification fault for `about` (or for any order), removed from
    /// the queue.
    pub fn take_fault(&self, about: &str) -> Option<Fault> {
        self.take_matching(about, |kind| {
            !matches!(
                kind,
                FaultKind::LoseAnswer | FaultKind::SlowAnswer | FaultKind::AskAgain
            )
        })
    }

    /// How long to hold the answer to a request about `about`, if a `SlowAnswer` fault is
    /// queued for it (taking it).
    pub fn take_slow_answer(&self, about: &str) -> Option<Duration> {
        self.take_matching(about, |kind| kind == FaultKind::SlowAnswer)
            .map(|f| Duration::from_millis(f.delay_ms.unwrap_or(1_000)))
    }

    /// Whether a `LoseAnswer` fault is queued for `about` (taking it).
    pub fn take_lost_answer(&self, about: &str) -> bool {
        self.take_matching(about, |kind| kind == FaultKind::LoseAnswer)
            .is_some()
    }

    /// Whether an `AskAgain` fault is queued for `about` (taking it).
    pub fn take_ask_again(&self, about: &str) -> bool {
        self.take_matching(about, |kind| kind == FaultKind::AskAgain)
            .is_some()
    }

    fn take_matching(&self, about: &str, kind: impl Fn(FaultKind) -> bool) -> Option<Fault> {
        let mut faults = lock(&self.faults);
        let index = faults
            .iter()
            .position(|f| kind(f.kind) && f.out_trade_no.as_deref().is_none_or(|t| t == about))?;
        Some(faults.remove(index))
    }

    /// Delivers a notification the way the wallet does — at once, then on its schedule —
    /// with any fault queued for it applied.
    pub fn send(self: &Arc<Self>, delivery: Delivery, body: BodyFn) {
        if !self.targets.allows(&delivery.url, self.name) {
            tracing::warn!(wallet = self.name, url = %delivery.url, "simulated wallet refuses to notify a URL that is not a gateway's notification route");
            return;
        }
        let fault = self.take_fault(&delivery.about);
        match fault.as_ref().map(|f| f.kind) {
            Some(FaultKind::Drop) => {
                tracing::info!(wallet = self.name, about = %delivery.about, "simulated wallet drops a notification");
            }
            Some(FaultKind::Reorder) => {
                if let Some((previous, previous_body)) = lock(&self.held).replace((delivery, body))
                {
                    self.spawn(previous, previous_body, None, Duration::ZERO);
                }
            }
            Some(FaultKind::Duplicate) => {
                self.spawn(delivery.clone(), body.clone(), None, Duration::ZERO);
                self.spawn(delivery, body, None, Duration::ZERO);
                self.release_held();
            }
            Some(FaultKind::Delay) => {
                let delay = Duration::from_millis(fault.and_then(|f| f.delay_ms).unwrap_or(1000));
                self.spawn(delivery, body, None, delay);
                self.release_held();
            }
            content => {
                self.spawn(delivery, body, content, Duration::ZERO);
                self.release_held();
            }
        }
    }

    fn release_held(self: &Arc<Self>) {
        if let Some((held, body)) = lock(&self.held).take() {
            // After the notification that overtook it.
            self.spawn(held, body, None, Duration::from_millis(200));
        }
    }

    fn spawn(
        self: &Arc<Self>,
        delivery: Delivery,
        body: BodyFn,
        fault: Option<FaultKind>,
        delay: Duration,
    ) {
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let gaps = std::iter::once(Duration::ZERO).chain(this.gaps.iter().copied());
            for (n, gap) in gaps.enumerate() {
                tokio::time::sleep(gap.div_f64(this.time_scale)).await;
                // A content fault spoils one delivery; the wallet's re-sends are made anew.
                let fault = if n == 0 { fault } else { None };
                let answer = this
                    .http
                    .post(delivery.url.clone())
                    .header(reqwest::header::CONTENT_TYPE, delivery.content_type)
                    .body(body(fault))
                    .send()
                    .await;
                if let Ok(response) = answer {
                    let status = response.status().as_u16();
                    let text = response.text().await.unwrap_or_default();
                    if (this.ack)(status, &text) {
                        return;
                    }
                }
            }
            tracing::warn!(wallet = this.name, about = %delivery.about, "simulated wallet gave up on a notification");
        });
    }
}

/// The signature string with its first character changed (so it no longer verifies).
pub fn corrupt(signature: &str) -> String {
    let mut chars: Vec<char> = signature.chars().collect();
    if let Some(c) = chars.first_mut() {
        *c = if *c == 'A' { 'B' } else { 'A' };
    }
    chars.into_iter().collect()
}

/// `n` random decimal digits.
pub fn digits(n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

/// The language of a simulated wallet's page: the buyer's phone's, by `Accept-Language`
/// (the first of English or Chinese it names), English otherwise — as the wallets' own
/// pages follow the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimLang {
    En,
    Zh,
}

impl SimLang {
    pub fn of(headers: &axum::http::HeaderMap) -> Self {
        let accepted = headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        for tag in accepted.split(',') {
            let tag = tag
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            if tag.starts_with("zh") {
                return SimLang::Zh;
            }
            if tag.starts_with("en") {
                return SimLang::En;
            }
        }
        SimLang::En
    }

    /// `en` in this language: itself, or its Chinese from [`ZH`] (itself when missing — a
    /// test keeps every phrase the simulators use in the table).
    pub fn tr(self, en: &'static str) -> &'static str {
        match self {
            SimLang::En => en,
            SimLang::Zh => ZH.iter().find(|(e, _)| *e == en).map_or(en, |(_, zh)| zh),
        }
    }

    fn code(self) -> &'static str {
        match self {
            SimLang::En => "en",
            SimLang::Zh => "zh-CN",
        }
    }
}

/// Every phrase a simulated wallet shows, in Chinese.
pub const ZH: &[(&str, &str)] = &[
    ("Alipay", "支付宝"),
    ("WeChat Pay", "微信支付"),
    ("UnionPay", "银联"),
    ("SIMULATED", "模拟"),
    ("TEST MODE — no real money", "测试模式 — 不涉及真实资金"),
    ("Paying", "收款方"),
    ("Pay", "支付"),
    ("Fail", "支付失败"),
    ("Cancel", "取消"),
    ("Alipay cashier", "支付宝收银台"),
    ("In store (QR code)", "店内（二维码）"),
    ("App", "应用"),
    ("Mobile (WAP)", "手机网页"),
    ("Mobile", "手机"),
    ("PC", "电脑"),
    ("QR code", "二维码"),
    ("Order", "订单号"),
    ("Cancelled.", "已取消。"),
    (
        "Done. You can return to the merchant's page.",
        "完成。您可以返回商户页面。",
    ),
    ("Return to the merchant", "返回商户"),
    ("This order cannot be paid here", "此订单无法在此支付"),
    ("The payment request was refused.", "支付请求被拒绝。"),
    (
        "Simulated WeChat Pay: pay this order?",
        "模拟微信支付：支付此订单吗？",
    ),
    ("Merchant number", "商户号"),
    ("Payment processed.", "支付已处理。"),
];

/// A simulated wallet's page in `lang`: the "simulated, test mode, no real money" banner,
/// the merchant being paid when the wallet was told (`merchant`), over one card.
pub fn page(
    lang: SimLang,
    wallet: &'static str,
    background: &str,
    merchant: Option<&str>,
    content: &str,
) -> axum::response::Html<String> {
    let shown = crate::xml::escape(lang.tr(wallet));
    let banner = match lang {
        SimLang::En => format!(
            "{} {} — {}",
            lang.tr("SIMULATED"),
            shown.to_uppercase(),
            lang.tr("TEST MODE — no real money")
        ),
        SimLang::Zh => format!(
            "{}{} — {}",
            lang.tr("SIMULATED"),
            shown,
            lang.tr("TEST MODE — no real money")
        ),
    };
    let paying = merchant
        .filter(|m| !m.is_empty())
        .map(|m| {
            format!(
                "<p id=\"sim-merchant\" style=\"margin:0 0 12px;color:#444\">{}{} <strong>{}</strong></p>",
                lang.tr("Paying"),
                if lang == SimLang::Zh { "：" } else { ":" },
                crate::xml::escape(m)
            )
        })
        .unwrap_or_default();
    axum::response::Html(format!(
        "<!doctype html><html lang=\"{code}\"><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{shown} ({simulated})</title>\
         <body style=\"font-family:-apple-system,sans-serif;max-width:420px;margin:0 auto;padding:16px;background:{background}\">\
         <p id=\"sim-test-mode\" style=\"background:#fff4d6;border:1px solid #f0d48a;padding:8px;border-radius:8px;text-align:center;font-weight:600\">{banner}</p>\
         <div style=\"background:#fff;border-radius:12px;padding:20px\">{paying}{content}</div></body></html>",
        code = lang.code(),
        simulated = lang.tr("SIMULATED"),
    ))
}

/// The cashier's Pay / Fail / Cancel form in `lang`, POSTing `action=pay|fail|cancel` (and
/// any `hidden` inputs) to `target`; the form is `#{prefix}-form`, the buttons
/// `#{prefix}-pay`, `#{prefix}-fail` and `#{prefix}-cancel`.
pub fn cashier_form(
    lang: SimLang,
    prefix: &str,
    target: &str,
    accent: &str,
    hidden: &str,
) -> String {
    let button = "display:block;width:100%;padding:14px;margin-top:10px;border:0;border-radius:8px;font-size:16px;font-weight:700;";
    format!(
        "<form id=\"{prefix}-form\" method=\"post\" action=\"{target}\">{hidden}\
         <button id=\"{prefix}-pay\" name=\"action\" value=\"pay\" style=\"{button}background:{accent};color:#fff\">{pay}</button>\
         <button id=\"{prefix}-fail\" name=\"action\" value=\"fail\" style=\"{button}background:#b42318;color:#fff\">{fail}</button>\
         <button id=\"{prefix}-cancel\" name=\"action\" value=\"cancel\" style=\"{button}background:#fff;border:1px solid #ccc\">{cancel}</button></form>",
        target = crate::xml::escape(target),
        pay = lang.tr("Pay"),
        fail = lang.tr("Fail"),
        cancel = lang.tr("Cancel"),
    )
}

#[cfg(test)]
mod sim_lang_tests {
    use super::*;

    fn accepting(value: &str) -> axum::http::HeaderMap {
        let mut h = axum::http::HeaderMap::new();
        h.insert(axum::http::header::ACCEPT_LANGUAGE, value.parse().unwrap());
        h
    }

    #[test]
    fn the_phones_language_picks_the_page_language() {
        assert_eq!(
            SimLang::of(&accepting("zh-CN,zh;q=0.9,en;q=0.8")),
            SimLang::Zh
        );
        assert_eq!(
            SimLang::of(&accepting("en-CA,en;q=0.9,zh;q=0.5")),
            SimLang::En
        );
        assert_eq!(SimLang::of(&accepting("fr-CA,zh-TW;q=0.5")), SimLang::Zh);
        assert_eq!(SimLang::of(&axum::http::HeaderMap::new()), SimLang::En);
    }

    /// Every phrase the simulators pass to `tr` has its Chinese: read from their sources.
    #[test]
    fn every_phrase_the_simulators_show_is_translated() {
        let sources = [
            include_str!("simkit.rs"),
            include_str!("alipay/simulator.rs"),
            include_str!("wechat/simulator.rs"),
            include_str!("wechat/simulator/in_wechat.rs"),
            include_str!("unionpay/simulator.rs"),
        ];
        let mut missing = Vec::new();
        let mut seen = 0;
        for source in sources {
            for piece in source.split(".tr(\"").skip(1) {
                let phrase = &piece[..piece.find('"').unwrap()];
                seen += 1;
                if !ZH.iter().any(|(en, _)| *en == phrase) {
                    missing.push(phrase.to_owned());
                }
            }
        }
        assert!(seen > 15, "found the phrases ({seen})");
        assert!(missing.is_empty(), "not translated: {missing:?}");
        let page = page(SimLang::Zh, "Alipay", "#fff", Some("Maple <Tea>"), "").0;
        assert!(
            page.contains("模拟支付宝") && page.contains("Maple &lt;Tea&gt;"),
            "{page}"
        );
    }
}

#[cfg(test)]
mod notify_target_tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn a_sandbox_simulator_notifies_only_its_gateways_route() {
        let targets = NotifyTargets::Under(url("http://127.0.0.1:8080/"));
        assert!(targets.allows(&url("http://127.0.0.1:8080/notify/alipay"), "alipay"));
        for elsewhere in [
            "http://127.0.0.1:8080/notify/wechatpay",
            "http://127.0.0.1:8080/notify/alipay?x=1",
            "http://127.0.0.1:8080/admin",
            "http://169.254.169.254/notify/alipay",
            "http://127.0.0.1:8081/notify/alipay",
        ] {
            assert!(!targets.allows(&url(elsewhere), "alipay"), "{elsewhere}");
        }
    }

    #[test]
    fn a_standalone_simulator_notifies_only_gateway_routes() {
        let targets = NotifyTargets::GatewayRoutes;
        assert!(targets.allows(&url("http://10.0.0.5:8080/notify/unionpay"), "unionpay"));
        assert!(targets.allows(&url("https://gw.example/pay/notify/unionpay"), "unionpay"));
        for elsewhere in [
            "http://10.0.0.5:8080/internal/admin",
            "http://10.0.0.5/notify/unionpay/x",
            "http://10.0.0.5/notify/alipay",
            "ftp://10.0.0.5/notify/unionpay",
        ] {
            assert!(!targets.allows(&url(elsewhere), "unionpay"), "{elsewhere}");
        }
    }
}

/// What the buyer behind a sandbox barcode does (docs/instore.md): the simulators read it
/// from the code itself, so a code made by any gateway works with any simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuyerCode {
    /// Paid at once.
    Paid,
    /// The wallet asks for the password first (WeChat `USERPAYING`, Alipay `UNKNOW`,
    /// UnionPay `04`); the buyer types it before the gateway's first query.
    Password,
    /// Refused (no balance).
    Declined,
    /// Never decided, until the gateway undoes it.
    Undecided,
}

impl BuyerCode {
    const ALL: [BuyerCode; 4] = [
        BuyerCode::Paid,
        BuyerCode::Password,
        BuyerCode::Declined,
        BuyerCode::Undecided,
    ];

    fn digit(self) -> char {
        match self {
            BuyerCode::Paid => '1',
            BuyerCode::Password => '2',
            BuyerCode::Declined => '3',
            BuyerCode::Undecided => '4',
        }
    }

    /// A fresh one-time code of `wallet` (`wechatpay`, `alipay`, `unionpay`) in that
    /// wallet's format: its prefix, `9`, the outcome's digit, random digits.
    pub fn issue(self, wallet: &str) -> Option<String> {
        let (prefix, length) = match wallet {
            "wechatpay" => ("13", 18),
            "alipay" => ("28", 18),
            "unionpay" => ("62", 19),
            _ => return None,
        };
        Some(format!(
            "{prefix}9{}{}",
            self.digit(),
            digits(length - prefix.len() - 2)
        ))
    }

    /// What the buyer behind `code` does: a code the sandbox issued says; any other
    /// well-formed code pays at once.
    pub fn of(code: &str) -> Self {
        let marked = code.as_bytes().get(2) == Some(&b'9');
        let digit = code.chars().nth(3);
        BuyerCode::ALL
            .into_iter()
            .find(|c| marked && Some(c.digit()) == digit)
            .unwrap_or(BuyerCode::Paid)
    }
}

/// The codes a simulator has charged: each code pays once (a repeat for the same trade is
/// that trade; for another trade, the code is used).
#[derive(Debug, Default)]
pub struct UsedCodes(Mutex<HashMap<String, String>>);

impl UsedCodes {
    /// Records `code` for `trade`; `false` if another trade used it.
    pub fn take(&self, code: &str, trade: &str) -> bool {
        let mut used = lock(&self.0);
        match used.get(code) {
            Some(t) => t == trade,
            None => {
                used.insert(code.to_owned(), trade.to_owned());
                true
            }
        }
    }
}

#[cfg(test)]
mod buyer_code_tests {
    use super::*;

    #[test]
    fn issued_codes_have_each_wallets_format_and_say_what_the_buyer_does() {
        for (wallet, prefix, len) in [
            ("wechatpay", "13", 18),
            ("alipay", "28", 18),
            ("unionpay", "62", 19),
        ] {
            for outcome in BuyerCode::ALL {
                let code = outcome.issue(wallet).unwrap();
                assert_eq!((code.len(), &code[..2]), (len, prefix), "{code}");
                assert!(code.bytes().all(|b| b.is_ascii_digit()));
                assert_eq!(BuyerCode::of(&code), outcome);
            }
        }
        assert_eq!(BuyerCode::of("134567890123456789"), BuyerCode::Paid);
        assert_eq!(BuyerCode::Paid.issue("paypal"), None);
        let used = UsedCodes::default();
        assert!(used.take("1", "A") && used.take("1", "A") && !used.take("1", "B"));
    }
}
