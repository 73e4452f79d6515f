//! `ottgate simulate`: the simulated wallets on their own, for a gateway in live mode (or
//! any other client of those protocols) to talk to over the network, exactly as it would
//! talk to the wallets. They use the public test keys; the gateway configuration that
//! matches them can be written out. The wallets come from the registry (docs/wallets.md).

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use ottgate_channels::simkit::Simulators;
use ottgate_channels::{SandboxOptions, SandboxUrls, TestKeyFiles, WALLETS, with_trailing_slash};
use std::path::{Path, PathBuf};
use url::Url;

use crate::StartupError;

/// Every simulator, reachable at `base` (`/sim/{wallet}/…`, as in a sandbox gateway).
#[derive(Debug, Clone)]
pub struct Standalone {
    base: Url,
    simulators: Simulators,
}

impl Standalone {
    /// `base` is where the simulators are reachable; `time_scale` speeds up their
    /// notification retry schedules (1 = the wallets' real pace).
    pub fn new(base: &Url, time_scale: f64) -> Result<Self, StartupError> {
        let base = with_trailing_slash(base.clone());
        // The gateway these serve runs elsewhere: they notify any gateway's notification
        // route, and nothing else.
        let options = SandboxOptions {
            time_scale,
            exchange_rates: Vec::new(),
            standalone: true,
        };
        let mut simulators = Simulators::default();
        for wallet in WALLETS {
            let sandboxed = (wallet.sandbox)(&SandboxUrls::from(&base), &options)
                .map_err(|e| StartupError::Other(e.to_string()))?;
            simulators.add(sandboxed.simulator);
        }
        Ok(Self { base, simulators })
    }

    /// Where the simulators are reachable, ending in `/`.
    pub fn base(&self) -> &Url {
        &self.base
    }

    pub fn router(&self) -> Router {
        let index = self.index();
        self.simulators
            .mount(Router::new().route("/", get(move || async move { Html(index) })))
    }

    fn index(&self) -> String {
        let entries: String = WALLETS
            .iter()
            .map(|w| {
                format!(
                    "<li>{}: <code>{}sim/{}/{}</code></li>",
                    w.title, self.base, w.name, w.entry
                )
            })
            .collect();
        format!(
            "<!doctype html><meta charset=\"utf-8\"><title>ottgate wallet simulators</title>\
             <h1>ottgate wallet simulators</h1><ul>{entries}</ul>\
             <p>Fault injection: <code>POST …/control</code> on each.</p>"
        )
    }

    /// Writes the test keys into `dir` and a gateway configuration that points every
    /// channel at these simulators, in live mode; returns the configuration's path.
    pub fn write_gateway_config(&self, dir: &Path) -> Result<PathBuf, StartupError> {
        let io = |e: std::io::Error| StartupError::Other(format!("{}: {e}", dir.display()));
        let keys = TestKeyFiles::write(dir).map_err(io)?;
        let mut toml = format!(
            "# Written by `ottgate simulate`: a live-mode gateway whose channels are the\n\
             # simulators at {base}. Test keys only: never use them with a real wallet.\n\
             sandbox = false\n\
             # The simulators and your callback receiver are probably on this machine.\n\
             allow_private_callbacks = true\n",
            base = self.base,
        );
        for wallet in WALLETS {
            toml.push('\n');
            toml.push_str(&(wallet.simulated_section)(&self.base, &keys));
        }
        let path = dir.join("gateway.toml");
        std::fs::write(&path, toml).map_err(io)?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn the_written_configuration_loads_and_names_every_channel() {
        let dir = tempfile::tempdir().unwrap();
        let base = Url::parse("http://127.0.0.1:9090/").unwrap();
        let sims = Standalone::new(&base, 1.0).unwrap();
        let path = sims.write_gateway_config(dir.path()).unwrap();
        let config = Config::load(
            Some(&path),
            std::collections::BTreeMap::<String, String>::new(),
        )
        .unwrap();
        assert!(!config.sandbox.enabled);
        assert_eq!(
            config.wallets.alipay.unwrap().gateway_url,
            "http://127.0.0.1:9090/sim/alipay/gateway.do"
        );
        assert_eq!(
            config.wallets.wechatpay.unwrap().api_url.as_deref(),
            Some("http://127.0.0.1:9090/sim/wechatpay/")
        );
        let unionpay = config.wallets.unionpay.unwrap();
        assert!(unionpay.private_key_file.exists());
        assert!(unionpay.unionpay_public_key_file.exists());
    }
}
