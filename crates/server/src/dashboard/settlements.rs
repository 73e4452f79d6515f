//! `GET /dashboard/settlements`: what the merchant is owed for a wallet day (Beijing) —
//! each currency's totals and the payments and refunds they add up from, its fee rates —
//! and the same day as CSV (docs/reconciliation.md, "Settlement").

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use ottgate_core::Currency;
use ottgate_core::recon::{Side, WalletDay};
use ottgate_core::settlement::Statement;
use serde::Deserialize;

use super::i18n::{Strings, method_name};
use super::pages::{Chrome, money_text, page};
use super::session::Signed;
use super::{ErrorKind, error_page, internal};
use crate::state::AppState;

#[derive(Debug, Default, Deserialize)]
pub struct DayQuery {
    #[serde(default)]
    date: String,
}

impl DayQuery {
    /// The day asked for (`yyyy-MM-dd`), yesterday in Beijing when none is; `None` when
    /// what was asked is not a day.
    fn day(&self, state: &AppState) -> Option<WalletDay> {
        let date = self.date.trim();
        if date.is_empty() {
            return Some(WalletDay::of(state.service.clock.now()).previous());
        }
        WalletDay::parse(date).filter(|_| date.len() == 10)
    }
}

/// A signed amount of minor units, as the page shows it.
fn signed_text(minor: i64, currency: Currency) -> String {
    let shown = money_text(minor.unsigned_abs(), currency);
    if minor < 0 {
        format!("−{shown}")
    } else {
        shown
    }
}

pub struct TotalsView {
    pub currency: &'static str,
    pub payments: u64,
    pub gross: String,
    pub refunds: String,
    pub refund_count: u64,
    pub fees: String,
    pub net: String,
    pub buyer_cny: String,
    pub lines: Vec<LineView>,
}

pub struct LineView {
    pub kind: &'static str,
    pub id: String,
    pub link: bool,
    pub method: &'static str,
    pub amount: String,
    pub fee: String,
    pub net: String,
    pub rate: String,
}

pub struct RateView {
    pub method: &'static str,
    pub rate: String,
}

#[derive(Template)]
#[template(path = "dashboard/settlements.html")]
struct SettlementsPage {
    t: &'static Strings,
    chrome: Chrome,
    day: String,
    previous: String,
    next: String,
    statements: Vec<TotalsView>,
    rates: Vec<RateView>,
    csv: String,
}

fn view(t: &'static Strings, s: &Statement) -> TotalsView {
    let c = s.currency;
    TotalsView {
        currency: c.code(),
        payments: s.payments,
        gross: money_text(s.gross, c),
        refunds: money_text(s.refunds, c),
        refund_count: s.refund_count,
        fees: money_text(s.fees, c),
        net: signed_text(s.net, c),
        buyer_cny: if s.buyer_cny > 0 {
            money_text(s.buyer_cny, Currency::Cny)
        } else {
            t.none.to_owned()
        },
        lines: s
            .lines
            .iter()
            .map(|l| LineView {
                kind: match l.item.side {
                    Side::Payment => t.line_payment,
                    Side::Refund => t.line_refund,
                },
                id: l.item.id.clone(),
                link: l.item.side == Side::Payment,
                method: method_name(t, l.item.method),
                amount: money_text(l.item.amount, c),
                fee: money_text(l.fee, c),
                net: signed_text(l.net, c),
                rate: ottgate_core::BuyerPaid {
                    cny: 0,
                    rate: l.item.fx_rate.clone(),
                }
                .rate_text()
                .map_or_else(
                    || t.none.to_owned(),
                    |rate| format!("{rate} {} {}", t.exchange_rate_per, c.code()),
                ),
            })
            .collect(),
    }
}

pub async fn settlements(
    State(state): State<AppState>,
    signed: Signed,
    Query(query): Query<DayQuery>,
) -> Response {
    let t = signed.t();
    let Some(day) = query.day(&state) else {
        return error_page(signed.lang, ErrorKind::BadRequest);
    };
    let merchant = &signed.merchant.id;
    let statements = match state.service.settlement(merchant, day).await {
        Ok(s) => s,
        Err(e) => return internal(signed.lang, &e),
    };
    let rates = match state.service.fee_rates(merchant).await {
        Ok(r) => r,
        Err(e) => return internal(signed.lang, &e),
    };
    let body = SettlementsPage {
        t,
        chrome: Chrome::new(&signed, "settlements"),
        day: day.to_string(),
        previous: day.previous().to_string(),
        next: day.next().to_string(),
        statements: statements.iter().map(|s| view(t, s)).collect(),
        rates: rates
            .into_iter()
            .filter(|(m, _, _)| signed.merchant.methods.contains(m))
            .map(|(m, rate, _)| RateView {
                method: method_name(t, m),
                rate: rate.to_string(),
            })
            .collect(),
        csv: format!("/dashboard/settlements.csv?date={day}"),
    };
    page(&signed, &state, StatusCode::OK, &body)
}

/// The CSV's columns: one row per payment or refund, then a `total` row per currency.
pub const HEADER: &str = "date,currency,type,id,method,amount,fee,net,buyer_cny,fx_rate\r\n";

/// Minor units as major with the currency's decimals, signed.
fn major(minor: i64, currency: Currency) -> String {
    let shown = currency.major_plain(minor.unsigned_abs());
    if minor < 0 {
        format!("-{shown}")
    } else {
        shown
    }
}

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `GET /dashboard/settlements.csv?date=`: the day's lines and totals, amounts in major
/// units of their currency.
pub async fn csv(
    State(state): State<AppState>,
    signed_in: Signed,
    Query(query): Query<DayQuery>,
) -> Response {
    let Some(day) = query.day(&state) else {
        return error_page(signed_in.lang, ErrorKind::BadRequest);
    };
    let statements = match state.service.settlement(&signed_in.merchant.id, day).await {
        Ok(s) => s,
        Err(e) => return internal(signed_in.lang, &e),
    };
    let mut out = String::from(HEADER);
    for s in &statements {
        let c = s.currency;
        for l in &s.lines {
            out.push_str(&format!(
                "{day},{},{},{},{},{},{},{},{},{}\r\n",
                c.code(),
                l.item.side.code(),
                l.item.id,
                l.item.method.code(),
                major(signed(l.item.amount), c),
                major(signed(l.fee), c),
                major(l.net, c),
                l.item
                    .buyer_cny
                    .map(|n| Currency::Cny.major_plain(n))
                    .unwrap_or_default(),
                l.item.fx_rate.as_deref().unwrap_or_default(),
            ));
        }
        out.push_str(&format!(
            "{day},{},total,,,{},{},{},{},\r\n",
            c.code(),
            major(signed(s.gross) - signed(s.refunds), c),
            major(signed(s.fees), c),
            major(s.net, c),
            Currency::Cny.major_plain(s.buyer_cny),
        ));
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"settlement-{day}.csv\""),
            ),
        ],
        out,
    )
        .into_response()
}
