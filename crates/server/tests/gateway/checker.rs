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
