//! `ottgate bench`: throughput and latency of a gateway over real HTTP.
//!
//! The gateway is spawned as a child process (a throwaway SQLite file, or `--database-url`)
//! so its CPU time and memory are read apart from the load generator's, or named with
//! `--url` and a merchant's credentials. Envelope requests are sealed before the clock
//! starts, so the client's cost is an HTTP request. Scenarios: `create` (PREPAY_INIT),
//! `query` (PREPAY_QUERY of the created orders), `rest` (REST wap-pay with a cached token),
//! `e2e` (PREPAY_INIT → sandbox payment → the callback, received by a built-in receiver).

mod load;
mod scenarios;
mod target;

use anyhow::{Context, Result, bail};
use std::time::Duration;

use load::{Load, Measured, percentile_ms};
use target::{Credentials, Target};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    Create,
    Query,
    Rest,
    E2e,
    /// PASSIVEPAY barcode payments the (simulated) wallet approves at once.
    Passive,
    /// `--recon-lines` WeChat Pay payments, then `ottgate recon run` over the day's bill:
    /// its time and peak memory.
    Recon,
}

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Scenarios, run in this order: create, query, rest, e2e, passive (in-store barcodes
    /// the simulated WeChat Pay approves at once; needs sandbox mode), recon (statement
    /// reconciliation of --recon-lines payments; a spawned gateway only).
    #[arg(long, value_delimiter = ',', default_value = "create,query")]
    pub scenario: Vec<Scenario>,
    /// Clients, each with one request in flight (closed loop).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Requests started per second whatever the answers (open loop; latency then includes
    /// queueing). Replaces --concurrency.
    #[arg(long)]
    pub rate: Option<u64>,
    /// Seconds per phase.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Measure the gateway running at this URL instead of spawning one (needs
    /// --credentials; e2e needs it in sandbox mode).
    #[arg(long, requires = "credentials")]
    pub url: Option<String>,
    /// The merchant to act as on --url: the JSON `ottgate merchant add --json` printed.
    #[arg(long)]
    pub credentials: Option<std::path::PathBuf>,
    /// The spawned gateway's database instead of a temporary SQLite file (use an empty
    /// PostgreSQL database: the bench adds a merchant and its orders).
    #[arg(long, conflicts_with = "url")]
    pub database_url: Option<String>,
    /// The spawned SQLite gateway commits every write on its own (no group commit): the
    /// comparison that shows what group commit buys.
    #[arg(long, conflicts_with_all = ["url", "database_url"])]
    pub one_commit_per_request: bool,
    /// One JSON object per phase instead of text.
    #[arg(long)]
    pub json: bool,
    /// Instead of measuring: write this many PREPAY_INIT bodies sealed for the merchant of
    /// --credentials, one per line, to --wrk-bodies (for `scripts/wrk-envelope.lua`).
    #[arg(long, requires_all = ["wrk_bodies", "url"])]
    pub wrk_count: Option<u64>,
    /// How many payments (bill lines) the recon scenario makes and reconciles.
    #[arg(long, default_value_t = 100_000)]
    pub recon_lines: usize,
    /// Where --wrk-count writes the bodies.
    #[arg(long, requires = "wrk_count")]
    pub wrk_bodies: Option<std::path::PathBuf>,
}

/// A phase's figures, as printed.
struct Report {
    name: &'static str,
    measured: Measured,
    /// e2e: callback arrival after the payment, in µs.
    callback_us: Option<Vec<u64>>,
    /// passive: what the gateway adds after the wallet's answer, read from its
    /// `ottgate_barcode_answer_seconds` histogram: (p50, p99) upper bounds in ms.
    after_wallet_ms: Option<(f64, f64)>,
}

