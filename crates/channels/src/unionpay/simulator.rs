//! A simulated UnionPay online gateway (5.1.0), for sandbox mode and tests.
//!
//! It verifies our signed forms as UnionPay would (refusing with its response codes, e.g.
//! `11` for a bad signature), shows a cashier for `frontTransReq.do`, sends the browser
//! back to `frontUrl` with a signed auto-submitted form, POSTs signed results to `backUrl`
//! until answered with HTTP 200, and answers `queryTrans.do` and refunds on
//! `backTransReq.do` (whose results are notified too). Faults are injected through
//! `/control`.
//!
//! UnionPay's notification retry schedule and some response codes are not in our sources
//! (docs/unionpay.md): the gaps below and the codes `12`, `35`, `36` are this
//! simulator's assumptions, marked as such in the README.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ottgate_core::{Amount, Money, Timestamp};
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use url::Url;

use super::sign::{self, Fields};
use super::{currency_from_code, parse_form, write_answer};
pub use crate::simkit::BuyerAction;
use crate::simkit::{
    self, Delivery, Fault, FaultKind, Notifier, SimLang, SimulatedWallet, SimulatorError, corrupt,
    digits, lock, now,
};
use crate::xml::escape;

mod barcode;

/// Re-sends of an unanswered notification: after 1, 2, 4, 8 and 16 minutes (assumed).
const RETRY_GAPS: [Duration; 5] = [
    Duration::from_secs(60),
    Duration::from_secs(120),
    Duration::from_secs(240),
    Duration::from_secs(480),
    Duration::from_secs(960),
];

#[derive(Clone)]
pub struct UnionPaySimConfig {
    /// The one merchant this simulated UnionPay knows.
    pub mer_id: String,
    /// Verifies the merchant's requests.
    pub merchant_public: RsaPublicKey,
    /// Signs UnionPay's answers, returns and notifications.
    pub wallet_private: RsaPrivateKey,
    pub wallet_cert_id: String,
    pub time_scale: f64,
    /// Where the simulator is reachable, ending in `/`.
    pub base_url: Url,
    /// Where notifications may go (never simply wherever a request says).
    pub notify_targets: crate::simkit::NotifyTargets,
}

impl std::fmt::Debug for UnionPaySimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnionPaySimConfig")
            .field("mer_id", &self.mer_id)
            .field("base_url", &self.base_url.as_str())
            .finish_non_exhaustive()
    }
}

/// A payment, as the simulated UnionPay holds it.
#[derive(Debug, Clone, Serialize)]
pub struct Transaction {
    pub order_id: String,
    /// The merchant number the purchase was made under: UnionPay's cashier names the
    /// merchant it has on file for it (the request carries no name).
    pub mer_id: String,
    pub txn_time: String,
    pub txn_amt: u64,
    pub currency_code: String,
    pub channel_type: String,
    /// `000201` for a browser purchase, `000000` for a QR code.
    pub biz_type: String,
    /// What the QR code of a QR purchase holds.
    pub qr_code: Option<String>,
    /// The transaction number of an app purchase, which the merchant's app hands
    /// UnionPay's app SDK.
    pub tn: Option<String>,
    pub front_url: String,
    pub back_url: String,
    /// `None` until the buyer pays or fails; then UnionPay's result code.
    pub orig_resp_code: Option<String>,
    pub query_id: Option<String>,
    pub refunded: u64,
    /// A barcode consume's buyer code.
    pub qr_no: Option<String>,
    /// A barcode consume voided (undone; refunded if it had been paid).
    pub voided: bool,
    /// A barcode consume waiting for the buyer, who confirms before the next query.
    #[serde(skip)]
    confirms: bool,
    #[serde(skip)]
    pay_timeout: Option<Timestamp>,
    #[serde(skip)]
    refunds: HashMap<String, u64>,
    /// When it succeeded (paid, or a refund carried out): its day's reconciliation file.
    #[serde(skip)]
    done_at: Option<Timestamp>,
    /// A refund's purchase (its `queryId`).
    #[serde(skip)]
    refund_of: Option<String>,
}

impl Transaction {
    /// Whether `other` asks for this same purchase again (time, amount, currency).
    fn is_same_purchase(&self, other: &Transaction) -> bool {
        self.txn_time == other.txn_time
            && self.txn_amt == other.txn_amt
            && self.currency_code == other.currency_code
    }
}

/// A UnionPay response code and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} {1}")]
pub struct UnionPayError(pub &'static str, pub &'static str);

