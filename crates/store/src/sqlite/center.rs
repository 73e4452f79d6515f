//! The merchant center's tables: `sessions`, `audit_log`, and the payment listing.

use ottgate_core::{MerchantId, Timestamp};
use rusqlite::types::Value;
use rusqlite::{Connection, params};

use super::db;
use crate::center::{self, Param, Query};
use crate::rows::{AuditRow, DayTotalRow, SummaryRow, UserRow};
use crate::{AuditEntry, DayTotal, NewSession, PaymentFilter, PaymentSummary, Result, UserRecord};

pub(super) fn insert_session(c: &Connection, s: &NewSession) -> Result<()> {
    db::exec(
        c,
        "INSERT INTO sessions (id_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![
            &s.id_hash,
            s.user_id,
            s.created_at.epoch_millis(),
            s.expires_at.epoch_millis(),
        ],
    )?;
    Ok(())
}

pub(super) fn session_user(
    c: &Connection,
    id_hash: &str,
    now: Timestamp,
) -> Result<Option<UserRecord>> {
    db::opt(
        c,
        "SELECT u.* FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.id_hash = ?1 AND s.expires_at > ?2",
        params![id_hash, now.epoch_millis()],
        UserRow::from_sqlite,
    )?
    .map(UserRow::into_user)
    .transpose()
}

pub(super) fn end_session(c: &Connection, id_hash: &str) -> Result<()> {
    db::exec(c, "DELETE FROM sessions WHERE id_hash = ?1", [id_hash])?;
    Ok(())
}

pub(super) fn end_user_sessions(c: &Connection, email: &str) -> Result<()> {
    db::exec(
        c,
        "DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE email = ?1)",
        [email.to_lowercase()],
    )?;
    Ok(())
}

pub(super) fn prune_sessions(c: &Connection, now: Timestamp, limit: u32) -> Result<u64> {
    let done = db::exec(
        c,
        "DELETE FROM sessions WHERE id_hash IN
         (SELECT id_hash FROM sessions WHERE expires_at <= ?1 LIMIT ?2)",
        params![now.epoch_millis(), i64::from(limit)],
    )?;
    Ok(done as u64)
}

fn values(query: &Query) -> impl Iterator<Item = Value> + '_ {
    query.params.iter().map(|p| match p {
        Param::Text(t) => Value::Text(t.clone()),
        Param::Int(i) => Value::Integer(*i),
    })
}

pub(super) fn payments(c: &Connection, filter: &PaymentFilter) -> Result<Vec<PaymentSummary>> {
    let query = center::payments_query(filter, center::sqlite_placeholder);
    db::all(
        c,
        &query.sql,
        rusqlite::params_from_iter(values(&query)),
        SummaryRow::from_sqlite,
    )?
    .into_iter()
    .map(SummaryRow::into_summary)
    .collect()
}

pub(super) fn day_totals(
    c: &Connection,
    merchant: &MerchantId,
    from: Timestamp,
    days: u32,
) -> Result<Vec<DayTotal>> {
    let query = center::day_totals_query(merchant, from, days, center::sqlite_placeholder);
    db::all(
        c,
        &query.sql,
        rusqlite::params_from_iter(values(&query)),
        DayTotalRow::from_sqlite,
    )?
    .into_iter()
    .map(DayTotalRow::into_total)
    .collect()
}

pub(super) fn record_audit(c: &Connection, e: &AuditEntry) -> Result<()> {
    db::exec(
        c,
        "INSERT INTO audit_log (merchant_id, actor, action, subject, detail, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            e.merchant_id.as_str(),
            &e.actor,
            &e.action,
            &e.subject,
            &e.detail,
            e.at.epoch_millis(),
        ],
    )?;
    Ok(())
}

pub(super) fn audit_log(
    c: &Connection,
    merchant: &MerchantId,
    limit: u32,
) -> Result<Vec<AuditEntry>> {
    db::all(
        c,
        "SELECT merchant_id, actor, action, subject, detail, at FROM audit_log
         WHERE merchant_id = ?1 ORDER BY id DESC LIMIT ?2",
        params![merchant.as_str(), i64::from(limit)],
        AuditRow::from_sqlite,
    )?
    .into_iter()
    .map(AuditRow::into_entry)
    .collect()
}
