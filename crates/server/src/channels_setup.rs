//! Which channel serves each method: in sandbox mode the built-in wallet simulators (on the
//! gateway itself, with the public test keys: buyers reach them at the public URL, the
//! gateway at its own address), in live mode the configured
//! connectors; the sandbox wallet only for card checkout and unconfigured methods, and
//! only in sandbox mode.

use ottgate_channels::alipay::sign::{SignType, SigningMaterial, VerifyingMaterial};
use ottgate_channels::alipay::simulator::AlipaySimulator;
use ottgate_channels::alipay::{self, AlipayConfig, AlipayConnector};
use ottgate_channels::unionpay::simulator::UnionPaySimulator;
use ottgate_channels::unionpay::{self, UnionPayConfig, UnionPayConnector};
use ottgate_channels::wechat::simulator::WeChatSimulator;
use ottgate_channels::wechat::{self, WeChatConfig, WeChatConnector};
use ottgate_channels::{Channels, SandboxUrls};
use ottgate_core::{PaymentMethod, Secret};
use std::sync::Arc;
use url::Url;

use crate::StartupError;
use crate::config::{
    AlipaySection, Config, Settings, UnionPaySection, WeChatSection, with_trailing_slash,
};
use crate::state::Simulators;

fn read(path: &std::path::Path) -> Result<String, StartupError> {
    std::fs::read_to_string(path)
        .map_err(|e| StartupError::Other(format!("reading {}: {e}", path.display())))
}

fn channel_error(e: ottgate_channels::ChannelError) -> StartupError {
    StartupError::Other(e.to_string())
}

fn live_alipay(section: &AlipaySection, public_url: &Url) -> Result<AlipayConnector, StartupError> {
    let bad = |m: &str| StartupError::Other(format!("[alipay] {m}"));
    let sign_type = SignType::parse(&section.sign_type)
        .ok_or_else(|| bad("sign_type must be MD5, RSA or RSA2"))?;
    let (signing, verifying) = match sign_type {
        SignType::Md5 => {
            let key = section
                .md5_key
                .as_ref()
                .ok_or_else(|| bad("md5_key is required for MD5"))?;
            (
                SigningMaterial::Md5(key.0.clone()),
                VerifyingMaterial::Md5(key.0.clone()),
            )
        }
        SignType::Rsa | SignType::Rsa2 => {
            let private = section
                .private_key_file
                .as_deref()
                .ok_or_else(|| bad("private_key_file is required for RSA"))?;
            let public = section
                .alipay_public_key_file
                .as_deref()
                .ok_or_else(|| bad("alipay_public_key_file is required for RSA"))?;
            (
                SigningMaterial::Rsa(Box::new(
                    alipay::private_key_pem(&read(private)?).map_err(channel_error)?,
                )),
                VerifyingMaterial::Rsa(Box::new(
                    alipay::public_key_pem(&read(public)?).map_err(channel_error)?,
                )),
            )
        }
    };
    let config = AlipayConfig {
        gateway_url: Url::parse(&section.gateway_url)
            .map_err(|e| bad(&format!("gateway_url: {e}")))?,
        api_url: None,
        partner: section.partner.clone(),
        sign_type,
        signing,
        verifying,
        notify_url: public_url
            .join("notify/alipay")
            .map_err(|e| bad(&e.to_string()))?,
        industry: section.industry.clone().unwrap_or_else(|| "5331".into()),
        notify_verify: section.notify_verify.unwrap_or(true),
        test_mode: false,
    };
    AlipayConnector::new(config).map_err(channel_error)
}

fn live_wechat(section: &WeChatSection, public_url: &Url) -> Result<WeChatConnector, StartupError> {
    let bad = |m: &str| StartupError::Other(format!("[wechatpay] {m}"));
    let sign_type = match section.sign_type.as_deref() {
        None | Some("HMAC-SHA256") => wechat::sign::SignType::HmacSha256,
        Some("MD5") => wechat::sign::SignType::Md5,
        Some(_) => return Err(bad("sign_type must be MD5 or HMAC-SHA256")),
    };
    let api_url = section
        .api_url
        .as_deref()
        .unwrap_or("https://apihk.mch.weixin.qq.com/");
    let api_url =
        with_trailing_slash(Url::parse(api_url).map_err(|e| bad(&format!("api_url: {e}")))?);
    let client_identity_pem = match &section.client_identity_file {
        Some(path) => Some(Secret::new(read(path)?)),
        None => {
            tracing::warn!(
                "[wechatpay] has no client_identity_file: WeChat Pay will refuse refunds"
            );
            None
        }
    };
    let config = WeChatConfig {
        api_url,
        appid: section.appid.clone(),
        mch_id: section.mch_id.clone(),
        sub_mch_id: section.sub_mch_id.clone(),
        api_key: section.api_key.0.clone(),
        sign_type,
        notify_url: public_url
            .join("notify/wechatpay")
            .map_err(|e| bad(&e.to_string()))?,
        server_ip: section.server_ip.clone(),
        test_scan_url: section
            .test_scan_url
            .as_deref()
            .map(Url::parse)
            .transpose()
            .map_err(|e| bad(&format!("test_scan_url: {e}")))?,
        client_identity_pem,
        test_mode: false,
    };
    WeChatConnector::new(config).map_err(channel_error)
}

