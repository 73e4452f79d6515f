//! The `users` table: who signs in to the merchant center.

use ottgate_core::MerchantId;
use sqlx::{SqliteConnection, SqlitePool};

use crate::rows::UserRow;
use crate::{NewUser, Result, StoreError, UserRecord};

pub(super) async fn insert(c: &mut SqliteConnection, user: NewUser) -> Result<UserRecord> {
    let merchant: Option<String> = sqlx::query_scalar("SELECT id FROM merchants WHERE id = ?")
        .bind(user.merchant_id.as_str())
        .fetch_optional(&mut *c)
        .await?;
    if merchant.is_none() {
        return Err(StoreError::NotFound("merchant"));
    }
    let row: Option<UserRow> = sqlx::query_as(
        "INSERT INTO users (merchant_id, email, password_hash, role, created_at)
         VALUES (?, ?, ?, ?, ?) ON CONFLICT (email) DO NOTHING RETURNING *",
    )
    .bind(user.merchant_id.as_str())
    .bind(user.email.to_lowercase())
    .bind(&user.password_hash)
    .bind(user.role.code())
    .bind(user.created_at.epoch_millis())
    .fetch_optional(&mut *c)
    .await?;
    row.ok_or(StoreError::Duplicate("user"))?.into_user()
}

pub(super) async fn by_email(pool: &SqlitePool, email: &str) -> Result<Option<UserRecord>> {
    let row: Option<UserRow> = sqlx::query_as("SELECT * FROM users WHERE email = ?")
        .bind(email.to_lowercase())
        .fetch_optional(pool)
        .await?;
    row.map(UserRow::into_user).transpose()
}

pub(super) async fn of_merchant(
    pool: &SqlitePool,
    merchant: &MerchantId,
) -> Result<Vec<UserRecord>> {
    let rows: Vec<UserRow> =
        sqlx::query_as("SELECT * FROM users WHERE merchant_id = ? ORDER BY email")
            .bind(merchant.as_str())
            .fetch_all(pool)
            .await?;
    rows.into_iter().map(UserRow::into_user).collect()
}

pub(super) async fn set_password(
    c: &mut SqliteConnection,
    email: String,
    password_hash: String,
) -> Result<bool> {
    let done = sqlx::query("UPDATE users SET password_hash = ? WHERE email = ?")
        .bind(&password_hash)
        .bind(email.to_lowercase())
        .execute(&mut *c)
        .await?;
    // A new password signs the user out everywhere.
    super::center::end_user_sessions(c, &email).await?;
    Ok(done.rows_affected() == 1)
}
