//! `ottgate check` against two sample shops that live only here: a careful one (it checks
//! the md5 and window through the SDK, the order, amount and status, asks the gateway before
//! it fulfils, and fulfils once) and a naive one (it trusts any callback whose `rsp_code`
//! says SUCCESS, for the order named in its own callback URL, and fulfils each time). The
//! checker must pass the careful shop on every case and name each mistake of the naive one;
//! a shop that answers SUCCESS to everything and never asks gets FAIL on every forgery.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code")]

mod support;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use ottgate_client::{Client, PrepayInitRequest};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use support::{Credentials, Server, add_merchant, ottgate};

/// The gateway retries a callback a second after it failed (by default 15 s).
const FAST_RETRIES: &[(&str, &str)] = &[("OTTGATE_CALLBACK_RETRY_SCHEDULE", "1s,1s,2s,5s,10s")];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Care {
    Careful,
    Naive,
    /// Checks the md5 and asks the gateway, but gives an order up at the first answer that
    /// is not "paid" (a query still PROCESSING, an order page that finds it closed), and
    /// ignores every callback of an order it gave up.
    Hasty,
    Nothing,
}

#[derive(Debug, Clone, Default)]
struct ShopOrder {
    amount: String,
    paid: bool,
    refunded: bool,
    cancelled: bool,
    fulfilments: u64,
}

impl ShopOrder {
    fn state(&self) -> &'static str {
        if self.refunded {
            "refunded"
        } else if self.paid {
            "paid"
        } else if self.cancelled {
            "cancelled"
        } else {
            "unpaid"
        }
    }
}

#[derive(Clone)]
struct Shop {
    care: Care,
    client: Arc<Client>,
    base: String,
    orders: Arc<Mutex<HashMap<String, ShopOrder>>>,
    next: Arc<AtomicU64>,
    /// The merchant's shop and operator numbers.
    ids: (String, String),
    /// Checks callbacks' `OTTGate-Signature`.
    webhook_secret: String,
}

/// The shop's "pay" button: a PREPAY_INIT, then the buyer is sent to the checkout.
async fn start(State(shop): State<Shop>) -> Response {
    let reference = format!(
        "{:?}{}",
        shop.care,
        shop.next.fetch_add(1, Ordering::SeqCst)
    );
    let callback = match shop.care {
        // The naive shop names the order in its callback URL, and believes the URL.
        Care::Naive => format!("{}/notify?ref={reference}", shop.base),
        _ => format!("{}/notify", shop.base),
    };
    let request = PrepayInitRequest {
        merchant_id: Some(shop.client.merchant_id().to_owned()),
        shop_id: Some(shop.ids.0.clone()),
        operator_id: Some(shop.ids.1.clone()),
        prepay_order_id: Some(reference.clone()),
        amount: Some("1234".into()),
        currency_type: Some("CAD".into()),
        biz_type: Some("PREPAY".into()),
        call_back_url: Some(callback),
        redirect_url: Some(format!("{}/return", shop.base)),
        duration: Some("3600".into()),
        sale_num: Some("1".into()),
        ..PrepayInitRequest::default()
    };
    let created = shop.client.prepay_init(&request).await.unwrap();
    shop.orders.lock().unwrap().insert(
        reference,
        ShopOrder {
            amount: "1234".into(),
            ..ShopOrder::default()
        },
    );
    Redirect::to(&created.payinfo).into_response()
}

fn refuse() -> Response {
    (StatusCode::BAD_REQUEST, "FAIL").into_response()
}

