//! What a merchant is owed for a day (docs/reconciliation.md, "Settlement"): each payment
//! and refund of the day as a line, the acquirer's fee on each payment, and the totals,
//! in integer minor units of the payment's currency throughout.
//!
//! Rounding, the only place money is divided: a payment's fee is `amount × rate`, rounded
//! half up to the minor unit, plus the fixed part — per payment, never on a total, so the
//! totals are exactly the sums of their lines. Refunds return no fee.

use crate::recon::Side;
use crate::{Currency, PaymentMethod};
use std::fmt;

/// An acquirer's fee on a payment: a rate in parts per million (2.2 % is 22,000) plus a
/// fixed amount in the payment currency's minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FeeRate {
    pub ppm: u32,
    pub fixed_minor: u64,
}

/// At most 100 %: a fee rate above that is a mistake.
const MAX_PPM: u32 = 1_000_000;

impl FeeRate {
    /// Reads `2.2%`, `2.2%+30` (30 minor units) or `0`. At most four decimals of a
    /// percent (a hundredth of a basis point), at most 100 %.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let (rate, fixed) = match s.split_once('+') {
            Some((r, f)) => (r.trim(), f.trim().parse::<u64>().ok()?),
            None => (s, 0),
        };
        let rate = rate.strip_suffix('%').unwrap_or(rate).trim();
        let (whole, frac) = rate.split_once('.').unwrap_or((rate, ""));
        if whole.is_empty()
            || frac.len() > 4
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let frac_ppm = format!("{frac:0<4}").parse::<u32>().ok()?;
        let ppm = whole
            .parse::<u32>()
            .ok()?
            .checked_mul(10_000)?
            .checked_add(frac_ppm)?;
        (ppm <= MAX_PPM).then_some(Self {
            ppm,
            fixed_minor: fixed,
        })
    }

    /// The fee on a payment of `amount` minor units: the rate's part rounded half up,
    /// plus the fixed part.
    pub fn fee(self, amount: u64) -> u64 {
        let part = (u128::from(amount) * u128::from(self.ppm) + 500_000) / 1_000_000;
        u64::try_from(part)
            .unwrap_or(u64::MAX)
            .saturating_add(self.fixed_minor)
    }
}

/// `2.2%` or `2.2%+30`.
impl fmt::Display for FeeRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, frac) = (self.ppm / 10_000, self.ppm % 10_000);
        if frac == 0 {
            write!(f, "{whole}%")?;
        } else {
            let frac = format!("{frac:04}");
            write!(f, "{whole}.{}%", frac.trim_end_matches('0'))?;
        }
        if self.fixed_minor > 0 {
            write!(f, "+{}", self.fixed_minor)?;
        }
        Ok(())
    }
}

/// A payment or refund done on the day, as the gateway holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub side: Side,
    /// The payment's (attempt's) or refund's id.
    pub id: String,
    pub method: PaymentMethod,
    pub currency: Currency,
    pub amount: u64,
    /// The yuan (fen) the buyer paid, where the wallet said.
    pub buyer_cny: Option<u64>,
    /// The wallet's rate, as it stated it.
    pub fx_rate: Option<String>,
}

/// One line of a settlement: an item and its fee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub item: Item,
    /// The fee charged on it (0 for a refund).
    pub fee: u64,
    /// What it adds to the net: the amount less the fee for a payment, minus the amount
    /// for a refund.
    pub net: i64,
}

