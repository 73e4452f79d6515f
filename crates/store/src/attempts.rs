//! Attempts — one method tried for an order — and the one way a payment changes state: [`Attempts::settle`], which applies `ottgate_core::order::settle` and enqueues the callback in the same transaction.

use crate::{Due, NewDelivery, Result};
use async_trait::async_trait;
use ottgate_core::{
    Attempt, AttemptId, AttemptOutcome, AttemptStatus, MerchantId, Order, OrderId, PaymentMethod,
    Settlement, Timestamp, TransitionError, order::NotPayable,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    /// A new attempt was created.
    Created(Attempt),
    /// A pending attempt for the same method was resumed (the buyer clicked twice, or came
    /// back to the page).
    Resumed(Attempt),
    NotPayable(NotPayable),
}

/// A verified result for an attempt, to apply.
#[derive(Debug, Clone)]
pub struct SettleRequest {
    pub attempt_id: AttemptId,
    pub outcome: AttemptOutcome,
    pub at: Timestamp,
    pub bizpay_order_id: Option<String>,
    /// What the buyer paid in yuan, when the wallet said so.
    pub buyer_paid: Option<ottgate_core::BuyerPaid>,
    /// The merchant callback to enqueue if, and only if, this outcome pays the order.
    pub on_paid: Option<NewDelivery>,
    /// A capture of a card authorisation: applies only while the attempt is still held
    /// (never to one voided or lapsed meanwhile).
    pub capture: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettleOutcome {
    Applied {
        settlement: Settlement,
        order: Order,
        attempt: Attempt,
    },
    /// The same outcome was applied before: nothing changed (duplicate notification).
    AlreadyApplied { order: Order, attempt: Attempt },
    /// The outcome contradicts the recorded state; nothing changed.
    Rejected {
        error: TransitionError,
        order: Order,
        attempt: Attempt,
    },
}

impl SettleOutcome {
    pub fn order(&self) -> &Order {
        match self {
            SettleOutcome::Applied { order, .. }
            | SettleOutcome::AlreadyApplied { order, .. }
            | SettleOutcome::Rejected { order, .. } => order,
        }
    }

    pub fn attempt(&self) -> &Attempt {
        match self {
            SettleOutcome::Applied { attempt, .. }
            | SettleOutcome::AlreadyApplied { attempt, .. }
            | SettleOutcome::Rejected { attempt, .. } => attempt,
        }
    }
}

/// What `req` does to `order` and its `attempt` as read under the write's lock: the
/// settlement to write, or the outcome that leaves both untouched (a repeat, or a
/// contradiction). Both backends decide here, and only write what it returns.
pub(crate) fn decide(order: Order, attempt: Attempt, req: &SettleRequest) -> Decision {
    if req.capture && !attempt.is_authorised() && attempt.status != AttemptStatus::Paid {
        return Decision::Unchanged(SettleOutcome::Rejected {
            error: TransitionError::Contradicts {
                current: attempt.status,
                outcome: req.outcome,
            },
            order,
            attempt,
        });
    }
    match ottgate_core::order::settle(order.status_at(req.at), attempt.status, req.outcome) {
        Ok(Some(settlement)) => Decision::Write(settlement, order, attempt),
        Ok(None) => Decision::Unchanged(SettleOutcome::AlreadyApplied { order, attempt }),
        Err(error) => Decision::Unchanged(SettleOutcome::Rejected {
            error,
            order,
            attempt,
        }),
    }
}

/// What [`decide`] tells a backend to do.
pub(crate) enum Decision {
    Write(Settlement, Order, Attempt),
    Unchanged(SettleOutcome),
}

/// A card acquirer's authorisation of an attempt, to record.
#[derive(Debug, Clone)]
pub struct Authorise {
    pub attempt_id: AttemptId,
    pub at: Timestamp,
    /// When the gateway captures it by itself; `None`: the merchant captures it.
    pub capture_at: Option<Timestamp>,
    /// Until when the authorisation holds: the order's new expiry, after which an
    /// authorisation never captured lapses (the order expires as any other).
    pub hold_until: Timestamp,
    pub bizpay_order_id: Option<String>,
}

/// What recording an authorisation, or voiding one, did. Each carries the order and the
/// attempt as they now are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldOutcome {
    /// Recorded now.
    Applied { order: Order, attempt: Attempt },
    /// Recorded before (a repeat): nothing changed.
    AlreadyApplied { order: Order, attempt: Attempt },
    /// The attempt is not in the state the change needs (paid, failed, closed…): nothing
    /// changed.
    Refused { order: Order, attempt: Attempt },
}

impl HoldOutcome {
    pub fn attempt(&self) -> &Attempt {
        match self {
            HoldOutcome::Applied { attempt, .. }
            | HoldOutcome::AlreadyApplied { attempt, .. }
            | HoldOutcome::Refused { attempt, .. } => attempt,
        }
    }
}

/// Whether `attempt` of `order` can be authorised at `at`: `None` to write, or the outcome
/// that leaves both untouched. Both backends decide here.
pub(crate) fn decide_authorise(
    order: Order,
    attempt: Attempt,
    at: Timestamp,
) -> Option<HoldOutcome> {
    if attempt.is_authorised() {
        return Some(HoldOutcome::AlreadyApplied { order, attempt });
    }
    if attempt.status != AttemptStatus::Pending
        || order.status_at(at) != ottgate_core::OrderStatus::Processing
    {
        return Some(HoldOutcome::Refused { order, attempt });
    }
    None
}

