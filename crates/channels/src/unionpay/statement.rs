//! UnionPay's reconciliation file (docs/reconciliation.md): what the file-transfer request
//! (`txnType=76`) answers — `fileContent`, base64 of a zlib-deflated zip — and, in the
//! zip, the detail file (its name starts with `INN`): one transaction a line, fixed-width
//! fields separated by one space. The layout is the one public client libraries read (not
//! UnionPay's own specification); see the page for what is assumed.

use base64::Engine;
use ottgate_core::recon::{Side, StatementLine};
use ottgate_core::{Amount, Currency, Money};
use std::io::{Read, Write};

/// The widths of the detail line's fields, in bytes, as far as the public layouts agree
/// (a newer layout adds fields after these; they are ignored).
pub const WIDTHS: [usize; 40] = [
    3, 11, 11, 6, 10, 19, 12, 4, 2, 21, 2, 32, 2, 6, 10, 13, 13, 4, 15, 2, 2, 6, 2, 4, 32, 1, 21,
    15, 1, 15, 32, 13, 13, 8, 32, 13, 13, 12, 2, 1,
];

const TRADE_CODE: usize = 0;
const TXN_TIME: usize = 4;
const TXN_AMT: usize = 6;
const QUERY_ID: usize = 9;
const ORDER_ID: usize = 11;
const MER_ID: usize = 27;
const ORIG_QUERY_ID: usize = 26;

/// A purchase (`消费`).
pub const PURCHASE: &str = "S22";
/// A refund (`退货`).
pub const REFUND: &str = "S30";

/// The most a file may unpack to (a gzip-bomb guard, as for WeChat's bill).
const MAX_BYTES: u64 = 1 << 30;

/// One transaction of the detail file (the fields ottgate reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetailLine {
    /// [`PURCHASE`] or [`REFUND`].
    pub trade_code: String,
    /// `MMDDhhmmss`, Beijing time.
    pub txn_time: String,
    /// Minor units; the file names no currency.
    pub txn_amt: u64,
    /// UnionPay's reference of the transaction.
    pub query_id: String,
    /// Our id: the purchase's `orderId`, or the refund's own.
    pub order_id: String,
    /// For a refund, the purchase's `queryId`.
    pub orig_query_id: String,
    pub mer_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("fileContent: {0}")]
    Container(String),
    #[error("the zip holds no detail file (INN…)")]
    NoDetail,
    #[error("line {0}: {1}")]
    Line(usize, String),
}

fn line_length() -> usize {
    WIDTHS.iter().sum::<usize>() + WIDTHS.len() - 1
}

/// The detail file's text for `lines` (CRLF line ends).
pub fn render(lines: &[DetailLine]) -> String {
    let mut out = String::new();
    for l in lines {
        let mut fields: Vec<String> = WIDTHS.iter().map(|w| " ".repeat(*w)).collect();
        let mut set = |i: usize, value: String| {
            fields[i] = format!("{value:<width$}", width = WIDTHS[i]);
        };
        set(TRADE_CODE, l.trade_code.clone());
        set(TXN_TIME, l.txn_time.clone());
        set(TXN_AMT, format!("{:012}", l.txn_amt));
        set(QUERY_ID, l.query_id.clone());
        set(ORDER_ID, l.order_id.clone());
        set(ORIG_QUERY_ID, l.orig_query_id.clone());
        set(MER_ID, l.mer_id.clone());
        out.push_str(&fields.join(" "));
        out.push_str("\r\n");
    }
    out
}

/// Reads the detail file strictly: a line shorter than the layout (a cut line), a trade
/// code other than a purchase or a refund, an amount that is not 12 digits, a time that is
/// not `MMDDhhmmss` or a line without an order id is refused with its number.
pub fn parse(bytes: &[u8]) -> Result<Vec<DetailLine>, FileError> {
    let mut out = Vec::new();
    for (i, line) in bytes
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .enumerate()
    {
        let n = i + 1;
        if line.len() < line_length() {
            return Err(FileError::Line(
                n,
                format!(
                    "{} bytes, shorter than the layout's {}",
                    line.len(),
                    line_length()
                ),
            ));
        }
        let mut at = 0;
        let mut fields = Vec::with_capacity(WIDTHS.len());
        for w in WIDTHS {
            fields.push(&line[at..at + w]);
            at += w + 1;
        }
        let text = |i: usize| -> Result<String, FileError> {
            std::str::from_utf8(fields[i])
                .map(|s| s.trim().to_owned())
                .map_err(|_| FileError::Line(n, format!("field {} is not text", i + 1)))
        };
        let digits = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit());
        let trade_code = text(TRADE_CODE)?;
        if trade_code != PURCHASE && trade_code != REFUND {
            return Err(FileError::Line(n, format!("trade code {trade_code:?}")));
        }
        let txn_time = text(TXN_TIME)?;
        if !digits(&txn_time, 10) {
            return Err(FileError::Line(n, format!("time {txn_time:?}")));
        }
        let amount = text(TXN_AMT)?;
        if !digits(&amount, 12) {
            return Err(FileError::Line(n, format!("amount {amount:?}")));
        }
        let order_id = text(ORDER_ID)?;
        if order_id.is_empty() {
            return Err(FileError::Line(n, "no order id".into()));
        }
        out.push(DetailLine {
            trade_code,
            txn_time,
            txn_amt: amount.parse().unwrap_or(0),
            query_id: text(QUERY_ID)?,
            order_id,
            orig_query_id: text(ORIG_QUERY_ID)?,
            mer_id: text(MER_ID)?,
        });
    }
    Ok(out)
}

