//! One-time form tokens: every merchant-center form that changes something carries
//! `form_token`, a random value made when that form was rendered. The first submission of a
//! token runs; a second one — a double click, a re-posted reload, the back button — runs
//! nothing and is answered like the first (its redirect, with the notice "sent twice,
//! carried out once"), after waiting for the first if it is still running. Tokens are kept
//! per merchant in the idempotency table for the idempotency retention.
//!
//! A refund is also written with its token (`dashboard:` + token, see
//! `Service::refund`), so even a gateway killed between the refund and this record never
//! refunds again when the form is re-posted.

use axum::body::{Body, to_bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};
use std::time::Duration;

use super::session::Signed;
use super::{ErrorKind, error_page};
use crate::service::Idempotency;
use crate::state::AppState;

/// The form field carrying the token.
pub const FIELD: &str = "form_token";

const SCOPE: &str = "dashboard:form";

/// How long a repeat waits for the first submission of its token to finish.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(10);

/// A fresh token for one form: 128 random bits, hex.
pub fn new_token() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// The token of the submission being run, for a handler whose effect must carry it.
#[derive(Debug, Clone)]
pub struct FormToken(pub String);

/// What a handler asks to be remembered as its answer when that answer is a page rather
/// than a redirect (a new secret, shown once); a repeat is then run with [`FormReplay`].
#[derive(Debug, Clone)]
pub struct FormAnswer(pub String);

/// Set by a handler that only asked to confirm (a page, nothing changed): the form's token
/// is released, so the same form may be sent again.
#[derive(Debug, Clone, Copy)]
pub struct NothingDone;

/// Set on a repeated submission whose first answer was a [`FormAnswer`]: the handler
/// answers again from it and changes nothing.
#[derive(Debug, Clone)]
pub struct FormReplay(pub String);

fn well_formed(token: &str) -> bool {
    (16..=64).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `location` with its notice replaced by `once`.
fn said_once(location: &str) -> String {
    let (path, query) = location.split_once('?').unwrap_or((location, ""));
    let mut kept: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("notice="))
        .map(str::to_owned)
        .collect();
    kept.push("notice=once".into());
    format!("{path}?{}", kept.join("&"))
}

/// The middleware on every merchant-center form that changes something.
pub async fn once(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let Ok(body) = to_bytes(body, state.service.settings.max_body_bytes).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let field = |name: &str| {
        url::form_urlencoded::parse(&body)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    // Not signed in, or a forged form: the handler refuses it, and nothing is claimed.
    let signed = match Signed::from_request_parts(&mut parts, &state).await {
        Ok(signed) => signed,
        Err(_) => return next.run(Request::from_parts(parts, Body::from(body))).await,
    };
    if signed
        .check_csrf(&state, &field("csrf_token").unwrap_or_default())
        .is_err()
    {
        return next.run(Request::from_parts(parts, Body::from(body))).await;
    }
    let Some(token) = field(FIELD).filter(|t| well_formed(t)) else {
        tracing::info!(path = %parts.uri.path(), "merchant-center form without a form_token");
        return error_page(signed.lang, ErrorKind::StaleForm);
    };
    let merchant = signed.merchant.id.clone();
    let path_hash = hex::encode(Sha256::digest(parts.uri.path().as_bytes()));
    let service = &state.service;
    let started = tokio::time::Instant::now();
    let first = loop {
        match service
            .claim_key(&merchant, SCOPE, &token, path_hash.clone())
            .await
        {
            Err(e) => return super::internal(signed.lang, &e),
            Ok(Idempotency::Fresh) => break None,
            Ok(Idempotency::Replay { body, .. }) => break Some(body),
            Ok(Idempotency::Mismatch) => return error_page(signed.lang, ErrorKind::StaleForm),
            Ok(Idempotency::InProgress) if started.elapsed() < WAIT_FOR_FIRST => {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            Ok(Idempotency::InProgress) => return error_page(signed.lang, ErrorKind::Busy),
        }
    };
    match first {
        Some(answer) => {
            tracing::info!(path = %parts.uri.path(), user = ?signed.user.email, "merchant-center form sent again; answered as the first time");
            match answer.strip_prefix("page:") {
                Some(page) => {
                    parts.extensions.insert(FormReplay(page.to_owned()));
                    next.run(Request::from_parts(parts, Body::from(body))).await
                }
                None => Redirect::to(&said_once(&answer)).into_response(),
            }
        }
        None => {
            parts.extensions.insert(FormToken(token.clone()));
            let response = next.run(Request::from_parts(parts, Body::from(body))).await;
            let status = response.status();
            let nothing_done = response.extensions().get::<NothingDone>().is_some();
            let recorded = if nothing_done || status.is_client_error() || status.is_server_error() {
                // Refused, failed or only asked to confirm: nothing was done, and the form
                // may be sent again.
                service.release_key(&merchant, SCOPE, &token).await
            } else {
                let answer = match response.extensions().get::<FormAnswer>() {
                    Some(FormAnswer(page)) => format!("page:{page}"),
                    None => response
                        .headers()
                        .get(header::LOCATION)
                        .and_then(|l| l.to_str().ok())
                        .unwrap_or("/dashboard")
                        .to_owned(),
                };
                service
                    .answer_key(&merchant, SCOPE, &token, status.as_u16(), answer)
                    .await
            };
            if let Err(e) = recorded {
                tracing::error!(error = %e, "merchant-center form token could not be recorded");
            }
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeat_is_told_it_was_carried_out_once() {
        assert_eq!(
            said_once("/dashboard/payments/1?notice=refunded"),
            "/dashboard/payments/1?notice=once"
        );
        assert_eq!(
            said_once("/dashboard/settings"),
            "/dashboard/settings?notice=once"
        );
        assert_eq!(
            said_once("/dashboard/payments?status=paid&notice=x"),
            "/dashboard/payments?status=paid&notice=once"
        );
    }

    #[test]
    fn tokens_are_random_and_well_formed() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(well_formed(&a) && a.len() == 32);
        assert!(!well_formed("short") && !well_formed(&"x".repeat(65)));
        assert!(!well_formed("has space in it!"));
    }
}
