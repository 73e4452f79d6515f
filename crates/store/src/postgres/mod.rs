//! The PostgreSQL store, for several gateways on one database (and a standby).
//!
//! Each write is one transaction on a pooled connection, committed with
//! `synchronous_commit=on` before the method returns (with a synchronous standby, after the
//! standby has it too). What several gateways do at once is made safe in the database:
//! a change to an order and its attempts locks the order's row first; refunds lock their
//! payment's row; due deliveries and expiring orders are taken with `FOR UPDATE SKIP
//! LOCKED`; keys and references that two gateways may create at the same instant are
//! inserted with `ON CONFLICT DO NOTHING` and the loser runs again. A transaction that
//! meets a deadlock or such a race is run again, a few times, before [`StoreError::Contended`].
//!
//! The URL is libpq's: several hosts (`postgres://u@h1:5432,h2:5432/db?target_session_attrs=read-write`)
//! make the pool connect to whichever is the primary, so after a failover new connections
//! go to the promoted standby by themselves. The queries live with their table, as in the
//! SQLite store.

/// Runs `$body` (an expression using the transaction `$tx`) in a transaction, committing
/// it on success and running it again when it met a concurrent transaction.
macro_rules! in_tx {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let mut tries = 0;
        loop {
            let mut client = $store.client().await?;
            let $tx = client.transaction().await?;
            let result = match $body.await {
                Ok(value) => $tx.commit().await.map(|()| value).map_err($crate::StoreError::from),
                Err(e) => Err(e),
            };
            match result {
                Err(e) if super::db::is_retryable(&e) && tries < super::TX_RETRIES => {
                    tries += 1;
                    tracing::debug!(error = %e, tries, "transaction met another; running it again");
                    tokio::time::sleep(::std::time::Duration::from_millis(u64::from(tries) * 5)).await;
                }
                other => break other,
            }
        }
    }};
}

mod attempts;
mod audit;
mod barcode_jobs;
mod batch;
mod center;
mod db;
mod deliveries;
mod due;
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
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use ottgate_core::Timestamp;
use std::time::Duration;
use tokio_postgres::NoTls;

use crate::{PoolStatus, Result, Stats, Store, StoreError};

/// Fresh ids tried when a generated id collides with another gateway's.
const ID_RETRIES: usize = 5;

/// Times a transaction that met a concurrent one is run again.
pub(super) const TX_RETRIES: u32 = 5;

/// How the gateway uses its database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// Connections at most, per gateway.
    pub pool_size: usize,
    /// How long to wait for a new connection (each host of a multi-host URL in turn), and
    /// for a free one when all are busy.
    pub connect_timeout: Duration,
    /// The longest any statement may run (`statement_timeout`).
    pub statement_timeout: Duration,
    /// PEM certificates to trust for the database's TLS. With them, connections use TLS
    /// (`sslmode=prefer`, the default, or `require`), verified against them; without them a
    /// URL asking `sslmode=require` is refused, and other connections are plain TCP.
    pub ca_file: Option<std::path::PathBuf>,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            pool_size: 16,
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(10),
            ca_file: None,
        }
    }
}

/// PostgreSQL-backed [`Store`].
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// Orders without a first attempt, inserted in batches (group commit).
    creates: batch::Creates,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("pool", &self.pool_status())
            .finish()
    }
}

impl PgStore {
    /// Connects to the database at `url` (libpq URL syntax, one or several hosts) and
    /// applies pending migrations under an advisory lock.
    pub async fn open(url: &str, options: &PgOptions) -> Result<Self> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Pool(format!("bad PostgreSQL URL: {e}")))?;
        config.connect_timeout(options.connect_timeout);
        // Acknowledged means committed (and, with a synchronous standby, replicated):
        // whatever the server's default, this session waits for it.
        let session = format!(
            "-c synchronous_commit=on -c statement_timeout={}",
            db::millis(options.statement_timeout)
        );
        let session = match config.get_options() {
            Some(given) => format!("{given} {session}"),
            None => session,
        };
        config.options(&session);
        if config.get_application_name().is_none() {
            config.application_name("ottgate");
        }
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match (&options.ca_file, config.get_ssl_mode()) {
            (Some(ca_file), _) => Manager::from_config(config, db::tls(ca_file)?, manager_config),
            (None, tokio_postgres::config::SslMode::Require) => {
                return Err(StoreError::Pool(
                    "sslmode=require needs the certificates to trust (db_ca_file)".into(),
                ));
            }
            (None, _) => Manager::from_config(config, NoTls, manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.connect_timeout))
            .create_timeout(Some(options.connect_timeout))
            .recycle_timeout(Some(options.connect_timeout))
            .build()
            .map_err(|e| StoreError::Pool(e.to_string()))?;
        let store = Self {
            creates: batch::Creates::start(pool.clone()),
            pool,
        };
        migrate::run(&mut store.client().await?).await?;
        Ok(store)
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Client> {
        client_of(&self.pool).await
    }

    pub fn pool_status(&self) -> PoolStatus {
        let status = self.pool.status();
        PoolStatus {
            max_size: status.max_size,
            size: status.size,
            available: status.available,
            waiting: status.waiting,
        }
    }
}

/// A pooled connection, or the pool's error with what lies under it.
async fn client_of(pool: &Pool) -> Result<deadpool_postgres::Client> {
    pool.get().await.map_err(|e| {
        // The pool's message, and what lies under it (refused, TLS, authentication).
        let mut message = e.to_string();
        let mut cause = std::error::Error::source(&e);
        while let Some(inner) = cause {
            message = format!("{message}: {inner}");
            cause = inner.source();
        }
        StoreError::Pool(message)
    })
}

#[async_trait]
impl Store for PgStore {
    async fn ready(&self) -> Result<()> {
        migrate::check(&self.client().await?).await
    }

    async fn stats(&self, now: Timestamp) -> Result<Stats> {
        let client = self.client().await?;
        let counts = |sql: &'static str| {
            let client = &client;
            async move {
                let rows = db::all(client, sql, &[]).await?;
                db::each(rows, |row| {
                    let n: i64 = row.try_get(1)?;
                    Ok((row.try_get(0)?, u64::try_from(n).unwrap_or(0)))
                })
            }
        };
        let leased: i64 = db::one(
            &client,
            crate::deliveries::q::COUNT_LEASED.pg,
            &[&now.epoch_millis()],
        )
        .await?
        .try_get(0)?;
        Ok(Stats {
            orders_by_status: counts(crate::orders::q::COUNT_BY_STATUS.pg).await?,
            deliveries_by_state: counts(crate::deliveries::q::COUNT_BY_STATE.pg).await?,
            deliveries_leased: u64::try_from(leased).unwrap_or(0),
            pool: Some(self.pool_status()),
        })
    }

    fn is_shared(&self) -> bool {
        true
    }
}
