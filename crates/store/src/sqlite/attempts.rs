//! The `attempts` table: each method a buyer tried, and the one transition function that
//! settles them (with their order, and the callback it owes).

use super::{SqliteStore, db};
use super::{deliveries, orders};
use crate::attempts::{self, Decision, q};
use crate::due::Due;
use crate::rows::AttemptRow;
use crate::{
    Authorise, HoldOutcome, Result, SettleOutcome, SettleRequest, StartOutcome, StoreError,
};
use async_trait::async_trait;
use ottgate_core::{
    Attempt, AttemptId, AttemptStatus, CloseReason, MerchantId, OrderId, OrderStatus,
    PaymentMethod, Timestamp,
};
use rusqlite::{Connection, params};

fn one(c: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<Option<Attempt>> {
    db::opt(c, sql, params, AttemptRow::from_sqlite)?
        .map(AttemptRow::into_attempt)
        .transpose()
}

pub(super) fn by_id(c: &Connection, id: &AttemptId) -> Result<Option<Attempt>> {
    one(c, q::BY_ID.sqlite, [id.as_str()])
}

/// Attempt `id` if it belongs to an order of `merchant`: ownership inside the one lookup.
pub(super) fn of_merchant(
    c: &Connection,
    merchant: &MerchantId,
    id: &AttemptId,
) -> Result<Option<Attempt>> {
    one(c, q::OF_MERCHANT.sqlite, [id.as_str(), merchant.as_str()])
}

pub(super) fn of_order(c: &Connection, order: &OrderId) -> Result<Vec<Attempt>> {
    db::all(
        c,
        q::OF_ORDER.sqlite,
        [order.as_str()],
        AttemptRow::from_sqlite,
    )?
    .into_iter()
    .map(AttemptRow::into_attempt)
    .collect()
}

pub(super) fn load(c: &Connection, id: &str) -> Result<Attempt> {
    one(c, q::BY_ID.sqlite, [id])?.ok_or(StoreError::NotFound("attempt"))
}

pub(super) fn start(
    c: &Connection,
    order_id: &OrderId,
    method: PaymentMethod,
    now: Timestamp,
) -> Result<StartOutcome> {
    let order = orders::load(c, order_id.as_str())?;
    if let Err(reason) = order.check_payable(now) {
        if order.status == OrderStatus::Processing {
            orders::close_expired(c, order_id.as_str(), now)?;
        }
        return Ok(StartOutcome::NotPayable(reason));
    }
    let pending = one(
        c,
        q::PENDING_OF_METHOD.sqlite,
        [
            order_id.as_str(),
            method.code(),
            AttemptStatus::Pending.code(),
        ],
    )?;
    if let Some(attempt) = pending {
        return Ok(StartOutcome::Resumed(attempt));
    }
    Ok(StartOutcome::Created(orders::insert_attempt(
        c, &order, method, now,
    )?))
}

/// Applies a verified outcome with conditional updates; the callback row goes in with it.
pub(super) fn settle(c: &Connection, req: &SettleRequest) -> Result<SettleOutcome> {
    let attempt = load(c, req.attempt_id.as_str())?;
    let order = orders::load(c, attempt.order_id.as_str())?;
    let (settlement, order, attempt) = match attempts::decide(order, attempt, req) {
        Decision::Write(settlement, order, attempt) => (settlement, order, attempt),
        Decision::Unchanged(outcome) => return Ok(outcome),
    };
    db::exec(
        c,
        "UPDATE attempts SET status = ?1, settled_at = ?2, bizpay_order_id = COALESCE(?3, bizpay_order_id),
         duplicate_payment = ?4, buyer_cny = COALESCE(?7, buyer_cny), fx_rate = COALESCE(?8, fx_rate)
         WHERE id = ?5 AND status = ?6",
        params![
            settlement.attempt.code(),
            req.at.epoch_millis(),
            &req.bizpay_order_id,
            settlement.duplicate_payment,
            attempt.id.as_str(),
            attempt.status.code(),
            req.buyer_paid.as_ref().map(|p| crate::rows::cny_to_db(p.cny)),
            req.buyer_paid.as_ref().and_then(|p| p.rate.as_deref()),
        ],
    )?;
    if settlement.order != order.status {
        let finished = !matches!(settlement.order, OrderStatus::Processing);
        db::exec(
            c,
            "UPDATE orders SET status = ?1,
               paid_attempt = CASE WHEN ?2 THEN ?3 ELSE paid_attempt END,
               finished_at = CASE WHEN ?4 THEN ?5 ELSE finished_at END,
               paid_after_close = paid_after_close OR ?6
             WHERE id = ?7",
            params![
                settlement.order.code(),
                settlement.order_paid,
                attempt.id.as_str(),
                finished,
                req.at.epoch_millis(),
                settlement.paid_after_close,
                order.id.as_str(),
            ],
        )?;
        if matches!(settlement.order, OrderStatus::Closed(CloseReason::Expired)) {
            orders::close_expired(c, order.id.as_str(), req.at)?;
        }
    }
    if settlement.order_paid
        && let Some(delivery) = &req.on_paid
    {
        deliveries::insert(c, delivery, req.at)?;
    }
    let order = orders::load(c, order.id.as_str())?;
    let attempt = load(c, attempt.id.as_str())?;
    Ok(SettleOutcome::Applied {
        settlement,
        order,
        attempt,
    })
}

/// Records a card authorisation (the attempt held, the order's expiry moved to the hold's
/// end), unless [`attempts::decide_authorise`] says otherwise.
pub(super) fn authorise(c: &Connection, req: &Authorise) -> Result<HoldOutcome> {
    let attempt = load(c, req.attempt_id.as_str())?;
    let order = orders::load(c, attempt.order_id.as_str())?;
    if let Some(unchanged) = attempts::decide_authorise(order, attempt, req.at) {
        return Ok(unchanged);
    }
    db::exec(
        c,
        q::AUTHORISE.sqlite,
        params![
            req.at.epoch_millis(),
            req.capture_at.map(Timestamp::epoch_millis),
            &req.bizpay_order_id,
            req.attempt_id.as_str(),
        ],
    )?;
    let attempt = load(c, req.attempt_id.as_str())?;
    db::exec(
        c,
        q::HOLD_ORDER.sqlite,
        params![req.hold_until.epoch_millis(), attempt.order_id.as_str()],
    )?;
    let order = orders::load(c, attempt.order_id.as_str())?;
    Ok(HoldOutcome::Applied { order, attempt })
}

/// Voids a pending card attempt and closes its order, unless [`attempts::decide_void`]
/// says otherwise.
pub(super) fn void(c: &Connection, id: &AttemptId, at: Timestamp) -> Result<HoldOutcome> {
    let attempt = load(c, id.as_str())?;
    let order = orders::load(c, attempt.order_id.as_str())?;
    if let Some(unchanged) = attempts::decide_void(order, attempt) {
        return Ok(unchanged);
    }
    db::exec(c, q::VOID.sqlite, params![at.epoch_millis(), id.as_str()])?;
    let attempt = load(c, id.as_str())?;
    db::exec(
        c,
        q::CLOSE_VOIDED_ORDER.sqlite,
        params![at.epoch_millis(), attempt.order_id.as_str()],
    )?;
    let order = orders::load(c, attempt.order_id.as_str())?;
    Ok(HoldOutcome::Applied { order, attempt })
}

fn captures_due(c: &Connection, now: Timestamp, limit: u32) -> Result<Vec<AttemptId>> {
    let ids: Vec<String> = db::all(
        c,
        q::CAPTURES_DUE.sqlite,
        params![now.epoch_millis(), i64::from(limit)],
        db::first,
    )?;
    ids.iter()
        .map(|id| AttemptId::parse(id).map_err(|e| StoreError::Corrupt(e.to_string())))
        .collect()
}

#[async_trait]
impl crate::Attempts for SqliteStore {
    async fn start_attempt(
        &self,
        order: &OrderId,
        method: PaymentMethod,
        now: Timestamp,
    ) -> Result<StartOutcome> {
        let order = order.clone();
        self.engine
            .write(move |c| start(c, &order, method, now))
            .await
    }

    async fn attempt(&self, id: &AttemptId) -> Result<Option<Attempt>> {
        let id = id.clone();
        self.engine.read(move |c| by_id(c, &id)).await
    }

    async fn merchant_attempt(
        &self,
        merchant: &MerchantId,
        id: &AttemptId,
    ) -> Result<Option<Attempt>> {
        let (merchant, id) = (merchant.clone(), id.clone());
        self.engine
            .read(move |c| of_merchant(c, &merchant, &id))
            .await
    }

    async fn attempts(&self, order: &OrderId) -> Result<Vec<Attempt>> {
        let order = order.clone();
        self.engine.read(move |c| of_order(c, &order)).await
    }

    async fn settle(&self, request: SettleRequest) -> Result<SettleOutcome> {
        self.engine.write(move |c| settle(c, &request)).await
    }

    async fn attempts_to_reconcile(&self, due: Due) -> Result<Vec<Attempt>> {
        let rows = self
            .claim_due_for_check("attempts", "PROCESSING", due, AttemptRow::from_sqlite)
            .await?;
        let mut attempts = rows
            .into_iter()
            .map(AttemptRow::into_attempt)
            .collect::<Result<Vec<_>>>()?;
        attempts.sort_by_key(|a| (a.created_at, a.id.clone()));
        Ok(attempts)
    }

    async fn mark_checked(&self, attempt: &AttemptId, at: Timestamp) -> Result<()> {
        self.stamp_checked("attempts", attempt.to_string(), at)
            .await
    }

    async fn authorise(&self, request: Authorise) -> Result<HoldOutcome> {
        self.engine.write(move |c| authorise(c, &request)).await
    }

    async fn void(&self, attempt: &AttemptId, at: Timestamp) -> Result<HoldOutcome> {
        let attempt = attempt.clone();
        self.engine.write(move |c| void(c, &attempt, at)).await
    }

    async fn captures_due(&self, now: Timestamp, limit: u32) -> Result<Vec<AttemptId>> {
        self.engine.read(move |c| captures_due(c, now, limit)).await
    }
}
