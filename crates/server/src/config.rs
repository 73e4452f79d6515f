//! Configuration: defaults, then an optional TOML file, then `OTTGATE_*` environment
//! variables, then command-line flags. [`Config`] is what is read — one section per concern
//! ([`ServerConfig`], [`StorageConfig`], [`CallbackConfig`], [`PaymentConfig`],
//! [`SignInConfig`], [`SandboxConfig`], and each wallet's `[section]`), each validating
//! itself and naming itself in its errors; [`Settings`] is the validated form the gateway
//! runs with. The sections' keys stay top-level in the file and the environment (they are
//! flattened), as they always were: only the wallets have `[sections]` of their own.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use ottgate_channels::{WALLETS, WalletSections, with_trailing_slash};
use ottgate_core::{PaymentMethod, RetrySchedule};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use url::Url;

pub use ottgate_channels::MaskedString;

/// Every setting, as read: one section per concern. The environment variable of each key
/// is `OTTGATE_` followed by the upper-cased key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    #[serde(flatten)]
    pub server: ServerConfig,
    #[serde(flatten)]
    pub storage: StorageConfig,
    #[serde(flatten)]
    pub callbacks: CallbackConfig,
    #[serde(flatten)]
    pub payments: PaymentConfig,
    #[serde(flatten)]
    pub sign_in: SignInConfig,
    #[serde(flatten)]
    pub sandbox: SandboxConfig,
    /// Live wallet credentials, one section per wallet (`[alipay]`, `[wechatpay]`,
    /// `[unionpay]`). A wallet without one is, in sandbox mode, its built-in simulator.
    #[serde(flatten)]
    pub wallets: WalletSections,
}

/// Listening and the limits on every connection and request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Base URL buyers' browsers and wallets reach the gateway at; `http://{listen}` if unset.
    pub public_url: Option<String>,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// A connection must send its request headers within this many milliseconds (also how
    /// long an idle keep-alive connection is kept).
    pub header_read_timeout_ms: u64,
    /// A request not answered within this many milliseconds (its body included) is cut
    /// off with 408.
    pub request_timeout_ms: u64,
    /// Connections open at once, at most (fewer if the descriptor limit demands).
    pub max_connections: usize,
    /// Connections open at once from one client address, at most (behind a proxy every
    /// client shares its address: raise it to `max_connections` there).
    pub max_connections_per_address: usize,
    /// A client that takes none of an answer's bytes for this many milliseconds (it
    /// stopped reading) loses its connection.
    pub write_timeout_ms: u64,
    /// `human` or `json`.
    pub log_format: LogFormat,
}

/// Where everything is kept, and the key that seals merchants' keys in it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct StorageConfig {
    /// `sqlite://path` (embedded default) or `postgres://user:password@host:port/db` —
    /// several hosts (`host1:5432,host2:5432`) with `?target_session_attrs=read-write` follow
    /// a failover to the promoted standby.
    pub database_url: String,
    /// SQLite: writes that share one commit at most (group commit); `1` commits every write
    /// on its own, the comparison `ottgate bench --one-commit-per-request` runs.
    pub sqlite_max_batch: usize,
    /// PostgreSQL: connections this gateway keeps at most.
    pub db_pool_size: usize,
    /// PostgreSQL: how long to wait for a connection (per host) or a free pooled one, in
    /// milliseconds.
    pub db_connect_timeout_ms: u64,
    /// PostgreSQL: the longest a statement may run, in milliseconds.
    pub db_statement_timeout_ms: u64,
    /// PostgreSQL: PEM certificates to trust for TLS to the database (then every connection
    /// is TLS, verified; add `sslmode=require` to the URL to refuse a server without it).
    pub db_ca_file: Option<PathBuf>,
    /// 64 hex characters (32 bytes) that encrypt merchant sign keys at rest. If unset, a
    /// `0600` key file is used (created on first start).
    pub master_key: Option<MaskedString>,
    /// Where the master key file lives; default: beside the SQLite database, `<db>.key`.
    pub master_key_file: Option<PathBuf>,
}

/// The callbacks owed to merchants: how they are sent, retried, leased and kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct CallbackConfig {
    /// Gaps between callback attempts, e.g. `15s,1m,5m`.
    pub callback_retry_schedule: String,
    /// A callback not answered within this many milliseconds is a failed attempt.
    pub callback_timeout_ms: u64,
    /// Callbacks sent at once by one process.
    pub callback_concurrency: u32,
    /// How long a gateway holds the callback deliveries it claimed before another gateway
    /// may take them over (a gateway that died mid-delivery loses them after this), in
    /// seconds.
    pub delivery_lease_secs: u64,
    /// Longest wait between looks for due callbacks, in milliseconds.
    pub delivery_poll_interval_ms: u64,
    /// Allow callbacks to private, loopback and link-local addresses; default: `sandbox`.
    pub allow_private_callbacks: Option<bool>,
    /// How long a finished callback (delivered or exhausted) stays in the merchant's event
    /// log, in days (at least 30).
    pub event_retention_days: u64,
}