async fn notify(
    State(shop): State<Shop>,
    Query(q): Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    match shop.care {
        Care::Nothing => "SUCCESS".into_response(),
        Care::Hasty => {
            let Ok(data) = shop.client.verify_callback(&body) else {
                return refuse();
            };
            let Some(reference) = data.prepay_order_id.clone().or(data.reference.clone()) else {
                return refuse();
            };
            let known = shop.orders.lock().unwrap().get(&reference).cloned();
            let Some(order) = known else {
                return refuse();
            };
            if order.cancelled {
                return "SUCCESS".into_response();
            }
            let paid = matches!(
                shop.client.status_query(&data.order_id).await,
                Ok(status) if status.order_status == "success"
            );
            let mut orders = shop.orders.lock().unwrap();
            let order = orders.get_mut(&reference).unwrap();
            if paid && !order.paid {
                order.paid = true;
                order.fulfilments += 1;
            } else if !paid {
                order.cancelled = true;
            }
            "SUCCESS".into_response()
        }
        Care::Naive => {
            let envelope: Value = serde_json::from_slice(&body).unwrap_or_default();
            if envelope["rsp_code"] == "SUCCESS"
                && let Some(reference) = q.get("ref")
                && let Some(order) = shop.orders.lock().unwrap().get_mut(reference)
            {
                order.paid = true;
                order.fulfilments += 1;
            }
            "SUCCESS".into_response()
        }
        Care::Careful => {
            // The gateway's signature on the raw body, five minutes' tolerance.
            let header = headers
                .get("OTTGate-Signature")
                .and_then(|h| h.to_str().ok())
                .unwrap_or("");
            let now = i64::try_from(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs(),
            )
            .unwrap();
            if ottgate_client::verify_signature_header(
                &shop.webhook_secret,
                header,
                &body,
                now,
                std::time::Duration::from_secs(300),
            )
            .is_err()
            {
                return refuse();
            }
            // The md5 and the key window, through the SDK.
            let Ok(data) = shop.client.verify_callback(&body) else {
                return refuse();
            };
            let Some(reference) = data.prepay_order_id.clone().or(data.reference.clone()) else {
                return refuse();
            };
            let known = shop.orders.lock().unwrap().get(&reference).cloned();
            let Some(order) = known else {
                return refuse();
            };
            if data.amount != order.amount
                || data.currency_type != "CAD"
                || data.order_status != "success"
            {
                return refuse();
            }
            // Asked, not believed: the gateway says whether it is paid — or refunded since,
            // or not known to be paid yet (then the callback must come again).
            let Ok(status) = shop.client.status_query(&data.order_id).await else {
                return refuse();
            };
            let mut orders = shop.orders.lock().unwrap();
            let order = orders.get_mut(&reference).unwrap();
            match status.order_status.as_str() {
                "success" => {
                    if !order.paid && !order.refunded {
                        order.paid = true;
                        order.fulfilments += 1;
                    }
                }
                "partial_refunded" | "fully_refunded" => order.refunded = true,
                "init" => return (StatusCode::SERVICE_UNAVAILABLE, "FAIL").into_response(),
                _ => return refuse(),
            }
            "SUCCESS".into_response()
        }
    }
}

/// The buyer's way back. The careful shop checks the sign and asks the gateway before it
/// says the order is paid (and fulfils only from a verified callback); the naive one takes
/// `trade_status` (or h5Pay's `status`) at its word and fulfils.
async fn return_page(
    State(shop): State<Shop>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let query = query.unwrap_or_default();
    match shop.care {
        Care::Nothing => "thank you".into_response(),
        Care::Hasty => "Payment not confirmed".into_response(),
        Care::Naive => {
            let paid = q.get("trade_status").map(String::as_str) == Some("Trade_Finished")
                || q.get("status").map(String::as_str) == Some("success");
            let reference = q.get("out_trade_no").or(q.get("orderID"));
            if paid
                && let Some(reference) = reference
                && let Some(order) = shop.orders.lock().unwrap().get_mut(reference)
            {
                order.paid = true;
                order.fulfilments += 1;
                return "Payment received".into_response();
            }
            "Payment not confirmed".into_response()
        }
        Care::Careful => {
            let Ok(params) = shop.client.verify_redirect(&query) else {
                return "Payment not confirmed".into_response();
            };
            match shop.client.prepay_query(&params.out_trade_no).await {
                Ok(found) if found.status == "SUCCESS" => "Payment received".into_response(),
                _ => "Payment not confirmed".into_response(),
            }
        }
    }
}

