//! The merchant's event log: every callback the gateway owes it, with how its delivery
//! went, and a way to send one again (an exhausted one, or one the merchant lost).

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use ottgate_api::rest::{
    Envelope, ErrorResult, EventItem, EventsResult, RedeliverResult, RestCode,
};
use ottgate_core::{NotifyId, Timestamp};
use std::time::Duration;

use super::extract::{Authed, RestError, RestResult, ok};
use crate::service::EventFilter;
use crate::state::AppState;

/// Events are listed from this far back when `since` is not given.
const DEFAULT_WINDOW: Duration = Duration::from_secs(30 * 86_400);
const MAX_LIMIT: u32 = 100;

fn invalid(field: &str, why: &str) -> RestError {
    RestError::new(
        StatusCode::BAD_REQUEST,
        RestCode::InvalidParameter,
        format!("{field}: {why}"),
    )
}

/// The event list's query: `since` (unix seconds), `limit` (1–100, default 50) and
/// `cursor` (the `nextCursor` of the page before).
struct Parameters {
    since: Timestamp,
    limit: u32,
    cursor: Option<i64>,
}

fn parameters(query: Option<&str>, now: Timestamp) -> Result<Parameters, RestError> {
    let mut since = Timestamp::from_epoch_millis(
        now.epoch_millis() - i64::try_from(DEFAULT_WINDOW.as_millis()).unwrap_or(0),
    );
    let mut limit = 50;
    let mut cursor = None;
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "since" => {
                let seconds: i64 = value
                    .parse()
                    .ok()
                    .filter(|s| *s >= 0)
                    .ok_or_else(|| invalid("since", "unix seconds expected"))?;
                since = Timestamp::from_epoch_millis(seconds.saturating_mul(1000));
            }
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|l| (1..=MAX_LIMIT).contains(l))
                    .ok_or_else(|| invalid("limit", "1 to 100 expected"))?;
            }
            "cursor" => {
                cursor = Some(
                    value
                        .parse::<i64>()
                        .ok()
                        .filter(|c| *c > 0)
                        .ok_or_else(|| invalid("cursor", "the nextCursor of a page expected"))?,
                );
            }
            _ => {}
        }
    }
    Ok(Parameters {
        since,
        limit,
        cursor,
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "events",
    params(
        ("since" = Option<i64>, Query, description = "Unix seconds; events created from then on (default: the last 30 days)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "At most this many, 1 to 100 (default 50)"),
        ("cursor" = Option<String>, Query, description = "The nextCursor of the page before: the events after it (older)"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The merchant's callbacks, newest first", body = Envelope<EventsResult>),
        (status = 400, description = "10005: since or limit malformed", body = Envelope<ErrorResult>),
        (status = 401, description = "90000: missing, malformed, expired or invalid token", body = Envelope<ErrorResult>),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    authed: Authed,
    RawQuery(query): RawQuery,
) -> RestResult<EventsResult> {
    let asked = parameters(query.as_deref(), state.service.clock.now())?;
    let filter = EventFilter {
        merchant: authed.merchant.id.clone(),
        since: asked.since,
        limit: asked.limit,
        before: asked.cursor,
    };
    let events = state.service.events(filter).await?;
    let full = u32::try_from(events.len()).unwrap_or(u32::MAX) >= asked.limit;
    let next_cursor = events
        .last()
        .filter(|_| full)
        .map(|e| e.cursor().to_string());
    ok(EventsResult {
        next_cursor,
        events: events
            .into_iter()
            .map(|e| EventItem {
                id: e.delivery.notify_id.to_string(),
                event_type: format!("payment.{}", e.delivery.event),
                order_id: e
                    .delivery
                    .attempt_id
                    .as_ref()
                    .map_or_else(|| e.delivery.order_id.to_string(), ToString::to_string),
                created: e.delivery.created_at.rfc3339(),
                state: e.delivery.state.code().to_owned(),
                attempts: e.delivery.attempts,
                last_http_status: e.last_http_status,
                last_error: e.delivery.last_error.clone(),
                next_attempt: (e.delivery.state == crate::service::DeliveryState::Pending)
                    .then(|| e.delivery.next_attempt_at.map(|at| at.rfc3339()))
                    .flatten(),
                reference: e.reference.clone(),
            })
            .collect(),
    })
}

#[utoipa::path(
    post,
    path = "/api/v1/events/{id}/redeliver",
    tag = "events",
    params(("id" = String, Path, description = "The event's id (its notify_id)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Due again now; it is retried on the schedule until acknowledged", body = Envelope<RedeliverResult>),
        (status = 401, description = "90000: missing, malformed, expired or invalid token", body = Envelope<ErrorResult>),
        (status = 404, description = "10005: no such event for this merchant", body = Envelope<ErrorResult>),
    )
)]
pub async fn redeliver(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<String>,
) -> RestResult<RedeliverResult> {
    let not_found = || {
        RestError::new(
            StatusCode::NOT_FOUND,
            RestCode::InvalidParameter,
            "id: no such event",
        )
    };
    let id = NotifyId::parse(&id).map_err(|_| not_found())?;
    let delivery = state
        .service
        .redeliver(&authed.merchant.id, &id)
        .await?
        .ok_or_else(not_found)?;
    tracing::info!(notify_id = %delivery.notify_id, merchant_id = %authed.merchant.id, "callback resent on request");
    ok(RedeliverResult {
        id: delivery.notify_id.to_string(),
        state: delivery.state.code().to_owned(),
    })
}
