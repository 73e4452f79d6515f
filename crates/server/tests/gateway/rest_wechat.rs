//! The REST WeChat Pay routes (`/api/v1/pay/weixin/active-pay`, `/h5-pay`, `/public-pay`)
//! through the
//! simulated WeChat Pay: create, pay, callback, status query, refund, Idempotency-Key, and
//! bad input refused by name. All through real HTTP.

use ottgate_testkit::Fetch;
use serde_json::{Value, json};

use crate::harness::{TestGateway, act_at_wechat, attribute, location, pay_at_wallet};

async fn token(t: &TestGateway) -> String {
    t.rest().token().await.unwrap()
}

async fn post(t: &TestGateway, path: &str, body: Value) -> (u16, Value) {
    t.rest_raw(path, Some(&token(t).await), body).await
}

/// How many orders the gateway holds, of any status.
async fn orders(t: &TestGateway) -> u64 {
    let stats = t.gateway.state().service.stats().await.unwrap();
    stats.orders_by_status.iter().map(|(_, n)| n).sum()
}

/// Checks the callback of `payment_id`, then its status, then refunds 1.00 of it.
async fn paid_then_refunded(t: &TestGateway, payment_id: &str, callbacks: usize) {
    let bodies = t.receiver.wait_for(callbacks).await;
    let callback = t.client.verify_callback(&bodies[callbacks - 1]).unwrap();
    assert_eq!(
        (callback.order_id.as_str(), callback.order_status.as_str()),
        (payment_id, "success")
    );
    assert!(!callback.bizpay_order_id.is_empty());
    let rest = t.rest();
    let status = rest.status_query(payment_id).await.unwrap();
    assert_eq!(
        (
            status.payment_status.as_str(),
            status.payment_method.as_str()
        ),
        ("success", "WECHATPAY")
    );
    let refund = rest.refund(payment_id, "100").await.unwrap();
    assert_eq!(refund.refund_status, "success");
    let status = rest.status_query(payment_id).await.unwrap();
    assert_eq!(
        (
            status.payment_status.as_str(),
            status.refund_amount.as_str()
        ),
        ("partial_refunded", "100")
    );
}

#[tokio::test]
async fn active_pay_is_a_code_the_buyer_scans_then_callback_status_and_refund() {
    let t = TestGateway::start().await;
    let mut body = t.pay_body(Some("WX-QR-1"));
    body.as_object_mut().unwrap().remove("returnURL");
    let (status, answer) = post(&t, "api/v1/pay/weixin/active-pay", body).await;
    assert_eq!(status, 200, "{answer}");
    let result = &answer["result"];
    let code = result["payInfo"].as_str().unwrap();
    assert!(code.starts_with("weixin://wxpay/bizpayurl?pr="), "{code}");
    assert_eq!(
        (result["merchantId"].as_str(), result["amount"].as_str()),
        (Some(t.merchant.merchant.id.as_str()), Some("1000"))
    );
    assert!(result.get("timeZoneId").is_none(), "{answer}");
    let payment_id = result["paymentId"].as_str().unwrap();
    let init = t.rest().status_query(payment_id).await.unwrap();
    assert_eq!(init.payment_status, "init");

    let mut scan = t.base.join("sim/wechatpay/scan").unwrap();
    scan.query_pairs_mut().append_pair("code_url", code);
    let paid = act_at_wechat(&t, scan.as_str(), "paid").await;
    assert!(paid.status().is_success(), "{}", paid.status());
    paid_then_refunded(&t, payment_id, 1).await;
    // The reference finds it, as for the Alipay routes.
    let by_reference = t.rest().status_query_by_reference("WX-QR-1").await.unwrap();
    assert_eq!(by_reference.payment_id, payment_id);
}

#[tokio::test]
async fn h5_pay_sends_the_phone_to_wechat_and_back_to_return_url() {
    let t = TestGateway::start().await;
    let (status, answer) = post(&t, "api/v1/pay/weixin/h5-pay", t.pay_body(None)).await;
    assert_eq!(status, 200, "{answer}");
    let result = &answer["result"];
    let pay_info = result["payInfo"].as_str().unwrap();
    assert!(pay_info.contains("/sim/wechatpay/checkmweb?"), "{pay_info}");
    assert_eq!(result["timeZoneId"], "America/Toronto");
    let payment_id = result["paymentId"].as_str().unwrap();

    let landed = pay_at_wallet(&t, pay_info, "paid").await;
    let back = t.receiver_url.join("return").unwrap();
    assert!(landed.starts_with(back.as_str()), "{landed}");
    let query = landed.split_once('?').unwrap().1;
    let returned = t.client.verify_redirect(query).unwrap();
    assert_eq!(returned.trade_no, payment_id);
    paid_then_refunded(&t, payment_id, 1).await;
}

