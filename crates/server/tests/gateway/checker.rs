//! `/sandbox/v1/check`, what `ottgate check` asks: sealed with the merchant's key (another
//! key is refused), sandbox only (a live gateway has no such route), and its last report
//! shown in the merchant center.

use ottgate_client::{Fields, SignKey};
use ottgate_testkit::Fetch;
use serde_json::{Value, json};

use crate::harness::{Options, TestGateway};

fn fields(value: Value) -> Fields {
    match value {
        Value::Object(f) => f,
        _ => Fields::new(),
    }
}

#[tokio::test]
async fn the_checkers_questions_need_the_merchants_key_and_its_report_reaches_the_merchant_center()
{
    let t = TestGateway::start().await;
    let created = t.create("chk-1").await;
    let asked = t
        .client
        .exchange_at(
            "sandbox/v1/check",
            "CHECK_PAYMENTS",
            "1.0",
            fields(json!({"since": "0"})),
        )
        .await
        .unwrap();
    assert_eq!(
        asked.response.rsp_code, "SUCCESS",
        "{}",
        asked.response.rsp_msg
    );
    let payments = asked.response_fields.unwrap()["payments"].clone();
    assert_eq!(payments[0]["reference"], "chk-1", "{payments}");
    assert!(
        payments[0]["callback_url"]
            .as_str()
            .unwrap()
            .starts_with("http")
    );
    let _ = created;

    // The shop's own queries are in the call log.
    t.client.prepay_query("chk-1").await.unwrap();
    let calls = t
        .client
        .exchange_at(
            "sandbox/v1/check",
            "CHECK_CALLS",
            "1.0",
            fields(json!({"since": "0"})),
        )
        .await
        .unwrap()
        .response_fields
        .unwrap();
    let calls = calls["calls"].as_array().unwrap();
    assert!(
        calls
            .iter()
            .any(|c| c["call"] == "PREPAY_QUERY" && c["about"] == "chk-1"),
        "{calls:?}"
    );

    // Another key: refused, nothing answered.
    let stranger = ottgate_client::Client::new(
        t.base.as_str(),
        t.merchant.merchant.id.as_str(),
        SignKey::new("0123456789ABCDEF0123456789ABCDEF").unwrap(),
    )
    .unwrap();
    let refused = stranger
        .exchange_at(
            "sandbox/v1/check",
            "CHECK_PAYMENTS",
            "1.0",
            fields(json!({"since": "0"})),
        )
        .await
        .unwrap();
    assert_ne!(refused.response.rsp_code, "SUCCESS");
    assert!(refused.response_fields.is_none());

    // The last report is shown to the merchant.
    let report = json!({"cases": [
        {"case": "forged_key", "verdict": "FAIL", "why": "acknowledged it without asking the gateway"},
        {"case": "success", "verdict": "PASS", "why": "the callback was acknowledged"},
    ]});
    let kept = t
        .client
        .exchange_at("sandbox/v1/check", "CHECK_REPORT", "1.0", fields(report))
        .await
        .unwrap();
    assert_eq!(kept.response.rsp_code, "SUCCESS");
    let mut c = crate::center::admin(&t).await;
    let overview = c.page("/dashboard").await;
    assert!(overview.contains("id=\"check\""), "{overview}");
    assert!(overview.contains("forged_key") && overview.contains("acknowledged it without asking"));
}

#[tokio::test]
async fn a_live_gateway_has_no_checker_route() {
    let t = TestGateway::with(Options {
        sandbox: false,
        ..Options::default()
    })
    .await;
    let r = t.post("sandbox/v1/check").body("{}").fetch().await;
    assert_eq!(r.status(), 404);
}

/// Asks `/sandbox/v1/check`, expecting SUCCESS.
async fn check(t: &TestGateway, action: &str, data: Value) -> Fields {
    let asked = t
        .client
        .exchange_at("sandbox/v1/check", action, "1.0", fields(data))
        .await
        .unwrap();
    assert_eq!(
        asked.response.rsp_code, "SUCCESS",
        "{action}: {}",
        asked.response.rsp_msg
    );
    asked.response_fields.unwrap()
}

