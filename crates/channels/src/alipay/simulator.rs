//! A simulated Alipay MAPI gateway, for sandbox mode and tests (docs/alipay.md).
//!
//! It plays Alipay's side of the protocol: verifies our signed requests exactly as Alipay
//! would (refusing with Alipay's own codes, e.g. `ILLEGAL_SIGN`), shows a cashier, signs
//! browser returns and notifications with the *wallet's* key, answers `single_trade_query`,
//! `forex_refund` and `notify_verify`, and re-sends unacknowledged notifications on
//! Alipay's schedule (scaled by `time_scale`). For QR codes the merchant shows it answers
//! `alipay.acquire.precreate` with a code that is its own page (opening it is scanning
//! it), `alipay.acquire.overseas.query` and `alipay.acquire.overseas.spot.refund`. A
//! control endpoint injects faults.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ottgate_core::{Currency, Money, Secret, Timestamp};
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use url::Url;

use super::parse_form;
use super::sign::{self, Params, SignType, SigningMaterial, VerifyingMaterial};
use crate::simkit::{
    BuyerAction, Delivery, Notifier, SimLang, SimulatedWallet, SimulatorError, corrupt, digits,
    lock, now,
};
use crate::xml::escape;

/// Alipay re-sends an unacknowledged notification after these gaps (docs/alipay.md).
const RETRY_GAPS: [Duration; 7] = [
    Duration::from_secs(120),
    Duration::from_secs(600),
    Duration::from_secs(600),
    Duration::from_secs(3600),
    Duration::from_secs(7200),
    Duration::from_secs(21_600),
    Duration::from_secs(54_000),
];

/// How long a `notify_id` can be checked with `notify_verify`.
const NOTIFY_ID_VALIDITY: Duration = Duration::from_secs(900);

#[derive(Clone)]
pub struct AlipaySimConfig {
    /// The one partner (acquirer PID) this simulated Alipay knows.
    pub partner: String,
    pub md5_key: Secret,
    /// The partner's public key: verifies its RSA/RSA2 requests.
    pub partner_public: RsaPublicKey,
    /// Alipay's own key: signs RSA/RSA2 answers, returns and notifications.
    pub wallet_private: RsaPrivateKey,
    /// How much faster than real time retries run (60 makes Alipay's 2-minute gap 2 s).
    pub time_scale: f64,
    /// Where the simulator is reachable, ending in `/` (its cashier links point here).
    pub base_url: Url,
    /// Where notifications may go (never simply wherever a request says).
    pub notify_targets: crate::simkit::NotifyTargets,
}

impl std::fmt::Debug for AlipaySimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlipaySimConfig")
            .field("partner", &self.partner)
            .field("base_url", &self.base_url.as_str())
            .finish_non_exhaustive()
    }
}

/// A trade, as the simulated Alipay holds it.
#[derive(Debug, Clone, Serialize)]
pub struct Trade {
    pub out_trade_no: String,
    pub trade_no: String,
    pub service: String,
    pub total_fee: String,
    pub currency: String,
    pub subject: String,
    pub return_url: Option<String>,
    pub notify_url: Option<String>,
    #[serde(skip)]
    pub sign_type: SignType,
    pub status: String,
    pub created_at: String,
    pub paid_at: Option<String>,
    pub refunded: String,
    /// What the QR code of an in-store (precreate) trade holds.
    pub qr_code: Option<String>,
    /// A barcode (spot.pay) trade's buyer code.
    pub buyer_code: Option<String>,
    /// A barcode trade waiting for the buyer, who confirms before the next query.
    #[serde(skip)]
    confirms: bool,
    #[serde(skip)]
    expires_at: Timestamp,
    #[serde(skip)]
    refunded_minor: u64,
    #[serde(skip)]
    refund_ids: HashSet<String>,
    /// Refunds carried out: `(out_return_no or partner_refund_id, minor units, when)`.
    #[serde(skip)]
    refunds: Vec<(String, u64, Timestamp)>,
}

impl Trade {
    fn money(&self) -> Option<Money> {
        Money::parse_major(&self.total_fee, self.currency.parse::<Currency>().ok()?)
    }
}

pub use crate::simkit::{Fault, FaultKind};

mod spot;

impl From<AlipayError> for SimulatorError {
    fn from(e: AlipayError) -> Self {
        SimulatorError(e.0.to_owned())
    }
}

/// A notification to send: the unsigned parameters (faults may change them before signing).
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub url: Url,
    pub params: Params,
    pub sign_type: SignType,
    pub out_trade_no: String,
}

/// An Alipay error code, as Alipay shows it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AlipayError(pub &'static str);

#[derive(Clone)]
pub struct AlipaySimulator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AlipaySimulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlipaySimulator")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

struct Inner {
    config: AlipaySimConfig,
    trades: Mutex<HashMap<String, Trade>>,
    notify_ids: Mutex<HashMap<String, Timestamp>>,
    notifier: Arc<Notifier>,
    used_codes: crate::simkit::UsedCodes,
    statement_faults: crate::simkit::StatementFaults,
}

