//! The callback outbox. Gateways claim due deliveries with `FOR UPDATE SKIP LOCKED` and a
//! lease: while a lease holds, no other gateway takes the delivery; when the gateway that
//! held it dies, the lease runs out and another one delivers.

use super::{PgStore, db};
use crate::EventFilter;
use crate::deliveries::q;
use crate::rows::{DeliveryAttemptRowDb, DeliveryRow};
use crate::{
    Delivery, DeliveryAttemptRecord, DeliveryAttemptRow, DeliveryClaim, DeliveryState, Event,
    NewDelivery, NextStep, Result,
};
use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Transaction};
use ottgate_core::{AttemptId, MerchantId, NotifyId, OrderId, Timestamp};

fn delivery(row: &tokio_postgres::Row) -> Result<Delivery> {
    DeliveryRow::from_pg(row)?.into_delivery()
}

pub(super) async fn of_order(c: &impl GenericClient, order: &OrderId) -> Result<Vec<Delivery>> {
    let sql = q::OF_ORDER.pg;
    db::each(db::all(c, sql, &[&order.as_str()]).await?, delivery)
}

pub(super) async fn attempts_of(
    c: &impl GenericClient,
    delivery_id: i64,
) -> Result<Vec<DeliveryAttemptRow>> {
    let sql = q::ATTEMPTS_OF.pg;
    db::each(db::all(c, sql, &[&delivery_id]).await?, |row| {
        Ok(DeliveryAttemptRowDb::from_pg(row)?.into_row())
    })
}

pub(super) async fn next_due(c: &impl GenericClient) -> Result<Option<Timestamp>> {
    let sql = q::NEXT_DUE.pg;
    let next: Option<i64> = db::one(c, sql, &[]).await?.try_get(0)?;
    Ok(next.map(Timestamp::from_epoch_millis))
}

pub(super) async fn insert(tx: &Transaction<'_>, d: &NewDelivery, now: Timestamp) -> Result<()> {
    db::exec(
        tx,
        q::INSERT.pg,
        &[
            &d.notify_id.as_str(),
            &d.merchant_id.as_str(),
            &d.order_id.as_str(),
            &d.attempt_id.as_ref().map(AttemptId::as_str),
            &d.event,
            &d.url,
            &d.body,
            &now.epoch_millis(),
        ],
    )
    .await?;
    Ok(())
}

/// One statement, autocommitted: the rows it leases are locked (and others' skipped) by
/// the statement itself.
pub(super) async fn claim_due(
    c: &impl GenericClient,
    claim: &DeliveryClaim,
) -> Result<Vec<Delivery>> {
    let DeliveryClaim {
        now,
        lease,
        owner,
        limit,
    } = claim;
    let rows = db::all(
        c,
        "UPDATE deliveries SET lease_owner = $1, lease_until = $2
         WHERE id IN (SELECT id FROM deliveries
                      WHERE state = 'pending' AND next_attempt_at <= $3
                        AND (lease_until IS NULL OR lease_until <= $3)
                      ORDER BY next_attempt_at LIMIT $4
                      FOR UPDATE SKIP LOCKED)
         RETURNING *",
        &[
            &owner,
            &now.plus(*lease).epoch_millis(),
            &now.epoch_millis(),
            &i64::from(*limit),
        ],
    )
    .await?;
    let mut out = db::each(rows, delivery)?;
    out.sort_by_key(|d| d.id);
    Ok(out)
}

/// Records an attempt of a callback this worker holds the lease of, and what comes next:
/// one statement, autocommitted. The update takes the delivery only while the lease is
/// still this worker's (re-checked after any concurrent lock, as READ COMMITTED does), and
/// the attempt row goes in only if it did. Whether it was recorded.
pub(super) async fn record_attempt(
    c: &impl GenericClient,
    r: &DeliveryAttemptRecord,
) -> Result<bool> {
    let finished_at = r.started_at.plus(r.duration).epoch_millis();
    let (state, next_at, delivered_at) = match r.next {
        NextStep::Delivered => (DeliveryState::Delivered, None, Some(finished_at)),
        NextStep::RetryAt(t) => (DeliveryState::Pending, Some(t.epoch_millis()), None),
        NextStep::Exhausted => (DeliveryState::Exhausted, None, None),
    };
    let recorded = db::exec(
        c,
        "WITH held AS (
           UPDATE deliveries SET attempts = attempts + 1, state = $3, next_attempt_at = $4,
             delivered_at = $5, last_error = $6, lease_owner = NULL, lease_until = NULL
           WHERE id = $1 AND lease_owner = $2 AND state = 'pending'
           RETURNING id, attempts)
         INSERT INTO delivery_attempts
         (delivery_id, attempt_no, started_at, duration_ms, http_status, error, response_start)
         SELECT id, attempts, $7, $8, $9, $6, $10 FROM held",
        &[
            &r.delivery_id,
            &r.lease_owner,
            &state.code(),
            &next_at,
            &delivered_at,
            &r.error,
            &r.started_at.epoch_millis(),
            &db::millis(r.duration),
            &r.http_status.map(i64::from),
            &r.response_start,
        ],
    )
    .await?;
    Ok(recorded == 1)
}

