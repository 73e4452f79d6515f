//! The `barcode_jobs` table: in-store payments followed until they end. Claims skip rows
//! another gateway holds, so each job step runs on one gateway at a time.

use super::{PgStore, db};
use crate::Result;
use crate::barcode_jobs::{self, BarcodeBacklog, BarcodeJob, q};
use crate::rows::BarcodeJobRow;
use async_trait::async_trait;
use ottgate_core::{AttemptId, Timestamp};
use std::time::Duration;

#[async_trait]
impl crate::BarcodeJobs for PgStore {
    async fn insert_barcode_job(&self, j: BarcodeJob) -> Result<bool> {
        let n = db::exec(
            &self.client().await?,
            q::INSERT.pg,
            &[
                &j.attempt_id.as_str(),
                &j.merchant_id.as_str(),
                &j.phase.code(),
                &j.outcome,
                &j.next_at.epoch_millis(),
                &j.query_until.epoch_millis(),
                &j.undo_after.epoch_millis(),
                &i64::from(j.tries),
                &j.last_error,
                &j.created_at.epoch_millis(),
                &j.finished_at.map(Timestamp::epoch_millis),
            ],
        )
        .await?;
        Ok(n == 1)
    }

    async fn barcode_job(&self, attempt: &AttemptId) -> Result<Option<BarcodeJob>> {
        let row = db::opt(
            &self.client().await?,
            q::BY_ATTEMPT.pg,
            &[&attempt.as_str()],
        )
        .await?;
        row.map(|row| BarcodeJobRow::from_pg(&row)?.into_job())
            .transpose()
    }

    async fn claim_barcode_jobs(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<BarcodeJob>> {
        let rows = db::all(
            &self.client().await?,
            "UPDATE barcode_jobs SET next_at = $1 WHERE attempt_id IN
               (SELECT attempt_id FROM barcode_jobs WHERE phase <> 'done' AND next_at <= $2
                ORDER BY next_at LIMIT $3 FOR UPDATE SKIP LOCKED)
             RETURNING *",
            &[
                &now.plus(lease).epoch_millis(),
                &now.epoch_millis(),
                &i64::from(limit),
            ],
        )
        .await?;
        rows.iter()
            .map(|row| BarcodeJobRow::from_pg(row)?.into_job())
            .collect()
    }

    async fn update_barcode_job(&self, j: &BarcodeJob) -> Result<bool> {
        let n = db::exec(
            &self.client().await?,
            q::UPDATE.pg,
            &[
                &j.phase.code(),
                &j.outcome,
                &j.next_at.epoch_millis(),
                &i64::from(j.tries),
                &j.last_error,
                &j.finished_at.map(Timestamp::epoch_millis),
                &j.attempt_id.as_str(),
            ],
        )
        .await?;
        Ok(n == 1)
    }

    async fn barcode_backlog(&self) -> Result<BarcodeBacklog> {
        let rows = db::all(&self.client().await?, q::BACKLOG.pg, &[]).await?;
        let rows: Vec<(String, i64)> = rows
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_>>()?;
        Ok(barcode_jobs::backlog_of(rows))
    }
}
