//! What the fuzz targets (`fuzz/`) feed the wallets' notification parsers, each exactly as
//! its connector reads a notification: decoded, signature checked, read — and read again
//! unsigned, so that hostile bytes reach the reader too. Each function must return, never
//! panic, whatever it is given. The server's `fuzz` module re-exports these (SECURITY.md).

use std::sync::LazyLock;
use url::Url;

use crate::{alipay, unionpay, wechat};

fn sandbox_base() -> Option<Url> {
    Url::parse("http://127.0.0.1:9/").ok()
}

static ALIPAY: LazyLock<Option<alipay::AlipayConnector>> = LazyLock::new(|| {
    let (config, _) = alipay::sandbox(&sandbox_base()?, alipay::sign::SignType::Rsa2, 1.0).ok()?;
    alipay::AlipayConnector::new(config).ok()
});

static WECHAT: LazyLock<Option<wechat::WeChatConnector>> = LazyLock::new(|| {
    let (config, _) =
        wechat::sandbox(&sandbox_base()?, wechat::sign::SignType::HmacSha256, 1.0).ok()?;
    wechat::WeChatConnector::new(config).ok()
});

static UNIONPAY: LazyLock<Option<unionpay::UnionPayConnector>> = LazyLock::new(|| {
    let (config, _) = unionpay::sandbox(&sandbox_base()?, 1.0).ok()?;
    unionpay::UnionPayConnector::new(config).ok()
});

/// An Alipay notification body: form-decoded, signature checked, read.
pub fn alipay_notification(body: &[u8]) {
    let params = alipay::parse_form(body);
    if let Some(connector) = ALIPAY.as_ref() {
        let _ = connector.verify(&params);
    }
    let _ = alipay::Notice::read(&params);
}

/// A WeChat Pay notification body: XML, signature checked, read.
pub fn wechat_notification(body: &[u8]) {
    let Ok(text) = std::str::from_utf8(body) else {
        return;
    };
    let Ok(fields) = wechat::parse_message(text) else {
        return;
    };
    if let Some(connector) = WECHAT.as_ref() {
        let _ = connector.verify(&fields);
    }
    let _ = wechat::Notice::read(&fields);
}

/// A UnionPay notification (form) and a synchronous answer (raw `k=v&…`).
pub fn unionpay_notification(body: &[u8]) {
    let fields = unionpay::parse_form(body);
    if let Some(connector) = UNIONPAY.as_ref() {
        let _ = connector.verify(&fields);
    }
    let _ = unionpay::Notice::read(&fields);
    let _ = unionpay::parse_answer(&String::from_utf8_lossy(body));
}
