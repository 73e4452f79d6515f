//! Quick Pay (付款码支付), simulated (docs/instore.md): `pay/micropay` charges the code the
//! buyer's WeChat shows, answered at once; `secapi/pay/reverse` undoes an order. What the
//! buyer does is read from the code ([`BuyerCode`]): pays, confirms with a password (the
//! answer is `USERPAYING`; the buyer has typed it by the next `orderquery`), is declined
//! (`NOTENOUGH`), or never decides (`USERPAYING` until reversed). Faults: `lose_answer`
//! carries the payment out and answers `SYSTEMERROR`; `ask_again` makes the next reverse
//! answer `recall=Y` without doing it.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;

use super::{Order, WeChatSimulator, api};
use crate::simkit::{BuyerCode, digits, lock, now};
use crate::wechat::sign::{Fields, SignType};

pub(super) fn routes() -> Router<WeChatSimulator> {
    Router::new()
        .route("/pay/micropay", post(micropay))
        .route("/secapi/pay/reverse", post(reverse))
}

type Refusal = (&'static str, &'static str);

/// WeChat's buyer codes: 18 digits, `10` to `15`.
fn is_wechat_code(code: &str) -> bool {
    code.len() == 18
        && code.bytes().all(|b| b.is_ascii_digit())
        && ("10".."16").contains(&&code[..2])
}

/// The fields of a paid (or the refusal of an unpaid) Quick Pay order.
fn answer_for(order: &Order) -> Result<Fields, Refusal> {
    match order.trade_state.as_str() {
        "SUCCESS" | "REFUND" => {
            let mut f = Fields::new();
            for (k, v) in [
                ("openid", super::BUYER_OPENID.to_owned()),
                ("is_subscribe", "N".to_owned()),
                ("trade_type", "MICROPAY".to_owned()),
                ("bank_type", "CFT".to_owned()),
                ("fee_type", order.fee_type.clone()),
                ("total_fee", order.total_fee.to_string()),
                ("cash_fee_type", "CNY".to_owned()),
                ("cash_fee", (order.total_fee * 5).to_string()),
                (
                    "transaction_id",
                    order.transaction_id.clone().unwrap_or_default(),
                ),
                ("out_trade_no", order.out_trade_no.clone()),
                ("time_end", order.time_end.clone().unwrap_or_default()),
            ] {
                f.insert(k.into(), v);
            }
            Ok(f)
        }
        "USERPAYING" => Err(("USERPAYING", "waiting for the buyer's password")),
        "REVOKED" => Err(("ORDERREVERSED", "the order was reversed")),
        "CLOSED" => Err(("ORDERCLOSED", "the order is closed")),
        _ => Err(("NOTENOUGH", "the buyer's balance is not enough")),
    }
}

fn pay(order: &mut Order) {
    let time_end = now().beijing_compact();
    order.trade_state = "SUCCESS".into();
    order.transaction_id = Some(format!(
        "42000{}{}",
        time_end.get(..8).unwrap_or(""),
        digits(15)
    ));
    order.time_end = Some(time_end);
    order.confirms = false;
}

/// The buyer asked for a password types it before the gateway's next query.
pub(super) fn confirm_password(sim: &WeChatSimulator, f: &Fields) {
    let Some(out) = f.get("out_trade_no") else {
        return;
    };
    let mut orders = lock(&sim.inner.orders);
    if let Some(order) = orders.get_mut(out)
        && order.trade_state == "USERPAYING"
        && order.confirms
    {
        pay(order);
    }
}

