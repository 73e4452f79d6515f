//! The `attempts` table, and settling them: under the lock of their order's row, so one
//! outcome is applied once however many gateways receive it at the same instant.

use super::{PgStore, db, due};
use super::{deliveries, orders};
use crate::attempts::{self, Decision, q};
use crate::due::Due;

use crate::{
    Authorise, HoldOutcome, Result, SettleOutcome, SettleRequest, StartOutcome, StoreError,
};
use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Transaction};
use ottgate_core::{
    Attempt, AttemptId, AttemptStatus, CloseReason, MerchantId, Order, OrderId, OrderStatus,
    PaymentMethod, Timestamp,
};

pub(super) async fn by_id(c: &impl GenericClient, id: &AttemptId) -> Result<Option<Attempt>> {
    let row = db::opt(c, q::BY_ID.pg, &[&id.as_str()]).await?;
    row.as_ref().map(db::attempt).transpose()
}

/// Attempt `id` if it belongs to an order of `merchant`: ownership inside the one lookup.
pub(super) async fn of_merchant(
    c: &impl GenericClient,
    merchant: &MerchantId,
    id: &AttemptId,
) -> Result<Option<Attempt>> {
    let row = db::opt(c, q::OF_MERCHANT.pg, &[&id.as_str(), &merchant.as_str()]).await?;
    row.as_ref().map(db::attempt).transpose()
}

/// An order's attempts, oldest first.
pub(super) const OF_ORDER: &str = q::OF_ORDER.pg;

pub(super) async fn of_order(c: &impl GenericClient, order: &OrderId) -> Result<Vec<Attempt>> {
    db::each(db::all(c, OF_ORDER, &[&order.as_str()]).await?, db::attempt)
}

