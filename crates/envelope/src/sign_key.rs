//! The merchant's sign key: a secret that never prints.

use std::fmt;

/// A merchant sign key (OTT Pay issues 16 upper-case hex characters). It derives the AES
/// keys of every message, so it is a secret: `Debug` prints `***`, and reading it takes an
/// explicit [`SignKey::expose_secret`].
#[derive(Clone, PartialEq, Eq)]
pub struct SignKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sign key must be 1 to 64 printable ASCII characters")]
pub struct InvalidSignKey;

impl SignKey {
    /// Accepts any printable ASCII key of 1..=64 characters: OTT Pay's keys are 16 hex
    /// characters, but the algorithm itself only needs ASCII.
    pub fn new(key: impl Into<String>) -> Result<Self, InvalidSignKey> {
        let key = key.into();
        let printable = key.bytes().all(|b| b.is_ascii_graphic());
        if key.is_empty() || key.len() > 64 || !printable {
            return Err(InvalidSignKey);
        }
        Ok(Self(key))
    }

    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SignKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SignKey(***)")
    }
}