impl WeChatSimulator {
    fn micropay(&self, f: &Fields, sign_type: SignType) -> Result<Fields, Refusal> {
        let get = |name: &str| f.get(name).filter(|v| !v.is_empty()).cloned();
        let required = |name: &str| get(name).ok_or(("LACK_PARAMS", "missing a required field"));
        let out_trade_no = required("out_trade_no")?;
        if out_trade_no.len() > 32 {
            return Err(("PARAM_ERROR", "out_trade_no is invalid"));
        }
        required("body")?;
        required("spbill_create_ip")?;
        let total_fee = required("total_fee")?
            .parse::<u64>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or(("PARAM_ERROR", "total_fee is invalid"))?;
        let fee_type = get("fee_type").unwrap_or_else(|| "CNY".into());
        let auth_code = required("auth_code")?;
        if !is_wechat_code(&auth_code) {
            return Err(("AUTH_CODE_INVALID", "the buyer's code is not a WeChat code"));
        }
        let mut orders = lock(&self.inner.orders);
        if let Some(existing) = orders.get(&out_trade_no) {
            // The same order asked again (a lost answer, a retry): its state, not a charge.
            if existing.auth_code.as_deref() != Some(auth_code.as_str())
                || existing.total_fee != total_fee
            {
                return Err(("OUT_TRADE_NO_USED", "out_trade_no used for another order"));
            }
            return answer_for(existing);
        }
        if !self.inner.used_codes.take(&auth_code, &out_trade_no) {
            return Err(("AUTH_CODE_INVALID", "the buyer's code was already used"));
        }
        let mut order = Order {
            out_trade_no: out_trade_no.clone(),
            prepay_id: String::new(),
            code: String::new(),
            trade_type: "MICROPAY".into(),
            openid: Some(super::BUYER_OPENID.into()),
            sub_appid: get("sub_appid"),
            sub_mch_id: get("sub_mch_id").unwrap_or_default(),
            body: get("body").unwrap_or_default(),
            total_fee,
            fee_type,
            notify_url: String::new(),
            trade_state: "USERPAYING".into(),
            transaction_id: None,
            time_end: None,
            refunded: 0,
            auth_code: Some(auth_code.clone()),
            confirms: false,
            sign_type,
            refunds: std::collections::HashMap::new(),
        };
        match BuyerCode::of(&auth_code) {
            BuyerCode::Paid => pay(&mut order),
            BuyerCode::Password => order.confirms = true,
            BuyerCode::Declined => order.trade_state = "PAYERROR".into(),
            BuyerCode::Undecided => {}
        }
        let answer = answer_for(&order);
        orders.insert(out_trade_no.clone(), order);
        drop(orders);
        if self.inner.notifier.take_lost_answer(&out_trade_no) {
            return Err(("SYSTEMERROR", "system error, please query"));
        }
        answer
    }

    /// Closes the order, or refunds it if paid: `REVOKED` either way.
    fn reverse(&self, f: &Fields, _: SignType) -> Result<Fields, Refusal> {
        let out = f.get("out_trade_no").cloned().unwrap_or_default();
        let mut orders = lock(&self.inner.orders);
        let order = orders
            .get_mut(&out)
            .ok_or(("ORDERNOTEXIST", "no such order"))?;
        if self.inner.notifier.take_ask_again(&out) {
            // Not done; WeChat says to call again.
            let mut again = Fields::new();
            for (k, v) in [
                ("result_code", "FAIL"),
                ("err_code", "SYSTEMERROR"),
                ("err_code_des", "system error, please call again"),
                ("recall", "Y"),
            ] {
                again.insert(k.into(), v.into());
            }
            return Ok(again);
        }
        if order.trade_type != "MICROPAY" {
            return Err(("REVERSE_EXPIRE", "only a Quick Pay order can be reversed"));
        }
        order.trade_state = "REVOKED".into();
        order.confirms = false;
        let mut extra = Fields::new();
        extra.insert("recall".into(), "N".into());
        Ok(extra)
    }
}

/// A `slow_answer` fault holds the answer (the payment is made at once).
async fn micropay(State(sim): State<WeChatSimulator>, body: Bytes) -> Response {
    let answer = api(&sim, &body, WeChatSimulator::micropay);
    let trade = std::str::from_utf8(&body)
        .ok()
        .and_then(|text| crate::wechat::parse_message(text).ok())
        .and_then(|f| f.get("out_trade_no").cloned());
    if let Some(delay) = trade.and_then(|t| sim.inner.notifier.take_slow_answer(&t)) {
        tokio::time::sleep(delay).await;
    }
    answer
}

async fn reverse(State(sim): State<WeChatSimulator>, body: Bytes) -> Response {
    api(&sim, &body, WeChatSimulator::reverse)
}
