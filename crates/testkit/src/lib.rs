//! What the test suites share (a dev-dependency only; nothing ships it): a browser that
//! shows each redirect, sending a request and reading its answer in one step, a port of
//! one's own, waiting for a condition, and a fresh PostgreSQL database on the test cluster.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test support: a failed expectation is a failed test"
)]
#![allow(
    async_fn_in_trait,
    reason = "implemented for reqwest's builder only, never used as dyn or across threads"
)]

pub mod cluster;

use std::future::Future;
use std::time::{Duration, Instant};
use url::Url;

/// A browser that does not follow redirects, so a test sees each one.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A port of our own on loopback, and the base URL it is reached at.
pub async fn bind() -> (tokio::net::TcpListener, Url) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
    (listener, base)
}

/// Sending a request and reading its answer in one step; a request that gets no answer
/// fails the test.
pub trait Fetch {
    /// Sends the request.
    async fn fetch(self) -> reqwest::Response;
    /// Sends the request and returns the answer's body as text.
    async fn fetch_text(self) -> String;
}

impl Fetch for reqwest::RequestBuilder {
    async fn fetch(self) -> reqwest::Response {
        self.send().await.unwrap()
    }

    async fn fetch_text(self) -> String {
        self.fetch().await.text().await.unwrap()
    }
}

/// Waits until `check` holds, checking every 50 ms; fails the test after ten seconds.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The admin URL of the PostgreSQL cluster the test command started
/// (`OTTGATE_TEST_PG_URL`). Without one the test fails: PostgreSQL is part of the suite.
pub fn postgres_admin_url() -> String {
    std::env::var("OTTGATE_TEST_PG_URL").unwrap_or_else(|_| {
        panic!(
            "OTTGATE_TEST_PG_URL is not set: run the suite with scripts/test.sh, which starts a \
             throwaway PostgreSQL cluster (or point it at one of yours)"
        )
    })
}

/// A new, empty database on the test cluster; its URL. Every test gets its own.
pub async fn fresh_database() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let admin = postgres_admin_url();
    let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("the test PostgreSQL cluster at {admin} is unreachable: {e}"));
    let connection = tokio::spawn(connection);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let name = format!(
        "ottgate_test_{}_{nanos:x}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    drop(client);
    let _ = connection.await;
    let mut url = Url::parse(&admin).unwrap();
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// What a buyer does on the sandbox's hosted card page: submits `number` with an expiry to
/// come and a CVC; the gateway's answer (a redirect when the card was taken).
pub async fn pay_with_card(
    http: &reqwest::Client,
    code_url: &str,
    number: &str,
) -> reqwest::Response {
    http.post(code_url)
        .form(&[("number", number), ("expiry", "12/40"), ("cvc", "123")])
        .fetch()
        .await
}
