//! The `idempotency_keys` table: requests that create or move money, made safe to retry.

use super::{SqliteStore, db};
use crate::IdempotencyAnswer;
use crate::idempotency::q;
use crate::rows::IdempotencyRow;
use crate::{Idempotency, IdempotencyClaim, IdempotencyKey, Result};
use async_trait::async_trait;
use ottgate_core::Timestamp;
use rusqlite::{Connection, params};

pub(super) fn claim(c: &Connection, claim: &IdempotencyClaim) -> Result<Idempotency> {
    let row = db::opt(
        c,
        q::KEY.sqlite,
        [
            claim.merchant_id.as_str(),
            claim.scope.as_str(),
            claim.key.as_str(),
        ],
        IdempotencyRow::from_sqlite,
    )?;
    if let Some(outcome) = row.and_then(|row| row.outcome(claim)) {
        return Ok(outcome);
    }
    db::exec(
        c,
        "INSERT INTO idempotency_keys (merchant_id, scope, key, request_hash, state, created_at, locked_until)
         VALUES (?1, ?2, ?3, ?4, 'started', ?5, ?6)
         ON CONFLICT (merchant_id, scope, key) DO UPDATE SET
           request_hash = excluded.request_hash, state = 'started',
           response_status = NULL, response_body = NULL,
           created_at = excluded.created_at, locked_until = excluded.locked_until",
        params![
            claim.merchant_id.as_str(),
            &claim.scope,
            &claim.key,
            &claim.request_hash,
            claim.now.epoch_millis(),
            claim.now.epoch_millis().saturating_add(db::millis(claim.lease)),
        ],
    )?;
    Ok(Idempotency::Fresh)
}

pub(super) fn finish(c: &Connection, answer: &IdempotencyAnswer) -> Result<()> {
    let k = &answer.key;
    db::exec(
        c,
        q::FINISH.sqlite,
        params![
            i64::from(answer.status),
            &answer.body,
            k.merchant_id.as_str(),
            &k.scope,
            &k.key,
        ],
    )?;
    Ok(())
}

pub(super) fn release(c: &Connection, k: &IdempotencyKey) -> Result<()> {
    db::exec(
        c,
        q::RELEASE.sqlite,
        [k.merchant_id.as_str(), k.scope.as_str(), k.key.as_str()],
    )?;
    Ok(())
}

pub(super) fn prune(c: &Connection, before: Timestamp, limit: u32) -> Result<u64> {
    let done = db::exec(
        c,
        "DELETE FROM idempotency_keys WHERE rowid IN
         (SELECT rowid FROM idempotency_keys WHERE created_at < ?1 LIMIT ?2)",
        params![before.epoch_millis(), i64::from(limit)],
    )?;
    Ok(done as u64)
}

#[async_trait]
impl crate::IdempotencyKeys for SqliteStore {
    async fn claim_idempotency(&self, claim: IdempotencyClaim) -> Result<Idempotency> {
        self.engine.write(move |c| self::claim(c, &claim)).await
    }

    async fn finish_idempotency(&self, answer: IdempotencyAnswer) -> Result<()> {
        self.engine.write(move |c| finish(c, &answer)).await
    }

    async fn release_idempotency(&self, key: IdempotencyKey) -> Result<()> {
        self.engine.write(move |c| release(c, &key)).await
    }

    async fn prune_idempotency(&self, before: Timestamp, limit: u32) -> Result<u64> {
        self.engine.write(move |c| prune(c, before, limit)).await
    }
}
