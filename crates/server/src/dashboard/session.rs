//! Signing in to the merchant center: the session cookie, the signed-in user as an
//! extractor ([`Signed`]), CSRF tokens, and the login and logout handlers.
//!
//! - The session cookie holds 32 random bytes (hex); the store keeps only their SHA-256.
//!   `HttpOnly`, `SameSite=Strict`, `Path=/dashboard`, `Secure` when `public_url` is https.
//!   A session lasts [`SESSION_LIFETIME`] from sign-in; signing out, or a new password,
//!   ends it at once.
//! - Every state-changing form carries `csrf_token`: HMAC-SHA256, under a key derived from
//!   the master key, of the session's token — or, on the login form, of a random nonce in
//!   its own short-lived cookie. A POST without the right one changes nothing (403).
//! - Failed sign-ins are limited per (email, address), per address and per email, like
//!   REST token requests, under their own counters.

use crate::service::{NewSession, UserRecord, UserRole};
use axum::Form;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use hmac::{Hmac, Mac};
use ottgate_core::Merchant;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::time::Duration;

use super::cookies::{cookie, with_cookies};
use super::i18n::{self, Strings};
use super::{ErrorKind, LoginPage, Refused, error_page, render};
use crate::checkout::i18n::Lang;
use crate::rest::extract::ClientAddr;
use crate::service::merchants::random_bytes;
use crate::signin::{Gate, guarded};
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "ottgate_session";
const LOGIN_COOKIE: &str = "ottgate_login";
/// How long a sign-in lasts.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// How long the login form may stay open.
const LOGIN_FORM_LIFETIME: Duration = Duration::from_secs(3600);

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A cookie value we made: 64 hex characters.
fn well_formed(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

#[expect(clippy::expect_used, reason = "HMAC accepts keys of every length")]
fn csrf_mac(state: &AppState, purpose: &str, token: &str) -> Hmac<Sha256> {
    let key = state
        .service
        .keyring
        .derive("ottgate merchant center csrf v1");
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("any key length");
    mac.update(purpose.as_bytes());
    mac.update(b":");
    mac.update(token.as_bytes());
    mac
}

fn csrf_token(state: &AppState, purpose: &str, token: &str) -> String {
    hex::encode(csrf_mac(state, purpose, token).finalize().into_bytes())
}

/// Whether `offered` is the CSRF token for (`purpose`, `token`), compared in constant time.
fn csrf_matches(state: &AppState, purpose: &str, token: &str, offered: &str) -> bool {
    hex::decode(offered)
        .is_ok_and(|bytes| csrf_mac(state, purpose, token).verify_slice(&bytes).is_ok())
}

/// The signed-in user of a merchant-center request, with their merchant and language.
#[derive(Debug, Clone)]
pub struct Signed {
    pub user: UserRecord,
    pub merchant: Merchant,
    pub lang: Lang,
    /// Set when `?lang=` chose the language: the page remembers it in a cookie.
    pub chose_lang: bool,
    /// The token every form of this session carries.
    pub csrf: String,
    /// The zone the merchant's people read times in: theirs, else the deployment's.
    pub zone: chrono_tz::Tz,
    session: String,
}

impl Signed {
    pub fn t(&self) -> &'static Strings {
        i18n::strings(self.lang)
    }

    /// `at` as the merchant center shows it: in the merchant's zone, labelled
    /// (`2026-12-05 09:11:55 EST`).
    pub fn local(&self, at: ottgate_core::Timestamp) -> String {
        local_time(at, self.zone, "%Y-%m-%d %H:%M:%S %Z")
    }

    pub fn is_admin(&self) -> bool {
        self.user.role == UserRole::Admin
    }

    /// The form's `csrf_token` is this session's, else 403 (and nothing happens).
    pub fn check_csrf(&self, state: &AppState, offered: &str) -> Result<(), Refused> {
        if csrf_matches(state, "session", &self.session, offered) {
            Ok(())
        } else {
            tracing::warn!(user = ?self.user.email, "merchant-center form without a valid csrf_token");
            Err(Refused(self.lang))
        }
    }

    /// The user is an admin, else 403.
    pub fn require_admin(&self) -> Result<(), Refused> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(Refused(self.lang))
        }
    }
}

/// The merchant's zone (an IANA name), else the deployment's, else UTC.
pub fn zone_of(merchant: Option<&str>, deployment: &str) -> chrono_tz::Tz {
    merchant
        .and_then(|z| z.parse().ok())
        .or_else(|| deployment.parse().ok())
        .unwrap_or(chrono_tz::UTC)
}

