//! The REST in-app routes (`/api/v1/pay/alipay/inapp-pay`, `/unionpay/inapp-secure-pay`)
//! through the simulated wallets' apps: create, hand the SDK its string, pay in the app,
//! callback, status query, refund; bad input (their Idempotency-Key and another merchant's
//! view are in rest_wechat.rs, with the WeChat routes'). All through real HTTP.

use ottgate_testkit::{Fetch, eventually};
use serde_json::{Value, json};

use crate::harness::TestGateway;

async fn post(t: &TestGateway, path: &str, body: Value) -> (u16, Value) {
    let token = t.rest().token().await.unwrap();
    t.rest_raw(path, Some(&token), body).await
}

/// An app payment's body: no returnURL (there is no browser to send back).
fn app_body(t: &TestGateway) -> Value {
    let mut body = t.pay_body(None);
    body.as_object_mut().unwrap().remove("returnURL");
    body
}

/// The buyer presses `action` at the simulated wallet's cashier of `payment_id`.
async fn press(t: &TestGateway, wallet: &str, payment_id: &str, action: &str) {
    let cashier = t
        .base
        .join(&format!("sim/{wallet}/cashier/{payment_id}"))
        .unwrap();
    let done = t
        .http
        .post(cashier)
        .form(&[("action", action)])
        .fetch()
        .await;
    assert_eq!(done.status(), 200, "paid in the app, which stays open");
}

/// The callback of `payment_id` verifies and says paid; its status says so by `method`;
/// a refund of 1.00 is taken and, once the wallet decides, shows.
async fn paid_then_refunded(t: &TestGateway, payment_id: &str, method: &str) {
    let bodies = t.receiver.wait_for(1).await;
    let callback = t.client.verify_callback(&bodies[0]).unwrap();
    assert_eq!(
        (callback.order_id.as_str(), callback.order_status.as_str()),
        (payment_id, "success")
    );
    let rest = t.rest();
    let status = rest.status_query(payment_id).await.unwrap();
    assert_eq!(
        (
            status.payment_status.as_str(),
            status.payment_method.as_str()
        ),
        ("success", method)
    );
    let refund = rest.refund(payment_id, "100").await.unwrap();
    assert!(
        ["pending", "success"].contains(&refund.refund_status.as_str()),
        "{refund:?}"
    );
    eventually("the refund", || async {
        rest.status_query(payment_id).await.unwrap().refund_amount == "100"
    })
    .await;
}

#[tokio::test]
async fn alipay_in_app_pay_signs_for_the_sdk_and_is_paid_in_alipays_app() {
    let t = TestGateway::start().await;
    let mut body = app_body(&t);
    body["userId"] = json!("buyer-in-app-7");
    body["saleNumber"] = json!("SALE-0042");
    let (status, answer) = post(&t, "api/v1/pay/alipay/inapp-pay", body).await;
    assert_eq!(status, 200, "{answer}");
    let result = &answer["result"];
    assert_eq!(
        result["amount"], "10.00",
        "shown in dollars, as OTT Pay does"
    );
    let payment_id = result["paymentId"].as_str().unwrap();
    let pay_sign = result["paySign"].as_str().unwrap();
    let params: Value = serde_json::from_str(pay_sign).unwrap();
    assert_eq!(params["service"], "mobile.securitypay.pay");
    assert_eq!(params["out_trade_no"], payment_id);
    assert_eq!(
        (params["total_fee"].as_str(), params["currency"].as_str()),
        (Some("10.00"), Some("CAD"))
    );
    assert_eq!(
        t.rest()
            .status_query(payment_id)
            .await
            .unwrap()
            .payment_status,
        "init"
    );

    // The merchant's app hands Alipay's SDK the string as it came.
    let opened = t
        .http
        .post(t.base.join("sim/alipay/app/pay").unwrap())
        .body(pay_sign.to_owned())
        .fetch()
        .await;
    assert_eq!(opened.status(), 200);
    press(&t, "alipay", payment_id, "pay").await;
    paid_then_refunded(&t, payment_id, "ALIPAY").await;
}

#[tokio::test]
async fn unionpay_in_app_secure_pay_gives_a_tn_paid_in_unionpays_app() {
    let t = TestGateway::start().await;
    let (status, answer) = post(&t, "api/v1/pay/unionpay/inapp-secure-pay", app_body(&t)).await;
    assert_eq!(status, 200, "{answer}");
    let result = &answer["result"];
    assert_eq!(
        (
            result["encoding"].as_str(),
            result["merchantId"].as_str(),
            result["amount"].as_str()
        ),
        (
            Some("UTF-8"),
            Some(t.merchant.merchant.id.as_str()),
            Some("1000")
        )
    );
    let payment_id = result["paymentId"].as_str().unwrap();
    let tn = result["tn"].as_str().unwrap();
    let opened = t
        .http
        .get(t.base.join(&format!("sim/unionpay/app/{tn}")).unwrap())
        .fetch()
        .await;
    assert_eq!(opened.status(), 200);
    press(&t, "unionpay", payment_id, "pay").await;
    paid_then_refunded(&t, payment_id, "UNIONPAY").await;
}

#[tokio::test]
async fn the_sandbox_helper_pays_an_app_payment_as_its_buyer() {
    let t = TestGateway::start().await;
    for (path, method) in [
        ("api/v1/pay/alipay/inapp-pay", "ALIPAY"),
        ("api/v1/pay/unionpay/inapp-secure-pay", "UNIONPAY"),
    ] {
        let (status, answer) = post(&t, path, app_body(&t)).await;
        assert_eq!(status, 200, "{answer}");
        let payment_id = answer["result"]["paymentId"].as_str().unwrap();
        let done = t
            .post(&format!("sandbox/v1/payments/{payment_id}/complete"))
            .json(&json!({"outcome": "paid"}))
            .fetch()
            .await;
        assert_eq!(done.status(), 200, "{path}");
        eventually("the payment", || async {
            let s = t.rest().status_query(payment_id).await.unwrap();
            s.payment_status == "success" && s.payment_method == method
        })
        .await;
    }
}

#[tokio::test]
async fn the_in_app_fields_are_checked_by_name_and_make_nothing() {
    // (amount, callbackURL, remark: with the WeChat routes' in rest_wechat.rs.)
    let t = TestGateway::start().await;
    let stats = || async {
        let stats = t.gateway.state().service.stats().await.unwrap();
        stats.orders_by_status.iter().map(|(_, n)| n).sum::<u64>()
    };
    for (path, field, value, expected) in [
        (
            "api/v1/pay/alipay/inapp-pay",
            "saleNumber",
            "s".repeat(33),
            "saleNumber must be at most 32",
        ),
        (
            "api/v1/pay/alipay/inapp-pay",
            "userId",
            "u".repeat(65),
            "userId",
        ),
    ] {
        let mut body = app_body(&t);
        body[field] = json!(value);
        let (status, answer) = post(&t, path, body).await;
        assert_eq!(status, 400, "{answer}");
        let message = answer["result"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{field}: {message}");
    }
    assert_eq!(stats().await, 0, "nothing was created");
}
