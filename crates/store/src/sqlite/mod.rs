//! The embedded default store: one SQLite file in WAL mode, `synchronous=FULL`.
//!
//! The [`engine`] runs every write on one writer thread (group commit) and every read on a
//! few reader threads, each owning a synchronous connection with its prepared statements
//! cached. The queries live with their table (`merchants`, `orders`, `attempts`,
//! `refunds`, `deliveries`, `idempotency`, `sign_ins`, `users`, `center`); the [`Store`]
//! implementation here only says which runs where.

mod attempts;
mod audit;
mod barcode_jobs;
mod center;
mod db;
mod deliveries;
mod due;
pub(crate) mod engine;
mod idempotency;
mod merchants;
mod migrate;
mod orders;
mod recon;
mod refunds;
mod sessions;
mod settlements;
mod sign_ins;
mod users;

use async_trait::async_trait;
use ottgate_core::Timestamp;
use rusqlite::Connection;
use std::path::{Path, PathBuf};

use crate::{Result, Stats, Store, StoreError};
use engine::Engine;

/// Fresh ids tried when a generated id collides with one from another process.
const ID_RETRIES: usize = 5;

/// SQLite-backed [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    engine: Engine,
}

/// The file a `sqlite://path`, `sqlite:path` or plain path names (query options, which
/// earlier versions accepted, are ignored: every connection is configured the same way).
fn file_of(url: &str) -> PathBuf {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    PathBuf::from(path.split('?').next().unwrap_or(path))
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://path` or a plain
    /// path) and applies pending migrations.
    pub async fn open(url: &str) -> Result<Self> {
        Self::open_with(url, engine::MAX_BATCH).await
    }

    /// As [`SqliteStore::open`], with at most `max_batch` writes sharing one commit (1: a
    /// commit per write — what group commit is measured against).
    pub async fn open_with(url: &str, max_batch: usize) -> Result<Self> {
        let path = file_of(url);
        // The writer and each reader open the file on their own connection: an in-memory
        // database would be a different, empty one on each.
        if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" {
            return Err(StoreError::Config(format!(
                "{url}: the SQLite store needs a file (an in-memory database is not supported)"
            )));
        }
        let engine = tokio::task::spawn_blocking(move || -> Result<Engine> {
            let mut c = engine::connect(&path)?;
            migrate::run(&mut c)?;
            drop(c);
            Engine::start(&path, max_batch)
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("opening the database: {e}")))??;
        Ok(Self { engine })
    }

    /// The database file (for `copy`, which reads every table on a connection of its own).
    pub(crate) fn path(&self) -> &Path {
        self.engine.path()
    }
}

/// Opens another connection to the database (for `copy`'s reading thread).
pub(crate) fn connect(path: &Path) -> Result<Connection> {
    engine::connect(path)
}

#[async_trait]
impl Store for SqliteStore {
    async fn ready(&self) -> Result<()> {
        let applied = self.engine.read(migrate::applied).await?;
        match migrate::MIGRATIONS
            .iter()
            .find(|(version, ..)| !applied.contains(version))
        {
            Some((missing, ..)) => Err(StoreError::Corrupt(format!(
                "migration {missing} not applied"
            ))),
            None => Ok(()),
        }
    }

    async fn stats(&self, now: Timestamp) -> Result<Stats> {
        self.engine
            .read(move |c| {
                let count = |row: &rusqlite::Row<'_>| {
                    Ok((
                        row.get::<_, String>(0)?,
                        u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
                    ))
                };
                let orders = db::all(c, crate::orders::q::COUNT_BY_STATUS.sqlite, [], count)?;
                let deliveries =
                    db::all(c, crate::deliveries::q::COUNT_BY_STATE.sqlite, [], count)?;
                let leased: i64 = db::one(
                    c,
                    crate::deliveries::q::COUNT_LEASED.sqlite,
                    [now.epoch_millis()],
                    db::first,
                )?;
                Ok(Stats {
                    orders_by_status: orders,
                    deliveries_by_state: deliveries,
                    deliveries_leased: u64::try_from(leased).unwrap_or(0),
                    pool: None,
                })
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::file_of;
    use std::path::PathBuf;

    #[tokio::test]
    async fn an_in_memory_database_is_refused_with_a_reason() {
        for url in ["sqlite::memory:", "sqlite://", ":memory:"] {
            let e = super::SqliteStore::open(url).await.unwrap_err();
            assert!(e.to_string().contains("needs a file"), "{url}: {e}");
        }
    }

    #[test]
    fn database_urls_name_their_file() {
        for (url, file) in [
            ("sqlite://ottgate.db", "ottgate.db"),
            ("sqlite:///var/lib/ottgate.db", "/var/lib/ottgate.db"),
            ("sqlite:data/o.db?mode=rwc", "data/o.db"),
            ("plain.db", "plain.db"),
        ] {
            assert_eq!(file_of(url), PathBuf::from(file), "{url}");
        }
    }
}
