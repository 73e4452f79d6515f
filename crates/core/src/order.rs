//! Orders, payment attempts, and the one function that moves them between states.
//!
//! An *order* is what the merchant created (a checkout prepay order). Each time the buyer
//! starts paying with a method, an *attempt* is created with its own [`AttemptId`]: that is
//! the `order_id` the merchant sees in callbacks and queries, and the `trade_no` of the
//! browser return.

use crate::{
    AttemptId, CheckoutToken, Merchant, MerchantId, MerchantRef, Money, OperatorId, OrderId,
    PaymentMethod, ShopId, Timestamp,
};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    /// Waiting for the buyer; PREPAY_QUERY `PROCESSING`.
    Processing,
    /// Paid; PREPAY_QUERY `SUCCESS`.
    Success,
    /// Failed or expired; PREPAY_QUERY `ORDERCLOSE`.
    Closed(CloseReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    Expired,
    Failed,
}

impl OrderStatus {
    /// The PREPAY_QUERY `status` value.
    pub fn prepay_query_status(self) -> &'static str {
        match self {
            OrderStatus::Processing => "PROCESSING",
            OrderStatus::Success => "SUCCESS",
            OrderStatus::Closed(_) => "ORDERCLOSE",
        }
    }

    /// The browser-return `trade_status`, once there is a result to report.
    pub fn trade_status(self) -> Option<&'static str> {
        match self {
            OrderStatus::Processing => None,
            OrderStatus::Success => Some("Trade_Finished"),
            OrderStatus::Closed(_) => Some("Trade_Closed"),
        }
    }

    /// Stable storage code.
    pub fn code(self) -> &'static str {
        match self {
            OrderStatus::Processing => "processing",
            OrderStatus::Success => "success",
            OrderStatus::Closed(CloseReason::Expired) => "expired",
            OrderStatus::Closed(CloseReason::Failed) => "failed",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "processing" => OrderStatus::Processing,
            "success" => OrderStatus::Success,
            "expired" => OrderStatus::Closed(CloseReason::Expired),
            "failed" => OrderStatus::Closed(CloseReason::Failed),
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttemptStatus {
    Pending,
    Paid,
    Failed,
    Cancelled,
    Expired,
}

impl AttemptStatus {
    pub fn code(self) -> &'static str {
        match self {
            AttemptStatus::Pending => "PROCESSING",
            AttemptStatus::Paid => "SUCCESS",
            AttemptStatus::Failed => "FAIL",
            AttemptStatus::Cancelled => "CANCELLED",
            AttemptStatus::Expired => "ORDERCLOSE",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "PROCESSING" => AttemptStatus::Pending,
            "SUCCESS" => AttemptStatus::Paid,
            "FAIL" => AttemptStatus::Failed,
            "CANCELLED" => AttemptStatus::Cancelled,
            "ORDERCLOSE" => AttemptStatus::Expired,
            _ => return None,
        })
    }
}

/// How an order was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderKind {
    /// PREPAY_INIT: the buyer chooses a method on the hosted checkout.
    Checkout,
    /// REST `alipay/wap-pay`, `weixin/h5-pay`: a wallet in a mobile browser, one attempt
    /// created up front.
    Wap,
    /// REST `alipay/web-pay`: Alipay in a PC browser, one attempt created up front.
    Web,
    /// REST `weixin/active-pay`: a QR code the merchant shows, one attempt created up front
    /// (named by the gateway's payment id, not by the merchant's).
    Qr,
    /// REST `weixin/public-pay`: WeChat Pay inside WeChat's own browser, one attempt created
    /// up front; the wallet is opened once WeChat has signed the buyer in.
    InWallet,
    /// REST `alipay/inapp-pay`, `unionpay/inapp-secure-pay`: the merchant's phone app hands
    /// the wallet's app SDK what the gateway answers; one attempt created up front.
    App,
    /// The `h5Pay` link: WeChat Pay inside WeChat's browser, as `InWallet`, coming back to
    /// the merchant's `newURL` in h5Pay's own format.
    H5Link,
    /// Envelope `CC_PURCHASE`: a card payment on the hosted card page, named by the
    /// merchant's `orderId`.
    Card,
    /// Envelope `CC_PREAUTH`: as `Card`, but the approved card is only authorised; the
    /// merchant captures (or voids) it later.
    CardPreAuth,
    /// REST `local-card/payment3dsV2`: the card comes in the request; an approved card is
    /// authorised, and captured by the gateway after a delay unless voided first.
    LocalCard,
    /// Envelope `MAPPPAY`: WeChat Pay inside the merchant's mini-program, for the buyer it
    /// names; named by the merchant's `order_id`.
    MiniProgram,
    /// Envelope `PASSIVEPAY`: the merchant's till scans the code the buyer's wallet shows;
    /// named by the merchant's `order_id`.
    Barcode,
    /// Envelope `ACTIVEPAY`: a QR code the merchant shows, one attempt created up front.
    ActivePay,
    /// Envelope `H5PAY`: WeChat Pay in a phone browser, one attempt created up front.
    H5Pay,
}

