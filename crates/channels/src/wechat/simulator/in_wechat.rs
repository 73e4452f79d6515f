//! WeChat's own browser, simulated: signing the buyer in (OAuth 2.0 `snsapi_base`), the
//! code exchange for their `openid`, and the JavaScript bridge through which a page asks
//! the app to pay a JSAPI order (`getBrandWCPayRequest`). The bridge checks the order's
//! `paySign` and buyer as WeChat does before it pays (docs/wechatpay.md).

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::{WeChatSimulator, page};
use crate::simkit::SimLang;
use crate::simkit::{BuyerAction, digits, lock};
use crate::wechat::sign::{self, Fields, SignType};

/// The simulated buyer every sign-in names (one phone, one WeChat user).
pub const BUYER_OPENID: &str = "oSimBuyer00000000000000000001";

/// How long a sign-in code may wait to be exchanged (WeChat: five minutes, once).
const CODE_LIFETIME: Duration = Duration::from_secs(300);

pub(super) fn routes() -> Router<WeChatSimulator> {
    Router::new()
        .route("/connect/oauth2/authorize", get(authorize))
        .route("/sns/oauth2/access_token", get(access_token))
        .route("/jsbridge.js", get(bridge_script))
        .route("/jsapi/pay", post(pay))
        .route("/miniprogram/requestPayment", post(request_payment))
}

/// `wx.requestPayment` inside the merchant's mini-program: `timeStamp`, `nonceStr`,
/// `package`, `signType`, `paySign` (no `appId`: WeChat knows the mini-program it runs),
/// and `action`. `paySign` must be over the order's `sub_appid`, as WeChat checks it.
/// Answers `errMsg` `requestPayment:ok`, `:fail …` or `:fail cancel`.
async fn request_payment(
    State(sim): State<WeChatSimulator>,
    Json(request): Json<HashMap<String, String>>,
) -> Json<serde_json::Value> {
    let answer = |outcome: &str| Json(json!({ "errMsg": format!("requestPayment:{outcome}") }));
    let Some(prepay_id) = request
        .get("package")
        .and_then(|p| p.strip_prefix("prepay_id="))
    else {
        return answer("fail invalid package");
    };
    let order = match sim.by_prepay(prepay_id) {
        Some(o) if o.trade_type == "JSAPI" && o.sub_appid.is_some() => o,
        _ => return answer("fail no such order"),
    };
    if !pay_sign_holds(
        &sim,
        order.sub_appid.as_deref().unwrap_or_default(),
        &request,
    ) {
        return answer("fail invalid paySign");
    }
    answer(match buyer_acts(&sim, &order, &request) {
        Some(true) => "ok",
        Some(false) => "fail",
        None => "fail cancel",
    })
}

/// Whether the request's `paySign` is WeChat's v2 signature over `appId` = `app_id` and its
/// `timeStamp`, `nonceStr`, `package`, `signType`, with the API key — as WeChat checks it.
fn pay_sign_holds(sim: &WeChatSimulator, app_id: &str, request: &HashMap<String, String>) -> bool {
    let mut signed = Fields::new();
    signed.insert("appId".into(), app_id.to_owned());
    for name in ["timeStamp", "nonceStr", "package", "signType"] {
        match request.get(name) {
            Some(value) => signed.insert(name.to_owned(), value.clone()),
            None => return false,
        };
    }
    let sign_type = match signed["signType"].as_str() {
        "MD5" => SignType::Md5,
        "HMAC-SHA256" => SignType::HmacSha256,
        _ => return false,
    };
    let expected = sign::sign(&signed, sign_type, &sim.config().api_key);
    request
        .get("paySign")
        .map(|s| s.to_ascii_uppercase())
        .as_deref()
        == Some(expected.as_str())
}

/// The buyer's `action` (`pay`, `fail`, anything else cancels) carried out on `order`,
/// its notification sent: `Some(true)` paid, `Some(false)` failed or refused by the
/// wallet, `None` cancelled.
pub(super) fn buyer_acts(
    sim: &WeChatSimulator,
    order: &super::Order,
    request: &HashMap<String, String>,
) -> Option<bool> {
    let action = match request.get("action").map(String::as_str) {
        Some("pay") => BuyerAction::Pay,
        Some("fail") => BuyerAction::Fail,
        _ => return None,
    };
    match sim.settle(&order.out_trade_no, action) {
        Ok(notification) => {
            sim.send(notification);
            Some(action == BuyerAction::Pay)
        }
        Err(_) => Some(false),
    }
}

#[derive(Debug, Deserialize)]
struct Authorize {
    appid: String,
    redirect_uri: String,
    response_type: String,
    scope: String,
    #[serde(default)]
    state: String,
}