/// Payments: how long they wait, when they are closed or asked about, how repeats are told.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct PaymentConfig {
    /// How long a REST, ACTIVEPAY or H5PAY payment may wait for the buyer, in seconds.
    pub rest_payment_ttl_secs: u64,
    /// How often expired orders are closed, in milliseconds.
    pub expiry_sweep_interval_ms: u64,
    /// A pending wallet payment is first asked about (reconciliation) this many seconds
    /// after it started, and again at most this often.
    pub reconcile_after_secs: u64,
    /// How long the first answer to an idempotent request (REST `Idempotency-Key`, an
    /// envelope REFUND without a refund id) is replayed, in seconds.
    pub idempotency_retention_secs: u64,
    /// How long an idempotent request's key is held for it while it runs, in seconds: a
    /// repeat meanwhile is told to wait (409, PROCESSING); a request whose gateway died
    /// frees its key after this (its refund, if one was begun, is then found, not redone).
    pub idempotency_lease_secs: u64,
    /// The `time_zone_id` H5PAY answers with: the merchants' zone (IANA name).
    pub time_zone_id: String,
    /// How long after its authorisation a REST local-card payment is captured (until then
    /// `local-card/reverse` voids it), in seconds.
    pub card_capture_delay_secs: u64,
    /// How long a card authorisation holds (a `CC_PREAUTH` the merchant never captures
    /// lapses after it), in seconds.
    pub card_authorisation_hold_secs: u64,
    /// How long PASSIVEPAY waits for an undecided wallet before answering `PROCESSING`
    /// (the gateway goes on asking, then undoes the payment), in milliseconds.
    pub passive_pay_wait_ms: u64,
    /// When each wallet publishes the statement of the day before, Beijing time
    /// (`alipay=10:00,unionpay=10:00,wechatpay=10:00`): from then on the gateway reconciles that day by itself, asking
    /// again while it is not ready. A wallet not listed is reconciled only by
    /// `ottgate recon run`; `off` (or empty) turns the schedule off.
    pub statements_ready_at: String,
    /// How often the schedule looks for a statement due, in seconds.
    pub statements_check_interval_secs: u64,
    /// The fee on each payment for merchants without their own rate (`ottgate merchant
    /// fees`): `2.2%` for every method, or per method (`ALIPAY=2.2%,WECHATPAY=2%+10`;
    /// `+N` adds N minor units per payment). Methods not named take 0.
    pub default_fees: String,
}

/// Signing in: REST bearer tokens, and the limits on wrong keys and passwords.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SignInConfig {
    /// Secret (at least 32 characters) that signs REST bearer tokens; default: derived
    /// from the master key. Changing it invalidates every token issued.
    pub jwt_secret: Option<MaskedString>,
    /// Failed token requests allowed per client address, and per appId from one address,
    /// within the window.
    pub auth_failure_limit: u32,
    /// Failed token requests allowed per appId from all addresses within the window (an
    /// address that signed in to it within a day is exempt, so strangers cannot lock the
    /// merchant out).
    pub auth_failure_app_limit: u32,
    /// App keys hashed at once (argon2id takes ~19 MiB each); more requests wait.
    pub auth_hash_concurrency: u32,
    /// The window for `auth_failure_limit`, in seconds.
    pub auth_failure_window_secs: u64,
}

/// Sandbox mode and its simulated wallets.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SandboxConfig {
    /// Sandbox mode: the built-in test wallet serves every method, the sandbox helper API
    /// is mounted, and callbacks may go to loopback/private addresses.
    #[serde(rename = "sandbox")]
    pub enabled: bool,
    /// Sandbox only: the simulated WeChat Pay's exchange rates, CNY per unit, e.g.
    /// `CAD=5.10,USD=7.1`; they replace or add to its built-in table.
    pub simulator_exchange_rates: Option<String>,
    /// How much faster than real time the built-in wallet simulators re-send
    /// notifications (sandbox mode).
    pub simulator_time_scale: f64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            max_body_bytes: 64 * 1024,
            header_read_timeout_ms: 10_000,
            request_timeout_ms: 60_000,
            max_connections: 10_000,
            max_connections_per_address: 1_000,
            write_timeout_ms: 30_000,
            log_format: LogFormat::Human,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            database_url: "sqlite://ottgate.db".into(),
            sqlite_max_batch: ottgate_store::SQLITE_MAX_BATCH,
            db_pool_size: 16,
            db_connect_timeout_ms: 5_000,
            db_statement_timeout_ms: 10_000,
            db_ca_file: None,
            master_key: None,
            master_key_file: None,
        }
    }
}

impl Default for CallbackConfig {
    fn default() -> Self {
        Self {
            callback_retry_schedule: RetrySchedule::default().to_string(),
            callback_timeout_ms: 10_000,
            callback_concurrency: 64,
            delivery_lease_secs: 60,
            delivery_poll_interval_ms: 1_000,
            allow_private_callbacks: None,
            event_retention_days: 90,
        }
    }
}

impl Default for PaymentConfig {
    fn default() -> Self {
        Self {
            rest_payment_ttl_secs: 1_800,
            expiry_sweep_interval_ms: 1_000,
            reconcile_after_secs: 60,
            idempotency_retention_secs: 86_400,
            idempotency_lease_secs: 120,
            time_zone_id: "America/Toronto".into(),
            card_capture_delay_secs: 3_600,
            card_authorisation_hold_secs: 7 * 86_400,
            passive_pay_wait_ms: 30_000,
            statements_ready_at: "alipay=10:00,unionpay=10:00,wechatpay=10:00".into(),
            statements_check_interval_secs: 300,
            default_fees: "2.2%".into(),
        }
    }
}

