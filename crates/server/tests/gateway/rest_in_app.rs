//! The REST in-app routes (`/api/v1/pay/alipay/inapp-pay`, `/unionpay/inapp-secure-pay`)
//! through the simulated wallets' apps: create, hand the SDK its string, pay in the app,
//! callback, status query, refund; Idempotency-Key, another merchant, bad input. All
//! through real HTTP.

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
async fn the_same_idempotency_key_replays_an_app_payment_and_others_see_nothing() {
    let t = TestGateway::start().await;
    let token = t.rest().token().await.unwrap();
    let body = app_body(&t);
    for path in [
        "api/v1/pay/alipay/inapp-pay",
        "api/v1/pay/unionpay/inapp-secure-pay",
    ] {
        let send = || {
            t.post(path)
                .bearer_auth(&token)
                .header("Idempotency-Key", "APP-KEY-1")
                .json(&body)
                .fetch()
        };
        let first = send().await;
        assert_eq!(first.status(), 200);
        let first = first.text().await.unwrap();
        let again = send().await;
        assert!(again.headers().contains_key("idempotent-replayed"));
        assert_eq!(again.text().await.unwrap(), first, "byte for byte");
        let payment: Value = serde_json::from_str(&first).unwrap();
        let id = payment["result"]["paymentId"].as_str().unwrap();
        let (_, other) = t.other_merchant().await;
        let theirs = other.status_query(id).await.unwrap_err();
        assert_eq!(theirs.rest_code(), Some(20019), "{theirs}");
        let refund = other.refund(id, "1").await.unwrap_err();
        assert!(refund.rest_code().is_some(), "{refund}");
    }
}

#[tokio::test]
async fn bad_input_on_the_in_app_routes_is_refused_by_name_and_makes_nothing() {
    let t = TestGateway::start().await;
    let orders = || async {
        let stats = t.gateway.state().service.stats().await.unwrap();
        stats.orders_by_status.iter().map(|(_, n)| n).sum::<u64>()
    };
    let before = orders().await;
    for path in [
        "api/v1/pay/alipay/inapp-pay",
        "api/v1/pay/unionpay/inapp-secure-pay",
    ] {
        for (field, value, expected) in [
            ("amount", Value::Null, "amount is required"),
            ("amount", json!("0"), "amount must be"),
            (
                "callbackURL",
                json!("ftp://x"),
                "callbackURL must be an absolute",
            ),
            (
                "remark",
                json!("r".repeat(129)),
                "remark must be at most 128",
            ),
            (
                "saleNumber",
                json!("s".repeat(33)),
                "saleNumber must be at most 32",
            ),
        ] {
            let mut body = app_body(&t);
            if value.is_null() {
                body.as_object_mut().unwrap().remove(field);
            } else {
                body[field] = value.clone();
            }
            let (status, answer) = post(&t, path, body).await;
            let message = answer["result"]["message"].as_str().unwrap_or_default();
            assert_eq!(
                (status, answer["result"]["code"].as_u64()),
                (400, Some(10005)),
                "{path} {field}={value}: {answer}"
            );
            assert!(message.contains(expected), "{path} {field}: {message}");
        }
    }
    let mut body = app_body(&t);
    body["userId"] = json!("u".repeat(65));
    let (status, answer) = post(&t, "api/v1/pay/alipay/inapp-pay", body).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["result"]["message"]
            .as_str()
            .unwrap()
            .contains("userId")
    );
    assert_eq!(orders().await, before, "nothing was created");
}
