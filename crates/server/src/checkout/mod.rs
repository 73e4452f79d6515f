//! The hosted checkout: `GET /checkout/{token}` (the `payinfo` link), the method choice,
//! and the browser's return from the wallet.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use ottgate_core::{
    Attempt, AttemptId, AttemptStatus, CheckoutToken, CloseReason, Money, Order, OrderKind,
    OrderStatus, PaymentMethod,
};
use serde::Deserialize;

use crate::service::payments::StartError;
use crate::service::{ServiceError, Signing};
use crate::state::AppState;

pub mod i18n;
pub mod in_wallet;
pub mod pages;

use i18n::{Lang, Strings};
use ottgate_channels::{Device, PaymentStart, StartAction};
use pages::{ForPage, PageError, PageResult, StatusPage, render};

#[derive(Template)]
#[template(path = "checkout.html")]
struct CheckoutPage {
    t: &'static Strings,
    test_mode: bool,
    merchant_name: String,
    symbol: &'static str,
    amount: String,
    currency: &'static str,
    reference: String,
    remaining_secs: u64,
    remaining_text: String,
    expire_display: String,
    /// The expiry for the buyer's browser to show in the buyer's own time.
    expires_ms: i64,
    error: Option<&'static str>,
    methods: Vec<MethodView>,
    pay_action: String,
}

struct MethodView {
    code: &'static str,
    label: &'static str,
    short: &'static str,
}

fn short_label(m: PaymentMethod) -> &'static str {
    match m {
        PaymentMethod::WeChatPay => "WX",
        PaymentMethod::Alipay => "AP",
        PaymentMethod::UnionPay => "UP",
        PaymentMethod::Gp => "GP",
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    selected: Option<String>,
    lang: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ChooseForm {
    method: Option<String>,
}

/// An open checkout: the order (expiry already applied) and its merchant.
struct Checkout {
    order: Order,
    signing: Signing,
}

/// Which orders a route serves: the checkout pages only checkout orders (a REST payment
/// is single-method and must not gain a method list), the browser return every kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Serves {
    CheckoutOnly,
    AnyOrder,
}

async fn load(
    state: &AppState,
    token: &str,
    serves: Serves,
) -> Result<Option<Checkout>, ServiceError> {
    let Ok(token) = CheckoutToken::parse(token) else {
        return Ok(None);
    };
    let Some(order) = state.service.order_by_token(&token).await? else {
        return Ok(None);
    };
    if serves == Serves::CheckoutOnly && order.kind != OrderKind::Checkout {
        return Ok(None);
    }
    let (order, _) = state.service.as_of_now(order).await?;
    let signing = state.service.order_signing(&order).await?;
    Ok(Some(Checkout { order, signing }))
}

fn money_text(m: Money) -> String {
    format!(
        "{}{} {}",
        m.currency.symbol(),
        m.major_display(),
        m.currency.code()
    )
}

/// The page for an order that is no longer open: paid, expired or declined.
async fn finished_page(
    state: &AppState,
    lang: Lang,
    c: &Checkout,
) -> Result<Response, ServiceError> {
    let t = lang.strings();
    let attempts = state.service.attempts_of(&c.order.id).await?;
    let attempt = match &c.order.paid_attempt {
        Some(paid) => attempts.iter().find(|a| &a.id == paid),
        None => attempts.last(),
    };
    let (kind, css, heading, body) = match c.order.status {
        OrderStatus::Success => ("paid", "status-ok", t.paid_title, t.paid_body),
        OrderStatus::Closed(CloseReason::Expired) => {
            ("expired", "status-bad", t.expired_title, t.expired_body)
        }
        OrderStatus::Closed(CloseReason::Failed) | OrderStatus::Processing => {
            ("closed", "status-bad", t.closed_title, t.closed_body)
        }
    };
    let return_url = state
        .service
        .buyer_destination(&c.order, attempt, &c.signing.key)?;
    let return_url = return_url.map(|u| u.to_string());
    Ok(render(
        StatusCode::OK,
        &StatusPage {
            t,
            kind,
            css,
            heading,
            body,
            merchant_name: Some(c.signing.merchant.name.as_str().to_owned()),
            amount: Some(money_text(c.order.money)),
            return_url,
        },
    ))
}

