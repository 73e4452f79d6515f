//! What real OTT Pay integrations send and expect beyond the published pages (issue 20):
//! no `null` anywhere, `operator_id` left out, the card integrations' `orderId`, a REST
//! `remark` that stands for the reference. All through real HTTP.

use ottgate_client::{Fields, prepay_fields, query_fields};
use ottgate_testkit::Fetch;
use serde_json::{Value, json};

use crate::harness::{TestGateway, buyer_pays};

/// Every place in `value` that holds a JSON null, as paths.
fn nulls(value: &Value, at: &str, found: &mut Vec<String>) {
    match value {
        Value::Null => found.push(at.to_owned()),
        Value::Object(members) => {
            for (name, v) in members {
                nulls(v, &format!("{at}.{name}"), found);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                nulls(v, &format!("{at}[{i}]"), found);
            }
        }
        _ => {}
    }
}

fn assert_no_null(what: &str, text: &str) {
    let value: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{what}: {e}: {text}"));
    let mut found = Vec::new();
    nulls(&value, what, &mut found);
    assert!(found.is_empty(), "null at {found:?} in {text}");
}

fn fields(value: Value) -> Fields {
    match value {
        Value::Object(fields) => fields,
        other => panic!("not an object: {other}"),
    }
}

/// Sends `action` and checks its decrypted answer has no null; returns the answer.
async fn envelope(t: &TestGateway, action: &str, version: &str, data: Fields) -> Value {
    let exchange = t.client.exchange(action, version, data).await.unwrap();
    assert_eq!(
        exchange.response.rsp_code, "SUCCESS",
        "{action}: {}",
        exchange.response.rsp_msg
    );
    let plaintext = exchange.response_plaintext.unwrap();
    assert_no_null(action, &plaintext);
    serde_json::from_str(&plaintext).unwrap()
}

/// POSTs a REST call with a fresh token and checks the whole answer has no null.
async fn rest(t: &TestGateway, path: &str, body: Value) -> Value {
    let token = t.rest().token().await.unwrap();
    let (status, answer) = t.rest_raw(path, Some(&token), body).await;
    assert_eq!(status, 200, "{path}: {answer}");
    assert_no_null(path, &answer.to_string());
    answer
}

async fn complete(t: &TestGateway, payment_id: &str) {
    let r = t
        .post(&format!("sandbox/v1/payments/{payment_id}/complete"))
        .json(&json!({"outcome": "paid"}))
        .fetch()
        .await;
    assert_eq!(r.status(), 200, "{payment_id}");
}

/// The fields an ACTIVEPAY or H5PAY from the integrations that send least: no operator,
/// no remarks, no currency.
fn least(t: &TestGateway, order_id: &str, biz_type: &str) -> Fields {
    fields(json!({
        "order_id": order_id,
        "amount": "1234",
        "biz_type": biz_type,
        "call_back_url": t.receiver_url.join("notify").unwrap().to_string(),
    }))
}

