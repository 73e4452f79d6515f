//! Which channel serves each method: in live mode the wallets whose sections are
//! configured; in sandbox mode, for every other wallet, its built-in simulator (on the
//! gateway itself, with the public test keys: buyers reach it at the public URL, the
//! gateway at its own address); the sandbox wallet only for card checkout and unconfigured
//! methods, and only in sandbox mode. The wallets come from the registry
//! (docs/wallets.md): nothing here names one.

use ottgate_channels::simkit::Simulators;
use ottgate_channels::{Channels, SandboxOptions, SandboxUrls, WALLETS};

use crate::StartupError;
use crate::config::{Config, Settings};

fn channel_error(e: ottgate_channels::ChannelError) -> StartupError {
    StartupError::Other(e.to_string())
}

pub fn build(config: &Config, settings: &Settings) -> Result<(Channels, Simulators), StartupError> {
    let public = &settings.public_url;
    let urls = SandboxUrls {
        public: public.clone(),
        internal: settings.internal_url.clone(),
    };
    let options = SandboxOptions {
        time_scale: config.simulator_time_scale,
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
