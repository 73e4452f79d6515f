//! `POST /processV2` (also served at `/process` and `/processV3`, the paths older and
//! newer OTT Pay integrations post to): the encrypted-envelope API.
//!
//! Every failure is an envelope `{rsp_code, rsp_msg}` naming what is wrong, and changes
//! nothing. Replies with data are sealed with the merchant's key.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ottgate_api::{Action, EnvelopeError, EnvelopeRequest, EnvelopeResponse, RspCode};
use ottgate_core::{MerchantId, OrderKind};
use ottgate_envelope::{Fields, OpenError, open, seal};

use crate::service::Signing;
use crate::state::AppState;

mod card;
mod direct;
mod error;
mod fields;
mod mini;
mod passive;
mod payments;
mod prepay;
mod rates;

pub use error::ProtocolError;

/// The paths the envelope API answers at, all alike.
pub const PATHS: [&str; 3] = ["/process", "/processV2", "/processV3"];

/// Anything but POST on an envelope path.
pub async fn method_not_allowed() -> Response {
    ProtocolError {
        http: StatusCode::METHOD_NOT_ALLOWED,
        ..ProtocolError::invalid("the envelope API takes POST")
    }
    .into_response()
}

/// A path nothing is served at, outside the REST API: answered as the envelope API
/// answers, so a client that took a wrong path reads why.
pub async fn unknown_path(uri: axum::http::Uri) -> Response {
    let path: String = uri
        .path()
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect();
    ProtocolError {
        http: StatusCode::NOT_FOUND,
        ..ProtocolError::invalid(format!(
            "no such path: {path} (the envelope API is POST /processV2)"
        ))
    }
    .into_response()
}

pub async fn process(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (action, result) = handle(&state, body).await;
    let rsp_code = match &result {
        Ok(_) => RspCode::Success,
        Err(e) => e.code,
    };
    state
        .service
        .metrics
        .envelope_responses
        .get_or_create(&crate::metrics::EnvelopeLabels {
            action: action.map_or("unknown", |a| a.name()).into(),
            rsp_code: rsp_code.as_str().into(),
        })
        .inc();
    match result {
        Ok(reply) => Json(reply).into_response(),
        Err(e) => {
            tracing::info!(action = action.map_or("unknown", |a| a.name()), rsp_code = %e.code, rsp_msg = ?e.msg, "envelope request refused");
            e.into_response()
        }
    }
}

async fn handle(
    state: &AppState,
    body: Result<Bytes, BytesRejection>,
) -> (Option<Action>, Result<EnvelopeResponse, ProtocolError>) {
    let body = match body {
        Ok(b) => b,
        Err(rejection) => {
            let e = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ProtocolError {
                    http: StatusCode::PAYLOAD_TOO_LARGE,
                    ..ProtocolError::format(format!(
                        "request body exceeds {} bytes",
                        state.service.settings.max_body_bytes
                    ))
                }
            } else {
                ProtocolError::format("request body could not be read")
            };
            return (None, Err(e));
        }
    };
    let request = match EnvelopeRequest::parse(&body) {
        Ok(r) => r,
        Err(e) => {
            let error = match e {
                EnvelopeError::Missing(_) => ProtocolError::invalid(e.to_string()),
                _ => ProtocolError::format(e.to_string()),
            };
            return (None, Err(error));
        }
    };
    let action = match Action::parse(&request.action, &request.version) {
        Ok(a) => a,
        Err(e) => return (None, Err(ProtocolError::invalid(e.to_string()))),
    };
    (Some(action), dispatch(state, action, &request).await)
}

