//! UnionPay through the gateway: the signed form the buyer's browser carries, signed
//! `backUrl` notifications verified and checked before anything changes, a lost one
//! recovered by `queryTrans`, refunds decided by notification.

use ottgate_channels::alipay::{private_key_pem, testkeys as keys};
use ottgate_channels::simkit::{Fault, FaultKind};
use ottgate_channels::unionpay::sign::{self, Fields};
use ottgate_channels::unionpay::testkeys;
use std::time::Duration;

use crate::harness::{Options, TestGateway, attribute, eventually, hidden_inputs};
use ottgate_testkit::Fetch;

/// Chooses UnionPay on a new checkout and lets the browser post our signed form to the
/// simulated UnionPay. Returns the attempt (UnionPay's orderId) and its cashier page.
pub(crate) async fn unionpay_attempt(t: &TestGateway, reference: &str) -> (String, String) {
    let created = t.create(reference).await;
    let chose = t.choose(&created.payinfo, "UNIONPAY").await;
    assert_eq!(chose.status(), 200, "the auto-submitted form");
    let page = chose.text().await.unwrap();
    let fields = hidden_inputs(&page);
    let attempt = fields
        .iter()
        .find(|(k, _)| k == "orderId")
        .unwrap()
        .1
        .clone();
    let cashier = t
        .http
        .post(attribute(&page, "wallet-form", "action"))
        .form(&fields)
        .fetch()
        .await;
    assert_eq!(cashier.status(), 200);
    (attempt, cashier.text().await.unwrap())
}

/// The buyer presses `action` at the cashier, then closes the tab: only the notification
/// tells the gateway.
pub(crate) async fn press(t: &TestGateway, cashier: &str, action: &str) {
    let r = t
        .http
        .post(attribute(cashier, "unionpay-form", "action"))
        .form(&[("action", action)])
        .fetch()
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("unionpay-return"));
}

/// A notification as UnionPay sends it, signed with `private_pem`.
fn notification(fields: &[(&str, &str)], private_pem: &str) -> String {
    let mut f: Fields = [
        ("version", "5.1.0"),
        ("encoding", "UTF-8"),
        ("signMethod", "01"),
        ("certId", testkeys::WALLET_CERT_ID),
        ("merId", testkeys::MER_ID),
        ("txnTime", "20261122140000"),
        ("txnSubType", "01"),
        ("bizType", "000201"),
        ("accessType", "0"),
        ("queryId", "202611221400001234567"),
        ("respMsg", "success"),
    ]
    .iter()
    .chain(fields)
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let signature = sign::sign(&f, &private_key_pem(private_pem).unwrap());
    f.insert("signature".into(), signature);
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(f.iter())
        .finish()
}

fn payment<'a>(order_id: &'a str, amount: &'a str, currency: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("txnType", "01"),
        ("orderId", order_id),
        ("txnAmt", amount),
        ("currencyCode", currency),
        ("respCode", "00"),
    ]
}

/// Posts a notification; returns our HTTP status (200 acknowledges).
async fn post_notification(t: &TestGateway, body: String) -> u16 {
    t.http
        .post(t.base.join("notify/unionpay").unwrap())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .fetch()
        .await
        .status()
        .as_u16()
}

#[tokio::test]
async fn forged_or_mismatched_notifications_change_nothing() {
    let t = TestGateway::start().await;
    let (attempt, _) = unionpay_attempt(&t, "up-forged-1").await;
    let (_, body) = t
        .complete(&t.create("up-forged-2").await.payinfo, "GP", "paid")
        .await;
    let card = body["order_id"].as_str().unwrap().to_owned();
    let wallet = keys::WALLET_PRIVATE;
    let cases = [
        // Signed with another key (ours, not UnionPay's).
        (payment(&attempt, "1234", "124"), keys::MERCHANT_PRIVATE),
        // Genuine, but not the payment's amount or currency.
        (payment(&attempt, "1233", "124"), wallet),
        (payment(&attempt, "1234", "840"), wallet),
        // Not our order, or not a UnionPay payment.
        (payment("17000000000000000", "1234", "124"), wallet),
        (payment(&card, "1234", "124"), wallet),
        // Genuine, but for another merchant account at UnionPay.
        (
            {
                let mut f = payment(&attempt, "1234", "124");
                f.push(("merId", "777290058110049"));
                f
            },
            wallet,
        ),
    ];
    for (fields, key) in &cases {
        assert_eq!(
            post_notification(&t, notification(fields, key)).await,
            400,
            "{fields:?}"
        );
    }
    // Unsigned, and not a form at all.
    let unsigned = format!("txnType=01&orderId={attempt}&txnAmt=1234&currencyCode=124&respCode=00");
    assert_eq!(post_notification(&t, unsigned).await, 400);
    assert_eq!(post_notification(&t, "\u{0}garbage".into()).await, 400);
    assert_eq!(t.attempt_status(&attempt).await, "init", "nothing changed");
    t.gateway.deliver_due().await.unwrap();
    assert_eq!(
        t.receiver.received().len(),
        1,
        "only the card payment's callback"
    );
    let metrics = t.page(t.base.join("metrics").unwrap()).await;
    assert!(
        metrics.contains("ottgate_wallet_notifications_total{outcome=\"rejected\"} 8"),
        "{metrics}"
    );

    // A status UnionPay has not decided yet changes nothing either, but is acknowledged.
    let mut undecided = payment(&attempt, "1234", "124");
    undecided[4] = ("respCode", "05");
    assert_eq!(
        post_notification(&t, notification(&undecided, wallet)).await,
        200
    );
    assert_eq!(t.attempt_status(&attempt).await, "init");

    let genuine = notification(&payment(&attempt, "1234", "124"), wallet);
    assert_eq!(post_notification(&t, genuine.clone()).await, 200);
    assert_eq!(t.attempt_status(&attempt).await, "success");
    // UnionPay re-sending it changes nothing more.
    assert_eq!(post_notification(&t, genuine).await, 200);
    t.gateway.deliver_due().await.unwrap();
    let callbacks = t.receiver.wait_for(2).await;
    assert_eq!(callbacks.len(), 2);
    let callback = t.client.verify_callback(&callbacks[1]).unwrap();
    assert_eq!(
        (
            callback.order_id.as_str(),
            callback.bizpay_order_id.as_str()
        ),
        (attempt.as_str(), "202611221400001234567")
    );
}

