//! The `orders` table: what merchants asked to be paid, and whether it was.

use ottgate_core::{
    Attempt, AttemptStatus, CheckoutToken, MerchantId, MerchantRef, Order, OrderId, Timestamp,
};
use sqlx::{SqliteConnection, SqlitePool};

use super::{ID_RETRIES, attempts, is_unique_violation};
use crate::rows::{self, AttemptRow, OrderRow};
use crate::{CreateOutcome, NewOrder, Result, StoreError};

async fn one(pool: &SqlitePool, sql: &str, value: &str) -> Result<Option<Order>> {
    let row: Option<OrderRow> = sqlx::query_as(sql).bind(value).fetch_optional(pool).await?;
    row.map(OrderRow::into_order).transpose()
}

pub(super) async fn by_id(pool: &SqlitePool, id: &OrderId) -> Result<Option<Order>> {
    one(pool, "SELECT * FROM orders WHERE id = ?", id.as_str()).await
}

pub(super) async fn by_token(pool: &SqlitePool, token: &CheckoutToken) -> Result<Option<Order>> {
    one(pool, "SELECT * FROM orders WHERE token = ?", token.as_str()).await
}

pub(super) async fn by_reference(
    pool: &SqlitePool,
    merchant: &MerchantId,
    reference: &MerchantRef,
) -> Result<Option<Order>> {
    let row: Option<OrderRow> =
        sqlx::query_as("SELECT * FROM orders WHERE merchant_id = ? AND reference = ?")
            .bind(merchant.as_str())
            .bind(reference.as_str())
            .fetch_optional(pool)
            .await?;
    row.map(OrderRow::into_order).transpose()
}

pub(super) async fn with_reference(
    pool: &SqlitePool,
    reference: &MerchantRef,
    limit: u32,
) -> Result<Vec<Order>> {
    let rows: Vec<OrderRow> =
        sqlx::query_as("SELECT * FROM orders WHERE reference = ? ORDER BY created_at LIMIT ?")
            .bind(reference.as_str())
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
    rows.into_iter().map(OrderRow::into_order).collect()
}

/// An order and its attempts as of one moment: one read transaction (in WAL mode, one
/// snapshot).
pub(super) async fn with_attempts(
    pool: &SqlitePool,
    id: &OrderId,
) -> Result<Option<(Order, Vec<Attempt>)>> {
    let mut tx = pool.begin().await?;
    let row: Option<OrderRow> = sqlx::query_as("SELECT * FROM orders WHERE id = ?")
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let rows: Vec<AttemptRow> =
        sqlx::query_as("SELECT * FROM attempts WHERE order_id = ? ORDER BY created_at, id")
            .bind(id.as_str())
            .fetch_all(&mut *tx)
            .await?;
    tx.commit().await?;
    let attempts = rows
        .into_iter()
        .map(AttemptRow::into_attempt)
        .collect::<Result<_>>()?;
    Ok(Some((row.into_order()?, attempts)))
}

