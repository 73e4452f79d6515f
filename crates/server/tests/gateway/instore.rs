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

/// A wallet as these tests meet it: its name, its simulator's books, its rule's timings.
#[derive(Debug, Clone, Copy)]
pub struct Wallet {
    biz_type: &'static str,
    sim: &'static str,
    /// `sim/{sim}/{books}/{trade}`, and the field and value there of a reversed trade.
    books: &'static str,
    reversed: (&'static str, &'static str),
    declined: &'static str,
    /// What the gateway records when the wallet says to undo again.
    ask_again: &'static str,
    first_query: u64,
    query_every: u64,
    undo_every: u64,
}

const WECHAT: Wallet = Wallet {
    biz_type: "WECHATPAY",
    sim: "wechatpay",
    books: "orders",
    reversed: ("trade_state", "REVOKED"),
    declined: "NOTENOUGH",
    ask_again: "SYSTEMERROR",
    first_query: 5,
    query_every: 10,
    undo_every: 10,
};
const ALIPAY: Wallet = Wallet {
    biz_type: "ALIPAY",
    sim: "alipay",
    books: "trades",
    reversed: ("status", "TRADE_CLOSED"),
    declined: "BUYER_BALANCE_NOT_ENOUGH",
    ask_again: "retry_flag=Y",
    first_query: 5,
    query_every: 3,
    undo_every: 5,
};
const UNIONPAY: Wallet = Wallet {
    biz_type: "UNIONPAY",
    sim: "unionpay",
    books: "orders",
    reversed: ("voided", "true"),
    declined: "insufficient balance",
    ask_again: "respCode 03",
    first_query: 3,
    query_every: 5,
    undo_every: 5,
};

impl Wallet {
    async fn books(self, t: &TestGateway, trade: &str) -> Value {
        let url = t
            .base
            .join(&format!("sim/{}/{}/{trade}", self.sim, self.books))
            .unwrap();
        t.http.get(url).fetch().await.json().await.unwrap()
    }
}

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

async fn paid_by(t: &TestGateway, w: Wallet, order_id: &str, code: &str) -> Fields {
    let (rsp, answer) = passive(
        t,
        json!({"order_id": order_id, "amount": "1250", "auth_code": code, "biz_type": w.biz_type}),
    )
    .await;
    answer.unwrap_or_else(|| panic!("{rsp}"))
}

/// Runs the barcode follow-up once, as the worker would after the clock moved.
async fn follow_up(t: &TestGateway, advance: Duration) {
    t.advance(advance);
    t.gateway.state().service.barcode_due().await.unwrap();
}

fn manual() -> Options {
    Options {
        manual_clock: true,
        passive_pay_wait_ms: Some(300),
        ..Options::default()
    }
}

async fn payment_id(t: &TestGateway, order_id: &str) -> ottgate_core::AttemptId {
    t.gateway
        .state()
        .service
        .payment(&t.merchant.merchant.id, order_id)
        .await
        .unwrap()
        .unwrap()
        .attempt
        .id
}

#[rstest::rstest]
#[case(WECHAT)]
#[case(ALIPAY)]
#[case(UNIONPAY)]
#[tokio::test]
async fn a_barcode_pays_at_once_and_a_repeat_never_charges_twice(#[case] w: Wallet) {
    let t = TestGateway::start().await;
    let code = code(&t, w.biz_type, "paid").await;
    // No operator_id, no biz_type: the merchant's operator, and the code's wallet.
    let request = json!({"order_id": "POS-1", "amount": "1250", "tip": "50", "auth_code": code,
        "sale_num": "S-9", "terminal_no": "TILL3"});
    let (rsp, answer) = passive(&t, request.clone()).await;
    let answer = answer.unwrap_or_else(|| panic!("{rsp}"));
    assert_eq!(answer["order_status"], "success", "{answer:?}");
    assert_eq!(answer["order_id"], "POS-1");
    assert_eq!(answer["biz_type"], w.biz_type);
    assert_eq!(answer["terminal_no"], "TILL3");
    assert!(!answer["bizpay_order_id"].as_str().unwrap().is_empty());
    if w.biz_type != "UNIONPAY" {
        assert!(answer.contains_key("buyer_login_id"), "{answer:?}");
    }

    // The same request again: the first answer; the wallet is not asked again.
    let (_, again) = passive(&t, request).await;
    assert_eq!(again.unwrap(), answer);
    // Another request under the same order_id is refused; the code in another order is used.
    let (rsp, _) = passive(
        &t,
        json!({"order_id": "POS-1", "amount": "999", "auth_code": code}),
    )
    .await;
    assert!(rsp.starts_with("ORDER_USED"), "{rsp}");
    let reused = paid_by(&t, w, "POS-2", &code).await;
    assert_eq!(reused["order_status"], "failure", "{reused:?}");

    let status = t.client.status_query("POS-1").await.unwrap();
    assert_eq!(
        (status.order_status.as_str(), status.amount.as_str()),
        ("success", "1250")
    );
    let refund = t.client.refund("POS-1", "1250", None).await.unwrap();
    assert_ne!(refund.refund_status, "failed");
    // The merchant center lists it with its kind and till.
    let mut c = crate::center::admin(&t).await;
    let list = c.page("/dashboard/payments").await;
    assert!(list.contains("In-store barcode · TILL3"), "{list}");
}

