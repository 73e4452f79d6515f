//! UnionPay in the wallet registry: its `[unionpay]` section, the live connector built from
//! it, and the sandbox pair (connector + simulator) with the public test keys.

use ottgate_core::PaymentMethod;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use url::Url;

use super::simulator::UnionPaySimulator;
use super::{UnionPayConfig, UnionPayConnector, testkeys};
use crate::alipay::{private_key_pem, public_key_pem};
use crate::registry::{
    SandboxOptions, Sandboxed, TestKeyFiles, Wallet, live, read_file, toml_string,
    with_trailing_slash,
};
use crate::{ChannelError, SandboxUrls, url_under};

pub const WALLET: Wallet = Wallet {
    name: "unionpay",
    method: PaymentMethod::UnionPay,
    title: "UnionPay 5.1.0 gateway root",
    entry: "",
    live: |sections, public| live(sections.unionpay.as_ref(), |s| s.connector(public)),
    sandbox,
    simulated_section,
};

/// `[unionpay]`: the merchant (or acquirer) account at UnionPay's online gateway, 5.1.0.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    /// The gateway root; default `https://gateway.95516.com/`.
    #[serde(default)]
    pub gateway_url: Option<String>,
    /// Where the reconciliation file is downloaded (the file-transfer request); default
    /// `https://filedownload.95516.com/`.
    #[serde(default)]
    pub file_url: Option<String>,
    /// `merId`, 15 digits.
    pub mer_id: String,
    /// `certId`: the serial number of our signing certificate (in decimal).
    pub cert_id: String,
    /// Our signing key as PEM (UnionPay issues a PFX: `openssl pkcs12 -in acp.pfx -nocerts
    /// -nodes -out unionpay-key.pem`).
    pub private_key_file: PathBuf,
    /// UnionPay's signing public key as PEM (from its signing certificate: `openssl x509
    /// -in acp_prod_sign.cer -pubkey -noout`), pinned.
    pub unionpay_public_key_file: PathBuf,
}

impl Section {
    /// The live connector; notifications come to `{public_url}notify/unionpay`.
    pub fn connector(&self, public_url: &Url) -> Result<UnionPayConnector, ChannelError> {
        let bad = |m: &str| ChannelError::Config(format!("[unionpay] {m}"));
        let gateway_url = self
            .gateway_url
            .as_deref()
            .unwrap_or("https://gateway.95516.com/");
        let gateway_url = with_trailing_slash(
            Url::parse(gateway_url).map_err(|e| bad(&format!("gateway_url: {e}")))?,
        );
        let file_url = Url::parse(
            self.file_url
                .as_deref()
                .unwrap_or("https://filedownload.95516.com/"),
        )
        .map_err(|e| bad(&format!("file_url: {e}")))?;
        UnionPayConnector::new(UnionPayConfig {
            gateway_url,
            back_gateway_url: None,
            file_url,
            mer_id: self.mer_id.clone(),
            cert_id: self.cert_id.clone(),
            signing_key: Box::new(
                private_key_pem(&read_file(&self.private_key_file)?)
                    .map_err(|e| bad(&format!("private_key_file: {e}")))?,
            ),
            verifying_key: Box::new(
                public_key_pem(&read_file(&self.unionpay_public_key_file)?)
                    .map_err(|e| bad(&format!("unionpay_public_key_file: {e}")))?,
            ),
            notify_url: url_under(public_url, "notify/unionpay")?,
            test_mode: false,
        })
    }
}

fn sandbox(urls: &SandboxUrls, options: &SandboxOptions) -> Result<Sandboxed, ChannelError> {
    let (config, mut sim) = super::sandbox(urls.clone(), options.time_scale)?;
    sim.notify_targets = options.notify_targets(urls);
    Ok(Sandboxed::of(
        UnionPayConnector::new(config)?,
        UnionPaySimulator::new(sim),
    ))
}

fn simulated_section(base: &Url, keys: &TestKeyFiles) -> String {
    format!(
        "[unionpay]\n\
         gateway_url = {gateway}\n\
         file_url = {files}\n\
         mer_id = {mer_id}\n\
         cert_id = {cert_id}\n\
         private_key_file = {ours}\n\
         unionpay_public_key_file = {theirs}\n",
        gateway = toml_string(&format!("{base}sim/unionpay/")),
        files = toml_string(&format!("{base}sim/unionpay/files")),
        mer_id = toml_string(testkeys::MER_ID),
        cert_id = toml_string(testkeys::CERT_ID),
        ours = toml_string(&keys.ours.display().to_string()),
        theirs = toml_string(&keys.theirs.display().to_string()),
    )
}
