//! STATUS_QUERY and REFUND on the envelope API, for checkout payments.

use ottgate_client::{Client, ClientError};
use ottgate_testkit::Fetch;
use std::sync::Arc;

use crate::harness::TestGateway;

/// A paid checkout payment of 12.34 CAD; its payment (attempt) id.
async fn paid(t: &TestGateway, reference: &str) -> String {
    // Card (the sandbox wallet) refunds synchronously; Alipay's asynchronous refunds have
    // their own test.
    paid_with(t, reference, "GP").await
}

async fn paid_with(t: &TestGateway, reference: &str, method: &str) -> String {
    let created = t.create(reference).await;
    let (status, body) = t.complete(&created.payinfo, method, "paid").await;
    assert_eq!(status, 200, "{body}");
    body["order_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_checkout_payment_is_refunded_in_parts_and_the_status_follows() {
    let t = TestGateway::start().await;
    let payment = paid(&t, "refund-1").await;

    let q = t.client.status_query(&payment).await.unwrap();
    assert_eq!(
        (q.order_status.as_str(), q.state_code.as_str()),
        ("success", "P00003")
    );
    assert_eq!(
        (
            q.amount.as_str(),
            q.refund_amount.as_str(),
            q.payment_method.as_str()
        ),
        ("1234", "0", "GP")
    );
    assert_eq!(q.prepay_order_id.as_deref(), Some("refund-1"));
    assert!(
        q.bizpay_order_id
            .as_deref()
            .is_some_and(|b| b.starts_with("SB"))
    );

    let first = t.client.refund(&payment, "1000", None).await.unwrap();
    assert_eq!(
        (
            first.refund_status.as_str(),
            first.refund_amt.as_str(),
            first.ori_order_id.as_str()
        ),
        ("success", "1000", payment.as_str())
    );
    assert!(first.refund_id.starts_with("REF"));
    assert_eq!(
        first.order_id, first.refund_id,
        "no merchant refund id: ours is used"
    );
    let q = t.client.status_query(&payment).await.unwrap();
    assert_eq!(
        (
            q.order_status.as_str(),
            q.state_code.as_str(),
            q.refund_amount.as_str()
        ),
        ("partial_refunded", "P00005", "1000")
    );

    let too_much = t.client.refund(&payment, "235", None).await.unwrap_err();
    assert_eq!(too_much.rsp_code(), Some("FAIL"));
    assert!(too_much.to_string().contains("234"), "{too_much}");

    t.client.refund(&payment, "234", None).await.unwrap();
    let q = t.client.status_query(&payment).await.unwrap();
    assert_eq!(
        (
            q.order_status.as_str(),
            q.state_code.as_str(),
            q.refund_amount.as_str()
        ),
        ("fully_refunded", "P00004", "1234")
    );
    let again = t.client.refund(&payment, "1", None).await.unwrap_err();
    assert_eq!(again.rsp_code(), Some("FAIL"));
    assert!(again.to_string().contains("fully refunded"));
    // The checkout order itself stays paid.
    assert_eq!(
        t.client.prepay_query("refund-1").await.unwrap().status,
        "SUCCESS"
    );
}

#[tokio::test]
async fn a_merchant_refund_id_makes_refunds_safe_to_retry() {
    let t = TestGateway::start().await;
    let payment = paid(&t, "refund-2").await;
    let first = t
        .client
        .refund(&payment, "500", Some("RF-1"))
        .await
        .unwrap();
    assert_eq!(first.order_id, "RF-1");
    let replay = t
        .client
        .refund(&payment, "500", Some("RF-1"))
        .await
        .unwrap();
    assert_eq!(replay, first, "the same refund, not a second one");
    let conflict = t
        .client
        .refund(&payment, "400", Some("RF-1"))
        .await
        .unwrap_err();
    assert_eq!(conflict.rsp_code(), Some("ORDER_USED"));
    assert_eq!(
        t.client.status_query(&payment).await.unwrap().refund_amount,
        "500"
    );
}

#[tokio::test]
async fn twenty_concurrent_refunds_take_exactly_what_was_paid() {
    let t = TestGateway::start().await;
    let payment = paid(&t, "refund-3").await; // 1234
    let client = Arc::new(t.client.clone());
    // Twenty different refunds (each its own refund id: identical requests would be one).
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (client, payment) = (client.clone(), payment.clone());
            tokio::spawn(async move {
                client
                    .refund(&payment, "100", Some(&format!("CR-{i}")))
                    .await
            })
        })
        .collect();
    let mut succeeded = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(r) => {
                assert_eq!(r.refund_status, "success");
                succeeded += 1;
            }
            Err(e) => assert_eq!(e.rsp_code(), Some("FAIL"), "{e}"),
        }
    }
    assert_eq!(succeeded, 12);
    let q = t.client.status_query(&payment).await.unwrap();
    assert_eq!(
        (q.refund_amount.as_str(), q.order_status.as_str()),
        ("1200", "partial_refunded")
    );
}

