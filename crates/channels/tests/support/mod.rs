//! What the three wallet test files share: a simulator and a notification receiver served
//! on one port (as a sandbox gateway mounts them), the payment a test starts, and reading
//! what the simulator sends back.
#![allow(dead_code, reason = "each test binary uses the part it needs; the rest is not dead code")]

use axum::Router;
use axum::body::Bytes;
use axum::response::Response;
use axum::routing::post;
use ottgate_channels::simkit::{Fault, FaultKind, SimulatedWallet};
use ottgate_channels::{
    Channel, Device, Flow, QueryPayment, QueryRefund, RefundPayment, StartPayment,
};
use ottgate_core::{
    Amount, AttemptId, Clock, Currency, MerchantId, Money, PaymentMethod, RefundId, SystemClock,
    Timestamp,
};
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use url::Url;

pub use ottgate_testkit::{Fetch, bind, browser};

/// Where the simulator's notifications land.
pub struct Receiver {
    pub notices: mpsc::UnboundedReceiver<Bytes>,
    /// How many more notifications the receiver refuses before acknowledging.
    pub refuse: Arc<AtomicUsize>,
}

/// Serves `sim` at `/sim/{name}` and a receiver at `/notify/{name}` that records each body
/// and answers `ack(refused)`.
pub fn serve(
    listener: tokio::net::TcpListener,
    sim: &dyn SimulatedWallet,
    ack: fn(bool) -> Response,
) -> Receiver {
    let (tx, notices) = mpsc::unbounded_channel();
    let refuse = Arc::new(AtomicUsize::new(0));
    let refusing = refuse.clone();
    let app = Router::new()
        .nest_service(&format!("/sim/{}", sim.name()), sim.router())
        .route(
            &format!("/notify/{}", sim.name()),
            post(move |body: Bytes| {
                let tx = tx.clone();
                let refusing = refusing.clone();
                async move {
                    let _ = tx.send(body);
                    let refused = refusing
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    ack(refused)
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver { notices, refuse }
}

/// A wallet's connector, its simulator and a notification receiver on one port, and a
/// browser for the buyer's side.
pub struct World<C> {
    pub connector: C,
    pub notices: mpsc::UnboundedReceiver<Bytes>,
    /// How many more notifications the receiver refuses before acknowledging.
    pub refuse: Arc<AtomicUsize>,
    pub base: Url,
    pub http: reqwest::Client,
}

impl<C> World<C> {
    /// Serves `sim` and the receiver (answering `ack(refused)`) on `listener`, bound at
    /// `base`, for `connector` to talk to.
    pub fn new(
        (listener, base): (tokio::net::TcpListener, Url),
        connector: C,
        sim: &dyn SimulatedWallet,
        ack: fn(bool) -> Response,
    ) -> Self {
        let receiver = serve(listener, sim, ack);
        World {
            connector,
            notices: receiver.notices,
            refuse: receiver.refuse,
            base,
            http: browser(),
        }
    }
}

impl<C: Channel> World<C> {
    /// Starts `payment` in a browser; returns where the buyer's browser is sent.
    pub async fn redirect(&self, payment: &StartPayment) -> Url {
        let start = self.connector.start(payment).await.unwrap();
        start.redirect_url().unwrap().clone()
    }
}

/// Giving 2.34 CAD back of the `total_cents` payment `attempt`, which the wallet knows as
/// `trade`.
pub fn refund(attempt: &AttemptId, trade: &str, total_cents: u64) -> RefundPayment {
    RefundPayment {
        channel_ids: Default::default(),
        flow: Flow::Browser(Device::Desktop),
        refund_id: RefundId::generate(SystemClock.now()),
        at: SystemClock.now(),
        payment_id: attempt.clone(),
        bizpay_order_id: Some(trade.to_owned()),
        money: money(234),
        payment_total: money(total_cents),
    }
}

/// Asking now about `refund`.
pub fn asked(refund: &RefundPayment) -> QueryRefund {
    QueryRefund {
        refund_id: refund.refund_id.clone(),
        payment_id: refund.payment_id.clone(),
        requested_at: refund.at,
        asked_at: SystemClock.now(),
        money: refund.money,
        channel_ids: Default::default(),
    }
}

/// A refund of the same payment that the wallet never heard of.
pub fn unknown_refund(asked: &QueryRefund) -> QueryRefund {
    QueryRefund {
        refund_id: RefundId::generate(SystemClock.now()),
        ..asked.clone()
    }
}

/// The next notification body, within ten seconds.
pub async fn next_body(notices: &mut mpsc::UnboundedReceiver<Bytes>) -> Bytes {
    tokio::time::timeout(Duration::from_secs(10), notices.recv())
        .await
        .expect("a notification")
        .unwrap()
}

pub fn money(cents: u64) -> Money {
    Money::new(Amount::from_minor(cents).unwrap(), Currency::Cad)
}

/// Paying 12.34 CAD to Maple Tea House with `method`, in the buyer's browser on `device`.
pub fn payment(
    attempt: &AttemptId,
    method: PaymentMethod,
    device: Device,
    at: Timestamp,
) -> StartPayment {
    StartPayment {
        channel_ids: Default::default(),
        attempt_id: attempt.clone(),
        method,
        money: money(1234),
        subject: "Maple Tea House".into(),
        merchant_id: MerchantId::parse("ON00000001").unwrap(),
        merchant_name: "Maple Tea House".into(),
        created_at: at,
        expires_at: at.plus(Duration::from_secs(600)),
        return_url: Url::parse("https://shop.example/return").unwrap(),
        flow: Flow::Browser(device),
        payer: None,
        payer_app: None,
    }
}

/// An app payment of `attempt` (the merchant's app hands the wallet's SDK what starts it).
pub fn app_payment(attempt: &AttemptId, method: PaymentMethod) -> StartPayment {
    StartPayment {
        flow: Flow::App,
        ..payment(
            attempt,
            method,
            Device::Mobile,
            ottgate_core::SystemClock.now(),
        )
    }
}

/// POSTs `body` as JSON to `path` below `base`; the JSON answer.
pub async fn post_json(
    http: &reqwest::Client,
    base: &Url,
    path: &str,
    body: &impl serde::Serialize,
) -> serde_json::Value {
    http.post(base.join(path).unwrap())
        .json(body)
        .fetch()
        .await
        .json()
        .await
        .unwrap()
}

/// Whether `connector`'s wallet says `attempt` (started now) is paid.
pub async fn is_paid(connector: &impl ottgate_channels::Channel, attempt: &AttemptId) -> bool {
    matches!(
        connector
            .query(&query(attempt, ottgate_core::SystemClock.now()))
            .await
            .unwrap(),
        ottgate_channels::QueryResult::Paid { .. }
    )
}

/// Asking about that payment, started at `at`.
pub fn query(attempt: &AttemptId, at: Timestamp) -> QueryPayment {
    QueryPayment {
        channel_ids: Default::default(),
        flow: Flow::Browser(Device::Desktop),
        attempt_id: attempt.clone(),
        money: money(1234),
        started_at: at,
    }
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The hidden inputs of a page's form, as a browser would submit them.
pub fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    html.split("<input type=\"hidden\" name=\"")
        .skip(1)
        .map(|rest| {
            let (name, rest) = rest.split_once("\" value=\"").unwrap();
            let (value, _) = rest.split_once('"').unwrap();
            (unescape(name), unescape(value))
        })
        .collect()
}

/// Arms a fault at the simulated `wallet` served at `base`, for the trade `out_trade_no`.
pub async fn arm_fault(
    http: &reqwest::Client,
    base: &Url,
    wallet: &str,
    kind: FaultKind,
    out_trade_no: &str,
) {
    let fault = Fault {
        kind,
        out_trade_no: Some(out_trade_no.into()),
        delay_ms: None,
    };
    let control = base.join(&format!("sim/{wallet}/control")).unwrap();
    let r = http.post(control).json(&fault).fetch().await;
    assert_eq!(r.status(), 204);
}

/// The buyer presses `action` on the simulator page at `path` under `base`.
pub async fn press_at(
    http: &reqwest::Client,
    base: &Url,
    path: &str,
    action: &str,
) -> reqwest::Response {
    let page = base.join(path).unwrap();
    http.post(page).form(&[("action", action)]).fetch().await
}

/// The faults that spoil a notification a test then checks it would refuse.
pub const NOTIFICATION_FAULTS: [FaultKind; 4] = [
    FaultKind::CorruptSignature,
    FaultKind::WrongAmount,
    FaultKind::WrongCurrency,
    FaultKind::Duplicate,
];

/// Nothing more arrives (within 200 ms): the wallet stopped retrying.
pub async fn assert_quiet(notices: &mut mpsc::UnboundedReceiver<Bytes>, why: &str) {
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(notices.try_recv().is_err(), "{why}");
}

/// How a notification spoilt by `kind` must look to the connector: a corrupt signature
/// fails verification; a wrong amount or currency verifies but is not the order's money; a
/// duplicate is genuine (the caller checks that it comes twice).
pub fn assert_spoilt_as(kind: FaultKind, verified: bool, amount_ok: bool, notice: &dyn Debug) {
    match kind {
        FaultKind::CorruptSignature => assert!(!verified, "{notice:?}"),
        FaultKind::WrongAmount | FaultKind::WrongCurrency => {
            assert!(verified, "validly signed...");
            assert!(!amount_ok, "...but not the order's money: {notice:?}");
        }
        _ => assert!(verified && amount_ok, "{notice:?}"),
    }
}
