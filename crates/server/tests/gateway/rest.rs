//! The REST API v1, driven through the SDK and raw HTTP.

use ottgate_client::{ClientError, PayRequest};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use url::Url;

use crate::harness::{Options, TestGateway, serve};
use ottgate_testkit::Fetch;

fn pay_request(t: &TestGateway, reference: Option<&str>) -> PayRequest {
    serde_json::from_value(t.pay_body(reference)).unwrap()
}

async fn token(t: &TestGateway) -> String {
    t.rest().fetch_token().await.unwrap().token
}

fn code(body: &Value) -> u64 {
    assert_eq!(body["status"], "ERROR", "{body}");
    body["result"]["code"].as_u64().unwrap()
}

fn message(body: &Value) -> &str {
    body["result"]["message"].as_str().unwrap()
}

/// Completes a REST payment through the sandbox helper.
async fn complete(t: &TestGateway, payment_id: &str, outcome: &str) -> (u16, Value) {
    let r = t
        .post(&format!("sandbox/v1/payments/{payment_id}/complete"))
        .json(&json!({ "outcome": outcome }))
        .fetch()
        .await;
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn a_token_lives_900_seconds_of_gateway_time() {
    let t = TestGateway::with(Options {
        manual_clock: true,
        ..Default::default()
    })
    .await;
    let issued_at = t.now();
    let token = t.rest().fetch_token().await.unwrap();
    assert_eq!(token.expired, issued_at.epoch_millis() + 900_000);
    let query = json!({"paymentId": "17000000000000000"});
    let (status, body) = t
        .rest_raw(
            "api/v1/payment/status-query",
            Some(&token.token),
            query.clone(),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (404, 20019),
        "a valid token reaches the handler"
    );
    t.advance(Duration::from_secs(899));
    let (status, _) = t
        .rest_raw(
            "api/v1/payment/status-query",
            Some(&token.token),
            query.clone(),
        )
        .await;
    assert_eq!(status, 404);
    t.advance(Duration::from_secs(1));
    let (status, body) = t
        .rest_raw("api/v1/payment/status-query", Some(&token.token), query)
        .await;
    assert_eq!((status, code(&body)), (401, 90000));
    assert!(message(&body).contains("expired"));
    // The SDK notices and fetches a new token by itself.
    let rest = t.rest();
    rest.fetch_token().await.unwrap();
    t.advance(Duration::from_secs(1000));
    let err = rest.status_query("17000000000000000").await.unwrap_err();
    assert_eq!(err.rest_code(), Some(20019), "{err}");
}

#[tokio::test]
async fn bad_credentials_and_bad_tokens_are_refused() {
    let t = TestGateway::start().await;
    let app_id = t.merchant.merchant.app_id.clone();
    let (status, body) = t
        .rest_raw(
            "api/v1/auth/token",
            None,
            json!({"appId": app_id, "appKey": "0".repeat(32)}),
        )
        .await;
    assert_eq!((status, code(&body)), (401, 10003));
    let (status, body) = t
        .rest_raw(
            "api/v1/auth/token",
            None,
            json!({"appId": "ON00000000", "appKey": "x"}),
        )
        .await;
    assert_eq!((status, code(&body)), (401, 10003));
    for malformed in [
        json!({"appId": app_id}),
        json!({"appId": 5, "appKey": "k"}),
        json!(["appId"]),
        json!({"appId": "x".repeat(65), "appKey": "k"}),
    ] {
        let (status, body) = t
            .rest_raw("api/v1/auth/token", None, malformed.clone())
            .await;
        assert_eq!((status, code(&body)), (400, 10005), "{malformed}");
    }
    let good = token(&t).await;
    let parts: Vec<&str> = good.split('.').collect();
    let b64 =
        |s: &str| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, s);
    let alg_none = format!("{}.{}.", b64(r#"{"alg":"none"}"#), parts[1]);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(r#"{"sub":"x","mid":"ON00000000","created":0,"exp":9999999999,"usertype":"CUSTOMER"}"#),
        parts[2]
    );
    for bad in [
        None,
        Some("garbage"),
        Some(alg_none.as_str()),
        Some(tampered.as_str()),
    ] {
        let (status, body) = t
            .rest_raw(
                "api/v1/payment/status-query",
                bad,
                json!({"paymentId": "1"}),
            )
            .await;
        assert_eq!((status, code(&body)), (401, 90000), "{bad:?}");
    }
    let basic = t
        .post("api/v1/pay/alipay/wap-pay")
        .header("Authorization", format!("Basic {good}"))
        .json(&t.pay_body(None))
        .fetch()
        .await;
    assert_eq!(basic.status(), 401);
    assert_eq!(basic.headers()["www-authenticate"], "Bearer");
}

#[tokio::test]
async fn repeated_failures_lock_an_app_id_out_for_the_window() {
    let t = TestGateway::with(Options {
        manual_clock: true,
        ..Default::default()
    })
    .await;
    let app_id = t.merchant.merchant.app_id.clone();
    for _ in 0..10 {
        let (status, _) = t
            .rest_raw(
                "api/v1/auth/token",
                None,
                json!({"appId": app_id, "appKey": "wrong"}),
            )
            .await;
        assert_eq!(status, 401);
    }
    // Now even the right key is refused, until the window has passed.
    let right = json!({"appId": app_id, "appKey": t.merchant.app_key.expose_secret()});
    let (status, body) = t.rest_raw("api/v1/auth/token", None, right.clone()).await;
    assert_eq!((status, code(&body)), (429, 10003));
    t.advance(Duration::from_secs(301));
    let (status, body) = t.rest_raw("api/v1/auth/token", None, right).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("SUCCESS")));
}

