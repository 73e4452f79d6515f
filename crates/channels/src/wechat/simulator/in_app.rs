//! WeChat's app, simulated, as a merchant's app opens it through WeChat's SDK for an `APP`
//! order: the seven parameters our gateway signed (`appid`, `partnerid`, `prepayid`,
//! `package`, `noncestr`, `timestamp`, `sign`) are checked as WeChat does, then the buyer
//! pays or not (docs/wechatpay.md, App payments).

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use std::collections::HashMap;

use super::WeChatSimulator;
use crate::wechat::sign::{self, Fields};

pub(super) fn routes() -> Router<WeChatSimulator> {
    Router::new().route("/app/pay", post(pay))
}

/// The SDK's `PayReq`, with `action` (`pay`, `fail`, anything else cancels); answered with
/// the SDK's `errCode`: 0 paid, -1 failed or refused, -2 cancelled by the buyer.
async fn pay(
    State(sim): State<WeChatSimulator>,
    Json(request): Json<HashMap<String, String>>,
) -> Json<serde_json::Value> {
    let answer = |code: i32| Json(json!({ "errCode": code }));
    let mut signed = Fields::new();
    for name in [
        "appid",
        "partnerid",
        "prepayid",
        "package",
        "noncestr",
        "timestamp",
    ] {
        match request.get(name) {
            Some(value) => signed.insert(name.to_owned(), value.clone()),
            None => return answer(-1),
        };
    }
    let Some(order) = sim.by_prepay(&signed["prepayid"]) else {
        return answer(-1);
    };
    let expected = sign::sign(&signed, order.sign_type, &sim.config().api_key);
    let given = request.get("sign").map(|s| s.to_ascii_uppercase());
    if order.trade_type != "APP"
        || signed["appid"] != sim.config().appid
        || signed["package"] != "Sign=WXPay"
        || given.as_deref() != Some(expected.as_str())
    {
        return answer(-1);
    }
    answer(match super::in_wechat::buyer_acts(&sim, &order, &request) {
        Some(true) => 0,
        Some(false) => -1,
        None => -2,
    })
}
