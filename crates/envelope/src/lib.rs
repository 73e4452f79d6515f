//! The OTT Pay data envelope (Appendix A): how transaction data is signed, keyed and
//! encrypted on the wire.
//!
//! ```text
//! md5     = UPPER(MD5(values of the JSON object, concatenated in byte order of their keys))
//! aes_key = ASCII(UPPER(MD5(md5 + sign_key))[8..24])
//! data    = Base64(AES-128-ECB(PKCS#7(JSON text)))
//! ```
//!
//! The md5 is both the integrity check and the key-derivation input, so [`open`] always
//! recomputes it over the decrypted plaintext and compares in constant time: a valid
//! `(data, md5)` pair cannot be altered (not even by swapping ECB blocks) without the
//! sign key. Everything here is pure and synchronous.

mod base64_lenient;
mod cipher;
mod digest;
mod sign_key;

pub use digest::{Md5Hex, NumberText, digest, digest_with, java_double};
pub use sign_key::{InvalidSignKey, SignKey};

use serde_json::{Map, Value};

/// A flat JSON object of transaction data, in the order its fields were written.
pub type Fields = Map<String, Value>;

/// The two wire values a sealed message travels as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Base64 of the AES-128-ECB ciphertext of the JSON text.
    pub data: String,
    /// Upper-case hex MD5 of the plaintext values; also the key-derivation input.
    pub md5: Md5Hex,
}

/// Why a `(data, md5)` pair could not be opened. Each variant is a distinct protocol error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("md5 is not 32 hexadecimal characters")]
    Md5Format,
    #[error("data is not valid Base64")]
    Base64,
    #[error("data length is not a whole number of AES blocks")]
    BlockLength,
    #[error("data cannot be decrypted with this merchant's key (bad padding)")]
    Padding,
    #[error("decrypted data is not UTF-8")]
    Utf8,
    #[error("decrypted data is not a JSON object")]
    NotJsonObject,
    #[error("md5 mismatch")]
    Md5Mismatch,
}

/// Why a plaintext could not be sealed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("plaintext is not a JSON object")]
    NotJsonObject,
}

/// Derives the 16-byte AES key: the middle 16 hex characters of
/// `UPPER(MD5(md5 + sign_key))`, used as ASCII bytes (not hex-decoded).
pub fn derive_key(md5: &str, sign_key: &SignKey) -> [u8; 16] {
    let full = digest::md5_upper_hex(
        [md5.as_bytes(), sign_key.expose_secret().as_bytes()]
            .concat()
            .as_slice(),
    );
    let mut key = [0u8; 16];
    key.copy_from_slice(&full.as_bytes()[8..24]);
    key
}

/// `UPPER(MD5(values concatenated, then the sign key))`: the signature of the checkout
/// browser return (docs/envelope.md), and of anything else signed as plain values.
pub fn sign_values<'a>(values: impl IntoIterator<Item = &'a str>, sign_key: &SignKey) -> Md5Hex {
    let mut text = String::new();
    for v in values {
        text.push_str(v);
    }
    text.push_str(sign_key.expose_secret());
    Md5Hex::from_upper_hex(digest::md5_upper_hex(text.as_bytes()))
}

/// Seals a JSON object: computes its md5, serializes it as compact JSON (field order kept)
/// and encrypts that text.
pub fn seal(fields: &Fields, sign_key: &SignKey) -> Sealed {
    let md5 = digest(fields);
    let text = Value::Object(fields.clone()).to_string();
    seal_with_md5(text.as_bytes(), md5, sign_key)
}

/// Seals an exact JSON text byte for byte (the md5 is computed over the parsed values).
/// Used where the plaintext bytes matter, e.g. to reproduce published vectors.
pub fn seal_text(json_text: &str, sign_key: &SignKey) -> Result<Sealed, SealError> {
    let fields = parse_object(json_text.as_bytes()).ok_or(SealError::NotJsonObject)?;
    Ok(seal_with_md5(
        json_text.as_bytes(),
        digest(&fields),
        sign_key,
    ))
}

