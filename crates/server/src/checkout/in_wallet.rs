//! REST `weixin/public-pay`'s page, opened inside WeChat's own browser: WeChat signs the
//! buyer in (`snsapi_base`), the wallet is opened for that buyer (`unifiedorder`
//! `trade_type=JSAPI`), and the page asks WeChat to pay (`getBrandWCPayRequest`), then goes
//! to the browser return, which sends the buyer on to the merchant's `returnURL` with the
//! signed result (docs/rest.md, docs/wechatpay.md).

use crate::service::payments::Buyer;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect};
use ottgate_channels::{Device, StartAction};
use ottgate_core::{AttemptStatus, OrderStatus};
use serde::Deserialize;

use super::i18n::{Lang, Strings};
use super::pages::{ForPage, PageError, PageResult, render_with, script_hash};
use super::{Serves, load};
use crate::service::ServiceError;
use crate::state::AppState;

/// Asks WeChat to pay with the page's signed parameters, then goes on (in_wallet.html).
pub const IN_WALLET_JS: &str = r#"
(function () {
  var card = document.getElementById("wallet-card");
  var params = JSON.parse(card.getAttribute("data-params"));
  var next = card.getAttribute("data-next");
  var button = document.getElementById("wallet-pay");
  function pay() {
    button.disabled = true;
    WeixinJSBridge.invoke("getBrandWCPayRequest", params, function (res) {
      if (res.err_msg === "get_brand_wcpay_request:ok") { window.location.href = next; }
      else { button.disabled = false; }
    });
  }
  button.addEventListener("click", function () { if (typeof WeixinJSBridge !== "undefined") { pay(); } });
  if (typeof WeixinJSBridge === "undefined") { document.addEventListener("WeixinJSBridgeReady", pay, false); }
  else { pay(); }
})();
"#;

#[derive(Template)]
#[template(path = "in_wallet.html")]
struct InWalletPage {
    t: &'static Strings,
    test_mode: bool,
    merchant_name: String,
    amount: String,
    currency: &'static str,
    params: String,
    next: String,
    bridge_script: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SignedIn {
    code: Option<String>,
    /// Set on the second sign-in, after a code was refused (a page reloaded with a spent
    /// code): a refusal then is an error, not a loop.
    again: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Query(q): Query<SignedIn>,
    headers: HeaderMap,
) -> PageResult {
    let lang = Lang::negotiate(None, &headers);
    let internal = |e: &dyn std::error::Error| PageError::internal(lang, e);
    let c = load(&state, &token, Serves::AnyOrder)
        .await
        .for_page(lang)?;
    if !c.order.kind.in_wallet() {
        return Err(PageError::not_found(lang));
    }
    let attempt = state
        .service
        .first_attempt(&c.order.id)
        .await
        .for_page(lang)?;
    let next = state.service.return_url(&c.order.token, &attempt.id);
    // Paid, failed or expired already: the return tells the buyer (and the merchant).
    if c.order.status != OrderStatus::Processing || attempt.status != AttemptStatus::Pending {
        return Ok(Redirect::to(next.as_str()).into_response());
    }
    let merchant = &c.signing.merchant;
    let channel = state
        .service
        .channel_for(merchant, attempt.method)
        .map_err(|e| internal(&e))?;
    let here = state.service.in_wallet_url(&c.order.token);
    let Some(code) = q.code.filter(|c| !c.is_empty()) else {
        // Not signed in yet: WeChat signs the buyer in and sends them back here.
        let sign_in = channel
            .payer_sign_in(&here, attempt.id.as_str())
            .ok_or_else(|| internal(&ServiceError::NotFound("in-wallet sign-in")))?;
        return Ok(Redirect::to(sign_in.as_str()).into_response());
    };
    let payer = match channel.payer_id(&code).await {
        Ok(payer) => payer,
        Err(e) if q.again.is_some() => return Err(internal(&e)),
        // A spent code (the page reloaded): sign in once more.
        Err(e) => {
            tracing::warn!(attempt_id = %attempt.id, error = %e, "WeChat sign-in code refused");
            let mut again = here.clone();
            again.query_pairs_mut().append_pair("again", "1");
            let sign_in = channel
                .payer_sign_in(&again, attempt.id.as_str())
                .ok_or_else(|| internal(&ServiceError::NotFound("in-wallet sign-in")))?;
            return Ok(Redirect::to(sign_in.as_str()).into_response());
        }
    };
    let start = state
        .service
        .open_wallet_for(
            &c.order,
            merchant,
            &attempt,
            Device::Mobile,
            Buyer {
                id: Some(payer),
                app: None,
            },
        )
        .await
        .map_err(|e| internal(&e))?;
    let StartAction::WalletBridge {
        params,
        bridge_script,
    } = start.action
    else {
        return Err(internal(&ServiceError::NotFound("in-wallet payment")));
    };
    let params: serde_json::Map<String, serde_json::Value> = params
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    let page = InWalletPage {
        t: lang.strings(),
        test_mode: channel.is_test_mode(),
        merchant_name: merchant.name.as_str().to_owned(),
        amount: c.order.money.symbol_display(),
        currency: c.order.money.currency.code(),
        params: serde_json::Value::Object(params).to_string(),
        next: next.to_string(),
        bridge_script: bridge_script.map(|u| u.to_string()),
    };
    Ok(render_with(
        StatusCode::OK,
        &page,
        csp(page.bridge_script.as_deref()),
        "no-referrer",
    ))
}

/// This page's policy: its one script pinned by hash, plus a simulator's bridge (test
/// mode; inside WeChat the bridge is the app's own), and the bridge's calls to its origin.
fn csp(bridge_script: Option<&str>) -> HeaderValue {
    let policy = format!(
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{}'{}; img-src data:; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'",
        script_hash(IN_WALLET_JS),
        bridge_script.map(|s| format!(" {s}")).unwrap_or_default()
    );
    HeaderValue::from_str(&policy)
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"))
}