impl OrderKind {
    pub fn code(self) -> &'static str {
        match self {
            OrderKind::Checkout => "checkout",
            OrderKind::Wap => "wap",
            OrderKind::Web => "web",
            OrderKind::ActivePay => "activepay",
            OrderKind::H5Pay => "h5pay",
            OrderKind::Qr => "qr",
            OrderKind::InWallet => "inwallet",
            OrderKind::App => "app",
            OrderKind::H5Link => "h5link",
            OrderKind::Card => "card",
            OrderKind::CardPreAuth => "cardpreauth",
            OrderKind::LocalCard => "localcard",
            OrderKind::MiniProgram => "miniprogram",
            OrderKind::Barcode => "barcode",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        [
            OrderKind::Checkout,
            OrderKind::Wap,
            OrderKind::Web,
            OrderKind::ActivePay,
            OrderKind::H5Pay,
            OrderKind::Qr,
            OrderKind::InWallet,
            OrderKind::App,
            OrderKind::H5Link,
            OrderKind::Card,
            OrderKind::CardPreAuth,
            OrderKind::LocalCard,
            OrderKind::MiniProgram,
            OrderKind::Barcode,
        ]
        .into_iter()
        .find(|k| k.code() == code)
    }

    /// Whether the buyer pays inside the wallet's own browser, signed in by it.
    pub fn in_wallet(self) -> bool {
        matches!(self, OrderKind::InWallet | OrderKind::H5Link)
    }

    /// Whether the merchant names the payment by its own `order_id` (ACTIVEPAY, H5PAY):
    /// then that id, not the attempt's, is the payment's `order_id` on the wire.
    pub fn named_by_merchant(self) -> bool {
        matches!(
            self,
            OrderKind::ActivePay
                | OrderKind::H5Pay
                | OrderKind::Card
                | OrderKind::CardPreAuth
                | OrderKind::MiniProgram
                | OrderKind::Barcode
        )
    }

    /// A card payment, by either API.
    pub fn is_card(self) -> bool {
        matches!(
            self,
            OrderKind::Card | OrderKind::CardPreAuth | OrderKind::LocalCard
        )
    }

    /// An envelope card payment (`CC_PURCHASE`, `CC_PREAUTH`): called back without a
    /// status, served by the hosted card page.
    pub fn is_envelope_card(self) -> bool {
        matches!(self, OrderKind::Card | OrderKind::CardPreAuth)
    }
}

/// An order: a checkout (prepay) order from PREPAY_INIT, or a REST payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: OrderId,
    pub kind: OrderKind,
    pub merchant_id: MerchantId,
    /// The merchant's own reference: `prepay_order_id` for checkout orders (always set),
    /// the optional `reference` of a REST payment.
    pub reference: Option<MerchantRef>,
    pub token: CheckoutToken,
    pub money: Money,
    /// The part of `money` that is a tip, in minor units (ACTIVEPAY's `tip`; 0 otherwise).
    pub tip: u64,
    pub sale_num: String,
    pub shop_id: ShopId,
    pub operator_id: OperatorId,
    pub redirect_url: String,
    pub callback_url: String,
    pub duration_secs: u64,
    pub email: Option<String>,
    pub remarks: Option<String>,
    pub status: OrderStatus,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// The attempt that paid the order.
    pub paid_attempt: Option<AttemptId>,
    pub finished_at: Option<Timestamp>,
    /// Set when a verified payment arrived after the order had closed (docs/envelope.md: the
    /// wallet's word wins, and the order is flagged for review).
    pub paid_after_close: bool,
    /// The merchant's till, for an in-store payment (PASSIVEPAY's `terminal_no`).
    pub terminal: Option<String>,
}

