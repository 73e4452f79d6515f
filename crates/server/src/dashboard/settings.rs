//! `GET /dashboard/settings`: the merchant's credentials (masked; admins rotate the sign
//! key and the webhook secret — the new value shown once, the old one honoured for
//! [`ROTATION_GRACE`]), payment methods on and off, users (admins add them; the one-time
//! password is shown once), and the audit log of every admin action.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use ottgate_core::{PaymentMethod, Timestamp};
use serde::Deserialize;

use super::confirm;
use super::i18n::{Strings, method_name};
use super::once::{FormAnswer, FormReplay};
use super::pages::{Chrome, page};
use super::session::Signed;
use super::{admit, audit, internal, render};
use crate::rest::extract::ClientAddr;
use crate::service::UserRole;
use crate::service::merchants::{ChannelChange, LinkChange, MerchantError, ROTATION_GRACE};
use crate::service::users::{UserError, acceptable_password};
use crate::signin::Gate;
use crate::state::AppState;
use sha2::Digest;

/// How many audit entries the page shows.
const AUDIT_SHOWN: u32 = 50;

pub struct MethodRow {
    pub code: &'static str,
    pub label: &'static str,
    pub on: bool,
}

pub struct UserRow {
    pub email: String,
    pub role: &'static str,
    pub created: String,
}

pub struct AuditRow {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "dashboard/settings.html")]
struct SettingsPage {
    t: &'static Strings,
    chrome: Chrome,
    /// The roles a new user can be given, in words.
    viewer_label: &'static str,
    admin_label: &'static str,
    notice: Option<&'static str>,
    error: Option<&'static str>,
    is_admin: bool,
    merchant_id: String,
    app_id: String,
    /// Shown in full to admins only: whoever holds it can start a payment.
    mer_code: String,
    /// The zone times are shown in (IANA name).
    zone: String,
    link_flows_on: bool,
    link_callback_url: String,
    sign_key: String,
    sign_key_previous_until: String,
    app_key_previous_until: String,
    webhook_secret: String,
    webhook_previous_until: String,
    methods: Vec<MethodRow>,
    users: Vec<UserRow>,
    audit: Vec<AuditRow>,
}

/// The first four characters, the rest hidden.
fn masked(secret: &str) -> String {
    let shown: String = secret.chars().take(4).collect();
    format!("{shown}{}", "•".repeat(12))
}

fn until_text(signed: &Signed, until: Option<Timestamp>, now: Timestamp) -> String {
    until
        .filter(|u| *u > now)
        .map(|u| signed.local(u))
        .unwrap_or_default()
}

#[derive(Debug, Default, Deserialize)]
pub struct SettingsQuery {
    #[serde(default)]
    notice: String,
}

