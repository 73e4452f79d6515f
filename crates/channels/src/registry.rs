//! The wallets ottgate reaches, in one table: each is a folder (`alipay/`, `wechat/`,
//! `unionpay/`) with its connector, its simulator and its configuration section, and one
//! [`Wallet`] entry here. The server builds its channels and simulators from [`WALLETS`]
//! and names no wallet itself (docs/wallets.md).

use ottgate_core::{PaymentMethod, Secret};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use url::Url;

use crate::simkit::{NotifyTargets, SimulatedWallet};
use crate::{Channel, ChannelError, SandboxUrls, alipay, unionpay, wechat};

/// A wallet: how it is configured, reached, and simulated.
#[derive(Debug, Clone, Copy)]
pub struct Wallet {
    /// Its configuration section, its `/notify/{name}` and `/sim/{name}/` paths.
    pub name: &'static str,
    pub method: PaymentMethod,
    /// What its simulator's entry point is, for the `ottgate simulate` index page…
    pub title: &'static str,
    /// …and where it is, under `sim/{name}/`.
    pub entry: &'static str,
    /// The live connector, if its section is configured.
    pub live: fn(&WalletSections, &Url) -> LiveChannel,
    /// A connector against the built-in simulator, and that simulator (public test keys).
    pub sandbox: fn(&SandboxUrls, &SandboxOptions) -> Result<Sandboxed, ChannelError>,
    /// The configuration section (TOML) of a live gateway whose wallet is the simulator at
    /// `base` (`ottgate simulate --write-gateway-config`).
    pub simulated_section: fn(&Url, &TestKeyFiles) -> String,
}

/// A wallet's live connector: `None` when its section is not configured.
pub type LiveChannel = Option<Result<Arc<dyn Channel>, ChannelError>>;

/// The live connector a configured `section` makes (`None` when it is absent).
pub fn live<S, C>(
    section: Option<&S>,
    connector: impl FnOnce(&S) -> Result<C, ChannelError>,
) -> LiveChannel
where
    C: Channel + 'static,
{
    Some(connector(section?).map(|c| Arc::new(c) as Arc<dyn Channel>))
}

/// A wallet in a sandbox: the connector, and the simulator it talks to.
#[derive(Debug)]
pub struct Sandboxed {
    pub channel: Arc<dyn Channel>,
    pub simulator: Arc<dyn SimulatedWallet>,
}

impl Sandboxed {
    pub fn of(channel: impl Channel + 'static, simulator: impl SimulatedWallet + 'static) -> Self {
        Self {
            channel: Arc::new(channel),
            simulator: Arc::new(simulator),
        }
    }
}

/// Every wallet ottgate reaches. Adding one: its folder, its entry here, its field in
/// [`WalletSections`] (and a method in `ottgate_core` if it brings a new one).
pub const WALLETS: [Wallet; 3] = [alipay::WALLET, wechat::WALLET, unionpay::WALLET];

/// The live wallets' configuration sections, `[alipay]`, `[wechatpay]`, `[unionpay]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WalletSections {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alipay: Option<alipay::Section>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wechatpay: Option<wechat::Section>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unionpay: Option<unionpay::Section>,
}

/// How the built-in simulators run.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// How much faster than real time notifications are re-sent.
    pub time_scale: f64,
    /// Exchange rates (CNY per unit × 10^8) replacing or adding to the simulated table.
    pub exchange_rates: Vec<(String, u64)>,
    /// Simulators on their own (`ottgate simulate`): they notify any gateway's route
    /// instead of only their own gateway's.
    pub standalone: bool,
}

impl SandboxOptions {
    /// Where the simulators may notify: their own gateway's routes under its internal URL,
    /// or, standalone, any gateway's notification route.
    pub(crate) fn notify_targets(&self, urls: &SandboxUrls) -> NotifyTargets {
        if self.standalone {
            NotifyTargets::GatewayRoutes
        } else {
            NotifyTargets::Under(urls.internal.clone())
        }
    }
}

/// The public test keys, written out for a gateway configuration to point at.
#[derive(Debug, Clone)]
pub struct TestKeyFiles {
    /// Our (the gateway's) private key.
    pub ours: PathBuf,
    /// The simulated wallets' public key.
    pub theirs: PathBuf,
}

impl TestKeyFiles {
    /// Writes the public test keys into `dir`.
    pub fn write(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let keys = Self {
            ours: dir.join("merchant_private.pem"),
            theirs: dir.join("wallet_public.pem"),
        };
        std::fs::write(&keys.ours, crate::alipay::testkeys::MERCHANT_PRIVATE)?;
        std::fs::write(&keys.theirs, crate::alipay::testkeys::WALLET_PUBLIC)?;
        Ok(keys)
    }
}

/// A configured secret: read from a string, printed as `***`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskedString(pub Secret);

impl Serialize for MaskedString {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

impl<'de> Deserialize<'de> for MaskedString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| MaskedString(Secret::new(s)))
    }
}

/// A key or certificate file named in a section.
pub(crate) fn read_file(path: &Path) -> Result<String, ChannelError> {
    std::fs::read_to_string(path)
        .map_err(|e| ChannelError::Config(format!("reading {}: {e}", path.display())))
}

/// `url` as a directory, so that joining a relative path keeps its last segment.
pub fn with_trailing_slash(mut url: Url) -> Url {
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

/// A TOML basic string: quoted and escaped.
pub(crate) fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wallet_has_its_own_name_method_and_section() {
        let names: Vec<&str> = WALLETS.iter().map(|w| w.name).collect();
        assert_eq!(names, ["alipay", "wechatpay", "unionpay"]);
        let sections = serde_json::to_value(WalletSections {
            alipay: None,
            wechatpay: None,
            unionpay: None,
        })
        .unwrap();
        assert_eq!(sections, serde_json::json!({}));
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
