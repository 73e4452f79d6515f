//! Configuration: defaults, then an optional TOML file, then `OTTGATE_*` environment
//! variables, then command-line flags. [`Config`] is what is read; [`Settings`] is the
//! validated form the gateway runs with.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use ottgate_channels::{WALLETS, WalletSections, with_trailing_slash};
use ottgate_core::RetrySchedule;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use url::Url;

pub use ottgate_channels::MaskedString;

/// Every setting, as read. Field names are the TOML keys; the environment variable of each
/// is `OTTGATE_` followed by the upper-cased name.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Base URL buyers' browsers and wallets reach the gateway at; `http://{listen}` if unset.
    pub public_url: Option<String>,
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
    /// How long a gateway holds the callback deliveries it claimed before another gateway
    /// may take them over (a gateway that died mid-delivery loses them after this), in
    /// seconds.
    pub delivery_lease_secs: u64,
    /// Sandbox mode: the built-in test wallet serves every method, the sandbox helper API
    /// is mounted, and callbacks may go to loopback/private addresses.
    pub sandbox: bool,
    /// 64 hex characters (32 bytes) that encrypt merchant sign keys at rest. If unset, a
    /// `0600` key file is used (created on first start).
    pub master_key: Option<MaskedString>,
    /// Where the master key file lives; default: beside the SQLite database, `<db>.key`.
    pub master_key_file: Option<PathBuf>,
    /// `human` or `json`.
    pub log_format: LogFormat,
    /// Allow callbacks to private, loopback and link-local addresses; default: `sandbox`.
    pub allow_private_callbacks: Option<bool>,
    /// Gaps between callback attempts, e.g. `15s,1m,5m`.
    pub callback_retry_schedule: String,
    /// A callback not answered within this many milliseconds is a failed attempt.
    pub callback_timeout_ms: u64,
    /// Callbacks sent at once by one process.
    pub callback_concurrency: u32,
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
    /// How often expired orders are closed, in milliseconds.
    pub expiry_sweep_interval_ms: u64,
    /// Longest wait between looks for due callbacks, in milliseconds.
    pub delivery_poll_interval_ms: u64,
    /// Secret (at least 32 characters) that signs REST bearer tokens; default: derived
    /// from the master key. Changing it invalidates every token issued.
    pub jwt_secret: Option<MaskedString>,
    /// How long a REST, ACTIVEPAY or H5PAY payment may wait for the buyer, in seconds.
    pub rest_payment_ttl_secs: u64,
    /// How long a finished callback (delivered or exhausted) stays in the merchant's event
    /// log, in days (at least 30).
    pub event_retention_days: u64,
    /// How long the first answer to an idempotent request (REST `Idempotency-Key`, an
    /// envelope REFUND without a refund id) is replayed, in seconds.
    pub idempotency_retention_secs: u64,
    /// How long an idempotent request's key is held for it while it runs, in seconds: a
    /// repeat meanwhile is told to wait (409, PROCESSING); a request whose gateway died
    /// frees its key after this (its refund, if one was begun, is then found, not redone).
    pub idempotency_lease_secs: u64,
    /// The `time_zone_id` H5PAY answers with: the merchants' zone (IANA name).
    pub time_zone_id: String,
    /// Sandbox only: the simulated WeChat Pay's exchange rates, CNY per unit, e.g.
    /// `CAD=5.10,USD=7.1`; they replace or add to its built-in table.
    pub simulator_exchange_rates: Option<String>,
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
    /// A pending wallet payment is first asked about (reconciliation) this many seconds
    /// after it started, and again at most this often.
    pub reconcile_after_secs: u64,
    /// How much faster than real time the built-in wallet simulators re-send
    /// notifications (sandbox mode).
    pub simulator_time_scale: f64,
    /// Live wallet credentials, one section per wallet (`[alipay]`, `[wechatpay]`,
    /// `[unionpay]`). A wallet without one is, in sandbox mode, its built-in simulator.
    #[serde(flatten)]
    pub wallets: WalletSections,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            database_url: "sqlite://ottgate.db".into(),
            sqlite_max_batch: ottgate_store::SQLITE_MAX_BATCH,
            db_pool_size: 16,
            db_connect_timeout_ms: 5_000,
            db_statement_timeout_ms: 10_000,
            db_ca_file: None,
            delivery_lease_secs: 60,
            sandbox: true,
            master_key: None,
            master_key_file: None,
            log_format: LogFormat::Human,
            allow_private_callbacks: None,
            callback_retry_schedule: RetrySchedule::default().to_string(),
            callback_timeout_ms: 10_000,
            callback_concurrency: 64,
            max_body_bytes: 64 * 1024,
            header_read_timeout_ms: 10_000,
            request_timeout_ms: 60_000,
            max_connections: 10_000,
            max_connections_per_address: 1_000,
            write_timeout_ms: 30_000,
            expiry_sweep_interval_ms: 1_000,
            delivery_poll_interval_ms: 1_000,
            jwt_secret: None,
            rest_payment_ttl_secs: 1_800,
            idempotency_retention_secs: 86_400,
            idempotency_lease_secs: 120,
            event_retention_days: 90,
            time_zone_id: "America/Toronto".into(),
            simulator_exchange_rates: None,
            auth_failure_limit: 10,
            auth_failure_app_limit: 100,
            auth_hash_concurrency: 4,
            auth_failure_window_secs: 300,
            reconcile_after_secs: 60,
            simulator_time_scale: 1.0,
            wallets: WalletSections::default(),
        }
    }
}

