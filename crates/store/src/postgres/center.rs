//! The merchant center's tables: `sessions`, `audit_log`, and the payment listing.

use deadpool_postgres::{GenericClient, Transaction};
use ottgate_core::{MerchantId, Timestamp};
use tokio_postgres::types::ToSql;

use super::db;
use crate::center::{self, Param, Query};
use crate::rows::{AuditRow, DayTotalRow, SummaryRow, UserRow};
use crate::{AuditEntry, DayTotal, NewSession, PaymentFilter, PaymentSummary, Result, UserRecord};

pub(super) async fn insert_session(tx: &Transaction<'_>, s: &NewSession) -> Result<()> {
    db::exec(
        tx,
        "INSERT INTO sessions (id_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        &[
            &s.id_hash,
            &s.user_id,
            &s.created_at.epoch_millis(),
            &s.expires_at.epoch_millis(),
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn session_user(
    c: &impl GenericClient,
    id_hash: &str,
    now: Timestamp,
) -> Result<Option<UserRecord>> {
    let row = db::opt(
        c,
        "SELECT u.* FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.id_hash = $1 AND s.expires_at > $2",
        &[&id_hash, &now.epoch_millis()],
    )
    .await?;
    row.map(|row| UserRow::from_pg(&row)?.into_user())
        .transpose()
}

pub(super) async fn end_session(tx: &Transaction<'_>, id_hash: &str) -> Result<()> {
    db::exec(tx, "DELETE FROM sessions WHERE id_hash = $1", &[&id_hash]).await?;
    Ok(())
}

pub(super) async fn end_user_sessions(tx: &Transaction<'_>, email: &str) -> Result<()> {
    db::exec(
        tx,
        "DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE email = $1)",
        &[&email.to_lowercase()],
    )
    .await?;
    Ok(())
}

pub(super) async fn prune_sessions(
    tx: &Transaction<'_>,
    now: Timestamp,
    limit: u32,
) -> Result<u64> {
    db::exec(
        tx,
        "DELETE FROM sessions WHERE id_hash IN
         (SELECT id_hash FROM sessions WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
        &[&now.epoch_millis(), &i64::from(limit)],
    )
    .await
}

async fn rows(c: &impl GenericClient, query: &Query) -> Result<Vec<tokio_postgres::Row>> {
    let values: Vec<Box<dyn ToSql + Sync + Send>> = query
        .params
        .iter()
        .map(|p| -> Box<dyn ToSql + Sync + Send> {
            match p {
                Param::Text(t) => Box::new(t.clone()),
                Param::Int(i) => Box::new(*i),
            }
        })
        .collect();
    let params: Vec<&(dyn ToSql + Sync)> = values
        .iter()
        .map(|v| v.as_ref() as &(dyn ToSql + Sync))
        .collect();
    db::all(c, &query.sql, &params).await
}

pub(super) async fn payments(
    c: &impl GenericClient,
    filter: &PaymentFilter,
) -> Result<Vec<PaymentSummary>> {
    let query = center::payments_query(filter, center::pg_placeholder);
    db::each(rows(c, &query).await?, |row| {
        SummaryRow::from_pg(row)?.into_summary()
    })
}

pub(super) async fn day_totals(
    c: &impl GenericClient,
    merchant: &MerchantId,
    from: Timestamp,
    days: u32,
) -> Result<Vec<DayTotal>> {
    let query = center::day_totals_query(merchant, from, days, center::pg_placeholder);
    db::each(rows(c, &query).await?, |row| {
        DayTotalRow::from_pg(row)?.into_total()
    })
}

pub(super) async fn record_audit(tx: &Transaction<'_>, e: &AuditEntry) -> Result<()> {
    db::exec(
        tx,
        "INSERT INTO audit_log (merchant_id, actor, action, subject, detail, at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &e.merchant_id.as_str(),
            &e.actor,
            &e.action,
            &e.subject,
            &e.detail,
            &e.at.epoch_millis(),
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn audit_log(
    c: &impl GenericClient,
    merchant: &MerchantId,
    limit: u32,
) -> Result<Vec<AuditEntry>> {
    let rows = db::all(
        c,
        "SELECT merchant_id, actor, action, subject, detail, at FROM audit_log
         WHERE merchant_id = $1 ORDER BY id DESC LIMIT $2",
        &[&merchant.as_str(), &i64::from(limit)],
    )
    .await?;
    db::each(rows, |row| AuditRow::from_pg(row)?.into_entry())
}
