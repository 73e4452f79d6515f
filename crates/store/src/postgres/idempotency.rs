//! The `idempotency_keys` table. A key's row is read under lock; a key nobody holds is
//! inserted with `ON CONFLICT DO NOTHING`, so of two gateways claiming it at once exactly
//! one gets `Fresh` (the other runs again and finds it in progress).

use super::{PgStore, db};
use crate::IdempotencyAnswer;
use crate::idempotency::q;
use crate::rows::IdempotencyRow;
use crate::{Idempotency, IdempotencyClaim, IdempotencyKey, Result, StoreError};
use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Transaction};
use ottgate_core::Timestamp;

pub(super) async fn claim(tx: &Transaction<'_>, claim: &IdempotencyClaim) -> Result<Idempotency> {
    let key: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
        [&claim.merchant_id.as_str(), &claim.scope, &claim.key];
    let row = db::opt(tx, q::KEY.pg, &key).await?;
    let now = claim.now.epoch_millis();
    let locked_until = now.saturating_add(db::millis(claim.lease));
    let Some(row) = row else {
        let inserted = db::exec(
            tx,
            "INSERT INTO idempotency_keys (merchant_id, scope, key, request_hash, state, created_at, locked_until)
             VALUES ($1, $2, $3, $4, 'started', $5, $6) ON CONFLICT DO NOTHING",
            &[key[0], key[1], key[2], &claim.request_hash, &now, &locked_until],
        )
        .await?;
        return if inserted == 1 {
            Ok(Idempotency::Fresh)
        } else {
            Err(StoreError::Contended)
        };
    };
    if let Some(outcome) = IdempotencyRow::from_pg(&row)?.outcome(claim) {
        return Ok(outcome);
    }
    // Expired, or abandoned by a request that never finished: ours now.
    db::exec(
        tx,
        "UPDATE idempotency_keys SET request_hash = $4, state = 'started', response_status = NULL,
         response_body = NULL, created_at = $5, locked_until = $6
         WHERE merchant_id = $1 AND scope = $2 AND key = $3",
        &[
            key[0],
            key[1],
            key[2],
            &claim.request_hash,
            &now,
            &locked_until,
        ],
    )
    .await?;
    Ok(Idempotency::Fresh)
}

pub(super) async fn finish(tx: &Transaction<'_>, answer: &IdempotencyAnswer) -> Result<()> {
    let k = &answer.key;
    let params: db::Params<'_> = &[
        &i64::from(answer.status),
        &answer.body,
        &k.merchant_id.as_str(),
        &k.scope,
        &k.key,
    ];
    db::exec(tx, q::FINISH.pg, params).await?;
    Ok(())
}

pub(super) async fn release(tx: &Transaction<'_>, k: &IdempotencyKey) -> Result<()> {
    let params: db::Params<'_> = &[&k.merchant_id.as_str(), &k.scope, &k.key];
    db::exec(tx, q::RELEASE.pg, params).await?;
    Ok(())
}

pub(super) async fn prune(tx: &Transaction<'_>, before: Timestamp, limit: u32) -> Result<u64> {
    db::exec(
        tx,
        "DELETE FROM idempotency_keys WHERE ctid IN
         (SELECT ctid FROM idempotency_keys WHERE created_at < $1 LIMIT $2)",
        &[&before.epoch_millis(), &i64::from(limit)],
    )
    .await
}

#[async_trait]
impl crate::IdempotencyKeys for PgStore {
    async fn claim_idempotency(&self, claim: IdempotencyClaim) -> Result<Idempotency> {
        in_tx!(self, |tx| super::idempotency::claim(&tx, &claim))
    }

    async fn finish_idempotency(&self, answer: IdempotencyAnswer) -> Result<()> {
        in_tx!(self, |tx| finish(&tx, &answer))
    }

    async fn release_idempotency(&self, key: IdempotencyKey) -> Result<()> {
        in_tx!(self, |tx| release(&tx, &key))
    }

    async fn prune_idempotency(&self, before: Timestamp, limit: u32) -> Result<u64> {
        in_tx!(self, |tx| prune(&tx, before, limit))
    }
}