#[tokio::test]
async fn a_unionpay_refund_is_pending_until_unionpay_notifies() {
    let t = TestGateway::start().await;
    let (attempt, cashier) = unionpay_attempt(&t, "up-refund-1").await;
    press(&t, &cashier, "pay").await;
    t.wait_paid(&attempt).await;
    let refund = t
        .client
        .refund(&attempt, "1000", Some("r-1"))
        .await
        .unwrap();
    assert_eq!(refund.refund_status, "pending", "UnionPay decides later");
    // The pending amount is held: only 234 is left.
    let too_much = t.client.refund(&attempt, "235", None).await.unwrap_err();
    assert_eq!(too_much.rsp_code(), Some("FAIL"));
    eventually("the refund notification", || async {
        t.client.status_query(&attempt).await.unwrap().refund_amount == "1000"
    })
    .await;
    let again = t
        .client
        .refund(&attempt, "1000", Some("r-1"))
        .await
        .unwrap();
    assert_eq!(
        (again.refund_status.as_str(), again.refund_id.as_str()),
        ("success", refund.refund_id.as_str())
    );

    // A refund notification for an amount we did not ask is refused; the refund stays
    // pending.
    let rest = t.client.refund(&attempt, "234", None).await.unwrap();
    let query_id = t
        .client
        .status_query(&attempt)
        .await
        .unwrap()
        .bizpay_order_id
        .unwrap();
    let forged = notification(
        &[
            ("txnType", "04"),
            ("txnSubType", "00"),
            ("orderId", rest.refund_id.as_str()),
            ("origQryId", query_id.as_str()),
            ("txnAmt", "1234"),
            ("currencyCode", "124"),
            ("respCode", "00"),
        ],
        keys::WALLET_PRIVATE,
    );
    assert_eq!(post_notification(&t, forged).await, 400);
    eventually("the real refund notification", || async {
        t.client.status_query(&attempt).await.unwrap().order_status == "fully_refunded"
    })
    .await;
    // UnionPay's own books agree.
    let order = t.wallet_books("unionpay", &attempt).await;
    assert_eq!(order["refunded"].as_u64(), Some(1234));
}

#[tokio::test]
async fn a_refund_whose_notification_is_lost_is_settled_by_asking() {
    let t = TestGateway::with(Options {
        manual_clock: true,
        workers: false,
        ..Default::default()
    })
    .await;
    let (attempt, cashier) = unionpay_attempt(&t, "up-refund-lost").await;
    press(&t, &cashier, "pay").await;
    t.wait_paid(&attempt).await;
    // The next notification (the refund's) never leaves UnionPay.
    let drop_next = Fault {
        kind: FaultKind::Drop,
        out_trade_no: None,
        delay_ms: None,
    };
    let r = t
        .post("sim/unionpay/control")
        .json(&drop_next)
        .fetch()
        .await;
    assert_eq!(r.status(), 204);
    let refund = t.client.refund(&attempt, "1000", None).await.unwrap();
    assert_eq!(refund.refund_status, "pending");
    tokio::time::sleep(Duration::from_millis(200)).await; // (nothing is coming)
    assert_eq!(t.refunded(&attempt).await, "0");
    assert_eq!(t.gateway.reconcile_due().await.unwrap(), 0, "too early");
    t.advance(Duration::from_secs(61));
    assert_eq!(t.gateway.reconcile_due().await.unwrap(), 1);
    assert_eq!(t.refunded(&attempt).await, "1000");
    assert_eq!(
        t.gateway.reconcile_due().await.unwrap(),
        0,
        "settled: not asked again"
    );
    // Only 234 is left to refund.
    let err = t.client.refund(&attempt, "235", None).await.unwrap_err();
    assert_eq!(err.rsp_code(), Some("FAIL"));
}
