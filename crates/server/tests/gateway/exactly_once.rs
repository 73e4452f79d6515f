//! Money moves exactly once, whatever the network does. On every door a refund can come
//! through — REST with an `Idempotency-Key`, the envelope REFUND with and without the
//! merchant's refund id, the merchant center's form — 200 refunds each hang up at a random
//! moment (before, during or after the wallet's call and the commit: the simulated wallet
//! holds its answer a random while), then ask again after the idempotency lease has run
//! out. Each must be refunded exactly once, and each repeat answered with that refund.

use ottgate_api::payment::RefundRequest;
use ottgate_api::prepay::to_fields;
use ottgate_channels::simkit::{Fault, FaultKind};
use ottgate_client::ActivePayRequest;
use ottgate_core::AttemptId;
use ottgate_testkit::Fetch;
use rand::Rng;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

use crate::center::{Center, admin, order_of};
use crate::harness::{Options, TestGateway};

const TRIALS: u64 = 200;
/// Trials run at once (the lease is then run out for all of them together).
const AT_ONCE: u64 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Door {
    Rest,
    EnvelopeWithRefundId,
    EnvelopeWithoutRefundId,
    MerchantCenter,
}

/// What one trial needs to ask for its refund.
struct Setup<'a> {
    t: &'a TestGateway,
    door: Door,
    payment: String,
    order: String,
    /// REST: a bearer token; the merchant center: the session's cookie and CSRF token.
    bearer: String,
    cookie: String,
    csrf: String,
}

/// A WeChat Pay payment of 100,000.00 CAD (room for every trial's refund), paid.
async fn paid_wechat(t: &TestGateway, order_id: &str) -> String {
    let created = t
        .client
        .active_pay(&ActivePayRequest {
            merchant_id: None,
            order_id: Some(order_id.into()),
            operator_id: Some(t.merchant.merchant.operator_id.to_string()),
            amount: Some("10000000".into()),
            tip: None,
            biz_type: Some("WECHATPAY".into()),
            call_back_url: Some(t.receiver_url.join("notify").unwrap().to_string()),
            remarks: None,
            currency_type: None,
        })
        .await
        .unwrap();
    let r = t
        .post(&format!(
            "sandbox/v1/payments/{}/complete",
            created.order_id
        ))
        .json(&json!({"outcome": "paid"}))
        .fetch()
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["paymentId"].as_str().unwrap().to_owned()
}