/// The instant `date` (`yyyy-mm-dd`) begins in `zone`: its local midnight (a midnight a
/// clock change skips: the first local time after it).
pub fn local_day_start(date: &str, zone: chrono_tz::Tz) -> Option<ottgate_core::Timestamp> {
    use chrono::TimeZone;
    let day = chrono::NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d").ok()?;
    let midnight = day.and_hms_opt(0, 0, 0)?;
    let start = zone.from_local_datetime(&midnight).earliest().or_else(|| {
        let later = midnight + chrono::Duration::hours(1);
        zone.from_local_datetime(&later).earliest()
    })?;
    Some(ottgate_core::Timestamp::from_epoch_millis(
        start.timestamp_millis(),
    ))
}

/// `at` in `zone`, written with `format` (chrono's).
pub fn local_time(at: ottgate_core::Timestamp, zone: chrono_tz::Tz, format: &str) -> String {
    chrono::DateTime::from_timestamp_millis(at.epoch_millis())
        .map(|t| t.with_timezone(&zone).format(format).to_string())
        .unwrap_or_default()
}

fn query_lang(parts: &Parts) -> Option<String> {
    url::form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "lang")
        .map(|(_, v)| v.into_owned())
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let chosen = query_lang(parts);
        let lang = i18n::pick(chosen.as_deref(), &parts.headers);
        let signed_out = || {
            if parts.method == Method::GET {
                Redirect::to("/dashboard/login").into_response()
            } else {
                error_page(lang, ErrorKind::Forbidden)
            }
        };
        let Some(session) = cookie(&parts.headers, SESSION_COOKIE).filter(|t| well_formed(t))
        else {
            return Err(signed_out());
        };
        let service = &state.service;
        let internal = |e: &dyn std::error::Error| {
            tracing::error!(error = %e, "merchant center: session lookup failed");
            error_page(lang, ErrorKind::Internal)
        };
        let Some(user) = service
            .session_user(&token_hash(&session))
            .await
            .map_err(|e| internal(&e))?
        else {
            return Err(signed_out());
        };
        let Some(merchant) = service
            .merchant_record(&user.merchant_id)
            .await
            .map_err(|e| internal(&e))?
        else {
            return Err(signed_out());
        };
        let zone = zone_of(
            merchant.time_zone.as_deref(),
            &service.settings.time_zone_id,
        );
        Ok(Signed {
            zone,
            csrf: csrf_token(state, "session", &session),
            user,
            merchant: merchant.merchant,
            lang,
            chose_lang: chosen.is_some(),
            session,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct LangQuery {
    lang: Option<String>,
}

/// `GET /dashboard/login`: the form (or the overview, for someone signed in).
pub async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<LangQuery>,
) -> Response {
    let lang = i18n::pick(q.lang.as_deref(), &headers);
    if let Some(session) = cookie(&headers, SESSION_COOKIE).filter(|t| well_formed(t))
        && let Ok(Some(_)) = state.service.session_user(&token_hash(&session)).await
    {
        return Redirect::to("/dashboard").into_response();
    }
    login_form(&state, &headers, lang, StatusCode::OK, None, "")
}

/// The login form, with a fresh nonce cookie when the request has none.
fn login_form(
    state: &AppState,
    headers: &HeaderMap,
    lang: Lang,
    status: StatusCode,
    error: Option<&'static str>,
    email: &str,
) -> Response {
    let nonce = cookie(headers, LOGIN_COOKIE)
        .filter(|n| well_formed(n))
        .unwrap_or_else(|| hex::encode(random_bytes::<32>()));
    let page = LoginPage {
        t: i18n::strings(lang),
        lang: i18n::code(lang),
        csrf_token: csrf_token(state, "login", &nonce),
        error,
        email: email.to_owned(),
    };
    let cookies = [
        (LOGIN_COOKIE, nonce.as_str(), LOGIN_FORM_LIFETIME),
        (i18n::LANG_COOKIE, i18n::code(lang), SESSION_LIFETIME),
    ];
    with_cookies(state, render(status, &page), &cookies)
}

#[derive(Debug, Default, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf_token: String,
}