impl Default for SignInConfig {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            auth_failure_limit: 10,
            auth_failure_app_limit: 100,
            auth_hash_concurrency: 4,
            auth_failure_window_secs: 300,
        }
    }
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            simulator_exchange_rates: None,
            simulator_time_scale: 1.0,
        }
    }
}

/// The top-level keys, section by section (the file's keys and the environment's).
const SECTION_KEYS: [(&str, &[&str]); 6] = [
    (
        "server",
        &[
            "listen",
            "public_url",
            "max_body_bytes",
            "header_read_timeout_ms",
            "request_timeout_ms",
            "max_connections",
            "max_connections_per_address",
            "write_timeout_ms",
            "log_format",
        ],
    ),
    (
        "storage",
        &[
            "database_url",
            "sqlite_max_batch",
            "db_pool_size",
            "db_connect_timeout_ms",
            "db_statement_timeout_ms",
            "db_ca_file",
            "master_key",
            "master_key_file",
        ],
    ),
    (
        "callbacks",
        &[
            "callback_retry_schedule",
            "callback_timeout_ms",
            "callback_concurrency",
            "delivery_lease_secs",
            "delivery_poll_interval_ms",
            "allow_private_callbacks",
            "event_retention_days",
        ],
    ),
    (
        "payments",
        &[
            "rest_payment_ttl_secs",
            "expiry_sweep_interval_ms",
            "reconcile_after_secs",
            "idempotency_retention_secs",
            "idempotency_lease_secs",
            "time_zone_id",
            "card_capture_delay_secs",
            "card_authorisation_hold_secs",
            "passive_pay_wait_ms",
            "statements_ready_at",
            "statements_check_interval_secs",
            "default_fees",
        ],
    ),
    (
        "sign-in",
        &[
            "jwt_secret",
            "auth_failure_limit",
            "auth_failure_app_limit",
            "auth_hash_concurrency",
            "auth_failure_window_secs",
        ],
    ),
    (
        "sandbox",
        &[
            "sandbox",
            "simulator_exchange_rates",
            "simulator_time_scale",
        ],
    ),
];

fn is_key(key: &str) -> bool {
    SECTION_KEYS.iter().any(|(_, keys)| keys.contains(&key))
}

/// The setting an `OTTGATE_*` variable names, when that setting is text: every key of a
/// wallet section but its switches, and the top-level keys whose value is text.
fn text_key(variable: &str) -> Option<String> {
    const NOT_TEXT: [&str; 1] = ["notify_verify"];
    const TEXT: [&str; 9] = [
        "public_url",
        "database_url",
        "master_key",
        "jwt_secret",
        "time_zone_id",
        "callback_retry_schedule",
        "simulator_exchange_rates",
        "statements_ready_at",
        "default_fees",
    ];
    let name = variable.strip_prefix("OTTGATE_")?.to_ascii_lowercase();
    match name.split_once("__") {
        Some((wallet, key)) => (WALLETS.iter().any(|w| w.name == wallet)
            && !key.is_empty()
            && !NOT_TEXT.contains(&key))
        .then(|| format!("{wallet}.{key}")),
        None => (TEXT.contains(&name.as_str()) && is_key(&name)).then_some(name),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("configuration: {0}")]
    Invalid(String),
    /// A section's setting is out of bounds; the message names the key.
    #[error("configuration ({section}): {message}")]
    Section {
        section: &'static str,
        message: String,
    },
}

/// An error of `section`.
fn refuse(section: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Section {
        section,
        message: message.into(),
    }
}

impl ServerConfig {
    fn check(&self) -> Result<(), ConfigError> {
        let refused = |m: &str| Err(refuse("server", m));
        if self.max_body_bytes < 1024 {
            return refused("max_body_bytes must be at least 1024");
        }
        if let Some(u) = &self.public_url {
            let url =
                Url::parse(u).map_err(|e| refuse("server", format!("public_url {u:?}: {e}")))?;
            if !matches!(url.scheme(), "http" | "https") {
                return refused("public_url must be http or https");
            }
        }
        Ok(())
    }

    /// The public URL: as set, or the address actually bound; always ending with `/`.
    fn public_url(&self, bound: SocketAddr) -> Result<Url, ConfigError> {
        let url = match &self.public_url {
            Some(u) => {
                Url::parse(u).map_err(|e| refuse("server", format!("public_url {u:?}: {e}")))?
            }
            None => Url::parse(&format!("http://{bound}/"))
                .map_err(|e| refuse("server", format!("public_url: {e}")))?,
        };
        Ok(with_trailing_slash(url))
    }
}

impl CallbackConfig {
    fn check(&self) -> Result<RetrySchedule, ConfigError> {
        let schedule = RetrySchedule::parse(&self.callback_retry_schedule)
            .map_err(|e| refuse("callbacks", format!("callback_retry_schedule: {e}")))?;
        let lease_ms = self
            .delivery_lease_secs
            .clamp(5, 86_400)
            .saturating_mul(1_000);
        if self.callback_timeout_ms >= lease_ms {
            return Err(refuse(
                "callbacks",
                format!(
                    "callback_timeout_ms ({}) must be shorter than delivery_lease_secs ({} s): a \
                     callback still in flight when its lease ends would be sent again by another \
                     gateway",
                    self.callback_timeout_ms,
                    lease_ms / 1_000
                ),
            ));
        }
        if self.callback_concurrency == 0 {
            return Err(refuse(
                "callbacks",
                "callback_concurrency must be at least 1",
            ));
        }
        Ok(schedule)
    }
}

