//! The `attempts` table, and settling them: under the lock of their order's row, so one
//! outcome is applied once however many gateways receive it at the same instant.

use super::{PgStore, db};
use super::{deliveries, orders};
use crate::attempts::q;
use crate::rows::{self, AttemptRow};
use crate::{Result, SettleOutcome, SettleRequest, StartOutcome, StoreError};
use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Transaction};
use ottgate_core::order::settle as transition;
use ottgate_core::{
    Attempt, AttemptId, AttemptStatus, CloseReason, MerchantId, Order, OrderId, OrderStatus,
    PaymentMethod, Timestamp,
};

pub(super) fn attempt(row: &tokio_postgres::Row) -> Result<Attempt> {
    AttemptRow::from_pg(row)?.into_attempt()
}

pub(super) async fn by_id(c: &impl GenericClient, id: &AttemptId) -> Result<Option<Attempt>> {
    let row = db::opt(c, q::BY_ID.pg, &[&id.as_str()]).await?;
    row.as_ref().map(attempt).transpose()
}

/// Attempt `id` if it belongs to an order of `merchant`: ownership inside the one lookup.
pub(super) async fn of_merchant(
    c: &impl GenericClient,
    merchant: &MerchantId,
    id: &AttemptId,
) -> Result<Option<Attempt>> {
    let row = db::opt(c, q::OF_MERCHANT.pg, &[&id.as_str(), &merchant.as_str()]).await?;
    row.as_ref().map(attempt).transpose()
}

/// An order's attempts, oldest first.
pub(super) const OF_ORDER: &str = q::OF_ORDER.pg;

pub(super) async fn of_order(c: &impl GenericClient, order: &OrderId) -> Result<Vec<Attempt>> {
    db::each(db::all(c, OF_ORDER, &[&order.as_str()]).await?, attempt)
}

async fn load(tx: &Transaction<'_>, id: &str) -> Result<Attempt> {
    let row = db::opt(tx, q::BY_ID.pg, &[&id]).await?;
    attempt(&row.ok_or(StoreError::NotFound("attempt"))?)
}

/// Inserts a new pending attempt of `order`, with a fresh id if the generated one
/// collides with another gateway's.
pub(super) async fn insert(
    tx: &Transaction<'_>,
    order: &Order,
    method: PaymentMethod,
    now: Timestamp,
) -> Result<Attempt> {
    for _ in 0..super::ID_RETRIES {
        let attempt = Attempt {
            id: AttemptId::generate(now),
            order_id: order.id.clone(),
            method,
            status: AttemptStatus::Pending,
            money: order.money,
            created_at: now,
            settled_at: None,
            bizpay_order_id: None,
        };
        let inserted = db::exec(
            tx,
            "INSERT INTO attempts (id, order_id, method, status, amount, currency, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            &[
                &attempt.id.as_str(),
                &attempt.order_id.as_str(),
                &method.code(),
                &attempt.status.code(),
                &rows::amount_to_db(attempt.money.amount),
                &attempt.money.currency.code(),
                &now.epoch_millis(),
            ],
        )
        .await?;
        if inserted == 1 {
            return Ok(attempt);
        }
    }
    Err(StoreError::Duplicate("attempt id"))
}

