//! The actions real OTT Pay integrations call besides the checkout — ACTIVEPAY (a QR code
//! the merchant shows), H5PAY (WeChat Pay in a phone browser), EX_RATE_QUERY — the paths
//! they post to, and the encodings they send; all through real HTTP.

use ottgate_client::{ActivePayRequest, Client, EnvelopeResponse, H5PayRequest, SignKey};
use ottgate_envelope::{NumberText, seal, seal_text_with};
use ottgate_testkit::Fetch;
use rstest::rstest;
use serde_json::{Value, json};

use crate::harness::{
    Options, TestGateway, act_at_wechat, attribute, eventually, location, pay_at_wallet,
};

fn active_pay(t: &TestGateway, order_id: Option<&str>, wallet: &str) -> ActivePayRequest {
    ActivePayRequest {
        merchant_id: None,
        order_id: order_id.map(str::to_owned),
        operator_id: Some(t.merchant.merchant.operator_id.to_string()),
        amount: Some("1234".into()),
        tip: Some("100".into()),
        biz_type: Some(wallet.into()),
        call_back_url: Some(t.receiver_url.join("notify").unwrap().to_string()),
        remarks: Some("table 4".into()),
        currency_type: None,
    }
}

fn h5_pay(t: &TestGateway, order_id: &str, redirect: bool) -> H5PayRequest {
    H5PayRequest {
        order_id: Some(order_id.into()),
        operator_id: Some(t.merchant.merchant.operator_id.to_string()),
        amount: Some("1500".into()),
        currency_type: Some("CAD".into()),
        biz_type: Some("WECHATPAY".into()),
        submit_type: Some("form".into()),
        call_back_url: Some(t.receiver_url.join("notify").unwrap().to_string()),
        redirect_url: redirect.then(|| t.receiver_url.join("return").unwrap().to_string()),
        ..H5PayRequest::default()
    }
}

/// Scans `code_url` with the wallet's app and presses Pay: a simulated Alipay's or
/// UnionPay's code is its own page; a WeChat code is opened through the simulator's scan
/// page.
async fn scan_and_pay(t: &TestGateway, wallet: &str, code_url: &str) {
    if wallet == "WECHATPAY" {
        let mut scan = t.base.join("sim/wechatpay/scan").unwrap();
        scan.query_pairs_mut().append_pair("code_url", code_url);
        let paid = act_at_wechat(t, scan.as_str(), "paid").await;
        assert!(paid.status().is_success(), "{}", paid.status());
        return;
    }
    let page = t.page(code_url).await;
    let prefix = if wallet == "ALIPAY" {
        "alipay"
    } else {
        "unionpay"
    };
    let paid = t
        .http
        .post(attribute(&page, &format!("{prefix}-form"), "action"))
        .form(&[("action", "pay")])
        .fetch()
        .await;
    assert!(paid.status().is_success(), "{}", paid.status());
}

#[rstest]
#[case::alipay("ALIPAY", "/sim/alipay/qr/")]
#[case::wechat("WECHATPAY", "weixin://wxpay/bizpayurl?pr=")]
#[case::unionpay("UNIONPAY", "/sim/unionpay/qr/")]
#[tokio::test]
async fn an_activepay_code_is_paid_queried_and_refunded_by_the_merchants_order_id(
    #[case] wallet: &str,
    #[case] code_looks_like: &str,
) {
    let t = TestGateway::start().await;
    let order_id = format!("POS-{wallet}-4435");
    let created = t
        .client
        .active_pay(&active_pay(&t, Some(&order_id), wallet))
        .await
        .unwrap();
    assert_eq!(
        (
            created.order_id.as_str(),
            created.amount.as_str(),
            created.tip.as_str(),
            created.currency_type.as_str(),
            created.biz_type.as_str()
        ),
        (order_id.as_str(), "1234", "100", "CAD", wallet)
    );
    assert!(
        created.code_url.contains(code_looks_like),
        "{}",
        created.code_url
    );
    let before = t.client.status_query(&order_id).await.unwrap();
    assert_eq!(before.order_status, "init");

    scan_and_pay(&t, wallet, &created.code_url).await;

    let callback = t
        .client
        .verify_callback(&t.receiver.wait_for(1).await[0])
        .unwrap();
    assert_eq!(
        (
            callback.order_id.as_str(),
            callback.amount.as_str(),
            callback.tip.as_str(),
            callback.remarks.as_deref()
        ),
        (order_id.as_str(), "1234", "100", Some("table 4"))
    );
    assert!(!callback.bizpay_order_id.is_empty());
    let paid = t.client.status_query(&order_id).await.unwrap();
    assert_eq!(
        (
            paid.order_id.as_str(),
            paid.order_status.as_str(),
            paid.payment_method.as_str()
        ),
        (order_id.as_str(), "success", wallet)
    );
    assert_eq!(
        paid.bizpay_order_id.as_deref(),
        Some(callback.bizpay_order_id.as_str())
    );

    let refund = t
        .client
        .refund(&order_id, "234", Some(&format!("R-{wallet}")))
        .await
        .unwrap();
    assert_eq!(refund.ori_order_id, order_id);
    // UnionPay decides refunds by notification; the others at once.
    eventually("the refund to be decided", || async {
        t.client
            .status_query(&order_id)
            .await
            .unwrap()
            .refund_amount
            == "234"
    })
    .await;
    let refunded = t.client.status_query(&order_id).await.unwrap();
    assert_eq!(refunded.order_status, "partial_refunded");
}

