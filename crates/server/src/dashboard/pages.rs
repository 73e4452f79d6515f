//! The merchant center's pages: the overview, the payment list and one payment.

use crate::service::{DayRange, DayTotal, ListStatus, PaymentFilter, PaymentSummary, ServiceError};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use ottgate_core::{
    Amount, AttemptStatus, Currency, MerchantRef, Money, OrderId, OrderStatus, PaymentMethod,
    Timestamp,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

use super::chart::{self, Bar};
use super::cookies::with_cookies;
use super::i18n::{
    self, Strings, attempt_status_name, delivery_state_name, event_name, kind_name, method_name,
    refund_status_name, refunded_by_name, status_name,
};
use super::session::{SESSION_LIFETIME, Signed};
use super::{ErrorKind, error_page, internal, render};
use crate::checkout::i18n::Lang;
use crate::state::AppState;

/// What every signed-in page shows around its content.
pub struct Chrome {
    pub merchant_name: String,
    pub merchant_id: String,
    pub here: &'static str,
    pub other_lang: &'static str,
    pub other_lang_label: &'static str,
    pub email: String,
    pub role: &'static str,
    pub csrf_token: String,
}

impl Chrome {
    pub fn new(signed: &Signed, here: &'static str) -> Self {
        let (other_lang, other_lang_label) = match signed.lang {
            Lang::En => ("zh", "中文"),
            Lang::Zh => ("en", "English"),
        };
        Self {
            merchant_name: signed.merchant.name.as_str().to_owned(),
            merchant_id: signed.merchant.id.to_string(),
            here,
            other_lang,
            other_lang_label,
            email: signed.user.email.clone(),
            role: i18n::role_name(signed.t(), signed.user.role),
            csrf_token: signed.csrf.clone(),
        }
    }

    /// A new one-time token for one form (`once`): every form rendered gets its own.
    pub fn form_token(&self) -> String {
        super::once::new_token()
    }
}

/// A signed-in page, remembering a language chosen with `?lang=`.
pub fn page(
    signed: &Signed,
    state: &AppState,
    status: StatusCode,
    page: &impl Template,
) -> Response {
    let response = render(status, page);
    if !signed.chose_lang {
        return response;
    }
    let cookies = [(i18n::LANG_COOKIE, i18n::code(signed.lang), SESSION_LIFETIME)];
    with_cookies(state, response, &cookies)
}

pub(super) fn money_text(minor: u64, currency: Currency) -> String {
    Amount::from_minor(minor).map_or_else(
        |_| format!("{} {}", currency.major_plain(minor), currency.code()),
        |a| {
            format!(
                "{} {}",
                Money::new(a, currency).major_display(),
                currency.code()
            )
        },
    )
}

const DAY: Duration = Duration::from_secs(86_400);
/// The overview's window.
const WINDOW_DAYS: u32 = 30;

pub struct TotalRow {
    pub method: &'static str,
    pub status: &'static str,
    pub status_code: &'static str,
    pub count: u64,
    pub volume: String,
}

pub struct ChartView {
    pub currency: &'static str,
    pub svg: String,
}

#[derive(Template)]
#[template(path = "dashboard/overview.html")]
struct OverviewPage {
    t: &'static Strings,
    chrome: Chrome,
    sections: Vec<TotalSection>,
    charts: Vec<ChartView>,
    /// The merchant's last `ottgate check` run: when, and each case's verdict.
    check: Option<(String, Vec<crate::calls::CheckedCase>)>,
}

pub struct TotalSection {
    pub id: &'static str,
    pub heading: &'static str,
    pub rows: Vec<TotalRow>,
    /// The money of the paid payments: gross, refunded, net.
    pub money: Vec<MoneyRow>,
}

/// Paid payments of one method in one currency: what was taken, what went back, what is
/// left.
pub struct MoneyRow {
    pub method: &'static str,
    pub currency: &'static str,
    pub count: u64,
    pub gross: String,
    pub refunded: String,
    pub net: String,
}

/// The money of the paid payments among `totals`, by method and currency, most first.
fn money(t: &'static Strings, totals: &[&DayTotal]) -> Vec<MoneyRow> {
    type Key = (Option<PaymentMethod>, Currency);
    let mut grouped: BTreeMap<Key, (u64, u64, u64)> = BTreeMap::new();
    for total in totals.iter().filter(|d| d.status == OrderStatus::Success) {
        let entry = grouped
            .entry((total.method, total.currency))
            .or_insert((0, 0, 0));
        entry.0 += total.count;
        entry.1 += total.amount;
        entry.2 += total.refunded;
    }
    let mut rows: Vec<(u64, MoneyRow)> = grouped
        .into_iter()
        .map(|((method, currency), (count, gross, refunded))| {
            (
                gross,
                MoneyRow {
                    method: method.map_or(t.none, |m| method_name(t, m)),
                    currency: currency.code(),
                    count,
                    gross: money_text(gross, currency),
                    refunded: money_text(refunded, currency),
                    net: money_text(gross.saturating_sub(refunded), currency),
                },
            )
        })
        .collect();
    rows.sort_by_key(|(gross, _)| std::cmp::Reverse(*gross));
    rows.into_iter().map(|(_, row)| row).collect()
}

/// Totals by (method, status, currency), largest count first.
fn table(t: &'static Strings, totals: &[&DayTotal]) -> Vec<TotalRow> {
    // (method, status, currency) → (status, count, volume)
    type Key = (Option<PaymentMethod>, &'static str, Currency);
    let mut grouped: BTreeMap<Key, (OrderStatus, u64, u64)> = BTreeMap::new();
    for total in totals {
        let entry = grouped
            .entry((total.method, total.status.code(), total.currency))
            .or_insert((total.status, 0, 0));
        entry.1 += total.count;
        entry.2 += total.amount;
    }
    let mut rows: Vec<TotalRow> = grouped
        .into_iter()
        .map(
            |((method, code, currency), (status, count, amount))| TotalRow {
                method: method.map_or(t.none, |m| method_name(t, m)),
                status: status_name(t, status, 0, 0),
                status_code: code,
                count,
                volume: money_text(amount, currency),
            },
        )
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.count));
    rows
}

