//! Alipay's in-store barcode services, simulated (docs/instore.md):
//! `alipay.acquire.overseas.spot.pay` charges the code the buyer's Alipay shows and answers
//! at once; `alipay.acquire.cancel` closes a trade (refunding it if it was paid). What the
//! buyer does is read from the code ([`BuyerCode`]): pays, confirms first (`UNKNOW` with
//! `WAIT_BUYER_PAY`; the buyer has confirmed by the next query), is declined
//! (`BUYER_BALANCE_NOT_ENOUGH`), or never decides. Faults: `lose_answer` carries the
//! payment out and answers `SYSTEM_ERROR`; `ask_again` makes the next cancel answer
//! `retry_flag=Y` without doing it.

use std::collections::HashSet;

use super::{AlipaySimulator, Trade, business_failure, error_xml, new_trade_no};
use crate::alipay::sign::Params;
use crate::simkit::{BuyerCode, lock, now};

/// Alipay's buyer codes: 16 to 24 digits from `25` to `30`.
fn is_alipay_code(code: &str) -> bool {
    (16..=24).contains(&code.len())
        && code.bytes().all(|b| b.is_ascii_digit())
        && ("25".."31").contains(&&code[..2])
}

fn pay(trade: &mut Trade) {
    trade.status = "TRADE_SUCCESS".into();
    trade.paid_at = Some(now().beijing_compact());
    trade.confirms = false;
}

/// A buyer asked to confirm has done so by the gateway's next query.
pub(super) fn confirm_password(sim: &AlipaySimulator, partner_trans_id: &str) {
    let mut trades = lock(&sim.inner.trades);
    if let Some(trade) = trades.get_mut(partner_trans_id)
        && trade.status == "WAIT_BUYER_PAY"
        && trade.confirms
    {
        pay(trade);
    }
}

/// The answer fields for a barcode trade as it stands.
fn trade_fields(trade: &Trade) -> Vec<(&'static str, String)> {
    let result = match trade.status.as_str() {
        "TRADE_SUCCESS" => "SUCCESS",
        "WAIT_BUYER_PAY" => "UNKNOW",
        _ => "FAIL",
    };
    let mut fields = vec![
        ("result_code", result.to_owned()),
        ("partner_trans_id", trade.out_trade_no.clone()),
        ("alipay_trans_id", trade.trade_no.clone()),
        ("alipay_trans_status", trade.status.clone()),
        ("trans_amount", trade.total_fee.clone()),
        ("currency", trade.currency.clone()),
    ];
    match trade.status.as_str() {
        "TRADE_SUCCESS" => {
            fields.push(("alipay_buyer_login_id", "sim***@alipay.test".into()));
            fields.push(("alipay_buyer_user_id", "2088000000000099".into()));
            fields.push(("alipay_pay_time", trade.paid_at.clone().unwrap_or_default()));
        }
        "TRADE_CLOSED" => {
            fields.push(("detail_error_code", "BUYER_BALANCE_NOT_ENOUGH".into()));
            fields.push((
                "detail_error_des",
                "the buyer's balance is not enough".into(),
            ));
        }
        _ => {}
    }
    fields
}