#[tokio::test]
async fn the_same_idempotency_key_replays_a_wechat_or_in_app_payment_and_others_see_nothing() {
    let t = TestGateway::start().await;
    let token = token(&t).await;
    let body = t.pay_body(None);
    let send = |path: &'static str, key: &'static str| {
        t.post(path)
            .bearer_auth(&token)
            .header("Idempotency-Key", key)
            .json(&body)
            .fetch()
    };
    // The in-app routes too (they ignore returnURL).
    for path in [
        "api/v1/pay/weixin/h5-pay",
        "api/v1/pay/weixin/active-pay",
        "api/v1/pay/alipay/inapp-pay",
        "api/v1/pay/unionpay/inapp-secure-pay",
    ] {
        let first = send(path, "WX-KEY-1").await;
        assert_eq!(first.status(), 200);
        let first = first.text().await.unwrap();
        let again = send(path, "WX-KEY-1").await;
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
async fn bad_input_on_the_wechat_and_in_app_routes_is_refused_by_name_and_makes_nothing() {
    let t = TestGateway::start().await;
    let before = orders(&t).await;
    for path in [
        "api/v1/pay/weixin/active-pay",
        "api/v1/pay/weixin/h5-pay",
        "api/v1/pay/alipay/inapp-pay",
        "api/v1/pay/unionpay/inapp-secure-pay",
    ] {
        for (field, value, expected) in [
            ("amount", Value::Null, "amount is required"),
            ("amount", json!("12.50"), "amount must be"),
            ("callbackURL", Value::Null, "callbackURL is required"),
            (
                "callbackURL",
                json!("not a url"),
                "callbackURL must be an absolute",
            ),
            (
                "remark",
                json!("r".repeat(129)),
                "remark must be at most 128",
            ),
        ] {
            let mut body = t.pay_body(None);
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
    // h5-pay needs the page to come back to; active-pay has none.
    let mut body = t.pay_body(None);
    body.as_object_mut().unwrap().remove("returnURL");
    let (status, answer) = post(&t, "api/v1/pay/weixin/h5-pay", body).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["result"]["message"]
            .as_str()
            .unwrap()
            .contains("returnURL is required")
    );
    assert_eq!(orders(&t).await, before, "nothing was created");
}

/// What WeChat's JavaScript bridge posts for `getBrandWCPayRequest`: the page's signed
/// parameters, and the buyer's choice.
async fn bridge(t: &TestGateway, params: &Value, action: &str) -> String {
    let mut body = params.clone();
    body["action"] = action.into();
    let r = t.post("sim/wechatpay/jsapi/pay").json(&body).fetch().await;
    let answer: Value = r.json().await.unwrap();
    answer["err_msg"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn public_pay_signs_the_buyer_in_inside_wechat_and_pays_through_the_bridge() {
    let t = TestGateway::start().await;
    let body = t.pay_body(Some("WX-PUB-1"));
    let (status, answer) = post(&t, "api/v1/pay/weixin/public-pay", body).await;
    assert_eq!(status, 200, "{answer}");
    let pay_info = answer["result"]["payInfo"].as_str().unwrap().to_owned();
    let payment_id = answer["result"]["paymentId"].as_str().unwrap().to_owned();
    assert!(
        pay_info.starts_with(t.base.join("checkout/").unwrap().as_str()),
        "{pay_info}"
    );

    // Opened inside WeChat: WeChat signs the buyer in (snsapi_base) and sends them back.
    let sign_in = location(&t.http.get(&pay_info).fetch().await);
    assert!(
        sign_in.contains("/sim/wechatpay/connect/oauth2/authorize?"),
        "{sign_in}"
    );
    assert!(sign_in.contains("scope=snsapi_base") && sign_in.ends_with("#wechat_redirect"));
    let back = location(&t.http.get(&sign_in).fetch().await);
    assert!(
        back.starts_with(&pay_info) && back.contains("code="),
        "{back}"
    );
    let page = t.http.get(&back).fetch().await;
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let page = page.text().await.unwrap();
    assert!(csp.contains("/sim/wechatpay/jsbridge.js"), "{csp}");
    let params: Value =
        serde_json::from_str(&attribute(&page, "wallet-card", "data-params")).unwrap();
    let next = attribute(&page, "wallet-card", "data-next");
    assert!(
        params["package"]
            .as_str()
            .unwrap()
            .starts_with("prepay_id="),
        "{params}"
    );
    // The spent code again signs the buyer in once more instead of failing.
    let reloaded = location(&t.http.get(&back).fetch().await);
    assert!(reloaded.contains("connect/oauth2/authorize"), "{reloaded}");

    // WeChat checks paySign: a tampered one pays nothing.
    let mut forged = params.clone();
    forged["package"] = "prepay_id=wx000".into();
    assert_eq!(
        bridge(&t, &forged, "pay").await,
        "get_brand_wcpay_request:fail"
    );
    assert_eq!(
        t.rest()
            .status_query(&payment_id)
            .await
            .unwrap()
            .payment_status,
        "init"
    );
    assert_eq!(
        bridge(&t, &params, "cancel").await,
        "get_brand_wcpay_request:cancel"
    );
    assert_eq!(
        bridge(&t, &params, "pay").await,
        "get_brand_wcpay_request:ok"
    );

    // The page goes on to the return, which sends the buyer to returnURL, signed.
    let landed = location(&t.http.get(&next).fetch().await);
    let query = landed.split_once('?').unwrap().1;
    let returned = t.client.verify_redirect(query).unwrap();
    assert_eq!(
        (returned.trade_no.as_str(), returned.out_trade_no.as_str()),
        (payment_id.as_str(), "WX-PUB-1")
    );
    paid_then_refunded(&t, &payment_id, 1).await;
    // Opened again once paid: straight to the result, no second sign-in.
    assert_eq!(location(&t.http.get(&pay_info).fetch().await), next);
}
