//! WeChat Pay through the gateway: signed XML notifications verified and checked before
//! anything changes, a lost one recovered by asking, refunds answered at once.

use ottgate_channels::simkit::FaultKind;
use ottgate_channels::wechat::sign::{self, Fields, SignType};
use ottgate_channels::wechat::{parse_message, testkeys, to_xml};
use ottgate_core::Secret;
use std::time::Duration;

use crate::harness::{Options, TestGateway, attribute};
use ottgate_testkit::Fetch;

/// Starts a WeChat Pay payment from a desktop (a QR code) on a new checkout. Returns the
/// attempt (out_trade_no) and the simulator's "scanned" page.
pub(crate) async fn wechat_attempt(t: &TestGateway, reference: &str) -> (String, String) {
    let created = t.create(reference).await;
    let chose = t.choose(&created.payinfo, "WECHATPAY").await;
    assert_eq!(chose.status(), 200, "a QR page");
    let page = chose.text().await.unwrap();
    let scan = attribute(&page, "open-simulator", "href");
    let status = attribute(&page, "qr-card", "data-status-url");
    let attempt = status.rsplit('/').next().unwrap().to_owned();
    (attempt, scan)
}

/// The buyer pays (or fails) on the phone; only the notification tells the gateway.
pub(crate) async fn pay_on_phone(t: &TestGateway, scan: &str, action: &str) {
    let page = t.http.get(scan).fetch_text().await;
    let r = t
        .http
        .post(attribute(&page, "wechat-form", "action"))
        .form(&[("action", action)])
        .fetch()
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("wechat-done"));
}

async fn fault(t: &TestGateway, kind: FaultKind, out_trade_no: &str) {
    t.fault("wechatpay", kind, out_trade_no).await;
}

/// A payment notification as WeChat Pay sends it, signed with `key` as `sign_type`.
fn notification(fields: &[(&str, &str)], sign_type: SignType, key: &str) -> String {
    let mut f: Fields = [
        ("return_code", "SUCCESS"),
        ("result_code", "SUCCESS"),
        ("appid", testkeys::APPID),
        ("mch_id", testkeys::MCH_ID),
        ("nonce_str", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS"),
        ("transaction_id", "4200000000202611220000000001"),
        ("time_end", "20261122140000"),
    ]
    .iter()
    .chain(fields)
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    if sign_type == SignType::HmacSha256 {
        f.insert("sign_type".into(), "HMAC-SHA256".into());
    }
    let signature = sign::sign(&f, sign_type, &Secret::new(key));
    f.insert("sign".into(), signature);
    to_xml(&f)
}

/// Posts a notification; returns WeChat's `return_code` from our answer.
async fn post_notification(t: &TestGateway, body: String) -> String {
    let r = t
        .post("notify/wechatpay")
        .header("content-type", "text/xml")
        .body(body)
        .fetch()
        .await;
    assert_eq!(r.status(), 200);
    parse_message(&r.text().await.unwrap()).unwrap()["return_code"].clone()
}

#[tokio::test]
async fn forged_or_mismatched_notifications_change_nothing() {
    let t = TestGateway::start().await;
    let (attempt, _) = wechat_attempt(&t, "wx-forged-1").await;
    let key = testkeys::API_KEY;
    let hmac = SignType::HmacSha256;
    let about = |fee: &'static str, currency: &'static str, out: &str| {
        vec![
            ("out_trade_no", out.to_owned()),
            ("total_fee", fee.to_owned()),
            ("fee_type", currency.to_owned()),
        ]
    };
    let cases = [
        // Another key.
        (
            about("1234", "CAD", &attempt),
            hmac,
            "AnotherKeyAnotherKeyAnotherKey00",
        ),
        // The right key, but MD5 where the gateway signs with HMAC-SHA256.
        (about("1234", "CAD", &attempt), SignType::Md5, key),
        // Genuine, but not the payment's amount or currency, or not our trade.
        (about("1233", "CAD", &attempt), hmac, key),
        (about("1234", "USD", &attempt), hmac, key),
        (about("1234", "CAD", "17000000000000000"), hmac, key),
        // Genuine, but for another sub-merchant of the institution.
        (
            {
                let mut f = about("1234", "CAD", &attempt);
                f.push(("sub_mch_id", "1900000999".to_owned()));
                f
            },
            hmac,
            key,
        ),
    ];
    for (fields, sign_type, key) in cases {
        let borrowed: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(
            post_notification(&t, notification(&borrowed, sign_type, key)).await,
            "FAIL",
            "{fields:?} {sign_type:?}"
        );
    }
    assert_eq!(
        post_notification(&t, format!("<xml><out_trade_no>{attempt}</out_trade_no><total_fee>1234</total_fee><return_code>SUCCESS</return_code><result_code>SUCCESS</result_code></xml>")).await,
        "FAIL",
        "unsigned"
    );
    assert_eq!(post_notification(&t, "<xml><".into()).await, "FAIL");
    assert_eq!(t.attempt_status(&attempt).await, "init", "nothing changed");
    t.gateway.deliver_due().await.unwrap();
    assert!(t.receiver.received().is_empty());
    let metrics = t.page(t.base.join("metrics").unwrap()).await;
    assert!(
        metrics.contains("ottgate_wallet_notifications_total{outcome=\"rejected\"} 8"),
        "{metrics}"
    );

    let mut genuine = about("1234", "CAD", &attempt);
    genuine.push(("sub_mch_id", testkeys::SUB_MCH_ID.to_owned()));
    let borrowed: Vec<(&str, &str)> = genuine.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        post_notification(&t, notification(&borrowed, hmac, key)).await,
        "SUCCESS"
    );
    assert_eq!(t.attempt_status(&attempt).await, "success");
    // WeChat re-sending it changes nothing more.
    assert_eq!(
        post_notification(&t, notification(&borrowed, hmac, key)).await,
        "SUCCESS"
    );
    t.gateway.deliver_due().await.unwrap();
    assert_eq!(t.receiver.wait_for(1).await.len(), 1);
}

