//! The UnionPay connector against the simulated UnionPay, over real HTTP: our signed
//! form, their checks, the cashier, their signed return and notifications, our
//! verification, queries and refunds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code")]

use axum::http::StatusCode;
use axum::response::IntoResponse;
use ottgate_channels::simkit::FaultKind;
use ottgate_channels::unionpay::sign::{self, Fields};
use ottgate_channels::unionpay::simulator::UnionPaySimulator;
use ottgate_channels::unionpay::{self, Notice, UnionPayConnector, parse_answer, parse_form};
use ottgate_channels::{
    Channel, ChannelError, Device, PaymentStart, QueryPayment, QueryResult, RefundPayment,
    RefundQueryResult, RefundResult, StartAction, StartPayment,
};
use ottgate_core::{AttemptId, Clock, PaymentMethod, RefundId, SystemClock, Timestamp};
use std::sync::atomic::Ordering;
use std::time::Duration;

mod support;

use ottgate_testkit::Fetch;
use support::{hidden_inputs, money};

type World = support::World<UnionPayConnector>;

/// The simulator and a notify receiver on one port, as the gateway mounts them.
async fn world() -> World {
    let (listener, base) = support::bind().await;
    let (config, sim) = unionpay::sandbox(&base, 3600.0).unwrap();
    let connector = UnionPayConnector::new(config).unwrap();
    let ack = |refused| match refused {
        true => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        false => StatusCode::OK.into_response(),
    };
    World::new(
        (listener, base),
        connector,
        &UnionPaySimulator::new(sim),
        ack,
    )
}

fn payment(attempt: &AttemptId, device: Device, at: Timestamp) -> StartPayment {
    support::payment(attempt, PaymentMethod::UnionPay, device, at)
}

fn query_of(attempt: &AttemptId, at: Timestamp) -> QueryPayment {
    support::query(attempt, at)
}

impl World {
    /// A purchase just started on `device`: when, its attempt, and the connector's answer.
    async fn start(&self, device: Device) -> (Timestamp, AttemptId, PaymentStart) {
        let at = SystemClock.now();
        let attempt = AttemptId::generate(at);
        let start = self
            .connector
            .start(&payment(&attempt, device, at))
            .await
            .unwrap();
        (at, attempt, start)
    }
}

async fn next_notice(w: &mut World) -> Fields {
    parse_form(&support::next_body(&mut w.notices).await)
}

/// What the browser does with the connector's answer: POST the signed form to UnionPay;
/// returns the cashier page.
async fn open_cashier(w: &World, start: &StartAction) -> (StatusCode, String) {
    let StartAction::PostForm { action, fields } = start else {
        panic!("UnionPay starts with a form: {start:?}")
    };
    assert_eq!(action.path(), "/sim/unionpay/gateway/api/frontTransReq.do");
    let response = w.http.post(action.clone()).form(fields).fetch().await;
    (response.status(), response.text().await.unwrap())
}

/// The buyer presses a button at the cashier; returns the answer.
async fn press(w: &World, attempt: &AttemptId, action: &str) -> reqwest::Response {
    let cashier = format!("sim/unionpay/cashier/{attempt}");
    support::press_at(&w.http, &w.base, &cashier, action).await
}

