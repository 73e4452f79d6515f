//! Identifiers. Ours are generated here; the merchant's are parsed from the wire.

use rand::Rng;
use std::fmt;

use crate::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} must be {rule}")]
pub struct InvalidId {
    pub what: &'static str,
    pub rule: &'static str,
}

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

fn alnum(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn digits(n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

string_id!(
    /// A merchant id such as `ON00004652`: 1–32 ASCII letters and digits.
    MerchantId
);

impl MerchantId {
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        if alnum(s, 32) {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidId {
                what: "merchant_id",
                rule: "1 to 32 letters and digits",
            })
        }
    }

    /// `ON` and eight digits, like OTT Pay's Ontario merchant ids.
    pub fn generate() -> Self {
        Self(format!("ON{}", digits(8)))
    }
}

string_id!(
    /// A store id, by OTT Pay convention the merchant id followed by three digits.
    ShopId
);

impl ShopId {
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        if alnum(s, 40) {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidId {
                what: "shop_id",
                rule: "1 to 40 letters and digits",
            })
        }
    }

    pub fn first_of(merchant: &MerchantId) -> Self {
        Self(format!("{merchant}001"))
    }
}

string_id!(
    /// A 10-digit operator number, e.g. `0000000696`.
    OperatorId
);

impl OperatorId {
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        if alnum(s, 32) {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidId {
                what: "operator_id",
                rule: "1 to 32 letters and digits",
            })
        }
    }

    pub fn generate() -> Self {
        Self(digits(10))
    }
}

string_id!(
    /// An ottgate order (payment) id: 17 digits, like OTT Pay's `16795056216014900`.
    /// The first 13 are (about) the creation time in epoch milliseconds, which keeps them
    /// sortable; the last 4 a sequence. Within a process ids strictly increase, so they never
    /// repeat; across processes the sequence starts at a random point each millisecond, and
    /// the store retries the rare collision with a fresh id.
    OrderId
);

/// The last id handed out in this process, as a number (`millis * 10_000 + sequence`).
static LAST_ORDER_ID: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

impl OrderId {
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        if alnum(s, 32) {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidId {
                what: "order_id",
                rule: "1 to 32 letters and digits",
            })
        }
    }

    pub fn generate(now: Timestamp) -> Self {
        use std::sync::atomic::Ordering;
        let start = now.epoch_millis().max(0).saturating_mul(10_000)
            + rand::thread_rng().gen_range(0..5_000);
        let mut last = LAST_ORDER_ID.load(Ordering::Relaxed);
        loop {
            let next = start.max(last + 1);
            match LAST_ORDER_ID.compare_exchange_weak(
                last,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Self(format!("{next:017}")),
                Err(seen) => last = seen,
            }
        }
    }
}

string_id!(
    /// One try at paying an order — a method chosen, a wallet trade opened: the
    /// `out_trade_no` the wallets know, and the REST `paymentId`. Shaped, and generated, as
    /// an [`OrderId`] (the two come from one sequence and never collide), but a different
    /// thing: a store lookup by one never takes the other.
    AttemptId
);

impl AttemptId {
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        OrderId::parse(s)
            .map(|id| Self(id.0))
            .map_err(|_| InvalidId {
                what: "payment id",
                rule: "1 to 32 letters and digits",
            })
    }

    pub fn generate(now: Timestamp) -> Self {
        Self(OrderId::generate(now).0)
    }
}

string_id!(
    /// The merchant's own order reference (`prepay_order_id`, REST `reference`):
    /// 1–64 printable ASCII characters, no spaces.
    MerchantRef
);

impl MerchantRef {
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        if !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidId {
                what: "order reference",
                rule: "1 to 64 printable ASCII characters without spaces",
            })
        }
    }
}

string_id!(
    /// The unguessable id in a checkout URL: 44 lower-case hex characters, the creation
    /// time in epoch milliseconds (12) followed by 128 random bits (32). Never derived from
    /// the order id. The time prefix is not for secrecy but for the store: tokens made
    /// together sort together, so the unique index on them grows at its right edge instead
    /// of dirtying a random page per order (a third of the bytes a create wrote to the
    /// SQLite WAL). Tokens made before it (32 random hex) are still accepted.
    CheckoutToken
);