impl PaymentConfig {
    /// `statements_ready_at` read: each wallet, and the minutes after Beijing midnight its
    /// statement of the day before is ready.
    fn statements_ready_at(&self) -> Result<Vec<(String, u32)>, ConfigError> {
        let table = self.statements_ready_at.trim();
        if table.is_empty() || table.eq_ignore_ascii_case("off") {
            return Ok(Vec::new());
        }
        let bad = |entry: &str| {
            refuse(
                "payments",
                format!(
                    "statements_ready_at: {entry:?} is not wallet=HH:MM (e.g. wechatpay=10:00)"
                ),
            )
        };
        table
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|entry| {
                let (wallet, time) = entry.split_once('=').ok_or_else(|| bad(entry))?;
                let wallet = wallet.trim().to_ascii_lowercase();
                if !WALLETS.iter().any(|w| w.name == wallet) {
                    let names: Vec<_> = WALLETS.iter().map(|w| w.name).collect();
                    return Err(refuse(
                        "payments",
                        format!(
                            "statements_ready_at: no wallet {wallet:?} (these are: {})",
                            names.join(", ")
                        ),
                    ));
                }
                let (h, m) = time.trim().split_once(':').ok_or_else(|| bad(entry))?;
                let (h, m) = (
                    h.parse::<u32>().map_err(|_| bad(entry))?,
                    m.parse::<u32>().map_err(|_| bad(entry))?,
                );
                if h > 23 || m > 59 {
                    return Err(bad(entry));
                }
                Ok((wallet, h * 60 + m))
            })
            .collect()
    }

    /// `default_fees` read: `(None, rate)` for every method, or `(Some(method), rate)`.
    fn default_fees(
        &self,
    ) -> Result<Vec<(Option<PaymentMethod>, ottgate_core::settlement::FeeRate)>, ConfigError> {
        use ottgate_core::settlement::FeeRate;
        let bad = |entry: &str| {
            refuse(
                "payments",
                format!(
                    "default_fees: {entry:?} is not a rate (2.2%, 2.2%+30) or METHOD=rate \
                     (ALIPAY=2.2%)"
                ),
            )
        };
        self.default_fees
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|entry| match entry.split_once('=') {
                Some((method, rate)) => Ok((
                    Some(method.trim().parse().map_err(|_| bad(entry))?),
                    FeeRate::parse(rate).ok_or_else(|| bad(entry))?,
                )),
                None => Ok((None, FeeRate::parse(entry).ok_or_else(|| bad(entry))?)),
            })
            .collect()
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.rest_payment_ttl_secs == 0 || self.rest_payment_ttl_secs > 30 * 24 * 3600 {
            return Err(refuse(
                "payments",
                "rest_payment_ttl_secs must be from 1 to 2592000",
            ));
        }
        let time_zone_ok = !self.time_zone_id.is_empty()
            && self.time_zone_id.len() <= 64
            && self
                .time_zone_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/_+-".contains(&b));
        if !time_zone_ok {
            return Err(refuse(
                "payments",
                "time_zone_id must be an IANA zone name such as America/Toronto",
            ));
        }
        Ok(())
    }
}

impl SignInConfig {
    fn check(&self) -> Result<(), ConfigError> {
        if self
            .jwt_secret
            .as_ref()
            .is_some_and(|s| s.0.expose_secret().len() < 32)
        {
            return Err(refuse(
                "sign-in",
                "jwt_secret must be at least 32 characters",
            ));
        }
        Ok(())
    }
}

impl SandboxConfig {
    fn check(&self) -> Result<Vec<(String, u64)>, ConfigError> {
        if !(self.simulator_time_scale.is_finite() && self.simulator_time_scale > 0.0) {
            return Err(refuse(
                "sandbox",
                "simulator_time_scale must be a positive number",
            ));
        }
        match &self.simulator_exchange_rates {
            Some(table) => parse_exchange_rates(table).map_err(|m| refuse("sandbox", m)),
            None => Ok(Vec::new()),
        }
    }
}