impl AlipaySimulator {
    /// `alipay.acquire.overseas.spot.pay`. The same `partner_trans_id` with the same code
    /// and amount again is that trade, never a second charge.
    pub(super) fn spot_pay(&self, params: &Params) -> String {
        let sign_type = match self.authenticate(params) {
            Ok(t) => t,
            Err(e) => return error_xml(e.0),
        };
        let result = (|| {
            let get = |name: &str| params.get(name).filter(|v| !v.is_empty()).cloned();
            let required = |name: &str| get(name).ok_or("ILLEGAL_ARGUMENT");
            let id = required("partner_trans_id")?;
            if id.len() > 64 {
                return Err("ILLEGAL_ARGUMENT");
            }
            let subject = required("trans_name")?;
            let currency = required("currency")?;
            let parsed = currency
                .parse::<ottgate_core::Currency>()
                .map_err(|_| "ILLEGAL_CURRENCY")?;
            let amount = required("trans_amount")?;
            ottgate_core::Money::parse_major(&amount, parsed).ok_or("ILLEGAL_ARGUMENT")?;
            if required("biz_product")? != "OVERSEAS_MBARCODE_PAY" {
                return Err("ILLEGAL_ARGUMENT");
            }
            let code = required("buyer_identity_code")?;
            if !is_alipay_code(&code) {
                return Err("INVALID_IDENTITY_CODE");
            }
            let mut trades = lock(&self.inner.trades);
            if let Some(existing) = trades.get(&id) {
                return if existing.buyer_code.as_deref() == Some(code.as_str())
                    && existing.total_fee == amount
                {
                    Ok(existing.clone())
                } else {
                    Err("TRADE_HAS_EXIST")
                };
            }
            if !self.inner.used_codes.take(&code, &id) {
                return Err("INVALID_IDENTITY_CODE");
            }
            let mut trade = Trade {
                trade_no: new_trade_no(),
                out_trade_no: id.clone(),
                service: "alipay.acquire.overseas.spot.pay".into(),
                total_fee: amount,
                currency,
                subject,
                return_url: None,
                notify_url: get("notify_url"),
                sign_type,
                status: "WAIT_BUYER_PAY".into(),
                created_at: now().beijing_display(),
                paid_at: None,
                refunded: "0.00".into(),
                qr_code: None,
                buyer_code: Some(code.clone()),
                confirms: false,
                expires_at: now().plus(std::time::Duration::from_secs(180)),
                refunded_minor: 0,
                refund_ids: HashSet::new(),
                refunds: Vec::new(),
            };
            match BuyerCode::of(&code) {
                BuyerCode::Paid => pay(&mut trade),
                BuyerCode::Password => trade.confirms = true,
                BuyerCode::Declined => trade.status = "TRADE_CLOSED".into(),
                BuyerCode::Undecided => {}
            }
            trades.insert(id, trade.clone());
            Ok(trade)
        })();
        match result {
            Ok(trade) if self.inner.notifier.take_lost_answer(&trade.out_trade_no) => {
                error_xml("SYSTEM_ERROR")
            }
            Ok(trade) => self.in_store_xml(params, sign_type, trade_fields(&trade)),
            Err(code) => self.in_store_xml(params, sign_type, business_failure(code)),
        }
    }

    /// `alipay.acquire.cancel` by `out_trade_no` (the payment's `partner_trans_id`): a
    /// trade never created is cancelled all the same; an unpaid one is closed, a paid one
    /// refunded and closed.
    pub(super) fn cancel(&self, params: &Params) -> String {
        let sign_type = match self.authenticate(params) {
            Ok(t) => t,
            Err(e) => return error_xml(e.0),
        };
        let Some(out) = params
            .get("out_trade_no")
            .filter(|v| !v.is_empty())
            .cloned()
        else {
            return self.in_store_xml(params, sign_type, business_failure("ILLEGAL_ARGUMENT"));
        };
        if params.get("timestamp").is_none_or(String::is_empty) {
            return self.in_store_xml(params, sign_type, business_failure("ILLEGAL_ARGUMENT"));
        }
        if self.inner.notifier.take_ask_again(&out) {
            let mut fields = business_failure("SYSTEM_ERROR");
            fields.push(("retry_flag", "Y".into()));
            fields.push(("out_trade_no", out));
            return self.in_store_xml(params, sign_type, fields);
        }
        let mut trades = lock(&self.inner.trades);
        let trade_no = match trades.get_mut(&out) {
            Some(trade) => {
                trade.status = "TRADE_CLOSED".into();
                trade.confirms = false;
                trade.trade_no.clone()
            }
            None => String::new(),
        };
        drop(trades);
        let mut fields = vec![
            ("result_code", "SUCCESS".to_owned()),
            ("retry_flag", "N".to_owned()),
            ("out_trade_no", out),
        ];
        if !trade_no.is_empty() {
            fields.push(("trade_no", trade_no));
        }
        self.in_store_xml(params, sign_type, fields)
    }
}
