//! `ottgate serve` on SQLite, killed with SIGKILL in the middle of a load like the bench's
//! (clients in a closed loop creating orders and paying half of them): after a restart on
//! the same file every PREPAY_INIT that was answered SUCCESS is there, and every payment
//! that was answered paid has its callback delivered.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod support;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use ottgate_client::Client;
use ottgate_testkit::Fetch;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{Server, add_merchant, db_url, order, ottgate};

/// `ottgate serve` on the SQLite file in `dir`, with a short callback lease: callbacks the
/// killed process had claimed are taken over 5 s later, not the default minute.
fn serve(dir: &std::path::Path) -> Server {
    Server::launch(
        ottgate()
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(["--database-url", &db_url(dir)])
            .env("OTTGATE_DELIVERY_LEASE_SECS", "5")
            .env("OTTGATE_CALLBACK_TIMEOUT_MS", "3000"),
        "ottgate serving",
    )
}

/// Callbacks received, by the payment (`order_id`) they announce.
#[derive(Clone)]
struct Receiver {
    client: Arc<Client>,
    paid: Arc<Mutex<HashSet<String>>>,
}

async fn receive(State(r): State<Receiver>, body: Bytes) -> &'static str {
    let callback = r.client.verify_callback(&body).expect("a genuine callback");
    r.paid.lock().unwrap().insert(callback.order_id);
    "SUCCESS"
}

/// What the load was told: orders created (their references) and payments made (their
/// payment ids), each only once the gateway answered success.
#[derive(Default)]
struct Acknowledged {
    created: Vec<String>,
    paid: Vec<String>,
}

#[tokio::test]
async fn a_gateway_killed_under_load_keeps_every_acknowledged_order_and_callback() {
    let dir = tempfile::tempdir().unwrap();
    let merchant = add_merchant(dir.path(), "Crash Test Cafe");
    let mut gateway = serve(dir.path());
    let base = gateway.base.clone();
    let receiver = Receiver {
        client: Arc::new(merchant.client(&base)),
        paid: Arc::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let callback = format!("http://{}/notify", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/notify", post(receive))
        .with_state(receiver.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let acknowledged = Arc::new(Mutex::new(Acknowledged::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..16)
        .map(|client| {
            let (merchant, base, callback) = (merchant.clone(), base.clone(), callback.clone());
            let (acknowledged, stop) = (acknowledged.clone(), stop.clone());
            tokio::spawn(async move {
                let envelope = merchant.client(&base);
                let http = reqwest::Client::new();
                for i in 0.. {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let reference = format!("crash-{client}-{i}");
                    let request = order(&merchant, &reference, &callback, "1234", "CAD");
                    // A refused connection or a cut answer is not an acknowledgement.
                    let Ok(created) = envelope.prepay_init(&request).await else {
                        break;
                    };
                    acknowledged.lock().unwrap().created.push(reference);
                    if i % 2 == 1 {
                        continue;
                    }
                    let token = created.payinfo.rsplit('/').next().unwrap().to_owned();
                    let Ok(r) = http
                        .post(format!("{base}/sandbox/v1/checkout/{token}/complete"))
                        .json(&serde_json::json!({"method": "GP", "outcome": "paid"}))
                        .send()
                        .await
                    else {
                        break;
                    };
                    if r.status() != 200 {
                        break;
                    }
                    let Ok(body) = r.json::<serde_json::Value>().await else {
                        break;
                    };
                    let payment = body["order_id"].as_str().unwrap().to_owned();
                    acknowledged.lock().unwrap().paid.push(payment);
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(1500)).await;
    gateway.child.kill().unwrap();
    gateway.child.wait().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let Acknowledged { created, paid } = std::mem::take(&mut *acknowledged.lock().unwrap());
    assert!(
        created.len() >= 100 && paid.len() >= 50,
        "the load ran: {} created, {} paid before the kill",
        created.len(),
        paid.len()
    );

    // The same file, a new process (on a new port).
    let restarted = serve(dir.path());
    let envelope = merchant.client(&restarted.base);
    for reference in &created {
        let found = envelope.prepay_query(reference).await.unwrap();
        assert_eq!(found.prepay_order_id, *reference, "acknowledged, then lost");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let missing: Vec<&String> = {
            let delivered = receiver.paid.lock().unwrap();
            paid.iter().filter(|p| !delivered.contains(*p)).collect()
        };
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} paid orders never had their callback: {:?}…",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The restarted gateway answers, as ever.
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(format!("{}/readyz", restarted.base))
            .fetch()
            .await
            .status(),
        200
    );
}