/// `GET /dashboard`: today and the last 30 days (UTC days).
pub async fn overview(State(state): State<AppState>, signed: Signed) -> Response {
    let t = signed.t();
    let now = state.service.clock.now();
    let today = now.utc_day_start();
    let from = Timestamp::from_epoch_millis(
        today.epoch_millis() - i64::from(WINDOW_DAYS - 1) * 86_400_000,
    );
    let range = DayRange {
        merchant: signed.merchant.id.clone(),
        from,
        days: WINDOW_DAYS,
    };
    let totals = match state.service.day_totals(range).await {
        Ok(totals) => totals,
        Err(e) => return internal(signed.lang, &e),
    };
    let last_day = WINDOW_DAYS - 1;
    let todays: Vec<&DayTotal> = totals.iter().filter(|d| d.day == last_day).collect();
    let all: Vec<&DayTotal> = totals.iter().collect();
    // One chart per currency that was paid in, the busiest first.
    let mut paid: BTreeMap<Currency, (u64, Vec<(u64, u64)>)> = BTreeMap::new();
    for d in totals.iter().filter(|d| d.status == OrderStatus::Success) {
        let (sum, days) = paid
            .entry(d.currency)
            .or_insert_with(|| (0, vec![(0, 0); WINDOW_DAYS as usize]));
        *sum += d.amount;
        if let Some(day) = days.get_mut(d.day as usize) {
            day.0 += d.amount;
            day.1 += d.count;
        }
    }
    let mut paid: Vec<_> = paid.into_iter().collect();
    paid.sort_by_key(|(_, (sum, _))| std::cmp::Reverse(*sum));
    let charts = paid
        .into_iter()
        .map(|(currency, (_, days))| {
            let bars: Vec<Bar> = days
                .iter()
                .enumerate()
                .map(|(i, (amount, count))| {
                    let date = from.plus(DAY * u32::try_from(i).unwrap_or(0)).utc_date();
                    Bar {
                        title: format!("{date}: {} ({count})", money_text(*amount, currency)),
                        label: date,
                        value: *amount,
                    }
                })
                .collect();
            ChartView {
                currency: currency.code(),
                svg: chart::bars(&format!("chart-{}", currency.code()), &bars, |max| {
                    money_text(max, currency)
                }),
            }
        })
        .collect();
    let overview = OverviewPage {
        t,
        chrome: Chrome::new(&signed, "overview"),
        sections: vec![
            TotalSection {
                id: "today",
                heading: t.today,
                rows: table(t, &todays),
                money: money(t, &todays),
            },
            TotalSection {
                id: "month",
                heading: t.last_30_days,
                rows: table(t, &all),
                money: money(t, &all),
            },
        ],
        charts,
        check: state
            .check_runs
            .last(&signed.merchant.id)
            .map(|(at, cases)| (signed.local(at), cases)),
    };
    page(&signed, &state, StatusCode::OK, &overview)
}

