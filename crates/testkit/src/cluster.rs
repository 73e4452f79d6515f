//! PostgreSQL clusters of a test's own, for what the shared test cluster must not suffer:
//! being stopped, killed, or failed over to a standby. They run from the server binaries
//! and as the user the test command names (`OTTGATE_TEST_PG_BIN`, `OTTGATE_TEST_PG_USER`:
//! PostgreSQL refuses to run as root), on loopback ports of their own, in temporary
//! directories removed when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;

/// One cluster: its data directory and port.
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    port: u16,
    running: bool,
}

fn bin(tool: &str) -> PathBuf {
    let dir = std::env::var("OTTGATE_TEST_PG_BIN").unwrap_or_else(|_| {
        panic!("OTTGATE_TEST_PG_BIN is not set: run the suite with scripts/test.sh")
    });
    Path::new(&dir).join(tool)
}

/// `tool args…` as the cluster user; panics with its output when it fails.
fn run_as_pg_user(tool: &str, args: &[&str]) {
    let user = std::env::var("OTTGATE_TEST_PG_USER").unwrap_or_default();
    let tool = bin(tool);
    let mut command = if is_root() && !user.is_empty() {
        let mut c = Command::new("runuser");
        c.args(["-u", &user, "--"]).arg(&tool);
        c
    } else {
        Command::new(&tool)
    };
    let out = command.args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{} {args:?} failed:\n{}\n{}",
        tool.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.starts_with(b"0\n"))
}