#[tokio::test]
async fn a_purchase_is_paid_returned_notified_queried_and_refunded() {
    let mut w = world().await;
    let (at, attempt, start) = w.start(Device::Desktop).await;
    let StartAction::PostForm { fields, .. } = &start.action else {
        panic!("{:?}", start.action)
    };
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(field("channelType"), Some("07"), "PC");
    assert_eq!(field("txnAmt"), Some("1234"));
    assert_eq!(field("currencyCode"), Some("124"));
    assert_eq!(field("frontUrl"), Some("https://shop.example/return"));

    // Nothing to find before the buyer pays.
    assert_eq!(
        w.connector.query(&query_of(&attempt, at)).await.unwrap(),
        QueryResult::NotFound
    );
    let (status, cashier) = open_cashier(&w, &start.action).await;
    assert_eq!(status, 200, "{cashier}");
    assert!(
        cashier.contains("id=\"unionpay-pay\"") && cashier.contains("12.34 CAD"),
        "{cashier}"
    );
    // The browser posting the same form again (reload) is the same purchase.
    assert_eq!(open_cashier(&w, &start.action).await.0, 200);

    // The buyer pays: the browser is sent back with UnionPay's signed result...
    let back = press(&w, &attempt, "pay").await;
    assert_eq!(back.status(), 200);
    let page = back.text().await.unwrap();
    assert!(
        page.contains("action=\"https://shop.example/return\""),
        "{page}"
    );
    let returned: Fields = hidden_inputs(&page).into_iter().collect();
    assert!(w.connector.verify(&returned), "{returned:?}");
    assert_eq!(returned["respCode"], "00");

    // ...and the notification that counts arrives at backUrl.
    let n = next_notice(&mut w).await;
    assert!(w.connector.verify(&n), "{n:?}");
    let Notice::Payment {
        order_id,
        query_id,
        txn_amt,
        currency_code,
        resp_code,
    } = Notice::read(&n).unwrap()
    else {
        panic!("a payment notice: {n:?}")
    };
    assert_eq!(
        (order_id.as_str(), resp_code.as_str()),
        (attempt.as_str(), "00")
    );
    assert!(unionpay::amount_matches(
        &txn_amt,
        &currency_code,
        money(1234)
    ));
    assert_eq!(returned["queryId"], query_id, "the same transaction");
    assert_eq!(
        w.connector.query(&query_of(&attempt, at)).await.unwrap(),
        QueryResult::Paid {
            bizpay_order_id: query_id.clone(),
            money: Some(money(1234)),
        }
    );
    // Paying twice is refused.
    let again = press(&w, &attempt, "pay").await;
    assert_eq!(again.status(), 400);
    assert!(again.text().await.unwrap().contains("35"));

    // A refund is accepted now and decided by notification.
    let refund = support::refund(&attempt, &query_id, 1234);
    assert_eq!(
        w.connector.refund(&refund).await.unwrap(),
        RefundResult::Pending
    );
    let n = next_notice(&mut w).await;
    assert!(w.connector.verify(&n));
    assert_eq!(
        Notice::read(&n).unwrap(),
        Notice::Refund {
            order_id: refund.refund_id.to_string(),
            orig_query_id: query_id.clone(),
            txn_amt: "234".into(),
            currency_code: "124".into(),
            resp_code: "00".into()
        }
    );
    // Asked later (as when that notification is lost), UnionPay reports the same.
    let asked = support::asked(&refund);
    assert!(w.connector.can_query_refunds());
    assert!(matches!(
        w.connector.query_refund(&asked).await.unwrap(),
        RefundQueryResult::Succeeded { channel_refund_id: Some(id) } if id == n["queryId"]
    ));
    let unknown = support::unknown_refund(&asked);
    assert_eq!(
        w.connector.query_refund(&unknown).await.unwrap(),
        RefundQueryResult::Pending
    );
    // The same refund again is a duplicate; more than is left is refused.
    assert!(matches!(
        w.connector.refund(&refund).await.unwrap(),
        RefundResult::Refused { reason } if reason.starts_with("12")
    ));
    let too_much = RefundPayment {
        refund_id: RefundId::generate(SystemClock.now()),
        money: money(1001),
        ..refund.clone()
    };
    assert!(matches!(
        w.connector.refund(&too_much).await.unwrap(),
        RefundResult::Refused { reason } if reason.starts_with("36")
    ));
}

