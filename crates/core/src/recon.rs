//! Matching a wallet's statement for a day against the gateway's own records
//! (docs/reconciliation.md). Each statement line is a payment or a refund as the wallet
//! booked it; each record is one the gateway holds for that wallet and day. Both are named
//! by the id the gateway gave the wallet (the attempt's or refund's id), and by the
//! wallet's own reference once known. Every line and every record ends in exactly one
//! [`Outcome`]: matched, or the discrepancy an operator (or the self-repair) must resolve.

use crate::Money;
use std::collections::HashMap;

/// Whether a line or record is a payment or a refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Payment,
    Refund,
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
}

/// How one line or record came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Matched {
        ours: String,
    },
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
            Outcome::Matched { .. } => "matched",
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
        let pair = || (line.clone(), record.clone());
        out.push(if line.money.currency != record.money.currency {
            let (line, record) = pair();
            Outcome::CurrencyDiffers { line, record }
        } else if line.money.amount != record.money.amount {
            let (line, record) = pair();
            Outcome::AmountDiffers { line, record }
        } else if !record.done {
            let (line, record) = pair();
            Outcome::StatusDiffers { line, record }
        } else {
            Outcome::Matched {
                ours: record.ours.clone(),
            }
        });
    }
    for (record, seen) in records.iter().zip(seen) {
        if !seen && record.done {
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
            });
            records.push(Record {
                side,
                ours,
                wallets: Some(wallets),
                money,
                done: true,
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
        });
        assert!(kinds(&reconcile(&lines, &pending)).is_empty());
        // The same line twice: the second is the wallet's alone.
        lines.push(lines[1].clone());
        assert_eq!(kinds(&reconcile(&lines, &records)), ["wallet_only"]);
    }
}