#[tokio::test]
async fn an_identical_activepay_replays_its_answer_and_other_content_is_order_used() {
    let t = TestGateway::start().await;
    let request = active_pay(&t, Some("POS-REPLAY"), "WECHATPAY");
    let fields = ottgate_api_fields(&t, &request);
    let first = t
        .client
        .exchange("ACTIVEPAY", "1.0", fields.clone())
        .await
        .unwrap();
    let again = t.client.exchange("ACTIVEPAY", "1.0", fields).await.unwrap();
    assert_eq!(first.response.rsp_code, "SUCCESS");
    assert_eq!(first.response, again.response, "replayed byte for byte");

    let other = ActivePayRequest {
        amount: Some("999".into()),
        ..request.clone()
    };
    let err = t.client.active_pay(&other).await.unwrap_err();
    assert_eq!(err.rsp_code(), Some("ORDER_USED"), "{err}");
    assert_eq!(
        t.client.status_query("POS-REPLAY").await.unwrap().amount,
        "1234"
    );

    // Without an order_id the gateway names each payment afresh.
    let a = t
        .client
        .active_pay(&active_pay(&t, None, "ALIPAY"))
        .await
        .unwrap();
    let b = t
        .client
        .active_pay(&active_pay(&t, None, "ALIPAY"))
        .await
        .unwrap();
    assert_ne!(a.order_id, b.order_id);
    assert_eq!(
        t.client.status_query(&a.order_id).await.unwrap().order_id,
        a.order_id
    );
}

fn ottgate_api_fields(t: &TestGateway, request: &ActivePayRequest) -> ottgate_client::Fields {
    let mut request = request.clone();
    request.merchant_id = Some(t.merchant.merchant.id.to_string());
    match serde_json::to_value(&request).unwrap() {
        Value::Object(fields) => fields,
        _ => unreachable!(),
    }
}

#[rstest]
#[case::another_operator("operator_id", Some("0000000001"), "PARAM_INVALID", "operator_id")]
#[case::no_amount("amount", None, "PARAM_INVALID", "amount")]
#[case::fractional_amount("amount", Some("12.5"), "PARAM_ERROR", "amount")]
#[case::zero_amount("amount", Some("0"), "PARAM_ERROR", "amount")]
#[case::tip_over_amount("tip", Some("5000"), "PARAM_ERROR", "tip")]
#[case::signed_tip("tip", Some("-1"), "PARAM_ERROR", "tip")]
#[case::no_biz_type("biz_type", None, "PARAM_INVALID", "biz_type")]
#[case::card_biz_type("biz_type", Some("GP"), "PARAM_ERROR", "biz_type")]
#[case::no_callback("call_back_url", None, "PARAM_INVALID", "call_back_url")]
#[case::relative_callback("call_back_url", Some("/notify"), "PARAM_ERROR", "call_back_url")]
#[case::foreign_currency("currency_type", Some("EUR"), "PARAM_INVALID", "currency_type")]
#[case::spaced_order_id("order_id", Some("POS 1"), "PARAM_ERROR", "order_id")]
#[case::another_merchant("merchant_id", Some("ON99999999"), "PARAM_INVALID", "merchant_id")]
#[tokio::test]
async fn a_bad_activepay_field_is_named_and_changes_nothing(
    #[case] field: &str,
    #[case] value: Option<&str>,
    #[case] code: &str,
    #[case] mentions: &str,
) {
    let t = TestGateway::start().await;
    let mut fields = ottgate_api_fields(&t, &active_pay(&t, Some("POS-BAD"), "ALIPAY"));
    match value {
        Some(v) => fields.insert(field.into(), v.into()),
        None => fields.remove(field),
    };
    let reply = t.client.exchange("ACTIVEPAY", "1.0", fields).await.unwrap();
    assert_eq!(reply.response.rsp_code, code, "{:?}", reply.response);
    assert!(
        reply.response.rsp_msg.contains(mentions),
        "{:?} should name {mentions}",
        reply.response.rsp_msg
    );
    let err = t.client.status_query("POS-BAD").await.unwrap_err();
    assert_eq!(err.rsp_code(), Some("PARAM_INVALID"), "nothing was created");
}

