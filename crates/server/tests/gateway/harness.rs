//! A gateway on a random port with a merchant, an SDK client, and a callback receiver.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use ottgate_client::{Client, PrepayInitRequest, PrepayInitResponse, SignKey};
use ottgate_core::{Clock, Currency, ManualClock, SystemClock, Timestamp};
use ottgate_server::{Config, CreatedMerchant, Gateway, NewMerchant};
use ottgate_testkit::Fetch;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use url::Url;

pub use ottgate_testkit::{browser, eventually};

/// A merchant's callback endpoint: records every body, answers `SUCCESS` with scripted
/// statuses (200 once the script runs out).
#[derive(Clone, Default)]
pub struct Receiver {
    inner: Arc<ReceiverInner>,
}

#[derive(Default)]
struct ReceiverInner {
    script: Mutex<VecDeque<StatusCode>>,
    received: Mutex<Vec<Bytes>>,
    /// Each callback's `OTTGate-Signature` header, in arrival order.
    signatures: Mutex<Vec<Option<String>>>,
    arrived: Notify,
}

impl Receiver {
    pub async fn start() -> (Self, Url) {
        let receiver = Receiver::default();
        let app = Router::new()
            .route("/notify", post(record))
            .route(
                "/return",
                get(|| async {
                    axum::response::Html("<!doctype html><title>Thanks</title><h1>Thank you</h1>")
                }),
            )
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    /// The next answers, in order.
    pub fn answer(&self, statuses: &[u16]) {
        let mut script = self.inner.script.lock().unwrap();
        script.extend(statuses.iter().map(|s| StatusCode::from_u16(*s).unwrap()));
    }

    pub fn received(&self) -> Vec<Bytes> {
        self.inner.received.lock().unwrap().clone()
    }

    /// The `OTTGate-Signature` header of each callback received.
    pub fn signatures(&self) -> Vec<Option<String>> {
        self.inner.signatures.lock().unwrap().clone()
    }

    /// Waits (up to 10 s) until at least `n` callbacks have arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Bytes> {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let notified = self.inner.arrived.notified();
                if self.received().len() >= n {
                    return self.received();
                }
                notified.await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("expected {n} callbacks, got {}", self.received().len()))
    }
}

async fn record(
    State(r): State<Receiver>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let signature = headers
        .get("ottgate-signature")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    r.inner.signatures.lock().unwrap().push(signature);
    r.inner.received.lock().unwrap().push(body);
    r.inner.arrived.notify_waiters();
    let status = r
        .inner
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(StatusCode::OK);
    // What OTT Pay merchants answer.
    (status, "SUCCESS")
}

pub struct Options {
    pub jwt_secret: Option<&'static str>,
    pub manual_clock: bool,
    pub workers: bool,
    pub sandbox: bool,
    pub schedule: &'static str,
    pub currencies: Vec<Currency>,
    /// Where buyers reach the gateway, when not its own address (e.g. a TLS proxy).
    pub public_url: Option<&'static str>,
    pub exchange_rates: Option<&'static str>,
    pub header_read_timeout_ms: Option<u64>,
    pub max_connections: Option<usize>,
    pub max_connections_per_address: Option<usize>,
    pub write_timeout_ms: Option<u64>,
    pub request_timeout_ms: Option<u64>,
    pub auth_hash_concurrency: Option<u32>,
    pub passive_pay_wait_ms: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            manual_clock: false,
            workers: true,
            sandbox: true,
            schedule: "15s,1m,5m",
            currencies: vec![Currency::Cad],
            public_url: None,
            exchange_rates: None,
            header_read_timeout_ms: None,
            max_connections: None,
            max_connections_per_address: None,
            write_timeout_ms: None,
            request_timeout_ms: None,
            auth_hash_concurrency: None,
            passive_pay_wait_ms: None,
        }
    }
}