const FORMAT: UnionPayError = UnionPayError("10", "message format error");
const BAD_SIGNATURE: UnionPayError = UnionPayError("11", "signature verification failed");
const DUPLICATE: UnionPayError = UnionPayError("12", "duplicate transaction");
const UNKNOWN_MERCHANT: UnionPayError = UnionPayError("31", "merchant status incorrect");
const NOT_FOUND: UnionPayError = UnionPayError("34", "no such transaction");
const BAD_STATE: UnionPayError = UnionPayError("35", "original transaction state incorrect");
const TOO_MUCH: UnionPayError = UnionPayError("36", "amount exceeds the original");

/// A notification ready to be signed for each delivery.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub url: Url,
    pub fields: Fields,
    pub about: String,
}

#[derive(Clone)]
pub struct UnionPaySimulator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for UnionPaySimulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnionPaySimulator")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

struct Inner {
    config: UnionPaySimConfig,
    transactions: Mutex<HashMap<String, Transaction>>,
    notifier: Arc<Notifier>,
    used_codes: crate::simkit::UsedCodes,
    statement_faults: crate::simkit::StatementFaults,
}

/// `orderId`: 8–32 letters and digits.
fn valid_order_id(id: &str) -> bool {
    (8..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl UnionPaySimulator {
    pub fn new(config: UnionPaySimConfig) -> Self {
        // UnionPay needs HTTP 200, whatever the body.
        let notifier = Notifier::new(
            "unionpay",
            &RETRY_GAPS,
            config.time_scale,
            |status, _| status == 200,
            config.notify_targets.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                config,
                transactions: Mutex::new(HashMap::new()),
                notifier,
                used_codes: crate::simkit::UsedCodes::default(),
                statement_faults: Default::default(),
            }),
        }
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/gateway/api/frontTransReq.do", post(front))
            .route("/gateway/api/queryTrans.do", post(query))
            .route("/gateway/api/backTransReq.do", post(back))
            .route("/gateway/api/appTransReq.do", post(app_purchase))
            .route("/app/{tn}", get(app_opened))
            .route("/cashier/{order_id}", post(cashier))
            .route("/qr/{code}", get(scanned))
            .route("/files", post(files))
            .route("/control", post(control))
            .route("/orders/{order_id}", get(order_state))
            .with_state(self.clone())
    }

    fn config(&self) -> &UnionPaySimConfig {
        &self.inner.config
    }

    pub fn add_fault(&self, fault: Fault) {
        self.inner.notifier.add_fault(fault);
    }

    /// Checks a request: version, signature method, merchant, signature.
    fn authenticate(&self, f: &Fields) -> Result<(), UnionPayError> {
        if f.get("version").map(String::as_str) != Some("5.1.0")
            || f.get("signMethod").map(String::as_str) != Some("01")
        {
            return Err(FORMAT);
        }
        if f.get("merId") != Some(&self.config().mer_id) {
            return Err(UNKNOWN_MERCHANT);
        }
        if !sign::verify(f, &self.config().merchant_public) {
            return Err(BAD_SIGNATURE);
        }
        Ok(())
    }

    /// Signs fields as UnionPay, with its certificate id.
    fn signed(&self, mut f: Fields) -> Fields {
        f.insert("version".into(), "5.1.0".into());
        f.insert("encoding".into(), "UTF-8".into());
        f.insert("signMethod".into(), "01".into());
        f.insert("certId".into(), self.config().wallet_cert_id.clone());
        let signature = sign::sign(&f, &self.config().wallet_private);
        f.insert("signature".into(), signature);
        f
    }

    /// A signed synchronous answer echoing the request's identifying fields.
    fn answer(&self, request: &Fields, result: Result<Fields, UnionPayError>) -> String {
        let mut f = Fields::new();
        for k in [
            "merId",
            "orderId",
            "txnTime",
            "txnType",
            "txnSubType",
            "bizType",
            "accessType",
        ] {
            if let Some(v) = request.get(k) {
                f.insert(k.into(), v.clone());
            }
        }
        match result {
            Ok(extra) => {
                f.insert("respCode".into(), "00".into());
                f.insert("respMsg".into(), "success".into());
                f.extend(extra);
            }
            Err(UnionPayError(code, message)) => {
                f.insert("respCode".into(), code.into());
                f.insert("respMsg".into(), message.into());
            }
        }
        write_answer(&self.signed(f))
    }

    /// `frontTransReq.do`: the buyer's browser brings our signed purchase.
    pub fn open(&self, f: &Fields) -> Result<Transaction, UnionPayError> {
        self.purchase(f, false)
    }

    /// `appTransReq.do`: our server asks for an app purchase; answered with its `tn` (the
    /// same request again finds the same one).
    pub fn apply_app(&self, f: &Fields) -> Result<Fields, UnionPayError> {
        let txn = self.purchase(f, true)?;
        let mut extra = Fields::new();
        extra.insert("tn".into(), txn.tn.unwrap_or_default());
        Ok(extra)
    }

    /// The purchase `f` asks for, checked as UnionPay checks every purchase — signature,
    /// order id, time, amount, currency, `backUrl`, `payTimeout` — and not yet held.
    fn asked_purchase(&self, f: &Fields) -> Result<Transaction, UnionPayError> {
        self.authenticate(f)?;
        let get = |name: &str| f.get(name).filter(|v| !v.is_empty()).cloned().ok_or(FORMAT);
        let order_id = get("orderId")?;
        let txn_time = get("txnTime")?;
        let txn_amt = get("txnAmt")?
            .parse::<u64>()
            .ok()
            .filter(|a| *a >= 1)
            .ok_or(FORMAT)?;
        let currency_code = get("currencyCode")?;
        if !valid_order_id(&order_id)
            || Timestamp::parse_beijing(&txn_time).is_none()
            || currency_from_code(&currency_code).is_none()
        {
            return Err(FORMAT);
        }
        let back_url = get("backUrl")?;
        Url::parse(&back_url).map_err(|_| FORMAT)?;
        let pay_timeout = match f.get("payTimeout").filter(|v| !v.is_empty()) {
            Some(t) => Some(Timestamp::parse_beijing(t).ok_or(FORMAT)?),
            None => None,
        };
        Ok(Transaction {
            order_id,
            mer_id: f.get("merId").cloned().unwrap_or_default(),
            txn_time,
            txn_amt,
            currency_code,
            channel_type: f.get("channelType").cloned().unwrap_or_default(),
            biz_type: get("bizType")?,
            qr_code: None,
            tn: None,
            front_url: String::new(),
            back_url,
            orig_resp_code: None,
            query_id: None,
            refunded: 0,
            qr_no: None,
            voided: false,
            confirms: false,
            pay_timeout,
            refunds: HashMap::new(),
            done_at: None,
            refund_of: None,
        })
    }

    /// A purchase paid in the buyer's browser (`frontUrl` to come back to) or in UnionPay's
    /// app (`app`: no `frontUrl`, a `tn` for the app SDK). The same purchase asked again is
    /// the one held.
    fn purchase(&self, f: &Fields, app: bool) -> Result<Transaction, UnionPayError> {
        let mut txn = self.asked_purchase(f)?;
        let get = |name: &str| f.get(name).filter(|v| !v.is_empty()).cloned().ok_or(FORMAT);
        if (get("txnType")?, get("txnSubType")?) != ("01".into(), "01".into())
            || txn.biz_type != super::ONLINE_BIZ_TYPE
            || !matches!(txn.channel_type.as_str(), "07" | "08")
            || (app && txn.channel_type != "08")
        {
            return Err(FORMAT);
        }
        if app {
            txn.tn = Some(digits(21));
        } else {
            txn.front_url = get("frontUrl")?;
        }
        let mut transactions = lock(&self.inner.transactions);
        if let Some(existing) = transactions.get(&txn.order_id) {
            return if existing.tn.is_some() == app && existing.is_same_purchase(&txn) {
                Ok(existing.clone())
            } else {
                Err(DUPLICATE)
            };
        }
        transactions.insert(txn.order_id.clone(), txn.clone());
        Ok(txn)
    }

    /// `backTransReq.do` with `txnType=01`, `txnSubType=07`: a QR code for a purchase the
    /// buyer scans (the same request again finds the same code).
    pub fn apply_qr_code(&self, f: &Fields) -> Result<Fields, UnionPayError> {
        let mut txn = self.asked_purchase(f)?;
        if txn.biz_type != super::QR_BIZ_TYPE {
            return Err(FORMAT);
        }
        txn.channel_type = "08".into();
        let mut transactions = lock(&self.inner.transactions);
        let txn = match transactions.get(&txn.order_id) {
            Some(existing) if existing.qr_code.is_some() && existing.is_same_purchase(&txn) => {
                existing.clone()
            }
            Some(_) => return Err(DUPLICATE),
            None => {
                let qr_code = self
                    .config()
                    .base_url
                    .join(&format!("qr/{}", digits(20)))
                    .map_err(|_| FORMAT)?;
                txn.qr_code = Some(qr_code.to_string());
                transactions.insert(txn.order_id.clone(), txn.clone());
                txn
            }
        };
        let mut extra = Fields::new();
        extra.insert("qrCode".into(), txn.qr_code.unwrap_or_default());
        Ok(extra)
    }

    /// The QR purchase whose code is `code` (what scanning it finds).
    fn by_qr_code(&self, code: &str) -> Option<Transaction> {
        let wanted = self.config().base_url.join(&format!("qr/{code}")).ok()?;
        lock(&self.inner.transactions)
            .values()
            .find(|t| t.qr_code.as_deref() == Some(wanted.as_str()))
            .cloned()
    }

    /// The buyer pays or fails at the cashier. Returns the notification to send and the
    /// signed fields for the browser's way back.
    pub fn settle(
        &self,
        order_id: &str,
        action: BuyerAction,
    ) -> Result<(Outgoing, Fields), UnionPayError> {
        let mut transactions = lock(&self.inner.transactions);
        let txn = transactions.get_mut(order_id).ok_or(NOT_FOUND)?;
        if txn.orig_resp_code.is_some() {
            return Err(BAD_STATE);
        }
        let expired = txn.pay_timeout.is_some_and(|t| now() >= t);
        let (code, message) = match (action, expired) {
            (BuyerAction::Pay, false) => ("00", "success"),
            (BuyerAction::Pay, true) => ("01", "transaction timed out"),
            (BuyerAction::Fail, _) => ("01", "payment declined"),
        };
        let query_id = format!("{}{}", now().beijing_compact(), digits(7));
        txn.orig_resp_code = Some(code.into());
        txn.query_id = Some(query_id.clone());
        if code == "00" {
            txn.done_at = Some(now());
        }
        let txn = txn.clone();
        drop(transactions);
        let mut f = Fields::new();
        for (k, v) in [
            ("merId", self.config().mer_id.clone()),
            ("orderId", txn.order_id.clone()),
            ("txnTime", txn.txn_time.clone()),
            ("txnType", "01".into()),
            (
                "txnSubType",
                if txn.qr_code.is_some() { "07" } else { "01" }.into(),
            ),
            ("bizType", txn.biz_type.clone()),
            ("accessType", "0".into()),
            ("txnAmt", txn.txn_amt.to_string()),
            ("currencyCode", txn.currency_code.clone()),
            ("queryId", query_id),
            ("traceNo", digits(6)),
            (
                "traceTime",
                now().beijing_compact().get(4..).unwrap_or("").into(),
            ),
            (
                "settleDate",
                now().beijing_compact().get(4..8).unwrap_or("").into(),
            ),
            ("respCode", code.into()),
            ("respMsg", message.into()),
        ] {
            f.insert(k.into(), v);
        }
        let url = Url::parse(&txn.back_url).map_err(|_| FORMAT)?;
        let notification = Outgoing {
            url,
            fields: f.clone(),
            about: txn.order_id.clone(),
        };
        Ok((notification, self.signed(f)))
    }

    fn query(&self, f: &Fields) -> Result<Fields, UnionPayError> {
        self.authenticate(f)?;
        let order_id = f.get("orderId").ok_or(FORMAT)?;
        barcode::confirm_password(self, order_id);
        let transactions = lock(&self.inner.transactions);
        let txn = transactions
            .get(order_id)
            .filter(|t| f.get("txnTime") == Some(&t.txn_time))
            .ok_or(NOT_FOUND)?;
        // Not paid or failed yet: UnionPay has no transaction to report — except a barcode
        // consume, accepted and still processing (`05`).
        let code = match (&txn.orig_resp_code, &txn.qr_no) {
            (Some(code), _) => code.clone(),
            (None, Some(_)) => "05".to_owned(),
            (None, None) => return Err(NOT_FOUND),
        };
        let mut extra = Fields::new();
        extra.insert("origRespCode".into(), code);
        extra.insert("origRespMsg".into(), "".into());
        extra.insert("queryId".into(), txn.query_id.clone().unwrap_or_default());
        extra.insert("txnAmt".into(), txn.txn_amt.to_string());
        extra.insert("currencyCode".into(), txn.currency_code.clone());
        Ok(extra)
    }

    /// `backTransReq.do` with `txnType=04`: accepts a refund and schedules its
    /// notification.
    fn refund(&self, f: &Fields) -> Result<Fields, UnionPayError> {
        self.authenticate(f)?;
        let get = |name: &str| f.get(name).filter(|v| !v.is_empty()).cloned().ok_or(FORMAT);
        if get("txnType")? != "04" {
            return Err(FORMAT);
        }
        let refund_id = get("orderId")?;
        let orig = get("origQryId")?;
        let amount = get("txnAmt")?
            .parse::<u64>()
            .ok()
            .filter(|a| *a >= 1)
            .ok_or(FORMAT)?;
        let back_url = Url::parse(&get("backUrl")?).map_err(|_| FORMAT)?;
        if !valid_order_id(&refund_id) {
            return Err(FORMAT);
        }
        let mut transactions = lock(&self.inner.transactions);
        let txn = transactions
            .values_mut()
            .find(|t| t.query_id.as_deref() == Some(orig.as_str()))
            .ok_or(NOT_FOUND)?;
        if let Some(previous) = txn.refunds.get(&refund_id) {
            // The same refund again is a duplicate, answered as such.
            return if *previous == amount {
                Err(DUPLICATE)
            } else {
                Err(FORMAT)
            };
        }
        if txn.orig_resp_code.as_deref() != Some("00") {
            return Err(BAD_STATE);
        }
        if get("currencyCode")? != txn.currency_code {
            return Err(FORMAT);
        }
        if txn.refunded + amount > txn.txn_amt {
            return Err(TOO_MUCH);
        }
        txn.refunded += amount;
        txn.refunds.insert(refund_id.clone(), amount);
        let currency_code = txn.currency_code.clone();
        let mer_id = txn.mer_id.clone();
        let query_id = format!("{}{}", now().beijing_compact(), digits(7));
        // The refund is a transaction of its own, found by queryTrans like any other.
        transactions.insert(
            refund_id.clone(),
            Transaction {
                order_id: refund_id.clone(),
                mer_id,
                txn_time: get("txnTime")?,
                txn_amt: amount,
                currency_code: currency_code.clone(),
                channel_type: "07".into(),
                biz_type: f.get("bizType").cloned().unwrap_or_default(),
                qr_code: None,
                tn: None,
                front_url: String::new(),
                back_url: back_url.to_string(),
                orig_resp_code: Some("00".into()),
                query_id: Some(query_id.clone()),
                refunded: 0,
                qr_no: None,
                voided: false,
                confirms: false,
                pay_timeout: None,
                refunds: HashMap::new(),
                done_at: Some(now()),
                refund_of: Some(orig.clone()),
            },
        );
        let mut result = Fields::new();
        for (k, v) in [
            ("merId", self.config().mer_id.clone()),
            ("orderId", refund_id.clone()),
            ("txnTime", get("txnTime")?),
            ("txnType", "04".into()),
            ("txnSubType", "00".into()),
            ("bizType", get("bizType")?),
            ("accessType", "0".into()),
            ("origQryId", orig),
            ("txnAmt", amount.to_string()),
            ("currencyCode", currency_code),
            ("queryId", query_id.clone()),
            ("respCode", "00".into()),
            ("respMsg", "success".into()),
        ] {
            result.insert(k.into(), v);
        }
        drop(transactions);
        self.send(Outgoing {
            url: back_url,
            fields: result,
            about: refund_id,
        });
        let mut extra = Fields::new();
        extra.insert("queryId".into(), query_id);
        Ok(extra)
    }

    /// Applies a fault to, and signs, a notification: the form body on the wire.
    pub fn finish(&self, n: &Outgoing, fault: Option<FaultKind>) -> String {
        let mut f = n.fields.clone();
        match fault {
            Some(FaultKind::WrongAmount) => {
                let more = f
                    .get("txnAmt")
                    .and_then(|a| a.parse::<u64>().ok())
                    .map_or(100, |a| a + 100);
                f.insert("txnAmt".into(), more.to_string());
            }
            Some(FaultKind::WrongCurrency) => {
                let other = if f.get("currencyCode").map(String::as_str) == Some("124") {
                    "840"
                } else {
                    "124"
                };
                f.insert("currencyCode".into(), other.into());
            }
            _ => {}
        }
        let mut signed = self.signed(f);
        if fault == Some(FaultKind::CorruptSignature)
            && let Some(s) = signed.get_mut("signature")
        {
            *s = corrupt(s);
        }
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(signed.iter())
            .finish()
    }

    pub fn send(&self, n: Outgoing) {
        let delivery = Delivery {
            url: n.url.clone(),
            content_type: "application/x-www-form-urlencoded; charset=UTF-8",
            about: n.about.clone(),
        };
        let sim = self.clone();
        self.inner
            .notifier
            .send(delivery, Arc::new(move |fault| sim.finish(&n, fault)));
    }
}