#[tokio::test]
async fn h5pay_sends_the_phone_to_wechat_and_back_to_the_merchant() {
    let t = TestGateway::start().await;
    let created = t.client.h5_pay(&h5_pay(&t, "H5-1", true)).await.unwrap();
    assert_eq!(
        (
            created.order_id.as_str(),
            created.amount.as_str(),
            created.time_zone_id.as_str()
        ),
        ("H5-1", "1500", "America/Toronto")
    );
    assert!(
        created
            .payinfo
            .contains("/sim/wechatpay/checkmweb?prepay_id="),
        "{}",
        created.payinfo
    );
    let landed = pay_at_wallet(&t, &created.payinfo, "paid").await;
    assert!(
        landed.starts_with(t.receiver_url.join("return").unwrap().as_str()),
        "{landed}"
    );
    let back = t
        .client
        .verify_redirect(landed.split_once('?').unwrap().1)
        .unwrap();
    assert_eq!(
        (back.out_trade_no.as_str(), back.trade_status.as_str()),
        ("H5-1", "Trade_Finished")
    );
    let callback = t
        .client
        .verify_callback(&t.receiver.wait_for(1).await[0])
        .unwrap();
    assert_eq!(callback.order_id, "H5-1");
    assert_eq!(
        t.client.status_query("H5-1").await.unwrap().order_status,
        "success"
    );

    // Without a redirect_url the buyer stays on the gateway's result page.
    let quiet = t.client.h5_pay(&h5_pay(&t, "H5-2", false)).await.unwrap();
    let page = act_at_wechat(&t, &quiet.payinfo, "paid").await;
    let ours = t.http.get(location(&page)).fetch().await;
    assert_eq!(ours.status(), 200);
    assert!(ours.text().await.unwrap().contains("status-ok"));
}

#[rstest]
#[case::json_submit("submit_type", "json", "submit_type")]
#[case::alipay("biz_type", "ALIPAY", "biz_type")]
#[case::another_shop("shop_id", "XX00000000001", "shop_id")]
#[tokio::test]
async fn a_bad_h5pay_field_is_named_and_changes_nothing(
    #[case] field: &str,
    #[case] value: &str,
    #[case] mentions: &str,
) {
    let t = TestGateway::start().await;
    let mut fields = match serde_json::to_value(h5_pay(&t, "H5-BAD", false)).unwrap() {
        Value::Object(f) => f,
        _ => unreachable!(),
    };
    fields.insert(field.into(), value.into());
    let reply = t.client.exchange("H5PAY", "2.0", fields).await.unwrap();
    assert_ne!(reply.response.rsp_code, "SUCCESS");
    assert!(
        reply.response.rsp_msg.contains(mentions),
        "{:?}",
        reply.response
    );
    assert!(t.client.status_query("H5-BAD").await.is_err());
}