/// The list's filters as the query string carries them (empty means no filter).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub method: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub before: String,
}

/// The statuses the list filters on: (query value, what it selects). They never overlap.
const STATUSES: [(&str, ListStatus); 6] = [
    ("paid", ListStatus::Paid),
    ("partially_refunded", ListStatus::PartlyRefunded),
    ("refunded", ListStatus::Refunded),
    ("failed", ListStatus::Failed),
    ("expired", ListStatus::Closed),
    ("pending", ListStatus::Pending),
];

impl ListQuery {
    /// The store's filter; `None` if a value is not one the form offers.
    pub fn filter(&self, signed: &Signed, limit: u32) -> Option<PaymentFilter> {
        let pick = |s: &str| s.trim().to_owned();
        let status = match pick(&self.status).as_str() {
            "" => None,
            s => Some(STATUSES.iter().find(|(code, _)| *code == s)?.1),
        };
        let method = match pick(&self.method).as_str() {
            "" => None,
            m => Some(m.parse::<PaymentMethod>().ok()?),
        };
        // Dates are the merchant's days, in its time zone; `to` is inclusive: up to the
        // start of the next day.
        let day = |s: &str, next: bool| -> Option<Option<Timestamp>> {
            match s.trim() {
                "" => Some(None),
                d => {
                    let date = chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()?;
                    let date = if next { date.succ_opt()? } else { date };
                    super::session::local_day_start(&date.to_string(), signed.zone).map(Some)
                }
            }
        };
        let from = day(&self.from, false)?;
        let to = day(&self.to, true)?;
        let before = match pick(&self.before).as_str() {
            "" => None,
            b => Some(OrderId::parse(b).ok()?),
        };
        let q = pick(&self.q);
        Some(PaymentFilter {
            merchant: signed.merchant.id.clone(),
            status,
            method,
            from,
            to,
            search: (!q.is_empty() && q.len() <= 64).then_some(q),
            before,
            limit,
        })
    }

    /// The query string for these filters (without the cursor), plus `extra`.
    pub fn query_string(&self, extra: &[(&str, &str)]) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("status", &self.status),
            ("method", &self.method),
            ("from", &self.from),
            ("to", &self.to),
            ("q", &self.q),
        ] {
            if !v.trim().is_empty() {
                s.append_pair(k, v.trim());
            }
        }
        for (k, v) in extra {
            s.append_pair(k, v);
        }
        s.finish()
    }
}

