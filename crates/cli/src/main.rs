//! `ottgate`: run the gateway, manage merchants, and see a whole payment in one command.

/// mimalloc: the gateway allocates many small short-lived buffers per request, which glibc's
/// malloc served at ~8 % of server CPU under load (README, Performance).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bench;
mod check;
mod demo;
mod merchant_api;
mod recon;
mod throwaway;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use ottgate_server::{
    ChannelChange, Config, Currency, Gateway, LogFormat, NewMerchant, PaymentMethod, SystemClock,
};
use serde::Serialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(
    name = "ottgate",
    version,
    about = "A self-hostable payment gateway that speaks the OTT Pay protocols"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway (SQLite by default, created and migrated on first start).
    Serve(ServeArgs),
    /// Start a throwaway gateway, create a merchant and run a whole checkout payment,
    /// printing every message on the wire.
    Demo,
    /// Measure envelope-API throughput and latency against a throwaway gateway.
    Bench(bench::BenchArgs),
    /// Create a payment as a merchant would (checkout, QR code, H5, or REST wap/web) and
    /// print the reply.
    Pay {
        #[command(flatten)]
        credentials: merchant_api::Credentials,
        #[command(subcommand)]
        command: merchant_api::Pay,
    },
    /// Look up a payment (envelope STATUS_QUERY / PREPAY_QUERY, or the REST status queries).
    Query {
        #[command(flatten)]
        which: merchant_api::Which,
        #[command(flatten)]
        credentials: merchant_api::Credentials,
    },
    /// Today's exchange rate to CNY (EX_RATE_QUERY): `rate` is CNY per unit × 10^8.
    Rate {
        /// ISO 4217 currency code, e.g. CAD.
        fee_type: String,
        #[command(flatten)]
        credentials: merchant_api::Credentials,
    },
    /// Refund (part of) a paid payment, through the envelope API or the REST API.
    Refund {
        #[command(flatten)]
        of: merchant_api::RefundOf,
        /// Cents (1234 is 12.34).
        #[arg(long, value_parser = merchant_api::cents)]
        amount: String,
        /// Your own id for this refund (envelope API): repeating it is safe.
        #[arg(long)]
        refund_id: Option<String>,
        #[command(flatten)]
        credentials: merchant_api::Credentials,
    },
    /// Void a card payment not captured yet (REST local-card/reverse).
    Reverse {
        /// The card payment's paymentId.
        #[arg(long)]
        payment_id: String,
        #[command(flatten)]
        credentials: merchant_api::Credentials,
    },
    /// The callbacks owed to a merchant (REST event log), and sending one again.
    Events {
        #[command(flatten)]
        credentials: merchant_api::Credentials,
        #[command(subcommand)]
        command: merchant_api::Events,
    },
    /// Manage merchants (works whether or not a gateway is running on the database).
    Merchant {
        #[command(subcommand)]
        command: MerchantCommand,
    },
    /// Check your shop's integration against a sandbox gateway: forged, repeated, late and
    /// out-of-order callbacks, tampered returns, lagging queries, case by case
    /// (docs/checker.md).
    Check(check::CheckArgs),
    /// Sandbox helpers: buyer barcodes for in-store payments.
    Sandbox {
        #[command(subcommand)]
        command: SandboxCommand,
    },
    /// Run the simulated Alipay, WeChat Pay and UnionPay on their own (public test keys),
    /// for a live-mode gateway to talk to over the network.
    Simulate(SimulateArgs),
    /// Manage merchant-center users (who signs in, with which role).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Move a deployment: copy an SQLite database into PostgreSQL.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Reconcile the wallets' statements: run a day, report it, resolve what stays open
    /// (docs/reconciliation.md).
    Recon {
        #[command(subcommand)]
        command: recon::ReconCommand,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
enum SandboxCommand {
    /// A one-time buyer code, as the buyer's wallet would show it: printed, and drawn as a
    /// barcode on stderr.
    Barcode {
        /// Sandbox gateway base URL.
        #[arg(long, env = "OTTGATE_GATEWAY", default_value = "http://127.0.0.1:8080")]
        gateway: String,
        /// WECHATPAY, ALIPAY or UNIONPAY.
        #[arg(long, default_value = "WECHATPAY")]
        wallet: String,
        /// paid, password, declined or undecided.
        #[arg(long, default_value = "paid")]
        outcome: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Role {
    /// Reads, and refunds, resends, rotates keys, changes methods.
    Admin,
    /// Reads.
    Viewer,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add a user to a merchant and print a one-time password (shown only now).
    Add {
        /// The merchant the user works for.
        #[arg(long)]
        merchant: String,
        /// What they sign in with (unique across the deployment).
        #[arg(long)]
        email: String,
        /// What they may do in the merchant center.
        #[arg(long, value_enum, default_value = "viewer")]
        role: Role,
        #[command(flatten)]
        common: UserArgs,
    },
    /// Remove a merchant's user and end their sessions (never the merchant's last admin).
    Remove {
        /// The merchant the user works for.
        #[arg(long)]
        merchant: String,
        /// The user's sign-in email.
        #[arg(long)]
        email: String,
        #[command(flatten)]
        common: UserArgs,
    },
    /// Give a user a new one-time password; the old one stops working.
    ResetPassword {
        /// The user's sign-in email.
        #[arg(long)]
        email: String,
        #[command(flatten)]
        common: UserArgs,
    },
}

/// What every `user` command takes besides its own flags.
#[derive(Debug, Args)]
struct UserArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    config: ConfigArgs,
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Copy every merchant (keys still sealed), order, attempt, refund, callback with its
    /// delivery history, and idempotency key from SQLite into PostgreSQL, then check that
    /// every table holds as many rows as the source. Safe to run again. Start the
    /// PostgreSQL gateways with the SQLite deployment's master key (its `<db>.key` file).
    Copy {
        /// sqlite://path
        #[arg(long)]
        from: String,
        /// postgres://user:password@host:port/db (migrated first if new)
        #[arg(long)]
        to: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum MerchantCommand {
    /// Give a merchant a new REST appKey, printed once; the old one still obtains tokens
    /// for 24 hours (time to deploy the new one).
    RotateAppKey {
        /// The merchant.
        #[arg(long)]
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Create a merchant and print its credentials (shown only once).
    Add {
        /// Display name shown to buyers.
        #[arg(long)]
        name: String,
        /// Merchant id (default: generated, like ON12345678).
        #[arg(long)]
        id: Option<String>,
        /// Enabled currencies, the first being the default.
        #[arg(long, value_delimiter = ',', default_value = "CAD")]
        currencies: Vec<String>,
        /// Print JSON instead of text.
        #[arg(long, conflicts_with = "env")]
        json: bool,
        /// Print `export OTTGATE_…=…` lines for the merchant commands (`eval` them in a
        /// shell, or keep them in a file only you can read).
        #[arg(long)]
        env: bool,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Show or switch a merchant's link flows (h5Pay, wapPay, webPay, inAppPay: unsigned
    /// requests naming the merchant by its merCode), and set h5Pay's callback URL.
    LinkFlows {
        /// The merchant.
        #[arg(long)]
        id: String,
        /// Switch the link flows on.
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        /// Switch the link flows off.
        #[arg(long)]
        disable: bool,
        /// Where h5Pay's results go ("" clears it).
        #[arg(long)]
        callback_url: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Show or change a merchant's payment methods and the ids the wallets know it by.
    Channels {
        /// The merchant.
        #[arg(long)]
        id: String,
        /// Methods to switch on (ALIPAY, WECHATPAY, UNIONPAY, GP).
        #[arg(long, value_delimiter = ',')]
        enable: Vec<String>,
        /// Methods to switch off.
        #[arg(long, value_delimiter = ',')]
        disable: Vec<String>,
        /// WeChat Pay sub-merchant id under the acquirer's account ("" clears it).
        #[arg(long)]
        wechat_sub_mch_id: Option<String>,
        /// Merchant category code, sent to Alipay ("" clears it).
        #[arg(long)]
        mcc: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Show a merchant's fee rate for each payment method (its own, or the configured
    /// `default_fees`), or set one: `--method WECHATPAY --rate 2.2%` (`2.2%+30` adds 30
    /// cents per payment). Settlement statements charge it on each payment.
    Fees {
        /// The merchant.
        #[arg(long)]
        id: String,
        /// The method to set (ALIPAY, WECHATPAY, UNIONPAY, GP); with --rate.
        #[arg(long, requires = "rate")]
        method: Option<String>,
        /// The rate: a percent with up to four decimals, and optionally `+N` minor units.
        #[arg(long, requires = "method", value_parser = fee_rate)]
        rate: Option<ottgate_server::FeeRate>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

fn fee_rate(s: &str) -> Result<ottgate_server::FeeRate, String> {
    ottgate_server::FeeRate::parse(s)
        .ok_or_else(|| format!("{s:?} is not a fee rate (2.2%, 2.2%+30; at most 100%)"))
}

#[derive(Debug, Args)]
struct SimulateArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9090")]
    listen: SocketAddr,
    /// Where the simulators are reachable [default: http://<listen>/].
    #[arg(long)]
    public_url: Option<String>,
    /// How much faster than the wallets' real pace notifications are re-sent.
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Write the matching live-mode gateway configuration (and the test keys) here.
    #[arg(long)]
    write_gateway_config: Option<PathBuf>,
    /// human or json.
    #[arg(long, default_value = "human")]
    log_format: String,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration, secrets masked: every setting, the defaults that
    /// follow from others written out. Fails as `check` does.
    Print(ServeArgs),
    /// Make every check `serve` makes of the configuration (each section, each wallet's
    /// keys and certificates, the master key) without starting anything; exit 1 on the
    /// first problem, naming its key and section.
    Check(ServeArgs),
}

/// Which configuration and database a store command uses: flags that override the
/// configuration file and `OTTGATE_*` variables.
#[derive(Debug, Clone, Default, Args, Serialize)]
struct ConfigArgs {
    /// TOML configuration file.
    #[arg(long)]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Database [env: OTTGATE_DATABASE_URL; default sqlite://ottgate.db].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    database_url: Option<String>,
    /// Make the SQLite database if there is none yet (without it, a missing database is
    /// refused: the command was probably run from another directory than the gateway).
    #[arg(long)]
    #[serde(skip)]
    create: bool,
}

impl ConfigArgs {
    fn load(&self) -> Result<Config> {
        Ok(Config::load(self.config.as_deref(), self)?)
    }

    /// The store `config` names, said on stderr (which database a command changed is never
    /// a guess); a SQLite file that does not exist is refused unless `--create`.
    async fn open_store(
        &self,
        config: &Config,
    ) -> Result<std::sync::Arc<dyn ottgate_server::Store>> {
        let url = ottgate_server::config::masked_database_url(&config.storage.database_url);
        if let Some(path) = config.sqlite_path()
            && !path.exists()
        {
            anyhow::ensure!(
                self.create,
                "there is no database at {} (the gateway's is where `ottgate serve` runs, or \
                 give --database-url); add --create to make a new one",
                std::path::absolute(&path).unwrap_or(path).display()
            );
            eprintln!("database: {url} (created)");
        } else {
            eprintln!("database: {url}");
        }
        Ok(ottgate_server::open_store(config).await?)
    }
}

/// What the running gateway takes (`serve`, and `config` to see its effect).
#[derive(Debug, Clone, Default, Args, Serialize)]
struct ServeArgs {
    /// TOML configuration file.
    #[arg(long)]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Database [env: OTTGATE_DATABASE_URL; default sqlite://ottgate.db, created if missing].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    database_url: Option<String>,
    /// Address to listen on [env: OTTGATE_LISTEN; default 127.0.0.1:8080].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<SocketAddr>,
    /// Public base URL [env: OTTGATE_PUBLIC_URL; default http://<listen>].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    public_url: Option<String>,
    /// Sandbox mode [env: OTTGATE_SANDBOX; default true].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    sandbox: Option<bool>,
    /// human or json [env: OTTGATE_LOG_FORMAT].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    log_format: Option<String>,
}

impl ServeArgs {
    fn load(&self) -> Result<Config> {
        Ok(Config::load(self.config.as_deref(), self)?)
    }
}

/// Logs go to stderr from a thread of their own, buffered and flushed whenever no more
/// lines are waiting: a request never waits for a write(2), and a burst of log lines costs
/// a few writes, not one each. Nothing is dropped (a full queue makes loggers wait). The
/// guard, held for the life of the command, flushes what is left when it ends.
#[must_use = "logs stop when the guard is dropped"]
fn init_logging(
    format: LogFormat,
    default_filter: &str,
) -> tracing_appender::non_blocking::WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("log-writer")
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stderr(),
        ));
    // Colour only for a person at a terminal: a file or a log collector gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    match format {
        LogFormat::Human => builder.init(),
        // The current span (the request id) only: the list of every open span would repeat it.
        LogFormat::Json => builder.json().with_span_list(false).init(),
    }
    guard
}

fn main() -> std::process::ExitCode {
    quiet_on_broken_pipe();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever RUST_BACKTRACE says: what went wrong and why.
            eprintln!("error: {}", explain(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// What the person at the terminal should read: the error on one line, an unreachable
/// gateway said as such, and the gateway's own field names followed by the flag that sets
/// them.
fn explain(e: &anyhow::Error) -> String {
    for cause in e.chain() {
        if let Some(ottgate_client::ClientError::Transport(r)) =
            cause.downcast_ref::<ottgate_client::ClientError>()
            && (r.is_connect() || r.is_timeout())
        {
            let at = r.url().map_or_else(String::new, |u| {
                let mut origin = u.clone();
                origin.set_path("/");
                origin.set_query(None);
                origin.to_string()
            });
            let what = if r.is_timeout() {
                "did not answer in time"
            } else {
                "refused the connection"
            };
            return format!(
                "the gateway at {at} {what}: is `ottgate serve` running there? (--gateway or \
                 OTTGATE_GATEWAY says where it is)"
            );
        }
    }
    with_flags(&one_line(e))
}

/// The gateway's field names in `text`, each followed by the flag that sets it.
fn with_flags(text: &str) -> String {
    const FLAGS: [(&str, &str); 11] = [
        ("refund_amt", "--amount"),
        ("ori_order_id", "--order-id"),
        ("amount", "--amount"),
        ("order_id", "--order-id"),
        ("call_back_url", "--callback-url"),
        ("callbackURL", "--callback-url"),
        ("callBackURL", "--callback-url"),
        ("redirect_url", "--redirect-url"),
        ("returnURL", "--return-url"),
        ("currency_type", "--currency"),
        ("paymentId", "--payment-id"),
    ];
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        out.push_str(word);
        if let Some((_, flag)) = FLAGS.iter().find(|(wire, _)| wire == word) {
            out.push_str(&format!(" ({flag})"));
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// An error and its causes on one line, each cause once: a cause whose text the line
/// already holds (a message that quotes its source) is not repeated.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// `ottgate … | head`: once the reader is gone, printing fails with a broken pipe, which
/// `println!` turns into a panic. Like any Unix tool, stop quietly instead.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args.load()?).await,
        Command::Demo => {
            let _logs = init_logging(LogFormat::Human, "warn");
            demo::run().await
        }
        Command::Pay {
            credentials,
            command,
        } => merchant_api::pay(&credentials, command).await,
        Command::Query { credentials, which } => merchant_api::query(&credentials, which).await,
        Command::Check(args) => check::run(args).await,
        Command::Sandbox {
            command:
                SandboxCommand::Barcode {
                    gateway,
                    wallet,
                    outcome,
                },
        } => merchant_api::sandbox_barcode(&gateway, &wallet, &outcome).await,
        Command::Rate {
            credentials,
            fee_type,
        } => merchant_api::rate(&credentials, &fee_type).await,
        Command::Refund {
            credentials,
            of,
            amount,
            refund_id,
        } => merchant_api::refund(&credentials, of, amount, refund_id).await,
        Command::Reverse {
            credentials,
            payment_id,
        } => merchant_api::reverse(&credentials, &payment_id).await,
        Command::Events {
            credentials,
            command,
        } => merchant_api::events(&credentials, command).await,
        Command::Bench(args) => {
            let _logs = init_logging(LogFormat::Human, "warn");
            bench::run(args).await
        }
        Command::Merchant {
            command:
                MerchantCommand::Add {
                    name,
                    id,
                    currencies,
                    json,
                    env,
                    config,
                },
        } => {
            let args = config;
            let config = args.load()?;
            let _logs = init_logging(config.server.log_format, "warn");
            add_merchant(&args, &config, name, id, &currencies, env, json).await
        }
        Command::Merchant {
            command: MerchantCommand::RotateAppKey { id, json, config },
        } => {
            let args = config;
            let config = args.load()?;
            let _logs = init_logging(config.server.log_format, "warn");
            let store = args.open_store(&config).await?;
            let merchant = ottgate_server::MerchantId::parse(&id)
                .map_err(|e| anyhow::anyhow!("--id {id}: {e}"))?;
            let key =
                ottgate_server::merchants::rotate_app_key(&*store, &SystemClock, &merchant).await?;
            let hours = ottgate_server::merchants::ROTATION_GRACE.as_secs() / 3600;
            if json {
                let out = serde_json::json!({
                    "merchant_id": id,
                    "app_key": key.expose_secret(),
                    "previous_accepted_hours": hours,
                });
                println!("{out}");
            } else {
                println!("app_key      {}", key.expose_secret());
                println!();
                println!(
                    "shown only now; the previous app key still obtains tokens for {hours} h."
                );
            }
            Ok(())
        }
        Command::Merchant {
            command:
                MerchantCommand::LinkFlows {
                    id,
                    enable,
                    disable,
                    callback_url,
                    json,
                    config,
                },
        } => {
            let args = config;
            let config = args.load()?;
            let _logs = init_logging(config.server.log_format, "warn");
            let change = ottgate_server::LinkChange {
                enabled: (enable || disable).then_some(enable),
                callback_url,
            };
            let store = args.open_store(&config).await?;
            let allow_private = config
                .callbacks
                .allow_private_callbacks
                .unwrap_or(config.sandbox.enabled);
            let link =
                ottgate_server::merchants::change_link_flows(&*store, &id, change, allow_private)
                    .await?;
            if json {
                let out = serde_json::json!({
                    "merchant_id": id,
                    "mer_code": link.mer_code,
                    "enabled": link.enabled,
                    "callback_url": link.callback_url,
                });
                println!("{out}");
            } else {
                println!("merchant_id   {id}");
                println!("mer_code      {}", link.mer_code);
                println!("link flows    {}", if link.enabled { "on" } else { "off" });
                println!(
                    "callback_url  {}",
                    link.callback_url
                        .as_deref()
                        .unwrap_or("(none: h5Pay is refused)")
                );
            }
            Ok(())
        }
        Command::Merchant {
            command:
                MerchantCommand::Fees {
                    id,
                    method,
                    rate,
                    json,
                    config,
                },
        } => {
            let args = config;
            let config = args.load()?;
            let _logs = init_logging(config.server.log_format, "warn");
            let settings = config.resolve(config.server.listen)?;
            let store = args.open_store(&config).await?;
            if let (Some(method), Some(rate)) = (method, rate) {
                let method: PaymentMethod = method.trim().parse()?;
                ottgate_server::merchants::set_fee(&*store, &id, method, rate).await?;
            }
            let own = ottgate_server::merchants::fees(&*store, &id).await?;
            let rows = ottgate_server::service::settlement::with_defaults(&own, &settings);
            if json {
                let out: serde_json::Map<String, serde_json::Value> = rows
                    .iter()
                    .map(|(m, rate, mine)| {
                        (
                            m.code().to_owned(),
                            serde_json::json!({"rate": rate.to_string(), "own": mine}),
                        )
                    })
                    .collect();
                println!("{}", serde_json::json!({"merchant_id": id, "fees": out}));
            } else {
                for (m, rate, mine) in rows {
                    let whose = if mine { "" } else { "  (default)" };
                    println!("{:<10} {rate}{whose}", m.code());
                }
            }
            Ok(())
        }
        Command::Merchant {
            command:
                MerchantCommand::Channels {
                    id,
                    enable,
                    disable,
                    wechat_sub_mch_id,
                    mcc,
                    json,
                    config,
                },
        } => {
            let args = config;
            let config = args.load()?;
            let _logs = init_logging(config.server.log_format, "warn");
            let methods = |codes: Vec<String>| {
                codes
                    .iter()
                    .map(|c| c.trim().parse::<PaymentMethod>())
                    .collect::<Result<Vec<_>, _>>()
            };
            let change = ChannelChange {
                enable: methods(enable)?,
                disable: methods(disable)?,
                wechat_sub_mch_id,
                mcc,
            };
            let store = args.open_store(&config).await?;
            let m = ottgate_server::merchants::change_channels(&*store, &id, change).await?;
            let codes: Vec<&str> = m.methods.iter().map(|m| m.code()).collect();
            let ids = &m.channel_ids;
            if json {
                let out = serde_json::json!({
                    "merchant_id": m.id.as_str(),
                    "methods": codes,
                    "wechat_sub_mch_id": ids.wechat_sub_mch_id,
                    "mcc": ids.mcc,
                });
                println!("{out}");
            } else {
                let or_default =
                    |v: &Option<String>| v.clone().unwrap_or_else(|| "(the deployment's)".into());
                println!("merchant_id        {}", m.id);
                println!("methods            {}", codes.join(","));
                println!("wechat_sub_mch_id  {}", or_default(&ids.wechat_sub_mch_id));
                println!("mcc                {}", or_default(&ids.mcc));
            }
            Ok(())
        }
        Command::User { command } => user(command).await,
        Command::Recon { command } => {
            let _logs = init_logging(LogFormat::Human, "warn");
            recon::run(command).await
        }
        Command::Store {
            command: StoreCommand::Copy { from, to, json },
        } => {
            let _logs = init_logging(LogFormat::Human, "warn");
            copy_store(&from, &to, json).await
        }
        Command::Simulate(args) => simulate(args).await,
        Command::Config {
            command: ConfigCommand::Print(args),
        } => {
            let config = args.load()?;
            ottgate_server::check_config(&config)?;
            print!("{}", config.effective()?.to_masked_toml());
            Ok(())
        }
        Command::Config {
            command: ConfigCommand::Check(args),
        } => {
            let config = args.load()?;
            for note in ottgate_server::check_config(&config)? {
                println!("{note}");
            }
            println!(
                "configuration OK (database {} not contacted)",
                ottgate_server::config::masked_database_url(&config.storage.database_url)
            );
            Ok(())
        }
    }
}

async fn user(command: UserCommand) -> Result<()> {
    let (args, json) = match &command {
        UserCommand::Add { common, .. }
        | UserCommand::Remove { common, .. }
        | UserCommand::ResetPassword { common, .. } => (common.config.clone(), common.json),
    };
    let config = args.load()?;
    let _logs = init_logging(config.server.log_format, "warn");
    let store = args.open_store(&config).await?;
    let created = match command {
        UserCommand::Remove {
            merchant, email, ..
        } => {
            let email = ottgate_server::users::remove_user(&*store, &merchant, &email).await?;
            if json {
                println!("{}", serde_json::json!({ "removed": email }));
            } else {
                println!("removed      {email} (their sessions have ended)");
            }
            return Ok(());
        }
        UserCommand::Add {
            merchant,
            email,
            role,
            ..
        } => {
            let role = match role {
                Role::Admin => ottgate_server::UserRole::Admin,
                Role::Viewer => ottgate_server::UserRole::Viewer,
            };
            ottgate_server::users::add_user(&*store, &SystemClock, &merchant, &email, role).await?
        }
        UserCommand::ResetPassword { email, .. } => {
            ottgate_server::users::reset_password(&*store, &email).await?
        }
    };
    let user = &created.user;
    if json {
        let out = serde_json::json!({
            "email": user.email,
            "password": created.password.expose_secret(),
            "role": user.role.code(),
            "merchant_id": user.merchant_id.as_str(),
        });
        println!("{out}");
    } else {
        println!("email        {}", user.email);
        println!("password     {}", created.password.expose_secret());
        println!("role         {}", user.role.code());
        println!("merchant_id  {}", user.merchant_id);
        println!();
        println!("The password is shown only now; hand it over privately.");
    }
    Ok(())
}

async fn copy_store(from: &str, to: &str, json: bool) -> Result<()> {
    let tables =
        ottgate_server::copy_store(from, to, &ottgate_server::PgOptions::default()).await?;
    if json {
        let tables: Vec<_> = tables
            .iter()
            .map(|t| {
                serde_json::json!({
                    "table": t.table,
                    "source": t.source,
                    "inserted": t.inserted,
                    "destination": t.destination,
                })
            })
            .collect();
        println!("{}", serde_json::json!({ "tables": tables }));
    } else {
        println!(
            "{:<18} {:>10} {:>10} {:>12}",
            "table", "source", "inserted", "destination"
        );
        for t in &tables {
            println!(
                "{:<18} {:>10} {:>10} {:>12}",
                t.table, t.source, t.inserted, t.destination
            );
        }
        println!("every table matches its source");
    }
    Ok(())
}

async fn serve(config: Config) -> Result<()> {
    let _logs = init_logging(config.server.log_format, "info,tokio_postgres=warn");
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("binding {}", config.server.listen))?;
    let bound = listener.local_addr()?;
    let gateway = Gateway::open(&config, bound, Arc::new(SystemClock)).await?;
    tracing::info!(
        listen = %bound,
        public_url = %gateway.settings().public_url,
        sandbox = gateway.settings().sandbox,
        database = %ottgate_server::config::masked_database_url(&config.storage.database_url),
        "ottgate serving"
    );
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    gateway.serve(listener, shutdown, true).await?;
    Ok(())
}

async fn simulate(args: SimulateArgs) -> Result<()> {
    let format = match args.log_format.as_str() {
        "human" => LogFormat::Human,
        "json" => LogFormat::Json,
        other => anyhow::bail!("--log-format must be human or json, not {other:?}"),
    };
    let _logs = init_logging(format, "info");
    anyhow::ensure!(
        args.time_scale.is_finite() && args.time_scale > 0.0,
        "--time-scale must be a positive number"
    );
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let bound = listener.local_addr()?;
    let base = url::Url::parse(
        &args
            .public_url
            .unwrap_or_else(|| format!("http://{bound}/")),
    )
    .context("--public-url")?;
    let sims = ottgate_server::simulate::Standalone::new(&base, args.time_scale)?;
    let config = match &args.write_gateway_config {
        Some(dir) => Some(sims.write_gateway_config(dir)?),
        None => None,
    };
    tracing::info!(
        listen = %bound,
        public_url = %sims.base(),
        gateway_config = config.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        "simulators serving"
    );
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    axum::serve(listener, sims.router())
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    Ok(())
}

/// SIGTERM or Ctrl-C: stop accepting, drain, exit.
async fn stop_on_signal(shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: draining"),
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupt: draining"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    shutdown.cancel();
}

async fn add_merchant(
    args: &ConfigArgs,
    config: &Config,
    name: String,
    id: Option<String>,
    currencies: &[String],
    env: bool,
    json: bool,
) -> Result<()> {
    let currencies = currencies
        .iter()
        .map(|c| c.trim().parse::<Currency>())
        .collect::<Result<Vec<_>, _>>()?;
    let store = args.open_store(config).await?;
    let keyring = ottgate_server::open_keyring(config)?;
    let created = ottgate_server::merchants::create_merchant(
        &*store,
        &keyring,
        &SystemClock,
        NewMerchant {
            name,
            id,
            currencies,
        },
    )
    .await?;
    let m = &created.merchant;
    let c = ottgate_client::MerchantCredentials {
        merchant_id: m.id.to_string(),
        name: m.name.as_str().to_owned(),
        shop_id: m.shop_id.to_string(),
        operator_id: m.operator_id.to_string(),
        sign_key: created.sign_key.expose_secret().to_owned(),
        app_id: m.app_id.clone(),
        app_key: created.app_key.expose_secret().to_owned(),
        webhook_secret: created.webhook_secret.expose_secret().to_owned(),
        currencies: m.currencies.iter().map(|c| c.code().to_owned()).collect(),
        mer_code: created.mer_code.clone(),
    };
    if json {
        println!("{}", serde_json::to_string(&c)?);
    } else if env {
        // What the merchant commands read (`ottgate pay`, `query`, `refund`, `check`, …).
        let gateway = config
            .server
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", config.server.listen));
        for (name, value) in [
            ("OTTGATE_GATEWAY", gateway.as_str()),
            ("OTTGATE_MERCHANT_ID", c.merchant_id.as_str()),
            ("OTTGATE_SHOP_ID", c.shop_id.as_str()),
            ("OTTGATE_OPERATOR_ID", c.operator_id.as_str()),
            ("OTTGATE_SIGN_KEY", c.sign_key.as_str()),
            ("OTTGATE_APP_ID", c.app_id.as_str()),
            ("OTTGATE_APP_KEY", c.app_key.as_str()),
        ] {
            println!("export {name}={}", shell_quote(value));
        }
    } else {
        println!("merchant_id  {}", c.merchant_id);
        println!("name         {}", c.name);
        println!("shop_id      {}", c.shop_id);
        println!("operator_id  {}", c.operator_id);
        println!("sign_key     {}", c.sign_key);
        println!("app_id       {}", c.app_id);
        println!("app_key      {}", c.app_key);
        println!("webhook_secret {}", c.webhook_secret);
        println!("currencies   {}", c.currencies.join(","));
        println!(
            "mer_code     {} (link flows: off until `merchant link-flows --enable`)",
            c.mer_code
        );
        println!();
        println!(
            "sign_key, app_key and webhook_secret are shown only now; store them as secrets \
             (webhook_secret checks the OTTGate-Signature header of every callback)."
        );
    }
    Ok(())
}

/// `value` as one word for a POSIX shell.
fn shell_quote(value: &str) -> String {
    if !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:@".contains(&b))
    {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every option and argument of every command, with the command's path.
    fn undescribed(command: &clap::Command, path: &str, out: &mut Vec<String>) {
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                out.push(format!("{path} --{id}"));
            }
        }
        for sub in command.get_subcommands() {
            undescribed(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn every_option_of_every_command_says_what_it_is() {
        let mut missing = Vec::new();
        undescribed(&Cli::command(), "ottgate", &mut missing);
        assert!(missing.is_empty(), "no description: {missing:#?}");
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