#[tokio::test]
async fn the_sandbox_helper_completes_direct_payments_by_their_order_id() {
    let t = TestGateway::start().await;
    let complete = |id: String, outcome: &'static str| {
        let url = t
            .base
            .join(&format!("sandbox/v1/payments/{id}/complete"))
            .unwrap();
        let http = t.http.clone();
        async move {
            let r = http
                .post(url)
                .json(&json!({"outcome": outcome}))
                .fetch()
                .await;
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    for wallet in ["ALIPAY", "WECHATPAY", "UNIONPAY"] {
        let id = format!("HELPER-{wallet}");
        t.client
            .active_pay(&active_pay(&t, Some(&id), wallet))
            .await
            .unwrap();
        let (status, body) = complete(id.clone(), "paid").await;
        assert_eq!(
            (status, body["status"].as_str()),
            (200, Some("success")),
            "{body}"
        );
        assert_eq!(body["order_id"], id.as_str());
    }
    t.receiver.wait_for(3).await;
    let declined = t
        .client
        .h5_pay(&h5_pay(&t, "HELPER-H5", false))
        .await
        .unwrap();
    let (status, body) = complete(declined.order_id.clone(), "failed").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("orderclosed")),
        "{body}"
    );
    // A gateway-assigned id works the same.
    let assigned = t
        .client
        .active_pay(&active_pay(&t, None, "WECHATPAY"))
        .await
        .unwrap();
    let (status, _) = complete(assigned.order_id.clone(), "paid").await;
    assert_eq!(status, 200);
    let (status, _) = complete("NO-SUCH-ORDER".into(), "paid").await;
    assert_eq!(status, 404);
}

