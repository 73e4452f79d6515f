//! Card payments in sandbox: `CC_PURCHASE` on `/processV3` and `/processV2`, the hosted
//! test-card page (approve, decline, 3-D Secure), the callback that is only a trigger,
//! `STATUS_QUERY` in the card style, `CC_QUERYPAY`, refunds; live mode refuses; bad input
//! is refused by name. All through real HTTP.

use ottgate_client::{Exchange, Fields};
use ottgate_core::{Clock, SystemClock};
use ottgate_testkit::Fetch;
use serde_json::{Value, json};

use crate::harness::{Options, TestGateway, location};

fn fields(value: Value) -> Fields {
    match value {
        Value::Object(fields) => fields,
        other => panic!("not an object: {other}"),
    }
}

/// A hosted-page purchase exactly as a real integration sends it: `txnTime` in UTC.
fn purchase(t: &TestGateway, order_id: &str, amount: &str) -> Fields {
    let now = SystemClock.now().plus(std::time::Duration::ZERO);
    let utc = now.rfc3339();
    let txn_time: String = utc.chars().filter(char::is_ascii_digit).take(14).collect();
    fields(json!({
        "orderId": order_id,
        "merchant_id": t.merchant.merchant.id.as_str(),
        "operator_id": t.merchant.merchant.operator_id.as_str(),
        "txnTime": txn_time,
        "txnAmt": amount,
        "frontUrl": t.receiver_url.join("return").unwrap().as_str(),
        "backUrl": t.receiver_url.join("notify").unwrap().as_str(),
        "channelType": "ELAVONECOM",
        "bizType": "converge_hosted",
        "cc_channelType": "web",
    }))
}

async fn send(t: &TestGateway, path: &str, action: &str, data: Fields) -> Exchange {
    t.client
        .exchange_at(path, action, "2.0", data)
        .await
        .unwrap()
}

async fn ok(t: &TestGateway, path: &str, action: &str, data: Fields) -> Fields {
    let e = send(t, path, action, data).await;
    assert_eq!(
        e.response.rsp_code, "SUCCESS",
        "{action}: {}",
        e.response.rsp_msg
    );
    e.response_fields.unwrap()
}

/// Opens `code_url` and submits a card; returns where the browser is sent.
async fn pay_with(t: &TestGateway, code_url: &str, number: &str) -> reqwest::Response {
    let page = t.http.get(code_url).fetch().await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("id=\"card-form\""), "{html}");
    ottgate_testkit::pay_with_card(&t.http, code_url, number).await
}

async fn card_status(t: &TestGateway, order_id: &str) -> Fields {
    // As the card integrations ask: orderId and order_id both, bizType, channelType, txnTime.
    let query = fields(json!({"orderId": order_id, "order_id": order_id,
        "merchant_id": t.merchant.merchant.id.as_str(), "bizType": "converge_hosted",
        "txnTime": "20261205000000", "channelType": "ELAVONECOM"}));
    let e = t
        .client
        .exchange("STATUS_QUERY", "1.0", query)
        .await
        .unwrap();
    assert_eq!(e.response.rsp_code, "SUCCESS", "{}", e.response.rsp_msg);
    e.response_fields.unwrap()
}

#[tokio::test]
async fn a_card_purchase_on_either_path_is_paid_on_the_hosted_page_then_queried_and_refunded() {
    let t = TestGateway::start().await;
    for (n, path) in ["processV3", "processV2"].into_iter().enumerate() {
        let order_id = format!("CARD{n}A");
        let answer = ok(&t, path, "CC_PURCHASE", purchase(&t, &order_id, "2500")).await;
        let code_url = answer["codeUrl"].as_str().unwrap().to_owned();
        assert_eq!(
            (answer["amount"].as_str(), answer["orderId"].as_str()),
            (Some("2500"), Some(order_id.as_str()))
        );
        // The same request again replays the answer.
        let again = ok(&t, path, "CC_PURCHASE", purchase(&t, &order_id, "2500")).await;
        assert_eq!(again["codeUrl"], answer["codeUrl"]);
        assert_eq!(card_status(&t, &order_id).await["order_status"], "init");

        let paid = pay_with(&t, &code_url, "4111 1111 1111 1111").await;
        let back = location(&t.http.get(location(&paid)).fetch().await);
        assert!(
            back.starts_with(t.receiver_url.join("return").unwrap().as_str()),
            "{back}"
        );
        let returned = t
            .client
            .verify_redirect(back.split_once('?').unwrap().1)
            .unwrap();
        assert_eq!(
            (
                returned.out_trade_no.as_str(),
                returned.trade_status.as_str()
            ),
            (order_id.as_str(), "Trade_Finished")
        );

        // The callback is a trigger: no status in it.
        let bodies = t.receiver.wait_for(n + 1).await;
        let (_, plaintext) = t.client.open_callback(&bodies[n]).unwrap();
        let data: Value = serde_json::from_str(&plaintext).unwrap();
        assert!(data.get("order_status").is_none(), "{data}");
        assert_eq!(
            (data["order_id"].as_str(), data["amount"].as_str()),
            (Some(order_id.as_str()), Some("2500"))
        );
        assert!(t.client.verify_callback(&bodies[n]).is_ok());

        let status = card_status(&t, &order_id).await;
        assert_eq!(
            (
                status["order_status"].as_str(),
                status["total_amount"].as_str(),
                status["currency"].as_str()
            ),
            (Some("success"), Some("2500"), Some("CAD"))
        );
        let querypay = ok(
            &t,
            path,
            "CC_QUERYPAY",
            fields(json!({"orderId": order_id,
            "termId": "CNP_ECOM", "channelType": "PORTICOECOM", "bizType": "portico_card"})),
        )
        .await;
        assert_eq!(
            (
                querypay["order_status"].as_str(),
                querypay["receipt_amount"].as_str()
            ),
            (Some("success"), Some("2500"))
        );
        let refund = t.client.refund(&order_id, "500", None).await.unwrap();
        assert_eq!(refund.refund_status, "success");
        assert_eq!(
            card_status(&t, &order_id).await["order_status"],
            "partial_refunded"
        );
        // Paid: the page says so and takes no card.
        let done = t.http.get(&code_url).fetch().await.text().await.unwrap();
        assert!(!done.contains("id=\"card-form\""), "{done}");
    }
}

