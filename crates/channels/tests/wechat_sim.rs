//! The WeChat Pay connector against the simulated WeChat Pay, over real HTTP: our signed
//! XML, their checks, their signed answers and notifications, our verification.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code")]

use axum::response::IntoResponse;
use ottgate_channels::simkit::FaultKind;
use ottgate_channels::wechat::sign::{self, Fields, SignType};
use ottgate_channels::wechat::simulator::WeChatSimulator;
use ottgate_channels::wechat::{
    self, ACK_SUCCESS, WeChatConnector, ack_fail, parse_message, to_xml,
};
use ottgate_channels::{
    Channel, ChannelError, Device, Flow, QueryPayment, QueryResult, RefundPayment,
    RefundQueryResult, RefundResult, StartAction, StartPayment,
};
use ottgate_core::{AttemptId, Clock, PaymentMethod, RefundId, Secret, SystemClock};
use std::sync::atomic::Ordering;
use url::Url;

mod support;

use ottgate_testkit::Fetch;
use support::money;

type World = support::World<WeChatConnector>;

/// The simulator and a notify receiver on one port, as the gateway mounts them.
async fn world(sign_type: SignType) -> World {
    let (listener, base) = support::bind().await;
    let (config, sim) = wechat::sandbox(&base, sign_type, 3600.0).unwrap();
    let connector = WeChatConnector::new(config).unwrap();
    let ack = |refused| match refused {
        true => ack_fail("not now").into_response(),
        false => ACK_SUCCESS.into_response(),
    };
    World::new((listener, base), connector, &WeChatSimulator::new(sim), ack)
}

fn payment(attempt: &AttemptId, device: Device) -> StartPayment {
    support::payment(attempt, PaymentMethod::WeChatPay, device, SystemClock.now())
}

/// Starts a desktop payment with `connector`, which must fail.
async fn start_fails(connector: &WeChatConnector) -> ChannelError {
    let attempt = AttemptId::generate(SystemClock.now());
    connector
        .start(&payment(&attempt, Device::Desktop))
        .await
        .unwrap_err()
}

async fn next_notice(w: &mut World) -> Fields {
    let body = support::next_body(&mut w.notices).await;
    parse_message(std::str::from_utf8(&body).unwrap()).unwrap()
}

/// Opens a NATIVE payment and returns the simulator's "scanned" page URL and prepay id.
async fn native(w: &World, attempt: &AttemptId) -> (Url, String) {
    let start = w
        .connector
        .start(&payment(attempt, Device::Desktop))
        .await
        .unwrap();
    let StartAction::QrCode { content, test_link } = start.action else {
        panic!("a desktop buyer gets a QR code: {:?}", start.action)
    };
    assert!(
        content.starts_with("weixin://wxpay/bizpayurl?pr="),
        "{content}"
    );
    (test_link.unwrap(), start.channel_order_id.unwrap())
}

async fn act(w: &World, prepay_id: &str, action: &str) -> reqwest::Response {
    let page = format!("sim/wechatpay/act/{prepay_id}");
    support::press_at(&w.http, &w.base, &page, action).await
}