/// `GET /dashboard/settings`.
pub async fn settings(
    State(state): State<AppState>,
    signed: Signed,
    Query(q): Query<SettingsQuery>,
) -> Response {
    let t = signed.t();
    let lang = signed.lang;
    let service = &state.service;
    let id = &signed.merchant.id;
    let now = state.service.clock.now();
    let record = match service.merchant_record(id).await {
        Ok(Some(record)) => record,
        Ok(None) => return super::error_page(lang, super::ErrorKind::NotFound),
        Err(e) => return internal(lang, &e),
    };
    let key = match state
        .service
        .keyring
        .open_sign_key(id, &record.sign_key_sealed)
    {
        Ok(key) => key,
        Err(e) => return internal(lang, &e),
    };
    let users = match service.users_of(id).await {
        Ok(users) => users,
        Err(e) => return internal(lang, &e),
    };
    let audit = match service.audit_log(id, AUDIT_SHOWN).await {
        Ok(audit) => audit,
        Err(e) => return internal(lang, &e),
    };
    let rotation = &record.rotation;
    let secret = state
        .service
        .keyring
        .webhook_secret(id, rotation.webhook_secret_version);
    let (notice, error) = match q.notice.as_str() {
        "methods_saved" => (Some(t.methods_saved), None),
        "link_flows_saved" => (Some(t.link_flows_saved), None),
        "zone_saved" => (Some(t.zone_saved), None),
        "zone_invalid" => (None, Some(t.zone_invalid)),
        "link_flows_invalid" => (None, Some(t.link_flows_invalid)),
        "methods_empty" => (None, Some(t.methods_empty)),
        "user_invalid" => (None, Some(t.user_invalid)),
        "user_exists" => (None, Some(t.user_exists)),
        "user_unavailable" => (None, Some(t.user_unavailable)),
        "password_changed" => (Some(t.password_changed), None),
        "password_wrong" => (None, Some(t.password_wrong)),
        "password_mismatch" => (None, Some(t.password_mismatch)),
        "password_short" => (None, Some(t.password_short)),
        "user_removed" => (Some(t.user_removed), None),
        "user_last_admin" => (None, Some(t.user_last_admin)),
        "once" => (Some(t.once), None),
        _ => (None, None),
    };
    let view = SettingsPage {
        t,
        chrome: Chrome::new(&signed, "settings"),
        notice,
        error,
        is_admin: signed.is_admin(),
        merchant_id: id.to_string(),
        app_id: record.merchant.app_id.clone(),
        mer_code: if signed.is_admin() {
            record.link.mer_code.clone()
        } else {
            masked(&record.link.mer_code)
        },
        zone: signed.zone.name().to_owned(),
        link_flows_on: record.link.enabled,
        link_callback_url: record.link.callback_url.clone().unwrap_or_default(),
        sign_key: masked(key.expose_secret()),
        sign_key_previous_until: until_text(
            &signed,
            rotation.previous_sign_key.as_ref().map(|p| p.1),
            now,
        ),
        app_key_previous_until: until_text(
            &signed,
            rotation.previous_app_key.as_ref().map(|p| p.1),
            now,
        ),
        webhook_secret: format!(
            "whsec_{}",
            masked(secret.expose_secret().trim_start_matches("whsec_"))
        ),
        webhook_previous_until: until_text(&signed, rotation.previous_webhook_until, now),
        methods: PaymentMethod::ALL
            .iter()
            .map(|m| MethodRow {
                code: m.code(),
                label: method_name(t, *m),
                on: record.merchant.methods.contains(m),
            })
            .collect(),
        viewer_label: super::i18n::role_name(t, UserRole::Viewer),
        admin_label: super::i18n::role_name(t, UserRole::Admin),
        users: users
            .iter()
            .map(|u| UserRow {
                email: u.email.clone(),
                role: super::i18n::role_name(t, u.role),
                created: signed.local(u.created_at),
            })
            .collect(),
        audit: audit
            .into_iter()
            .map(|e| AuditRow {
                at: signed.local(e.at),
                actor: e.actor,
                action: super::i18n::action_name(t, &e.action),
                subject: e.subject,
                detail: e.detail,
            })
            .collect(),
    };
    page(&signed, &state, StatusCode::OK, &view)
}

#[derive(Template)]
#[template(path = "dashboard/secret.html")]
struct SecretPage {
    t: &'static Strings,
    chrome: Chrome,
    heading: String,
    value: String,
}

/// A new secret, shown this once (the page is `no-store`, the value never in a URL).
fn shown_once(signed: &Signed, heading: String, value: String) -> Response {
    render(
        StatusCode::OK,
        &SecretPage {
            t: signed.t(),
            chrome: Chrome::new(signed, "settings"),
            heading,
            value,
        },
    )
}

/// Which secret a rotation replaces.
#[derive(Debug, Clone, Copy)]
enum Rotated {
    SignKey,
    WebhookSecret,
    AppKey,
}

/// What a rotation's form remembers of its answer (`once`): which secret, and a
/// fingerprint of the new value — never the value.
fn fingerprint(which: Rotated, value: &str) -> String {
    let digest = hex::encode(sha2::Sha256::digest(value.as_bytes()));
    format!("{which:?}:{}", &digest[..16])
}

