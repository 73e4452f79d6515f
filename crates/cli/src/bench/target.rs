//! What `ottgate bench` measures: a gateway it spawns as a child process (so the server's
//! CPU time and memory can be read apart from the load generator's), or one already
//! running (`--url` and the merchant's credentials).

use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub use ottgate_client::MerchantCredentials as Credentials;

/// Whether `GET /healthz` at `addr` answers 200 (plain HTTP/1.0 over a socket: the bench
/// has no runtime yet when it starts the gateway).
fn healthy(addr: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /healthz HTTP/1.0\r\nHost: bench\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.ends_with(b" 200")
}

/// The gateway under load.
pub struct Target {
    /// `http://host:port` (no trailing slash).
    pub base: String,
    pub credentials: Credentials,
    /// What it runs on, for the report.
    pub description: String,
    child: Option<Child>,
    /// A spawned gateway's configuration (`OTTGATE_*` variables, its listen address
    /// included), for running other `ottgate` commands on the same deployment.
    env: Vec<(&'static str, String)>,
    _dir: Option<tempfile::TempDir>,
}

/// A server process's resource use so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// User + system CPU time of every thread.
    pub cpu: Duration,
    pub rss_kib: u64,
}

impl Target {
    /// `ottgate serve` as a child process on a throwaway SQLite file (or `database_url`,
    /// with a master key for this run), with a merchant added first.
    pub fn spawn(database_url: Option<&str>, one_commit_per_request: bool) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let exe = std::env::current_exe().context("the ottgate binary")?;
        let mut env: Vec<(&'static str, String)> = Vec::new();
        let description = match database_url {
            Some(url) => {
                env.push(("OTTGATE_DATABASE_URL", url.to_owned()));
                let key: String = (0..32)
                    .map(|_| format!("{:02x}", rand::random::<u8>()))
                    .collect();
                env.push(("OTTGATE_MASTER_KEY", key));
                format!(
                    "PostgreSQL (synchronous_commit=on) at {}",
                    ottgate_server::config::masked_database_url(url)
                )
            }
            None => {
                let path = dir.path().join("ottgate.db");
                env.push((
                    "OTTGATE_DATABASE_URL",
                    format!("sqlite://{}", path.display()),
                ));
                let commits = if one_commit_per_request {
                    env.push(("OTTGATE_SQLITE_MAX_BATCH", "1".to_owned()));
                    "one commit per write"
                } else {
                    "group commit"
                };
                format!(
                    "SQLite (WAL, synchronous=FULL, {commits}) in {}",
                    dir.path().display()
                )
            }
        };
        let command = |args: &[&str]| {
            let mut c = Command::new(&exe);
            c.args(args);
            for (key, value) in &env {
                c.env(key, value);
            }
            c
        };
        let out = command(&[
            "merchant",
            "add",
            "--name",
            "Bench",
            "--currencies",
            "CAD",
            "--json",
            "--create",
        ])
        .output()?;
        if !out.status.success() {
            bail!(
                "merchant add failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let credentials: Credentials = serde_json::from_slice(&out.stdout)?;
        // A free port, then the gateway's /healthz: whatever RUST_LOG says (set it to
        // `warn` to measure without request logging), readiness does not depend on a log line.
        let listen = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
            probe.local_addr()?.to_string()
        };
        let mut child = command(&["serve", "--listen", &listen, "--log-format", "json"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = BufReader::new(child.stderr.take().context("server stderr")?);
        // Keep draining its log so it never blocks.
        std::thread::spawn(move || for _ in stderr.lines().map_while(Result::ok) {});
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !healthy(&listen) {
            if let Some(status) = child.try_wait()? {
                bail!("the spawned gateway exited ({status})");
            }
            if std::time::Instant::now() > deadline {
                bail!("the spawned gateway did not start within 60 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        env.push(("OTTGATE_LISTEN", listen.clone()));
        Ok(Self {
            base: format!("http://{listen}"),
            env,
            credentials,
            description: format!(
                "a spawned ottgate serve (pid {}) on {description}",
                child.id()
            ),
            child: Some(child),
            _dir: Some(dir),
        })
    }

    /// A gateway already running at `url`.
    pub fn running(url: &str, credentials: Credentials) -> Self {
        Self {
            base: url.trim_end_matches('/').to_owned(),
            credentials,
            description: format!("the gateway at {url}"),
            child: None,
            env: Vec::new(),
            _dir: None,
        }
    }

    /// `ottgate <args>` on the spawned gateway's deployment (its database, keys and
    /// address); `None` for a gateway running elsewhere.
    pub fn command(&self, args: &[&str]) -> Option<Command> {
        self.child.as_ref()?;
        let mut c = Command::new(std::env::current_exe().ok()?);
        c.args(args);
        for (key, value) in &self.env {
            c.env(key, value);
        }
        Some(c)
    }

    /// The spawned server's resource use (`None` for a gateway running elsewhere).
    pub fn usage(&self) -> Option<Usage> {
        let pid = self.child.as_ref()?.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name (which may hold spaces) start at state (3rd).
        let rest = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
        // utime and stime are fields 14 and 15 of the whole line; USER_HZ is 100 on Linux.
        let cpu_ticks = ticks(11)? + ticks(12)?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        Some(Usage {
            cpu: Duration::from_millis(cpu_ticks * 10),
            rss_kib,
        })
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}