fn list_page(state: &AppState, lang: Lang, c: &Checkout, error: Option<&'static str>) -> Response {
    let t = lang.strings();
    let now = state.service.clock.now();
    let remaining = now.until(c.order.expires_at).as_secs();
    let methods = state.service.available_methods(&c.signing.merchant);
    let test_mode = methods.iter().any(|m| {
        state
            .service
            .channels
            .for_method(*m)
            .is_some_and(|ch| ch.is_test_mode())
    });
    let page = CheckoutPage {
        t,
        test_mode,
        merchant_name: c.signing.merchant.name.as_str().to_owned(),
        symbol: c.order.money.currency.symbol(),
        amount: c.order.money.major_display(),
        currency: c.order.money.currency.code(),
        reference: c.order.reference_str().to_owned(),
        remaining_secs: remaining,
        remaining_text: format!("{:02}:{:02}", remaining / 60, remaining % 60),
        expire_display: c.order.expires_at.beijing_display(),
        expires_ms: c.order.expires_at.epoch_millis(),
        error,
        methods: methods
            .into_iter()
            .map(|m| MethodView {
                code: m.code(),
                label: lang.method_label(m),
                short: short_label(m),
            })
            .collect(),
        pay_action: format!("{}/pay", state.service.checkout_url(&c.order.token)),
    };
    render(
        if error.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        },
        &page,
    )
}

#[derive(Template)]
#[template(path = "qr.html")]
struct QrPage {
    t: &'static Strings,
    test_mode: bool,
    merchant_name: String,
    amount: String,
    currency: &'static str,
    method_label: &'static str,
    qr_svg: String,
    status_url: String,
    sim_link: Option<String>,
}

#[derive(Template)]
#[template(path = "post_form.html")]
struct PostFormPage {
    t: &'static Strings,
    action: String,
    fields: Vec<(String, String)>,
}

/// An inline SVG of `content`, drawn on the server (no external QR service).
fn qr_svg(content: &str) -> Option<String> {
    let code = qrcode::QrCode::new(content.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(220, 220)
            .quiet_zone(true)
            .build(),
    )
}

/// The response that takes the buyer to the wallet, whatever form the channel asks for.
fn wallet_response(
    state: &AppState,
    lang: Lang,
    c: &Checkout,
    attempt: &Attempt,
    start: PaymentStart,
    method: PaymentMethod,
) -> Response {
    let t = lang.strings();
    match start.action {
        StartAction::Redirect(url) => Redirect::to(url.as_str()).into_response(),
        StartAction::PostForm { action, fields } => render(
            StatusCode::OK,
            &PostFormPage {
                t,
                action: action.to_string(),
                fields,
            },
        ),
        // Only a payment inside the wallet's browser (in_wallet.rs) or an app's gets these,
        // never a checkout's.
        StartAction::WalletBridge { .. } | StartAction::AppSdk { .. } => {
            tracing::error!(attempt_id = %attempt.id, "a checkout was answered for inside the wallet's browser");
            StatusPage::internal(lang)
        }
        StartAction::QrCode { content, test_link } => {
            let Some(svg) = qr_svg(&content) else {
                tracing::error!(attempt_id = %attempt.id, "QR content does not fit a QR code");
                return StatusPage::internal(lang);
            };
            let test_mode = state
                .service
                .channels
                .for_method(method)
                .is_some_and(|ch| ch.is_test_mode());
            let page = QrPage {
                t,
                test_mode,
                merchant_name: c.signing.merchant.name.as_str().to_owned(),
                amount: c.order.money.symbol_display(),
                currency: c.order.money.currency.code(),
                method_label: lang.method_label(method),
                qr_svg: svg,
                status_url: format!(
                    "{}/status/{}",
                    state.service.checkout_url(&c.order.token),
                    attempt.id
                ),
                sim_link: test_link.map(|u| u.to_string()),
            };
            render(StatusCode::OK, &page)
        }
    }
}

/// Starts `method` and sends the buyer to the wallet; a refusal re-renders the list.
async fn go_to_method(
    state: &AppState,
    lang: Lang,
    c: &Checkout,
    method: PaymentMethod,
    device: Device,
) -> Result<Response, ServiceError> {
    match state
        .service
        .start_payment(&c.order, &c.signing.merchant, method, device)
        .await
    {
        Ok((attempt, start)) => Ok(wallet_response(state, lang, c, &attempt, start, method)),
        Err(StartError::MethodUnavailable(_)) => Ok(list_page(
            state,
            lang,
            c,
            Some(lang.strings().method_unavailable),
        )),
        Err(StartError::NotPayable(_)) => {
            Ok(Redirect::to(state.service.checkout_url(&c.order.token).as_str()).into_response())
        }
        Err(StartError::Channel(e)) => {
            tracing::error!(error = %e, method = %method, "payment channel failed to start");
            Ok(StatusPage::internal(lang))
        }
        Err(StartError::Service(e)) => Err(e),
    }
}

fn device_of(headers: &HeaderMap) -> Device {
    Device::from_user_agent(
        headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(""),
    )
}

