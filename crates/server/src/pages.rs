//! Rendering server-side HTML: the one place a page becomes a response, with the headers
//! every checkout page carries (no external assets allowed, no framing, no referrer).

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::i18n::{Lang, Strings};

/// Inline styles and scripts only: nothing may load from another origin (buyers may be
/// behind networks that block foreign CDNs, and a payment page should not pull third-party
/// code anyway).
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'";

pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => {
            let mut response = (status, Html(html)).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            );
            headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
            headers.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "page failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "status.html")]
pub struct StatusPage {
    pub t: &'static Strings,
    pub kind: &'static str,
    pub css: &'static str,
    pub heading: &'static str,
    pub body: &'static str,
    pub merchant_name: Option<String>,
    pub amount: Option<String>,
    pub return_url: Option<String>,
}

impl StatusPage {
    pub fn not_found(lang: Lang) -> Response {
        let t = lang.strings();
        render(
            StatusCode::NOT_FOUND,
            &StatusPage {
                t,
                kind: "not_found",
                css: "status-bad",
                heading: t.not_found_title,
                body: t.not_found_body,
                merchant_name: None,
                amount: None,
                return_url: None,
            },
        )
    }

    pub fn internal(lang: Lang) -> Response {
        let t = lang.strings();
        render(
            StatusCode::INTERNAL_SERVER_ERROR,
            &StatusPage {
                t,
                kind: "error",
                css: "status-bad",
                heading: t.error_title,
                body: "",
                merchant_name: None,
                amount: None,
                return_url: None,
            },
        )
    }
}
