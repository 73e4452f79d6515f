//! The `refunds` table: refunds hold their amount while pending, so their sum never
//! exceeds what was paid.

use ottgate_core::{AttemptId, AttemptStatus, Money, Refund, RefundId, RefundStatus, Timestamp};
use sqlx::{SqliteConnection, SqlitePool};

use crate::rows::{self, AttemptRow, RefundRow};
use crate::{BeginRefund, NewRefund, Result, StoreError};

pub(super) async fn of_payment(pool: &SqlitePool, payment: &AttemptId) -> Result<Vec<Refund>> {
    let rows: Vec<RefundRow> =
        sqlx::query_as("SELECT * FROM refunds WHERE payment_id = ? ORDER BY created_at, id")
            .bind(payment.as_str())
            .fetch_all(pool)
            .await?;
    rows.into_iter().map(RefundRow::into_refund).collect()
}

pub(super) async fn by_id(pool: &SqlitePool, id: &RefundId) -> Result<Option<Refund>> {
    let row: Option<RefundRow> = sqlx::query_as("SELECT * FROM refunds WHERE id = ?")
        .bind(id.as_str())
        .fetch_optional(pool)
        .await?;
    row.map(RefundRow::into_refund).transpose()
}

async fn load(c: &mut SqliteConnection, id: &str) -> Result<Refund> {
    let row: Option<RefundRow> = sqlx::query_as("SELECT * FROM refunds WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut *c)
        .await?;
    row.ok_or(StoreError::NotFound("refund"))?.into_refund()
}

pub(super) async fn begin(c: &mut SqliteConnection, r: NewRefund) -> Result<BeginRefund> {
    let payment: Option<AttemptRow> = sqlx::query_as(
        "SELECT a.* FROM attempts a JOIN orders o ON o.id = a.order_id WHERE a.id = ? AND o.merchant_id = ?",
    )
    .bind(r.payment_id.as_str())
    .bind(r.merchant_id.as_str())
    .fetch_optional(&mut *c)
    .await?;
    let Some(payment) = payment else {
        return Ok(BeginRefund::PaymentNotFound);
    };
    let payment = payment.into_attempt()?;
    if let Some(merchant_refund_id) = &r.merchant_refund_id {
        let earlier: Option<RefundRow> = sqlx::query_as(
            "SELECT * FROM refunds WHERE merchant_id = ? AND merchant_refund_id = ?",
        )
        .bind(r.merchant_id.as_str())
        .bind(merchant_refund_id)
        .fetch_optional(&mut *c)
        .await?;
        if let Some(earlier) = earlier {
            let earlier = earlier.into_refund()?;
            let same = earlier.payment_id == r.payment_id && earlier.money.amount == r.amount;
            return Ok(if same {
                BeginRefund::Replayed(earlier)
            } else {
                BeginRefund::IdReused(earlier)
            });
        }
    }
    if payment.status != AttemptStatus::Paid {
        return Ok(BeginRefund::NotRefundable(payment.status));
    }
    let held: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(amount), 0) FROM refunds WHERE payment_id = ? AND status IN ('pending', 'success')",
    )
    .bind(payment.id.as_str())
    .fetch_one(&mut *c)
    .await?;
    let refundable = payment
        .money
        .amount
        .minor()
        .saturating_sub(u64::try_from(held).unwrap_or(0));
    if r.amount.minor() > refundable {
        return Ok(BeginRefund::Exceeds { refundable });
    }
    let refund = Refund {
        id: r.id,
        merchant_id: r.merchant_id,
        payment_id: payment.id,
        merchant_refund_id: r.merchant_refund_id,
        money: Money::new(r.amount, payment.money.currency),
        status: RefundStatus::Pending,
        created_at: r.at,
        finished_at: None,
        channel_refund_id: None,
    };
    sqlx::query(
        "INSERT INTO refunds (id, merchant_id, payment_id, merchant_refund_id, amount, currency, status, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(refund.id.as_str())
    .bind(refund.merchant_id.as_str())
    .bind(refund.payment_id.as_str())
    .bind(&refund.merchant_refund_id)
    .bind(rows::amount_to_db(refund.money.amount))
    .bind(refund.money.currency.code())
    .bind(refund.status.code())
    .bind(refund.created_at.epoch_millis())
    .execute(&mut *c)
    .await?;
    Ok(BeginRefund::Reserved(refund))
}

/// The wallet's answer about a refund.
pub(super) struct Finish {
    pub(super) id: RefundId,
    pub(super) status: RefundStatus,
    pub(super) channel_refund_id: Option<String>,
    pub(super) at: Timestamp,
}

pub(super) async fn finish(c: &mut SqliteConnection, f: Finish) -> Result<Refund> {
    sqlx::query(
        "UPDATE refunds SET status = ?, finished_at = ?, channel_refund_id = COALESCE(?, channel_refund_id)
         WHERE id = ? AND status = 'pending'",
    )
    .bind(f.status.code())
    .bind(f.at.epoch_millis())
    .bind(&f.channel_refund_id)
    .bind(f.id.as_str())
    .execute(&mut *c)
    .await?;
    load(c, f.id.as_str()).await
}
