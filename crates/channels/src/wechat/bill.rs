//! WeChat Pay's daily transaction bill (`pay/downloadbill`, `bill_type=ALL`), as text:
//! a header row, one row per payment or refund — each field written after a backtick
//! (`` ` ``), so spreadsheets keep long ids as text — then a summary header and one summary
//! row. Written by the simulator, read strictly by reconciliation: a bill whose header,
//! field count, or summary (count and sums) does not agree with its rows is refused, so a
//! truncated download never passes for a short day (docs/reconciliation.md).

use std::fmt::Write as _;

/// The columns of a service provider's `ALL` bill, in order.
pub const HEADER: [&str; 24] = [
    "交易时间",
    "公众账号ID",
    "商户号",
    "特约商户号",
    "设备号",
    "微信订单号",
    "商户订单号",
    "用户标识",
    "交易类型",
    "交易状态",
    "付款银行",
    "货币种类",
    "应结订单金额",
    "代金券金额",
    "微信退款单号",
    "商户退款单号",
    "退款金额",
    "充值券退款金额",
    "退款类型",
    "退款状态",
    "商品名称",
    "商户数据包",
    "手续费",
    "费率",
];

/// The summary's columns.
pub const SUMMARY_HEADER: [&str; 5] = [
    "总交易单数",
    "应结订单总金额",
    "退款总金额",
    "充值券退款总金额",
    "手续费总金额",
];

/// One row: a payment (`trade_state` `SUCCESS`) or a refund (`REFUND`, with its refund
/// fields). Amounts are in minor units of `fee_type` here; the bill writes them in major
/// units with the currency's decimals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillRow {
    /// `yyyy-MM-dd HH:mm:ss`, Beijing time.
    pub time: String,
    pub appid: String,
    pub mch_id: String,
    pub sub_mch_id: String,
    pub transaction_id: String,
    pub out_trade_no: String,
    pub openid: String,
    pub trade_type: String,
    /// `SUCCESS` (a payment) or `REFUND` (a refund of one).
    pub trade_state: String,
    pub fee_type: String,
    pub total_fee: u64,
    pub refund_id: String,
    pub out_refund_no: String,
    pub refund_fee: u64,
    /// `SUCCESS`, `PROCESSING`, `CHANGE` … for a refund row; empty for a payment.
    pub refund_status: String,
    pub body: String,
    /// WeChat Pay's fee, minor units.
    pub poundage: u64,
    /// The fee rate as WeChat writes it (`0.60%`).
    pub rate: String,
}

impl BillRow {
    /// Whether this row is a refund (else a payment).
    pub fn is_refund(&self) -> bool {
        self.trade_state == "REFUND"
    }

    /// The id the gateway gave WeChat: the refund's for a refund row, else the order's.
    pub fn ours(&self) -> &str {
        if self.is_refund() {
            &self.out_refund_no
        } else {
            &self.out_trade_no
        }
    }
}

/// Why a bill was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BillError {
    #[error("the bill is empty")]
    Empty,
    #[error("the bill's header is not WeChat Pay's ALL bill header")]
    Header,
    #[error("row {0}: {1}")]
    Row(usize, String),
    #[error("the bill has no summary: it is cut short")]
    NoSummary,
    #[error("the summary disagrees with the rows: {0}")]
    Summary(String),
}

/// Decimal places of a WeChat `fee_type` (JPY and KRW have none).
fn decimals(fee_type: &str) -> u32 {
    match fee_type {
        "JPY" | "KRW" => 0,
        _ => 2,
    }
}

fn major(minor: u64, fee_type: &str) -> String {
    match decimals(fee_type) {
        0 => minor.to_string(),
        _ => format!("{}.{:02}", minor / 100, minor % 100),
    }
}

/// `12.34` in `fee_type` → minor units; exactly the currency's decimals, nothing else.
fn minor(text: &str, fee_type: &str) -> Option<u64> {
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (text, None),
    };
    let places = decimals(fee_type);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    match (fraction, places) {
        (None, _) => whole.checked_mul(10u64.pow(places)),
        (Some(f), p) if p > 0 && f.len() == p as usize && digits(f) => whole
            .checked_mul(10u64.pow(p))?
            .checked_add(f.parse().ok()?),
        _ => None,
    }
}

