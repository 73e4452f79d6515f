//! The scenarios: each prepares its requests, runs one phase and reports it.

use anyhow::{Context, Result};
use axum::body::Bytes;
use futures::FutureExt;
use ottgate_client::{Client, PayRequest, PrepayInitRequest, prepay_fields, query_fields};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Report;
use super::load::{self, Load, Measured, Op, Outcome};
use super::target::Target;

/// Requests sealed ahead for a closed-loop create phase, per second of it.
const SEALED_PER_SECOND: u64 = 25_000;
/// At most this many sealed ahead (~500 bytes each).
const SEALED_AT_MOST: u64 = 500_000;

pub struct Bench<'a> {
    target: &'a Target,
    load: Load,
    seconds: u64,
    client: Client,
    http: reqwest::Client,
    /// Distinguishes this run's references from earlier runs' on the same gateway.
    run: String,
    /// Orders created so far: `bench-{run}-{i}` for i below this.
    created: u64,
    requests: usize,
}

/// An envelope answer is a success when HTTP says so and its (plain) `rsp_code` does: read
/// without decrypting, so the load generator stays cheap.
fn envelope_ok(status: reqwest::StatusCode, body: &[u8]) -> Outcome {
    const SUCCESS: &[u8] = br#""rsp_code":"SUCCESS""#;
    let ok = status.is_success() && body.windows(SUCCESS.len()).any(|w| w == SUCCESS);
    if ok { Outcome::Ok } else { Outcome::Failed }
}

impl<'a> Bench<'a> {
    pub fn new(target: &'a Target, load: Load, seconds: u64) -> Result<Self> {
        let client = target.credentials.envelope_client(&target.base)?;
        Ok(Self {
            target,
            load,
            seconds,
            client,
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(1024)
                .build()?,
            run: format!("{:08x}", rand::random::<u32>()),
            created: 0,
            requests: 0,
        })
    }

    pub fn had_no_requests(&self) -> bool {
        self.requests == 0
    }

    fn order(&self, reference: String, callback: &str) -> PrepayInitRequest {
        let c = &self.target.credentials;
        PrepayInitRequest {
            merchant_id: Some(c.merchant_id.clone()),
            shop_id: Some(c.shop_id.clone()),
            operator_id: Some(c.operator_id.clone()),
            prepay_order_id: Some(reference),
            sale_num: Some("1".into()),
            amount: Some("1234".into()),
            currency_type: Some("CAD".into()),
            biz_type: Some("PREPAY".into()),
            redirect_url: Some("https://shop.example/return".into()),
            call_back_url: Some(callback.into()),
            duration: Some("3600".into()),
            email: None,
            remarks: None,
        }
    }

    /// `count` envelope bodies, sealed on every core before the clock starts.
    fn seal(&self, count: u64, body: impl Fn(u64) -> Vec<u8> + Sync) -> Arc<Vec<Bytes>> {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
        let chunk = count.div_ceil(threads).max(1);
        let body = &body;
        let parts: Vec<Vec<Bytes>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    scope.spawn(move || {
                        (t * chunk..((t + 1) * chunk).min(count))
                            .map(|i| Bytes::from(body(i)))
                            .collect()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect()
        });
        Arc::new(parts.into_iter().flatten().collect())
    }

    /// Posts `bodies[index(i)]` to `/processV2`.
    fn post_sealed(&self, bodies: Arc<Vec<Bytes>>, cycle: bool) -> Result<Op> {
        let url = self.client.endpoint()?;
        let http = self.http.clone();
        Ok(Arc::new(move |i| {
            let len = bodies.len() as u64;
            let body = if cycle && len > 0 {
                bodies[(i % len) as usize].clone()
            } else if i < len {
                bodies[i as usize].clone()
            } else {
                return async { Outcome::Exhausted }.boxed();
            };
            let request = http
                .post(url.clone())
                .header("content-type", "application/json")
                .body(body);
            async move {
                match request.send().await {
                    Ok(r) => {
                        let status = r.status();
                        match r.bytes().await {
                            Ok(b) => envelope_ok(status, &b),
                            Err(_) => Outcome::Failed,
                        }
                    }
                    Err(_) => Outcome::Failed,
                }
            }
            .boxed()
        }))
    }

    async fn phase(&mut self, op: Op) -> Measured {
        let before = self.target.usage();
        let mut measured = load::run(self.load, self.seconds, op).await;
        measured.server = before.zip(self.target.usage());
        self.requests += measured.requests;
        measured
    }

