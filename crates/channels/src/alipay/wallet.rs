//! Alipay in the wallet registry: its `[alipay]` section, the live connector built from
//! it, and the sandbox pair (connector + simulator) with the public test keys.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use url::Url;

use super::sign::{SignType, SigningMaterial, VerifyingMaterial};
use super::simulator::AlipaySimulator;
use super::{AlipayConfig, AlipayConnector, private_key_pem, public_key_pem, testkeys};
use crate::registry::{
    MaskedString, SandboxOptions, Sandboxed, TestKeyFiles, Wallet, live, read_file, toml_string,
};
use crate::{ChannelError, SandboxUrls, url_under};
use ottgate_core::PaymentMethod;

pub const WALLET: Wallet = Wallet {
    name: "alipay",
    method: PaymentMethod::Alipay,
    title: "Alipay MAPI gateway",
    entry: "gateway.do",
    live: |sections, public| live(sections.alipay.as_ref(), |s| s.connector(public)),
    sandbox,
    simulated_section,
};

/// `[alipay]`: the acquirer's Alipay cross-border MAPI account.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    /// e.g. `https://intlmapi.alipay.com/gateway.do`
    pub gateway_url: String,
    /// The PID (16 digits starting 2088).
    pub partner: String,
    /// `MD5`, `RSA` or `RSA2`.
    pub sign_type: String,
    /// For MD5.
    pub md5_key: Option<MaskedString>,
    /// For RSA/RSA2: our private key (PKCS#8 or PKCS#1 PEM).
    pub private_key_file: Option<PathBuf>,
    /// For RSA/RSA2: Alipay's public key (PEM).
    pub alipay_public_key_file: Option<PathBuf>,
    /// `secondary_merchant_industry`; default 5331.
    #[serde(default)]
    pub industry: Option<String>,
    /// Confirm every notification with Alipay's `notify_verify` before applying it;
    /// default true.
    #[serde(default)]
    pub notify_verify: Option<bool>,
}

impl Section {
    /// The live connector; notifications come to `{public_url}notify/alipay`.
    pub fn connector(&self, public_url: &Url) -> Result<AlipayConnector, ChannelError> {
        let bad = |m: &str| ChannelError::Config(format!("[alipay] {m}"));
        let sign_type = SignType::parse(&self.sign_type)
            .ok_or_else(|| bad("sign_type must be MD5, RSA or RSA2"))?;
        let (signing, verifying) = match sign_type {
            SignType::Md5 => {
                let key = self
                    .md5_key
                    .as_ref()
                    .ok_or_else(|| bad("md5_key is required for MD5"))?;
                (
                    SigningMaterial::Md5(key.0.clone()),
                    VerifyingMaterial::Md5(key.0.clone()),
                )
            }
            SignType::Rsa | SignType::Rsa2 => {
                let private = self
                    .private_key_file
                    .as_deref()
                    .ok_or_else(|| bad("private_key_file is required for RSA"))?;
                let public = self
                    .alipay_public_key_file
                    .as_deref()
                    .ok_or_else(|| bad("alipay_public_key_file is required for RSA"))?;
                (
                    SigningMaterial::Rsa(Box::new(private_key_pem(&read_file(private)?)?)),
                    VerifyingMaterial::Rsa(Box::new(public_key_pem(&read_file(public)?)?)),
                )
            }
        };
        AlipayConnector::new(AlipayConfig {
            gateway_url: Url::parse(&self.gateway_url)
                .map_err(|e| bad(&format!("gateway_url: {e}")))?,
            api_url: None,
            partner: self.partner.clone(),
            sign_type,
            signing,
            verifying,
            notify_url: url_under(public_url, "notify/alipay")?,
            industry: self.industry.clone().unwrap_or_else(|| "5331".into()),
            notify_verify: self.notify_verify.unwrap_or(true),
            test_mode: false,
        })
    }
}

fn sandbox(urls: &SandboxUrls, options: &SandboxOptions) -> Result<Sandboxed, ChannelError> {
    let (config, mut sim) = super::sandbox(urls.clone(), SignType::Rsa2, options.time_scale)?;
    sim.notify_targets = options.notify_targets(urls);
    Ok(Sandboxed::of(
        AlipayConnector::new(config)?,
        AlipaySimulator::new(sim),
    ))
}

fn simulated_section(base: &Url, keys: &TestKeyFiles) -> String {
    format!(
        "[alipay]\n\
         gateway_url = {gateway}\n\
         partner = {partner}\n\
         sign_type = \"RSA2\"\n\
         private_key_file = {ours}\n\
         alipay_public_key_file = {theirs}\n",
        gateway = toml_string(&format!("{base}sim/alipay/gateway.do")),
        partner = toml_string(testkeys::PARTNER),
        ours = toml_string(&keys.ours.display().to_string()),
        theirs = toml_string(&keys.theirs.display().to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_needs_the_keys_of_its_sign_type() {
        let section = Section {
            gateway_url: "https://intlmapi.alipay.com/gateway.do".into(),
            partner: "2088000000000001".into(),
            sign_type: "MD5".into(),
            md5_key: None,
            private_key_file: None,
            alipay_public_key_file: None,
            industry: None,
            notify_verify: None,
        };
        let public = Url::parse("https://pay.example.com/").unwrap();
        let err = section.connector(&public).unwrap_err().to_string();
        assert!(err.contains("[alipay] md5_key is required"), "{err}");
        let rsa = Section {
            sign_type: "RSA2".into(),
            ..section.clone()
        };
        let err = rsa.connector(&public).unwrap_err().to_string();
        assert!(err.contains("private_key_file is required"), "{err}");
        let md5 = Section {
            md5_key: Some(MaskedString(ottgate_core::Secret::new("k"))),
            ..section
        };
        assert!(md5.connector(&public).is_ok());
    }
}