/// A new directory the cluster user may write.
fn cluster_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ottgate-cluster-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let user = std::env::var("OTTGATE_TEST_PG_USER").unwrap_or_default();
    if is_root() && !user.is_empty() {
        let ok = Command::new("chown")
            .arg(format!("{user}:"))
            .arg(&dir)
            .status()
            .unwrap();
        assert!(ok.success(), "chown {user} {}", dir.display());
    }
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Cluster {
    /// A new primary, started. `settings` are extra `postgresql.conf` lines.
    pub fn primary(settings: &[&str]) -> Self {
        let mut cluster = Self::initialised(settings);
        cluster.start();
        cluster
    }

    /// A new primary that takes TLS connections only, with a fresh self-signed certificate
    /// for 127.0.0.1; started. Returns it and the certificate's path (to trust).
    pub fn primary_tls_only() -> (Self, PathBuf) {
        let mut cluster = Self::initialised(&["ssl = on"]);
        let data = cluster.dir.join("data");
        let cert = data.join("server.crt");
        let key = data.join("server.key");
        // A CA of the test's own, and the server's certificate for 127.0.0.1 signed by it
        // (a verifier refuses a CA certificate used as the server's own).
        let (ca_cert, ca_key, csr, ext) = (
            cluster.dir.join("ca.crt"),
            cluster.dir.join("ca.key"),
            cluster.dir.join("server.csr"),
            cluster.dir.join("server.ext"),
        );
        std::fs::write(
            &ext,
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        let openssl = |args: &[&std::ffi::OsStr]| {
            let out = Command::new("openssl").args(args).output().unwrap();
            assert!(
                out.status.success(),
                "openssl: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let os = |s: &'static str| std::ffi::OsStr::new(s);
        openssl(&[
            os("req"),
            os("-x509"),
            os("-newkey"),
            os("rsa:2048"),
            os("-nodes"),
            os("-days"),
            os("1"),
            os("-subj"),
            os("/CN=ottgate test CA"),
            os("-keyout"),
            ca_key.as_os_str(),
            os("-out"),
            ca_cert.as_os_str(),
        ]);
        openssl(&[
            os("req"),
            os("-newkey"),
            os("rsa:2048"),
            os("-nodes"),
            os("-subj"),
            os("/CN=127.0.0.1"),
            os("-keyout"),
            key.as_os_str(),
            os("-out"),
            csr.as_os_str(),
        ]);
        openssl(&[
            os("x509"),
            os("-req"),
            os("-in"),
            csr.as_os_str(),
            os("-CA"),
            ca_cert.as_os_str(),
            os("-CAkey"),
            ca_key.as_os_str(),
            os("-CAcreateserial"),
            os("-days"),
            os("1"),
            os("-extfile"),
            ext.as_os_str(),
            os("-out"),
            cert.as_os_str(),
        ]);
        let user = std::env::var("OTTGATE_TEST_PG_USER").unwrap_or_default();
        if is_root() && !user.is_empty() {
            for file in [&cert, &key] {
                assert!(
                    Command::new("chown")
                        .arg(format!("{user}:"))
                        .arg(file)
                        .status()
                        .unwrap()
                        .success()
                );
            }
        }
        assert!(
            Command::new("chmod")
                .arg("600")
                .arg(&key)
                .status()
                .unwrap()
                .success()
        );
        // Plain TCP is refused before anything else is looked at.
        let hba = data.join("pg_hba.conf");
        let rules = std::fs::read_to_string(&hba).unwrap();
        std::fs::write(&hba, format!("hostnossl all all 0.0.0.0/0 reject\n{rules}")).unwrap();
        cluster.start();
        (cluster, ca_cert)
    }

    fn initialised(settings: &[&str]) -> Self {
        let dir = cluster_dir();
        let data = dir.join("data");
        run_as_pg_user(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let mut hba = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("pg_hba.conf"))
            .unwrap();
        std::io::Write::write_all(&mut hba, b"host replication all 127.0.0.1/32 trust\n").unwrap();
        let mut cluster = Self {
            dir,
            port: free_port(),
            running: false,
        };
        cluster.configure(settings);
        cluster
    }

    /// A streaming standby of `primary`, started, named `name` (for
    /// `synchronous_standby_names`).
    pub fn standby_of(primary: &Cluster, name: &str) -> Self {
        let dir = cluster_dir();
        let data = dir.join("data");
        let port = primary.port.to_string();
        run_as_pg_user(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-D",
                data.to_str().unwrap(),
                "-R",
                "-X",
                "stream",
            ],
        );
        let mut cluster = Self {
            dir,
            port: free_port(),
            running: false,
        };
        let conninfo = format!(
            "primary_conninfo = 'host=127.0.0.1 port={port} user=postgres application_name={name}'"
        );
        // Promoted, it has no standby of its own: it must not wait for one on every commit
        // (the primary's synchronous_standby_names came along in the base backup).
        cluster.configure(&[&conninfo, "synchronous_standby_names = ''"]);
        cluster.start();
        cluster
    }

    fn data(&self) -> String {
        self.dir.join("data").to_str().unwrap().to_owned()
    }

    fn configure(&mut self, settings: &[&str]) {
        let mut lines = vec![
            "listen_addresses = '127.0.0.1'".to_owned(),
            format!("port = {}", self.port),
            format!("unix_socket_directories = '{}'", self.dir.display()),
            "max_connections = 200".to_owned(),
        ];
        lines.extend(settings.iter().map(|s| (*s).to_owned()));
        let conf = self.dir.join("data").join("postgresql.auto.conf");
        let mut text = std::fs::read_to_string(&conf).unwrap_or_default();
        for line in lines {
            text.push_str(&line);
            text.push('\n');
        }
        std::fs::write(&conf, text).unwrap();
    }

    pub fn start(&mut self) {
        let log = self.dir.join("server.log");
        run_as_pg_user(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        self.running = true;
    }

    /// Stops the server at once, as a crash or a pulled cable would (no checkpoint).
    pub fn kill(&mut self) {
        run_as_pg_user("pg_ctl", &["-D", &self.data(), "-m", "immediate", "stop"]);
        self.running = false;
    }

    /// Makes a standby the primary.
    pub fn promote(&self) {
        run_as_pg_user("pg_ctl", &["-D", &self.data(), "-w", "promote"]);
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host:port` for a (multi-host) URL.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The URL of database `db` on this cluster.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@{}/{db}", self.host())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.running {
            let _ = std::panic::catch_unwind(|| {
                run_as_pg_user("pg_ctl", &["-D", &self.data(), "-m", "immediate", "stop"]);
            });
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