#[tokio::test]
async fn a_native_payment_is_scanned_paid_queried_and_refunded_with_both_sign_types() {
    for sign_type in [SignType::Md5, SignType::HmacSha256] {
        let mut w = world(sign_type).await;
        let attempt = AttemptId::generate(SystemClock.now());
        let query = QueryPayment {
            channel_ids: Default::default(),
            flow: Flow::Browser(Device::Desktop),
            attempt_id: attempt.clone(),
            money: money(1234),
            started_at: SystemClock.now(),
        };
        let (scan, prepay_id) = native(&w, &attempt).await;
        assert!(scan.as_str().contains("sim/wechatpay/scan?code_url="));

        // The phone "scans" the code and shows the order.
        let page = w.http.get(scan).fetch_text().await;
        assert!(
            page.contains("id=\"wechat-pay\"") && page.contains("12.34 CAD"),
            "{page}"
        );
        assert_eq!(
            w.connector.query(&query).await.unwrap(),
            QueryResult::Pending
        );

        // The buyer pays: a signed notification arrives.
        assert_eq!(act(&w, &prepay_id, "pay").await.status(), 200);
        let n = next_notice(&mut w).await;
        assert!(w.connector.verify(&n), "{n:?}");
        assert_eq!(
            n.get("sign_type").map(String::as_str),
            (sign_type == SignType::HmacSha256).then_some("HMAC-SHA256")
        );
        let notice = wechat::Notice::read(&n).unwrap();
        assert!(notice.paid);
        assert_eq!(notice.out_trade_no, attempt.as_str());
        assert!(wechat::amount_matches(
            &notice.total_fee,
            &notice.fee_type,
            money(1234)
        ));
        assert_eq!(
            w.connector.query(&query).await.unwrap(),
            QueryResult::Paid {
                bizpay_order_id: notice.transaction_id.clone(),
                money: Some(money(1234)),
            }
        );
        // Paying again is refused.
        let again = act(&w, &prepay_id, "pay").await.text().await.unwrap();
        assert!(again.contains("ORDERPAID"), "{again}");

        // Refunds are synchronous; a retry with the same number is the same refund.
        let refund = support::refund(&attempt, &notice.transaction_id, 1234);
        let first = w.connector.refund(&refund).await.unwrap();
        let RefundResult::Succeeded { channel_refund_id } = &first else {
            panic!("{first:?}")
        };
        assert!(!channel_refund_id.is_empty());
        assert_eq!(w.connector.refund(&refund).await.unwrap(), first);
        // Asked later (as when that answer was lost), WeChat reports the same refund; one
        // it never received does not exist.
        let asked = support::asked(&refund);
        assert_eq!(
            w.connector.query_refund(&asked).await.unwrap(),
            RefundQueryResult::Succeeded {
                channel_refund_id: Some(channel_refund_id.clone())
            }
        );
        let never = support::unknown_refund(&asked);
        assert_eq!(
            w.connector.query_refund(&never).await.unwrap(),
            RefundQueryResult::Failed
        );
        let too_much = RefundPayment {
            refund_id: RefundId::generate(SystemClock.now()),
            money: money(1001),
            ..refund.clone()
        };
        assert_eq!(
            w.connector.refund(&too_much).await.unwrap(),
            RefundResult::Refused {
                reason: "NOTENOUGH".into()
            }
        );
        // A refunded payment still reads as paid.
        assert!(matches!(
            w.connector.query(&query).await.unwrap(),
            QueryResult::Paid { .. }
        ));
    }
}

#[tokio::test]
async fn a_mobile_buyer_goes_to_the_h5_page_and_back() {
    let mut w = world(SignType::HmacSha256).await;
    let attempt = AttemptId::generate(SystemClock.now());
    let start = w
        .connector
        .start(&payment(&attempt, Device::Mobile))
        .await
        .unwrap();
    let url = start.redirect_url().unwrap().clone();
    assert!(url.path().ends_with("/sim/wechatpay/checkmweb"), "{url}");
    assert!(
        url.query_pairs()
            .any(|(k, v)| k == "redirect_url" && v == "https://shop.example/return")
    );
    let page = w.http.get(url).fetch_text().await;
    assert!(page.contains("redirect_url"), "{page}");

    // Payment fails: the buyer is sent back, the notification says FAIL, and the query
    // reports the order closed.
    let prepay_id = start.channel_order_id.unwrap();
    let back = w
        .http
        .post(
            w.base
                .join(&format!("sim/wechatpay/act/{prepay_id}"))
                .unwrap(),
        )
        .form(&[
            ("action", "fail"),
            ("redirect_url", "https://shop.example/return"),
        ])
        .fetch()
        .await;
    assert!(back.status().is_redirection());
    assert_eq!(
        back.headers()["location"].to_str().unwrap(),
        "https://shop.example/return"
    );
    let n = next_notice(&mut w).await;
    assert!(w.connector.verify(&n));
    assert!(!wechat::Notice::read(&n).unwrap().paid);
    assert_eq!(
        w.connector
            .query(&support::query(&attempt, SystemClock.now()))
            .await
            .unwrap(),
        QueryResult::Closed
    );
}