async fn order_page(State(shop): State<Shop>, Path(reference): Path<String>) -> Response {
    let known = shop.orders.lock().unwrap().get(&reference).cloned();
    let Some(order) = known else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // The hasty shop's page asks the gateway about an open order, and gives it up when the
    // gateway says it closed.
    if shop.care == Care::Hasty
        && order.state() == "unpaid"
        && let Ok(found) = shop.client.prepay_query(&reference).await
        && found.status == "ORDERCLOSE"
    {
        shop.orders
            .lock()
            .unwrap()
            .get_mut(&reference)
            .unwrap()
            .cancelled = true;
    }
    let orders = shop.orders.lock().unwrap();
    let order = &orders[&reference];
    axum::Json(json!({
        "state": order.state(),
        "fulfilments": order.fulfilments,
    }))
    .into_response()
}

async fn shop(care: Care, gateway: &Server, c: &Credentials) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = Shop {
        care,
        client: Arc::new(c.envelope_client(&gateway.base).unwrap()),
        base: base.clone(),
        orders: Arc::default(),
        next: Arc::new(AtomicU64::new(1)),
        ids: (c.shop_id.clone(), c.operator_id.clone()),
        webhook_secret: c.webhook_secret.clone(),
    };
    let app = Router::new()
        .route("/start", get(start))
        .route("/notify", post(notify))
        .route("/order/{reference}", get(order_page))
        .route("/return", get(return_page))
        .with_state(state);
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// `ottgate check` against the shop at `base`: its verdicts by case, and its exit status.
async fn check(
    gateway: &Server,
    c: &Credentials,
    base: &str,
    order_url: bool,
) -> (HashMap<String, String>, i32) {
    check_cases(gateway, c, base, order_url, None).await
}

async fn check_cases(
    gateway: &Server,
    c: &Credentials,
    base: &str,
    order_url: bool,
    cases: Option<&str>,
) -> (HashMap<String, String>, i32) {
    let mut command = ottgate();
    command.args([
        "check",
        "--gateway",
        &gateway.base,
        "--merchant-id",
        &c.merchant_id,
        "--sign-key",
        &c.sign_key,
        "--start-url",
        &format!("{base}/start"),
        "--paid-text",
        "Payment received",
        "--json",
    ]);
    if order_url {
        command.args(["--order-url", &format!("{base}/order/{{reference}}")]);
    }
    if let Some(cases) = cases {
        command.args(["--cases", cases]);
    }
    let out = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "not JSON: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let verdicts = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["case"].as_str().unwrap().to_owned(),
                format!(
                    "{} {}",
                    c["verdict"].as_str().unwrap(),
                    c["why"].as_str().unwrap()
                ),
            )
        })
        .collect();
    (verdicts, out.status.code().unwrap_or(-1))
}

