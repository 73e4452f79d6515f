//! The merchant center's payment list: filters, a cursor, totals by day. Its SQL is
//! written once here for both backends; only the placeholder style differs (`?1` for
//! SQLite, `$1` for PostgreSQL).

use ottgate_core::{
    AttemptId, Currency, MerchantId, Money, OrderId, OrderKind, OrderStatus, PaymentMethod,
    Timestamp,
};

use crate::{Result, StoreError};

/// A status the payment list filters on. Each payment has exactly one: they never overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListStatus {
    /// Paid, nothing refunded.
    Paid,
    /// Paid, part of it refunded.
    PartlyRefunded,
    /// Paid and refunded in full.
    Refunded,
    /// Declined or failed.
    Failed,
    /// Closed unpaid: expired.
    Closed,
    /// Not paid yet, still open.
    Pending,
}

impl ListStatus {
    /// The order status every payment of this kind has.
    fn order_status(self) -> OrderStatus {
        match self {
            ListStatus::Paid | ListStatus::PartlyRefunded | ListStatus::Refunded => {
                OrderStatus::Success
            }
            ListStatus::Failed => OrderStatus::Closed(ottgate_core::CloseReason::Failed),
            ListStatus::Closed => OrderStatus::Closed(ottgate_core::CloseReason::Expired),
            ListStatus::Pending => OrderStatus::Processing,
        }
    }

    /// What tells it apart from the others of its order status, on the summary row.
    fn refunds(self) -> Option<&'static str> {
        match self {
            ListStatus::Paid => Some("p.refunded = 0"),
            ListStatus::PartlyRefunded => Some("p.refunded > 0 AND p.refunded < p.amount"),
            ListStatus::Refunded => Some("p.refunded > 0 AND p.refunded >= p.amount"),
            ListStatus::Failed | ListStatus::Closed | ListStatus::Pending => None,
        }
    }
}

/// A merchant's days to total: `days` days from `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRange {
    pub merchant: MerchantId,
    pub from: Timestamp,
    pub days: u32,
}

/// Which of a merchant's payments to list, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentFilter {
    pub merchant: MerchantId,
    pub status: Option<ListStatus>,
    pub method: Option<PaymentMethod>,
    /// Created at or after.
    pub from: Option<Timestamp>,
    /// Created before.
    pub to: Option<Timestamp>,
    /// An exact id: the order's, a payment's (attempt), the merchant's reference or the
    /// wallet's.
    pub search: Option<String>,
    /// The cursor: only orders whose id sorts before this one.
    pub before: Option<OrderId>,
    pub limit: u32,
}

/// One line of the payment list: an order, its method (the paying attempt's, else the
/// latest's), the wallet's reference and what has been refunded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentSummary {
    pub order_id: OrderId,
    pub kind: OrderKind,
    pub reference: Option<String>,
    pub created_at: Timestamp,
    pub paid_at: Option<Timestamp>,
    pub money: Money,
    pub status: OrderStatus,
    pub method: Option<PaymentMethod>,
    /// The paying attempt, else the latest one: the id the APIs know the payment by.
    pub payment_id: Option<AttemptId>,
    pub wallet_reference: Option<String>,
    /// Minor units refunded successfully.
    pub refunded: u64,
    /// The till of an in-store payment.
    pub terminal: Option<String>,
}

/// Orders created on one day (counted from the window's start), by method, status and
/// currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayTotal {
    pub day: u32,
    pub method: Option<PaymentMethod>,
    pub status: OrderStatus,
    pub currency: Currency,
    pub count: u64,
    /// Minor units.
    pub amount: u64,
    /// Minor units refunded successfully of those orders (whenever refunded).
    pub refunded: u64,
}

#[async_trait::async_trait]
pub trait PaymentList: Send + Sync {
    /// A merchant's payments, newest first (see [`PaymentFilter`]).
    async fn payments(&self, filter: &PaymentFilter) -> Result<Vec<PaymentSummary>>;

    /// A merchant's orders created in the `days` days from `from`, totalled by day, method,
    /// status and currency.
    async fn day_totals(&self, range: DayRange) -> Result<Vec<DayTotal>>;
}

/// A bound value of a listing query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Param {
    Text(String),
    Int(i64),
}

/// A query and its values, placeholders numbered from 1.
#[derive(Debug)]
pub(crate) struct Query {
    pub sql: String,
    pub params: Vec<Param>,
}

/// How a backend writes the n-th placeholder.
pub(crate) type Placeholder = fn(usize) -> String;

pub(crate) fn sqlite_placeholder(n: usize) -> String {
    format!("?{n}")
}

pub(crate) fn pg_placeholder(n: usize) -> String {
    format!("${n}")
}

