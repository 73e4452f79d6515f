//! `ottgate bench`: throughput and latency of the envelope API over real HTTP, against an
//! in-process gateway on a temporary SQLite database (durable commits, group commit on).

use anyhow::{Context, Result};
use ottgate_client::{Client, PrepayInitRequest, SignKey};
use ottgate_server::{Currency, NewMerchant};

use crate::throwaway::Throwaway;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Seconds per phase.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Run the gateway on this PostgreSQL database instead of a temporary SQLite file (use
    /// an empty database: the bench adds a merchant and its orders).
    #[arg(long)]
    pub database_url: Option<String>,
}

struct Phase {
    name: &'static str,
    requests: usize,
    errors: u64,
    elapsed: Duration,
    latencies_us: Vec<u64>,
}

impl Phase {
    fn report(&mut self) {
        self.latencies_us.sort_unstable();
        let pct = |p: f64| {
            let n = self.latencies_us.len();
            if n == 0 {
                return 0.0;
            }
            let i = ((n as f64 * p).ceil() as usize).clamp(1, n) - 1;
            self.latencies_us[i] as f64 / 1000.0
        };
        println!(
            "{:<13} {:>8} req in {:>5.1} s = {:>8.0} req/s   p50 {:>6.2} ms  p95 {:>6.2} ms  p99 {:>6.2} ms  errors {}",
            self.name,
            self.requests,
            self.elapsed.as_secs_f64(),
            self.requests as f64 / self.elapsed.as_secs_f64(),
            pct(0.50),
            pct(0.95),
            pct(0.99),
            self.errors
        );
    }
}

/// Runs `op(i)` from `concurrency` tasks for `seconds`.
async fn phase<F, Fut>(name: &'static str, args: &BenchArgs, op: F) -> Phase
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let counter = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (op, counter, errors) = (op.clone(), counter.clone(), errors.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let i = counter.fetch_add(1, Ordering::Relaxed);
                    let t0 = Instant::now();
                    if !op(i).await {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    latencies.push(u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX));
                }
                latencies
            })
        })
        .collect();
    let mut latencies_us = Vec::new();
    for t in tasks {
        latencies_us.extend(t.await.unwrap_or_default());
    }
    Phase {
        name,
        requests: latencies_us.len(),
        errors: errors.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
        latencies_us,
    }
}

pub async fn run(args: BenchArgs) -> Result<()> {
    let database_url = args.database_url.clone();
    let throwaway = Throwaway::start(|config| {
        if let Some(url) = database_url {
            config.database_url = url;
            // A key for this run's merchant only.
            let key: String = (0..32)
                .map(|_| format!("{:02x}", rand::random::<u8>()))
                .collect();
            config.master_key = Some(ottgate_server::config::MaskedString(
                ottgate_server::Secret::new(key),
            ));
        }
    })
    .await?;
    let gateway = &throwaway.gateway;
    let created = gateway
        .create_merchant(NewMerchant {
            name: "Bench".into(),
            id: None,
            currencies: vec![Currency::Cad],
        })
        .await?;
    let m = created.merchant.clone();
    let client = Client::new(
        &throwaway.base,
        m.id.as_str(),
        SignKey::new(created.sign_key.expose_secret()).context("key")?,
    )?;
    let database = match &args.database_url {
        Some(url) => format!(
            "PostgreSQL (synchronous_commit=on) at {}",
            ottgate_server::config::masked_database_url(url)
        ),
        None => format!(
            "SQLite (WAL, synchronous=FULL) in {}",
            throwaway.dir.path().display()
        ),
    };
    println!(
        "ottgate bench: {} concurrent clients, {} s per phase, loopback HTTP, {database}",
        args.concurrency, args.seconds,
    );
    let template = PrepayInitRequest {
        merchant_id: Some(m.id.to_string()),
        shop_id: Some(m.shop_id.to_string()),
        operator_id: Some(m.operator_id.to_string()),
        prepay_order_id: None,
        sale_num: Some("1".into()),
        amount: Some("1234".into()),
        currency_type: Some("CAD".into()),
        biz_type: Some("PREPAY".into()),
        redirect_url: Some("https://shop.example/return".into()),
        call_back_url: Some("https://shop.example/notify".into()),
        duration: Some("3600".into()),
        email: None,
        remarks: None,
    };
    let mut init = {
        let (client, template) = (client.clone(), template.clone());
        phase("PREPAY_INIT", &args, move |i| {
            let (client, mut request) = (client.clone(), template.clone());
            request.prepay_order_id = Some(format!("bench{i}"));
            async move { client.prepay_init(&request).await.is_ok() }
        })
        .await
    };
    init.report();
    let created_orders = init.requests.max(1) as u64;
    let mut query = {
        let client = client.clone();
        phase("PREPAY_QUERY", &args, move |i| {
            let client = client.clone();
            async move {
                client
                    .prepay_query(&format!("bench{}", i % created_orders))
                    .await
                    .is_ok()
            }
        })
        .await
    };
    query.report();
    throwaway.stop().await;
    Ok(())
}
