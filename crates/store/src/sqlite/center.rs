//! The merchant center's tables: `sessions`, `audit_log`, and the payment listing.

use super::{SqliteStore, db};
use crate::center::{self, Param, Query};
use crate::rows::{DayTotalRow, SummaryRow};
use crate::{DayTotal, PaymentFilter, PaymentSummary, Result};
use async_trait::async_trait;
use ottgate_core::{MerchantId, Timestamp};
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

pub(super) fn day_totals(
    c: &Connection,
    merchant: &MerchantId,
    from: Timestamp,
    days: u32,
) -> Result<Vec<DayTotal>> {
    let query = center::day_totals_query(merchant, from, days, center::sqlite_placeholder);
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

    async fn day_totals(
        &self,
        merchant: &MerchantId,
        from: Timestamp,
        days: u32,
    ) -> Result<Vec<DayTotal>> {
        let merchant = merchant.clone();
        self.engine
            .read(move |c| day_totals(c, &merchant, from, days))
            .await
    }
}
