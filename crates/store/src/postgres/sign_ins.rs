//! Failed REST sign-ins, counted for every gateway on the database. Each counter is taken
//! under a transaction-scoped advisory lock on its key, so two gateways counting the same
//! address at once take turns and neither overtakes the limit.

use super::{PgStore, db};
use crate::sign_ins::q;
use crate::{Result, SignInAttempt};
use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Transaction};
use ottgate_core::Timestamp;

pub(super) async fn reserve(tx: &Transaction<'_>, a: &SignInAttempt) -> Result<Option<Vec<i64>>> {
    let now = a.now.epoch_millis();
    let trusted = db::opt(
        tx,
        q::TRUSTED.pg,
        &[&a.pair, &now.saturating_sub(db::millis(a.trust))],
    )
    .await?
    .is_some();
    let mut counters = a.counters.clone();
    if !trusted {
        counters.push(a.app_counter.clone());
    }
    counters.sort();
    let since = now.saturating_sub(db::millis(a.window));
    for (key, limit) in &counters {
        db::exec(
            tx,
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 7))",
            &[key],
        )
        .await?;
        let failures: i64 = db::one(tx, q::FAILURES.pg, &[key, &since])
            .await?
            .try_get(0)?;
        if failures >= i64::from(*limit) {
            return Ok(None);
        }
    }
    let mut reserved = Vec::with_capacity(counters.len());
    for (key, _) in &counters {
        let row = db::one(tx, q::RESERVE.pg, &[key, &now]).await?;
        reserved.push(row.try_get(0)?);
    }
    // Failures that left every window, a few at a time.
    db::exec(tx, q::FORGET_OLD.pg, &[&since]).await?;
    Ok(Some(reserved))
}

pub(super) async fn release(
    tx: &Transaction<'_>,
    reserved: &[i64],
    trust: Option<&(String, Timestamp)>,
) -> Result<()> {
    db::exec(
        tx,
        "DELETE FROM sign_in_failures WHERE id = ANY($1)",
        &[&reserved],
    )
    .await?;
    if let Some((pair, at)) = trust {
        db::exec(tx, q::TRUST.pg, &[pair, &at.epoch_millis()]).await?;
    }
    Ok(())
}

#[async_trait]
impl crate::SignIns for PgStore {
    async fn reserve_sign_in(&self, attempt: SignInAttempt) -> Result<Option<Vec<i64>>> {
        in_tx!(self, |tx| reserve(&tx, &attempt))
    }

    async fn release_sign_in(
        &self,
        reserved: Vec<i64>,
        trust: Option<(String, Timestamp)>,
    ) -> Result<()> {
        in_tx!(self, |tx| release(&tx, &reserved, trust.as_ref()))
    }
}
