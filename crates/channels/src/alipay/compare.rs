//! Alipay cross-border's transaction file, `forex_compare_file` (docs/reconciliation.md):
//! every payment and refund of the partner in a date range, one per line, `|`-separated:
//!
//! `partner_transaction_id|amount|currency|transaction_time|settlement_time|transaction_type|service_charge|status|remarks`
//!
//! Written by the simulator ([`render`]) and read strictly by the connector ([`parse`]).

use ottgate_core::recon::{Side, StatementLine};
use ottgate_core::{Amount, Currency, Money};

/// What Alipay answers for a range without trades.
pub const NO_DATA: &str = "No balance account data in the period";
/// What Alipay answers when the range ends today or later: the file is not ready.
pub const NOT_READY: &str = "Finish date not ahead of today";

const FIELDS: usize = 9;

/// One line of the file. Amounts are minor units of `currency` here; the file writes them
/// in major units with the currency's decimals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLine {
    /// Our id: the trade's `out_trade_no`, or the refund's `out_return_no`.
    pub partner_transaction_id: String,
    pub amount: u64,
    pub currency: Currency,
    /// `yyyyMMddHHmmss`, Beijing time.
    pub transaction_time: String,
    /// `yyyyMMddHHmmss` once settled, else empty.
    pub settlement_time: String,
    pub refund: bool,
    /// Alipay's fee, minor units.
    pub service_charge: u64,
    /// As Alipay states it (carried, not interpreted).
    pub status: String,
    /// For a refund, the trade it refunds.
    pub remarks: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("line {0}: {1}")]
    Line(usize, String),
}

fn major(minor: u64, currency: Currency) -> String {
    match currency.minor_digits() {
        0 => minor.to_string(),
        d => {
            let scale = 10u64.pow(d);
            format!(
                "{}.{:0width$}",
                minor / scale,
                minor % scale,
                width = d as usize
            )
        }
    }
}

/// Exactly the currency's decimals, no sign, no exponent.
fn minor(text: &str, currency: Currency) -> Option<u64> {
    let places = currency.minor_digits();
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (text, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    match fraction {
        None if places == 0 => Some(whole),
        Some(f) if places > 0 && f.len() == places as usize && digits(f) => whole
            .checked_mul(10u64.pow(places))?
            .checked_add(f.parse().ok()?),
        _ => None,
    }
}

/// The file's text for `lines` ([`NO_DATA`] when there are none).
pub fn render(lines: &[FileLine]) -> String {
    if lines.is_empty() {
        return NO_DATA.to_owned();
    }
    let mut out = String::new();
    for l in lines {
        out.push_str(&format!(
            "{}|{}|{}|{}|{}|{}|{}|{}|{}\n",
            l.partner_transaction_id,
            major(l.amount, l.currency),
            l.currency.code(),
            l.transaction_time,
            l.settlement_time,
            if l.refund { "R" } else { "P" },
            major(l.service_charge, l.currency),
            l.status,
            l.remarks
        ));
    }
    out
}

fn time(s: &str) -> bool {
    s.len() == 14 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Reads a file strictly: a line without its nine fields (a cut or foreign line), an
/// amount without exactly its currency's decimals, an unknown currency, type or time is
/// refused with its line number. [`NO_DATA`] reads as no lines.
pub fn parse(text: &str) -> Result<Vec<FileLine>, FileError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim() == NO_DATA {
        return Ok(Vec::new());
    }
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            let n = i + 1;
            let bad = |why: String| FileError::Line(n, why);
            let f: Vec<&str> = line.trim_end_matches('\r').split('|').collect();
            if f.len() != FIELDS {
                return Err(bad(format!(
                    "{} fields, not {FIELDS} (a cut or foreign line)",
                    f.len()
                )));
            }
            let currency: Currency = f[2]
                .parse()
                .map_err(|_| bad(format!("currency {:?}", f[2])))?;
            let amount = |i: usize, what: &str| {
                minor(f[i], currency).ok_or_else(|| bad(format!("{what} {:?}", f[i])))
            };
            if f[0].is_empty() {
                return Err(bad("no partner_transaction_id".into()));
            }
            if !time(f[3]) || !(f[4].is_empty() || time(f[4])) {
                return Err(bad(format!("times {:?} {:?}", f[3], f[4])));
            }
            let refund = match f[5] {
                "P" => false,
                "R" => true,
                other => return Err(bad(format!("transaction_type {other:?}"))),
            };
            Ok(FileLine {
                partner_transaction_id: f[0].to_owned(),
                amount: amount(1, "amount")?,
                currency,
                transaction_time: f[3].to_owned(),
                settlement_time: f[4].to_owned(),
                refund,
                service_charge: amount(6, "service_charge")?,
                status: f[7].to_owned(),
                remarks: f[8].to_owned(),
            })
        })
        .collect()
}

/// The file's lines as statement lines (the file carries no reference of Alipay's own:
/// lines are matched by our ids).
pub fn statement_lines(lines: Vec<FileLine>) -> Result<Vec<StatementLine>, FileError> {
    lines
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let amount = Amount::from_minor(l.amount)
                .map_err(|_| FileError::Line(i + 1, format!("amount {}", l.amount)))?;
            Ok(StatementLine {
                side: if l.refund {
                    Side::Refund
                } else {
                    Side::Payment
                },
                ours: l.partner_transaction_id,
                wallets: String::new(),
                money: Money::new(amount, l.currency),
                currency_stated: true,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: u32, refund: bool) -> FileLine {
        FileLine {
            partner_transaction_id: format!("1796500000000{n:04}"),
            amount: 1234 + u64::from(n),
            currency: Currency::Cad,
            transaction_time: "20261205102030".into(),
            settlement_time: String::new(),
            refund,
            service_charge: if refund { 0 } else { 22 },
            status: "P".into(),
            remarks: if refund {
                "17965000000000001".into()
            } else {
                String::new()
            },
        }
    }

    #[test]
    fn a_file_reads_back_what_was_written() {
        let lines = vec![line(1, false), line(2, true)];
        let text = render(&lines);
        assert!(text.starts_with("17965000000000001|12.35|CAD|20261205102030||P|0.22|P|\n"));
        assert_eq!(parse(&text).unwrap(), lines);
        assert_eq!(parse(&render(&[])).unwrap(), []);
        let statement = statement_lines(lines).unwrap();
        assert_eq!(statement[1].side, Side::Refund);
        assert_eq!(statement[1].money.amount.minor(), 1236);
    }

    #[test]
    fn a_cut_or_malformed_file_is_refused_with_its_line() {
        let text = render(&[line(1, false), line(2, false)]);
        let cut = &text[..text.len() - 12];
        assert_eq!(
            parse(cut).unwrap_err().to_string(),
            "line 2: 4 fields, not 9 (a cut or foreign line)"
        );
        for (bad, why) in [
            ("x|12.3|CAD|20261205102030||P|0.22|P|", "amount \"12.3\""),
            ("x|12.30|XXX|20261205102030||P|0.22|P|", "currency \"XXX\""),
            ("x|12.30|CAD|20261205||P|0.22|P|", "times"),
            (
                "x|12.30|CAD|20261205102030||Q|0.22|P|",
                "transaction_type \"Q\"",
            ),
            (
                "|12.30|CAD|20261205102030||P|0.22|P|",
                "no partner_transaction_id",
            ),
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("line 1: ") && e.contains(why), "{bad}: {e}");
        }
    }
}
