//! The `audit_log` table.

use super::{SqliteStore, db};
use crate::audit::q;
use crate::rows::AuditRow;
use crate::{AuditEntry, Result};
use async_trait::async_trait;
use ottgate_core::MerchantId;
use rusqlite::{Connection, params};

pub(super) fn record_audit(c: &Connection, e: &AuditEntry) -> Result<()> {
    db::exec(
        c,
        q::INSERT.sqlite,
        params![
            e.merchant_id.as_str(),
            &e.actor,
            &e.action,
            &e.subject,
            &e.detail,
            e.at.epoch_millis(),
        ],
    )?;
    Ok(())
}

pub(super) fn audit_log(
    c: &Connection,
    merchant: &MerchantId,
    limit: u32,
) -> Result<Vec<AuditEntry>> {
    db::all(
        c,
        q::OF_MERCHANT.sqlite,
        params![merchant.as_str(), i64::from(limit)],
        AuditRow::from_sqlite,
    )?
    .into_iter()
    .map(AuditRow::into_entry)
    .collect()
}

#[async_trait]
impl crate::Audit for SqliteStore {
    async fn record_audit(&self, entry: AuditEntry) -> Result<()> {
        self.engine.write(move |c| record_audit(c, &entry)).await
    }

    async fn audit_log(&self, merchant: &MerchantId, limit: u32) -> Result<Vec<AuditEntry>> {
        let merchant = merchant.clone();
        self.engine
            .read(move |c| audit_log(c, &merchant, limit))
            .await
    }
}
