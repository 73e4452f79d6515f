//! Merchant callbacks: the HTTP sender (with its SSRF guard) and the delivery worker.
//!
//! A callback is an outbox row written in the same transaction as the payment it
//! announces. The worker leases due rows, POSTs each body, records every attempt, and
//! reschedules failures on the retry schedule until one is acknowledged (any 2xx) or the
//! schedule runs out. [`deliver_due`] is one step of that loop, so tests can drain the
//! queue deterministically with an injected clock.

use futures::future::join_all;
use ottgate_store::{Delivery, DeliveryAttemptRecord, NextStep, StoreError};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::state::AppState;

/// How long a claimed delivery stays with one worker before another may take it over
/// (a crashed process's deliveries resume after this).
const LEASE: Duration = Duration::from_secs(60);

/// Whether an address may receive callbacks from a production gateway: no loopback,
/// private, link-local, shared (CGNAT), unspecified, broadcast, multicast, reserved or
/// documentation ranges — including every IPv4 address reachable through an IPv6 spelling
/// (mapped, compatible, SIIT-translated, NAT64, 6to4) and the IPv6 ranges that tunnel to
/// one we cannot see (Teredo, local-use NAT64).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match embedded_ipv4(v6) {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // 100.64.0.0/10 shared address space
        || (a == 192 && b == 0 && c == 0) // 192.0.0.0/24 IETF protocol assignments
        || (a == 192 && b == 88 && c == 99) // 192.88.99.0/24 6to4 relay anycast
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240)
}

/// The IPv4 address an IPv6 address reaches, where it embeds one.
fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    match s {
        // ::a.b.c.d (IPv4-compatible, deprecated; `::` and `::1` fall in 0.0.0.0/8 too),
        // ::ffff:a.b.c.d (mapped), ::ffff:0:a.b.c.d (SIIT translated)
        [0, 0, 0, 0, 0, 0, hi, lo]
        | [0, 0, 0, 0, 0, 0xffff, hi, lo]
        | [0, 0, 0, 0, 0xffff, 0, hi, lo] => Some(v4(hi, lo)),
        // 64:ff9b::/96, the well-known NAT64 prefix
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(v4(hi, lo)),
        // 2002::/16, 6to4: the IPv4 address follows the prefix
        [0x2002, hi, lo, ..] => Some(v4(hi, lo)),
        _ => None,
    }
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let first = s[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (first & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated, still routed inside)
        || (first == 0x64 && s[1] == 0xff9b) // NAT64, incl. local-use 64:ff9b:1::/48
        || (first == 0x2001 && s[1] == 0) // Teredo 2001::/32: tunnels to a hidden IPv4
        || (first == 0x2001 && s[1] == 0x0db8) // documentation
        || (first & 0xfff0) == 0x3ff0 // documentation 3fff::/20
        || (first == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0) // discard-only 100::/64
        || (first == 0x2001 && s[1] == 0x0002 && s[2] == 0)) // benchmarking 2001:2::/48
}

/// Why a URL is refused as a callback target.
pub fn check_callback_url(url: &url::Url, allow_private: bool) -> Result<(), String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http or https URL".into());
    }
    if allow_private {
        return Ok(());
    }
    match url.host() {
        None => Err("must have a host".into()),
        Some(url::Host::Ipv4(ip)) if !is_public(IpAddr::V4(ip)) => {
            Err("must not point to a private address".into())
        }
        Some(url::Host::Ipv6(ip)) if !is_public(IpAddr::V6(ip)) => {
            Err("must not point to a private address".into())
        }
        Some(url::Host::Domain(d))
            if d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost") =>
        {
            Err("must not point to a private address".into())
        }
        Some(_) => Ok(()),
    }
}

/// Resolves host names, keeping only public addresses: the check happens on the address
/// actually connected to, so DNS rebinding cannot smuggle a private target past it.
#[derive(Debug)]
struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// Sends callback bodies.
#[derive(Debug, Clone)]
pub struct CallbackSender {
    client: reqwest::Client,
    allow_private: bool,
}

impl CallbackSender {
    pub fn new(timeout: Duration, allow_private: bool) -> Result<Self, reqwest::Error> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // A redirect could lead anywhere, including past the guard: never follow.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("ottgate/", env!("CARGO_PKG_VERSION")));
        if !allow_private {
            builder = builder.dns_resolver(Arc::new(PublicOnlyResolver));
        }
        Ok(Self {
            client: builder.build()?,
            allow_private,
        })
    }

    /// POSTs `body`; `Ok(status)` for any HTTP answer, `Err` for no answer.
    pub async fn post(&self, url: &str, body: &str) -> Result<u16, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("invalid URL: {e}"))?;
        check_callback_url(&parsed, self.allow_private).map_err(|e| format!("refused: URL {e}"))?;
        let response = self
            .client
            .post(parsed)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body.to_owned())
            .send()
            .await
            .map_err(|e| describe(&e))?;
        Ok(response.status().as_u16())
    }
}

/// A short, URL-free description of a transport error (reqwest's Display includes the URL).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_request() {
        "request failed"
    } else {
        "transport error"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {detail}")
    }
}

/// What one pass of the worker did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    pub attempted: usize,
    pub delivered: usize,
    pub retrying: usize,
    pub exhausted: usize,
}

