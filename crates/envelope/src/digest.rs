//! The md5 of a transaction-data object: values concatenated in byte order of their keys.

use md5::{Digest, Md5};
use serde_json::Value;
use std::fmt;
use subtle::ConstantTimeEq;

use crate::Fields;

/// 32 upper-case hexadecimal characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Md5Hex(String);

impl Md5Hex {
    pub(crate) fn from_upper_hex(s: String) -> Self {
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Constant-time, case-insensitive comparison with a wire value.
    pub fn matches(&self, other: &str) -> bool {
        let other = other.to_ascii_uppercase();
        self.0.len() == other.len() && bool::from(self.0.as_bytes().ct_eq(other.as_bytes()))
    }
}

impl fmt::Display for Md5Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Md5Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Md5Hex({})", self.0)
    }
}

/// The envelope md5 of `fields`: keys sorted by their UTF-8 bytes (so `Tip` < `_x` <
/// `amount`), values concatenated with no separator. Strings contribute their text, `null`
/// nothing, and every other value its compact JSON text.
pub fn digest(fields: &Fields) -> Md5Hex {
    let mut keys: Vec<&String> = fields.keys().collect();
    keys.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let mut hasher = Md5::new();
    for key in keys {
        match &fields[key.as_str()] {
            Value::String(s) => hasher.update(s.as_bytes()),
            Value::Null => {}
            other => hasher.update(other.to_string().as_bytes()),
        }
    }
    Md5Hex(upper_hex(&hasher.finalize()))
}

pub(crate) fn md5_upper_hex(bytes: &[u8]) -> String {
    upper_hex(&Md5::digest(bytes))
}

fn upper_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}
