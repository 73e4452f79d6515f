//! `ottgate recon`: reconciling the wallets' statements by hand (the gateway also runs it
//! each day by itself), reporting a day, and resolving what stays open
//! (docs/reconciliation.md).

use anyhow::{Context, Result};
use clap::Subcommand;
use ottgate_server::service::statements::DayRun;
use ottgate_server::service::{Discrepancy, ReconRun};
use ottgate_server::{Gateway, Money, SystemClock, WalletDay};
use std::sync::Arc;

use crate::ConfigArgs;

#[derive(Debug, Subcommand)]
pub(crate) enum ReconCommand {
    /// Download each wallet's statement of a day (its own Beijing day), match every line,
    /// repair what the wallet's query confirms, and keep the rest as open discrepancies.
    /// Safe to run again for any day.
    Run {
        /// The wallet's day, yyyy-MM-dd.
        #[arg(long, value_parser = day)]
        date: WalletDay,
        /// Only this wallet (alipay, wechatpay, unionpay); by default every wallet whose
        /// statements the gateway reads.
        #[arg(long)]
        wallet: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// What a day's runs found: the counts per wallet, and each discrepancy.
    Report {
        /// The wallet's day, yyyy-MM-dd.
        #[arg(long, value_parser = day)]
        date: WalletDay,
        /// Print JSON: the runs, the counts of matched lines and of each kind of
        /// discrepancy, and the discrepancies.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Close an open discrepancy, saying why it stands (kept with who closed it).
    Resolve {
        /// The discrepancy's number (as `recon report` shows it).
        #[arg(long)]
        id: i64,
        /// Why it stands, for whoever reads it next.
        #[arg(long)]
        note: String,
        /// Who resolves it.
        #[arg(long, env = "USER", default_value = "operator")]
        by: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

fn day(s: &str) -> Result<WalletDay, String> {
    WalletDay::parse(s).ok_or_else(|| format!("{s:?} is not a day (yyyy-MM-dd)"))
}

async fn gateway(args: &ConfigArgs) -> Result<Gateway> {
    let config = args.load()?;
    let store = args.open_store(&config).await?;
    let keyring = ottgate_server::open_keyring(&config)?;
    Ok(Gateway::new(
        &config,
        config.server.listen,
        store,
        keyring,
        Arc::new(SystemClock),
    )?)
}

pub(crate) async fn run(command: ReconCommand) -> Result<()> {
    match command {
        ReconCommand::Run {
            date,
            wallet,
            json,
            config,
        } => {
            let gateway = gateway(&config).await?;
            let service = &gateway.state().service;
            let wallets: Vec<String> = match wallet {
                Some(w) => vec![w],
                None => service
                    .reconciled_wallets()
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
            };
            let mut results = Vec::new();
            let mut failed = false;
            for wallet in wallets {
                let result = service.reconcile_day(&wallet, date).await;
                let shown = match &result {
                    Ok(DayRun::NotReady) => serde_json::json!({
                        "wallet": wallet, "day": date.to_string(), "ready": false,
                    }),
                    Ok(DayRun::Done { run, found }) => {
                        let mut v = run_json(run);
                        v["discrepancies"] = found
                            .iter()
                            .map(|d| {
                                serde_json::json!({
                                    "kind": d.kind, "side": d.side.code(), "id": d.ours,
                                    "state": d.state.code(), "note": d.note,
                                })
                            })
                            .collect();
                        v
                    }
                    Err(e) => {
                        failed = true;
                        serde_json::json!({
                            "wallet": wallet, "day": date.to_string(), "error": e.to_string(),
                        })
                    }
                };
                if !json {
                    match &result {
                        Ok(DayRun::NotReady) => println!(
                            "{wallet:<10} {date}  not published yet (nothing changed; run again later)"
                        ),
                        Ok(DayRun::Done { run, .. }) => println!(
                            "{wallet:<10} {date}  {} lines, {} matched, {} discrepancies ({} repaired)",
                            run.lines, run.matched, run.found, run.repaired
                        ),
                        Err(e) => eprintln!("{wallet:<10} {date}  failed: {e}"),
                    }
                }
                results.push(shown);
            }
            if json {
                println!("{}", serde_json::Value::Array(results));
            }
            anyhow::ensure!(
                !failed,
                "a statement could not be reconciled (nothing of it changed)"
            );
            Ok(())
        }
        ReconCommand::Report { date, json, config } => {
            let gateway = gateway(&config).await?;
            let (runs, found) = gateway.state().service.recon_day(date).await?;
            if json {
                println!("{}", report_json(date, &runs, &found));
            } else {
                print_report(date, &runs, &found);
            }
            Ok(())
        }
        ReconCommand::Resolve {
            id,
            note,
            by,
            config,
        } => {
            let gateway = gateway(&config).await?;
            let d = gateway
                .state()
                .service
                .resolve_discrepancy(id, &by, &note)
                .await
                .with_context(|| format!("resolving discrepancy {id}"))?;
            println!(
                "#{} {} {} {} {}: resolved by {}",
                d.id,
                d.wallet,
                d.day,
                d.found.kind,
                d.found.ours,
                d.resolved_by.as_deref().unwrap_or_default()
            );
            Ok(())
        }
    }
}

fn run_json(run: &ReconRun) -> serde_json::Value {
    serde_json::json!({
        "wallet": run.wallet,
        "day": run.day.to_string(),
        "ready": true,
        "lines": run.lines,
        "matched": run.matched,
        "found": run.found,
        "repaired": run.repaired,
        "finishedAt": run.finished_at.rfc3339(),
    })
}

fn money(m: Option<Money>) -> serde_json::Value {
    m.map_or(
        serde_json::Value::Null,
        |m| serde_json::json!({"amount": m.amount.minor(), "currency": m.currency.code()}),
    )
}

fn discrepancy_json(d: &Discrepancy) -> serde_json::Value {
    serde_json::json!({
        "id": d.id,
        "wallet": d.wallet,
        "day": d.day.to_string(),
        "kind": d.found.kind,
        "side": d.found.side.code(),
        "gatewayId": d.found.ours,
        "walletId": d.found.wallets,
        "merchantId": d.found.merchant_id.as_ref().map(|m| m.as_str()),
        "stated": money(d.found.stated),
        "recorded": money(d.found.recorded),
        "state": d.found.state.code(),
        "note": d.found.note,
        "resolvedBy": d.resolved_by,
    })
}

/// The report as JSON: the runs, counts (matched lines, and each kind of discrepancy not
/// repaired or resolved), and every discrepancy.
pub(crate) fn report_json(
    day: WalletDay,
    runs: &[ReconRun],
    found: &[Discrepancy],
) -> serde_json::Value {
    let mut counts = serde_json::Map::new();
    counts.insert(
        "matched".into(),
        runs.iter().map(|r| r.matched).sum::<u64>().into(),
    );
    for kind in [
        "wallet_only",
        "gateway_only",
        "amount_differs",
        "currency_differs",
        "status_differs",
    ] {
        let open = found
            .iter()
            .filter(|d| d.found.kind == kind && d.found.state.code() == "open")
            .count();
        counts.insert(kind.into(), open.into());
    }
    for state in ["repaired", "resolved"] {
        let n = found
            .iter()
            .filter(|d| d.found.state.code() == state)
            .count();
        counts.insert(state.into(), n.into());
    }
    serde_json::json!({
        "day": day.to_string(),
        "runs": runs.iter().map(run_json).collect::<Vec<_>>(),
        "counts": counts,
        "discrepancies": found.iter().map(discrepancy_json).collect::<Vec<_>>(),
    })
}

fn print_report(day: WalletDay, runs: &[ReconRun], found: &[Discrepancy]) {
    if runs.is_empty() {
        println!("{day}: not reconciled yet (ottgate recon run --date {day})");
        return;
    }
    println!(
        "{:<10} {:>7} {:>7} {:>6} {:>8}  finished",
        "wallet", "lines", "matched", "found", "repaired"
    );
    for r in runs {
        println!(
            "{:<10} {:>7} {:>7} {:>6} {:>8}  {}",
            r.wallet,
            r.lines,
            r.matched,
            r.found,
            r.repaired,
            r.finished_at.utc_display()
        );
    }
    if found.is_empty() {
        println!();
        println!("no discrepancies");
        return;
    }
    println!();
    let shown = |m: Option<Money>| {
        m.map_or_else(
            || "-".to_owned(),
            |m| format!("{} {}", m.major_plain(), m.currency.code()),
        )
    };
    println!(
        "{:>5} {:<10} {:<16} {:<8} {:<24} {:>14} {:>14}  state",
        "#", "wallet", "kind", "side", "id", "statement", "gateway"
    );
    for d in found {
        println!(
            "{:>5} {:<10} {:<16} {:<8} {:<24} {:>14} {:>14}  {}",
            d.id,
            d.wallet,
            d.found.kind,
            d.found.side.code(),
            d.found.ours,
            shown(d.found.stated),
            shown(d.found.recorded),
            d.found.state.code()
        );
        if !d.found.note.is_empty() {
            println!("      {}", d.found.note);
        }
    }
}