impl Config {
    /// Defaults, then the TOML file (if given), then `OTTGATE_*` variables, then
    /// `overrides` (command-line flags; `None` fields are skipped).
    pub fn load(file: Option<&Path>, overrides: impl Serialize) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::Invalid(format!(
                    "config file {} does not exist",
                    file.display()
                )));
            }
            if file.is_dir() {
                return Err(ConfigError::Invalid(format!(
                    "config file {} is a directory: give the TOML file itself",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file(file));
        }
        figment = figment
            .merge(
                Env::prefixed("OTTGATE_").filter(|key| is_key(&key.as_str().to_ascii_lowercase())),
            )
            // Wallet sections, e.g. OTTGATE_ALIPAY__MD5_KEY or OTTGATE_WECHATPAY__API_KEY,
            // so their secrets need not sit in the file.
            .merge(Env::prefixed("OTTGATE_").split("__").filter(|key| {
                let key = key.as_str().to_ascii_lowercase();
                WALLETS.iter().any(|wallet| {
                    key.strip_prefix(wallet.name)
                        .is_some_and(|rest| rest.starts_with('.'))
                })
            }));
        // A value that looks like a number (`OTTGATE_WECHATPAY__MCH_ID=1900000109`) is still
        // the text it was written as, wherever the setting is text: figment's Env would make
        // it a number (and `0012` twelve).
        for (name, value) in std::env::vars() {
            if let Some(key) = text_key(&name) {
                figment = figment.merge(Serialized::default(&key, value));
            }
        }
        figment = figment.merge(Serialized::defaults(overrides));
        // The sections are flattened in, which serde cannot combine with refusing unknown
        // keys: a misspelt key must not be silently ignored, so look here.
        let keys: std::collections::BTreeMap<String, serde::de::IgnoredAny> = figment
            .extract()
            .map_err(|e| ConfigError::Load(Box::new(e)))?;
        if let Some(unknown) = keys
            .keys()
            .find(|key| !is_key(key) && !WALLETS.iter().any(|w| w.name == key.as_str()))
        {
            return Err(ConfigError::Invalid(format!("unknown key `{unknown}`")));
        }
        figment
            .extract()
            .map_err(|e| ConfigError::Load(Box::new(e)))
    }

    /// Where the master key is kept when it is not given itself: `master_key_file`, or for
    /// SQLite a file beside the database (`ottgate.db.key`). `None` with PostgreSQL and no
    /// file named (then `master_key` must be given).
    pub fn master_key_path(&self) -> Option<PathBuf> {
        if self.storage.master_key.is_some() {
            return None;
        }
        self.storage.master_key_file.clone().or_else(|| {
            self.sqlite_path().map(|db| {
                let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
                name.push(".key");
                db.with_file_name(name)
            })
        })
    }

    /// The configuration with every default that follows from another setting written
    /// out (`public_url`, `allow_private_callbacks`, the master key's file), after every
    /// check `serve` makes of it.
    pub fn effective(&self) -> Result<Config, ConfigError> {
        let settings = self.resolve(self.server.listen)?;
        let mut c = self.clone();
        c.server.public_url = Some(settings.public_url.to_string());
        c.callbacks.allow_private_callbacks = Some(settings.allow_private_callbacks);
        c.storage.master_key_file = self.master_key_path();
        Ok(c)
    }

    /// The effective configuration as TOML, secrets masked.
    pub fn to_masked_toml(&self) -> String {
        // Secrets serialize as "***" (MaskedString); unset options are left out.
        let mut masked = self.clone();
        masked.storage.database_url = masked_database_url(&self.storage.database_url);
        toml::to_string(&masked)
            .unwrap_or_else(|e| format!("# configuration could not be printed: {e}\n"))
    }

    /// Whether the database is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        let url = &self.storage.database_url;
        url.starts_with("postgres://") || url.starts_with("postgresql://")
    }

    /// The SQLite file, if the database is SQLite.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let url = &self.storage.database_url;
        let rest = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))?;
        let path = rest.split('?').next().unwrap_or(rest);
        (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
    }

    /// Validates every section and fixes the public URL against the address actually bound.
    pub fn resolve(&self, bound: SocketAddr) -> Result<Settings, ConfigError> {
        let (server, callbacks, payments, sign_in, sandbox) = (
            &self.server,
            &self.callbacks,
            &self.payments,
            &self.sign_in,
            &self.sandbox,
        );
        server.check()?;
        let schedule = callbacks.check()?;
        payments.check()?;
        let statements_ready_at = payments.statements_ready_at()?;
        let default_fees = payments.default_fees()?;
        sign_in.check()?;
        let exchange_rates = sandbox.check()?;
        Ok(Settings {
            public_url: server.public_url(bound)?,
            internal_url: internal_url(bound)?,
            idempotency_retention: Duration::from_secs(
                payments.idempotency_retention_secs.clamp(60, 30 * 86_400),
            ),
            idempotency_lease: Duration::from_secs(payments.idempotency_lease_secs.clamp(1, 3_600)),
            time_zone_id: payments.time_zone_id.clone(),
            simulator_exchange_rates: exchange_rates,
            sandbox: sandbox.enabled,
            allow_private_callbacks: callbacks.allow_private_callbacks.unwrap_or(sandbox.enabled),
            retry_schedule: schedule,
            callback_timeout: Duration::from_millis(callbacks.callback_timeout_ms.max(1)),
            callback_concurrency: callbacks.callback_concurrency,
            max_body_bytes: server.max_body_bytes,
            header_read_timeout: Duration::from_millis(
                server.header_read_timeout_ms.clamp(100, 600_000),
            ),
            request_timeout: Duration::from_millis(
                server.request_timeout_ms.clamp(1_000, 3_600_000),
            ),
            max_connections: server.max_connections.max(1),
            max_connections_per_address: server
                .max_connections_per_address
                .clamp(1, server.max_connections.max(1)),
            write_timeout: Duration::from_millis(server.write_timeout_ms.clamp(100, 3_600_000)),
            expiry_sweep_interval: Duration::from_millis(payments.expiry_sweep_interval_ms.max(10)),
            delivery_poll_interval: Duration::from_millis(
                callbacks.delivery_poll_interval_ms.max(10),
            ),
            rest_payment_ttl: Duration::from_secs(payments.rest_payment_ttl_secs),
            auth_failure_limit: sign_in.auth_failure_limit.max(1),
            auth_failure_app_limit: sign_in
                .auth_failure_app_limit
                .max(sign_in.auth_failure_limit)
                .max(1),
            auth_hash_concurrency: usize::try_from(sign_in.auth_hash_concurrency.clamp(1, 64))
                .unwrap_or(1),
            auth_failure_window: Duration::from_secs(sign_in.auth_failure_window_secs.max(1)),
            reconcile_after: Duration::from_secs(payments.reconcile_after_secs.max(1)),
            card_authorisation_hold: Duration::from_secs(
                payments.card_authorisation_hold_secs.clamp(60, 30 * 86_400),
            ),
            card_capture_delay: Duration::from_secs(payments.card_capture_delay_secs).min(
                Duration::from_secs(payments.card_authorisation_hold_secs.clamp(60, 30 * 86_400)),
            ),
            passive_pay_wait: Duration::from_millis(payments.passive_pay_wait_ms.min(120_000)),
            statements_ready_at,
            default_fees,
            statements_check_interval: Duration::from_secs(
                payments.statements_check_interval_secs.clamp(1, 86_400),
            ),
            delivery_lease: Duration::from_secs(callbacks.delivery_lease_secs.clamp(5, 86_400)),
            event_retention: Duration::from_secs(
                callbacks.event_retention_days.clamp(30, 36_500) * 86_400,
            ),
        })
    }
}

