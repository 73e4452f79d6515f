//! The `sessions` table: merchant-center sign-ins, by the SHA-256 of their token.

use super::{SqliteStore, db};
use crate::rows::UserRow;
use crate::sessions::q;
use crate::{NewSession, Result, UserRecord};
use async_trait::async_trait;
use ottgate_core::Timestamp;
use rusqlite::{Connection, params};

pub(super) fn insert_session(c: &Connection, s: &NewSession) -> Result<()> {
    db::exec(
        c,
        q::INSERT.sqlite,
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
        q::USER_OF.sqlite,
        params![id_hash, now.epoch_millis()],
        UserRow::from_sqlite,
    )?
    .map(UserRow::into_user)
    .transpose()
}

pub(super) fn end_session(c: &Connection, id_hash: &str) -> Result<()> {
    db::exec(c, q::END.sqlite, [id_hash])?;
    Ok(())
}

pub(super) fn end_user_sessions(c: &Connection, email: &str) -> Result<()> {
    db::exec(c, q::END_OF_USER_BY_EMAIL.sqlite, [email.to_lowercase()])?;
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

#[async_trait]
impl crate::Sessions for SqliteStore {
    async fn insert_session(&self, session: NewSession) -> Result<()> {
        self.engine
            .write(move |c| insert_session(c, &session))
            .await
    }

    async fn session_user(&self, id_hash: &str, now: Timestamp) -> Result<Option<UserRecord>> {
        let id_hash = id_hash.to_owned();
        self.engine
            .read(move |c| session_user(c, &id_hash, now))
            .await
    }

    async fn end_session(&self, id_hash: &str) -> Result<()> {
        let id_hash = id_hash.to_owned();
        self.engine.write(move |c| end_session(c, &id_hash)).await
    }

    async fn prune_sessions(&self, now: Timestamp, limit: u32) -> Result<u64> {
        self.engine
            .write(move |c| prune_sessions(c, now, limit))
            .await
    }
}