#[tokio::test]
async fn a_mobile_purchase_that_fails_reads_closed_and_cancel_goes_back() {
    let mut w = world().await;
    let (at, attempt, start) = w.start(Device::Mobile).await;
    let (_, cashier) = open_cashier(&w, &start.action).await;
    assert!(cashier.contains("Mobile"), "channelType 08: {cashier}");
    let page = press(&w, &attempt, "fail").await.text().await.unwrap();
    let returned: Fields = hidden_inputs(&page).into_iter().collect();
    assert!(w.connector.verify(&returned));
    assert_ne!(returned["respCode"], "00");
    let n = next_notice(&mut w).await;
    assert!(matches!(
        Notice::read(&n).unwrap(),
        Notice::Payment { resp_code, .. } if resp_code != "00"
    ));
    assert_eq!(
        w.connector.query(&query_of(&attempt, at)).await.unwrap(),
        QueryResult::Closed
    );

    // Cancel: straight back to frontUrl, nothing notified.
    let (at, other, start) = w.start(Device::Mobile).await;
    open_cashier(&w, &start.action).await;
    let back = press(&w, &other, "cancel").await;
    assert!(back.status().is_redirection());
    assert_eq!(
        back.headers()["location"].to_str().unwrap(),
        "https://shop.example/return"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(w.notices.try_recv().is_err());
    assert_eq!(
        w.connector.query(&query_of(&other, at)).await.unwrap(),
        QueryResult::NotFound
    );
}

#[tokio::test]
async fn the_simulator_refuses_what_unionpay_refuses() {
    let w = world().await;
    let (at, attempt, start) = w.start(Device::Desktop).await;
    let StartAction::PostForm { action, fields } = &start.action else {
        panic!()
    };
    let post = |fields: Vec<(String, String)>| {
        let http = w.http.clone();
        let url = action.clone();
        async move {
            let response = http.post(url).form(&fields).fetch().await;
            (response.status(), response.text().await.unwrap())
        }
    };
    let with = |name: &str, value: &str| {
        let mut f = fields.clone();
        for (k, v) in &mut f {
            if k == name {
                *v = value.to_owned();
            }
        }
        f
    };

    // The amount changed after signing: 11.
    let (status, page) = post(with("txnAmt", "1")).await;
    assert_eq!(status, 400);
    assert!(
        page.contains("id=\"unionpay-error\"") && page.contains(">11<"),
        "{page}"
    );
    // Another merchant: 31.
    let (_, page) = post(with("merId", "777290058110049")).await;
    assert!(page.contains(">31<"), "{page}");
    // Another version or signature method: a format error.
    let (_, page) = post(with("signMethod", "11")).await;
    assert!(page.contains(">10<"), "{page}");

    // A well-signed form with a field UnionPay rejects: format error.
    let mut f: Fields = fields.iter().cloned().collect();
    f.insert("currencyCode".into(), "999".into());
    f.remove("signature");
    let key = ottgate_channels::alipay::private_key_pem(
        ottgate_channels::alipay::testkeys::MERCHANT_PRIVATE,
    )
    .unwrap();
    let signature = sign::sign(&f, &key);
    f.insert("signature".into(), signature);
    let (status, page) = post(f.into_iter().collect()).await;
    assert_eq!(status, 400);
    assert!(page.contains(">10<"), "{page}");

    // The same orderId for another amount, signed properly: duplicate (12).
    let mut other = payment(&attempt, Device::Desktop, at);
    other.money = money(999);
    assert_eq!(open_cashier(&w, &start.action).await.0, 200);
    let second = w.connector.start(&other).await.unwrap();
    let (status, page) = open_cashier(&w, &second.action).await;
    assert_eq!(status, 400);
    assert!(page.contains(">12<"), "{page}");

    // The back-end endpoints answer signed codes; the connector says what went wrong.
    let (mut config, _) = unionpay::sandbox(&w.base, 1.0).unwrap();
    config.mer_id = "777290058110049".into();
    let stranger = UnionPayConnector::new(config).unwrap();
    let err = stranger.query(&query_of(&attempt, at)).await.unwrap_err();
    assert!(
        matches!(&err, ChannelError::Upstream { message: m, .. } if m.contains("31")),
        "{err:?}"
    );
    let raw = w
        .http
        .post(
            w.base
                .join("sim/unionpay/gateway/api/queryTrans.do")
                .unwrap(),
        )
        .body("not a form")
        .fetch_text()
        .await;
    let answer = parse_answer(&raw);
    assert_eq!(answer["respCode"], "10", "{raw}");
    assert!(
        sign::verify(&answer, &unionpay_wallet_public()),
        "answers are signed"
    );
}

fn unionpay_wallet_public() -> rsa::RsaPublicKey {
    ottgate_channels::alipay::public_key_pem(ottgate_channels::alipay::testkeys::WALLET_PUBLIC)
        .unwrap()
}

#[tokio::test]
async fn notifications_are_resent_until_answered_with_200_and_faults_reach_the_wire() {
    let mut w = world().await;
    w.refuse.store(2, Ordering::SeqCst);
    let (_, attempt, start) = w.start(Device::Desktop).await;
    open_cashier(&w, &start.action).await;
    press(&w, &attempt, "pay").await;
    for _ in 0..3 {
        assert_eq!(next_notice(&mut w).await["orderId"], attempt.as_str());
    }
    support::assert_quiet(&mut w.notices, "answered: no more").await;

    for kind in support::NOTIFICATION_FAULTS {
        let (_, attempt, start) = w.start(Device::Desktop).await;
        open_cashier(&w, &start.action).await;
        support::arm_fault(&w.http, &w.base, "unionpay", kind, attempt.as_str()).await;
        press(&w, &attempt, "pay").await;
        let n = next_notice(&mut w).await;
        let Notice::Payment {
            txn_amt,
            currency_code,
            ..
        } = Notice::read(&n).unwrap()
        else {
            panic!()
        };
        let amount_ok = unionpay::amount_matches(&txn_amt, &currency_code, money(1234));
        support::assert_spoilt_as(kind, w.connector.verify(&n), amount_ok, &n);
        if kind == FaultKind::Duplicate {
            assert_eq!(next_notice(&mut w).await["orderId"], n["orderId"]);
        }
    }
}

#[tokio::test]
async fn an_app_purchase_gets_a_tn_is_paid_in_unionpays_app_and_refunded() {
    let mut w = world().await;
    let attempt = AttemptId::generate(SystemClock.now());
    let app = support::app_payment(&attempt, PaymentMethod::UnionPay);
    let at = app.created_at;
    let start = w.connector.start(&app).await.unwrap();
    let params = start.app_params().unwrap();
    let [(name, tn)] = params else {
        panic!("{params:?}")
    };
    assert_eq!(name, "tn");
    assert!(
        tn.len() == 21 && tn.bytes().all(|b| b.is_ascii_digit()),
        "{tn}"
    );
    // Asking again for the same purchase finds the same tn.
    let again = w.connector.start(&app).await.unwrap();
    assert_eq!(again.app_params(), Some(params));

    // The merchant's app hands UnionPay's SDK the tn: the app shows the purchase.
    let opened = w
        .http
        .get(w.base.join(&format!("sim/unionpay/app/{tn}")).unwrap())
        .fetch()
        .await;
    assert_eq!(opened.status(), 200);
    let page = opened.text().await.unwrap();
    assert!(page.contains("App") && page.contains("12.34 CAD"), "{page}");
    let unknown = w
        .http
        .get(w.base.join("sim/unionpay/app/999").unwrap())
        .fetch()
        .await;
    assert_eq!(unknown.status(), 400);

    // Paid in the app: the buyer stays there; the notification is the result.
    let paid = press(&w, &attempt, "pay").await;
    assert_eq!(paid.status(), 200);
    assert!(paid.text().await.unwrap().contains("unionpay-done"));
    let n = next_notice(&mut w).await;
    assert!(w.connector.verify(&n));
    let Notice::Payment {
        query_id,
        resp_code,
        ..
    } = Notice::read(&n).unwrap()
    else {
        panic!("{n:?}")
    };
    assert_eq!(resp_code, "00");
    assert!(matches!(
        w.connector.query(&query_of(&attempt, at)).await.unwrap(),
        QueryResult::Paid { .. }
    ));
    let refund = support::refund(&attempt, &query_id, 1234);
    assert_eq!(
        w.connector.refund(&refund).await.unwrap(),
        RefundResult::Pending
    );
}
