//! WeChat Pay in the wallet registry: its `[wechatpay]` section, the live connector built
//! from it, and the sandbox pair (connector + simulator) with the public test keys.

use ottgate_core::{PaymentMethod, Secret};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use url::Url;

use super::sign::SignType;
use super::simulator::WeChatSimulator;
use super::{WeChatConfig, WeChatConnector, WeChatOAuth, testkeys};
use crate::registry::{
    MaskedString, SandboxOptions, Sandboxed, TestKeyFiles, Wallet, live, read_file, toml_string,
    with_trailing_slash,
};
use crate::{ChannelError, SandboxUrls, url_under};

pub const WALLET: Wallet = Wallet {
    name: "wechatpay",
    method: PaymentMethod::WeChatPay,
    title: "WeChat Pay v2 API root",
    entry: "",
    live: |sections, public| live(sections.wechatpay.as_ref(), |s| s.connector(public)),
    sandbox,
    simulated_section,
};

/// `[wechatpay]`: the acquirer's WeChat Pay (API v2, institutional mode) account.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    /// The API root; default `https://apihk.mch.weixin.qq.com/`.
    #[serde(default)]
    pub api_url: Option<String>,
    pub appid: String,
    /// The institution's merchant id.
    pub mch_id: String,
    /// The shop's sub-merchant id under the institution.
    pub sub_mch_id: String,
    pub api_key: MaskedString,
    /// `MD5` or `HMAC-SHA256` (the default).
    #[serde(default)]
    pub sign_type: Option<String>,
    /// `spbill_create_ip` for QR (NATIVE) orders: this server's public address.
    pub server_ip: String,
    /// A PEM file with the API client certificate and its private key, which WeChat
    /// requires for refunds.
    #[serde(default)]
    pub client_identity_file: Option<PathBuf>,
    /// Only for a simulated WeChat Pay (`ottgate simulate`): the page that does what
    /// scanning a QR code would, linked from the QR page.
    #[serde(default)]
    pub test_scan_url: Option<String>,
    /// The Official Account's AppSecret (of `appid`): WeChat signs a buyer in inside its
    /// browser with it, for REST `weixin/public-pay`. Without it that route is refused.
    #[serde(default)]
    pub app_secret: Option<MaskedString>,
    /// Only for a simulated WeChat Pay: its sign-in page, code exchange and JavaScript
    /// bridge, in place of WeChat's.
    #[serde(default)]
    pub test_oauth_base: Option<String>,
}

impl Section {
    /// The live connector; notifications come to `{public_url}notify/wechatpay`.
    pub fn connector(&self, public_url: &Url) -> Result<WeChatConnector, ChannelError> {
        let bad = |m: &str| ChannelError::Config(format!("[wechatpay] {m}"));
        let sign_type = match self.sign_type.as_deref() {
            None | Some("HMAC-SHA256") => SignType::HmacSha256,
            Some("MD5") => SignType::Md5,
            Some(_) => return Err(bad("sign_type must be MD5 or HMAC-SHA256")),
        };
        let api_url = self
            .api_url
            .as_deref()
            .unwrap_or("https://apihk.mch.weixin.qq.com/");
        let api_url =
            with_trailing_slash(Url::parse(api_url).map_err(|e| bad(&format!("api_url: {e}")))?);
        let client_identity_pem = match &self.client_identity_file {
            Some(path) => Some(Secret::new(read_file(path)?)),
            None => {
                tracing::warn!(
                    "[wechatpay] has no client_identity_file: WeChat Pay will refuse refunds"
                );
                None
            }
        };
        WeChatConnector::new(WeChatConfig {
            api_url,
            appid: self.appid.clone(),
            mch_id: self.mch_id.clone(),
            sub_mch_id: self.sub_mch_id.clone(),
            api_key: self.api_key.0.clone(),
            sign_type,
            notify_url: url_under(public_url, "notify/wechatpay")?,
            server_ip: self.server_ip.clone(),
            test_scan_url: self
                .test_scan_url
                .as_deref()
                .map(Url::parse)
                .transpose()
                .map_err(|e| bad(&format!("test_scan_url: {e}")))?,
            client_identity_pem,
            oauth: self.oauth()?,
            test_mode: false,
        })
    }

    /// WeChat's sign-in endpoints, or a simulator's under `test_oauth_base`.
    fn oauth(&self) -> Result<WeChatOAuth, ChannelError> {
        let secret = self.app_secret.as_ref().map(|s| s.0.clone());
        let Some(base) = &self.test_oauth_base else {
            return WeChatOAuth::live(secret);
        };
        let base = with_trailing_slash(
            Url::parse(base)
                .map_err(|e| ChannelError::Config(format!("[wechatpay] test_oauth_base: {e}")))?,
        );
        Ok(WeChatOAuth {
            authorize_url: url_under(&base, "connect/oauth2/authorize")?,
            token_url: url_under(&base, "sns/oauth2/access_token")?,
            app_secret: secret,
            bridge_script: Some(url_under(&base, "jsbridge.js")?),
        })
    }
}

fn sandbox(urls: &SandboxUrls, options: &SandboxOptions) -> Result<Sandboxed, ChannelError> {
    let (config, mut sim) = super::sandbox(urls.clone(), SignType::HmacSha256, options.time_scale)?;
    sim.exchange_rates
        .extend(options.exchange_rates.iter().cloned());
    sim.notify_targets = options.notify_targets(urls);
    Ok(Sandboxed::of(
        WeChatConnector::new(config)?,
        WeChatSimulator::new(sim),
    ))
}

fn simulated_section(base: &Url, _keys: &TestKeyFiles) -> String {
    format!(
        "[wechatpay]\n\
         api_url = {api}\n\
         appid = {appid}\n\
         mch_id = {mch_id}\n\
         sub_mch_id = {sub_mch_id}\n\
         api_key = {api_key}\n\
         sign_type = \"HMAC-SHA256\"\n\
         server_ip = \"127.0.0.1\"\n\
         test_scan_url = {scan}\n\
         app_secret = {app_secret}\n\
         test_oauth_base = {oauth}\n",
        api = toml_string(&format!("{base}sim/wechatpay/")),
        appid = toml_string(testkeys::APPID),
        mch_id = toml_string(testkeys::MCH_ID),
        sub_mch_id = toml_string(testkeys::SUB_MCH_ID),
        api_key = toml_string(testkeys::API_KEY),
        scan = toml_string(&format!("{base}sim/wechatpay/scan")),
        app_secret = toml_string(testkeys::APP_SECRET),
        oauth = toml_string(&format!("{base}sim/wechatpay/")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_sign_type_is_refused_with_its_section_named() {
        let section = Section {
            api_url: None,
            appid: "wx1".into(),
            mch_id: "10".into(),
            sub_mch_id: "11".into(),
            api_key: MaskedString(Secret::new("k")),
            sign_type: Some("SHA1".into()),
            server_ip: "203.0.113.9".into(),
            client_identity_file: None,
            test_scan_url: None,
            app_secret: None,
            test_oauth_base: None,
        };
        let public = Url::parse("https://pay.example.com/").unwrap();
        let err = section.connector(&public).unwrap_err().to_string();
        assert!(err.contains("[wechatpay] sign_type"), "{err}");
        let fine = Section {
            sign_type: None,
            ..section
        };
        assert!(fine.connector(&public).is_ok());
    }
}