/// `url` with any password replaced by `***`, fit for logs and `config print`.
pub fn masked_database_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // The user information ends at the last `@` before the path.
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{}", &rest[at + 1..]),
            // A user without a password has nothing to hide.
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Where this process reaches itself: the bound address, with a wildcard address replaced
/// by loopback (the sandbox's server-to-server calls to its own simulators go here, never
/// through the public URL).
fn internal_url(bound: SocketAddr) -> Result<Url, ConfigError> {
    let ip = match bound.ip() {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => {
            std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
        }
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => {
            std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
        }
        ip => ip,
    };
    Url::parse(&format!("http://{}/", SocketAddr::new(ip, bound.port())))
        .map_err(|e| ConfigError::Invalid(format!("listen address: {e}")))
}

/// `CAD=5.10,USD=7.1`: currency codes and CNY per unit, as `(code, rate × 10^8)`.
fn parse_exchange_rates(table: &str) -> Result<Vec<(String, u64)>, String> {
    let bad = |entry: &str| {
        format!("simulator_exchange_rates: {entry:?} is not CODE=rate (e.g. CAD=5.10)")
    };
    table
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| {
            let (code, rate) = entry.split_once('=').ok_or_else(|| bad(entry))?;
            let code = code.trim().to_ascii_uppercase();
            if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(bad(entry));
            }
            Ok((code, rate_times_1e8(rate.trim()).ok_or_else(|| bad(entry))?))
        })
        .collect()
}