pub struct TestGateway {
    pub gateway: Gateway,
    pub base: Url,
    pub clock: Option<ManualClock>,
    pub merchant: CreatedMerchant,
    pub client: Client,
    pub receiver: Receiver,
    pub receiver_url: Url,
    /// A browser-like HTTP client that does not follow redirects.
    pub http: reqwest::Client,
    pub dir: Arc<tempfile::TempDir>,
    shutdown: CancellationToken,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

/// Whether the gateway tests run on PostgreSQL: the test command runs this whole suite
/// once on SQLite and once more with `OTTGATE_TEST_BACKEND=postgres`.
pub fn on_postgres() -> bool {
    std::env::var("OTTGATE_TEST_BACKEND").is_ok_and(|backend| backend == "postgres")
}

/// Gives `dir` its database: on PostgreSQL, a fresh database on the test cluster and the
/// master key every gateway over it shares (both kept in `dir`, so a test can restart a
/// gateway on the same data); on SQLite the file is made on first start.
pub async fn prepare_database(dir: &std::path::Path) {
    if on_postgres() {
        let url = ottgate_testkit::fresh_database().await;
        std::fs::write(dir.join("database_url"), url).unwrap();
        std::fs::write(dir.join("master.key"), "5a".repeat(32)).unwrap();
    }
}

pub fn config(dir: &std::path::Path, options: &Options) -> Config {
    let (database_url, master_key_file) = match std::fs::read_to_string(dir.join("database_url")) {
        Ok(url) => (url, Some(dir.join("master.key"))),
        Err(_) => (
            format!("sqlite://{}", dir.join("gateway.db").display()),
            None,
        ),
    };
    let mut c = Config::default();
    c.storage.database_url = database_url;
    c.storage.master_key_file = master_key_file;
    c.server.listen = "127.0.0.1:0".parse().unwrap();
    c.server.public_url = options.public_url.map(str::to_owned);
    c.server.header_read_timeout_ms = options.header_read_timeout_ms.unwrap_or(10_000);
    c.server.max_connections = options.max_connections.unwrap_or(10_000);
    c.server.max_connections_per_address = options.max_connections_per_address.unwrap_or(1_000);
    c.server.write_timeout_ms = options.write_timeout_ms.unwrap_or(30_000);
    c.server.request_timeout_ms = options.request_timeout_ms.unwrap_or(60_000);
    c.sandbox.enabled = options.sandbox;
    c.sandbox.simulator_time_scale = 3600.0;
    c.sandbox.simulator_exchange_rates = options.exchange_rates.map(str::to_owned);
    c.callbacks.callback_retry_schedule = options.schedule.into();
    c.callbacks.callback_timeout_ms = 2_000;
    c.callbacks.delivery_poll_interval_ms = 100;
    c.payments.expiry_sweep_interval_ms = 100;
    c.payments.passive_pay_wait_ms = options.passive_pay_wait_ms.unwrap_or(2_000);
    c.sign_in.auth_hash_concurrency = options.auth_hash_concurrency.unwrap_or(4);
    c.sign_in.jwt_secret = options
        .jwt_secret
        .map(|s| ottgate_server::config::MaskedString(ottgate_core::Secret::new(s)));
    c
}

/// Starts a gateway over the database in `dir` (so a test can restart on the same data).
pub async fn serve(
    dir: &std::path::Path,
    options: &Options,
    clock: Arc<dyn Clock>,
) -> (
    Gateway,
    Url,
    CancellationToken,
    JoinHandle<std::io::Result<()>>,
) {
    let config = config(dir, options);
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .unwrap();
    let bound: SocketAddr = listener.local_addr().unwrap();
    let gateway = Gateway::open(&config, bound, clock).await.unwrap();
    let shutdown = CancellationToken::new();
    let server = {
        let (g, s, w) = (gateway.clone(), shutdown.clone(), options.workers);
        tokio::spawn(async move { g.serve(listener, s, w).await })
    };
    (
        gateway,
        Url::parse(&format!("http://{bound}/")).unwrap(),
        shutdown,
        server,
    )
}

impl TestGateway {
    pub async fn start() -> Self {
        Self::with(Options::default()).await
    }

