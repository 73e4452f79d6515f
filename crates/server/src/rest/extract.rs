//! What every REST handler reads and answers with: the error type (the one place REST
//! errors become responses), the JSON body reader, the bearer-token and client-address
//! extractors.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ottgate_api::rest::{Envelope, ErrorResult, RestCode};
use ottgate_core::{Merchant, MerchantId};
use serde_json::{Map, Value};
use std::net::{IpAddr, SocketAddr};

use crate::service::ServiceError;
use crate::state::AppState;

/// A REST failure: the one place REST errors become responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestError {
    pub http: StatusCode,
    pub code: RestCode,
    pub message: String,
}

impl RestError {
    pub fn new(http: StatusCode, code: RestCode, message: impl Into<String>) -> Self {
        Self {
            http,
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, RestCode::InvalidParameter, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, RestCode::Unauthorized, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            RestCode::OriginalPaymentNotExist,
            message,
        )
    }

    /// An internal failure: logged with its cause once, answered generically.
    pub fn internal(e: &dyn std::error::Error) -> Self {
        tracing::error!(error = %e, "REST request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            RestCode::DatabaseError,
            "Database error",
        )
    }
}

impl From<ServiceError> for RestError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::AmbiguousId(_) => Self::invalid(e.to_string()),
            _ => Self::internal(&e),
        }
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let body = Envelope {
            status: "ERROR".to_owned(),
            result: ErrorResult {
                code: self.code.number(),
                message: self.message,
            },
        };
        let mut response = (self.http, Json(body)).into_response();
        if self.http == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

pub type RestResult<T> = Result<Json<Envelope<T>>, RestError>;

pub fn ok<T>(result: T) -> RestResult<T> {
    Ok(Json(Envelope::success(result)))
}

/// A request body that must be a JSON object, read field by field so that every error
/// names its field.
#[derive(Debug)]
pub struct JsonObject(Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = RestError;

    async fn from_request(req: Request, state: &S) -> Result<Self, RestError> {
        let body: Result<Bytes, BytesRejection> = Bytes::from_request(req, state).await;
        let body = body.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                RestError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    RestCode::InvalidParameter,
                    "request body is too large",
                )
            } else {
                RestError::invalid("request body could not be read")
            }
        })?;
        Self::parse(&body)
    }
}

impl JsonObject {
    /// A body that must be a JSON object.
    pub fn parse(body: &[u8]) -> Result<Self, RestError> {
        match serde_json::from_slice(body) {
            Ok(Value::Object(map)) => Ok(JsonObject(map)),
            _ => Err(RestError::invalid("request body must be a JSON object")),
        }
    }

    /// A string field; `None` if absent, `null` or empty.
    pub fn optional(&self, name: &str, max_chars: usize) -> Result<Option<String>, RestError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) if s.chars().count() > max_chars => Err(RestError::invalid(
                format!("{name} must be at most {max_chars} characters"),
            )),
            Some(Value::String(s)) if s.chars().any(char::is_control) => Err(RestError::invalid(
                format!("{name} must not contain control characters"),
            )),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(RestError::invalid(format!("{name} must be a string"))),
        }
    }

    /// A field that may come as a string or as a whole JSON number (OTT Pay's local-card
    /// `amount` is a Number): as text; `None` if absent, `null` or empty.
    pub fn optional_text(&self, name: &str, max_chars: usize) -> Result<Option<String>, RestError> {
        match self.0.get(name) {
            Some(Value::Number(n)) if n.is_u64() => Ok(Some(n.to_string())),
            Some(Value::Number(_)) => Err(RestError::invalid(format!(
                "{name} must be a whole, non-negative number"
            ))),
            _ => self.optional(name, max_chars),
        }
    }

    pub fn required(&self, name: &str, max_chars: usize) -> Result<String, RestError> {
        self.optional(name, max_chars)?
            .ok_or_else(|| RestError::invalid(format!("{name} is required")))
    }
}

/// The merchant a valid bearer token was issued to.
#[derive(Debug, Clone)]
pub struct Authed {
    pub merchant: Merchant,
}

impl FromRequestParts<AppState> for Authed {
    type Rejection = RestError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, RestError> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| RestError::unauthorized("missing bearer token"))?
            .to_str()
            .map_err(|_| RestError::unauthorized("malformed Authorization header"))?;
        let (scheme, token) = value
            .split_once(' ')
            .ok_or_else(|| RestError::unauthorized("malformed Authorization header"))?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(RestError::unauthorized(
                "Authorization must be a Bearer token",
            ));
        }
        let claims = state
            .tokens
            .verify(token.trim(), state.service.clock.now())
            .map_err(|e| RestError::unauthorized(format!("invalid access token: {e}")))?;
        let id = MerchantId::parse(&claims.mid)
            .map_err(|_| RestError::unauthorized("invalid access token"))?;
        let record = state
            .service
            .merchant_record(&id)
            .await?
            .ok_or_else(|| RestError::unauthorized("invalid access token"))?;
        if record.merchant.app_id != claims.sub {
            return Err(RestError::unauthorized("invalid access token"));
        }
        Ok(Authed {
            merchant: record.merchant,
        })
    }
}

/// The caller's IP address, when the server knows it.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}
