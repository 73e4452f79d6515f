//! The merchant center at `/dashboard`: a merchant's people sign in (users are made with
//! `ottgate user add`), see their payments and the callbacks sent about them, refund, send
//! a callback again, and export CSV. Server-rendered HTML in English and Simplified
//! Chinese, no scripts at all, one stylesheet of our own; every page is the signed-in
//! merchant's and only theirs — another merchant's payment answers as a missing one does.
//!
//! - `session`: sign-in, sessions, CSRF, the [`session::Signed`] extractor.
//! - `pages`: the overview (with its server-drawn chart), the payment list and a payment.
//! - `actions`: refund and resend (admins only), each recorded in the audit log.
//! - `export`: the CSV, streamed page by page.
//! - `settings`: credentials and their rotation, payment methods, users, the audit log.
//! - `once`: one-time form tokens — a form sent twice is carried out once.
//! - `confirm`: the second step of what cannot be undone (refund, key rotation, removing a
//!   user), saying what will happen.

use askama::Template;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::checkout::i18n::Lang;
use crate::state::AppState;

mod actions;
mod chart;
mod confirm;
mod cookies;
mod export;
pub mod i18n;
mod once;
mod pages;
pub mod session;
mod settings;
mod settlements;

use i18n::Strings;

/// Nothing runs but the page itself: no script at all, styles and images only from the
/// gateway, forms only to it, never framed.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   base-uri 'none'; frame-ancestors 'none'";

const APP_CSS: &str = include_str!("app.css");

pub fn routes(router: Router<AppState>, state: &AppState) -> Router<AppState> {
    // Every form that changes something: run once per form token, and to the end even
    // when the browser goes away.
    let forms = Router::new()
        .route(
            "/dashboard/payments/{order_id}/refund",
            post(actions::refund),
        )
        .route(
            "/dashboard/payments/{order_id}/capture",
            post(actions::capture),
        )
        .route("/dashboard/payments/{order_id}/void", post(actions::void))
        .route(
            "/dashboard/deliveries/{delivery_id}/resend",
            post(actions::resend),
        )
        .route("/dashboard/settings/sign-key", post(settings::rotate_key))
        .route(
            "/dashboard/settings/app-key",
            post(settings::rotate_app_key),
        )
        .route(
            "/dashboard/settings/webhook-secret",
            post(settings::rotate_secret),
        )
        .route("/dashboard/settings/methods", post(settings::methods))
        .route("/dashboard/settings/link-flows", post(settings::link_flows))
        .route("/dashboard/settings/time-zone", post(settings::time_zone))
        .route("/dashboard/settings/users", post(settings::add))
        .route("/dashboard/settings/users/remove", post(settings::remove))
        .route("/dashboard/settings/password", post(settings::password))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            once::once,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::to_completion,
        ));
    router
        .route(
            "/dashboard/login",
            get(session::login_page).post(session::login),
        )
        .route("/dashboard/logout", post(session::logout))
        .route("/dashboard", get(pages::overview))
        .route("/dashboard/payments", get(pages::payments))
        .route("/dashboard/payments.csv", get(export::csv))
        .route("/dashboard/payments/{order_id}", get(pages::payment))
        .route("/dashboard/settings", get(settings::settings))
        .route("/dashboard/settlements", get(settlements::settlements))
        .route("/dashboard/settlements.csv", get(settlements::csv))
        .route("/dashboard/assets/app.css", get(stylesheet))
        .merge(forms)
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        APP_CSS,
    )
        .into_response()
}

/// A merchant-center page as a response, with its security headers.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    crate::checkout::pages::render_with(status, page, HeaderValue::from_static(CSP), "same-origin")
}

#[derive(Template)]
#[template(path = "dashboard/login.html")]
pub struct LoginPage {
    pub t: &'static Strings,
    pub lang: &'static str,
    pub csrf_token: String,
    pub error: Option<&'static str>,
    pub email: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    Forbidden,
    BadRequest,
    /// Too many failed password checks (sign-ins and password changes alike).
    TooMany,
    /// No password check could start now (or a form's first submission is still running).
    Busy,
    /// A form without its one-time token, or with one another form used: reload the page.
    StaleForm,
    Internal,
}

#[derive(Template)]
#[template(path = "dashboard/error.html")]
struct ErrorPage {
    t: &'static Strings,
    kind: &'static str,
    heading: &'static str,
    body: &'static str,
}

/// The page saying why not: 404 (also for another merchant's things), 403, 400 or 500.
pub fn error_page(lang: Lang, kind: ErrorKind) -> Response {
    let t = i18n::strings(lang);
    let (status, code, heading, body) = match kind {
        ErrorKind::NotFound => (
            StatusCode::NOT_FOUND,
            "not_found",
            t.not_found_title,
            t.not_found_body,
        ),
        ErrorKind::Forbidden => (
            StatusCode::FORBIDDEN,
            "forbidden",
            t.forbidden_title,
            t.forbidden_body,
        ),
        ErrorKind::BadRequest => (
            StatusCode::BAD_REQUEST,
            "bad_request",
            t.not_found_title,
            t.not_found_body,
        ),
        ErrorKind::TooMany => (StatusCode::TOO_MANY_REQUESTS, "too_many", t.too_many, ""),
        ErrorKind::StaleForm => (
            StatusCode::BAD_REQUEST,
            "stale_form",
            t.stale_form_title,
            t.stale_form_body,
        ),
        ErrorKind::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy", t.busy, ""),
        ErrorKind::Internal => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "error",
            t.error_title,
            "",
        ),
    };
    render(
        status,
        &ErrorPage {
            t,
            kind: code,
            heading,
            body,
        },
    )
}

/// A form refused (its CSRF token is wrong, or the user's role does not allow it): 403,
/// and nothing was done.
#[derive(Debug, Clone, Copy)]
pub struct Refused(pub Lang);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        error_page(self.0, ErrorKind::Forbidden)
    }
}

/// Records an admin action in the audit log. The action is done already: a failure to
/// record it is logged as an error, not shown as the action's failure.
pub async fn audit(
    state: &AppState,
    signed: &session::Signed,
    action: &str,
    subject: &str,
    detail: String,
) {
    let entry = crate::service::AuditEntry {
        merchant_id: signed.merchant.id.clone(),
        actor: signed.user.email.clone(),
        action: action.to_owned(),
        subject: subject.to_owned(),
        detail,
        at: state.service.clock.now(),
    };
    if let Err(e) = state.service.record_audit(entry).await {
        tracing::error!(error = %e, action, subject, "audit log entry could not be written");
    }
}

/// An admin action's gate: the form's token must be the session's and the user an admin,
/// else the 403 to answer with (and nothing is done).
pub fn admit(state: &AppState, signed: &session::Signed, token: &str) -> Option<Response> {
    signed
        .check_csrf(state, token)
        .and_then(|()| signed.require_admin())
        .err()
        .map(IntoResponse::into_response)
}

/// A failed lookup as a page: logged with its cause, shown as "something went wrong".
pub fn internal(lang: Lang, e: &dyn std::error::Error) -> Response {
    tracing::error!(error = %e, "merchant-center page failed");
    error_page(lang, ErrorKind::Internal)
}