#[tokio::test]
async fn unpaid_closed_and_foreign_payments_cannot_be_refunded_or_seen() {
    let t = TestGateway::start().await;
    // Pending: chosen but not paid.
    let created = t.create("refund-4").await;
    let chose = t.choose(&created.payinfo, "UNIONPAY").await;
    // The page that posts our signed form to UnionPay.
    assert_eq!(chose.status(), 200);
    assert!(chose.text().await.unwrap().contains("id=\"wallet-form\""));
    let pending = t
        .client
        .prepay_query("refund-4")
        .await
        .unwrap()
        .payments_methods[0]
        .order_id
        .clone();
    assert_eq!(
        t.client.status_query(&pending).await.unwrap().order_status,
        "init"
    );
    let err = t.client.refund(&pending, "1", None).await.unwrap_err();
    assert_eq!(err.rsp_code(), Some("ORDER_TYPE_ERROR"));
    // Declined.
    let declined = t.create("refund-5").await;
    let (_, body) = t.complete(&declined.payinfo, "GP", "failed").await;
    let failed = body["order_id"].as_str().unwrap();
    let q = t.client.status_query(failed).await.unwrap();
    assert_eq!(
        (q.order_status.as_str(), q.state_code.as_str()),
        ("orderclosed", "P00008")
    );
    assert_eq!(
        t.client
            .refund(failed, "1", None)
            .await
            .unwrap_err()
            .rsp_code(),
        Some("ORDER_TYPE_ERROR")
    );
    // Another merchant's payment is exactly as absent as a made-up one.
    let mine = paid(&t, "refund-6").await;
    let other = t.add_merchant("Other").await;
    let thief = Client::new(
        t.base.as_str(),
        other.merchant.id.as_str(),
        other.sign_key.clone(),
    )
    .unwrap();
    for id in [mine.as_str(), "17000000000000000"] {
        let seen = thief.status_query(id).await.unwrap_err();
        assert_eq!(
            (seen.rsp_code(), seen.to_string()),
            (
                Some("PARAM_INVALID"),
                "PARAM_INVALID: order_id not found".to_owned()
            )
        );
        let taken = thief.refund(id, "1", None).await.unwrap_err();
        assert_eq!(
            (taken.rsp_code(), taken.to_string()),
            (
                Some("PARAM_INVALID"),
                "PARAM_INVALID: ori_order_id not found".to_owned()
            )
        );
    }
    assert_eq!(
        t.client.status_query(&mine).await.unwrap().refund_amount,
        "0"
    );
}

#[tokio::test]
async fn malformed_refunds_are_refused_by_field() {
    let t = TestGateway::start().await;
    let payment = paid(&t, "refund-7").await;
    for (amount, code) in [
        ("0", "PARAM_ERROR"),
        ("1.00", "PARAM_ERROR"),
        ("-1", "PARAM_ERROR"),
        ("", "PARAM_ERROR"),
    ] {
        let e = t.client.refund(&payment, amount, None).await.unwrap_err();
        assert_eq!(e.rsp_code(), Some(code), "{amount:?}: {e}");
        assert!(e.to_string().contains("refund_amt"), "{e}");
    }
    let e: ClientError = t.client.refund("", "1", None).await.unwrap_err();
    assert_eq!(e.rsp_code(), Some("PARAM_INVALID"));
    assert!(e.to_string().contains("ori_order_id"));
    assert_eq!(
        t.client.status_query(&payment).await.unwrap().refund_amount,
        "0"
    );
}

