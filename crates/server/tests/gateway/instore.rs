//! In-store barcode payments (PASSIVEPAY) through real HTTP against the simulated wallets:
//! immediate success, a password, a decline, an undecided payment followed to its reversal
//! on the wallet's schedule (a manual clock stands in for the wallet's seconds), a dropped
//! answer, replays, bad input.

use ottgate_channels::simkit::{Fault, FaultKind};
use ottgate_client::Fields;
use ottgate_testkit::Fetch;
use serde_json::{Value, json};
use std::time::Duration;

use crate::harness::{Options, TestGateway, eventually};

fn fields(value: Value) -> Fields {
    match value {
        Value::Object(fields) => fields,
        other => panic!("not an object: {other}"),
    }
}

/// A one-time buyer code from the sandbox.
pub async fn code(t: &TestGateway, wallet: &str, outcome: &str) -> String {
    let r = t
        .post("sandbox/v1/barcodes")
        .json(&json!({"wallet": wallet, "outcome": outcome}))
        .fetch()
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["code"].as_str().unwrap().to_owned()
}

async fn passive(t: &TestGateway, data: Value) -> (String, Option<Fields>) {
    let e = t
        .client
        .exchange("PASSIVEPAY", "1.0", fields(data))
        .await
        .unwrap();
    (
        format!("{}: {}", e.response.rsp_code, e.response.rsp_msg),
        e.response_fields,
    )
}

async fn paid_by(t: &TestGateway, order_id: &str, code: &str) -> Fields {
    let (rsp, answer) = passive(
        t,
        json!({"order_id": order_id, "amount": "1250", "auth_code": code, "biz_type": "WECHATPAY"}),
    )
    .await;
    answer.unwrap_or_else(|| panic!("{rsp}"))
}

/// Runs the barcode follow-up once, as the worker would after the clock moved.
async fn follow_up(t: &TestGateway, advance: Duration) {
    t.advance(advance);
    t.gateway.state().service.barcode_due().await.unwrap();
}

#[tokio::test]
async fn a_wechat_barcode_pays_at_once_and_a_repeat_never_charges_twice() {
    let t = TestGateway::start().await;
    let code = code(&t, "WECHATPAY", "paid").await;
    assert_eq!(code.len(), 18);
    // No operator_id, no biz_type: the merchant's operator, and the code's wallet.
    let (rsp, answer) = passive(
        &t,
        json!({"order_id": "POS-1", "amount": "1250", "tip": "50", "auth_code": code,
        "sale_num": "S-9", "terminal_no": "TILL-3"}),
    )
    .await;
    let answer = answer.unwrap_or_else(|| panic!("{rsp}"));
    assert_eq!(answer["order_status"], "success", "{answer:?}");
    assert_eq!(answer["order_id"], "POS-1");
    assert_eq!(answer["biz_type"], "WECHATPAY");
    assert_eq!(answer["terminal_no"], "TILL-3");
    assert!(answer["buyer_login_id"].as_str().unwrap().starts_with('o'));
    let bizpay = answer["bizpay_order_id"].as_str().unwrap().to_owned();
    assert!(bizpay.starts_with("42000"), "{bizpay}");

    // The same request again: the first answer; the wallet is not asked again.
    let (_, again) = passive(
        &t,
        json!({"order_id": "POS-1", "amount": "1250", "tip": "50", "auth_code": code,
        "sale_num": "S-9", "terminal_no": "TILL-3"}),
    )
    .await;
    assert_eq!(again.unwrap(), answer);
    // Another request under the same order_id is refused; the code in another order is used.
    let (rsp, _) = passive(
        &t,
        json!({"order_id": "POS-1", "amount": "999", "auth_code": code}),
    )
    .await;
    assert!(rsp.starts_with("ORDER_USED"), "{rsp}");
    let reused = paid_by(&t, "POS-2", &code).await;
    assert_eq!(reused["order_status"], "failure");
    assert!(
        reused["reason"]
            .as_str()
            .unwrap()
            .contains("AUTH_CODE_INVALID")
    );

    let status = t.client.status_query("POS-1").await.unwrap();
    assert_eq!(
        (status.order_status.as_str(), status.amount.as_str()),
        ("success", "1250")
    );
    let refund = t.client.refund("POS-1", "1250", None).await.unwrap();
    assert_eq!(refund.refund_status, "success");
    assert_eq!(
        t.client.status_query("POS-1").await.unwrap().order_status,
        "fully_refunded"
    );
}

