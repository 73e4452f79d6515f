//! Matching a wallet's statement for a day against the gateway's own records
//! (docs/reconciliation.md). Each statement line is a payment or a refund as the wallet
//! booked it; each record is one the gateway holds for that wallet and day. Both are named
//! by the id the gateway gave the wallet (the attempt's or refund's id), and by the
//! wallet's own reference once known. Every line and every record ends in exactly one
//! [`Outcome`]: matched, or the discrepancy an operator (or the self-repair) must resolve.

use crate::{Money, Timestamp};
use chrono::{Days, NaiveDate};
use std::collections::HashMap;
use std::fmt;

/// A wallet's business day: a calendar date in Beijing time (UTC+8, no daylight saving),
/// the day by which Alipay, WeChat Pay and UnionPay all keep their books.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WalletDay(NaiveDate);

/// Beijing is 8 hours ahead of UTC all year.
const BEIJING_OFFSET_MS: i64 = 8 * 3_600_000;

impl WalletDay {
    /// Reads `yyyy-MM-dd` or `yyyyMMdd`.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .or_else(|_| NaiveDate::parse_from_str(s, "%Y%m%d"))
            .ok()
            .map(Self)
    }

    /// The Beijing day `at` falls on.
    pub fn of(at: Timestamp) -> Self {
        let days = (at.epoch_millis() + BEIJING_OFFSET_MS).div_euclid(86_400_000);
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
        Self(
            u64::try_from(days)
                .ok()
                .and_then(|d| epoch.checked_add_days(Days::new(d)))
                .unwrap_or(epoch),
        )
    }

    /// `yyyyMMdd`, as the wallets' statement requests name a day.
    pub fn compact(self) -> String {
        self.0.format("%Y%m%d").to_string()
    }

    /// 00:00 Beijing time of this day.
    pub fn start(self) -> Timestamp {
        let utc_midnight = self
            .0
            .and_hms_opt(0, 0, 0)
            .map_or(0, |d| d.and_utc().timestamp_millis());
        Timestamp::from_epoch_millis(utc_midnight - BEIJING_OFFSET_MS)
    }

    /// 00:00 Beijing time of the next day (the end, exclusive).
    pub fn end(self) -> Timestamp {
        self.next().start()
    }

    pub fn next(self) -> Self {
        Self(self.0.checked_add_days(Days::new(1)).unwrap_or(self.0))
    }

    pub fn previous(self) -> Self {
        Self(self.0.checked_sub_days(Days::new(1)).unwrap_or(self.0))
    }

    /// How many days `self` is after `earlier` (negative when before).
    pub fn days_since(self, earlier: WalletDay) -> i64 {
        (self.0 - earlier.0).num_days()
    }
}

/// `yyyy-MM-dd`.
impl fmt::Display for WalletDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

/// Whether a line or record is a payment or a refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    Payment,
    Refund,
}

impl Side {
    pub fn code(self) -> &'static str {
        match self {
            Side::Payment => "payment",
            Side::Refund => "refund",
        }
    }

    pub fn from_code(s: &str) -> Option<Self> {
        [Side::Payment, Side::Refund]
            .into_iter()
            .find(|side| side.code() == s)
    }
}

/// One line of a wallet's statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementLine {
    pub side: Side,
    /// The id the gateway gave the wallet (`out_trade_no`, `out_refund_no`).
    pub ours: String,
    /// The wallet's own reference (`transaction_id`, `refund_id`).
    pub wallets: String,
    pub money: Money,
    /// Whether the statement states the currency. A statement that names none (UnionPay's
    /// detail file) is compared by amount only, and the line takes the currency of the
    /// gateway's record it is matched to.
    pub currency_stated: bool,
}

/// What the gateway holds for one payment or refund of the wallet's day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub side: Side,
    /// The attempt's or refund's id.
    pub ours: String,
    /// The wallet's reference, once the gateway heard it.
    pub wallets: Option<String>,
    pub money: Money,
    /// Paid (a payment) or refunded (a refund) by the gateway's books; a pending or failed
    /// one the wallet booked differs in status.
    pub done: bool,
    /// Done within the wallet's day. A record done on another day is there only to be
    /// matched (a payment settled just across midnight); missing from this day's
    /// statement, it is no discrepancy.
    pub on_day: bool,
}

