//! A simulated WeChat Pay v2 (docs/wechatpay.md), for sandbox mode and tests.
//!
//! It checks requests as WeChat does (XML, ids, signature, fields — refusing with WeChat's
//! codes such as `SIGNERROR`), keeps orders, serves the MWEB H5 page and, for NATIVE
//! codes, a page that stands in for the buyer's phone scanning the QR, notifies in signed
//! XML on WeChat's schedule until acknowledged, and answers orderquery, closeorder,
//! refunds and `queryexchagerate` (from a table of rates). Faults are injected through
//! `/control`.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ottgate_core::{Amount, Currency, Money, Secret};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use url::Url;

use super::sign::{self, Fields, SignType};
use super::{nonce, parse_message, to_xml};
pub use crate::simkit::BuyerAction;
use crate::simkit::{
    Delivery, Fault, FaultKind, Notifier, SimLang, SimulatedWallet, SimulatorError, UsedCodes,
    corrupt, digits, lock, now,
};
use crate::xml::escape;

mod in_app;
mod in_wechat;
mod quick_pay;
pub use in_wechat::BUYER_OPENID;

/// WeChat's redelivery gaps (docs/wechatpay.md).
const RETRY_GAPS: [Duration; 15] = [
    Duration::from_secs(15),
    Duration::from_secs(15),
    Duration::from_secs(30),
    Duration::from_secs(180),
    Duration::from_secs(600),
    Duration::from_secs(1200),
    Duration::from_secs(1800),
    Duration::from_secs(1800),
    Duration::from_secs(1800),
    Duration::from_secs(3600),
    Duration::from_secs(10_800),
    Duration::from_secs(10_800),
    Duration::from_secs(10_800),
    Duration::from_secs(21_600),
    Duration::from_secs(21_600),
];

#[derive(Clone)]
pub struct WeChatSimConfig {
    pub appid: String,
    pub mch_id: String,
    pub api_key: Secret,
    /// The Official Account's AppSecret the code exchange checks.
    pub app_secret: Secret,
    pub time_scale: f64,
    /// Where the simulator is reachable, ending in `/`.
    pub base_url: Url,
    /// Where notifications may go (never simply wherever a request says).
    pub notify_targets: crate::simkit::NotifyTargets,
    /// `queryexchagerate`'s answers: CNY per unit of each currency, times 10^8.
    pub exchange_rates: BTreeMap<String, u64>,
}

/// Plausible rates (CNY per unit, × 10^8) for the sandbox: round figures near the market
/// of late 2026, not real quotes. `simulator_exchange_rates` replaces or extends them.
pub fn default_exchange_rates() -> BTreeMap<String, u64> {
    [
        ("AUD", 470_000_000),
        ("CAD", 510_000_000),
        ("CHF", 820_000_000),
        ("EUR", 780_000_000),
        ("GBP", 910_000_000),
        ("HKD", 91_000_000),
        ("JPY", 4_700_000),
        ("KRW", 520_000),
        ("NZD", 420_000_000),
        ("SGD", 540_000_000),
        ("USD", 710_000_000),
    ]
    .into_iter()
    .map(|(code, rate)| (code.to_owned(), rate))
    .collect()
}

impl std::fmt::Debug for WeChatSimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeChatSimConfig")
            .field("appid", &self.appid)
            .field("mch_id", &self.mch_id)
            .finish_non_exhaustive()
    }
}

/// An order, as the simulated WeChat Pay holds it.
#[derive(Debug, Clone, Serialize)]
pub struct Order {
    pub out_trade_no: String,
    pub prepay_id: String,
    pub code: String,
    pub trade_type: String,
    /// The buyer a JSAPI order is for (under `sub_appid` when that is set).
    pub openid: Option<String>,
    /// The merchant's own app (a mini-program) a JSAPI order's buyer is known under.
    pub sub_appid: Option<String>,
    pub sub_mch_id: String,
    pub body: String,
    pub total_fee: u64,
    pub fee_type: String,
    pub notify_url: String,
    /// NOTPAY, SUCCESS, REFUND, CLOSED or PAYERROR.
    pub trade_state: String,
    pub transaction_id: Option<String>,
    pub time_end: Option<String>,
    pub refunded: u64,
    /// A Quick Pay order's buyer code.
    pub auth_code: Option<String>,
    /// A Quick Pay order waiting for the buyer's password, who types it before the next
    /// query.
    #[serde(skip)]
    confirms: bool,
    #[serde(skip)]
    pub(super) sign_type: SignType,
    #[serde(skip)]
    refunds: HashMap<String, SimRefund>,
}

/// A refund the simulator made: its amount, its id, and when (`yyyyMMddHHmmss`, Beijing).
#[derive(Debug, Clone, PartialEq, Eq)]
struct SimRefund {
    fee: u64,
    refund_id: String,
    at: String,
}

/// A WeChat error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WeChatError(pub &'static str);

/// A notification ready to be stamped and signed for each delivery.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub url: Url,
    pub fields: Fields,
    pub sign_type: SignType,
    pub out_trade_no: String,
}

#[derive(Clone)]
pub struct WeChatSimulator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for WeChatSimulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeChatSimulator")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

