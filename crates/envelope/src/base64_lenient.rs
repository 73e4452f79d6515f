//! Base64 as OTT Pay peers actually send it: standard alphabet, padded, but sometimes
//! wrapped with whitespace and sometimes with `+` turned into spaces by form decoding.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

pub(crate) fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text).ok()
}

/// The plausible readings of a received `data` string, most likely first. Line breaks and
/// tabs are always wrapping. A space is either wrapping or a `+` mangled by URL/form
/// decoding; both readings are offered and the md5 check decides.
pub(crate) fn readings(text: &str) -> Vec<String> {
    let unwrapped: String = text
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n' | '\t'))
        .collect();
    if !unwrapped.contains(' ') {
        return vec![unwrapped];
    }
    vec![unwrapped.replace(' ', "+"), unwrapped.replace(' ', "")]
}
