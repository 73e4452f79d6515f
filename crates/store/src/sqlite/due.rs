//! Claiming pending attempts and refunds for reconciliation, for both tables alike.

use rusqlite::params;

use super::{SqliteStore, db};
use crate::Result;
use crate::due::Due;
use ottgate_core::Timestamp;

impl SqliteStore {
    /// Rows of `table` (attempts or refunds) still `pending`, created at or before
    /// `created_before` and not asked about since `checked_before`, oldest first, each
    /// marked checked at `now`: what reconciliation asks the wallets about.
    pub(super) async fn claim_due_for_check<R, F>(
        &self,
        table: &'static str,
        pending: &'static str,
        due: Due,
        convert: F,
    ) -> Result<Vec<R>>
    where
        R: Send + 'static,
        F: Fn(&rusqlite::Row<'_>) -> rusqlite::Result<R> + Send + 'static,
    {
        self.engine
            .write(move |c| {
                let sql = format!(
                    "UPDATE {table} SET last_checked_at = ?1 WHERE id IN
                       (SELECT id FROM {table} WHERE status = ?2 AND created_at <= ?3
                          AND (last_checked_at IS NULL OR last_checked_at <= ?4)
                        ORDER BY created_at LIMIT ?5)
                     RETURNING *"
                );
                db::all(
                    c,
                    &sql,
                    params![
                        due.now.epoch_millis(),
                        pending,
                        due.created_before.epoch_millis(),
                        due.checked_before.epoch_millis(),
                        i64::from(due.limit),
                    ],
                    convert,
                )
            })
            .await
    }

    /// Records that reconciliation asked about row `id` of `table` at `at`.
    pub(super) async fn stamp_checked(
        &self,
        table: &'static str,
        id: String,
        at: Timestamp,
    ) -> Result<()> {
        self.engine
            .write(move |c| {
                let sql = format!("UPDATE {table} SET last_checked_at = ?1 WHERE id = ?2");
                db::exec(c, &sql, params![at.epoch_millis(), id])?;
                Ok(())
            })
            .await
    }
}