#[tokio::test]
async fn a_wechat_payment_is_refunded_at_once_at_wechat() {
    let t = TestGateway::start().await;
    let (attempt, scan) = wechat_attempt(&t, "wx-refund-1").await;
    pay_on_phone(&t, &scan, "pay").await;
    t.wait_paid(&attempt).await;
    let refund = t.client.refund(&attempt, "1000", None).await.unwrap();
    assert_eq!(refund.refund_status, "success", "WeChat answers at once");
    let too_much = t.client.refund(&attempt, "235", None).await.unwrap_err();
    assert_eq!(too_much.rsp_code(), Some("FAIL"));
    let rest = t.client.refund(&attempt, "234", None).await.unwrap();
    assert_eq!(rest.refund_status, "success");
    let q = t.client.status_query(&attempt).await.unwrap();
    assert_eq!(
        (q.order_status.as_str(), q.refund_amount.as_str()),
        ("fully_refunded", "1234")
    );
    // WeChat's own books agree.
    let order = t.wallet_books("wechatpay", &attempt).await;
    assert_eq!(
        (order["trade_state"].as_str(), order["refunded"].as_u64()),
        (Some("REFUND"), Some(1234))
    );
}

#[tokio::test]
async fn a_refund_whose_answer_is_lost_is_settled_by_refundquery() {
    let t = TestGateway::with(Options {
        manual_clock: true,
        workers: false,
        ..Default::default()
    })
    .await;
    let (attempt, scan) = wechat_attempt(&t, "wx-refund-lost").await;
    pay_on_phone(&t, &scan, "pay").await;
    t.wait_paid(&attempt).await;
    // WeChat refunds, but answers SYSTEMERROR: the outcome is unknown, the amount held.
    fault(&t, FaultKind::LoseAnswer, &attempt).await;
    let refund = t.client.refund(&attempt, "1000", None).await.unwrap();
    assert_eq!(refund.refund_status, "pending");
    assert_eq!(t.refunded(&attempt).await, "0");
    let err = t.client.refund(&attempt, "235", None).await.unwrap_err();
    assert_eq!(err.rsp_code(), Some("FAIL"), "1000 is held");
    t.advance(Duration::from_secs(61));
    assert_eq!(t.gateway.reconcile_due().await.unwrap(), 1);
    assert_eq!(t.refunded(&attempt).await, "1000");
    assert_eq!(t.gateway.reconcile_due().await.unwrap(), 0);
}