fn live_unionpay(
    section: &UnionPaySection,
    public_url: &Url,
) -> Result<UnionPayConnector, StartupError> {
    let bad = |m: &str| StartupError::Other(format!("[unionpay] {m}"));
    let gateway_url = section
        .gateway_url
        .as_deref()
        .unwrap_or("https://gateway.95516.com/");
    let gateway_url = with_trailing_slash(
        Url::parse(gateway_url).map_err(|e| bad(&format!("gateway_url: {e}")))?,
    );
    let config = UnionPayConfig {
        gateway_url,
        back_gateway_url: None,
        mer_id: section.mer_id.clone(),
        cert_id: section.cert_id.clone(),
        signing_key: Box::new(
            alipay::private_key_pem(&read(&section.private_key_file)?)
                .map_err(|e| bad(&format!("private_key_file: {e}")))?,
        ),
        verifying_key: Box::new(
            alipay::public_key_pem(&read(&section.unionpay_public_key_file)?)
                .map_err(|e| bad(&format!("unionpay_public_key_file: {e}")))?,
        ),
        notify_url: public_url
            .join("notify/unionpay")
            .map_err(|e| bad(&e.to_string()))?,
        test_mode: false,
    };
    UnionPayConnector::new(config).map_err(channel_error)
}

pub fn build(config: &Config, settings: &Settings) -> Result<(Channels, Simulators), StartupError> {
    let public = &settings.public_url;
    let sandbox_urls = SandboxUrls {
        public: public.clone(),
        internal: settings.internal_url.clone(),
    };
    let mut simulators = Simulators::default();
    let mut channels = if settings.sandbox {
        Channels::sandbox(public)
    } else {
        Channels::none()
    };
    match (&config.alipay, settings.sandbox) {
        (Some(section), _) => {
            channels = channels.with(
                PaymentMethod::Alipay,
                Arc::new(live_alipay(section, public)?),
            );
        }
        (None, true) => {
            let (connector, sim) = alipay::sandbox(
                sandbox_urls.clone(),
                SignType::Rsa2,
                config.simulator_time_scale,
            )
            .map_err(channel_error)?;
            channels = channels.with(
                PaymentMethod::Alipay,
                Arc::new(AlipayConnector::new(connector).map_err(channel_error)?),
            );
            simulators.add(Arc::new(AlipaySimulator::new(sim)));
        }
        (None, false) => {}
    }
    match (&config.wechatpay, settings.sandbox) {
        (Some(section), _) => {
            channels = channels.with(
                PaymentMethod::WeChatPay,
                Arc::new(live_wechat(section, public)?),
            );
        }
        (None, true) => {
            let (connector, mut sim) = wechat::sandbox(
                sandbox_urls.clone(),
                wechat::sign::SignType::HmacSha256,
                config.simulator_time_scale,
            )
            .map_err(channel_error)?;
            sim.exchange_rates
                .extend(settings.simulator_exchange_rates.iter().cloned());
            channels = channels.with(
                PaymentMethod::WeChatPay,
                Arc::new(WeChatConnector::new(connector).map_err(channel_error)?),
            );
            simulators.add(Arc::new(WeChatSimulator::new(sim)));
        }
        (None, false) => {}
    }
    match (&config.unionpay, settings.sandbox) {
        (Some(section), _) => {
            channels = channels.with(
                PaymentMethod::UnionPay,
                Arc::new(live_unionpay(section, public)?),
            );
        }
        (None, true) => {
            let (connector, sim) = unionpay::sandbox(sandbox_urls, config.simulator_time_scale)
                .map_err(channel_error)?;
            channels = channels.with(
                PaymentMethod::UnionPay,
                Arc::new(UnionPayConnector::new(connector).map_err(channel_error)?),
            );
            simulators.add(Arc::new(UnionPaySimulator::new(sim)));
        }
        (None, false) => {}
    }
    Ok((channels, simulators))
}