impl Order {
    /// A new order of `merchant` for `money`, open for `window` from `now`, its result
    /// announced to `callback_url`: fresh id and checkout token, the merchant's shop and
    /// operator. What only some kinds have (a reference, a browser return, a sale number,
    /// a tip…) is set with struct update syntax: `Order { reference, ..Order::new(…) }`.
    pub fn new(
        kind: OrderKind,
        merchant: &Merchant,
        money: Money,
        callback_url: String,
        now: Timestamp,
        window: Duration,
    ) -> Self {
        Self {
            id: OrderId::generate(now),
            kind,
            merchant_id: merchant.id.clone(),
            reference: None,
            token: CheckoutToken::generate(now),
            money,
            tip: 0,
            sale_num: String::new(),
            shop_id: merchant.shop_id.clone(),
            operator_id: merchant.operator_id.clone(),
            redirect_url: String::new(),
            callback_url,
            duration_secs: window.as_secs(),
            email: None,
            remarks: None,
            status: OrderStatus::Processing,
            created_at: now,
            expires_at: now.plus(window),
            paid_attempt: None,
            finished_at: None,
            paid_after_close: false,
            terminal: None,
        }
    }

    /// The merchant's reference as text; empty for a REST payment made without one.
    pub fn reference_str(&self) -> &str {
        self.reference.as_ref().map_or("", MerchantRef::as_str)
    }

    /// The payment's `order_id` as the merchant knows it: for ACTIVEPAY and H5PAY, the
    /// merchant's own id when it gave one; otherwise the id of the attempt.
    pub fn merchant_order_id(&self, attempt: &AttemptId) -> String {
        match &self.reference {
            Some(reference) if self.kind.named_by_merchant() => reference.to_string(),
            _ => attempt.to_string(),
        }
    }

    /// The status as of `now`: a processing order past its expiry is closed, whether or not
    /// the sweeper has written that down yet.
    pub fn status_at(&self, now: Timestamp) -> OrderStatus {
        match self.status {
            OrderStatus::Processing if now >= self.expires_at => {
                OrderStatus::Closed(CloseReason::Expired)
            }
            s => s,
        }
    }