    pub async fn with(options: Options) -> Self {
        // The gateway's log, shown with a failing test's output.
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_max_level(tracing::Level::INFO)
            .try_init();
        let dir = Arc::new(tempfile::tempdir().unwrap());
        prepare_database(dir.path()).await;
        let manual = options
            .manual_clock
            .then(|| ManualClock::new(SystemClock.now()));
        let clock: Arc<dyn Clock> = match &manual {
            Some(c) => Arc::new(c.clone()),
            None => Arc::new(SystemClock),
        };
        let (gateway, base, shutdown, server) = serve(dir.path(), &options, clock).await;
        let merchant = gateway
            .create_merchant(NewMerchant {
                name: "Maple Tea House".into(),
                id: None,
                currencies: options.currencies.clone(),
            })
            .await
            .unwrap();
        let client = Client::new(
            base.as_str(),
            merchant.merchant.id.as_str(),
            merchant.sign_key.clone(),
        )
        .unwrap();
        let (receiver, receiver_url) = Receiver::start().await;
        Self {
            gateway,
            base,
            clock: manual,
            merchant,
            client,
            receiver,
            receiver_url,
            http: browser(),
            dir,
            shutdown,
            server: Some(server),
        }
    }

    /// Arms a fault at the simulated `wallet` (its `/sim/{wallet}/control`) for one trade.
    pub async fn fault(
        &self,
        wallet: &str,
        kind: ottgate_channels::simkit::FaultKind,
        out_trade_no: &str,
    ) {
        let f = ottgate_channels::simkit::Fault {
            kind,
            out_trade_no: Some(out_trade_no.into()),
            delay_ms: None,
        };
        let r = self
            .post(&format!("sim/{wallet}/control"))
            .json(&f)
            .fetch()
            .await;
        assert_eq!(r.status(), 204);
    }

    /// A payment's `order_status`, as STATUS_QUERY tells the merchant.
    pub async fn attempt_status(&self, attempt: &str) -> String {
        self.client
            .status_query(attempt)
            .await
            .unwrap()
            .order_status
    }

    /// A POST to `path` under the gateway's base URL.
    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(self.base.join(path).unwrap())
    }

