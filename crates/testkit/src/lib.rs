//! What the test suites share (a dev-dependency only; nothing ships it): a browser that
//! shows each redirect, sending a request and reading its answer in one step, a port of
//! one's own, and waiting for a condition.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test support: a failed expectation is a failed test"
)]
#![allow(
    async_fn_in_trait,
    reason = "implemented for reqwest's builder only, never used as dyn or across threads"
)]

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