const ENV_KEYS: [&str; 38] = [
    "listen",
    "public_url",
    "database_url",
    "sqlite_max_batch",
    "db_pool_size",
    "db_connect_timeout_ms",
    "db_statement_timeout_ms",
    "db_ca_file",
    "delivery_lease_secs",
    "sandbox",
    "master_key",
    "master_key_file",
    "log_format",
    "allow_private_callbacks",
    "callback_retry_schedule",
    "callback_timeout_ms",
    "callback_concurrency",
    "max_body_bytes",
    "header_read_timeout_ms",
    "request_timeout_ms",
    "max_connections",
    "max_connections_per_address",
    "write_timeout_ms",
    "expiry_sweep_interval_ms",
    "delivery_poll_interval_ms",
    "jwt_secret",
    "rest_payment_ttl_secs",
    "idempotency_retention_secs",
    "idempotency_lease_secs",
    "event_retention_days",
    "time_zone_id",
    "simulator_exchange_rates",
    "auth_failure_limit",
    "auth_failure_app_limit",
    "auth_hash_concurrency",
    "auth_failure_window_secs",
    "reconcile_after_secs",
    "simulator_time_scale",
];

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
            figment = figment.merge(Toml::file(file));
        }
        figment = figment
            .merge(Env::prefixed("OTTGATE_").only(&ENV_KEYS))
            // Wallet sections, e.g. OTTGATE_ALIPAY__MD5_KEY or OTTGATE_WECHATPAY__API_KEY,
            // so their secrets need not sit in the file.
            .merge(Env::prefixed("OTTGATE_").split("__").filter(|key| {
                let key = key.as_str().to_ascii_lowercase();
                WALLETS.iter().any(|wallet| {
                    key.strip_prefix(wallet.name)
                        .is_some_and(|rest| rest.starts_with('.'))
                })
            }))
            .merge(Serialized::defaults(overrides));
        // The wallet sections are flattened in, which serde cannot combine with refusing
        // unknown keys: a misspelt key must not be silently ignored, so look here.
        let keys: std::collections::BTreeMap<String, serde::de::IgnoredAny> = figment
            .extract()
            .map_err(|e| ConfigError::Load(Box::new(e)))?;
        if let Some(unknown) = keys.keys().find(|key| {
            !ENV_KEYS.contains(&key.as_str()) && !WALLETS.iter().any(|w| w.name == key.as_str())
        }) {
            return Err(ConfigError::Invalid(format!("unknown key `{unknown}`")));
        }
        figment
            .extract()
            .map_err(|e| ConfigError::Load(Box::new(e)))
    }

    /// The effective configuration as TOML, secrets masked.
    pub fn to_masked_toml(&self) -> String {
        // Secrets serialize as "***" (MaskedString); unset options are left out.
        let masked = Config {
            database_url: masked_database_url(&self.database_url),
            ..self.clone()
        };
        toml::to_string(&masked)
            .unwrap_or_else(|e| format!("# configuration could not be printed: {e}\n"))
    }

    /// Whether the database is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://")
    }

    /// The SQLite file, if the database is SQLite.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let rest = self
            .database_url
            .strip_prefix("sqlite://")
            .or_else(|| self.database_url.strip_prefix("sqlite:"))?;
        let path = rest.split('?').next().unwrap_or(rest);
        (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
    }

    /// Validates everything and fixes the public URL against the address actually bound.
    pub fn resolve(&self, bound: SocketAddr) -> Result<Settings, ConfigError> {
        let invalid = |m: String| ConfigError::Invalid(m);
        let public_url = match &self.public_url {
            Some(u) => Url::parse(u).map_err(|e| invalid(format!("public_url {u:?}: {e}")))?,
            None => Url::parse(&format!("http://{bound}/"))
                .map_err(|e| invalid(format!("public_url: {e}")))?,
        };
        if !matches!(public_url.scheme(), "http" | "https") {
            return Err(invalid("public_url must be http or https".into()));
        }
        let public_url = with_trailing_slash(public_url);
        let schedule = RetrySchedule::parse(&self.callback_retry_schedule)
            .map_err(|e| invalid(e.to_string()))?;
        if self.max_body_bytes < 1024 {
            return Err(invalid("max_body_bytes must be at least 1024".into()));
        }
        if self
            .jwt_secret
            .as_ref()
            .is_some_and(|s| s.0.expose_secret().len() < 32)
        {
            return Err(invalid("jwt_secret must be at least 32 characters".into()));
        }
        if self.rest_payment_ttl_secs == 0 || self.rest_payment_ttl_secs > 30 * 24 * 3600 {
            return Err(invalid(
                "rest_payment_ttl_secs must be from 1 to 2592000".into(),
            ));
        }
        if !(self.simulator_time_scale.is_finite() && self.simulator_time_scale > 0.0) {
            return Err(invalid(
                "simulator_time_scale must be a positive number".into(),
            ));
        }
        let lease_ms = self
            .delivery_lease_secs
            .clamp(5, 86_400)
            .saturating_mul(1_000);
        if self.callback_timeout_ms >= lease_ms {
            return Err(invalid(format!(
                "callback_timeout_ms ({}) must be shorter than delivery_lease_secs ({} s): a \
                 callback still in flight when its lease ends would be sent again by another \
                 gateway",
                self.callback_timeout_ms,
                lease_ms / 1_000
            )));
        }
        if self.callback_concurrency == 0 {
            return Err(invalid("callback_concurrency must be at least 1".into()));
        }
        let time_zone_ok = !self.time_zone_id.is_empty()
            && self.time_zone_id.len() <= 64
            && self
                .time_zone_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/_+-".contains(&b));
        if !time_zone_ok {
            return Err(invalid(
                "time_zone_id must be an IANA zone name such as America/Toronto".into(),
            ));
        }
        let exchange_rates = match &self.simulator_exchange_rates {
            Some(table) => parse_exchange_rates(table).map_err(invalid)?,
            None => Vec::new(),
        };
        Ok(Settings {
            internal_url: internal_url(bound)?,
            idempotency_retention: Duration::from_secs(
                self.idempotency_retention_secs.clamp(60, 30 * 86_400),
            ),
            idempotency_lease: Duration::from_secs(self.idempotency_lease_secs.clamp(1, 3_600)),
            time_zone_id: self.time_zone_id.clone(),
            simulator_exchange_rates: exchange_rates,
            public_url,
            sandbox: self.sandbox,
            allow_private_callbacks: self.allow_private_callbacks.unwrap_or(self.sandbox),
            retry_schedule: schedule,
            callback_timeout: Duration::from_millis(self.callback_timeout_ms.max(1)),
            callback_concurrency: self.callback_concurrency,
            max_body_bytes: self.max_body_bytes,
            header_read_timeout: Duration::from_millis(
                self.header_read_timeout_ms.clamp(100, 600_000),
            ),
            request_timeout: Duration::from_millis(self.request_timeout_ms.clamp(1_000, 3_600_000)),
            max_connections: self.max_connections.max(1),
            max_connections_per_address: self
                .max_connections_per_address
                .clamp(1, self.max_connections.max(1)),
            write_timeout: Duration::from_millis(self.write_timeout_ms.clamp(100, 3_600_000)),
            expiry_sweep_interval: Duration::from_millis(self.expiry_sweep_interval_ms.max(10)),
            delivery_poll_interval: Duration::from_millis(self.delivery_poll_interval_ms.max(10)),
            rest_payment_ttl: Duration::from_secs(self.rest_payment_ttl_secs),
            auth_failure_limit: self.auth_failure_limit.max(1),
            auth_failure_app_limit: self
                .auth_failure_app_limit
                .max(self.auth_failure_limit)
                .max(1),
            auth_hash_concurrency: usize::try_from(self.auth_hash_concurrency.clamp(1, 64))
                .unwrap_or(1),
            auth_failure_window: Duration::from_secs(self.auth_failure_window_secs.max(1)),
            reconcile_after: Duration::from_secs(self.reconcile_after_secs.max(1)),
            delivery_lease: Duration::from_secs(self.delivery_lease_secs.clamp(5, 86_400)),
            event_retention: Duration::from_secs(
                self.event_retention_days.clamp(30, 36_500) * 86_400,
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
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url, "sqlite://ottgate.db");
        assert!(c.sandbox);
        let s = c.resolve(c.listen).unwrap();
        assert_eq!(s.public_url.as_str(), "http://127.0.0.1:8080/");
        assert!(s.allow_private_callbacks);
        assert_eq!(s.retry_schedule, RetrySchedule::default());
        assert_eq!(c.sqlite_path(), Some(PathBuf::from("ottgate.db")));
    }

    #[test]
    fn the_master_key_is_masked_when_printed() {
        let c = Config {
            master_key: Some(MaskedString(Secret::new("ab".repeat(32)))),
            ..Config::default()
        };
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
        let c = Config {
            database_url: "postgres://u:hunter2@db/pay".into(),
            ..Config::default()
        };
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
        assert!(!c.sandbox);
        let s = c.resolve(c.listen).unwrap();
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
        let c = Config {
            callback_retry_schedule: "soon".into(),
            ..Config::default()
        };
        assert!(c.resolve(c.listen).is_err());
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
