//! How merchant callbacks leave the gateway: the HTTP sender and its SSRF guard (which
//! addresses a callback may reach, checked when a URL is accepted and again at every
//! connection). The delivery worker that drives it is `workers::delivery`.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

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

    /// POSTs `body` with its `OTTGate-Signature`; `Ok` for any HTTP answer (its status and
    /// the start of its body), `Err` for no answer.
    pub async fn post(&self, url: &str, body: &str, signature: &str) -> Result<Answer, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("invalid URL: {e}"))?;
        check_callback_url(&parsed, self.allow_private).map_err(|e| format!("refused: URL {e}"))?;
        let response = self
            .client
            .post(parsed)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .body(body.to_owned())
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = response.status().as_u16();
        Ok(Answer {
            status,
            body_start: body_start(response).await,
        })
    }
}

/// How a merchant answered a callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// The first characters of the body (no more is read).
    pub body_start: String,
}

/// Reads at most a little more than [`RESPONSE_START_CHARS`] characters' worth of bytes;
/// a body that stalls or fails is kept as far as it came.
async fn body_start(mut response: reqwest::Response) -> String {
    use ottgate_store::RESPONSE_START_CHARS;
    let mut bytes = Vec::new();
    while bytes.len() < RESPONSE_START_CHARS * 4 {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&bytes)
        .chars()
        .take(RESPONSE_START_CHARS)
        .collect()
}

/// The header that signs every callback.
pub const SIGNATURE_HEADER: &str = "OTTGate-Signature";

/// `t=<unix seconds>,v1=<hex HMAC-SHA256(webhook_secret, "<t>.<raw body>")>`: checkable
/// without decrypting the body, and a replay carries its old `t`. While a rotated secret's
/// grace period lasts, one `v1` per secret (the new one first). (docs/envelope.md,
/// Callbacks.)
#[expect(clippy::expect_used, reason = "HMAC accepts keys of every length")]
pub fn signature(webhook_secrets: &[&str], unix_seconds: i64, body: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut header = format!("t={unix_seconds}");
    for secret in webhook_secrets {
        let mut mac =
            <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(format!("{unix_seconds}.").as_bytes());
        mac.update(body.as_bytes());
        header.push_str(",v1=");
        header.push_str(&hex::encode(mac.finalize().into_bytes()));
    }
    header
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

#[cfg(test)]
mod signature_tests {
    #[test]
    fn the_signature_matches_an_independent_hmac() {
        // HMAC-SHA256("whsec_test", "1700000000." + body), computed with Python's hmac.
        assert_eq!(
            super::signature(&["whsec_test"], 1_700_000_000, r#"{"rsp_code":"SUCCESS"}"#),
            "t=1700000000,v1=ce1e21fae73cffd73f47ef150d12e6cf0b90fb2cbced0858d7807d59d93da388"
        );
    }
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
            .post("http://127.0.0.1:9/cb", "{}", "t=0,v1=00")
            .await
            .unwrap_err();
        assert!(err.starts_with("refused"), "{err}");
    }
}
