//! The callback outbox: `deliveries` (one per callback owed, written with the state change
//! it announces) and `delivery_attempts` (every try, for the merchant to see).

use super::{SqliteStore, db};
use crate::EventFilter;
use crate::deliveries::q;
use crate::rows::{DeliveryAttemptRowDb, DeliveryRow};
use crate::{
    Delivery, DeliveryAttemptRecord, DeliveryAttemptRow, DeliveryClaim, DeliveryState, Event,
    NewDelivery, NextStep, Result,
};
use async_trait::async_trait;
use ottgate_core::{AttemptId, MerchantId, NotifyId, OrderId, Timestamp};
use rusqlite::{Connection, params};

fn many(c: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<Vec<Delivery>> {
    db::all(c, sql, params, DeliveryRow::from_sqlite)?
        .into_iter()
        .map(DeliveryRow::into_delivery)
        .collect()
}

pub(super) fn of_order(c: &Connection, order: &OrderId) -> Result<Vec<Delivery>> {
    many(c, q::OF_ORDER.sqlite, [order.as_str()])
}

pub(super) fn attempts_of(c: &Connection, delivery_id: i64) -> Result<Vec<DeliveryAttemptRow>> {
    Ok(db::all(
        c,
        q::ATTEMPTS_OF.sqlite,
        [delivery_id],
        DeliveryAttemptRowDb::from_sqlite,
    )?
    .into_iter()
    .map(DeliveryAttemptRowDb::into_row)
    .collect())
}

pub(super) fn next_due(c: &Connection) -> Result<Option<Timestamp>> {
    let next: Option<i64> = db::one(c, q::NEXT_DUE.sqlite, [], db::first)?;
    Ok(next.map(Timestamp::from_epoch_millis))
}

pub(super) fn insert(c: &Connection, d: &NewDelivery, now: Timestamp) -> Result<()> {
    db::exec(
        c,
        q::INSERT.sqlite,
        params![
            d.notify_id.as_str(),
            d.merchant_id.as_str(),
            d.order_id.as_str(),
            d.attempt_id.as_ref().map(AttemptId::as_str),
            &d.event,
            &d.url,
            &d.body,
            now.epoch_millis(),
        ],
    )?;
    Ok(())
}

/// Who claims deliveries, and for how long.
pub(super) fn claim_due(c: &Connection, claim: &DeliveryClaim) -> Result<Vec<Delivery>> {
    let mut out = many(
        c,
        "UPDATE deliveries SET lease_owner = ?1, lease_until = ?2
         WHERE id IN (SELECT id FROM deliveries
                      WHERE state = 'pending' AND next_attempt_at <= ?3
                        AND (lease_until IS NULL OR lease_until <= ?3)
                      ORDER BY next_attempt_at LIMIT ?4)
         RETURNING *",
        params![
            &claim.owner,
            claim.now.plus(claim.lease).epoch_millis(),
            claim.now.epoch_millis(),
            i64::from(claim.limit),
        ],
    )?;
    out.sort_by_key(|d| d.id);
    Ok(out)
}

pub(super) fn record_attempt(c: &Connection, r: &DeliveryAttemptRecord) -> Result<bool> {
    let attempts: Option<i64> = db::opt(
        c,
        "SELECT attempts FROM deliveries WHERE id = ?1 AND lease_owner = ?2 AND state = 'pending'",
        params![r.delivery_id, &r.lease_owner],
        db::first,
    )?;
    let Some(attempts) = attempts else {
        return Ok(false);
    };
    let attempt_no = attempts + 1;
    let finished_at = r.started_at.plus(r.duration);
    db::exec(
        c,
        "INSERT INTO delivery_attempts
         (delivery_id, attempt_no, started_at, duration_ms, http_status, error, response_start)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            r.delivery_id,
            attempt_no,
            r.started_at.epoch_millis(),
            db::millis(r.duration),
            r.http_status.map(i64::from),
            &r.error,
            &r.response_start,
        ],
    )?;
    let (state, next_at, delivered_at) = match r.next {
        NextStep::Delivered => (
            DeliveryState::Delivered,
            None,
            Some(finished_at.epoch_millis()),
        ),
        NextStep::RetryAt(t) => (DeliveryState::Pending, Some(t.epoch_millis()), None),
        NextStep::Exhausted => (DeliveryState::Exhausted, None, None),
    };
    db::exec(
        c,
        "UPDATE deliveries SET attempts = ?1, state = ?2, next_attempt_at = ?3, delivered_at = ?4,
         last_error = ?5, lease_owner = NULL, lease_until = NULL WHERE id = ?6",
        params![
            attempt_no,
            state.code(),
            next_at,
            delivered_at,
            &r.error,
            r.delivery_id,
        ],
    )?;
    Ok(true)
}

