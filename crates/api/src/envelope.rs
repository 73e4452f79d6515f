//! The first-level JSON of `POST /processV2`: request, response and callback envelopes.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

use crate::RspCode;

/// A request envelope, every field present and a string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeRequest {
    pub action: String,
    pub version: String,
    pub merchant_id: String,
    pub data: String,
    pub md5: String,
    /// PASSIVEPAY's till and operator, which OTT Pay's table puts beside `data` (not covered
    /// by the md5); taken when `data` has none of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal_no: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("request body is not valid JSON")]
    MalformedJson,
    #[error("request body must be a JSON object")]
    NotAnObject,
    #[error("missing required field: {0}")]
    Missing(&'static str),
    #[error("field {0} must be a string")]
    WrongType(&'static str),
}

impl EnvelopeRequest {
    /// Parses a request body, naming the first missing or mistyped field.
    pub fn parse(body: &[u8]) -> Result<Self, EnvelopeError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|_| EnvelopeError::MalformedJson)?;
        let Value::Object(obj) = value else {
            return Err(EnvelopeError::NotAnObject);
        };
        let field = |name: &'static str| match obj.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            None | Some(Value::Null) => Err(EnvelopeError::Missing(name)),
            Some(Value::String(_)) => Err(EnvelopeError::Missing(name)),
            Some(_) => Err(EnvelopeError::WrongType(name)),
        };
        Ok(Self {
            action: field("action")?,
            version: field("version")?,
            merchant_id: field("merchant_id")?,
            data: field("data")?,
            md5: field("md5")?,
            terminal_no: field("terminal_no").ok(),
            operator_id: field("operator_id").ok(),
        })
    }
}

/// A response (or callback) envelope. Errors carry only `rsp_code` and `rsp_msg`; replies
/// with data carry `data` and `md5`; callbacks also carry `merchant_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeResponse {
    pub rsp_code: String,
    pub rsp_msg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
}

impl EnvelopeResponse {
    pub fn error(code: RspCode, msg: impl Into<String>) -> Self {
        Self {
            rsp_code: code.as_str().to_owned(),
            rsp_msg: msg.into(),
            merchant_id: None,
            data: None,
            md5: None,
        }
    }

    pub fn sealed(sealed: ottgate_envelope::Sealed) -> Self {
        Self {
            rsp_code: RspCode::Success.as_str().to_owned(),
            rsp_msg: RspCode::Success.default_message().to_owned(),
            merchant_id: None,
            data: Some(sealed.data),
            md5: Some(sealed.md5.to_string()),
        }
    }

    /// A merchant callback: `{rsp_code:"SUCCESS", rsp_msg:"success", merchant_id, data, md5}`.
    pub fn callback(merchant_id: &str, sealed: ottgate_envelope::Sealed) -> Self {
        Self {
            merchant_id: Some(merchant_id.to_owned()),
            ..Self::sealed(sealed)
        }
    }
}

/// The envelope actions ottgate serves, with the version each is served at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    PrepayInit,
    PrepayQuery,
    StatusQuery,
    Refund,
    ActivePay,
    H5Pay,
    ExRateQuery,
    CcPurchase,
    CcPreAuth,
    CcQueryPay,
    MappPay,
    PassivePay,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsupportedAction {
    #[error("unsupported action: {0}")]
    Action(String),
    #[error("unsupported version {version} for action {action} (expected {expected})")]
    Version {
        action: String,
        version: String,
        expected: &'static str,
    },
}