struct Inner {
    config: WeChatSimConfig,
    orders: Mutex<HashMap<String, Order>>,
    /// Sign-in codes not yet exchanged: code → (openid, when issued).
    codes: Mutex<HashMap<String, (String, std::time::Instant)>>,
    notifier: Arc<Notifier>,
    /// Buyer codes charged: each pays once.
    used_codes: UsedCodes,
    statement_faults: crate::simkit::StatementFaults,
}

fn acknowledged(_status: u16, body: &str) -> bool {
    parse_message(body).is_ok_and(|f| f.get("return_code").map(String::as_str) == Some("SUCCESS"))
}

impl WeChatSimulator {
    pub fn new(config: WeChatSimConfig) -> Self {
        let notifier = Notifier::new(
            "wechatpay",
            &RETRY_GAPS,
            config.time_scale,
            acknowledged,
            config.notify_targets.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                config,
                orders: Mutex::new(HashMap::new()),
                codes: Mutex::new(HashMap::new()),
                notifier,
                used_codes: UsedCodes::default(),
                statement_faults: Default::default(),
            }),
        }
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/pay/unifiedorder", post(unifiedorder))
            .route("/pay/orderquery", post(orderquery))
            .route("/pay/closeorder", post(closeorder))
            .route("/secapi/pay/refund", post(refund))
            .route("/pay/refundquery", post(refundquery))
            .route("/pay/queryexchagerate", post(queryexchagerate))
            .route("/pay/downloadbill", post(downloadbill))
            .route("/checkmweb", get(checkmweb))
            .route("/scan", get(scan))
            .route("/act/{prepay_id}", post(act))
            .route("/control", post(control))
            .route("/orders/{out_trade_no}", get(order_state))
            .merge(in_wechat::routes())
            .merge(in_app::routes())
            .merge(quick_pay::routes())
            .with_state(self.clone())
    }

    fn config(&self) -> &WeChatSimConfig {
        &self.inner.config
    }

    pub fn add_fault(&self, fault: Fault) {
        self.inner.notifier.add_fault(fault);
    }

    /// Checks an API request: XML, institution ids, signature. Returns its fields and sign type.
    fn authenticate(&self, body: &[u8]) -> Result<(Fields, SignType), String> {
        let text = std::str::from_utf8(body).map_err(|_| fail("NOT_UTF8"))?;
        let fields = parse_message(text).map_err(|_| fail("XML_FORMAT_ERROR"))?;
        if fields.get("appid") != Some(&self.config().appid) {
            return Err(fail("APPID_NOT_EXIST"));
        }
        if fields.get("mch_id") != Some(&self.config().mch_id) {
            return Err(fail("MCHID_NOT_EXIST"));
        }
        let sign_type = SignType::of(&fields).ok_or_else(|| fail("SIGNERROR"))?;
        if !sign::verify(&fields, &self.config().api_key) {
            return Err(fail("SIGNERROR"));
        }
        Ok((fields, sign_type))
    }

    /// A signed answer with `return_code=SUCCESS` and the business result.
    fn answer(
        &self,
        request: &Fields,
        sign_type: SignType,
        result: Result<Fields, (&'static str, &'static str)>,
    ) -> String {
        let mut f = Fields::new();
        f.insert("return_code".into(), "SUCCESS".into());
        f.insert("return_msg".into(), "OK".into());
        for k in ["appid", "mch_id", "sub_mch_id"] {
            if let Some(v) = request.get(k) {
                f.insert(k.into(), v.clone());
            }
        }
        f.insert("nonce_str".into(), nonce());
        if sign_type == SignType::HmacSha256 {
            f.insert("sign_type".into(), sign_type.code().into());
        }
        match result {
            Ok(extra) => {
                f.insert("result_code".into(), "SUCCESS".into());
                f.extend(extra);
            }
            Err((code, description)) => {
                f.insert("result_code".into(), "FAIL".into());
                f.insert("err_code".into(), code.into());
                f.insert("err_code_des".into(), description.into());
            }
        }
        let signature = sign::sign(&f, sign_type, &self.config().api_key);
        f.insert("sign".into(), signature);
        to_xml(&f)
    }

    fn create(
        &self,
        f: &Fields,
        sign_type: SignType,
    ) -> Result<Fields, (&'static str, &'static str)> {
        let get = |name: &str| f.get(name).filter(|v| !v.is_empty()).cloned();
        let required = |name: &str| get(name).ok_or(("LACK_PARAMS", "missing a required field"));
        let out_trade_no = required("out_trade_no")?;
        if out_trade_no.len() > 32
            || !out_trade_no
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-|*".contains(&b))
        {
            return Err(("PARAM_ERROR", "out_trade_no is invalid"));
        }
        let body = required("body")?;
        let total_fee = required("total_fee")?
            .parse::<u64>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or(("PARAM_ERROR", "total_fee is invalid"))?;
        let fee_type = get("fee_type").unwrap_or_else(|| "CNY".into());
        fee_type
            .parse::<Currency>()
            .map_err(|_| ("PARAM_ERROR", "fee_type is invalid"))?;
        required("spbill_create_ip")?;
        let notify_url = required("notify_url")?;
        let trade_type = required("trade_type")?;
        match trade_type.as_str() {
            "NATIVE" => {
                required("product_id")?;
            }
            "MWEB" => {
                required("scene_info")?;
            }
            // The buyer, under our app id or (institutional mode) the merchant's own.
            "JSAPI" => match (get("openid"), get("sub_appid"), get("sub_openid")) {
                (Some(_), None, None) | (None, Some(_), Some(_)) => {}
                (None, None, None) => return Err(("PARAM_ERROR", "openid is required")),
                _ => return Err(("PARAM_ERROR", "openid, or sub_appid with sub_openid")),
            },
            "APP" => {}
            _ => return Err(("PARAM_ERROR", "trade_type is invalid")),
        }
        let mut orders = lock(&self.inner.orders);
        let order = match orders.get(&out_trade_no) {
            Some(existing)
                if existing.trade_state == "SUCCESS" || existing.trade_state == "REFUND" =>
            {
                return Err(("ORDERPAID", "the order is paid"));
            }
            Some(existing) if existing.trade_state == "CLOSED" => {
                return Err(("ORDERCLOSED", "the order is closed"));
            }
            Some(existing)
                if existing.total_fee != total_fee
                    || existing.fee_type != fee_type
                    || existing.trade_type != trade_type =>
            {
                return Err(("OUT_TRADE_NO_USED", "out_trade_no used for another order"));
            }
            Some(existing) => existing.clone(),
            None => {
                let order = Order {
                    prepay_id: format!("wx{}{}", now().beijing_compact(), digits(10)),
                    code: digits(10),
                    out_trade_no: out_trade_no.clone(),
                    trade_type,
                    openid: get("openid").or_else(|| get("sub_openid")),
                    sub_appid: get("sub_appid"),
                    sub_mch_id: get("sub_mch_id").unwrap_or_default(),
                    body,
                    total_fee,
                    fee_type,
                    notify_url,
                    trade_state: "NOTPAY".into(),
                    transaction_id: None,
                    time_end: None,
                    refunded: 0,
                    auth_code: None,
                    confirms: false,
                    sign_type,
                    refunds: HashMap::new(),
                };
                orders.insert(out_trade_no, order.clone());
                order
            }
        };
        let mut extra = Fields::new();
        extra.insert("trade_type".into(), order.trade_type.clone());
        extra.insert("prepay_id".into(), order.prepay_id.clone());
        if matches!(order.trade_type.as_str(), "JSAPI" | "APP") {
            // The page inside WeChat, or the merchant's app, asks WeChat's app to pay
            // prepay_id: nothing more to give.
        } else if order.trade_type == "NATIVE" {
            extra.insert(
                "code_url".into(),
                format!("weixin://wxpay/bizpayurl?pr={}", order.code),
            );
        } else {
            let mut mweb = self
                .config()
                .base_url
                .join("checkmweb")
                .map_err(|_| ("SYSTEMERROR", "bad base URL"))?;
            mweb.query_pairs_mut()
                .append_pair("prepay_id", &order.prepay_id)
                .append_pair("package", &digits(10));
            extra.insert("mweb_url".into(), mweb.to_string());
        }
        Ok(extra)
    }

    /// `queryexchagerate`: the table's rate for `fee_type`, for the day asked (today when
    /// no `date` is given).
    fn exchange_rate(
        &self,
        f: &Fields,
        _: SignType,
    ) -> Result<Fields, (&'static str, &'static str)> {
        let fee_type = f
            .get("fee_type")
            .filter(|v| !v.is_empty())
            .ok_or(("LACK_PARAMS", "missing a required field"))?;
        let date = match f.get("date").filter(|v| !v.is_empty()) {
            Some(d) if d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()) => d.clone(),
            Some(_) => return Err(("PARAM_ERROR", "date is invalid")),
            None => now()
                .beijing_compact()
                .get(..8)
                .unwrap_or_default()
                .to_owned(),
        };
        let rate = self
            .config()
            .exchange_rates
            .get(fee_type)
            .ok_or(("PARAM_ERROR", "fee_type is not supported"))?;
        let mut extra = Fields::new();
        extra.insert("fee_type".into(), fee_type.clone());
        extra.insert("rate_time".into(), date);
        extra.insert("rate".into(), rate.to_string());
        Ok(extra)
    }

    /// `total_fee` of `fee_type` in fen at the simulator's rate (rounded half up), with that
    /// rate; yuan stay as they are.
    fn in_yuan(&self, total_fee: u64, fee_type: &str) -> (u64, Option<u64>) {
        let rate = self.config().exchange_rates.get(fee_type).copied();
        let digits = fee_type
            .parse::<ottgate_core::Currency>()
            .map_or(2, |c| c.minor_digits());
        match rate {
            Some(rate) => {
                let scale = 10u128.pow(2u32.saturating_sub(digits));
                let fen =
                    (u128::from(total_fee) * u128::from(rate) * scale + 50_000_000) / 100_000_000;
                (u64::try_from(fen).unwrap_or(u64::MAX), Some(rate))
            }
            None => (total_fee, None),
        }
    }

    fn find(&self, f: &Fields) -> Option<Order> {
        let orders = lock(&self.inner.orders);
        match (
            f.get("transaction_id").filter(|v| !v.is_empty()),
            f.get("out_trade_no"),
        ) {
            (Some(tx), _) => orders
                .values()
                .find(|o| o.transaction_id.as_ref() == Some(tx))
                .cloned(),
            (None, Some(out)) => orders.get(out).cloned(),
            (None, None) => None,
        }
    }

    fn query(&self, f: &Fields, _: SignType) -> Result<Fields, (&'static str, &'static str)> {
        quick_pay::confirm_password(self, f);
        let order = self.find(f).ok_or(("ORDERNOTEXIST", "no such order"))?;
        let mut extra = Fields::new();
        for (k, v) in [
            ("out_trade_no", Some(order.out_trade_no.clone())),
            ("trade_state", Some(order.trade_state.clone())),
            ("trade_state_desc", Some(order.trade_state.to_lowercase())),
            ("trade_type", Some(order.trade_type.clone())),
            ("total_fee", Some(order.total_fee.to_string())),
            ("fee_type", Some(order.fee_type.clone())),
            ("transaction_id", order.transaction_id.clone()),
            ("time_end", order.time_end.clone()),
        ] {
            if let Some(v) = v {
                extra.insert(k.into(), v);
            }
        }
        Ok(extra)
    }

    fn close(&self, f: &Fields, _: SignType) -> Result<Fields, (&'static str, &'static str)> {
        let mut orders = lock(&self.inner.orders);
        let order = f
            .get("out_trade_no")
            .and_then(|o| orders.get_mut(o))
            .ok_or(("ORDERNOTEXIST", "no such order"))?;
        match order.trade_state.as_str() {
            "SUCCESS" | "REFUND" => Err(("ORDERPAID", "the order is paid")),
            _ => {
                order.trade_state = "CLOSED".into();
                Ok(Fields::new())
            }
        }
    }

    fn refund_order(
        &self,
        f: &Fields,
        _: SignType,
    ) -> Result<Fields, (&'static str, &'static str)> {
        let get = |name: &str| {
            f.get(name)
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or(("LACK_PARAMS", "missing a required field"))
        };
        let out_refund_no = get("out_refund_no")?;
        let total_fee = get("total_fee")?
            .parse::<u64>()
            .map_err(|_| ("PARAM_ERROR", "total_fee is invalid"))?;
        let refund_fee = get("refund_fee")?
            .parse::<u64>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or(("PARAM_ERROR", "refund_fee is invalid"))?;
        let key = self
            .find(f)
            .ok_or(("ORDERNOTEXIST", "no such order"))?
            .out_trade_no;
        let mut orders = lock(&self.inner.orders);
        let order = orders
            .get_mut(&key)
            .ok_or(("ORDERNOTEXIST", "no such order"))?;
        if let Some(made) = order.refunds.get(&out_refund_no) {
            // A retry with the same number is the same refund.
            return if made.fee == refund_fee {
                let mut extra = Fields::new();
                extra.insert("refund_id".into(), made.refund_id.clone());
                Ok(extra)
            } else {
                Err((
                    "REFUND_FEE_MISMATCH",
                    "out_refund_no reused with another amount",
                ))
            };
        }
        if order.trade_state != "SUCCESS" && order.trade_state != "REFUND" {
            return Err(("TRADE_STATE_ERROR", "the order is not paid"));
        }
        if total_fee != order.total_fee {
            return Err(("PARAM_ERROR", "total_fee is not the order's"));
        }
        if order.refunded + refund_fee > order.total_fee {
            return Err(("NOTENOUGH", "more than remains refundable"));
        }
        let refund_id = format!("50{}", digits(26));
        order.refunded += refund_fee;
        order.trade_state = "REFUND".into();
        order.refunds.insert(
            out_refund_no.clone(),
            SimRefund {
                fee: refund_fee,
                refund_id: refund_id.clone(),
                at: now().beijing_compact(),
            },
        );
        if self.inner.notifier.take_lost_answer(&order.out_trade_no) {
            // Refunded, but the merchant never hears so.
            return Err(("SYSTEMERROR", "system error"));
        }
        let mut extra = Fields::new();
        extra.insert("out_trade_no".into(), order.out_trade_no.clone());
        extra.insert("out_refund_no".into(), out_refund_no);
        extra.insert("refund_id".into(), refund_id);
        extra.insert("refund_fee".into(), refund_fee.to_string());
        Ok(extra)
    }

    /// `refundquery` by `out_refund_no`: this simulator decides refunds at once, so a
    /// refund it knows is `SUCCESS`.
    fn refund_query(
        &self,
        f: &Fields,
        _: SignType,
    ) -> Result<Fields, (&'static str, &'static str)> {
        let out_refund_no = f
            .get("out_refund_no")
            .filter(|v| !v.is_empty())
            .ok_or(("LACK_PARAMS", "missing a required field"))?;
        let orders = lock(&self.inner.orders);
        let (order, SimRefund { fee, refund_id, .. }) = orders
            .values()
            .find_map(|o| o.refunds.get(out_refund_no).map(|r| (o, r)))
            .ok_or(("REFUNDNOTEXIST", "no such refund"))?;
        let mut extra = Fields::new();
        for (k, v) in [
            ("out_trade_no", order.out_trade_no.clone()),
            ("refund_count", "1".into()),
            ("out_refund_no_0", out_refund_no.clone()),
            ("refund_id_0", refund_id.clone()),
            ("refund_fee_0", fee.to_string()),
            ("refund_status_0", "SUCCESS".into()),
        ] {
            extra.insert(k.into(), v);
        }
        Ok(extra)
    }

    /// The day's bill rows (`bill_date` `yyyyMMdd`, a Beijing day) of `bill_type`: each
    /// order paid that day, each refund made that day; WeChat's fee at 0.6 %, rounded half
    /// up. Served at once, the current day included: a sandbox need not wait for tomorrow.
    pub fn bill(&self, bill_date: &str, bill_type: &str) -> Vec<super::bill::BillRow> {
        let shown = |compact: &str| {
            let d = |a: usize, b: usize| compact.get(a..b).unwrap_or_default();
            format!(
                "{}-{}-{} {}:{}:{}",
                d(0, 4),
                d(4, 6),
                d(6, 8),
                d(8, 10),
                d(10, 12),
                d(12, 14)
            )
        };
        let config = self.config();
        let mut rows = Vec::new();
        for o in lock(&self.inner.orders).values() {
            let Some(transaction_id) = &o.transaction_id else {
                continue;
            };
            let payment = super::bill::BillRow {
                time: String::new(),
                appid: config.appid.clone(),
                mch_id: config.mch_id.clone(),
                sub_mch_id: o.sub_mch_id.clone(),
                transaction_id: transaction_id.clone(),
                out_trade_no: o.out_trade_no.clone(),
                openid: o.openid.clone().unwrap_or_default(),
                trade_type: o.trade_type.clone(),
                trade_state: "SUCCESS".into(),
                fee_type: o.fee_type.clone(),
                total_fee: o.total_fee,
                refund_id: String::new(),
                out_refund_no: String::new(),
                refund_fee: 0,
                refund_status: String::new(),
                body: o.body.clone(),
                poundage: (o.total_fee * 6 + 500) / 1000,
                rate: "0.60%".into(),
            };
            let paid_that_day = o
                .time_end
                .as_deref()
                .is_some_and(|t| t.starts_with(bill_date));
            if paid_that_day && matches!(bill_type, "ALL" | "SUCCESS") {
                rows.push(super::bill::BillRow {
                    time: shown(o.time_end.as_deref().unwrap_or_default()),
                    ..payment.clone()
                });
            }
            if matches!(bill_type, "ALL" | "REFUND") {
                for (out_refund_no, r) in &o.refunds {
                    if r.at.starts_with(bill_date) {
                        rows.push(super::bill::BillRow {
                            time: shown(&r.at),
                            trade_state: "REFUND".into(),
                            refund_id: r.refund_id.clone(),
                            out_refund_no: out_refund_no.clone(),
                            refund_fee: r.fee,
                            refund_status: "SUCCESS".into(),
                            poundage: 0,
                            ..payment.clone()
                        });
                    }
                }
            }
        }
        self.misstate(bill_date, bill_type, &mut rows);
        rows.sort_by(|a, b| (&a.time, &a.out_trade_no).cmp(&(&b.time, &b.out_trade_no)));
        rows
    }

    /// Applies the armed statement faults to a day's bill rows.
    fn misstate(&self, bill_date: &str, bill_type: &str, rows: &mut Vec<super::bill::BillRow>) {
        use crate::simkit::FaultKind;
        let faults = &self.inner.statement_faults;
        rows.retain(|r| !faults.has(FaultKind::OmitFromStatement, r.ours()));
        for r in rows.iter_mut() {
            let ours = r.ours().to_owned();
            if faults.has(FaultKind::StatementAmount, &ours) {
                if r.trade_state == "REFUND" {
                    r.refund_fee += 1;
                } else {
                    r.total_fee += 1;
                }
            }
            if faults.has(FaultKind::StatementCurrency, &ours) {
                r.fee_type = if r.fee_type == "USD" { "CAD" } else { "USD" }.into();
            }
        }
        let at = now();
        if at.beijing_compact().starts_with(bill_date) && matches!(bill_type, "ALL" | "SUCCESS") {
            let config = self.config();
            for (n, out_trade_no) in faults.unknown_trades().into_iter().enumerate() {
                rows.push(super::bill::BillRow {
                    time: at.beijing_display(),
                    appid: config.appid.clone(),
                    mch_id: config.mch_id.clone(),
                    sub_mch_id: String::new(),
                    transaction_id: format!("42009{}{n:05}", at.beijing_compact()),
                    out_trade_no,
                    openid: BUYER_OPENID.into(),
                    trade_type: "NATIVE".into(),
                    trade_state: "SUCCESS".into(),
                    fee_type: "CAD".into(),
                    total_fee: 100,
                    refund_id: String::new(),
                    out_refund_no: String::new(),
                    refund_fee: 0,
                    refund_status: String::new(),
                    body: "unknown".into(),
                    poundage: 1,
                    rate: "0.60%".into(),
                });
            }
        }
    }

    fn by_prepay(&self, prepay_id: &str) -> Option<Order> {
        lock(&self.inner.orders)
            .values()
            .find(|o| o.prepay_id == prepay_id)
            .cloned()
    }

    fn by_code(&self, code_url: &str) -> Option<Order> {
        let code = code_url.strip_prefix("weixin://wxpay/bizpayurl?pr=")?;
        lock(&self.inner.orders)
            .values()
            .find(|o| o.code == code)
            .cloned()
    }

    /// The buyer pays (or payment fails) on the WeChat page. Returns the notification to
    /// send.
    pub fn settle(&self, out_trade_no: &str, action: BuyerAction) -> Result<Outgoing, WeChatError> {
        let mut orders = lock(&self.inner.orders);
        let order = orders
            .get_mut(out_trade_no)
            .ok_or(WeChatError("ORDERNOTEXIST"))?;
        if order.trade_state != "NOTPAY" {
            return Err(WeChatError("ORDERPAID"));
        }
        let time_end = now().beijing_compact();
        order.time_end = Some(time_end.clone());
        let mut fields = Fields::new();
        match action {
            BuyerAction::Pay => {
                let transaction_id =
                    format!("42000{}{}", time_end.get(..8).unwrap_or(""), digits(15));
                order.trade_state = "SUCCESS".into();
                order.transaction_id = Some(transaction_id.clone());
                fields.insert("result_code".into(), "SUCCESS".into());
                fields.insert("transaction_id".into(), transaction_id);
            }
            BuyerAction::Fail => {
                order.trade_state = "PAYERROR".into();
                fields.insert("result_code".into(), "FAIL".into());
                fields.insert("err_code".into(), "PAYERROR".into());
                fields.insert("err_code_des".into(), "payment failed".into());
            }
        }
        for (k, v) in [
            ("return_code", "SUCCESS".to_owned()),
            ("appid", self.config().appid.clone()),
            ("mch_id", self.config().mch_id.clone()),
            ("sub_mch_id", order.sub_mch_id.clone()),
            (
                "openid",
                order
                    .openid
                    .clone()
                    .unwrap_or_else(|| "oSimOpenId0000000000000000001".to_owned()),
            ),
            ("trade_type", order.trade_type.clone()),
            ("bank_type", "CFT".to_owned()),
            ("out_trade_no", order.out_trade_no.clone()),
            ("total_fee", order.total_fee.to_string()),
            ("fee_type", order.fee_type.clone()),
            ("cash_fee_type", "CNY".to_owned()),
            ("time_end", time_end),
        ] {
            fields.insert(k.into(), v);
        }
        // What the buyer paid in yuan, at the simulator's own rate, as WeChat Pay's
        // cross-border notification says it (`cash_fee` in fen, `rate` × 10^8).
        let (cash_fee, rate) = self.in_yuan(order.total_fee, &order.fee_type);
        fields.insert("cash_fee".into(), cash_fee.to_string());
        if let Some(rate) = rate {
            fields.insert("rate".into(), rate.to_string());
        }
        if order.sign_type == SignType::HmacSha256 {
            fields.insert("sign_type".into(), "HMAC-SHA256".into());
        }
        let url = Url::parse(&order.notify_url).map_err(|_| WeChatError("PARAM_ERROR"))?;
        Ok(Outgoing {
            url,
            fields,
            sign_type: order.sign_type,
            out_trade_no: order.out_trade_no.clone(),
        })
    }

    /// Stamps, applies a fault to, and signs a notification: the XML that goes on the wire.
    pub fn finish(&self, n: &Outgoing, fault: Option<FaultKind>) -> String {
        let mut fields = n.fields.clone();
        fields.insert("nonce_str".into(), nonce());
        match fault {
            Some(FaultKind::WrongAmount) => {
                let more = fields
                    .get("total_fee")
                    .and_then(|f| f.parse::<u64>().ok())
                    .map_or(100, |f| f + 100);
                fields.insert("total_fee".into(), more.to_string());
            }
            Some(FaultKind::WrongCurrency) => {
                let other = if fields.get("fee_type").map(String::as_str) == Some("CAD") {
                    "USD"
                } else {
                    "CAD"
                };
                fields.insert("fee_type".into(), other.into());
            }
            _ => {}
        }
        let mut signature = sign::sign(&fields, n.sign_type, &self.config().api_key);
        if fault == Some(FaultKind::CorruptSignature) {
            signature = corrupt(&signature);
        }
        fields.insert("sign".into(), signature);
        to_xml(&fields)
    }

    pub fn send(&self, n: Outgoing) {
        let delivery = Delivery {
            url: n.url.clone(),
            content_type: "text/xml; charset=utf-8",
            about: n.out_trade_no.clone(),
        };
        let sim = self.clone();
        self.inner
            .notifier
            .send(delivery, Arc::new(move |fault| sim.finish(&n, fault)));
    }
}