/// `POST /dashboard/login`.
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let lang = i18n::pick(None, &headers);
    let t = i18n::strings(lang);
    let nonce = cookie(&headers, LOGIN_COOKIE).filter(|n| well_formed(n));
    if !nonce.is_some_and(|n| csrf_matches(&state, "login", &n, &form.csrf_token)) {
        return error_page(lang, ErrorKind::Forbidden);
    }
    let email = form.email.trim().to_lowercase();
    if email.is_empty() || email.len() > 254 || form.password.len() > 1024 {
        return login_form(
            &state,
            &headers,
            lang,
            StatusCode::UNAUTHORIZED,
            Some(t.wrong_password),
            &form.email,
        );
    }
    let now = state.service.clock.now();
    let gate = password_gate(&state, &email, addr, &form.password).await;
    let (status, error) = match gate {
        Ok(Gate::Passed(user)) => return start_session(&state, user, now, "/dashboard").await,
        Ok(Gate::Wrong) => {
            tracing::warn!(email = ?email, client = ?addr, "merchant-center sign-in with a wrong password");
            (StatusCode::UNAUTHORIZED, t.wrong_password)
        }
        Ok(Gate::TooMany) => (StatusCode::TOO_MANY_REQUESTS, t.too_many),
        Ok(Gate::Busy) => (StatusCode::SERVICE_UNAVAILABLE, t.busy),
        Err(e) => {
            tracing::error!(error = %e, "merchant-center sign-in failed");
            return error_page(lang, ErrorKind::Internal);
        }
    };
    login_form(&state, &headers, lang, status, Some(error), &email)
}

/// Whether `password` is `email`'s, checked as every merchant-center password is: under the
/// sign-in failure limits and their counters (see [`guarded`]).
pub(super) async fn password_gate(
    state: &AppState,
    email: &str,
    addr: Option<std::net::IpAddr>,
    password: &str,
) -> Result<Gate<UserRecord>, crate::service::users::UserError> {
    guarded(
        &state.service,
        &state.dashboard_failures,
        &state.auth_hashing,
        email,
        addr,
        state.service.clock.now(),
        || state.service.check_password(email, password),
    )
    .await
}

/// A new session for `user`, answered with a redirect to `to` that sets its cookie.
pub(super) async fn start_session(
    state: &AppState,
    user: UserRecord,
    now: ottgate_core::Timestamp,
    to: &str,
) -> Response {
    let token = hex::encode(random_bytes::<32>());
    let session = NewSession {
        id_hash: token_hash(&token),
        user_id: user.id,
        created_at: now,
        expires_at: now.plus(SESSION_LIFETIME),
    };
    if let Err(e) = state.service.start_session(session).await {
        tracing::error!(error = %e, "merchant-center session could not be stored");
        return error_page(Lang::En, ErrorKind::Internal);
    }
    tracing::info!(email = ?user.email, merchant_id = %user.merchant_id, "merchant-center sign-in");
    let cookies = [
        (SESSION_COOKIE, token.as_str(), SESSION_LIFETIME),
        (LOGIN_COOKIE, "", Duration::ZERO),
    ];
    with_cookies(state, Redirect::to(to).into_response(), &cookies)
}

#[derive(Debug, Default, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf_token: String,
}

/// `POST /dashboard/logout`.
pub async fn logout(
    State(state): State<AppState>,
    signed: Signed,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(refused) = signed.check_csrf(&state, &form.csrf_token) {
        return refused.into_response();
    }
    if let Err(e) = state
        .service
        .end_session(&token_hash(&signed.session))
        .await
    {
        tracing::error!(error = %e, "merchant-center sign-out failed");
        return error_page(signed.lang, ErrorKind::Internal);
    }
    let cookies = [(SESSION_COOKIE, "", Duration::ZERO)];
    with_cookies(
        &state,
        Redirect::to("/dashboard/login").into_response(),
        &cookies,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_merchants_day_starts_at_its_own_midnight() {
        let toronto: chrono_tz::Tz = "America/Toronto".parse().unwrap();
        let at = |d| local_day_start(d, toronto).unwrap().rfc3339();
        // Winter: UTC-5; summer: UTC-4; Beijing: UTC+8 (the day before in UTC).
        assert_eq!(at("2026-12-04"), "2026-12-04T05:00:00.000Z");
        assert_eq!(at("2026-07-01"), "2026-07-01T04:00:00.000Z");
        let beijing: chrono_tz::Tz = "Asia/Shanghai".parse().unwrap();
        assert_eq!(
            local_day_start("2026-12-04", beijing).unwrap().rfc3339(),
            "2026-12-03T16:00:00.000Z"
        );
        assert!(local_day_start("2026-13-01", toronto).is_none());
    }

    #[test]
    fn only_our_own_tokens_are_looked_up() {
        assert!(well_formed(&"ab".repeat(32)));
        assert!(!well_formed("ab"));
        assert!(!well_formed(&"zz".repeat(32)));
    }
}
