//! What the fuzz targets (`fuzz/`) feed hostile bytes to, and what the corpus-replay test
//! runs on every saved input: the parsers that read unauthenticated input, each exactly as
//! the gateway reads it. Each function must return — never panic — whatever it is given.

use ottgate_api::EnvelopeRequest;
use ottgate_channels::{alipay, unionpay, wechat};
use ottgate_core::Timestamp;
use ottgate_envelope::{SignKey, open};
use std::sync::LazyLock;
use url::Url;

use crate::rest::JsonObject;
use crate::rest::token::TokenSigner;

/// The Appendix A example's key: any fixed key will do.
static KEY: LazyLock<Option<SignKey>> = LazyLock::new(|| SignKey::new("6698851A525C9433").ok());

/// A request body to `/processV2`: the outer envelope, then its data opened with a key.
pub fn envelope(body: &[u8]) {
    if let (Ok(request), Some(key)) = (EnvelopeRequest::parse(body), KEY.as_ref()) {
        let _ = ottgate_api::Action::parse(&request.action, &request.version);
        if let Ok(opened) = open(&request.data, &request.md5, key) {
            let _ = ottgate_api::prepay::PrepayInitRequest::read(&opened.fields);
            let _ = ottgate_api::direct::ActivePayRequest::read(&opened.fields);
        }
    }
}

/// A `data` string as mangled senders send it (wrapped, `+` as spaces, anything), opened
/// against an md5 taken from its first 32 bytes when they are hex.
pub fn lenient_base64(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    let (md5, data) = match text.char_indices().nth(32) {
        Some((at, _)) => text.split_at(at),
        None => ("C12F9560769C2CB55E6954935B325916", text.as_ref()),
    };
    if let Some(key) = KEY.as_ref() {
        let _ = open(data, md5, key);
    }
}

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
    let _ = wechat::WeChatConnector::read_notice(&fields);
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

static TOKENS: LazyLock<TokenSigner> =
    LazyLock::new(|| TokenSigner::new(b"fuzzing secret, 32 characters or more"));

/// A REST body, read field by field as the handlers read it, and a bearer token.
pub fn rest_body(body: &[u8]) {
    if let Ok(object) = JsonObject::parse(body) {
        for (name, max) in [
            ("appId", 64),
            ("appKey", 128),
            ("amount", 64),
            ("callbackURL", 255),
            ("returnURL", 255),
            ("remark", 128),
            ("reference", 64),
            ("paymentId", 64),
            ("oriPaymentId", 64),
            ("refundAmount", 64),
        ] {
            if let Ok(Some(value)) = object.optional(name, max) {
                let _ = ottgate_core::Amount::parse(&value);
            }
        }
    }
    let _ = TOKENS.verify(
        &String::from_utf8_lossy(body),
        Timestamp::from_epoch_millis(1_795_000_000_000),
    );
}