fn fail(message: &str) -> String {
    format!(
        "<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[{message}]]></return_msg></xml>"
    )
}

fn xml_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], body).into_response()
}

type Handler =
    fn(&WeChatSimulator, &Fields, SignType) -> Result<Fields, (&'static str, &'static str)>;

fn api(sim: &WeChatSimulator, body: &[u8], handler: Handler) -> Response {
    match sim.authenticate(body) {
        Ok((fields, sign_type)) => {
            xml_response(sim.answer(&fields, sign_type, handler(sim, &fields, sign_type)))
        }
        Err(refusal) => xml_response(refusal),
    }
}

async fn unifiedorder(State(sim): State<WeChatSimulator>, body: Bytes) -> Response {
    api(&sim, &body, WeChatSimulator::create)
}

async fn orderquery(State(sim): State<WeChatSimulator>, body: Bytes) -> Response {
    api(&sim, &body, WeChatSimulator::query)
}

async fn closeorder(State(sim): State<WeChatSimulator>, body: Bytes) -> Response {
    api(&sim, &body, WeChatSimulator::close)
}

async fn refund(State(sim): State<WeChatSimulator>, body: Bytes) -> Response {
    let answer = api(&sim, &body, WeChatSimulator::refund_order);
    let trade = std::str::from_utf8(&body)
        .ok()
        .and_then(|text| parse_message(text).ok())
        .and_then(|f| sim.find(&f))
        .map(|o| o.out_trade_no);
    if let Some(delay) = trade.and_then(|t| sim.inner.notifier.take_slow_answer(&t)) {
        tokio::time::sleep(delay).await;
    }
    answer
}

