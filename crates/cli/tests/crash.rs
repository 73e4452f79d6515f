//! `ottgate serve` on SQLite, killed with SIGKILL in the middle of a load like the bench's
//! (clients in a closed loop creating orders and paying half of them): after a restart on
//! the same file every PREPAY_INIT that was answered SUCCESS is there, and every payment
//! that was answered paid has its callback delivered.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code")]

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

/// `ottgate serve` in live mode against the `ottgate simulate` whose configuration is in
/// `sim_dir`, on the SQLite file in `db_dir`, callbacks to loopback allowed, with `env`.
fn serve_beside(
    sim_dir: &std::path::Path,
    db_dir: &std::path::Path,
    env: &[(&str, &str)],
) -> Server {
    let mut command = ottgate();
    command
        .args([
            "serve",
            "--config",
            sim_dir.join("gateway.toml").to_str().unwrap(),
        ])
        .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
        .args(["--database-url", &db_url(db_dir)])
        .env("OTTGATE_ALLOW_PRIVATE_CALLBACKS", "true")
        .envs(env.iter().copied());
    Server::launch(&mut command, "ottgate serving")
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
        client: Arc::new(merchant.envelope_client(&base).unwrap()),
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
                let envelope = merchant.envelope_client(&base).unwrap();
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
    let envelope = merchant.envelope_client(&restarted.base).unwrap();
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

/// What one refund request asked, so it can be asked again after the restart.
#[derive(Debug, Clone, Copy)]
struct Asked {
    rest: bool,
    amount: u64,
}

/// A refund request's final answer after the restart: refunded (the amount said), or
/// refused (nothing refunded).
async fn ask_until_final(
    http: &reqwest::Client,
    base: &str,
    envelope: &Client,
    bearer: &str,
    payment: &str,
    asked: Asked,
) -> Option<u64> {
    let Asked { rest, amount } = asked;
    for _ in 0..600 {
        if rest {
            let r = http
                .post(format!("{base}/api/v1/pay/refund"))
                .bearer_auth(bearer)
                .header("Idempotency-Key", format!("crash-{amount}"))
                .json(&serde_json::json!({"oriPaymentId": payment, "refundAmount": amount.to_string()}))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap();
            match status {
                200 => return body["result"]["refundAmount"].as_str()?.parse().ok(),
                409 => {}
                400..=499 | 502 => return None,
                _ => panic!("REST refund {amount}: {status} {body}"),
            }
        } else {
            match envelope.refund(payment, &amount.to_string(), None).await {
                Ok(answer) => return answer.refund_amt.parse().ok(),
                Err(e) if e.rsp_code() == Some("PROCESSING") => {}
                Err(e) if e.rsp_code().is_some() => return None,
                Err(e) => panic!("envelope refund {amount}: {e}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("refund {amount} never got a final answer");
}

/// Refunds in flight — REST with an Idempotency-Key, envelope REFUND without a refund id —
/// when `ottgate serve` is killed with SIGKILL, around a wallet (`ottgate simulate`, which
/// outlives the gateway) that holds its answers a random while. After a restart every one
/// is asked again, past the idempotency lease: none is refunded twice, and the wallet's
/// books and the gateway's agree to the cent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunds_in_flight_when_the_gateway_is_killed_are_never_made_twice() {
    use rand::Rng;
    let dir = tempfile::tempdir().unwrap();
    let sim_dir = dir.path().join("simulators");
    let sims = support::simulators(&sim_dir);
    let serve = || {
        serve_beside(
            &sim_dir,
            dir.path(),
            &[
                ("OTTGATE_IDEMPOTENCY_LEASE_SECS", "1"),
                ("OTTGATE_RECONCILE_AFTER_SECS", "1"),
            ],
        )
    };
    let mut gateway = serve();
    let merchant = add_merchant(dir.path(), "Refund Crash Cafe");
    let http = reqwest::Client::new();

    // 100,000.00 CAD by WeChat Pay: the buyer scans the code at the simulator and pays.
    let envelope = merchant.envelope_client(&gateway.base).unwrap();
    let created = envelope
        .active_pay(&ottgate_client::ActivePayRequest {
            merchant_id: None,
            order_id: None,
            operator_id: Some(merchant.operator_id.clone()),
            amount: Some("10000000".into()),
            tip: None,
            biz_type: Some("WECHATPAY".into()),
            call_back_url: Some("http://127.0.0.1:9/notify".into()),
            remarks: None,
            currency_type: None,
        })
        .await
        .unwrap();
    let payment = created.order_id.clone();
    let scanned = http
        .get(format!("{}/sim/wechatpay/scan", sims.base))
        .query(&[("code_url", &created.code_url)])
        .fetch()
        .await
        .text()
        .await
        .unwrap();
    let at = scanned.find("/sim/wechatpay/act/").unwrap();
    let act = &scanned[at..at + scanned[at..].find('"').unwrap()];
    http.post(format!("{}{act}", sims.base))
        .form(&[("action", "pay")])
        .fetch()
        .await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while envelope.status_query(&payment).await.unwrap().order_status != "success" {
        assert!(Instant::now() < deadline, "the payment never settled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Sixteen clients refund over and over, a cent more each time, until the kill.
    let rest = ottgate_client::RestClient::new(&gateway.base, &merchant.app_id, &merchant.app_key)
        .unwrap();
    let bearer = rest.token().await.unwrap();
    let asked = Arc::new(Mutex::new(Vec::<Asked>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..16u64)
        .map(|client| {
            let (asked, stop, http) = (asked.clone(), stop.clone(), http.clone());
            let (base, sims, payment) = (gateway.base.clone(), sims.base.clone(), payment.clone());
            let (envelope, bearer) = (merchant.envelope_client(&gateway.base).unwrap(), bearer.clone());
            tokio::spawn(async move {
                for i in 0..1_000u64 {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let amount = client * 1_000 + i + 1;
                    let slow = serde_json::json!({
                        "kind": "slow_answer",
                        "out_trade_no": payment,
                        "delay_ms": rand::thread_rng().gen_range(0..60),
                    });
                    if http
                        .post(format!("{sims}/sim/wechatpay/control"))
                        .json(&slow)
                        .send()
                        .await
                        .is_err()
                    {
                        break;
                    }
                    let one = Asked {
                        rest: client % 2 == 0,
                        amount,
                    };
                    asked.lock().unwrap().push(one);
                    let sent = if one.rest {
                        http.post(format!("{base}/api/v1/pay/refund"))
                            .bearer_auth(&bearer)
                            .header("Idempotency-Key", format!("crash-{amount}"))
                            .json(&serde_json::json!({"oriPaymentId": payment, "refundAmount": amount.to_string()}))
                            .send()
                            .await
                            .is_ok()
                    } else {
                        !matches!(
                            envelope.refund(&payment, &amount.to_string(), None).await,
                            Err(ottgate_client::ClientError::Transport(_))
                        )
                    };
                    if !sent {
                        break;
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    gateway.child.kill().unwrap();
    gateway.child.wait().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let asked = std::mem::take(&mut *asked.lock().unwrap());
    assert!(
        asked.len() >= 50,
        "the load ran: {} refunds asked",
        asked.len()
    );

    // A new process on the same file; every request asked again once its lease is over.
    let restarted = serve();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let envelope = merchant.envelope_client(&restarted.base).unwrap();
    let rest =
        ottgate_client::RestClient::new(&restarted.base, &merchant.app_id, &merchant.app_key)
            .unwrap();
    let bearer = rest.fetch_token().await.unwrap().token;
    let answers = futures::future::join_all(
        asked
            .iter()
            .map(|a| ask_until_final(&http, &restarted.base, &envelope, &bearer, &payment, *a)),
    )
    .await;
    for (a, answer) in asked.iter().zip(&answers) {
        if let Some(said) = answer {
            assert_eq!(*said, a.amount, "answered with another refund");
        }
    }

    // Refunds left pending by the kill are settled by asking the wallet; then the books
    // agree.
    let wallet_refunded = || async {
        let books: serde_json::Value = http
            .get(format!("{}/sim/wechatpay/orders/{payment}", sims.base))
            .fetch()
            .await
            .json()
            .await
            .unwrap();
        books["refunded"].as_u64().unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ours: u64 = envelope
            .status_query(&payment)
            .await
            .unwrap()
            .refund_amount
            .parse()
            .unwrap();
        if ours == wallet_refunded().await {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the gateway says {ours} refunded, the wallet {}",
            wallet_refunded().await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(restarted);
    // No request made two refunds (each amount is one request's).
    let store = ottgate_store::SqliteStore::open(&db_url(dir.path()))
        .await
        .unwrap();
    let refunds =
        ottgate_store::Refunds::refunds(&store, &ottgate_core::AttemptId::parse(&payment).unwrap())
            .await
            .unwrap();
    let mut per_amount = std::collections::BTreeMap::<u64, usize>::new();
    for r in &refunds {
        *per_amount.entry(r.money.amount.minor()).or_default() += 1;
    }
    let twice: Vec<_> = per_amount.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "refunded twice: {twice:?}");
    let succeeded: u64 = refunds
        .iter()
        .filter(|r| r.status == ottgate_core::RefundStatus::Success)
        .map(|r| r.money.amount.minor())
        .sum();
    assert_eq!(succeeded, wallet_refunded().await);
    // Every SUCCESS answer is a refund that exists.
    for (a, answer) in asked.iter().zip(&answers) {
        if answer.is_some() {
            assert_eq!(
                per_amount.get(&a.amount),
                Some(&1),
                "answered, not made: {a:?}"
            );
        }
    }
}

/// A buyer code whose simulated buyer does `outcome` (docs/instore.md: the wallet's prefix,
/// `9`, the outcome's digit — 2 password, 4 undecided — and random digits).
fn buyer_code(outcome: char) -> String {
    let tail: String = (0..14)
        .map(|_| char::from(b'0' + rand::random::<u8>() % 10))
        .collect();
    format!("139{outcome}{tail}")
}

/// SIGKILL while barcode payments are being followed: after a restart each ends — the one
/// whose buyer confirms paid, the one never decided reversed at the wallet — with exactly
/// one callback for the paid one, and STATUS_QUERY agreeing with the wallet.
#[tokio::test]
async fn barcode_payments_being_followed_when_the_gateway_is_killed_end_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let sim_dir = dir.path().join("sim");
    std::fs::create_dir_all(&sim_dir).unwrap();
    let sims = support::simulators(&sim_dir);
    let serve = || {
        serve_beside(
            &sim_dir,
            dir.path(),
            &[("OTTGATE_PASSIVE_PAY_WAIT_MS", "200")],
        )
    };
    let mut gateway = serve();
    let merchant = add_merchant(dir.path(), "Barcode Crash Cafe");
    let receiver = Receiver {
        client: Arc::new(merchant.envelope_client(&gateway.base).unwrap()),
        paid: Arc::default(),
    };
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let callback = format!("http://{}/notify", listener.local_addr().unwrap());
    let counted = calls.clone();
    let app = Router::new()
        .route(
            "/notify",
            post(move |state: State<Receiver>, body: Bytes| {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                receive(state, body)
            }),
        )
        .with_state(receiver.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let envelope = merchant.envelope_client(&gateway.base).unwrap();
    let pay = |order_id: &'static str, code: String| {
        let request = ottgate_client::PassivePayRequest {
            order_id: Some(order_id.into()),
            amount: "4200".into(),
            auth_code: code,
            call_back_url: Some(callback.clone()),
            ..Default::default()
        };
        let envelope = &envelope;
        async move { envelope.passive_pay(&request).await.unwrap() }
    };
    let confirming = pay("KILL-PW", buyer_code('2')).await;
    let undecided = pay("KILL-UN", buyer_code('4')).await;
    assert_eq!(
        (
            confirming.order_status.as_str(),
            undecided.order_status.as_str()
        ),
        ("PROCESSING", "PROCESSING")
    );
    gateway.child.kill().unwrap();
    let _ = gateway.child.wait();

    let gateway = serve();
    let envelope = merchant.envelope_client(&gateway.base).unwrap();
    // WeChat's rule: asked 5 s after the first answer, then every 10 s to 30 s; reversed.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let paid = envelope.status_query("KILL-PW").await.unwrap().order_status;
        let closed = envelope.status_query("KILL-UN").await.unwrap().order_status;
        if paid == "success" && closed == "orderclosed" {
            break;
        }
        assert!(Instant::now() < deadline, "still {paid} and {closed}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The wallet agrees: paid, and reversed.
    let store = ottgate_store::SqliteStore::open(&db_url(dir.path()))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    for (order_id, state) in [("KILL-PW", "SUCCESS"), ("KILL-UN", "REVOKED")] {
        use ottgate_store::prelude::*;
        let merchant_id = ottgate_core::MerchantId::parse(&merchant.merchant_id).unwrap();
        let reference = ottgate_core::MerchantRef::parse(order_id).unwrap();
        let order = store
            .order_by_reference(&merchant_id, &reference)
            .await
            .unwrap()
            .unwrap();
        let attempt = store.attempts(&order.id).await.unwrap().remove(0);
        let books: serde_json::Value = http
            .get(format!("{}/sim/wechatpay/orders/{}", sims.base, attempt.id))
            .fetch()
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(books["trade_state"], state, "{order_id}: {books}");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one callback: the paid one"
    );
    assert!(receiver.paid.lock().unwrap().contains("KILL-PW"));
}