/// The detail lines as statement lines: matched by our order id, else UnionPay's
/// `queryId`; the amount only (the file names no currency).
pub fn statement_lines(lines: Vec<DetailLine>) -> Result<Vec<StatementLine>, FileError> {
    lines
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let amount = Amount::from_minor(l.txn_amt)
                .map_err(|_| FileError::Line(i + 1, format!("amount {}", l.txn_amt)))?;
            Ok(StatementLine {
                side: if l.trade_code == REFUND {
                    Side::Refund
                } else {
                    Side::Payment
                },
                ours: l.order_id,
                wallets: l.query_id,
                // A placeholder: the line takes the currency of the record it matches.
                money: Money::new(amount, Currency::Cad),
                currency_stated: false,
            })
        })
        .collect()
}

/// `fileContent` for files `(name, bytes)`: a zip (entries stored), zlib-deflated, base64.
pub fn pack(files: &[(String, Vec<u8>)]) -> String {
    let zip = zip_stored(files);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    let _ = z.write_all(&zip);
    let deflated = z.finish().unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(deflated)
}

/// The detail file's bytes out of `fileContent`.
pub fn unpack_detail(file_content: &str) -> Result<Vec<u8>, FileError> {
    let bad = |m: &str| FileError::Container(m.to_owned());
    let deflated = base64::engine::general_purpose::STANDARD
        .decode(file_content.trim())
        .map_err(|_| bad("not base64"))?;
    let mut zip = Vec::new();
    let read = flate2::read::ZlibDecoder::new(&deflated[..])
        .take(MAX_BYTES + 1)
        .read_to_end(&mut zip)
        .map_err(|_| bad("does not inflate (cut short or not zlib)"))?;
    if read as u64 > MAX_BYTES {
        return Err(bad("unpacks to more than 1 GiB"));
    }
    for (name, bytes) in unzip(&zip)? {
        if name.starts_with("INN") {
            return Ok(bytes);
        }
    }
    Err(FileError::NoDetail)
}

fn le16(b: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(u16::from_le_bytes(
        b.get(at..at + 2)?.try_into().ok()?,
    )))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// A zip's entries, read by its central directory (stored or deflated, CRC checked).
fn unzip(zip: &[u8]) -> Result<Vec<(String, Vec<u8>)>, FileError> {
    let bad = |m: &str| FileError::Container(format!("zip: {m}"));
    let end = (0..zip.len().saturating_sub(21))
        .rev()
        .find(|&i| le32(zip, i) == Some(0x0605_4b50))
        .ok_or_else(|| bad("no end of central directory"))?;
    let entries = le16(zip, end + 10).ok_or_else(|| bad("cut"))?;
    let mut at = le32(zip, end + 16).ok_or_else(|| bad("cut"))? as usize;
    let mut out = Vec::with_capacity(entries);
    for _ in 0..entries {
        if le32(zip, at) != Some(0x0201_4b50) {
            return Err(bad("a central entry is malformed"));
        }
        let field = |o: usize| le16(zip, at + o).ok_or_else(|| bad("cut"));
        let word = |o: usize| le32(zip, at + o).ok_or_else(|| bad("cut"));
        let (method, crc, size) = (field(10)?, word(16)?, word(20)? as usize);
        let (name_len, extra_len, comment_len) = (field(28)?, field(30)?, field(32)?);
        let local = word(42)? as usize;
        let name = zip
            .get(at + 46..at + 46 + name_len)
            .ok_or_else(|| bad("cut"))?;
        let name = String::from_utf8_lossy(name).into_owned();
        if le32(zip, local) != Some(0x0403_4b50) {
            return Err(bad("a local header is malformed"));
        }
        let data_at = local
            + 30
            + le16(zip, local + 26).ok_or_else(|| bad("cut"))?
            + le16(zip, local + 28).ok_or_else(|| bad("cut"))?;
        let data = zip
            .get(data_at..data_at + size)
            .ok_or_else(|| bad("an entry is cut short"))?;
        let bytes = match method {
            0 => data.to_vec(),
            8 => {
                let mut v = Vec::new();
                flate2::read::DeflateDecoder::new(data)
                    .take(MAX_BYTES + 1)
                    .read_to_end(&mut v)
                    .map_err(|_| bad("an entry does not inflate"))?;
                v
            }
            other => return Err(bad(&format!("compression method {other}"))),
        };
        let mut check = flate2::Crc::new();
        check.update(&bytes);
        if check.sum() != crc {
            return Err(bad(&format!("{name}: CRC mismatch")));
        }
        out.push((name, bytes));
        at += 46 + name_len + extra_len + comment_len;
    }
    Ok(out)
}