impl AlipaySimulator {
    pub fn new(config: AlipaySimConfig) -> Self {
        let notifier = Notifier::new(
            "alipay",
            &RETRY_GAPS,
            config.time_scale,
            |status, body| {
                (200..300).contains(&status) && body.trim().eq_ignore_ascii_case("success")
            },
            config.notify_targets.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                config,
                trades: Mutex::new(HashMap::new()),
                notify_ids: Mutex::new(HashMap::new()),
                notifier,
                used_codes: crate::simkit::UsedCodes::default(),
                statement_faults: Default::default(),
            }),
        }
    }

    /// The simulator's routes, relative to where it is mounted.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/gateway.do", get(gateway_get).post(gateway_post))
            .route("/cashier/{out_trade_no}", post(cashier))
            .route("/qr/{code}", get(scanned))
            .route("/app/pay", post(app_pay))
            .route("/control", post(control))
            .route("/trades/{out_trade_no}", get(trade_state))
            .with_state(self.clone())
    }

    fn config(&self) -> &AlipaySimConfig {
        &self.inner.config
    }

    /// Alipay's signature over `params` (MD5 key or the wallet's private key).
    fn sign(&self, params: &Params, sign_type: SignType) -> String {
        let key = match sign_type {
            SignType::Md5 => SigningMaterial::Md5(self.config().md5_key.clone()),
            _ => SigningMaterial::Rsa(Box::new(self.config().wallet_private.clone())),
        };
        sign::sign(params, sign_type, &key).unwrap_or_default()
    }

    fn signed(&self, mut params: Params, sign_type: SignType) -> Params {
        let signature = self.sign(&params, sign_type);
        params.insert("sign_type".into(), sign_type.code().into());
        params.insert("sign".into(), signature);
        params
    }

    /// Checks what every request is checked for: service, partner, sign type, signature.
    fn authenticate(&self, params: &Params) -> Result<SignType, AlipayError> {
        if params.get("partner").map(String::as_str) != Some(self.config().partner.as_str()) {
            return Err(AlipayError("ILLEGAL_PARTNER"));
        }
        let sign_type = params
            .get("sign_type")
            .and_then(|t| SignType::parse(t))
            .ok_or(AlipayError("ILLEGAL_SIGN_TYPE"))?;
        let key = match sign_type {
            SignType::Md5 => VerifyingMaterial::Md5(self.config().md5_key.clone()),
            _ => VerifyingMaterial::Rsa(Box::new(self.config().partner_public.clone())),
        };
        if !sign::verify(params, sign_type, &key) {
            return Err(AlipayError("ILLEGAL_SIGN"));
        }
        Ok(sign_type)
    }

    /// What `gateway.do` does with a payment request: authenticate, validate, and create
    /// the trade (or find it again, when the same request comes back).
    pub fn open(&self, params: &Params) -> Result<Trade, AlipayError> {
        let sign_type = self.authenticate(params)?;
        let service = params.get("service").cloned().unwrap_or_default();
        let (wap, app) = match service.as_str() {
            "create_forex_trade_wap" => (true, false),
            "create_forex_trade" => (false, false),
            "mobile.securitypay.pay" => (true, true),
            _ => return Err(AlipayError("ILLEGAL_SERVICE")),
        };
        let get = |name: &str| params.get(name).filter(|v| !v.is_empty()).cloned();
        // An app payment names its seller (us) and the cross-border product.
        if app
            && (get("seller_id").as_ref() != Some(&self.config().partner)
                || get("payment_type").as_deref() != Some("1")
                || get("forex_biz").as_deref() != Some("FP")
                || get("notify_url").is_none())
        {
            return Err(AlipayError("ILLEGAL_ARGUMENT"));
        }
        let out_trade_no = get("out_trade_no")
            .filter(|v| v.len() <= 64)
            .ok_or(AlipayError("ILLEGAL_ARGUMENT"))?;
        let subject = get("subject").ok_or(AlipayError("ILLEGAL_ARGUMENT"))?;
        let currency = get("currency").ok_or(AlipayError("ILLEGAL_ARGUMENT"))?;
        let currency_code = currency
            .parse::<Currency>()
            .map_err(|_| AlipayError("ILLEGAL_CURRENCY"))?;
        let total_fee = get("total_fee").ok_or(AlipayError("ILLEGAL_ARGUMENT"))?;
        let money =
            Money::parse_major(&total_fee, currency_code).ok_or(AlipayError("ILLEGAL_ARGUMENT"))?;
        if money.amount.minor() > 100_000_000 {
            return Err(AlipayError("ILLEGAL_ARGUMENT"));
        }
        let expected_product = if wap {
            "NEW_WAP_OVERSEAS_SELLER"
        } else {
            "NEW_OVERSEAS_SELLER"
        };
        if get("product_code").is_some_and(|p| p != expected_product) {
            return Err(AlipayError("ILLEGAL_ARGUMENT"));
        }
        let created = get("order_gmt_create")
            .and_then(|t| Timestamp::parse_beijing(&t))
            .unwrap_or_else(now);
        let valid = match (get("order_valid_time"), get("it_b_pay")) {
            (Some(v), _) => v
                .parse::<u64>()
                .ok()
                .filter(|s| (61..=2_592_000).contains(s))
                .ok_or(AlipayError("ILLEGAL_ARGUMENT"))?,
            (None, Some(t)) => it_b_pay_secs(&t).ok_or(AlipayError("ILLEGAL_ARGUMENT"))?,
            (None, None) => 12 * 3600,
        };
        let mut trades = lock(&self.inner.trades);
        if let Some(existing) = trades.get(&out_trade_no) {
            // The same order coming back (the buyer reopened the page) is fine; different
            // content under the same out_trade_no is a duplicate.
            if existing.total_fee != total_fee || existing.currency != currency {
                return Err(AlipayError("ILLEGAL_ARGUMENT"));
            }
            return Ok(existing.clone());
        }
        let trade = Trade {
            trade_no: new_trade_no(),
            out_trade_no: out_trade_no.clone(),
            service,
            total_fee,
            currency,
            subject,
            return_url: get("return_url"),
            notify_url: get("notify_url"),
            sign_type,
            status: "WAIT_BUYER_PAY".into(),
            created_at: now().beijing_display(),
            paid_at: None,
            refunded: "0.00".into(),
            qr_code: None,
            buyer_code: None,
            confirms: false,
            expires_at: created.plus(Duration::from_secs(valid)),
            refunded_minor: 0,
            refund_ids: HashSet::new(),
            refunds: Vec::new(),
        };
        trades.insert(out_trade_no, trade.clone());
        Ok(trade)
    }

    /// The buyer acts at the cashier. Returns the notification to send (if the trade
    /// moved) and the signed browser return.
    pub fn settle(
        &self,
        out_trade_no: &str,
        action: BuyerAction,
    ) -> Result<(Option<Outgoing>, Option<Url>), AlipayError> {
        let mut trades = lock(&self.inner.trades);
        let trade = trades
            .get_mut(out_trade_no)
            .ok_or(AlipayError("TRADE_NOT_EXIST"))?;
        if trade.status != "WAIT_BUYER_PAY" {
            return Err(AlipayError("TRADE_STATUS_ERROR"));
        }
        let expired = now() >= trade.expires_at;
        let in_store = trade.qr_code.is_some();
        let status = match (action, expired) {
            (BuyerAction::Pay, false) => {
                trade.paid_at = Some(now().beijing_display());
                // In-store trades are TRADE_SUCCESS (refundable); online ones finished.
                if in_store {
                    "TRADE_SUCCESS"
                } else {
                    "TRADE_FINISHED"
                }
            }
            _ => "TRADE_CLOSED",
        };
        trade.status = status.into();
        let trade = trade.clone();
        drop(trades);
        let mut result = Params::new();
        for (k, v) in [
            ("out_trade_no", &trade.out_trade_no),
            ("trade_no", &trade.trade_no),
            ("total_fee", &trade.total_fee),
            ("currency", &trade.currency),
            ("trade_status", &trade.status),
        ] {
            result.insert(k.into(), v.clone());
        }
        let return_url = trade
            .return_url
            .as_deref()
            .and_then(|u| Url::parse(u).ok())
            .map(|mut url| {
                url.query_pairs_mut()
                    .extend_pairs(self.signed(result.clone(), trade.sign_type).iter());
                url
            });
        let outgoing = trade
            .notify_url
            .as_deref()
            .and_then(|u| Url::parse(u).ok())
            .map(|url| {
                let mut params = result;
                params.insert("notify_type".into(), "trade_status_sync".into());
                if in_store {
                    params.insert("trans_currency".into(), trade.currency.clone());
                }
                Outgoing {
                    url,
                    params,
                    sign_type: trade.sign_type,
                    out_trade_no: trade.out_trade_no.clone(),
                }
            });
        if expired && action == BuyerAction::Pay {
            return Err(AlipayError("TRADE_HAS_CLOSE"));
        }
        Ok((outgoing, return_url))
    }

    pub fn add_fault(&self, fault: Fault) {
        self.inner.notifier.add_fault(fault);
    }

    /// Stamps a notification (its `notify_id` and time), applies any fault, signs it, and
    /// the form body that goes on the wire.
    pub fn finish(&self, outgoing: &Outgoing, fault: Option<FaultKind>) -> String {
        let mut params = outgoing.params.clone();
        let notify_id = format!("{}{}", digits(32), "sm");
        lock(&self.inner.notify_ids).insert(notify_id.clone(), now());
        params.insert("notify_id".into(), notify_id);
        params.insert("notify_time".into(), now().beijing_display());
        match fault {
            Some(FaultKind::WrongAmount) => {
                let more = params
                    .get("total_fee")
                    .and_then(|f| bump(f))
                    .unwrap_or_else(|| "1.00".into());
                params.insert("total_fee".into(), more);
            }
            Some(FaultKind::WrongCurrency) => {
                let other = if params.get("currency").map(String::as_str) == Some("CAD") {
                    "USD"
                } else {
                    "CAD"
                };
                params.insert("currency".into(), other.into());
            }
            _ => {}
        }
        let mut signed = self.signed(params, outgoing.sign_type);
        if fault == Some(FaultKind::CorruptSignature) {
            let broken = signed.get("sign").map(|s| corrupt(s)).unwrap_or_default();
            signed.insert("sign".into(), broken);
        }
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(signed.iter())
            .finish()
    }

    /// Sends a notification the way Alipay does: at once, then on the retry schedule until
    /// the answer is `success`. Faults injected for it apply.
    pub fn send(&self, outgoing: Outgoing) {
        let delivery = Delivery {
            url: outgoing.url.clone(),
            content_type: "application/x-www-form-urlencoded",
            about: outgoing.out_trade_no.clone(),
        };
        let sim = self.clone();
        self.inner.notifier.send(
            delivery,
            Arc::new(move |fault| sim.finish(&outgoing, fault)),
        );
    }

    fn query(&self, params: &Params) -> String {
        let result = (|| {
            let sign_type = self.authenticate(params)?;
            let key = params
                .get("trade_no")
                .or_else(|| params.get("out_trade_no"))
                .ok_or(AlipayError("ILLEGAL_ARGUMENT"))?;
            let trades = lock(&self.inner.trades);
            let trade = trades
                .get(key)
                .or_else(|| trades.values().find(|t| &t.trade_no == key))
                .ok_or(AlipayError("TRADE_NOT_EXIST"))?;
            Ok::<_, AlipayError>((trade.clone(), sign_type))
        })();
        let (trade, sign_type) = match result {
            Ok(r) => r,
            Err(e) => return error_xml(e.0),
        };
        let mut fields = Params::new();
        for (k, v) in [
            ("buyer_email", "sim***@alipay.test".to_owned()),
            ("buyer_id", "2088000000009999".to_owned()),
            ("gmt_create", trade.created_at.clone()),
            ("out_trade_no", trade.out_trade_no.clone()),
            ("subject", trade.subject.clone()),
            ("total_fee", trade.total_fee.clone()),
            ("trade_no", trade.trade_no.clone()),
            ("trade_status", trade.status.clone()),
        ] {
            fields.insert(k.into(), v);
        }
        if let Some(paid) = &trade.paid_at {
            fields.insert("gmt_payment".into(), paid.clone());
        }
        self.signed_answer(params, sign_type, "trade", &fields)
    }

    /// A successful answer, `<alipay><is_success>T</is_success><request>…</request>
    /// <response><{node}>…</{node}></response><sign>…`, the `node`'s fields signed with the
    /// wallet's key.
    fn signed_answer(
        &self,
        request: &Params,
        sign_type: SignType,
        node: &str,
        fields: &Params,
    ) -> String {
        let signature = self.sign(fields, sign_type);
        let request: String = request
            .iter()
            .filter(|(k, _)| *k != "sign")
            .map(|(k, v)| format!("<param name=\"{}\">{}</param>", escape(k), escape(v)))
            .collect();
        let body: String = fields
            .iter()
            .map(|(k, v)| format!("<{k}>{}</{k}>", escape(v)))
            .collect();
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><alipay><is_success>T</is_success><request>{request}</request><response><{node}>{body}</{node}></response><sign>{}</sign><sign_type>{}</sign_type></alipay>",
            escape(&signature),
            sign_type.code()
        )
    }

    fn refund(&self, params: &Params) -> String {
        let result = (|| {
            let sign_type = self.authenticate(params)?;
            let get = |name: &str| {
                params
                    .get(name)
                    .filter(|v| !v.is_empty())
                    .cloned()
                    .ok_or(AlipayError("ILLEGAL_ARGUMENT"))
            };
            let (out_return_no, out_trade_no, amount, currency) = (
                get("out_return_no")?,
                get("out_trade_no")?,
                get("return_amount")?,
                get("currency")?,
            );
            get("gmt_return")?;
            let mut trades = lock(&self.inner.trades);
            let trade = trades
                .get_mut(&out_trade_no)
                .ok_or(AlipayError("PURCHASE_TRADE_NOT_EXIST"))?;
            if trade.refund_ids.contains(&out_return_no) {
                return Err(AlipayError("REPEATED_REFUNDMENT_REQUEST"));
            }
            if trade.status == "TRADE_CLOSED" || trade.status == "WAIT_BUYER_PAY" {
                return Err(AlipayError("TRADE_HAS_CLOSE"));
            }
            if currency != trade.currency {
                return Err(AlipayError("CURRENCY_NOT_SAME"));
            }
            let paid = trade.money().ok_or(AlipayError("SYSTEM_EXCEPTION"))?;
            let wanted = Money::parse_major(&amount, paid.currency)
                .ok_or(AlipayError("ILLEGAL_ARGUMENT"))?;
            if trade.refunded_minor + wanted.amount.minor() > paid.amount.minor() {
                return Err(AlipayError("RETURN_AMOUNT_EXCEED"));
            }
            trade.refunded_minor += wanted.amount.minor();
            trade.refund_ids.insert(out_return_no.clone());
            trade
                .refunds
                .push((out_return_no.clone(), wanted.amount.minor(), now()));
            let refunded = Money::new(
                ottgate_core::Amount::from_minor(trade.refunded_minor)
                    .map_err(|_| AlipayError("SYSTEM_EXCEPTION"))?,
                paid.currency,
            );
            trade.refunded = refunded.major_plain();
            let notify = params.get("notify_url").and_then(|u| Url::parse(u).ok());
            Ok::<_, AlipayError>((notify, out_return_no, out_trade_no, sign_type))
        })();
        match result {
            Ok((notify, out_return_no, out_trade_no, sign_type)) => {
                if let Some(url) = notify {
                    let mut p = Params::new();
                    p.insert("notify_type".into(), "refund_status_sync".into());
                    p.insert("out_trade_no".into(), out_trade_no.clone());
                    p.insert("out_return_no".into(), out_return_no);
                    p.insert("refund_status".into(), "REFUND_SUCCESS".into());
                    self.send(Outgoing {
                        url,
                        params: p,
                        sign_type,
                        out_trade_no,
                    });
                }
                "<?xml version=\"1.0\" encoding=\"utf-8\"?><alipay><is_success>T</is_success></alipay>".into()
            }
            Err(e) => error_xml(e.0),
        }
    }

    /// `alipay.acquire.precreate`: creates (or, for the same request again, finds) an
    /// in-store trade and answers its QR code.
    fn precreate(&self, params: &Params) -> String {
        let sign_type = match self.authenticate(params) {
            Ok(t) => t,
            Err(e) => return error_xml(e.0),
        };
        let result = (|| {
            let get = |name: &str| params.get(name).filter(|v| !v.is_empty()).cloned();
            let required = |name: &str| get(name).ok_or("ILLEGAL_ARGUMENT");
            let out_trade_no = required("out_trade_no")?;
            if out_trade_no.len() > 64 {
                return Err("ILLEGAL_ARGUMENT");
            }
            let subject = required("subject")?;
            let trans_currency = required("trans_currency")?;
            let currency = trans_currency
                .parse::<Currency>()
                .map_err(|_| "ILLEGAL_CURRENCY")?;
            required("currency")?
                .parse::<Currency>()
                .map_err(|_| "ILLEGAL_CURRENCY")?;
            let total_fee = required("total_fee")?;
            Money::parse_major(&total_fee, currency).ok_or("ILLEGAL_ARGUMENT")?;
            if required("product_code")? != "OVERSEAS_MBARCODE_PAY" {
                return Err("ILLEGAL_ARGUMENT");
            }
            let notify_url = required("notify_url")?;
            let created =
                Timestamp::parse_beijing(&required("timestamp")?).ok_or("ILLEGAL_ARGUMENT")?;
            let valid = match get("it_b_pay") {
                Some(t) => timeout_rule(&t).ok_or("ILLEGAL_ARGUMENT")?,
                None => Duration::from_secs(2 * 3600),
            };
            let mut trades = lock(&self.inner.trades);
            if let Some(existing) = trades.get(&out_trade_no) {
                return if existing.qr_code.is_some()
                    && existing.total_fee == total_fee
                    && existing.currency == trans_currency
                {
                    Ok(existing.clone())
                } else {
                    Err("TRADE_HAS_EXIST")
                };
            }
            let qr_code = self
                .config()
                .base_url
                .join(&format!("qr/{}", digits(20)))
                .map_err(|_| "SYSTEM_ERROR")?
                .to_string();
            let trade = Trade {
                trade_no: new_trade_no(),
                out_trade_no: out_trade_no.clone(),
                service: "alipay.acquire.precreate".into(),
                total_fee,
                currency: trans_currency,
                subject,
                return_url: None,
                notify_url: Some(notify_url),
                sign_type,
                status: "WAIT_BUYER_PAY".into(),
                created_at: now().beijing_display(),
                paid_at: None,
                refunded: "0.00".into(),
                qr_code: Some(qr_code),
                buyer_code: None,
                confirms: false,
                expires_at: created.plus(valid),
                refunded_minor: 0,
                refund_ids: HashSet::new(),
                refunds: Vec::new(),
            };
            trades.insert(out_trade_no, trade.clone());
            Ok(trade)
        })();
        let fields = match result {
            Ok(trade) => [
                ("result_code", "SUCCESS".to_owned()),
                ("out_trade_no", trade.out_trade_no.clone()),
                ("voucher_type", "qrcode".to_owned()),
                ("qr_code", trade.qr_code.clone().unwrap_or_default()),
            ]
            .to_vec(),
            Err(code) => business_failure(code),
        };
        self.in_store_xml(params, sign_type, fields)
    }

    /// `alipay.acquire.overseas.query` by `partner_trans_id`.
    fn in_store_query(&self, params: &Params) -> String {
        let sign_type = match self.authenticate(params) {
            Ok(t) => t,
            Err(e) => return error_xml(e.0),
        };
        if let Some(id) = params.get("partner_trans_id") {
            spot::confirm_password(self, id);
        }
        let found = params
            .get("partner_trans_id")
            .and_then(|id| lock(&self.inner.trades).get(id).cloned());
        let fields = match found {
            None => business_failure("TRADE_NOT_EXIST"),
            Some(trade) => {
                let mut fields = vec![
                    ("result_code", "SUCCESS".to_owned()),
                    ("partner_trans_id", trade.out_trade_no.clone()),
                    ("alipay_trans_id", trade.trade_no.clone()),
                    ("alipay_trans_status", trade.status.clone()),
                    ("trans_amount", trade.total_fee.clone()),
                    ("currency", trade.currency.clone()),
                ];
                if let Some(paid) = trade.paid_at {
                    fields.push(("alipay_pay_time", paid));
                    fields.push(("alipay_buyer_login_id", "sim***@alipay.test".into()));
                }
                fields
            }
        };
        self.in_store_xml(params, sign_type, fields)
    }

    /// `alipay.acquire.refund.query`: a refund this simulator made (online or in store) is
    /// `SUCCESS`; one it never received, `NOT_FOUND`.
    fn refund_query(&self, params: &Params) -> String {
        let sign_type = match self.authenticate(params) {
            Ok(t) => t,
            Err(e) => return error_xml(e.0),
        };
        let trade = params
            .get("out_trade_no")
            .and_then(|id| lock(&self.inner.trades).get(id).cloned());
        let return_no = params.get("out_return_no").cloned().unwrap_or_default();
        let fields = match trade {
            None => vec![("response_code", "TRADE_NOT_EXIST".to_owned())],
            Some(trade) if trade.refund_ids.contains(&return_no) => vec![
                ("response_code", "SUCCESS".to_owned()),
                ("refund_result_code", "SUCCESS".to_owned()),
                ("out_trade_no", trade.out_trade_no.clone()),
                ("out_return_no", return_no),
                ("trade_no", trade.trade_no.clone()),
            ],
            Some(_) => vec![("response_code", "NOT_FOUND".to_owned())],
        };
        self.in_store_xml(params, sign_type, fields)
    }

    /// `alipay.acquire.overseas.spot.refund`, decided at once. The same refund id with the
    /// same amount again is answered as the first time.
    fn in_store_refund(&self, params: &Params) -> String {
        let sign_type = match self.authenticate(params) {
            Ok(t) => t,
            Err(e) => return error_xml(e.0),
        };
        let result = (|| {
            let get = |name: &str| {
                params
                    .get(name)
                    .filter(|v| !v.is_empty())
                    .cloned()
                    .ok_or("ILLEGAL_ARGUMENT")
            };
            let (trans_id, refund_id, amount, currency) = (
                get("partner_trans_id")?,
                get("partner_refund_id")?,
                get("refund_amount")?,
                get("currency")?,
            );
            let mut trades = lock(&self.inner.trades);
            let trade = trades.get_mut(&trans_id).ok_or("TRADE_NOT_EXIST")?;
            if trade.status != "TRADE_SUCCESS" {
                return Err("TRADE_STATUS_ERROR");
            }
            if currency != trade.currency {
                return Err("CURRENCY_NOT_SAME");
            }
            let paid = trade.money().ok_or("SYSTEM_ERROR")?;
            let wanted = Money::parse_major(&amount, paid.currency).ok_or("ILLEGAL_ARGUMENT")?;
            if trade.refund_ids.contains(&refund_id) {
                return Ok((
                    trade.trade_no.clone(),
                    trans_id,
                    refund_id,
                    amount,
                    currency,
                ));
            }
            if trade.refunded_minor + wanted.amount.minor() > paid.amount.minor() {
                return Err("REFUND_AMT_RESTRICTION");
            }
            trade.refunded_minor += wanted.amount.minor();
            trade.refund_ids.insert(refund_id.clone());
            trade
                .refunds
                .push((refund_id.clone(), wanted.amount.minor(), now()));
            trade.refunded = Money::new(
                ottgate_core::Amount::from_minor(trade.refunded_minor)
                    .map_err(|_| "SYSTEM_ERROR")?,
                paid.currency,
            )
            .major_plain();
            Ok((
                trade.trade_no.clone(),
                trans_id,
                refund_id,
                amount,
                currency,
            ))
        })();
        let fields = match result {
            Ok((trade_no, trans_id, refund_id, amount, currency)) => vec![
                ("result_code", "SUCCESS".to_owned()),
                ("alipay_trans_id", trade_no),
                ("partner_trans_id", trans_id),
                ("partner_refund_id", refund_id),
                ("refund_amount", amount),
                ("currency", currency),
            ],
            Err(code) => business_failure(code),
        };
        self.in_store_xml(params, sign_type, fields)
    }

    /// An in-store service's answer: the business fields in `<response><alipay>`.
    fn in_store_xml(
        &self,
        request: &Params,
        sign_type: SignType,
        fields: Vec<(&'static str, String)>,
    ) -> String {
        let fields: Params = fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        self.signed_answer(request, sign_type, "alipay", &fields)
    }

    /// The in-store trade whose QR code is `code` (what scanning it finds).
    fn by_qr_code(&self, code: &str) -> Option<Trade> {
        let wanted = self.config().base_url.join(&format!("qr/{code}")).ok()?;
        lock(&self.inner.trades)
            .values()
            .find(|t| t.qr_code.as_deref() == Some(wanted.as_str()))
            .cloned()
    }

    fn notify_verify(&self, params: &Params) -> &'static str {
        if params.get("partner").map(String::as_str) != Some(self.config().partner.as_str()) {
            return "false";
        }
        let ids = lock(&self.inner.notify_ids);
        // Alipay documents about a minute; the simulator allows a quarter of an hour, unscaled,
        // so slow tests do not trip on it.
        let valid = params
            .get("notify_id")
            .and_then(|id| ids.get(id))
            .is_some_and(|issued| issued.plus(NOTIFY_ID_VALIDITY) > now());
        if valid { "true" } else { "false" }
    }
}