/// What a merchant is owed in one currency for one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub currency: Currency,
    /// Payments' amounts.
    pub gross: u64,
    pub refunds: u64,
    pub fees: u64,
    /// `gross - refunds - fees` (negative when refunds outweigh the day's payments).
    pub net: i64,
    /// The yuan the buyers paid, where the wallets said (summed over those payments).
    pub buyer_cny: u64,
    pub payments: u64,
    pub refund_count: u64,
    pub lines: Vec<Line>,
}

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A day's statements, one per currency (in the order the currencies first appear), the
/// fee of each payment by `rate_of` its method.
pub fn settle(items: Vec<Item>, rate_of: impl Fn(PaymentMethod) -> FeeRate) -> Vec<Statement> {
    let mut out: Vec<Statement> = Vec::new();
    for item in items {
        let (fee, net) = match item.side {
            Side::Payment => {
                let fee = rate_of(item.method).fee(item.amount);
                (fee, signed(item.amount) - signed(fee))
            }
            Side::Refund => (0, -signed(item.amount)),
        };
        let i = match out.iter().position(|s| s.currency == item.currency) {
            Some(i) => i,
            None => {
                out.push(Statement {
                    currency: item.currency,
                    gross: 0,
                    refunds: 0,
                    fees: 0,
                    net: 0,
                    buyer_cny: 0,
                    payments: 0,
                    refund_count: 0,
                    lines: Vec::new(),
                });
                out.len() - 1
            }
        };
        let s = &mut out[i];
        match item.side {
            Side::Payment => {
                s.gross += item.amount;
                s.fees += fee;
                s.payments += 1;
                s.buyer_cny += item.buyer_cny.unwrap_or(0);
            }
            Side::Refund => {
                s.refunds += item.amount;
                s.refund_count += 1;
            }
        }
        s.net += net;
        s.lines.push(Line { item, fee, net });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn item(side: Side, n: usize, method: PaymentMethod, currency: Currency, amount: u64) -> Item {
        Item {
            side,
            id: format!("{n}"),
            method,
            currency,
            amount,
            buyer_cny: None,
            fx_rate: None,
        }
    }

    #[test]
    fn a_fee_rate_reads_and_prints_as_people_write_it() {
        for (text, ppm, fixed, shown) in [
            ("2.2%", 22_000, 0, "2.2%"),
            ("2.2 % + 30", 22_000, 30, "2.2%+30"),
            ("0", 0, 0, "0%"),
            ("1.2345%", 12_345, 0, "1.2345%"),
            ("100%", 1_000_000, 0, "100%"),
        ] {
            let rate = FeeRate::parse(text).unwrap();
            assert_eq!((rate.ppm, rate.fixed_minor), (ppm, fixed), "{text}");
            assert_eq!(rate.to_string(), shown);
            assert_eq!(FeeRate::parse(shown), Some(rate));
        }
        for bad in [
            "", "%", "2.23456%", "-1%", "100.01%", "2.2%+", "2.2%+-1", "a%",
        ] {
            assert_eq!(FeeRate::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_fee_is_rounded_half_up_per_payment() {
        let rate = FeeRate::parse("2.2%").unwrap();
        assert_eq!(rate.fee(1234), 27, "27.148 → 27");
        assert_eq!(rate.fee(2500), 55);
        assert_eq!(rate.fee(25), 1, "0.55 → 1: half up");
        assert_eq!(rate.fee(22), 0, "0.484 → 0");
        assert_eq!(FeeRate::parse("2.2%+30").unwrap().fee(1000), 52);
        assert_eq!(FeeRate::default().fee(u64::MAX), 0);
    }

    #[test]
    fn a_day_is_one_statement_per_currency_refunds_returning_no_fee() {
        let rate = |m| match m {
            PaymentMethod::Alipay => FeeRate::parse("2%").unwrap(),
            _ => FeeRate::parse("3%+10").unwrap(),
        };
        let s = settle(
            vec![
                item(Side::Payment, 1, PaymentMethod::Alipay, Currency::Cad, 1000),
                item(
                    Side::Payment,
                    2,
                    PaymentMethod::WeChatPay,
                    Currency::Cad,
                    1000,
                ),
                item(Side::Refund, 3, PaymentMethod::Alipay, Currency::Cad, 400),
                item(Side::Payment, 4, PaymentMethod::Alipay, Currency::Usd, 50),
            ],
            rate,
        );
        assert_eq!(s.len(), 2);
        let cad = &s[0];
        assert_eq!(
            (cad.gross, cad.refunds, cad.fees, cad.net),
            (2000, 400, 20 + 40, 2000 - 400 - 60)
        );
        assert_eq!((cad.payments, cad.refund_count), (2, 1));
        assert_eq!((s[1].currency, s[1].fees, s[1].net), (Currency::Usd, 1, 49));
        // Refunds outweighing the day: a negative net.
        let s = settle(
            vec![item(
                Side::Refund,
                5,
                PaymentMethod::Alipay,
                Currency::Cad,
                700,
            )],
            rate,
        );
        assert_eq!(s[0].net, -700);
    }

    proptest! {
        /// Whatever the day (payments, partial refunds, fee rates), each statement's
        /// totals are exactly the sums of its lines, to the minor unit.
        #[test]
        fn totals_are_the_sums_of_their_lines(
            items in prop::collection::vec(
                (any::<bool>(), 0usize..3, 0usize..2, 1u64..5_000_000),
                0..200,
            ),
            ppm in prop::array::uniform3(0u32..100_000),
            fixed in prop::array::uniform3(0u64..100),
        ) {
            let methods = [PaymentMethod::Alipay, PaymentMethod::WeChatPay, PaymentMethod::UnionPay];
            let currencies = [Currency::Cad, Currency::Usd];
            let items: Vec<Item> = items
                .into_iter()
                .enumerate()
                .map(|(n, (refund, m, c, amount))| {
                    let side = if refund { Side::Refund } else { Side::Payment };
                    item(side, n, methods[m], currencies[c], amount)
                })
                .collect();
            let count = items.len();
            let rate = |m: PaymentMethod| {
                let i = methods.iter().position(|x| *x == m).unwrap_or(0);
                FeeRate { ppm: ppm[i], fixed_minor: fixed[i] }
            };
            let statements = settle(items, rate);
            prop_assert_eq!(statements.iter().map(|s| s.lines.len()).sum::<usize>(), count);
            for s in &statements {
                let of = |side: Side| s.lines.iter().filter(move |l| l.item.side == side);
                prop_assert_eq!(s.gross, of(Side::Payment).map(|l| l.item.amount).sum::<u64>());
                prop_assert_eq!(s.refunds, of(Side::Refund).map(|l| l.item.amount).sum::<u64>());
                prop_assert_eq!(s.fees, s.lines.iter().map(|l| l.fee).sum::<u64>());
                prop_assert_eq!(s.net, s.lines.iter().map(|l| l.net).sum::<i64>());
                prop_assert_eq!(s.net, signed(s.gross) - signed(s.refunds) - signed(s.fees));
                for l in &s.lines {
                    prop_assert_eq!(l.item.currency, s.currency);
                    let exact = l.item.amount as f64 * f64::from(rate(l.item.method).ppm) / 1e6;
                    if l.item.side == Side::Payment {
                        let part = l.fee - rate(l.item.method).fixed_minor;
                        prop_assert!((part as f64 - exact).abs() <= 0.5 + 1e-9);
                    }
                }
            }
        }
    }
}
