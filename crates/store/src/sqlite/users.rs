//! The `users` table: who signs in to the merchant center.

use super::{SqliteStore, db};
use crate::rows::UserRow;
use crate::users::q;
use crate::{NewUser, Result, StoreError, UserRecord, UserRemoval, UserRole};
use async_trait::async_trait;
use ottgate_core::MerchantId;
use rusqlite::{Connection, params};

pub(super) fn insert(c: &Connection, user: &NewUser) -> Result<UserRecord> {
    let merchant: Option<String> = db::opt(
        c,
        q::MERCHANT_EXISTS.sqlite,
        [user.merchant_id.as_str()],
        db::first,
    )?;
    if merchant.is_none() {
        return Err(StoreError::NotFound("merchant"));
    }
    let row = db::opt(
        c,
        q::INSERT.sqlite,
        params![
            user.merchant_id.as_str(),
            user.email.to_lowercase(),
            &user.password_hash,
            user.role.code(),
            user.created_at.epoch_millis(),
        ],
        UserRow::from_sqlite,
    )?;
    row.ok_or(StoreError::Duplicate("user"))?.into_user()
}

pub(super) fn by_email(c: &Connection, email: &str) -> Result<Option<UserRecord>> {
    db::opt(
        c,
        q::BY_EMAIL.sqlite,
        [email.to_lowercase()],
        UserRow::from_sqlite,
    )?
    .map(UserRow::into_user)
    .transpose()
}

pub(super) fn of_merchant(c: &Connection, merchant: &MerchantId) -> Result<Vec<UserRecord>> {
    db::all(
        c,
        q::OF_MERCHANT.sqlite,
        [merchant.as_str()],
        UserRow::from_sqlite,
    )?
    .into_iter()
    .map(UserRow::into_user)
    .collect()
}

pub(super) fn set_password(c: &Connection, email: &str, password_hash: &str) -> Result<bool> {
    let changed = db::exec(
        c,
        q::SET_PASSWORD.sqlite,
        params![password_hash, email.to_lowercase()],
    )?;
    // A new password signs the user out everywhere.
    super::sessions::end_user_sessions(c, email)?;
    Ok(changed == 1)
}

pub(super) fn remove(c: &Connection, merchant: &MerchantId, email: &str) -> Result<UserRemoval> {
    let email = email.to_lowercase();
    let found: Option<(i64, String)> = db::opt(
        c,
        "SELECT id, role FROM users WHERE merchant_id = ?1 AND email = ?2",
        params![merchant.as_str(), email],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    let Some((id, role)) = found else {
        return Ok(UserRemoval::NotFound);
    };
    if role == UserRole::Admin.code() {
        let admins: i64 = db::one(
            c,
            "SELECT COUNT(*) FROM users WHERE merchant_id = ?1 AND role = ?2",
            params![merchant.as_str(), UserRole::Admin.code()],
            db::first,
        )?;
        if admins <= 1 {
            return Ok(UserRemoval::LastAdmin);
        }
    }
    db::exec(c, q::END_SESSIONS.sqlite, [id])?;
    db::exec(c, q::DELETE.sqlite, [id])?;
    Ok(UserRemoval::Removed)
}

#[async_trait]
impl crate::Users for SqliteStore {
    async fn users_of(&self, merchant: &MerchantId) -> Result<Vec<UserRecord>> {
        let merchant = merchant.clone();
        self.engine.read(move |c| of_merchant(c, &merchant)).await
    }

    async fn insert_user(&self, user: NewUser) -> Result<UserRecord> {
        self.engine.write(move |c| insert(c, &user)).await
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>> {
        let email = email.to_owned();
        self.engine.read(move |c| by_email(c, &email)).await
    }

    async fn set_user_password(&self, email: &str, password_hash: String) -> Result<bool> {
        let email = email.to_owned();
        self.engine
            .write(move |c| set_password(c, &email, &password_hash))
            .await
    }

    async fn remove_user(&self, merchant: &MerchantId, email: &str) -> Result<UserRemoval> {
        let (merchant, email) = (merchant.clone(), email.to_owned());
        self.engine
            .write(move |c| remove(c, &merchant, &email))
            .await
    }
}
