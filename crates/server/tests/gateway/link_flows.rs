//! OTT Pay's link flows (`/h5Pay`, `/wapPay`, `/webPay`, `/inAppPay`): off until the merchant
//! switches them on; each paid through its simulator, its callback verified, its status
//! queried and refunded; a reload resumes; bad input refused by name with nothing made.
//! All through real HTTP.

use base64::Engine;
use ottgate_client::SignedReturn;
use ottgate_server::LinkChange;
use ottgate_testkit::{Fetch, eventually};
use serde_json::{Value, json};
use url::Url;

use crate::harness::{TestGateway, attribute, location, pay_at_wallet};

/// Switches the test merchant's link flows on, with h5Pay's callback URL.
async fn switch_on(t: &TestGateway) -> String {
    let link = ottgate_server::merchants::change_link_flows(
        &*t.gateway.state().service.store,
        t.merchant.merchant.id.as_str(),
        LinkChange {
            enabled: Some(true),
            callback_url: Some(t.receiver_url.join("notify").unwrap().to_string()),
        },
        true,
    )
    .await
    .unwrap();
    assert_eq!(link.mer_code, t.merchant.mer_code);
    link.mer_code
}

fn b64(url: &Url) -> String {
    base64::engine::general_purpose::STANDARD.encode(url.as_str())
}

/// An Alipay link (`wapPay` or `webPay`) for `amount` dollars with `orderId`.
fn alipay_link(t: &TestGateway, path: &str, order_id: &str, amount: &str) -> Url {
    let mut url = t.base.join(path).unwrap();
    url.query_pairs_mut()
        .append_pair("merCode", &t.merchant.mer_code)
        .append_pair("merchantId", t.merchant.merchant.id.as_str())
        .append_pair("orderId", order_id)
        .append_pair("operId", "01")
        .append_pair("amount", amount)
        .append_pair("returnURL", &b64(&t.receiver_url.join("return").unwrap()))
        .append_pair("notifyURL", &b64(&t.receiver_url.join("notify").unwrap()));
    url
}

/// How many orders the gateway holds, of any status.
async fn orders(t: &TestGateway) -> u64 {
    let stats = t.gateway.state().service.stats().await.unwrap();
    stats.orders_by_status.iter().map(|(_, n)| n).sum()
}

/// The one callback so far verifies and says paid: its payment id.
async fn paid_callback(t: &TestGateway, count: usize) -> String {
    let bodies = t.receiver.wait_for(count).await;
    let callback = t.client.verify_callback(&bodies[count - 1]).unwrap();
    assert_eq!(callback.order_status, "success");
    callback.order_id
}

/// Status by REST, then a 1.00 refund that shows once the wallet decides.
async fn queried_and_refunded(t: &TestGateway, payment_id: &str, method: &str, amount: &str) {
    let rest = t.rest();
    let status = rest.status_query(payment_id).await.unwrap();
    assert_eq!(
        (
            status.payment_status.as_str(),
            status.payment_method.as_str(),
            status.total_amount.as_str()
        ),
        ("success", method, amount)
    );
    rest.refund(payment_id, "100").await.unwrap();
    eventually("the refund", || async {
        rest.status_query(payment_id).await.unwrap().refund_amount == "100"
    })
    .await;
}

#[tokio::test]
async fn link_flows_are_refused_until_the_merchant_switches_them_on() {
    let t = TestGateway::start().await;
    let link = alipay_link(&t, "wapPay", "LINK-OFF-1", "10.50");
    let r = t.http.get(link.clone()).fetch().await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("merCode"));
    let body = json!({"merchant_id": t.merchant.merchant.id.as_str(), "amount": 100,
        "bizType": "ALIPAYONLINE", "call_back_url": t.receiver_url.join("notify").unwrap().as_str()});
    let r = t.post("inAppPay").json(&body).fetch().await;
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["rsp_code"], "FAIL");
    assert_eq!(orders(&t).await, 0, "nothing was created");
    switch_on(&t).await;
    assert_eq!(t.http.get(link).fetch().await.status(), 303);
}