async fn bearer(t: &TestGateway) -> String {
    let m = &t.merchant;
    let (status, body) = t
        .rest_raw(
            "api/v1/auth/token",
            None,
            json!({"appId": m.merchant.app_id, "appKey": m.app_key.expose_secret()}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["result"]["token"].as_str().unwrap().to_owned()
}

fn cents(amount: u64) -> String {
    format!("{}.{:02}", amount / 100, amount % 100)
}

fn envelope_fields(s: &Setup<'_>, amount: u64) -> ottgate_envelope::Fields {
    let refund_id = (s.door == Door::EnvelopeWithRefundId).then(|| format!("R-{amount}"));
    to_fields(&RefundRequest {
        merchant_id: Some(s.t.merchant.merchant.id.to_string()),
        order_id: refund_id,
        ori_order_id: Some(s.payment.clone()),
        refund_amt: Some(amount.to_string()),
    })
}

fn form_of(s: &Setup<'_>, amount: u64) -> Vec<(String, String)> {
    vec![
        ("csrf_token".into(), s.csrf.clone()),
        ("form_token".into(), format!("trial{amount:027}")),
        ("amount".into(), cents(amount)),
        // The confirmation's form: the refund itself.
        ("confirm".into(), "yes".into()),
    ]
}

/// The raw HTTP request of trial `amount` on its door.
fn raw_request(s: &Setup<'_>, amount: u64) -> Vec<u8> {
    let (path, content_type, extra, body) = match s.door {
        Door::Rest => (
            "/api/v1/pay/refund".to_owned(),
            "application/json",
            format!(
                "Authorization: Bearer {}\r\nIdempotency-Key: trial-{amount}\r\n",
                s.bearer
            ),
            json!({"oriPaymentId": s.payment, "refundAmount": amount.to_string()}).to_string(),
        ),
        Door::EnvelopeWithRefundId | Door::EnvelopeWithoutRefundId => {
            let sealed =
                s.t.client
                    .envelope("REFUND", "1.0", &envelope_fields(s, amount));
            (
                "/processV2".to_owned(),
                "application/json",
                String::new(),
                serde_json::to_string(&sealed).unwrap(),
            )
        }
        Door::MerchantCenter => (
            format!("/dashboard/payments/{}/refund", s.order),
            "application/x-www-form-urlencoded",
            format!("Cookie: {}\r\n", s.cookie),
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form_of(s, amount))
                .finish(),
        ),
    };
    format!(
        "POST {path} HTTP/1.1\r\nHost: gateway\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Sends the request, then hangs up (a reset, not a polite close) after `after`.
async fn hang_up(s: &Setup<'_>, amount: u64, after: Duration) {
    let port = s.t.base.port().unwrap();
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    // The request may not all go out before the hang-up: that is one of the moments too.
    let _ = stream.write_all(&raw_request(s, amount)).await;
    tokio::time::sleep(after).await;
    // A zero linger resets the connection at once; nothing blocks on drop.
    #[allow(deprecated, reason = "SO_LINGER of zero: the drop resets, it does not wait")]
    stream.set_linger(Some(Duration::ZERO)).unwrap();
    drop(stream);
}

/// Asks again until the answer is final; the amount it says was refunded.
async fn ask_again(s: &Setup<'_>, amount: u64) -> u64 {
    for _ in 0..500 {
        match s.door {
            Door::Rest => {
                let r = s
                    .t
                    .post("api/v1/pay/refund")
                    .bearer_auth(&s.bearer)
                    .header("Idempotency-Key", format!("trial-{amount}"))
                    .json(&json!({"oriPaymentId": s.payment, "refundAmount": amount.to_string()}))
                    .fetch()
                    .await;
                let status = r.status();
                let body: Value = r.json().await.unwrap();
                match status.as_u16() {
                    200 => {
                        return body["result"]["refundAmount"]
                            .as_str()
                            .unwrap()
                            .parse()
                            .unwrap();
                    }
                    409 => {}
                    other => panic!("REST refund {amount}: {other} {body}"),
                }
            }
            Door::EnvelopeWithRefundId | Door::EnvelopeWithoutRefundId => {
                let answer =
                    s.t.client
                        .exchange("REFUND", "1.0", envelope_fields(s, amount))
                        .await
                        .unwrap();
                match answer.response.rsp_code.as_str() {
                    "SUCCESS" => {
                        let data = answer.response_fields.unwrap();
                        return data["refund_amt"].as_str().unwrap().parse().unwrap();
                    }
                    "PROCESSING" => {}
                    other => panic!("envelope refund {amount}: {other} {:?}", answer.response),
                }
            }
            Door::MerchantCenter => {
                let r =
                    s.t.post(&format!("dashboard/payments/{}/refund", s.order))
                        .header(COOKIE, &s.cookie)
                        .form(&form_of(s, amount))
                        .fetch()
                        .await;
                match r.status() {
                    StatusCode::SEE_OTHER => {
                        let location = r.headers()[LOCATION].to_str().unwrap().to_owned();
                        let notice = location.rsplit('=').next().unwrap();
                        assert!(
                            ["refunded", "refund_pending", "once"].contains(&notice),
                            "merchant-center refund {amount}: {location}"
                        );
                        // The form answers with a notice, not the refund: the store says
                        // below what was refunded.
                        return amount;
                    }
                    StatusCode::SERVICE_UNAVAILABLE => {}
                    other => panic!("merchant-center refund {amount}: {other}"),
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("refund {amount} never got a final answer");
}

async fn trials(door: Door) {
    let t = TestGateway::with(Options {
        manual_clock: true,
        // No reconciliation: the rounds move the clock past WeChat's one-minute
        // REFUNDNOTEXIST rule while, on a loaded machine, a refund request can still be on
        // its way to the wallet in real time — a refund no real one (15 s timeout) can be.
        workers: false,
        ..Options::default()
    })
    .await;
    let payment = paid_wechat(&t, &format!("ONCE-{door:?}")).await;
    let order = order_of(&t, &payment).await;
    let mut center: Option<Center<'_>> = None;
    let (mut cookie, mut csrf) = (String::new(), String::new());
    if door == Door::MerchantCenter {
        let mut c = admin(&t).await;
        csrf = c.csrf().await;
        cookie = c.cookie_header();
        center = Some(c);
    }
    let lease = t.gateway.settings().idempotency_lease;
    let mut rng = rand::thread_rng();
    for round in 0..TRIALS / AT_ONCE {
        // A bearer token lasts 15 minutes of the gateway's clock, which these rounds move.
        let setup = Setup {
            t: &t,
            door,
            payment: payment.clone(),
            order: order.clone(),
            bearer: if door == Door::Rest {
                bearer(&t).await
            } else {
                String::new()
            },
            cookie: cookie.clone(),
            csrf: csrf.clone(),
        };
        let amounts: Vec<u64> = (1..=AT_ONCE).map(|i| round * AT_ONCE + i).collect();
        // The wallet holds each answer 0–25 ms; each client hangs up 0–40 ms after asking.
        for _ in &amounts {
            let slow = Fault {
                kind: FaultKind::SlowAnswer,
                out_trade_no: Some(payment.clone()),
                delay_ms: Some(rng.gen_range(0..25)),
            };
            let r = t.post("sim/wechatpay/control").json(&slow).fetch().await;
            assert_eq!(r.status(), 204);
        }
        let hang_ups: Vec<Duration> = amounts
            .iter()
            .map(|_| Duration::from_micros(rng.gen_range(0..40_000)))
            .collect();
        futures::future::join_all(
            amounts
                .iter()
                .zip(&hang_ups)
                .map(|(amount, after)| hang_up(&setup, *amount, *after)),
        )
        .await;
        // Past the lease: a key still held by an unfinished first request is free again.
        t.advance(lease + Duration::from_secs(1));
        let answers =
            futures::future::join_all(amounts.iter().map(|amount| ask_again(&setup, *amount)))
                .await;
        assert_eq!(answers, amounts, "each answered with its own refund");
    }
    drop(center);
    let refunds_now = || async {
        t.gateway
            .state()
            .service
            .store
            .refunds(&AttemptId::parse(&payment).unwrap())
            .await
            .unwrap()
    };
    // A repeat may have been answered "pending" while its first request was still waiting
    // for the wallet: that request finishes on its own.
    crate::harness::eventually("every refund finished", || async {
        refunds_now()
            .await
            .iter()
            .all(|r| r.status != ottgate_core::RefundStatus::Pending)
    })
    .await;
    // Exactly one refund per trial, each the amount asked, none failed.
    let refunds = refunds_now().await;
    let mut per_amount: BTreeMap<u64, usize> = BTreeMap::new();
    for r in &refunds {
        *per_amount.entry(r.money.amount.minor()).or_default() += 1;
    }
    let doubled: Vec<_> = per_amount.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "{door:?}: refunded twice: {doubled:?}");
    assert_eq!(
        per_amount.keys().copied().collect::<Vec<_>>(),
        (1..=TRIALS).collect::<Vec<_>>(),
        "{door:?}: every trial refunded, nothing else"
    );
    let unsuccessful: Vec<_> = refunds
        .iter()
        .filter(|r| r.status != ottgate_core::RefundStatus::Success)
        .collect();
    assert!(unsuccessful.is_empty(), "{door:?}: {unsuccessful:?}");
    // The wallet agrees: it refunded exactly that much.
    let books = t.wallet_books("wechatpay", &payment).await;
    assert_eq!(
        books["refunded"].as_u64(),
        Some(TRIALS * (TRIALS + 1) / 2),
        "{books}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_refunds_cut_off_at_random_moments_are_made_exactly_once() {
    trials(Door::Rest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelope_refunds_with_a_refund_id_cut_off_at_random_moments_are_made_exactly_once() {
    trials(Door::EnvelopeWithRefundId).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelope_refunds_without_a_refund_id_cut_off_at_random_moments_are_made_exactly_once() {
    trials(Door::EnvelopeWithoutRefundId).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merchant_center_refunds_cut_off_at_random_moments_are_made_exactly_once() {
    trials(Door::MerchantCenter).await;
}
