//! The few ways the SQLite store talks to its connection — one row, maybe one row, all
//! rows, a count of rows changed — each through the connection's prepared-statement cache.

use rusqlite::{Connection, OptionalExtension, Params, Row};

use crate::{Result, StoreError};

/// The first row, converted by `convert` (a row type's `from_sqlite`), if there is one.
pub(super) fn opt<T>(
    c: &Connection,
    sql: &str,
    params: impl Params,
    convert: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Option<T>> {
    Ok(c.prepare_cached(sql)?
        .query_row(params, convert)
        .optional()?)
}

/// Exactly one row (an aggregate, a `RETURNING`).
pub(super) fn one<T>(
    c: &Connection,
    sql: &str,
    params: impl Params,
    convert: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<T> {
    Ok(c.prepare_cached(sql)?.query_row(params, convert)?)
}

/// Every row, each converted by `convert`.
pub(super) fn all<T>(
    c: &Connection,
    sql: &str,
    params: impl Params,
    convert: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let mut statement = c.prepare_cached(sql)?;
    let rows = statement.query_map(params, convert)?;
    Ok(rows.collect::<rusqlite::Result<Vec<T>>>()?)
}

/// How many rows the statement changed.
pub(super) fn exec(c: &Connection, sql: &str, params: impl Params) -> Result<usize> {
    Ok(c.prepare_cached(sql)?.execute(params)?)
}

/// The first column of a row.
pub(super) fn first<T: rusqlite::types::FromSql>(row: &Row<'_>) -> rusqlite::Result<T> {
    row.get(0)
}

/// Whether the write failed only on a unique index (a generated id taken by another
/// process at the same moment).
pub(super) fn is_unique_violation(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _))
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

/// A `Duration` in whole milliseconds, saturating.
pub(super) fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
