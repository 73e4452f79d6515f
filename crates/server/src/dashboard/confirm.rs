//! The second step of an action that cannot be undone (a refund, a key rotation, removing
//! a user): a page saying exactly what will happen — the amount, which key stops working
//! and when — with the same form once more and `confirm=yes`. No script: the first submit
//! only renders this page (and releases its form token, so nothing is counted as done).

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;

use super::i18n::Strings;
use super::once::NothingDone;
use super::pages::Chrome;
use super::session::Signed;

#[derive(Template)]
#[template(path = "dashboard/confirm.html")]
struct ConfirmPage {
    t: &'static Strings,
    chrome: Chrome,
    heading: String,
    facts: Vec<(String, String)>,
    what: String,
    action: String,
    fields: Vec<(String, String)>,
    button: String,
    cancel: String,
}

/// What to confirm: `facts` (label, value) and one sentence of `what` happens; the form
/// posts `fields` to `action` again, with `confirm=yes`.
pub struct Confirm {
    pub heading: String,
    pub facts: Vec<(String, String)>,
    pub what: String,
    pub action: String,
    pub fields: Vec<(String, String)>,
    pub button: String,
    /// Where "cancel" goes.
    pub cancel: String,
}

/// The form asked for `confirm=yes`.
pub fn confirmed(value: &str) -> bool {
    value == "yes"
}

/// The confirmation page for `signed`, on the `here` part of the merchant center.
pub fn page(signed: &Signed, here: &'static str, c: Confirm) -> Response {
    let mut response = super::render(
        StatusCode::OK,
        &ConfirmPage {
            t: signed.t(),
            chrome: Chrome::new(signed, here),
            heading: c.heading,
            facts: c.facts,
            what: c.what,
            action: c.action,
            fields: c.fields,
            button: c.button,
            cancel: c.cancel,
        },
    );
    response.extensions_mut().insert(NothingDone);
    response
}
