//! The `barcode_jobs` table: in-store payments followed until they end.

use super::{SqliteStore, db};
use crate::Result;
use crate::barcode_jobs::{self, BarcodeBacklog, BarcodeJob, q};
use crate::rows::BarcodeJobRow;
use async_trait::async_trait;
use ottgate_core::{AttemptId, Timestamp};
use rusqlite::{Connection, params};
use std::time::Duration;

fn insert(c: &Connection, j: &BarcodeJob) -> Result<bool> {
    let n = db::exec(
        c,
        q::INSERT.sqlite,
        params![
            j.attempt_id.as_str(),
            j.merchant_id.as_str(),
            j.phase.code(),
            &j.outcome,
            j.next_at.epoch_millis(),
            j.query_until.epoch_millis(),
            j.undo_after.epoch_millis(),
            i64::from(j.tries),
            &j.last_error,
            j.created_at.epoch_millis(),
            j.finished_at.map(Timestamp::epoch_millis),
        ],
    )?;
    Ok(n == 1)
}

fn by_attempt(c: &Connection, attempt: &AttemptId) -> Result<Option<BarcodeJob>> {
    db::opt(
        c,
        q::BY_ATTEMPT.sqlite,
        [attempt.as_str()],
        BarcodeJobRow::from_sqlite,
    )?
    .map(BarcodeJobRow::into_job)
    .transpose()
}

/// Takes the due jobs and moves each one's next time past the lease, in one write.
fn claim(c: &Connection, now: Timestamp, lease: Duration, limit: u32) -> Result<Vec<BarcodeJob>> {
    let until = now.plus(lease).epoch_millis();
    db::all(
        c,
        "UPDATE barcode_jobs SET next_at = ?1 WHERE attempt_id IN
           (SELECT attempt_id FROM barcode_jobs WHERE phase <> 'done' AND next_at <= ?2
            ORDER BY next_at LIMIT ?3)
         RETURNING *",
        params![until, now.epoch_millis(), i64::from(limit)],
        BarcodeJobRow::from_sqlite,
    )?
    .into_iter()
    .map(BarcodeJobRow::into_job)
    .collect()
}

fn update(c: &Connection, j: &BarcodeJob) -> Result<bool> {
    let n = db::exec(
        c,
        q::UPDATE.sqlite,
        params![
            j.phase.code(),
            &j.outcome,
            j.next_at.epoch_millis(),
            i64::from(j.tries),
            &j.last_error,
            j.finished_at.map(Timestamp::epoch_millis),
            j.attempt_id.as_str(),
        ],
    )?;
    Ok(n == 1)
}

fn backlog(c: &Connection) -> Result<BarcodeBacklog> {
    let rows = db::all(c, q::BACKLOG.sqlite, [], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
    })?;
    Ok(barcode_jobs::backlog_of(rows))
}

#[async_trait]
impl crate::BarcodeJobs for SqliteStore {
    async fn insert_barcode_job(&self, job: BarcodeJob) -> Result<bool> {
        self.engine.write(move |c| insert(c, &job)).await
    }

    async fn barcode_job(&self, attempt: &AttemptId) -> Result<Option<BarcodeJob>> {
        let attempt = attempt.clone();
        self.engine.read(move |c| by_attempt(c, &attempt)).await
    }

    async fn claim_barcode_jobs(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<BarcodeJob>> {
        self.engine
            .write(move |c| claim(c, now, lease, limit))
            .await
    }

    async fn update_barcode_job(&self, job: &BarcodeJob) -> Result<bool> {
        let job = job.clone();
        self.engine.write(move |c| update(c, &job)).await
    }

    async fn barcode_backlog(&self) -> Result<BarcodeBacklog> {
        self.engine.read(backlog).await
    }
}