#[tokio::test]
async fn wap_pay_and_web_pay_links_pay_at_alipay_and_come_back_signed() {
    let t = TestGateway::start().await;
    switch_on(&t).await;
    for (n, (path, order_id)) in [("wapPay", "LINK-WAP-1"), ("webPay", "LINK-WEB-1")]
        .into_iter()
        .enumerate()
    {
        let link = alipay_link(&t, path, order_id, "10.50");
        let wallet = location(&t.http.get(link.clone()).fetch().await);
        assert!(wallet.contains("/sim/alipay/gateway.do?"), "{wallet}");
        let product = if path == "wapPay" {
            "create_forex_trade_wap"
        } else {
            "service=create_forex_trade&"
        };
        assert!(wallet.contains(product), "{wallet}");
        // The same link again (a reload) goes to the same payment.
        let again = location(&t.http.get(link).fetch().await);
        let trade = |u: &str| {
            Url::parse(u)
                .unwrap()
                .query_pairs()
                .find(|(k, _)| k == "out_trade_no")
                .unwrap()
                .1
                .into_owned()
        };
        assert_eq!(trade(&again), trade(&wallet));

        let landed = pay_at_wallet(&t, &wallet, "paid").await;
        assert!(
            landed.starts_with(t.receiver_url.join("return").unwrap().as_str()),
            "{landed}"
        );
        let returned = t
            .client
            .verify_redirect(landed.split_once('?').unwrap().1)
            .unwrap();
        assert_eq!(
            (returned.out_trade_no.as_str(), returned.total_fee.as_str()),
            (order_id, "1050")
        );
        let payment_id = paid_callback(&t, n + 1).await;
        assert_eq!(payment_id, returned.trade_no);
        queried_and_refunded(&t, &payment_id, "ALIPAY", "1050").await;
        // Found by the merchant's orderId, as every reference.
        let by_reference = t.rest().status_query_by_reference(order_id).await.unwrap();
        assert_eq!(by_reference.payment_id, payment_id);
        // Paid: the link cannot start it again.
        let spent = t
            .http
            .get(alipay_link(&t, path, order_id, "10.50"))
            .fetch()
            .await;
        assert_eq!(spent.status(), 409);
    }
}

#[tokio::test]
async fn an_h5_pay_link_pays_inside_wechat_and_returns_to_new_url_with_a_sign() {
    let t = TestGateway::start().await;
    let mer_code = switch_on(&t).await;
    let mut link = t.base.join("h5Pay").unwrap();
    link.query_pairs_mut()
        .append_pair("merCode", &mer_code)
        .append_pair("orderId", "1733400000-42")
        .append_pair("amount", "12.5")
        .append_pair("newURL", t.receiver_url.join("return").unwrap().as_str());
    let page = location(&t.http.get(link).fetch().await);
    assert!(page.ends_with("/wechat"), "{page}");
    let sign_in = location(&t.http.get(&page).fetch().await);
    let back = location(&t.http.get(&sign_in).fetch().await);
    let html = t.http.get(&back).fetch().await.text().await.unwrap();
    let mut params: Value =
        serde_json::from_str(&attribute(&html, "wallet-card", "data-params")).unwrap();
    let next = attribute(&html, "wallet-card", "data-next");
    params["action"] = "pay".into();
    let paid: Value = t
        .post("sim/wechatpay/jsapi/pay")
        .json(&params)
        .fetch()
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(paid["err_msg"], "get_brand_wcpay_request:ok");

    let landed = Url::parse(&location(&t.http.get(&next).fetch().await)).unwrap();
    let q: std::collections::HashMap<String, String> = landed.query_pairs().into_owned().collect();
    assert_eq!(
        (
            q["amount"].as_str(),
            q["orderID"].as_str(),
            q["status"].as_str()
        ),
        ("12.50", "1733400000-42", "success")
    );
    let ours = ottgate_api::redirect::H5LinkReturn {
        amount: q["amount"].clone(),
        order_id: q["orderID"].clone(),
        tran_id: q["tranID"].clone(),
        status: q["status"].clone(),
    };
    assert!(ours.verify(&q["sign"], &t.merchant.sign_key), "{landed}");
    let forged = ottgate_api::redirect::H5LinkReturn {
        amount: "0.01".into(),
        ..ours
    };
    assert!(!forged.verify(&q["sign"], &t.merchant.sign_key));
    let payment_id = paid_callback(&t, 1).await;
    assert_eq!(payment_id, q["tranID"]);
    queried_and_refunded(&t, &payment_id, "WECHATPAY", "1250").await;
}

#[tokio::test]
async fn h5_pay_needs_the_merchants_link_callback_url() {
    let t = TestGateway::start().await;
    ottgate_server::merchants::change_link_flows(
        &*t.gateway.state().service.store,
        t.merchant.merchant.id.as_str(),
        LinkChange {
            enabled: Some(true),
            callback_url: None,
        },
        true,
    )
    .await
    .unwrap();
    let mut link = t.base.join("h5Pay").unwrap();
    link.query_pairs_mut()
        .append_pair("merCode", &t.merchant.mer_code)
        .append_pair("amount", "1")
        .append_pair("newURL", "https://shop.example/back");
    let r = t.http.get(link).fetch().await;
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("callback URL"));
    assert_eq!(orders(&t).await, 0);
}