/// The merchant's callbacks since `since`, newest first, each with its last answer.
pub(super) async fn events(c: &impl GenericClient, f: &EventFilter) -> Result<Vec<Event>> {
    let rows = db::all(
        c,
        q::EVENTS.pg,
        &[
            &f.merchant.as_str(),
            &f.since.epoch_millis(),
            &i64::from(f.limit),
            &f.before.unwrap_or(i64::MAX),
        ],
    )
    .await?;
    db::each(rows, |row| {
        let status: Option<i64> = row.try_get("last_http_status")?;
        Ok(Event {
            delivery: delivery(row)?,
            last_http_status: status.and_then(|s| u16::try_from(s).ok()),
            reference: row.try_get("reference")?,
        })
    })
}

pub(super) async fn redeliver(
    tx: &Transaction<'_>,
    merchant: &MerchantId,
    notify_id: &NotifyId,
    now: Timestamp,
) -> Result<Option<Delivery>> {
    let row = db::opt(
        tx,
        // A callback on its way now (pending, its lease live) is not sent beside itself:
        // this redelivery joins that attempt, which keeps its lease (and records itself).
        q::REDELIVER.pg,
        &[&now.epoch_millis(), &merchant.as_str(), &notify_id.as_str()],
    )
    .await?;
    row.as_ref().map(delivery).transpose()
}

pub(super) async fn prune(tx: &Transaction<'_>, before: Timestamp, limit: u32) -> Result<u64> {
    let ids: Vec<i64> = db::all(
        tx,
        q::TO_PRUNE.pg,
        &[&before.epoch_millis(), &i64::from(limit)],
    )
    .await?
    .iter()
    .map(|row| row.try_get(0))
    .collect::<std::result::Result<_, _>>()?;
    db::exec(
        tx,
        "DELETE FROM delivery_attempts WHERE delivery_id = ANY($1)",
        &[&ids],
    )
    .await?;
    db::exec(tx, "DELETE FROM deliveries WHERE id = ANY($1)", &[&ids]).await?;
    Ok(ids.len() as u64)
}

#[async_trait]
impl crate::Deliveries for PgStore {
    async fn claim_due_deliveries(&self, claim: DeliveryClaim) -> Result<Vec<Delivery>> {
        claim_due(&self.client().await?, &claim).await
    }

    async fn record_delivery_attempt(&self, record: DeliveryAttemptRecord) -> Result<bool> {
        record_attempt(&self.client().await?, &record).await
    }

    async fn deliveries_for_order(&self, order: &OrderId) -> Result<Vec<Delivery>> {
        of_order(&self.client().await?, order).await
    }

    async fn delivery_attempts(&self, delivery_id: i64) -> Result<Vec<DeliveryAttemptRow>> {
        attempts_of(&self.client().await?, delivery_id).await
    }

    async fn next_delivery_due(&self) -> Result<Option<Timestamp>> {
        next_due(&self.client().await?).await
    }

    async fn events(&self, filter: EventFilter) -> Result<Vec<Event>> {
        events(&self.client().await?, &filter).await
    }

    async fn prune_events(&self, before: Timestamp, limit: u32) -> Result<u64> {
        in_tx!(self, |tx| prune(&tx, before, limit))
    }

    async fn redeliver(
        &self,
        merchant: &MerchantId,
        notify_id: &NotifyId,
        now: Timestamp,
    ) -> Result<Option<Delivery>> {
        in_tx!(self, |tx| redeliver(&tx, merchant, notify_id, now))
    }
}
