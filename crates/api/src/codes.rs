//! Appendix B response codes (`rsp_code`).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The Appendix B codes. The published table is cut off after `DB_ERROR`; these are the
/// twelve that were captured, and ottgate uses only these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RspCode {
    Success,
    Processing,
    PwdIncorrect,
    Fail,
    Timeout,
    SystemError,
    ParamInvalid,
    ParamError,
    OrderPaid,
    OrderUsed,
    OrderTypeError,
    DbError,
}

impl RspCode {
    pub const ALL: [RspCode; 12] = [
        RspCode::Success,
        RspCode::Processing,
        RspCode::PwdIncorrect,
        RspCode::Fail,
        RspCode::Timeout,
        RspCode::SystemError,
        RspCode::ParamInvalid,
        RspCode::ParamError,
        RspCode::OrderPaid,
        RspCode::OrderUsed,
        RspCode::OrderTypeError,
        RspCode::DbError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RspCode::Success => "SUCCESS",
            RspCode::Processing => "PROCESSING",
            RspCode::PwdIncorrect => "PWD_INCORRECT",
            RspCode::Fail => "FAIL",
            RspCode::Timeout => "TIMEOUT",
            RspCode::SystemError => "SYSTEM_ERROR",
            RspCode::ParamInvalid => "PARAM_INVALID",
            RspCode::ParamError => "PARAM_ERROR",
            RspCode::OrderPaid => "ORDER_PAID",
            RspCode::OrderUsed => "ORDER_USED",
            RspCode::OrderTypeError => "ORDER_TYPE_ERROR",
            RspCode::DbError => "DB_ERROR",
        }
    }

    /// The Appendix B message, verbatim (including its quirks).
    pub fn default_message(self) -> &'static str {
        match self {
            RspCode::Success => "success",
            RspCode::Processing => "transaction processing",
            RspCode::PwdIncorrect => "password is incorrect",
            RspCode::Fail => "failure.",
            RspCode::Timeout => "timeout.",
            RspCode::SystemError => "system error.",
            RspCode::ParamInvalid => "invalid parameter",
            RspCode::ParamError => "parameter format error",
            RspCode::OrderPaid => "order paid",
            RspCode::OrderUsed => "order number duplicated",
            RspCode::OrderTypeError => "pre-authoried order",
            RspCode::DbError => "database error",
        }
    }
}

impl FromStr for RspCode {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RspCode::ALL.into_iter().find(|c| c.as_str() == s).ok_or(())
    }
}

impl fmt::Display for RspCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_wire_names() {
        for code in RspCode::ALL {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
            assert_eq!(code.as_str().parse::<RspCode>(), Ok(code));
        }
    }
}
