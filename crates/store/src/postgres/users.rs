//! The `users` table: who signs in to the merchant center.

use super::{PgStore, db};
use crate::rows::UserRow;
use crate::users::q;
use crate::{NewUser, Result, StoreError, UserRecord, UserRemoval, UserRole};
use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Transaction};
use ottgate_core::MerchantId;

pub(super) async fn insert(tx: &Transaction<'_>, user: &NewUser) -> Result<UserRecord> {
    let merchant = db::opt(tx, q::MERCHANT_EXISTS.pg, &[&user.merchant_id.as_str()]).await?;
    if merchant.is_none() {
        return Err(StoreError::NotFound("merchant"));
    }
    let row = db::opt(
        tx,
        q::INSERT.pg,
        &[
            &user.merchant_id.as_str(),
            &user.email.to_lowercase(),
            &user.password_hash,
            &user.role.code(),
            &user.created_at.epoch_millis(),
        ],
    )
    .await?;
    UserRow::from_pg(&row.ok_or(StoreError::Duplicate("user"))?)?.into_user()
}

pub(super) async fn by_email(c: &impl GenericClient, email: &str) -> Result<Option<UserRecord>> {
    let row = db::opt(c, q::BY_EMAIL.pg, &[&email.to_lowercase()]).await?;
    row.map(|row| UserRow::from_pg(&row)?.into_user())
        .transpose()
}

pub(super) async fn of_merchant(
    c: &impl GenericClient,
    merchant: &MerchantId,
) -> Result<Vec<UserRecord>> {
    let rows = db::all(c, q::OF_MERCHANT.pg, &[&merchant.as_str()]).await?;
    db::each(rows, |row| UserRow::from_pg(row)?.into_user())
}

pub(super) async fn set_password(
    tx: &Transaction<'_>,
    email: &str,
    password_hash: &str,
) -> Result<bool> {
    let sql = q::SET_PASSWORD.pg;
    let changed = db::exec(tx, sql, &[&password_hash, &email.to_lowercase()]).await? == 1;
    // A new password signs the user out everywhere.
    super::sessions::end_user_sessions(tx, email).await?;
    Ok(changed)
}

/// The merchant's users are locked first, so two admins removing each other at once cannot
/// both see a second admin.
pub(super) async fn remove(
    tx: &Transaction<'_>,
    merchant: &MerchantId,
    email: &str,
) -> Result<UserRemoval> {
    let users = db::all(
        tx,
        "SELECT id, email, role FROM users WHERE merchant_id = $1 ORDER BY id FOR UPDATE",
        &[&merchant.as_str()],
    )
    .await?;
    let email = email.to_lowercase();
    let admins = users
        .iter()
        .filter(|u| u.get::<_, String>("role") == UserRole::Admin.code())
        .count();
    let Some(user) = users.iter().find(|u| u.get::<_, String>("email") == email) else {
        return Ok(UserRemoval::NotFound);
    };
    if user.get::<_, String>("role") == UserRole::Admin.code() && admins <= 1 {
        return Ok(UserRemoval::LastAdmin);
    }
    let id: i64 = user.try_get("id")?;
    db::exec(tx, q::END_SESSIONS.pg, &[&id]).await?;
    db::exec(tx, q::DELETE.pg, &[&id]).await?;
    Ok(UserRemoval::Removed)
}

#[async_trait]
impl crate::Users for PgStore {
    async fn users_of(&self, merchant: &MerchantId) -> Result<Vec<UserRecord>> {
        of_merchant(&self.client().await?, merchant).await
    }

    async fn insert_user(&self, user: NewUser) -> Result<UserRecord> {
        in_tx!(self, |tx| insert(&tx, &user))
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>> {
        by_email(&self.client().await?, email).await
    }

    async fn set_user_password(&self, email: &str, password_hash: String) -> Result<bool> {
        in_tx!(self, |tx| set_password(&tx, email, &password_hash))
    }

    async fn remove_user(&self, merchant: &MerchantId, email: &str) -> Result<UserRemoval> {
        in_tx!(self, |tx| remove(&tx, merchant, email))
    }
}