/// A trade number as Alipay writes them: the Beijing date, `22001`, fifteen digits.
/// `it_b_pay`'s time to pay (`30m`, `2h`, `1d`; 1m to 15d), in seconds.
fn it_b_pay_secs(value: &str) -> Option<u64> {
    let (number, unit) = value.split_at(value.len().checked_sub(1)?);
    let n: u64 = number.parse().ok().filter(|n| *n >= 1)?;
    let secs = n * match unit {
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    (secs <= 15 * 86_400).then_some(secs)
}

fn new_trade_no() -> String {
    let date = now().beijing_compact();
    format!("{}22001{}", date.get(..8).unwrap_or("20260101"), digits(15))
}

fn bump(total_fee: &str) -> Option<String> {
    let m = Money::parse_major(total_fee, Currency::Cad)?;
    Some(
        Money::new(
            ottgate_core::Amount::from_minor(m.amount.minor() + 100).ok()?,
            Currency::Cad,
        )
        .major_plain(),
    )
}

/// A refused in-store request: `result_code=FAIL` and Alipay's code.
fn business_failure(code: &'static str) -> Vec<(&'static str, String)> {
    vec![
        ("result_code", "FAIL".to_owned()),
        ("detail_error_code", code.to_owned()),
        ("detail_error_des", code.to_lowercase().replace('_', " ")),
    ]
}

/// `it_b_pay` / `timeout_rule`: `5m`, `2h`, `1d` and the like (1 minute to 15 days).
fn timeout_rule(rule: &str) -> Option<Duration> {
    let unit = match rule.chars().last()? {
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    let count = rule.get(..rule.len() - 1)?.parse::<u64>().ok()?;
    let secs = count.checked_mul(unit)?;
    (60..=15 * 86_400)
        .contains(&secs)
        .then(|| Duration::from_secs(secs))
}

fn error_xml(code: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><alipay><is_success>F</is_success><error>{}</error></alipay>",
        escape(code)
    )
}

impl AlipaySimulator {
    /// `forex_compare_file`: the transaction file of `start_date`..=`end_date` (Beijing
    /// days, at most 10), built from what the simulator processed — each trade paid and
    /// each refund carried out in the range — with the armed statement faults. The current
    /// day is served at once (sandbox).
    fn compare_file(&self, params: &Params) -> Response {
        use super::compare::{FileLine, NOT_READY, render};
        use crate::simkit::FaultKind;
        let text = |body: String| {
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
        };
        if let Err(e) = self.authenticate(params) {
            return text(format!(
                "<alipay><is_success>F</is_success><error>{}</error></alipay>",
                e.0
            ));
        }
        let day = |name: &str| {
            params
                .get(name)
                .filter(|d| d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|d| ottgate_core::recon::WalletDay::parse(d))
        };
        let (Some(start), Some(end)) = (day("start_date"), day("end_date")) else {
            return text("Date format incorrect YYYYMMDD".into());
        };
        if end < start {
            return text("Finish date ahead of begin date".into());
        }
        if end.days_since(start) > 10 {
            return text("Over 10 days to Date period".into());
        }
        let faults = &self.inner.statement_faults;
        if faults.take(FaultKind::StatementNotReady) {
            return text(NOT_READY.into());
        }
        let in_range = |at: Timestamp| {
            let d = ottgate_core::recon::WalletDay::of(at);
            start <= d && d <= end
        };
        let fee = |minor: u64| (minor * 18 + 500) / 1000;
        let mut lines = Vec::new();
        for t in lock(&self.inner.trades).values() {
            let Some(paid) = t.money() else { continue };
            let paid_at = t.paid_at.as_deref().and_then(Timestamp::parse_beijing);
            if let Some(at) = paid_at.filter(|at| in_range(*at)) {
                lines.push(FileLine {
                    partner_transaction_id: t.out_trade_no.clone(),
                    amount: paid.amount.minor(),
                    currency: paid.currency,
                    transaction_time: at.beijing_compact(),
                    settlement_time: String::new(),
                    refund: false,
                    service_charge: fee(paid.amount.minor()),
                    status: "P".into(),
                    remarks: String::new(),
                });
            }
            for (id, amount, at) in t.refunds.iter().filter(|(_, _, at)| in_range(*at)) {
                lines.push(FileLine {
                    partner_transaction_id: id.clone(),
                    amount: *amount,
                    currency: paid.currency,
                    transaction_time: at.beijing_compact(),
                    settlement_time: String::new(),
                    refund: true,
                    service_charge: 0,
                    status: "P".into(),
                    remarks: t.out_trade_no.clone(),
                });
            }
        }
        lines.retain(|l| !faults.has(FaultKind::OmitFromStatement, &l.partner_transaction_id));
        for l in &mut lines {
            if faults.has(FaultKind::StatementAmount, &l.partner_transaction_id) {
                l.amount += 1;
            }
            if faults.has(FaultKind::StatementCurrency, &l.partner_transaction_id) {
                l.currency = if l.currency == Currency::Usd {
                    Currency::Cad
                } else {
                    Currency::Usd
                };
            }
        }
        let at = now();
        if in_range(at) {
            for id in faults.unknown_trades() {
                lines.push(FileLine {
                    partner_transaction_id: id,
                    amount: 100,
                    currency: Currency::Cad,
                    transaction_time: at.beijing_compact(),
                    settlement_time: String::new(),
                    refund: false,
                    service_charge: 2,
                    status: "P".into(),
                    remarks: String::new(),
                });
            }
        }
        lines.sort_by(|a, b| {
            (&a.transaction_time, &a.partner_transaction_id)
                .cmp(&(&b.transaction_time, &b.partner_transaction_id))
        });
        let mut body = render(&lines);
        if faults.take(FaultKind::StatementCut) {
            crate::simkit::cut_half_way(&mut body);
        }
        text(body)
    }
}

fn xml_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], body).into_response()
}