    /// A GET of `path` under the gateway's base URL.
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(self.base.join(path).unwrap())
    }

    /// The buyer chooses `method` on the checkout page at `payinfo`.
    pub async fn choose(&self, payinfo: &str, method: &str) -> reqwest::Response {
        self.http
            .post(format!("{payinfo}/pay"))
            .form(&[("method", method)])
            .fetch()
            .await
    }

    /// A gateway outside sandbox mode: no simulators, no sandbox helpers, callbacks only
    /// to public addresses.
    pub async fn live() -> Self {
        Self::with(Options {
            sandbox: false,
            ..Default::default()
        })
        .await
    }

    /// Another merchant of the same gateway.
    pub async fn add_merchant(&self, name: &str) -> CreatedMerchant {
        self.gateway
            .create_merchant(NewMerchant {
                name: name.into(),
                id: None,
                currencies: vec![],
            })
            .await
            .unwrap()
    }

    /// Waits until STATUS_QUERY says `attempt` is paid.
    pub async fn wait_paid(&self, attempt: &str) {
        eventually("the payment", || async {
            self.attempt_status(attempt).await == "success"
        })
        .await;
    }

    /// How much of `attempt` is refunded, as STATUS_QUERY tells the merchant.
    pub async fn refunded(&self, attempt: &str) -> String {
        self.client
            .status_query(attempt)
            .await
            .unwrap()
            .refund_amount
    }

    /// A simulated wallet's own record of a trade (`/sim/{wallet}/orders/{trade}`).
    pub async fn wallet_books(&self, wallet: &str, trade: &str) -> serde_json::Value {
        let url = self
            .base
            .join(&format!("sim/{wallet}/orders/{trade}"))
            .unwrap();
        self.http.get(url).fetch().await.json().await.unwrap()
    }

    /// GETs `url` like a browser and returns the page text.
    pub async fn page(&self, url: impl reqwest::IntoUrl) -> String {
        self.http.get(url).fetch_text().await
    }

    /// The merchant's REST client (appId/appKey from `merchant add`).
    pub fn rest(&self) -> ottgate_client::RestClient {
        let m = &self.merchant;
        ottgate_client::RestClient::new(
            self.base.as_str(),
            &m.merchant.app_id,
            m.app_key.expose_secret(),
        )
        .unwrap()
    }

    /// Another merchant on the same gateway, with its REST client.
    pub async fn other_merchant(&self) -> (CreatedMerchant, ottgate_client::RestClient) {
        let other = self
            .gateway
            .create_merchant(NewMerchant {
                name: "Other Shop".into(),
                id: None,
                currencies: vec![Currency::Cad],
            })
            .await
            .unwrap();
        let rest = ottgate_client::RestClient::new(
            self.base.as_str(),
            &other.merchant.app_id,
            other.app_key.expose_secret(),
        )
        .unwrap();
        (other, rest)
    }

    /// POSTs a JSON body to a REST path, with an optional bearer token; status and body.
    pub async fn rest_raw(
        &self,
        path: &str,
        token: Option<&str>,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let mut request = self.post(path).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let r = request.fetch().await;
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// A valid wap-pay body.
    pub fn pay_body(&self, reference: Option<&str>) -> serde_json::Value {
        let mut body = serde_json::json!({
            "amount": "1000",
            "callbackURL": self.receiver_url.join("notify").unwrap().to_string(),
            "returnURL": self.receiver_url.join("return").unwrap().to_string(),
            "remark": "2 x tea",
        });
        if let Some(r) = reference {
            body["reference"] = r.into();
        }
        body
    }

    pub fn key(&self) -> SignKey {
        self.merchant.sign_key.clone()
    }

    pub fn advance(&self, d: Duration) {
        self.clock.as_ref().expect("manual clock").advance(d);
    }

    pub fn now(&self) -> Timestamp {
        self.clock
            .as_ref()
            .map_or_else(|| SystemClock.now(), |c| c.now())
    }

    /// A valid PREPAY_INIT for this merchant: 12.34 CAD, 10 minutes.
    pub fn order(&self, reference: &str) -> PrepayInitRequest {
        let m = &self.merchant.merchant;
        PrepayInitRequest {
            merchant_id: Some(m.id.to_string()),
            shop_id: Some(m.shop_id.to_string()),
            operator_id: Some(m.operator_id.to_string()),
            prepay_order_id: Some(reference.into()),
            sale_num: Some(format!("S-{reference}")),
            amount: Some("1234".into()),
            currency_type: Some("CAD".into()),
            biz_type: Some("PREPAY".into()),
            redirect_url: Some(self.receiver_url.join("return").unwrap().to_string()),
            call_back_url: Some(self.receiver_url.join("notify").unwrap().to_string()),
            duration: Some("600".into()),
            email: None,
            remarks: Some("可以".into()),
        }
    }

    pub async fn create(&self, reference: &str) -> PrepayInitResponse {
        self.client
            .prepay_init(&self.order(reference))
            .await
            .unwrap()
    }

    /// Completes a checkout through the sandbox helper API; returns the JSON answer.
    pub async fn complete(
        &self,
        payinfo: &str,
        method: &str,
        outcome: &str,
    ) -> (StatusCode, serde_json::Value) {
        let token = payinfo.rsplit('/').next().unwrap();
        let r = self
            .post(&format!("sandbox/v1/checkout/{token}/complete"))
            .json(&serde_json::json!({"method": method, "outcome": outcome}))
            .fetch()
            .await;
        (
            StatusCode::from_u16(r.status().as_u16()).unwrap(),
            r.json().await.unwrap(),
        )
    }

    /// Stops the server (drains it) and keeps the database.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

/// The `Location` of a redirect response.
pub fn location(r: &reqwest::Response) -> String {
    assert!(
        r.status().is_redirection(),
        "expected a redirect, got {}",
        r.status()
    );
    r.headers()[reqwest::header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned()
}

/// The value of `name` on the element whose id is `id`, entities decoded.
pub fn attribute(page: &str, id: &str, name: &str) -> String {
    let at = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {page}"));
    let open = page[..at].rfind('<').unwrap();
    let close = at + page[at..].find('>').unwrap();
    let tag = &page[open..close];
    let key = format!(" {name}=\"");
    let value_at = tag
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {tag}"))
        + key.len();
    decode(&tag[value_at..value_at + tag[value_at..].find('"').unwrap()])
}

/// HTML entities decoded, as a browser reads an attribute.
fn decode(value: &str) -> String {
    [
        ("&#34;", "\""),
        ("&quot;", "\""),
        ("&#39;", "'"),
        ("&apos;", "'"),
        ("&#60;", "<"),
        ("&lt;", "<"),
        ("&#62;", ">"),
        ("&gt;", ">"),
        ("&#x2f;", "/"),
        ("&#47;", "/"),
        ("&#38;", "&"),
        ("&amp;", "&"),
    ]
    .iter()
    .fold(value.to_owned(), |v, (entity, c)| v.replace(entity, c))
}

/// Plays a buyer in a browser without JavaScript: choose `method` on the checkout, then
/// press `action` at the wallet; returns where the browser finally lands. A QR code is
/// "scanned" through the simulator's link, and the QR page's status polled as its script
/// would.
pub async fn buyer_pays(t: &TestGateway, payinfo: &str, method: &str, action: &str) -> String {
    let chose = t
        .http
        .post(format!("{payinfo}/pay"))
        .form(&[("method", method)])
        .fetch()
        .await;
    if chose.status().is_redirection() {
        return pay_at_wallet(t, &location(&chose), action).await;
    }
    assert_eq!(chose.status(), 200);
    let page = chose.text().await.unwrap();
    if page.contains("id=\"wallet-form\"") {
        return pay_at_unionpay(t, &page, action).await;
    }
    let scan = attribute(&page, "open-simulator", "href");
    let status_url = attribute(&page, "qr-card", "data-status-url");
    act_at_wechat(t, &scan, action).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let next = loop {
        let status: serde_json::Value = t.http.get(&status_url).fetch().await.json().await.unwrap();
        if status["done"] == true {
            break status["next"].as_str().unwrap().to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the QR page never moved on"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let returned = t.http.get(&next).fetch().await;
    location(&returned)
}

/// The hidden inputs of a page's forms, as a browser submits them.
pub fn hidden_inputs(page: &str) -> Vec<(String, String)> {
    page.split("<input type=\"hidden\" name=\"")
        .skip(1)
        .map(|rest| {
            let tag = &rest[..rest.find('>').unwrap()];
            let name = &tag[..tag.find('"').unwrap()];
            let value_at = tag.find(" value=\"").unwrap() + " value=\"".len();
            let value = &tag[value_at..value_at + tag[value_at..].find('"').unwrap()];
            (decode(name), decode(value))
        })
        .collect()
}

/// The hidden inputs of the form whose `id` is `form_id`.
pub fn hidden_inputs_of(page: &str, form_id: &str) -> Vec<(String, String)> {
    let start = page
        .find(&format!("id=\"{form_id}\""))
        .unwrap_or_else(|| panic!("no form {form_id}"));
    let form = &page[start..start + page[start..].find("</form>").unwrap()];
    hidden_inputs(form)
}

/// Submits the auto-submitted form of our checkout (`#wallet-form`) to the simulated
/// UnionPay, presses `action` at its cashier, and follows its signed way back.
async fn pay_at_unionpay(t: &TestGateway, page: &str, action: &str) -> String {
    let cashier = t
        .http
        .post(attribute(page, "wallet-form", "action"))
        .form(&hidden_inputs(page))
        .fetch()
        .await;
    assert_eq!(cashier.status(), 200);
    let cashier = cashier.text().await.unwrap();
    let sim_action = simulator_action(action);
    let acted = t
        .http
        .post(attribute(&cashier, "unionpay-form", "action"))
        .form(&[("action", sim_action)])
        .fetch()
        .await;
    let returned = if acted.status().is_redirection() {
        t.http.get(location(&acted)).fetch().await
    } else {
        // UnionPay's own auto-submitted form, POSTed back to frontUrl.
        let back = acted.text().await.unwrap();
        t.http
            .post(attribute(&back, "unionpay-return", "action"))
            .form(&hidden_inputs(&back))
            .fetch()
            .await
    };
    location(&returned)
}

/// Presses `action` on a simulated WeChat Pay page (the H5 page, or the page a scanned QR
/// code opens).
pub async fn act_at_wechat(t: &TestGateway, page_url: &str, action: &str) -> reqwest::Response {
    let page = t.http.get(page_url).fetch().await;
    assert_eq!(page.status(), 200, "{page_url}");
    let page = page.text().await.unwrap();
    let mut form = vec![(
        "action",
        match action {
            "paid" => "pay",
            "failed" => "fail",
            _ => "cancel",
        }
        .to_owned(),
    )];
    if page.contains("id=\"wechat-redirect\"") {
        form.push(("redirect_url", attribute(&page, "wechat-redirect", "value")));
    }
    t.http
        .post(attribute(&page, "wechat-form", "action"))
        .form(&form)
        .fetch()
        .await
}

/// Plays the buyer at a wallet page — a simulated wallet or the sandbox wallet — choosing
/// `paid`, `failed` or `cancelled`; returns where the browser finally lands.
pub async fn pay_at_wallet(t: &TestGateway, wallet: &str, action: &str) -> String {
    let acted = if wallet.contains("/sim/wechatpay/") {
        act_at_wechat(t, wallet, action).await
    } else if wallet.contains("/sim/alipay/gateway.do") {
        assert_eq!(t.http.get(wallet).fetch().await.status(), 200);
        let query = Url::parse(wallet).unwrap();
        let out_trade_no = query
            .query_pairs()
            .find(|(k, _)| k == "out_trade_no")
            .unwrap()
            .1
            .into_owned();
        let sim_action = simulator_action(action);
        let cashier = t
            .base
            .join(&format!("sim/alipay/cashier/{out_trade_no}"))
            .unwrap();
        t.http
            .post(cashier)
            .form(&[("action", sim_action)])
            .fetch()
            .await
    } else {
        assert!(wallet.contains("/sandbox/wallet/"), "{wallet}");
        assert_eq!(t.http.get(wallet).fetch().await.status(), 200);
        t.http
            .post(wallet)
            .form(&[("action", action)])
            .fetch()
            .await
    };
    let back = location(&acted);
    let returned = t.http.get(&back).fetch().await;
    location(&returned)
}

/// The simulators' button for an outcome the sandbox helper names.
fn simulator_action(outcome: &str) -> &'static str {
    match outcome {
        "paid" => "pay",
        "failed" => "fail",
        _ => "cancel",
    }
}

/// A TCP connection to the gateway from the loopback address `127.0.0.{last}` (Linux
/// answers on all of 127/8): a test's stand-in for another client machine.
pub async fn connect_from(t: &TestGateway, last: u8) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(std::net::SocketAddr::from(([127, 0, 0, last], 0)))
        .unwrap();
    let port = t.base.port().unwrap();
    socket
        .connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap()
}

/// An HTTP client whose connections come from `127.0.0.{last}`.
pub fn client_from(last: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, last]))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}
