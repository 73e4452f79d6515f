//! The merchant center's people: one account per email across the deployment, argon2id password hashes, an admin or a viewer.

use crate::Result;
use async_trait::async_trait;
use ottgate_core::{MerchantId, Timestamp};
use std::fmt;

/// What [`Store::remove_user`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserRemoval {
    Removed,
    /// No such user of this merchant.
    NotFound,
    /// Nothing: the merchant would be left without an admin.
    LastAdmin,
}

/// What a merchant-center user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserRole {
    /// Reads, and refunds, resends, rotates keys, changes methods.
    Admin,
    /// Reads.
    Viewer,
}

impl UserRole {
    pub fn code(self) -> &'static str {
        match self {
            UserRole::Admin => "admin",
            UserRole::Viewer => "viewer",
        }
    }

    pub fn from_code(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(UserRole::Admin),
            "viewer" => Some(UserRole::Viewer),
            _ => None,
        }
    }
}

/// A person who signs in to the merchant center, with their password hash.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: i64,
    pub merchant_id: MerchantId,
    /// Lower-cased; unique across the deployment.
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: String,
    pub role: UserRole,
    pub created_at: Timestamp,
}

impl fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("merchant_id", &self.merchant_id)
            .field("email", &self.email)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// A user to create (the store assigns the id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub merchant_id: MerchantId,
    pub email: String,
    pub password_hash: String,
    pub role: UserRole,
    pub created_at: Timestamp,
}

#[async_trait]
pub trait Users: Send + Sync {
    /// The merchant's merchant-center users, by email.
    async fn users_of(&self, merchant: &MerchantId) -> Result<Vec<UserRecord>>;

    /// Adds a merchant-center user; `Duplicate("user")` if the email is taken, `NotFound`
    /// if the merchant is unknown.
    async fn insert_user(&self, user: NewUser) -> Result<UserRecord>;

    /// The user signing in with `email` (compared lower-cased).
    async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>>;

    /// Replaces a user's password hash and ends their sessions; `false` if there is no such
    /// user.
    async fn set_user_password(&self, email: &str, password_hash: String) -> Result<bool>;

    /// Removes `merchant`'s user signing in with `email`, and ends their sessions — unless
    /// they are the merchant's last admin. Another merchant's user is `NotFound`.
    async fn remove_user(&self, merchant: &MerchantId, email: &str) -> Result<UserRemoval>;
}

/// This table's SQL where both backends agree, written once (`sql!`: `?N` for SQLite,
/// `$N` for PostgreSQL).
pub(crate) mod q {
    use crate::sql::Sql;

    pub(crate) const BY_EMAIL: Sql = sql!("SELECT * FROM users WHERE email = ?1");
    pub(crate) const DELETE: Sql = sql!("DELETE FROM users WHERE id = ?1");
    pub(crate) const END_SESSIONS: Sql = sql!("DELETE FROM sessions WHERE user_id = ?1");
    pub(crate) const INSERT: Sql = sql!(
        "INSERT INTO users (merchant_id, email, password_hash, role, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (email) DO NOTHING RETURNING *"
    );
    pub(crate) const MERCHANT_EXISTS: Sql = sql!("SELECT id FROM merchants WHERE id = ?1");
    pub(crate) const OF_MERCHANT: Sql =
        sql!("SELECT * FROM users WHERE merchant_id = ?1 ORDER BY email");
    pub(crate) const SET_PASSWORD: Sql =
        sql!("UPDATE users SET password_hash = ?1 WHERE email = ?2");
}
