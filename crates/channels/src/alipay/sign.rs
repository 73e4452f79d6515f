//! Alipay MAPI signatures (docs/alipay.md): the pre-sign string, and MD5, RSA
//! (SHA1withRSA) and RSA2 (SHA256withRSA) over it. Pure functions.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use md5::{Digest, Md5};
use ottgate_core::Secret;
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::{RsaPrivateKey, RsaPublicKey};
use std::collections::BTreeMap;
use std::fmt;
use subtle::ConstantTimeEq;

/// Request or notification parameters. A `BTreeMap` of `String`s iterates in byte-wise
/// order of the names, which is exactly Alipay's sort.
pub type Params = BTreeMap<String, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignType {
    Md5,
    /// SHA1withRSA
    Rsa,
    /// SHA256withRSA
    Rsa2,
}

impl SignType {
    pub fn code(self) -> &'static str {
        match self {
            SignType::Md5 => "MD5",
            SignType::Rsa => "RSA",
            SignType::Rsa2 => "RSA2",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [SignType::Md5, SignType::Rsa, SignType::Rsa2]
            .into_iter()
            .find(|t| t.code() == s)
    }
}

/// Key material to sign with: the shared MD5 key, or an RSA private key.
#[derive(Clone)]
pub enum SigningMaterial {
    Md5(Secret),
    Rsa(Box<RsaPrivateKey>),
}

/// Key material to verify with: the shared MD5 key, or the signer's RSA public key.
#[derive(Clone)]
pub enum VerifyingMaterial {
    Md5(Secret),
    Rsa(Box<RsaPublicKey>),
}

impl fmt::Debug for SigningMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SigningMaterial::Md5(_) => "SigningMaterial::Md5(***)",
            SigningMaterial::Rsa(_) => "SigningMaterial::Rsa(***)",
        })
    }
}

impl fmt::Debug for VerifyingMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VerifyingMaterial::Md5(_) => "VerifyingMaterial::Md5(***)",
            VerifyingMaterial::Rsa(_) => "VerifyingMaterial::Rsa(public key)",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("sign type {0} needs {1} key material")]
    WrongKey(&'static str, &'static str),
    #[error("RSA signing failed")]
    Rsa,
}

