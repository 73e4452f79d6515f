//! REST bearer tokens: HS512 JWTs that live 900 s, as OTT Pay issues them.
//!
//! Deliberately small and strict: the header must say exactly `HS512` (so `alg: none` and
//! algorithm confusion are refused before anything else), the signature is checked in
//! constant time, and only then are the claims read.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use ottgate_core::{MerchantId, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::Sha512;
use std::fmt;
use std::time::Duration;

/// OTT Pay's tokens live 15 minutes (docs/rest.md).
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(900);

/// Signs and verifies tokens with the deployment's JWT secret.
#[derive(Clone)]
pub struct TokenSigner {
    key: Vec<u8>,
}

impl fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSigner(***)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The appId.
    pub sub: String,
    /// The merchant id.
    pub mid: String,
    /// Issue time, epoch milliseconds (as OTT Pay's tokens carry it).
    pub created: i64,
    /// Expiry, epoch seconds.
    pub exp: i64,
    pub usertype: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is malformed")]
    Malformed,
    #[error("token algorithm is not HS512")]
    Algorithm,
    #[error("token signature is invalid")]
    Signature,
    #[error("token has expired")]
    Expired,
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
}

impl TokenSigner {
    pub fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    #[expect(clippy::expect_used, reason = "HMAC accepts keys of every length")]
    fn mac(&self) -> Hmac<Sha512> {
        <Hmac<Sha512> as Mac>::new_from_slice(&self.key).expect("any key length")
    }

    /// A token for `app_id` of `merchant`, and when it expires (epoch milliseconds).
    pub fn issue(&self, app_id: &str, merchant: &MerchantId, now: Timestamp) -> (String, i64) {
        let expires = now.plus(TOKEN_LIFETIME);
        let claims = Claims {
            sub: app_id.to_owned(),
            mid: merchant.to_string(),
            created: now.epoch_millis(),
            exp: expires.epoch_seconds(),
            usertype: "CUSTOMER".into(),
        };
        let header = Header {
            alg: "HS512".into(),
            typ: None,
        };
        let signing_input = format!("{}.{}", b64_json(&header), b64_json(&claims));
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        (
            format!("{signing_input}.{signature}"),
            expires.epoch_millis(),
        )
    }

    pub fn verify(&self, token: &str, now: Timestamp) -> Result<Claims, TokenError> {
        let (signing_input, signature) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let (header, payload) = signing_input.split_once('.').ok_or(TokenError::Malformed)?;
        if payload.contains('.') {
            return Err(TokenError::Malformed);
        }
        let decode = |part: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| TokenError::Malformed)
        };
        let header: Header =
            serde_json::from_slice(&decode(header)?).map_err(|_| TokenError::Malformed)?;
        if header.alg != "HS512" {
            return Err(TokenError::Algorithm);
        }
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        mac.verify_slice(&decode(signature)?)
            .map_err(|_| TokenError::Signature)?;
        let claims: Claims =
            serde_json::from_slice(&decode(payload)?).map_err(|_| TokenError::Malformed)?;
        if now.epoch_seconds() >= claims.exp {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

fn b64_json<T: Serialize>(value: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp::from_epoch_millis(1_677_688_034_291);

    fn signer() -> TokenSigner {
        TokenSigner::new(b"0123456789abcdef0123456789abcdef")
    }

    fn merchant() -> MerchantId {
        MerchantId::parse("ON00000185").unwrap()
    }

    #[test]
    fn a_token_lives_exactly_900_seconds() {
        let (token, expired) = signer().issue("ON00000185", &merchant(), T0);
        assert_eq!(expired, T0.epoch_millis() + 900_000);
        let claims = signer()
            .verify(&token, T0.plus(Duration::from_secs(899)))
            .unwrap();
        assert_eq!(
            (
                claims.sub.as_str(),
                claims.mid.as_str(),
                claims.usertype.as_str()
            ),
            ("ON00000185", "ON00000185", "CUSTOMER")
        );
        assert_eq!(claims.created, T0.epoch_millis());
        assert_eq!(
            signer().verify(&token, T0.plus(Duration::from_secs(900))),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn the_header_is_hs512() {
        let (token, _) = signer().issue("a", &merchant(), T0);
        let header = URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap();
        assert_eq!(header, br#"{"alg":"HS512"}"#);
    }

    #[test]
    fn another_secret_or_a_changed_claim_is_refused() {
        let (token, _) = signer().issue("a", &merchant(), T0);
        let other = TokenSigner::new(b"another secret, also 32 bytes..!");
        assert_eq!(other.verify(&token, T0), Err(TokenError::Signature));
        let parts: Vec<&str> = token.split('.').collect();
        let forged_claims = URL_SAFE_NO_PAD.encode(
            br#"{"sub":"b","mid":"ON99999999","created":0,"exp":9999999999,"usertype":"CUSTOMER"}"#,
        );
        let forged = format!("{}.{}.{}", parts[0], forged_claims, parts[2]);
        assert_eq!(signer().verify(&forged, T0), Err(TokenError::Signature));
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        let claims = URL_SAFE_NO_PAD.encode(
            br#"{"sub":"a","mid":"ON00000185","created":0,"exp":9999999999,"usertype":"CUSTOMER"}"#,
        );
        for alg in [
            r#"{"alg":"none"}"#,
            r#"{"alg":"HS256"}"#,
            r#"{"alg":"hs512"}"#,
        ] {
            let token = format!("{}.{claims}.", URL_SAFE_NO_PAD.encode(alg));
            assert_eq!(
                signer().verify(&token, T0),
                Err(TokenError::Algorithm),
                "{alg}"
            );
        }
    }

    #[test]
    fn garbage_is_malformed_and_never_panics() {
        for token in [
            "",
            "a",
            "a.b",
            "a.b.c.d",
            "!!.!!.!!",
            "e30.e30.",
            "eyJhbGciOiJIUzUxMiJ9.bm90IGpzb24.AAAA",
        ] {
            assert!(signer().verify(token, T0).is_err(), "{token}");
        }
    }
}