pub struct ListRow {
    pub order_id: String,
    /// The id the APIs gave the merchant (REST paymentId, the callback's order_id): the
    /// paying attempt, else the latest; the order's own id before any attempt.
    pub payment_id: String,
    pub created: String,
    pub reference: String,
    /// How the payment was made (`checkout`, `activepay`, `card`, `miniprogram`, …), and
    /// at which till for an in-store payment (`barcode · LANE-2`).
    pub kind: String,
    pub method: &'static str,
    pub amount: String,
    pub refunded: String,
    pub status: &'static str,
    pub status_code: &'static str,
}

pub struct Choice {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "dashboard/payments.html")]
struct PaymentsPage {
    t: &'static Strings,
    chrome: Chrome,
    rows: Vec<ListRow>,
    query: ListQuery,
    statuses: Vec<Choice>,
    methods: Vec<Choice>,
    next: Option<String>,
    csv: String,
}

const PAGE_SIZE: u32 = 50;

fn list_row(signed: &Signed, p: &PaymentSummary) -> ListRow {
    let t = signed.t();
    ListRow {
        order_id: p.order_id.to_string(),
        payment_id: p
            .payment_id
            .as_ref()
            .map_or_else(|| p.order_id.to_string(), ToString::to_string),
        created: signed.local(p.created_at),
        reference: p.reference.clone().unwrap_or_default(),
        kind: match &p.terminal {
            Some(till) => format!("{} · {till}", kind_name(t, p.kind)),
            None => kind_name(t, p.kind).to_owned(),
        },
        method: p.method.map_or(t.none, |m| method_name(t, m)),
        amount: money_text(p.money.amount.minor(), p.money.currency),
        refunded: if p.refunded == 0 {
            String::new()
        } else {
            money_text(p.refunded, p.money.currency)
        },
        status: status_name(t, p.status, p.refunded, p.money.amount.minor()),
        status_code: p.status.code(),
    }
}

/// `GET /dashboard/payments`: newest first, 50 a page, `before=` the last one shown.
pub async fn payments(
    State(state): State<AppState>,
    signed: Signed,
    Query(query): Query<ListQuery>,
) -> Response {
    let t = signed.t();
    let Some(filter) = query.filter(&signed, PAGE_SIZE + 1) else {
        return error_page(signed.lang, ErrorKind::BadRequest);
    };
    let mut found = match state.service.payments(&filter).await {
        Ok(found) => found,
        Err(e) => return internal(signed.lang, &e),
    };
    let more = found.len() > PAGE_SIZE as usize;
    found.truncate(PAGE_SIZE as usize);
    let next = found.last().filter(|_| more).map(|last| {
        format!(
            "/dashboard/payments?{}",
            query.query_string(&[("before", last.order_id.as_str())])
        )
    });
    let status_labels: [&'static str; 6] = match signed.lang {
        Lang::En => [
            "Paid",
            "Partly refunded",
            "Refunded",
            "Failed",
            "Closed (expired)",
            "Pending",
        ],
        Lang::Zh => [
            "已支付",
            "部分退款",
            "已全额退款",
            "失败",
            "已关闭（过期）",
            "待支付",
        ],
    };
    let statuses = STATUSES
        .iter()
        .zip(status_labels)
        .map(|((value, _), label)| Choice {
            value,
            label,
            selected: query.status.trim() == *value,
        })
        .collect();
    let methods = PaymentMethod::ALL
        .iter()
        .map(|m| Choice {
            value: m.code(),
            label: method_name(t, *m),
            selected: query.method.trim() == m.code(),
        })
        .collect();
    let list = PaymentsPage {
        t,
        chrome: Chrome::new(&signed, "payments"),
        rows: found.iter().map(|p| list_row(&signed, p)).collect(),
        csv: format!("/dashboard/payments.csv?{}", query.query_string(&[])),
        query,
        statuses,
        methods,
        next,
    };
    page(&signed, &state, StatusCode::OK, &list)
}

pub struct AttemptView {
    pub id: String,
    pub method: &'static str,
    pub status: &'static str,
    pub created: String,
    pub settled: String,
    pub wallet_reference: String,
}

