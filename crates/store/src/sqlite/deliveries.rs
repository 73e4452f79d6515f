//! The callback outbox: `deliveries` (one per callback owed, written with the state change
//! it announces) and `delivery_attempts` (every try, for the merchant to see).

use ottgate_core::{AttemptId, MerchantId, NotifyId, OrderId, Timestamp};
use sqlx::{SqliteConnection, SqlitePool};
use std::time::Duration;

use crate::rows::{DeliveryAttemptRowDb, DeliveryRow};
use crate::{
    Delivery, DeliveryAttemptRecord, DeliveryAttemptRow, DeliveryState, Event, NewDelivery,
    NextStep, Result,
};

pub(super) async fn of_order(pool: &SqlitePool, order: &OrderId) -> Result<Vec<Delivery>> {
    let rows: Vec<DeliveryRow> =
        sqlx::query_as("SELECT * FROM deliveries WHERE order_id = ? ORDER BY id")
            .bind(order.as_str())
            .fetch_all(pool)
            .await?;
    rows.into_iter().map(DeliveryRow::into_delivery).collect()
}

pub(super) async fn attempts_of(
    pool: &SqlitePool,
    delivery_id: i64,
) -> Result<Vec<DeliveryAttemptRow>> {
    let rows: Vec<DeliveryAttemptRowDb> =
        sqlx::query_as("SELECT * FROM delivery_attempts WHERE delivery_id = ? ORDER BY attempt_no")
            .bind(delivery_id)
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(DeliveryAttemptRowDb::into_row)
        .collect())
}

pub(super) async fn next_due(pool: &SqlitePool) -> Result<Option<Timestamp>> {
    let next: Option<i64> =
        sqlx::query_scalar("SELECT MIN(next_attempt_at) FROM deliveries WHERE state = 'pending'")
            .fetch_one(pool)
            .await?;
    Ok(next.map(Timestamp::from_epoch_millis))
}