async fn refundquery(State(sim): State<WeChatSimulator>, body: Bytes) -> Response {
    api(&sim, &body, WeChatSimulator::refund_query)
}

/// `pay/downloadbill`: the day's bill as WeChat Pay's text (docs/reconciliation.md), or
/// WeChat's XML refusal — `No Bill Exist` for a day without trades. With `tar_type=GZIP`
/// the bill is gzipped (refusals stay XML); any other `tar_type` is refused.
async fn downloadbill(State(sim): State<WeChatSimulator>, body: Bytes) -> Response {
    let fields = match sim.authenticate(&body) {
        Ok((fields, _)) => fields,
        Err(refusal) => return xml_response(refusal),
    };
    let date = fields
        .get("bill_date")
        .map(String::as_str)
        .unwrap_or_default();
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return xml_response(fail("invalid bill_date"));
    }
    let bill_type = fields.get("bill_type").map_or("ALL", String::as_str);
    if !matches!(bill_type, "ALL" | "SUCCESS" | "REFUND") {
        return xml_response(fail("invalid bill_type"));
    }
    let gzip = match fields.get("tar_type").map(String::as_str) {
        None => false,
        Some("GZIP") => true,
        Some(_) => return xml_response(fail("invalid tar_type")),
    };
    let faults = &sim.inner.statement_faults;
    if faults.take(crate::simkit::FaultKind::StatementNotReady) {
        return xml_response(fail("No Bill Exist"));
    }
    let rows = sim.bill(date, bill_type);
    if rows.is_empty() {
        return xml_response(fail("No Bill Exist"));
    }
    let mut text = super::bill::render(&rows);
    if faults.take(crate::simkit::FaultKind::StatementCut) {
        crate::simkit::cut_half_way(&mut text);
    }
    if gzip {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let zipped = encoder
            .write_all(text.as_bytes())
            .and_then(|()| encoder.finish());
        return match zipped {
            Ok(bytes) => {
                ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
            }
            Err(_) => xml_response(fail("SYSTEMERROR")),
        };
    }
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}

