//! The checkout flow: PREPAY_INIT → hosted checkout → wallet → browser return →
//! encrypted callback → PREPAY_QUERY.

use ottgate_client::parse_finish_time;
use rstest::rstest;
use url::Url;

use crate::harness::{TestGateway, buyer_pays, location};
use ottgate_testkit::Fetch;

#[rstest]
#[case("WECHATPAY")]
#[case("ALIPAY")]
#[case("UNIONPAY")]
#[case("GP")]
#[tokio::test]
async fn a_buyer_pays_with_each_method_and_the_merchant_learns_it_three_ways(#[case] method: &str) {
    let t = TestGateway::start().await;
    let created = t.create("order-1").await;
    assert_eq!(created.prepay_order_id, "order-1");
    assert!(
        created.payinfo.starts_with(&format!("{}checkout/", t.base)),
        "{}",
        created.payinfo
    );
    assert_eq!(created.expire_time.len(), 14);

    let landed = buyer_pays(&t, &created.payinfo, method, "paid").await;

    // 1. The browser return, signed.
    let landed = Url::parse(&landed).unwrap();
    assert_eq!(landed.path(), "/return");
    let redirect = t.client.verify_redirect(landed.query().unwrap()).unwrap();
    assert_eq!(
        (redirect.total_fee.as_str(), redirect.out_trade_no.as_str()),
        ("1234", "order-1")
    );
    assert_eq!(redirect.trade_status, "Trade_Finished");

    // 2. The encrypted callback, delivered by the background worker.
    let bodies = t.receiver.wait_for(1).await;
    let callback = t.client.verify_callback(&bodies[0]).unwrap();
    assert_eq!(callback.order_id, redirect.trade_no);
    assert_eq!(callback.prepay_order_id.as_deref(), Some("order-1"));
    assert_eq!(
        (callback.amount.as_str(), callback.currency_type.as_str()),
        ("1234", "CAD")
    );
    assert_eq!(
        (callback.tip.as_str(), callback.convenience_fee.as_str()),
        ("0", "0")
    );
    assert_eq!(callback.remarks.as_deref(), Some("可以"));
    assert_eq!(callback.sale_num.as_deref(), Some("S-order-1"));
    // The wallet's transaction id: the simulated Alipay's trade_no, WeChat Pay's
    // transaction_id, UnionPay's queryId, or the sandbox wallet's.
    let bizpay = callback.bizpay_order_id.as_str();
    match method {
        "ALIPAY" => assert!(
            bizpay.len() >= 16 && bizpay.bytes().all(|b| b.is_ascii_digit()),
            "{bizpay}"
        ),
        "WECHATPAY" => assert!(
            bizpay.len() == 28 && bizpay.starts_with("42000"),
            "{bizpay}"
        ),
        // UnionPay's queryId: its Beijing time, then a sequence.
        "UNIONPAY" => assert!(
            bizpay.len() == 21 && bizpay.bytes().all(|b| b.is_ascii_digit()),
            "{bizpay}"
        ),
        _ => assert!(bizpay.starts_with("SB"), "{bizpay}"),
    }
    assert!(!callback.notify_id.is_empty());
    let finished = parse_finish_time(&callback.finish_time).unwrap();
    assert!(
        (finished - t.now().epoch_seconds()).abs() < 60,
        "finish_time is Beijing wall time of now"
    );

    // 3. The query.
    let q = t.client.prepay_query("order-1").await.unwrap();
    assert_eq!(q.status, "SUCCESS");
    assert_eq!(q.order_id.as_deref(), Some(callback.order_id.as_str()));
    assert_eq!(q.payments_methods.len(), 1);
    assert_eq!(q.payments_methods[0].method, method);
    assert_eq!(q.payments_methods[0].status, "SUCCESS");
    assert_eq!(q.merchant_name, "Maple Tea House");
    assert_eq!(
        (
            q.amount.as_str(),
            q.currency_type.as_str(),
            q.duration.as_str()
        ),
        ("1234", "CAD", "600")
    );
    assert_eq!(q.expire_time, created.expire_time);

    // Exactly one callback, however long we wait.
    t.gateway.deliver_due().await.unwrap();
    assert_eq!(t.receiver.received().len(), 1);
}