pub(super) async fn insert(
    c: &mut SqliteConnection,
    d: &NewDelivery,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO deliveries (notify_id, merchant_id, order_id, attempt_id, event, url, body, state,
         next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
    )
    .bind(d.notify_id.as_str())
    .bind(d.merchant_id.as_str())
    .bind(d.order_id.as_str())
    .bind(d.attempt_id.as_ref().map(AttemptId::as_str))
    .bind(&d.event)
    .bind(&d.url)
    .bind(&d.body)
    .bind(now.epoch_millis())
    .bind(now.epoch_millis())
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Who claims deliveries, and for how long.
pub(super) struct Claim {
    pub(super) now: Timestamp,
    pub(super) lease: Duration,
    pub(super) owner: String,
    pub(super) limit: u32,
}

pub(super) async fn claim_due(c: &mut SqliteConnection, claim: Claim) -> Result<Vec<Delivery>> {
    let rows: Vec<DeliveryRow> = sqlx::query_as(
        "UPDATE deliveries SET lease_owner = ?, lease_until = ?
         WHERE id IN (SELECT id FROM deliveries
                      WHERE state = 'pending' AND next_attempt_at <= ?
                        AND (lease_until IS NULL OR lease_until <= ?)
                      ORDER BY next_attempt_at LIMIT ?)
         RETURNING *",
    )
    .bind(&claim.owner)
    .bind(claim.now.plus(claim.lease).epoch_millis())
    .bind(claim.now.epoch_millis())
    .bind(claim.now.epoch_millis())
    .bind(i64::from(claim.limit))
    .fetch_all(&mut *c)
    .await?;
    let mut out: Vec<Delivery> = rows
        .into_iter()
        .map(DeliveryRow::into_delivery)
        .collect::<Result<_>>()?;
    out.sort_by_key(|d| d.id);
    Ok(out)
}

pub(super) async fn record_attempt(
    c: &mut SqliteConnection,
    r: DeliveryAttemptRecord,
) -> Result<bool> {
    let attempts: Option<i64> = sqlx::query_scalar(
        "SELECT attempts FROM deliveries WHERE id = ? AND lease_owner = ? AND state = 'pending'",
    )
    .bind(r.delivery_id)
    .bind(&r.lease_owner)
    .fetch_optional(&mut *c)
    .await?;
    let Some(attempts) = attempts else {
        return Ok(false);
    };
    let attempt_no = attempts + 1;
    let finished_at = r.started_at.plus(r.duration);
    sqlx::query(
        "INSERT INTO delivery_attempts
         (delivery_id, attempt_no, started_at, duration_ms, http_status, error, response_start)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(r.delivery_id)
    .bind(attempt_no)
    .bind(r.started_at.epoch_millis())
    .bind(i64::try_from(r.duration.as_millis()).unwrap_or(i64::MAX))
    .bind(r.http_status.map(i64::from))
    .bind(&r.error)
    .bind(&r.response_start)
    .execute(&mut *c)
    .await?;
    let (state, next_at, delivered_at) = match r.next {
        NextStep::Delivered => (
            DeliveryState::Delivered,
            None,
            Some(finished_at.epoch_millis()),
        ),
        NextStep::RetryAt(t) => (DeliveryState::Pending, Some(t.epoch_millis()), None),
        NextStep::Exhausted => (DeliveryState::Exhausted, None, None),
    };
    sqlx::query(
        "UPDATE deliveries SET attempts = ?, state = ?, next_attempt_at = ?, delivered_at = ?, last_error = ?,
         lease_owner = NULL, lease_until = NULL WHERE id = ?",
    )
    .bind(attempt_no)
    .bind(state.code())
    .bind(next_at)
    .bind(delivered_at)
    .bind(&r.error)
    .bind(r.delivery_id)
    .execute(&mut *c)
    .await?;
    Ok(true)
}

/// The merchant's callbacks since `since`, newest first, each with its last answer.
pub(super) async fn events(
    pool: &SqlitePool,
    merchant: &MerchantId,
    since: Timestamp,
    limit: u32,
) -> Result<Vec<Event>> {
    use sqlx::{FromRow, Row};
    let rows = sqlx::query(
        "SELECT d.*, (SELECT a.http_status FROM delivery_attempts a WHERE a.delivery_id = d.id
                      ORDER BY a.attempt_no DESC LIMIT 1) AS last_http_status
         FROM deliveries d WHERE d.merchant_id = ? AND d.created_at >= ?
         ORDER BY d.id DESC LIMIT ?",
    )
    .bind(merchant.as_str())
    .bind(since.epoch_millis())
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let status: Option<i64> = row.try_get("last_http_status")?;
            Ok(Event {
                delivery: DeliveryRow::from_row(row)?.into_delivery()?,
                last_http_status: status.and_then(|s| u16::try_from(s).ok()),
            })
        })
        .collect()
}

pub(super) async fn redeliver(
    c: &mut SqliteConnection,
    merchant: MerchantId,
    notify_id: NotifyId,
    now: Timestamp,
) -> Result<Option<Delivery>> {
    let row: Option<DeliveryRow> = sqlx::query_as(
        "UPDATE deliveries SET state = 'pending', next_attempt_at = ?, lease_owner = NULL,
           lease_until = NULL
         WHERE merchant_id = ? AND notify_id = ? RETURNING *",
    )
    .bind(now.epoch_millis())
    .bind(merchant.as_str())
    .bind(notify_id.as_str())
    .fetch_optional(&mut *c)
    .await?;
    row.map(DeliveryRow::into_delivery).transpose()
}

pub(super) async fn prune(c: &mut SqliteConnection, before: Timestamp, limit: u32) -> Result<u64> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM deliveries WHERE state IN ('delivered', 'exhausted') AND created_at < ?
         ORDER BY id LIMIT ?",
    )
    .bind(before.epoch_millis())
    .bind(i64::from(limit))
    .fetch_all(&mut *c)
    .await?;
    for id in &ids {
        sqlx::query("DELETE FROM delivery_attempts WHERE delivery_id = ?")
            .bind(id)
            .execute(&mut *c)
            .await?;
        sqlx::query("DELETE FROM deliveries WHERE id = ?")
            .bind(id)
            .execute(&mut *c)
            .await?;
    }
    Ok(ids.len() as u64)
}
