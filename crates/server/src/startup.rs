//! Start-up: the store, the keyring, and the shared state built from the configuration.
//!
//! Which channel serves each method: in live mode the wallets whose sections are
//! configured; in sandbox mode, for every other wallet, its built-in simulator (on the
//! gateway itself, with the public test keys: buyers reach it at the public URL, the
//! gateway at its own address); the sandbox wallet only for card checkout and unconfigured
//! methods, and only in sandbox mode. The wallets come from the registry
//! (docs/wallets.md): nothing here names one.

use ottgate_channels::simkit::Simulators;
use ottgate_channels::{Channels, SandboxOptions, SandboxUrls, WALLETS};
use ottgate_core::Clock;
use ottgate_store::copy::TableCopy;
use ottgate_store::{PgOptions, PgStore, SqliteStore, Store, StoreError};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::Gateway;
use crate::config::{self, Config, Settings};
use crate::keyring::{self, Keyring};
use crate::metrics::Metrics;
use crate::outbound::CallbackSender;
use crate::rest::token::TokenSigner;
use crate::service::Service;
use crate::signin::FailureLimiter;
use crate::state::{AppState, Inner};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("master key: {0}")]
    Keyring(#[from] keyring::KeyringError),
    #[error("{0}")]
    Other(String),
}

/// Opens the configured database: an SQLite file (created and migrated if needed), or
/// PostgreSQL (migrated under an advisory lock, so gateways may start together).
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StartupError> {
    if config.sqlite_path().is_some() {
        let max_batch = config.storage.sqlite_max_batch.clamp(1, 4096);
        return Ok(Arc::new(
            SqliteStore::open_with(&config.storage.database_url, max_batch).await?,
        ));
    }
    if config.is_postgres() {
        let options = PgOptions {
            pool_size: config.storage.db_pool_size.clamp(1, 1_000),
            connect_timeout: Duration::from_millis(config.storage.db_connect_timeout_ms.max(100)),
            statement_timeout: Duration::from_millis(
                config.storage.db_statement_timeout_ms.max(100),
            ),
            ca_file: config.storage.db_ca_file.clone(),
        };
        return Ok(Arc::new(
            PgStore::open(&config.storage.database_url, &options).await?,
        ));
    }
    Err(StartupError::Other(format!(
        "unsupported database_url {:?}: expected sqlite://path or postgres://…",
        config::masked_database_url(&config.storage.database_url)
    )))
}

/// `ottgate store copy`: a whole SQLite deployment into PostgreSQL (idempotent; see
/// `ottgate_store::copy`). The PostgreSQL gateways then need the SQLite deployment's master
/// key: the keys are copied still sealed under it.
pub async fn copy_store(
    from: &str,
    to: &str,
    options: &PgOptions,
) -> Result<Vec<TableCopy>, StartupError> {
    let mut source = Config::default();
    source.storage.database_url = from.to_owned();
    if source.sqlite_path().is_none() {
        return Err(StartupError::Other(
            "--from must be an SQLite database (sqlite://path)".into(),
        ));
    }
    let mut destination = Config::default();
    destination.storage.database_url = to.to_owned();
    if !destination.is_postgres() {
        return Err(StartupError::Other(
            "--to must be a PostgreSQL database (postgres://…)".into(),
        ));
    }
    let source = SqliteStore::open(from).await?;
    let destination = PgStore::open(to, options).await?;
    Ok(ottgate_store::copy::sqlite_to_postgres(&source, &destination).await?)
}

/// The master key: given (`master_key`), or read from `master_key_file`. With SQLite a
/// missing file is created (by default beside the database); with PostgreSQL, where every
/// gateway must hold the same key, it must be given — never made up by one of them.
pub fn open_keyring(config: &Config) -> Result<Keyring, StartupError> {
    if let Some(key) = &config.storage.master_key {
        return Ok(Keyring::from_hex(key.0.expose_secret())?);
    }
    match (config.master_key_path(), config.sqlite_path()) {
        (Some(path), Some(_)) => Ok(Keyring::load_or_create(&path)?),
        (Some(path), None) => Ok(Keyring::load(&path)?),
        (None, _) => Err(StartupError::Other(
            "with PostgreSQL the master key must be given, the same on every gateway: set \
             OTTGATE_MASTER_KEY (64 hex characters) or master_key_file"
                .into(),
        )),
    }
}