/// A zip of `files`, each stored (the deflate around the whole zip compresses them).
fn zip_stored(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let u16_of = |n: usize| u16::try_from(n).unwrap_or(u16::MAX).to_le_bytes();
    let u32_of = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, bytes) in files {
        let mut crc = flate2::Crc::new();
        crc.update(bytes);
        let offset = out.len();
        // Version 2.0, no flags, stored, 1980-01-01 00:00.
        let common = [
            &[20u8, 0, 0, 0, 0, 0, 0, 0, 0x21, 0][..],
            &crc.sum().to_le_bytes(),
            &u32_of(bytes.len()),
            &u32_of(bytes.len()),
            &u16_of(name.len()),
            &[0, 0],
        ]
        .concat();
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&common);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(bytes);
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&[20, 0]);
        central.extend_from_slice(&common);
        // Comment length, disk, internal and external attributes.
        central.extend_from_slice(&[0; 10]);
        central.extend_from_slice(&u32_of(offset));
        central.extend_from_slice(name.as_bytes());
    }
    let central_at = out.len();
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&u16_of(files.len()));
    out.extend_from_slice(&u16_of(files.len()));
    out.extend_from_slice(&u32_of(central.len()));
    out.extend_from_slice(&u32_of(central_at));
    out.extend_from_slice(&[0, 0]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: u32, refund: bool) -> DetailLine {
        DetailLine {
            trade_code: if refund { REFUND } else { PURCHASE }.into(),
            txn_time: "1205102030".into(),
            txn_amt: 1234 + u64::from(n),
            query_id: format!("5412052030{n:011}"),
            order_id: format!("1796500000000{n:04}"),
            orig_query_id: String::new(),
            mer_id: "777290058110097".into(),
        }
    }

    #[test]
    fn a_detail_file_reads_back_through_its_container() {
        let lines = vec![line(1, false), line(2, true)];
        let text = render(&lines);
        assert!(text.starts_with("S22 "));
        assert_eq!(text.lines().next().unwrap().len(), line_length());
        let content = pack(&[
            (
                "INN26120588ZM_777290058110097".into(),
                text.clone().into_bytes(),
            ),
            ("INN26120599ZM_777290058110097".into(), b"summary".to_vec()),
        ]);
        let detail = unpack_detail(&content).unwrap();
        assert_eq!(detail, text.as_bytes());
        assert_eq!(parse(&detail).unwrap(), lines);
        let statement = statement_lines(lines).unwrap();
        assert_eq!(statement[1].side, Side::Refund);
        assert!(!statement[0].currency_stated);
    }

    /// A zip another program made, its entries deflated (Python's `zipfile`), zlib'd and
    /// base64'd as UnionPay sends it.
    #[test]
    fn a_deflated_zip_from_elsewhere_unpacks() {
        let content = "eJwL8GZmEWFgYOBgaOZoixX54+klC+TtYGRgANGefn5GZoZGBqYWFlG+8ebm5kaWBkCOoaGBgaX5aY+zJ0+Ga5w9fea8tseaEA9PXc8zZwJPSIjKPlnEEIBibnKaxjlOII+dAc1cS0tMc7X1zp711VnFAjSDkUmEGbfrYKCBkYGQW9GNQncQwqgIQs4L8GZlAyllAsJpQHoOWCMA+cxAtg==";
        assert_eq!(
            unpack_detail(content).unwrap(),
            "hello unionpay detail ".repeat(20).as_bytes()
        );
    }

    #[test]
    fn a_cut_or_malformed_file_is_refused_with_its_reason() {
        let text = render(&[line(1, false), line(2, false)]);
        let cut = &text.as_bytes()[..text.len() - 40];
        let e = parse(cut).unwrap_err().to_string();
        assert!(e.starts_with("line 2: ") && e.contains("shorter"), "{e}");
        let foreign = text.replacen("S22", "S31", 1);
        assert!(
            parse(foreign.as_bytes())
                .unwrap_err()
                .to_string()
                .contains("trade code")
        );
        let content = pack(&[("INN1".into(), text.into_bytes())]);
        assert!(matches!(
            unpack_detail(&content[..content.len() / 2]),
            Err(FileError::Container(_))
        ));
        assert_eq!(
            unpack_detail(&pack(&[("other".into(), vec![])])),
            Err(FileError::NoDetail)
        );
    }
}