async fn queryexchagerate(State(sim): State<WeChatSimulator>, body: Bytes) -> Response {
    api(&sim, &body, WeChatSimulator::exchange_rate)
}

/// A WeChat Pay page in `lang`, naming the merchant when the order does.
fn page(lang: SimLang, merchant: Option<&str>, content: &str) -> Response {
    crate::simkit::page(lang, "WeChat Pay", "#ededed", merchant, content).into_response()
}

/// A one-line WeChat Pay page: `text` (translated) as `#{id}`.
fn said(lang: SimLang, id: &str, text: &'static str) -> Response {
    page(lang, None, &format!("<p id=\"{id}\">{}</p>", lang.tr(text)))
}

fn pay_page(
    sim: &WeChatSimulator,
    lang: SimLang,
    order: &Order,
    redirect_url: Option<&str>,
) -> Response {
    // The gateway tells WeChat Pay the merchant's name as the order's `body`.
    let merchant = Some(order.body.as_str());
    if order.trade_state != "NOTPAY" {
        return page(
            lang,
            merchant,
            &format!("<p id=\"wechat-status\">{}</p>", escape(&order.trade_state)),
        );
    }
    let action = sim
        .config()
        .base_url
        .join(&format!("act/{}", order.prepay_id))
        .map(|u| u.to_string())
        .unwrap_or_default();
    let hidden = redirect_url
        .map(|r| {
            format!(
                "<input type=\"hidden\" id=\"wechat-redirect\" name=\"redirect_url\" value=\"{}\">",
                escape(r)
            )
        })
        .unwrap_or_default();
    page(
        lang,
        merchant,
        &format!(
            "<h1 id=\"wechat-title\" style=\"color:#07c160;font-size:20px\">{}</h1><p id=\"wechat-body\">{}</p>\
         <p style=\"font-size:32px;font-weight:700\" id=\"wechat-amount\">{} {}</p><p style=\"color:#666;font-size:13px\">{} · {}</p>{}",
            lang.tr("WeChat Pay"),
            escape(&order.body),
            shown_amount(order),
            escape(&order.fee_type),
            escape(&order.trade_type),
            escape(&order.out_trade_no),
            crate::simkit::cashier_form(lang, "wechat", &action, "#07c160", &hidden),
        ),
    )
}

