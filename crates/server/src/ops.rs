//! Operations: liveness, readiness, metrics, and the per-request middleware that gives
//! every request an id, one log line and its metrics.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Instant;
use tracing::Instrument;

use crate::metrics::{HttpLabels, RouteLabels};
use crate::state::AppState;

pub const REQUEST_ID: &str = "x-request-id";

pub async fn healthz() -> &'static str {
    "ok"
}

/// How long readiness waits for the database before saying no.
const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

/// Ready when the database answers (within two seconds) with every migration applied: a
/// load balancer stops sending requests to a gateway whose database is unreachable.
pub async fn readyz(State(state): State<AppState>) -> Response {
    match tokio::time::timeout(READY_WITHIN, state.service.ready()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready").into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
        }
        Err(_) => {
            tracing::warn!("not ready: the database did not answer in time");
            (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
        }
    }
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    match state.service.barcode_backlog().await {
        Ok(b) => state
            .service
            .metrics
            .set_barcode_backlog(b.querying, b.undoing),
        Err(e) => tracing::warn!(error = %e, "barcode backlog unavailable"),
    }
    match state.service.recon_standing().await {
        Ok((runs, open)) => {
            let runs: Vec<_> = runs
                .into_iter()
                .map(|r| (r.wallet, r.finished_at.epoch_seconds()))
                .collect();
            let open: Vec<_> = open.into_iter().map(|d| (d.wallet, d.found.kind)).collect();
            state.service.metrics.set_recon(&runs, &open);
        }
        Err(e) => tracing::warn!(error = %e, "reconciliation standing unavailable"),
    }
    match state.service.stats().await {
        Ok(stats) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            state
                .service
                .metrics
                .encode(&stats, state.service.settings.delivery_lease),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "metrics unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "metrics unavailable").into_response()
        }
    }
}

/// A caller's request id is kept if it is short and plain; otherwise we make one.
fn request_id(req: &Request) -> String {
    req.headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| {
            use rand::Rng;
            format!("{:016x}", rand::thread_rng().r#gen::<u64>())
        })
}

/// A method as a metric label and log field: the standard ones by name, any other token
/// (a client may send millions of distinct ones) as `OTHER`, so the series stay few.
fn method_label(method: &axum::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "HEAD" => "HEAD",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        "PATCH" => "PATCH",
        _ => "OTHER",
    }
}

/// The route of a request no route of this router matched: a simulator's (mounted whole
/// under `/sim/{wallet}/`, its own routes inside), or `unmatched`. A closed set either way:
/// never the raw path.
fn nested_route(state: &AppState, path: &str) -> String {
    path.strip_prefix("/sim/")
        .and_then(|rest| rest.split('/').next())
        .filter(|wallet| state.simulators.get(wallet).is_some())
        .map_or_else(
            || "unmatched".to_owned(),
            |wallet| format!("/sim/{wallet}/{{*path}}"),
        )
}

/// A duration in milliseconds to the microsecond, written without binary noise
/// (`0.539`, not `0.5391009999999999`).
pub(crate) fn millis(d: std::time::Duration) -> f64 {
    // A count of microseconds is exact in an f64 far beyond any request's length; divided
    // by 1000 it prints as the shortest decimal that reads back the same.
    d.as_micros() as f64 / 1000.0
}

pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(&req);
    // Labels come from closed sets only: a method name, a route template (never the raw
    // path), a status code.
    let method = method_label(req.method()).to_owned();
    let route = match req.extensions().get::<MatchedPath>() {
        Some(p) => p.as_str().to_owned(),
        None => nested_route(&state, req.uri().path()),
    };
    let span = tracing::info_span!("request", request_id = %id);
    let mut response = next.run(req).instrument(span.clone()).await;
    let status = response.status();
    let elapsed = started.elapsed();
    state
        .service
        .metrics
        .http_requests
        .get_or_create(&HttpLabels {
            method: method.clone(),
            route: route.clone(),
            status: status.as_u16().to_string(),
        })
        .inc();
    state
        .service
        .metrics
        .http_latency
        .get_or_create(&RouteLabels {
            route: route.clone(),
        })
        .observe(elapsed.as_secs_f64());
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, v);
    }
    span.in_scope(|| {
        tracing::info!(
            target: "ottgate::http",
            method = %method, route = %route, status = status.as_u16(),
            latency_ms = millis(elapsed), "request"
        );
    });
    response
}
