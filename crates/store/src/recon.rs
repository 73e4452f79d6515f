//! Reconciliation against the wallets' statements (docs/reconciliation.md): the gateway's
//! own records of a wallet's day, and what each run found — its counts, and the
//! discrepancies, open until repaired or resolved by an operator.

use crate::Result;
use async_trait::async_trait;
use ottgate_core::recon::{Record, Side, WalletDay};
use ottgate_core::{MerchantId, Money, PaymentMethod, Timestamp};

/// Which of the gateway's records a wallet's day concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordQuery {
    /// The wallet's method (one wallet, one method).
    pub method: PaymentMethod,
    pub day: WalletDay,
    /// Payments and refunds still pending that were begun since then are included too, so
    /// a line the wallet booked but the gateway never heard finished is found.
    pub pending_since: Timestamp,
}

/// One of the gateway's payments (attempts) or refunds, ready for matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconRecord {
    pub merchant_id: MerchantId,
    pub record: Record,
}

/// How a discrepancy stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DiscrepancyState {
    /// Waiting for an operator.
    Open,
    /// The wallet's query confirmed the statement, and the gateway settled it.
    Repaired,
    /// An operator looked into it and wrote why it stands.
    Resolved,
}

impl DiscrepancyState {
    pub fn code(self) -> &'static str {
        match self {
            DiscrepancyState::Open => "open",
            DiscrepancyState::Repaired => "repaired",
            DiscrepancyState::Resolved => "resolved",
        }
    }

    pub fn from_code(s: &str) -> Option<Self> {
        [Self::Open, Self::Repaired, Self::Resolved]
            .into_iter()
            .find(|k| k.code() == s)
    }
}

/// A discrepancy a run found (`kind` is `ottgate_core::recon::Outcome::kind`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDiscrepancy {
    pub kind: String,
    pub side: Side,
    /// The gateway's id (the wallet's reference when the line names none of ours).
    pub ours: String,
    pub wallets: Option<String>,
    pub merchant_id: Option<MerchantId>,
    /// What the statement says, when the line is on it.
    pub stated: Option<Money>,
    /// What the gateway holds, when it holds it.
    pub recorded: Option<Money>,
    pub state: DiscrepancyState,
    /// Why it stands (a repair says what it did).
    pub note: String,
}

/// A discrepancy as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discrepancy {
    pub id: i64,
    pub wallet: String,
    pub day: WalletDay,
    pub found: NewDiscrepancy,
    /// Who resolved it (an operator's name), once resolved.
    pub resolved_by: Option<String>,
    pub found_at: Timestamp,
    pub resolved_at: Option<Timestamp>,
}

/// What one run of a wallet's day counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconRun {
    pub wallet: String,
    pub day: WalletDay,
    /// Lines on the statement.
    pub lines: u64,
    pub matched: u64,
    /// Discrepancies found (repaired ones included).
    pub found: u64,
    /// Of those, repaired by the run.
    pub repaired: u64,
    pub finished_at: Timestamp,
}

/// A finished run and what it found. Saving it replaces the day's open discrepancies: a
/// run can be repeated for any day, and one gone since is no longer open; repaired and
/// resolved ones stay as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedRun {
    pub run: ReconRun,
    pub found: Vec<NewDiscrepancy>,
}

/// Which discrepancies to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiscrepancyFilter {
    pub day: Option<WalletDay>,
    pub wallet: Option<String>,
    pub open_only: bool,
}

/// An operator's resolution of a discrepancy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub id: i64,
    pub by: String,
    pub note: String,
    pub at: Timestamp,
}

/// A gateway's claim on running a wallet's day (the daily schedule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayClaim {
    pub wallet: String,
    pub day: WalletDay,
    /// The gateway claiming (its worker id).
    pub holder: String,
    pub now: Timestamp,
    /// Until when the claim holds; after it, another gateway may take the day over.
    pub until: Timestamp,
}

#[async_trait]
pub trait Reconciliations: Send + Sync {
    /// Claims a wallet's day for `claim.holder`: taken when no one holds it, or its holder's
    /// claim has run out, or the holder already has it. Returns whether it is now held.
    async fn claim_recon_day(&self, claim: DayClaim) -> Result<bool>;

    /// Gives a claimed day back (its statement was not ready): anyone may claim it now.
    async fn release_recon_day(&self, wallet: &str, day: WalletDay, holder: &str) -> Result<()>;

    /// The gateway's payments and refunds of `query.method` done (paid, refunded) on the
    /// wallet's day, and those still pending since `pending_since`.
    async fn recon_records(&self, query: RecordQuery) -> Result<Vec<ReconRecord>>;

    /// One payment (attempt) or refund by its id, whenever it was made.
    async fn recon_record(&self, side: Side, id: &str) -> Result<Option<ReconRecord>>;

    /// Saves a run: its counts (replacing an earlier run's of that wallet and day) and
    /// what it found, in one transaction.
    async fn save_recon_run(&self, run: FinishedRun) -> Result<()>;

    /// The runs of `day`, or the latest run of each wallet when `None`.
    async fn recon_runs(&self, day: Option<WalletDay>) -> Result<Vec<ReconRun>>;

    /// Discrepancies, oldest first.
    async fn discrepancies(&self, filter: DiscrepancyFilter) -> Result<Vec<Discrepancy>>;

    /// Resolves an open discrepancy; `None` when there is no open one with that id.
    async fn resolve_discrepancy(&self, resolution: Resolution) -> Result<Option<Discrepancy>>;
}

/// Whether a record's status code means done: a paid attempt, a refund carried out.
pub(crate) fn is_done(side: Side, status: &str) -> bool {
    match side {
        Side::Payment => status == ottgate_core::AttemptStatus::Paid.code(),
        Side::Refund => status == ottgate_core::RefundStatus::Success.code(),
    }
}

