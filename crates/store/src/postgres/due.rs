//! Claiming pending attempts and refunds for reconciliation, for both tables alike.

use deadpool_postgres::Transaction;
use ottgate_core::Timestamp;

use super::db;
use crate::Result;
use crate::due::Due;

/// Rows of `table` (attempts or refunds) still `pending`, created at or before
/// `created_before` and not asked about since `checked_before`, oldest first, each marked
/// checked at `now`; rows another gateway is taking at this moment are skipped.
pub(super) async fn claim_due_for_check(
    tx: &Transaction<'_>,
    table: &'static str,
    pending: &'static str,
    due: Due,
) -> Result<Vec<tokio_postgres::Row>> {
    let sql = format!(
        "UPDATE {table} SET last_checked_at = $1 WHERE id IN
           (SELECT id FROM {table} WHERE status = $2 AND created_at <= $3
              AND (last_checked_at IS NULL OR last_checked_at <= $4)
            ORDER BY created_at LIMIT $5 FOR UPDATE SKIP LOCKED)
         RETURNING *"
    );
    let mut rows = db::all(
        tx,
        &sql,
        &[
            &due.now.epoch_millis(),
            &pending,
            &due.created_before.epoch_millis(),
            &due.checked_before.epoch_millis(),
            &i64::from(due.limit),
        ],
    )
    .await?;
    rows.sort_by_key(|row| {
        (
            row.try_get::<_, i64>("created_at").unwrap_or_default(),
            row.try_get::<_, String>("id").unwrap_or_default(),
        )
    });
    Ok(rows)
}

/// Records that reconciliation asked about row `id` of `table` at `at`.
pub(super) async fn stamp_checked(
    tx: &Transaction<'_>,
    table: &'static str,
    id: &str,
    at: Timestamp,
) -> Result<()> {
    let sql = format!("UPDATE {table} SET last_checked_at = $1 WHERE id = $2");
    db::exec(tx, &sql, &[&at.epoch_millis(), &id]).await?;
    Ok(())
}