#[tokio::test]
async fn rotating_the_jwt_secret_invalidates_earlier_tokens() {
    let mut t = TestGateway::with(Options {
        jwt_secret: Some("first secret, at least thirty-two chars"),
        ..Default::default()
    })
    .await;
    let old = token(&t).await;
    t.stop().await;
    let options = Options {
        jwt_secret: Some("second secret, also thirty-two characters"),
        ..Default::default()
    };
    let (_gateway, base, shutdown, server) =
        serve(t.dir.path(), &options, Arc::new(ottgate_core::SystemClock)).await;
    let r = t
        .http
        .post(base.join("api/v1/payment/status-query").unwrap())
        .bearer_auth(&old)
        .json(&json!({"paymentId":"1"}))
        .fetch()
        .await;
    assert_eq!(r.status(), 401);
    let fresh = ottgate_client::RestClient::new(
        base.as_str(),
        &t.merchant.merchant.app_id,
        t.merchant.app_key.expose_secret(),
    )
    .unwrap();
    assert_eq!(
        fresh
            .status_query("17000000000000000")
            .await
            .unwrap_err()
            .rest_code(),
        Some(20019)
    );
    shutdown.cancel();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn wap_pay_then_callback_status_and_refunds_down_to_fully_refunded() {
    let t = TestGateway::start().await;
    let rest = t.rest();
    let paid = rest.wap_pay(&pay_request(&t, Some("PTM-1"))).await.unwrap();
    assert_eq!(
        (paid.merchant_id.as_str(), paid.amount.as_str()),
        (t.merchant.merchant.id.as_str(), "1000")
    );
    // payInfo is Alipay's signed create_forex_trade_wap request (to the simulated Alipay here).
    assert!(
        paid.pay_info.contains("/sim/alipay/gateway.do?")
            && paid.pay_info.contains("service=create_forex_trade_wap"),
        "{}",
        paid.pay_info
    );
    assert_eq!(paid.biz_pay_order_id, None, "web-pay only");
    let s = rest.status_query(&paid.payment_id).await.unwrap();
    assert_eq!(
        (
            s.payment_status.as_str(),
            s.state_code.as_str(),
            s.pay_amount.as_str()
        ),
        ("init", "P00001", "0")
    );

    let (status, body) = complete(&t, &paid.payment_id, "paid").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("success")),
        "{body}"
    );

    // The callback: the same encrypted envelope as checkout, with the REST fields.
    let callback = t
        .client
        .verify_callback(&t.receiver.wait_for(1).await[0])
        .unwrap();
    assert_eq!(callback.order_id, paid.payment_id);
    assert_eq!(
        (callback.order_status.as_str(), callback.amount.as_str()),
        ("success", "1000")
    );
    assert_eq!(callback.reference.as_deref(), Some("PTM-1"));
    assert_eq!(callback.prepay_order_id, None);
    assert_eq!(callback.remarks.as_deref(), Some("2 x tea"));

    let s = rest.status_query(&paid.payment_id).await.unwrap();
    assert_eq!(
        (s.payment_status.as_str(), s.state_code.as_str()),
        ("success", "P00003")
    );
    assert_eq!(
        (
            s.total_amount.as_str(),
            s.pay_amount.as_str(),
            s.refund_amount.as_str(),
            s.receipt_amount.as_str()
        ),
        ("1000", "1000", "0", "1000")
    );
    assert_eq!(
        s.biz_pay_order_id.as_deref(),
        Some(callback.bizpay_order_id.as_str()),
        "Alipay's trade_no"
    );
    assert_eq!(
        s.trade_time.split(' ').count(),
        5,
        "Java-style time: {}",
        s.trade_time
    );
    assert_eq!(rest.status_query_by_reference("PTM-1").await.unwrap(), s);

    // Alipay refunds asynchronously: accepted now, settled by Alipay's notification.
    let part = rest.refund(&paid.payment_id, "300").await.unwrap();
    assert_eq!(
        (
            part.refund_status.as_str(),
            part.refund_amount.as_str(),
            part.ori_payment_id.as_str()
        ),
        ("pending", "300", paid.payment_id.as_str())
    );
    assert!(part.refund_id.starts_with("REF"));
    let refunded = |amount: &'static str| {
        let rest = &rest;
        let id = paid.payment_id.clone();
        move || {
            let id = id.clone();
            async move { rest.status_query(&id).await.unwrap().refund_amount == amount }
        }
    };
    crate::harness::eventually("the partial refund", refunded("300")).await;
    let s = rest.status_query(&paid.payment_id).await.unwrap();
    assert_eq!(
        (
            s.payment_status.as_str(),
            s.state_code.as_str(),
            s.refund_amount.as_str(),
            s.receipt_amount.as_str()
        ),
        ("partial_refunded", "P00005", "300", "700")
    );

    let over = rest.refund(&paid.payment_id, "701").await.unwrap_err();
    assert_eq!(over.rest_code(), Some(20014), "{over}");
    rest.refund(&paid.payment_id, "700").await.unwrap();
    crate::harness::eventually("the full refund", refunded("1000")).await;
    let s = rest.status_query_by_reference("PTM-1").await.unwrap();
    assert_eq!(
        (
            s.payment_status.as_str(),
            s.state_code.as_str(),
            s.receipt_amount.as_str()
        ),
        ("fully_refunded", "P00004", "0")
    );
    assert_eq!(
        rest.refund(&paid.payment_id, "1")
            .await
            .unwrap_err()
            .rest_code(),
        Some(20041)
    );
    // The envelope API sees the same payment the same way.
    assert_eq!(
        t.client
            .status_query(&paid.payment_id)
            .await
            .unwrap()
            .order_status,
        "fully_refunded"
    );
}