fn plain(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// A UnionPay page in `lang`, naming the merchant by its number when it is known.
fn page(lang: SimLang, mer_id: Option<&str>, content: &str) -> Response {
    let merchant = mer_id
        .filter(|m| !m.is_empty())
        .map(|m| format!("{} {m}", lang.tr("Merchant number")));
    simkit::page(lang, "UnionPay", "#f3f3f3", merchant.as_deref(), content).into_response()
}

fn error_page(lang: SimLang, e: &UnionPayError) -> Response {
    let content = format!(
        "<h1 id=\"unionpay-error\" style=\"font-size:20px\">{}</h1><p>{}</p>",
        escape(e.0),
        escape(e.1)
    );
    (StatusCode::BAD_REQUEST, page(lang, None, &content)).into_response()
}

fn cashier_page(sim: &UnionPaySimulator, lang: SimLang, txn: &Transaction) -> Response {
    let target = sim
        .config()
        .base_url
        .join(&format!("cashier/{}", txn.order_id))
        .map(|u| u.to_string())
        .unwrap_or_default();
    let amount = currency_from_code(&txn.currency_code)
        .and_then(|c| Some(Money::new(Amount::from_minor(txn.txn_amt).ok()?, c)))
        .map_or_else(
            || txn.txn_amt.to_string(),
            |m| format!("{} {}", m.major_plain(), m.currency.code()),
        );
    let body = match &txn.orig_resp_code {
        None => simkit::cashier_form(lang, "unionpay", &target, "#d7000f", ""),
        Some(code) => format!("<p id=\"unionpay-status\">{}</p>", escape(code)),
    };
    let content = format!(
        "<h1 id=\"unionpay-cashier\" style=\"color:#d7000f;font-size:20px\">{}</h1>\
         <p style=\"font-size:32px;font-weight:700\" id=\"unionpay-amount\">{}</p>\
         <p style=\"color:#666;font-size:13px\">{} · {} {}</p>{body}",
        lang.tr("UnionPay"),
        escape(&amount),
        if txn.qr_code.is_some() {
            lang.tr("QR code")
        } else if txn.tn.is_some() {
            lang.tr("App")
        } else if txn.channel_type == "08" {
            lang.tr("Mobile")
        } else {
            lang.tr("PC")
        },
        lang.tr("Order"),
        escape(&txn.order_id),
    );
    page(lang, Some(&txn.mer_id), &content)
}

/// The page that takes the browser back to `frontUrl` with UnionPay's signed result (an
/// auto-submitted form, with a button for browsers without JavaScript).
fn back_to_merchant(lang: SimLang, front_url: &str, fields: &Fields) -> Response {
    let inputs: String = fields
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(k),
                escape(v)
            )
        })
        .collect();
    let content = format!(
        "<form id=\"unionpay-return\" method=\"post\" action=\"{}\">{inputs}\
         <button id=\"unionpay-back\" type=\"submit\">{}</button></form>\
         <script>document.getElementById(\"unionpay-return\").submit();</script>",
        escape(front_url),
        lang.tr("Return to the merchant"),
    );
    page(lang, fields.get("merId").map(String::as_str), &content)
}

