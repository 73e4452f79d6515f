//! Operations endpoints and request hygiene.

use crate::harness::{Options, TestGateway};
use ottgate_testkit::Fetch;

#[tokio::test]
async fn health_and_readiness_answer() {
    let t = TestGateway::start().await;
    let health = t.get("healthz").fetch().await;
    assert_eq!(
        (
            health.status().as_u16(),
            health.text().await.unwrap().as_str()
        ),
        (200, "ok")
    );
    assert_eq!(
        t.http
            .get(t.base.join("readyz").unwrap())
            .fetch()
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn metrics_report_requests_orders_and_callbacks() {
    let t = TestGateway::start().await;
    let created = t.create("metrics-1").await;
    t.complete(&created.payinfo, "ALIPAY", "paid").await;
    t.receiver.wait_for(1).await;
    t.create("metrics-2").await;
    let _ = t.client.prepay_query("nope").await;
    // The worker records the attempt right after the receiver answers; give it its turn.
    let mut text = String::new();
    for _ in 0..50 {
        text = t.page(t.base.join("metrics").unwrap()).await;
        if text.contains("ottgate_callback_attempts_total{outcome=\"delivered\"} 1") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for expected in [
        "ottgate_http_requests_total{method=\"POST\",route=\"/processV2\",status=\"200\"} 3",
        "ottgate_http_request_duration_seconds_count{route=\"/processV2\"} 3",
        "ottgate_envelope_responses_total{action=\"PREPAY_INIT\",rsp_code=\"SUCCESS\"} 2",
        "ottgate_envelope_responses_total{action=\"PREPAY_QUERY\",rsp_code=\"PARAM_INVALID\"} 1",
        "ottgate_orders{status=\"success\"} 1",
        "ottgate_orders{status=\"processing\"} 1",
        "ottgate_callback_deliveries{status=\"delivered\"} 1",
        "ottgate_outbox_depth 0",
        "ottgate_callback_attempts_total{outcome=\"delivered\"} 1",
        "ottgate_settlements_total{outcome=\"paid\"} 1",
    ] {
        assert!(
            text.contains(expected),
            "metrics lack {expected:?}:\n{text}"
        );
    }
    // The simulators' traffic (the checkout's trip through the wallet) by route; the process
    // and the build.
    assert!(
        text.contains("route=\"/sim/alipay/{*path}\""),
        "no simulator route:\n{text}"
    );
    assert!(
        !text
            .lines()
            .any(|l| l.contains("route=\"unmatched\"") && !l.contains("status=\"404\"")),
        "answered requests left unmatched:\n{text}"
    );
    for name in [
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_virtual_memory_bytes ",
        "process_open_fds ",
        "process_max_fds ",
        "process_start_time_seconds ",
        "ottgate_build_info{version=\"",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "metrics lack {name}:\n{text}"
        );
    }
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let t = TestGateway::start().await;
    let mine = t
        .get("healthz")
        .header("x-request-id", "req-123")
        .fetch()
        .await;
    assert_eq!(mine.headers()["x-request-id"], "req-123");
    let generated = t.get("healthz").fetch().await;
    assert_eq!(generated.headers()["x-request-id"].len(), 16);
    let hostile = t
        .get("healthz")
        .header("x-request-id", "a b<script>")
        .fetch()
        .await;
    assert_ne!(hostile.headers()["x-request-id"], "a b<script>");
}

#[tokio::test]
async fn sandbox_endpoints_do_not_exist_outside_sandbox_mode() {
    let t = TestGateway::live().await;
    let mut request = t.order("live-1");
    request.call_back_url = Some("https://shop.example/notify".into());
    let created = t.client.prepay_init(&request).await.unwrap();
    let token = created.payinfo.rsplit('/').next().unwrap();
    let r = t
        .post(&format!("sandbox/v1/checkout/{token}/complete"))
        .json(&serde_json::json!({"method":"ALIPAY","outcome":"paid"}))
        .fetch()
        .await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        t.http
            .get(t.base.join("sandbox/wallet/1").unwrap())
            .fetch()
            .await
            .status(),
        404
    );
    // And no method is offered: a live deployment without channels never falls back to a
    // free test wallet.
    let page = t.page(&created.payinfo).await;
    assert!(page.contains("id=\"no-methods\""));
    assert!(!page.contains("TEST MODE"));
    let selected = t
        .http
        .get(format!("{}?selected=ALIPAY", created.payinfo))
        .fetch()
        .await;
    assert_eq!(selected.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_methods_add_no_metric_series() {
    use futures::StreamExt;
    use rand::Rng;
    let t = TestGateway::start().await;
    let series = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("ottgate_http_requests_total{"))
            .map(str::to_owned)
            .collect::<std::collections::BTreeSet<_>>()
    };
    let methods: Vec<String> = (0..10_000)
        .map(|_| {
            let mut rng = rand::thread_rng();
            (0..12)
                .map(|_| char::from(b'A' + rng.gen_range(0..26u8)))
                .collect()
        })
        .collect();
    let url = t.base.join("processV2").unwrap();
    futures::stream::iter(methods)
        .for_each_concurrent(32, |m| {
            let (http, url) = (t.http.clone(), url.clone());
            async move {
                let method = reqwest::Method::from_bytes(m.as_bytes()).unwrap();
                let r = http.request(method, url).fetch().await;
                assert_eq!(r.status(), 405);
            }
        })
        .await;
    let text = t.get("metrics").fetch_text().await;
    let found = series(&text);
    assert!(found.len() < 10, "{found:#?}");
    assert!(
        found
            .iter()
            .any(|s| s.contains("method=\"OTHER\"") && s.contains("} 10000")),
        "{found:#?}"
    );
}

/// Captures what the gateway logs on this thread, in the human format.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn request_values_cannot_forge_log_lines_or_drive_the_terminal() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    // A current-thread test: the server's tasks log on this thread too.
    let _guard = tracing::subscriber::set_default(subscriber);
    let t = TestGateway::start().await;
    let forged = "PAY\n2026-11-27T00:00:00.000000Z  INFO ottgate: refund sent to attacker\u{1b}[2J";
    let body = serde_json::json!({
        "action": forged, "version": "1.0\r\nX", "merchant_id": t.merchant.merchant.id.as_str(),
        "data": "AAAA", "md5": "0123456789ABCDEF0123456789ABCDEF",
    });
    let r = t.post("processV2").json(&body).fetch().await;
    assert_eq!(r.status(), 200);
    let token = t
        .post("api/v1/auth/token")
        .json(&serde_json::json!({"appId": forged, "appKey": "k"}))
        .fetch()
        .await;
    assert_eq!(token.status(), 400);
    let wrong = t
        .post("api/v1/auth/token")
        .json(&serde_json::json!({"appId": "ON\n2026 INFO forged", "appKey": "k"}))
        .fetch()
        .await;
    assert!(wrong.status().is_client_error());
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("envelope request refused"), "{log}");
    assert!(!log.contains('\u{1b}'), "a terminal escape reached the log");
    for line in log.lines() {
        assert!(
            !line.starts_with("2026-11-27T00:00:00") && !line.starts_with("2026 INFO forged"),
            "a forged log line: {line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_never_finish_their_headers_are_closed_while_healthz_answers() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let timeout = std::time::Duration::from_millis(1500);
    let t = TestGateway::with(Options {
        header_read_timeout_ms: Some(1500),
        ..Options::default()
    })
    .await;
    let mut slow = Vec::with_capacity(3000);
    for i in 0..3000 {
        // From three client addresses: each within its share of connections.
        let mut stream = crate::harness::connect_from(&t, 2 + (i % 3) as u8).await;
        stream
            .write_all(b"POST /processV2 HTTP/1.1\r\nHost: gateway\r\nContent-Le")
            .await
            .unwrap();
        slow.push((std::time::Instant::now(), stream));
    }
    // The gateway still answers, at once, on a new connection.
    let asked = std::time::Instant::now();
    let health = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        reqwest::get(t.base.join("healthz").unwrap()),
    )
    .await
    .expect("healthz answered within 1 s")
    .unwrap();
    assert_eq!(health.status(), 200, "after {:?}", asked.elapsed());
    // And each slow connection is closed once its header time is up.
    for (opened, mut stream) in slow {
        let deadline = opened + timeout + std::time::Duration::from_secs(2);
        let wait = deadline.saturating_duration_since(std::time::Instant::now());
        let mut buf = [0u8; 256];
        let closed = tokio::time::timeout(wait, async {
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue, // an error response before the close
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "a connection outlived the header timeout");
    }
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = TestGateway::with(Options {
        header_read_timeout_ms: Some(1000),
        ..Options::default()
    })
    .await;
    let addr = format!("{}:{}", t.base.host_str().unwrap(), t.base.port().unwrap());
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
        .await
        .unwrap();
    // The answer comes, and the connection stays open for another request...
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&answer).contains("\r\n\r\n") {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before answering");
        answer.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    // ...but not forever: idle, it is closed once the header time is up.
    let idle = std::time::Instant::now();
    let closed = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "an idle connection was kept past 5 s");
    assert!(
        idle.elapsed() >= std::time::Duration::from_millis(900),
        "closed after {:?}, before the header timeout",
        idle.elapsed()
    );
}