/// One row per order with the columns [`SummaryRow`](crate::rows::SummaryRow) reads.
const SUMMARY: &str = "SELECT o.id AS id, o.kind AS kind, o.reference AS reference, \
    o.created_at AS created_at, o.finished_at AS finished_at, o.amount AS amount, \
    o.currency AS currency, o.status AS status, \
    COALESCE(o.paid_attempt, (SELECT a.id FROM attempts a WHERE a.order_id = o.id \
        ORDER BY a.id DESC LIMIT 1)) AS payment_id, \
    COALESCE(pa.method, (SELECT a.method FROM attempts a WHERE a.order_id = o.id \
        ORDER BY a.id DESC LIMIT 1)) AS method, \
    pa.bizpay_order_id AS wallet_reference, \
    CAST(COALESCE((SELECT SUM(r.amount) FROM refunds r WHERE r.payment_id = o.paid_attempt \
        AND r.status = 'success'), 0) AS BIGINT) AS refunded, \
    o.terminal AS terminal \
    FROM orders o LEFT JOIN attempts pa ON pa.id = o.paid_attempt";

struct Builder {
    placeholder: Placeholder,
    params: Vec<Param>,
}

impl Builder {
    fn bind(&mut self, p: Param) -> String {
        self.params.push(p);
        (self.placeholder)(self.params.len())
    }
}

/// The payment list's query.
pub(crate) fn payments_query(filter: &PaymentFilter, placeholder: Placeholder) -> Query {
    let mut b = Builder {
        placeholder,
        params: Vec::new(),
    };
    let mut inner = vec![format!(
        "o.merchant_id = {}",
        b.bind(Param::Text(filter.merchant.to_string()))
    )];
    if let Some(before) = &filter.before {
        inner.push(format!(
            "o.id < {}",
            b.bind(Param::Text(before.to_string()))
        ));
    }
    if let Some(from) = filter.from {
        inner.push(format!(
            "o.created_at >= {}",
            b.bind(Param::Int(from.epoch_millis()))
        ));
    }
    if let Some(to) = filter.to {
        inner.push(format!(
            "o.created_at < {}",
            b.bind(Param::Int(to.epoch_millis()))
        ));
    }
    if let Some(status) = filter.status {
        inner.push(format!(
            "o.status = {}",
            b.bind(Param::Text(status.order_status().code().to_owned()))
        ));
    }
    if let Some(search) = &filter.search {
        let s = b.bind(Param::Text(search.clone()));
        inner.push(format!(
            "(o.id = {s} OR o.reference = {s} OR EXISTS (SELECT 1 FROM attempts a \
             WHERE a.order_id = o.id AND (a.id = {s} OR a.bizpay_order_id = {s})))"
        ));
    }
    let mut outer = Vec::new();
    if let Some(refunds) = filter.status.and_then(ListStatus::refunds) {
        outer.push(refunds.to_owned());
    }
    if let Some(method) = filter.method {
        outer.push(format!(
            "p.method = {}",
            b.bind(Param::Text(method.code().to_owned()))
        ));
    }
    let limit = b.bind(Param::Int(i64::from(filter.limit)));
    let outer = if outer.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", outer.join(" AND "))
    };
    Query {
        sql: format!(
            "SELECT * FROM ({SUMMARY} WHERE {}) p {outer} ORDER BY p.id DESC LIMIT {limit}",
            inner.join(" AND ")
        ),
        params: b.params,
    }
}

/// Totals by day for `[from, from + days)`.
pub(crate) fn day_totals_query(range: &DayRange, placeholder: Placeholder) -> Query {
    let DayRange {
        merchant,
        from,
        days,
    } = range;
    let mut b = Builder {
        placeholder,
        params: Vec::new(),
    };
    let m = b.bind(Param::Text(merchant.to_string()));
    let start = b.bind(Param::Int(from.epoch_millis()));
    let end = b.bind(Param::Int(
        from.epoch_millis() + i64::from(*days) * 86_400_000,
    ));
    Query {
        sql: format!(
            "SELECT CAST((p.created_at - {start}) / 86400000 AS BIGINT) AS day, p.method AS method, \
             p.status AS status, p.currency AS currency, COUNT(*) AS count, \
             CAST(SUM(p.amount) AS BIGINT) AS amount, \
             CAST(SUM(p.refunded) AS BIGINT) AS refunded \
             FROM ({SUMMARY} WHERE o.merchant_id = {m} AND o.created_at >= {start} \
             AND o.created_at < {end}) p \
             GROUP BY 1, p.method, p.status, p.currency ORDER BY 1"
        ),
        params: b.params,
    }
}

pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

pub(crate) fn method(code: Option<&str>) -> Result<Option<PaymentMethod>> {
    code.map(|c| c.parse::<PaymentMethod>().map_err(corrupt))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_binding_order() {
        let filter = PaymentFilter {
            merchant: MerchantId::parse("ON00000185").unwrap(),
            status: Some(ListStatus::Refunded),
            method: Some(PaymentMethod::Alipay),
            from: None,
            to: None,
            search: Some("x".into()),
            before: None,
            limit: 20,
        };
        let q = payments_query(&filter, pg_placeholder);
        assert_eq!(q.params.len(), 5);
        assert!(q.sql.contains("o.merchant_id = $1"));
        assert!(q.sql.contains("o.status = $2"));
        assert!(q.sql.contains("o.id = $3 OR o.reference = $3"));
        assert!(q.sql.contains("p.refunded >= p.amount AND p.method = $4"));
        assert!(q.sql.ends_with("LIMIT $5"));
    }
}
