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
pub(crate) fn purchase(t: &TestGateway, order_id: &str, amount: &str) -> Fields {
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

pub(crate) async fn ok(t: &TestGateway, path: &str, action: &str, data: Fields) -> Fields {
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

/// The order behind the merchant's card payment `order_id`, and its payment id.
async fn order_and_payment(t: &TestGateway, order_id: &str) -> (String, String) {
    let view = t
        .gateway
        .state()
        .service
        .payment(&t.merchant.merchant.id, order_id)
        .await
        .unwrap()
        .unwrap();
    (view.order.id.to_string(), view.attempt.id.to_string())
}

#[tokio::test]
async fn a_pre_authorisation_is_held_until_the_merchant_captures_it_and_only_then_called_back() {
    let t = TestGateway::start().await;
    let answer = ok(
        &t,
        "processV3",
        "CC_PREAUTH",
        purchase(&t, "PREAUTH1", "4200"),
    )
    .await;
    let code_url = answer["codeUrl"].as_str().unwrap().to_owned();
    // The same data as a purchase is another request, not a replay of this one.
    let other = send(
        &t,
        "processV3",
        "CC_PURCHASE",
        purchase(&t, "PREAUTH1", "4200"),
    )
    .await;
    assert_eq!(
        other.response.rsp_code, "ORDER_USED",
        "{}",
        other.response.rsp_msg
    );

    let approved = pay_with(&t, &code_url, "4111111111111111").await;
    let back = location(&t.http.get(location(&approved)).fetch().await);
    let returned = t
        .client
        .verify_redirect(back.split_once('?').unwrap().1)
        .unwrap();
    assert_eq!(returned.trade_status, "Trade_Authorised");
    let status = card_status(&t, "PREAUTH1").await;
    assert_eq!(
        (
            status["order_status"].as_str(),
            status["state_code"].as_str()
        ),
        (Some("authorised"), Some("P00002"))
    );
    // Held, not taken: a refund is refused as Appendix B's "pre-authoried order".
    let refused = t.client.refund("PREAUTH1", "100", None).await.unwrap_err();
    assert!(
        refused.to_string().contains("ORDER_TYPE_ERROR"),
        "{refused}"
    );
    // The page takes no second card.
    let page = t.page(&code_url).await;
    assert!(!page.contains("id=\"card-form\""), "{page}");

    let (order, _) = order_and_payment(&t, "PREAUTH1").await;
    let mut c = crate::center::admin(&t).await;
    let detail = c.page(&format!("/dashboard/payments/{order}")).await;
    assert!(detail.contains("id=\"capture-form\"") && detail.contains("id=\"void-form\""));
    assert!(
        t.receiver.received().is_empty(),
        "no callback before the capture"
    );
    let csrf = c.csrf().await;
    let captured = c
        .post(
            &format!("/dashboard/payments/{order}/capture"),
            &[("csrf_token", csrf.as_str())],
        )
        .await;
    assert_eq!(
        captured.headers()["location"].to_str().unwrap(),
        format!("/dashboard/payments/{order}?notice=captured")
    );
    assert_eq!(card_status(&t, "PREAUTH1").await["order_status"], "success");
    let bodies = t.receiver.wait_for(1).await;
    let (_, plaintext) = t.client.open_callback(&bodies[0]).unwrap();
    assert!(!plaintext.contains("order_status"), "{plaintext}");
    // Captured once: again, nothing more is done; a void now is refused.
    let again = c
        .post(
            &format!("/dashboard/payments/{order}/capture"),
            &[("csrf_token", csrf.as_str())],
        )
        .await;
    assert!(
        again.headers()["location"]
            .to_str()
            .unwrap()
            .ends_with("notice=not_held")
    );
    let void = c
        .post(
            &format!("/dashboard/payments/{order}/void"),
            &[("csrf_token", csrf.as_str())],
        )
        .await;
    assert!(
        void.headers()["location"]
            .to_str()
            .unwrap()
            .ends_with("notice=not_held")
    );
    let refund = t.client.refund("PREAUTH1", "4200", None).await.unwrap();
    assert_eq!(refund.refund_status, "success");
    assert_eq!(t.receiver.received().len(), 1);

    // Another pre-authorisation, voided from the merchant center: closed, nothing owed.
    let answer = ok(
        &t,
        "processV2",
        "CC_PREAUTH",
        purchase(&t, "PREAUTH2", "900"),
    )
    .await;
    pay_with(&t, answer["codeUrl"].as_str().unwrap(), "5555555555554444").await;
    let (order, _) = order_and_payment(&t, "PREAUTH2").await;
    let voided = c
        .post(
            &format!("/dashboard/payments/{order}/void"),
            &[("csrf_token", csrf.as_str())],
        )
        .await;
    assert!(
        voided.headers()["location"]
            .to_str()
            .unwrap()
            .ends_with("notice=voided")
    );
    let status = card_status(&t, "PREAUTH2").await;
    assert_eq!(
        (
            status["order_status"].as_str(),
            status["state_code"].as_str()
        ),
        (Some("orderclosed"), Some("P00007"))
    );
    let audit = c.page("/dashboard/settings").await;
    assert!(
        audit.contains("Authorisation captured") && audit.contains("Authorisation released"),
        "audited"
    );
}

fn local_card(t: &TestGateway, number: &str, amount: Value) -> Value {
    json!({
        "amount": amount,
        "callBackURL": t.receiver_url.join("notify").unwrap().as_str(),
        "frontURL": t.receiver_url.join("return").unwrap().as_str(),
        "accountNumber": number,
        "accountName": "Li Lei",
        "accountExpire": "1230",
        "cvn2": "123",
        "sslAvsAddress": "1 Front St",
        "sslAvsCity": "Toronto",
        "sslAvsProvince": "ON",
        "sslAvsCountry": "CA",
        "sslAvsZip": "M5J2N1",
        "purchase3DSAddition": {"browserInfo": {"language": "en-CA"}},
    })
}

const PAY_3DS: &str = "api/v1/payment/local-card/payment3dsV2";

#[tokio::test]
async fn a_local_card_payment_is_authorised_then_captured_by_the_gateway_unless_reversed_first() {
    let t = TestGateway::with(Options {
        manual_clock: true,
        ..Options::default()
    })
    .await;
    let rest = t.rest();
    let token = rest.token().await.unwrap();
    let token = Some(token.as_str());

    // Frictionless: authorised, held; refunds refused until captured.
    let (status, body) = t
        .rest_raw(
            PAY_3DS,
            token,
            local_card(&t, "4111 1111 1111 1111", json!(1500)),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let result = &body["result"];
    assert_eq!(
        (
            result["paymentStatus"].as_str(),
            result["ccType"].as_str(),
            result["amount"].as_str()
        ),
        (Some("authorised"), Some("VISA"), Some("1500"))
    );
    assert!(result.get("escape3DSChallengeForm").is_none());
    let captured = result["paymentId"].as_str().unwrap().to_owned();
    let held = rest.status_query(&captured).await.unwrap();
    assert_eq!(
        (held.payment_status.as_str(), held.state_code.as_str()),
        ("authorised", "P00002")
    );
    let (status, body) = t
        .rest_raw(
            "api/v1/payment/local-card/refund",
            token,
            json!({"oriPaymentId": captured, "refundAmount": "100"}),
        )
        .await;
    assert_eq!(
        (status, body["result"]["code"].as_u64()),
        (409, Some(20020)),
        "{body}"
    );

    // Reversed before capture: closed as voided, the same answer again, never captured.
    let (_, body) = t
        .rest_raw(
            PAY_3DS,
            token,
            local_card(&t, "5555555555554444", json!("700")),
        )
        .await;
    assert_eq!(body["result"]["ccType"], "MC");
    let reversed = body["result"]["paymentId"].as_str().unwrap().to_owned();
    let first = rest.local_card_reverse(&reversed).await.unwrap();
    assert_eq!(
        (first.payment_status.as_str(), first.state_code.as_str()),
        ("orderclosed", "P00007")
    );
    assert_eq!(rest.local_card_reverse(&reversed).await.unwrap(), first);
    let (other, other_rest) = t.other_merchant().await;
    let _ = other;
    assert!(
        other_rest
            .local_card_reverse(&captured)
            .await
            .unwrap_err()
            .to_string()
            .contains("20019"),
        "another merchant's payment is not found"
    );

    // The gateway captures the held one when its time comes: paid, called back once.
    t.advance(std::time::Duration::from_secs(3_601));
    crate::harness::eventually("the authorisation captured", || async {
        rest.status_query(&captured).await.unwrap().payment_status == "success"
    })
    .await;
    let bodies = t.receiver.wait_for(1).await;
    let (_, plaintext) = t.client.open_callback(&bodies[0]).unwrap();
    assert!(plaintext.contains(&captured), "{plaintext}");
    assert_eq!(
        rest.status_query(&reversed).await.unwrap().payment_status,
        "orderclosed"
    );
    // (An hour later the first token has expired; the client takes a new one.)
    let refused = rest.local_card_reverse(&captured).await.unwrap_err();
    assert!(
        refused.to_string().contains("20020"),
        "captured: refund it: {refused}"
    );
    let refund = rest.local_card_refund(&captured, "1500").await.unwrap();
    assert_eq!(refund.refund_status, "success");
    assert_eq!(t.receiver.received().len(), 1);
}

#[tokio::test]
async fn a_local_card_challenge_goes_through_3ds_and_declines_and_strangers_are_refused() {
    let t = TestGateway::start().await;
    let rest = t.rest();
    let token = rest.token().await.unwrap();
    let token = Some(token.as_str());
    let (status, body) = t
        .rest_raw(
            PAY_3DS,
            token,
            local_card(&t, "4000020000000000", json!(2500)),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let result = &body["result"];
    assert_eq!(result["paymentStatus"], "THREEDS_AUTH_CHALLENGE");
    assert_eq!(result["receiptAmount"], "0");
    let payment = result["paymentId"].as_str().unwrap().to_owned();
    let form = result["escape3DSChallengeForm"].as_str().unwrap();
    let action = form
        .split("action=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let page = t.page(action).await;
    assert!(
        page.contains("id=\"three-ds\"") && !page.contains("id=\"card-form\""),
        "{page}"
    );
    assert_eq!(
        rest.status_query(&payment).await.unwrap().payment_status,
        "init"
    );
    let passed = t
        .http
        .post(format!("{action}/3ds"))
        .form(&[("password", "password")])
        .fetch()
        .await;
    let back = location(&t.http.get(location(&passed)).fetch().await);
    assert!(
        back.starts_with(t.receiver_url.join("return").unwrap().as_str()),
        "{back}"
    );
    assert!(back.contains("trade_status=Trade_Authorised"), "{back}");
    assert_eq!(
        rest.status_query(&payment).await.unwrap().payment_status,
        "authorised"
    );

    // Declined: an error, the payment recorded as failed.
    let (status, body) = t
        .rest_raw(
            PAY_3DS,
            token,
            local_card(&t, "4000000000000002", json!(300)),
        )
        .await;
    assert_eq!(
        (status, body["result"]["code"].as_u64()),
        (402, Some(20030)),
        "{body}"
    );
    let message = body["result"]["message"].as_str().unwrap();
    let declined = message
        .split("paymentId ")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap();
    let failed = rest.status_query(declined).await.unwrap();
    assert_eq!(
        (failed.payment_status.as_str(), failed.state_code.as_str()),
        ("orderclosed", "P00008")
    );

    // Bad input is refused by name; a number that is not a test card is refused unechoed.
    let real = "4532015112830366";
    for (field, value, code, expected) in [
        (
            "accountNumber",
            json!(real),
            20008,
            "not one of the sandbox's test cards",
        ),
        ("amount", json!(12.5), 10005, "amount must be a whole"),
        ("amount", json!("0"), 10005, "amount must be a positive"),
        ("frontURL", Value::Null, 10005, "frontURL is required"),
        ("callBackURL", json!("ftp://x"), 10005, "callBackURL"),
        (
            "accountExpire",
            json!("0120"),
            10005,
            "accountExpire must be MMYY",
        ),
        ("cvn2", json!("12"), 10005, "cvn2 must be 3 or 4 digits"),
        ("sslAvsCountry", json!("Canada"), 10005, "sslAvsCountry"),
    ] {
        let mut body = local_card(&t, "4111111111111111", json!(100));
        if value.is_null() {
            body.as_object_mut().unwrap().remove(field);
        } else {
            body[field] = value.clone();
        }
        let (status, answer) = t.rest_raw(PAY_3DS, token, body).await;
        assert!(status >= 400, "{field}={value}: {answer}");
        assert_eq!(
            answer["result"]["code"].as_u64(),
            Some(code),
            "{field}: {answer}"
        );
        let message = answer["result"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{field}: {message}");
        assert!(!answer.to_string().contains(real), "never echoed");
    }

    // A challenge payment not authorised yet can be reversed too (the buyer walked away).
    let (_, body) = t
        .rest_raw(
            PAY_3DS,
            token,
            local_card(&t, "4000020000000000", json!(100)),
        )
        .await;
    let walked = body["result"]["paymentId"].as_str().unwrap();
    assert_eq!(
        rest.local_card_reverse(walked)
            .await
            .unwrap()
            .payment_status,
        "orderclosed"
    );
    // Not a card payment: not revocable.
    let wap = rest
        .wap_pay(&serde_json::from_value(t.pay_body(None)).unwrap())
        .await
        .unwrap();
    let refused = rest.local_card_reverse(&wap.payment_id).await.unwrap_err();
    assert!(refused.to_string().contains("20021"), "{refused}");
}

#[tokio::test]
async fn without_a_card_acquirer_local_card_payments_say_so() {
    let t = TestGateway::with(Options {
        sandbox: false,
        ..Options::default()
    })
    .await;
    let token = t.rest().token().await.unwrap();
    let (status, body) = t
        .rest_raw(
            PAY_3DS,
            Some(&token),
            local_card(&t, "4111111111111111", json!(100)),
        )
        .await;
    assert_eq!(
        (status, body["result"]["code"].as_u64()),
        (409, Some(20031)),
        "{body}"
    );
    assert!(
        body["result"]["message"]
            .as_str()
            .unwrap()
            .contains("card acquirer")
    );
    for (path, body) in [
        (
            "api/v1/payment/local-card/reverse",
            json!({"paymentId": "17953235195163877"}),
        ),
        (
            "api/v1/payment/local-card/refund",
            json!({"oriPaymentId": "17953235195163877", "refundAmount": "1"}),
        ),
    ] {
        let (status, answer) = t.rest_raw(path, Some(&token), body).await;
        assert_eq!(status, 409, "{path}: {answer}");
        assert!(
            answer["result"]["message"]
                .as_str()
                .unwrap()
                .contains("card acquirer")
        );
    }
}

#[tokio::test]
async fn a_local_card_payment_sent_again_with_its_idempotency_key_is_made_once() {
    let t = TestGateway::start().await;
    let token = t.rest().token().await.unwrap();
    let send = || {
        t.post(PAY_3DS)
            .bearer_auth(&token)
            .header("Idempotency-Key", "order-77-card")
            .json(&local_card(&t, "4111111111111111", json!(1200)))
            .fetch()
    };
    let first = send().await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    let again = send().await;
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(first, again);
    let stats = t.gateway.state().service.stats().await.unwrap();
    assert_eq!(
        stats.orders_by_status.iter().map(|(_, n)| n).sum::<u64>(),
        1
    );
}
