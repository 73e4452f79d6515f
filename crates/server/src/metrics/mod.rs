//! Prometheus metrics. Counters and histograms are updated where things happen; order and
//! outbox gauges are read from the store at scrape time, so every process reports the
//! shared truth. Beside them, the standard `process_*` metrics ([`process`]) and
//! `ottgate_build_info`.

mod process;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use ottgate_store::Stats;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    pub route: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EnvelopeLabels {
    pub action: String,
    pub rsp_code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    profile: String,
}

/// The standard process metrics, unprefixed.
#[derive(Clone, Default)]
struct ProcessMetrics {
    cpu_seconds: Counter<f64, AtomicU64>,
    resident_bytes: Gauge,
    virtual_bytes: Gauge,
    open_fds: Gauge,
    max_fds: Gauge,
    start_time: Gauge<f64, AtomicU64>,
}

impl ProcessMetrics {
    fn update(&self) {
        let Some(p) = process::ProcessStats::read() else {
            return;
        };
        let counted = self.cpu_seconds.get();
        if p.cpu_seconds > counted {
            self.cpu_seconds.inc_by(p.cpu_seconds - counted);
        }
        self.resident_bytes.set(to_i64(p.resident_bytes));
        self.virtual_bytes.set(to_i64(p.virtual_bytes));
        self.open_fds.set(to_i64(p.open_fds));
        if let Some(max) = p.max_fds {
            self.max_fds.set(to_i64(max));
        }
        self.start_time.set(p.start_time_seconds);
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub status: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms to ~16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_latency: HistogramFamily<RouteLabels>,
    pub envelope_responses: Family<EnvelopeLabels, Counter>,
    pub settlements: Family<OutcomeLabels, Counter>,
    pub refunds: Family<OutcomeLabels, Counter>,
    pub notifications: Family<OutcomeLabels, Counter>,
    pub callback_attempts: Family<OutcomeLabels, Counter>,
    /// Statement reconciliation runs by outcome (done, not_ready, failed).
    pub recon_runs: Family<OutcomeLabels, Counter>,
    pub callback_latency: Histogram,
    /// PASSIVEPAY: from the wallet's answer to the till's.
    pub barcode_answer: Histogram,
    orders: Family<StatusLabels, Gauge>,
    deliveries: Family<StatusLabels, Gauge>,
    outbox_depth: Gauge,
    leases: Gauge,
    lease_seconds: Gauge,
    db_pool: Family<StatusLabels, Gauge>,
    db_pool_waiting: Gauge,
    barcode_backlog: Family<StatusLabels, Gauge>,
    recon_open: Family<ReconLabels, Gauge>,
    recon_last_run: Family<WalletLabels, Gauge>,
    process: ProcessMetrics,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconLabels {
    pub wallet: String,
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WalletLabels {
    pub wallet: String,
}

/// The kinds of discrepancy, each shown (at 0 when none is open) for every wallet run.
const DISCREPANCY_KINDS: [&str; 5] = [
    "wallet_only",
    "gateway_only",
    "amount_differs",
    "currency_differs",
    "status_differs",
];

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Metrics")
    }
}

const ORDER_STATUSES: [&str; 4] = ["processing", "success", "expired", "failed"];
const DELIVERY_STATES: [&str; 3] = ["pending", "delivered", "exhausted"];

/// Registers each metric under its name and help text.
macro_rules! register {
    ($registry:ident; $($metric:expr => $name:literal, $help:literal;)*) => {
        $($registry.register($name, $help, $metric.clone());)*
    };
}

/// Sets one gauge per status: every `known` status starts at zero, so a status that has
/// emptied reads 0 rather than its last count.
fn set_by_status(family: &Family<StatusLabels, Gauge>, known: &[&str], counts: &[(String, u64)]) {
    let set = |status: &str, n: i64| {
        family
            .get_or_create(&StatusLabels {
                status: status.into(),
            })
            .set(n);
    };
    for status in known {
        set(status, 0);
    }
    for (status, n) in counts {
        set(status, to_i64(*n));
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut root = Registry::default();
        let m = Self {
            registry: Arc::new(Registry::default()),
            http_requests: Family::default(),
            http_latency: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            envelope_responses: Family::default(),
            settlements: Family::default(),
            refunds: Family::default(),
            notifications: Family::default(),
            callback_attempts: Family::default(),
            recon_runs: Family::default(),
            callback_latency: latency_histogram(),
            barcode_answer: Histogram::new([
                0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 1.0,
            ]),
            orders: Family::default(),
            deliveries: Family::default(),
            outbox_depth: Gauge::default(),
            leases: Gauge::default(),
            lease_seconds: Gauge::default(),
            db_pool: Family::default(),
            db_pool_waiting: Gauge::default(),
            barcode_backlog: Family::default(),
            recon_open: Family::default(),
            recon_last_run: Family::default(),
            process: ProcessMetrics::default(),
        };
        let p = &m.process;
        register!(root;
            p.cpu_seconds => "process_cpu_seconds", "Total user and system CPU time spent in seconds";
            p.resident_bytes => "process_resident_memory_bytes", "Resident memory size in bytes";
            p.virtual_bytes => "process_virtual_memory_bytes", "Virtual memory size in bytes";
            p.open_fds => "process_open_fds", "Number of open file descriptors";
            p.max_fds => "process_max_fds", "Maximum number of open file descriptors";
            p.start_time => "process_start_time_seconds", "Start time of the process since unix epoch in seconds";
        );
        let build: Family<BuildLabels, Gauge> = Family::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                profile: if cfg!(debug_assertions) {
                    "debug"
                } else {
                    "release"
                }
                .to_owned(),
            })
            .set(1);
        let registry = root.sub_registry_with_prefix("ottgate");
        register!(registry;
            build => "build_info", "Which ottgate this is (always 1): version and build profile";
            m.http_requests => "http_requests", "HTTP requests by route and status code";
            m.http_latency => "http_request_duration_seconds", "HTTP request latency by route";
            m.envelope_responses => "envelope_responses", "processV2 responses by action and rsp_code";
            m.settlements => "settlements", "Payment outcomes applied, by outcome";
            m.refunds => "refunds", "Refunds by outcome (success, pending, failed, refused)";
            m.notifications => "wallet_notifications", "Wallet notifications by outcome (accepted, rejected) and queries that settled a payment (reconciled)";
            m.callback_attempts => "callback_attempts", "Merchant callback attempts by outcome (delivered, retry, exhausted)";
            m.callback_latency => "callback_duration_seconds", "Merchant callback latency";
            m.barcode_answer => "barcode_answer_seconds", "PASSIVEPAY answered at once: from the wallet's answer to the till's (what the gateway adds)";
            m.orders => "orders", "Orders by status";
            m.deliveries => "callback_deliveries", "Merchant callback deliveries by state";
            m.outbox_depth => "outbox_depth", "Callback deliveries waiting to be delivered";
            m.leases => "callback_leases", "Callback deliveries a gateway holds a lease on now (in flight)";
            m.lease_seconds => "callback_lease_seconds", "How long a gateway holds the callbacks it claims (delivery_lease_secs)";
            m.db_pool => "db_pool_connections", "Database connections of this gateway: max, open, idle (PostgreSQL)";
            m.db_pool_waiting => "db_pool_waiting", "Requests of this gateway waiting for a database connection (PostgreSQL)";
            m.recon_runs => "recon_runs", "Statement reconciliation runs by outcome (done, not_ready: the wallet has not published the day yet, failed)";
            m.recon_open => "recon_discrepancies_open", "Discrepancies between a wallet's statement and the gateway not yet repaired or resolved, by wallet and kind";
            m.recon_last_run => "recon_last_success_timestamp_seconds", "When each wallet's latest statement day was last reconciled (unix seconds)";
            m.barcode_backlog => "barcode_payments_open", "In-store barcode payments not finished, by phase: query (the wallet is being asked) and undo (a reversal the wallet has not done yet, retried until it is)";
        );
        Self {
            registry: Arc::new(root),
            ..m
        }
    }

    /// Sets the in-store backlog gauges (read from the store at scrape time).
    pub fn set_barcode_backlog(&self, querying: u64, undoing: u64) {
        let counts = [("query".to_owned(), querying), ("undo".to_owned(), undoing)];
        set_by_status(&self.barcode_backlog, &["query", "undo"], &counts);
    }

    /// Sets the reconciliation gauges: each wallet's latest run (`(wallet, finished at in
    /// unix seconds)`) and the open discrepancies (`(wallet, kind)` each).
    pub fn set_recon(&self, runs: &[(String, i64)], open: &[(String, String)]) {
        for (wallet, at) in runs {
            self.recon_last_run
                .get_or_create(&WalletLabels {
                    wallet: wallet.clone(),
                })
                .set(*at);
            for kind in DISCREPANCY_KINDS {
                self.recon_open
                    .get_or_create(&ReconLabels {
                        wallet: wallet.clone(),
                        kind: kind.into(),
                    })
                    .set(0);
            }
        }
        for (wallet, kind) in open {
            self.recon_open
                .get_or_create(&ReconLabels {
                    wallet: wallet.clone(),
                    kind: kind.clone(),
                })
                .inc();
        }
    }

    /// The Prometheus text exposition, with gauges taken from `stats`.
    pub fn encode(&self, stats: &Stats, lease: std::time::Duration) -> String {
        self.process.update();
        self.leases.set(to_i64(stats.deliveries_leased));
        self.lease_seconds.set(to_i64(lease.as_secs()));
        if let Some(pool) = stats.pool {
            let to = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
            let counts = [
                ("max".to_owned(), to(pool.max_size)),
                ("open".to_owned(), to(pool.size)),
                ("idle".to_owned(), to(pool.available)),
            ];
            set_by_status(&self.db_pool, &[], &counts);
            self.db_pool_waiting.set(to_i64(to(pool.waiting)));
        }
        set_by_status(&self.orders, &ORDER_STATUSES, &stats.orders_by_status);
        set_by_status(
            &self.deliveries,
            &DELIVERY_STATES,
            &stats.deliveries_by_state,
        );
        let depth = stats
            .deliveries_by_state
            .iter()
            .find(|(state, _)| state == "pending")
            .map_or(0, |(_, n)| to_i64(*n));
        self.outbox_depth.set(depth);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn outcome(&self, family: &Family<OutcomeLabels, Counter>, outcome: &str) {
        family
            .get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            })
            .inc();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