#[tokio::test]
async fn no_answer_callback_or_redirect_carries_a_null() {
    let t = crate::harness::TestGateway::with(crate::harness::Options {
        passive_pay_wait_ms: Some(200),
        ..crate::harness::Options::default()
    })
    .await;
    let mut callbacks = 0;

    // Checkout, without the optional email and remarks: before and after paying.
    let mut order = t.order("NN-1");
    order.remarks = None;
    let init = envelope(&t, "PREPAY_INIT", "2.0", prepay_fields(&order)).await;
    let merchant = t.merchant.merchant.id.as_str();
    let query = query_fields(merchant, "NN-1");
    let unchosen = envelope(&t, "PREPAY_QUERY", "2.0", query.clone()).await;
    assert!(unchosen.get("order_id").is_none(), "absent, not null");
    let payinfo = init["payinfo"].as_str().unwrap();
    let landed = buyer_pays(&t, payinfo, "ALIPAY", "paid").await;
    assert!(!landed.contains("null"), "{landed}");
    callbacks += 1;
    envelope(&t, "PREPAY_QUERY", "2.0", query).await;

    // ACTIVEPAY and H5PAY as the thinnest integrations send them; STATUS_QUERY before
    // the wallet has a transaction, after, and REFUND.
    for (order_id, action, version, biz_type) in [
        ("NN-A", "ACTIVEPAY", "1.0", "WECHATPAY"),
        ("NN-H", "H5PAY", "2.0", "WECHATPAY"),
    ] {
        envelope(&t, action, version, least(&t, order_id, biz_type)).await;
        let status = fields(json!({ "order_id": order_id }));
        let unpaid = envelope(&t, "STATUS_QUERY", "1.0", status.clone()).await;
        assert!(unpaid.get("bizpay_order_id").is_none(), "{unpaid}");
        complete(&t, order_id).await;
        callbacks += 1;
        envelope(&t, "STATUS_QUERY", "1.0", status).await;
        let refund = fields(json!({"ori_order_id": order_id, "refund_amt": "100"}));
        envelope(&t, "REFUND", "1.0", refund).await;
    }
    envelope(
        &t,
        "EX_RATE_QUERY",
        "1.0",
        fields(json!({"fee_type": "CAD"})),
    )
    .await;

    // REST, without remark: every route.
    let mut body = t.pay_body(Some("NN-R"));
    body.as_object_mut().unwrap().remove("remark");
    let paid = rest(&t, "api/v1/pay/alipay/wap-pay", body.clone()).await;
    body["reference"] = "NN-W".into();
    rest(&t, "api/v1/pay/alipay/web-pay", body.clone()).await;
    body["reference"] = "NN-X".into();
    rest(&t, "api/v1/pay/weixin/h5-pay", body.clone()).await;
    body["reference"] = "NN-P".into();
    rest(&t, "api/v1/pay/weixin/public-pay", body.clone()).await;
    body["reference"] = "NN-Q".into();
    let qr = rest(&t, "api/v1/pay/weixin/active-pay", body.clone()).await;
    body["reference"] = "NN-IA".into();
    let alipay_app = rest(&t, "api/v1/pay/alipay/inapp-pay", body.clone()).await;
    let alipay_app = alipay_app["result"]["paymentId"]
        .as_str()
        .unwrap()
        .to_owned();
    complete(&t, &alipay_app).await;
    callbacks += 1;
    body["reference"] = "NN-IU".into();
    rest(&t, "api/v1/pay/unionpay/inapp-secure-pay", body).await;
    let qr_payment = qr["result"]["paymentId"].as_str().unwrap().to_owned();
    complete(&t, &qr_payment).await;
    callbacks += 1;
    let payment_id = paid["result"]["paymentId"].as_str().unwrap().to_owned();
    let by_id = json!({ "paymentId": payment_id });
    rest(&t, "api/v1/payment/status-query", by_id.clone()).await;
    complete(&t, &payment_id).await;
    callbacks += 1;
    rest(&t, "api/v1/payment/status-query", by_id).await;
    let by_reference = json!({"reference": "NN-R"});
    rest(&t, "api/v1/payment/status-query-by-reference", by_reference).await;
    let refund = json!({"oriPaymentId": payment_id, "refundAmount": "100"});
    rest(&t, "api/v1/pay/refund", refund).await;
    let token = t.rest().token().await.unwrap();
    let events = t
        .get("api/v1/events")
        .bearer_auth(token)
        .fetch()
        .await
        .text()
        .await
        .unwrap();
    assert_no_null("events", &events);

    // The link flows: inAppPay's plain JSON answer, and a link payment's callback.
    ottgate_server::merchants::change_link_flows(
        &*t.gateway.state().service.store,
        t.merchant.merchant.id.as_str(),
        ottgate_server::LinkChange {
            enabled: Some(true),
            callback_url: None,
        },
        true,
    )
    .await
    .unwrap();
    for biz_type in ["ALIPAYONLINE", "WECHATPAY"] {
        let in_app = json!({"merCode": t.merchant.mer_code, "amount": 100, "bizType": biz_type,
            "call_back_url": t.receiver_url.join("notify").unwrap().to_string()});
        let answer = t
            .post("inAppPay")
            .json(&in_app)
            .fetch()
            .await
            .text()
            .await
            .unwrap();
        assert_no_null("inAppPay", &answer);
        let trade_no = serde_json::from_str::<Value>(&answer).unwrap()["tradeNo"]
            .as_str()
            .unwrap()
            .to_owned();
        complete(&t, &trade_no).await;
        callbacks += 1;
    }

    // Cards: CC_PURCHASE and CC_QUERYPAY answers, the card callback.
    let txn_time = t.gateway.state().service.clock.now().beijing_compact();
    let card = fields(
        json!({"orderId": "NNCARD1", "txnTime": txn_time, "txnAmt": "100",
        "frontUrl": t.receiver_url.join("return").unwrap().to_string(),
        "backUrl": t.receiver_url.join("notify").unwrap().to_string(),
        "channelType": "ELAVONECOM", "bizType": "converge_hosted"}),
    );
    let purchased = t
        .client
        .exchange_at("processV3", "CC_PURCHASE", "2.0", card)
        .await
        .unwrap();
    let plaintext = purchased.response_plaintext.unwrap();
    assert_no_null("CC_PURCHASE", &plaintext);
    let code_url = serde_json::from_str::<Value>(&plaintext).unwrap()["codeUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    let card_paid = ottgate_testkit::pay_with_card(&t.http, &code_url, "4111111111111111").await;
    assert_eq!(card_paid.status(), 303);
    callbacks += 1;
    let query = fields(json!({"orderId": "NNCARD1"}));
    let queried = t
        .client
        .exchange("CC_QUERYPAY", "2.0", query)
        .await
        .unwrap();
    assert_no_null("CC_QUERYPAY", &queried.response_plaintext.unwrap());

    // CC_PREAUTH, and the REST local-card routes: authorised, captured (called back),
    // reversed, refunded.
    let preauth = fields(
        json!({"orderId": "NNPRE1", "txnTime": txn_time, "txnAmt": "100",
        "frontUrl": t.receiver_url.join("return").unwrap().to_string(),
        "backUrl": t.receiver_url.join("notify").unwrap().to_string(),
        "channelType": "ELAVONECOM", "bizType": "converge_hosted"}),
    );
    let held = envelope(&t, "CC_PREAUTH", "2.0", preauth).await;
    ottgate_testkit::pay_with_card(
        &t.http,
        held["codeUrl"].as_str().unwrap(),
        "4111111111111111",
    )
    .await;
    let service = &t.gateway.state().service;
    let view = service
        .payment(&t.merchant.merchant.id, "NNPRE1")
        .await
        .unwrap()
        .unwrap();
    service.capture(&view.attempt.id).await.unwrap();
    callbacks += 1;
    let card = |number: &str| {
        json!({"amount": 100, "callBackURL": t.receiver_url.join("notify").unwrap().to_string(),
        "frontURL": t.receiver_url.join("return").unwrap().to_string(),
        "accountNumber": number, "accountExpire": "1239", "cvn2": "123"})
    };
    let local = rest(
        &t,
        "api/v1/payment/local-card/payment3dsV2",
        card("4111111111111111"),
    )
    .await;
    let local_id = local["result"]["paymentId"].as_str().unwrap().to_owned();
    rest(
        &t,
        "api/v1/payment/local-card/payment3dsV2",
        card("4000020000000000"),
    )
    .await;
    let voidable = rest(
        &t,
        "api/v1/payment/local-card/payment3dsV2",
        card("5555555555554444"),
    )
    .await;
    rest(
        &t,
        "api/v1/payment/local-card/reverse",
        json!({"paymentId": voidable["result"]["paymentId"]}),
    )
    .await;
    service
        .capture(&ottgate_core::AttemptId::parse(&local_id).unwrap())
        .await
        .unwrap();
    callbacks += 1;
    rest(
        &t,
        "api/v1/payment/local-card/refund",
        json!({"oriPaymentId": local_id, "refundAmount": "50"}),
    )
    .await;

    // PASSIVEPAY: paid (called back), declined, undecided — no null in any answer.
    for (order_id, outcome) in [
        ("NN-B1", "paid"),
        ("NN-B2", "declined"),
        ("NN-B3", "undecided"),
    ] {
        let code = crate::instore::code(&t, "WECHATPAY", outcome).await;
        let data = fields(
            json!({"order_id": order_id, "amount": "100", "auth_code": code,
            "call_back_url": t.receiver_url.join("notify").unwrap().to_string()}),
        );
        envelope(&t, "PASSIVEPAY", "1.0", data).await;
    }
    callbacks += 1;

    // MAPPPAY, with no sale_num or remarks.
    let mini = fields(
        json!({"order_id": "NN-M", "amount": "100", "appId": "wx5f89682208cf8e88",
        "openId": "oNoNull", "call_back_url": t.receiver_url.join("notify").unwrap().to_string()}),
    );
    envelope(&t, "MAPPPAY", "1.0", mini).await;
    complete(&t, "NN-M").await;
    callbacks += 1;

    // Every callback kind: checkout, ACTIVEPAY, H5PAY, REST Alipay and WeChat, in-app, links,
    // cards, mini-programs.
    for body in t.receiver.wait_for(callbacks).await {
        let (_, plaintext) = t.client.open_callback(&body).unwrap();
        assert_no_null("callback", &plaintext);
        assert_no_null("callback envelope", std::str::from_utf8(&body).unwrap());
    }
}

#[tokio::test]
async fn activepay_and_h5pay_without_operator_id_are_the_merchants_operators() {
    let t = TestGateway::start().await;
    for (order_id, action, version, biz_type) in [
        ("OP-A", "ACTIVEPAY", "1.0", "ALIPAY"),
        ("OP-H", "H5PAY", "2.0", "WECHATPAY"),
    ] {
        let created = envelope(&t, action, version, least(&t, order_id, biz_type)).await;
        assert_eq!(created["order_id"], order_id);
        // Empty is absent too; another operator is still refused, and makes nothing.
        let mut empty = least(&t, &format!("{order_id}-E"), biz_type);
        empty.insert("operator_id".into(), "".into());
        envelope(&t, action, version, empty).await;
        let other_id = format!("{order_id}-X");
        let mut other = least(&t, &other_id, biz_type);
        other.insert("operator_id".into(), "9999999999".into());
        let refused = t.client.exchange(action, version, other).await.unwrap();
        assert_eq!(
            (
                refused.response.rsp_code.as_str(),
                refused.response.rsp_msg.as_str()
            ),
            (
                "PARAM_INVALID",
                "operator_id is not an operator of this merchant"
            )
        );
        let status = fields(json!({ "order_id": other_id }));
        let missing = t
            .client
            .exchange("STATUS_QUERY", "1.0", status)
            .await
            .unwrap();
        assert_eq!(
            missing.response.rsp_code, "PARAM_INVALID",
            "nothing was made"
        );
    }
}

#[tokio::test]
async fn status_query_takes_the_card_integrations_order_id_spelling() {
    let t = TestGateway::start().await;
    envelope(&t, "ACTIVEPAY", "1.0", least(&t, "CARDSTYLE-1", "ALIPAY")).await;
    let camel = envelope(
        &t,
        "STATUS_QUERY",
        "1.0",
        fields(json!({"orderId": "CARDSTYLE-1"})),
    )
    .await;
    assert_eq!(
        (camel["order_id"].as_str(), camel["order_status"].as_str()),
        (Some("CARDSTYLE-1"), Some("init"))
    );
    // Both given: order_id is the one read.
    let both = fields(json!({"order_id": "CARDSTYLE-1", "orderId": "NOPE"}));
    envelope(&t, "STATUS_QUERY", "1.0", both).await;
    let none = t
        .client
        .exchange("STATUS_QUERY", "1.0", Fields::new())
        .await
        .unwrap();
    assert_eq!(
        (
            none.response.rsp_code.as_str(),
            none.response.rsp_msg.as_str()
        ),
        ("PARAM_INVALID", "missing required field: order_id")
    );
}

#[tokio::test]
async fn status_query_by_reference_finds_the_newest_payment_whose_remark_it_is() {
    let t = TestGateway::start().await;
    let (_, other) = t.other_merchant().await;
    let mut body = t.pay_body(None);
    body["remark"] = "WC-ORDER-7781".into();
    let older = rest(&t, "api/v1/pay/alipay/wap-pay", body.clone()).await;
    let newer = rest(&t, "api/v1/pay/alipay/wap-pay", body.clone()).await;
    // A payment whose reference is the text wins over one whose remark is.
    let named = t.pay_body(Some("SHOP-REF-1"));
    let referenced = rest(&t, "api/v1/pay/alipay/wap-pay", named).await;
    let mut remarked = t.pay_body(None);
    remarked["remark"] = "SHOP-REF-1".into();
    rest(&t, "api/v1/pay/alipay/wap-pay", remarked).await;
    // Another merchant with the same remark is not seen.
    let theirs = other
        .wap_pay(&serde_json::from_value(body).unwrap())
        .await
        .unwrap();

    let by = |reference: &str| json!({ "reference": reference });
    let found = rest(
        &t,
        "api/v1/payment/status-query-by-reference",
        by("WC-ORDER-7781"),
    )
    .await;
    assert_eq!(found["result"]["paymentId"], newer["result"]["paymentId"]);
    assert_ne!(found["result"]["paymentId"], older["result"]["paymentId"]);
    assert_ne!(
        found["result"]["paymentId"].as_str(),
        Some(theirs.payment_id.as_str())
    );
    let found = rest(
        &t,
        "api/v1/payment/status-query-by-reference",
        by("SHOP-REF-1"),
    )
    .await;
    assert_eq!(
        found["result"]["paymentId"],
        referenced["result"]["paymentId"]
    );
    // A remark with a space (no reference can have one) is found too; a text that is
    // neither is 404.
    let mut spaced = t.pay_body(None);
    spaced["remark"] = "order 12".into();
    let spaced = rest(&t, "api/v1/pay/alipay/wap-pay", spaced).await;
    let found = rest(
        &t,
        "api/v1/payment/status-query-by-reference",
        by("order 12"),
    )
    .await;
    assert_eq!(found["result"]["paymentId"], spaced["result"]["paymentId"]);
    let token = t.rest().token().await.unwrap();
    let (status, _) = t
        .rest_raw(
            "api/v1/payment/status-query-by-reference",
            Some(&token),
            by("order 13"),
        )
        .await;
    assert_eq!(status, 404);
}