/// How one line or record came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Matched,
    /// The wallet booked it; the gateway has no such payment or refund.
    WalletOnly(StatementLine),
    /// The gateway counts it done; the wallet's statement does not have it.
    GatewayOnly(Record),
    AmountDiffers {
        line: StatementLine,
        record: Record,
    },
    CurrencyDiffers {
        line: StatementLine,
        record: Record,
    },
    /// The wallet booked it; the gateway has it, but not as done (pending or failed):
    /// confirmable by asking the wallet, then repaired.
    StatusDiffers {
        line: StatementLine,
        record: Record,
    },
}

impl Outcome {
    /// A short name for reports and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Matched => "matched",
            Outcome::WalletOnly(_) => "wallet_only",
            Outcome::GatewayOnly(_) => "gateway_only",
            Outcome::AmountDiffers { .. } => "amount_differs",
            Outcome::CurrencyDiffers { .. } => "currency_differs",
            Outcome::StatusDiffers { .. } => "status_differs",
        }
    }
}

/// Matches `lines` against `records`: by side and the gateway's id, else by the wallet's
/// reference. A record not done and not on the statement is not a discrepancy (nothing
/// moved on either side); one done but missing from the statement is.
pub fn reconcile(lines: &[StatementLine], records: &[Record]) -> Vec<Outcome> {
    let mut by_ours: HashMap<(Side, &str), usize> = HashMap::with_capacity(records.len());
    let mut by_wallets: HashMap<(Side, &str), usize> = HashMap::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        by_ours.insert((r.side, r.ours.as_str()), i);
        if let Some(w) = &r.wallets {
            by_wallets.insert((r.side, w.as_str()), i);
        }
    }
    let mut seen = vec![false; records.len()];
    let mut out = Vec::with_capacity(lines.len().max(records.len()));
    for line in lines {
        let found = by_ours
            .get(&(line.side, line.ours.as_str()))
            .or_else(|| by_wallets.get(&(line.side, line.wallets.as_str())))
            .copied()
            .filter(|i| !seen[*i]);
        let Some(i) = found else {
            out.push(Outcome::WalletOnly(line.clone()));
            continue;
        };
        seen[i] = true;
        let record = &records[i];
        let pair = || {
            let mut line = line.clone();
            if !line.currency_stated {
                line.money.currency = record.money.currency;
            }
            (line, record.clone())
        };
        out.push(
            if line.currency_stated && line.money.currency != record.money.currency {
                let (line, record) = pair();
                Outcome::CurrencyDiffers { line, record }
            } else if line.money.amount != record.money.amount {
                let (line, record) = pair();
                Outcome::AmountDiffers { line, record }
            } else if !record.done {
                let (line, record) = pair();
                Outcome::StatusDiffers { line, record }
            } else {
                Outcome::Matched
            },
        );
    }
    for (record, seen) in records.iter().zip(seen) {
        if !seen && record.done && record.on_day {
            out.push(Outcome::GatewayOnly(record.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Amount, Currency};

    fn cad(minor: u64) -> Money {
        Money::new(Amount::from_minor(minor).unwrap(), Currency::Cad)
    }

    fn day(n: usize) -> (Vec<StatementLine>, Vec<Record>) {
        let mut lines = Vec::new();
        let mut records = Vec::new();
        for i in 0..n {
            let side = if i % 4 == 3 {
                Side::Refund
            } else {
                Side::Payment
            };
            let ours = format!("1796500000000{i:04}");
            let wallets = format!("42000{i:08}");
            let money = cad(100 + i as u64);
            lines.push(StatementLine {
                side,
                ours: ours.clone(),
                wallets: wallets.clone(),
                money,
                currency_stated: true,
            });
            records.push(Record {
                side,
                ours,
                wallets: Some(wallets),
                money,
                done: true,
                on_day: true,
            });
        }
        (lines, records)
    }

    fn kinds(outcomes: &[Outcome]) -> Vec<&'static str> {
        let mut k: Vec<_> = outcomes
            .iter()
            .map(Outcome::kind)
            .filter(|k| *k != "matched")
            .collect();
        k.sort_unstable();
        k
    }

    #[test]
    fn a_day_that_agrees_is_all_matched() {
        let (lines, records) = day(400);
        let outcomes = reconcile(&lines, &records);
        assert_eq!(outcomes.len(), 400);
        assert!(kinds(&outcomes).is_empty());
    }

    #[test]
    fn each_fault_makes_exactly_its_discrepancy() {
        let (mut lines, mut records) = day(40);
        // A trade the gateway never heard of.
        lines.push(StatementLine {
            side: Side::Payment,
            ours: "17965999999999999".into(),
            wallets: "4200099999999".into(),
            money: cad(500),
            currency_stated: true,
        });
        // A trade missing from the statement.
        lines.remove(1);
        // An amount, a currency and a status that differ.
        // (After the removal, line i is record i + 1.)
        lines[3].money = cad(1);
        assert_eq!(lines[3].side, Side::Payment);
        lines[4].money = Money::new(lines[4].money.amount, Currency::Usd);
        records[6].done = false;
        // A refund that differs in amount.
        lines[6].money = cad(2);
        assert_eq!(lines[6].side, Side::Refund);
        let outcomes = reconcile(&lines, &records);
        assert_eq!(
            kinds(&outcomes),
            [
                "amount_differs",
                "amount_differs",
                "currency_differs",
                "gateway_only",
                "status_differs",
                "wallet_only"
            ]
        );
        // Every line and every record is counted once.
        assert_eq!(outcomes.len(), 41);
    }

    #[test]
    fn a_line_is_found_by_the_wallets_reference_when_our_id_is_not_on_it() {
        let (mut lines, records) = day(3);
        lines[0].ours = String::new();
        assert!(kinds(&reconcile(&lines, &records)).is_empty());
        // A record the wallet never booked and the gateway never completed: nothing moved.
        let mut pending = records.clone();
        pending.push(Record {
            side: Side::Payment,
            ours: "x".into(),
            wallets: None,
            money: cad(1),
            done: false,
            on_day: true,
        });
        assert!(kinds(&reconcile(&lines, &pending)).is_empty());
        // One done the day before, not on this statement: that day's business.
        pending.push(Record {
            ours: "y".into(),
            done: true,
            on_day: false,
            ..pending[3].clone()
        });
        assert!(kinds(&reconcile(&lines, &pending)).is_empty());
        // The same line twice: the second is the wallet's alone.
        lines.push(lines[1].clone());
        assert_eq!(kinds(&reconcile(&lines, &records)), ["wallet_only"]);
    }

    #[test]
    fn a_line_without_a_currency_is_compared_by_amount_and_takes_the_records() {
        let (mut lines, mut records) = day(2);
        for line in &mut lines {
            line.currency_stated = false;
            line.money = Money::new(line.money.amount, Currency::Usd);
        }
        assert!(kinds(&reconcile(&lines, &records)).is_empty());
        records[0].done = false;
        let outcomes = reconcile(&lines, &records);
        let Outcome::StatusDiffers { line, .. } = &outcomes[0] else {
            panic!("{outcomes:?}");
        };
        assert_eq!(line.money.currency, Currency::Cad, "the record's");
    }

    #[test]
    fn a_wallet_day_is_a_beijing_day() {
        let day = WalletDay::parse("2026-12-05").unwrap();
        assert_eq!(WalletDay::parse("20261205"), Some(day));
        assert_eq!(day.compact(), "20261205");
        assert_eq!(day.to_string(), "2026-12-05");
        // 00:00 in Beijing is 16:00 UTC the day before.
        assert_eq!(day.start().rfc3339(), "2026-12-04T16:00:00.000Z");
        assert_eq!(day.end(), day.next().start());
        assert_eq!(WalletDay::of(day.start()), day);
        assert_eq!(
            WalletDay::of(day.end().minus(std::time::Duration::from_millis(1))),
            day
        );
        assert_eq!(WalletDay::of(day.end()), day.next());
        assert_eq!(day.next().previous(), day);
        assert_eq!(day.next().next().days_since(day), 2);
        assert_eq!(day.previous().days_since(day), -1);
        assert_eq!(WalletDay::parse("2026-13-01"), None);
    }
}
