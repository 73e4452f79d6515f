//! Moving up: a whole SQLite deployment copied into PostgreSQL, row for row — merchants
//! with their keys still sealed, orders, attempts, refunds, the callback outbox with every
//! delivery attempt, idempotency keys, merchant-center users, the audit log, and the
//! reconciliation runs and discrepancies, the merchants' fees (not the users' sessions: everyone signs in
//! again). Rows already in the destination are left as
//! they are (`ON CONFLICT DO NOTHING`), so a copy that stopped half-way is simply run
//! again; afterwards every table must hold as many rows as the source's, or the copy
//! says which does not.

use tokio_postgres::types::ToSql;

use crate::{PgStore, Result, SqliteStore, StoreError};

/// The tables, parents first, each with the columns that order it.
const TABLES: [(&str, &str); 13] = [
    ("merchants", "id"),
    ("orders", "id"),
    ("attempts", "id"),
    ("barcode_jobs", "attempt_id"),
    ("deliveries", "id"),
    ("delivery_attempts", "delivery_id, attempt_no"),
    ("refunds", "id"),
    ("idempotency_keys", "merchant_id, scope, key"),
    ("users", "id"),
    ("audit_log", "id"),
    ("recon_runs", "wallet, day"),
    ("recon_discrepancies", "id"),
    ("merchant_fees", "merchant_id, method"),
];

/// What the copy did to one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCopy {
    pub table: &'static str,
    /// Rows in the source.
    pub source: u64,
    /// Rows this run inserted (0 when re-run after a complete copy).
    pub inserted: u64,
    /// Rows in the destination afterwards.
    pub destination: u64,
}

/// Copies every table of `source` into `destination` and checks the counts.
pub async fn sqlite_to_postgres(
    source: &SqliteStore,
    destination: &PgStore,
) -> Result<Vec<TableCopy>> {
    let mut report = Vec::with_capacity(TABLES.len());
    for (table, order) in TABLES {
        report.push(copy_table(source, destination, table, order).await?);
    }
    if let Some(off) = report.iter().find(|t| t.source != t.destination) {
        return Err(StoreError::Corrupt(format!(
            "after the copy {} holds {} rows in the destination and {} in the source: copy \
             into an empty database",
            off.table, off.destination, off.source
        )));
    }
    Ok(report)
}

/// One value of a source row, as the destination column's type wants it.
type Value = Box<dyn ToSql + Sync + Send>;

fn value(row: &rusqlite::Row<'_>, i: usize, pg_type: &str) -> Result<Value> {
    Ok(match pg_type {
        "bigint" => Box::new(row.get::<_, Option<i64>>(i)?),
        // SQLite keeps booleans as 0 and 1.
        "boolean" => Box::new(row.get::<_, Option<i64>>(i)?.map(|v| v != 0)),
        "bytea" => Box::new(row.get::<_, Option<Vec<u8>>>(i)?),
        "text" => Box::new(row.get::<_, Option<String>>(i)?),
        other => {
            return Err(StoreError::Corrupt(format!(
                "column type {other} has no copy rule"
            )));
        }
    })
}

/// Reads every row of `select` on a thread of its own (with its own connection), sending
/// each converted to the destination's column types; at most a few thousand rows wait in
/// the channel, so a table of any size streams through.
fn read_rows(
    path: std::path::PathBuf,
    select: String,
    types: Vec<String>,
) -> tokio::sync::mpsc::Receiver<Result<Vec<Value>>> {
    let (tx, rx) = tokio::sync::mpsc::channel(4096);
    std::thread::spawn(move || {
        let read = || -> Result<()> {
            let c = crate::sqlite::connect(&path)?;
            let mut statement = c.prepare(&select)?;
            let mut rows = statement.query([])?;
            while let Some(row) = rows.next()? {
                let values = types
                    .iter()
                    .enumerate()
                    .map(|(i, pg_type)| value(row, i, pg_type))
                    .collect::<Result<Vec<_>>>()?;
                if tx.blocking_send(Ok(values)).is_err() {
                    return Ok(()); // the copy stopped
                }
            }
            Ok(())
        };
        if let Err(e) = read() {
            let _ = tx.blocking_send(Err(e));
        }
    });
    rx
}

async fn copy_table(
    source: &SqliteStore,
    destination: &PgStore,
    table: &'static str,
    order: &str,
) -> Result<TableCopy> {
    let mut client = destination.client().await?;
    let columns: Vec<(String, String)> = client
        .query(
            "SELECT column_name::TEXT, data_type::TEXT FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            &[&table],
        )
        .await?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Result<_>>()?;
    let names = columns
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let placeholders = (1..=columns.len())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let tx = client.transaction().await?;
    let insert = tx
        .prepare(&format!(
            "INSERT INTO {table} ({names}) VALUES ({placeholders}) ON CONFLICT DO NOTHING"
        ))
        .await?;
    let select = format!("SELECT {names} FROM {table} ORDER BY {order}");
    let types = columns.iter().map(|(_, pg_type)| pg_type.clone()).collect();
    let mut rows = read_rows(source.path().to_owned(), select, types);
    let (mut read, mut inserted) = (0u64, 0u64);
    while let Some(values) = rows.recv().await {
        let values = values?;
        let params: Vec<&(dyn ToSql + Sync)> = values
            .iter()
            .map(|v| v.as_ref() as &(dyn ToSql + Sync))
            .collect();
        inserted += tx.execute(&insert, &params).await?;
        read += 1;
    }
    if matches!(
        table,
        "deliveries" | "users" | "audit_log" | "recon_discrepancies"
    ) {
        // New rows take ids after the copied ones.
        tx.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                               (SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)"
            ),
            &[],
        )
        .await?;
    }
    let count = format!("SELECT COUNT(*) FROM {table}");
    let destination_rows: i64 = tx.query_one(&count, &[]).await?.try_get(0)?;
    tx.commit().await?;
    Ok(TableCopy {
        table,
        source: read,
        inserted,
        destination: u64::try_from(destination_rows).unwrap_or(0),
    })
}
