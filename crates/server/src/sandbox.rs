//! Sandbox mode only: the built-in test wallet (a page with Pay / Decline / Cancel) and
//! the helper API merchants' automated tests use to complete a checkout without a browser.
//! Both apply results through [`Service::apply_result`](crate::service::Service::apply_result), the same path a verified wallet
//! notification takes.

use crate::service::SettleOutcome;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use ottgate_api::RspCode;
use ottgate_channels::simkit::{BuyerAction, SimulatedWallet};
use ottgate_channels::{Device, SandboxChannel, VerifiedResult};
use ottgate_core::order::NotPayable;
use ottgate_core::{
    Attempt, AttemptId, AttemptOutcome, AttemptStatus, CheckoutToken, Merchant, Order, OrderKind,
    PaymentMethod,
};
use serde::Deserialize;
use serde_json::json;

use crate::checkout::i18n::{Lang, Strings};
use crate::checkout::pages::{ForPage, PageError, PageResult, render};
use crate::service::payments::{Buyer, StartError};
use crate::service::{ServiceError, Signing};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "wallet.html")]
struct WalletPage {
    t: &'static Strings,
    method_label: &'static str,
    merchant_name: String,
    amount: String,
    currency: &'static str,
    attempt_id: String,
    action: String,
    message: Option<&'static str>,
    continue_url: Option<String>,
}

/// The hosted test-card page (docs/cards.md).
#[derive(Template)]
#[template(path = "card.html")]
struct CardPage {
    t: &'static Strings,
    merchant_name: String,
    amount: String,
    currency: &'static str,
    order_ref: String,
    action: String,
    message: Option<&'static str>,
    /// The card can still be entered.
    open: bool,
    /// The 3-D Secure step of the challenge test card.
    challenge: bool,
    continue_url: Option<String>,
}

/// What the sandbox's test acquirer does with a card number: the published test cards
/// only. The number itself is never stored nor logged — only this verdict leaves here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestCard {
    Approved,
    Declined,
    Challenge,
}

