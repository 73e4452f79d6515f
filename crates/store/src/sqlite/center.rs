//! The merchant center's tables: `sessions`, `audit_log`, and the payment listing.

use ottgate_core::{MerchantId, Timestamp};
use sqlx::{SqliteConnection, SqlitePool};

use crate::center::{self, Param, Query};
use crate::rows::{AuditRow, DayTotalRow, SummaryRow, UserRow};
use crate::{AuditEntry, DayTotal, NewSession, PaymentFilter, PaymentSummary, Result, UserRecord};

pub(super) async fn insert_session(c: &mut SqliteConnection, s: NewSession) -> Result<()> {
    sqlx::query(
        "INSERT INTO sessions (id_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
    )
    .bind(&s.id_hash)
    .bind(s.user_id)
    .bind(s.created_at.epoch_millis())
    .bind(s.expires_at.epoch_millis())
    .execute(&mut *c)
    .await?;
    Ok(())
}

pub(super) async fn session_user(
    pool: &SqlitePool,
    id_hash: &str,
    now: Timestamp,
) -> Result<Option<UserRecord>> {
    let row: Option<UserRow> = sqlx::query_as(
        "SELECT u.* FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.id_hash = ? AND s.expires_at > ?",
    )
    .bind(id_hash)
    .bind(now.epoch_millis())
    .fetch_optional(pool)
    .await?;
    row.map(UserRow::into_user).transpose()
}

pub(super) async fn end_session(c: &mut SqliteConnection, id_hash: String) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE id_hash = ?")
        .bind(&id_hash)
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub(super) async fn end_user_sessions(c: &mut SqliteConnection, email: &str) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE email = ?)")
        .bind(email.to_lowercase())
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub(super) async fn prune_sessions(
    c: &mut SqliteConnection,
    now: Timestamp,
    limit: u32,
) -> Result<u64> {
    let done = sqlx::query(
        "DELETE FROM sessions WHERE id_hash IN
         (SELECT id_hash FROM sessions WHERE expires_at <= ? LIMIT ?)",
    )
    .bind(now.epoch_millis())
    .bind(i64::from(limit))
    .execute(&mut *c)
    .await?;
    Ok(done.rows_affected())
}

fn bound<'q, O>(
    query: &'q Query,
) -> sqlx::query::QueryAs<'q, sqlx::Sqlite, O, sqlx::sqlite::SqliteArguments<'q>>
where
    O: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>,
{
    query
        .params
        .iter()
        .fold(sqlx::query_as(&query.sql), |q, p| match p {
            Param::Text(t) => q.bind(t.as_str()),
            Param::Int(i) => q.bind(*i),
        })
}

pub(super) async fn payments(
    pool: &SqlitePool,
    filter: &PaymentFilter,
) -> Result<Vec<PaymentSummary>> {
    let query = center::payments_query(filter, center::sqlite_placeholder);
    let rows: Vec<SummaryRow> = bound(&query).fetch_all(pool).await?;
    rows.into_iter().map(SummaryRow::into_summary).collect()
}

pub(super) async fn day_totals(
    pool: &SqlitePool,
    merchant: &MerchantId,
    from: Timestamp,
    days: u32,
) -> Result<Vec<DayTotal>> {
    let query = center::day_totals_query(merchant, from, days, center::sqlite_placeholder);
    let rows: Vec<DayTotalRow> = bound(&query).fetch_all(pool).await?;
    rows.into_iter().map(DayTotalRow::into_total).collect()
}

pub(super) async fn record_audit(c: &mut SqliteConnection, e: AuditEntry) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (merchant_id, actor, action, subject, detail, at)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(e.merchant_id.as_str())
    .bind(&e.actor)
    .bind(&e.action)
    .bind(&e.subject)
    .bind(&e.detail)
    .bind(e.at.epoch_millis())
    .execute(&mut *c)
    .await?;
    Ok(())
}

pub(super) async fn audit_log(
    pool: &SqlitePool,
    merchant: &MerchantId,
    limit: u32,
) -> Result<Vec<AuditEntry>> {
    let rows: Vec<AuditRow> = sqlx::query_as(
        "SELECT merchant_id, actor, action, subject, detail, at FROM audit_log
         WHERE merchant_id = ? ORDER BY id DESC LIMIT ?",
    )
    .bind(merchant.as_str())
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(AuditRow::into_entry).collect()
}