#[tokio::test]
async fn in_app_pay_answers_what_each_wallets_sdk_takes() {
    let t = TestGateway::start().await;
    switch_on(&t).await;
    let callback = t.receiver_url.join("notify").unwrap().to_string();
    // As integrations call it: merchant_id, no merCode, the amount a number.
    let alipay = json!({"userId": "u-1", "amount": 300, "bizType": "ALIPAYONLINE",
        "merchant_id": t.merchant.merchant.id.as_str(), "operator_id": "01", "call_back_url": callback});
    let r = t.post("inAppPay").json(&alipay).fetch().await;
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["rsp_code"], "SUCCESS", "{answer}");
    let trade_no = answer["tradeNo"].as_str().unwrap().to_owned();
    let pay_sign = answer["paySign"].as_str().unwrap().to_owned();
    let opened = t.post("sim/alipay/app/pay").body(pay_sign).fetch().await;
    assert_eq!(opened.status(), 200);
    let pressed = t
        .post(&format!("sim/alipay/cashier/{trade_no}"))
        .form(&[("action", "pay")])
        .fetch()
        .await;
    assert_eq!(pressed.status(), 200);
    assert_eq!(
        paid_callback(&t, 1).await,
        trade_no,
        "the shop keys on tradeNo"
    );
    queried_and_refunded(&t, &trade_no, "ALIPAY", "300").await;

    // WeChat: the SDK's PayReq, and prepay_id; the amount a string; merCode this time.
    let wechat = json!({"userId": "wx0000000000000001", "amount": "200", "bizType": "WECHATPAY",
        "merCode": t.merchant.mer_code, "call_back_url": callback});
    let answer: Value = t
        .post("inAppPay")
        .json(&wechat)
        .fetch()
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["rsp_code"], "SUCCESS", "{answer}");
    assert_eq!(answer["prepay_id"], answer["prepayid"]);
    let trade_no = answer["tradeNo"].as_str().unwrap().to_owned();
    let mut req = answer.clone();
    req["action"] = "pay".into();
    let paid: Value = t
        .post("sim/wechatpay/app/pay")
        .json(&req)
        .fetch()
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(paid["errCode"], 0);
    assert_eq!(paid_callback(&t, 2).await, trade_no);
    queried_and_refunded(&t, &trade_no, "WECHATPAY", "200").await;
}

#[tokio::test]
async fn bad_links_are_refused_by_name_and_make_nothing() {
    let t = TestGateway::start().await;
    switch_on(&t).await;
    let good = alipay_link(&t, "wapPay", "LINK-BAD-1", "10.50");
    for (field, value, expected) in [
        ("merCode", "", "merCode is required"),
        (
            "merCode",
            "0123456789abcdef0123456789abcdef",
            "merCode: no merchant",
        ),
        ("merchantId", "ON99999999", "merchantId is not the merchant"),
        ("amount", "", "amount is required"),
        ("amount", "10.505", "amount must be"),
        ("amount", "0", "amount must be"),
        ("returnURL", "bm90IGEgdXJs", "returnURL must be an absolute"),
        ("notifyURL", "%%%", "notifyURL is not Base64"),
        ("orderId", "has space", "orderId must be"),
    ] {
        let mut link = good.clone();
        let pairs: Vec<(String, String)> = good
            .query_pairs()
            .into_owned()
            .map(|(k, v)| {
                if k == field {
                    (k, value.to_owned())
                } else {
                    (k, v)
                }
            })
            .collect();
        link.query_pairs_mut().clear().extend_pairs(pairs);
        let r = t.http.get(link).fetch().await;
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert!(
            matches!(status, 400 | 403),
            "{field}={value}: {status} {text}"
        );
        assert!(text.contains(expected), "{field}={value}: {text}");
    }
    for (body, expected) in [
        (json!([1]), "JSON object"),
        (
            json!({"bizType": "ALIPAYONLINE", "amount": 1}),
            "merCode or merchant_id is required",
        ),
        (
            json!({"merCode": t.merchant.mer_code, "bizType": "PAYPAL", "amount": 1}),
            "bizType must be",
        ),
        (
            json!({"merCode": t.merchant.mer_code, "bizType": "APUSDONLINE", "amount": 1, "call_back_url": "https://x.example/"}),
            "APUSDONLINE needs USD",
        ),
        (
            json!({"merCode": t.merchant.mer_code, "bizType": "WECHATPAY", "amount": 1.5}),
            "amount must be",
        ),
        (
            json!({"merCode": t.merchant.mer_code, "bizType": "WECHATPAY", "amount": 1}),
            "call_back_url is required",
        ),
    ] {
        let r = t.post("inAppPay").json(&body).fetch().await;
        assert_eq!(r.status(), 400, "{body}");
        let answer: Value = r.json().await.unwrap();
        let message = answer["rsp_msg"].as_str().unwrap();
        assert!(message.contains(expected), "{body}: {message}");
    }
    assert_eq!(orders(&t).await, 0, "nothing was created");
}