#[rstest::rstest]
#[case(WECHAT)]
#[case(ALIPAY)]
#[case(UNIONPAY)]
#[tokio::test]
async fn a_declined_code_fails_with_the_wallets_reason_and_a_password_is_waited_for(
    #[case] w: Wallet,
) {
    let t = TestGateway::with(manual()).await;
    let declined = paid_by(&t, w, "POS-D", &code(&t, w.biz_type, "declined").await).await;
    assert_eq!(declined["order_status"], "failure");
    let reason = declined["reason"].as_str().unwrap();
    assert!(reason.contains(w.declined), "{reason}");
    assert_eq!(
        t.client.status_query("POS-D").await.unwrap().order_status,
        "orderclosed"
    );

    // The buyer confirms on the phone: PROCESSING now; the wallet is asked, and it is paid.
    let password = code(&t, w.biz_type, "password").await;
    let pending = paid_by(&t, w, "POS-P", &password).await;
    assert_eq!(pending["order_status"], "PROCESSING");
    assert_eq!(
        t.client.status_query("POS-P").await.unwrap().order_status,
        "init"
    );
    follow_up(&t, Duration::from_secs(w.first_query)).await;
    eventually("the password payment is paid", || async {
        t.client.status_query("POS-P").await.unwrap().order_status == "success"
    })
    .await;
    // Asked again now, the PASSIVEPAY answers the final result.
    let again = paid_by(&t, w, "POS-P", &password).await;
    assert_eq!(again["order_status"], "success");
}

#[rstest::rstest]
#[case(WECHAT)]
#[case(ALIPAY)]
#[case(UNIONPAY)]
#[tokio::test]
async fn an_undecided_payment_is_queried_then_undone_asking_again_while_the_wallet_says_so(
    #[case] w: Wallet,
) {
    // No background worker: each step is this test's, so what it reads is settled.
    let t = TestGateway::with(Options {
        workers: false,
        ..manual()
    })
    .await;
    let code = code(&t, w.biz_type, "undecided").await;
    let first = paid_by(&t, w, "POS-U", &code).await;
    assert_eq!(first["order_status"], "PROCESSING");
    let id = payment_id(&t, "POS-U").await;
    let trade = id.to_string();
    t.fault(w.sim, FaultKind::AskAgain, &trade).await;
    let job = || async {
        t.gateway
            .state()
            .service
            .store
            .barcode_job(&id)
            .await
            .unwrap()
            .unwrap()
    };
    // The till asks again while the payment is followed: where it stands, no new charge.
    let replayed = paid_by(&t, w, "POS-U", &code).await;
    assert_eq!(replayed["order_status"], "PROCESSING");
    assert_eq!(job().await.tries, 1, "the wallet was asked once");
    // Queried on the wallet's schedule while the buyer's phone says nothing; then undone.
    follow_up(&t, Duration::from_secs(w.first_query)).await;
    let mut queries = 1;
    while job().await.phase.code() == "query" {
        assert_eq!(
            t.client.status_query("POS-U").await.unwrap().order_status,
            "init"
        );
        follow_up(&t, Duration::from_secs(w.query_every)).await;
        queries += 1;
        assert!(queries < 40, "never undone");
    }
    assert!(queries >= 3, "asked {queries} times");
    // The first undo: the wallet says to send it again; asked again later, done.
    follow_up(&t, Duration::ZERO).await;
    let j = job().await;
    assert_eq!((j.phase.code(), j.tries), ("undo", 1), "{j:?}");
    assert!(
        j.last_error.as_deref().unwrap_or("").contains(w.ask_again),
        "{j:?}"
    );
    follow_up(&t, Duration::from_secs(w.undo_every)).await;
    let j = job().await;
    assert_eq!(
        (j.phase.code(), j.outcome.as_deref()),
        ("done", Some("reversed")),
        "{j:?}"
    );
    let page = crate::center::admin(&t)
        .await
        .page(&format!(
            "/dashboard/payments/{}",
            j.attempt_id_order(&t).await
        ))
        .await;
    assert!(page.contains("id=\"follow-up\">reversed"), "{page}");
    let books = w.books(&t, &trade).await;
    let (field, value) = w.reversed;
    assert_eq!(books[field].to_string().trim_matches('"'), value, "{books}");
    assert_eq!(
        t.client.status_query("POS-U").await.unwrap().order_status,
        "orderclosed"
    );
    let again = paid_by(&t, w, "POS-U", &code).await;
    assert_eq!(again["order_status"], "failure");
    assert!(
        again["reason"].as_str().unwrap().contains("reversed"),
        "{again:?}"
    );
}

