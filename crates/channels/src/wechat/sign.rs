//! WeChat Pay v2 signatures (docs/wechatpay.md): `k=v&…` over the sorted non-empty
//! fields except `sign`, then `&key=API_KEY`; MD5 or HMAC-SHA256, upper-case hex.

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use ottgate_core::Secret;
use sha2::Sha256;
use std::collections::BTreeMap;
use subtle::ConstantTimeEq;

/// Message fields, iterated in byte order of their names.
pub type Fields = BTreeMap<String, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignType {
    Md5,
    HmacSha256,
}

impl SignType {
    pub fn code(self) -> &'static str {
        match self {
            SignType::Md5 => "MD5",
            SignType::HmacSha256 => "HMAC-SHA256",
        }
    }

    /// A message's `sign_type` field: absent means MD5.
    pub fn of(fields: &Fields) -> Option<Self> {
        match fields.get("sign_type").map(String::as_str) {
            None | Some("") | Some("MD5") => Some(SignType::Md5),
            Some("HMAC-SHA256") => Some(SignType::HmacSha256),
            Some(_) => None,
        }
    }
}

/// `stringA` of the documentation: sorted, non-empty, `sign` excluded (`sign_type` kept).
pub fn string_a(fields: &Fields) -> String {
    fields
        .iter()
        .filter(|(k, v)| k.as_str() != "sign" && !v.is_empty())
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

#[expect(clippy::expect_used, reason = "HMAC accepts keys of every length")]
pub fn sign(fields: &Fields, sign_type: SignType, api_key: &Secret) -> String {
    let temp = format!("{}&key={}", string_a(fields), api_key.expose_secret());
    let digest = match sign_type {
        SignType::Md5 => Md5::digest(temp.as_bytes()).to_vec(),
        SignType::HmacSha256 => {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(api_key.expose_secret().as_bytes())
                .expect("any key length");
            mac.update(temp.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
    };
    hex::encode_upper(digest)
}

/// Verifies a message's `sign` with the sign type it declares; constant-time,
/// case-insensitive.
pub fn verify(fields: &Fields, api_key: &Secret) -> bool {
    let (Some(given), Some(sign_type)) = (fields.get("sign"), SignType::of(fields)) else {
        return false;
    };
    let expected = sign(fields, sign_type, api_key);
    let given = given.trim().to_ascii_uppercase();
    expected.len() == given.len() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pay_sign_reproduces_wechats_published_jsapi_example() {
        let params = fields(&[
            ("appId", "wxd678efh567hg6787"),
            ("nonceStr", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS"),
            ("package", "prepay_id=wx2017033010242291fcfe0db70013231072"),
            ("signType", "MD5"),
            ("timeStamp", "1490840662"),
        ]);
        let key = Secret::new("qazwsxedcrfvtgbyhnujmikolp111111");
        assert_eq!(
            sign(&params, SignType::Md5, &key),
            "22D9B4E54AB1950F51E0649E8810ACD6"
        );
    }

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_official_example_signs_with_md5_and_hmac() {
        let f = fields(&[
            ("appid", "wxd930ea5d5a258f4f"),
            ("mch_id", "10000100"),
            ("device_info", "1000"),
            ("body", "test"),
            ("nonce_str", "ibuaiVcKdpRxkhJA"),
        ]);
        let key = Secret::new("192006250b4c09247ec02edce69f6a2d");
        assert_eq!(
            sign(&f, SignType::Md5, &key),
            "9A0A8659F005D6984697E2CA0A9CF3B7"
        );
        assert_eq!(
            sign(&f, SignType::HmacSha256, &key),
            "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"
        );
    }

    fn unifiedorder() -> Fields {
        fields(&[
            ("appid", "wx0000000000000001"),
            ("body", "Test Store-Order"),
            ("detail", ""),
            ("fee_type", "CAD"),
            ("mch_id", "1900000001"),
            ("nonce_str", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS"),
            ("notify_url", "https://gw.example.test/wechat/notify"),
            ("out_trade_no", "WX0000000000000001"),
            ("product_id", "P001"),
            ("spbill_create_ip", "203.0.113.10"),
            ("sub_mch_id", "1900000002"),
            ("total_fee", "1"),
            ("trade_type", "NATIVE"),
        ])
    }

    #[test]
    fn vector_e_unifiedorder_md5_and_hmac_sha256() {
        let key = Secret::new("OttSimWeChatApiKey00000000000000");
        let order = unifiedorder();
        assert!(
            !string_a(&order).contains("detail"),
            "empty fields are left out"
        );
        assert_eq!(
            sign(&order, SignType::Md5, &key),
            "ABBB2157976AA71501A63ED8E36F4F06"
        );
        let mut hmac = order.clone();
        hmac.insert("sign_type".into(), "HMAC-SHA256".into());
        assert!(
            string_a(&hmac).contains("&sign_type=HMAC-SHA256&"),
            "sign_type is signed"
        );
        assert_eq!(
            sign(&hmac, SignType::HmacSha256, &key),
            "390E9CD413F1ABB9B3EEC29E0B398D22A5492D9BE353D11613F84C9F4137592C"
        );
    }

    #[test]
    fn vector_e_notification_verifies_and_a_change_breaks_it() {
        let key = Secret::new("OttSimWeChatApiKey00000000000000");
        let mut n = fields(&[
            ("appid", "wx0000000000000001"),
            ("bank_type", "CFT"),
            ("cash_fee", "5"),
            ("cash_fee_type", "CNY"),
            ("fee_type", "CAD"),
            ("mch_id", "1900000001"),
            ("nonce_str", "Z7pLq0ExampleNonce00000000000001"),
            ("openid", "oTestOpenId0000000000000001"),
            ("out_trade_no", "WX0000000000000001"),
            ("result_code", "SUCCESS"),
            ("return_code", "SUCCESS"),
            ("sub_mch_id", "1900000002"),
            ("time_end", "20240115102030"),
            ("total_fee", "1"),
            ("trade_type", "NATIVE"),
            ("transaction_id", "4200000000202401150000000001"),
        ]);
        assert_eq!(
            sign(&n, SignType::Md5, &key),
            "EB15C0253DEB85393CDDA31D5166305C"
        );
        n.insert("sign".into(), "eb15c0253deb85393cdda31d5166305c".into());
        assert!(verify(&n, &key));
        n.insert("total_fee".into(), "100".into());
        assert!(!verify(&n, &key));
        n.insert("sign_type".into(), "SHA1".into());
        assert!(!verify(&n, &key), "an unknown sign type never verifies");
    }
}