#[tokio::test]
async fn every_prepay_query_field_of_the_spec_is_present() {
    let t = TestGateway::start().await;
    t.create("fields-1").await;
    let exchange = t
        .client
        .exchange(
            "PREPAY_QUERY",
            "2.0",
            ottgate_client::query_fields(t.client.merchant_id(), "fields-1"),
        )
        .await
        .unwrap();
    let data = exchange.response_fields.unwrap();
    for field in [
        "rspCode",
        "rspMsg",
        "merchant_id",
        "merchant_name",
        "amount",
        "tip",
        "shop_id",
        "operator_id",
        "status",
        "call_back_url",
        "redirect_url",
        "biz_type",
        "prepay_order_id",
        "sale_num",
        "remarks",
        "currency_type",
        "duration",
        "create_time",
        "expire_time",
        "payments_methods",
    ] {
        assert!(data.contains_key(field), "missing {field}");
    }
    assert_eq!(data["status"], "PROCESSING");
    // A field without a value is left out, never null (docs/envelope.md, "No null").
    assert!(!data.contains_key("order_id"), "no attempt yet");
    assert!(!data.contains_key("email"), "none was given");
    assert_eq!(data["payments_methods"], serde_json::json!([]));
}

#[tokio::test]
async fn the_sandbox_helper_pays_and_returns_the_exact_browser_destination() {
    let t = TestGateway::start().await;
    let created = t.create("helper-1").await;
    let (status, body) = t.complete(&created.payinfo, "ALIPAY", "paid").await;
    assert_eq!(status, 200, "{body}");
    let redirect_url = Url::parse(body["redirect_url"].as_str().unwrap()).unwrap();
    let params = t
        .client
        .verify_redirect(redirect_url.query().unwrap())
        .unwrap();
    assert_eq!(params.trade_no, body["order_id"].as_str().unwrap());
    assert!(params.is_success());
    // That is exactly where the return endpoint sends a browser.
    let back = t
        .http
        .get(format!("{}/return/{}", created.payinfo, params.trade_no))
        .fetch()
        .await;
    assert_eq!(location(&back), redirect_url.as_str());
    let callback = t
        .client
        .verify_callback(&t.receiver.wait_for(1).await[0])
        .unwrap();
    assert_eq!(callback.order_id, params.trade_no);
}

#[tokio::test]
async fn a_declined_payment_closes_the_order_and_sends_no_callback() {
    let t = TestGateway::start().await;
    let created = t.create("decline-1").await;
    let landed = buyer_pays(&t, &created.payinfo, "UNIONPAY", "failed").await;
    let params = t
        .client
        .verify_redirect(Url::parse(&landed).unwrap().query().unwrap())
        .unwrap();
    assert_eq!(params.trade_status, "Trade_Closed");
    assert_eq!(
        t.client.prepay_query("decline-1").await.unwrap().status,
        "ORDERCLOSE"
    );
    t.gateway.deliver_due().await.unwrap();
    assert!(t.receiver.received().is_empty());
    // The checkout now shows a closed order, with no way to pay.
    let page = t.page(&created.payinfo).await;
    assert!(page.contains("data-status=\"closed\""));
    assert!(!page.contains("name=\"method\""));
}

#[tokio::test]
async fn a_cancelled_payment_sends_the_buyer_back_to_choose_again() {
    let t = TestGateway::start().await;
    let created = t.create("cancel-1").await;
    // Cancelling is the sandbox wallet's (card checkout): real wallets' cashiers just let
    // the buyer leave.
    let landed = buyer_pays(&t, &created.payinfo, "GP", "cancelled").await;
    assert_eq!(
        landed, created.payinfo,
        "back to the checkout, without selected="
    );
    let q = t.client.prepay_query("cancel-1").await.unwrap();
    assert_eq!(q.status, "PROCESSING");
    assert_eq!(q.payments_methods[0].status, "CANCELLED");
    // ...and can then pay with another method.
    let landed = buyer_pays(&t, &created.payinfo, "ALIPAY", "paid").await;
    assert!(
        t.client
            .verify_redirect(Url::parse(&landed).unwrap().query().unwrap())
            .unwrap()
            .is_success()
    );
    let q = t.client.prepay_query("cancel-1").await.unwrap();
    assert_eq!(
        q.payments_methods
            .iter()
            .map(|a| a.status.as_str())
            .collect::<Vec<_>>(),
        ["CANCELLED", "SUCCESS"]
    );
}

