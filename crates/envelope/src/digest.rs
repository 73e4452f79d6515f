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

/// How a JSON number contributes to the md5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberText {
    /// Its compact JSON text, as received (`4435`, `12.5`): what a sender that signs the
    /// values it serialises computes.
    Json,
    /// Java's `Double.toString` of its value (`4435.0`, `1.7047528085325164E16`): what a
    /// sender that reads the data into doubles before signing computes (docs/envelope.md).
    JavaDouble,
}

/// The envelope md5 of `fields`: keys sorted by their UTF-8 bytes (so `Tip` < `_x` <
/// `amount`), values concatenated with no separator. Strings contribute their text, `null`
/// nothing, and every other value its compact JSON text.
pub fn digest(fields: &Fields) -> Md5Hex {
    digest_with(fields, NumberText::Json)
}

/// [`digest`], with top-level numbers rendered as `numbers` says.
pub fn digest_with(fields: &Fields, numbers: NumberText) -> Md5Hex {
    let mut keys: Vec<&String> = fields.keys().collect();
    keys.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let mut hasher = Md5::new();
    for key in keys {
        match &fields[key.as_str()] {
            Value::String(s) => hasher.update(s.as_bytes()),
            Value::Null => {}
            Value::Number(n) if numbers == NumberText::JavaDouble => {
                hasher.update(java_double(n.as_f64().unwrap_or(f64::NAN)).as_bytes());
            }
            other => hasher.update(other.to_string().as_bytes()),
        }
    }
    Md5Hex(upper_hex(&hasher.finalize()))
}

/// Java's `Double.toString`: plain notation with at least one fractional digit for
/// magnitudes in [10^-3, 10^7), otherwise `d.dddE±n`; the shortest digits that read back
/// as the same double (as JDK 19 and later print them).
pub fn java_double(value: f64) -> String {
    if value == 0.0 {
        return if value.is_sign_negative() {
            "-0.0"
        } else {
            "0.0"
        }
        .to_owned();
    }
    let magnitude = value.abs();
    if (1e-3..1e7).contains(&magnitude) {
        let plain = value.to_string();
        return if plain.contains('.') {
            plain
        } else {
            plain + ".0"
        };
    }
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .unwrap_or((scientific.as_str(), "0"));
    let dot = if mantissa.contains('.') { "" } else { ".0" };
    format!("{mantissa}{dot}E{exponent}")
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
