//! The payment methods a buyer can choose on the hosted checkout.

use std::fmt;
use std::str::FromStr;

/// A checkout payment method, by its OTT Pay wire name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PaymentMethod {
    WeChatPay,
    Alipay,
    UnionPay,
    /// Card checkout (Global Payments). ottgate never sees card numbers.
    Gp,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown payment method {0:?} (expected WECHATPAY, ALIPAY, UNIONPAY or GP)")]
pub struct UnknownMethod(pub String);

impl PaymentMethod {
    /// Every method, in the order the checkout lists them.
    pub const ALL: [PaymentMethod; 4] = [
        PaymentMethod::WeChatPay,
        PaymentMethod::Alipay,
        PaymentMethod::UnionPay,
        PaymentMethod::Gp,
    ];

    /// The method's name as people write it.
    pub fn name(self) -> &'static str {
        match self {
            PaymentMethod::WeChatPay => "WeChat Pay",
            PaymentMethod::Alipay => "Alipay",
            PaymentMethod::UnionPay => "UnionPay",
            PaymentMethod::Gp => "Card",
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            PaymentMethod::WeChatPay => "WECHATPAY",
            PaymentMethod::Alipay => "ALIPAY",
            PaymentMethod::UnionPay => "UNIONPAY",
            PaymentMethod::Gp => "GP",
        }
    }

    /// Reads a `selected=` value: a concrete method, or `None` for `NONE`, an empty value
    /// or anything unknown (docs/envelope.md: unknown values behave as `NONE`).
    pub fn from_selected(s: &str) -> Option<Self> {
        s.trim().parse().ok()
    }
}

impl FromStr for PaymentMethod {
    type Err = UnknownMethod;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PaymentMethod::ALL
            .into_iter()
            .find(|m| m.code().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownMethod(s.to_owned()))
    }
}

impl fmt::Display for PaymentMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("WECHATPAY", Some(PaymentMethod::WeChatPay))]
    #[case("alipay", Some(PaymentMethod::Alipay))]
    #[case("GP", Some(PaymentMethod::Gp))]
    #[case("NONE", None)]
    #[case("", None)]
    #[case("PAYPAL", None)]
    fn selected_values_map_to_a_method_or_none(
        #[case] raw: &str,
        #[case] expected: Option<PaymentMethod>,
    ) {
        assert_eq!(PaymentMethod::from_selected(raw), expected);
    }
}
