//! The envelope API's one error: every refusal, of any action, is a [`ProtocolError`] —
//! an envelope `{rsp_code, rsp_msg}` naming what is wrong — and changes nothing.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ottgate_api::{EnvelopeResponse, FieldError, RspCode};

use crate::service::ServiceError;

/// A protocol-level failure: the one place envelope errors become responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    pub code: RspCode,
    pub msg: String,
    pub http: StatusCode,
}

impl ProtocolError {
    pub fn new(code: RspCode, msg: impl Into<String>) -> Self {
        Self {
            code,
            msg: msg.into(),
            http: StatusCode::OK,
        }
    }

    pub fn invalid(msg: impl Into<String>) -> Self {
        Self::new(RspCode::ParamInvalid, msg)
    }

    pub fn format(msg: impl Into<String>) -> Self {
        Self::new(RspCode::ParamError, msg)
    }

    /// An internal failure: logged with its cause once, answered generically.
    pub fn internal(e: &dyn std::error::Error) -> Self {
        tracing::error!(error = %e, "envelope request failed");
        Self {
            code: RspCode::SystemError,
            msg: RspCode::SystemError.default_message().into(),
            http: StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<FieldError> for ProtocolError {
    fn from(e: FieldError) -> Self {
        match e {
            FieldError::Missing(_) => Self::invalid(e.to_string()),
            FieldError::WrongType(_) => Self::format(e.to_string()),
        }
    }
}

impl From<ServiceError> for ProtocolError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::AmbiguousId(_) => Self::invalid(e.to_string()),
            _ => Self::internal(&e),
        }
    }
}

impl IntoResponse for ProtocolError {
    fn into_response(self) -> Response {
        (
            self.http,
            Json(EnvelopeResponse::error(self.code, self.msg)),
        )
            .into_response()
    }
}