#[tokio::test]
async fn an_alipay_refund_is_pending_until_alipay_reports_its_result() {
    let t = TestGateway::start().await;
    let payment = paid_with(&t, "refund-alipay", "ALIPAY").await;
    let q = t.client.status_query(&payment).await.unwrap();
    assert_eq!(
        (q.order_status.as_str(), q.payment_method.as_str()),
        ("success", "ALIPAY")
    );
    // forex_refund is accepted at once; the result comes by notification.
    let r = t
        .client
        .refund(&payment, "1000", Some("AR-1"))
        .await
        .unwrap();
    assert_eq!(r.refund_status, "pending");
    // The held amount already counts: no second refund can take it.
    assert_eq!(
        t.client
            .refund(&payment, "235", None)
            .await
            .unwrap_err()
            .rsp_code(),
        Some("FAIL")
    );
    crate::harness::eventually("Alipay's refund notification", || async {
        t.client.status_query(&payment).await.unwrap().refund_amount == "1000"
    })
    .await;
    assert_eq!(
        t.client.status_query(&payment).await.unwrap().order_status,
        "partial_refunded"
    );
    // The replay of a finished refund shows its final status.
    assert_eq!(
        t.client
            .refund(&payment, "1000", Some("AR-1"))
            .await
            .unwrap()
            .refund_status,
        "success"
    );
}

#[tokio::test]
async fn an_identical_refund_without_a_refund_id_is_answered_not_repeated() {
    let t = TestGateway::start().await;
    let payment = paid(&t, "refund-replay").await; // 1234
    let fields = ottgate_client::Fields::from_iter([
        (
            "merchant_id".to_owned(),
            t.merchant.merchant.id.as_str().into(),
        ),
        ("ori_order_id".to_owned(), payment.as_str().into()),
        ("refund_amt".to_owned(), "300".into()),
    ]);
    let mut answers = Vec::new();
    for _ in 0..3 {
        let reply = t
            .client
            .exchange("REFUND", "1.0", fields.clone())
            .await
            .unwrap();
        assert_eq!(reply.response.rsp_code, "SUCCESS");
        answers.push(reply.response);
    }
    assert!(
        answers.iter().all(|a| a == &answers[0]),
        "the first result, replayed"
    );
    let q = t.client.status_query(&payment).await.unwrap();
    assert_eq!(q.refund_amount, "300", "refunded once");
    // Another request (another amount) is another refund.
    t.client.refund(&payment, "200", None).await.unwrap();
    assert_eq!(
        t.client.status_query(&payment).await.unwrap().refund_amount,
        "500"
    );
}

/// Two different refunds whose values join to the same text — `P-1` + `23` and `P-12` +
/// `3`, which the md5 signs alike — are two refunds: the key that recognises a repeat is over
/// every field with its name.
#[tokio::test]
async fn refunds_whose_values_join_alike_are_still_two_refunds() {
    let t = TestGateway::start().await;
    for id in ["P-1", "P-12"] {
        let request = ottgate_client::ActivePayRequest {
            merchant_id: None,
            order_id: Some(id.into()),
            operator_id: Some(t.merchant.merchant.operator_id.to_string()),
            amount: Some("1000".into()),
            tip: None,
            biz_type: Some("WECHATPAY".into()),
            call_back_url: Some(t.receiver_url.join("notify").unwrap().to_string()),
            remarks: None,
            currency_type: None,
        };
        t.client.active_pay(&request).await.unwrap();
        let r = t
            .post(&format!("sandbox/v1/payments/{id}/complete"))
            .json(&serde_json::json!({"outcome": "paid"}))
            .fetch()
            .await;
        assert_eq!(r.status(), 200);
    }
    let ask = |ori: &str, amount: &str| {
        ottgate_client::Fields::from_iter([
            (
                "merchant_id".to_owned(),
                t.merchant.merchant.id.as_str().into(),
            ),
            ("ori_order_id".to_owned(), ori.into()),
            ("refund_amt".to_owned(), amount.into()),
        ])
    };
    let first = t
        .client
        .exchange("REFUND", "1.0", ask("P-1", "23"))
        .await
        .unwrap();
    let second = t
        .client
        .exchange("REFUND", "1.0", ask("P-12", "3"))
        .await
        .unwrap();
    assert_eq!(
        first.request.md5, second.request.md5,
        "the md5 cannot tell them apart"
    );
    let said = |e: &ottgate_client::Exchange| {
        let data = e.response_fields.clone().unwrap();
        (
            data["ori_order_id"].as_str().unwrap().to_owned(),
            data["refund_amt"].as_str().unwrap().to_owned(),
        )
    };
    assert_eq!(said(&first), ("P-1".into(), "23".into()));
    assert_eq!(said(&second), ("P-12".into(), "3".into()));
    assert_eq!(
        t.client.status_query("P-1").await.unwrap().refund_amount,
        "23"
    );
    assert_eq!(
        t.client.status_query("P-12").await.unwrap().refund_amount,
        "3"
    );
}
