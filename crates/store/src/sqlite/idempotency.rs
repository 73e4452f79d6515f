//! The `idempotency_keys` table: requests that create or move money, made safe to retry.

use ottgate_core::{MerchantId, Timestamp};
use sqlx::SqliteConnection;

use crate::rows::IdempotencyRow;
use crate::{Idempotency, IdempotencyClaim, Result};

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
    if let Some(outcome) = row.and_then(|row| row.outcome(&claim)) {
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