#[tokio::test]
async fn a_declined_code_fails_with_the_wallets_reason_and_a_password_is_waited_for() {
    let t = TestGateway::with(Options {
        manual_clock: true,
        passive_pay_wait_ms: Some(300),
        ..Options::default()
    })
    .await;
    let declined = paid_by(&t, "POS-D", &code(&t, "WECHATPAY", "declined").await).await;
    assert_eq!(declined["order_status"], "failure");
    assert!(declined["reason"].as_str().unwrap().contains("NOTENOUGH"));
    assert_eq!(
        t.client.status_query("POS-D").await.unwrap().order_status,
        "orderclosed"
    );

    // The buyer types a password: PROCESSING now; WeChat is asked 5 s later, and it is paid.
    let pending = paid_by(&t, "POS-P", &code(&t, "WECHATPAY", "password").await).await;
    assert_eq!(pending["order_status"], "PROCESSING");
    assert_eq!(
        t.client.status_query("POS-P").await.unwrap().order_status,
        "init"
    );
    follow_up(&t, Duration::from_secs(5)).await;
    eventually("the password payment is paid", || async {
        t.client.status_query("POS-P").await.unwrap().order_status == "success"
    })
    .await;
    // Asked again now, the PASSIVEPAY answers the final result.
    let (_, again) = passive(
        &t,
        json!({"order_id": "POS-P", "amount": "1250", "auth_code": pending_code(&t, "POS-P").await, "biz_type": "WECHATPAY"}),
    )
    .await;
    assert_eq!(again.unwrap()["order_status"], "success");
}

