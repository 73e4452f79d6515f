//! The `audit_log` table.

use super::{PgStore, db};
use crate::audit::q;
use crate::rows::AuditRow;
use crate::{AuditEntry, Result};
use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Transaction};
use ottgate_core::MerchantId;

pub(super) async fn record_audit(tx: &Transaction<'_>, e: &AuditEntry) -> Result<()> {
    db::exec(
        tx,
        q::INSERT.pg,
        &[
            &e.merchant_id.as_str(),
            &e.actor,
            &e.action,
            &e.subject,
            &e.detail,
            &e.at.epoch_millis(),
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn audit_log(
    c: &impl GenericClient,
    merchant: &MerchantId,
    limit: u32,
) -> Result<Vec<AuditEntry>> {
    let rows = db::all(
        c,
        q::OF_MERCHANT.pg,
        &[&merchant.as_str(), &i64::from(limit)],
    )
    .await?;
    db::each(rows, |row| AuditRow::from_pg(row)?.into_entry())
}

#[async_trait]
impl crate::Audit for PgStore {
    async fn record_audit(&self, entry: AuditEntry) -> Result<()> {
        in_tx!(self, |tx| record_audit(&tx, &entry))
    }

    async fn audit_log(&self, merchant: &MerchantId, limit: u32) -> Result<Vec<AuditEntry>> {
        audit_log(&self.client().await?, merchant, limit).await
    }
}
