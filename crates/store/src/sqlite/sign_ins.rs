//! Failed sign-ins (the single writer takes them one at a time).

use super::{SqliteStore, db};
use crate::{Result, SignInAttempt};
use async_trait::async_trait;
use ottgate_core::Timestamp;
use rusqlite::{Connection, params};

pub(super) fn reserve(c: &Connection, a: &SignInAttempt) -> Result<Option<Vec<i64>>> {
    let now = a.now.epoch_millis();
    let trusted: Option<i64> = db::opt(
        c,
        "SELECT 1 FROM sign_in_trust WHERE pair = ?1 AND since > ?2",
        params![&a.pair, now.saturating_sub(db::millis(a.trust))],
        db::first,
    )?;
    let mut counters = a.counters.clone();
    if trusted.is_none() {
        counters.push(a.app_counter.clone());
    }
    let since = now.saturating_sub(db::millis(a.window));
    for (key, limit) in &counters {
        let failures: i64 = db::one(
            c,
            "SELECT COUNT(*) FROM sign_in_failures WHERE key = ?1 AND at > ?2",
            params![key, since],
            db::first,
        )?;
        if failures >= i64::from(*limit) {
            return Ok(None);
        }
    }
    let mut reserved = Vec::with_capacity(counters.len());
    for (key, _) in &counters {
        reserved.push(db::one(
            c,
            "INSERT INTO sign_in_failures (key, at) VALUES (?1, ?2) RETURNING id",
            params![key, now],
            db::first,
        )?);
    }
    db::exec(
        c,
        "DELETE FROM sign_in_failures WHERE id IN
         (SELECT id FROM sign_in_failures WHERE at <= ?1 LIMIT 100)",
        [since],
    )?;
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
        db::exec(
            c,
            "INSERT INTO sign_in_trust (pair, since) VALUES (?1, ?2)
             ON CONFLICT (pair) DO UPDATE SET since = excluded.since",
            params![pair, at.epoch_millis()],
        )?;
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