    fn reference(&self, i: u64) -> String {
        format!("bench-{}-{i}", self.run)
    }

    pub async fn create(&mut self) -> Result<Report> {
        let count = match self.load {
            Load::Open(rate) => rate * (self.seconds + 1),
            Load::Closed(_) => SEALED_PER_SECOND * self.seconds,
        }
        .min(SEALED_AT_MOST);
        let start = self.created;
        let bodies = self.seal(count, |i| {
            let request = self.order(self.reference(start + i), "https://shop.example/notify");
            serde_json::to_vec(&self.client.envelope(
                "PREPAY_INIT",
                "2.0",
                &prepay_fields(&request),
            ))
            .unwrap_or_default()
        });
        let op = self.post_sealed(bodies, false)?;
        let measured = self.phase(op).await;
        self.created += measured.requests as u64;
        Ok(Report {
            name: "PREPAY_INIT",
            measured,
            callback_us: None,
            after_wallet_ms: None,
        })
    }

    /// Writes `count` PREPAY_INIT bodies, sealed for this merchant with distinct
    /// references, one per line: what `scripts/wrk-envelope.lua` sends, so wrk can check the
    /// bench's figures with a load generator of its own.
    pub fn write_create_bodies(&self, count: u64, path: &std::path::Path) -> Result<()> {
        use std::io::Write;
        let bodies = self.seal(count, |i| {
            let request = self.order(
                format!("wrk-{}-{i}", self.run),
                "https://shop.example/notify",
            );
            serde_json::to_vec(&self.client.envelope(
                "PREPAY_INIT",
                "2.0",
                &prepay_fields(&request),
            ))
            .unwrap_or_default()
        });
        let file = std::fs::File::create(path).with_context(|| format!("{}", path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        for body in bodies.iter() {
            out.write_all(body)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        Ok(())
    }

    pub async fn query(&mut self) -> Result<Report> {
        if self.created == 0 {
            // Something to ask about.
            let saved = self.load;
            self.load = Load::Closed(16);
            let seconds = std::mem::replace(&mut self.seconds, 1);
            self.create().await?;
            self.load = saved;
            self.seconds = seconds;
        }
        let created = self.created.max(1);
        let merchant = self.target.credentials.merchant_id.clone();
        let bodies = self.seal(created.min(100_000), |i| {
            let fields = query_fields(&merchant, &self.reference(i % created));
            serde_json::to_vec(&self.client.envelope("PREPAY_QUERY", "2.0", &fields))
                .unwrap_or_default()
        });
        let op = self.post_sealed(bodies, true)?;
        Ok(Report {
            name: "PREPAY_QUERY",
            measured: self.phase(op).await,
            callback_us: None,
            after_wallet_ms: None,
        })
    }

    /// PASSIVEPAY: each request a new till payment with a fresh WeChat buyer code that the
    /// simulated wallet pays at once (one round trip to it, then the answer).
    pub async fn passive(&mut self) -> Result<Report> {
        let count = match self.load {
            Load::Open(rate) => rate * (self.seconds + 1),
            Load::Closed(_) => SEALED_PER_SECOND * self.seconds,
        }
        .min(SEALED_AT_MOST);
        let c = &self.target.credentials;
        let run = u64::from_str_radix(&self.run, 16).unwrap_or(0) % 100_000;
        let bodies = self.seal(count, |i| {
            let fields = serde_json::json!({
                "order_id": format!("pos-{}-{i}", self.run),
                "operator_id": c.operator_id,
                "amount": "1250",
                "biz_type": "WECHATPAY",
                // A well-formed WeChat code (18 digits from 13) that is no sandbox outcome
                // code: the simulated buyer pays at once. One-time, so unique per request.
                "auth_code": format!("130{run:05}{i:010}"),
            });
            let serde_json::Value::Object(fields) = fields else {
                return Vec::new();
            };
            serde_json::to_vec(&self.client.envelope("PASSIVEPAY", "1.0", &fields))
                .unwrap_or_default()
        });
        let op = self.post_sealed(bodies, false)?;
        let measured = self.phase(op).await;
        let after_wallet_ms = self.after_wallet().await;
        Ok(Report {
            name: "PASSIVEPAY",
            measured,
            callback_us: None,
            after_wallet_ms,
        })
    }

    /// The gateway's own histogram of what it adds after the wallet's answer (`/metrics`):
    /// the smallest bucket bounds holding half and 99 % of the answers, in ms.
    async fn after_wallet(&self) -> Option<(f64, f64)> {
        let text = self
            .http
            .get(format!("{}/metrics", self.target.base))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let mut buckets: Vec<(f64, f64)> = Vec::new();
        let mut count = 0.0;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("ottgate_barcode_answer_seconds_bucket{le=\"") {
                let (le, n) = rest.split_once("\"} ")?;
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                buckets.push((le, n.trim().parse().ok()?));
            } else if let Some(n) = line.strip_prefix("ottgate_barcode_answer_seconds_count ") {
                count = n.trim().parse().ok()?;
            }
        }
        if count == 0.0 {
            return None;
        }
        let at = |q: f64| {
            buckets
                .iter()
                .find(|(_, n)| *n >= q * count)
                .map(|(le, _)| le * 1000.0)
        };
        Some((at(0.5)?, at(0.99)?))
    }

    pub async fn rest(&mut self) -> Result<Report> {
        let rest = Arc::new(self.target.credentials.rest_client(&self.target.base)?);
        rest.token().await.context("REST sign-in")?;
        let op: Op = Arc::new(move |_| {
            let rest = rest.clone();
            async move {
                let request = PayRequest {
                    amount: "1234".into(),
                    callback_url: "https://shop.example/notify".into(),
                    return_url: "https://shop.example/return".into(),
                    remark: None,
                    reference: None,
                };
                match rest.wap_pay(&request).await {
                    Ok(_) => Outcome::Ok,
                    Err(_) => Outcome::Failed,
                }
            }
            .boxed()
        });
        Ok(Report {
            name: "REST_WAP_PAY",
            measured: self.phase(op).await,
            callback_us: None,
            after_wallet_ms: None,
        })
    }

    pub async fn e2e(&mut self) -> Result<Report> {
        let arrivals: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
        let paid: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
        let callback = receiver(self.client.clone(), arrivals.clone()).await?;
        let start = self.created;
        self.created += 1_000_000;
        let (client, http, base, run) = (
            self.client.clone(),
            self.http.clone(),
            self.target.base.clone(),
            self.run.clone(),
        );
        let template = self.order(String::new(), &callback);
        let paid_in_op = paid.clone();
        let op: Op = Arc::new(move |i| {
            let (client, http, base, paid) = (
                client.clone(),
                http.clone(),
                base.clone(),
                paid_in_op.clone(),
            );
            let mut request = template.clone();
            request.prepay_order_id = Some(format!("bench-{run}-{}", start + i));
            async move {
                let Ok(created) = client.prepay_init(&request).await else {
                    return Outcome::Failed;
                };
                let token = created.payinfo.rsplit('/').next().unwrap_or_default();
                let answer = http
                    .post(format!("{base}/sandbox/v1/checkout/{token}/complete"))
                    .json(&serde_json::json!({"method": "GP", "outcome": "paid"}))
                    .send()
                    .await;
                let Ok(answer) = answer else {
                    return Outcome::Failed;
                };
                let done = Instant::now();
                match answer.json::<serde_json::Value>().await {
                    Ok(v) if v["order_id"].is_string() => {
                        let id = v["order_id"].as_str().unwrap_or_default().to_owned();
                        paid.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(id, done);
                        Outcome::Ok
                    }
                    _ => Outcome::Failed,
                }
            }
            .boxed()
        });
        let measured = self.phase(op).await;
        // Every paid order's callback, or ten seconds.
        let deadline = Instant::now() + Duration::from_secs(10);
        let expected = measured.requests - usize::try_from(measured.errors).unwrap_or(0);
        while arrivals.lock().unwrap_or_else(|e| e.into_inner()).len() < expected
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let arrivals = arrivals.lock().unwrap_or_else(|e| e.into_inner());
        let paid = paid.lock().unwrap_or_else(|e| e.into_inner());
        let callback_us = paid
            .iter()
            .filter_map(|(id, at)| {
                let arrived = arrivals.get(id)?;
                Some(u64::try_from(arrived.saturating_duration_since(*at).as_micros()).unwrap_or(0))
            })
            .collect();
        Ok(Report {
            name: "E2E",
            measured,
            after_wallet_ms: None,
            callback_us: Some(callback_us),
        })
    }
}

/// A merchant callback endpoint on loopback that notes when each order's callback came.
async fn receiver(
    client: Client,
    arrivals: Arc<Mutex<HashMap<String, Instant>>>,
) -> Result<String> {
    let app = axum::Router::new().route(
        "/notify",
        axum::routing::post(move |body: Bytes| {
            let (client, arrivals) = (client.clone(), arrivals.clone());
            async move {
                if let Ok(callback) = client.verify_callback(&body) {
                    arrivals
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .entry(callback.order_id)
                        .or_insert_with(Instant::now);
                }
                "SUCCESS"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/notify", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

impl Bench<'_> {
    /// Reconciliation at scale: `lines` WeChat Pay payments made through the gateway
    /// (checkout, the simulated WeChat Pay, its notification), then `ottgate recon run` as
    /// a process of its own on the same deployment — it downloads the day's bill of
    /// `lines` rows over HTTP, reads the gateway's records, matches and saves — timed, its
    /// peak memory read from `/proc`. Prints one line (or a JSON object).
    pub async fn recon(&mut self, lines: usize, json: bool) -> Result<()> {
        let seeded = Instant::now();
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let failed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let template = self.order(String::new(), "http://127.0.0.1:9/notify");
        let clients = match self.load {
            Load::Closed(n) => n.max(1),
            Load::Open(_) => 64,
        };
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let (client, http, base, run) = (
                self.client.clone(),
                self.http.clone(),
                self.target.base.clone(),
                self.run.clone(),
            );
            let (next, failed, template) = (next.clone(), failed.clone(), template.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= lines {
                        break;
                    }
                    let mut request = template.clone();
                    request.prepay_order_id = Some(format!("recon-{run}-{i}"));
                    let paid = async {
                        let created = client.prepay_init(&request).await.ok()?;
                        let token = created.payinfo.rsplit('/').next()?.to_owned();
                        let answer = http
                            .post(format!("{base}/sandbox/v1/checkout/{token}/complete"))
                            .json(&serde_json::json!({"method": "WECHATPAY", "outcome": "paid"}))
                            .send()
                            .await
                            .ok()?;
                        answer.status().is_success().then_some(())
                    };
                    if paid.await.is_none() {
                        failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }));
        }
        for task in tasks {
            task.await?;
        }
        let seeding = seeded.elapsed();
        let failed = failed.load(std::sync::atomic::Ordering::Relaxed);
        let day =
            ottgate_server::WalletDay::of(ottgate_server::Clock::now(&ottgate_server::SystemClock))
                .to_string();
        let mut command = self
            .target
            .command(&[
                "recon",
                "run",
                "--date",
                &day,
                "--wallet",
                "wechatpay",
                "--json",
            ])
            .context("the recon scenario needs a spawned gateway (not --url)")?;
        let started = Instant::now();
        let child = command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        let pid = child.id();
        // Its high-water mark, read until it exits (VmHWM only grows).
        let peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let watcher = {
            let peak = peak.clone();
            std::thread::spawn(move || {
                while let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                    if let Some(kib) = status
                        .lines()
                        .find_map(|l| l.strip_prefix("VmHWM:"))
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                    {
                        peak.fetch_max(kib, std::sync::atomic::Ordering::Relaxed);
                    }
                    if status.contains("State:\tZ") {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        };
        let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
        let took = started.elapsed();
        let _ = watcher.join();
        anyhow::ensure!(
            out.status.success(),
            "ottgate recon run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ran: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let run = &ran[0];
        let peak_mib = peak.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1024.0;
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "name": "RECON",
                    "payments": lines,
                    "payment_errors": failed,
                    "seeding_seconds": seeding.as_secs_f64(),
                    "lines": run["lines"],
                    "matched": run["matched"],
                    "discrepancies": run["found"],
                    "seconds": took.as_secs_f64(),
                    "peak_rss_mib": peak_mib,
                })
            );
        } else {
            println!(
                "RECON         {} lines, {} matched, {} discrepancies: `ottgate recon run` in {:.2} s, peak rss {:.1} MiB  (made {} payments in {:.1} s, errors {})",
                run["lines"],
                run["matched"],
                run["found"],
                took.as_secs_f64(),
                peak_mib,
                lines,
                seeding.as_secs_f64(),
                failed
            );
        }
        self.requests += lines - failed;
        Ok(())
    }
}
