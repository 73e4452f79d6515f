//! The ottgate gateway server: the OTT Pay envelope API (`POST /processV2`, also at
//! `/process` and `/processV3`), the hosted
//! checkout, the sandbox wallet and helper API, merchant callbacks, and operations
//! endpoints, over a [`Store`].
//!
//! [`Gateway`] is the entry point: build it from a [`Config`] (or from parts, in tests),
//! bind a listener, and [`Gateway::serve`] until the shutdown token fires.

mod calls;
mod check;
mod checkout;
pub mod config;
mod dashboard;
mod envelope;
#[doc(hidden)]
pub mod fuzz;
pub mod keyring;
mod link;
mod listen;
pub mod metrics;
mod notify;
mod ops;
mod outbound;
mod rest;
mod sandbox;
pub mod service;
mod signin;
pub mod simulate;
mod startup;
pub mod state;
pub mod workers;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use ottgate_store::StoreError;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::{Config, LogFormat, Settings};
pub use keyring::Keyring;
pub use ops::REQUEST_ID;
/// A wallet's business day (Beijing), as `ottgate recon` names one.
pub use ottgate_core::recon::WalletDay;
/// A merchant's fee on a payment (`2.2%+30`), as `ottgate merchant fees` sets one.
pub use ottgate_core::settlement::FeeRate;
/// Domain types a program embedding the gateway needs to configure it.
pub use ottgate_core::{
    Clock, Currency, ManualClock, MerchantId, Money, PaymentMethod, Secret, SystemClock,
};
pub use ottgate_store::PgOptions;
pub use ottgate_store::Store;
pub use ottgate_store::UserRole;
pub use ottgate_store::copy::TableCopy;
pub use service::merchants::{
    self, ChannelChange, CreatedMerchant, LinkChange, MerchantError, NewMerchant,
};
pub use service::users::{self, UserError, UserWithPassword};
pub use startup::{StartupError, check_config, copy_store, open_keyring, open_store};
pub use workers::delivery::DeliveryReport;

use crate::state::AppState;

/// The router: every endpoint, the request middleware, the body limit.
pub fn app(state: AppState) -> Router {
    let mut router = Router::new();
    for path in envelope::PATHS {
        router = router.route(
            path,
            post(envelope::process).fallback(envelope::method_not_allowed),
        );
    }
    let mut router = router
        .route("/checkout/{token}", get(checkout::page))
        .route("/checkout/{token}/pay", post(checkout::choose))
        .route("/checkout/{token}/wechat", get(checkout::in_wallet::page))
        .route("/h5Pay", get(link::h5_pay))
        .route("/wapPay", get(link::wap_pay))
        .route("/webPay", get(link::web_pay))
        .route("/inAppPay", post(link::in_app_pay))
        .route(
            "/checkout/{token}/return/{attempt}",
            get(checkout::browser_return).post(checkout::browser_return),
        )
        .route("/checkout/{token}/status/{attempt}", get(checkout::status))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/notify/{wallet}", post(notify::endpoint));
    router = dashboard::routes(router, &state);
    router = state.simulators.mount(router);
    if state.service.settings.sandbox {
        // They settle payments: run to the end even if the caller hangs up.
        let completing = Router::new()
            .route(
                "/sandbox/wallet/{attempt}",
                get(sandbox::wallet).post(sandbox::wallet_action),
            )
            .route(
                "/sandbox/card/{attempt}",
                get(sandbox::card).post(sandbox::card_submit),
            )
            .route("/sandbox/card/{attempt}/3ds", post(sandbox::card_challenge))
            .route(
                "/sandbox/v1/checkout/{token}/complete",
                post(sandbox::complete_checkout),
            )
            .route(
                "/sandbox/v1/payments/{payment}/complete",
                post(sandbox::complete_payment),
            )
            .route("/sandbox/v1/barcodes", post(sandbox::barcodes))
            .route("/sandbox/v1/check", post(check::check))
            .route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                to_completion,
            ));
        router = router.merge(completing);
    }
    router
        .merge(rest::router(&state))
        .fallback(unknown_path)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ops::track,
        ))
        .layer(DefaultBodyLimit::max(state.service.settings.max_body_bytes))
        // A request (its body included) that takes longer is cut off: 408.
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            state.service.settings.request_timeout,
        ))
        .with_state(state)
}