/// The code a payment was made with, as the simulated wallet keeps it.
async fn pending_code(t: &TestGateway, order_id: &str) -> String {
    let view = t
        .gateway
        .state()
        .service
        .payment(&t.merchant.merchant.id, order_id)
        .await
        .unwrap()
        .unwrap();
    let books = t.wallet_books("wechatpay", view.attempt.id.as_str()).await;
    books["auth_code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_undecided_payment_is_queried_then_reversed_asking_again_while_wechat_says_recall() {
    let t = TestGateway::with(Options {
        manual_clock: true,
        passive_pay_wait_ms: Some(300),
        ..Options::default()
    })
    .await;
    let code = code(&t, "WECHATPAY", "undecided").await;
    let first = paid_by(&t, "POS-U", &code).await;
    assert_eq!(first["order_status"], "PROCESSING");
    let view = t
        .gateway
        .state()
        .service
        .payment(&t.merchant.merchant.id, "POS-U")
        .await
        .unwrap()
        .unwrap();
    let trade = view.attempt.id.to_string();
    t.fault("wechatpay", FaultKind::AskAgain, &trade).await;
    // Queried at 5 s, 15 s, 25 s: still the buyer's phone; past 30 s, reversed.
    for _ in 0..3 {
        follow_up(&t, Duration::from_secs(10)).await;
        assert_eq!(
            t.client.status_query("POS-U").await.unwrap().order_status,
            "init"
        );
    }
    let job = || async {
        t.gateway
            .state()
            .service
            .store
            .barcode_job(&view.attempt.id)
            .await
            .unwrap()
            .unwrap()
    };
    follow_up(&t, Duration::from_secs(10)).await;
    assert_eq!(job().await.phase.code(), "undo");
    // The first reverse: recall=Y, not done; asked again 10 s later, done.
    follow_up(&t, Duration::ZERO).await;
    let j = job().await;
    assert_eq!((j.phase.code(), j.tries), ("undo", 1), "{j:?}");
    assert_eq!(
        j.last_error.as_deref(),
        Some("SYSTEMERROR"),
        "WeChat said recall=Y"
    );
    follow_up(&t, Duration::from_secs(10)).await;
    let j = job().await;
    assert_eq!(
        (j.phase.code(), j.outcome.as_deref()),
        ("done", Some("reversed"))
    );
    assert_eq!(
        t.wallet_books("wechatpay", &trade).await["trade_state"],
        "REVOKED"
    );
    assert_eq!(
        t.client.status_query("POS-U").await.unwrap().order_status,
        "orderclosed"
    );
    let (_, again) = passive(
        &t,
        json!({"order_id": "POS-U", "amount": "1250", "auth_code": code, "biz_type": "WECHATPAY"}),
    )
    .await;
    let again = again.unwrap();
    assert_eq!(again["order_status"], "failure");
    assert!(
        again["reason"].as_str().unwrap().contains("reversed"),
        "{again:?}"
    );
}

#[tokio::test]
async fn a_dropped_answer_is_found_by_querying_and_called_back_once() {
    let t = TestGateway::with(Options {
        manual_clock: true,
        passive_pay_wait_ms: Some(300),
        ..Options::default()
    })
    .await;
    // The wallet takes the payment but its answer is lost.
    let fault = Fault {
        kind: FaultKind::LoseAnswer,
        out_trade_no: None,
        delay_ms: None,
    };
    let r = t.post("sim/wechatpay/control").json(&fault).fetch().await;
    assert_eq!(r.status(), 204);
    let code = code(&t, "WECHATPAY", "paid").await;
    let (rsp, answer) = passive(
        &t,
        json!({"order_id": "POS-L", "amount": "800", "auth_code": code,
        "call_back_url": t.receiver_url.join("notify").unwrap().as_str()}),
    )
    .await;
    assert_eq!(
        answer.unwrap_or_else(|| panic!("{rsp}"))["order_status"],
        "PROCESSING"
    );
    follow_up(&t, Duration::from_secs(5)).await;
    eventually("the lost payment is found paid", || async {
        t.client.status_query("POS-L").await.unwrap().order_status == "success"
    })
    .await;
    let bodies = t.receiver.wait_for(1).await;
    assert!(t.client.verify_callback(&bodies[0]).is_ok());
    follow_up(&t, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(t.receiver.received().len(), 1, "called back once");
}

#[tokio::test]
async fn bad_barcode_payments_are_refused_by_name_and_make_nothing() {
    let t = TestGateway::start().await;
    let good = code(&t, "WECHATPAY", "paid").await;
    for (field, value, expected) in [
        (
            "auth_code",
            json!("12ab34"),
            "auth_code must be the 10 to 24 digits",
        ),
        ("auth_code", Value::Null, "auth_code"),
        (
            "auth_code",
            json!("994567890123456789"),
            "biz_type is required",
        ),
        ("amount", json!("12.50"), "amount"),
        ("amount", Value::Null, "amount"),
        (
            "biz_type",
            json!("PAYPAL"),
            "biz_type must be ALIPAY, WECHATPAY or UNIONPAY",
        ),
        ("tip", json!("99999"), "tip"),
        ("operator_id", json!("9999999999"), "operator_id"),
    ] {
        let mut data = json!({"order_id": "BAD-1", "amount": "1000", "auth_code": good});
        if value.is_null() {
            data.as_object_mut().unwrap().remove(field);
        } else {
            data[field] = value.clone();
        }
        let (rsp, answer) = passive(&t, data).await;
        assert!(answer.is_none(), "{field}={value}: {rsp}");
        assert!(rsp.contains(expected), "{field}={value}: {rsp}");
    }
    let stats = t.gateway.state().service.stats().await.unwrap();
    assert_eq!(
        stats.orders_by_status.iter().map(|(_, n)| n).sum::<u64>(),
        0
    );
    // The code is still good: no wallet was asked.
    assert_eq!(
        paid_by(&t, "GOOD-1", &good).await["order_status"],
        "success"
    );
}
