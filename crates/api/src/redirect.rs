//! The checkout browser return: the query parameters appended to the merchant's
//! `redirect_url`, and their signature.

use ottgate_envelope::{SignKey, sign_values};

pub const TRADE_FINISHED: &str = "Trade_Finished";
pub const TRADE_CLOSED: &str = "Trade_Closed";
/// A card authorised and not captured yet (ottgate's; docs/cards.md).
pub const TRADE_AUTHORISED: &str = "Trade_Authorised";

/// `total_fee`, `trade_no`, `out_trade_no`, `trade_status` (docs/envelope.md), signed with
/// `sign` = UPPER(MD5(out_trade_no + total_fee + trade_no + trade_status + sign_key)) —
/// the four values in key order (docs/envelope.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectParams {
    pub total_fee: String,
    pub trade_no: String,
    pub out_trade_no: String,
    pub trade_status: String,
}

/// A browser return signed as OTT Pay signs the checkout's: `sign` = UPPER(MD5 of the
/// values in their keys' order, then the sign key).
pub trait SignedReturn {
    /// The signed values, in their keys' order.
    fn signed_values(&self) -> [&str; 4];

    fn sign(&self, sign_key: &SignKey) -> String {
        sign_values(self.signed_values(), sign_key).to_string()
    }

    /// Constant-time check of a received `sign`, case-insensitive.
    fn verify(&self, sign: &str, sign_key: &SignKey) -> bool {
        sign_values(self.signed_values(), sign_key).matches(sign)
    }
}

impl SignedReturn for RedirectParams {
    fn signed_values(&self) -> [&str; 4] {
        [
            &self.out_trade_no,
            &self.total_fee,
            &self.trade_no,
            &self.trade_status,
        ]
    }
}

impl RedirectParams {
    /// The five query parameters, in the order they are appended.
    pub fn query_pairs(&self, sign_key: &SignKey) -> [(&'static str, String); 5] {
        [
            ("total_fee", self.total_fee.clone()),
            ("trade_no", self.trade_no.clone()),
            ("out_trade_no", self.out_trade_no.clone()),
            ("trade_status", self.trade_status.clone()),
            ("sign", self.sign(sign_key)),
        ]
    }

    pub fn is_success(&self) -> bool {
        // The published doc prints " Trade_Finished" with a stray space (docs/envelope.md).
        self.trade_status
            .trim()
            .eq_ignore_ascii_case(TRADE_FINISHED)
    }
}

/// The `h5Pay` link's way back to `newURL`: `amount` (in dollars, as sent), `orderID`,
/// `tranID`, `status` (`success` or `fail`), as OTT Pay sends them unsigned — and `sign`,
/// ottgate's addition: UPPER(MD5(amount + orderID + status + tranID + sign_key)), the values
/// in key order as for the checkout return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct H5LinkReturn {
    pub amount: String,
    pub order_id: String,
    pub tran_id: String,
    pub status: String,
}

impl SignedReturn for H5LinkReturn {
    fn signed_values(&self) -> [&str; 4] {
        [&self.amount, &self.order_id, &self.status, &self.tran_id]
    }
}

impl H5LinkReturn {
    /// The five query parameters, in the order they are appended.
    pub fn query_pairs(&self, sign_key: &SignKey) -> [(&'static str, String); 5] {
        [
            ("amount", self.amount.clone()),
            ("orderID", self.order_id.clone()),
            ("tranID", self.tran_id.clone()),
            ("status", self.status.clone()),
            ("sign", self.sign(sign_key)),
        ]
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_h5_link_sign_is_the_md5_of_the_values_in_key_order_then_the_key() {
        let p = super::H5LinkReturn {
            amount: "10.00".into(),
            order_id: "1733400000-42".into(),
            tran_id: "17964493045134497".into(),
            status: "success".into(),
        };
        let key = SignKey::new("6698851A525C9433").unwrap();
        // python3 -c 'import hashlib;print(hashlib.md5(b"10.001733400000-42success179644930451344976698851A525C9433").hexdigest().upper())'
        assert_eq!(p.sign(&key), "0A8897161AA3991B5EC421738DEF0116");
        assert!(p.verify(&p.sign(&key), &key));
        let tampered = super::H5LinkReturn {
            status: "fail".into(),
            ..p.clone()
        };
        assert!(!tampered.verify(&p.sign(&key), &key));
    }

    use super::*;

    #[test]
    fn the_sign_is_the_md5_of_the_values_in_key_order_then_the_key() {
        let p = RedirectParams {
            total_fee: "5".into(),
            trade_no: "16795056216014900".into(),
            out_trade_no: "prepay20220727132626764".into(),
            trade_status: TRADE_FINISHED.into(),
        };
        let key = SignKey::new("6698851A525C9433").unwrap();
        // python3 -c 'import hashlib;print(hashlib.md5(b"prepay20220727132626764516795056216014900Trade_Finished6698851A525C9433").hexdigest().upper())'
        assert_eq!(p.sign(&key), "8196F0D3EE988B4E95A84D0675001ABA");
        assert!(p.verify(&p.sign(&key).to_ascii_lowercase(), &key));
        let tampered = RedirectParams {
            total_fee: "500".into(),
            ..p.clone()
        };
        assert!(!tampered.verify(&p.sign(&key), &key));
    }
}