impl Report {
    fn print(mut self, json: bool) {
        let m = &mut self.measured;
        m.latencies_us.sort_unstable();
        let secs = m.elapsed.as_secs_f64().max(1e-9);
        let per_second = m.requests as f64 / secs;
        let server = m.server.map(|(before, after)| {
            let cpu = after.cpu.saturating_sub(before.cpu);
            let per_request = cpu.as_secs_f64() * 1e6 / m.requests.max(1) as f64;
            (per_request, after.rss_kib as f64 / 1024.0)
        });
        let callbacks = self.callback_us.as_mut().map(|c| {
            c.sort_unstable();
            (percentile_ms(c, 0.5), percentile_ms(c, 0.99), c.len())
        });
        let lat = |p| percentile_ms(&m.latencies_us, p);
        let max = m.latencies_us.last().map_or(0.0, |v| *v as f64 / 1000.0);
        if json {
            let mut v = serde_json::json!({
                "name": self.name,
                "requests": m.requests,
                "errors": m.errors,
                "seconds": m.elapsed.as_secs_f64(),
                "per_second": per_second,
                "p50_ms": lat(0.5),
                "p90_ms": lat(0.9),
                "p99_ms": lat(0.99),
                "max_ms": max,
                "ran_out_of_requests": m.exhausted,
            });
            if let Some((cpu, rss)) = server {
                v["server_cpu_us_per_request"] = cpu.into();
                v["server_rss_mib"] = rss.into();
            }
            if let Some((p50, p99, n)) = callbacks {
                v["callbacks"] = n.into();
                v["callback_p50_ms"] = p50.into();
                v["callback_p99_ms"] = p99.into();
            }
            if let Some((p50, p99)) = self.after_wallet_ms {
                v["after_wallet_p50_ms_at_most"] = p50.into();
                v["after_wallet_p99_ms_at_most"] = p99.into();
            }
            println!("{v}");
            return;
        }
        let mut line = format!(
            "{:<13} {:>8} req in {:>5.1} s = {:>8.0} req/s   p50 {:>6.2} ms  p90 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms",
            self.name,
            m.requests,
            secs,
            per_second,
            lat(0.5),
            lat(0.9),
            lat(0.99),
            max
        );
        if let Some((cpu, rss)) = server {
            line.push_str(&format!("  server {cpu:>5.0} µs/req  rss {rss:>5.1} MiB"));
        }
        if let Some((p50, p99, n)) = callbacks {
            line.push_str(&format!("  callbacks {n} p50 {p50:.2} ms p99 {p99:.2} ms"));
        }
        if let Some((p50, p99)) = self.after_wallet_ms {
            line.push_str(&format!(
                "  after the wallet's answer: p50 ≤ {p50} ms, p99 ≤ {p99} ms"
            ));
        }
        if m.exhausted {
            line.push_str("  (ran out of pre-sealed requests)");
        }
        line.push_str(&format!("  errors {}", m.errors));
        println!("{line}");
    }
}

pub async fn run(args: BenchArgs) -> Result<()> {
    let target = match &args.url {
        Some(url) => {
            let path = args.credentials.as_ref().context("--credentials")?;
            let credentials: Credentials = serde_json::from_slice(
                &std::fs::read(path).with_context(|| format!("{}", path.display()))?,
            )
            .context("credentials: the JSON of `ottgate merchant add --json`")?;
            Target::running(url, credentials)
        }
        None => Target::spawn(args.database_url.as_deref(), args.one_commit_per_request)?,
    };
    let load = match args.rate {
        Some(rate) => Load::Open(rate),
        None => Load::Closed(args.concurrency),
    };
    if !args.json {
        let how = match load {
            Load::Closed(n) => format!("{n} concurrent clients"),
            Load::Open(r) => format!("{r} requests started per second (open loop)"),
        };
        println!(
            "ottgate bench: {how}, {} s per phase, loopback HTTP, {}",
            args.seconds, target.description
        );
    }
    let mut bench = scenarios::Bench::new(&target, load, args.seconds)?;
    if let (Some(count), Some(path)) = (args.wrk_count, &args.wrk_bodies) {
        bench.write_create_bodies(count, path)?;
        println!("{count} sealed PREPAY_INIT bodies in {}", path.display());
        return Ok(());
    }
    for scenario in &args.scenario {
        let report = match scenario {
            Scenario::Create => bench.create().await?,
            Scenario::Query => bench.query().await?,
            Scenario::Rest => bench.rest().await?,
            Scenario::E2e => bench.e2e().await?,
            Scenario::Passive => bench.passive().await?,
            Scenario::Recon => {
                bench.recon(args.recon_lines, args.json).await?;
                continue;
            }
        };
        report.print(args.json);
    }
    if bench.had_no_requests() {
        bail!("no phase completed a request");
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(())
}