#[tokio::test]
async fn the_simulator_refuses_what_wechat_refuses() {
    let w = world(SignType::Md5).await;
    let unifiedorder = w.base.join("sim/wechatpay/pay/unifiedorder").unwrap();
    let post = |body: String| {
        let http = w.http.clone();
        let url = unifiedorder.clone();
        async move {
            let text = http.post(url).body(body).fetch().await;
            parse_message(&text.text().await.unwrap()).unwrap()
        }
    };
    let mut f = Fields::new();
    for (k, v) in [
        ("appid", wechat::testkeys::APPID),
        ("mch_id", wechat::testkeys::MCH_ID),
        ("nonce_str", "abc"),
        ("body", "Tea"),
        ("out_trade_no", "T1"),
        ("total_fee", "100"),
        ("fee_type", "CAD"),
        ("spbill_create_ip", "127.0.0.1"),
        ("notify_url", "http://127.0.0.1/notify"),
        ("trade_type", "NATIVE"),
        ("product_id", "T1"),
    ] {
        f.insert(k.into(), v.into());
    }
    let key = Secret::new(wechat::testkeys::API_KEY);
    let signed = |f: &Fields| {
        let mut f = f.clone();
        let s = sign::sign(&f, SignType::Md5, &key);
        f.insert("sign".into(), s);
        f
    };

    // Signed right: accepted.
    let ok = post(to_xml(&signed(&f))).await;
    assert_eq!(ok["result_code"], "SUCCESS", "{ok:?}");
    // The amount changed after signing.
    let mut tampered = signed(&f);
    tampered.insert("total_fee".into(), "1".into());
    let refused = post(to_xml(&tampered)).await;
    assert_eq!(
        (
            refused["return_code"].as_str(),
            refused["return_msg"].as_str()
        ),
        ("FAIL", "SIGNERROR")
    );
    // The same out_trade_no for another amount.
    let mut other = f.clone();
    other.insert("total_fee".into(), "200".into());
    let used = post(to_xml(&signed(&other))).await;
    assert_eq!(used["err_code"], "OUT_TRADE_NO_USED");
    // A missing field.
    let mut missing = f.clone();
    missing.remove("product_id");
    missing.insert("out_trade_no".into(), "T2".into());
    assert_eq!(
        post(to_xml(&signed(&missing))).await["err_code"],
        "LACK_PARAMS"
    );
    // Another institution, and not XML at all.
    let mut stranger = f.clone();
    stranger.insert("mch_id".into(), "1900000009".into());
    assert_eq!(
        post(to_xml(&signed(&stranger))).await["return_msg"],
        "MCHID_NOT_EXIST"
    );
    let text = w
        .http
        .post(unifiedorder.clone())
        .body("{\"json\":true}")
        .fetch_text()
        .await;
    assert!(text.contains("XML_FORMAT_ERROR"), "{text}");

    // A connector with the wrong key is refused; an order nobody opened is not found.
    let (mut config, _) = wechat::sandbox(&w.base, SignType::Md5, 1.0).unwrap();
    config.api_key = Secret::new("WrongKeyWrongKeyWrongKeyWrongKey");
    let err = start_fails(&WeChatConnector::new(config).unwrap()).await;
    let attempt = AttemptId::generate(SystemClock.now());
    assert!(
        matches!(&err, ChannelError::Upstream { message: m, .. } if m.contains("SIGNERROR")),
        "{err:?}"
    );
    assert_eq!(
        w.connector
            .query(&QueryPayment {
                money: money(1),
                ..support::query(&attempt, SystemClock.now())
            })
            .await
            .unwrap(),
        QueryResult::NotFound
    );
}

#[tokio::test]
async fn notifications_are_resent_until_acknowledged_and_faults_reach_the_wire() {
    let mut w = world(SignType::Md5).await;

    // Refused twice, then acknowledged: three deliveries, then silence.
    w.refuse.store(2, Ordering::SeqCst);
    let attempt = AttemptId::generate(SystemClock.now());
    let (_, prepay_id) = native(&w, &attempt).await;
    act(&w, &prepay_id, "pay").await;
    for _ in 0..3 {
        let n = next_notice(&mut w).await;
        assert_eq!(n["out_trade_no"], attempt.as_str());
    }
    support::assert_quiet(&mut w.notices, "acknowledged: no more").await;

    for kind in support::NOTIFICATION_FAULTS {
        let attempt = AttemptId::generate(SystemClock.now());
        let (_, prepay_id) = native(&w, &attempt).await;
        support::arm_fault(&w.http, &w.base, "wechatpay", kind, attempt.as_str()).await;
        act(&w, &prepay_id, "pay").await;
        let n = next_notice(&mut w).await;
        let notice = wechat::Notice::read(&n).unwrap();
        let amount_ok = wechat::amount_matches(&notice.total_fee, &notice.fee_type, money(1234));
        support::assert_spoilt_as(kind, w.connector.verify(&n), amount_ok, &n);
        if kind == FaultKind::Duplicate {
            let again = next_notice(&mut w).await;
            assert_eq!(again["out_trade_no"], n["out_trade_no"]);
        }
    }
}