/// Starts (or resumes) paying an order. The order's lock and the pending attempt are asked
/// for together (pipelined: the second statement runs once the first holds the lock, so it
/// sees every attempt committed before), saving a round trip.
pub(super) async fn start(
    tx: &Transaction<'_>,
    order_id: &OrderId,
    method: PaymentMethod,
    now: Timestamp,
) -> Result<StartOutcome> {
    let lock = tx.prepare_cached(orders::LOCK).await?;
    let pending = tx.prepare_cached(q::PENDING_OF_METHOD.pg).await?;
    let (id, method_code, status) = (
        order_id.as_str(),
        method.code(),
        AttemptStatus::Pending.code(),
    );
    let by_id: db::Params<'_> = &[&id];
    let by_method: db::Params<'_> = &[&id, &method_code, &status];
    // `biased`: polled (so sent) in this order.
    let (order, pending) = tokio::join!(
        biased;
        tx.query_opt(&lock, by_id),
        tx.query_opt(&pending, by_method),
    );
    let order = orders::order(&order?.ok_or(StoreError::NotFound("order"))?)?;
    let pending = pending?;
    if let Err(reason) = order.check_payable(now) {
        if order.status == OrderStatus::Processing {
            orders::close_expired(tx, order_id.as_str(), now).await?;
        }
        return Ok(StartOutcome::NotPayable(reason));
    }
    if let Some(row) = pending {
        return Ok(StartOutcome::Resumed(attempt(&row)?));
    }
    Ok(StartOutcome::Created(
        insert(tx, &order, method, now).await?,
    ))
}

/// Applies a verified outcome; the callback row goes in with it. Seven round trips: BEGIN,
/// the order locked by its attempt's id, the attempt read under the lock, both updates
/// (returning the rows as they now are), the callback, COMMIT.
pub(super) async fn settle(tx: &Transaction<'_>, req: &SettleRequest) -> Result<SettleOutcome> {
    let order = db::opt(
        tx,
        "SELECT * FROM orders WHERE id = (SELECT order_id FROM attempts WHERE id = $1) FOR UPDATE",
        &[&req.attempt_id.as_str()],
    )
    .await?
    .ok_or(StoreError::NotFound("attempt"))?;
    let mut order = orders::order(&order)?;
    // Read under the lock: what another gateway settled before we got it counts.
    let attempt = load(tx, req.attempt_id.as_str()).await?;
    let settlement = match transition(order.status_at(req.at), attempt.status, req.outcome) {
        Ok(None) => return Ok(SettleOutcome::AlreadyApplied { order, attempt }),
        Err(error) => {
            return Ok(SettleOutcome::Rejected {
                error,
                order,
                attempt,
            });
        }
        Ok(Some(s)) => s,
    };
    let at = req.at.epoch_millis();
    let settled = db::opt(
        tx,
        "UPDATE attempts SET status = $1, settled_at = $2, bizpay_order_id = COALESCE($3, bizpay_order_id),
         duplicate_payment = $4 WHERE id = $5 AND status = $6 RETURNING *",
        &[
            &settlement.attempt.code(),
            &at,
            &req.bizpay_order_id,
            &settlement.duplicate_payment,
            &attempt.id.as_str(),
            &attempt.status.code(),
        ],
    )
    .await?;
    // The order's lock keeps the attempt as read; a row not updated is read as it is.
    let mut attempt = match settled {
        Some(row) => self::attempt(&row)?,
        None => load(tx, attempt.id.as_str()).await?,
    };
    if settlement.order != order.status {
        let finished = !matches!(settlement.order, OrderStatus::Processing);
        let row = db::one(
            tx,
            "UPDATE orders SET status = $1,
               paid_attempt = CASE WHEN $2 THEN $3 ELSE paid_attempt END,
               finished_at = CASE WHEN $4 THEN $5 ELSE finished_at END,
               paid_after_close = paid_after_close OR $6
             WHERE id = $7 RETURNING *",
            &[
                &settlement.order.code(),
                &settlement.order_paid,
                &attempt.id.as_str(),
                &finished,
                &at,
                &settlement.paid_after_close,
                &order.id.as_str(),
            ],
        )
        .await?;
        order = orders::order(&row)?;
        if matches!(settlement.order, OrderStatus::Closed(CloseReason::Expired)) {
            // It closes pending attempts too: both as it left them.
            orders::close_expired(tx, order.id.as_str(), req.at).await?;
            order = orders::lock(tx, order.id.as_str()).await?;
            attempt = load(tx, attempt.id.as_str()).await?;
        }
    }
    if settlement.order_paid
        && let Some(delivery) = &req.on_paid
    {
        deliveries::insert(tx, delivery, req.at).await?;
    }
    Ok(SettleOutcome::Applied {
        settlement,
        order,
        attempt,
    })
}

