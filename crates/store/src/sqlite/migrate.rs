//! SQLite migrations: plain SQL files compiled into the binary, applied in order, each in a
//! `BEGIN IMMEDIATE` transaction (so two processes opening one file migrate it once).
//!
//! They are recorded in `_sqlx_migrations`, in the layout (and with the SHA-384 checksums)
//! of the sqlx migrator earlier versions used, so a database made by any version of
//! ottgate opens in any later one. Never edit a shipped migration; add a new one.

use rusqlite::Connection;
use sha2::{Digest, Sha384};
use std::time::Instant;

use super::db;
use crate::{Result, StoreError};

/// (version, description, SQL), oldest first.
pub(super) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "channels",
        include_str!("../../migrations/sqlite/0002_channels.sql"),
    ),
    (
        3,
        "direct payments",
        include_str!("../../migrations/sqlite/0003_direct_payments.sql"),
    ),
    (
        4,
        "idempotency",
        include_str!("../../migrations/sqlite/0004_idempotency.sql"),
    ),
    (
        5,
        "sign ins",
        include_str!("../../migrations/sqlite/0005_sign_ins.sql"),
    ),
    (
        6,
        "users",
        include_str!("../../migrations/sqlite/0006_users.sql"),
    ),
    (
        7,
        "merchant center",
        include_str!("../../migrations/sqlite/0007_merchant_center.sql"),
    ),
    (
        8,
        "refund requests",
        include_str!("../../migrations/sqlite/0008_refund_requests.sql"),
    ),
    (
        9,
        "orders by remarks",
        include_str!("../../migrations/sqlite/0009_orders_by_remarks.sql"),
    ),
    (
        10,
        "link flows",
        include_str!("../../migrations/sqlite/0010_link_flows.sql"),
    ),
    (
        11,
        "card authorisations",
        include_str!("../../migrations/sqlite/0011_card_authorisations.sql"),
    ),
    (
        12,
        "barcode payments",
        include_str!("../../migrations/sqlite/0012_barcode_payments.sql"),
    ),
    (
        13,
        "app key rotation",
        include_str!("../../migrations/sqlite/0013_app_key_rotation.sql"),
    ),
    (
        14,
        "merchant time zone",
        include_str!("../../migrations/sqlite/0014_merchant_time_zone.sql"),
    ),
    (
        15,
        "payment detail",
        include_str!("../../migrations/sqlite/0015_payment_detail.sql"),
    ),
    (
        16,
        "reconciliation",
        include_str!("../../migrations/sqlite/0016_reconciliation.sql"),
    ),
];

const LEDGER: &str = "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    success BOOLEAN NOT NULL,
    checksum BLOB NOT NULL,
    execution_time BIGINT NOT NULL
)";

/// The versions applied successfully.
pub(super) fn applied(c: &Connection) -> Result<Vec<i64>> {
    c.execute_batch(LEDGER)?;
    db::all(
        c,
        "SELECT version FROM _sqlx_migrations WHERE success = 1 ORDER BY version",
        [],
        db::first,
    )
}

/// Applies every migration not yet applied.
pub(super) fn run(c: &mut Connection) -> Result<()> {
    c.execute_batch(LEDGER)?;
    for (version, description, sql) in MIGRATIONS {
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let done: Option<i64> = db::opt(
            &tx,
            "SELECT version FROM _sqlx_migrations WHERE version = ?1 AND success = 1",
            [version],
            db::first,
        )?;
        if done.is_some() {
            continue;
        }
        let started = Instant::now();
        tx.execute_batch(sql).map_err(|e| {
            StoreError::Migrate(format!("migration {version} ({description}): {e}"))
        })?;
        let elapsed = i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX);
        tx.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (?1, ?2, 1, ?3, ?4)",
            rusqlite::params![
                version,
                description,
                Sha384::digest(sql.as_bytes()).to_vec(),
                elapsed
            ],
        )?;
        tx.commit()?;
    }
    Ok(())
}
