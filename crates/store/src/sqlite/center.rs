//! The merchant center's tables: `sessions`, `audit_log`, and the payment listing.

use super::{SqliteStore, db};
use crate::DayRange;
use crate::center::{self, Param, Query};
use crate::rows::{DayTotalRow, SummaryRow};
use crate::{DayTotal, PaymentFilter, PaymentSummary, Result};
use async_trait::async_trait;
use rusqlite::Connection;
use rusqlite::types::Value;

fn values(query: &Query) -> impl Iterator<Item = Value> + '_ {
    query.params.iter().map(|p| match p {
        Param::Text(t) => Value::Text(t.clone()),
        Param::Int(i) => Value::Integer(*i),
    })
}

pub(super) fn payments(c: &Connection, filter: &PaymentFilter) -> Result<Vec<PaymentSummary>> {
    let query = center::payments_query(filter, center::sqlite_placeholder);
    db::all(
        c,
        &query.sql,
        rusqlite::params_from_iter(values(&query)),
        SummaryRow::from_sqlite,
    )?
    .into_iter()
    .map(SummaryRow::into_summary)
    .collect()
}

pub(super) fn day_totals(c: &Connection, range: &DayRange) -> Result<Vec<DayTotal>> {
    let query = center::day_totals_query(range, center::sqlite_placeholder);
    db::all(
        c,
        &query.sql,
        rusqlite::params_from_iter(values(&query)),
        DayTotalRow::from_sqlite,
    )?
    .into_iter()
    .map(DayTotalRow::into_total)
    .collect()
}

#[async_trait]
impl crate::PaymentList for SqliteStore {
    async fn payments(&self, filter: &PaymentFilter) -> Result<Vec<PaymentSummary>> {
        let filter = filter.clone();
        self.engine.read(move |c| payments(c, &filter)).await
    }

    async fn day_totals(&self, range: DayRange) -> Result<Vec<DayTotal>> {
        self.engine.read(move |c| day_totals(c, &range)).await
    }
}
