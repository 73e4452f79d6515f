//! What every handler and worker shares.

use ottgate_channels::Channels;
use ottgate_channels::simkit::Simulators;
use ottgate_core::Clock;
use ottgate_store::Store;
use std::ops::Deref;
use std::sync::Arc;
use tokio::sync::Notify;

use crate::callbacks::CallbackSender;
use crate::config::Settings;
use crate::keyring::Keyring;
use crate::metrics::Metrics;
use crate::rest::limiter::FailureLimiter;
use crate::rest::token::TokenSigner;

#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
pub struct Inner {
    pub settings: Settings,
    pub store: Arc<dyn Store>,
    pub keyring: Keyring,
    pub clock: Arc<dyn Clock>,
    pub channels: Channels,
    pub metrics: Metrics,
    pub callbacks: CallbackSender,
    /// Wakes the delivery worker when a callback is enqueued.
    pub delivery_wakeup: Notify,
    /// This process's name on the delivery leases it takes.
    pub worker_id: String,
    /// Signs and checks REST bearer tokens.
    pub tokens: TokenSigner,
    /// Failed token requests, per address, per appId and address, and per appId.
    pub auth_failures: FailureLimiter,
    /// Permits to hash an app key (argon2id, ~19 MiB each): how many at once.
    pub auth_hashing: tokio::sync::Semaphore,
    /// The built-in wallet simulators (sandbox mode).
    pub simulators: Simulators,
    /// Today's exchange rates, as fetched for EX_RATE_QUERY.
    pub rates: crate::rates::RateCache,
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }
}

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}