/// Every check `serve` makes of `config` before it opens the database: each section's
/// settings, each wallet section (its keys and certificates read), and the master key (a
/// file that exists must hold one; PostgreSQL needs one given). Changes nothing: a missing
/// SQLite key file is only reported, since `serve` would make it.
pub fn check_config(config: &Config) -> Result<Vec<String>, StartupError> {
    let settings = config.resolve(config.server.listen)?;
    channels(config, &settings)?;
    let mut notes = Vec::new();
    if let Some(key) = &config.storage.master_key {
        Keyring::from_hex(key.0.expose_secret())?;
        notes.push("master key: given (master_key)".to_owned());
    } else {
        match config.master_key_path() {
            Some(path) if path.exists() => {
                Keyring::load(&path)?;
                notes.push(format!("master key: {}", path.display()));
            }
            Some(path) if config.sqlite_path().is_some() => notes.push(format!(
                "master key: {} (made on first start)",
                path.display()
            )),
            Some(path) => {
                return Err(StartupError::Other(format!(
                    "(storage) master_key_file {} does not exist",
                    path.display()
                )));
            }
            None => {
                open_keyring(config)?;
            }
        }
    }
    let wallets = if settings.sandbox {
        "simulated (sandbox)".to_owned()
    } else {
        let w = &config.wallets;
        [
            ("alipay", w.alipay.is_some()),
            ("wechatpay", w.wechatpay.is_some()),
            ("unionpay", w.unionpay.is_some()),
        ]
        .iter()
        .filter(|(_, configured)| *configured)
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
    };
    notes.push(if wallets.is_empty() {
        "wallets: none configured (live mode: no wallet payment method can be used)".to_owned()
    } else {
        format!("wallets: {wallets}")
    });
    Ok(notes)
}

impl Gateway {
    /// Builds a gateway (everything it shares) from the configuration and its parts.
    /// `bound` is the address actually listened on (the default public URL derives from it).
    pub fn new(
        config: &Config,
        bound: SocketAddr,
        store: Arc<dyn Store>,
        keyring: Keyring,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartupError> {
        let settings = config.resolve(bound)?;
        let (channels, simulators) = channels(config, &settings)?;
        let callbacks =
            CallbackSender::new(settings.callback_timeout, settings.allow_private_callbacks)
                .map_err(|e| StartupError::Other(format!("HTTP client: {e}")))?;
        let worker_id = format!("{}-{:08x}", std::process::id(), rand::random::<u32>());
        let tokens = match &config.sign_in.jwt_secret {
            Some(secret) => TokenSigner::new(secret.0.expose_secret().as_bytes()),
            None => TokenSigner::new(&keyring.derive("ottgate rest jwt v1")),
        };
        let auth_failures = FailureLimiter::new(
            settings.auth_failure_limit,
            settings.auth_failure_app_limit,
            settings.auth_failure_window,
        );
        // The merchant center's passwords: the same limits, their own counters.
        let dashboard_failures = FailureLimiter::new(
            settings.auth_failure_limit,
            settings.auth_failure_app_limit,
            settings.auth_failure_window,
        )
        .scoped("dashboard:");
        // An address or account holds at most twice the running hashes' places, or as many
        // as it may fail (the failure limit turns it away sooner anyway).
        let share = (settings.auth_hash_concurrency * 2)
            .max(usize::try_from(settings.auth_failure_limit).unwrap_or(usize::MAX));
        let auth_hashing = crate::signin::HashQueue::new(settings.auth_hash_concurrency, share);
        let state = AppState::new(Inner {
            service: Service {
                settings,
                store,
                keyring,
                clock,
                channels,
                metrics: Metrics::new(),
                delivery_wakeup: tokio::sync::Notify::new(),
                rates: Default::default(),
                signings: Default::default(),
                tasks: tokio_util::task::TaskTracker::new(),
            },
            callbacks,
            worker_id,
            tokens,
            auth_failures,
            dashboard_failures,
            auth_hashing,
            simulators,
            calls: Default::default(),
            check_runs: Default::default(),
            check_faults: Default::default(),
        });
        Ok(Self { state })
    }
}

fn channel_error(e: ottgate_channels::ChannelError) -> StartupError {
    StartupError::Other(e.to_string())
}

fn channels(config: &Config, settings: &Settings) -> Result<(Channels, Simulators), StartupError> {
    let public = &settings.public_url;
    let urls = SandboxUrls {
        public: public.clone(),
        internal: settings.internal_url.clone(),
    };
    let options = SandboxOptions {
        time_scale: config.sandbox.simulator_time_scale,
        exchange_rates: settings.simulator_exchange_rates.clone(),
        standalone: false,
    };
    let mut simulators = Simulators::default();
    let mut channels = if settings.sandbox {
        Channels::sandbox(public)
    } else {
        Channels::none()
    };
    for wallet in WALLETS {
        if let Some(live) = (wallet.live)(&config.wallets, public) {
            channels = channels.with(wallet.method, live.map_err(channel_error)?);
        } else if settings.sandbox {
            let sandboxed = (wallet.sandbox)(&urls, &options).map_err(channel_error)?;
            channels = channels.with(wallet.method, sandboxed.channel);
            simulators.add(sandboxed.simulator);
        }
    }
    Ok((channels, simulators))
}