async fn front(State(sim): State<UnionPaySimulator>, headers: HeaderMap, body: Bytes) -> Response {
    let lang = SimLang::of(&headers);
    match sim.open(&parse_form(&body)) {
        Ok(txn) => cashier_page(&sim, lang, &txn),
        Err(e) => error_page(lang, &e),
    }
}

async fn query(State(sim): State<UnionPaySimulator>, body: Bytes) -> Response {
    let f = parse_form(&body);
    plain(sim.answer(&f, sim.query(&f)))
}

/// `backTransReq.do`: a refund (`txnType=04`) or a QR code (`txnType=01`, `txnSubType=07`).
async fn back(State(sim): State<UnionPaySimulator>, body: Bytes) -> Response {
    let f = parse_form(&body);
    let codes = (
        f.get("txnType").map_or("", String::as_str),
        f.get("txnSubType").map_or("", String::as_str),
    );
    let result = match codes {
        ("01", "07") => sim.apply_qr_code(&f),
        ("01", "06") => sim.consume(&f),
        ("31", "00") => sim.void(&f),
        _ => sim.refund(&f),
    };
    // A `slow_answer` fault holds a consume's answer (the consume is made at once).
    if codes == ("01", "06")
        && let Some(order) = f.get("orderId")
        && let Some(delay) = sim.inner.notifier.take_slow_answer(order)
    {
        tokio::time::sleep(delay).await;
    }
    plain(sim.answer(&f, result))
}

