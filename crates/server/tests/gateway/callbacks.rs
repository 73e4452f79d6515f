//! Callback delivery: acknowledgement, retries on the schedule (with injected time), every
//! attempt recorded, exhaustion, and resumption after a restart.

use ottgate_core::{ManualClock, OrderId};
use ottgate_server::DeliveryReport;
use ottgate_store::DeliveryState;
use std::sync::Arc;
use std::time::Duration;

use crate::harness::{Options, TestGateway, serve};

fn manual(schedule: &'static str) -> Options {
    Options {
        manual_clock: true,
        workers: false,
        schedule,
        ..Default::default()
    }
}

async fn order_of(t: &TestGateway, reference: &str) -> OrderId {
    let merchant = &t.merchant.merchant.id;
    let r = ottgate_core::MerchantRef::parse(reference).unwrap();
    t.gateway
        .state()
        .service
        .store
        .order_by_reference(merchant, &r)
        .await
        .unwrap()
        .unwrap()
        .id
}

#[tokio::test]
async fn a_failed_callback_is_retried_on_schedule_until_acknowledged() {
    let t = TestGateway::with(manual("15s,1m,5m")).await;
    t.receiver.answer(&[500]);
    let created = t.create("retry-1").await;
    t.complete(&created.payinfo, "ALIPAY", "paid").await;

    let first = t.gateway.deliver_due().await.unwrap();
    assert_eq!(
        first,
        DeliveryReport {
            attempted: 1,
            retrying: 1,
            ..Default::default()
        }
    );
    // Not before the first gap has passed...
    t.advance(Duration::from_secs(14));
    assert_eq!(t.gateway.deliver_due().await.unwrap().attempted, 0);
    // ...and right when it has.
    t.advance(Duration::from_secs(1));
    assert_eq!(
        t.gateway.deliver_due().await.unwrap(),
        DeliveryReport {
            attempted: 1,
            delivered: 1,
            ..Default::default()
        }
    );
    // Nothing more, ever.
    t.advance(Duration::from_secs(3600));
    assert_eq!(t.gateway.deliver_due().await.unwrap().attempted, 0);

    let bodies = t.receiver.received();
    assert_eq!(bodies.len(), 2);
    assert_eq!(
        bodies[0], bodies[1],
        "every retry sends the same bytes (same notify_id)"
    );
    let store = &t.gateway.state().service.store;
    let deliveries = store
        .deliveries_for_order(&order_of(&t, "retry-1").await)
        .await
        .unwrap();
    assert_eq!(
        (deliveries[0].state, deliveries[0].attempts),
        (DeliveryState::Delivered, 2)
    );
    let attempts = store.delivery_attempts(deliveries[0].id).await.unwrap();
    assert_eq!(
        attempts.iter().map(|a| a.http_status).collect::<Vec<_>>(),
        [Some(500), Some(200)]
    );
    assert_eq!(attempts[0].error.as_deref(), Some("HTTP 500"));
    assert_eq!(
        attempts[1].started_at.epoch_millis() - attempts[0].started_at.epoch_millis(),
        15_000
    );
}

#[tokio::test]
async fn any_2xx_acknowledges() {
    let t = TestGateway::with(manual("15s")).await;
    t.receiver.answer(&[204]);
    let created = t.create("ack-1").await;
    t.complete(&created.payinfo, "GP", "paid").await;
    assert_eq!(t.gateway.deliver_due().await.unwrap().delivered, 1);
}

#[tokio::test]
async fn a_delivery_is_exhausted_when_the_schedule_runs_out() {
    let t = TestGateway::with(manual("15s")).await;
    t.receiver.answer(&[503, 500]);
    let created = t.create("exhaust-1").await;
    t.complete(&created.payinfo, "ALIPAY", "paid").await;
    assert_eq!(t.gateway.deliver_due().await.unwrap().retrying, 1);
    t.advance(Duration::from_secs(15));
    assert_eq!(t.gateway.deliver_due().await.unwrap().exhausted, 1);
    t.advance(Duration::from_secs(86_400));
    assert_eq!(t.gateway.deliver_due().await.unwrap().attempted, 0);
    let d = &t
        .gateway
        .state()
        .service
        .store
        .deliveries_for_order(&order_of(&t, "exhaust-1").await)
        .await
        .unwrap()[0];
    assert_eq!(
        (d.state, d.attempts, d.last_error.as_deref()),
        (DeliveryState::Exhausted, 2, Some("HTTP 500"))
    );
}

