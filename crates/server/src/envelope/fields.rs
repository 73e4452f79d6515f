//! Reading the envelope actions' fields: the rules every action shares, each refusal a
//! protocol error naming its field (`PARAM_INVALID` missing, `PARAM_ERROR` malformed).

use ottgate_core::{Currency, Merchant};
use url::Url;

use super::error::ProtocolError;
use crate::config::Settings;
use crate::outbound::check_callback_url;
use crate::service::Signing;

const MAX_URL_LEN: usize = 255;
const MAX_TEXT_LEN: usize = 128;

/// A required field's value; absent or empty is `PARAM_INVALID`.
pub fn required(value: Option<String>, name: &str) -> Result<String, ProtocolError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ProtocolError::invalid(format!("missing required field: {name}")))
}

/// The data's `merchant_id` must be the envelope's. `field` is `Some(value)` when the
/// action requires the field, `None` when it may be left out.
pub fn must_match_envelope(
    field: Option<Option<String>>,
    signing: &Signing,
) -> Result<(), ProtocolError> {
    let id = match field {
        Some(value) => required(value, "merchant_id")?,
        None => return Ok(()),
    };
    if id != signing.merchant.id.as_str() {
        return Err(ProtocolError::invalid(
            "merchant_id does not match the envelope merchant_id",
        ));
    }
    Ok(())
}

/// The data may name the merchant; if it does, it must be the envelope's.
pub fn optional_merchant(value: Option<String>, signing: &Signing) -> Result<(), ProtocolError> {
    must_match_envelope(value.map(Some), signing)
}

/// A required absolute http(s) URL of at most 255 characters.
pub fn url_field(value: Option<String>, name: &str) -> Result<Url, ProtocolError> {
    let raw = required(value, name)?;
    let bad = || {
        ProtocolError::format(format!(
            "{name} must be an absolute http(s) URL of at most {MAX_URL_LEN} characters"
        ))
    };
    if raw.len() > MAX_URL_LEN {
        return Err(bad());
    }
    let url = Url::parse(&raw).map_err(|_| bad())?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(bad());
    }
    Ok(url)
}

/// `call_back_url`: a URL the callback guard lets the gateway post to.
pub fn callback_url(settings: &Settings, value: Option<String>) -> Result<Url, ProtocolError> {
    let url = url_field(value, "call_back_url")?;
    check_callback_url(&url, settings.allow_private_callbacks)
        .map_err(|e| ProtocolError::format(format!("call_back_url {e}")))?;
    Ok(url)
}

/// Optional free text of at most 128 characters, without control characters.
pub fn text_field(value: Option<String>, name: &str) -> Result<Option<String>, ProtocolError> {
    match value.filter(|v| !v.is_empty()) {
        Some(v) if v.chars().count() > MAX_TEXT_LEN || v.chars().any(char::is_control) => {
            Err(ProtocolError::format(format!(
                "{name} must be at most {MAX_TEXT_LEN} characters without control characters"
            )))
        }
        other => Ok(other),
    }
}

/// `operator_id`: required, and the merchant's own.
pub fn operator(value: Option<String>, merchant: &Merchant) -> Result<(), ProtocolError> {
    optional_operator(Some(required(value, "operator_id")?), merchant)
}

/// `operator_id` where integrations leave it out (ACTIVEPAY, H5PAY): absent or empty is
/// the merchant's operator; given, it must be the merchant's own (docs/envelope.md).
pub fn optional_operator(value: Option<String>, merchant: &Merchant) -> Result<(), ProtocolError> {
    match value.filter(|v| !v.is_empty()) {
        Some(v) if v != merchant.operator_id.as_str() => Err(ProtocolError::invalid(
            "operator_id is not an operator of this merchant",
        )),
        _ => Ok(()),
    }
}

/// `currency_type` `code`, enabled for the merchant.
pub fn currency(code: &str, merchant: &Merchant) -> Result<Currency, ProtocolError> {
    code.parse::<Currency>()
        .ok()
        .filter(|c| merchant.accepts(*c))
        .ok_or_else(|| {
            ProtocolError::invalid(format!(
                "currency_type {code} is not one of this merchant's currencies ({})",
                merchant.currency_list()
            ))
        })
}

/// The first of `names` present and non-empty (`Tip` or `tip`, `app_id` or `appId`).
pub fn either(
    r: &ottgate_api::FieldReader<'_>,
    names: [&'static str; 2],
) -> Result<Option<String>, ProtocolError> {
    for name in names {
        if let Some(v) = r.optional_nonempty(name)? {
            return Ok(Some(v));
        }
    }
    Ok(None)
}
