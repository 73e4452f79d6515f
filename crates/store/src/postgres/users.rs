//! The `users` table: who signs in to the merchant center.

use deadpool_postgres::{GenericClient, Transaction};
use ottgate_core::MerchantId;

use super::db;
use crate::rows::UserRow;
use crate::{NewUser, Result, StoreError, UserRecord};

pub(super) async fn insert(tx: &Transaction<'_>, user: &NewUser) -> Result<UserRecord> {
    let merchant = db::opt(
        tx,
        "SELECT id FROM merchants WHERE id = $1",
        &[&user.merchant_id.as_str()],
    )
    .await?;
    if merchant.is_none() {
        return Err(StoreError::NotFound("merchant"));
    }
    let row = db::opt(
        tx,
        "INSERT INTO users (merchant_id, email, password_hash, role, created_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (email) DO NOTHING RETURNING *",
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
    let row = db::opt(
        c,
        "SELECT * FROM users WHERE email = $1",
        &[&email.to_lowercase()],
    )
    .await?;
    row.map(|row| UserRow::from_pg(&row)?.into_user())
        .transpose()
}

pub(super) async fn of_merchant(
    c: &impl GenericClient,
    merchant: &MerchantId,
) -> Result<Vec<UserRecord>> {
    let rows = db::all(
        c,
        "SELECT * FROM users WHERE merchant_id = $1 ORDER BY email",
        &[&merchant.as_str()],
    )
    .await?;
    db::each(rows, |row| UserRow::from_pg(row)?.into_user())
}

pub(super) async fn set_password(
    tx: &Transaction<'_>,
    email: &str,
    password_hash: &str,
) -> Result<bool> {
    let sql = "UPDATE users SET password_hash = $1 WHERE email = $2";
    let changed = db::exec(tx, sql, &[&password_hash, &email.to_lowercase()]).await? == 1;
    // A new password signs the user out everywhere.
    super::center::end_user_sessions(tx, email).await?;
    Ok(changed)
}
