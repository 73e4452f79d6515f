//! Amounts in integer minor units, and the currencies OTT Pay settles in.

use std::fmt;
use std::str::FromStr;

/// Currencies OTT Pay merchants are configured with. All three have two minor digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Currency {
    Cad,
    Usd,
    Cny,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported currency {0:?} (expected CAD, USD or CNY)")]
pub struct UnknownCurrency(pub String);

impl Currency {
    pub const ALL: [Currency; 3] = [Currency::Cad, Currency::Usd, Currency::Cny];

    pub fn code(self) -> &'static str {
        match self {
            Currency::Cad => "CAD",
            Currency::Usd => "USD",
            Currency::Cny => "CNY",
        }
    }

    pub fn minor_digits(self) -> u32 {
        2
    }

    /// `minor` units in major units without grouping (`0.00`, `1234.50`): any count,
    /// zero included, as totals and refunded sums need.
    pub fn major_plain(self, minor: u64) -> String {
        let digits = self.minor_digits();
        let scale = 10u64.pow(digits);
        if digits == 0 {
            return minor.to_string();
        }
        format!(
            "{}.{:0width$}",
            minor / scale,
            minor % scale,
            width = digits as usize
        )
    }

    /// The symbol buyers recognise; shown beside the ISO code, never instead of it.
    pub fn symbol(self) -> &'static str {
        match self {
            Currency::Cad | Currency::Usd => "$",
            Currency::Cny => "¥",
        }
    }
}

impl FromStr for Currency {
    type Err = UnknownCurrency;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::ALL
            .into_iter()
            .find(|c| c.code() == s)
            .ok_or_else(|| UnknownCurrency(s.to_owned()))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A positive amount in minor units (cents): 1 ≤ amount ≤ 99 999 999 999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(u64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "amount must be a whole number of cents from 1 to 99999999999, written with digits only and no leading zero"
)]
pub struct InvalidAmount;

impl Amount {
    pub const MAX: u64 = 99_999_999_999;

    /// The wire grammar: ASCII digits, no sign, no decimal point, no leading zero.
    pub fn parse(s: &str) -> Result<Self, InvalidAmount> {
        let b = s.as_bytes();
        let well_formed =
            !b.is_empty() && b.len() <= 11 && b[0] != b'0' && b.iter().all(u8::is_ascii_digit);
        if !well_formed {
            return Err(InvalidAmount);
        }
        let n: u64 = s.parse().map_err(|_| InvalidAmount)?;
        Self::from_minor(n)
    }

    pub fn from_minor(n: u64) -> Result<Self, InvalidAmount> {
        if (1..=Self::MAX).contains(&n) {
            Ok(Self(n))
        } else {
            Err(InvalidAmount)
        }
    }

    pub fn minor(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Amount {
    /// The wire form: minor units as plain digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An amount in a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    pub amount: Amount,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount: Amount, currency: Currency) -> Self {
        Self { amount, currency }
    }

    /// `1,234.56`: major units with grouping and exactly the currency's minor digits.
    /// The amount as a page shows it: the currency's symbol, then [`Self::major_display`]
    /// (`$1,234.50`).
    pub fn symbol_display(self) -> String {
        format!("{}{}", self.currency.symbol(), self.major_display())
    }

    pub fn major_display(self) -> String {
        let scale = 10u64.pow(self.currency.minor_digits());
        let major = self.amount.minor() / scale;
        let minor = self.amount.minor() % scale;
        let digits = major.to_string();
        let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(ch);
        }
        format!(
            "{grouped}.{minor:0width$}",
            width = self.currency.minor_digits() as usize
        )
    }

