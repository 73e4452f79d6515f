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
