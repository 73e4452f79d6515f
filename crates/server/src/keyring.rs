//! The deployment master key, and the encryption of merchant sign keys at rest.
//!
//! Sign keys must be readable by the gateway (they derive every AES key), so they cannot
//! be hashed; they are sealed with AES-256-GCM under the master key, with the merchant id
//! as associated data so a sealed key cannot be moved to another merchant's row.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use ottgate_core::{MerchantId, Secret};
use ottgate_envelope::SignKey;
use rand::RngCore;
use std::fmt;
use std::io::Write;
use std::path::Path;

const NONCE_LEN: usize = 12;

#[derive(Clone)]
pub struct Keyring {
    cipher: Aes256Gcm,
    /// The master key itself, for deriving other deployment secrets.
    master: [u8; 32],
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keyring(***)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("master key must be 64 hexadecimal characters (32 bytes)")]
    Format,
    #[error("master key file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("a stored sign key cannot be decrypted with this master key")]
    Unseal,
}

impl Keyring {
    pub fn from_hex(hex_key: &str) -> Result<Self, KeyringError> {
        let bytes = hex::decode(hex_key.trim()).map_err(|_| KeyringError::Format)?;
        let master: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyringError::Format)?;
        let cipher = Aes256Gcm::new_from_slice(&master).map_err(|_| KeyringError::Format)?;
        Ok(Self { cipher, master })
    }

    /// Reads the key file, which must exist.
    pub fn load(path: &Path) -> Result<Self, KeyringError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyringError::File {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_hex(&text)
    }

    /// Reads the key file, creating it (mode `0600`, 32 random bytes) if it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyringError> {
        let file_err = |source| KeyringError::File {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => return Self::from_hex(&text),
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(file_err(e)),
            Err(_) => {}
        }
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        let text = hex::encode(key);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(path) {
            Ok(mut file) => {
                file.write_all(text.as_bytes()).map_err(file_err)?;
                file.sync_all().map_err(file_err)?;
                Self::from_hex(&text)
            }
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Self::from_hex(&std::fs::read_to_string(path).map_err(file_err)?)
            }
            Err(e) => Err(file_err(e)),
        }
    }

    /// A 32-byte secret for `purpose`, derived from the master key (HMAC-SHA256), so every
    /// process with the same master key derives the same one.
    #[expect(clippy::expect_used, reason = "HMAC accepts keys of every length")]
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut mac =
            <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.master).expect("any key length");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The merchant's webhook secret of `version` (0 until the first rotation), which signs
    /// every callback (`OTTGate-Signature`): derived from the master key, the merchant id
    /// and the version, so it is never stored and every gateway with the same master key
    /// signs alike. 64 hex characters after `whsec_`.
    pub fn webhook_secret(&self, merchant: &MerchantId, version: u32) -> Secret {
        let purpose = if version == 0 {
            format!("ottgate webhook secret v1:{merchant}")
        } else {
            format!("ottgate webhook secret v1:{merchant}:{version}")
        };
        Secret::new(format!("whsec_{}", hex::encode(self.derive(&purpose))))
    }

    pub fn seal_sign_key(&self, merchant: &MerchantId, key: &SignKey) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let payload = Payload {
            msg: key.expose_secret().as_bytes(),
            aad: merchant.as_str().as_bytes(),
        };
        // Encryption with a valid key and a 12-byte nonce cannot fail for inputs this small.
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), payload)
            .unwrap_or_default();
        [nonce.as_slice(), &sealed].concat()
    }

    pub fn open_sign_key(
        &self,
        merchant: &MerchantId,
        sealed: &[u8],
    ) -> Result<SignKey, KeyringError> {
        if sealed.len() <= NONCE_LEN {
            return Err(KeyringError::Unseal);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let payload = Payload {
            msg: ciphertext,
            aad: merchant.as_str().as_bytes(),
        };
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| KeyringError::Unseal)?;
        let text = String::from_utf8(plain).map_err(|_| KeyringError::Unseal)?;
        SignKey::new(text).map_err(|_| KeyringError::Unseal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_keys_round_trip_and_are_bound_to_their_merchant() {
        let ring = Keyring::from_hex(&"11".repeat(32)).unwrap();
        let a = MerchantId::parse("ON00000001").unwrap();
        let b = MerchantId::parse("ON00000002").unwrap();
        let key = SignKey::new("6698851A525C9433").unwrap();
        let sealed = ring.seal_sign_key(&a, &key);
        assert!(!sealed.windows(16).any(|w| w == b"6698851A525C9433"));
        assert_eq!(ring.open_sign_key(&a, &sealed).unwrap(), key);
        assert!(ring.open_sign_key(&b, &sealed).is_err());
        let other = Keyring::from_hex(&"22".repeat(32)).unwrap();
        assert!(other.open_sign_key(&a, &sealed).is_err());
    }

    #[test]
    fn the_key_file_is_created_private_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ottgate.db.key");
        let first = Keyring::load_or_create(&path).unwrap();
        let second = Keyring::load_or_create(&path).unwrap();
        let m = MerchantId::parse("ON00000001").unwrap();
        let key = SignKey::new("ABCDEF0123456789").unwrap();
        assert_eq!(
            second
                .open_sign_key(&m, &first.seal_sign_key(&m, &key))
                .unwrap(),
            key
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }

    #[test]
    fn derived_secrets_are_stable_per_master_key_and_purpose() {
        let a = Keyring::from_hex(&"11".repeat(32)).unwrap();
        let b = Keyring::from_hex(&"11".repeat(32)).unwrap();
        let c = Keyring::from_hex(&"22".repeat(32)).unwrap();
        assert_eq!(a.derive("jwt"), b.derive("jwt"));
        assert_ne!(a.derive("jwt"), a.derive("other"));
        assert_ne!(a.derive("jwt"), c.derive("jwt"));
    }

    #[test]
    fn a_malformed_master_key_is_refused() {
        assert!(Keyring::from_hex("abc").is_err());
        assert!(Keyring::from_hex(&"zz".repeat(32)).is_err());
    }
}