    /// Reads a wallet's major-unit amount (`"0.01"`, `"12.3"`, `"5"`) in `currency`. More
    /// decimals than the currency has, signs, exponents or grouping are refused.
    pub fn parse_major(s: &str, currency: Currency) -> Option<Money> {
        let digits = currency.minor_digits() as usize;
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        let int_ok = !int.is_empty()
            && int.bytes().all(|b| b.is_ascii_digit())
            && (int == "0" || !int.starts_with('0'));
        if !int_ok
            || frac.len() > digits
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || (s.contains('.') && frac.is_empty())
        {
            return None;
        }
        let scale = 10u64.checked_pow(currency.minor_digits())?;
        let padded = format!("{frac:0<digits$}");
        let minor = int
            .parse::<u64>()
            .ok()?
            .checked_mul(scale)?
            .checked_add(if digits == 0 { 0 } else { padded.parse().ok()? })?;
        Some(Money::new(Amount::from_minor(minor).ok()?, currency))
    }

    /// `12.34`: major units with no grouping, as upstream wallets (Alipay) want them.
    pub fn major_plain(self) -> String {
        self.currency.major_plain(self.amount.minor())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rstest::rstest;

    #[rstest]
    #[case("1", 1)]
    #[case("5", 5)]
    #[case("100", 100)]
    #[case("99999999999", 99_999_999_999)]
    fn valid_amounts_parse(#[case] raw: &str, #[case] minor: u64) {
        assert_eq!(Amount::parse(raw).unwrap().minor(), minor);
    }

    #[rstest]
    #[case::decimal("1.00")]
    #[case::negative("-5")]
    #[case::plus("+5")]
    #[case::zero("0")]
    #[case::leading_zero("007")]
    #[case::empty("")]
    #[case::too_big("100000000000")]
    #[case::huge("99999999999999999999999999")]
    #[case::space(" 5")]
    #[case::exponent("1e3")]
    #[case::fullwidth_digit("５")]
    fn malformed_amounts_are_rejected(#[case] raw: &str) {
        assert_eq!(Amount::parse(raw), Err(InvalidAmount));
    }

    #[rstest]
    #[case(0, "0.00")]
    #[case(5, "0.05")]
    #[case(123_450, "1234.50")]
    fn any_count_of_minor_units_prints_plain(#[case] minor: u64, #[case] shown: &str) {
        assert_eq!(Currency::Cad.major_plain(minor), shown);
    }

    #[rstest]
    #[case(1, "0.01")]
    #[case(123_456, "1,234.56")]
    #[case(99_999_999_999, "999,999,999.99")]
    fn amounts_display_in_major_units(#[case] minor: u64, #[case] shown: &str) {
        let m = Money::new(Amount::from_minor(minor).unwrap(), Currency::Cad);
        assert_eq!(m.major_display(), shown);
    }

    #[rstest]
    #[case("0.01", Some(1))]
    #[case("12.3", Some(1230))]
    #[case("5", Some(500))]
    #[case("1000000.00", Some(100_000_000))]
    #[case("0.001", None)]
    #[case("01.00", None)]
    #[case("1.", None)]
    #[case("-1.00", None)]
    #[case("1e2", None)]
    #[case("0.00", None)]
    fn wallet_major_amounts_parse_to_minor_units(#[case] raw: &str, #[case] minor: Option<u64>) {
        assert_eq!(
            Money::parse_major(raw, Currency::Cad).map(|m| m.amount.minor()),
            minor
        );
    }

    #[test]
    fn currencies_parse_only_their_exact_codes() {
        assert_eq!("CAD".parse::<Currency>().unwrap(), Currency::Cad);
        assert!("cad".parse::<Currency>().is_err());
        assert!("EUR".parse::<Currency>().is_err());
    }

    proptest! {
        #[test]
        fn every_amount_round_trips_through_its_wire_form(n in 1u64..=Amount::MAX) {
            let a = Amount::from_minor(n).unwrap();
            prop_assert_eq!(Amount::parse(&a.to_string()).unwrap(), a);
        }

        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = Amount::parse(&s);
            let _ = Money::parse_major(&s, Currency::Usd);
        }

        #[test]
        fn major_plain_round_trips(n in 1u64..=Amount::MAX) {
            let m = Money::new(Amount::from_minor(n).unwrap(), Currency::Cny);
            prop_assert_eq!(Money::parse_major(&m.major_plain(), Currency::Cny), Some(m));
        }
    }
}
