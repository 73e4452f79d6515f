//! The gateway's business, behind every entry point: starting and settling payments,
//! refunds, reconciliation with the wallets, merchants. Handlers (envelope, checkout, REST,
//! notifications, sandbox) and workers call [`Service`]; it knows nothing of HTTP.

use ottgate_channels::Channels;
use ottgate_core::{Clock, Merchant};
use ottgate_envelope::SignKey;
use ottgate_store::{Store, StoreError};
use std::sync::Arc;
use tokio::sync::Notify;

use crate::config::Settings;
use crate::keyring::{Keyring, KeyringError};
use crate::metrics::Metrics;

mod cards;
pub use cards::VoidError;
mod center;
mod events;
pub mod instore;
mod keys;
pub mod merchants;
mod orders;
pub use orders::{CreatePaymentError, NewPayment};
pub mod passwords;
pub mod payments;
pub mod rates;
mod reconcile;
pub mod refunds;
pub mod settlement;
pub mod signing;
pub mod statements;
pub mod users;

/// The store's records as the entry points see them: the service's vocabulary, so that no
/// entry point names the store (ARCHITECTURE.md, enforced by `crates/cli/tests/architecture.rs`).
pub use ottgate_store::{
    AuditEntry, CreateOutcome, DayRange, DayTotal, Delivery, DeliveryAttemptRow, DeliveryState,
    Event, EventFilter, HoldOutcome, Idempotency, ListStatus, MerchantRecord, NewOrder, NewSession,
    PaymentFilter, PaymentSummary, SettleOutcome, Stats, UserRecord, UserRole,
};
pub use ottgate_store::{Discrepancy, DiscrepancyState, NewDiscrepancy, ReconRun};

/// What the business logic works with.
#[derive(Debug)]
pub struct Service {
    pub settings: Settings,
    pub store: Arc<dyn Store>,
    pub keyring: Keyring,
    pub clock: Arc<dyn Clock>,
    pub channels: Channels,
    pub metrics: Metrics,
    /// Wakes the delivery worker when a callback is enqueued.
    pub delivery_wakeup: Notify,
    /// Today's exchange rates, as fetched for EX_RATE_QUERY.
    pub rates: rates::RateCache,
    /// Merchants' signing material, kept for a second.
    pub signings: signing::SigningCache,
    /// Work that runs to its end whatever happens to the request that began it
    /// ([`Service::to_completion`]); a shutdown waits for it.
    pub tasks: tokio_util::task::TaskTracker,
}

impl Service {
    /// Database reachable and every migration applied.
    pub async fn ready(&self) -> Result<(), ServiceError> {
        Ok(self.store.ready().await?)
    }

    /// Counts for `/metrics`, leases as of now.
    pub async fn stats(&self) -> Result<Stats, ServiceError> {
        Ok(self.store.stats(self.clock.now()).await?)
    }

    /// Runs `work` to its end whatever happens to the caller. A client that hangs up, or a
    /// request cut off by its timeout, drops only the wait for the answer — never the work:
    /// a refund begun is asked of the wallet, recorded and its answer kept for the retry.
    /// Every request that moves money or changes a payment runs this way; a gateway
    /// stopping waits for them (`Gateway::serve`).
    pub fn to_completion<F>(&self, work: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let handle = self.tasks.spawn(work);
        async move {
            match handle.await {
                Ok(output) => output,
                // The work panicked: so does its caller, as if it had run inline.
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            }
        }
    }
}

/// A merchant and its sign key, unsealed for the length of one request.
#[derive(Debug, Clone)]
pub struct Signing {
    pub merchant: Merchant,
    pub key: SignKey,
    /// The key before the last rotation, while its grace period lasts: requests sealed
    /// with it are still accepted (and answered with it).
    pub previous: Option<SignKey>,
    /// Which webhook secret signs the merchant's callbacks now, and until when the one
    /// before it signs them too.
    pub webhook: WebhookVersion,
}

/// The webhook secret's version (0: the first), and the end of the previous version's
/// grace period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebhookVersion {
    pub version: u32,
    pub previous_until: Option<ottgate_core::Timestamp>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("stored URL is invalid: {0}")]
    BadUrl(String),
    /// Something the gateway stored itself cannot be read back.
    #[error("stored data is corrupt: {0}")]
    Corrupt(&'static str),
    /// The id names two of the merchant's payments: its own `order_id` of one, the
    /// gateway's id of another. Nothing is done to either.
    #[error(
        "{0} names two payments: your own order_id of one and the gateway's id of another; \
         ask by the other payment's id"
    )]
    AmbiguousId(String),
}