/// The helper completes only a payment of the merchant it names, and an id that names
/// payments of several merchants needs a name.
#[tokio::test]
async fn the_sandbox_helper_completes_only_the_named_merchants_payment() {
    let t = TestGateway::start().await;
    let other = t.add_merchant("Other Shop").await;
    let theirs = Client::new(
        t.base.as_str(),
        other.merchant.id.as_str(),
        other.sign_key.clone(),
    )
    .unwrap();
    let complete = |id: String, body: Value| {
        let url = t
            .base
            .join(&format!("sandbox/v1/payments/{id}/complete"))
            .unwrap();
        let http = t.http.clone();
        async move {
            let r = http.post(url).json(&body).fetch().await;
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    // By the gateway's id, naming another merchant: not found, and nothing paid.
    let mine = t
        .client
        .active_pay(&active_pay(&t, None, "WECHATPAY"))
        .await
        .unwrap();
    let (status, _) = complete(
        mine.order_id.clone(),
        json!({"outcome": "paid", "merchant_id": other.merchant.id.as_str()}),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(t.attempt_status(&mine.order_id).await, "init", "not paid");
    // One order_id used by both merchants: the name is required, and decides.
    let shared = "TABLE-7";
    t.client
        .active_pay(&active_pay(&t, Some(shared), "ALIPAY"))
        .await
        .unwrap();
    let mut request = active_pay(&t, Some(shared), "ALIPAY");
    request.operator_id = Some(other.merchant.operator_id.to_string());
    theirs.active_pay(&request).await.unwrap();
    let (status, body) = complete(shared.into(), json!({"outcome": "paid"})).await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = complete(
        shared.into(),
        json!({"outcome": "paid", "merchant_id": other.merchant.id.as_str()}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        theirs.status_query(shared).await.unwrap().order_status,
        "success"
    );
    assert_eq!(t.attempt_status(shared).await, "init", "not paid");
}

/// A merchant's own `order_id` that is the gateway's id of another of its payments would
/// make every later lookup ambiguous: it is refused. A lookup that is ambiguous anyway (data
/// from before this rule) is refused too, never answered about — or refunding — either.
#[tokio::test]
async fn an_order_id_that_is_another_payments_gateway_id_is_never_mistaken() {
    let t = TestGateway::start().await;
    let first = t
        .client
        .active_pay(&active_pay(&t, None, "WECHATPAY"))
        .await
        .unwrap();
    let taken = t
        .client
        .active_pay(&active_pay(&t, Some(&first.order_id), "WECHATPAY"))
        .await
        .unwrap_err();
    assert_eq!(taken.rsp_code(), Some("ORDER_USED"), "{taken}");

    // Made anyway (written straight to the store, as an older gateway could have): an
    // ACTIVEPAY payment whose order_id is `first`'s gateway id.
    let store = &t.gateway.state().service.store;
    let merchant = &t.merchant.merchant;
    let clash = ottgate_core::Order {
        reference: Some(ottgate_core::MerchantRef::parse(&first.order_id).unwrap()),
        ..ottgate_core::Order::new(
            ottgate_core::OrderKind::ActivePay,
            merchant,
            ottgate_core::Money::new(
                ottgate_core::Amount::from_minor(999).unwrap(),
                ottgate_core::Currency::Cad,
            ),
            t.receiver_url.join("notify").unwrap().to_string(),
            t.now(),
            std::time::Duration::from_secs(600),
        )
    };
    store
        .create_order(ottgate_store::NewOrder {
            order: clash,
            request_md5: "CLASH".into(),
            response_data: String::new(),
            first_attempt: Some(ottgate_core::PaymentMethod::WeChatPay),
        })
        .await
        .unwrap();
    let helper = t
        .post(&format!("sandbox/v1/payments/{}/complete", first.order_id))
        .json(&json!({"outcome": "paid", "merchant_id": merchant.id.as_str()}))
        .fetch()
        .await;
    assert_eq!(helper.status(), 409, "the helper will not guess either");
    let asked = t.client.status_query(&first.order_id).await.unwrap_err();
    assert_eq!(asked.rsp_code(), Some("PARAM_INVALID"));
    assert!(asked.to_string().contains("names two payments"), "{asked}");
    let refund = t
        .client
        .refund(&first.order_id, "1", None)
        .await
        .unwrap_err();
    assert_eq!(refund.rsp_code(), Some("PARAM_INVALID"));
}

#[tokio::test]
async fn exchange_rates_come_from_wechat_and_unknown_currencies_are_named() {
    let t = TestGateway::with(Options {
        exchange_rates: Some("CAD=5.5,XAU=3000.12345678"),
        ..Options::default()
    })
    .await;
    let today = &t.now().beijing_compact()[..8];
    let cad = t.client.exchange_rate("cad").await.unwrap();
    assert_eq!(
        (
            cad.fee_type.as_str(),
            cad.rate.as_str(),
            cad.rate_time.as_str()
        ),
        ("CAD", "550000000", today)
    );
    assert_eq!(
        t.client.exchange_rate("USD").await.unwrap().rate,
        "710000000"
    );
    assert_eq!(
        t.client.exchange_rate("XAU").await.unwrap().rate,
        "300012345678"
    );
    assert_eq!(
        t.client.exchange_rate("CNY").await.unwrap().rate,
        "100000000"
    );
    let unknown = t.client.exchange_rate("XYZ").await.unwrap_err();
    assert_eq!(unknown.rsp_code(), Some("PARAM_INVALID"));
    assert!(unknown.to_string().contains("XYZ"), "{unknown}");
    let malformed = t.client.exchange_rate("CA").await.unwrap_err();
    assert_eq!(malformed.rsp_code(), Some("PARAM_ERROR"));
    let missing = t
        .client
        .exchange("EX_RATE_QUERY", "1.0", ottgate_client::Fields::new())
        .await
        .unwrap();
    assert_eq!(
        (
            missing.response.rsp_code.as_str(),
            missing.response.rsp_msg.contains("fee_type")
        ),
        ("PARAM_INVALID", true)
    );
}

/// POSTs `body` to `path`; the status and the exact bytes of the answer.
async fn post_raw(t: &TestGateway, path: &str, body: &str) -> (u16, String) {
    let r = t
        .post(path)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .fetch()
        .await;
    (r.status().as_u16(), r.text().await.unwrap())
}

fn envelope_body(t: &TestGateway, action: &str, version: &str, data: &str, md5: &str) -> String {
    json!({"action": action, "version": version, "merchant_id": t.merchant.merchant.id.as_str(), "data": data, "md5": md5}).to_string()
}

#[tokio::test]
async fn process_processv2_and_processv3_answer_alike_and_unknown_paths_answer_in_json() {
    let t = TestGateway::start().await;
    let created = t.create("PATHS-1").await;
    let query = seal(
        &ottgate_client::query_fields(t.merchant.merchant.id.as_str(), "PATHS-1"),
        &t.key(),
    );
    let body = envelope_body(&t, "PREPAY_QUERY", "2.0", &query.data, query.md5.as_str());
    let answers = [
        post_raw(&t, "process", &body).await,
        post_raw(&t, "processV2", &body).await,
        post_raw(&t, "processV3", &body).await,
    ];
    assert_eq!(answers[0].0, 200);
    assert!(
        answers[0].1.contains("\"rsp_code\":\"SUCCESS\""),
        "{}",
        answers[0].1
    );
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[1], answers[2]);
    assert!(created.payinfo.contains("/checkout/"));

    let get = t.get("processV2").fetch().await;
    assert_eq!(get.status(), 405);
    let refusal: EnvelopeResponse = get.json().await.unwrap();
    assert_eq!(refusal.rsp_code, "PARAM_INVALID");

    let (status, text) = post_raw(&t, "processV4", &body).await;
    assert_eq!(status, 404);
    let unknown: EnvelopeResponse = serde_json::from_str(&text).unwrap();
    assert_eq!(unknown.rsp_code, "PARAM_INVALID");
    assert!(
        unknown.rsp_msg.contains("/processV4"),
        "{}",
        unknown.rsp_msg
    );

    let (status, text) = post_raw(&t, "api/v1/pay/nothing", "{}").await;
    assert_eq!(status, 404);
    let rest: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(rest["status"], "ERROR");
}

/// A sender's ACTIVEPAY data as exact JSON text.
fn active_pay_text(t: &TestGateway, order_id: &str, escaped_url: &str, amount: &str) -> String {
    format!(
        r#"{{"order_id":{order_id},"merchant_id":"{}","operator_id":"{}","amount":{amount},"biz_type":"WECHATPAY","call_back_url":"{escaped_url}","remarks":"\u53ef\u4ee5"}}"#,
        t.merchant.merchant.id.as_str(),
        t.merchant.merchant.operator_id.as_str(),
    )
}

/// The callback URL as PHP's `json_encode` writes it: every `/` escaped.
fn php_url(t: &TestGateway) -> String {
    t.receiver_url
        .join("notify")
        .unwrap()
        .as_str()
        .replace('/', "\\/")
}

#[rstest]
#[case::php_escaped_strings("\"PHP-1\"", "\"1234\"", NumberText::Json)]
#[case::numbers_signed_as_json_text("4435", "1234", NumberText::Json)]
#[case::numbers_signed_as_java_doubles("4436", "1234", NumberText::JavaDouble)]
#[case::doubles_sent_as_doubles("4437.0", "1234.0", NumberText::JavaDouble)]
#[tokio::test]
async fn requests_encoded_as_real_integrations_encode_them_are_accepted(
    #[case] order_id: &str,
    #[case] amount: &str,
    #[case] numbers: NumberText,
) {
    let t = TestGateway::start().await;
    let text = active_pay_text(&t, order_id, &php_url(&t), amount);
    let sealed = seal_text_with(&text, numbers, &t.key()).unwrap();
    // The whole body as PHP writes it too: the Base64's `/` escaped.
    let body = envelope_body(&t, "ACTIVEPAY", "1.0", &sealed.data, sealed.md5.as_str())
        .replace('/', "\\/");
    let (status, reply) = post_raw(&t, "processV2", &body).await;
    let reply: EnvelopeResponse = serde_json::from_str(&reply).unwrap();
    assert_eq!(
        (status, reply.rsp_code.as_str()),
        (200, "SUCCESS"),
        "{reply:?}"
    );
    let id = order_id.trim_matches('"').trim_end_matches(".0");
    let status = t.client.status_query(id).await.unwrap();
    assert_eq!(
        (status.amount.as_str(), status.order_id.as_str()),
        ("1234", id)
    );
}

#[tokio::test]
async fn a_wrong_md5_is_refused_whatever_the_encoding() {
    let t = TestGateway::start().await;
    let text = active_pay_text(&t, "4438", &php_url(&t), "1234");
    let key = t.key();
    let honest = seal_text_with(&text, NumberText::JavaDouble, &key).unwrap();
    // Signed over other values (the amount as 1234.00): neither reading matches.
    let other = text.replace("\"amount\":1234", "\"amount\":\"1234.00\"");
    let forged = seal_text_with(&other, NumberText::Json, &key).unwrap();
    let body = envelope_body(&t, "ACTIVEPAY", "1.0", &honest.data, forged.md5.as_str());
    let (_, reply) = post_raw(&t, "processV2", &body).await;
    let reply: EnvelopeResponse = serde_json::from_str(&reply).unwrap();
    assert_eq!(reply.rsp_code, "PARAM_ERROR", "{reply:?}");
    let wrong_key = SignKey::new("0000000000000000").unwrap();
    let stranger = seal_text_with(&text, NumberText::JavaDouble, &wrong_key).unwrap();
    let body = envelope_body(
        &t,
        "ACTIVEPAY",
        "1.0",
        &stranger.data,
        stranger.md5.as_str(),
    );
    let (_, reply) = post_raw(&t, "processV2", &body).await;
    let reply: EnvelopeResponse = serde_json::from_str(&reply).unwrap();
    assert_eq!(reply.rsp_code, "PARAM_ERROR", "{reply:?}");
    assert!(
        t.client.status_query("4438").await.is_err(),
        "nothing created"
    );
}

#[tokio::test]
async fn prepay_query_reports_the_wallets_order_id_once_paid() {
    let t = TestGateway::start().await;
    let created = t.create("BIZPAY-1").await;
    assert_eq!(
        t.client
            .prepay_query("BIZPAY-1")
            .await
            .unwrap()
            .bizpay_order_id,
        None
    );
    let (status, _) = t.complete(&created.payinfo, "WECHATPAY", "paid").await;
    assert_eq!(status, 200);
    let paid = t.client.prepay_query("BIZPAY-1").await.unwrap();
    let callback = t
        .client
        .verify_callback(&t.receiver.wait_for(1).await[0])
        .unwrap();
    assert_eq!(paid.bizpay_order_id, Some(callback.bizpay_order_id));
}

#[tokio::test]
async fn a_sandbox_behind_an_https_proxy_still_completes_payments() {
    // Nothing listens at the public URL: only a proxy would, and there is none.
    let t = TestGateway::with(Options {
        public_url: Some("https://127.0.0.1:9/"),
        ..Options::default()
    })
    .await;
    let created = t.create("PROXY-1").await;
    assert!(created.payinfo.starts_with("https://127.0.0.1:9/checkout/"));
    let (status, body) = t.complete(&created.payinfo, "WECHATPAY", "paid").await;
    assert_eq!(status, 200, "{body}");
    for wallet in ["ALIPAY", "UNIONPAY"] {
        let id = format!("PROXY-{wallet}");
        let code = t
            .client
            .active_pay(&active_pay(&t, Some(&id), wallet))
            .await
            .unwrap();
        assert!(
            code.code_url.starts_with("https://127.0.0.1:9/sim/"),
            "{}",
            code.code_url
        );
        let r = t
            .post(&format!("sandbox/v1/payments/{id}/complete"))
            .json(&json!({"outcome": "paid"}))
            .fetch()
            .await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    let callbacks = t.receiver.wait_for(3).await;
    assert_eq!(callbacks.len(), 3);
}

#[rstest]
#[case::alipay("ALIPAY", "alipay")]
#[case::wechat("WECHATPAY", "wechatpay")]
#[case::unionpay("UNIONPAY", "unionpay")]
#[tokio::test]
async fn a_lost_qr_notification_is_recovered_by_asking_the_wallet(
    #[case] wallet: &str,
    #[case] sim: &str,
) {
    let t = TestGateway::with(Options {
        manual_clock: true,
        workers: false,
        ..Options::default()
    })
    .await;
    let order_id = format!("LOST-{wallet}");
    let code = t
        .client
        .active_pay(&active_pay(&t, Some(&order_id), wallet))
        .await
        .unwrap();
    let dropped = t
        .post(&format!("sim/{sim}/control"))
        .json(&json!({"kind": "drop"}))
        .fetch()
        .await;
    assert!(dropped.status().is_success());
    scan_and_pay(&t, wallet, &code.code_url).await;
    assert_eq!(
        t.client.status_query(&order_id).await.unwrap().order_status,
        "init"
    );
    t.advance(std::time::Duration::from_secs(61));
    assert_eq!(
        t.gateway.reconcile_due().await.unwrap(),
        1,
        "asked the wallet"
    );
    let paid = t.client.status_query(&order_id).await.unwrap();
    assert_eq!(paid.order_status, "success");
    assert!(paid.bizpay_order_id.is_some_and(|b| !b.is_empty()));
    t.gateway.deliver_due().await.unwrap();
    let callback = t.client.verify_callback(&t.receiver.received()[0]).unwrap();
    assert_eq!(
        (callback.order_id.as_str(), callback.tip.as_str()),
        (order_id.as_str(), "100")
    );
}