async fn load(tx: &Transaction<'_>, id: &str) -> Result<Attempt> {
    let row = db::opt(tx, q::BY_ID.pg, &[&id]).await?;
    db::attempt(&row.ok_or(StoreError::NotFound("attempt"))?)
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
    let order = db::order(&order?.ok_or(StoreError::NotFound("order"))?)?;
    let pending = pending?;
    if let Err(reason) = order.check_payable(now) {
        if order.status == OrderStatus::Processing {
            orders::close_expired(tx, order_id.as_str(), now).await?;
        }
        return Ok(StartOutcome::NotPayable(reason));
    }
    if let Some(row) = pending {
        return Ok(StartOutcome::Resumed(db::attempt(&row)?));
    }
    Ok(StartOutcome::Created(
        orders::insert_attempt(tx, &order, method, now).await?,
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
    let order = db::order(&order)?;
    // Read under the lock: what another gateway settled before we got it counts.
    let attempt = load(tx, req.attempt_id.as_str()).await?;
    let (settlement, mut order, attempt) = match attempts::decide(order, attempt, req) {
        Decision::Write(settlement, order, attempt) => (settlement, order, attempt),
        Decision::Unchanged(outcome) => return Ok(outcome),
    };
    let at = req.at.epoch_millis();
    let settled = db::opt(
        tx,
        "UPDATE attempts SET status = $1, settled_at = $2, bizpay_order_id = COALESCE($3, bizpay_order_id),
         duplicate_payment = $4, buyer_cny = COALESCE($7, buyer_cny), fx_rate = COALESCE($8, fx_rate)
         WHERE id = $5 AND status = $6 RETURNING *",
        &[
            &settlement.attempt.code(),
            &at,
            &req.bizpay_order_id,
            &settlement.duplicate_payment,
            &attempt.id.as_str(),
            &attempt.status.code(),
            &req.buyer_paid.as_ref().map(|p| crate::rows::cny_to_db(p.cny)),
            &req.buyer_paid.as_ref().and_then(|p| p.rate.as_deref()),
        ],
    )
    .await?;
    // The order's lock keeps the attempt as read; a row not updated is read as it is.
    let mut attempt = match settled {
        Some(row) => db::attempt(&row)?,
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
        order = db::order(&row)?;
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

/// The order of attempt `id`, locked, and the attempt read under the lock.
async fn locked(tx: &Transaction<'_>, id: &AttemptId) -> Result<(Order, Attempt)> {
    let order = db::opt(
        tx,
        "SELECT * FROM orders WHERE id = (SELECT order_id FROM attempts WHERE id = $1) FOR UPDATE",
        &[&id.as_str()],
    )
    .await?
    .ok_or(StoreError::NotFound("attempt"))?;
    Ok((db::order(&order)?, load(tx, id.as_str()).await?))
}

/// Records a card authorisation (the attempt held, the order's expiry moved to the hold's
/// end) under the order's lock, unless [`attempts::decide_authorise`] says otherwise.
pub(super) async fn authorise(tx: &Transaction<'_>, req: &Authorise) -> Result<HoldOutcome> {
    let (order, attempt) = locked(tx, &req.attempt_id).await?;
    if let Some(unchanged) = attempts::decide_authorise(order, attempt, req.at) {
        return Ok(unchanged);
    }
    let (at, capture_at) = (
        req.at.epoch_millis(),
        req.capture_at.map(Timestamp::epoch_millis),
    );
    tx.execute(
        q::AUTHORISE.pg,
        &[
            &at,
            &capture_at,
            &req.bizpay_order_id,
            &req.attempt_id.as_str(),
        ],
    )
    .await?;
    let attempt = load(tx, req.attempt_id.as_str()).await?;
    tx.execute(
        q::HOLD_ORDER.pg,
        &[&req.hold_until.epoch_millis(), &attempt.order_id.as_str()],
    )
    .await?;
    let order = orders::lock(tx, attempt.order_id.as_str()).await?;
    Ok(HoldOutcome::Applied { order, attempt })
}

/// Voids a pending card attempt and closes its order under the order's lock, unless
/// [`attempts::decide_void`] says otherwise.
pub(super) async fn void(
    tx: &Transaction<'_>,
    id: &AttemptId,
    at: Timestamp,
) -> Result<HoldOutcome> {
    let (order, attempt) = locked(tx, id).await?;
    if let Some(unchanged) = attempts::decide_void(order, attempt) {
        return Ok(unchanged);
    }
    let at = at.epoch_millis();
    tx.execute(q::VOID.pg, &[&at, &id.as_str()]).await?;
    let attempt = load(tx, id.as_str()).await?;
    tx.execute(q::CLOSE_VOIDED_ORDER.pg, &[&at, &attempt.order_id.as_str()])
        .await?;
    let order = orders::lock(tx, attempt.order_id.as_str()).await?;
    Ok(HoldOutcome::Applied { order, attempt })
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

    async fn attempts_to_reconcile(&self, due: Due) -> Result<Vec<Attempt>> {
        let rows = in_tx!(self, |tx| due::claim_due_for_check(
            &tx,
            "attempts",
            "PROCESSING",
            due
        ))?;
        db::each(rows, db::attempt)
    }

    async fn mark_checked(&self, attempt: &AttemptId, at: Timestamp) -> Result<()> {
        in_tx!(self, |tx| due::stamp_checked(
            &tx,
            "attempts",
            attempt.as_str(),
            at
        ))
    }

    async fn authorise(&self, request: Authorise) -> Result<HoldOutcome> {
        in_tx!(self, |tx| authorise(&tx, &request))
    }

    async fn void(&self, attempt: &AttemptId, at: Timestamp) -> Result<HoldOutcome> {
        in_tx!(self, |tx| void(&tx, attempt, at))
    }

    async fn captures_due(&self, now: Timestamp, limit: u32) -> Result<Vec<AttemptId>> {
        let rows = db::all(
            &self.client().await?,
            q::CAPTURES_DUE.pg,
            &[&now.epoch_millis(), &i64::from(limit)],
        )
        .await?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get(0)?;
                AttemptId::parse(&id).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect()
    }
}