fn error_page(lang: SimLang, code: &str) -> Response {
    let content = format!(
        "<h1 id=\"alipay-error\" style=\"font-size:20px\">{}</h1><p>{}</p>",
        escape(code),
        lang.tr("The payment request was refused.")
    );
    (
        StatusCode::BAD_REQUEST,
        crate::simkit::page(lang, "Alipay", "#f4f6f9", None, &content),
    )
        .into_response()
}

async fn gateway_get(
    State(sim): State<AlipaySimulator>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = parse_form(query.unwrap_or_default().as_bytes());
    let answer = dispatch(&sim, SimLang::of(&headers), &params);
    held_if_slow(&sim, &params).await;
    answer
}

/// A refund done, its answer held while a `slow_answer` fault for its trade says so.
async fn held_if_slow(sim: &AlipaySimulator, params: &Params) {
    let trade = match params.get("service").map(String::as_str) {
        Some("forex_refund") => params.get("out_trade_no"),
        Some("alipay.acquire.overseas.spot.pay") => params.get("partner_trans_id"),
        _ => None,
    };
    if let Some(trade) = trade
        && let Some(delay) = sim.inner.notifier.take_slow_answer(trade)
    {
        tokio::time::sleep(delay).await;
    }
}

/// Alipay takes the same parameters by form POST (an auto-submitted form).
async fn gateway_post(
    State(sim): State<AlipaySimulator>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let mut params = parse_form(query.unwrap_or_default().as_bytes());
    params.extend(parse_form(&body));
    let answer = dispatch(&sim, SimLang::of(&headers), &params);
    held_if_slow(&sim, &params).await;
    answer
}

