//! Checking the `OTTGate-Signature` header every ottgate callback carries:
//! `t=<unix seconds>,v1=<hex HMAC-SHA256(webhook_secret, "<t>.<raw body>")>`. It proves the
//! callback came from the gateway and was not changed, without decrypting the body; the
//! tolerance on `t` turns away a recorded callback replayed later. OTT Pay integrations that
//! only check the envelope's md5 keep working: the body is the same envelope.

use hmac::{Hmac, Mac};
use std::time::Duration;

/// Why a callback's signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Not `t=<seconds>,v1=<hex>[,v1=<hex>…]`.
    #[error("the OTTGate-Signature header is malformed")]
    Malformed,
    /// Signed too long before (or after) now: a recorded callback replayed.
    #[error("the callback was signed {seconds} s from now, beyond the tolerance")]
    Stale {
        /// How far from now it was signed.
        seconds: u64,
    },
    /// No `v1` matches this body under the merchant's secret.
    #[error("the OTTGate-Signature does not match the body")]
    Mismatch,
}

/// Verifies `header` (the `OTTGate-Signature` value) over the raw `body` with the merchant's
/// `webhook_secret`, accepting a signing time within `tolerance` of `now_unix` (seconds).
/// Check it on the body exactly as received, before parsing it.
///
/// ```
/// use ottgate_client::{SignatureError, verify_signature_header};
/// use std::time::Duration;
/// let body = br#"{"rsp_code":"SUCCESS"}"#;
/// let header = "t=1764900000,v1=4723fa5fec172b5c6bfa4302df8522e0a7751536a82bf289dc091ff28d8ca453";
/// let five_minutes = Duration::from_secs(300);
/// assert_eq!(verify_signature_header("whsec_test", header, body, 1764900060, five_minutes), Ok(()));
/// // Replayed an hour later: stale.
/// assert!(matches!(
///     verify_signature_header("whsec_test", header, body, 1764903600, five_minutes),
///     Err(SignatureError::Stale { .. })
/// ));
/// // Another body, or another secret: no match.
/// assert_eq!(
///     verify_signature_header("whsec_test", header, b"{}", 1764900060, five_minutes),
///     Err(SignatureError::Mismatch)
/// );
/// ```
pub fn verify_signature_header(
    webhook_secret: &str,
    header: &str,
    body: &[u8],
    now_unix: i64,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let mut signed_at = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => {
                signed_at = Some(t.parse::<i64>().map_err(|_| SignatureError::Malformed)?)
            }
            Some(("v1", v)) => {
                candidates.push(hex::decode(v).map_err(|_| SignatureError::Malformed)?)
            }
            // Other schemes may be added later; they are ignored.
            _ => {}
        }
    }
    let signed_at = signed_at.ok_or(SignatureError::Malformed)?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let age = now_unix.abs_diff(signed_at);
    if age > tolerance.as_secs() {
        return Err(SignatureError::Stale { seconds: age });
    }
    let matches = candidates.iter().any(|candidate| {
        let Ok(mut mac) = <Hmac<sha2::Sha256> as Mac>::new_from_slice(webhook_secret.as_bytes())
        else {
            return false;
        };
        mac.update(format!("{signed_at}.").as_bytes());
        mac.update(body);
        // Constant time.
        mac.verify_slice(candidate).is_ok()
    });
    if matches {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"rsp_code":"SUCCESS"}"#;
    // HMAC-SHA256("whsec_test", "1700000000." + BODY), computed independently (Python's hmac).
    const HEADER: &str =
        "t=1700000000,v1=ce1e21fae73cffd73f47ef150d12e6cf0b90fb2cbced0858d7807d59d93da388";
    const FIVE_MINUTES: Duration = Duration::from_secs(300);

    #[test]
    fn a_genuine_signature_verifies_within_the_tolerance() {
        assert_eq!(
            verify_signature_header("whsec_test", HEADER, BODY, 1_700_000_100, FIVE_MINUTES),
            Ok(())
        );
    }

    #[test]
    fn a_changed_body_another_secret_or_an_old_signature_is_refused() {
        let now = 1_700_000_100;
        assert_eq!(
            verify_signature_header("whsec_test", HEADER, b"{}", now, FIVE_MINUTES),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature_header("whsec_other", HEADER, BODY, now, FIVE_MINUTES),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature_header("whsec_test", HEADER, BODY, 1_700_001_000, FIVE_MINUTES),
            Err(SignatureError::Stale { seconds: 1000 })
        );
        for malformed in [
            "",
            "t=abc,v1=00",
            "v1=00",
            "t=1700000000",
            "t=1700000000,v1=zz",
        ] {
            assert_eq!(
                verify_signature_header("whsec_test", malformed, BODY, now, FIVE_MINUTES),
                Err(SignatureError::Malformed),
                "{malformed}"
            );
        }
    }
}