/// Reads from `stream` until it ends (EOF or reset) or `within` passes; the bytes read, and
/// whether it ended.
async fn drain(stream: &mut tokio::net::TcpStream, within: std::time::Duration) -> (usize, bool) {
    use tokio::io::AsyncReadExt;
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return (total, true),
            Ok(Ok(n)) => total += n,
            Err(_) => return (total, false),
        }
    }
}

/// One client address opens every connection it can — most of them idle, some asking for
/// answers it never reads. It gets its share of connections and no more; `/healthz` and a
/// merchant on another address keep being answered at once; the stalled connections are
/// cut after the write timeout, which frees the share again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_greedy_address_holds_only_its_share_and_stalled_readers_are_cut() {
    use tokio::io::AsyncWriteExt;
    // Long enough that the checks below, on a loaded machine, run before the stalled
    // connections are cut (which would free the share and let extra connections in).
    let write_timeout = std::time::Duration::from_secs(8);
    let t = TestGateway::with(Options {
        max_connections: Some(300),
        max_connections_per_address: Some(100),
        write_timeout_ms: Some(8_000),
        header_read_timeout_ms: Some(30_000),
        ..Options::default()
    })
    .await;
    let greedy = 2;
    // 90 connections that send nothing...
    let mut idle = Vec::new();
    for _ in 0..90 {
        idle.push(crate::harness::connect_from(&t, greedy).await);
    }
    // ...and 10 that ask for the OpenAPI document 400 times, pipelined, and never read:
    // megabytes of answers into a 4 KiB receive buffer.
    let ask = "GET /api/v1/openapi.json HTTP/1.1\r\nHost: gateway\r\n\r\n".repeat(400);
    let mut stalled = Vec::new();
    for _ in 0..10 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        socket
            .bind(std::net::SocketAddr::from(([127, 0, 0, greedy], 0)))
            .unwrap();
        let mut stream = socket
            .connect(std::net::SocketAddr::from((
                [127, 0, 0, 1],
                t.base.port().unwrap(),
            )))
            .await
            .unwrap();
        stream.write_all(ask.as_bytes()).await.unwrap();
        stalled.push(stream);
    }
    let stalled_at = std::time::Instant::now();
    // Beyond its share, each new connection from that address is closed at once: well
    // within the 30 s an idle connection would otherwise be held (3 s leaves a busy CI
    // machine room to get to them).
    let extra = futures::future::join_all((0..50).map(|_| async {
        let mut extra = crate::harness::connect_from(&t, greedy).await;
        drain(&mut extra, std::time::Duration::from_secs(3)).await.1
    }))
    .await;
    assert!(extra.iter().all(|ended| *ended), "{extra:?}");
    // Everyone else is answered at once: /healthz and a merchant's envelope call.
    let started = std::time::Instant::now();
    let health = crate::harness::client_from(3)
        .get(t.base.join("healthz").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    t.create("still-served").await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        stalled_at.elapsed() < write_timeout,
        "the checks above ran while the stalled connections were still held"
    );
    // The stalled readers are cut once nothing has moved for the write timeout: reading
    // now finds each ended after what was already in flight — far from the 400 answers.
    tokio::time::sleep(write_timeout + std::time::Duration::from_secs(1)).await;
    let document = t
        .get("api/v1/openapi.json")
        .fetch()
        .await
        .bytes()
        .await
        .unwrap()
        .len();
    for mut stream in stalled {
        let (read, ended) = drain(&mut stream, std::time::Duration::from_secs(5)).await;
        assert!(ended, "a stalled connection was never cut");
        assert!(read < 400 * document, "{read} bytes: it was not cut");
    }
    // Their places in the share are free again.
    let mut again = crate::harness::connect_from(&t, greedy).await;
    again
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (read, ended) = drain(&mut again, std::time::Duration::from_secs(5)).await;
    assert!(ended && read > 0, "answered");
    drop(idle);
}
