//! The Alipay connector against the simulated Alipay, over real HTTP: our signing, their
//! verification, their signed answers and notifications, our verification.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code")]

use axum::response::IntoResponse;
use ottgate_channels::alipay::sign::{Params, SignType};
use ottgate_channels::alipay::simulator::{AlipaySimulator, FaultKind};
use ottgate_channels::alipay::{self, AlipayConnector, Notice, TradeStatus, parse_form};
use ottgate_channels::{
    Channel, Device, Flow, QueryPayment, QueryRefund, QueryResult, RefundPayment,
    RefundQueryResult, RefundResult, StartPayment,
};
use ottgate_core::{
    Amount, AttemptId, Clock, Currency, Money, PaymentMethod, RefundId, SystemClock,
};
use ottgate_testkit::Fetch;
use url::Url;

mod support;

type World = support::World<AlipayConnector>;

/// The simulator and a notify receiver (answering `success`) on one port, as the gateway
/// would mount them.
async fn world(sign_type: SignType) -> World {
    let (listener, base) = support::bind().await;
    let (config, sim) = alipay::sandbox(&base, sign_type, 3600.0).unwrap();
    let connector = AlipayConnector::new(config).unwrap();
    let ack = |_| "success".into_response();
    World::new((listener, base), connector, &AlipaySimulator::new(sim), ack)
}

fn payment(attempt: &AttemptId, device: Device) -> StartPayment {
    support::payment(attempt, PaymentMethod::Alipay, device, SystemClock.now())
}

/// The buyer presses `action` at the simulated cashier of `attempt`.
async fn at_cashier(w: &World, attempt: &AttemptId, action: &str) -> reqwest::Response {
    let cashier = format!("sim/alipay/cashier/{attempt}");
    support::press_at(&w.http, &w.base, &cashier, action).await
}

async fn next_notice(w: &mut World) -> Params {
    parse_form(&support::next_body(&mut w.notices).await)
}