#[tokio::test]
async fn an_unreachable_wallet_is_an_upstream_error_that_keeps_its_cause() {
    // A port nothing listens on: bind one, then let it go.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
    drop(listener);
    let (config, _) = wechat::sandbox(&base, SignType::HmacSha256, 1.0).unwrap();
    let err = start_fails(&WeChatConnector::new(config).unwrap()).await;
    assert!(
        matches!(&err, ChannelError::Upstream { message, .. } if message == "WeChat Pay could not be reached"),
        "{err:?}"
    );
    let cause = std::error::Error::source(&err).expect("the transport error is kept");
    assert!(
        cause.downcast_ref::<reqwest::Error>().is_some(),
        "{cause:?}"
    );
}

#[tokio::test]
async fn inside_wechat_a_code_names_the_buyer_once_and_the_bridge_pays_a_signed_jsapi_order() {
    let mut w = world(SignType::Md5).await;
    let back = Url::parse("https://pay.example/checkout/t/wechat").unwrap();
    let sign_in = w.connector.payer_sign_in(&back, "S1").unwrap();
    let r = w.http.get(sign_in).fetch().await;
    let to = Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let code = to
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    assert!(to.query_pairs().any(|(k, v)| k == "state" && v == "S1"));
    let openid = w.connector.payer_id(&code).await.unwrap();
    assert_eq!(openid, wechat::simulator::BUYER_OPENID);
    let again = w.connector.payer_id(&code).await.unwrap_err();
    assert!(
        again.to_string().contains("40029"),
        "a code is good once: {again}"
    );

    let attempt = AttemptId::generate(SystemClock.now());
    let mut inside = payment(&attempt, Device::Mobile);
    inside.flow = Flow::InWallet;
    let no_buyer = w.connector.start(&inside).await.unwrap_err();
    assert!(matches!(no_buyer, ChannelError::Config(_)), "{no_buyer}");
    inside.payer = Some(openid);
    let start = w.connector.start(&inside).await.unwrap();
    let StartAction::WalletBridge {
        params,
        bridge_script,
    } = start.action
    else {
        panic!("{:?}", start.action);
    };
    assert!(
        bridge_script.is_some(),
        "the simulator's bridge, in test mode"
    );
    let mut body: serde_json::Map<String, serde_json::Value> =
        params.into_iter().map(|(k, v)| (k, v.into())).collect();
    body.insert("action".into(), "pay".into());
    let paid = support::post_json(&w.http, &w.base, "sim/wechatpay/jsapi/pay", &body).await;
    assert_eq!(paid["err_msg"], "get_brand_wcpay_request:ok");
    let notice = support::next_body(&mut w.notices).await;
    let fields = parse_message(std::str::from_utf8(&notice).unwrap()).unwrap();
    assert_eq!(
        (fields["trade_type"].as_str(), fields["openid"].as_str()),
        ("JSAPI", wechat::simulator::BUYER_OPENID)
    );
    assert_eq!(
        w.connector
            .query(&support::query(&attempt, SystemClock.now()))
            .await
            .unwrap(),
        QueryResult::Paid {
            bizpay_order_id: fields["transaction_id"].clone(),
            money: Some(money(1234)),
        }
    );
}

#[tokio::test]
async fn an_app_order_is_signed_for_wechats_sdk_and_paid_in_wechats_app() {
    for sign_type in [SignType::Md5, SignType::HmacSha256] {
        let mut w = world(sign_type).await;
        let attempt = AttemptId::generate(SystemClock.now());
        let app = support::app_payment(&attempt, PaymentMethod::WeChatPay);
        let start = w.connector.start(&app).await.unwrap();
        let params: Fields = start.app_params().unwrap().iter().cloned().collect();
        assert_eq!(params["package"], "Sign=WXPay");
        assert_eq!(Some(&params["prepayid"]), start.channel_order_id.as_ref());
        let pay = |params: &Fields, action: &str| {
            let mut body: serde_json::Map<String, serde_json::Value> = params
                .iter()
                .map(|(k, v)| (k.clone(), v.clone().into()))
                .collect();
            body.insert("action".into(), action.into());
            let (http, base) = (w.http.clone(), w.base.clone());
            async move {
                let answer = support::post_json(&http, &base, "sim/wechatpay/app/pay", &body).await;
                answer["errCode"].as_i64().unwrap()
            }
        };
        // WeChat's app refuses parameters changed after signing, and a buyer may cancel.
        let mut tampered = params.clone();
        tampered.insert("partnerid".into(), "1900000000".into());
        assert_eq!(pay(&tampered, "pay").await, -1, "{sign_type:?}");
        assert_eq!(pay(&params, "cancel").await, -2);
        assert_eq!(pay(&params, "pay").await, 0);
        let n = next_notice(&mut w).await;
        assert_eq!(
            (n["trade_type"].as_str(), n["out_trade_no"].as_str()),
            ("APP", attempt.as_str())
        );
        assert!(support::is_paid(&w.connector, &attempt).await);
    }
}