#[tokio::test]
async fn an_identical_retry_replays_the_first_response_byte_for_byte() {
    let t = TestGateway::start().await;
    let fields = ottgate_client::prepay_fields(&t.order("retry-1"));
    let first = t
        .client
        .exchange("PREPAY_INIT", "2.0", fields.clone())
        .await
        .unwrap();
    let second = t
        .client
        .exchange("PREPAY_INIT", "2.0", fields)
        .await
        .unwrap();
    assert_eq!(first.response.rsp_code, "SUCCESS");
    assert_eq!(first.response, second.response);
}

#[tokio::test]
async fn reusing_a_prepay_order_id_for_different_content_is_order_used() {
    let t = TestGateway::start().await;
    let first = t.create("used-1").await;
    let mut different = t.order("used-1");
    different.amount = Some("999".into());
    let err = t.client.prepay_init(&different).await.unwrap_err();
    assert_eq!(err.rsp_code(), Some("ORDER_USED"));
    // The original order is untouched.
    let q = t.client.prepay_query("used-1").await.unwrap();
    assert_eq!(q.amount, "1234");
    assert_eq!(
        t.client.prepay_init(&t.order("used-1")).await.unwrap(),
        first
    );
}

#[tokio::test]
async fn a_single_enabled_selected_method_goes_straight_to_its_wallet() {
    let t = TestGateway::start().await;
    let created = t.create("sel-1").await;
    let direct = t
        .http
        .get(format!("{}?selected=ALIPAY", created.payinfo))
        .fetch()
        .await;
    let wallet = location(&direct);
    assert!(wallet.contains("/sim/alipay/gateway.do?"), "{wallet}");
    let wallet_page = t.page(&wallet).await;
    assert!(wallet_page.contains("Alipay cashier"));
    // Coming back to the same link resumes the same attempt rather than piling up new ones.
    let again = t
        .http
        .get(format!("{}?selected=ALIPAY", created.payinfo))
        .fetch()
        .await;
    assert_eq!(location(&again), wallet);
    assert_eq!(
        t.client
            .prepay_query("sel-1")
            .await
            .unwrap()
            .payments_methods
            .len(),
        1
    );
}

#[rstest]
#[case::none("NONE")]
#[case::unknown("PAYPAL")]
#[case::empty("")]
#[tokio::test]
async fn selected_none_or_unknown_shows_every_enabled_method(#[case] selected: &str) {
    let t = TestGateway::start().await;
    let created = t.create("sel-2").await;
    let r = t
        .http
        .get(format!("{}?selected={selected}", created.payinfo))
        .fetch()
        .await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    for m in ["WECHATPAY", "ALIPAY", "UNIONPAY", "GP"] {
        assert!(page.contains(&format!("id=\"method-{m}\"")), "{m} missing");
    }
    assert!(
        t.client
            .prepay_query("sel-2")
            .await
            .unwrap()
            .payments_methods
            .is_empty()
    );
}

#[tokio::test]
async fn the_checkout_page_speaks_chinese_when_asked() {
    let t = TestGateway::start().await;
    let created = t.create("zh-1").await;
    let by_header = t
        .http
        .get(&created.payinfo)
        .header("Accept-Language", "zh-CN,zh;q=0.9,en;q=0.5")
        .fetch()
        .await;
    let page = by_header.text().await.unwrap();
    assert!(
        page.contains("请选择支付方式")
            && page.contains("支付宝")
            && page.contains("lang=\"zh-CN\"")
    );
    let by_param = t.page(format!("{}?lang=zh", created.payinfo)).await;
    assert!(by_param.contains("微信支付"));
    let english = t.page(&created.payinfo).await;
    assert!(english.contains("Choose how to pay") && english.contains("WeChat Pay"));
}

