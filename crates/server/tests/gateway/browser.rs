//! The checkout in a real headless Chromium (Debian `chromium` + `chromium-driver`).

use fantoccini::{ClientBuilder, Locator};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use url::Url;

use crate::harness::TestGateway;

/// A chromedriver process on a free port, killed on drop.
pub struct Driver {
    child: Child,
    url: String,
    _profile: tempfile::TempDir,
}

impl Driver {
    /// Where the browser saves downloads.
    pub fn downloads(&self) -> std::path::PathBuf {
        self._profile.path().join("downloads")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find(names: &[&str]) -> Option<String> {
    names.iter().find_map(|name| {
        if name.starts_with('/') {
            std::path::Path::new(name)
                .exists()
                .then(|| (*name).to_owned())
        } else {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|p| p.join(name))
                    .find(|p| p.exists())
                    .map(|p| p.display().to_string())
            })
        }
    })
}

/// A phone's User-Agent, so wallets serve their mobile (WAP) flavour.
const PHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";

/// A desktop browser's User-Agent: wallets show QR codes.
pub const DESKTOP: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36";

async fn start_driver() -> (Driver, fantoccini::Client) {
    start_driver_as(PHONE, "412,915").await
}

pub async fn start_driver_as(user_agent: &str, window: &str) -> (Driver, fantoccini::Client) {
    let chromedriver = find(&["chromedriver", "/usr/bin/chromedriver"])
        .expect("chromedriver not found: install Debian's chromium and chromium-driver (./scripts/test.sh does)");
    let chromium = find(&["chromium", "/usr/bin/chromium"])
        .expect("chromium not found: install Debian's chromium");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let profile = tempfile::tempdir().unwrap();
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _profile: profile,
    };
    // chromedriver is an external process with no readiness signal but its port.
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not start listening"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-quic", "--no-first-run", format!("--window-size={window}"),
                format!("--user-agent={user_agent}"),
                format!("--user-data-dir={}", driver._profile.path().display()),
            ],
            "prefs": {
                "download.default_directory": driver.downloads().display().to_string(),
                "download.prompt_for_download": false,
            }
        }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session");
    (driver, client)
}