fn dispatch(sim: &AlipaySimulator, lang: SimLang, params: &Params) -> Response {
    match params.get("service").map(String::as_str) {
        Some("create_forex_trade" | "create_forex_trade_wap") => match sim.open(params) {
            Ok(trade) => cashier_page(sim, lang, &trade),
            Err(e) => error_page(lang, e.0),
        },
        Some("single_trade_query") => xml_response(sim.query(params)),
        Some("alipay.acquire.precreate") => xml_response(sim.precreate(params)),
        Some("alipay.acquire.overseas.query") => xml_response(sim.in_store_query(params)),
        Some("alipay.acquire.overseas.spot.pay") => xml_response(sim.spot_pay(params)),
        Some("alipay.acquire.cancel") => xml_response(sim.cancel(params)),
        Some("alipay.acquire.overseas.spot.refund") => xml_response(sim.in_store_refund(params)),
        Some("forex_refund") => xml_response(sim.refund(params)),
        Some("alipay.acquire.refund.query") => xml_response(sim.refund_query(params)),
        Some("notify_verify") => sim.notify_verify(params).into_response(),
        Some("forex_compare_file") => sim.compare_file(params),
        _ => error_page(lang, "ILLEGAL_SERVICE"),
    }
}

fn cashier_page(sim: &AlipaySimulator, lang: SimLang, trade: &Trade) -> Response {
    let action = sim
        .config()
        .base_url
        .join(&format!("cashier/{}", trade.out_trade_no))
        .map(|u| u.to_string())
        .unwrap_or_default();
    let waiting = trade.status == "WAIT_BUYER_PAY";
    let buttons = if waiting {
        crate::simkit::cashier_form(lang, "alipay", &action, "#1677ff", "")
    } else {
        format!("<p id=\"alipay-status\">{}</p>", escape(&trade.status))
    };
    let content = format!(
        "<h1 id=\"alipay-cashier\" style=\"color:#1677ff;font-size:20px\">{}</h1>\
         <p id=\"alipay-subject\">{}</p><p style=\"font-size:32px;font-weight:700\" id=\"alipay-amount\">{} {}</p>\
         <p style=\"color:#666;font-size:13px\">{} · {} {}</p>{}",
        lang.tr("Alipay cashier"),
        escape(&trade.subject),
        escape(&trade.total_fee),
        escape(&trade.currency),
        if trade.qr_code.is_some() {
            lang.tr("In store (QR code)")
        } else if trade.service == "mobile.securitypay.pay" {
            lang.tr("App")
        } else if trade.service.ends_with("_wap") {
            lang.tr("Mobile (WAP)")
        } else {
            lang.tr("PC")
        },
        lang.tr("Order"),
        escape(&trade.out_trade_no),
        buttons
    );
    // The gateway tells Alipay the merchant's name as the trade's subject.
    crate::simkit::page(lang, "Alipay", "#f4f6f9", Some(&trade.subject), &content).into_response()
}

