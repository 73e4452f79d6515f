//! The REST event log: every callback a merchant is owed, how its delivery went, and
//! resending one — its own only.

use ottgate_client::ClientError;
use std::time::Duration;

use crate::harness::{Options, TestGateway};
use ottgate_testkit::Fetch;

#[tokio::test]
async fn a_merchant_lists_its_callbacks_and_resends_one_byte_for_byte() {
    let t = TestGateway::start().await;
    let created = t.create("events-1").await;
    let (_, paid) = t.complete(&created.payinfo, "GP", "paid").await;
    let first = t.receiver.wait_for(1).await;
    let rest = t.rest();
    let mut events = rest.events(None, None).await.unwrap().events;
    for _ in 0..100 {
        if events[0].state == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        events = rest.events(None, None).await.unwrap().events;
    }
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(
        (
            event.event_type.as_str(),
            event.order_id.as_str(),
            event.state.as_str(),
            event.attempts,
            event.last_http_status
        ),
        (
            "payment.paid",
            paid["order_id"].as_str().unwrap(),
            "delivered",
            1,
            Some(200)
        )
    );
    let again = rest.redeliver(&event.id).await.unwrap();
    assert_eq!(again.state, "pending");
    let both = t.receiver.wait_for(2).await;
    assert_eq!(both[1], first[0], "the same callback, byte for byte");

    // Another merchant sees none of it and can resend none of it.
    let (_, other) = t.other_merchant().await;
    assert!(other.events(None, None).await.unwrap().events.is_empty());
    for id in [event.id.as_str(), "not-an-id"] {
        let err = other.redeliver(id).await.unwrap_err();
        assert!(
            matches!(
                err,
                ClientError::Rest {
                    http_status: 404,
                    ..
                }
            ),
            "{err:?}"
        );
    }
    // Bad parameters are refused, naming the parameter.
    let token = rest.token().await.unwrap();
    for (query, field) in [
        ("since=-1", "since"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
    ] {
        let r = t
            .get(&format!("api/v1/events?{query}"))
            .bearer_auth(&token)
            .fetch()
            .await;
        assert_eq!(r.status(), 400, "{query}");
        assert!(r.text().await.unwrap().contains(field), "{query}");
    }
    let later = t.now().epoch_millis() / 1000 + 60;
    assert!(
        rest.events(Some(later), None)
            .await
            .unwrap()
            .events
            .is_empty()
    );
}

#[tokio::test]
async fn an_exhausted_callback_is_visible_and_can_be_resent() {
    let t = TestGateway::with(Options {
        manual_clock: true,
        workers: false,
        schedule: "1s",
        ..Default::default()
    })
    .await;
    t.receiver.answer(&[500, 500]);
    let created = t.create("events-2").await;
    t.complete(&created.payinfo, "GP", "paid").await;
    t.gateway.deliver_due().await.unwrap();
    t.advance(Duration::from_secs(2));
    let report = t.gateway.deliver_due().await.unwrap();
    assert_eq!(report.exhausted, 1);
    let rest = t.rest();
    let event = rest.events(None, None).await.unwrap().events.remove(0);
    assert_eq!(
        (event.state.as_str(), event.attempts, event.last_http_status),
        ("exhausted", 2, Some(500))
    );
    rest.redeliver(&event.id).await.unwrap();
    assert_eq!(t.gateway.deliver_due().await.unwrap().delivered, 1);
    let event = rest.events(None, None).await.unwrap().events.remove(0);
    assert_eq!(
        (event.state.as_str(), event.attempts, event.last_http_status),
        ("delivered", 3, Some(200))
    );
}

/// A merchant endpoint that takes its time, counting how many POSTs of one body are ever in
/// flight at once.
#[derive(Clone, Default)]
struct SlowEndpoint {
    inner: std::sync::Arc<std::sync::Mutex<(usize, usize, usize)>>, // (now, most, total)
}

async fn slow_answer(axum::extract::State(e): axum::extract::State<SlowEndpoint>) -> &'static str {
    {
        let mut n = e.inner.lock().unwrap();
        n.0 += 1;
        n.1 = n.1.max(n.0);
        n.2 += 1;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    e.inner.lock().unwrap().0 -= 1;
    "SUCCESS"
}

/// Redelivering a callback that is on its way joins that delivery: 300 redeliveries while it
/// is in flight never put a second POST of it on the wire beside it, and every POST made is
/// recorded as an attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_being_delivered_is_never_sent_twice_at_once() {
    let t = TestGateway::start().await;
    let endpoint = SlowEndpoint::default();
    let app = axum::Router::new()
        .route("/slow", axum::routing::post(slow_answer))
        .with_state(endpoint.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/slow", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut order = t.order("events-slow");
    order.call_back_url = Some(url);
    let created = t.client.prepay_init(&order).await.unwrap();
    t.complete(&created.payinfo, "GP", "paid").await;
    crate::harness::eventually("the first POST", || async {
        endpoint.inner.lock().unwrap().2 >= 1
    })
    .await;
    let rest = t.rest();
    let event = rest.events(None, None).await.unwrap().events.remove(0);
    let resends = (0..300).map(|_| rest.redeliver(&event.id));
    for resent in futures::future::join_all(resends).await {
        resent.unwrap();
    }
    // Let whatever they caused run its course.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (now, most, total) = *endpoint.inner.lock().unwrap();
    assert_eq!(most, 1, "{total} POSTs, {most} at once");
    assert_eq!(now, 0);
    let recorded = rest.events(None, None).await.unwrap().events.remove(0);
    assert_eq!(recorded.attempts as usize, total, "every POST recorded");
    assert!(
        total <= 3,
        "the in-flight one, and at most a resend or two after it: {total}"
    );
}

/// Each event names the merchant's reference, why its last try failed and when the next is
/// due; pages follow a cursor, every event once.
#[tokio::test]
async fn events_show_the_reference_the_failure_and_the_next_try_and_page_by_cursor() {
    let t = TestGateway::start().await;
    // The merchant's server is down: every try fails.
    t.receiver.answer(&[500; 20]);
    for i in 0..3 {
        let created = t.create(&format!("ev-page-{i}")).await;
        t.complete(&created.payinfo, "GP", "paid").await;
    }
    t.receiver.wait_for(3).await;
    let rest = t.rest();
    let mut newest = rest.events(None, Some(2)).await.unwrap();
    for _ in 0..100 {
        if newest.events.iter().all(|e| e.attempts > 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        newest = rest.events(None, Some(2)).await.unwrap();
    }
    assert_eq!(newest.events.len(), 2);
    let first = &newest.events[0];
    assert_eq!(first.reference.as_deref(), Some("ev-page-2"));
    assert_eq!(first.state, "pending");
    assert_eq!(first.last_http_status, Some(500));
    assert_eq!(first.last_error.as_deref(), Some("HTTP 500"));
    assert!(first.next_attempt.is_some(), "{first:?}");
    let cursor = newest
        .next_cursor
        .clone()
        .expect("a full page has a cursor");
    let rest_of = rest
        .events_page(None, Some(2), Some(&cursor))
        .await
        .unwrap();
    assert_eq!(rest_of.events.len(), 1);
    assert_eq!(rest_of.events[0].reference.as_deref(), Some("ev-page-0"));
    assert!(rest_of.next_cursor.is_none(), "the last page");
}