/// A rotation's form sent again: the secret it rotated in is shown again while it is
/// still the current one (the first answer may never have been seen: a double click shows
/// the second); nothing is rotated.
async fn shown_again(state: &AppState, signed: &Signed, which: Rotated, first: &str) -> Response {
    let s = &state.service;
    let id = &signed.merchant.id;
    let current = match which {
        // Only the app key's hash is kept: what was shown once cannot be shown again.
        Rotated::AppKey => return Redirect::to("/dashboard/settings?notice=once").into_response(),
        Rotated::SignKey => match s.signing(id).await {
            Ok(Some(signing)) => signing.key.expose_secret().to_owned(),
            Ok(None) => return super::error_page(signed.lang, super::ErrorKind::NotFound),
            Err(e) => return internal(signed.lang, &e),
        },
        Rotated::WebhookSecret => match s.merchant_record(id).await {
            Ok(Some(record)) => s
                .keyring
                .webhook_secret(id, record.rotation.webhook_secret_version)
                .expose_secret()
                .to_owned(),
            Ok(None) => return super::error_page(signed.lang, super::ErrorKind::NotFound),
            Err(e) => return internal(signed.lang, &e),
        },
    };
    if fingerprint(which, &current) != first {
        return Redirect::to("/dashboard/settings?notice=once").into_response();
    }
    let heading = match which {
        Rotated::SignKey => signed.t().new_sign_key,
        Rotated::WebhookSecret => signed.t().new_webhook_secret,
        Rotated::AppKey => signed.t().new_app_key,
    };
    shown_once(signed, format!("{heading} ({})", signed.t().once), current)
}

/// A form of an action to confirm: its token, and `confirm=yes` once confirmed.
#[derive(Debug, Default, Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    confirm: String,
}

/// Rotates a secret, once confirmed; the new one is shown once.
async fn rotate(
    state: &AppState,
    signed: &Signed,
    form: &ConfirmForm,
    which: Rotated,
    replay: Option<Extension<FormReplay>>,
) -> Response {
    if let Some(refused) = admit(state, signed, &form.csrf_token) {
        return refused;
    }
    if let Some(Extension(FormReplay(first))) = replay {
        return shown_again(state, signed, which, &first).await;
    }
    let s = &state.service;
    let id = &signed.merchant.id;
    let hours = ROTATION_GRACE.as_secs() / 3600;
    if !confirm::confirmed(&form.confirm) {
        let t = signed.t();
        let (name, path) = match which {
            Rotated::SignKey => (t.sign_key, "sign-key"),
            Rotated::WebhookSecret => (t.webhook_secret, "webhook-secret"),
            Rotated::AppKey => (t.app_key, "app-key"),
        };
        let until = s.clock.now().plus(ROTATION_GRACE);
        return confirm::page(
            signed,
            "settings",
            confirm::Confirm {
                heading: t.confirm_rotation.to_owned(),
                facts: vec![
                    (t.rotate.to_owned(), name.to_owned()),
                    (t.stops_working.to_owned(), signed.local(until)),
                ],
                what: t.confirm_rotation_what.to_owned(),
                action: format!("/dashboard/settings/{path}"),
                fields: Vec::new(),
                button: format!("{}: {name}", t.rotate),
                cancel: "/dashboard/settings".to_owned(),
            },
        );
    }
    let rotated = match which {
        Rotated::SignKey => s.rotate_sign_key(id).await.map(|key| {
            let detail = format!("previous key accepted for {hours} h");
            (
                key.expose_secret().to_owned(),
                signed.t().new_sign_key,
                "rotate_sign_key",
                detail,
            )
        }),
        Rotated::WebhookSecret => s.rotate_webhook_secret(id).await.map(|secret| {
            let detail = format!("previous secret signs for {hours} h");
            let value = secret.expose_secret().to_owned();
            (
                value,
                signed.t().new_webhook_secret,
                "rotate_webhook_secret",
                detail,
            )
        }),
        Rotated::AppKey => s.rotate_app_key(id).await.map(|key| {
            let detail = format!("previous app key accepted for {hours} h");
            (
                key.expose_secret().to_owned(),
                signed.t().new_app_key,
                "rotate_app_key",
                detail,
            )
        }),
    };
    match rotated {
        Ok((value, heading, action, detail)) => {
            audit(state, signed, action, id.as_str(), detail).await;
            tracing::info!(merchant_id = %id, user = ?signed.user.email, action, "secret rotated");
            let answer = FormAnswer(fingerprint(which, &value));
            let mut page = shown_once(signed, heading.to_owned(), value);
            page.extensions_mut().insert(answer);
            page
        }
        Err(e) => internal(signed.lang, &e),
    }
}

