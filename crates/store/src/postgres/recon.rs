//! The `recon_runs` and `recon_discrepancies` tables, and the wallet's day read from
//! `attempts` and `refunds`.

use super::{PgStore, db};
use crate::Result;
use crate::recon::{
    DayClaim, Discrepancy, DiscrepancyFilter, FinishedRun, ReconRecord, ReconRun, RecordQuery,
    Resolution, q,
};
use crate::rows::{DiscrepancyRow, ReconRecordRow, ReconRunRow, amount_to_db};
use async_trait::async_trait;
use deadpool_postgres::Transaction;
use ottgate_core::recon::{Side, WalletDay};

async fn save_run(tx: &Transaction<'_>, finished: &FinishedRun) -> Result<()> {
    let run = &finished.run;
    let day = run.day.to_string();
    let at = run.finished_at.epoch_millis();
    db::exec(tx, q::CLEAR_OPEN.pg, &[&run.wallet, &day]).await?;
    for d in &finished.found {
        let merchant = d.merchant_id.as_ref().map(|m| m.as_str().to_owned());
        let stated_amount = d.stated.map(|m| amount_to_db(m.amount));
        let stated_currency = d.stated.map(|m| m.currency.code());
        let recorded_amount = d.recorded.map(|m| amount_to_db(m.amount));
        let recorded_currency = d.recorded.map(|m| m.currency.code());
        db::exec(
            tx,
            q::INSERT_FOUND.pg,
            &[
                &run.wallet,
                &day,
                &d.kind,
                &d.side.code(),
                &d.ours,
                &d.wallets,
                &merchant,
                &stated_amount,
                &stated_currency,
                &recorded_amount,
                &recorded_currency,
                &d.state.code(),
                &d.note,
                &at,
            ],
        )
        .await?;
    }
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    db::exec(
        tx,
        q::SAVE_RUN.pg,
        &[
            &run.wallet,
            &day,
            &n(run.lines),
            &n(run.matched),
            &n(run.found),
            &n(run.repaired),
            &at,
        ],
    )
    .await?;
    Ok(())
}

async fn resolve(tx: &Transaction<'_>, r: &Resolution) -> Result<Option<Discrepancy>> {
    let row = db::opt(
        tx,
        q::RESOLVE.pg,
        &[&r.id, &r.by, &r.note, &r.at.epoch_millis()],
    )
    .await?;
    row.map(|row| DiscrepancyRow::from_pg(&row)?.into_discrepancy())
        .transpose()
}

#[async_trait]
impl crate::Reconciliations for PgStore {
    async fn claim_recon_day(&self, claim: DayClaim) -> Result<bool> {
        let n = db::exec(
            &self.client().await?,
            q::CLAIM.pg,
            &[
                &claim.wallet,
                &claim.day.to_string(),
                &claim.holder,
                &claim.now.epoch_millis(),
                &claim.until.epoch_millis(),
            ],
        )
        .await?;
        Ok(n == 1)
    }

    async fn release_recon_day(&self, wallet: &str, day: WalletDay, holder: &str) -> Result<()> {
        db::exec(
            &self.client().await?,
            q::RELEASE.pg,
            &[&wallet, &day.to_string(), &holder],
        )
        .await?;
        Ok(())
    }

    async fn recon_records(&self, query: RecordQuery) -> Result<Vec<ReconRecord>> {
        let c = self.client().await?;
        let day = query.day;
        let (method, start, end, since) = (
            query.method.code(),
            day.start().epoch_millis(),
            day.end().epoch_millis(),
            query.pending_since.epoch_millis(),
        );
        let mut out = Vec::new();
        for (side, sql) in [(Side::Payment, q::PAYMENTS), (Side::Refund, q::REFUNDS)] {
            for row in db::all(&c, sql.pg, &[&method, &start, &end, &since]).await? {
                out.push(ReconRecordRow::from_pg(&row)?.into_record(side, Some(day))?);
            }
        }
        Ok(out)
    }

    async fn recon_record(&self, side: Side, id: &str) -> Result<Option<ReconRecord>> {
        let sql = match side {
            Side::Payment => q::PAYMENT,
            Side::Refund => q::REFUND,
        };
        let row = db::opt(&self.client().await?, sql.pg, &[&id]).await?;
        row.map(|row| ReconRecordRow::from_pg(&row)?.into_record(side, None))
            .transpose()
    }

    async fn save_recon_run(&self, run: FinishedRun) -> Result<()> {
        in_tx!(self, |tx| save_run(&tx, &run))
    }

    async fn recon_runs(&self, day: Option<WalletDay>) -> Result<Vec<ReconRun>> {
        let c = self.client().await?;
        let rows = match day {
            Some(day) => db::all(&c, q::RUNS_OF_DAY.pg, &[&day.to_string()]).await?,
            None => db::all(&c, q::LATEST_RUNS.pg, &[]).await?,
        };
        db::each(rows, |row| ReconRunRow::from_pg(row)?.into_run())
    }

    async fn discrepancies(&self, filter: DiscrepancyFilter) -> Result<Vec<Discrepancy>> {
        let day = filter.day.map(|d| d.to_string());
        let rows = db::all(
            &self.client().await?,
            q::LIST.pg,
            &[&day, &filter.wallet, &i64::from(filter.open_only)],
        )
        .await?;
        db::each(rows, |row| DiscrepancyRow::from_pg(row)?.into_discrepancy())
    }

    async fn resolve_discrepancy(&self, resolution: Resolution) -> Result<Option<Discrepancy>> {
        in_tx!(self, |tx| resolve(&tx, &resolution))
    }
}