#[tokio::test]
async fn the_checkout_page_shows_the_order_and_loads_nothing_from_elsewhere() {
    let t = TestGateway::start().await;
    let created = t.create("page-1").await;
    let r = t.http.get(&created.payinfo).fetch().await;
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'none'"));
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    let page = r.text().await.unwrap();
    assert!(page.contains("Maple Tea House"));
    assert!(page.contains("$12.34") && page.contains("CAD"));
    assert!(page.contains("id=\"countdown\"") && page.contains("data-remaining=\""));
    assert!(page.contains("TEST MODE"));
    for external in ["src=\"http", "href=\"http", "@import", "url(http", "<link "] {
        assert!(
            !page.contains(external),
            "page references an external asset: {external}"
        );
    }
}

/// Every inline script of `page`, as the browser hashes it.
fn inline_scripts(page: &str) -> Vec<&str> {
    page.split("<script>")
        .skip(1)
        .map(|rest| &rest[..rest.find("</script>").unwrap()])
        .collect()
}

fn sha256_base64(text: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(text.as_bytes()))
}

#[tokio::test]
async fn payment_pages_run_only_their_own_scripts_pinned_by_hash() {
    let t = TestGateway::start().await;
    let created = t.create("csp-1").await;
    let checkout = t.http.get(&created.payinfo).fetch().await;
    // A desktop choosing WeChat Pay gets the QR page; UnionPay the auto-submitted form.
    let desktop = "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0.0.0 Safari/537.36";
    let mut pages = vec![checkout];
    for method in ["WECHATPAY", "UNIONPAY"] {
        let other = t.create(&format!("csp-{method}")).await;
        pages.push(
            t.http
                .post(format!("{}/pay", other.payinfo))
                .header("user-agent", desktop)
                .form(&[("method", method)])
                .fetch()
                .await,
        );
    }
    let mut seen = 0;
    for r in pages {
        assert_eq!(r.status(), 200);
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        let script_src = csp
            .split(';')
            .map(str::trim)
            .find(|d| d.starts_with("script-src"))
            .unwrap()
            .to_owned();
        assert!(!script_src.contains("unsafe-inline"), "{csp}");
        let page = r.text().await.unwrap();
        let scripts = inline_scripts(&page);
        assert_eq!(scripts.len(), 1, "{page}");
        for script in scripts {
            assert!(
                script_src.contains(&format!("'sha256-{}'", sha256_base64(script))),
                "a script the policy does not pin: {script}"
            );
            seen += 1;
        }
    }
    assert_eq!(seen, 3, "countdown, QR poll, auto-submit");
}

#[tokio::test]
async fn a_paid_order_shows_a_status_page_and_never_a_pay_button() {
    let t = TestGateway::start().await;
    let created = t.create("paid-1").await;
    t.complete(&created.payinfo, "GP", "paid").await;
    for url in [
        created.payinfo.clone(),
        format!("{}?selected=ALIPAY", created.payinfo),
    ] {
        let r = t.http.get(&url).fetch().await;
        assert_eq!(r.status(), 200);
        let page = r.text().await.unwrap();
        assert!(page.contains("data-status=\"paid\""), "{url}");
        assert!(!page.contains("name=\"method\"") && !page.contains("name=\"action\""));
    }
}

#[tokio::test]
async fn a_merchant_with_one_currency_cannot_charge_in_another() {
    let t = TestGateway::start().await;
    let mut usd = t.order("usd-1");
    usd.currency_type = Some("USD".into());
    let err = t.client.prepay_init(&usd).await.unwrap_err();
    assert_eq!(err.rsp_code(), Some("PARAM_INVALID"));
    assert!(err.to_string().contains("currency_type"));
}