/// The order's amount in major units, as the buyer reads it.
fn shown_amount(order: &Order) -> String {
    let currency = order.fee_type.parse().unwrap_or(Currency::Cny);
    Amount::from_minor(order.total_fee)
        .map(|amount| Money::new(amount, currency).major_plain())
        .unwrap_or_else(|_| order.total_fee.to_string())
}

#[derive(Debug, Deserialize)]
struct MwebQuery {
    prepay_id: String,
    redirect_url: Option<String>,
}

async fn checkmweb(
    State(sim): State<WeChatSimulator>,
    headers: HeaderMap,
    Query(q): Query<MwebQuery>,
) -> Response {
    let lang = SimLang::of(&headers);
    match sim.by_prepay(&q.prepay_id) {
        Some(order) if order.trade_type == "MWEB" => {
            pay_page(&sim, lang, &order, q.redirect_url.as_deref())
        }
        _ => page(lang, None, "<p id=\"wechat-error\">INVALID_REQUEST</p>"),
    }
}

#[derive(Debug, Deserialize)]
struct ScanQuery {
    code_url: String,
}

/// What the buyer's phone shows after scanning a NATIVE code.
async fn scan(
    State(sim): State<WeChatSimulator>,
    headers: HeaderMap,
    Query(q): Query<ScanQuery>,
) -> Response {
    let lang = SimLang::of(&headers);
    match sim.by_code(&q.code_url) {
        Some(order) => pay_page(&sim, lang, &order, None),
        None => page(lang, None, "<p id=\"wechat-error\">INVALID_CODE</p>"),
    }
}

