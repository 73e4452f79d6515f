//! Alipay through the gateway: what Alipay sends is verified and checked before anything
//! changes, duplicates and reorderings change things once, and a lost notification is
//! recovered by asking.

use ottgate_channels::alipay::sign::{self, Params, SignType, SigningMaterial};
use ottgate_channels::alipay::simulator::FaultKind;
use ottgate_channels::alipay::{private_key_pem, testkeys};
use std::time::Duration;

use crate::harness::{Options, TestGateway, eventually, location};
use ottgate_testkit::Fetch;

/// Starts an Alipay payment on a new checkout and opens the simulated cashier (so Alipay
/// knows the trade). Returns the attempt (out_trade_no).
pub(crate) async fn alipay_attempt(t: &TestGateway, reference: &str) -> String {
    let created = t.create(reference).await;
    let chose = t.choose(&created.payinfo, "ALIPAY").await;
    let wallet = location(&chose);
    assert_eq!(t.http.get(&wallet).fetch().await.status(), 200);
    url::Url::parse(&wallet)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "out_trade_no")
        .unwrap()
        .1
        .into_owned()
}

/// The buyer pays at the cashier; the browser does not come back (only the notification
/// tells the gateway).
pub(crate) async fn pay_without_return(t: &TestGateway, out_trade_no: &str, action: &str) {
    let r = t
        .post(&format!("sim/alipay/cashier/{out_trade_no}"))
        .form(&[("action", action)])
        .fetch()
        .await;
    assert!(r.status().is_redirection(), "{}", r.status());
}

async fn fault(t: &TestGateway, kind: FaultKind, out_trade_no: &str) {
    t.fault("alipay", kind, out_trade_no).await;
}

/// A notification as Alipay would send it, signed with `key` (RSA2).
fn notification(fields: &[(&str, &str)], key: &str) -> String {
    let mut params: Params = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    params.insert("notify_type".into(), "trade_status_sync".into());
    params.insert(
        "notify_id".into(),
        "0000000000000000000000000000000001".into(),
    );
    let material = SigningMaterial::Rsa(Box::new(private_key_pem(key).unwrap()));
    let signature = sign::sign(&params, SignType::Rsa2, &material).unwrap();
    params.insert("sign_type".into(), "RSA2".into());
    params.insert("sign".into(), signature);
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter())
        .finish()
}