#[rstest::rstest]
#[case(WECHAT)]
#[case(ALIPAY)]
#[case(UNIONPAY)]
#[tokio::test]
async fn a_dropped_answer_is_found_by_querying_and_called_back_once(#[case] w: Wallet) {
    let t = TestGateway::with(manual()).await;
    // The wallet takes the payment but its answer is lost.
    let fault = Fault {
        kind: FaultKind::LoseAnswer,
        out_trade_no: None,
        delay_ms: None,
    };
    let r = t
        .post(&format!("sim/{}/control", w.sim))
        .json(&fault)
        .fetch()
        .await;
    assert_eq!(r.status(), 204);
    let code = code(&t, w.biz_type, "paid").await;
    let (rsp, answer) = passive(
        &t,
        json!({"order_id": "POS-L", "amount": "800", "auth_code": code,
        "call_back_url": t.receiver_url.join("notify").unwrap().as_str()}),
    )
    .await;
    let status = answer.unwrap_or_else(|| panic!("{rsp}"))["order_status"].clone();
    // UnionPay also notifies the consume's result: it may settle it before the answer.
    let expected: &[&str] = if w.biz_type == "UNIONPAY" {
        &["PROCESSING", "success"]
    } else {
        &["PROCESSING"]
    };
    assert!(expected.contains(&status.as_str().unwrap()), "{status}");
    follow_up(&t, Duration::from_secs(w.first_query)).await;
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
        paid_by(&t, WECHAT, "GOOD-1", &good).await["order_status"],
        "success"
    );
}

#[tokio::test]
async fn the_till_and_operator_beside_data_are_taken() {
    let t = TestGateway::start().await;
    let code = code(&t, "ALIPAY", "paid").await;
    let data = fields(json!({"order_id": "POS-T", "amount": "300", "auth_code": code}));
    let mut request = t.client.envelope("PASSIVEPAY", "1.0", &data);
    request.terminal_no = Some("LANE-7".into());
    request.operator_id = Some(t.merchant.merchant.operator_id.to_string());
    let r = t.post("processV2").json(&request).fetch().await;
    let body: ottgate_client::EnvelopeResponse = r.json().await.unwrap();
    let opened = ottgate_envelope::open(
        body.data.as_deref().unwrap(),
        body.md5.as_deref().unwrap(),
        &t.key(),
    )
    .unwrap();
    let answer = Value::Object(opened.fields);
    assert_eq!(
        (
            answer["order_status"].as_str(),
            answer["terminal_no"].as_str()
        ),
        (Some("success"), Some("LANE-7"))
    );
}

/// The order of a barcode job's payment (the merchant center's page for it).
trait OrderOf {
    async fn attempt_id_order(&self, t: &TestGateway) -> String;
}

impl OrderOf for ottgate_store::BarcodeJob {
    async fn attempt_id_order(&self, t: &TestGateway) -> String {
        crate::center::order_of(t, self.attempt_id.as_str()).await
    }
}

/// A slow wallet: the till's identical retry while the first is still waiting for the
/// wallet is told PROCESSING and never charges; the first then answers success.
#[tokio::test]
async fn a_retry_while_the_wallet_is_slow_never_charges_twice() {
    let t = TestGateway::with(Options {
        passive_pay_wait_ms: Some(300),
        ..Options::default()
    })
    .await;
    let slow = Fault {
        kind: FaultKind::SlowAnswer,
        out_trade_no: None,
        delay_ms: Some(1_500),
    };
    let r = t.post("sim/wechatpay/control").json(&slow).fetch().await;
    assert_eq!(r.status(), 204);
    let code = code(&t, "WECHATPAY", "paid").await;
    let request = json!({"order_id": "POS-S", "amount": "700", "auth_code": code});
    let first = {
        let (t, request) = (&t, request.clone());
        async move { passive(t, request).await }
    };
    let retry = {
        let (t, request) = (&t, request.clone());
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            passive(t, request).await
        }
    };
    let ((_, first), (_, retry)) = tokio::join!(first, retry);
    assert_eq!(retry.unwrap()["order_status"], "PROCESSING");
    assert_eq!(first.unwrap()["order_status"], "success");
    let id = payment_id(&t, "POS-S").await;
    let books = WECHAT.books(&t, id.as_str()).await;
    assert_eq!(books["trade_state"], "SUCCESS");
    let (_, again) = passive(&t, request).await;
    assert_eq!(again.unwrap()["order_status"], "success");
}