impl TestCard {
    /// The verdict for `number` (spaces and dashes ignored); `None` for any other number.
    pub fn of(number: &str) -> Option<Self> {
        let digits: String = number.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        match digits.as_str() {
            "4111111111111111" | "5555555555554444" => Some(TestCard::Approved),
            "4000000000000002" => Some(TestCard::Declined),
            "4000020000000000" => Some(TestCard::Challenge),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum CompleteError {
    #[error("this payment attempt is already finished")]
    AttemptFinished,
    /// The simulated wallet refused (e.g. the trade closed there).
    #[error("the wallet refused: {0}")]
    Wallet(String),
    #[error(transparent)]
    NotPayable(#[from] NotPayable),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// Applies a simulated wallet outcome to a pending attempt of a payable order. Answers with
/// the order and the attempt as the outcome left them when it was applied here (the
/// sandbox's own channel), or `None` when a simulated wallet's notification applied it.
async fn complete(
    state: &AppState,
    order: &Order,
    merchant: &Merchant,
    attempt: &Attempt,
    outcome: AttemptOutcome,
) -> Result<Option<(Order, Attempt)>, CompleteError> {
    if attempt.status != AttemptStatus::Pending {
        return Err(CompleteError::AttemptFinished);
    }
    order.check_payable(state.service.clock.now())?;
    if attempt.is_authorised() {
        return Err(CompleteError::AttemptFinished);
    }
    // An approved pre-authorisation or local-card payment is held, not paid.
    if outcome == AttemptOutcome::Paid
        && matches!(order.kind, OrderKind::CardPreAuth | OrderKind::LocalCard)
    {
        return Ok(Some(match state.service.authorise_card(attempt).await? {
            crate::service::HoldOutcome::Applied { order, attempt }
            | crate::service::HoldOutcome::AlreadyApplied { order, attempt }
            | crate::service::HoldOutcome::Refused { order, attempt } => (order, attempt),
        }));
    }
    // The buyer walking away is not the wallet's result: nothing to simulate.
    let simulator = state
        .service
        .channels
        .for_method(attempt.method)
        .and_then(|channel| state.simulators.get(channel.name()).cloned());
    if outcome != AttemptOutcome::Cancelled
        && let Some(sim) = simulator
    {
        complete_at(state, sim.as_ref(), order, merchant, attempt, outcome).await?;
        return Ok(None);
    }
    let bizpay_order_id =
        (outcome == AttemptOutcome::Paid).then(|| SandboxChannel::transaction_id(&attempt.id));
    let settled = state
        .service
        .apply_result_to(
            order,
            attempt,
            VerifiedResult {
                attempt_id: attempt.id.clone(),
                outcome,
                bizpay_order_id,
                buyer_paid: None,
            },
        )
        .await?;
    Ok(Some(match settled {
        SettleOutcome::Applied { order, attempt, .. }
        | SettleOutcome::AlreadyApplied { order, attempt }
        | SettleOutcome::Rejected { order, attempt, .. } => (order, attempt),
    }))
}

/// Plays the buyer at a simulated wallet: the payment is opened there as our gateway opens
/// it (unless the wallet holds it already), paid or failed at its cashier, and the wallet's
/// signed notification goes through the notify path like any other.
async fn complete_at(
    state: &AppState,
    sim: &dyn SimulatedWallet,
    order: &Order,
    merchant: &Merchant,
    attempt: &Attempt,
    outcome: AttemptOutcome,
) -> Result<(), CompleteError> {
    let wallet = |e: &dyn std::fmt::Display| CompleteError::Wallet(e.to_string());
    // A payment made inside the wallet's app is opened for the buyer the simulator plays.
    let payer = sim.buyer().map(str::to_owned);
    let start = if sim.knows(attempt.id.as_str()) {
        None
    } else {
        Some(
            state
                .service
                .open_wallet_for(
                    order,
                    merchant,
                    attempt,
                    Device::Mobile,
                    Buyer {
                        id: payer,
                        app: None,
                    },
                )
                .await
                .map_err(|e| wallet(&e))?,
        )
    };
    let action = if outcome == AttemptOutcome::Paid {
        BuyerAction::Pay
    } else {
        BuyerAction::Fail
    };
    let body = sim
        .complete_as_buyer(attempt.id.as_str(), start.as_ref(), action)
        .map_err(|e| wallet(&e))?;
    crate::notify::receive(state, sim.name(), body.as_bytes())
        .await
        .map_err(|e| wallet(&e))
}

struct WalletContext {
    attempt: Attempt,
    order: Order,
    signing: Signing,
}

async fn wallet_context(
    state: &AppState,
    attempt_id: &str,
) -> Result<Option<WalletContext>, ServiceError> {
    let Ok(id) = AttemptId::parse(attempt_id) else {
        return Ok(None);
    };
    let Some(attempt) = state.service.attempt(&id).await? else {
        return Ok(None);
    };
    let order = state.service.existing_order(&attempt.order_id).await?;
    let signing = state.service.order_signing(&order).await?;
    Ok(Some(WalletContext {
        attempt,
        order,
        signing,
    }))
}

fn wallet_page(
    state: &AppState,
    lang: Lang,
    w: &WalletContext,
    message: Option<&'static str>,
    status: StatusCode,
) -> Response {
    let t = lang.strings();
    let page = WalletPage {
        t,
        method_label: lang.method_label(w.attempt.method),
        merchant_name: w.signing.merchant.name.as_str().to_owned(),
        amount: w.order.money.symbol_display(),
        currency: w.order.money.currency.code(),
        attempt_id: w.attempt.id.to_string(),
        action: state
            .service
            .settings
            .public_url
            .join(&format!("sandbox/wallet/{}", w.attempt.id))
            .map(|u| u.to_string())
            .unwrap_or_default(),
        message,
        continue_url: message.map(|_| {
            state
                .service
                .return_url(&w.order.token, &w.attempt.id)
                .to_string()
        }),
    };
    render(status, &page)
}

fn refusal_message(t: &'static Strings, e: &CompleteError) -> &'static str {
    match e {
        CompleteError::AttemptFinished | CompleteError::NotPayable(NotPayable::AlreadyPaid) => {
            t.wallet_done
        }
        CompleteError::NotPayable(NotPayable::Expired) => t.expired_body,
        CompleteError::NotPayable(NotPayable::Closed) => t.closed_body,
        CompleteError::Service(_) | CompleteError::Wallet(_) => t.error_title,
    }
}

pub async fn wallet(
    State(state): State<AppState>,
    Path(attempt_id): Path<String>,
    headers: HeaderMap,
) -> PageResult {
    let lang = Lang::negotiate(None, &headers);
    let w = wallet_context(&state, &attempt_id).await.for_page(lang)?;
    let refusal = if w.attempt.status != AttemptStatus::Pending {
        Some(CompleteError::AttemptFinished)
    } else {
        w.order
            .check_payable(state.service.clock.now())
            .err()
            .map(CompleteError::from)
    };
    let message = refusal.as_ref().map(|e| refusal_message(lang.strings(), e));
    Ok(wallet_page(&state, lang, &w, message, StatusCode::OK))
}

#[derive(Debug, Deserialize)]
pub struct WalletForm {
    action: Option<String>,
}

/// The outcomes a tester can choose, by the names both the wallet form and the helper API
/// use.
fn parse_outcome(name: &str) -> Option<AttemptOutcome> {
    [
        AttemptOutcome::Paid,
        AttemptOutcome::Failed,
        AttemptOutcome::Cancelled,
    ]
    .into_iter()
    .find(|o| o.code() == name)
}

pub async fn wallet_action(
    State(state): State<AppState>,
    Path(attempt_id): Path<String>,
    headers: HeaderMap,
    form: Result<Form<WalletForm>, axum::extract::rejection::FormRejection>,
) -> PageResult {
    let lang = Lang::negotiate(None, &headers);
    let w = wallet_context(&state, &attempt_id).await.for_page(lang)?;
    let Some(outcome) = form
        .ok()
        .and_then(|Form(f)| f.action)
        .as_deref()
        .and_then(parse_outcome)
    else {
        return Ok(wallet_page(&state, lang, &w, None, StatusCode::BAD_REQUEST));
    };
    match complete(&state, &w.order, &w.signing.merchant, &w.attempt, outcome).await {
        Ok(_) => Ok(back_to_return(&state, &w)),
        Err(CompleteError::Service(e)) => Err(PageError::internal(lang, &e)),
        Err(e) => Ok(wallet_page(
            &state,
            lang,
            &w,
            Some(refusal_message(lang.strings(), &e)),
            StatusCode::CONFLICT,
        )),
    }
}

/// The helper API's errors: Appendix B codes in a small JSON body.
#[derive(Debug)]
pub struct HelperError(StatusCode, RspCode, String);

impl IntoResponse for HelperError {
    fn into_response(self) -> Response {
        (
            self.0,
            Json(json!({"rsp_code": self.1.as_str(), "rsp_msg": self.2})),
        )
            .into_response()
    }
}

impl From<ServiceError> for HelperError {
    fn from(e: ServiceError) -> Self {
        tracing::error!(error = %e, "sandbox helper failed");
        HelperError(
            StatusCode::INTERNAL_SERVER_ERROR,
            RspCode::SystemError,
            RspCode::SystemError.default_message().into(),
        )
    }
}

fn not_payable(e: NotPayable) -> HelperError {
    match e {
        NotPayable::AlreadyPaid => HelperError(
            StatusCode::CONFLICT,
            RspCode::OrderPaid,
            "order already paid".into(),
        ),
        NotPayable::Expired => {
            HelperError(StatusCode::CONFLICT, RspCode::Fail, "order expired".into())
        }
        NotPayable::Closed => {
            HelperError(StatusCode::CONFLICT, RspCode::Fail, "order closed".into())
        }
    }
}

fn bad_request(message: &str) -> HelperError {
    HelperError(
        StatusCode::BAD_REQUEST,
        RspCode::ParamError,
        message.to_owned(),
    )
}

/// The helper APIs' body: a JSON object with an `outcome` of `paid`, `failed` or `cancelled`.
fn helper_body(body: &[u8]) -> Result<(serde_json::Value, AttemptOutcome), HelperError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| bad_request("request body must be a JSON object"))?;
    let outcome = value
        .get("outcome")
        .and_then(|v| v.as_str())
        .and_then(parse_outcome)
        .ok_or_else(|| bad_request("outcome must be one of paid, failed, cancelled"))?;
    Ok((value, outcome))
}

/// `POST /sandbox/v1/checkout/{token}/complete` with `{"method", "outcome"}`: pays,
/// declines or cancels a checkout as a buyer would, and answers with the new attempt's
/// `order_id` and the exact URL the buyer's browser would be sent to.
pub async fn complete_checkout(
    State(state): State<AppState>,
    Path(token): Path<String>,
    body: Bytes,
) -> Result<Response, HelperError> {
    let (state, token) = (&state, token.as_str());
    let (value, outcome) = helper_body(&body)?;
    let method: PaymentMethod = value
        .get("method")
        .and_then(|v| v.as_str())
        .and_then(|m| m.parse().ok())
        .ok_or_else(|| bad_request("method must be one of WECHATPAY, ALIPAY, UNIONPAY, GP"))?;
    let not_found = || {
        HelperError(
            StatusCode::NOT_FOUND,
            RspCode::ParamInvalid,
            "checkout token not found".into(),
        )
    };
    let token = CheckoutToken::parse(token).map_err(|_| not_found())?;
    let order = state
        .service
        .order_by_token(&token)
        .await?
        .ok_or_else(not_found)?;
    let now = state.service.clock.now();
    let (order, _) = state.service.as_of_now(order).await?;
    let signing = state.service.order_signing(&order).await?;
    order.check_payable(now).map_err(not_payable)?;
    let attempt = match state
        .service
        .start_payment(&order, &signing.merchant, method, Device::Mobile)
        .await
    {
        Ok((attempt, _wallet)) => attempt,
        Err(StartError::MethodUnavailable(m)) => {
            return Err(HelperError(
                StatusCode::BAD_REQUEST,
                RspCode::ParamInvalid,
                format!("method {m} is not enabled for this merchant"),
            ));
        }
        Err(StartError::NotPayable(e)) => return Err(not_payable(e)),
        Err(StartError::Channel(e)) => return Err(ServiceError::BadUrl(e.to_string()).into()),
        Err(StartError::Service(e)) => return Err(e.into()),
    };
    let settled = match complete(state, &order, &signing.merchant, &attempt, outcome).await {
        Ok(settled) => settled,
        Err(CompleteError::NotPayable(e)) => return Err(not_payable(e)),
        Err(CompleteError::AttemptFinished) => return Err(not_payable(NotPayable::AlreadyPaid)),
        Err(CompleteError::Wallet(reason)) => {
            return Err(HelperError(StatusCode::CONFLICT, RspCode::Fail, reason));
        }
        Err(CompleteError::Service(e)) => return Err(e.into()),
    };
    // Both as the wallet's answer left them.
    let (order, attempt) = match settled {
        Some(both) => both,
        None => (
            state.service.existing_order(&order.id).await?,
            state.service.existing_attempt(&attempt.id).await?,
        ),
    };
    let redirect_url = state
        .service
        .buyer_destination(&order, Some(&attempt), &signing.key)?
        .map(|u| u.to_string());
    Ok(
        Json(json!({"order_id": attempt.id.to_string(), "redirect_url": redirect_url}))
            .into_response(),
    )
}

/// `POST /sandbox/v1/payments/{paymentId}/complete` with `{"outcome"}`: pays, declines or
/// cancels a REST payment as its buyer would; answers with the payment's REST status.
pub async fn complete_payment(
    State(state): State<AppState>,
    Path(payment_id): Path<String>,
    body: Bytes,
) -> Result<Response, HelperError> {
    let (state, payment_id) = (&state, payment_id.as_str());
    let (value, outcome) = helper_body(&body)?;
    let not_found = || {
        HelperError(
            StatusCode::NOT_FOUND,
            RspCode::ParamInvalid,
            "paymentId not found".into(),
        )
    };
    let merchant = value.get("merchant_id").and_then(|v| v.as_str());
    // Every payment the id could name — the gateway's id, a merchant's own order_id —
    // of the merchant named, if one is: exactly one may be completed.
    let mut named: Vec<WalletContext> = wallet_context(state, payment_id)
        .await?
        .into_iter()
        .filter(|w| merchant.is_none_or(|m| w.order.merchant_id.as_str() == m))
        .collect();
    for w in merchant_named(state, payment_id, merchant).await? {
        if named.iter().all(|n| n.attempt.id != w.attempt.id) {
            named.push(w);
        }
    }
    if named.len() > 1 {
        let message = if merchant.is_some() {
            "this id names two of the merchant's payments (its own order_id of one, the \
             gateway's id of another): complete it by the other payment's id"
        } else {
            "this id names payments of several merchants: name one with merchant_id"
        };
        return Err(HelperError(
            StatusCode::CONFLICT,
            RspCode::ParamInvalid,
            message.into(),
        ));
    }
    let w = named.pop().ok_or_else(not_found)?;
    match complete(state, &w.order, &w.signing.merchant, &w.attempt, outcome).await {
        Ok(_) => {}
        Err(CompleteError::NotPayable(e)) => return Err(not_payable(e)),
        Err(CompleteError::AttemptFinished) => {
            return Err(HelperError(
                StatusCode::CONFLICT,
                RspCode::Fail,
                "payment already finished".into(),
            ));
        }
        Err(CompleteError::Wallet(reason)) => {
            return Err(HelperError(StatusCode::CONFLICT, RspCode::Fail, reason));
        }
        Err(CompleteError::Service(e)) => return Err(e.into()),
    }
    let view = state
        .service
        .payment(&w.order.merchant_id, w.attempt.id.as_str())
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(json!({
        "paymentId": view.attempt.id.to_string(),
        "order_id": view.order.merchant_order_id(&view.attempt.id),
        "status": view.status.code(),
    }))
    .into_response())
}

/// The ACTIVEPAY or H5PAY payments merchants named `order_id` (of `merchant` only, when
/// one is named).
async fn merchant_named(
    state: &AppState,
    order_id: &str,
    merchant: Option<&str>,
) -> Result<Vec<WalletContext>, HelperError> {
    let Ok(reference) = ottgate_core::MerchantRef::parse(order_id) else {
        return Ok(Vec::new());
    };
    let orders: Vec<Order> = state
        .service
        .orders_with_reference(&reference, 50)
        .await?
        .into_iter()
        .filter(|o| o.kind.named_by_merchant())
        .filter(|o| merchant.is_none_or(|m| o.merchant_id.as_str() == m))
        .collect();
    let mut named = Vec::with_capacity(orders.len());
    for order in orders {
        if let Some(attempt) = state.service.first_attempt(&order.id).await?
            && let Some(w) = wallet_context(state, attempt.id.as_str()).await?
        {
            named.push(w);
        }
    }
    Ok(named)
}

fn card_page(
    state: &AppState,
    lang: Lang,
    w: &WalletContext,
    message: Option<&'static str>,
    challenge: bool,
    status: StatusCode,
) -> Response {
    let t = lang.strings();
    let payable = w.attempt.status == AttemptStatus::Pending
        && !w.attempt.is_authorised()
        && w.order.check_payable(state.service.clock.now()).is_ok();
    // A local-card payment's card came in the request: only its 3-D Secure step is here.
    let challenge = challenge || w.order.kind == OrderKind::LocalCard;
    let page = CardPage {
        t,
        merchant_name: w.signing.merchant.name.as_str().to_owned(),
        amount: w.order.money.symbol_display(),
        currency: w.order.money.currency.code(),
        order_ref: w.order.merchant_order_id(&w.attempt.id),
        action: state.service.card_page_url(&w.attempt.id).to_string(),
        message,
        open: payable && !challenge,
        challenge: payable && challenge,
        continue_url: (!payable).then(|| {
            state
                .service
                .return_url(&w.order.token, &w.attempt.id)
                .to_string()
        }),
    };
    render(status, &page)
}

/// The card payment of `attempt_id`, if it is one.
async fn card_context(
    state: &AppState,
    lang: Lang,
    attempt_id: &str,
) -> Result<WalletContext, PageError> {
    let w = wallet_context(state, attempt_id).await.for_page(lang)?;
    if !w.order.kind.is_card() {
        return Err(PageError::not_found(lang));
    }
    Ok(w)
}

/// `GET /sandbox/card/{attempt}`: the hosted test-card page a CC_PURCHASE's `codeUrl` opens.
pub async fn card(
    State(state): State<AppState>,
    Path(attempt_id): Path<String>,
    headers: HeaderMap,
) -> PageResult {
    let lang = Lang::negotiate(None, &headers);
    let w = card_context(&state, lang, &attempt_id).await?;
    let finished = (w.attempt.status != AttemptStatus::Pending || w.attempt.is_authorised())
        .then_some(lang.strings().card_finished);
    Ok(card_page(&state, lang, &w, finished, false, StatusCode::OK))
}

#[derive(Deserialize)]
pub struct CardForm {
    #[serde(default)]
    number: String,
    #[serde(default)]
    expiry: String,
    #[serde(default)]
    cvc: String,
    #[serde(default)]
    cancel: Option<String>,
}

/// Never shows what was typed.
impl std::fmt::Debug for CardForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CardForm { .. }")
    }
}

/// MM/YY (or MMYY) of this month or later.
pub(crate) fn expiry_to_come(expiry: &str, now: ottgate_core::Timestamp) -> bool {
    let digits: String = expiry.chars().filter(char::is_ascii_digit).collect();
    let (Some(month), Some(year)) = (
        digits.get(..2).and_then(|m| m.parse::<u32>().ok()),
        digits.get(2..).and_then(|y| y.parse::<u32>().ok()),
    ) else {
        return false;
    };
    let today = now.utc_display();
    let (this_year, this_month) = (
        today
            .get(2..4)
            .and_then(|y| y.parse::<u32>().ok())
            .unwrap_or(0),
        today
            .get(5..7)
            .and_then(|m| m.parse::<u32>().ok())
            .unwrap_or(0),
    );
    digits.len() == 4 && (1..=12).contains(&month) && (year, month) >= (this_year, this_month)
}

/// `POST /sandbox/card/{attempt}`: the buyer's card. A test card is approved, declined or
/// challenged; any other number is refused without being kept or logged.
pub async fn card_submit(
    State(state): State<AppState>,
    Path(attempt_id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<CardForm>,
) -> PageResult {
    let lang = Lang::negotiate(None, &headers);
    let t = lang.strings();
    let w = card_context(&state, lang, &attempt_id).await?;
    if w.order.kind == OrderKind::LocalCard {
        // Its card came in the request; this page only asks for 3-D Secure.
        return Ok(card_page(
            &state,
            lang,
            &w,
            None,
            true,
            StatusCode::BAD_REQUEST,
        ));
    }
    let outcome = if form.cancel.is_some() {
        AttemptOutcome::Cancelled
    } else {
        let bad = |message| {
            Ok(card_page(
                &state,
                lang,
                &w,
                Some(message),
                false,
                StatusCode::BAD_REQUEST,
            ))
        };
        let Some(card) = TestCard::of(&form.number) else {
            tracing::info!(attempt_id = %w.attempt.id, "sandbox card page: a card number that is not a test card was refused");
            return bad(t.card_not_test);
        };
        if !expiry_to_come(&form.expiry, state.service.clock.now()) {
            return bad(t.card_expiry_bad);
        }
        let cvc = form.cvc.trim();
        if !(3..=4).contains(&cvc.len()) || !cvc.bytes().all(|b| b.is_ascii_digit()) {
            return bad(t.card_cvc_bad);
        }
        match card {
            TestCard::Approved => AttemptOutcome::Paid,
            TestCard::Declined => AttemptOutcome::Failed,
            TestCard::Challenge => {
                return Ok(card_page(&state, lang, &w, None, true, StatusCode::OK));
            }
        }
    };
    card_finish(&state, lang, &w, outcome).await
}

#[derive(Deserialize)]
pub struct ChallengeForm {
    #[serde(default)]
    password: String,
}

/// `POST /sandbox/card/{attempt}/3ds`: the challenge card's 3-D Secure password —
/// `password` approves, anything else declines.
pub async fn card_challenge(
    State(state): State<AppState>,
    Path(attempt_id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<ChallengeForm>,
) -> PageResult {
    let lang = Lang::negotiate(None, &headers);
    let w = card_context(&state, lang, &attempt_id).await?;
    let outcome = if form.password == "password" {
        AttemptOutcome::Paid
    } else {
        AttemptOutcome::Failed
    };
    card_finish(&state, lang, &w, outcome).await
}

/// The buyer, done at a test page, goes to the gateway's return for the payment.
fn back_to_return(state: &AppState, w: &WalletContext) -> Response {
    let to = state.service.return_url(&w.order.token, &w.attempt.id);
    Redirect::to(to.as_str()).into_response()
}

/// Settles the card payment as the test acquirer decided and sends the buyer back. An
/// approved pre-authorisation or local-card payment is authorised, not paid (docs/cards.md).
async fn card_finish(
    state: &AppState,
    lang: Lang,
    w: &WalletContext,
    outcome: AttemptOutcome,
) -> PageResult {
    match complete(state, &w.order, &w.signing.merchant, &w.attempt, outcome).await {
        Ok(_) => Ok(back_to_return(state, w)),
        Err(CompleteError::Service(e)) => Err(PageError::internal(lang, &e)),
        Err(_) => Ok(card_page(
            state,
            lang,
            w,
            Some(lang.strings().card_no_longer),
            false,
            StatusCode::CONFLICT,
        )),
    }
}

/// `POST /sandbox/v1/barcodes` with `{"wallet": "WECHATPAY" | "ALIPAY" | "UNIONPAY",
/// "outcome": "paid" | "password" | "declined" | "undecided", "count": n}`: one-time buyer
/// codes in the wallet's format, for PASSIVEPAY (docs/instore.md). The simulators read what
/// the buyer does from the code itself.
pub async fn barcodes(body: Bytes) -> Result<Response, HelperError> {
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|_| bad_request("request body must be a JSON object"))?;
    let text = |name: &str| value.get(name).and_then(|v| v.as_str()).unwrap_or("");
    let wallet = match text("wallet").to_ascii_uppercase().as_str() {
        "WECHATPAY" => "wechatpay",
        "ALIPAY" => "alipay",
        "UNIONPAY" => "unionpay",
        _ => return Err(bad_request("wallet must be WECHATPAY, ALIPAY or UNIONPAY")),
    };
    let outcome: ottgate_channels::simkit::BuyerCode =
        serde_json::from_value(value.get("outcome").cloned().unwrap_or(json!("paid")))
            .map_err(|_| bad_request("outcome must be paid, password, declined or undecided"))?;
    let count = value
        .get("count")
        .map_or(Some(1), serde_json::Value::as_u64);
    let count = count
        .filter(|n| (1..=1000).contains(n))
        .ok_or_else(|| bad_request("count must be a whole number from 1 to 1000"))?;
    let codes: Vec<String> = (0..count).filter_map(|_| outcome.issue(wallet)).collect();
    Ok(Json(json!({"wallet": text("wallet").to_ascii_uppercase(), "outcome": outcome, "code": codes[0], "codes": codes})).into_response())
}

/// The buyer pays or declines `order` (for `ottgate check`): its pending attempt, or — a
/// checkout order not started yet — a new one by the sandbox card (GP) when the merchant
/// takes it, else its first method. Returns the attempt's id.
pub(crate) async fn act_as_buyer(
    state: &AppState,
    order: &Order,
    outcome: AttemptOutcome,
) -> Result<AttemptId, String> {
    let signing = state
        .service
        .order_signing(order)
        .await
        .map_err(|e| e.to_string())?;
    let merchant = &signing.merchant;
    let attempt = buyer_attempt(state, order, merchant).await?;
    complete(state, order, merchant, &attempt, outcome)
        .await
        .map_err(|e| e.to_string())?;
    Ok(attempt.id)
}

/// A payment the wallet confirms only after its order expired, as `ottgate check` plays it:
/// the buyer started paying while the order was open (its latest attempt, or one started
/// now), the order expires (if it has not), then the wallet's verified success arrives. It
/// pays the closed order (flagged paid after close) and its callback is sent: the money was
/// taken, so the merchant must hear of it.
pub(crate) async fn pay_after_expiry(
    state: &AppState,
    order: &Order,
    attempts: &[Attempt],
) -> Result<AttemptId, String> {
    let attempt = match attempts.last() {
        Some(a) => a.clone(),
        None => start_paying(state, order).await?,
    };
    state
        .service
        .expire_now(&order.id)
        .await
        .map_err(|e| e.to_string())?;
    state
        .service
        .apply_result_to(
            order,
            &attempt,
            VerifiedResult {
                attempt_id: attempt.id.clone(),
                outcome: AttemptOutcome::Paid,
                bizpay_order_id: Some(SandboxChannel::transaction_id(&attempt.id)),
                buyer_paid: None,
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(attempt.id)
}

/// The buyer the sandbox plays picks a method for `order` and is sent to the wallet: the
/// attempt pending then.
pub(crate) async fn start_paying(state: &AppState, order: &Order) -> Result<Attempt, String> {
    let signing = state
        .service
        .order_signing(order)
        .await
        .map_err(|e| e.to_string())?;
    buyer_attempt(state, order, &signing.merchant).await
}

/// The attempt a buyer the sandbox plays pays `order` with: the one pending, or a new one
/// with the sandbox's own method (else the merchant's first).
async fn buyer_attempt(
    state: &AppState,
    order: &Order,
    merchant: &Merchant,
) -> Result<Attempt, String> {
    let pending = state
        .service
        .attempts_of(&order.id)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|a| a.status == AttemptStatus::Pending);
    match pending {
        Some(a) => Ok(a),
        None => {
            let methods = state.service.available_methods(merchant);
            let method = if methods.contains(&PaymentMethod::Gp) {
                PaymentMethod::Gp
            } else {
                *methods.first().ok_or("the merchant takes no method")?
            };
            state
                .service
                .start_payment(order, merchant, method, Device::Mobile)
                .await
                .map(|(attempt, _)| attempt)
                .map_err(|e| e.to_string())
        }
    }
}