async fn app_purchase(State(sim): State<UnionPaySimulator>, body: Bytes) -> Response {
    let f = parse_form(&body);
    plain(sim.answer(&f, sim.apply_app(&f)))
}

/// What UnionPay's app shows when a merchant's app hands its SDK the `tn` of a purchase.
async fn app_opened(
    State(sim): State<UnionPaySimulator>,
    headers: HeaderMap,
    Path(tn): Path<String>,
) -> Response {
    let lang = SimLang::of(&headers);
    let txn = lock(&sim.inner.transactions)
        .values()
        .find(|t| t.tn.as_deref() == Some(tn.as_str()))
        .cloned();
    match txn {
        Some(txn) => cashier_page(&sim, lang, &txn),
        None => error_page(lang, &NOT_FOUND),
    }
}

/// What the buyer's UnionPay app shows after scanning a QR purchase's code.
async fn scanned(
    State(sim): State<UnionPaySimulator>,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Response {
    let lang = SimLang::of(&headers);
    match sim.by_qr_code(&code) {
        Some(txn) => cashier_page(&sim, lang, &txn),
        None => error_page(lang, &NOT_FOUND),
    }
}

async fn cashier(
    State(sim): State<UnionPaySimulator>,
    headers: HeaderMap,
    Path(order_id): Path<String>,
    body: Bytes,
) -> Response {
    let lang = SimLang::of(&headers);
    let form = parse_form(&body);
    let action = match form.get("action").map(String::as_str) {
        Some("pay") => BuyerAction::Pay,
        Some("fail") => BuyerAction::Fail,
        Some("cancel") => {
            // The buyer leaves: back to the merchant's page, with nothing to report.
            let front_url = lock(&sim.inner.transactions)
                .get(&order_id)
                .map(|t| t.front_url.clone());
            return match front_url {
                Some(url) if !url.is_empty() => axum::response::Redirect::to(&url).into_response(),
                // A scanned QR code: the buyer just closes the app's page.
                Some(_) => page(
                    lang,
                    None,
                    &format!("<p id=\"unionpay-cancelled\">{}</p>", lang.tr("Cancelled.")),
                ),
                None => error_page(lang, &NOT_FOUND),
            };
        }
        _ => return error_page(lang, &FORMAT),
    };
    match sim.settle(&order_id, action) {
        Ok((notification, result)) => {
            let front_url = lock(&sim.inner.transactions)
                .get(&order_id)
                .map(|t| t.front_url.clone())
                .unwrap_or_default();
            sim.send(notification);
            if front_url.is_empty() {
                // A scanned QR code: the buyer's phone stays in the app.
                let done = format!(
                    "<p id=\"unionpay-done\">{}</p>",
                    lang.tr("Payment processed.")
                );
                return page(lang, None, &done);
            }
            back_to_merchant(lang, &front_url, &result)
        }
        Err(e) => error_page(lang, &e),
    }
}

/// The file-transfer request (`txnType=76`, `fileType=00`): the day's reconciliation file
/// (docs/reconciliation.md), built from what the simulator processed — each purchase paid
/// and each refund carried out on the day `settleDate` (`MMDD`) names — with the armed
/// statement faults. The current day is served at once (sandbox); `respCode=98` is "no
/// file yet".
async fn files(State(sim): State<UnionPaySimulator>, body: Bytes) -> Response {
    let f = parse_form(&body);
    plain(sim.answer(&f, sim.reconciliation_file(&f)))
}

impl UnionPaySimulator {
    fn reconciliation_file(&self, f: &Fields) -> Result<Fields, UnionPayError> {
        use super::statement::{DetailLine, PURCHASE, REFUND, pack, render};
        use crate::simkit::FaultKind;
        self.authenticate(f)?;
        let get = |name: &str| f.get(name).map(String::as_str).unwrap_or_default();
        if (get("txnType"), get("txnSubType"), get("fileType")) != ("76", "01", "00") {
            return Err(FORMAT);
        }
        let settle = get("settleDate");
        if settle.len() != 4 || !settle.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FORMAT);
        }
        let faults = &self.inner.statement_faults;
        if faults.take(FaultKind::StatementNotReady) {
            return Err(UnionPayError("98", "file not found"));
        }
        // The most recent day (not after today) with that month and day.
        let today = ottgate_core::recon::WalletDay::of(now());
        let year: i32 = today.compact()[..4].parse().map_err(|_| FORMAT)?;
        let day = ottgate_core::recon::WalletDay::parse(&format!("{year}{settle}"))
            .filter(|d| *d <= today)
            .or_else(|| ottgate_core::recon::WalletDay::parse(&format!("{}{settle}", year - 1)))
            .ok_or(FORMAT)?;
        let mut lines = Vec::new();
        for t in lock(&self.inner.transactions).values() {
            let Some(at) = t.done_at else { continue };
            if ottgate_core::recon::WalletDay::of(at) != day
                || t.voided
                || t.orig_resp_code.as_deref() != Some("00")
            {
                continue;
            }
            lines.push(DetailLine {
                trade_code: if t.refund_of.is_some() {
                    REFUND
                } else {
                    PURCHASE
                }
                .into(),
                txn_time: at.beijing_compact()[4..].to_owned(),
                txn_amt: t.txn_amt,
                query_id: t.query_id.clone().unwrap_or_default(),
                order_id: t.order_id.clone(),
                orig_query_id: t.refund_of.clone().unwrap_or_default(),
                mer_id: t.mer_id.clone(),
            });
        }
        lines.retain(|l| !faults.has(FaultKind::OmitFromStatement, &l.order_id));
        for l in &mut lines {
            if faults.has(FaultKind::StatementAmount, &l.order_id) {
                l.txn_amt += 1;
            }
        }
        if day == today {
            for id in faults.unknown_trades() {
                lines.push(DetailLine {
                    trade_code: PURCHASE.into(),
                    txn_time: now().beijing_compact()[4..].to_owned(),
                    txn_amt: 100,
                    query_id: format!("{}{}", now().beijing_compact(), digits(7)),
                    order_id: id,
                    orig_query_id: String::new(),
                    mer_id: self.config().mer_id.clone(),
                });
            }
        }
        lines.sort_by(|a, b| (&a.txn_time, &a.order_id).cmp(&(&b.txn_time, &b.order_id)));
        let mer_id = &self.config().mer_id;
        let date = day.compact();
        let detail_name = format!("INN{}88ZM_{mer_id}", &date[2..]);
        let mut detail = render(&lines);
        if faults.take(FaultKind::StatementCut) {
            crate::simkit::cut_half_way(&mut detail);
        }
        let mut extra = Fields::new();
        extra.insert("settleDate".into(), settle.to_owned());
        extra.insert("fileType".into(), "00".into());
        extra.insert("fileName".into(), format!("{date}_{mer_id}.zip"));
        extra.insert(
            "fileContent".into(),
            pack(&[(detail_name, detail.into_bytes())]),
        );
        Ok(extra)
    }
}