#[tokio::test]
async fn web_pay_reports_the_channel_order_number_alipay_knows_it_by() {
    let t = TestGateway::start().await;
    let paid = t.rest().web_pay(&pay_request(&t, None)).await.unwrap();
    assert!(
        paid.pay_info.contains("service=create_forex_trade&"),
        "the PC cashier: {}",
        paid.pay_info
    );
    // Alipay knows the payment by our out_trade_no until it creates its own trade_no.
    assert_eq!(
        paid.biz_pay_order_id.as_deref(),
        Some(paid.payment_id.as_str())
    );
    complete(&t, &paid.payment_id, "paid").await;
    let callback = t
        .client
        .verify_callback(&t.receiver.wait_for(1).await[0])
        .unwrap();
    let status = t.rest().status_query(&paid.payment_id).await.unwrap();
    assert_eq!(
        status.biz_pay_order_id.as_deref(),
        Some(callback.bizpay_order_id.as_str())
    );
    assert_ne!(
        callback.bizpay_order_id, paid.payment_id,
        "after payment: Alipay's trade_no"
    );
    assert_eq!(callback.reference, None);
}

#[tokio::test]
async fn the_buyer_returns_to_return_url_with_a_signed_result() {
    let t = TestGateway::start().await;
    let paid = t
        .rest()
        .wap_pay(&pay_request(&t, Some("RET-1")))
        .await
        .unwrap();
    let landed =
        Url::parse(&crate::harness::pay_at_wallet(&t, &paid.pay_info, "paid").await).unwrap();
    assert_eq!(landed.path(), "/return");
    let params = t.client.verify_redirect(landed.query().unwrap()).unwrap();
    assert_eq!(
        (
            params.trade_no.as_str(),
            params.out_trade_no.as_str(),
            params.total_fee.as_str()
        ),
        (paid.payment_id.as_str(), "RET-1", "1000")
    );
    assert!(params.is_success());
    // Cancelling at Alipay's cashier sends the buyer back to the merchant, closed from the
    // buyer's side (there is no checkout page to choose again); the Alipay trade itself
    // stays open until it expires, so the payment is still `init`.
    let other = t.rest().wap_pay(&pay_request(&t, None)).await.unwrap();
    let landed = crate::harness::pay_at_wallet(&t, &other.pay_info, "cancelled").await;
    let params = t
        .client
        .verify_redirect(Url::parse(&landed).unwrap().query().unwrap())
        .unwrap();
    assert_eq!(
        (params.trade_status.as_str(), params.out_trade_no.as_str()),
        ("Trade_Closed", other.payment_id.as_str())
    );
    assert_eq!(
        t.rest()
            .status_query(&other.payment_id)
            .await
            .unwrap()
            .state_code,
        "P00001"
    );
}