/// `pay/downloadbill` (issue 24): the day's bill, built from what the simulator processed —
/// the payment and its refund — in WeChat Pay's text, read back by `bill::parse`; a day
/// without trades is WeChat's `No Bill Exist`; an unsigned request is refused.
#[tokio::test]
async fn the_days_bill_lists_what_was_paid_and_refunded() {
    let (listener, base) = support::bind().await;
    let (config, sim) = wechat::sandbox(&base, SignType::Md5, 3600.0).unwrap();
    let connector = WeChatConnector::new(config.clone()).unwrap();
    let ack = |_| ACK_SUCCESS.into_response();
    let mut w = World::new((listener, base), connector, &WeChatSimulator::new(sim), ack);
    let attempt = AttemptId::generate(SystemClock.now());
    let (_, prepay_id) = native(&w, &attempt).await;
    act(&w, &prepay_id, "pay").await;
    let notice = wechat::Notice::read(&next_notice(&mut w).await).unwrap();
    let refund = RefundPayment {
        money: money(300),
        ..support::refund(&attempt, &notice.transaction_id, 1234)
    };
    w.connector.refund(&refund).await.unwrap();

    let request = |date: String, signed: bool, gzip: bool| {
        let mut f = Fields::new();
        if gzip {
            f.insert("tar_type".into(), "GZIP".into());
        }
        for (k, v) in [
            ("appid", config.appid.clone()),
            ("mch_id", config.mch_id.clone()),
            ("sub_mch_id", config.sub_mch_id.clone()),
            ("nonce_str", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS".to_owned()),
            ("bill_date", date),
            ("bill_type", "ALL".to_owned()),
        ] {
            f.insert(k.into(), v);
        }
        let key = if signed {
            config.api_key.clone()
        } else {
            Secret::new("wrong")
        };
        let signature = sign::sign(&f, SignType::Md5, &key);
        f.insert("sign".into(), signature);
        let http = w.http.clone();
        let url = w.base.join("sim/wechatpay/pay/downloadbill").unwrap();
        async move {
            http.post(url)
                .body(to_xml(&f))
                .fetch()
                .await
                .bytes()
                .await
                .unwrap()
        }
    };
    let download = |date: String, signed: bool| {
        let answer = request(date, signed, false);
        async move { String::from_utf8(answer.await.to_vec()).unwrap() }
    };
    let today = SystemClock.now().beijing_compact()[..8].to_owned();
    let text = download(today.clone(), true).await;
    let rows = wechat::bill::parse(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let states: Vec<(&str, u64, u64)> = rows
        .iter()
        .map(|r| (r.trade_state.as_str(), r.total_fee, r.refund_fee))
        .collect();
    assert_eq!(states, [("SUCCESS", 1234, 0), ("REFUND", 1234, 300)]);
    assert!(rows.iter().all(|r| r.out_trade_no == attempt.as_str()
        && r.transaction_id == notice.transaction_id
        && r.fee_type == "CAD"));
    assert_eq!(rows[1].out_refund_no, refund.refund_id.as_str());
    assert_eq!(rows[0].poundage, 7, "0.6 % of 12.34, rounded half up");

    // The connector downloads and reads the same bill; a day without one is none.
    let read = w
        .connector
        .download_bill(None, &today)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read, rows);
    assert_eq!(
        w.connector.download_bill(None, "20200101").await.unwrap(),
        None
    );
    // Asked gzipped (as the connector asks), the same bill, gzipped on the wire.
    let zipped = request(today.clone(), true, true).await;
    assert_eq!(&zipped[..2], [0x1f, 0x8b], "gzip");
    let mut unzipped = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(&zipped[..]),
        &mut unzipped,
    )
    .unwrap();
    assert_eq!(unzipped, text);
    assert!(zipped.len() < text.len());
    let empty = download("20200101".into(), true).await;
    assert!(empty.contains("No Bill Exist"), "{empty}");
    let forged = download(today, false).await;
    assert!(
        forged.contains("FAIL") && !forged.contains("交易时间"),
        "{forged}"
    );
}