async fn control(State(sim): State<UnionPaySimulator>, Json(fault): Json<Fault>) -> StatusCode {
    if !sim.inner.statement_faults.arm(&fault) {
        sim.add_fault(fault);
    }
    StatusCode::NO_CONTENT
}

async fn order_state(
    State(sim): State<UnionPaySimulator>,
    Path(order_id): Path<String>,
) -> Response {
    match lock(&sim.inner.transactions).get(&order_id) {
        Some(txn) => Json(txn.clone()).into_response(),
        None => (StatusCode::NOT_FOUND, Html("34 no such transaction")).into_response(),
    }
}

impl From<UnionPayError> for SimulatorError {
    fn from(e: UnionPayError) -> Self {
        SimulatorError(e.to_string())
    }
}

impl SimulatedWallet for UnionPaySimulator {
    fn name(&self) -> &'static str {
        "unionpay"
    }

    fn router(&self) -> Router {
        UnionPaySimulator::router(self)
    }

    fn knows(&self, out_trade_no: &str) -> bool {
        lock(&self.inner.transactions).contains_key(out_trade_no)
    }

    /// A browser payment's signed form is posted first, as the buyer's browser would; a QR
    /// purchase was created by our request.
    fn complete_as_buyer(
        &self,
        out_trade_no: &str,
        start: Option<&crate::PaymentStart>,
        action: BuyerAction,
    ) -> Result<String, SimulatorError> {
        if let Some(crate::StartAction::PostForm { fields, .. }) = start.map(|s| &s.action) {
            self.open(&fields.iter().cloned().collect())?;
        }
        let (notification, _) = self.settle(out_trade_no, action)?;
        Ok(self.finish(&notification, None))
    }
}
