//! What the fuzz targets (`fuzz/`) feed hostile bytes to, and what the corpus-replay test
//! runs on every saved input: the parsers that read unauthenticated input, each exactly as
//! the gateway reads it. Each function must return — never panic — whatever it is given.

use ottgate_api::EnvelopeRequest;
use ottgate_core::Timestamp;
use ottgate_envelope::{SignKey, open};
use std::sync::LazyLock;

pub use ottgate_channels::fuzz::{alipay_notification, unionpay_notification, wechat_notification};

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
