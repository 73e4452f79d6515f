//! The `ottgate` binary as users run it: separate processes talking real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code")]

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use ottgate_client::PrepayInitRequest;
use ottgate_core::{MerchantRef, OrderId};
use ottgate_store::prelude::*;
use ottgate_store::{DeliveryState, SqliteStore};
use ottgate_testkit::Fetch;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::{Credentials, Server, add_merchant, db_url, location, ottgate, run};

mod support;
use tokio::sync::mpsc;

#[test]
fn the_demo_runs_a_whole_payment_and_exits_zero() {
    let out = run(ottgate().arg("demo"));
    let text = String::from_utf8(out.stdout).unwrap();
    for step in [
        "PREPAY_INIT",
        "\"payinfo\"",
        "service = create_forex_trade",
        "sign_type = RSA2",
        "action=pay",
        "/notify/alipay",
        "trade_status=Trade_Finished",
        "sign verified",
        "encrypted callback",
        "\"finish_time\"",
        "PREPAY_QUERY",
        "\"status\":\"SUCCESS\"",
        "Demo complete",
    ] {
        assert!(text.contains(step), "demo output lacks {step:?}:\n{text}");
    }
}

#[test]
fn bench_measures_both_phases_without_errors() {
    let out = run(ottgate().args(["bench", "--seconds", "1", "--concurrency", "4"]));
    let text = String::from_utf8(out.stdout).unwrap();
    for phase in ["PREPAY_INIT", "PREPAY_QUERY"] {
        let line = text
            .lines()
            .find(|l| l.starts_with(phase))
            .unwrap_or_else(|| panic!("no {phase} line:\n{text}"));
        assert!(line.contains("req/s") && line.contains("p99"), "{line}");
        assert!(line.contains("µs/req"), "the spawned server's CPU: {line}");
        assert!(line.trim_end().ends_with("errors 0"), "{line}");
    }
}

#[test]
fn bench_drives_a_running_gateway_open_loop_and_reports_json() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let out = run(ottgate()
        .args(["merchant", "add", "--name", "Bench", "--json"])
        .env("OTTGATE_DATABASE_URL", db_url(dir.path())));
    let credentials = dir.path().join("merchant.json");
    std::fs::write(&credentials, &out.stdout).unwrap();
    let out = run(ottgate().args([
        "bench",
        "--url",
        &server.base,
        "--credentials",
        credentials.to_str().unwrap(),
        "--scenario",
        "create,query,rest,e2e",
        "--rate",
        "40",
        "--seconds",
        "1",
        "--json",
    ]));
    let phases: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = phases.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["PREPAY_INIT", "PREPAY_QUERY", "REST_WAP_PAY", "E2E"]
    );
    for phase in &phases {
        assert_eq!(phase["errors"], 0, "{phase}");
        assert_eq!(phase["requests"], 40, "40 a second for a second: {phase}");
        for key in ["per_second", "p50_ms", "p99_ms"] {
            assert!(phase[key].as_f64().unwrap() > 0.0, "{key}: {phase}");
        }
        assert!(
            phase.get("server_cpu_us_per_request").is_none(),
            "no CPU figure for a gateway it did not start"
        );
    }
    assert_eq!(phases[3]["callbacks"], 40, "every e2e payment called back");
    assert!(phases[3]["callback_p99_ms"].as_f64().unwrap() > 0.0);

    // Bodies for wrk: sealed for this merchant, each a new order the gateway takes.
    let bodies = dir.path().join("bodies.txt");
    run(ottgate().args([
        "bench",
        "--url",
        &server.base,
        "--credentials",
        credentials.to_str().unwrap(),
        "--wrk-count",
        "3",
        "--wrk-bodies",
        bodies.to_str().unwrap(),
    ]));
    let text = std::fs::read_to_string(&bodies).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    let http = reqwest::Client::new();
    let mut answers = std::collections::HashSet::new();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for line in &lines {
        let envelope: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(envelope["action"], "PREPAY_INIT");
        let answer = runtime.block_on(async {
            http.post(format!("{}/processV2", server.base))
                .header("content-type", "application/json")
                .body(line.to_string())
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        });
        assert!(answer.contains("\"rsp_code\":\"SUCCESS\""), "{answer}");
        answers.insert(answer);
    }
    assert_eq!(answers.len(), 3, "three different orders");
}

#[test]
fn merchant_add_prints_credentials_and_keeps_the_sign_key_sealed_at_rest() {
    let dir = tempfile::tempdir().unwrap();
    let c = add_merchant(dir.path(), "Maple Tea House");
    assert!(c.merchant_id.starts_with("ON") && c.merchant_id.len() == 10);
    assert_eq!(c.shop_id, format!("{}001", c.merchant_id));
    assert_eq!(c.operator_id.len(), 10);
    assert_eq!(c.app_id, c.merchant_id);
    assert_eq!(c.sign_key.len(), 16);
    assert!(
        c.sign_key
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
    );
    assert_eq!(c.app_key.len(), 32);
    assert_eq!(c.currencies, ["CAD", "USD"]);
    // Neither secret is in the database file (or its WAL) in plaintext.
    for file in std::fs::read_dir(dir.path()).unwrap() {
        let path = file.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        for secret in [&c.sign_key, &c.app_key] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} holds a secret",
                path.display()
            );
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("ottgate.db.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // A chosen id, and the refusal of a duplicate.
    run(ottgate()
        .args(["merchant", "add", "--name", "Second", "--id", "QC00005496"])
        .env("OTTGATE_DATABASE_URL", db_url(dir.path())));
    let dup = ottgate()
        .args(["merchant", "add", "--name", "Again", "--id", "QC00005496"])
        .env("OTTGATE_DATABASE_URL", db_url(dir.path()))
        .output()
        .unwrap();
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));
}

#[test]
fn config_print_shows_overrides_and_masks_secrets() {
    let master = "ab".repeat(32);
    let out = run(ottgate()
        .args(["config", "print", "--listen", "0.0.0.0:9000"])
        .env("OTTGATE_MASTER_KEY", &master)
        .env("OTTGATE_SANDBOX", "false"));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("listen = \"0.0.0.0:9000\""), "{text}");
    assert!(text.contains("sandbox = false"), "{text}");
    assert!(text.contains("master_key = \"***\""), "{text}");
    assert!(!text.contains(&master));
}

