//! Expiry: past `expire_time` an order is closed, whether or not the sweeper has run.

use ottgate_core::Timestamp;
use std::time::Duration;

use crate::harness::{Options, TestGateway};
use ottgate_testkit::Fetch;

fn manual() -> Options {
    Options {
        manual_clock: true,
        workers: false,
        ..Default::default()
    }
}

#[tokio::test]
async fn expire_time_is_creation_plus_duration_in_beijing_time() {
    let t = TestGateway::with(manual()).await;
    let now = t.now();
    let mut request = t.order("exp-0");
    request.duration = Some("90".into());
    let created = t.client.prepay_init(&request).await.unwrap();
    assert_eq!(
        created.expire_time,
        now.plus(Duration::from_secs(90)).beijing_compact()
    );
    let parsed = Timestamp::parse_beijing(&created.expire_time).unwrap();
    assert_eq!(
        parsed.epoch_seconds(),
        now.plus(Duration::from_secs(90)).epoch_seconds()
    );
}

#[tokio::test]
async fn an_order_past_its_expiry_reads_as_closed_everywhere() {
    let t = TestGateway::with(manual()).await;
    let mut request = t.order("exp-1");
    request.duration = Some("60".into());
    let created = t.client.prepay_init(&request).await.unwrap();
    // A buyer opens the wallet before expiry...
    let chose = t.choose(&created.payinfo, "GP").await;
    let wallet = crate::harness::location(&chose);
    t.advance(Duration::from_secs(59));
    assert_eq!(
        t.client.prepay_query("exp-1").await.unwrap().status,
        "PROCESSING"
    );
    t.advance(Duration::from_secs(1));

    // ...and after it, the query, the page, the wallet and the helper all agree.
    let q = t.client.prepay_query("exp-1").await.unwrap();
    assert_eq!(q.status, "ORDERCLOSE");
    assert_eq!(q.payments_methods[0].status, "ORDERCLOSE");
    let page = t.page(&created.payinfo).await;
    assert!(page.contains("data-status=\"expired\""));
    assert!(!page.contains("name=\"method\""));
    let wallet_page = t.page(&wallet).await;
    assert!(!wallet_page.contains("name=\"action\""));
    let paid = t
        .http
        .post(&wallet)
        .form(&[("action", "paid")])
        .fetch()
        .await;
    assert_eq!(paid.status(), 409);
    let (status, body) = t.complete(&created.payinfo, "GP", "paid").await;
    assert_eq!(
        (status.as_u16(), body["rsp_msg"].as_str()),
        (409, Some("order expired"))
    );
    assert_eq!(
        t.client.prepay_query("exp-1").await.unwrap().status,
        "ORDERCLOSE"
    );
    t.gateway.deliver_due().await.unwrap();
    assert!(t.receiver.received().is_empty());
}

#[tokio::test]
async fn the_sweeper_closes_expired_orders_and_leaves_open_ones() {
    let t = TestGateway::with(manual()).await;
    let mut short = t.order("exp-short");
    short.duration = Some("30".into());
    t.client.prepay_init(&short).await.unwrap();
    t.create("exp-long").await; // 600 s
    t.advance(Duration::from_secs(31));
    assert_eq!(t.gateway.sweep_expired().await.unwrap(), 1);
    assert_eq!(t.gateway.sweep_expired().await.unwrap(), 0);
    let stats = t
        .gateway
        .state()
        .service
        .store
        .stats(t.now())
        .await
        .unwrap();
    assert!(stats.orders_by_status.contains(&("expired".into(), 1)));
    assert!(stats.orders_by_status.contains(&("processing".into(), 1)));
}

#[tokio::test]
async fn the_expired_page_links_back_to_the_merchant_with_a_closed_status() {
    let t = TestGateway::with(manual()).await;
    let created = t.create("exp-link").await;
    t.advance(Duration::from_secs(601));
    let page = t.page(&created.payinfo).await;
    let href = page
        .split("id=\"back\" href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    let url = url::Url::parse(&href).unwrap();
    let params = t.client.verify_redirect(url.query().unwrap()).unwrap();
    assert_eq!(params.trade_status, "Trade_Closed");
}