impl Action {
    pub const ALL: [Action; 12] = [
        Action::PrepayInit,
        Action::PrepayQuery,
        Action::StatusQuery,
        Action::Refund,
        Action::ActivePay,
        Action::H5Pay,
        Action::ExRateQuery,
        Action::CcPurchase,
        Action::CcPreAuth,
        Action::CcQueryPay,
        Action::MappPay,
        Action::PassivePay,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Action::PrepayInit => "PREPAY_INIT",
            Action::PrepayQuery => "PREPAY_QUERY",
            Action::StatusQuery => "STATUS_QUERY",
            Action::Refund => "REFUND",
            Action::ActivePay => "ACTIVEPAY",
            Action::H5Pay => "H5PAY",
            Action::ExRateQuery => "EX_RATE_QUERY",
            Action::CcPurchase => "CC_PURCHASE",
            Action::CcPreAuth => "CC_PREAUTH",
            Action::CcQueryPay => "CC_QUERYPAY",
            Action::MappPay => "MAPPPAY",
            Action::PassivePay => "PASSIVEPAY",
        }
    }

    pub fn version(self) -> &'static str {
        match self {
            Action::PrepayInit
            | Action::PrepayQuery
            | Action::H5Pay
            | Action::CcPurchase
            | Action::CcPreAuth
            | Action::CcQueryPay => "2.0",
            Action::StatusQuery
            | Action::Refund
            | Action::ActivePay
            | Action::ExRateQuery
            | Action::MappPay
            | Action::PassivePay => "1.0",
        }
    }

    pub fn parse(action: &str, version: &str) -> Result<Self, UnsupportedAction> {
        let found = Action::ALL
            .into_iter()
            .find(|a| a.name() == action)
            .ok_or_else(|| UnsupportedAction::Action(printable(action)))?;
        // MAPPPAY's table says 1.1 and its example sends 1.0: both are taken.
        let also = found == Action::MappPay && version == "1.1";
        if found.version() != version && !also {
            return Err(UnsupportedAction::Version {
                action: printable(action),
                version: printable(version),
                expected: found.version(),
            });
        }
        Ok(found)
    }
}

/// A value from an unauthenticated request, fit to repeat in a message or a log line: at
/// most 64 characters, control characters (newlines, terminal escapes) escaped.
pub fn printable(raw: &str) -> String {
    let mut out = String::new();
    for c in raw.chars().take(64) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if raw.chars().nth(64).is_some() {
        out.push('…');
    }
    out
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::malformed(b"{".as_slice(), EnvelopeError::MalformedJson)]
    #[case::array(b"[]".as_slice(), EnvelopeError::NotAnObject)]
    #[case::missing_md5(br#"{"action":"A","version":"1","merchant_id":"M","data":"D"}"#.as_slice(), EnvelopeError::Missing("md5"))]
    #[case::number_action(br#"{"action":1,"version":"1","merchant_id":"M","data":"D","md5":"X"}"#.as_slice(), EnvelopeError::WrongType("action"))]
    fn malformed_envelopes_name_their_problem(
        #[case] body: &[u8],
        #[case] expected: EnvelopeError,
    ) {
        assert_eq!(EnvelopeRequest::parse(body), Err(expected));
    }

    #[test]
    fn actions_are_served_only_at_their_version() {
        assert_eq!(Action::parse("PREPAY_INIT", "2.0"), Ok(Action::PrepayInit));
        assert!(matches!(
            Action::parse("PREPAY_INIT", "1.0"),
            Err(UnsupportedAction::Version { .. })
        ));
        assert_eq!(Action::parse("PASSIVEPAY", "1.0"), Ok(Action::PassivePay));
        assert!(matches!(
            Action::parse("BARCODEPAY", "1.0"),
            Err(UnsupportedAction::Action(_))
        ));
        // MAPPPAY's page says 1.1 and its example sends 1.0: both are served.
        assert_eq!(Action::parse("MAPPPAY", "1.1"), Ok(Action::MappPay));
        assert_eq!(Action::parse("MAPPPAY", "1.0"), Ok(Action::MappPay));
        assert!(matches!(
            Action::parse("MAPPPAY", "2.0"),
            Err(UnsupportedAction::Version { .. })
        ));
    }

    #[test]
    fn unknown_actions_are_repeated_without_their_control_characters() {
        let forged = "X\n2026-11-27T10:00:00Z  INFO ottgate: payment applied\u{1b}[31m";
        let message = Action::parse(forged, "1.0").unwrap_err().to_string();
        assert!(!message.chars().any(char::is_control), "{message:?}");
        assert!(message.contains("X\\n2026"), "{message}");
        let long = "A".repeat(500);
        assert!(Action::parse(&long, "1.0").unwrap_err().to_string().len() < 100);
    }

    #[test]
    fn error_envelopes_carry_no_data() {
        let json = serde_json::to_string(&EnvelopeResponse::error(
            RspCode::ParamError,
            "md5 mismatch",
        ))
        .unwrap();
        assert_eq!(
            json,
            r#"{"rsp_code":"PARAM_ERROR","rsp_msg":"md5 mismatch"}"#
        );
    }
}