/// Every parameter except `sign` and `sign_type`, with empty values dropped, sorted by name
/// (byte order), joined as raw `name=value` pairs with `&`.
pub fn presign(params: &Params) -> String {
    let mut out = String::new();
    for (name, value) in params {
        if name == "sign" || name == "sign_type" || value.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

/// Signs `content` (a pre-sign string): MD5 → 32 lower-case hex; RSA/RSA2 → Base64.
pub fn sign_content(
    content: &str,
    sign_type: SignType,
    key: &SigningMaterial,
) -> Result<String, SignError> {
    match (sign_type, key) {
        (SignType::Md5, SigningMaterial::Md5(k)) => Ok(md5_hex(
            [content.as_bytes(), k.expose_secret().as_bytes()]
                .concat()
                .as_slice(),
        )),
        (SignType::Rsa, SigningMaterial::Rsa(k)) => {
            let signer = SigningKey::<sha1::Sha1>::new((**k).clone());
            let sig = signer
                .try_sign(content.as_bytes())
                .map_err(|_| SignError::Rsa)?;
            Ok(STANDARD.encode(sig.to_bytes()))
        }
        (SignType::Rsa2, SigningMaterial::Rsa(k)) => {
            let signer = SigningKey::<sha2::Sha256>::new((**k).clone());
            let sig = signer
                .try_sign(content.as_bytes())
                .map_err(|_| SignError::Rsa)?;
            Ok(STANDARD.encode(sig.to_bytes()))
        }
        (SignType::Md5, _) => Err(SignError::WrongKey("MD5", "an MD5")),
        (t, _) => Err(SignError::WrongKey(t.code(), "an RSA private")),
    }
}

/// Whether `signature` is `sign_type`'s signature of `content` under `key`. MD5 compares
/// case-insensitively in constant time; a malformed signature is simply invalid.
pub fn verify_content(
    content: &str,
    sign_type: SignType,
    signature: &str,
    key: &VerifyingMaterial,
) -> bool {
    match (sign_type, key) {
        (SignType::Md5, VerifyingMaterial::Md5(k)) => {
            let expected = md5_hex(
                [content.as_bytes(), k.expose_secret().as_bytes()]
                    .concat()
                    .as_slice(),
            );
            let given = signature.trim().to_ascii_lowercase();
            expected.len() == given.len() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
        }
        (SignType::Rsa | SignType::Rsa2, VerifyingMaterial::Rsa(k)) => {
            let Ok(bytes) = STANDARD.decode(signature.trim()) else {
                return false;
            };
            let Ok(sig) = Signature::try_from(bytes.as_slice()) else {
                return false;
            };
            if sign_type == SignType::Rsa {
                VerifyingKey::<sha1::Sha1>::new((**k).clone())
                    .verify(content.as_bytes(), &sig)
                    .is_ok()
            } else {
                VerifyingKey::<sha2::Sha256>::new((**k).clone())
                    .verify(content.as_bytes(), &sig)
                    .is_ok()
            }
        }
        _ => false,
    }
}

/// Signs parameters (their pre-sign string).
pub fn sign(
    params: &Params,
    sign_type: SignType,
    key: &SigningMaterial,
) -> Result<String, SignError> {
    sign_content(&presign(params), sign_type, key)
}

/// Verifies parameters carrying `sign` (and `sign_type`, which must be `expected`).
pub fn verify(params: &Params, expected: SignType, key: &VerifyingMaterial) -> bool {
    let (Some(signature), Some(sign_type)) = (params.get("sign"), params.get("sign_type")) else {
        return false;
    };
    SignType::parse(sign_type) == Some(expected)
        && verify_content(&presign(params), expected, signature, key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
    use rstest::rstest;

    const MERCHANT_PRIVATE: &str = include_str!("../../testkeys/merchant_private.pem");
    const MERCHANT_PUBLIC: &str = include_str!("../../testkeys/merchant_public.pem");
    const MD5_KEY: &str = "ottsimtestmd5key0123456789abcdef";
    const DEMO_KEY: &str = "760bdzec6y9goq7ctyx96ezkz78287de";

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn rsa_private() -> SigningMaterial {
        SigningMaterial::Rsa(Box::new(
            RsaPrivateKey::from_pkcs8_pem(MERCHANT_PRIVATE).unwrap(),
        ))
    }

    fn rsa_public() -> VerifyingMaterial {
        VerifyingMaterial::Rsa(Box::new(
            RsaPublicKey::from_public_key_pem(MERCHANT_PUBLIC).unwrap(),
        ))
    }

    /// Our vector A: a `create_forex_trade_wap` request.
    fn vector_a() -> Params {
        params(&[
            ("service", "create_forex_trade_wap"),
            ("partner", "2088000000000001"),
            ("_input_charset", "UTF-8"),
            ("notify_url", "https://gw.example.test/alipay/notify"),
            ("return_url", "https://shop.example.test/return"),
            ("out_trade_no", "AL0000000000000001"),
            ("subject", "Test Store"),
            ("total_fee", "0.01"),
            ("currency", "CAD"),
            ("product_code", "NEW_WAP_OVERSEAS_SELLER"),
            ("secondary_merchant_id", "ON00000001"),
            ("secondary_merchant_name", "Test Store"),
            ("secondary_merchant_industry", "5331"),
            ("app_pay", "Y"),
            ("body", ""),
        ])
    }

    /// Our vector B: an asynchronous payment notification.
    fn vector_b() -> Params {
        params(&[
            ("notify_id", "0000000000000000000000000000000001"),
            ("notify_type", "trade_status_sync"),
            ("notify_time", "2024-01-15 10:20:30"),
            ("out_trade_no", "AL0000000000000001"),
            ("trade_no", "2024011522001300000000000001"),
            ("total_fee", "0.01"),
            ("currency", "CAD"),
            ("trade_status", "TRADE_FINISHED"),
        ])
    }

    #[test]
    fn vector_a_presign_drops_empty_values_and_sorts_by_bytes() {
        assert_eq!(
            presign(&vector_a()),
            "_input_charset=UTF-8&app_pay=Y&currency=CAD&notify_url=https://gw.example.test/alipay/notify&out_trade_no=AL0000000000000001&partner=2088000000000001&product_code=NEW_WAP_OVERSEAS_SELLER&return_url=https://shop.example.test/return&secondary_merchant_id=ON00000001&secondary_merchant_industry=5331&secondary_merchant_name=Test Store&service=create_forex_trade_wap&subject=Test Store&total_fee=0.01"
        );
    }

    #[rstest]
    #[case(SignType::Md5, "4b785d80f97aa1e2af1e7cb4870790b1")]
    #[case(
        SignType::Rsa,
        "w1VA2eePWZ/F6yKoZuo1Eaw0P9t54C7hD4ZNmR3Iwot+EdJBW4kHTogdU739YbQMRaTyoeFg9yvD9Qjy5hkPSasIV4rCJGXHKGo4LVJC5aFYqoEdXDIf2vHTr/Z3QLmLXIssGn7SeSQlFpQWLebzJXgHaht4xLHWySzZHwWlGG7YWJMLs9i30nrMCkypCClsaXwuveyXf2/FdOJ2eaFjbzctWbvXmuQxneEnD7nZ5cj7p30LJB+eEOE5RgojE1O1R5tnxNUpvDZkkYS+u3uKBmrpKO+c6yyKCshURZSz0tPR2E5UE5rbVCY4Bftj0ZHfk8nG18Vdkerw+dbjLJ7t4A=="
    )]
    #[case(
        SignType::Rsa2,
        "rOIE/yNiAeIxY0tl1lkxs9MQ0FXP9R+jex2eEMTtQXwgAlF7fY4WV7WiUckpvXleYNdnrH1BJck3gb4zgYzft8coUN2VcwtwD4z3H1kcRqWcQc7bw82T2GpCXiH5libGhPfJtNSoFiZ+uSf1ypgPAFGi0/XKZIq/Dl9kPogliDfxtjQXaAY4B1avOwuhUaYCvHoTwGX4x4oODH2MJWMEJKFlzpgmwTlWNwdOApe18vetobOIj9NV37nbbjrPN5W9v8btxbaAIK0pvmFWn4sJ3d9bgP5zmlnpflyAq4D1+6mJbgKE9VNZKWgeUa5IezDYurbAWkkNXYfCGc/BmDq98A=="
    )]
    fn vector_a_signs_byte_for_byte(#[case] sign_type: SignType, #[case] expected: &str) {
        let (signing, verifying) = match sign_type {
            SignType::Md5 => (
                SigningMaterial::Md5(Secret::new(MD5_KEY)),
                VerifyingMaterial::Md5(Secret::new(MD5_KEY)),
            ),
            _ => (rsa_private(), rsa_public()),
        };
        assert_eq!(sign(&vector_a(), sign_type, &signing).unwrap(), expected);
        let mut signed = vector_a();
        signed.insert("sign".into(), expected.into());
        signed.insert("sign_type".into(), sign_type.code().into());
        assert!(verify(&signed, sign_type, &verifying));
    }

    #[rstest]
    #[case(SignType::Md5, "ce3db0275a9dca101378851d7118cb44")]
    #[case(
        SignType::Rsa,
        "e5PERa/6hGm1lReBeOS+rPG2vsaQKnZzKJAcFt/1boBgVD4uVITJ6W5BorN2anIhOJNGEJSP1AXUiXejKNHBNBxf8KbHcwGV1Dph64R6sthzOik4lKcSz+b4K66IE2X8XFE8PYIeDXsYuDLXq+ytscqtpt23s6KKPiHxAZjy3ENoArdvoBCj62B2Zo6GSfPZsZB5T4qZKn4bQkCbfeZ7/J9udFW3/nXDLjstxuXDszbQPzRIl+JIVkETQOuKd36b35T/TbrJJBcRiAkkOvHVX+GzXROBnrJk257ZvLHuPoZOY9shAe6MPksmnRsekLmq9x9DEL7CVAxxoiCrpdXkoA=="
    )]
    #[case(
        SignType::Rsa2,
        "Jj1hMXNS8MXIXE1Cz/OcGF9usYoBYElqMgdxZfgjfZzNHebjfxcwrxAWyDpWjYeqb9kLqvQ9UnqJ6MK2uBmqcCyzGed/762I0gdnR1GPeXvwVHlJj8FDmx9NTdiztQ6TG6K0xBtqMvDDS84zoFw690ht40sYisREhR3J4ig7m0OC12lEUCGoOKFWmVA+vNr3CJdfdFW+lsd5V3mW056+KUwcctZRPMb/QOY2yWWbVeizu3OifZaUpo4eE4fuHzQ9ygBar9Fn6yAYx7LwXbYwc9qfZr5v+09vbtKFxmZ7zV8zZD3icCQWT8esWih0T59zwy0hDrCqCjZZ6kQ8xKECjQ=="
    )]
    fn vector_b_notification_signs_and_verifies(
        #[case] sign_type: SignType,
        #[case] expected: &str,
    ) {
        assert_eq!(
            presign(&vector_b()),
            "currency=CAD&notify_id=0000000000000000000000000000000001&notify_time=2024-01-15 10:20:30&notify_type=trade_status_sync&out_trade_no=AL0000000000000001&total_fee=0.01&trade_no=2024011522001300000000000001&trade_status=TRADE_FINISHED"
        );
        let (signing, verifying) = match sign_type {
            SignType::Md5 => (
                SigningMaterial::Md5(Secret::new(MD5_KEY)),
                VerifyingMaterial::Md5(Secret::new(MD5_KEY)),
            ),
            _ => (rsa_private(), rsa_public()),
        };
        assert_eq!(sign(&vector_b(), sign_type, &signing).unwrap(), expected);
        let mut tampered = vector_b();
        tampered.insert("sign".into(), expected.into());
        tampered.insert("sign_type".into(), sign_type.code().into());
        assert!(verify(&tampered, sign_type, &verifying));
        tampered.insert("total_fee".into(), "100.00".into());
        assert!(
            !verify(&tampered, sign_type, &verifying),
            "a changed amount breaks the signature"
        );
    }

    #[test]
    fn vectors_c_and_d_query_and_refund() {
        let key = SigningMaterial::Md5(Secret::new(MD5_KEY));
        let query = params(&[
            ("_input_charset", "UTF-8"),
            ("out_trade_no", "AL0000000000000001"),
            ("partner", "2088000000000001"),
            ("service", "single_trade_query"),
        ]);
        assert_eq!(
            sign(&query, SignType::Md5, &key).unwrap(),
            "d08dff67ebd5805b4b5d88825c4d167b"
        );
        let refund = params(&[
            ("_input_charset", "UTF-8"),
            ("currency", "CAD"),
            ("gmt_return", "20240115102030"),
            ("out_return_no", "RF0000000000000001"),
            ("out_trade_no", "AL0000000000000001"),
            ("partner", "2088000000000001"),
            ("product_code", "NEW_WAP_OVERSEAS_SELLER"),
            ("reason", "customer request"),
            ("return_amount", "0.01"),
            ("service", "forex_refund"),
        ]);
        assert_eq!(
            sign(&refund, SignType::Md5, &key).unwrap(),
            "63ac9b51e45ebc7f8146128f5d42c58f"
        );
    }

    /// Third-party vectors under Alipay's public demo key.
    #[rstest]
    #[case(
        "_input_charset=utf-8&currency=USD&notify_url=https://example.com/notify&out_trade_no=12345&partner=2088101122136241&service=create_forex_trade_wap&subject=product_name&supplier=company_name&total_fee=350.45",
        "c19f42a597963f118c4f99f2fc7f716f"
    )]
    #[case(
        "_input_charset=utf-8&currency=USD&notify_url=https://example.com/notify&out_trade_no=12345&partner=2088101122136241&rmb_fee=0.10&service=create_forex_trade&subject=product_name&supplier=company_name",
        "4986b31c8febb978ee6d6c45f76614ac"
    )]
    #[case(
        "_input_charset=utf-8&out_trade_no=SAMPLE_TRANSACTION_ID&partner=2088101122136241&service=single_trade_query",
        "d4d3825356fd0799ee16829acffc1460"
    )]
    #[case(
        "_input_charset=utf-8&currency=USD&gmt_return=20150320120000&out_return_no=SAMPLE_REFUND_ID&out_trade_no=SAMPLE_TRANSACTION_ID&partner=2088101122136241&reason=hello&return_rmb_amount=200.00&service=forex_refund",
        "a77e894e71491f41e73ebe40319cc300"
    )]
    #[case(
        "currency=USD&notify_id=8cc4f9dca6ac0bdcc944b0cd51ce41292l&notify_time=2015-08-25 09:25:03&notify_type=trade_status_sync&out_trade_no=20150825092330&total_fee=0.01&trade_no=2015082500001000100080033805&trade_status=TRADE_FINISHED",
        "6aa07c5e5119eebc22d5fd9af78e39e1"
    )]
    fn third_party_vectors_reproduce(#[case] presign_string: &str, #[case] expected: &str) {
        // Rebuild the parameters and check our presign reproduces the published string too.
        let parsed: Params = presign_string
            .split('&')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_owned(), v.to_owned())
            })
            .collect();
        assert_eq!(presign(&parsed), presign_string);
        assert_eq!(
            sign(
                &parsed,
                SignType::Md5,
                &SigningMaterial::Md5(Secret::new(DEMO_KEY))
            )
            .unwrap(),
            expected
        );
    }

    #[test]
    fn verification_refuses_the_wrong_type_key_or_garbage() {
        let mut signed = vector_b();
        signed.insert("sign".into(), "ce3db0275a9dca101378851d7118cb44".into());
        signed.insert("sign_type".into(), "MD5".into());
        let md5 = VerifyingMaterial::Md5(Secret::new(MD5_KEY));
        assert!(verify(&signed, SignType::Md5, &md5));
        assert!(
            !verify(&signed, SignType::Rsa2, &md5),
            "only the configured sign type is accepted"
        );
        assert!(!verify(
            &signed,
            SignType::Md5,
            &VerifyingMaterial::Md5(Secret::new("another key"))
        ));
        signed.insert("sign".into(), "CE3DB0275A9DCA101378851D7118CB44".into());
        assert!(
            verify(&signed, SignType::Md5, &md5),
            "MD5 compares case-insensitively"
        );
        signed.insert("sign_type".into(), "RSA2".into());
        signed.insert("sign".into(), "not base64 !!".into());
        assert!(!verify(&signed, SignType::Rsa2, &rsa_public()));
        signed.remove("sign");
        assert!(!verify(&signed, SignType::Rsa2, &rsa_public()));
    }
}