/// The bill's rows as statement lines to match (`ottgate_core::recon`): a payment by its
/// `out_trade_no` and `transaction_id`, a refund by its `out_refund_no` and `refund_id`.
/// A currency ottgate does not know is refused (the day cannot be matched line by line).
pub fn statement_lines(
    rows: &[BillRow],
) -> Result<Vec<ottgate_core::recon::StatementLine>, BillError> {
    rows.iter()
        .enumerate()
        .map(|(n, r)| statement_line(n + 1, r))
        .collect()
}

/// Row `n` as a statement line.
fn statement_line(n: usize, r: &BillRow) -> Result<ottgate_core::recon::StatementLine, BillError> {
    use ottgate_core::recon::{Side, StatementLine};
    let currency = r
        .fee_type
        .parse::<ottgate_core::Currency>()
        .map_err(|_| BillError::Row(n, format!("currency {:?}", r.fee_type)))?;
    let refund = r.is_refund();
    let minor = if refund { r.refund_fee } else { r.total_fee };
    let amount = ottgate_core::Amount::from_minor(minor)
        .map_err(|_| BillError::Row(n, format!("amount {minor}")))?;
    Ok(StatementLine {
        side: if refund { Side::Refund } else { Side::Payment },
        ours: r.ours().to_owned(),
        wallets: if refund {
            &r.refund_id
        } else {
            &r.transaction_id
        }
        .clone(),
        money: ottgate_core::Money::new(amount, currency),
        currency_stated: true,
    })
}

/// The bill's text for `rows`.
pub fn render(rows: &[BillRow]) -> String {
    let mut out = HEADER.join(",");
    out.push_str("\r\n");
    let (mut paid, mut refunded, mut fees) = (0u64, 0u64, 0u64);
    for r in rows {
        let refund = r.trade_state == "REFUND";
        let fields = [
            r.time.clone(),
            r.appid.clone(),
            r.mch_id.clone(),
            r.sub_mch_id.clone(),
            String::new(),
            r.transaction_id.clone(),
            r.out_trade_no.clone(),
            r.openid.clone(),
            r.trade_type.clone(),
            r.trade_state.clone(),
            "OTHERS".to_owned(),
            r.fee_type.clone(),
            major(r.total_fee, &r.fee_type),
            major(0, &r.fee_type),
            if refund {
                r.refund_id.clone()
            } else {
                "0".to_owned()
            },
            if refund {
                r.out_refund_no.clone()
            } else {
                "0".to_owned()
            },
            major(r.refund_fee, &r.fee_type),
            major(0, &r.fee_type),
            if refund {
                "ORIGINAL".to_owned()
            } else {
                String::new()
            },
            r.refund_status.clone(),
            r.body.replace([',', '`', '\r', '\n'], " "),
            String::new(),
            major(r.poundage, &r.fee_type),
            r.rate.clone(),
        ];
        let line: Vec<String> = fields.iter().map(|f| format!("`{f}")).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
        if !refund {
            paid += r.total_fee;
        }
        refunded += r.refund_fee;
        fees += r.poundage;
    }
    // The summary's sums are in the bill's currency: one currency per bill (a sub-merchant
    // settles in one).
    let fee_type = rows.first().map_or("CNY", |r| r.fee_type.as_str());
    out.push_str(&SUMMARY_HEADER.join(","));
    out.push_str("\r\n");
    let _ = write!(
        out,
        "`{},`{},`{},`{},`{}\r\n",
        rows.len(),
        major(paid, fee_type),
        major(refunded, fee_type),
        major(0, fee_type),
        major(fees, fee_type)
    );
    out
}

/// Reads a bill, refusing anything that is not whole and consistent.
pub fn parse(text: &str) -> Result<Vec<BillRow>, BillError> {
    let mut rows = Vec::new();
    parse_each(text, |row| {
        rows.push(row);
        Ok(())
    })?;
    Ok(rows)
}

/// Reads a bill as [`parse`] does, handing each row to `each` as it is read (a day of
/// 100,000 rows is never held as rows at once). The summary is checked against the sums of
/// every row; an error from `each` stops the reading.
pub fn parse_each(
    text: &str,
    mut each: impl FnMut(BillRow) -> Result<(), BillError>,
) -> Result<(), BillError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().ok_or(BillError::Empty)?;
    if header.trim().split(',').collect::<Vec<_>>() != HEADER {
        return Err(BillError::Header);
    }
    let mut sums = Sums::default();
    let mut summary = None;
    for (n, line) in lines.by_ref().enumerate() {
        if line.trim().split(',').collect::<Vec<_>>() == SUMMARY_HEADER {
            summary = Some(lines.next().ok_or(BillError::NoSummary)?);
            break;
        }
        let row = row(n + 1, line)?;
        sums.add(&row);
        each(row)?;
    }
    let summary = summary.ok_or(BillError::NoSummary)?;
    check_summary(summary, &sums)
}