/// `5.1` → 510000000: a positive decimal with at most 8 places, times 10^8, exactly.
fn rate_times_1e8(rate: &str) -> Option<u64> {
    let (whole, fraction) = rate.split_once('.').unwrap_or((rate, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || fraction.len() > 8 {
        return None;
    }
    let scaled = whole
        .parse::<u64>()
        .ok()?
        .checked_mul(100_000_000)?
        .checked_add(format!("{fraction:0<8}").parse::<u64>().ok()?)?;
    (scaled > 0).then_some(scaled)
}

/// The validated settings the gateway runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Always ends with `/`.
    pub public_url: Url,
    /// How this process reaches itself (`http://{bound address}/`).
    pub internal_url: Url,
    pub idempotency_retention: Duration,
    pub idempotency_lease: Duration,
    pub time_zone_id: String,
    /// Sandbox: `(currency, CNY per unit × 10^8)` replacing or adding to the simulated
    /// WeChat Pay's table.
    pub simulator_exchange_rates: Vec<(String, u64)>,
    pub sandbox: bool,
    pub allow_private_callbacks: bool,
    pub retry_schedule: RetrySchedule,
    pub callback_timeout: Duration,
    pub callback_concurrency: u32,
    pub max_body_bytes: usize,
    pub header_read_timeout: Duration,
    pub request_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    pub write_timeout: Duration,
    pub expiry_sweep_interval: Duration,
    pub delivery_poll_interval: Duration,
    pub rest_payment_ttl: Duration,
    pub auth_failure_limit: u32,
    pub auth_failure_app_limit: u32,
    /// How long claimed callback deliveries stay with this gateway.
    pub delivery_lease: Duration,
    /// How long finished callbacks stay in the event log.
    pub event_retention: Duration,
    pub auth_hash_concurrency: usize,
    pub auth_failure_window: Duration,
    pub reconcile_after: Duration,
    /// Each wallet whose statements are reconciled by schedule, and the minutes after
    /// Beijing midnight its statement of the day before is ready.
    pub statements_ready_at: Vec<(String, u32)>,
    pub statements_check_interval: Duration,
    /// `default_fees`: for every method (`None`) or one.
    pub default_fees: Vec<(Option<PaymentMethod>, ottgate_core::settlement::FeeRate)>,
    /// When a REST local-card authorisation is captured, after it was given.
    pub card_capture_delay: Duration,
    /// How long a card authorisation holds before it lapses.
    pub card_authorisation_hold: Duration,
    /// How long PASSIVEPAY waits for an undecided wallet before answering PROCESSING.
    pub passive_pay_wait: Duration,
}

impl Settings {
    /// The fee rate on a payment by `method` for a merchant without its own: the method's
    /// entry in `default_fees`, else the rate for every method, else nothing.
    pub fn default_fee(&self, method: PaymentMethod) -> ottgate_core::settlement::FeeRate {
        let of = |wanted: Option<PaymentMethod>| {
            self.default_fees
                .iter()
                .find(|(m, _)| *m == wanted)
                .map(|(_, rate)| *rate)
        };
        of(Some(method)).or_else(|| of(None)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ottgate_core::Secret;

    #[derive(Serialize)]
    struct NoOverrides {}

    #[test]
    fn defaults_match_the_documented_ones() {
        let c = Config::default();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.storage.database_url, "sqlite://ottgate.db");
        assert!(c.sandbox.enabled);
        let s = c.resolve(c.server.listen).unwrap();
        assert_eq!(s.public_url.as_str(), "http://127.0.0.1:8080/");
        assert!(s.allow_private_callbacks);
        assert_eq!(s.retry_schedule, RetrySchedule::default());
        assert_eq!(c.sqlite_path(), Some(PathBuf::from("ottgate.db")));
    }

    #[test]
    fn the_master_key_is_masked_when_printed() {
        let mut c = Config::default();
        c.storage.master_key = Some(MaskedString(Secret::new("ab".repeat(32))));
        let printed = c.to_masked_toml();
        assert!(printed.contains("master_key = \"***\""), "{printed}");
        assert!(!printed.contains("abab"));
    }

    #[test]
    fn a_database_password_is_masked_when_printed() {
        for (url, shown) in [
            (
                "postgres://ottgate:s3cr%40t@db1:5432,db2:5432/pay?target_session_attrs=read-write",
                "postgres://ottgate:***@db1:5432,db2:5432/pay?target_session_attrs=read-write",
            ),
            ("postgres://ottgate@db/pay", "postgres://ottgate@db/pay"),
            ("postgresql://db/pay", "postgresql://db/pay"),
            ("sqlite://ottgate.db", "sqlite://ottgate.db"),
        ] {
            assert_eq!(masked_database_url(url), shown);
        }
        let mut c = Config::default();
        c.storage.database_url = "postgres://u:hunter2@db/pay".into();
        assert!(!c.to_masked_toml().contains("hunter2"));
    }

    #[test]
    fn a_toml_file_is_read_and_unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.toml");
        std::fs::write(
            &good,
            "sandbox = false\npublic_url = \"https://pay.example/base\"\n",
        )
        .unwrap();
        let c = Config::load(Some(&good), NoOverrides {}).unwrap();
        assert!(!c.sandbox.enabled);
        let s = c.resolve(c.server.listen).unwrap();
        assert_eq!(s.public_url.as_str(), "https://pay.example/base/");
        assert!(!s.allow_private_callbacks);
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "sandbox_mode = true\n").unwrap();
        assert!(Config::load(Some(&bad), NoOverrides {}).is_err());
    }

    #[test]
    fn an_alipay_section_is_read_and_its_key_masked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("live.toml");
        std::fs::write(
            &file,
            "sandbox = false\n[alipay]\ngateway_url = \"https://intlmapi.alipay.com/gateway.do\"\npartner = \"2088000000000001\"\nsign_type = \"MD5\"\nmd5_key = \"s3cretmd5key\"\n",
        )
        .unwrap();
        let c = Config::load(Some(&file), NoOverrides {}).unwrap();
        let alipay = c.wallets.alipay.as_ref().unwrap();
        assert_eq!(
            (alipay.partner.as_str(), alipay.sign_type.as_str()),
            ("2088000000000001", "MD5")
        );
        let printed = c.to_masked_toml();
        assert!(!printed.contains("s3cretmd5key"), "{printed}");
    }

    #[test]
    fn a_wechatpay_section_is_read_and_its_key_masked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("live.toml");
        std::fs::write(
            &file,
            "sandbox = false\n[wechatpay]\nappid = \"wx1\"\nmch_id = \"10\"\nsub_mch_id = \"11\"\napi_key = \"wechatkey0123\"\nserver_ip = \"203.0.113.9\"\n",
        )
        .unwrap();
        let c = Config::load(Some(&file), NoOverrides {}).unwrap();
        let w = c.wallets.wechatpay.as_ref().unwrap();
        assert_eq!((w.mch_id.as_str(), w.sign_type.as_deref()), ("10", None));
        let printed = c.to_masked_toml();
        assert!(!printed.contains("wechatkey0123"), "{printed}");
    }

    #[test]
    fn wallet_secrets_can_come_from_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("live.toml");
        std::fs::write(
            &file,
            "sandbox = false\n[wechatpay]\nappid = \"wx1\"\nmch_id = \"10\"\nsub_mch_id = \"11\"\nserver_ip = \"203.0.113.9\"\n",
        )
        .unwrap();
        #[allow(
            clippy::result_large_err,
            reason = "figment's Jail API returns its own error type"
        )]
        figment::Jail::expect_with(|jail| {
            assert!(
                Config::load(Some(&file), NoOverrides {}).is_err(),
                "api_key missing"
            );
            jail.set_env("OTTGATE_WECHATPAY__API_KEY", "fromtheenvironment0123");
            let c = Config::load(Some(&file), NoOverrides {}).unwrap();
            let w = c.wallets.wechatpay.as_ref().unwrap();
            assert_eq!(w.api_key.0.expose_secret(), "fromtheenvironment0123");
            assert_eq!(w.appid, "wx1", "the file still counts");
            Ok(())
        });
    }

    #[test]
    fn every_sections_keys_come_from_the_environment() {
        #[allow(
            clippy::result_large_err,
            reason = "figment's Jail API returns its own error type"
        )]
        figment::Jail::expect_with(|jail| {
            jail.set_env("OTTGATE_DATABASE_URL", "postgres://db/pay");
            jail.set_env("OTTGATE_MAX_CONNECTIONS_PER_ADDRESS", "7");
            jail.set_env("OTTGATE_CALLBACK_TIMEOUT_MS", "1234");
            jail.set_env("OTTGATE_IDEMPOTENCY_LEASE_SECS", "9");
            jail.set_env("OTTGATE_AUTH_FAILURE_LIMIT", "3");
            jail.set_env("OTTGATE_SANDBOX", "false");
            let c = Config::load(None, NoOverrides {}).unwrap();
            assert_eq!(c.storage.database_url, "postgres://db/pay");
            assert_eq!(c.server.max_connections_per_address, 7);
            assert_eq!(c.callbacks.callback_timeout_ms, 1234);
            assert_eq!(c.payments.idempotency_lease_secs, 9);
            assert_eq!(c.sign_in.auth_failure_limit, 3);
            assert!(!c.sandbox.enabled);
            Ok(())
        });
    }

    #[test]
    fn a_unionpay_section_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("live.toml");
        std::fs::write(
            &file,
            "sandbox = false\n[unionpay]\nmer_id = \"777290058110048\"\ncert_id = \"69629715588\"\nprivate_key_file = \"k.pem\"\nunionpay_public_key_file = \"u.pem\"\n",
        )
        .unwrap();
        let c = Config::load(Some(&file), NoOverrides {}).unwrap();
        let u = c.wallets.unionpay.as_ref().unwrap();
        assert_eq!(
            (u.mer_id.as_str(), u.gateway_url.as_deref()),
            ("777290058110048", None)
        );
        std::fs::write(&file, "[unionpay]\nmer_id = \"1\"\n").unwrap();
        assert!(
            Config::load(Some(&file), NoOverrides {}).is_err(),
            "keys are required"
        );
    }

    #[test]
    fn an_invalid_retry_schedule_is_refused() {
        let mut c = Config::default();
        c.callbacks.callback_retry_schedule = "soon".into();
        let e = c.resolve(c.server.listen).unwrap_err().to_string();
        assert!(e.starts_with("configuration (callbacks): "), "{e}");
    }

    #[test]
    fn every_section_names_itself_in_its_errors() {
        let refused = |c: Config| c.resolve(c.server.listen).unwrap_err().to_string();
        let mut c = Config::default();
        c.server.max_body_bytes = 10;
        assert_eq!(
            refused(c),
            "configuration (server): max_body_bytes must be at least 1024"
        );
        let mut c = Config::default();
        c.callbacks.callback_timeout_ms = 120_000;
        assert!(refused(c).starts_with("configuration (callbacks): callback_timeout_ms"));
        let mut c = Config::default();
        c.payments.time_zone_id = "Nowhere; rm".into();
        assert!(refused(c).starts_with("configuration (payments): time_zone_id"));
        let mut c = Config::default();
        c.sign_in.jwt_secret = Some(MaskedString(Secret::new("short")));
        assert!(refused(c).starts_with("configuration (sign-in): jwt_secret"));
        let mut c = Config::default();
        c.sandbox.simulator_exchange_rates = Some("CAD".into());
        assert!(refused(c).starts_with("configuration (sandbox): simulator_exchange_rates"));
        // Every key belongs to exactly one section.
        let mut all: Vec<&str> = SECTION_KEYS
            .iter()
            .flat_map(|(_, k)| k.iter().copied())
            .collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n);
    }

    #[test]
    fn exchange_rates_read_exactly_as_rate_times_ten_to_the_eighth() {
        assert_eq!(
            parse_exchange_rates("CAD=5.10, usd=7.1,JPY=0.04700001"),
            Ok(vec![
                ("CAD".into(), 510_000_000),
                ("USD".into(), 710_000_000),
                ("JPY".into(), 4_700_001)
            ])
        );
        for bad in [
            "CAD",
            "CAD=",
            "CAD=-1",
            "CAD=0",
            "CA=5",
            "CAD=1.123456789",
            "CAD=1e3",
        ] {
            assert!(parse_exchange_rates(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_gateway_reaches_itself_on_loopback_when_bound_to_every_address() {
        assert_eq!(
            internal_url("0.0.0.0:8080".parse().unwrap())
                .unwrap()
                .as_str(),
            "http://127.0.0.1:8080/"
        );
        assert_eq!(
            internal_url("[::]:9".parse().unwrap()).unwrap().as_str(),
            "http://[::1]:9/"
        );
        assert_eq!(
            internal_url("10.1.2.3:80".parse().unwrap())
                .unwrap()
                .as_str(),
            "http://10.1.2.3/"
        );
    }
}
