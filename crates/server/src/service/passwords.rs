//! Secrets people type or paste — REST app keys, merchant-center passwords — kept as
//! argon2id hashes (the crate's defaults: argon2id v19, 19 MiB, 2 passes), and checked so
//! that an unknown account takes as long as a known one.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use std::sync::OnceLock;

/// The argon2id PHC string of `secret`.
pub fn hash(secret: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing: {e}"))
}

/// Whether `secret` matches the PHC string `hash`.
pub fn verify(hash: &str, secret: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(secret.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash to check unknown accounts against, so that they take as long as known ones.
pub fn decoy() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash("decoy").unwrap_or_default())
}