async fn dispatch(
    state: &AppState,
    action: Action,
    request: &EnvelopeRequest,
) -> Result<EnvelopeResponse, ProtocolError> {
    let unknown = || ProtocolError::invalid("merchant_id not found");
    let merchant_id = MerchantId::parse(&request.merchant_id).map_err(|_| unknown())?;
    let signing = state
        .service
        .signing(&merchant_id)
        .await?
        .ok_or_else(unknown)?;
    // During a sign key's grace period after a rotation, a request sealed with the old key
    // is accepted and answered with it (docs/merchant-center.md, Rotating keys).
    let (opened, key) = match open(&request.data, &request.md5, &signing.key) {
        Ok(opened) => (opened, &signing.key),
        Err(e) => match &signing.previous {
            Some(previous) if opened_by_another_key(&e) => (
                open(&request.data, &request.md5, previous).map_err(|_| open_error(e))?,
                previous,
            ),
            _ => return Err(open_error(e)),
        },
    };
    // The sandbox keeps what each shop asked (for `ottgate check`).
    let about = ["ori_order_id", "order_id", "orderId", "prepay_order_id"]
        .iter()
        .find_map(|name| opened.fields.get(*name).and_then(|v| v.as_str()));
    state.note_call(&merchant_id, action.name(), about);
    // Beside `data`, PASSIVEPAY's table names the till and the operator; the ones in
    // `data` win.
    let mut opened = opened;
    for (name, value) in [
        ("terminal_no", &request.terminal_no),
        ("operator_id", &request.operator_id),
    ] {
        if let Some(value) = value
            && action == Action::PassivePay
            && !opened.fields.contains_key(name)
        {
            opened
                .fields
                .insert(name.to_owned(), serde_json::Value::String(value.clone()));
        }
    }
    let data = if changes_payments(action) {
        // Runs to its end even if the merchant hangs up (Service::to_completion), so what
        // it did and the answer a retry gets are both recorded.
        let (state2, signing2) = (state.clone(), signing.clone());
        let (fields, md5) = (opened.fields, request.md5.clone());
        state
            .service
            .to_completion(async move { run(&state2, action, &signing2, &fields, &md5).await })
            .await?
    } else {
        run(state, action, &signing, &opened.fields, &request.md5).await?
    };
    Ok(EnvelopeResponse::sealed(seal(&data, key)))
}

/// The actions whose work must not stop half-way when the client leaves: each calls a
/// wallet after writing, and records the wallet's answer after. (PREPAY_INIT writes once,
/// its replayable answer in the same write: nothing is left half-done.)
fn changes_payments(action: Action) -> bool {
    match action {
        Action::Refund
        | Action::ActivePay
        | Action::H5Pay
        | Action::CcPurchase
        | Action::CcPreAuth
        | Action::MappPay
        | Action::PassivePay => true,
        Action::PrepayInit
        | Action::PrepayQuery
        | Action::StatusQuery
        | Action::ExRateQuery
        | Action::CcQueryPay => false,
    }
}

/// Whether the failure is one another key could cure (not a malformed envelope).
fn opened_by_another_key(e: &OpenError) -> bool {
    matches!(
        e,
        OpenError::Padding | OpenError::Utf8 | OpenError::NotJsonObject | OpenError::Md5Mismatch
    )
}

fn open_error(e: OpenError) -> ProtocolError {
    ProtocolError::format(e.to_string())
}

async fn run(
    state: &AppState,
    action: Action,
    signing: &Signing,
    fields: &Fields,
    md5: &str,
) -> Result<Fields, ProtocolError> {
    match action {
        Action::PrepayInit => prepay::init(state, signing, fields, md5).await,
        Action::PrepayQuery => prepay::query(state, signing, fields).await,
        Action::StatusQuery => payments::status_query(state, signing, fields).await,
        Action::Refund => payments::refund(state, signing, fields).await,
        Action::ActivePay => direct::active_pay(state, signing, fields, md5).await,
        Action::H5Pay => direct::h5_pay(state, signing, fields, md5).await,
        Action::ExRateQuery => rates::query(state, signing, fields).await,
        Action::CcPurchase => card::purchase(state, signing, fields, md5, OrderKind::Card).await,
        Action::CcPreAuth => {
            card::purchase(state, signing, fields, md5, OrderKind::CardPreAuth).await
        }
        Action::CcQueryPay => card::query(state, signing, fields).await,
        Action::MappPay => mini::mini_program_pay(state, signing, fields, md5).await,
        Action::PassivePay => passive::passive_pay(state, signing, fields, md5).await,
    }
}