#[tokio::test]
async fn twenty_concurrent_rest_refunds_never_exceed_the_payment() {
    let t = TestGateway::start().await;
    let rest = Arc::new(t.rest());
    let paid = rest.wap_pay(&pay_request(&t, None)).await.unwrap(); // 1000
    complete(&t, &paid.payment_id, "paid").await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (rest, id) = (rest.clone(), paid.payment_id.clone());
            tokio::spawn(async move { rest.refund(&id, "75").await })
        })
        .collect();
    let mut accepted = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => accepted += 1,
            Err(e) => assert!(matches!(e.rest_code(), Some(20014)), "{e}"),
        }
    }
    assert_eq!(accepted, 13, "13 x 75 = 975 of 1000");
    crate::harness::eventually("thirteen refund notifications", || async {
        rest.status_query(&paid.payment_id)
            .await
            .unwrap()
            .refund_amount
            == "975"
    })
    .await;
}

#[tokio::test]
async fn another_merchants_token_finds_nothing_on_any_route() {
    let t = TestGateway::start().await;
    let rest = t.rest();
    let paid = rest
        .wap_pay(&pay_request(&t, Some("MINE-1")))
        .await
        .unwrap();
    complete(&t, &paid.payment_id, "paid").await;
    let (_, thief) = t.other_merchant().await;
    let thief_token = thief.fetch_token().await.unwrap().token;
    let probes = [
        (
            "api/v1/payment/status-query",
            json!({"paymentId": paid.payment_id}),
            json!({"paymentId": "17000000000000000"}),
        ),
        (
            "api/v1/payment/status-query-by-reference",
            json!({"reference": "MINE-1"}),
            json!({"reference": "NOPE-1"}),
        ),
        (
            "api/v1/pay/refund",
            json!({"oriPaymentId": paid.payment_id, "refundAmount": "1"}),
            json!({"oriPaymentId": "17000000000000000", "refundAmount": "1"}),
        ),
    ];
    for (path, theirs, missing) in probes {
        let stolen = t.rest_raw(path, Some(&thief_token), theirs).await;
        let absent = t.rest_raw(path, Some(&thief_token), missing).await;
        assert_eq!(
            stolen, absent,
            "{path}: another merchant's payment must look exactly like a missing one"
        );
        assert_eq!((stolen.0, code(&stolen.1)), (404, 20019));
    }
    // Nothing was refunded by the attempt.
    assert_eq!(
        rest.status_query(&paid.payment_id)
            .await
            .unwrap()
            .refund_amount,
        "0"
    );
}