#[tokio::test]
async fn a_payment_round_trips_through_the_simulated_alipay_with_every_sign_type() {
    for sign_type in [SignType::Md5, SignType::Rsa, SignType::Rsa2] {
        let mut w = world(sign_type).await;
        let attempt = AttemptId::generate(SystemClock.now());
        let url = w.redirect(&payment(&attempt, Device::Mobile)).await;
        assert!(
            url.as_str().contains("service=create_forex_trade_wap"),
            "{url}"
        );
        assert!(
            url.as_str()
                .contains(&format!("sign_type={}", sign_type.code()))
        );

        // The buyer's browser opens the cashier...
        let cashier = w.http.get(url).fetch().await;
        assert_eq!(cashier.status(), 200);
        let page = cashier.text().await.unwrap();
        assert!(
            page.contains("id=\"alipay-pay\"") && page.contains("12.34 CAD"),
            "{page}"
        );

        // ...not found by a query until then? It exists now, waiting.
        let q = w
            .connector
            .query(&support::query(&attempt, SystemClock.now()))
            .await
            .unwrap();
        assert_eq!(q, QueryResult::Pending);

        // ...and pays.
        let paid = at_cashier(&w, &attempt, "pay").await;
        let back = Url::parse(paid.headers()["location"].to_str().unwrap()).unwrap();
        assert!(back.as_str().starts_with("https://shop.example/return?"));
        let returned = parse_form(back.query().unwrap().as_bytes());
        assert!(
            w.connector.verify(&returned),
            "the browser return is signed by Alipay"
        );

        let notice = next_notice(&mut w).await;
        assert!(
            w.connector.verify(&notice),
            "{sign_type:?} notification verifies"
        );
        // Alipay confirms sending it (notify_verify), and denies a made-up one.
        assert!(
            w.connector
                .confirm_notification_id(&notice["notify_id"])
                .await
                .unwrap()
        );
        assert!(
            !w.connector
                .confirm_notification_id("0000000000000000000000000000000001")
                .await
                .unwrap()
        );
        let Notice::Trade {
            out_trade_no,
            trade_no,
            total_fee,
            currency,
            status,
        } = Notice::read(&notice).unwrap()
        else {
            panic!("not a trade notice")
        };
        assert_eq!(
            (
                out_trade_no.as_str(),
                total_fee.as_str(),
                currency.as_str(),
                status
            ),
            (attempt.as_str(), "12.34", "CAD", TradeStatus::Finished)
        );

        let q = w
            .connector
            .query(&support::query(&attempt, SystemClock.now()))
            .await
            .unwrap();
        assert_eq!(
            q,
            QueryResult::Paid {
                bizpay_order_id: trade_no.clone(),
                money: None
            }
        );

        // Refund part of it: accepted now, the result by notification.
        let refund = support::refund(&attempt, &trade_no, 1000);
        let refund_id = refund.refund_id.clone();
        assert_eq!(
            w.connector.refund(&refund).await.unwrap(),
            RefundResult::Pending
        );
        let refunded = next_notice(&mut w).await;
        assert!(w.connector.verify(&refunded));
        assert!(
            matches!(Notice::read(&refunded).unwrap(), Notice::Refund { succeeded: true, out_return_no, .. } if out_return_no == refund_id.as_str())
        );
        // Asked about (alipay.acquire.refund.query, signed answer): done. One Alipay never
        // got is in flight for an hour, then failed.
        assert!(w.connector.can_query_refunds());
        let asked = support::asked(&refund);
        assert_eq!(
            w.connector.query_refund(&asked).await.unwrap(),
            RefundQueryResult::Succeeded {
                channel_refund_id: None
            }
        );
        let unknown = support::unknown_refund(&asked);
        assert_eq!(
            w.connector.query_refund(&unknown).await.unwrap(),
            RefundQueryResult::Pending
        );
        let long_after = QueryRefund {
            asked_at: unknown
                .requested_at
                .plus(std::time::Duration::from_secs(3601)),
            ..unknown
        };
        assert_eq!(
            w.connector.query_refund(&long_after).await.unwrap(),
            RefundQueryResult::Failed
        );
        // Refunding more than remains is Alipay's RETURN_AMOUNT_EXCEED.
        let too_much = RefundPayment {
            refund_id: RefundId::generate(SystemClock.now()),
            money: Money::new(Amount::from_minor(1001).unwrap(), Currency::Cad),
            ..refund.clone()
        };
        assert_eq!(
            w.connector.refund(&too_much).await.unwrap(),
            RefundResult::Refused {
                reason: "RETURN_AMOUNT_EXCEED".into()
            }
        );
    }
}

#[tokio::test]
async fn the_pc_flavour_uses_create_forex_trade() {
    let w = world(SignType::Rsa2).await;
    let attempt = AttemptId::generate(SystemClock.now());
    let url = w
        .redirect(&payment(&attempt, Device::Desktop))
        .await
        .to_string();
    assert!(
        url.contains("service=create_forex_trade&")
            && url.contains("product_code=NEW_OVERSEAS_SELLER"),
        "{url}"
    );
    assert!(!url.contains("app_pay"));
    assert_eq!(w.http.get(&url).fetch().await.status(), 200);
}

#[tokio::test]
async fn the_simulator_refuses_what_alipay_refuses() {
    let w = world(SignType::Rsa2).await;
    let attempt = AttemptId::generate(SystemClock.now());
    let url = w.redirect(&payment(&attempt, Device::Mobile)).await;
    // A tampered amount: the signature no longer matches.
    let tampered = url.as_str().replace("total_fee=12.34", "total_fee=0.01");
    let page = w.http.get(&tampered).fetch().await;
    assert_eq!(page.status(), 400);
    assert!(page.text().await.unwrap().contains("ILLEGAL_SIGN"));
    // Another partner.
    let other = url
        .as_str()
        .replace("partner=2088000000000001", "partner=2088000000000009");
    assert!(
        w.http
            .get(&other)
            .fetch_text()
            .await
            .contains("ILLEGAL_PARTNER")
    );
    // A query for a trade nobody opened.
    let q = w
        .connector
        .query(&QueryPayment {
            channel_ids: Default::default(),
            flow: Flow::Browser(Device::Desktop),
            attempt_id: AttemptId::generate(SystemClock.now()),
            money: Money::new(Amount::from_minor(1).unwrap(), Currency::Cad),
            started_at: SystemClock.now(),
        })
        .await
        .unwrap();
    assert_eq!(q, QueryResult::NotFound);
}