pub struct RefundView {
    pub id: String,
    pub amount: String,
    pub status: &'static str,
    pub created: String,
    pub finished: String,
    /// Who asked for it (a person's email, or which API).
    pub by: String,
    pub reason: String,
}

pub struct DeliveryAttemptView {
    pub number: u32,
    pub time: String,
    pub http_status: String,
    pub latency: String,
    pub answer: String,
}

pub struct DeliveryView {
    pub id: String,
    pub event: &'static str,
    /// The state's code (`delivered`…), for the page's own attributes.
    pub state: &'static str,
    /// The state in words.
    pub state_name: &'static str,
    pub url: String,
    pub created: String,
    pub next: String,
    pub attempts: Vec<DeliveryAttemptView>,
}

#[derive(Template)]
#[template(path = "dashboard/payment.html")]
struct PaymentPage {
    t: &'static Strings,
    chrome: Chrome,
    notice: Option<&'static str>,
    error: Option<&'static str>,
    order_id: String,
    reference: String,
    kind: &'static str,
    /// What the merchant's request said, each with its label (tip, remarks, buyer's
    /// email, sale number, callback and return URLs): only those given.
    details: Vec<(&'static str, String)>,
    /// What the wallet said the buyer paid in yuan, and its rate.
    buyer_paid: Option<String>,
    exchange_rate: Option<String>,
    /// Where the paid attempt stands against its wallet's statement (a paid payment only).
    reconciliation: Option<String>,
    /// Everything that happened, oldest first.
    timeline: Vec<TimelineEntry>,
    /// The till of an in-store payment.
    terminal: Option<String>,
    /// Where an in-store payment's follow-up stands (an undo the wallet refuses shows here).
    follow_up: Option<String>,
    created: String,
    paid: String,
    amount: String,
    refunded: String,
    status: &'static str,
    status_code: &'static str,
    payment_id: String,
    attempts: Vec<AttemptView>,
    refunds: Vec<RefundView>,
    deliveries: Vec<DeliveryView>,
    is_admin: bool,
    /// What may still be refunded (major units), when something may.
    refundable: Option<String>,
    /// The refund box's content: empty, or what was typed and refused.
    refund_typed: String,
    currency: &'static str,
    /// A card authorisation held: when the gateway captures it by itself, if it does.
    held: Option<String>,
}

/// One line of a payment's timeline.
pub struct TimelineEntry {
    at: ottgate_core::Timestamp,
    pub time: String,
    pub what: String,
    pub detail: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct PaymentQuery {
    #[serde(default)]
    notice: String,
    /// What was typed in the refund box, when it was refused: shown again.
    #[serde(default)]
    amount: String,
}

/// `GET /dashboard/payments/{order_id}`.
pub async fn payment(
    State(state): State<AppState>,
    signed: Signed,
    Path(order_id): Path<String>,
    Query(q): Query<PaymentQuery>,
) -> Response {
    let t = signed.t();
    let lang = signed.lang;
    let service = &state.service;
    let Some((order, attempts)) = (match owned_order(&state, &signed, &order_id).await {
        Ok(found) => found,
        Err(e) => return internal(lang, &e),
    }) else {
        return error_page(lang, ErrorKind::NotFound);
    };
    let (order, _) = match state.service.as_of_now(order).await {
        Ok(o) => o,
        Err(e) => return internal(lang, &e),
    };
    let refunds = match &order.paid_attempt {
        Some(paid) => match service.refunds_of(paid).await {
            Ok(r) => r,
            Err(e) => return internal(lang, &e),
        },
        None => Vec::new(),
    };
    let deliveries = match service.deliveries_of(&order.id).await {
        Ok(d) => d,
        Err(e) => return internal(lang, &e),
    };
    // An in-store payment: where its follow-up on the wallet's rule stands.
    let follow_up = match attempts.first() {
        Some(first) if order.kind == ottgate_core::OrderKind::Barcode => {
            match service.barcode_follow_up(&first.id).await {
                Ok(job) => job.map(|j| {
                    let phase = match (j.phase.code(), j.outcome.as_deref()) {
                        ("done", Some(outcome)) => outcome.to_owned(),
                        ("query", _) => t.follow_up_query.to_owned(),
                        _ => t.follow_up_undo.to_owned(),
                    };
                    let word = j.last_error.unwrap_or_default();
                    if word.is_empty() {
                        phase
                    } else {
                        format!("{phase} ({} {}: {word})", j.tries, t.follow_up_tries)
                    }
                }),
                Err(e) => return internal(lang, &e),
            }
        }
        _ => None,
    };
    let entry = |at: ottgate_core::Timestamp, what: String, detail: String| TimelineEntry {
        at,
        time: signed.local(at),
        what,
        detail,
    };
    let mut timeline = timeline_of(t, &order, &attempts, &refunds, &entry);
    let mut delivery_views = Vec::with_capacity(deliveries.len());
    for (d, rows) in deliveries {
        for a in &rows {
            let answer = match (a.http_status, &a.error) {
                (Some(status), _) => format!("HTTP {status}"),
                (None, Some(error)) => error.clone(),
                (None, None) => t.no_answer.to_owned(),
            };
            timeline.push(entry(
                a.started_at,
                format!("{} #{}", t.tl_callback, a.attempt_no),
                format!("{answer} · {} ms · {}", a.duration_ms, d.url),
            ));
        }
        delivery_views.push(DeliveryView {
            id: d.notify_id.to_string(),
            event: event_name(t, &d.event),
            state: d.state.code(),
            state_name: delivery_state_name(t, d.state),
            url: d.url.clone(),
            created: signed.local(d.created_at),
            next: d
                .next_attempt_at
                .map(|n| signed.local(n))
                .unwrap_or_default(),
            attempts: rows
                .into_iter()
                .map(|a| DeliveryAttemptView {
                    number: a.attempt_no,
                    time: signed.local(a.started_at),
                    http_status: a
                        .http_status
                        .map_or_else(|| a.error.clone().unwrap_or_default(), |s| s.to_string()),
                    latency: format!("{} ms", a.duration_ms),
                    answer: a.response_start.unwrap_or_default(),
                })
                .collect(),
        });
    }
    let currency = order.money.currency;
    let settled: u64 = refunds
        .iter()
        .filter(|r| r.status == ottgate_core::RefundStatus::Success)
        .map(|r| r.money.amount.minor())
        .sum();
    let held: u64 = refunds
        .iter()
        .filter(|r| r.status != ottgate_core::RefundStatus::Failed)
        .map(|r| r.money.amount.minor())
        .sum();
    let left = order.money.amount.minor().saturating_sub(held);
    let refundable = (order.status == OrderStatus::Success && left > 0)
        .then(|| Amount::from_minor(left).ok())
        .flatten()
        .map(|a| Money::new(a, currency).major_plain());
    let paid_attempt = order.paid_attempt.clone();
    let notice = match q.notice.as_str() {
        "refunded" => Some(t.refund_done),
        "refund_pending" => Some(t.refund_pending),
        "resent" => Some(t.resent),
        "once" => Some(t.once),
        "captured" => Some(t.captured),
        "voided" => Some(t.voided),
        _ => None,
    };
    let error = match q.notice.as_str() {
        "bad_amount" => Some(t.bad_amount),
        "amount_not_number" => Some(t.amount_not_number),
        "amount_too_much" => Some(t.amount_too_much),
        "not_held" => Some(t.not_held),
        _ => None,
    };
    // Oldest first; what happened at the same moment stays in the order it was told.
    timeline.sort_by_key(|e| e.at);
    let paid = attempts
        .iter()
        .find(|a| Some(&a.id) == order.paid_attempt.as_ref());
    let buyer_paid = paid
        .or_else(|| attempts.iter().rev().find(|a| a.buyer_paid.is_some()))
        .and_then(|a| a.buyer_paid.clone());
    let reconciliation = match paid {
        Some(a) if a.status == AttemptStatus::Paid => match service.reconciliation_of(a).await {
            Ok(None) => Some(t.not_reconciled.to_owned()),
            Ok(Some((day, None))) => Some(format!("{} ({day})", t.reconciled)),
            Ok(Some((day, Some(_)))) => Some(format!("{} ({day})", t.differs_from_statement)),
            Err(e) => return internal(lang, &e),
        },
        _ => None,
    };
    let held = (order.status == OrderStatus::Processing)
        .then(|| attempts.iter().find(|a| a.is_authorised()))
        .flatten()
        .map(|a| a.capture_at.map(|c| signed.local(c)).unwrap_or_default());
    let view = PaymentPage {
        t,
        chrome: Chrome::new(&signed, "payments"),
        notice,
        error,
        order_id: order.id.to_string(),
        reference: order
            .reference
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        kind: kind_name(t, order.kind),
        details: details_of(t, &order),
        buyer_paid: buyer_paid
            .as_ref()
            .map(|p| money_text(p.cny, ottgate_core::Currency::Cny)),
        exchange_rate: buyer_paid
            .as_ref()
            .and_then(ottgate_core::BuyerPaid::rate_text)
            .map(|rate| format!("{rate} {} {}", t.exchange_rate_per, currency.code())),
        reconciliation,
        timeline,
        terminal: order.terminal.clone(),
        follow_up,
        created: signed.local(order.created_at),
        paid: order
            .finished_at
            .filter(|_| order.status == OrderStatus::Success)
            .map(|f| signed.local(f))
            .unwrap_or_default(),
        amount: money_text(order.money.amount.minor(), currency),
        refunded: money_text(settled, currency),
        status: status_name(t, order.status, settled, order.money.amount.minor()),
        status_code: order.status.code(),
        payment_id: paid_attempt
            .map(|a| a.to_string())
            .or_else(|| attempts.last().map(|a| a.id.to_string()))
            .unwrap_or_default(),
        attempts: attempts
            .iter()
            .map(|a| AttemptView {
                id: a.id.to_string(),
                method: method_name(t, a.method),
                status: attempt_status_name(t, a.status),
                created: signed.local(a.created_at),
                settled: a.settled_at.map(|s| signed.local(s)).unwrap_or_default(),
                wallet_reference: a.bizpay_order_id.clone().unwrap_or_default(),
            })
            .collect(),
        refunds: refunds
            .iter()
            .map(|r| RefundView {
                id: r.id.to_string(),
                amount: money_text(r.money.amount.minor(), r.money.currency),
                status: refund_status_name(t, r.status),
                created: signed.local(r.created_at),
                finished: r.finished_at.map(|f| signed.local(f)).unwrap_or_default(),
                by: refunded_by_name(t, r.requested_by.as_ref()),
                reason: r.reason.clone().unwrap_or_default(),
            })
            .collect(),
        deliveries: delivery_views,
        is_admin: signed.is_admin(),
        refundable,
        refund_typed: q.amount.chars().take(32).collect(),
        currency: currency.code(),
        held,
    };
    page(&signed, &state, StatusCode::OK, &view)
}

/// What the merchant's request said about the payment, each with its label: only what was
/// given.
fn details_of(t: &'static Strings, order: &ottgate_core::Order) -> Vec<(&'static str, String)> {
    let mut details = Vec::new();
    if order.tip > 0 {
        details.push((t.tip, money_text(order.tip, order.money.currency)));
    }
    let given = [
        (t.remarks, order.remarks.clone().unwrap_or_default()),
        (t.buyer_email, order.email.clone().unwrap_or_default()),
        (t.sale_number, order.sale_num.clone()),
        (t.callback_url, order.callback_url.clone()),
        (t.return_url, order.redirect_url.clone()),
    ];
    details.extend(given.into_iter().filter(|(_, value)| !value.is_empty()));
    details
}

/// The payment's life from its order, attempts and refunds (its callbacks are added by the
/// caller), unsorted.
fn timeline_of(
    t: &'static Strings,
    order: &ottgate_core::Order,
    attempts: &[ottgate_core::Attempt],
    refunds: &[ottgate_core::Refund],
    entry: &dyn Fn(ottgate_core::Timestamp, String, String) -> TimelineEntry,
) -> Vec<TimelineEntry> {
    let amount = money_text(order.money.amount.minor(), order.money.currency);
    let mut timeline = vec![entry(
        order.created_at,
        t.tl_created.to_owned(),
        format!("{amount} · {}", kind_name(t, order.kind)),
    )];
    for a in attempts {
        timeline.push(entry(
            a.created_at,
            format!("{} {}", t.tl_attempt, method_name(t, a.method)),
            a.id.to_string(),
        ));
        if let Some(at) = a.settled_at {
            let what = match a.status {
                AttemptStatus::Paid => t.tl_paid.to_owned(),
                other => format!("{}: {}", t.tl_attempt_ended, attempt_status_name(t, other)),
            };
            let detail = match &a.bizpay_order_id {
                Some(wallet) => format!("{} · {} {wallet}", a.id, t.wallet_reference),
                None => a.id.to_string(),
            };
            timeline.push(entry(at, what, detail));
        }
    }
    if let (OrderStatus::Closed(_), Some(at)) = (order.status, order.finished_at) {
        timeline.push(entry(
            at,
            t.tl_closed.to_owned(),
            status_name(t, order.status, 0, 0).to_owned(),
        ));
    }
    if order.status == OrderStatus::Processing {
        timeline.push(entry(
            order.expires_at,
            t.tl_expires.to_owned(),
            String::new(),
        ));
    }
    for r in refunds {
        let refunded = money_text(r.money.amount.minor(), r.money.currency);
        let by = refunded_by_name(t, r.requested_by.as_ref());
        let detail = match &r.reason {
            Some(reason) => format!("{refunded} · {by} · “{reason}”"),
            None => format!("{refunded} · {by}"),
        };
        timeline.push(entry(r.created_at, t.tl_refund_asked.to_owned(), detail));
        if let Some(at) = r.finished_at {
            timeline.push(entry(
                at,
                format!("{}: {}", t.tl_refund_ended, refund_status_name(t, r.status)),
                format!("{refunded} · {}", r.id),
            ));
        }
    }
    timeline
}

/// The signed-in merchant's order `id` with its attempts; another merchant's is `None`,
/// exactly like a missing one.
pub async fn owned_order(
    state: &AppState,
    signed: &Signed,
    id: &str,
) -> Result<Option<(ottgate_core::Order, Vec<ottgate_core::Attempt>)>, ServiceError> {
    // Ownership is part of each lookup: another merchant's order costs what a missing one
    // does.
    let merchant = &signed.merchant.id;
    let service = &state.service;
    // Any id the merchant was given opens the payment: the gateway's order id, the payment
    // id (REST paymentId, the callback's order_id), or their own reference.
    if let Ok(order) = OrderId::parse(id)
        && let Some(found) = service.merchant_order(merchant, &order).await?
    {
        return Ok(Some(found));
    }
    let order = match service.payment(merchant, id).await {
        Ok(Some(view)) => Some(view.order.id),
        Ok(None) | Err(ServiceError::AmbiguousId(_)) => match MerchantRef::parse(id) {
            Ok(reference) => service
                .order_by_reference(merchant, &reference)
                .await?
                .map(|o| o.id),
            Err(_) => None,
        },
        Err(e) => return Err(e),
    };
    match order {
        Some(order) => service.merchant_order(merchant, &order).await,
        None => Ok(None),
    }
}
