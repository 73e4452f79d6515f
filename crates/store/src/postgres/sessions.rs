//! The `sessions` table: merchant-center sign-ins, by the SHA-256 of their token.

use super::{PgStore, db};
use crate::rows::UserRow;
use crate::sessions::q;
use crate::{NewSession, Result, UserRecord};
use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Transaction};
use ottgate_core::Timestamp;

pub(super) async fn insert_session(tx: &Transaction<'_>, s: &NewSession) -> Result<()> {
    db::exec(
        tx,
        q::INSERT.pg,
        &[
            &s.id_hash,
            &s.user_id,
            &s.created_at.epoch_millis(),
            &s.expires_at.epoch_millis(),
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn session_user(
    c: &impl GenericClient,
    id_hash: &str,
    now: Timestamp,
) -> Result<Option<UserRecord>> {
    let row = db::opt(c, q::USER_OF.pg, &[&id_hash, &now.epoch_millis()]).await?;
    row.map(|row| UserRow::from_pg(&row)?.into_user())
        .transpose()
}

pub(super) async fn end_session(tx: &Transaction<'_>, id_hash: &str) -> Result<()> {
    db::exec(tx, q::END.pg, &[&id_hash]).await?;
    Ok(())
}

pub(super) async fn end_user_sessions(tx: &Transaction<'_>, email: &str) -> Result<()> {
    db::exec(tx, q::END_OF_USER_BY_EMAIL.pg, &[&email.to_lowercase()]).await?;
    Ok(())
}

pub(super) async fn prune_sessions(
    tx: &Transaction<'_>,
    now: Timestamp,
    limit: u32,
) -> Result<u64> {
    db::exec(
        tx,
        "DELETE FROM sessions WHERE id_hash IN
         (SELECT id_hash FROM sessions WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
        &[&now.epoch_millis(), &i64::from(limit)],
    )
    .await
}

#[async_trait]
impl crate::Sessions for PgStore {
    async fn insert_session(&self, session: NewSession) -> Result<()> {
        in_tx!(self, |tx| insert_session(&tx, &session))
    }

    async fn session_user(&self, id_hash: &str, now: Timestamp) -> Result<Option<UserRecord>> {
        session_user(&self.client().await?, id_hash, now).await
    }

    async fn end_session(&self, id_hash: &str) -> Result<()> {
        in_tx!(self, |tx| end_session(&tx, id_hash))
    }

    async fn prune_sessions(&self, now: Timestamp, limit: u32) -> Result<u64> {
        in_tx!(self, |tx| prune_sessions(&tx, now, limit))
    }
}