#[tokio::test]
async fn an_unreachable_receiver_is_a_failed_attempt_with_a_reason() {
    let t = TestGateway::with(manual("15s")).await;
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut request = t.order("unreachable-1");
    request.call_back_url = Some(format!("http://127.0.0.1:{closed_port}/notify"));
    let created = t.client.prepay_init(&request).await.unwrap();
    t.complete(&created.payinfo, "ALIPAY", "paid").await;
    assert_eq!(t.gateway.deliver_due().await.unwrap().retrying, 1);
    let d = &t
        .gateway
        .state()
        .service
        .store
        .deliveries_for_order(&order_of(&t, "unreachable-1").await)
        .await
        .unwrap()[0];
    let error = d.last_error.clone().unwrap();
    assert!(error.contains("connection"), "{error}");
    assert!(
        !error.contains("127.0.0.1"),
        "errors do not repeat the URL: {error}"
    );
}

#[tokio::test]
async fn a_pending_delivery_is_delivered_after_a_restart() {
    let mut t = TestGateway::with(manual("15s,1m")).await;
    t.receiver.answer(&[500]);
    let created = t.create("restart-1").await;
    t.complete(&created.payinfo, "UNIONPAY", "paid").await;
    assert_eq!(t.gateway.deliver_due().await.unwrap().retrying, 1);
    t.stop().await;

    // A new process on the same database, some time later.
    let clock = ManualClock::new(t.now());
    clock.advance(Duration::from_secs(20));
    let (gateway, _, shutdown, server) =
        serve(t.dir.path(), &manual("15s,1m"), Arc::new(clock)).await;
    assert_eq!(gateway.deliver_due().await.unwrap().delivered, 1);
    let bodies = t.receiver.received();
    assert_eq!(bodies.len(), 2);
    let callback = t.client.verify_callback(&bodies[1]).unwrap();
    assert_eq!(callback.prepay_order_id.as_deref(), Some("restart-1"));
    shutdown.cancel();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_background_worker_delivers_without_being_asked() {
    let t = TestGateway::start().await;
    let created = t.create("worker-1").await;
    t.complete(&created.payinfo, "WECHATPAY", "paid").await;
    let bodies = t.receiver.wait_for(1).await;
    assert_eq!(
        t.client
            .verify_callback(&bodies[0])
            .unwrap()
            .prepay_order_id
            .as_deref(),
        Some("worker-1")
    );
}

#[tokio::test]
async fn a_merchant_that_never_answers_does_not_hold_back_other_callbacks() {
    let t = TestGateway::start().await;
    // One merchant endpoint takes every callback and answers none (until the timeout).
    let (listener, silent) = ottgate_testkit::bind().await;
    let app = axum::Router::new().route(
        "/notify",
        axum::routing::post(|| async {
            tokio::time::sleep(Duration::from_secs(300)).await;
            "SUCCESS"
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    for i in 0..3 {
        let mut request = t.order(&format!("silent-{i}"));
        request.call_back_url = Some(silent.join("notify").unwrap().to_string());
        let created = t.client.prepay_init(&request).await.unwrap();
        t.complete(&created.payinfo, "GP", "paid").await;
    }
    // Those three are in flight, unanswered, when another payment's callback falls due: it
    // goes out at once, not after them.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let created = t.create("prompt-1").await;
    t.complete(&created.payinfo, "GP", "paid").await;
    let arrived = tokio::time::timeout(Duration::from_secs(1), t.receiver.wait_for(1)).await;
    assert!(
        arrived.is_ok(),
        "the other callback waited for the silent endpoint"
    );
}

#[tokio::test]
async fn every_callback_is_signed_with_the_merchants_webhook_secret() {
    let t = TestGateway::start().await;
    let created = t.create("signed-1").await;
    t.complete(&created.payinfo, "GP", "paid").await;
    let bodies = t.receiver.wait_for(1).await;
    let header = t.receiver.signatures()[0]
        .clone()
        .expect("OTTGate-Signature");
    let secret = t.merchant.webhook_secret.expose_secret();
    let now = t.now().epoch_millis() / 1000;
    let within = Duration::from_secs(300);
    ottgate_client::verify_signature_header(secret, &header, &bodies[0], now, within)
        .expect("the callback verifies with the merchant's webhook secret");
    // The envelope inside is unchanged: OTT Pay integrations read it as before.
    t.client.verify_callback(&bodies[0]).unwrap();
    // Another merchant's secret, a changed body, or the same callback replayed an hour
    // later does not verify.
    let other = t.add_merchant("Other").await;
    assert!(
        ottgate_client::verify_signature_header(
            other.webhook_secret.expose_secret(),
            &header,
            &bodies[0],
            now,
            within
        )
        .is_err()
    );
    let mut changed = bodies[0].to_vec();
    changed.push(b' ');
    assert!(
        ottgate_client::verify_signature_header(secret, &header, &changed, now, within).is_err()
    );
    assert!(
        ottgate_client::verify_signature_header(secret, &header, &bodies[0], now + 3600, within)
            .is_err()
    );
}