fn verdict(verdicts: &HashMap<String, String>, case: &str) -> String {
    verdicts[case].split(' ').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_careful_shop_passes_every_case_and_the_naive_one_fails_each_of_its_mistakes() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = Server::start_with(dir.path(), FAST_RETRIES);
    let c = add_merchant(dir.path(), "Checked Shop");

    let careful = shop(Care::Careful, &gateway, &c).await;
    let (verdicts, status) = check(&gateway, &c, &careful, true).await;
    for (case, line) in &verdicts {
        assert!(line.starts_with("PASS"), "careful shop, {case}: {line}");
    }
    assert_eq!(verdicts.len(), 19);
    assert_eq!(status, 0);

    let naive = shop(Care::Naive, &gateway, &c).await;
    let (verdicts, status) = check(&gateway, &c, &naive, true).await;
    let expected = [
        // Fulfilled by the callback, then again by the buyer's return.
        ("success", "FAIL"),
        ("duplicate", "FAIL"),
        ("declined", "PASS"),
        ("expired", "PASS"),
        ("late_success", "PASS"),
        ("out_of_order", "FAIL"),
        // The retry once the query says paid is fulfilled again.
        ("query_processing", "FAIL"),
        ("answer_lost", "FAIL"),
        ("forged_key", "FAIL"),
        ("forged_window", "FAIL"),
        ("forged_amount", "FAIL"),
        ("forged_currency", "FAIL"),
        ("rsp_code", "FAIL"),
        ("replayed_order", "FAIL"),
        ("signature", "WARN"),
        ("return_unpaid", "FAIL"),
        ("return_amount", "FAIL"),
        ("return_sign", "FAIL"),
        ("return_h5pay", "FAIL"),
    ];
    for (case, wanted) in expected {
        assert_eq!(
            verdict(&verdicts, case),
            wanted,
            "naive shop, {case}: {}",
            verdicts[case]
        );
    }
    assert_eq!(status, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shop_that_answers_success_to_everything_fails_every_forgery_and_gets_no_pass_from_silence()
 {
    let dir = tempfile::tempdir().unwrap();
    let gateway = Server::start_with(dir.path(), FAST_RETRIES);
    let c = add_merchant(dir.path(), "Silent Shop");
    let silent = shop(Care::Nothing, &gateway, &c).await;
    let (verdicts, status) = check(&gateway, &c, &silent, false).await;
    for case in [
        "forged_key",
        "forged_window",
        "forged_amount",
        "forged_currency",
        "rsp_code",
        "replayed_order",
    ] {
        assert_eq!(
            verdict(&verdicts, case),
            "FAIL",
            "{case}: {}",
            verdicts[case]
        );
    }
    // Without its order page, what needs it is SKIP, never PASS.
    for case in [
        "duplicate",
        "declined",
        "expired",
        "late_success",
        "out_of_order",
        "query_processing",
        "answer_lost",
    ] {
        assert_eq!(
            verdict(&verdicts, case),
            "SKIP",
            "{case}: {}",
            verdicts[case]
        );
    }
    assert_eq!(status, 1);

    // A live gateway is refused before anything is sent.
    let live_dir = tempfile::tempdir().unwrap();
    let master = "ab".repeat(32);
    let url = support::db_url(live_dir.path());
    let live = Server::serve(&[
        ("OTTGATE_SANDBOX", "false"),
        ("OTTGATE_MASTER_KEY", &master),
        ("OTTGATE_DATABASE_URL", &url),
    ]);
    let out = ottgate()
        .args([
            "check",
            "--gateway",
            &live.base,
            "--merchant-id",
            &c.merchant_id,
            "--sign-key",
            &c.sign_key,
            "--start-url",
            "http://127.0.0.1:9/start",
        ])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not in sandbox mode"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A shop that asks the gateway but gives an order up too soon: it drops a payment taken
/// after its order expired, and gives up a paid order while the query still says
/// PROCESSING. Asking when a callback comes keeps it right about refunds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shop_that_gives_up_too_soon_fails_the_late_and_the_lagging_payment() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = Server::start_with(dir.path(), FAST_RETRIES);
    let c = add_merchant(dir.path(), "Hasty Shop");
    let hasty = shop(Care::Hasty, &gateway, &c).await;
    let (verdicts, status) = check_cases(
        &gateway,
        &c,
        &hasty,
        true,
        Some("late_success,query_processing,out_of_order,expired"),
    )
    .await;
    for (case, wanted) in [
        ("late_success", "FAIL"),
        ("query_processing", "FAIL"),
        ("out_of_order", "PASS"),
        ("expired", "PASS"),
    ] {
        assert_eq!(
            verdict(&verdicts, case),
            wanted,
            "hasty shop, {case}: {}",
            verdicts[case]
        );
    }
    assert_eq!(status, 1);
}

/// The same shop, the same verdicts, ten times over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verdicts_are_the_same_in_ten_runs() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = Server::start_with(dir.path(), FAST_RETRIES);
    let c = add_merchant(dir.path(), "Steady Shop");
    let naive = shop(Care::Naive, &gateway, &c).await;
    let cases = "success,duplicate,forged_key,return_sign,signature,query_processing,answer_lost";
    let verdicts = |v: &HashMap<String, String>| {
        let mut all: Vec<(String, String)> = v.keys().map(|k| (k.clone(), verdict(v, k))).collect();
        all.sort();
        all
    };
    let (first, _) = check_cases(&gateway, &c, &naive, true, Some(cases)).await;
    assert_eq!(verdicts(&first).len(), 7);
    for _ in 1..10 {
        let (again, _) = check_cases(&gateway, &c, &naive, true, Some(cases)).await;
        assert_eq!(verdicts(&again), verdicts(&first));
    }
}
