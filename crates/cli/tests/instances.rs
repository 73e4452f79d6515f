//! Several `ottgate serve` processes on one PostgreSQL database, as behind a load balancer:
//! payments made through both, paid through both at once, and a gateway killed with its
//! callbacks in flight. Real processes, real HTTP, the test cluster of scripts/test.sh.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code")]

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use futures::StreamExt;
use ottgate_client::{Client, PrepayInitRequest};
use ottgate_testkit::Fetch;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ottgate_testkit::cluster::Cluster;
use support::{Credentials, Server, ottgate, run};

mod support;

const MASTER_KEY: &str = "7d5f1e0c9a8b7c6d5e4f30211203f4e5d6c7b8a99a8b7c6d5e4f30211203f4e5";

/// A deployment on a fresh PostgreSQL database: its environment, and a merchant added
/// through `ottgate merchant add` on that database.
struct Deployment {
    env: Vec<(&'static str, String)>,
    merchant: Credentials,
}

impl Deployment {
    /// On a fresh database of the shared test cluster.
    async fn new(extra: &[(&'static str, &str)]) -> Self {
        Self::on(ottgate_testkit::fresh_database().await, extra)
    }

    /// On the database at `database_url`.
    fn on(database_url: String, extra: &[(&'static str, &str)]) -> Self {
        let mut env = vec![
            ("OTTGATE_DATABASE_URL", database_url),
            ("OTTGATE_MASTER_KEY", MASTER_KEY.to_owned()),
            ("OTTGATE_DELIVERY_POLL_INTERVAL_MS", "100".to_owned()),
            ("OTTGATE_CALLBACK_RETRY_SCHEDULE", "1s,1s,1s".to_owned()),
        ];
        env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        let mut add = ottgate();
        add.args([
            "merchant",
            "add",
            "--name",
            "Two Gateway Shop",
            "--currencies",
            "CAD",
            "--json",
        ]);
        for (key, value) in &env {
            add.env(key, value);
        }
        let merchant = serde_json::from_slice(&run(&mut add).stdout).unwrap();
        Self { env, merchant }
    }

    fn serve(&self) -> Server {
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Server::serve(&env)
    }
}

/// The merchant's callback endpoint: which order each callback is about, and when it came.
/// The first callback of each order is held unanswered when `hold_first` is set.
#[derive(Clone)]
struct Receiver {
    client: Arc<Client>,
    arrivals: Arc<Mutex<HashMap<String, Vec<Instant>>>>,
    hold_first: bool,
}

impl Receiver {
    async fn start(client: Client, hold_first: bool) -> (Self, String) {
        let receiver = Self {
            client: Arc::new(client),
            arrivals: Arc::default(),
            hold_first,
        };
        let app = Router::new()
            .route("/notify", post(Self::receive))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/notify", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    async fn receive(State(r): State<Self>, body: Bytes) -> &'static str {
        let callback = r.client.verify_callback(&body).expect("a genuine callback");
        let first = {
            let mut arrivals = r.arrivals.lock().unwrap();
            let seen = arrivals.entry(callback.order_id).or_default();
            seen.push(Instant::now());
            seen.len() == 1
        };
        if first && r.hold_first {
            tokio::time::sleep(Duration::from_secs(300)).await;
        }
        "SUCCESS"
    }

    fn arrivals(&self) -> HashMap<String, Vec<Instant>> {
        self.arrivals.lock().unwrap().clone()
    }

    /// Waits until callbacks about `n` orders have come.
    async fn wait_for(&self, n: usize, within: Duration) {
        let deadline = Instant::now() + within;
        while self.arrivals.lock().unwrap().len() < n {
            assert!(
                Instant::now() < deadline,
                "only {} of {n} orders called back",
                self.arrivals.lock().unwrap().len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// 12.34 CAD under `reference`, called back at `callback`.
fn order(c: &Credentials, reference: &str, callback: &str) -> PrepayInitRequest {
    support::order(c, reference, callback, "1234", "CAD")
}

/// The sandbox helper of the gateway at `base` pays the checkout behind `payinfo`; its
/// HTTP status.
async fn pay(http: &reqwest::Client, base: &str, payinfo: &str, method: &str) -> u16 {
    let token = payinfo.rsplit('/').next().unwrap();
    http.post(format!("{base}/sandbox/v1/checkout/{token}/complete"))
        .json(&serde_json::json!({"method": method, "outcome": "paid"}))
        .fetch()
        .await
        .status()
        .as_u16()
}

async fn ready(base: &str) -> u16 {
    reqwest::get(format!("{base}/readyz"))
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// Waits until the gateway's readiness is `status`.
async fn wait_ready(base: &str, status: u16, within: Duration) {
    let deadline = Instant::now() + within;
    while ready(base).await != status {
        assert!(Instant::now() < deadline, "/readyz never answered {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A counter's value in a gateway's `/metrics` (0 when it has no such series).
async fn metric(base: &str, series: &str) -> f64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_on_one_database_take_2000_payments_and_call_back_each_once() {
    let deployment = Deployment::new(&[]).await;
    let (a, b) = (deployment.serve(), deployment.serve());
    let bases = [a.base.clone(), b.base.clone()];
    let c = &deployment.merchant;
    let clients = [
        c.envelope_client(&bases[0]).unwrap(),
        c.envelope_client(&bases[1]).unwrap(),
    ];
    let (receiver, callback_url) =
        Receiver::start(c.envelope_client(&bases[0]).unwrap(), false).await;
    let http = reqwest::Client::new();
    const N: usize = 2_000;
    let methods = ["GP", "ALIPAY", "WECHATPAY", "UNIONPAY"];
    let started = Instant::now();
    futures::stream::iter(0..N)
        .map(|i| {
            let (clients, bases, http, callback_url) = (&clients, &bases, &http, &callback_url);
            async move {
                // Created through one gateway, paid through the other.
                let created = clients[i % 2]
                    .prepay_init(&order(c, &format!("two-{i}"), callback_url))
                    .await
                    .unwrap();
                let status = pay(http, &bases[(i + 1) % 2], &created.payinfo, methods[i % 4]).await;
                assert_eq!(status, 200, "payment {i}");
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    let paid_in = started.elapsed();
    receiver.wait_for(N, Duration::from_secs(120)).await;
    // Any second delivery would come within a retry or two.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let arrivals = receiver.arrivals();
    assert_eq!(arrivals.len(), N);
    let repeated: Vec<_> = arrivals.iter().filter(|(_, at)| at.len() != 1).collect();
    assert!(
        repeated.is_empty(),
        "called back more than once: {repeated:?}"
    );
    eprintln!(
        "{N} payments through two gateways in {paid_in:?}; every callback once in {:?}",
        started.elapsed()
    );

    // Each order reads the same from either gateway.
    futures::stream::iter(0..N)
        .map(|i| {
            let clients = &clients;
            async move {
                let reference = format!("two-{i}");
                let through_a = clients[0].prepay_query(&reference).await.unwrap();
                let through_b = clients[1].prepay_query(&reference).await.unwrap();
                assert_eq!(through_a.status, "SUCCESS", "{reference}");
                assert_eq!(
                    serde_json::to_value(&through_a).unwrap(),
                    serde_json::to_value(&through_b).unwrap(),
                    "{reference}"
                );
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    let settled = metric(&bases[0], "ottgate_settlements_total{outcome=\"paid\"}").await
        + metric(&bases[1], "ottgate_settlements_total{outcome=\"paid\"}").await;
    assert_eq!(settled, N as f64, "one state change per payment");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_order_paid_through_both_gateways_at_once_changes_once_and_calls_back_once() {
    let deployment = Deployment::new(&[]).await;
    let (a, b) = (deployment.serve(), deployment.serve());
    let c = &deployment.merchant;
    let (receiver, callback_url) =
        Receiver::start(c.envelope_client(&a.base).unwrap(), false).await;
    let http = reqwest::Client::new();
    for (round, method) in ["GP", "UNIONPAY", "ALIPAY", "WECHATPAY"].iter().enumerate() {
        let created = c
            .envelope_client(&a.base)
            .unwrap()
            .prepay_init(&order(c, &format!("race-{round}"), &callback_url))
            .await
            .unwrap();
        let (through_a, through_b) = tokio::join!(
            pay(&http, &a.base, &created.payinfo, method),
            pay(&http, &b.base, &created.payinfo, method)
        );
        assert!(
            [through_a, through_b].contains(&200),
            "{method}: {through_a} {through_b}"
        );
    }
    receiver.wait_for(4, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (order, arrivals) in receiver.arrivals() {
        assert_eq!(
            arrivals.len(),
            1,
            "{order} called back {} times",
            arrivals.len()
        );
    }
    let series = "ottgate_settlements_total{outcome=\"paid\"}";
    let settled = metric(&a.base, series).await + metric(&b.base, series).await;
    assert_eq!(settled, 4.0, "one state change per order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_of_a_killed_gateway_are_delivered_by_another_after_the_lease() {
    const LEASE: Duration = Duration::from_secs(5);
    // Held callbacks stay in flight (up to the timeout, just inside the lease) until the
    // gateway dies.
    let deployment = Deployment::new(&[
        ("OTTGATE_DELIVERY_LEASE_SECS", "5"),
        ("OTTGATE_CALLBACK_TIMEOUT_MS", "4500"),
    ])
    .await;
    let c = &deployment.merchant;
    let mut a = deployment.serve();
    let (receiver, callback_url) = Receiver::start(c.envelope_client(&a.base).unwrap(), true).await;
    let http = reqwest::Client::new();
    const N: usize = 10;
    for i in 0..N {
        let created = c
            .envelope_client(&a.base)
            .unwrap()
            .prepay_init(&order(c, &format!("kill-{i}"), &callback_url))
            .await
            .unwrap();
        assert_eq!(pay(&http, &a.base, &created.payinfo, "GP").await, 200);
    }
    // Every callback is in flight at A (held unanswered by the receiver)...
    receiver.wait_for(N, Duration::from_secs(30)).await;
    // ...when A dies.
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let b = deployment.serve();
    let deadline = Instant::now() + Duration::from_secs(60);
    while receiver.arrivals().values().any(|at| at.len() < 2) {
        assert!(
            Instant::now() < deadline,
            "B did not take over the callbacks"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (order, at) in receiver.arrivals() {
        assert_eq!(at.len(), 2, "{order}: once from A (held), once from B");
        let gap = at[1] - at[0];
        // A claimed it a moment before posting it; B may take it when A's lease ends.
        assert!(
            gap + Duration::from_millis(500) >= LEASE,
            "{order} delivered again {gap:?} after the first try: inside the lease"
        );
    }
    let delivered = metric(
        &b.base,
        "ottgate_callback_attempts_total{outcome=\"delivered\"}",
    )
    .await;
    assert_eq!(delivered, N as f64, "B delivered each once");
}

#[test]
fn a_gateway_on_postgres_without_the_master_key_refuses_to_start() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url = rt.block_on(ottgate_testkit::fresh_database());
    let out = ottgate()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("OTTGATE_DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("master key must be given"), "{err}");
}

#[test]
fn merchant_commands_work_on_postgres() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let deployment = rt.block_on(Deployment::new(&[]));

    let mut channels = ottgate();
    channels.args([
        "merchant",
        "channels",
        "--id",
        &deployment.merchant.merchant_id,
        "--disable",
        "GP",
        "--json",
    ]);
    for (key, value) in &deployment.env {
        channels.env(key, value);
    }
    let v: serde_json::Value = serde_json::from_slice(&run(&mut channels).stdout).unwrap();
    assert_eq!(
        v["methods"],
        serde_json::json!(["WECHATPAY", "ALIPAY", "UNIONPAY"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_database_and_metrics_show_the_pool() {
    let mut cluster = Cluster::primary(&[]);
    let deployment = Deployment::on(
        cluster.url("postgres"),
        &[("OTTGATE_DB_CONNECT_TIMEOUT_MS", "1000")],
    );
    let gateway = deployment.serve();
    assert_eq!(ready(&gateway.base).await, 200);
    let pool = metric(&gateway.base, "ottgate_db_pool_connections{status=\"max\"}").await;
    assert_eq!(pool, 16.0, "the default pool size");
    assert_eq!(
        metric(&gateway.base, "ottgate_callback_lease_seconds").await,
        60.0
    );
    cluster.kill();
    wait_ready(&gateway.base, 503, Duration::from_secs(10)).await;
    cluster.start();
    wait_ready(&gateway.base, 200, Duration::from_secs(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_primary_loses_no_acknowledged_payment() {
    let mut primary = Cluster::primary(&[
        "synchronous_standby_names = 'standby1'",
        "synchronous_commit = on",
        "wal_level = replica",
    ]);
    let standby = Cluster::standby_of(&primary, "standby1");
    let url = format!(
        "postgres://postgres@{},{}/postgres?target_session_attrs=read-write",
        primary.host(),
        standby.host()
    );
    // The standby confirms every commit before it is acknowledged.
    let (db, connection) = tokio_postgres::connect(&primary.url("postgres"), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let row = db
            .query_opt(
                "SELECT sync_state FROM pg_stat_replication
                 WHERE application_name = 'standby1' AND state = 'streaming'",
                &[],
            )
            .await
            .unwrap();
        if row.is_some_and(|r| r.get::<_, String>(0) == "sync") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the standby never became synchronous"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(db);
    let deployment = Deployment::on(url, &[("OTTGATE_DB_CONNECT_TIMEOUT_MS", "1000")]);
    let gateway = deployment.serve();
    let c = &deployment.merchant;
    let client = c.envelope_client(&gateway.base).unwrap();
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let failed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stop = tokio_util::sync::CancellationToken::new();
    let load: Vec<_> = (0..8)
        .map(|worker| {
            let (client, acknowledged, failed, stop) = (
                client.clone(),
                acknowledged.clone(),
                failed.clone(),
                stop.clone(),
            );
            let c = c.clone();
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.is_cancelled() {
                    let reference = format!("fo-{worker}-{i}");
                    i += 1;
                    match client
                        .prepay_init(&order(&c, &reference, "http://127.0.0.1:9/notify"))
                        .await
                    {
                        Ok(_) => acknowledged.lock().unwrap().push(reference),
                        Err(_) => {
                            failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = acknowledged.lock().unwrap().len();
    assert!(before > 0, "payments were taken before the failover");
    // The primary's machine is lost under load; the standby is promoted.
    primary.kill();
    standby.promote();
    // The gateway finds the new primary by itself (the URL names both hosts).
    let deadline = Instant::now() + Duration::from_secs(30);
    let at_promotion = acknowledged.lock().unwrap().len();
    while acknowledged.lock().unwrap().len() < at_promotion + 50 {
        assert!(
            Instant::now() < deadline,
            "the gateway did not resume on the promoted standby"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    for worker in load {
        worker.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    eprintln!(
        "{} PREPAY_INIT acknowledged ({before} before the primary was lost), {} refused during the failover",
        acknowledged.len(),
        failed.load(std::sync::atomic::Ordering::Relaxed)
    );
    // Every acknowledged payment is on the new primary.
    futures::stream::iter(acknowledged)
        .map(|reference| {
            let client = &client;
            async move {
                let found = client.prepay_query(&reference).await;
                assert!(
                    found.is_ok(),
                    "{reference} was acknowledged and is lost: {found:?}"
                );
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copied_sqlite_deployment_serves_every_payment_from_postgres() {
    // A deployment on SQLite: paid payments, some partly refunded, one never paid.
    let dir = tempfile::tempdir().unwrap();
    let mut old = Server::start(dir.path());
    let c = support::add_merchant(dir.path(), "Moving Shop");
    let client = c.envelope_client(&old.base).unwrap();
    let (receiver, callback_url) =
        Receiver::start(c.envelope_client(&old.base).unwrap(), false).await;
    let http = reqwest::Client::new();
    const N: usize = 12;
    let mut payments = Vec::new();
    for i in 0..N {
        let mut request = order(&c, &format!("move-{i}"), &callback_url);
        request.currency_type = Some("USD".into());
        let created = client.prepay_init(&request).await.unwrap();
        let token = created.payinfo.rsplit('/').next().unwrap();
        let paid: serde_json::Value = http
            .post(format!("{}/sandbox/v1/checkout/{token}/complete", old.base))
            .json(&serde_json::json!({"method": "GP", "outcome": "paid"}))
            .fetch()
            .await
            .json()
            .await
            .unwrap();
        let attempt = paid["order_id"].as_str().unwrap().to_owned();
        if i % 3 == 0 {
            let refund = client.refund(&attempt, "234", None).await.unwrap();
            assert_eq!(refund.refund_status, "success");
        }
        payments.push(attempt);
    }
    let unpaid = client
        .prepay_init(&order(&c, "move-unpaid", &callback_url))
        .await
        .unwrap();
    receiver.wait_for(N, Duration::from_secs(30)).await;
    assert!(old.terminate().success());

    // Copied, twice: the second run finds everything there.
    let to = ottgate_testkit::fresh_database().await;
    let from = support::db_url(dir.path());
    let copy = || {
        let out = run(ottgate().args(["store", "copy", "--from", &from, "--to", &to, "--json"]));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let first = copy();
    let tables = first["tables"].as_array().unwrap();
    let rows = |table: &str, field: &str| {
        tables.iter().find(|t| t["table"] == table).unwrap()[field]
            .as_u64()
            .unwrap()
    };
    assert_eq!(rows("orders", "source"), N as u64 + 1);
    assert_eq!(rows("attempts", "inserted"), N as u64);
    assert_eq!(rows("refunds", "destination"), (N as u64).div_ceil(3));
    assert_eq!(rows("deliveries", "destination"), N as u64);
    assert!(rows("delivery_attempts", "destination") >= N as u64);
    for t in tables {
        assert_eq!(t["source"], t["destination"], "{t}");
    }
    let again = copy();
    for t in again["tables"].as_array().unwrap() {
        assert_eq!(t["inserted"], 0, "re-run: {t}");
        assert_eq!(t["source"], t["destination"], "{t}");
    }

    // On PostgreSQL, with the SQLite deployment's master key: every payment reads as before
    // and what is left of it can be refunded.
    let master = std::fs::read_to_string(dir.path().join("ottgate.db.key")).unwrap();
    let new = Server::serve(&[
        ("OTTGATE_DATABASE_URL", to.as_str()),
        ("OTTGATE_MASTER_KEY", master.trim()),
    ]);
    let client = c.envelope_client(&new.base).unwrap();
    for (i, attempt) in payments.iter().enumerate() {
        let q = client.status_query(attempt).await.unwrap();
        let refunded = if i % 3 == 0 { 234 } else { 0 };
        assert_eq!(q.refund_amount, refunded.to_string(), "{attempt}");
        let rest = (1234 - refunded).to_string();
        let refund = client.refund(attempt, &rest, None).await.unwrap();
        assert_eq!(refund.refund_status, "success", "{attempt}");
        let q = client.status_query(attempt).await.unwrap();
        assert_eq!(q.order_status, "fully_refunded", "{attempt}");
    }
    let q = client.prepay_query("move-unpaid").await.unwrap();
    assert_eq!(q.prepay_order_id, "move-unpaid");
    assert_ne!(q.status, "SUCCESS");
    let _ = unpaid;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_are_counted_across_gateways() {
    let deployment = Deployment::new(&[("OTTGATE_AUTH_FAILURE_LIMIT", "6")]).await;
    let (a, b) = (deployment.serve(), deployment.serve());
    let c = &deployment.merchant;
    let http = reqwest::Client::new();
    let sign_in = |base: &str, key: &str| {
        http.post(format!("{base}/api/v1/auth/token"))
            .json(&serde_json::json!({"appId": c.app_id, "appKey": key}))
            .fetch()
    };
    // Six wrong keys, three through each gateway: each alone has seen only three.
    for i in 0..6 {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        assert_eq!(sign_in(base, "not-the-key").await.status(), 401, "try {i}");
    }
    for base in [&a.base, &b.base] {
        assert_eq!(
            sign_in(base, "not-the-key").await.status(),
            429,
            "the seventh try, through either gateway"
        );
    }
    let right = sign_in(&a.base, &c.app_key).await;
    assert_eq!(
        right.status(),
        429,
        "this address is out of tries for the window"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_gateway_sandbox_shares_one_ottgate_simulate() {
    // The built-in simulators live in each gateway's memory, so with several gateways the
    // wallets are one `ottgate simulate` they all talk to (docs/deployment.md).
    let dir = tempfile::tempdir().unwrap();
    let sims = support::simulators(dir.path());
    let deployment = Deployment::new(&[]).await;
    // A stands where the load balancer would: the public URL both gateways hand out.
    let port = support::free_port();
    let public = format!("http://127.0.0.1:{port}");
    let config = dir.path().join("gateway.toml");
    let gateway = |listen: String| {
        let mut command = ottgate();
        command.args([
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--listen",
            &listen,
            "--log-format",
            "json",
        ]);
        for (key, value) in &deployment.env {
            command.env(key, value);
        }
        command.env("OTTGATE_PUBLIC_URL", &public);
        Server::launch(&mut command, "ottgate serving")
    };
    let a = gateway(format!("127.0.0.1:{port}"));
    let b = gateway("127.0.0.1:0".into());
    let c = &deployment.merchant;
    let (receiver, callback_url) =
        Receiver::start(c.envelope_client(&a.base).unwrap(), false).await;
    let http = ottgate_testkit::browser();

    // Created through A; the buyer's choice lands on B, which starts the payment at the
    // shared Alipay; the buyer pays there; Alipay notifies the public URL (A).
    let created = c
        .envelope_client(&a.base)
        .unwrap()
        .prepay_init(&order(c, "shared-sim-1", &callback_url))
        .await
        .unwrap();
    let token = created.payinfo.rsplit('/').next().unwrap();
    let chose = http
        .post(format!("{}/checkout/{token}/pay", b.base))
        .form(&[("method", "ALIPAY")])
        .fetch()
        .await;
    let wallet = url::Url::parse(&support::location(&chose)).unwrap();
    let (trade, paid) = support::pay_at_simulated_alipay(&http, &sims.base, &wallet).await;
    assert_eq!(paid.status(), 303, "back to the merchant");
    receiver.wait_for(1, Duration::from_secs(30)).await;

    // B reads it paid and refunds it at the same Alipay; the refund's result comes back
    // by notification too.
    let through_b = c.envelope_client(&b.base).unwrap();
    assert_eq!(
        through_b.status_query(&trade).await.unwrap().order_status,
        "success"
    );
    let refund = through_b.refund(&trade, "200", None).await.unwrap();
    assert_eq!(refund.refund_status, "pending");
    let deadline = Instant::now() + Duration::from_secs(15);
    while through_b.status_query(&trade).await.unwrap().refund_amount != "200" {
        assert!(Instant::now() < deadline, "the refund result never came");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.arrivals()[&trade].len(), 1, "one callback");
}

#[test]
fn a_gateway_reaches_postgres_over_verified_tls() {
    let (cluster, ca) = Cluster::primary_tls_only();
    let url = format!("{}?sslmode=require", cluster.url("postgres"));
    let ca = ca.to_str().unwrap().to_owned();
    let start = |env: &[(&str, &str)]| {
        let mut add = ottgate();
        add.args(["merchant", "add", "--name", "TLS Shop", "--json"])
            .env("OTTGATE_MASTER_KEY", MASTER_KEY);
        for (key, value) in env {
            add.env(key, value);
        }
        add.output().unwrap()
    };
    // Verified against the certificate it was given: works.
    let ok = start(&[("OTTGATE_DATABASE_URL", &url), ("OTTGATE_DB_CA_FILE", &ca)]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // Asked for TLS without anything to trust: refused, saying why.
    let no_ca = start(&[("OTTGATE_DATABASE_URL", &url)]);
    assert!(!no_ca.status.success());
    assert!(String::from_utf8_lossy(&no_ca.stderr).contains("db_ca_file"));
    // Plain TCP: the server refuses it (so the first one really was TLS).
    let plain = start(&[("OTTGATE_DATABASE_URL", &cluster.url("postgres"))]);
    assert!(!plain.status.success());
    // Another certificate to trust: the server's does not verify.
    let (_, stranger) = Cluster::primary_tls_only();
    let wrong = start(&[
        ("OTTGATE_DATABASE_URL", &url),
        ("OTTGATE_DB_CA_FILE", stranger.to_str().unwrap()),
    ]);
    assert!(!wrong.status.success());
}
