//! UnionPay 5.1.0 signatures (docs/unionpay.md): the fields except `signature`, sorted
//! and joined as `k=v&…`; the lower-case hex SHA-256 of that string is signed with
//! SHA256withRSA (`signMethod=01`), Base64.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Message fields, in byte order of their names.
pub type Fields = BTreeMap<String, String>;

/// `k=v&…` over every field but `signature`, sorted by name. Unlike Alipay and WeChat,
/// empty values are kept: UnionPay's SDK signs whatever the message carries.
pub fn signing_string(fields: &Fields) -> String {
    fields
        .iter()
        .filter(|(k, _)| k.as_str() != "signature")
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The lower-case hex SHA-256 of the signing string: what the RSA signature covers.
pub fn digest_hex(fields: &Fields) -> String {
    hex::encode(Sha256::digest(signing_string(fields).as_bytes()))
}

pub fn sign(fields: &Fields, key: &RsaPrivateKey) -> String {
    let signer = SigningKey::<Sha256>::new(key.clone());
    STANDARD.encode(signer.sign(digest_hex(fields).as_bytes()).to_bytes())
}

/// Whether the message's `signature` is valid under `key`; a malformed one is invalid.
pub fn verify(fields: &Fields, key: &RsaPublicKey) -> bool {
    let Some(signature) = fields.get("signature") else {
        return false;
    };
    let Ok(bytes) = STANDARD.decode(signature.trim()) else {
        return false;
    };
    let Ok(signature) = Signature::try_from(bytes.as_slice()) else {
        return false;
    };
    VerifyingKey::<Sha256>::new(key.clone())
        .verify(digest_hex(fields).as_bytes(), &signature)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};

    const MERCHANT_PRIVATE: &str = include_str!("../../testkeys/merchant_private.pem");
    const MERCHANT_PUBLIC: &str = include_str!("../../testkeys/merchant_public.pem");

    fn request() -> Fields {
        [
            ("accessType", "0"),
            ("backUrl", "https://pay.example/notify/unionpay"),
            ("bizType", "000201"),
            ("certId", "69629715588"),
            ("channelType", "08"),
            ("currencyCode", "124"),
            ("encoding", "UTF-8"),
            ("frontUrl", "https://pay.example/checkout/t/return/1"),
            ("merId", "777290058110048"),
            ("orderId", "17953273256573047"),
            ("signMethod", "01"),
            ("txnAmt", "1234"),
            ("txnSubType", "01"),
            ("txnTime", "20261122140000"),
            ("txnType", "01"),
            ("version", "5.1.0"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }

    /// Our own vector: the spec's §6.1 test key, cross-checked outside Rust with
    /// `printf %s "$(printf %s "$S" | sha256sum | cut -c1-64)" | openssl dgst -sha256
    /// -sign merchant_private.pem | base64 -w0` (PKCS#1 v1.5 signatures are deterministic).
    #[test]
    fn a_front_request_signs_as_openssl_does() {
        let fields = request();
        assert_eq!(
            signing_string(&fields),
            "accessType=0&backUrl=https://pay.example/notify/unionpay&bizType=000201&certId=69629715588&channelType=08&currencyCode=124&encoding=UTF-8&frontUrl=https://pay.example/checkout/t/return/1&merId=777290058110048&orderId=17953273256573047&signMethod=01&txnAmt=1234&txnSubType=01&txnTime=20261122140000&txnType=01&version=5.1.0"
        );
        assert_eq!(digest_hex(&fields), DIGEST);
        let key = RsaPrivateKey::from_pkcs8_pem(MERCHANT_PRIVATE).unwrap();
        assert_eq!(sign(&fields, &key), SIGNATURE);
    }

    #[test]
    fn verification_refuses_a_changed_field_or_garbage() {
        let key = RsaPrivateKey::from_pkcs8_pem(MERCHANT_PRIVATE).unwrap();
        let public = RsaPublicKey::from_public_key_pem(MERCHANT_PUBLIC).unwrap();
        let mut fields = request();
        let signature = sign(&fields, &key);
        fields.insert("signature".into(), signature);
        assert!(verify(&fields, &public));
        let mut changed = fields.clone();
        changed.insert("txnAmt".into(), "1".into());
        assert!(!verify(&changed, &public));
        let mut garbage = fields.clone();
        garbage.insert("signature".into(), "not base64!".into());
        assert!(!verify(&garbage, &public));
        fields.remove("signature");
        assert!(!verify(&fields, &public));
    }

    const DIGEST: &str = "4db8bbe3f88fcb6e29e4b1bd30eb6fc689a45be3f592fa0648aab43d014306e4";
    const SIGNATURE: &str = "TbCkwcENymwHohi5lofIZD1g1lYnnnMI5jjmlWvonAQlJY2Zu1sUXI/PD9TFm4VcIX2j2W9sjFIzwWbws+YhK/8E4WRHmaZ5w+DbkJLU0LxeQD57zvoLRNcHZ1KtFWmkhkVPKvwaZ6UPrbkYKSD4bAy34qCxD8Rr+Ly51Myke8QnrGdGuxHUkMV57GC+aD1Xz7qrFPrY5X1jf6uKaGlYXwV0gdRwHc81tDvlfMHXox31bjY6PUmkNu66f+J70J4JRLzAF6rkmoxzZysmdVnnkODf39qldp4JJNlqvxySO54E/D/I/XkckpUXltgfAcJBEGDlRC/wPPB7rPu9J4ruKQ==";
}
