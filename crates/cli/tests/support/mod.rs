//! What the tests of the `ottgate` binary share: running it, the credentials `merchant add`
//! prints, and `ottgate serve` as a child process.
#![allow(dead_code, reason = "each test binary uses the part it needs; the rest is not dead code")]

use ottgate_client::PrepayInitRequest;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The SQLite database of a deployment kept in `dir`.
pub fn db_url(dir: &std::path::Path) -> String {
    format!("sqlite://{}", dir.join("ottgate.db").display())
}

/// `ottgate merchant add` on the SQLite deployment in `dir` (CAD and USD).
pub fn add_merchant(dir: &std::path::Path, name: &str) -> Credentials {
    let out = run(ottgate()
        .args([
            "merchant",
            "add",
            "--name",
            name,
            "--currencies",
            "CAD,USD",
            "--json",
            // A test's deployment may be made by its first merchant.
            "--create",
        ])
        .env("OTTGATE_DATABASE_URL", db_url(dir)));
    serde_json::from_slice(&out.stdout).unwrap()
}

pub fn ottgate() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ottgate"));
    // Only what each test sets: never a developer's own configuration.
    for (k, _) in std::env::vars() {
        if k.starts_with("OTTGATE_") {
            c.env_remove(k);
        }
    }
    c
}

pub fn run(c: &mut Command) -> Output {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{c:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub use ottgate_client::MerchantCredentials as Credentials;

/// `ottgate serve` as a child process, its log (JSON lines, trace level) kept in memory.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub fn start(dir: &std::path::Path) -> Self {
        Self::start_with(dir, &[])
    }

    /// [`Self::start`] with these `OTTGATE_*` variables set as well.
    pub fn start_with(dir: &std::path::Path, env: &[(&str, &str)]) -> Self {
        let mut command = ottgate();
        for (key, value) in env {
            command.env(key, value);
        }
        Self::launch(
            command.args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--log-format",
                "json",
                "--database-url",
                &db_url(dir),
            ]),
            "ottgate serving",
        )
    }

    /// `ottgate serve` on a free port, configured by `env` (`OTTGATE_*` variables) alone.
    pub fn serve(env: &[(&str, &str)]) -> Self {
        let mut command = ottgate();
        command.args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"]);
        for (key, value) in env {
            command.env(key, value);
        }
        Self::launch(&mut command, "ottgate serving")
    }

    /// Spawns `command` and waits for its JSON log line `ready` naming where it listens.
    pub fn launch(command: &mut Command, ready: &'static str) -> Self {
        let mut child = command
            .env("RUST_LOG", "trace")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in stderr.lines().map_while(Result::ok) {
                    if line.contains(ready) {
                        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                        let _ = tx.send(v["fields"]["listen"].as_str().unwrap().to_owned());
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        let listen = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the server reports where it listens");
        Self {
            child,
            base: format!("http://{listen}"),
            log,
        }
    }

    pub fn terminate(&mut self) -> std::process::ExitStatus {
        run(Command::new("kill").args(["-TERM", &self.child.id().to_string()]));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ottgate simulate` on a free port (notifications 3,600 times faster), writing the
/// gateway configuration that reaches it into `config_dir` — the standalone wallets an
/// operator runs beside live-mode or several gateways.
pub fn simulators(config_dir: &std::path::Path) -> Server {
    Server::launch(
        ottgate().args([
            "simulate",
            "--listen",
            "127.0.0.1:0",
            "--time-scale",
            "3600",
            "--log-format",
            "json",
            "--write-gateway-config",
            config_dir.to_str().unwrap(),
        ]),
        "simulators serving",
    )
}

/// Where a redirect points.
pub fn location(r: &reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_owned()
}

/// A free port on loopback (for a gateway whose address must be known before it starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A PREPAY_INIT of `amount` cents in `currency` under `reference`, called back at
/// `callback`.
pub fn order(
    c: &Credentials,
    reference: &str,
    callback: &str,
    amount: &str,
    currency: &str,
) -> PrepayInitRequest {
    PrepayInitRequest {
        merchant_id: Some(c.merchant_id.clone()),
        shop_id: Some(c.shop_id.clone()),
        operator_id: Some(c.operator_id.clone()),
        prepay_order_id: Some(reference.into()),
        sale_num: Some("1".into()),
        amount: Some(amount.into()),
        currency_type: Some(currency.into()),
        biz_type: Some("PREPAY".into()),
        redirect_url: Some("https://shop.example/done".into()),
        call_back_url: Some(callback.into()),
        duration: Some("600".into()),
        email: None,
        remarks: None,
    }
}

/// The buyer at the standalone simulated Alipay (`ottgate simulate` at `sims`): opens the
/// signed request at `wallet` (where the gateway sent the browser) and pays. Returns the
/// trade (the gateway's attempt id) and the cashier's answer (a redirect back).
pub async fn pay_at_simulated_alipay(
    http: &reqwest::Client,
    sims: &str,
    wallet: &url::Url,
) -> (String, reqwest::Response) {
    use ottgate_testkit::Fetch;
    assert!(wallet.as_str().starts_with(sims), "{wallet}");
    assert_eq!(http.get(wallet.clone()).fetch().await.status(), 200);
    let trade = wallet
        .query_pairs()
        .find(|(k, _)| k == "out_trade_no")
        .unwrap()
        .1
        .into_owned();
    let paid = http
        .post(format!("{sims}/sim/alipay/cashier/{trade}"))
        .form(&[("action", "pay")])
        .fetch()
        .await;
    (trade, paid)
}