/// The buyer, already in WeChat, is signed in silently and sent back with a code.
async fn authorize(
    State(sim): State<WeChatSimulator>,
    headers: HeaderMap,
    Query(q): Query<Authorize>,
) -> Response {
    let refused = if q.appid != sim.config().appid {
        Some("invalid appid")
    } else if q.response_type != "code"
        || !matches!(q.scope.as_str(), "snsapi_base" | "snsapi_userinfo")
    {
        Some("invalid scope")
    } else {
        None
    };
    let back = url::Url::parse(&q.redirect_uri).ok();
    let (Some(mut back), None) = (back, refused) else {
        let why = refused.unwrap_or("invalid redirect_uri");
        let lang = SimLang::of(&headers);
        return page(lang, None, &format!("<p id=\"wechat-error\">{why}</p>"));
    };
    let code = format!("SIM{}", digits(29));
    lock(&sim.inner.codes).insert(code.clone(), (BUYER_OPENID.to_owned(), Instant::now()));
    back.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &q.state);
    Redirect::to(back.as_str()).into_response()
}

#[derive(Debug, Deserialize)]
struct TokenQuery {
    appid: String,
    secret: String,
    code: String,
    grant_type: String,
}

/// A code, once and within five minutes, for the buyer's `openid`; WeChat's error codes
/// otherwise.
async fn access_token(
    State(sim): State<WeChatSimulator>,
    Query(q): Query<TokenQuery>,
) -> Json<serde_json::Value> {
    let config = sim.config();
    if q.appid != config.appid {
        return Json(json!({"errcode": 40013, "errmsg": "invalid appid"}));
    }
    if q.secret != config.app_secret.expose_secret() {
        return Json(json!({"errcode": 40125, "errmsg": "invalid appsecret"}));
    }
    if q.grant_type != "authorization_code" {
        return Json(json!({"errcode": 40002, "errmsg": "invalid grant_type"}));
    }
    match lock(&sim.inner.codes).remove(&q.code) {
        Some((openid, issued)) if issued.elapsed() <= CODE_LIFETIME => Json(json!({
            "access_token": format!("SIMTOKEN{}", digits(20)),
            "expires_in": 7200,
            "refresh_token": format!("SIMREFRESH{}", digits(20)),
            "openid": openid,
            "scope": "snsapi_base",
        })),
        _ => Json(json!({"errcode": 40029, "errmsg": "invalid code"})),
    }
}

/// What WeChat's browser gives every page: `WeixinJSBridge.invoke('getBrandWCPayRequest',
/// params, callback)`. Here the "app" asks the buyer with a confirm box, then hands the
/// parameters to `/jsapi/pay`; `WeixinJSBridgeReady` fires once the bridge is in place.
async fn bridge_script(State(sim): State<WeChatSimulator>, headers: HeaderMap) -> Response {
    let ask = SimLang::of(&headers).tr("Simulated WeChat Pay: pay this order?");
    let pay = sim
        .config()
        .base_url
        .join("jsapi/pay")
        .map(|u| u.to_string())
        .unwrap_or_default();
    let script = format!(
        "(function(){{\n\
         var pay={pay:?};\n\
         window.WeixinJSBridge={{invoke:function(name,params,done){{\n\
           if(name!=='getBrandWCPayRequest'){{done({{err_msg:name+':fail'}});return;}}\n\
           var action=window.confirm({ask:?})?'pay':'cancel';\n\
           var body=Object.assign({{}},params,{{action:action}});\n\
           fetch(pay,{{method:'POST',headers:{{'Content-Type':'application/json'}},body:JSON.stringify(body)}})\n\
             .then(function(r){{return r.json();}})\n\
             .then(function(answer){{done(answer);}})\n\
             .catch(function(){{done({{err_msg:'get_brand_wcpay_request:fail'}});}});\n\
         }}}};\n\
         document.dispatchEvent(new Event('WeixinJSBridgeReady'));\n\
         }})();\n"
    );
    (
        [(
            header::CONTENT_TYPE,
            "application/javascript; charset=utf-8",
        )],
        script,
    )
        .into_response()
}

/// The app pays (or not) what a page asked for: the five signed parameters, `paySign`
/// over them, the order a JSAPI one for this buyer and still unpaid.
async fn pay(
    State(sim): State<WeChatSimulator>,
    Json(request): Json<HashMap<String, String>>,
) -> Json<serde_json::Value> {
    let answer =
        |outcome: &str| Json(json!({"err_msg": format!("get_brand_wcpay_request:{outcome}")}));
    if request.get("appId") != Some(&sim.config().appid)
        || !pay_sign_holds(&sim, &sim.config().appid, &request)
    {
        return answer("fail");
    }
    let prepay_id = request
        .get("package")
        .and_then(|p| p.strip_prefix("prepay_id="))
        .unwrap_or_default();
    let order = match sim.by_prepay(prepay_id) {
        Some(o)
            if o.trade_type == "JSAPI"
                && o.sub_appid.is_none()
                && o.openid.as_deref() == Some(BUYER_OPENID) =>
        {
            o
        }
        _ => return answer("fail"),
    };
    answer(match buyer_acts(&sim, &order, &request) {
        Some(true) => "ok",
        Some(false) => "fail",
        None => "cancel",
    })
}