/// Seals an exact JSON text as a sender that renders its numbers as `numbers` says
/// computes the md5 (a Java server reading numbers as doubles signs `4435` as `4435.0`).
/// For compatibility tests and tools: [`open`] accepts both renderings.
pub fn seal_text_with(
    json_text: &str,
    numbers: NumberText,
    sign_key: &SignKey,
) -> Result<Sealed, SealError> {
    let fields = parse_object(json_text.as_bytes()).ok_or(SealError::NotJsonObject)?;
    Ok(seal_with_md5(
        json_text.as_bytes(),
        digest_with(&fields, numbers),
        sign_key,
    ))
}

/// Seals `fields` with the AES key taken from another 16-character window of
/// `UPPER(MD5(md5 + sign_key))` — the right one starts at 8. For checkers of merchants'
/// integrations only: a correct receiver refuses what this makes unless `start` is 8.
pub fn seal_in_window(fields: &Fields, sign_key: &SignKey, start: usize) -> Sealed {
    let md5 = digest(fields);
    let full = digest::md5_upper_hex(
        [md5.as_str().as_bytes(), sign_key.expose_secret().as_bytes()]
            .concat()
            .as_slice(),
    );
    let start = start.min(16);
    let mut key = [0u8; 16];
    key.copy_from_slice(&full.as_bytes()[start..start + 16]);
    let text = Value::Object(fields.clone()).to_string();
    Sealed {
        data: base64_lenient::encode(&cipher::encrypt(&key, text.as_bytes())),
        md5,
    }
}

fn seal_with_md5(plaintext: &[u8], md5: Md5Hex, sign_key: &SignKey) -> Sealed {
    let key = derive_key(md5.as_str(), sign_key);
    let ciphertext = cipher::encrypt(&key, plaintext);
    Sealed {
        data: base64_lenient::encode(&ciphertext),
        md5,
    }
}

/// A successfully opened message: the fields, and the exact plaintext they were read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Opened {
    pub fields: Fields,
    pub plaintext: String,
}

/// Decrypts `data` with the key derived from `md5`, then verifies that `md5` is the digest
/// of the decrypted values (constant-time comparison, case-insensitive hex). A number in
/// the data may have been signed as its JSON text or as a Java double (`4435.0`).
///
/// Base64 is decoded leniently: whitespace is ignored, and spaces that stand for `+` (a
/// payload that went through form decoding) are recognised because only the right reading
/// decrypts to a plaintext whose md5 verifies.
pub fn open(data: &str, md5: &str, sign_key: &SignKey) -> Result<Opened, OpenError> {
    if md5.len() != 32 || !md5.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(OpenError::Md5Format);
    }
    let key = derive_key(md5, sign_key);
    let mut first_error = None;
    for candidate in base64_lenient::readings(data) {
        match open_reading(&candidate, md5, &key) {
            Ok(opened) => return Ok(opened),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or(OpenError::Base64))
}

fn open_reading(b64: &str, md5: &str, key: &[u8; 16]) -> Result<Opened, OpenError> {
    let ciphertext = base64_lenient::decode(b64).ok_or(OpenError::Base64)?;
    let plaintext = cipher::decrypt(key, &ciphertext)?;
    let plaintext = String::from_utf8(plaintext).map_err(|_| OpenError::Utf8)?;
    let fields = parse_object(plaintext.as_bytes()).ok_or(OpenError::NotJsonObject)?;
    if !md5_verifies(&fields, md5) {
        return Err(OpenError::Md5Mismatch);
    }
    Ok(Opened { fields, plaintext })
}

/// Whether `md5` is the digest of `fields`, with numbers as JSON text or, when there are
/// numbers, as Java doubles (both ways senders compute it; nothing else is accepted).
fn md5_verifies(fields: &Fields, md5: &str) -> bool {
    if digest(fields).matches(md5) {
        return true;
    }
    fields.values().any(Value::is_number)
        && digest_with(fields, NumberText::JavaDouble).matches(md5)
}

fn parse_object(bytes: &[u8]) -> Option<Fields> {
    match serde_json::from_slice::<Value>(bytes).ok()? {
        Value::Object(fields) => Some(fields),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
