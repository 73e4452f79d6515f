//! Durable storage for ottgate: one trait per table or aggregate — [`Merchants`],
//! [`Orders`], [`Attempts`], [`Refunds`], [`Deliveries`], [`IdempotencyKeys`], [`Users`],
//! [`Sessions`], [`Audit`], [`PaymentList`], [`SignIns`] — each declared in its module here
//! with its types, and implemented for each backend in that table's file
//! (`sqlite/<table>.rs`, `postgres/<table>.rs`). [`Store`] only composes them.
//!
//! Every method is one atomic unit: a state change and the outbox row announcing it are
//! written together or not at all, and a method returns only once its write is durable.
//! Implementations are free to batch concurrent writes into one transaction (group
//! commit); the interface never exposes a transaction to callers, which is what makes
//! that possible.
//!
//! Callers bring the tables' traits into scope with `use ottgate_store::prelude::*`.

#[macro_use]
mod sql;

pub mod attempts;
pub mod audit;
pub mod barcode_jobs;
pub mod center;
pub mod copy;
pub mod deliveries;
mod due;
pub mod idempotency;
pub mod merchants;
pub mod orders;
mod postgres;
pub mod recon;
pub mod refunds;
mod rows;
pub mod sessions;
pub mod settlements;
pub mod sign_ins;
mod sqlite;
pub mod users;

pub use attempts::{Attempts, Authorise, HoldOutcome, SettleOutcome, SettleRequest, StartOutcome};
pub use audit::{Audit, AuditEntry};
pub use barcode_jobs::{BarcodeBacklog, BarcodeJob, BarcodeJobs, BarcodePhase};
pub use center::{DayRange, DayTotal, ListStatus, PaymentFilter, PaymentList, PaymentSummary};
pub use deliveries::{
    Deliveries, Delivery, DeliveryAttemptRecord, DeliveryAttemptRow, DeliveryClaim, DeliveryState,
    Event, EventFilter, NewDelivery, NextStep, RESPONSE_START_CHARS,
};
pub use due::Due;
pub use idempotency::{
    Idempotency, IdempotencyAnswer, IdempotencyClaim, IdempotencyKey, IdempotencyKeys,
};
pub use merchants::{KeyRotation, LinkFlows, MerchantRecord, Merchants, NewSignKey};
pub use orders::{CreateOutcome, NewOrder, Orders};
pub use postgres::{PgOptions, PgStore};
pub use recon::{
    DayClaim, Discrepancy, DiscrepancyFilter, DiscrepancyState, FinishedRun, NewDiscrepancy,
    ReconRecord, ReconRun, Reconciliations, RecordQuery, Resolution,
};
pub use refunds::{BeginRefund, FinishRefund, NewRefund, RefundRequestKey, Refunds};
pub use sessions::{NewSession, Sessions};
pub use settlements::{MethodFee, Settlements};
pub use sign_ins::{SignInAttempt, SignIns};
pub use sqlite::SqliteStore;
/// Writes sharing one SQLite commit at most, unless configured otherwise.
pub use sqlite::engine::MAX_BATCH as SQLITE_MAX_BATCH;
pub use users::{NewUser, UserRecord, UserRemoval, UserRole, Users};

use async_trait::async_trait;
use ottgate_core::Timestamp;
use std::fmt;

/// The tables' traits, for calling them on a [`Store`].
pub mod prelude {
    pub use crate::{
        Attempts, Audit, BarcodeJobs, Deliveries, IdempotencyKeys, Merchants, Orders, PaymentList,
        Reconciliations, Refunds, Sessions, Settlements, SignIns, Store, Users,
    };
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database error: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// No connection to the database could be had in time (it is down, or every
    /// connection is busy).
    #[error("database unreachable: {0}")]
    Pool(String),
    #[error("migration failed: {0}")]
    Migrate(String),
    /// The store cannot be opened as configured.
    #[error("{0}")]
    Config(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("{0} already exists")]
    Duplicate(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The write met a concurrent one (on another gateway instance) too many times in a row
    /// and was not applied; the request may be retried.
    #[error("the write met concurrent writes and was not applied")]
    Contended,
    /// The write was not taken: the store is shutting down, or its batch could not begin.
    #[error("the store is unavailable")]
    Unavailable,
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Counts for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// `(status code, count)` of orders.
    pub orders_by_status: Vec<(String, u64)>,
    /// `(state, count)` of callback deliveries.
    pub deliveries_by_state: Vec<(String, u64)>,
    /// Pending deliveries some gateway holds a lease on now (being delivered).
    pub deliveries_leased: u64,
    /// The connection pool, where the store has one (PostgreSQL).
    pub pool: Option<PoolStatus>,
}

/// A store's connection pool, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStatus {
    pub max_size: usize,
    /// Connections open now.
    pub size: usize,
    /// Open and idle.
    pub available: usize,
    /// Requests waiting for a connection.
    pub waiting: usize,
}

/// Everything ottgate keeps: every table's trait, and what concerns the store as a whole.
/// Implementations: [`SqliteStore`] (embedded default) and [`PgStore`].
#[async_trait]
pub trait Store:
    Merchants
    + Orders
    + Attempts
    + BarcodeJobs
    + Refunds
    + Deliveries
    + IdempotencyKeys
    + Users
    + Sessions
    + Audit
    + PaymentList
    + SignIns
    + Reconciliations
    + Settlements
    + Send
    + Sync
    + fmt::Debug
    + 'static
{
    /// Database reachable and every migration applied.
    async fn ready(&self) -> Result<()>;

    /// Counts for `/metrics`, leases as of `now`.
    async fn stats(&self, now: Timestamp) -> Result<Stats>;

    /// Whether several gateways may share this store (its counters then live in it).
    fn is_shared(&self) -> bool {
        false
    }
}
