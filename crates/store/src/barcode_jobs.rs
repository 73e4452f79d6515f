//! In-store barcode payments followed to the end (PASSIVEPAY, docs/instore.md): for each, a
//! job — written before the wallet is asked — holding where the wallet's rule stands
//! (querying, undoing, done) and when it is next due. A gateway that dies mid-payment
//! leaves the job, and whichever gateway runs next takes it up: every barcode payment ends
//! paid, failed or reversed, never taken and unknown.

use crate::Result;
use async_trait::async_trait;
use ottgate_core::{AttemptId, MerchantId, Timestamp};
use std::time::Duration;

/// Where a barcode payment's follow-up stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BarcodePhase {
    /// Asking the wallet (also while the first answer is awaited).
    Query,
    /// Undoing it (WeChat `reverse`, Alipay `cancel`, UnionPay's void).
    Undo,
    /// Finished: paid, failed or reversed.
    Done,
}

impl BarcodePhase {
    pub fn code(self) -> &'static str {
        match self {
            BarcodePhase::Query => "query",
            BarcodePhase::Undo => "undo",
            BarcodePhase::Done => "done",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        [BarcodePhase::Query, BarcodePhase::Undo, BarcodePhase::Done]
            .into_iter()
            .find(|p| p.code() == code)
    }
}

/// One barcode payment's follow-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BarcodeJob {
    pub attempt_id: AttemptId,
    pub merchant_id: MerchantId,
    pub phase: BarcodePhase,
    /// Once done: `paid`, `failed` or `reversed`.
    pub outcome: Option<String>,
    pub next_at: Timestamp,
    /// Queries stop, and the undo starts, then.
    pub query_until: Timestamp,
    /// No undo before then (WeChat: 15 s after the payment began).
    pub undo_after: Timestamp,
    /// Wallet calls made in the current phase.
    pub tries: u32,
    /// The wallet's last word, when it was not final.
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

/// Barcode payments not finished, for metrics and the merchant center.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BarcodeBacklog {
    pub querying: u64,
    /// Undos the wallet has not done yet (each retried until it is).
    pub undoing: u64,
}

#[async_trait]
pub trait BarcodeJobs: Send + Sync {
    /// Writes a new job; `false` if the attempt has one already.
    async fn insert_barcode_job(&self, job: BarcodeJob) -> Result<bool>;

    async fn barcode_job(&self, attempt: &AttemptId) -> Result<Option<BarcodeJob>>;

    /// Up to `limit` jobs due at `now`, claimed: each is due again only after `lease`, so no
    /// other gateway takes it meanwhile (one that dies holding it frees it then).
    async fn claim_barcode_jobs(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<BarcodeJob>>;

    /// Writes `job`'s phase, schedule and last word; a job already done stays as it is.
    /// Returns whether it was written.
    async fn update_barcode_job(&self, job: &BarcodeJob) -> Result<bool>;

    async fn barcode_backlog(&self) -> Result<BarcodeBacklog>;
}

/// This table's SQL where both backends agree, written once.
pub(crate) mod q {
    use crate::sql::Sql;

    pub(crate) const INSERT: Sql = sql!(
        "INSERT INTO barcode_jobs (attempt_id, merchant_id, phase, outcome, next_at, query_until,
           undo_after, tries, last_error, created_at, finished_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT DO NOTHING"
    );
    pub(crate) const BY_ATTEMPT: Sql = sql!("SELECT * FROM barcode_jobs WHERE attempt_id = ?1");
    pub(crate) const UPDATE: Sql = sql!(
        "UPDATE barcode_jobs SET phase = ?1, outcome = ?2, next_at = ?3, tries = ?4,
           last_error = ?5, finished_at = ?6
         WHERE attempt_id = ?7 AND phase <> 'done'"
    );
    pub(crate) const BACKLOG: Sql =
        sql!("SELECT phase, COUNT(*) AS n FROM barcode_jobs WHERE phase <> 'done' GROUP BY phase");
}

pub(crate) fn backlog_of(rows: impl IntoIterator<Item = (String, i64)>) -> BarcodeBacklog {
    let mut b = BarcodeBacklog::default();
    for (phase, n) in rows {
        let n = u64::try_from(n).unwrap_or(0);
        match BarcodePhase::from_code(&phase) {
            Some(BarcodePhase::Query) => b.querying = n,
            Some(BarcodePhase::Undo) => b.undoing = n,
            _ => {}
        }
    }
    b
}