    /// Whether the buyer may start (or resume) paying now.
    pub fn check_payable(&self, now: Timestamp) -> Result<(), NotPayable> {
        match self.status_at(now) {
            OrderStatus::Processing => Ok(()),
            OrderStatus::Success => Err(NotPayable::AlreadyPaid),
            OrderStatus::Closed(CloseReason::Expired) => Err(NotPayable::Expired),
            OrderStatus::Closed(CloseReason::Failed) => Err(NotPayable::Closed),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotPayable {
    #[error("order already paid")]
    AlreadyPaid,
    #[error("order expired")]
    Expired,
    #[error("order closed")]
    Closed,
}

/// One try at paying an order with one method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub id: AttemptId,
    pub order_id: OrderId,
    pub method: PaymentMethod,
    pub status: AttemptStatus,
    pub money: Money,
    pub created_at: Timestamp,
    pub settled_at: Option<Timestamp>,
    /// The wallet's transaction id (`bizpay_order_id`), once known.
    pub bizpay_order_id: Option<String>,
    /// When a card acquirer authorised the payment: the money is held on the buyer's card
    /// but not taken until it is captured (the attempt stays `Pending` until then).
    pub authorised_at: Option<Timestamp>,
    /// When the gateway captures an authorised payment by itself (REST local-card
    /// payments); `None` for a pre-authorisation, which the merchant captures.
    pub capture_at: Option<Timestamp>,
    /// What the buyer paid in yuan, and at which rate, when the wallet said so.
    pub buyer_paid: Option<BuyerPaid>,
}

/// What a wallet says the buyer paid in yuan for a payment in another currency (WeChat
/// Pay's `cash_fee` with `cash_fee_type=CNY`, and its `rate`): shown to the merchant as
/// the wallet reported it, never computed by the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuyerPaid {
    /// Fen (CNY minor units).
    pub cny: u64,
    /// The wallet's rate as it wrote it (WeChat Pay: CNY per unit × 10^8), if it gave one.
    pub rate: Option<String>,
}

impl BuyerPaid {
    /// The rate as a decimal number of yuan per unit of the payment's currency
    /// (`"510000000"` → `"5.1"`); the wallet's text when it is not WeChat Pay's integer.
    pub fn rate_text(&self) -> Option<String> {
        let rate = self.rate.as_deref()?;
        let Ok(scaled) = rate.parse::<u64>() else {
            return Some(rate.to_owned());
        };
        let whole = scaled / 100_000_000;
        let fraction = format!("{:08}", scaled % 100_000_000);
        let fraction = fraction.trim_end_matches('0');
        Some(if fraction.is_empty() {
            whole.to_string()
        } else {
            format!("{whole}.{fraction}")
        })
    }
}

impl Attempt {
    /// Authorised by the card acquirer, and neither captured nor released yet.
    pub fn is_authorised(&self) -> bool {
        self.status == AttemptStatus::Pending && self.authorised_at.is_some()
    }
}

/// What a verified wallet result says happened to an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttemptOutcome {
    Paid,
    Failed,
    Cancelled,
}

impl AttemptOutcome {
    pub fn code(self) -> &'static str {
        match self {
            AttemptOutcome::Paid => "paid",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::Cancelled => "cancelled",
        }
    }
}

/// The effect of applying an outcome: the new states and what must be announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settlement {
    pub attempt: AttemptStatus,
    pub order: OrderStatus,
    /// The order became paid by this outcome: the merchant's success callback is due.
    pub order_paid: bool,
    pub paid_after_close: bool,
    /// A second attempt was paid on an already-paid order: a double payment to review
    /// (and refund). The order itself is unchanged.
    pub duplicate_payment: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("attempt is already {current:?}; {outcome:?} contradicts it")]
    Contradicts {
        current: AttemptStatus,
        outcome: AttemptOutcome,
    },
}