pub async fn text_of(c: &fantoccini::Client, locator: Locator<'_>) -> String {
    c.wait()
        .for_element(locator)
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

pub async fn click(c: &fantoccini::Client, id: &str) {
    c.wait()
        .for_element(Locator::Id(id))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

pub async fn wait_for_url(c: &fantoccini::Client, pred: impl Fn(&Url) -> bool) -> Url {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let url = c.current_url().await.unwrap();
        if pred(&url) {
            return url;
        }
        assert!(Instant::now() < deadline, "browser stuck at {url}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_buyer_pays_with_alipay_in_headless_chromium() {
    let t = TestGateway::start().await;
    let created = t.create("browser-1").await;
    let (_driver, c) = start_driver().await;

    c.goto(&created.payinfo).await.unwrap();
    let name = text_of(&c, Locator::Id("merchant-name")).await;
    assert_eq!(name, "Maple Tea House");
    let amount = text_of(&c, Locator::Id("amount")).await;
    assert!(
        amount.contains("12.34") && amount.contains("CAD"),
        "{amount}"
    );
    // The countdown is live (the script ran): m:ss under ten minutes.
    let countdown = text_of(&c, Locator::Id("countdown")).await;
    // The expiry in the buyer's own time (the browser's zone), beside Beijing time.
    let local = text_of(&c, Locator::Id("local-expiry")).await;
    assert!(local.contains("(your time)"), "{local:?}");
    assert!(
        countdown.starts_with("09:") || countdown == "10:00",
        "{countdown}"
    );

    click(&c, "method-ALIPAY").await;
    // The simulated Alipay: our signed create_forex_trade request, its cashier.
    let wallet = wait_for_url(&c, |u| u.path() == "/sim/alipay/gateway.do").await;
    assert!(
        wallet.as_str().contains("service=create_forex_trade_wap"),
        "the phone gets the WAP cashier: {wallet}"
    );
    let title = text_of(&c, Locator::Id("alipay-cashier")).await;
    assert!(title.contains("Alipay"), "{title}");
    assert!(
        text_of(&c, Locator::Id("alipay-amount"))
            .await
            .contains("12.34 CAD")
    );
    click(&c, "alipay-pay").await;

    let landed = wait_for_url(&c, |u| u.path() == "/return").await;
    assert_eq!(landed.host_str(), t.receiver_url.host_str());
    let params = t.client.verify_redirect(landed.query().unwrap()).unwrap();
    assert!(params.is_success());
    assert_eq!(
        (params.total_fee.as_str(), params.out_trade_no.as_str()),
        ("1234", "browser-1")
    );
    let body = text_of(&c, Locator::Css("h1")).await;
    assert_eq!(body, "Thank you");

    let callback = first_callback(&t).await;
    assert_eq!(callback.order_id, params.trade_no);
    c.close().await.unwrap();
}

#[tokio::test]
async fn a_preselected_method_skips_the_list_in_headless_chromium() {
    let t = TestGateway::start().await;
    let created = t.create("browser-2").await;
    let (_driver, c) = start_driver().await;
    c.goto(&format!("{}?selected=WECHATPAY", created.payinfo))
        .await
        .unwrap();
    // A phone goes straight to WeChat Pay's H5 (MWEB) page, where the payment fails.
    wait_for_url(&c, |u| u.path() == "/sim/wechatpay/checkmweb").await;
    assert!(
        text_of(&c, Locator::Id("wechat-amount"))
            .await
            .contains("12.34 CAD")
    );
    click(&c, "wechat-fail").await;
    let landed = wait_for_url(&c, |u| u.path() == "/return").await;
    let params = t.client.verify_redirect(landed.query().unwrap()).unwrap();
    assert_eq!(params.trade_status, "Trade_Closed");
    c.close().await.unwrap();
}

#[tokio::test]
async fn a_desktop_buyer_scans_a_wechat_qr_code_in_headless_chromium() {
    let t = TestGateway::start().await;
    let created = t.create("browser-3").await;
    let (_driver, c) = start_driver_as(DESKTOP, "1280,900").await;
    c.goto(&created.payinfo).await.unwrap();
    click(&c, "method-WECHATPAY").await;

    // The QR page: the code drawn by the gateway, and (test mode) a link that does what a
    // phone scanning it would.
    c.wait().for_element(Locator::Css("#qr svg")).await.unwrap();
    assert!(text_of(&c, Locator::Id("test-mode")).await.len() > 5);
    let qr_page = c.window().await.unwrap();
    click(&c, "open-simulator").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let phone = loop {
        let windows = c.windows().await.unwrap();
        if let Some(w) = windows.into_iter().find(|w| *w != qr_page) {
            break w;
        }
        assert!(Instant::now() < deadline, "the simulator did not open");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // "The phone": WeChat Pay shows the order; the buyer pays there.
    c.switch_to_window(phone).await.unwrap();
    wait_for_url(&c, |u| u.path() == "/sim/wechatpay/scan").await;
    assert!(
        text_of(&c, Locator::Id("wechat-amount"))
            .await
            .contains("12.34 CAD")
    );
    click(&c, "wechat-pay").await;
    text_of(&c, Locator::Id("wechat-done")).await;
    c.close_window().await.unwrap();

    // The QR page, polling, moves on by itself to the merchant's page.
    c.switch_to_window(qr_page).await.unwrap();
    let params = returned_paid(&t, &c).await;
    assert_eq!(params.out_trade_no, "browser-3");
    let callback = first_callback(&t).await;
    assert!(callback.bizpay_order_id.starts_with("42000"));
    c.close().await.unwrap();
}

#[tokio::test]
async fn a_buyer_pays_with_unionpay_in_headless_chromium() {
    let t = TestGateway::start().await;
    let created = t.create("browser-4").await;
    let (_driver, c) = start_driver().await;
    c.goto(&created.payinfo).await.unwrap();
    click(&c, "method-UNIONPAY").await;
    // Our page posts the signed form to UnionPay by itself (its script submits it).
    wait_for_url(&c, |u| {
        u.path() == "/sim/unionpay/gateway/api/frontTransReq.do"
    })
    .await;
    assert!(
        text_of(&c, Locator::Id("unionpay-amount"))
            .await
            .contains("12.34 CAD")
    );
    let cashier = text_of(&c, Locator::Css("body")).await;
    assert!(
        cashier.contains("Mobile"),
        "a phone: channelType 08: {cashier}"
    );
    click(&c, "unionpay-pay").await;

    // UnionPay's signed form takes the browser back to us, and on to the merchant.
    let params = returned_paid(&t, &c).await;
    assert_eq!(params.out_trade_no, "browser-4");
    let callback = first_callback(&t).await;
    assert_eq!(callback.order_id, params.trade_no);
    assert_eq!(callback.bizpay_order_id.len(), 21, "UnionPay's queryId");
    c.close().await.unwrap();
}

#[tokio::test]
async fn a_buyer_inside_wechat_pays_a_public_pay_link_in_headless_chromium() {
    let t = TestGateway::start().await;
    let token = t.rest().token().await.unwrap();
    let (status, answer) = t
        .rest_raw(
            "api/v1/pay/weixin/public-pay",
            Some(&token),
            t.pay_body(Some("browser-wx-1")),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let (_driver, c) = start_driver().await;
    // WeChat signs the buyer in and back; the page's script asks the (simulated) app to
    // pay, which asks the buyer.
    c.goto(answer["result"]["payInfo"].as_str().unwrap())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while c.get_alert_text().await.is_err() {
        assert!(Instant::now() < deadline, "WeChat never asked the buyer");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.accept_alert().await.unwrap();
    let params = returned_paid(&t, &c).await;
    assert_eq!(params.out_trade_no, "browser-wx-1");
    let callback = first_callback(&t).await;
    assert_eq!(callback.order_id, params.trade_no);
    c.close().await.unwrap();
}

#[tokio::test]
async fn a_buyer_pays_a_card_purchase_through_3d_secure_in_headless_chromium() {
    let t = TestGateway::start().await;
    let txn_time = t.gateway.state().service.clock.now().beijing_compact();
    let data = serde_json::json!({"orderId": "BROWSERCARD1", "txnTime": txn_time,
        "txnAmt": "4200", "frontUrl": t.receiver_url.join("return").unwrap().to_string(),
        "backUrl": t.receiver_url.join("notify").unwrap().to_string(),
        "channelType": "ELAVONECOM", "bizType": "converge_hosted"});
    let serde_json::Value::Object(data) = data else {
        unreachable!()
    };
    let answer = t
        .client
        .exchange_at("processV3", "CC_PURCHASE", "2.0", data)
        .await
        .unwrap();
    let code_url = answer.response_fields.unwrap()["codeUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_driver, c) = start_driver().await;
    c.goto(&code_url).await.unwrap();
    assert!(text_of(&c, Locator::Id("amount")).await.contains("42.00"));
    let type_in = |id: &'static str, text: &'static str| {
        let c = c.clone();
        async move {
            c.find(Locator::Id(id))
                .await
                .unwrap()
                .send_keys(text)
                .await
                .unwrap();
        }
    };
    type_in("number", "4000 0200 0000 0000").await;
    type_in("expiry", "12/40").await;
    type_in("cvc", "123").await;
    click(&c, "pay").await;
    // The challenge card: the bank's 3-D Secure step, then back to the merchant.
    assert!(
        text_of(&c, Locator::Id("three-ds"))
            .await
            .contains("3-D Secure")
    );
    type_in("password", "password").await;
    click(&c, "confirm").await;
    let params = returned_paid(&t, &c).await;
    assert_eq!(params.out_trade_no, "BROWSERCARD1");
    t.receiver.wait_for(1).await;
    c.close().await.unwrap();
}

/// The merchant's first callback, verified.
async fn first_callback(t: &TestGateway) -> ottgate_client::CallbackData {
    t.client
        .verify_callback(&t.receiver.wait_for(1).await[0])
        .unwrap()
}

/// Waits for the browser to land on the merchant's return page; its signed result, paid.
async fn returned_paid(t: &TestGateway, c: &fantoccini::Client) -> ottgate_client::RedirectParams {
    let landed = wait_for_url(c, |u| u.path() == "/return").await;
    let params = t.client.verify_redirect(landed.query().unwrap()).unwrap();
    assert!(params.is_success());
    params
}