async fn act(
    State(sim): State<WeChatSimulator>,
    headers: HeaderMap,
    Path(prepay_id): Path<String>,
    body: Bytes,
) -> Response {
    let lang = SimLang::of(&headers);
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let Some(order) = sim.by_prepay(&prepay_id) else {
        return page(lang, None, "<p id=\"wechat-error\">ORDERNOTEXIST</p>");
    };
    let back = form.get("redirect_url").cloned();
    let action = match form.get("action").map(String::as_str) {
        Some("pay") => BuyerAction::Pay,
        Some("fail") => BuyerAction::Fail,
        _ => {
            return match back {
                Some(url) => Redirect::to(&url).into_response(),
                None => said(lang, "wechat-cancelled", "Cancelled."),
            };
        }
    };
    match sim.settle(&order.out_trade_no, action) {
        Ok(notification) => {
            sim.send(notification);
            match back {
                Some(url) => Redirect::to(&url).into_response(),
                None => said(
                    lang,
                    "wechat-done",
                    "Done. You can return to the merchant's page.",
                ),
            }
        }
        Err(e) => page(
            lang,
            None,
            &format!("<p id=\"wechat-error\">{}</p>", escape(e.0)),
        ),
    }
}

async fn control(State(sim): State<WeChatSimulator>, Json(fault): Json<Fault>) -> StatusCode {
    if !sim.inner.statement_faults.arm(&fault) {
        sim.add_fault(fault);
    }
    StatusCode::NO_CONTENT
}