/// Whether `attempt` of `order` can be voided: `None` to write, or the outcome that leaves
/// both untouched. A pending attempt, authorised or not yet, can be voided.
pub(crate) fn decide_void(order: Order, attempt: Attempt) -> Option<HoldOutcome> {
    match attempt.status {
        AttemptStatus::Pending => None,
        AttemptStatus::Cancelled => Some(HoldOutcome::AlreadyApplied { order, attempt }),
        _ => Some(HoldOutcome::Refused { order, attempt }),
    }
}

/// A new pending attempt of `order` with `method`, under a freshly generated id.
pub(crate) fn fresh(order: &Order, method: PaymentMethod, now: Timestamp) -> Attempt {
    Attempt {
        id: AttemptId::generate(now),
        order_id: order.id.clone(),
        method,
        status: AttemptStatus::Pending,
        money: order.money,
        created_at: now,
        settled_at: None,
        bizpay_order_id: None,
        authorised_at: None,
        capture_at: None,
        buyer_paid: None,
    }
}

#[async_trait]
pub trait Attempts: Send + Sync {
    /// Starts (or resumes) paying `order` with `method`, if the order is payable at `now`.
    async fn start_attempt(
        &self,
        order: &OrderId,
        method: PaymentMethod,
        now: Timestamp,
    ) -> Result<StartOutcome>;

    async fn attempt(&self, id: &AttemptId) -> Result<Option<Attempt>>;

    /// Attempt `id` if it belongs to an order of `merchant`: one lookup, whose cost does not
    /// tell another merchant's attempt from a missing one.
    async fn merchant_attempt(
        &self,
        merchant: &MerchantId,
        id: &AttemptId,
    ) -> Result<Option<Attempt>>;

    /// All attempts of an order, oldest first.
    async fn attempts(&self, order: &OrderId) -> Result<Vec<Attempt>>;

    /// Applies a verified outcome exactly once; enqueues `on_paid` in the same transaction
    /// when the order becomes paid.
    async fn settle(&self, request: SettleRequest) -> Result<SettleOutcome>;

    /// Pending attempts to ask their wallets about ([`Due`]).
    async fn attempts_to_reconcile(&self, due: Due) -> Result<Vec<Attempt>>;

    /// Records that reconciliation asked the wallet about `attempt` at `at`.
    async fn mark_checked(&self, attempt: &AttemptId, at: Timestamp) -> Result<()>;

    /// Records a card authorisation of a pending attempt, once: the attempt stays pending
    /// (held), and its order's expiry becomes the end of the hold.
    async fn authorise(&self, request: Authorise) -> Result<HoldOutcome>;

    /// Voids a pending (authorised or not yet authorised) card attempt, once: the attempt is
    /// cancelled and its order closed, nothing having been taken.
    async fn void(&self, attempt: &AttemptId, at: Timestamp) -> Result<HoldOutcome>;

    /// Authorised attempts whose capture time has come, oldest first.
    async fn captures_due(&self, now: Timestamp, limit: u32) -> Result<Vec<AttemptId>>;
}

/// This table's SQL where both backends agree, written once (`sql!`: `?N` for SQLite,
/// `$N` for PostgreSQL).
pub(crate) mod q {
    use crate::sql::Sql;

    /// A new attempt, unless its id is taken (then the caller tries another).
    pub(crate) const INSERT: Sql = sql!(
        "INSERT INTO attempts (id, order_id, method, status, amount, currency, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING"
    );

    pub(crate) const BY_ID: Sql = sql!("SELECT * FROM attempts WHERE id = ?1");
    pub(crate) const OF_MERCHANT: Sql = sql!(
        "SELECT attempts.* FROM attempts JOIN orders ON orders.id = attempts.order_id
         WHERE attempts.id = ?1 AND orders.merchant_id = ?2"
    );
    pub(crate) const OF_ORDER: Sql =
        sql!("SELECT * FROM attempts WHERE order_id = ?1 ORDER BY created_at, id");
    pub(crate) const AUTHORISE: Sql = sql!(
        "UPDATE attempts SET authorised_at = ?1, capture_at = ?2,
           bizpay_order_id = COALESCE(?3, bizpay_order_id)
         WHERE id = ?4 AND status = 'PROCESSING' AND authorised_at IS NULL"
    );
    pub(crate) const HOLD_ORDER: Sql =
        sql!("UPDATE orders SET expires_at = ?1 WHERE id = ?2 AND status = 'processing'");
    pub(crate) const VOID: Sql = sql!(
        "UPDATE attempts SET status = 'CANCELLED', settled_at = ?1
         WHERE id = ?2 AND status = 'PROCESSING'"
    );
    pub(crate) const CLOSE_VOIDED_ORDER: Sql = sql!(
        "UPDATE orders SET status = 'failed', finished_at = ?1 WHERE id = ?2 AND status = 'processing'"
    );
    pub(crate) const CAPTURES_DUE: Sql = sql!(
        "SELECT id FROM attempts WHERE status = 'PROCESSING' AND capture_at IS NOT NULL
           AND capture_at <= ?1 ORDER BY capture_at, id LIMIT ?2"
    );
    pub(crate) const PENDING_OF_METHOD: Sql = sql!(
        "SELECT * FROM attempts WHERE order_id = ?1 AND method = ?2 AND status = ?3
         ORDER BY created_at DESC LIMIT 1"
    );
}
