//! Failed sign-ins (the single writer takes them one at a time).

use super::{SqliteStore, db};
use crate::sign_ins::q;
use crate::{Result, SignInAttempt};
use async_trait::async_trait;
use ottgate_core::Timestamp;
use rusqlite::{Connection, params};

pub(super) fn reserve(c: &Connection, a: &SignInAttempt) -> Result<Option<Vec<i64>>> {
    let now = a.now.epoch_millis();
    let trusted: Option<i64> = db::opt(
        c,
        q::TRUSTED.sqlite,
        params![&a.pair, now.saturating_sub(db::millis(a.trust))],
        db::first,
    )?;
    let mut counters = a.counters.clone();
    if trusted.is_none() {
        counters.push(a.app_counter.clone());
    }
    let since = now.saturating_sub(db::millis(a.window));
    for (key, limit) in &counters {
        let failures: i64 = db::one(c, q::FAILURES.sqlite, params![key, since], db::first)?;
        if failures >= i64::from(*limit) {
            return Ok(None);
        }
    }
    let mut reserved = Vec::with_capacity(counters.len());
    for (key, _) in &counters {
        reserved.push(db::one(c, q::RESERVE.sqlite, params![key, now], db::first)?);
    }
    db::exec(c, q::FORGET_OLD.sqlite, [since])?;
    Ok(Some(reserved))
}

pub(super) fn release(
    c: &Connection,
    reserved: &[i64],
    trust: Option<&(String, Timestamp)>,
) -> Result<()> {
    for id in reserved {
        db::exec(c, "DELETE FROM sign_in_failures WHERE id = ?1", [id])?;
    }
    if let Some((pair, at)) = trust {
        db::exec(c, q::TRUST.sqlite, params![pair, at.epoch_millis()])?;
    }
    Ok(())
}

#[async_trait]
impl crate::SignIns for SqliteStore {
    async fn reserve_sign_in(&self, attempt: SignInAttempt) -> Result<Option<Vec<i64>>> {
        self.engine.write(move |c| reserve(c, &attempt)).await
    }

    async fn release_sign_in(
        &self,
        reserved: Vec<i64>,
        trust: Option<(String, Timestamp)>,
    ) -> Result<()> {
        self.engine
            .write(move |c| release(c, &reserved, trust.as_ref()))
            .await
    }
}