/// `GET /checkout/{token}/status/{attempt}`: whether the buyer's QR page can move on,
/// and where to.
pub async fn status(
    State(state): State<AppState>,
    Path((token, attempt_id)): Path<(String, String)>,
) -> Response {
    // The QR page's script reads only `done`: anything not found is simply not done.
    let not_found = || {
        (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({"done": false})),
        )
            .into_response()
    };
    let internal = |e: &ServiceError| PageError::internal(Lang::En, e).into_response();
    let c = match load(&state, &token, Serves::AnyOrder).await {
        Ok(Some(c)) => c,
        Ok(None) => return not_found(),
        Err(e) => return internal(&e),
    };
    let attempt = match find_attempt(&state, &c.order, &attempt_id).await {
        Ok(Some(a)) => a,
        Ok(None) => return not_found(),
        Err(e) => return internal(&e),
    };
    let done =
        attempt.status != AttemptStatus::Pending || c.order.status != OrderStatus::Processing;
    let next = state
        .service
        .return_url(&c.order.token, &attempt.id)
        .to_string();
    let mut response = axum::Json(serde_json::json!({"done": done, "next": next})).into_response();
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

pub async fn page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Query(q): Query<PageQuery>,
    headers: HeaderMap,
) -> PageResult {
    let lang = Lang::negotiate(q.lang.as_deref(), &headers);
    let c = load(&state, &token, Serves::CheckoutOnly)
        .await
        .for_page(lang)?;
    let result = if c.order.status != OrderStatus::Processing {
        finished_page(&state, lang, &c).await
    } else {
        // docs/envelope.md: a single concrete `selected` goes straight to that method when enabled;
        // NONE, unknown or not-enabled values show the list.
        match q.selected.as_deref().and_then(PaymentMethod::from_selected) {
            Some(m)
                if state
                    .service
                    .available_methods(&c.signing.merchant)
                    .contains(&m) =>
            {
                go_to_method(&state, lang, &c, m, device_of(&headers)).await
            }
            _ => Ok(list_page(&state, lang, &c, None)),
        }
    };
    result.map_err(|e| PageError::internal(lang, &e))
}

pub async fn choose(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    form: Result<Form<ChooseForm>, axum::extract::rejection::FormRejection>,
) -> PageResult {
    let lang = Lang::negotiate(None, &headers);
    let c = load(&state, &token, Serves::CheckoutOnly)
        .await
        .for_page(lang)?;
    if c.order.status != OrderStatus::Processing {
        return Ok(
            Redirect::to(state.service.checkout_url(&c.order.token).as_str()).into_response(),
        );
    }
    let method = form
        .ok()
        .and_then(|Form(f)| f.method)
        .and_then(|m| m.parse::<PaymentMethod>().ok());
    let result = match method {
        Some(m) => go_to_method(&state, lang, &c, m, device_of(&headers)).await,
        None => Ok(list_page(
            &state,
            lang,
            &c,
            Some(lang.strings().method_unavailable),
        )),
    };
    result.map_err(|e| PageError::internal(lang, &e))
}

/// Where a wallet sends the buyer back: 302 to the merchant's `redirect_url` with the
/// signed result, or back to the checkout while the order is still open.
pub async fn browser_return(
    State(state): State<AppState>,
    Path((token, attempt_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> PageResult {
    let lang = Lang::negotiate(None, &headers);
    let internal = |e: &dyn std::error::Error| PageError::internal(lang, e);
    let mut c = load(&state, &token, Serves::AnyOrder)
        .await
        .for_page(lang)?;
    let mut attempt = find_attempt(&state, &c.order, &attempt_id)
        .await
        .for_page(lang)?;
    // The browser often comes back before the wallet's notification: ask the wallet (the
    // return itself is never trusted), so the buyer lands on the real result.
    if attempt.status == AttemptStatus::Pending
        && let Err(e) = state.service.reconcile(&attempt).await
    {
        return Err(internal(&e));
    }
    // Read again, the attempt before its order: the two change in one transaction, so an
    // order read after a settled attempt shows that settlement (read the other way round, a
    // notification landing in between would pair a settled attempt with a stale order).
    let reread = async {
        attempt = find_attempt(&state, &c.order, &attempt_id)
            .await?
            .ok_or(ServiceError::NotFound("attempt"))?;
        c = load(&state, &token, Serves::AnyOrder)
            .await?
            .ok_or(ServiceError::NotFound("order"))?;
        Ok::<_, ServiceError>(())
    };
    reread.await.map_err(|e| internal(&e))?;
    match state
        .service
        .buyer_destination(&c.order, Some(&attempt), &c.signing.key)
    {
        Ok(Some(url)) => Ok((
            StatusCode::FOUND,
            [(axum::http::header::LOCATION, url.to_string())],
        )
            .into_response()),
        // No merchant page to go back to: the result, here.
        Ok(None) => finished_page(&state, lang, &c)
            .await
            .map_err(|e| internal(&e)),
        Err(e) => Err(internal(&e)),
    }
}

async fn find_attempt(
    state: &AppState,
    order: &Order,
    id: &str,
) -> Result<Option<Attempt>, ServiceError> {
    let Ok(id) = AttemptId::parse(id) else {
        return Ok(None);
    };
    Ok(state
        .service
        .attempt(&id)
        .await?
        .filter(|a| a.order_id == order.id))
}
