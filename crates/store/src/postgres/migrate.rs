//! PostgreSQL migrations: plain SQL files compiled into the binary, applied in order under
//! an advisory lock, so gateways starting at the same moment apply each one exactly once
//! (the others wait, then find nothing left to do).

use deadpool_postgres::Client;

use crate::{Result, StoreError};

/// (version, name, SQL), oldest first. Never edit a shipped migration; add a new one.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "sign_ins",
        include_str!("../../migrations/postgres/0002_sign_ins.sql"),
    ),
    (
        3,
        "users",
        include_str!("../../migrations/postgres/0003_users.sql"),
    ),
    (
        4,
        "merchant_center",
        include_str!("../../migrations/postgres/0004_merchant_center.sql"),
    ),
    (
        5,
        "refund_requests",
        include_str!("../../migrations/postgres/0005_refund_requests.sql"),
    ),
    (
        6,
        "orders_by_remarks",
        include_str!("../../migrations/postgres/0006_orders_by_remarks.sql"),
    ),
    (
        7,
        "link_flows",
        include_str!("../../migrations/postgres/0007_link_flows.sql"),
    ),
    (
        8,
        "card_authorisations",
        include_str!("../../migrations/postgres/0008_card_authorisations.sql"),
    ),
    (
        9,
        "barcode_payments",
        include_str!("../../migrations/postgres/0009_barcode_payments.sql"),
    ),
    (
        10,
        "app_key_rotation",
        include_str!("../../migrations/postgres/0010_app_key_rotation.sql"),
    ),
    (
        11,
        "merchant_time_zone",
        include_str!("../../migrations/postgres/0011_merchant_time_zone.sql"),
    ),
    (
        12,
        "payment_detail",
        include_str!("../../migrations/postgres/0012_payment_detail.sql"),
    ),
    (
        13,
        "reconciliation",
        include_str!("../../migrations/postgres/0013_reconciliation.sql"),
    ),
];

/// The advisory lock migrations run under (any constant no other program uses).
const LOCK: i64 = 0x6f74_7467_6174_6531;

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS ottgate_migrations (
    version    BIGINT PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)";

/// Applies every migration not applied yet, in one transaction.
pub(super) async fn run(client: &mut Client) -> Result<()> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK])
        .await?;
    tx.batch_execute(CREATE_TABLE).await?;
    let applied = applied(&tx).await?;
    for (version, name, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tracing::info!(version, name, "applying PostgreSQL migration");
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO ottgate_migrations (version, name) VALUES ($1, $2)",
            &[version, name],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn applied(c: &impl deadpool_postgres::GenericClient) -> Result<Vec<i64>> {
    let rows = c
        .query("SELECT version FROM ottgate_migrations", &[])
        .await?;
    rows.iter()
        .map(|r| r.try_get(0).map_err(StoreError::from))
        .collect()
}

/// Fails unless every migration this binary knows is applied.
pub(super) async fn check(client: &Client) -> Result<()> {
    let applied = applied(client).await?;
    match MIGRATIONS.iter().find(|(v, _, _)| !applied.contains(v)) {
        Some((version, _, _)) => Err(StoreError::Corrupt(format!(
            "migration {version} not applied"
        ))),
        None => Ok(()),
    }
}
