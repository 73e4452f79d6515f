//! `Idempotency-Key` on the REST calls that create or move money (wap-pay, web-pay,
//! refund), with Stripe's semantics: the same key and the same body within a day get the
//! first answer again, byte for byte (`Idempotent-Replayed: true`); the same key with
//! another body is 422; while the first request still runs, 409. Without the header a
//! request runs as always. Keys are the merchant's: two merchants never share one.

use crate::service::Idempotency;
use axum::body::{Body, to_bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ottgate_api::rest::RestCode;
use sha2::{Digest, Sha256};

use super::extract::{Authed, RestError};
use crate::state::AppState;

pub const HEADER: &str = "idempotency-key";

/// The `Idempotency-Key` of the request being run, for a handler whose effect must carry
/// it (a refund is written with it, so a repeat finds the refund even when this request's
/// answer is lost).
#[derive(Debug, Clone)]
pub struct RequestKey(pub String);

/// A key: 1 to 255 printable ASCII characters.
fn valid_key(value: &HeaderValue) -> Option<String> {
    let key = value.to_str().ok()?;
    (!key.is_empty() && key.len() <= 255 && key.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| key.to_owned())
}

/// The routes whose body carries a card number (docs/cards.md).
const CARD_DATA_PATHS: [&str; 1] = ["/api/v1/payment/local-card/payment3dsV2"];

/// Whether `body` names a card number the sandbox does not take: such a request is
/// refused by its handler, and its key (with the hash of a body holding the number) is
/// never written.
fn carries_unknown_card(body: &[u8]) -> bool {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(body)
    else {
        return false;
    };
    map.get("accountNumber")
        .and_then(serde_json::Value::as_str)
        .is_some_and(|n| crate::sandbox::TestCard::of(n).is_none())
}

pub async fn idempotent(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(value) = req.headers().get(HEADER) else {
        return next.run(req).await;
    };
    let Some(key) = valid_key(value) else {
        return RestError::invalid("Idempotency-Key must be 1 to 255 printable ASCII characters")
            .into_response();
    };
    let (mut parts, body) = req.into_parts();
    let merchant = match Authed::from_request_parts(&mut parts, &state).await {
        Ok(authed) => authed.merchant,
        Err(e) => return e.into_response(),
    };
    let Ok(body) = to_bytes(body, state.service.settings.max_body_bytes).await else {
        return RestError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            RestCode::InvalidParameter,
            "request body is too large",
        )
        .into_response();
    };
    let scope = parts.uri.path().to_owned();
    if CARD_DATA_PATHS.contains(&scope.as_str()) && carries_unknown_card(&body) {
        // Refused by the handler; not even a hash of a real card number is kept.
        return next.run(Request::from_parts(parts, Body::from(body))).await;
    }
    let request_hash = hex::encode(Sha256::digest(&body));
    let claimed = state
        .service
        .claim_key(&merchant.id, &scope, &key, request_hash)
        .await;
    match claimed {
        Err(e) => RestError::internal(&e).into_response(),
        Ok(Idempotency::Replay { status, body }) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            [
                (header::CONTENT_TYPE, "application/json"),
                (
                    header::HeaderName::from_static("idempotent-replayed"),
                    "true",
                ),
            ],
            body,
        )
            .into_response(),
        Ok(Idempotency::InProgress) => RestError::new(
            StatusCode::CONFLICT,
            RestCode::Other,
            "a request with this Idempotency-Key is still being processed; retry shortly",
        )
        .into_response(),
        Ok(Idempotency::Mismatch) => RestError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            RestCode::InvalidParameter,
            "this Idempotency-Key was used for a different request",
        )
        .into_response(),
        Ok(Idempotency::Fresh) => {
            parts.extensions.insert(RequestKey(key.clone()));
            let response = next.run(Request::from_parts(parts, Body::from(body))).await;
            let (response_parts, response_body) = response.into_parts();
            let Ok(answer) = to_bytes(response_body, usize::MAX).await else {
                return RestError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    RestCode::DatabaseError,
                    "internal error",
                )
                .into_response();
            };
            let stored = if response_parts.status.is_server_error() {
                // Nothing certain happened: a retry with this key runs again.
                state.service.release_key(&merchant.id, &scope, &key).await
            } else {
                state
                    .service
                    .answer_key(
                        &merchant.id,
                        &scope,
                        &key,
                        response_parts.status.as_u16(),
                        String::from_utf8_lossy(&answer).into_owned(),
                    )
                    .await
            };
            if let Err(e) = stored {
                tracing::error!(error = %e, "idempotency key could not be recorded");
            }
            Response::from_parts(response_parts, Body::from(answer))
        }
    }
}
