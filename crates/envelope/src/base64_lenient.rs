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
/// tabs are always wrapping. A space is wrapping, or a `+` mangled by URL/form decoding, or
/// — when the text was wrapped with spaces *and* then form-decoded — either, by position:
/// every few readings are offered and the md5 check decides.
pub(crate) fn readings(text: &str) -> Vec<String> {
    let unwrapped: String = text
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n' | '\t'))
        .collect();
    if !unwrapped.contains(' ') {
        return vec![unwrapped];
    }
    let mut readings = vec![unwrapped.replace(' ', "+"), unwrapped.replace(' ', "")];
    // Wrapped at `width` data characters, the first wrap is the space at index `width`:
    // only the first few spaces' positions are candidates (a bound on the work a hostile
    // body of spaces can cause).
    let widths = unwrapped
        .char_indices()
        .filter(|&(i, c)| c == ' ' && i >= 4)
        .map(|(i, _)| i)
        .take(8);
    for width in widths {
        if let Some(reading) = unwrap_at(&unwrapped, width)
            && !readings.contains(&reading)
        {
            readings.push(reading);
        }
    }
    readings
}

/// `text` wrapped by a space after every `width` characters of data, where every other
/// space is a `+`; `None` if the spaces do not fall that way.
fn unwrap_at(text: &str, width: usize) -> Option<String> {
    if width == 0 {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut in_line = 0;
    for c in text.chars() {
        match c {
            ' ' if in_line == width => in_line = 0,
            _ if in_line == width => return None,
            ' ' => {
                out.push('+');
                in_line += 1;
            }
            c => {
                out.push(c);
                in_line += 1;
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaces_at_the_wrap_width_wrap_and_the_others_are_plus() {
        // "ab+c|d+ef|g" wrapped every 4 characters, then + → space.
        let mangled = "ab c d ef g";
        assert_eq!(unwrap_at(mangled, 4).as_deref(), Some("ab+cd+efg"));
        assert!(readings(mangled).contains(&"ab+cd+efg".to_owned()));
        // A + at the very end of a line makes two spaces in a row.
        assert_eq!(unwrap_at("abc  defg h", 4).as_deref(), Some("abc+defgh"));
        assert_eq!(unwrap_at("abcdefg h", 4), None, "no wrap where one is due");
    }
}
