//! `ottgate simulate`: the simulated Alipay, WeChat Pay and UnionPay on their own, for a
//! gateway in live mode (or any other client of those protocols) to talk to over the
//! network, exactly as it would talk to the wallets. They use the public test keys; the
//! gateway configuration that matches them can be written out.

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use ottgate_channels::alipay::simulator::AlipaySimulator;
use ottgate_channels::alipay::{self, sign::SignType};
use ottgate_channels::simkit::NotifyTargets;
use ottgate_channels::unionpay::simulator::UnionPaySimulator;
use ottgate_channels::wechat::simulator::WeChatSimulator;
use ottgate_channels::{unionpay, wechat};
use std::path::{Path, PathBuf};
use url::Url;

use crate::StartupError;

/// The three simulators, reachable at `base` (`/sim/alipay/…`, `/sim/wechatpay/…`,
/// `/sim/unionpay/…`, as in a sandbox gateway).
#[derive(Debug, Clone)]
pub struct Standalone {
    base: Url,
    alipay: AlipaySimulator,
    wechat: WeChatSimulator,
    unionpay: UnionPaySimulator,
}

fn channel_error(e: ottgate_channels::ChannelError) -> StartupError {
    StartupError::Other(e.to_string())
}

impl Standalone {
    /// `base` is where the simulators are reachable; `time_scale` speeds up their
    /// notification retry schedules (1 = the wallets' real pace).
    pub fn new(base: &Url, time_scale: f64) -> Result<Self, StartupError> {
        let base = &crate::config::with_trailing_slash(base.clone());
        let (_, mut alipay) =
            alipay::sandbox(base, SignType::Rsa2, time_scale).map_err(channel_error)?;
        let (_, mut wechat) = wechat::sandbox(base, wechat::sign::SignType::HmacSha256, time_scale)
            .map_err(channel_error)?;
        let (_, mut unionpay) = unionpay::sandbox(base, time_scale).map_err(channel_error)?;
        // The gateway these serve runs elsewhere: notify any gateway's notification route,
        // and nothing else.
        alipay.notify_targets = NotifyTargets::GatewayRoutes;
        wechat.notify_targets = NotifyTargets::GatewayRoutes;
        unionpay.notify_targets = NotifyTargets::GatewayRoutes;
        Ok(Self {
            base: base.clone(),
            alipay: AlipaySimulator::new(alipay),
            wechat: WeChatSimulator::new(wechat),
            unionpay: UnionPaySimulator::new(unionpay),
        })
    }

    /// Where the simulators are reachable, ending in `/`.
    pub fn base(&self) -> &Url {
        &self.base
    }

    pub fn router(&self) -> Router {
        let index = self.index();
        Router::new()
            .route("/", get(move || async move { Html(index) }))
            .nest_service("/sim/alipay", self.alipay.router())
            .nest_service("/sim/wechatpay", self.wechat.router())
            .nest_service("/sim/unionpay", self.unionpay.router())
    }

    fn url(&self, path: &str) -> String {
        self.base
            .join(path)
            .map_or_else(|_| path.to_owned(), |u| u.to_string())
    }

    fn index(&self) -> String {
        format!(
            "<!doctype html><meta charset=\"utf-8\"><title>ottgate wallet simulators</title>\
             <h1>ottgate wallet simulators</h1><ul>\
             <li>Alipay MAPI gateway: <code>{}</code></li>\
             <li>WeChat Pay v2 API root: <code>{}</code></li>\
             <li>UnionPay 5.1.0 gateway root: <code>{}</code></li></ul>\
             <p>Fault injection: <code>POST …/control</code> on each.</p>",
            self.url("sim/alipay/gateway.do"),
            self.url("sim/wechatpay/"),
            self.url("sim/unionpay/"),
        )
    }

    /// Writes the test keys into `dir` and a gateway configuration that points every
    /// channel at these simulators, in live mode; returns the configuration's path.
    pub fn write_gateway_config(&self, dir: &Path) -> Result<PathBuf, StartupError> {
        let io = |e: std::io::Error| StartupError::Other(format!("{}: {e}", dir.display()));
        std::fs::create_dir_all(dir).map_err(io)?;
        let write = |name: &str, content: &str| -> Result<String, StartupError> {
            let path = dir.join(name);
            std::fs::write(&path, content).map_err(io)?;
            Ok(path.display().to_string())
        };
        // TOML basic strings, quoted and escaped.
        let q = |s: &str| toml::Value::String(s.to_owned()).to_string();
        let ours = q(&write(
            "merchant_private.pem",
            alipay::testkeys::MERCHANT_PRIVATE,
        )?);
        let theirs = q(&write(
            "wallet_public.pem",
            alipay::testkeys::WALLET_PUBLIC,
        )?);
        let toml = format!(
            "# Written by `ottgate simulate`: a live-mode gateway whose channels are the\n\
             # simulators at {base}. Test keys only: never use them with a real wallet.\n\
             sandbox = false\n\
             # The simulators and your callback receiver are probably on this machine.\n\
             allow_private_callbacks = true\n\
             \n\
             [alipay]\n\
             gateway_url = {alipay}\n\
             partner = {partner}\n\
             sign_type = \"RSA2\"\n\
             private_key_file = {ours}\n\
             alipay_public_key_file = {theirs}\n\
             \n\
             [wechatpay]\n\
             api_url = {wechat}\n\
             appid = {appid}\n\
             mch_id = {mch_id}\n\
             sub_mch_id = {sub_mch_id}\n\
             api_key = {api_key}\n\
             sign_type = \"HMAC-SHA256\"\n\
             server_ip = \"127.0.0.1\"\n\
             test_scan_url = {scan}\n\
             \n\
             [unionpay]\n\
             gateway_url = {unionpay}\n\
             mer_id = {mer_id}\n\
             cert_id = {cert_id}\n\
             private_key_file = {ours}\n\
             unionpay_public_key_file = {theirs}\n",
            base = self.base,
            alipay = q(&self.url("sim/alipay/gateway.do")),
            partner = q(alipay::testkeys::PARTNER),
            wechat = q(&self.url("sim/wechatpay/")),
            appid = q(wechat::testkeys::APPID),
            mch_id = q(wechat::testkeys::MCH_ID),
            sub_mch_id = q(wechat::testkeys::SUB_MCH_ID),
            api_key = q(wechat::testkeys::API_KEY),
            scan = q(&self.url("sim/wechatpay/scan")),
            unionpay = q(&self.url("sim/unionpay/")),
            mer_id = q(unionpay::testkeys::MER_ID),
            cert_id = q(unionpay::testkeys::CERT_ID),
        );
        Ok(PathBuf::from(write("gateway.toml", &toml)?))
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
        assert!(!config.sandbox);
        assert_eq!(
            config.alipay.unwrap().gateway_url,
            "http://127.0.0.1:9090/sim/alipay/gateway.do"
        );
        assert_eq!(
            config.wechatpay.unwrap().api_url.as_deref(),
            Some("http://127.0.0.1:9090/sim/wechatpay/")
        );
        let unionpay = config.unionpay.unwrap();
        assert!(unionpay.private_key_file.exists());
        assert!(unionpay.unionpay_public_key_file.exists());
    }
}