impl CheckoutToken {
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        if (s.len() == 32 || s.len() == 44)
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidId {
                what: "checkout token",
                rule: "44 (or, made before 2026-11, 32) lower-case hex characters",
            })
        }
    }

    pub fn generate(now: Timestamp) -> Self {
        let millis = now.epoch_millis().clamp(0, 0xffff_ffff_ffff);
        Self(format!("{millis:012x}{}", random_hex(16)))
    }
}

string_id!(
    /// The stable id of one merchant notification, so merchants can de-duplicate retries.
    NotifyId
);

impl NotifyId {
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        if alnum(s, 64) {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidId {
                what: "notify_id",
                rule: "1 to 64 letters and digits",
            })
        }
    }

    pub fn generate() -> Self {
        Self(random_hex(16))
    }
}

pub(crate) fn random_hex(bytes: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..bytes)
        .map(|_| format!("{:02x}", rng.r#gen::<u8>()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn generated_ids_have_their_documented_shapes() {
        let now = Timestamp::from_epoch_millis(1_679_505_621_601);
        let order = OrderId::generate(now);
        assert_eq!(order.as_str().len(), 17);
        // The leading digits are the time, or a little after it when ids are being handed
        // out faster than one per sequence step (other tests share the generator).
        let millis: i64 = order.as_str()[..13].parse().unwrap();
        assert!(
            (1_679_505_621_601..1_679_505_621_601 + 60_000).contains(&millis),
            "{order}"
        );
        assert!(MerchantId::generate().as_str().starts_with("ON"));
        assert_eq!(MerchantId::generate().as_str().len(), 10);
        assert_eq!(OperatorId::generate().as_str().len(), 10);
        let token = CheckoutToken::generate(now);
        assert_eq!(token.as_str().len(), 44);
        assert!(token.as_str().starts_with("01870a560261"), "{token}");
        assert!(CheckoutToken::parse(token.as_str()).is_ok());
    }

    #[test]
    fn order_ids_never_repeat_even_within_one_millisecond() {
        let now = Timestamp::from_epoch_millis(1_679_505_621_601);
        let ids: std::collections::BTreeSet<OrderId> =
            (0..50_000).map(|_| OrderId::generate(now)).collect();
        assert_eq!(ids.len(), 50_000);
        assert!(ids.iter().all(|id| id.as_str().len() == 17));
    }

    #[test]
    fn checkout_tokens_do_not_repeat_within_one_millisecond() {
        let now = Timestamp::from_epoch_millis(1_679_505_621_601);
        let a = CheckoutToken::generate(now);
        let b = CheckoutToken::generate(now);
        assert_ne!(a, b);
        assert_eq!(a.as_str()[..12], b.as_str()[..12]);
    }

    #[test]
    fn checkout_tokens_sort_by_creation_time() {
        let earlier = CheckoutToken::generate(Timestamp::from_epoch_millis(1_679_505_621_601));
        let later = CheckoutToken::generate(Timestamp::from_epoch_millis(1_679_505_621_602));
        assert!(earlier < later);
    }

    #[rstest]
    #[case("0123456789abcdef0123456789abcdef", true)]
    #[case("01870a5602610123456789abcdef0123456789abcdef", true)]
    #[case("0123456789abcdef0123456789abcde", false)]
    #[case("0123456789ABCDEF0123456789abcdef", false)]
    #[case("01870a5602610123456789abcdef0123456789abcde", false)]
    fn checkout_tokens_are_32_or_44_lower_case_hex(#[case] raw: &str, #[case] ok: bool) {
        assert_eq!(CheckoutToken::parse(raw).is_ok(), ok);
    }

    #[rstest]
    #[case("")]
    #[case("has space")]
    #[case("semi;colon")]
    fn merchant_ids_are_letters_and_digits(#[case] raw: &str) {
        assert!(MerchantId::parse(raw).is_err());
    }

    #[rstest]
    #[case("prepay20220727132626764", true)]
    #[case("order-1_a.b", true)]
    #[case("", false)]
    #[case("with space", false)]
    #[case(&"x".repeat(65), false)]
    fn merchant_refs_are_printable_ascii(#[case] raw: &str, #[case] ok: bool) {
        assert_eq!(MerchantRef::parse(raw).is_ok(), ok);
    }
}