/// The gateway's order id of the merchant's order `reference`.
async fn order_id(t: &TestGateway, reference: &str) -> String {
    let listed = check(t, "CHECK_PAYMENTS", json!({"since": "0"})).await;
    listed["payments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["reference"] == reference)
        .unwrap()["order_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn what_the_checker_does_to_an_order_queries_lagging_callbacks_held_a_late_payment() {
    let t = TestGateway::start().await;

    // Queries say PROCESSING while asked to, whatever the order is; then the truth.
    t.create("chk-lag").await;
    let lagging = order_id(&t, "chk-lag").await;
    check(
        &t,
        "CHECK_FAULTS",
        json!({"order_id": lagging, "lag_queries_secs": 30, "hold_callbacks": true}),
    )
    .await;
    let paid = check(
        &t,
        "CHECK_SETTLE",
        json!({"order_id": lagging, "outcome": "paid"}),
    )
    .await;
    let payment = paid["payment_id"].as_str().unwrap().to_owned();
    assert_eq!(
        t.client.prepay_query("chk-lag").await.unwrap().status,
        "PROCESSING"
    );
    assert_eq!(
        t.client.status_query(&payment).await.unwrap().order_status,
        "init"
    );
    // Held back: no callback reaches the shop, the attempt says why.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(t.receiver.received().is_empty());
    let callbacks = check(&t, "CHECK_CALLBACKS", json!({"order_id": lagging})).await;
    assert_eq!(
        callbacks["callbacks"][0]["answers"][0]["error"], "held back by ottgate check",
        "{callbacks:?}"
    );
    // Cleared: the truth, and the callback on its next try.
    check(&t, "CHECK_FAULTS", json!({"order_id": lagging})).await;
    assert_eq!(
        t.client.prepay_query("chk-lag").await.unwrap().status,
        "SUCCESS"
    );
    assert_eq!(
        t.client.status_query(&payment).await.unwrap().order_status,
        "success"
    );

    // Expired while the buyer was paying, then the wallet's success: paid, called back.
    t.create("chk-late").await;
    let late = order_id(&t, "chk-late").await;
    for outcome in ["started", "expired"] {
        check(
            &t,
            "CHECK_SETTLE",
            json!({"order_id": late, "outcome": outcome}),
        )
        .await;
    }
    assert_eq!(
        t.client.prepay_query("chk-late").await.unwrap().status,
        "ORDERCLOSE"
    );
    let paid = check(
        &t,
        "CHECK_SETTLE",
        json!({"order_id": late, "outcome": "paid_late"}),
    )
    .await;
    assert_eq!(
        t.client.prepay_query("chk-late").await.unwrap().status,
        "SUCCESS"
    );
    // (The held callback of the first order may come too, on its next try.)
    let late_payment = paid["payment_id"].as_str().unwrap();
    let data = loop {
        let found = t
            .receiver
            .received()
            .iter()
            .map(|body| t.client.verify_callback(body).unwrap())
            .find(|data| data.order_id == late_payment);
        if let Some(data) = found {
            break data;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(data.order_status, "success");
    assert_eq!(data.prepay_order_id.as_deref(), Some("chk-late"));

    // Refunded in full by the merchant, as the checker plays it.
    check(
        &t,
        "CHECK_SETTLE",
        json!({"order_id": late, "outcome": "refunded"}),
    )
    .await;
    assert_eq!(
        t.client
            .status_query(&data.order_id)
            .await
            .unwrap()
            .order_status,
        "fully_refunded"
    );
    // An order already closed cannot be expired again.
    let refused = t
        .client
        .exchange_at(
            "sandbox/v1/check",
            "CHECK_SETTLE",
            "1.0",
            fields(json!({"order_id": late, "outcome": "expired"})),
        )
        .await
        .unwrap();
    assert_ne!(refused.response.rsp_code, "SUCCESS");
}
