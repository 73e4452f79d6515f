//! The merchant center's tables: `sessions`, `audit_log`, and the payment listing.

use super::{PgStore, db};
use crate::DayRange;
use crate::center::{self, Param, Query};
use crate::rows::{DayTotalRow, SummaryRow};
use crate::{DayTotal, PaymentFilter, PaymentSummary, Result};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;

async fn rows(c: &impl GenericClient, query: &Query) -> Result<Vec<tokio_postgres::Row>> {
    let values: Vec<Box<dyn ToSql + Sync + Send>> = query
        .params
        .iter()
        .map(|p| -> Box<dyn ToSql + Sync + Send> {
            match p {
                Param::Text(t) => Box::new(t.clone()),
                Param::Int(i) => Box::new(*i),
            }
        })
        .collect();
    let params: Vec<&(dyn ToSql + Sync)> = values
        .iter()
        .map(|v| v.as_ref() as &(dyn ToSql + Sync))
        .collect();
    db::all(c, &query.sql, &params).await
}

pub(super) async fn payments(
    c: &impl GenericClient,
    filter: &PaymentFilter,
) -> Result<Vec<PaymentSummary>> {
    let query = center::payments_query(filter, center::pg_placeholder);
    db::each(rows(c, &query).await?, |row| {
        SummaryRow::from_pg(row)?.into_summary()
    })
}

pub(super) async fn day_totals(c: &impl GenericClient, range: &DayRange) -> Result<Vec<DayTotal>> {
    let query = center::day_totals_query(range, center::pg_placeholder);
    db::each(rows(c, &query).await?, |row| {
        DayTotalRow::from_pg(row)?.into_total()
    })
}

#[async_trait]
impl crate::PaymentList for PgStore {
    async fn payments(&self, filter: &PaymentFilter) -> Result<Vec<PaymentSummary>> {
        payments(&self.client().await?, filter).await
    }

    async fn day_totals(&self, range: DayRange) -> Result<Vec<DayTotal>> {
        day_totals(&self.client().await?, &range).await
    }
}