/// Reads a bill straight into statement lines ([`statement_lines`] of [`parse`], without
/// holding the rows).
pub fn parse_statement(text: &str) -> Result<Vec<ottgate_core::recon::StatementLine>, BillError> {
    let mut lines = Vec::new();
    let mut n = 0;
    parse_each(text, |row| {
        n += 1;
        lines.push(statement_line(n, &row)?);
        Ok(())
    })?;
    Ok(lines)
}

/// What the rows add up to, for the summary.
#[derive(Default)]
struct Sums {
    count: usize,
    fee_type: Option<String>,
    paid: u64,
    refunded: u64,
    poundage: u64,
}

impl Sums {
    fn add(&mut self, r: &BillRow) {
        self.count += 1;
        if self.fee_type.is_none() {
            self.fee_type = Some(r.fee_type.clone());
        }
        if !r.is_refund() {
            self.paid += r.total_fee;
        }
        self.refunded += r.refund_fee;
        self.poundage += r.poundage;
    }
}

fn fields(line: &str, count: usize) -> Option<Vec<&str>> {
    let fields: Option<Vec<&str>> = line
        .trim_end_matches(['\r', '\n'])
        .split(',')
        .map(|f| f.strip_prefix('`'))
        .collect();
    fields.filter(|f| f.len() == count)
}

fn row(n: usize, line: &str) -> Result<BillRow, BillError> {
    let bad = |why: &str| BillError::Row(n, why.to_owned());
    let f = fields(line, HEADER.len())
        .ok_or_else(|| bad("not 24 backtick-quoted fields (a cut or foreign line)"))?;
    let fee_type = f[11].to_owned();
    let amount = |i: usize, what: &str| {
        minor(f[i], &fee_type).ok_or_else(|| bad(&format!("{what} {:?} is not an amount", f[i])))
    };
    let trade_state = f[9].to_owned();
    if !matches!(trade_state.as_str(), "SUCCESS" | "REFUND" | "REVOKED") {
        return Err(bad(&format!("unknown trade state {trade_state:?}")));
    }
    if f[5].is_empty() || f[6].is_empty() {
        return Err(bad("a row without WeChat's or the merchant's order number"));
    }
    let refund = trade_state == "REFUND";
    Ok(BillRow {
        time: f[0].to_owned(),
        appid: f[1].to_owned(),
        mch_id: f[2].to_owned(),
        sub_mch_id: f[3].to_owned(),
        transaction_id: f[5].to_owned(),
        out_trade_no: f[6].to_owned(),
        openid: f[7].to_owned(),
        trade_type: f[8].to_owned(),
        trade_state,
        total_fee: amount(12, "应结订单金额")?,
        refund_id: if refund {
            f[14].to_owned()
        } else {
            String::new()
        },
        out_refund_no: if refund {
            f[15].to_owned()
        } else {
            String::new()
        },
        refund_fee: amount(16, "退款金额")?,
        refund_status: f[19].to_owned(),
        body: f[20].to_owned(),
        poundage: amount(22, "手续费")?,
        rate: f[23].to_owned(),
        fee_type,
    })
}