async fn cashier(
    State(sim): State<AlipaySimulator>,
    headers: HeaderMap,
    Path(out_trade_no): Path<String>,
    body: Bytes,
) -> Response {
    let lang = SimLang::of(&headers);
    let page = |id: &str, text: &'static str| {
        let content = format!("<p id=\"{id}\">{}</p>", lang.tr(text));
        crate::simkit::page(lang, "Alipay", "#f4f6f9", None, &content).into_response()
    };
    let form = parse_form(&body);
    let action = match form.get("action").map(String::as_str).unwrap_or_default() {
        "pay" => BuyerAction::Pay,
        "fail" => BuyerAction::Fail,
        // Cancelling leaves the trade as it is: the buyer just goes back to the merchant.
        "cancel" => {
            let back = lock(&sim.inner.trades)
                .get(&out_trade_no)
                .map(|t| t.return_url.clone());
            return match back {
                Some(Some(url)) => Redirect::to(&url).into_response(),
                // A scanned QR code: the buyer just leaves the app's page.
                Some(None) => page("alipay-cancelled", "Cancelled."),
                None => error_page(lang, "TRADE_NOT_EXIST"),
            };
        }
        _ => return error_page(lang, "ILLEGAL_ARGUMENT"),
    };
    match sim.settle(&out_trade_no, action) {
        Ok((outgoing, back)) => {
            if let Some(o) = outgoing {
                sim.send(o);
            }
            match back {
                Some(url) => Redirect::to(url.as_str()).into_response(),
                None => page(
                    "alipay-done",
                    "Done. You can return to the merchant's page.",
                ),
            }
        }
        Err(e) => error_page(lang, e.0),
    }
}