/// A merchant callback endpoint that holds each request for `delay` before answering 200.
async fn receiver(delay: Duration) -> (String, mpsc::UnboundedReceiver<Bytes>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new().route(
        "/notify",
        post(move |body: Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body);
                tokio::time::sleep(delay).await;
                "SUCCESS"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/notify", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

/// 5.00 USD under `reference`, called back at `callback`.
fn order(c: &Credentials, reference: &str, callback: &str) -> PrepayInitRequest {
    support::order(c, reference, callback, "500", "USD")
}

async fn pay(base: &str, payinfo: &str) {
    let token = payinfo.rsplit('/').next().unwrap();
    let r = reqwest::Client::new()
        .post(format!("{base}/sandbox/v1/checkout/{token}/complete"))
        .json(&serde_json::json!({"method": "UNIONPAY", "outcome": "paid"}))
        .fetch()
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_gateway_takes_a_payment_and_never_logs_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    // Created while the server runs, through the same database.
    let creds = add_merchant(dir.path(), "Live Merchant");
    let client = creds.envelope_client(&server.base).unwrap();
    let (callback_url, mut callbacks) = receiver(Duration::ZERO).await;
    let created = client
        .prepay_init(&order(&creds, "served-1", &callback_url))
        .await
        .unwrap();
    pay(&server.base, &created.payinfo).await;
    let body = tokio::time::timeout(Duration::from_secs(15), callbacks.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(client.verify_callback(&body).unwrap().currency_type, "USD");
    assert_eq!(
        client.prepay_query("served-1").await.unwrap().status,
        "SUCCESS"
    );
    let health = reqwest::get(format!("{}/readyz", server.base))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    assert!(server.terminate().success());
    let log = server.log_text();
    assert!(
        log.contains("\"request_id\""),
        "requests are logged with their id"
    );
    assert!(log.contains("payment result applied") && log.contains("callback delivered"));
    let master = std::fs::read_to_string(dir.path().join("ottgate.db.key")).unwrap();
    for (name, secret) in [
        ("sign key", creds.sign_key.as_str()),
        ("app key", creds.app_key.as_str()),
        ("master key", master.trim()),
    ] {
        assert!(
            !log.contains(secret),
            "the {name} appears in the server log"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_in_flight_callback_finish_and_be_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    let creds = add_merchant(dir.path(), "Slow Merchant");
    let client = creds.envelope_client(&server.base).unwrap();
    let (callback_url, mut callbacks) = receiver(Duration::from_millis(1500)).await;
    let created = client
        .prepay_init(&order(&creds, "drain-1", &callback_url))
        .await
        .unwrap();
    pay(&server.base, &created.payinfo).await;
    // The callback is in flight (the receiver holds it)...
    tokio::time::timeout(Duration::from_secs(15), callbacks.recv())
        .await
        .unwrap()
        .unwrap();
    let started = Instant::now();
    assert!(server.terminate().success());
    // ...so shutdown waited for it rather than abandoning it.
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "stopped after {:?}",
        started.elapsed()
    );
    let store = SqliteStore::open(&db_url(dir.path())).await.unwrap();
    let merchant = ottgate_core::MerchantId::parse(&creds.merchant_id).unwrap();
    let order: OrderId = store
        .order_by_reference(&merchant, &MerchantRef::parse("drain-1").unwrap())
        .await
        .unwrap()
        .unwrap()
        .id;
    let deliveries = store.deliveries_for_order(&order).await.unwrap();
    assert_eq!(
        (deliveries[0].state, deliveries[0].attempts),
        (DeliveryState::Delivered, 1)
    );
}

/// `ottgate` with the merchant's credentials in the environment, as a merchant's shell has.
fn as_merchant(server: &Server, c: &Credentials) -> Command {
    let mut cmd = ottgate();
    cmd.env("OTTGATE_GATEWAY", &server.base)
        .env("OTTGATE_MERCHANT_ID", &c.merchant_id)
        .env("OTTGATE_SIGN_KEY", &c.sign_key)
        .env("OTTGATE_OPERATOR_ID", &c.operator_id)
        .env("OTTGATE_APP_KEY", &c.app_key);
    cmd
}

/// `ottgate <words>` as the merchant (`words` split at spaces): its JSON answer.
fn shell(server: &Server, c: &Credentials, words: &str) -> serde_json::Value {
    json_of(&run(as_merchant(server, c).args(words.split(' '))))
}

/// `ottgate query <which> <id>` as the merchant: its JSON answer.
fn query(server: &Server, c: &Credentials, which: &str, id: &str) -> serde_json::Value {
    json_of(&run(as_merchant(server, c).args(["query", which, id])))
}

fn json_of(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&out.stdout)))
}

async fn sandbox_complete(base: &str, path: &str, body: serde_json::Value) -> serde_json::Value {
    let r = reqwest::Client::new()
        .post(format!("{base}/sandbox/v1/{path}/complete"))
        .json(&body)
        .fetch()
        .await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pay_query_and_refund_from_the_shell_through_both_apis() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let c = add_merchant(dir.path(), "Shell Merchant");
    let (callback, _callbacks) = receiver(Duration::ZERO).await;
    let sh = |words: &str| shell(&server, &c, words);

    // Envelope API: a checkout, paid, queried, refunded with an idempotent refund id.
    let created = sh(&format!(
        "pay checkout --amount 2500 --currency USD --reference shell-1 --redirect-url https://shop.example/done --callback-url {callback}"
    ));
    let token = created["payinfo"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let paid = sandbox_complete(
        &server.base,
        &format!("checkout/{token}"),
        serde_json::json!({"method":"WECHATPAY","outcome":"paid"}),
    )
    .await;
    let order_id = paid["order_id"].as_str().unwrap();
    let q = query(&server, &c, "--prepay-order-id", "shell-1");
    assert_eq!(q["status"], "SUCCESS");
    let r = sh(&format!(
        "refund --order-id {order_id} --amount 500 --refund-id R-1"
    ));
    assert_eq!(
        (r["refund_status"].as_str(), r["order_id"].as_str()),
        (Some("success"), Some("R-1"))
    );
    let q = query(&server, &c, "--order-id", order_id);
    assert_eq!(
        (q["order_status"].as_str(), q["refund_amount"].as_str()),
        (Some("partial_refunded"), Some("500"))
    );

    // REST API: wap-pay, paid, refunded in full, queried by reference.
    let wap = sh(&format!(
        "pay wap --amount 1000 --callback-url {callback} --return-url https://shop.example/back --reference shell-2"
    ));
    let payment_id = wap["paymentId"].as_str().unwrap();
    sandbox_complete(
        &server.base,
        &format!("payments/{payment_id}"),
        serde_json::json!({"outcome":"paid"}),
    )
    .await;
    let r = sh(&format!("refund --payment-id {payment_id} --amount 1000"));
    // Alipay refunds asynchronously: accepted now, settled when Alipay's notification lands.
    assert_eq!(r["refundStatus"], "pending");
    let deadline = Instant::now() + Duration::from_secs(10);
    let q = loop {
        let q = query(&server, &c, "--reference", "shell-2");
        if q["paymentStatus"] == "fully_refunded" || Instant::now() > deadline {
            break q;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (q["paymentStatus"].as_str(), q["stateCode"].as_str()),
        (Some("fully_refunded"), Some("P00004"))
    );

    // REST WeChat Pay: a QR code (drawn on stderr) and an H5 page, each paid and queried.
    let qr = run(as_merchant(&server, &c).args([
        "pay",
        "wechat-qr",
        "--amount",
        "800",
        "--callback-url",
        &callback,
        "--reference",
        "shell-3",
    ]));
    assert!(!qr.stderr.is_empty(), "the code is drawn");
    let qr = json_of(&qr);
    assert!(
        qr["payInfo"]
            .as_str()
            .unwrap()
            .starts_with("weixin://wxpay/bizpayurl?"),
        "{qr}"
    );
    let h5 = sh(&format!(
        "pay wechat-h5 --amount 700 --callback-url {callback} --return-url https://shop.example/back"
    ));
    assert_eq!(h5["timeZoneId"], "America/Toronto");
    let public = sh(&format!(
        "pay wechat-public --amount 600 --callback-url {callback} --return-url https://shop.example/back"
    ));
    assert!(
        public["payInfo"].as_str().unwrap().ends_with("/wechat"),
        "{public}"
    );
    let alipay_app = sh(&format!(
        "pay alipay-app --amount 500 --callback-url {callback} --sale-number S-1"
    ));
    assert!(
        alipay_app["paySign"]
            .as_str()
            .unwrap()
            .contains("mobile.securitypay.pay"),
        "{alipay_app}"
    );
    let unionpay_app = sh(&format!(
        "pay unionpay-app --amount 400 --callback-url {callback}"
    ));
    assert_eq!(unionpay_app["encoding"], "UTF-8", "{unionpay_app}");
    let card = sh(&format!(
        "pay card --amount 900 --order-id SHELLCARD1 --front-url https://shop.example/back --back-url {callback}"
    ));
    let code_url = card["codeUrl"].as_str().unwrap();
    assert!(code_url.contains("/sandbox/card/"), "{card}");
    let paid =
        ottgate_testkit::pay_with_card(&ottgate_testkit::browser(), code_url, "4111111111111111")
            .await;
    assert_eq!(paid.status(), 303);
    let q = query(&server, &c, "--order-id", "SHELLCARD1");
    assert_eq!(q["order_status"], "success", "{q}");
    let mini = sh(&format!(
        "pay mini-program --amount 300 --app-id wx5f89682208cf8e88 --open-id oShellBuyer --order-id SHELL-MINI-1 --callback-url {callback}"
    ));
    assert!(
        mini["payInfo"]["packageStr"]
            .as_str()
            .unwrap()
            .starts_with("prepay_id="),
        "{mini}"
    );
    for (paid, method) in [(&alipay_app, "ALIPAY"), (&unionpay_app, "UNIONPAY")] {
        let payment_id = paid["paymentId"].as_str().unwrap();
        let outcome = serde_json::json!({"outcome": "paid"});
        sandbox_complete(&server.base, &format!("payments/{payment_id}"), outcome).await;
        let q = query(&server, &c, "--payment-id", payment_id);
        assert_eq!(
            (q["paymentStatus"].as_str(), q["paymentMethod"].as_str()),
            (Some("success"), Some(method))
        );
    }
    for paid in [&qr, &h5, &public] {
        let payment_id = paid["paymentId"].as_str().unwrap();
        let outcome = serde_json::json!({"outcome": "paid"});
        sandbox_complete(&server.base, &format!("payments/{payment_id}"), outcome).await;
        let q = query(&server, &c, "--payment-id", payment_id);
        assert_eq!(
            (q["paymentStatus"].as_str(), q["paymentMethod"].as_str()),
            (Some("success"), Some("WECHATPAY"))
        );
    }

    // Failures exit non-zero and say why.
    let over = as_merchant(&server, &c)
        .args(["refund", "--payment-id", payment_id, "--amount", "1"])
        .output()
        .unwrap();
    assert!(!over.status.success());
    assert!(
        String::from_utf8_lossy(&over.stderr).contains("20041"),
        "{}",
        String::from_utf8_lossy(&over.stderr)
    );
    let missing = ottgate()
        .args(["query", "--order-id", "1"])
        .env("OTTGATE_GATEWAY", &server.base)
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("--merchant-id"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qr_codes_h5_pages_and_exchange_rates_from_the_shell() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let c = add_merchant(dir.path(), "Shell Counter");
    let (callback, mut callbacks) = receiver(Duration::ZERO).await;

    let qr = run(as_merchant(&server, &c).args([
        "pay",
        "qr",
        "--wallet",
        "alipay",
        "--amount",
        "1234",
        "--tip",
        "34",
        "--order-id",
        "TILL-7",
        "--callback-url",
        &callback,
    ]));
    let answer = json_of(&qr);
    assert_eq!(
        (answer["order_id"].as_str(), answer["tip"].as_str()),
        (Some("TILL-7"), Some("34"))
    );
    assert!(
        answer["code_url"]
            .as_str()
            .unwrap()
            .contains("/sim/alipay/qr/")
    );
    let drawn = String::from_utf8_lossy(&qr.stderr);
    assert!(
        drawn
            .lines()
            .filter(|l| l.contains('█') || l.contains('▀'))
            .count()
            > 10,
        "no QR code drawn:\n{drawn}"
    );
    sandbox_complete(
        &server.base,
        "payments/TILL-7",
        serde_json::json!({"outcome":"paid"}),
    )
    .await;
    callbacks.recv().await.unwrap();
    let q = query(&server, &c, "--order-id", "TILL-7");
    assert_eq!(
        (q["order_status"].as_str(), q["payment_method"].as_str()),
        (Some("success"), Some("ALIPAY"))
    );

    let h5 = shell(
        &server,
        &c,
        &format!("pay h5 --amount 800 --order-id PHONE-1 --callback-url {callback}"),
    );
    assert!(
        h5["payinfo"]
            .as_str()
            .unwrap()
            .contains("/sim/wechatpay/checkmweb")
    );

    let rate = json_of(&run(as_merchant(&server, &c).args(["rate", "CAD"])));
    assert_eq!(
        (rate["feeType"].as_str(), rate["rate"].as_str()),
        (Some("CAD"), Some("510000000"))
    );
    let unknown = as_merchant(&server, &c)
        .args(["rate", "XYZ"])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("PARAM_INVALID"));
}

/// A form's hidden inputs, as a browser submits them (values here need no unescaping but
/// `&amp;`).
fn hidden_inputs(page: &str) -> Vec<(String, String)> {
    page.split("<input type=\"hidden\" name=\"")
        .skip(1)
        .map(|rest| {
            let (name, rest) = rest.split_once("\" value=\"").unwrap();
            let (value, _) = rest.split_once('"').unwrap();
            (
                name.to_owned(),
                value.replace("&#38;", "&").replace("&amp;", "&"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_gateway_pays_and_refunds_through_the_standalone_simulators() {
    // Two processes, as an operator would run them: `ottgate simulate` writes the gateway
    // configuration for itself, and `ottgate serve` runs it in live mode — no sandbox
    // helper, no built-in simulator, just configured channels reached over HTTP.
    let dir = tempfile::tempdir().unwrap();
    let sim_dir = dir.path().join("simulators");
    let sims = support::simulators(&sim_dir);
    let server = Server::launch(
        ottgate().args([
            "serve",
            "--config",
            sim_dir.join("gateway.toml").to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--database-url",
            &db_url(dir.path()),
        ]),
        "ottgate serving",
    );
    let creds = add_merchant(dir.path(), "Live Merchant");
    let client = creds.envelope_client(&server.base).unwrap();
    let (callback_url, mut callbacks) = receiver(Duration::ZERO).await;
    let http = ottgate_testkit::browser();

    // Alipay (a desktop buyer: create_forex_trade), paid at the simulator's cashier.
    let created = client
        .prepay_init(&order(&creds, "live-alipay", &callback_url))
        .await
        .unwrap();
    let token = created.payinfo.rsplit('/').next().unwrap().to_owned();
    let helper = http
        .post(format!(
            "{}/sandbox/v1/checkout/{token}/complete",
            server.base
        ))
        .json(&serde_json::json!({"method": "ALIPAY", "outcome": "paid"}))
        .fetch()
        .await;
    assert_eq!(helper.status(), 404, "no sandbox helper in live mode");
    let chose = http
        .post(format!("{}/pay", created.payinfo))
        .form(&[("method", "ALIPAY")])
        .fetch()
        .await;
    let wallet = url::Url::parse(&location(&chose)).unwrap();
    assert_eq!(
        wallet.as_str().split('?').next().unwrap(),
        format!("{}/sim/alipay/gateway.do", sims.base)
    );
    assert!(wallet.as_str().contains("service=create_forex_trade&"));
    let (out_trade_no, paid) = support::pay_at_simulated_alipay(&http, &sims.base, &wallet).await;
    let back = http.get(location(&paid)).fetch().await;
    let landed = url::Url::parse(&location(&back)).unwrap();
    let redirect = client.verify_redirect(landed.query().unwrap()).unwrap();
    assert!(redirect.is_success());
    let body = tokio::time::timeout(Duration::from_secs(15), callbacks.recv())
        .await
        .unwrap()
        .unwrap();
    let callback = client.verify_callback(&body).unwrap();
    assert_eq!(callback.order_id, out_trade_no);
    assert!(callback.bizpay_order_id.bytes().all(|b| b.is_ascii_digit()));

    // Refunded: Alipay accepts, then notifies the result (over HTTP, to the gateway).
    let refund = client.refund(&out_trade_no, "200", None).await.unwrap();
    assert_eq!(refund.refund_status, "pending");
    let deadline = Instant::now() + Duration::from_secs(15);
    while client
        .status_query(&out_trade_no)
        .await
        .unwrap()
        .refund_amount
        != "200"
    {
        assert!(Instant::now() < deadline, "the refund result never came");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // UnionPay: our page's form to the simulator, its cashier, its form back to us.
    let created = client
        .prepay_init(&order(&creds, "live-unionpay", &callback_url))
        .await
        .unwrap();
    let chose = http
        .post(format!("{}/pay", created.payinfo))
        .form(&[("method", "UNIONPAY")])
        .fetch()
        .await;
    let page = chose.text().await.unwrap();
    let fields = hidden_inputs(&page);
    let order_id = fields
        .iter()
        .find(|(k, _)| k == "orderId")
        .unwrap()
        .1
        .clone();
    let cashier = http
        .post(format!(
            "{}/sim/unionpay/gateway/api/frontTransReq.do",
            sims.base
        ))
        .form(&fields)
        .fetch()
        .await;
    assert_eq!(cashier.status(), 200);
    let returned = http
        .post(format!("{}/sim/unionpay/cashier/{order_id}", sims.base))
        .form(&[("action", "pay")])
        .fetch_text()
        .await;
    let front_url = returned
        .split("id=\"unionpay-return\" method=\"post\" action=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    assert!(front_url.starts_with(&server.base), "{front_url}");
    let back = http
        .post(front_url)
        .form(&hidden_inputs(&returned))
        .fetch()
        .await;
    let landed = url::Url::parse(&location(&back)).unwrap();
    assert!(
        client
            .verify_redirect(landed.query().unwrap())
            .unwrap()
            .is_success()
    );
    let body = tokio::time::timeout(Duration::from_secs(15), callbacks.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(client.verify_callback(&body).unwrap().order_id, order_id);
    // WeChat Pay on a desktop: a QR code, "scanned" through the simulator's link.
    let created = client
        .prepay_init(&order(&creds, "live-wechat", &callback_url))
        .await
        .unwrap();
    let qr = http
        .post(format!("{}/pay", created.payinfo))
        .form(&[("method", "WECHATPAY")])
        .fetch_text()
        .await;
    let after = |page: &str, marker: &str| {
        page.split(marker)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no {marker} in {page}"))
            .replace("&#38;", "&")
            .replace("&amp;", "&")
    };
    assert!(qr.contains("<svg"), "a QR code drawn on our page");
    let scan = after(&qr, "id=\"open-simulator\" href=\"");
    assert!(
        scan.starts_with(&format!("{}/sim/wechatpay/scan", sims.base)),
        "{scan}"
    );
    let phone = http.get(&scan).fetch_text().await;
    let paid = http
        .post(after(
            &phone,
            "id=\"wechat-form\" method=\"post\" action=\"",
        ))
        .form(&[("action", "pay")])
        .fetch()
        .await;
    assert_eq!(paid.status(), 200);
    let body = tokio::time::timeout(Duration::from_secs(15), callbacks.recv())
        .await
        .unwrap()
        .unwrap();
    let callback = client.verify_callback(&body).unwrap();
    assert!(callback.bizpay_order_id.starts_with("42000"));

    // The wallets' notifications reached the gateway (UnionPay's may land after the
    // browser's return has already settled the payment by query).
    let deadline = Instant::now() + Duration::from_secs(15);
    for path in ["/notify/alipay", "/notify/unionpay", "/notify/wechatpay"] {
        while !server.log_text().contains(path) {
            assert!(Instant::now() < deadline, "no request to {path} logged");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[test]
fn merchant_channels_switches_methods_and_sets_wallet_ids() {
    let dir = tempfile::tempdir().unwrap();
    let c = add_merchant(dir.path(), "Channel Merchant");
    let channels = |args: &[&str]| {
        let mut cmd = ottgate();
        cmd.args(["merchant", "channels", "--id", &c.merchant_id])
            .args(args)
            .env("OTTGATE_DATABASE_URL", db_url(dir.path()));
        cmd
    };
    let out = run(&mut channels(&[
        "--disable",
        "GP,WECHATPAY",
        "--wechat-sub-mch-id",
        "1900000109",
        "--mcc",
        "5812",
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["methods"], serde_json::json!(["ALIPAY", "UNIONPAY"]));
    assert_eq!(
        (v["wechat_sub_mch_id"].as_str(), v["mcc"].as_str()),
        (Some("1900000109"), Some("5812"))
    );
    // Nothing to change: shows what is set.
    let text = String::from_utf8(run(&mut channels(&[])).stdout).unwrap();
    assert!(
        text.contains("ALIPAY,UNIONPAY") && text.contains("5812"),
        "{text}"
    );
    // Refused, and nothing changes.
    for (args, why) in [
        (&["--enable", "BITCOIN"][..], "BITCOIN"),
        (&["--mcc", "58"][..], "mcc"),
        (&["--disable", "ALIPAY,UNIONPAY"][..], "at least one"),
    ] {
        let out = channels(args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{args:?}: {err}");
    }
    let out = channels(&["--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["methods"], serde_json::json!(["ALIPAY", "UNIONPAY"]));
    assert_eq!(v["mcc"], "5812");
    let unknown = ottgate()
        .args(["merchant", "channels", "--id", "ON99999999"])
        .env("OTTGATE_DATABASE_URL", db_url(dir.path()))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no merchant ON99999999"));
}

#[test]
fn merchant_link_flows_are_issued_off_and_switched_from_the_shell() {
    let dir = tempfile::tempdir().unwrap();
    let c = add_merchant(dir.path(), "Link Merchant");
    assert!(
        c.mer_code.len() == 32 && c.mer_code.bytes().all(|b| b.is_ascii_hexdigit()),
        "merchant add issues the merCode: {}",
        c.mer_code
    );
    let link = |args: &[&str]| {
        let mut cmd = ottgate();
        cmd.args(["merchant", "link-flows", "--id", &c.merchant_id])
            .args(args)
            .env("OTTGATE_DATABASE_URL", db_url(dir.path()));
        cmd
    };
    let shown: serde_json::Value =
        serde_json::from_slice(&run(&mut link(&["--json"])).stdout).unwrap();
    assert_eq!(
        (shown["mer_code"].as_str(), shown["enabled"].as_bool()),
        (Some(c.mer_code.as_str()), Some(false))
    );
    let on = run(&mut link(&[
        "--enable",
        "--callback-url",
        "https://shop.example/notify",
        "--json",
    ]));
    let on: serde_json::Value = serde_json::from_slice(&on.stdout).unwrap();
    assert_eq!(
        (on["enabled"].as_bool(), on["callback_url"].as_str()),
        (Some(true), Some("https://shop.example/notify"))
    );
    let text =
        String::from_utf8(run(&mut link(&["--disable", "--callback-url", ""])).stdout).unwrap();
    assert!(text.contains("off") && text.contains("(none"), "{text}");
    let bad = link(&["--callback-url", "not a url"]).output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("callback URL"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_listed_and_resent_from_the_shell() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let creds = add_merchant(dir.path(), "Shell Events");
    let (callback_url, mut callbacks) = receiver(Duration::ZERO).await;
    let created = creds
        .envelope_client(&server.base)
        .unwrap()
        .prepay_init(&order(&creds, "shell-events-1", &callback_url))
        .await
        .unwrap();
    pay(&server.base, &created.payinfo).await;
    let first = tokio::time::timeout(Duration::from_secs(15), callbacks.recv())
        .await
        .unwrap()
        .unwrap();
    let listed = json_of(&run(as_merchant(&server, &creds).args(["events", "list"])));
    let event = &listed["events"][0];
    assert_eq!(event["type"], "payment.paid", "{listed}");
    let id = event["id"].as_str().unwrap();
    let resent = json_of(&run(as_merchant(&server, &creds).args([
        "events",
        "redeliver",
        "--id",
        id,
    ])));
    assert_eq!(resent["state"], "pending");
    let again = tokio::time::timeout(Duration::from_secs(15), callbacks.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again, first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_added_and_reset_with_one_time_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let c = add_merchant(dir.path(), "Team Shop");
    let user = |args: &[&str]| {
        let mut cmd = ottgate();
        cmd.arg("user")
            .args(args)
            .env("OTTGATE_DATABASE_URL", db_url(dir.path()));
        cmd
    };
    let added = json_of(&run(&mut user(&[
        "add",
        "--merchant",
        &c.merchant_id,
        "--email",
        "Ada@Shop.example",
        "--role",
        "admin",
        "--json",
    ])));
    assert_eq!(
        (&added["email"], &added["role"]),
        (
            &serde_json::json!("ada@shop.example"),
            &serde_json::json!("admin")
        )
    );
    let first = added["password"].as_str().unwrap().to_owned();
    assert_eq!(first.len(), 20);
    let store = SqliteStore::open(&db_url(dir.path())).await.unwrap();
    let check = |password: String| {
        let store = &store;
        async move {
            ottgate_server::users::check_password(store, "ada@shop.example", &password)
                .await
                .unwrap()
                .is_some()
        }
    };
    assert!(check(first.clone()).await, "the one-time password signs in");
    assert!(!check("not-it".into()).await);
    let hash = store
        .user_by_email("ada@shop.example")
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    assert!(
        hash.starts_with("$argon2id$") && !hash.contains(&first),
        "kept as argon2id"
    );

    let reset = json_of(&run(&mut user(&[
        "reset-password",
        "--email",
        "ada@shop.example",
        "--json",
    ])));
    let second = reset["password"].as_str().unwrap().to_owned();
    assert!(
        check(second).await && !check(first).await,
        "the old one stops working"
    );

    // Removed, and their sessions with them; never the last admin.
    run(&mut user(&[
        "add",
        "--merchant",
        &c.merchant_id,
        "--email",
        "vic@shop.example",
    ]));
    let removed = json_of(&run(&mut user(&[
        "remove",
        "--merchant",
        &c.merchant_id,
        "--email",
        "VIC@shop.example",
        "--json",
    ])));
    assert_eq!(removed["removed"], "vic@shop.example");
    assert!(
        store
            .user_by_email("vic@shop.example")
            .await
            .unwrap()
            .is_none()
    );
    for (email, why) in [
        ("ada@shop.example", "last admin"),
        ("vic@shop.example", "no user"),
    ] {
        let out = user(&["remove", "--merchant", &c.merchant_id, "--email", email])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{email}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(why), "{email}: {stderr}");
    }

    // Refused, naming why: a taken email, an unknown merchant, a bad address or role.
    for (args, why) in [
        (
            &[
                "add",
                "--merchant",
                c.merchant_id.as_str(),
                "--email",
                "ada@shop.example",
            ][..],
            "already exists",
        ),
        (
            &[
                "add",
                "--merchant",
                "ON99999999",
                "--email",
                "bob@shop.example",
            ][..],
            "no merchant",
        ),
        (
            &[
                "add",
                "--merchant",
                c.merchant_id.as_str(),
                "--email",
                "bob",
            ][..],
            "not an email",
        ),
        (
            &[
                "add",
                "--merchant",
                c.merchant_id.as_str(),
                "--email",
                "bob@shop.example",
                "--role",
                "owner",
            ][..],
            "owner",
        ),
        (
            &["reset-password", "--email", "nobody@shop.example"][..],
            "no user",
        ),
    ] {
        let out = user(args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{args:?}: {err}");
    }
}

/// The human log format writes each field as the program saw it, so text a stranger typed
/// — a sign-in email with a newline and a terminal escape in it — must reach the log
/// escaped, never as a line of its own that looks like the gateway's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_email_cannot_forge_a_line_of_the_human_log() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    /// The server, killed however the test ends.
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Killed(
        ottgate()
            .args(["serve", "--log-format", "human"])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--database-url", &db_url(dir.path())])
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = std::io::BufReader::new(child.0.stderr.take().unwrap());
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    {
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
    }
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "the gateway never answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let login = http
        .get(format!("{base}/dashboard/login"))
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let form = hidden_inputs(&login.text().await.unwrap());
    let forged =
        "eve@x.example\n2026-12-04T10:00:00.000000Z  INFO ottgate: \u{1b}[2Kadmin signed in";
    let mut fields = form.clone();
    fields.push(("email".into(), forged.into()));
    fields.push(("password".into(), "not-the-password".into()));
    let r = http
        .post(format!("{base}/dashboard/login"))
        .header("cookie", cookie)
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logged = lines.lock().unwrap().clone();
        if let Some(line) = logged.iter().find(|l| l.contains("wrong password")) {
            assert!(line.contains("eve@x.example\\n2026"), "escaped: {line}");
            assert!(!line.contains('\u{1b}'), "no raw escape: {line:?}");
            assert!(
                !logged.iter().any(|l| l.starts_with("2026-12-04T10:00:00")),
                "a forged line: {logged:#?}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no sign-in failure logged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(child);
}

/// A card payment through a real gateway process: the card numbers typed on the hosted page
/// or sent in `cc_number` — test cards and a real-looking one alike — reach neither the
/// database nor the log (trace level).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_card_number_is_ever_stored_or_logged() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let c = add_merchant(dir.path(), "Card Shop");
    let (callback, _callbacks) = receiver(Duration::ZERO).await;
    let client = c.envelope_client(&server.base).unwrap();
    let txn_time: String = ottgate_core::Timestamp::from_epoch_millis(
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap(),
    )
    .beijing_compact();
    let purchase = |order_id: &str, cc_number: Option<&str>| {
        let mut data = serde_json::json!({
            "orderId": order_id, "merchant_id": c.merchant_id, "txnTime": txn_time,
            "txnAmt": "1999", "frontUrl": "https://shop.example/back", "backUrl": callback,
            "channelType": "UPAYONLINE", "bizType": "securePay", "cc_channelType": "web",
        });
        if let Some(number) = cc_number {
            data["cc_number"] = number.into();
        }
        match data {
            serde_json::Value::Object(fields) => fields,
            _ => unreachable!(),
        }
    };
    let real_looking = "4532015112830366";
    let refused = client
        .exchange_at(
            "processV3",
            "CC_PURCHASE",
            "2.0",
            purchase("CARD1", Some(real_looking)),
        )
        .await
        .unwrap();
    assert_ne!(refused.response.rsp_code, "SUCCESS");
    let answer = client
        .exchange_at(
            "processV3",
            "CC_PURCHASE",
            "2.0",
            purchase("CARD2", Some("4111111111111111")),
        )
        .await
        .unwrap();
    assert_eq!(
        answer.response.rsp_code, "SUCCESS",
        "{}",
        answer.response.rsp_msg
    );
    let code_url = answer.response_fields.unwrap()["codeUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    let http = ottgate_testkit::browser();
    for number in [real_looking, "5555 5555 5555 4444"] {
        ottgate_testkit::pay_with_card(&http, &code_url, number).await;
    }
    let status = client.status_query("CARD2").await.unwrap();
    assert_eq!(status.order_status, "success", "the test card paid");

    // REST local card: the number in the body. A real-looking one is refused before its
    // Idempotency-Key (and the hash of a body holding it) is written.
    let rest = ottgate_client::RestClient::new(&server.base, &c.app_id, &c.app_key).unwrap();
    let token = rest.token().await.unwrap();
    let local = |number: &str| {
        serde_json::json!({"amount": 1999, "callBackURL": callback,
            "frontURL": "https://shop.example/back", "accountNumber": number,
            "accountExpire": "1239", "cvn2": "123"})
    };
    for (number, expected) in [(real_looking, 400), ("4111 1111 1111 1111", 200)] {
        let r = http
            .post(format!(
                "{}/api/v1/payment/local-card/payment3dsV2",
                server.base
            ))
            .bearer_auth(&token)
            .header("Idempotency-Key", format!("card-{expected}"))
            .json(&local(number))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), expected);
    }
    // The CLI pays with a test card by name, and voids; CC_PREAUTH too.
    let held = json_of(&run(as_merchant(&server, &c).args([
        "pay",
        "local-card",
        "--amount",
        "700",
        "--test-card",
        "approved-mc",
        "--callback-url",
        &callback,
        "--front-url",
        "https://shop.example/back",
    ])));
    assert_eq!(
        (held["paymentStatus"].as_str(), held["ccType"].as_str()),
        (Some("authorised"), Some("MC"))
    );
    let voided = json_of(&run(as_merchant(&server, &c).args([
        "reverse",
        "--payment-id",
        held["paymentId"].as_str().unwrap(),
    ])));
    assert_eq!(voided["stateCode"], "P00007");
    let preauth = json_of(&run(as_merchant(&server, &c).args([
        "pay",
        "card",
        "--preauth",
        "--amount",
        "500",
        "--order-id",
        "PRE1",
        "--front-url",
        "https://shop.example/back",
        "--back-url",
        &callback,
    ])));
    assert!(
        preauth["codeUrl"]
            .as_str()
            .unwrap()
            .contains("/sandbox/card/"),
        "{preauth}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    let log = server.log.lock().unwrap().join("\n");
    assert!(log.contains("/sandbox/card/"), "the log was captured");
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("ottgate.db") {
            stored.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(!stored.is_empty(), "the database was read");
    for digits in [
        real_looking,
        "4111111111111111",
        "5555555555554444",
        "5555 5555 5555 4444",
    ] {
        assert!(!log.contains(digits), "{digits} reached the log");
        assert!(
            !stored.windows(digits.len()).any(|w| w == digits.as_bytes()),
            "{digits} reached the database"
        );
    }
}

/// `ottgate sandbox barcode` prints a one-time buyer code (and draws it); `ottgate pay
/// barcode` charges it at the till, as a point of sale would.
#[tokio::test]
async fn a_sandbox_barcode_is_printed_drawn_and_paid_from_the_shell() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let c = add_merchant(dir.path(), "Corner Store");
    let made = run(ottgate().args([
        "sandbox",
        "barcode",
        "--gateway",
        &server.base,
        "--wallet",
        "ALIPAY",
        "--outcome",
        "paid",
    ]));
    let code = String::from_utf8(made.stdout).unwrap().trim().to_owned();
    assert!(code.starts_with("289") && code.len() == 18, "{code}");
    let drawn = String::from_utf8(made.stderr).unwrap();
    assert!(drawn.contains('█') && drawn.contains(&code), "{drawn}");
    let paid = json_of(&run(as_merchant(&server, &c).args([
        "pay",
        "barcode",
        "--auth-code",
        &code,
        "--amount",
        "500",
        "--order-id",
        "TILL-1",
        "--terminal",
        "LANE-2",
    ])));
    assert_eq!(
        (
            paid["order_status"].as_str(),
            paid["biz_type"].as_str(),
            paid["terminal_no"].as_str()
        ),
        (Some("success"), Some("ALIPAY"), Some("LANE-2"))
    );
    let queried = query(&server, &c, "--order-id", "TILL-1");
    assert_eq!(queried["order_status"], "success");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merchant_rotate_app_key_prints_a_new_key_and_the_old_one_still_works_for_now() {
    let dir = tempfile::tempdir().unwrap();
    let c = add_merchant(dir.path(), "Rotating Shop");
    let out = run(ottgate()
        .args([
            "merchant",
            "rotate-app-key",
            "--id",
            &c.merchant_id,
            "--json",
        ])
        .env("OTTGATE_DATABASE_URL", db_url(dir.path())));
    let said: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let new_key = said["app_key"].as_str().unwrap().to_owned();
    assert_ne!(new_key, c.app_key);
    assert_eq!(said["previous_accepted_hours"], 24);
    let server = Server::start(dir.path());
    for key in [new_key.as_str(), c.app_key.as_str()] {
        ottgate_client::RestClient::new(&server.base, &c.app_id, key)
            .unwrap()
            .token()
            .await
            .unwrap();
    }
    let wrong = ottgate_client::RestClient::new(&server.base, &c.app_id, &"0".repeat(32))
        .unwrap()
        .token()
        .await;
    assert!(wrong.is_err());
}

/// `ottgate recon run` and `recon report` against a running sandbox gateway: the command
/// downloads the simulated WeChat Pay's bill of the day over HTTP, matches it, and the
/// report (text and JSON) says what it found; a wallet that does not exist is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recon_runs_a_day_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let c = add_merchant(dir.path(), "Recon Merchant");
    let listen = format!("127.0.0.1:{}", support::free_port());
    let db = db_url(dir.path());
    let server = Server::launch(
        ottgate().args([
            "serve",
            "--listen",
            &listen,
            "--log-format",
            "json",
            "--database-url",
            &db,
        ]),
        "ottgate serving",
    );
    let (callback, _callbacks) = receiver(Duration::ZERO).await;
    let mut orders = Vec::new();
    for n in 0..3 {
        let created = shell(
            &server,
            &c,
            &format!(
                "pay checkout --amount 1500 --reference recon-{n} --redirect-url https://shop.example/done --callback-url {callback}"
            ),
        );
        let token = created["payinfo"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned();
        let paid = sandbox_complete(
            &server.base,
            &format!("checkout/{token}"),
            serde_json::json!({"method":"WECHATPAY","outcome":"paid"}),
        )
        .await;
        orders.push(paid["order_id"].as_str().unwrap().to_owned());
    }
    let recon = |words: &str| {
        let mut cmd = ottgate();
        cmd.env("OTTGATE_LISTEN", &listen)
            .args(words.split(' '))
            .args(["--database-url", &db]);
        cmd.output().unwrap()
    };
    // Beijing's day, as the wallets keep it.
    let today =
        ottgate_core::recon::WalletDay::of(ottgate_core::Clock::now(&ottgate_core::SystemClock))
            .to_string();
    let out = recon(&format!(
        "recon run --date {today} --wallet wechatpay --json"
    ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ran = json_of(&out);
    assert_eq!(
        (
            ran[0]["lines"].as_u64(),
            ran[0]["matched"].as_u64(),
            ran[0]["found"].as_u64()
        ),
        (Some(3), Some(3), Some(0)),
        "{ran}"
    );
    let report = json_of(&recon(&format!("recon report --date {today} --json")));
    assert_eq!(report["counts"]["matched"], 3, "{report}");
    assert_eq!(report["counts"]["wallet_only"], 0);
    assert_eq!(report["runs"][0]["wallet"], "wechatpay");
    let text = String::from_utf8(recon(&format!("recon report --date {today}")).stdout).unwrap();
    assert!(
        text.contains("wechatpay") && text.contains("no discrepancies"),
        "{text}"
    );

    let unknown = recon(&format!("recon run --date {today} --wallet paypal"));
    assert!(!unknown.status.success());
    let said = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        said.contains("no wallet named \"paypal\"") && said.contains("wechatpay"),
        "{said}"
    );
    let bad_day = recon("recon report --date 2026-02-30");
    assert!(!bad_day.status.success());
    assert!(String::from_utf8_lossy(&bad_day.stderr).contains("is not a day"));
    drop(server);
}

/// `ottgate merchant fees`: shows each method's rate (the merchant's own, or the configured
/// default), sets one, and refuses a rate that is not one.
#[test]
fn merchant_fees_are_shown_set_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let c = add_merchant(dir.path(), "Fee Merchant");
    let db = db_url(dir.path());
    let fees = |extra: &[&str]| {
        let mut cmd = ottgate();
        cmd.args([
            "merchant",
            "fees",
            "--id",
            &c.merchant_id,
            "--database-url",
            &db,
        ])
        .args(extra);
        cmd.output().unwrap()
    };
    let shown = json_of(&fees(&["--json"]));
    assert_eq!(
        shown["fees"]["WECHATPAY"],
        serde_json::json!({"rate": "2.2%", "own": false})
    );
    let set = json_of(&fees(&[
        "--method",
        "WECHATPAY",
        "--rate",
        "1.95%+10",
        "--json",
    ]));
    assert_eq!(
        set["fees"]["WECHATPAY"],
        serde_json::json!({"rate": "1.95%+10", "own": true})
    );
    assert_eq!(set["fees"]["ALIPAY"]["rate"], "2.2%");
    let text = String::from_utf8(fees(&[]).stdout).unwrap();
    assert!(
        text.contains("WECHATPAY  1.95%+10\n") && text.contains("ALIPAY     2.2%  (default)"),
        "{text}"
    );
    let by_config = fees(&["--json"]);
    let mut cmd = ottgate();
    let configured = cmd
        .args([
            "merchant",
            "fees",
            "--id",
            &c.merchant_id,
            "--database-url",
            &db,
            "--json",
        ])
        .env("OTTGATE_DEFAULT_FEES", "ALIPAY=3%,1%")
        .output()
        .unwrap();
    let configured = json_of(&configured);
    assert_eq!(configured["fees"]["ALIPAY"]["rate"], "3%");
    assert_eq!(configured["fees"]["UNIONPAY"]["rate"], "1%");
    assert!(by_config.status.success());
    let bad = fees(&["--method", "WECHATPAY", "--rate", "120%"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not a fee rate"));
    let unknown = fees(&["--method", "PAYPAL", "--rate", "2%"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("PAYPAL"));
}
