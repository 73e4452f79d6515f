//! The few ways the PostgreSQL store talks to the database: one row, maybe one row, all
//! rows, a count of rows changed — each through the connection's prepared-statement cache.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use crate::{Result, StoreError};

pub(super) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

pub(super) async fn opt(
    c: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> Result<Option<Row>> {
    let statement = c.prepare_cached(sql).await?;
    Ok(c.query_opt(&statement, params).await?)
}

pub(super) async fn one(c: &impl GenericClient, sql: &str, params: Params<'_>) -> Result<Row> {
    let statement = c.prepare_cached(sql).await?;
    Ok(c.query_one(&statement, params).await?)
}

pub(super) async fn all(c: &impl GenericClient, sql: &str, params: Params<'_>) -> Result<Vec<Row>> {
    let statement = c.prepare_cached(sql).await?;
    Ok(c.query(&statement, params).await?)
}

pub(super) async fn exec(c: &impl GenericClient, sql: &str, params: Params<'_>) -> Result<u64> {
    let statement = c.prepare_cached(sql).await?;
    Ok(c.execute(&statement, params).await?)
}

/// Rows converted by `convert` (a row type's `from_pg` and its domain conversion).
pub(super) fn each<T>(rows: Vec<Row>, convert: impl Fn(&Row) -> Result<T>) -> Result<Vec<T>> {
    rows.iter().map(convert).collect()
}

/// Whether a transaction failed only because it met another (a deadlock, a serialization
/// failure, or a race the operation reports as [`StoreError::Contended`]): running it
/// again is safe and will see the other's result.
pub(super) fn is_retryable(e: &StoreError) -> bool {
    match e {
        StoreError::Contended => true,
        StoreError::Postgres(e) => matches!(
            e.code(),
            Some(&SqlState::T_R_DEADLOCK_DETECTED | &SqlState::T_R_SERIALIZATION_FAILURE)
        ),
        _ => false,
    }
}

pub(super) fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A TLS connector that trusts the certificates in `ca_file` (PEM) and nothing else.
pub(super) fn tls(ca_file: &std::path::Path) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let bad = |e: String| StoreError::Pool(format!("db_ca_file {}: {e}", ca_file.display()));
    let pem = std::fs::read(ca_file).map_err(|e| bad(e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots
            .add(cert.map_err(|e| bad(e.to_string()))?)
            .map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("no certificate in it".into()));
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// A row of `attempts`, read.
pub(super) fn attempt(row: &tokio_postgres::Row) -> Result<ottgate_core::Attempt> {
    crate::rows::AttemptRow::from_pg(row)?.into_attempt()
}

/// A row of `orders`, read.
pub(super) fn order(row: &tokio_postgres::Row) -> Result<ottgate_core::Order> {
    crate::rows::OrderRow::from_pg(row)?.into_order()
}