/// Runs the request to its end whatever happens to the connection (see
/// `Service::to_completion`): on every request that moves money or changes a payment, so
/// what it did and the answer a repeat gets are recorded even when the client is gone.
pub(crate) async fn to_completion(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    state.service.to_completion(next.run(req)).await
}

/// What answers a path nothing is served at: a REST error under `/api/`, an envelope
/// protocol error anywhere else (never plain text).
async fn unknown_path(uri: axum::http::Uri) -> axum::response::Response {
    if uri.path().starts_with("/api/") {
        axum::response::IntoResponse::into_response(rest::RestError::new(
            axum::http::StatusCode::NOT_FOUND,
            ottgate_api::rest::RestCode::Other,
            "no such API path",
        ))
    } else {
        envelope::unknown_path(uri).await
    }
}

/// A gateway ready to serve.
#[derive(Debug, Clone)]
pub struct Gateway {
    state: AppState,
}

impl Gateway {
    /// Opens the configured store and keyring and builds the gateway.
    pub async fn open(
        config: &Config,
        bound: SocketAddr,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartupError> {
        let keyring = open_keyring(config)?;
        let store = open_store(config).await?;
        Self::new(config, bound, store, keyring, clock)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn settings(&self) -> &Settings {
        &self.state.service.settings
    }

    pub fn router(&self) -> Router {
        app(self.state.clone())
    }

    pub async fn create_merchant(
        &self,
        new: NewMerchant,
    ) -> Result<CreatedMerchant, MerchantError> {
        merchants::create_merchant(
            &*self.state.service.store,
            &self.state.service.keyring,
            &*self.state.service.clock,
            new,
        )
        .await
    }

    pub async fn change_merchant_channels(
        &self,
        id: &str,
        change: merchants::ChannelChange,
    ) -> Result<ottgate_core::Merchant, MerchantError> {
        let merchant = merchants::change_channels(&*self.state.service.store, id, change).await?;
        self.state.service.signings.forget(&merchant.id);
        Ok(merchant)
    }

    /// One delivery-worker step: attempts every callback due now.
    pub async fn deliver_due(&self) -> Result<DeliveryReport, service::ServiceError> {
        workers::delivery::deliver_due(&self.state).await
    }

    /// One sweeper step: closes every order past its expiry.
    pub async fn sweep_expired(&self) -> Result<usize, StoreError> {
        workers::sweep_expired(&self.state).await
    }

    /// One reconciliation step: asks wallets about long-pending payments.
    pub async fn reconcile_due(&self) -> Result<usize, StoreError> {
        workers::reconcile_due(&self.state).await
    }

    /// Serves HTTP on `listener` (and, with `run_workers`, delivers callbacks and expires
    /// orders) until `shutdown` is cancelled; then stops accepting, finishes in-flight
    /// requests and callback attempts, and returns.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: CancellationToken,
        run_workers: bool,
    ) -> std::io::Result<()> {
        let workers = if run_workers {
            workers::spawn(&self.state, &shutdown)
        } else {
            Vec::new()
        };
        let settings = &self.state.service.settings;
        let max_connections = listen::connection_cap(settings.max_connections);
        let limits = listen::Limits {
            header_read_timeout: settings.header_read_timeout,
            write_timeout: settings.write_timeout,
            max_connections,
            max_connections_per_address: settings.max_connections_per_address.min(max_connections),
        };
        let served = listen::serve(listener, self.router(), limits, shutdown.clone()).await;
        shutdown.cancel();
        // Money-moving work whose client left before its answer: let it finish and record
        // what it did (each wallet call has its own timeout, so this ends).
        let tasks = &self.state.service.tasks;
        tasks.close();
        if !tasks.is_empty() {
            tracing::info!(
                running = tasks.len(),
                "waiting for payment work whose clients left"
            );
        }
        tasks.wait().await;
        for w in workers {
            let _ = w.await;
        }
        tracing::info!("gateway stopped");
        served
    }
}
