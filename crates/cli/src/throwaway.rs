//! A gateway for one command's lifetime: a temporary SQLite database, a free loopback
//! port, workers running. Used by `demo`.

use anyhow::Result;
use ottgate_server::{Config, Gateway, SystemClock};
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub struct Throwaway {
    pub gateway: Gateway,
    /// `http://127.0.0.1:<port>`
    pub base: String,
    /// Holds the database until the gateway is dropped.
    _dir: tempfile::TempDir,
    shutdown: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
}

impl Throwaway {
    /// Starts the gateway; `adjust` may change the configuration (the database and listen
    /// address are set here).
    pub async fn start(adjust: impl FnOnce(&mut Config)) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut config = Config::default();
        adjust(&mut config);
        config.storage.database_url =
            format!("sqlite://{}", dir.path().join("ottgate.db").display());
        config.server.listen = "127.0.0.1:0".parse()?;
        let listener = tokio::net::TcpListener::bind(config.server.listen).await?;
        let bound = listener.local_addr()?;
        let gateway = Gateway::open(&config, bound, Arc::new(SystemClock)).await?;
        let shutdown = CancellationToken::new();
        let server = {
            let (gateway, shutdown) = (gateway.clone(), shutdown.clone());
            tokio::spawn(async move { gateway.serve(listener, shutdown, true).await })
        };
        Ok(Self {
            gateway,
            base: format!("http://{bound}"),
            _dir: dir,
            shutdown,
            server,
        })
    }

    /// Stops it the way SIGTERM would, waiting for in-flight work.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.server.await;
    }
}