/// The merchant's callbacks since `since`, newest first, each with its last answer.
pub(super) fn events(c: &Connection, f: &EventFilter) -> Result<Vec<Event>> {
    let rows = db::all(
        c,
        q::EVENTS.sqlite,
        params![
            f.merchant.as_str(),
            f.since.epoch_millis(),
            i64::from(f.limit),
            f.before.unwrap_or(i64::MAX)
        ],
        |row| {
            let status: Option<i64> = row.get("last_http_status")?;
            let reference: Option<String> = row.get("reference")?;
            Ok((DeliveryRow::from_sqlite(row)?, status, reference))
        },
    )?;
    rows.into_iter()
        .map(|(row, status, reference)| {
            Ok(Event {
                delivery: row.into_delivery()?,
                last_http_status: status.and_then(|s| u16::try_from(s).ok()),
                reference,
            })
        })
        .collect()
}

pub(super) fn redeliver(
    c: &Connection,
    merchant: &MerchantId,
    notify_id: &NotifyId,
    now: Timestamp,
) -> Result<Option<Delivery>> {
    db::opt(
        c,
        // A callback on its way now (pending, its lease live) is not sent beside itself:
        // this redelivery joins that attempt, which keeps its lease (and records itself).
        q::REDELIVER.sqlite,
        params![now.epoch_millis(), merchant.as_str(), notify_id.as_str()],
        DeliveryRow::from_sqlite,
    )?
    .map(DeliveryRow::into_delivery)
    .transpose()
}

pub(super) fn prune(c: &Connection, before: Timestamp, limit: u32) -> Result<u64> {
    let ids: Vec<i64> = db::all(
        c,
        q::TO_PRUNE.sqlite,
        params![before.epoch_millis(), i64::from(limit)],
        db::first,
    )?;
    for id in &ids {
        db::exec(
            c,
            "DELETE FROM delivery_attempts WHERE delivery_id = ?1",
            [id],
        )?;
        db::exec(c, "DELETE FROM deliveries WHERE id = ?1", [id])?;
    }
    Ok(ids.len() as u64)
}

#[async_trait]
impl crate::Deliveries for SqliteStore {
    async fn claim_due_deliveries(&self, claim: DeliveryClaim) -> Result<Vec<Delivery>> {
        self.engine.write(move |c| claim_due(c, &claim)).await
    }

    async fn record_delivery_attempt(&self, record: DeliveryAttemptRecord) -> Result<bool> {
        self.engine.write(move |c| record_attempt(c, &record)).await
    }

    async fn deliveries_for_order(&self, order: &OrderId) -> Result<Vec<Delivery>> {
        let order = order.clone();
        self.engine.read(move |c| of_order(c, &order)).await
    }

    async fn delivery_attempts(&self, delivery_id: i64) -> Result<Vec<DeliveryAttemptRow>> {
        self.engine.read(move |c| attempts_of(c, delivery_id)).await
    }

    async fn next_delivery_due(&self) -> Result<Option<Timestamp>> {
        self.engine.read(next_due).await
    }

    async fn events(&self, filter: EventFilter) -> Result<Vec<Event>> {
        self.engine.read(move |c| events(c, &filter)).await
    }

    async fn prune_events(&self, before: Timestamp, limit: u32) -> Result<u64> {
        self.engine.write(move |c| prune(c, before, limit)).await
    }

    async fn redeliver(
        &self,
        merchant: &MerchantId,
        notify_id: &NotifyId,
        now: Timestamp,
    ) -> Result<Option<Delivery>> {
        let (merchant, notify_id) = (merchant.clone(), notify_id.clone());
        self.engine
            .write(move |c| redeliver(c, &merchant, &notify_id, now))
            .await
    }
}
