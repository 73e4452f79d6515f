//! The `idempotency_keys` table: requests that create or move money, made safe to retry.

use ottgate_core::{MerchantId, Timestamp};
use sqlx::SqliteConnection;

use crate::{Idempotency, IdempotencyClaim, Result};

#[derive(sqlx::FromRow)]
struct IdempotencyRow {
    request_hash: String,
    state: String,
    response_status: Option<i64>,
    response_body: Option<String>,
    created_at: i64,
    locked_until: i64,
}

/// The outcome of claiming a key, read from its row (if any) as of `claim.now`.
fn outcome_of(row: Option<IdempotencyRow>, claim: &IdempotencyClaim) -> Option<Idempotency> {
    let row = row?;
    let now = claim.now.epoch_millis();
    let retention = i64::try_from(claim.retention.as_millis()).unwrap_or(i64::MAX);
    if row.created_at.saturating_add(retention) <= now {
        return None; // expired: the key is free again
    }
    if row.request_hash != claim.request_hash {
        return Some(Idempotency::Mismatch);
    }
    match (row.state.as_str(), row.response_status, row.response_body) {
        ("done", Some(status), Some(body)) => Some(Idempotency::Replay {
            status: u16::try_from(status).unwrap_or(500),
            body,
        }),
        _ if row.locked_until > now => Some(Idempotency::InProgress),
        // Started, but its request never finished (the process died): take it over.
        _ => None,
    }
}

pub(super) async fn claim(
    c: &mut SqliteConnection,
    claim: IdempotencyClaim,
) -> Result<Idempotency> {
    let row: Option<IdempotencyRow> = sqlx::query_as(
        "SELECT request_hash, state, response_status, response_body, created_at, locked_until
         FROM idempotency_keys WHERE merchant_id = ? AND scope = ? AND key = ?",
    )
    .bind(claim.merchant_id.as_str())
    .bind(&claim.scope)
    .bind(&claim.key)
    .fetch_optional(&mut *c)
    .await?;
    if let Some(outcome) = outcome_of(row, &claim) {
        return Ok(outcome);
    }
    let lease = i64::try_from(claim.lease.as_millis()).unwrap_or(i64::MAX);
    sqlx::query(
        "INSERT INTO idempotency_keys (merchant_id, scope, key, request_hash, state, created_at, locked_until)
         VALUES (?, ?, ?, ?, 'started', ?, ?)
         ON CONFLICT (merchant_id, scope, key) DO UPDATE SET
           request_hash = excluded.request_hash, state = 'started',
           response_status = NULL, response_body = NULL,
           created_at = excluded.created_at, locked_until = excluded.locked_until",
    )
    .bind(claim.merchant_id.as_str())
    .bind(&claim.scope)
    .bind(&claim.key)
    .bind(&claim.request_hash)
    .bind(claim.now.epoch_millis())
    .bind(claim.now.epoch_millis().saturating_add(lease))
    .execute(&mut *c)
    .await?;
    Ok(Idempotency::Fresh)
}

/// The key's first answer, to replay.
pub(super) struct Answer {
    pub(super) merchant: MerchantId,
    pub(super) scope: String,
    pub(super) key: String,
    pub(super) status: u16,
    pub(super) body: String,
}

pub(super) async fn finish(c: &mut SqliteConnection, a: Answer) -> Result<()> {
    sqlx::query(
        "UPDATE idempotency_keys SET state = 'done', response_status = ?, response_body = ?
         WHERE merchant_id = ? AND scope = ? AND key = ?",
    )
    .bind(i64::from(a.status))
    .bind(&a.body)
    .bind(a.merchant.as_str())
    .bind(&a.scope)
    .bind(&a.key)
    .execute(&mut *c)
    .await?;
    Ok(())
}

pub(super) async fn release(
    c: &mut SqliteConnection,
    merchant: MerchantId,
    scope: String,
    key: String,
) -> Result<()> {
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE merchant_id = ? AND scope = ? AND key = ? AND state = 'started'",
    )
    .bind(merchant.as_str())
    .bind(&scope)
    .bind(&key)
    .execute(&mut *c)
    .await?;
    Ok(())
}

pub(super) async fn prune(c: &mut SqliteConnection, before: Timestamp, limit: u32) -> Result<u64> {
    let done = sqlx::query(
        "DELETE FROM idempotency_keys WHERE rowid IN
         (SELECT rowid FROM idempotency_keys WHERE created_at < ? LIMIT ?)",
    )
    .bind(before.epoch_millis())
    .bind(i64::from(limit))
    .execute(&mut *c)
    .await?;
    Ok(done.rows_affected())
}