/// Which rows reconciliation takes: see [`crate::Store::attempts_to_reconcile`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Due {
    pub(super) created_before: Timestamp,
    pub(super) checked_before: Timestamp,
    pub(super) now: Timestamp,
    pub(super) limit: u32,
}

/// Rows of `table` (attempts or refunds) still `pending`, created at or before
/// `created_before` and not asked about since `checked_before`, oldest first, each marked
/// checked at `now`; rows another gateway is taking at this moment are skipped.
pub(super) async fn claim_due_for_check(
    tx: &Transaction<'_>,
    table: &'static str,
    pending: &'static str,
    due: Due,
) -> Result<Vec<tokio_postgres::Row>> {
    let sql = format!(
        "UPDATE {table} SET last_checked_at = $1 WHERE id IN
           (SELECT id FROM {table} WHERE status = $2 AND created_at <= $3
              AND (last_checked_at IS NULL OR last_checked_at <= $4)
            ORDER BY created_at LIMIT $5 FOR UPDATE SKIP LOCKED)
         RETURNING *"
    );
    let mut rows = db::all(
        tx,
        &sql,
        &[
            &due.now.epoch_millis(),
            &pending,
            &due.created_before.epoch_millis(),
            &due.checked_before.epoch_millis(),
            &i64::from(due.limit),
        ],
    )
    .await?;
    rows.sort_by_key(|row| {
        (
            row.try_get::<_, i64>("created_at").unwrap_or_default(),
            row.try_get::<_, String>("id").unwrap_or_default(),
        )
    });
    Ok(rows)
}

/// Records that reconciliation asked about row `id` of `table` at `at`.
pub(super) async fn stamp_checked(
    tx: &Transaction<'_>,
    table: &'static str,
    id: &str,
    at: Timestamp,
) -> Result<()> {
    let sql = format!("UPDATE {table} SET last_checked_at = $1 WHERE id = $2");
    db::exec(tx, &sql, &[&at.epoch_millis(), &id]).await?;
    Ok(())
}

#[async_trait]
impl crate::Attempts for PgStore {
    async fn start_attempt(
        &self,
        order: &OrderId,
        method: PaymentMethod,
        now: Timestamp,
    ) -> Result<StartOutcome> {
        in_tx!(self, |tx| start(&tx, order, method, now))
    }

    async fn attempt(&self, id: &AttemptId) -> Result<Option<Attempt>> {
        by_id(&self.client().await?, id).await
    }

    async fn merchant_attempt(
        &self,
        merchant: &MerchantId,
        id: &AttemptId,
    ) -> Result<Option<Attempt>> {
        of_merchant(&self.client().await?, merchant, id).await
    }

    async fn attempts(&self, order: &OrderId) -> Result<Vec<Attempt>> {
        of_order(&self.client().await?, order).await
    }

    async fn settle(&self, request: SettleRequest) -> Result<SettleOutcome> {
        in_tx!(self, |tx| settle(&tx, &request))
    }

    async fn attempts_to_reconcile(
        &self,
        created_before: Timestamp,
        checked_before: Timestamp,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<Attempt>> {
        let due = Due {
            created_before,
            checked_before,
            now,
            limit,
        };
        let rows = in_tx!(self, |tx| claim_due_for_check(
            &tx,
            "attempts",
            "PROCESSING",
            due
        ))?;
        db::each(rows, attempt)
    }

    async fn mark_checked(&self, attempt: &AttemptId, at: Timestamp) -> Result<()> {
        in_tx!(self, |tx| stamp_checked(
            &tx,
            "attempts",
            attempt.as_str(),
            at
        ))
    }
}