async fn post_notification(t: &TestGateway, body: String) -> String {
    let r = t
        .post("notify/alipay")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .fetch()
        .await;
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

#[tokio::test]
async fn forged_or_mismatched_notifications_change_nothing() {
    let t = TestGateway::start().await;
    let attempt = alipay_attempt(&t, "forged-1").await;
    let good = |fee: &'static str, currency: &'static str, out: &str| {
        vec![
            ("out_trade_no", out.to_owned()),
            ("trade_no", "2026112222001000000000000001".to_owned()),
            ("total_fee", fee.to_owned()),
            ("currency", currency.to_owned()),
            ("trade_status", "TRADE_FINISHED".to_owned()),
        ]
    };
    let as_refs = |v: &Vec<(&'static str, String)>| {
        v.iter().map(|(k, s)| (*k, s.clone())).collect::<Vec<_>>()
    };
    let cases = [
        // Signed with our own key instead of Alipay's.
        (
            as_refs(&good("12.34", "CAD", &attempt)),
            testkeys::MERCHANT_PRIVATE,
        ),
        // Alipay's key, but not the payment's amount or currency.
        (
            as_refs(&good("99.99", "CAD", &attempt)),
            testkeys::WALLET_PRIVATE,
        ),
        (
            as_refs(&good("12.34", "USD", &attempt)),
            testkeys::WALLET_PRIVATE,
        ),
        // Alipay's key, for a trade that is not ours.
        (
            as_refs(&good("12.34", "CAD", "17000000000000000")),
            testkeys::WALLET_PRIVATE,
        ),
    ];
    for (fields, key) in cases {
        let borrowed: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(
            post_notification(&t, notification(&borrowed, key)).await,
            "fail",
            "{fields:?}"
        );
    }
    // Unsigned and garbage bodies too.
    assert_eq!(
        post_notification(
            &t,
            format!("out_trade_no={attempt}&trade_status=TRADE_FINISHED")
        )
        .await,
        "fail"
    );
    assert_eq!(post_notification(&t, "%%%".into()).await, "fail");
    assert_eq!(t.attempt_status(&attempt).await, "init", "nothing changed");
    t.gateway.deliver_due().await.unwrap();
    assert!(
        t.receiver.received().is_empty(),
        "and nobody was told otherwise"
    );
    let metrics = t.page(t.base.join("metrics").unwrap()).await;
    assert!(
        metrics.contains("ottgate_wallet_notifications_total{outcome=\"rejected\"} 6"),
        "{metrics}"
    );

    // Everything right and signed with Alipay's key — but Alipay never sent it (its
    // notify_verify says false, as it would for a leaked key or a replay): refused.
    let crafted = good("12.34", "CAD", &attempt);
    let borrowed: Vec<(&str, &str)> = crafted.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        post_notification(&t, notification(&borrowed, testkeys::WALLET_PRIVATE)).await,
        "fail"
    );
    assert_eq!(t.attempt_status(&attempt).await, "init");
    // The genuine article, from Alipay after the buyer pays, is accepted.
    pay_without_return(&t, &attempt, "pay").await;
    t.wait_paid(&attempt).await;
    let metrics = t.page(t.base.join("metrics").unwrap()).await;
    assert!(
        metrics.contains("ottgate_wallet_notifications_total{outcome=\"rejected\"} 7"),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_unknown_trade_status_is_pending_never_paid() {
    let t = TestGateway::start().await;
    let attempt = alipay_attempt(&t, "unknown-status").await;
    for status in ["WAIT_BUYER_PAY", "TRADE_PENDING", "SOMETHING_NEW"] {
        let body = notification(
            &[
                ("out_trade_no", &attempt),
                ("trade_no", "1"),
                ("total_fee", "12.34"),
                ("currency", "CAD"),
                ("trade_status", status),
            ],
            testkeys::WALLET_PRIVATE,
        );
        assert_eq!(
            post_notification(&t, body).await,
            "success",
            "acknowledged: it is genuine"
        );
        assert_eq!(
            t.attempt_status(&attempt).await,
            "init",
            "{status} is not paid"
        );
    }
}

#[tokio::test]
async fn duplicated_and_reordered_notifications_apply_once_with_one_callback_each() {
    let t = TestGateway::start().await;
    let duplicated = alipay_attempt(&t, "dup-1").await;
    let held = alipay_attempt(&t, "reorder-1").await;
    let overtaking = alipay_attempt(&t, "reorder-2").await;
    fault(&t, FaultKind::Duplicate, &duplicated).await;
    fault(&t, FaultKind::Reorder, &held).await;
    pay_without_return(&t, &duplicated, "pay").await;
    pay_without_return(&t, &held, "pay").await; // held back...
    pay_without_return(&t, &overtaking, "pay").await; // ...until this one has gone
    for attempt in [&duplicated, &held, &overtaking] {
        eventually("the payment to be applied", || async {
            t.attempt_status(attempt).await == "success"
        })
        .await;
    }
    let bodies = t.receiver.wait_for(3).await;
    // Give a straggling duplicate every chance to do harm, then count.
    tokio::time::sleep(Duration::from_millis(300)).await;
    t.gateway.deliver_due().await.unwrap();
    assert_eq!(
        t.receiver.received().len(),
        3,
        "exactly one callback per payment"
    );
    let mut paid: Vec<String> = bodies
        .iter()
        .map(|b| t.client.verify_callback(b).unwrap().order_id)
        .collect();
    paid.sort();
    let mut expected = vec![duplicated, held, overtaking];
    expected.sort();
    assert_eq!(paid, expected);
    let metrics = t.page(t.base.join("metrics").unwrap()).await;
    assert!(
        metrics.contains("ottgate_settlements_total{outcome=\"paid\"} 3"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_stale_closed_after_paid_changes_nothing() {
    let t = TestGateway::start().await;
    let attempt = alipay_attempt(&t, "stale-1").await;
    pay_without_return(&t, &attempt, "pay").await;
    t.wait_paid(&attempt).await;
    let stale = notification(
        &[
            ("out_trade_no", &attempt),
            ("trade_no", "1"),
            ("total_fee", "12.34"),
            ("currency", "CAD"),
            ("trade_status", "TRADE_CLOSED"),
        ],
        testkeys::WALLET_PRIVATE,
    );
    assert_eq!(
        post_notification(&t, stale).await,
        "success",
        "acknowledged, so Alipay stops"
    );
    assert_eq!(t.attempt_status(&attempt).await, "success");
}

#[tokio::test]
async fn a_dropped_notification_is_recovered_by_reconciliation_before_expiry() {
    let t = TestGateway::with(Options {
        manual_clock: true,
        workers: false,
        ..Default::default()
    })
    .await;
    let attempt = alipay_attempt(&t, "dropped-1").await;
    fault(&t, FaultKind::Drop, &attempt).await;
    pay_without_return(&t, &attempt, "pay").await;
    tokio::time::sleep(Duration::from_millis(200)).await; // (nothing is coming)
    assert_eq!(t.attempt_status(&attempt).await, "init");
    assert_eq!(
        t.gateway.reconcile_due().await.unwrap(),
        0,
        "too early to ask"
    );
    t.advance(Duration::from_secs(61)); // well inside the 600 s order
    assert_eq!(t.gateway.reconcile_due().await.unwrap(), 1);
    assert_eq!(t.attempt_status(&attempt).await, "success");
    t.gateway.deliver_due().await.unwrap();
    let callback = t.client.verify_callback(&t.receiver.received()[0]).unwrap();
    assert_eq!(callback.order_id, attempt);
    assert_eq!(
        t.gateway.reconcile_due().await.unwrap(),
        0,
        "asked once, settled once"
    );
}

#[tokio::test]
async fn a_payment_closed_at_alipay_is_recovered_as_failed() {
    let t = TestGateway::with(Options {
        manual_clock: true,
        workers: false,
        ..Default::default()
    })
    .await;
    let attempt = alipay_attempt(&t, "closed-1").await;
    fault(&t, FaultKind::Drop, &attempt).await;
    pay_without_return(&t, &attempt, "fail").await;
    t.advance(Duration::from_secs(61));
    assert_eq!(t.gateway.reconcile_due().await.unwrap(), 1);
    let q = t.client.status_query(&attempt).await.unwrap();
    assert_eq!(
        (q.order_status.as_str(), q.state_code.as_str()),
        ("orderclosed", "P00008")
    );
    assert_eq!(
        t.client.prepay_query("closed-1").await.unwrap().status,
        "ORDERCLOSE"
    );
}

#[tokio::test]
async fn the_simulator_is_no_relay_to_urls_a_stranger_names() {
    // The simulator's test keys are public: anyone can sign a request naming any URL.
    let t = TestGateway::start().await;
    let mut params: Params = [
        ("service", "create_forex_trade"),
        ("partner", testkeys::PARTNER),
        ("_input_charset", "UTF-8"),
        ("out_trade_no", "STRANGER-1"),
        ("subject", "Anything"),
        ("total_fee", "1.00"),
        ("currency", "CAD"),
        ("product_code", "NEW_OVERSEAS_SELLER"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    // The receiver stands for any internal service; its path is not a gateway route.
    params.insert(
        "notify_url".into(),
        t.receiver_url.join("notify").unwrap().to_string(),
    );
    let md5 = SigningMaterial::Md5(ottgate_core::Secret::new(testkeys::MD5_KEY));
    let signature = sign::sign(&params, SignType::Md5, &md5).unwrap();
    params.insert("sign_type".into(), "MD5".into());
    params.insert("sign".into(), signature);
    let mut request = t.base.join("sim/alipay/gateway.do").unwrap();
    request.query_pairs_mut().extend_pairs(params.iter());
    assert_eq!(t.http.get(request).fetch().await.status(), 200);
    let paid = t
        .post("sim/alipay/cashier/STRANGER-1")
        .form(&[("action", "pay")])
        .fetch()
        .await;
    assert!(paid.status().is_success());
    // The simulator re-sends every few milliseconds at this time scale: long enough.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        t.receiver.received().is_empty(),
        "the simulator posted to a URL a stranger named"
    );
}

#[tokio::test]
async fn a_refund_whose_notification_is_lost_is_settled_by_alipays_refund_query() {
    let t = TestGateway::with(Options {
        manual_clock: true,
        workers: false,
        ..Default::default()
    })
    .await;
    let attempt = alipay_attempt(&t, "refund-lost-1").await;
    pay_without_return(&t, &attempt, "pay").await;
    t.wait_paid(&attempt).await;
    // Alipay refunds, but its refund notification never leaves.
    fault(&t, FaultKind::Drop, &attempt).await;
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
