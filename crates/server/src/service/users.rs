//! Merchant-center users: created and reset from the command line with a one-time
//! password (shown once, kept as an argon2id hash), checked at sign-in.

use ottgate_core::{Clock, MerchantId, Secret};
use ottgate_store::{NewUser, Store, StoreError, UserRecord, UserRemoval, UserRole};

use super::merchants::random_bytes;
use super::passwords;

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("{0}")]
    Invalid(String),
    #[error("no merchant {0}")]
    UnknownMerchant(String),
    #[error("a user with email {0} already exists")]
    Exists(String),
    /// The email signs in to another merchant (emails are unique across the deployment):
    /// the operator may know, a merchant is not told whose it is.
    #[error("a user with email {0} already exists, at another merchant")]
    ExistsElsewhere(String),
    #[error("no user with email {0}")]
    UnknownUser(String),
    #[error("{0} is the merchant's last admin: add another admin first")]
    LastAdmin(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Service(#[from] super::ServiceError),
}

/// A user just created (or reset), with the one-time password to hand over.
#[derive(Debug)]
pub struct UserWithPassword {
    pub user: UserRecord,
    pub password: Secret,
}

/// An email address as sign-in takes it: one `@`, a dotted domain, no spaces, at most 254
/// characters; lower-cased.
fn email(address: &str) -> Result<String, UserError> {
    let address = address.trim();
    let valid = address.len() <= 254
        && !address.chars().any(|c| c.is_whitespace() || c.is_control())
        && address.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if !valid {
        return Err(UserError::Invalid(format!(
            "{address:?} is not an email address"
        )));
    }
    Ok(address.to_lowercase())
}

/// Twenty hex characters (80 bits) from the OS's generator.
fn one_time_password() -> Secret {
    Secret::new(hex::encode(random_bytes::<10>()))
}

fn hashed(password: &Secret) -> Result<String, UserError> {
    passwords::hash(password.expose_secret()).map_err(UserError::Invalid)
}

/// Adds a user to `merchant` with a fresh one-time password.
pub async fn add_user(
    store: &dyn Store,
    clock: &dyn Clock,
    merchant: &str,
    address: &str,
    role: UserRole,
) -> Result<UserWithPassword, UserError> {
    let merchant_id =
        MerchantId::parse(merchant).map_err(|_| UserError::UnknownMerchant(merchant.to_owned()))?;
    let email = email(address)?;
    let password = one_time_password();
    let new = NewUser {
        merchant_id,
        email: email.clone(),
        password_hash: hashed(&password)?,
        role,
        created_at: clock.now(),
    };
    match store.insert_user(new).await {
        Ok(user) => Ok(UserWithPassword { user, password }),
        Err(StoreError::Duplicate(_)) => {
            let theirs = store.user_by_email(&email).await?;
            if theirs.is_some_and(|u| u.merchant_id.as_str() != merchant) {
                Err(UserError::ExistsElsewhere(email))
            } else {
                Err(UserError::Exists(email))
            }
        }
        Err(StoreError::NotFound(_)) => Err(UserError::UnknownMerchant(merchant.to_owned())),
        Err(e) => Err(e.into()),
    }
}

/// Gives the user a new one-time password; the old one stops working.
pub async fn reset_password(
    store: &dyn Store,
    address: &str,
) -> Result<UserWithPassword, UserError> {
    let email = email(address)?;
    let password = one_time_password();
    if !store.set_user_password(&email, hashed(&password)?).await? {
        return Err(UserError::UnknownUser(email));
    }
    let user = store
        .user_by_email(&email)
        .await?
        .ok_or(UserError::UnknownUser(email))?;
    Ok(UserWithPassword { user, password })
}

/// The fewest characters a password chosen by its user may have (one-time passwords are
/// generated, and longer).
const MIN_PASSWORD_CHARS: usize = 12;
/// The most: argon2 hashes anything, but a megabyte of "password" is not one.
const MAX_PASSWORD_CHARS: usize = 1024;

/// Whether a user may choose `password`: its length in characters is within the bounds.
pub fn acceptable_password(password: &str) -> bool {
    (MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&password.chars().count())
}

/// Sets a password its user chose (the caller checked the current one). Every session of
/// the user ends, as with [`reset_password`]. The hash is computed on the blocking pool.
pub async fn change_password(store: &dyn Store, address: &str, new: &str) -> Result<(), UserError> {
    let email = email(address)?;
    if !acceptable_password(new) {
        return Err(UserError::Invalid(format!(
            "a password has {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
        )));
    }
    let new = new.to_owned();
    let hash = tokio::task::spawn_blocking(move || passwords::hash(&new))
        .await
        .map_err(|e| UserError::Invalid(e.to_string()))?
        .map_err(UserError::Invalid)?;
    if !store.set_user_password(&email, hash).await? {
        return Err(UserError::UnknownUser(email));
    }
    Ok(())
}

/// Removes `merchant`'s user signing in with `address` and ends their sessions; the email
/// removed. Never the merchant's last admin.
pub async fn remove_user(
    store: &dyn Store,
    merchant: &str,
    address: &str,
) -> Result<String, UserError> {
    let merchant_id =
        MerchantId::parse(merchant).map_err(|_| UserError::UnknownMerchant(merchant.to_owned()))?;
    let email = email(address)?;
    match store.remove_user(&merchant_id, &email).await? {
        UserRemoval::Removed => Ok(email),
        UserRemoval::NotFound => Err(UserError::UnknownUser(email)),
        UserRemoval::LastAdmin => Err(UserError::LastAdmin(email)),
    }
}

/// The user whose email and password these are; `None` for a wrong password or an unknown
/// email, which take the same time (the hash is checked either way).
pub async fn check_password(
    store: &dyn Store,
    address: &str,
    password: &str,
) -> Result<Option<UserRecord>, UserError> {
    let user = match email(address) {
        Ok(email) => store.user_by_email(&email).await?,
        Err(_) => None,
    };
    let hash = user.as_ref().map_or_else(
        || passwords::decoy().to_owned(),
        |u| u.password_hash.clone(),
    );
    let password = password.to_owned();
    let matches = tokio::task::spawn_blocking(move || passwords::verify(&hash, &password))
        .await
        .unwrap_or(false);
    Ok(user.filter(|_| matches))
}

impl super::Service {
    /// [`add_user`] to `merchant`.
    pub async fn add_user(
        &self,
        merchant: &str,
        email: &str,
        role: UserRole,
    ) -> Result<UserWithPassword, UserError> {
        add_user(&*self.store, &*self.clock, merchant, email, role).await
    }

    /// [`remove_user`] of `merchant`.
    pub async fn remove_user(&self, merchant: &str, email: &str) -> Result<String, UserError> {
        remove_user(&*self.store, merchant, email).await
    }

    /// [`change_password`] of the user signing in with `email`.
    pub async fn change_password(&self, email: &str, new: &str) -> Result<(), UserError> {
        change_password(&*self.store, email, new).await
    }

    /// [`check_password`]: the user, if `password` is `email`'s.
    pub async fn check_password(
        &self,
        email: &str,
        password: &str,
    ) -> Result<Option<UserRecord>, UserError> {
        check_password(&*self.store, email, password).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_and_lower_cased() {
        assert_eq!(email(" Ada@Shop.Example ").unwrap(), "ada@shop.example");
        for bad in [
            "",
            "ada",
            "@shop.example",
            "ada@shop",
            "ada@.example",
            "a da@shop.example",
            "a@b@c.example",
        ] {
            assert!(email(bad).is_err(), "{bad:?}");
        }
    }
}