#[tokio::test]
async fn injected_faults_reach_the_wire() {
    let mut w = world(SignType::Rsa2).await;
    for (fault, check) in [
        (FaultKind::CorruptSignature, "bad-signature"),
        (FaultKind::WrongAmount, "wrong-amount"),
        (FaultKind::Duplicate, "duplicate"),
    ] {
        let attempt = AttemptId::generate(SystemClock.now());
        let url = w.redirect(&payment(&attempt, Device::Mobile)).await;
        w.http.get(url).fetch().await;
        support::arm_fault(&w.http, &w.base, "alipay", fault, attempt.as_str()).await;
        at_cashier(&w, &attempt, "pay").await;
        let n = next_notice(&mut w).await;
        match check {
            "bad-signature" => assert!(!w.connector.verify(&n)),
            "wrong-amount" => {
                assert!(w.connector.verify(&n), "validly signed...");
                assert!(
                    !alipay::amount_matches(
                        &n["total_fee"],
                        &n["currency"],
                        payment(&attempt, Device::Mobile).money
                    ),
                    "...for the wrong amount"
                );
            }
            _ => {
                let again = next_notice(&mut w).await;
                assert_eq!(again["out_trade_no"], n["out_trade_no"]);
            }
        }
    }
}

#[tokio::test]
async fn an_app_payment_is_signed_for_the_sdk_opened_by_alipays_app_paid_and_notified() {
    let mut w = world(SignType::Rsa2).await;
    let attempt = AttemptId::generate(SystemClock.now());
    let app = support::app_payment(&attempt, PaymentMethod::Alipay);
    let start = w.connector.start(&app).await.unwrap();
    let params: Params = start.app_params().unwrap().iter().cloned().collect();
    assert_eq!(params["service"], "mobile.securitypay.pay");
    assert_eq!(
        (
            params["forex_biz"].as_str(),
            params["payment_type"].as_str()
        ),
        ("FP", "1")
    );
    assert_eq!(params["seller_id"], params["partner"]);
    assert_eq!(params["it_b_pay"], "10m", "the payment's 600 s to pay");
    assert_eq!(
        (params["total_fee"].as_str(), params["currency"].as_str()),
        ("12.34", "CAD")
    );
    assert!(params.contains_key("sign") && params["sign_type"] == "RSA2");
    assert!(start.redirect_url().is_none() && start.scannable().is_none());

    // The merchant's app hands the SDK the JSON string; Alipay's app opens it.
    let pay_sign = serde_json::to_string(&params).unwrap();
    let opened = w
        .http
        .post(w.base.join("sim/alipay/app/pay").unwrap())
        .body(pay_sign.clone())
        .fetch()
        .await;
    assert_eq!(opened.status(), 200);
    let page = opened.text().await.unwrap();
    assert!(page.contains("App") && page.contains("12.34 CAD"), "{page}");
    // A parameter changed after signing is refused.
    let mut tampered = params.clone();
    tampered.insert("total_fee".into(), "0.01".into());
    let refused = w
        .http
        .post(w.base.join("sim/alipay/app/pay").unwrap())
        .body(serde_json::to_string(&tampered).unwrap())
        .fetch()
        .await;
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("ILLEGAL_SIGN"));

    // Paid in the app: no browser to send back, the notification as for any trade.
    let paid = at_cashier(&w, &attempt, "pay").await;
    assert_eq!(paid.status(), 200);
    let notice = next_notice(&mut w).await;
    assert!(w.connector.verify(&notice));
    assert!(matches!(
        Notice::read(&notice).unwrap(),
        Notice::Trade { status: TradeStatus::Finished, out_trade_no, .. } if out_trade_no == attempt.as_str()
    ));
    assert!(support::is_paid(&w.connector, &attempt).await);
}
