//! `GET /dashboard/payments.csv`: the payment list's filters as RFC 4180 CSV (a header row,
//! CRLF line ends, fields quoted when they need it), streamed in pages of [`BATCH`] so a
//! year of payments never sits in memory.

use crate::service::{PaymentFilter, PaymentSummary};
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use ottgate_core::OrderStatus;

use super::pages::ListQuery;
use super::session::Signed;
use super::{ErrorKind, error_page};
use crate::state::AppState;

/// Payments read per query.
const BATCH: u32 = 500;

pub const HEADER: &str = "order_id,reference,created,paid,method,currency,amount,refunded,status,wallet_reference,payment_id\r\n";

/// One field: quoted (with its quotes doubled) when it holds a comma, quote or line break.
fn field(out: &mut String, value: &str) {
    if value.contains([',', '"', '\r', '\n']) {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

/// Free text (a merchant's reference, a wallet's) as a spreadsheet will not run it: a value
/// starting with `=`, `+`, `-` or `@` would be read as a formula (CSV injection), and one
/// starting with a TAB or CR can hide such a start from a check that trims first, so each
/// is written after an apostrophe, which spreadsheets take as "text follows".
fn inert(value: String) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value
    }
}

/// A status for machines: the order's, with refunds folded in.
fn status(p: &PaymentSummary) -> &'static str {
    match p.status {
        OrderStatus::Success if p.refunded >= p.money.amount.minor() => "refunded",
        OrderStatus::Success if p.refunded > 0 => "partially_refunded",
        OrderStatus::Success => "paid",
        OrderStatus::Processing => "pending",
        other => other.code(),
    }
}

/// A time in the merchant's zone, RFC 3339 with its offset (`2026-12-05T09:11:55-05:00`):
/// a spreadsheet reads it, and the offset says which zone.
fn when(at: ottgate_core::Timestamp, zone: chrono_tz::Tz) -> String {
    super::session::local_time(at, zone, "%Y-%m-%dT%H:%M:%S%:z")
}

pub fn line(out: &mut String, p: &PaymentSummary, zone: chrono_tz::Tz) {
    let fields = [
        p.order_id.to_string(),
        inert(p.reference.clone().unwrap_or_default()),
        when(p.created_at, zone),
        p.paid_at.map(|t| when(t, zone)).unwrap_or_default(),
        p.method.map(|m| m.code().to_owned()).unwrap_or_default(),
        p.money.currency.code().to_owned(),
        p.money.major_plain(),
        p.money.currency.major_plain(p.refunded),
        status(p).to_owned(),
        inert(p.wallet_reference.clone().unwrap_or_default()),
        p.payment_id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
    ];
    for (i, value) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        field(out, value);
    }
    out.push_str("\r\n");
}

pub async fn csv(
    State(state): State<AppState>,
    signed: Signed,
    Query(query): Query<ListQuery>,
) -> Response {
    let Some(filter) = query.filter(&signed, BATCH) else {
        return error_page(signed.lang, ErrorKind::BadRequest);
    };
    let zone = signed.zone;
    let rows = futures::stream::unfold(Some(filter), move |next: Option<PaymentFilter>| {
        let state = state.clone();
        async move {
            let filter = next?;
            match state.service.payments(&filter).await {
                Ok(found) if found.is_empty() => None,
                Ok(found) => {
                    let mut chunk = String::with_capacity(found.len() * 128);
                    for p in &found {
                        line(&mut chunk, p, zone);
                    }
                    let next = (found.len() == BATCH as usize).then(|| PaymentFilter {
                        before: found.last().map(|p| p.order_id.clone()),
                        ..filter
                    });
                    Some((Ok(Bytes::from(chunk)), next))
                }
                Err(e) => {
                    // The header is already sent: cut the body short, so the download fails
                    // rather than looking complete.
                    tracing::error!(error = %e, "CSV export failed part-way");
                    Some((Err(std::io::Error::other(e.to_string())), None))
                }
            }
        }
    });
    let body = futures::stream::once(async {
        Ok::<_, std::io::Error>(Bytes::from_static(HEADER.as_bytes()))
    })
    .chain(rows);
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"payments.csv\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_when_they_must_be() {
        let mut out = String::new();
        for v in ["plain", "a,b", "say \"hi\"", "two\r\nlines", ""] {
            field(&mut out, v);
            out.push('|');
        }
        assert_eq!(out, "plain|\"a,b\"|\"say \"\"hi\"\"\"|\"two\r\nlines\"||");
    }

    #[test]
    fn free_text_that_a_spreadsheet_would_run_is_written_inert() {
        for (raw, written) in [
            (
                "=HYPERLINK(\"https://evil.example\")",
                "'=HYPERLINK(\"https://evil.example\")",
            ),
            ("+1", "'+1"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1+1", "'\t=1+1"),
            ("\r=1+1", "'\r=1+1"),
            ("POS-4435", "POS-4435"),
            ("", ""),
        ] {
            assert_eq!(inert(raw.to_owned()), written);
        }
    }
}
