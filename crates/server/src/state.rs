//! What every handler and worker shares.

use ottgate_channels::simkit::Simulators;
use std::ops::Deref;
use std::sync::Arc;

use crate::outbound::CallbackSender;
use crate::rest::token::TokenSigner;
use crate::service::Service;
use crate::signin::FailureLimiter;

#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
pub struct Inner {
    /// Payments, refunds, reconciliation: what every entry point calls.
    pub service: Service,
    pub callbacks: CallbackSender,
    /// This process's name on the delivery leases it takes.
    pub worker_id: String,
    /// Signs and checks REST bearer tokens.
    pub tokens: TokenSigner,
    /// Failed token requests, per address, per appId and address, and per appId.
    pub auth_failures: FailureLimiter,
    /// Failed merchant-center sign-ins, per address, per email and address, and per email.
    pub dashboard_failures: FailureLimiter,
    /// Turns to hash an app key or password (argon2id, ~19 MiB each), shared fairly.
    pub auth_hashing: crate::signin::HashQueue,
    /// The built-in wallet simulators (sandbox mode).
    pub simulators: Simulators,
    /// The calls merchants' shops made (sandbox mode), for `ottgate check`.
    pub calls: crate::calls::CallLog,
    /// Each merchant's last `ottgate check` run, for its merchant center.
    pub check_runs: crate::calls::CheckRuns,
    /// What `ottgate check` asked the sandbox to do to its orders' callbacks and queries.
    pub check_faults: crate::calls::CheckFaults,
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }

    /// Notes a call of `merchant`'s shop for `ottgate check` (sandbox mode only: a live
    /// gateway keeps no such log).
    pub fn note_call(&self, merchant: &ottgate_core::MerchantId, call: &str, about: Option<&str>) {
        if self.service.settings.sandbox {
            self.calls.record(crate::calls::Call {
                at: self.service.clock.now(),
                merchant: merchant.clone(),
                call: call.to_owned(),
                about: about.map(str::to_owned),
            });
        }
    }
}

impl AppState {
    /// Whether a query about `order` should answer "still processing" now: `ottgate check`
    /// asked for it (sandbox mode only), to see whether the shop waits.
    pub fn query_lags(&self, order: &ottgate_core::OrderId) -> bool {
        self.service.settings.sandbox && self.check_faults.lags(order, self.service.clock.now())
    }

    /// A payment as a query answers it: still processing while [`Self::query_lags`].
    pub fn as_queried(
        &self,
        mut view: crate::service::payments::PaymentView,
    ) -> crate::service::payments::PaymentView {
        if self.query_lags(&view.order.id) {
            view.status = ottgate_core::PaymentStatus::Init;
        }
        view
    }
}

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}