/// Delivers every callback due now (up to the concurrency limit): one worker step.
pub async fn deliver_due(state: &AppState) -> Result<DeliveryReport, StoreError> {
    let now = state.clock.now();
    let limit = state.settings.callback_concurrency;
    let due = state
        .store
        .claim_due_deliveries(now, LEASE, &state.worker_id, limit)
        .await?;
    let outcomes = join_all(due.into_iter().map(|d| deliver_one(state, d))).await;
    let mut report = DeliveryReport::default();
    for outcome in outcomes {
        report.attempted += 1;
        match outcome? {
            NextStep::Delivered => report.delivered += 1,
            NextStep::RetryAt(_) => report.retrying += 1,
            NextStep::Exhausted => report.exhausted += 1,
        }
    }
    Ok(report)
}

async fn deliver_one(state: &AppState, d: Delivery) -> Result<NextStep, StoreError> {
    let started_at = state.clock.now();
    let started = Instant::now();
    let result = state.callbacks.post(&d.url, &d.body).await;
    let duration = started.elapsed();
    state
        .metrics
        .callback_latency
        .observe(duration.as_secs_f64());
    let attempt_no = d.attempts + 1;
    let (http_status, error) = match result {
        Ok(status) if (200..300).contains(&status) => (Some(status), None),
        Ok(status) => (Some(status), Some(format!("HTTP {status}"))),
        Err(e) => (None, Some(e)),
    };
    let next = match (
        &error,
        state.settings.retry_schedule.delay_after(attempt_no),
    ) {
        (None, _) => NextStep::Delivered,
        (Some(_), Some(gap)) => NextStep::RetryAt(started_at.plus(gap)),
        (Some(_), None) => NextStep::Exhausted,
    };
    let record = DeliveryAttemptRecord {
        delivery_id: d.id,
        lease_owner: state.worker_id.clone(),
        started_at,
        duration,
        http_status,
        error: error.clone(),
        next,
    };
    if !state.store.record_delivery_attempt(record).await? {
        tracing::warn!(notify_id = %d.notify_id, "callback lease lost to another worker; attempt not recorded");
        return Ok(next);
    }
    let outcome = match next {
        NextStep::Delivered => "delivered",
        NextStep::RetryAt(_) => "retry",
        NextStep::Exhausted => "exhausted",
    };
    state
        .metrics
        .outcome(&state.metrics.callback_attempts, outcome);
    match (&error, next) {
        (None, _) => tracing::info!(
            notify_id = %d.notify_id, order_id = %d.order_id, attempt = attempt_no,
            status = http_status, "callback delivered"
        ),
        (Some(e), NextStep::RetryAt(at)) => tracing::warn!(
            notify_id = %d.notify_id, order_id = %d.order_id, attempt = attempt_no, error = %e,
            retry_at = %at.rfc3339(), "callback failed; will retry"
        ),
        (Some(e), _) => tracing::error!(
            notify_id = %d.notify_id, order_id = %d.order_id, attempt = attempt_no, error = %e,
            "callback failed; retry schedule exhausted"
        ),
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("127.0.0.1", false)]
    #[case("10.1.2.3", false)]
    #[case("172.16.0.1", false)]
    #[case("192.168.1.1", false)]
    #[case("169.254.169.254", false)]
    #[case("100.64.0.1", false)]
    #[case("0.0.0.0", false)]
    #[case("::1", false)]
    #[case("fe80::1", false)]
    #[case("fd00::1", false)]
    #[case("::ffff:127.0.0.1", false)]
    #[case::nat64_private("64:ff9b::a00:1", false)]
    #[case::nat64_metadata("64:ff9b::a9fe:a9fe", false)]
    #[case::nat64_local_use("64:ff9b:1::a00:1", false)]
    #[case::compatible_private("::10.0.0.1", false)]
    #[case::compatible_loopback("::127.0.0.1", false)]
    #[case::siit_translated("::ffff:0:a00:1", false)]
    #[case::sixtofour_private("2002:a00:1::", false)]
    #[case::sixtofour_loopback("2002:7f00:1::1", false)]
    #[case::site_local("fec0::1", false)]
    #[case::teredo("2001:0:4136:e378:8000:63bf:3fff:fdd2", false)]
    #[case::ietf_protocol("192.0.0.8", false)]
    #[case::relay_anycast("192.88.99.1", false)]
    #[case::nat64_public("64:ff9b::808:808", true)]
    #[case::sixtofour_public("2002:808:808::1", true)]
    #[case("8.8.8.8", true)]
    #[case("2606:4700::1111", true)]
    fn only_public_addresses_pass_the_guard(#[case] ip: &str, #[case] public: bool) {
        assert_eq!(is_public(ip.parse().unwrap()), public);
    }

    #[rstest]
    #[case("http://127.0.0.1:9000/cb", false)]
    #[case("http://localhost/cb", false)]
    #[case("http://[::1]/cb", false)]
    #[case("ftp://example.com/cb", false)]
    #[case("https://merchant.example/cb", true)]
    fn callback_urls_are_checked_before_any_connection(#[case] url: &str, #[case] ok: bool) {
        assert_eq!(
            check_callback_url(&url::Url::parse(url).unwrap(), false).is_ok(),
            ok
        );
    }

    #[tokio::test]
    async fn the_guard_refuses_loopback_without_connecting() {
        let sender = CallbackSender::new(Duration::from_secs(1), false).unwrap();
        let err = sender
            .post("http://127.0.0.1:9/cb", "{}")
            .await
            .unwrap_err();
        assert!(err.starts_with("refused"), "{err}");
    }
}
