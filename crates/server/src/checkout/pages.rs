//! Rendering server-side HTML: the one place a page becomes a response, with the headers
//! every checkout page carries (no external assets allowed, no framing, no referrer).

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use std::sync::LazyLock;

use super::i18n::{Lang, Strings};

/// The checkout's countdown (checkout.html).
pub const COUNTDOWN_JS: &str = r#"
(function () {
  var el = document.getElementById("countdown");
  var end = Date.now() + parseInt(el.getAttribute("data-remaining"), 10) * 1000;
  var local = document.getElementById("local-expiry");
  var at = new Date(parseInt(local.getAttribute("data-expires"), 10));
  local.textContent = at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) +
    " (" + local.getAttribute("data-label") + ") \u00b7 ";
  local.hidden = false;
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function tick() {
    var s = Math.max(0, Math.round((end - Date.now()) / 1000));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    el.textContent = (h > 0 ? h + ":" + pad(m) : pad(m)) + ":" + pad(r);
    if (s <= 0) {
      var buttons = document.querySelectorAll("button.method");
      for (var i = 0; i < buttons.length; i++) { buttons[i].disabled = true; }
      document.getElementById("expired-note").hidden = false;
      return;
    }
    setTimeout(tick, 1000);
  }
  tick();
})();
"#;

/// The QR page's poll for the payment's result (qr.html).
pub const QR_POLL_JS: &str = r#"
(function () {
  var url = document.getElementById("qr-card").getAttribute("data-status-url");
  function poll() {
    fetch(url, { cache: "no-store" }).then(function (r) { return r.json(); }).then(function (s) {
      if (s.done) { window.location.href = s.next; } else { setTimeout(poll, 2000); }
    }).catch(function () { setTimeout(poll, 4000); });
  }
  setTimeout(poll, 2000);
})();
"#;

/// Submits the form that carries the buyer to a wallet (post_form.html).
pub const AUTO_SUBMIT_JS: &str = r#"document.getElementById("wallet-form").submit();"#;

/// Inline styles, and exactly our own three scripts, pinned by their SHA-256 (PCI DSS
/// 6.4.3: a payment page runs only scripts it means to): nothing may load from another
/// origin, and an injected script — inline or not — does not run.
static CSP: LazyLock<HeaderValue> = LazyLock::new(|| {
    let hashes: Vec<String> = [COUNTDOWN_JS, QR_POLL_JS, AUTO_SUBMIT_JS]
        .iter()
        .map(|script| format!("'sha256-{}'", script_hash(script)))
        .collect();
    let policy = format!(
        "default-src 'none'; style-src 'unsafe-inline'; script-src {}; img-src data:; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'",
        hashes.join(" ")
    );
    HeaderValue::from_str(&policy)
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"))
});

/// A script's CSP hash: Base64 of the SHA-256 of its exact text.
pub fn script_hash(script: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script.as_bytes()))
}

pub fn render(status: StatusCode, page: &impl Template) -> Response {
    render_with(status, page, CSP.clone(), "no-referrer")
}

/// A server-rendered page with the headers every HTML page of the gateway carries: its
/// content security policy, no framing, its referrer policy, never cached, no sniffing.
pub fn render_with(
    status: StatusCode,
    page: &impl Template,
    csp: HeaderValue,
    referrer: &'static str,
) -> Response {
    match page.render() {
        Ok(html) => {
            let mut response = (status, Html(html)).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_SECURITY_POLICY, csp);
            headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
            headers.insert(header::REFERRER_POLICY, HeaderValue::from_static(referrer));
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

/// Why an HTML page (the checkout, the sandbox wallet) could not be shown: answered with
/// the status page in the buyer's language. An internal failure is logged, with its cause,
/// where it is made; the buyer sees only that something went wrong.
#[derive(Debug)]
pub struct PageError {
    lang: Lang,
    found: bool,
}

impl PageError {
    pub fn not_found(lang: Lang) -> Self {
        Self { lang, found: false }
    }

    pub fn internal(lang: Lang, e: &dyn std::error::Error) -> Self {
        tracing::error!(error = %e, "page failed");
        Self { lang, found: true }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        if self.found {
            StatusPage::internal(self.lang)
        } else {
            StatusPage::not_found(self.lang)
        }
    }
}

/// A page's answer: the page, or the status page saying why not.
pub type PageResult = Result<Response, PageError>;

/// Reads a lookup for a page: failures become internal, nothing found becomes not found.
pub trait ForPage<T> {
    fn for_page(self, lang: Lang) -> Result<T, PageError>;
}

impl<T, E: std::error::Error> ForPage<T> for Result<Option<T>, E> {
    fn for_page(self, lang: Lang) -> Result<T, PageError> {
        self.map_err(|e| PageError::internal(lang, &e))?
            .ok_or(PageError::not_found(lang))
    }
}
