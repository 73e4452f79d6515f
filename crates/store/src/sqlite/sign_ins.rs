//! Failed REST sign-ins (the single writer takes them one at a time).

use ottgate_core::Timestamp;
use sqlx::SqliteConnection;

use crate::{Result, SignInAttempt};

fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(super) async fn reserve(
    c: &mut SqliteConnection,
    a: SignInAttempt,
) -> Result<Option<Vec<i64>>> {
    let now = a.now.epoch_millis();
    let trusted: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM sign_in_trust WHERE pair = ? AND since > ?")
            .bind(&a.pair)
            .bind(now.saturating_sub(millis(a.trust)))
            .fetch_optional(&mut *c)
            .await?;
    let mut counters = a.counters;
    if trusted.is_none() {
        counters.push(a.app_counter);
    }
    let since = now.saturating_sub(millis(a.window));
    for (key, limit) in &counters {
        let failures: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM sign_in_failures WHERE key = ? AND at > ?")
                .bind(key)
                .bind(since)
                .fetch_one(&mut *c)
                .await?;
        if failures >= i64::from(*limit) {
            return Ok(None);
        }
    }
    let mut reserved = Vec::with_capacity(counters.len());
    for (key, _) in &counters {
        let id: i64 =
            sqlx::query_scalar("INSERT INTO sign_in_failures (key, at) VALUES (?, ?) RETURNING id")
                .bind(key)
                .bind(now)
                .fetch_one(&mut *c)
                .await?;
        reserved.push(id);
    }
    sqlx::query(
        "DELETE FROM sign_in_failures WHERE id IN
         (SELECT id FROM sign_in_failures WHERE at <= ? LIMIT 100)",
    )
    .bind(since)
    .execute(&mut *c)
    .await?;
    Ok(Some(reserved))
}

pub(super) async fn release(
    c: &mut SqliteConnection,
    reserved: Vec<i64>,
    trust: Option<(String, Timestamp)>,
) -> Result<()> {
    for id in reserved {
        sqlx::query("DELETE FROM sign_in_failures WHERE id = ?")
            .bind(id)
            .execute(&mut *c)
            .await?;
    }
    if let Some((pair, at)) = trust {
        sqlx::query(
            "INSERT INTO sign_in_trust (pair, since) VALUES (?, ?)
             ON CONFLICT (pair) DO UPDATE SET since = excluded.since",
        )
        .bind(pair)
        .bind(at.epoch_millis())
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}
