//! The `recon_runs` and `recon_discrepancies` tables, and the wallet's day read from
//! `attempts` and `refunds`.

use super::{SqliteStore, db};
use crate::Result;
use crate::recon::{
    DayClaim, Discrepancy, DiscrepancyFilter, FinishedRun, NewDiscrepancy, ReconRecord, ReconRun,
    RecordQuery, Resolution, q,
};
use crate::rows::{DiscrepancyRow, ReconRecordRow, ReconRunRow, amount_to_db};
use async_trait::async_trait;
use ottgate_core::Timestamp;
use ottgate_core::recon::{Side, WalletDay};
use rusqlite::{Connection, params};

fn records(c: &Connection, query: RecordQuery) -> Result<Vec<ReconRecord>> {
    let day = query.day;
    let args = params![
        query.method.code(),
        day.start().epoch_millis(),
        day.end().epoch_millis(),
        query.pending_since.epoch_millis(),
    ];
    let mut out = Vec::new();
    for (side, sql) in [(Side::Payment, q::PAYMENTS), (Side::Refund, q::REFUNDS)] {
        for row in db::all(c, sql.sqlite, args, ReconRecordRow::from_sqlite)? {
            out.push(row.into_record(side, Some(day))?);
        }
    }
    Ok(out)
}

fn record(c: &Connection, side: Side, id: &str) -> Result<Option<ReconRecord>> {
    let sql = match side {
        Side::Payment => q::PAYMENT,
        Side::Refund => q::REFUND,
    };
    db::opt(c, sql.sqlite, params![id], ReconRecordRow::from_sqlite)?
        .map(|row| row.into_record(side, None))
        .transpose()
}

fn insert_found(
    c: &Connection,
    wallet: &str,
    day: WalletDay,
    d: &NewDiscrepancy,
    at: Timestamp,
) -> Result<()> {
    db::exec(
        c,
        q::INSERT_FOUND.sqlite,
        params![
            wallet,
            day.to_string(),
            &d.kind,
            d.side.code(),
            &d.ours,
            &d.wallets,
            d.merchant_id.as_ref().map(|m| m.as_str().to_owned()),
            d.stated.map(|m| amount_to_db(m.amount)),
            d.stated.map(|m| m.currency.code()),
            d.recorded.map(|m| amount_to_db(m.amount)),
            d.recorded.map(|m| m.currency.code()),
            d.state.code(),
            &d.note,
            at.epoch_millis(),
        ],
    )?;
    Ok(())
}

fn save_run(c: &Connection, finished: &FinishedRun) -> Result<()> {
    let run = &finished.run;
    let day = run.day.to_string();
    db::exec(c, q::CLEAR_OPEN.sqlite, params![&run.wallet, &day])?;
    for d in &finished.found {
        insert_found(c, &run.wallet, run.day, d, run.finished_at)?;
    }
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    db::exec(
        c,
        q::SAVE_RUN.sqlite,
        params![
            &run.wallet,
            &day,
            n(run.lines),
            n(run.matched),
            n(run.found),
            n(run.repaired),
            run.finished_at.epoch_millis(),
        ],
    )?;
    Ok(())
}

fn runs(c: &Connection, day: Option<WalletDay>) -> Result<Vec<ReconRun>> {
    let rows = match day {
        Some(day) => db::all(
            c,
            q::RUNS_OF_DAY.sqlite,
            params![day.to_string()],
            ReconRunRow::from_sqlite,
        )?,
        None => db::all(c, q::LATEST_RUNS.sqlite, [], ReconRunRow::from_sqlite)?,
    };
    rows.into_iter().map(ReconRunRow::into_run).collect()
}

fn list(c: &Connection, filter: &DiscrepancyFilter) -> Result<Vec<Discrepancy>> {
    db::all(
        c,
        q::LIST.sqlite,
        params![
            filter.day.map(|d| d.to_string()),
            &filter.wallet,
            i64::from(filter.open_only),
        ],
        DiscrepancyRow::from_sqlite,
    )?
    .into_iter()
    .map(DiscrepancyRow::into_discrepancy)
    .collect()
}

fn resolve(c: &Connection, r: &Resolution) -> Result<Option<Discrepancy>> {
    db::opt(
        c,
        q::RESOLVE.sqlite,
        params![r.id, &r.by, &r.note, r.at.epoch_millis()],
        DiscrepancyRow::from_sqlite,
    )?
    .map(DiscrepancyRow::into_discrepancy)
    .transpose()
}

#[async_trait]
impl crate::Reconciliations for SqliteStore {
    async fn claim_recon_day(&self, claim: DayClaim) -> Result<bool> {
        self.engine
            .write(move |c| {
                let n = db::exec(
                    c,
                    q::CLAIM.sqlite,
                    params![
                        &claim.wallet,
                        claim.day.to_string(),
                        &claim.holder,
                        claim.now.epoch_millis(),
                        claim.until.epoch_millis(),
                    ],
                )?;
                Ok(n == 1)
            })
            .await
    }

    async fn release_recon_day(&self, wallet: &str, day: WalletDay, holder: &str) -> Result<()> {
        let (wallet, holder) = (wallet.to_owned(), holder.to_owned());
        self.engine
            .write(move |c| {
                db::exec(
                    c,
                    q::RELEASE.sqlite,
                    params![wallet, day.to_string(), holder],
                )?;
                Ok(())
            })
            .await
    }

    async fn recon_records(&self, query: RecordQuery) -> Result<Vec<ReconRecord>> {
        self.engine.read(move |c| records(c, query)).await
    }

    async fn recon_record(&self, side: Side, id: &str) -> Result<Option<ReconRecord>> {
        let id = id.to_owned();
        self.engine.read(move |c| record(c, side, &id)).await
    }

    async fn save_recon_run(&self, run: FinishedRun) -> Result<()> {
        self.engine.write(move |c| save_run(c, &run)).await
    }

    async fn recon_runs(&self, day: Option<WalletDay>) -> Result<Vec<ReconRun>> {
        self.engine.read(move |c| runs(c, day)).await
    }

    async fn discrepancies(&self, filter: DiscrepancyFilter) -> Result<Vec<Discrepancy>> {
        self.engine.read(move |c| list(c, &filter)).await
    }

    async fn resolve_discrepancy(&self, resolution: Resolution) -> Result<Option<Discrepancy>> {
        self.engine.write(move |c| resolve(c, &resolution)).await
    }
}