async fn order_state(
    State(sim): State<WeChatSimulator>,
    Path(out_trade_no): Path<String>,
) -> Response {
    match lock(&sim.inner.orders).get(&out_trade_no) {
        Some(order) => Json(order.clone()).into_response(),
        None => (StatusCode::NOT_FOUND, "ORDERNOTEXIST").into_response(),
    }
}

impl From<WeChatError> for SimulatorError {
    fn from(e: WeChatError) -> Self {
        SimulatorError(e.0.to_owned())
    }
}

impl SimulatedWallet for WeChatSimulator {
    fn name(&self) -> &'static str {
        "wechatpay"
    }

    fn router(&self) -> Router {
        WeChatSimulator::router(self)
    }

    fn knows(&self, out_trade_no: &str) -> bool {
        lock(&self.inner.orders).contains_key(out_trade_no)
    }

    /// Our `unifiedorder` opened the order here: the buyer pays or fails it.
    fn buyer(&self) -> Option<&'static str> {
        Some(BUYER_OPENID)
    }

    fn complete_as_buyer(
        &self,
        out_trade_no: &str,
        _start: Option<&crate::PaymentStart>,
        action: BuyerAction,
    ) -> Result<String, SimulatorError> {
        let notification = self.settle(out_trade_no, action)?;
        Ok(self.finish(&notification, None))
    }
}