fn check_summary(line: &str, sums: &Sums) -> Result<(), BillError> {
    let f = fields(line, SUMMARY_HEADER.len())
        .ok_or_else(|| BillError::Summary("not 5 backtick-quoted fields".into()))?;
    let fee_type = sums.fee_type.as_deref().unwrap_or("CNY");
    let count: usize = f[0]
        .parse()
        .map_err(|_| BillError::Summary(format!("count {:?}", f[0])))?;
    if count != sums.count {
        return Err(BillError::Summary(format!(
            "{count} trades summed, {} rows read",
            sums.count
        )));
    }
    for (i, what, expected) in [
        (1, "应结订单总金额", sums.paid),
        (2, "退款总金额", sums.refunded),
        (4, "手续费总金额", sums.poundage),
    ] {
        if minor(f[i], fee_type) != Some(expected) {
            return Err(BillError::Summary(format!(
                "{what} {:?}, the rows sum to {}",
                f[i],
                major(expected, fee_type)
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(n: u64) -> BillRow {
        BillRow {
            time: "2026-12-05 10:20:30".into(),
            appid: "wx0000000000000001".into(),
            mch_id: "1900000001".into(),
            sub_mch_id: "1900000002".into(),
            transaction_id: format!("42000202612050000000000{n:05}"),
            out_trade_no: format!("1796500000000{n:04}"),
            openid: "oSimOpenId0000000000000000001".into(),
            trade_type: "NATIVE".into(),
            trade_state: "SUCCESS".into(),
            fee_type: "CAD".into(),
            total_fee: 1234 + n,
            refund_id: String::new(),
            out_refund_no: String::new(),
            refund_fee: 0,
            refund_status: String::new(),
            body: "Maple Tea House, downtown".into(),
            poundage: 7,
            rate: "0.60%".into(),
        }
    }

    fn refund_of(p: &BillRow) -> BillRow {
        BillRow {
            trade_state: "REFUND".into(),
            refund_id: "50300000000000000000001".into(),
            out_refund_no: "REF17965000000000001".into(),
            refund_fee: 300,
            refund_status: "SUCCESS".into(),
            poundage: 0,
            ..p.clone()
        }
    }

    fn day() -> Vec<BillRow> {
        let mut rows: Vec<BillRow> = (1..=3).map(payment).collect();
        rows.push(refund_of(&rows[0]));
        rows
    }

    #[test]
    fn a_bill_reads_back_as_written() {
        let text = render(&day());
        assert!(text.starts_with("交易时间,公众账号ID,商户号"));
        assert!(text.contains("`12.35,"), "{text}");
        let mut expected = day();
        // Commas cannot stand inside a field: the body is written without them.
        for r in &mut expected {
            r.body = "Maple Tea House  downtown".into();
        }
        assert_eq!(parse(&text).unwrap(), expected);
        assert_eq!(parse(&render(&[])).unwrap(), []);
    }

    #[test]
    fn a_cut_or_altered_bill_is_refused_with_its_reason() {
        let text = render(&day());
        let lines: Vec<&str> = text.lines().collect();
        // Cut after the rows: no summary.
        let cut = lines[..4].join("\r\n");
        assert_eq!(parse(&cut), Err(BillError::NoSummary));
        // A row lost in the middle: the summary's count disagrees.
        let mut lost = lines.clone();
        lost.remove(2);
        assert!(matches!(
            parse(&lost.join("\r\n")),
            Err(BillError::Summary(_))
        ));
        // A row cut mid-line.
        let mut half = lines.clone();
        half[1] = &lines[1][..40];
        assert!(matches!(
            parse(&half.join("\r\n")),
            Err(BillError::Row(1, _))
        ));
        // An amount changed: the sums disagree.
        let changed = text.replacen("`12.35,", "`12.36,", 1);
        assert!(matches!(parse(&changed), Err(BillError::Summary(_))));
        // Not a bill at all (WeChat's XML error, an HTML page).
        let xml = "<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[No Bill Exist]]></return_msg></xml>";
        assert_eq!(parse(xml), Err(BillError::Header));
        assert_eq!(parse(""), Err(BillError::Empty));
        // An amount with the wrong decimals.
        let bad_amount = text.replacen("`12.35,", "`12.3,", 1);
        assert!(matches!(parse(&bad_amount), Err(BillError::Row(1, _))));
    }

    #[test]
    fn rows_become_statement_lines_named_by_our_ids() {
        use ottgate_core::recon::Side;
        let lines = statement_lines(&day()).unwrap();
        assert_eq!(lines.len(), 4);
        assert_eq!(
            (lines[0].side, lines[0].ours.as_str()),
            (Side::Payment, "17965000000000001")
        );
        assert_eq!(lines[0].money.amount.minor(), 1235);
        assert_eq!(
            (
                lines[3].side,
                lines[3].ours.as_str(),
                lines[3].money.amount.minor()
            ),
            (Side::Refund, "REF17965000000000001", 300)
        );
        let mut odd = day();
        odd[1].fee_type = "XYZ".into();
        assert!(matches!(statement_lines(&odd), Err(BillError::Row(2, _))));
    }

    #[test]
    fn amounts_follow_the_currencys_decimals() {
        assert_eq!(minor("12.34", "CAD"), Some(1234));
        assert_eq!(minor("12", "CAD"), Some(1200));
        assert_eq!(minor("1200", "JPY"), Some(1200));
        for bad in ["12.3", "12.345", "-1.00", "1e3", "", ".50", "1.5"] {
            assert_eq!(minor(bad, "CAD"), None, "{bad}");
        }
        assert_eq!(minor("12.00", "JPY"), None);
        assert_eq!(major(5, "CAD"), "0.05");
        assert_eq!(major(1200, "JPY"), "1200");
    }
}