/// This table's SQL where both backends agree, written once (`sql!`: `?N` for SQLite,
/// `$N` for PostgreSQL).
pub(crate) mod q {
    use crate::sql::Sql;

    /// A wallet's day (`?2` ≤ done < `?3`) and what is pending since `?4`, payments.
    pub(crate) const PAYMENTS: Sql = sql!(
        "SELECT a.id, a.bizpay_order_id AS wallets, a.amount, a.currency, a.status,
                a.settled_at AS done_at, o.merchant_id
         FROM attempts a JOIN orders o ON o.id = a.order_id
         WHERE a.method = ?1 AND a.settled_at >= ?2 AND a.settled_at < ?3
         UNION ALL
         SELECT a.id, a.bizpay_order_id AS wallets, a.amount, a.currency, a.status,
                a.settled_at AS done_at, o.merchant_id
         FROM attempts a JOIN orders o ON o.id = a.order_id
         WHERE a.method = ?1 AND a.status = 'PROCESSING' AND a.created_at >= ?4"
    );
    /// The same for refunds.
    pub(crate) const REFUNDS: Sql = sql!(
        "SELECT r.id, r.channel_refund_id AS wallets, r.amount, r.currency, r.status,
                r.finished_at AS done_at, r.merchant_id
         FROM refunds r JOIN attempts a ON a.id = r.payment_id
         WHERE a.method = ?1 AND r.finished_at >= ?2 AND r.finished_at < ?3
         UNION ALL
         SELECT r.id, r.channel_refund_id AS wallets, r.amount, r.currency, r.status,
                r.finished_at AS done_at, r.merchant_id
         FROM refunds r JOIN attempts a ON a.id = r.payment_id
         WHERE a.method = ?1 AND r.status = 'pending' AND r.created_at >= ?4"
    );
    pub(crate) const PAYMENT: Sql = sql!(
        "SELECT a.id, a.bizpay_order_id AS wallets, a.amount, a.currency, a.status,
                a.settled_at AS done_at, o.merchant_id
         FROM attempts a JOIN orders o ON o.id = a.order_id WHERE a.id = ?1"
    );
    pub(crate) const REFUND: Sql = sql!(
        "SELECT r.id, r.channel_refund_id AS wallets, r.amount, r.currency, r.status,
                r.finished_at AS done_at, r.merchant_id
         FROM refunds r WHERE r.id = ?1"
    );
    pub(crate) const CLAIM: Sql = sql!(
        "INSERT INTO recon_leases (wallet, day, holder, held_until) VALUES (?1, ?2, ?3, ?5)
         ON CONFLICT (wallet, day) DO UPDATE SET holder = excluded.holder,
             held_until = excluded.held_until
         WHERE recon_leases.held_until <= ?4 OR recon_leases.holder = ?3"
    );
    pub(crate) const RELEASE: Sql = sql!(
        "UPDATE recon_leases SET held_until = 0 WHERE wallet = ?1 AND day = ?2 AND holder = ?3"
    );
    pub(crate) const CLEAR_OPEN: Sql =
        sql!("DELETE FROM recon_discrepancies WHERE wallet = ?1 AND day = ?2 AND state = 'open'");
    pub(crate) const INSERT_FOUND: Sql = sql!(
        "INSERT INTO recon_discrepancies (wallet, day, kind, side, ours, wallets, merchant_id,
             stated_amount, stated_currency, recorded_amount, recorded_currency, state, note,
             found_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
         ON CONFLICT (wallet, day, kind, side, ours) DO NOTHING"
    );
    pub(crate) const SAVE_RUN: Sql = sql!(
        "INSERT INTO recon_runs (wallet, day, lines, matched, found, repaired, finished_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (wallet, day) DO UPDATE SET lines = excluded.lines,
             matched = excluded.matched, found = excluded.found,
             repaired = excluded.repaired, finished_at = excluded.finished_at"
    );
    pub(crate) const RUNS_OF_DAY: Sql = sql!(
        "SELECT wallet, day, lines, matched, found, repaired, finished_at FROM recon_runs
         WHERE day = ?1 ORDER BY wallet"
    );
    pub(crate) const LATEST_RUNS: Sql = sql!(
        "SELECT r.wallet, r.day, r.lines, r.matched, r.found, r.repaired, r.finished_at
         FROM recon_runs r
         WHERE r.day = (SELECT MAX(l.day) FROM recon_runs l WHERE l.wallet = r.wallet)
         ORDER BY r.wallet"
    );
    /// `?1`/`?2`: a day and a wallet, or NULL for any; `?3`: 1 for open ones only.
    pub(crate) const LIST: Sql = sql!(
        "SELECT id, wallet, day, kind, side, ours, wallets, merchant_id, stated_amount,
             stated_currency, recorded_amount, recorded_currency, state, note, resolved_by,
             found_at, resolved_at
         FROM recon_discrepancies
         WHERE (CAST(?1 AS TEXT) IS NULL OR day = ?1)
           AND (CAST(?2 AS TEXT) IS NULL OR wallet = ?2)
           AND (CAST(?3 AS BIGINT) = 0 OR state = 'open')
         ORDER BY id"
    );
    pub(crate) const RESOLVE: Sql = sql!(
        "UPDATE recon_discrepancies SET state = 'resolved', resolved_by = ?2, note = ?3,
             resolved_at = ?4
         WHERE id = ?1 AND state = 'open'
         RETURNING id, wallet, day, kind, side, ours, wallets, merchant_id, stated_amount,
             stated_currency, recorded_amount, recorded_currency, state, note, resolved_by,
             found_at, resolved_at"
    );
}