pub(super) async fn load(c: &mut SqliteConnection, id: &str) -> Result<Order> {
    let row: Option<OrderRow> = sqlx::query_as("SELECT * FROM orders WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut *c)
        .await?;
    row.ok_or(StoreError::NotFound("order"))?.into_order()
}

pub(super) async fn create(c: &mut SqliteConnection, new: NewOrder) -> Result<CreateOutcome> {
    let o = &new.order;
    if let Some(reference) = &o.reference {
        let existing: Option<(String, String)> = sqlx::query_as(
            "SELECT request_md5, response_data FROM orders WHERE merchant_id = ? AND reference = ?",
        )
        .bind(o.merchant_id.as_str())
        .bind(reference.as_str())
        .fetch_optional(&mut *c)
        .await?;
        if let Some((request_md5, response_data)) = existing {
            return Ok(CreateOutcome::Exists {
                request_md5,
                response_data,
            });
        }
    }
    let mut id = o.id.clone();
    for _ in 0..ID_RETRIES {
        let inserted = sqlx::query(
            "INSERT INTO orders (id, merchant_id, kind, reference, token, amount, currency, sale_num, shop_id,
             operator_id, redirect_url, callback_url, duration_secs, email, remarks, status, created_at, expires_at,
             request_md5, response_data, tip)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id.as_str())
        .bind(o.merchant_id.as_str())
        .bind(o.kind.code())
        .bind(o.reference.as_ref().map(MerchantRef::as_str))
        .bind(o.token.as_str())
        .bind(rows::amount_to_db(o.money.amount))
        .bind(o.money.currency.code())
        .bind(&o.sale_num)
        .bind(o.shop_id.as_str())
        .bind(o.operator_id.as_str())
        .bind(&o.redirect_url)
        .bind(&o.callback_url)
        .bind(i64::try_from(o.duration_secs).unwrap_or(i64::MAX))
        .bind(&o.email)
        .bind(&o.remarks)
        .bind(o.status.code())
        .bind(o.created_at.epoch_millis())
        .bind(o.expires_at.epoch_millis())
        .bind(&new.request_md5)
        .bind(&new.response_data)
        .bind(i64::try_from(o.tip).unwrap_or(i64::MAX))
        .execute(&mut *c)
        .await;
        match inserted {
            Ok(_) => {
                let attempt = match new.first_attempt {
                    Some(method) => {
                        let order = Order {
                            id: id.clone(),
                            ..o.clone()
                        };
                        Some(attempts::insert(c, &order, method, o.created_at).await?)
                    }
                    None => None,
                };
                return Ok(CreateOutcome::Created { id, attempt });
            }
            // The reference was checked above in this same transaction, so a unique
            // violation here is an id generated by another process at the same moment.
            Err(e) if is_unique_violation(&e) => id = OrderId::generate(o.created_at),
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Duplicate("order id"))
}

pub(super) async fn set_response_data(
    c: &mut SqliteConnection,
    order: OrderId,
    response_data: String,
) -> Result<bool> {
    let updated =
        sqlx::query("UPDATE orders SET response_data = ? WHERE id = ? AND response_data = ''")
            .bind(&response_data)
            .bind(order.as_str())
            .execute(&mut *c)
            .await?;
    Ok(updated.rows_affected() == 1)
}

/// Marks a processing order expired, with its pending attempts.
pub(super) async fn close_expired(
    c: &mut SqliteConnection,
    order_id: &str,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "UPDATE orders SET status = 'expired', finished_at = ? WHERE id = ? AND status = 'processing'",
    )
    .bind(now.epoch_millis())
    .bind(order_id)
    .execute(&mut *c)
    .await?;
    sqlx::query("UPDATE attempts SET status = ?, settled_at = ? WHERE order_id = ? AND status = ?")
        .bind(AttemptStatus::Expired.code())
        .bind(now.epoch_millis())
        .bind(order_id)
        .bind(AttemptStatus::Pending.code())
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub(super) async fn close_if_expired(
    c: &mut SqliteConnection,
    order: OrderId,
    now: Timestamp,
) -> Result<bool> {
    let due: Option<String> = sqlx::query_scalar(
        "SELECT id FROM orders WHERE id = ? AND status = 'processing' AND expires_at <= ?",
    )
    .bind(order.as_str())
    .bind(now.epoch_millis())
    .fetch_optional(&mut *c)
    .await?;
    if due.is_none() {
        return Ok(false);
    }
    close_expired(c, order.as_str(), now).await?;
    Ok(true)
}

pub(super) async fn expire_due(
    c: &mut SqliteConnection,
    now: Timestamp,
    limit: u32,
) -> Result<Vec<OrderId>> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM orders WHERE status = 'processing' AND expires_at <= ? ORDER BY expires_at LIMIT ?",
    )
    .bind(now.epoch_millis())
    .bind(i64::from(limit))
    .fetch_all(&mut *c)
    .await?;
    let mut closed = Vec::with_capacity(ids.len());
    for id in ids {
        close_expired(c, &id, now).await?;
        closed.push(OrderId::parse(&id).map_err(|e| StoreError::Corrupt(e.to_string()))?);
    }
    Ok(closed)
}