/// What Alipay's app shows when a merchant's app hands its SDK an app payment: the body
/// is the `paySign` string, a JSON object of the signed `mobile.securitypay.pay`
/// parameters.
async fn app_pay(State(sim): State<AlipaySimulator>, headers: HeaderMap, body: Bytes) -> Response {
    let lang = SimLang::of(&headers);
    let Some(params) = app_params(&body) else {
        return error_page(lang, "ILLEGAL_ARGUMENT");
    };
    match sim.open(&params) {
        Ok(trade) => cashier_page(&sim, lang, &trade),
        Err(e) => error_page(lang, e.0),
    }
}

/// The parameters of a `paySign` string (a JSON object of strings).
fn app_params(body: &[u8]) -> Option<Params> {
    let map: std::collections::BTreeMap<String, String> = serde_json::from_slice(body).ok()?;
    Some(map.into_iter().collect())
}

/// What the buyer's Alipay app shows after scanning an in-store trade's QR code.
async fn scanned(
    State(sim): State<AlipaySimulator>,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Response {
    let lang = SimLang::of(&headers);
    match sim.by_qr_code(&code) {
        Some(trade) => cashier_page(&sim, lang, &trade),
        None => error_page(lang, "INVALID_QR_CODE"),
    }
}

async fn control(State(sim): State<AlipaySimulator>, Json(fault): Json<Fault>) -> StatusCode {
    tracing::info!(?fault, "simulated Alipay: fault injected");
    if !sim.inner.statement_faults.arm(&fault) {
        sim.add_fault(fault);
    }
    StatusCode::NO_CONTENT
}

async fn trade_state(
    State(sim): State<AlipaySimulator>,
    Path(out_trade_no): Path<String>,
) -> Response {
    match lock(&sim.inner.trades).get(&out_trade_no) {
        Some(trade) => Json(trade.clone()).into_response(),
        None => (StatusCode::NOT_FOUND, "TRADE_NOT_EXIST").into_response(),
    }
}

impl SimulatedWallet for AlipaySimulator {
    fn name(&self) -> &'static str {
        "alipay"
    }

    fn router(&self) -> Router {
        AlipaySimulator::router(self)
    }

    fn knows(&self, out_trade_no: &str) -> bool {
        lock(&self.inner.trades).contains_key(out_trade_no)
    }

    /// A browser payment's signed request is opened first, as the buyer's browser would; a
    /// QR trade was created by our precreate.
    fn complete_as_buyer(
        &self,
        out_trade_no: &str,
        start: Option<&crate::PaymentStart>,
        action: BuyerAction,
    ) -> Result<String, SimulatorError> {
        match start.map(|s| &s.action) {
            Some(crate::StartAction::Redirect(url)) => {
                self.open(&parse_form(url.query().unwrap_or_default().as_bytes()))?;
            }
            Some(crate::StartAction::AppSdk { params }) => {
                self.open(&params.iter().cloned().collect())?;
            }
            _ => {}
        }
        let (notification, _) = self.settle(out_trade_no, action)?;
        let notification = notification
            .ok_or_else(|| SimulatorError("the payment request had no notify_url".into()))?;
        Ok(self.finish(&notification, None))
    }
}