/// `POST /dashboard/settings/sign-key`.
pub async fn rotate_key(
    State(state): State<AppState>,
    signed: Signed,
    replay: Option<Extension<FormReplay>>,
    Form(form): Form<ConfirmForm>,
) -> Response {
    rotate(&state, &signed, &form, Rotated::SignKey, replay).await
}

/// `POST /dashboard/settings/app-key`.
pub async fn rotate_app_key(
    State(state): State<AppState>,
    signed: Signed,
    replay: Option<Extension<FormReplay>>,
    Form(form): Form<ConfirmForm>,
) -> Response {
    rotate(&state, &signed, &form, Rotated::AppKey, replay).await
}

/// `POST /dashboard/settings/webhook-secret`.
pub async fn rotate_secret(
    State(state): State<AppState>,
    signed: Signed,
    replay: Option<Extension<FormReplay>>,
    Form(form): Form<ConfirmForm>,
) -> Response {
    rotate(&state, &signed, &form, Rotated::WebhookSecret, replay).await
}

/// `POST /dashboard/settings/methods`: `csrf_token` and one `method` per method left on
/// (the form's checkboxes), so repeated keys are read from the raw body.
pub async fn methods(State(state): State<AppState>, signed: Signed, body: Bytes) -> Response {
    let mut token = String::new();
    let mut on = Vec::new();
    for (key, value) in url::form_urlencoded::parse(&body) {
        match key.as_ref() {
            "csrf_token" => token = value.into_owned(),
            "method" => {
                if let Ok(m) = value.parse::<PaymentMethod>()
                    && !on.contains(&m)
                {
                    on.push(m);
                }
            }
            _ => {}
        }
    }
    if let Some(refused) = admit(&state, &signed, &token) {
        return refused;
    }
    if on.is_empty() {
        return Redirect::to("/dashboard/settings?notice=methods_empty").into_response();
    }
    let change = ChannelChange {
        disable: PaymentMethod::ALL
            .into_iter()
            .filter(|m| !on.contains(m))
            .collect(),
        enable: on.clone(),
        wechat_sub_mch_id: None,
        mcc: None,
    };
    match state
        .service
        .change_channels(signed.merchant.id.as_str(), change)
        .await
    {
        Ok(merchant) => {
            let detail = merchant
                .methods
                .iter()
                .map(|m| m.code())
                .collect::<Vec<_>>()
                .join(",");
            audit(
                &state,
                &signed,
                "set_methods",
                signed.merchant.id.as_str(),
                detail,
            )
            .await;
            Redirect::to("/dashboard/settings?notice=methods_saved").into_response()
        }
        Err(MerchantError::Invalid(_)) => {
            Redirect::to("/dashboard/settings?notice=methods_empty").into_response()
        }
        Err(e) => internal(signed.lang, &e),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct LinkFlowsForm {
    #[serde(default)]
    csrf_token: String,
    /// Present (`on`) when the box is ticked.
    #[serde(default)]
    enabled: Option<String>,
    #[serde(default)]
    callback_url: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct ZoneForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    zone: String,
}

/// `POST /dashboard/settings/time-zone` (admins): the zone the merchant center and its CSV
/// show times in (an IANA name; empty: the deployment's); audited.
pub async fn time_zone(
    State(state): State<AppState>,
    signed: Signed,
    Form(form): Form<ZoneForm>,
) -> Response {
    if let Some(refused) = admit(&state, &signed, &form.csrf_token) {
        return refused;
    }
    let zone = form.zone.trim();
    if !zone.is_empty() && zone.parse::<chrono_tz::Tz>().is_err() {
        return Redirect::to("/dashboard/settings?notice=zone_invalid").into_response();
    }
    let chosen = (!zone.is_empty()).then_some(zone);
    match state
        .service
        .set_time_zone(&signed.merchant.id, chosen)
        .await
    {
        Ok(_) => {
            let detail = chosen.unwrap_or("(the deployment's)").to_owned();
            audit(
                &state,
                &signed,
                "set_time_zone",
                signed.merchant.id.as_str(),
                detail,
            )
            .await;
            Redirect::to("/dashboard/settings?notice=zone_saved").into_response()
        }
        Err(e) => internal(signed.lang, &e),
    }
}

/// `POST /dashboard/settings/link-flows` (admins): switches OTT Pay's link flows on or off
/// and sets h5Pay's callback URL (empty clears it); audited.
pub async fn link_flows(
    State(state): State<AppState>,
    signed: Signed,
    Form(form): Form<LinkFlowsForm>,
) -> Response {
    if let Some(refused) = admit(&state, &signed, &form.csrf_token) {
        return refused;
    }
    let enabled = form.enabled.is_some();
    let change = LinkChange {
        enabled: Some(enabled),
        callback_url: Some(form.callback_url.trim().to_owned()),
    };
    match state
        .service
        .change_link_flows(signed.merchant.id.as_str(), change)
        .await
    {
        Ok(link) => {
            let detail = format!(
                "{} {}",
                if link.enabled { "on" } else { "off" },
                link.callback_url.as_deref().unwrap_or("-")
            );
            audit(
                &state,
                &signed,
                "set_link_flows",
                signed.merchant.id.as_str(),
                detail,
            )
            .await;
            Redirect::to("/dashboard/settings?notice=link_flows_saved").into_response()
        }
        Err(MerchantError::Invalid(_)) => {
            Redirect::to("/dashboard/settings?notice=link_flows_invalid").into_response()
        }
        Err(e) => internal(signed.lang, &e),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct UserForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

/// `POST /dashboard/settings/users`: a new user of this merchant; the one-time password is
/// shown once.
pub async fn add(
    State(state): State<AppState>,
    signed: Signed,
    Form(form): Form<UserForm>,
) -> Response {
    if let Some(refused) = admit(&state, &signed, &form.csrf_token) {
        return refused;
    }
    let role = match form.role.as_str() {
        "admin" => UserRole::Admin,
        _ => UserRole::Viewer,
    };
    match state
        .service
        .add_user(signed.merchant.id.as_str(), &form.email, role)
        .await
    {
        Ok(created) => {
            audit(
                &state,
                &signed,
                "add_user",
                &created.user.email,
                role.code().to_owned(),
            )
            .await;
            shown_once(
                &signed,
                format!("{} {}", signed.t().new_user_password, created.user.email),
                created.password.expose_secret().to_owned(),
            )
        }
        Err(UserError::Invalid(_)) => {
            Redirect::to("/dashboard/settings?notice=user_invalid").into_response()
        }
        Err(UserError::Exists(_)) => {
            Redirect::to("/dashboard/settings?notice=user_exists").into_response()
        }
        // Whose it is stays unsaid: only that this address cannot be added here.
        Err(UserError::ExistsElsewhere(_)) => {
            Redirect::to("/dashboard/settings?notice=user_unavailable").into_response()
        }
        Err(e) => internal(signed.lang, &e),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /dashboard/settings/users/remove` (admins): removes one of this merchant's users and
/// ends their sessions — never the last admin. Another merchant's user is not found (404),
/// exactly as nobody at all.
pub async fn remove(
    State(state): State<AppState>,
    signed: Signed,
    Form(form): Form<RemoveForm>,
) -> Response {
    if let Some(refused) = admit(&state, &signed, &form.csrf_token) {
        return refused;
    }
    if !confirm::confirmed(&form.confirm) {
        let t = signed.t();
        return confirm::page(
            &signed,
            "settings",
            confirm::Confirm {
                heading: t.confirm_remove_user.to_owned(),
                facts: vec![(t.email.to_owned(), form.email.clone())],
                what: t.confirm_remove_user_what.to_owned(),
                action: "/dashboard/settings/users/remove".to_owned(),
                fields: vec![("email".to_owned(), form.email.clone())],
                button: t.remove.to_owned(),
                cancel: "/dashboard/settings".to_owned(),
            },
        );
    }
    match state
        .service
        .remove_user(signed.merchant.id.as_str(), &form.email)
        .await
    {
        Ok(email) => {
            audit(&state, &signed, "remove_user", &email, String::new()).await;
            tracing::info!(merchant_id = %signed.merchant.id, user = ?signed.user.email, removed = ?email, "merchant-center user removed");
            if email == signed.user.email {
                // Their own session ended with the rest.
                return Redirect::to("/dashboard/login").into_response();
            }
            Redirect::to("/dashboard/settings?notice=user_removed").into_response()
        }
        Err(UserError::LastAdmin(_)) => {
            Redirect::to("/dashboard/settings?notice=user_last_admin").into_response()
        }
        Err(UserError::UnknownUser(_) | UserError::Invalid(_)) => {
            super::error_page(signed.lang, super::ErrorKind::NotFound)
        }
        Err(e) => internal(signed.lang, &e),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    repeat: String,
}

/// `POST /dashboard/settings/password`: any user changes their own password. The current
/// one is checked like a sign-in — under the same failure limits and counters, so a
/// borrowed session cannot guess it — and the change ends every session of the user; this
/// one is replaced by a new session at once.
pub async fn password(
    State(state): State<AppState>,
    signed: Signed,
    ClientAddr(addr): ClientAddr,
    Form(form): Form<PasswordForm>,
) -> Response {
    if let Err(refused) = signed.check_csrf(&state, &form.csrf_token) {
        return refused.into_response();
    }
    let notice = |n: &str| Redirect::to(&format!("/dashboard/settings?notice={n}")).into_response();
    if form.new != form.repeat {
        return notice("password_mismatch");
    }
    // Before the current password is checked: a refused new one costs no sign-in attempt.
    if !acceptable_password(&form.new) {
        return notice("password_short");
    }
    let now = state.service.clock.now();
    let email = signed.user.email.clone();
    let gate = super::session::password_gate(&state, &email, addr, &form.current).await;
    match gate {
        Ok(Gate::Passed(user)) => match state.service.change_password(&email, &form.new).await {
            Ok(()) => {
                audit(&state, &signed, "change_password", &email, String::new()).await;
                tracing::info!(email = ?email, merchant_id = %signed.merchant.id, "merchant-center password changed");
                super::session::start_session(
                    &state,
                    user,
                    now,
                    "/dashboard/settings?notice=password_changed",
                )
                .await
            }
            Err(UserError::Invalid(_)) => notice("password_short"),
            Err(e) => internal(signed.lang, &e),
        },
        Ok(Gate::Wrong) => {
            tracing::warn!(email = ?email, client = ?addr, "merchant-center password change with a wrong current password");
            notice("password_wrong")
        }
        Ok(Gate::TooMany) => super::error_page(signed.lang, super::ErrorKind::TooMany),
        Ok(Gate::Busy) => super::error_page(signed.lang, super::ErrorKind::Busy),
        Err(e) => internal(signed.lang, &e),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_are_masked_to_four_characters() {
        assert_eq!(super::masked("ABCDEF0123456789"), "ABCD••••••••••••");
    }
}