#[tokio::test]
async fn the_test_cards_decline_and_challenge_and_no_other_number_is_taken() {
    let t = TestGateway::start().await;
    let answer = ok(
        &t,
        "processV3",
        "CC_PURCHASE",
        purchase(&t, "DECLINE1", "100"),
    )
    .await;
    let declined = pay_with(&t, answer["codeUrl"].as_str().unwrap(), "4000000000000002").await;
    let back = location(&t.http.get(location(&declined)).fetch().await);
    assert!(back.contains("trade_status=Trade_Closed"), "{back}");
    assert_eq!(
        card_status(&t, "DECLINE1").await["order_status"],
        "orderclosed"
    );

    let answer = ok(
        &t,
        "processV3",
        "CC_PURCHASE",
        purchase(&t, "CHALLENGE1", "100"),
    )
    .await;
    let code_url = answer["codeUrl"].as_str().unwrap().to_owned();
    // Not a test card: refused, nothing settled.
    let other = pay_with(&t, &code_url, "4532015112830366").await;
    assert_eq!(other.status(), 400);
    assert!(other.text().await.unwrap().contains("Only the test cards"));
    let bad_expiry = t
        .http
        .post(&code_url)
        .form(&[
            ("number", "4111111111111111"),
            ("expiry", "01/20"),
            ("cvc", "123"),
        ])
        .fetch()
        .await;
    assert_eq!(bad_expiry.status(), 400);
    // The challenge card asks for 3-D Secure; a wrong password declines, the right one pays.
    let challenged = pay_with(&t, &code_url, "4000 0200 0000 0000").await;
    assert_eq!(challenged.status(), 200);
    assert!(challenged.text().await.unwrap().contains("id=\"three-ds\""));
    assert_eq!(card_status(&t, "CHALLENGE1").await["order_status"], "init");
    let passed = t
        .http
        .post(format!("{code_url}/3ds"))
        .form(&[("password", "password")])
        .fetch()
        .await;
    assert_eq!(passed.status(), 303);
    assert_eq!(
        card_status(&t, "CHALLENGE1").await["order_status"],
        "success"
    );

    let answer = ok(
        &t,
        "processV3",
        "CC_PURCHASE",
        purchase(&t, "CHALLENGE2", "100"),
    )
    .await;
    let code_url = answer["codeUrl"].as_str().unwrap().to_owned();
    pay_with(&t, &code_url, "4000020000000000").await;
    t.http
        .post(format!("{code_url}/3ds"))
        .form(&[("password", "wrong")])
        .fetch()
        .await;
    assert_eq!(
        card_status(&t, "CHALLENGE2").await["order_status"],
        "orderclosed"
    );
}

#[tokio::test]
async fn bad_card_purchases_are_refused_by_name_and_make_nothing() {
    let t = TestGateway::start().await;
    let stale: String = SystemClock
        .now()
        .minus(std::time::Duration::from_secs(3 * 3600))
        .beijing_compact();
    for (field, value, expected) in [
        (
            "orderId",
            json!("has-dash"),
            "orderId must be 1 to 20 letters and digits",
        ),
        ("orderId", json!("A".repeat(21)), "orderId must be 1 to 20"),
        (
            "txnTime",
            json!(stale),
            "txnTime must be the time of the request",
        ),
        ("txnTime", json!("2026"), "txnTime must be yyyyMMddHHmmss"),
        ("txnAmt", json!("12.50"), "txnAmt must be"),
        (
            "channelType",
            json!("STRIPE"),
            "channelType and bizType must be",
        ),
        ("backUrl", json!("not a url"), "backUrl"),
        ("frontUrl", Value::Null, "missing required field: frontUrl"),
        (
            "cc_number",
            json!("4532015112830366"),
            "cc_number is not one of the sandbox's test cards",
        ),
    ] {
        let mut data = purchase(&t, "BAD1", "100");
        if value.is_null() {
            data.remove(field);
        } else {
            data.insert(field.into(), value.clone());
        }
        let e = send(&t, "processV3", "CC_PURCHASE", data).await;
        assert_ne!(e.response.rsp_code, "SUCCESS", "{field}={value}");
        assert!(
            e.response.rsp_msg.contains(expected),
            "{field}: {}",
            e.response.rsp_msg
        );
        assert!(
            !e.response.rsp_msg.contains("4532015112830366"),
            "the number is never echoed"
        );
    }
    let stats = t.gateway.state().service.stats().await.unwrap();
    assert_eq!(
        stats.orders_by_status.iter().map(|(_, n)| n).sum::<u64>(),
        0
    );
}

#[tokio::test]
async fn without_a_card_acquirer_card_actions_say_so() {
    let t = TestGateway::with(Options {
        sandbox: false,
        ..Options::default()
    })
    .await;
    let e = send(&t, "processV3", "CC_PURCHASE", purchase(&t, "LIVE1", "100")).await;
    assert_eq!(e.response.rsp_code, "FAIL");
    assert!(
        e.response.rsp_msg.contains("card acquirer"),
        "{}",
        e.response.rsp_msg
    );
}