#[tokio::test]
async fn every_pay_field_is_validated_by_name() {
    let t = TestGateway::start().await;
    let token = token(&t).await;
    let cases: Vec<(&str, Value, &str)> = vec![
        ("amount", Value::Null, "amount is required"),
        ("amount", json!(1000), "amount must be a string"),
        ("amount", json!("10.00"), "amount must be"),
        ("amount", json!("0"), "amount must be"),
        ("amount", json!("007"), "amount must be"),
        ("callbackURL", Value::Null, "callbackURL is required"),
        (
            "callbackURL",
            json!("ftp://x.example/cb"),
            "callbackURL must be an absolute http(s) URL",
        ),
        (
            "callbackURL",
            json!(format!("https://x.example/{}", "a".repeat(250))),
            "callbackURL must be at most 255 characters",
        ),
        ("returnURL", json!(""), "returnURL is required"),
        (
            "returnURL",
            json!(["https://x.example"]),
            "returnURL must be a string",
        ),
        (
            "remark",
            json!("r".repeat(129)),
            "remark must be at most 128 characters",
        ),
        ("reference", json!("has space"), "reference must be"),
    ];
    for (field, value, expected) in cases {
        let mut body = t.pay_body(None);
        if value.is_null() {
            body.as_object_mut().unwrap().remove(field);
        } else {
            body[field] = value.clone();
        }
        let (status, answer) = t
            .rest_raw("api/v1/pay/alipay/wap-pay", Some(&token), body)
            .await;
        assert_eq!((status, code(&answer)), (400, 10005), "{field}={value}");
        assert!(
            message(&answer).contains(expected),
            "{field}={value}: {}",
            message(&answer)
        );
    }
    let (status, answer) = t
        .rest_raw(
            "api/v1/pay/alipay/web-pay",
            Some(&token),
            json!("not an object"),
        )
        .await;
    assert_eq!((status, code(&answer)), (400, 10005));
    // A reference is unique per merchant.
    t.rest()
        .wap_pay(&pay_request(&t, Some("DUP-1")))
        .await
        .unwrap();
    let dup = t
        .rest()
        .wap_pay(&pay_request(&t, Some("DUP-1")))
        .await
        .unwrap_err();
    assert!(
        matches!(&dup, ClientError::Rest { code: 10005, message, .. } if message.contains("reference")),
        "{dup}"
    );
    // Refund fields too.
    for (body, expected) in [
        (json!({"refundAmount": "1"}), "oriPaymentId is required"),
        (
            json!({"oriPaymentId": "1", "refundAmount": "1.5"}),
            "refundAmount must be",
        ),
        (
            json!({"oriPaymentId": 1, "refundAmount": "1"}),
            "oriPaymentId must be a string",
        ),
    ] {
        let (status, answer) = t.rest_raw("api/v1/pay/refund", Some(&token), body).await;
        assert_eq!((status, code(&answer)), (400, 10005));
        assert!(message(&answer).contains(expected), "{}", message(&answer));
    }
}

#[tokio::test]
async fn an_unpaid_payment_cannot_be_refunded() {
    let t = TestGateway::start().await;
    let rest = t.rest();
    let pending = rest.wap_pay(&pay_request(&t, None)).await.unwrap();
    assert_eq!(
        rest.refund(&pending.payment_id, "1")
            .await
            .unwrap_err()
            .rest_code(),
        Some(20020)
    );
    let declined = rest.wap_pay(&pay_request(&t, None)).await.unwrap();
    complete(&t, &declined.payment_id, "failed").await;
    let s = rest.status_query(&declined.payment_id).await.unwrap();
    assert_eq!(
        (s.payment_status.as_str(), s.state_code.as_str()),
        ("orderclosed", "P00008")
    );
    assert_eq!(
        rest.refund(&declined.payment_id, "1")
            .await
            .unwrap_err()
            .rest_code(),
        Some(20020)
    );
    let (status, body) = complete(&t, &declined.payment_id, "paid").await;
    assert_eq!(status, 409, "{body}");
}