/// Applies a verified outcome to an attempt of an order.
///
/// - `Ok(None)`: the outcome was already applied (a duplicate notification): nothing to do.
/// - `Ok(Some(s))`: write `s` (and announce it) in one transaction.
/// - `Err`: the outcome contradicts what is recorded (e.g. "failed" after "paid"); nothing
///   changes and the caller logs it for review.
///
/// A verified payment always wins: it marks a failed, cancelled or expired attempt paid,
/// and reopens a closed order as paid (flagged `paid_after_close`).
pub fn settle(
    order: OrderStatus,
    attempt: AttemptStatus,
    outcome: AttemptOutcome,
) -> Result<Option<Settlement>, TransitionError> {
    use AttemptOutcome as O;
    use AttemptStatus as A;
    let unchanged = |attempt| Settlement {
        attempt,
        order,
        order_paid: false,
        paid_after_close: false,
        duplicate_payment: false,
    };
    match (outcome, attempt) {
        (O::Paid, A::Paid) | (O::Failed, A::Failed) | (O::Cancelled, A::Cancelled) => Ok(None),
        (O::Paid, _) => Ok(Some(match order {
            OrderStatus::Success => Settlement {
                duplicate_payment: true,
                ..unchanged(A::Paid)
            },
            OrderStatus::Processing => Settlement {
                order: OrderStatus::Success,
                order_paid: true,
                ..unchanged(A::Paid)
            },
            OrderStatus::Closed(_) => Settlement {
                order: OrderStatus::Success,
                order_paid: true,
                paid_after_close: true,
                ..unchanged(A::Paid)
            },
        })),
        (O::Failed, A::Pending) => Ok(Some(match order {
            OrderStatus::Processing => Settlement {
                order: OrderStatus::Closed(CloseReason::Failed),
                ..unchanged(A::Failed)
            },
            _ => unchanged(A::Failed),
        })),
        (O::Cancelled, A::Pending) => Ok(Some(unchanged(A::Cancelled))),
        (outcome, current) => Err(TransitionError::Contradicts { current, outcome }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AttemptOutcome as O;
    use AttemptStatus as A;
    use OrderStatus as S;
    use rstest::rstest;

    #[test]
    fn the_wallets_rate_reads_as_yuan_per_unit() {
        let paid = |rate: &str| BuyerPaid {
            cny: 510,
            rate: Some(rate.to_owned()),
        };
        assert_eq!(paid("510000000").rate_text().as_deref(), Some("5.1"));
        assert_eq!(paid("500000000").rate_text().as_deref(), Some("5"));
        assert_eq!(paid("4700001").rate_text().as_deref(), Some("0.04700001"));
        assert_eq!(paid("5.12").rate_text().as_deref(), Some("5.12"));
        let no_rate = BuyerPaid { cny: 5, rate: None };
        assert_eq!(no_rate.rate_text(), None);
    }

    #[test]
    fn paying_a_pending_attempt_pays_the_order_and_announces_it() {
        let s = settle(S::Processing, A::Pending, O::Paid).unwrap().unwrap();
        assert_eq!(
            (s.attempt, s.order, s.order_paid),
            (A::Paid, S::Success, true)
        );
        assert!(!s.paid_after_close && !s.duplicate_payment);
    }

    #[rstest]
    #[case(O::Paid, A::Paid)]
    #[case(O::Failed, A::Failed)]
    #[case(O::Cancelled, A::Cancelled)]
    fn repeating_an_outcome_changes_nothing(
        #[case] outcome: AttemptOutcome,
        #[case] current: AttemptStatus,
    ) {
        for order in [S::Processing, S::Success, S::Closed(CloseReason::Failed)] {
            assert_eq!(settle(order, current, outcome), Ok(None));
        }
    }

    #[test]
    fn a_payment_after_expiry_wins_and_is_flagged() {
        let s = settle(S::Closed(CloseReason::Expired), A::Expired, O::Paid)
            .unwrap()
            .unwrap();
        assert_eq!(
            (s.attempt, s.order, s.order_paid, s.paid_after_close),
            (A::Paid, S::Success, true, true)
        );
    }

    #[test]
    fn a_second_paid_attempt_is_a_duplicate_payment_not_a_second_callback() {
        let s = settle(S::Success, A::Pending, O::Paid).unwrap().unwrap();
        assert_eq!(
            (s.order, s.order_paid, s.duplicate_payment),
            (S::Success, false, true)
        );
    }

    #[test]
    fn a_declined_attempt_closes_a_processing_order() {
        let s = settle(S::Processing, A::Pending, O::Failed)
            .unwrap()
            .unwrap();
        assert_eq!(s.order, S::Closed(CloseReason::Failed));
        assert!(!s.order_paid);
    }

    #[test]
    fn a_cancelled_attempt_leaves_the_order_open_for_another_method() {
        let s = settle(S::Processing, A::Pending, O::Cancelled)
            .unwrap()
            .unwrap();
        assert_eq!((s.attempt, s.order), (A::Cancelled, S::Processing));
    }

    #[rstest]
    #[case(A::Paid, O::Failed)]
    #[case(A::Paid, O::Cancelled)]
    #[case(A::Failed, O::Cancelled)]
    #[case(A::Cancelled, O::Failed)]
    fn contradicting_outcomes_are_rejected(
        #[case] current: AttemptStatus,
        #[case] outcome: AttemptOutcome,
    ) {
        assert!(settle(S::Success, current, outcome).is_err());
    }

    #[test]
    fn status_codes_round_trip() {
        for s in [
            S::Processing,
            S::Success,
            S::Closed(CloseReason::Expired),
            S::Closed(CloseReason::Failed),
        ] {
            assert_eq!(S::from_code(s.code()), Some(s));
        }
        for a in [A::Pending, A::Paid, A::Failed, A::Cancelled, A::Expired] {
            assert_eq!(A::from_code(a.code()), Some(a));
        }
    }
}