#[tokio::test]
async fn the_openapi_document_covers_every_rest_route() {
    let t = TestGateway::start().await;
    let doc: Value = t
        .get("api/v1/openapi.json")
        .fetch()
        .await
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(doc["servers"][0]["url"], "/");
    let paths = doc["paths"].as_object().unwrap();
    // The calls that move money declare the Idempotency-Key and what it can answer; the
    // others do not.
    let header = |op: &Value| {
        op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == "Idempotency-Key")
            .cloned()
    };
    let refund = &paths["/api/v1/pay/refund"]["post"];
    let key = header(refund).expect("Idempotency-Key on refund");
    assert_eq!(
        (key["in"].as_str(), key["required"].as_bool()),
        (Some("header"), Some(false))
    );
    assert_eq!(key["schema"]["maxLength"], 255);
    for status in ["400", "401", "408", "409", "413", "422", "500"] {
        assert!(refund["responses"][status].is_object(), "refund {status}");
    }
    assert!(header(&paths["/api/v1/payment/status-query"]["post"]).is_none());
    let limit = paths["/api/v1/events"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap();
    assert_eq!(
        (
            limit["schema"]["minimum"].as_f64(),
            limit["schema"]["maximum"].as_f64()
        ),
        (Some(1.0), Some(100.0))
    );
    // The event log: documented, served, behind the token.
    for (path, method) in [
        ("/api/v1/events", "get"),
        ("/api/v1/events/{id}/redeliver", "post"),
        ("/api/v1/settlements", "get"),
    ] {
        let op = &paths[path][method];
        assert!(op["security"].is_array(), "{path}: {op}");
        assert!(op["responses"]["200"].is_object(), "{path}");
        let served = path.replace("{id}", "0123456789abcdef0123456789abcdef");
        let r = match method {
            "get" => t.get(served.trim_start_matches('/')),
            _ => t.post(served.trim_start_matches('/')),
        }
        .fetch()
        .await;
        assert_eq!(r.status(), 401, "{path}");
    }
    let expected = [
        "/api/v1/auth/token",
        "/api/v1/pay/alipay/wap-pay",
        "/api/v1/pay/alipay/web-pay",
        "/api/v1/pay/weixin/active-pay",
        "/api/v1/pay/weixin/h5-pay",
        "/api/v1/pay/weixin/public-pay",
        "/api/v1/pay/alipay/inapp-pay",
        "/api/v1/pay/unionpay/inapp-secure-pay",
        "/api/v1/payment/status-query",
        "/api/v1/payment/status-query-by-reference",
        "/api/v1/pay/refund",
        "/api/v1/payment/local-card/payment3dsV2",
        "/api/v1/payment/local-card/refund",
        "/api/v1/payment/local-card/reverse",
    ];
    assert_eq!(
        paths.len(),
        expected.len() + 3,
        "{:?}",
        paths.keys().collect::<Vec<_>>()
    );
    for path in expected {
        let op = &paths[path]["post"];
        assert!(op.is_object(), "{path} is not documented");
        assert!(op["requestBody"].is_object(), "{path} has no request body");
        assert!(
            op["responses"]["200"].is_object(),
            "{path} has no success response"
        );
        // And the documented route is really served (401/400, never 404).
        let r = t
            .post(path.trim_start_matches('/'))
            .json(&json!({}))
            .fetch()
            .await;
        assert!(
            matches!(r.status().as_u16(), 400 | 401),
            "{path}: {}",
            r.status()
        );
        if path != "/api/v1/auth/token" {
            assert!(
                op["security"].is_array(),
                "{path} should require the bearer token"
            );
        }
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for schema in [
        "PayRequest",
        "PayResult",
        "PaymentStatusResult",
        "RefundRequest",
        "RefundResult",
        "TokenRequest",
        "TokenResult",
        "ErrorResult",
        "EventsResult",
        "EventItem",
        "RedeliverResult",
    ] {
        assert!(schemas.contains_key(schema), "schema {schema} missing");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let pay = &schemas["PayRequest"]["properties"];
    assert!(
        pay["callbackURL"].is_object() && pay["returnURL"].is_object(),
        "wire names are kept"
    );
}

/// The peak resident memory of this test process (nextest runs each test alone in one).
fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib / 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_wrong_keys_is_refused_before_hashing_and_memory_stays_bounded() {
    let t = TestGateway::start().await;
    let app_id = t.merchant.merchant.app_id.clone();
    let url = t.base.join("api/v1/auth/token").unwrap();
    let attempts = (0..200).map(|_| {
        let (http, url, app_id) = (t.http.clone(), url.clone(), app_id.clone());
        tokio::spawn(async move {
            http.post(url)
                .json(&json!({"appId": app_id, "appKey": "wrong"}))
                .fetch()
                .await
                .status()
                .as_u16()
        })
    });
    let mut statuses = Vec::new();
    for attempt in attempts.collect::<Vec<_>>() {
        statuses.push(attempt.await.unwrap());
    }
    let unauthorized = statuses.iter().filter(|s| **s == 401).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((unauthorized, limited), (10, 190), "{statuses:?}");
    let peak = peak_rss_mib();
    assert!(peak < 300, "peak RSS {peak} MiB");
}

#[tokio::test]
async fn strangers_cannot_lock_a_merchant_out() {
    let t = TestGateway::start().await;
    let app_id = t.merchant.merchant.app_id.clone();
    let right = json!({"appId": app_id, "appKey": t.merchant.app_key.expose_secret()});
    let from = |last: u8| {
        reqwest::Client::builder()
            .local_address(std::net::IpAddr::from([127, 0, 0, last]))
            .build()
            .unwrap()
    };
    let url = t.base.join("api/v1/auth/token").unwrap();
    let sign_in = |client: reqwest::Client, body: serde_json::Value| {
        let url = url.clone();
        async move { client.post(url).json(&body).fetch().await.status().as_u16() }
    };
    // The merchant signs in from its own address.
    assert_eq!(sign_in(from(1), right.clone()).await, 200);
    // Ten strangers, ten wrong keys each: a hundred failures for this appId.
    for stranger in 10..20 {
        for _ in 0..10 {
            let status = sign_in(from(stranger), json!({"appId": app_id, "appKey": "wrong"})).await;
            assert!(status == 401 || status == 429, "{status}");
        }
    }
    assert_eq!(
        sign_in(from(1), right.clone()).await,
        200,
        "the merchant's own address still signs in"
    );
    // A stranger's address is out of tries, even with the right key.
    assert_eq!(sign_in(from(10), right).await, 429);
}

/// POSTs `body` with a bearer token and an `Idempotency-Key`; status, replay marker, body.
async fn post_with_key(
    t: &TestGateway,
    path: &str,
    token: &str,
    key: &str,
    body: &Value,
) -> (u16, bool, String) {
    let r = t
        .post(path)
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(body)
        .fetch()
        .await;
    let replayed = r.headers().get("idempotent-replayed").is_some();
    (r.status().as_u16(), replayed, r.text().await.unwrap())
}

#[tokio::test]
async fn an_idempotency_key_makes_a_rest_payment_or_refund_happen_once() {
    let t = TestGateway::start().await;
    let token = token(&t).await;
    let pay = t.pay_body(None);
    let (status, replayed, first) =
        post_with_key(&t, "api/v1/pay/alipay/wap-pay", &token, "PAY-1", &pay).await;
    assert_eq!((status, replayed), (200, false), "{first}");
    let (status, replayed, again) =
        post_with_key(&t, "api/v1/pay/alipay/wap-pay", &token, "PAY-1", &pay).await;
    assert_eq!(
        (status, replayed, again.as_str()),
        (200, true, first.as_str())
    );
    let payment_id = serde_json::from_str::<Value>(&first).unwrap()["result"]["paymentId"]
        .as_str()
        .unwrap()
        .to_owned();
    complete(&t, &payment_id, "paid").await;

    let refund = json!({"oriPaymentId": payment_id, "refundAmount": "300"});
    let mut answers = Vec::new();
    for _ in 0..3 {
        let (status, _, body) =
            post_with_key(&t, "api/v1/pay/refund", &token, "REFUND-1", &refund).await;
        assert_eq!(status, 200, "{body}");
        answers.push(body);
    }
    assert!(answers.iter().all(|a| a == &answers[0]));
    // The same key for another request is refused; the payment is refunded once.
    let other = json!({"oriPaymentId": payment_id, "refundAmount": "100"});
    let (status, _, body) =
        post_with_key(&t, "api/v1/pay/refund", &token, "REFUND-1", &other).await;
    assert_eq!(status, 422, "{body}");
    let bad = post_with_key(&t, "api/v1/pay/refund", &token, "has space", &other).await;
    assert_eq!(bad.0, 400);
    crate::harness::eventually("the refund to settle", || async {
        t.rest()
            .status_query(&payment_id)
            .await
            .unwrap()
            .refund_amount
            == "300"
    })
    .await;
    // Keys are per merchant: another merchant's use of the same key is its own.
    let (other_merchant, other_rest) = t.other_merchant().await;
    let other_token = other_rest.fetch_token().await.unwrap().token;
    let (status, replayed, _) =
        post_with_key(&t, "api/v1/pay/alipay/wap-pay", &other_token, "PAY-1", &pay).await;
    assert_eq!((status, replayed), (200, false), "{other_merchant:?}");
}

/// A flood of wrong keys from a hundred addresses, each within its failure limit, fills
/// the hash queue; the merchant — signing in from the address it signed in from before —
/// is served first, not after the flood.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchants_own_sign_in_goes_before_a_distributed_flood() {
    let t = TestGateway::with(Options {
        auth_hash_concurrency: Some(1),
        ..Options::default()
    })
    .await;
    let app_id = t.merchant.merchant.app_id.clone();
    let right = json!({"appId": app_id, "appKey": t.merchant.app_key.expose_secret()});
    let url = t.base.join("api/v1/auth/token").unwrap();
    let sign_in = |client: reqwest::Client, body: Value| {
        let url = url.clone();
        async move {
            let started = std::time::Instant::now();
            let status = client.post(url).json(&body).fetch().await.status().as_u16();
            (status, started.elapsed())
        }
    };
    let merchant = crate::harness::client_from(1);
    assert_eq!(sign_in(merchant.clone(), right.clone()).await.0, 200);
    // 120 wrong keys for made-up appIds, from sixty addresses.
    let flood: Vec<_> = (0..120u32)
        .map(|i| {
            let client = crate::harness::client_from(10 + (i % 60) as u8);
            let body = json!({"appId": format!("STRANGER{i}"), "appKey": "wrong"});
            tokio::spawn(sign_in(client, body))
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (status, waited) = sign_in(merchant, right).await;
    assert_eq!(status, 200);
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut slowest = std::time::Duration::ZERO;
    for f in flood {
        let (status, took) = f.await.unwrap();
        *statuses.entry(status).or_default() += 1;
        slowest = slowest.max(took);
    }
    assert!(
        waited * 4 < slowest,
        "the merchant waited {waited:?}; the flood's slowest {slowest:?} ({statuses:?})"
    );
}

/// The SDK's idempotent client: the same refund sent twice with one key is made once, and
/// both answers name it; another key is another refund.
#[tokio::test]
async fn the_sdks_idempotent_client_refunds_once_per_key() {
    let t = TestGateway::start().await;
    let rest = t.rest();
    let paid = rest
        .wap_pay(&serde_json::from_value(t.pay_body(None)).unwrap())
        .await
        .unwrap();
    let (status, _) = complete(&t, &paid.payment_id, "paid").await;
    assert_eq!(status, 200);
    let once = rest.idempotent("sdk-refund-1");
    let first = once.refund(&paid.payment_id, "100").await.unwrap();
    let again = once.refund(&paid.payment_id, "100").await.unwrap();
    assert_eq!(first.refund_id, again.refund_id);
    let other = rest
        .idempotent("sdk-refund-2")
        .refund(&paid.payment_id, "100")
        .await
        .unwrap();
    assert_ne!(other.refund_id, first.refund_id);
    // Alipay confirms each refund by notification: two of 1.00, never three.
    crate::harness::eventually("both refunds", || async {
        rest.status_query(&paid.payment_id)
            .await
            .unwrap()
            .refund_amount
            == "200"
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = rest.status_query(&paid.payment_id).await.unwrap();
    assert_eq!(status.refund_amount, "200", "{status:?}");
}
