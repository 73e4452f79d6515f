//! A payment's status as the REST API and STATUS_QUERY report it: the attempt's state,
//! with refunds folded in.

use crate::{Attempt, AttemptStatus, CloseReason, OrderStatus};

/// `paymentStatus` and its `stateCode` (docs/rest.md, Statuses; the P000xx table is third-party, and
/// used as published).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    /// Created, not paid yet (P00001).
    Init,
    /// A card authorised: the money is held, not taken yet (P00002).
    Authorised,
    /// Paid, nothing refunded (P00003).
    Success,
    /// Paid, part refunded (P00005).
    PartialRefunded,
    /// Paid, all refunded (P00004).
    FullyRefunded,
    /// Declined by the wallet (P00008 "failed").
    Failed,
    /// Cancelled by the buyer (P00006 "refused").
    Cancelled,
    /// Not paid in time, or an authorisation never captured (P00010 "expired").
    Expired,
    /// An authorised card payment voided before capture (P00007 "voided").
    Voided,
}

impl PaymentStatus {
    /// The status of `attempt` given the status of its order now and the sum of its
    /// successful (or reserved) refunds.
    pub fn of(attempt: &Attempt, order_now: OrderStatus, refunded: u64) -> Self {
        match attempt.status {
            AttemptStatus::Paid if refunded == 0 => PaymentStatus::Success,
            AttemptStatus::Paid if refunded >= attempt.money.amount.minor() => {
                PaymentStatus::FullyRefunded
            }
            AttemptStatus::Paid => PaymentStatus::PartialRefunded,
            AttemptStatus::Pending if order_now == OrderStatus::Closed(CloseReason::Expired) => {
                PaymentStatus::Expired
            }
            AttemptStatus::Pending if attempt.authorised_at.is_some() => PaymentStatus::Authorised,
            AttemptStatus::Pending => PaymentStatus::Init,
            AttemptStatus::Failed => PaymentStatus::Failed,
            AttemptStatus::Cancelled if attempt.authorised_at.is_some() => PaymentStatus::Voided,
            AttemptStatus::Cancelled => PaymentStatus::Cancelled,
            AttemptStatus::Expired => PaymentStatus::Expired,
        }
    }

    /// The REST `paymentStatus` value.
    pub fn code(self) -> &'static str {
        match self {
            PaymentStatus::Init => "init",
            PaymentStatus::Authorised => "authorised",
            PaymentStatus::Success => "success",
            PaymentStatus::PartialRefunded => "partial_refunded",
            PaymentStatus::FullyRefunded => "fully_refunded",
            PaymentStatus::Failed
            | PaymentStatus::Cancelled
            | PaymentStatus::Expired
            | PaymentStatus::Voided => "orderclosed",
        }
    }

    /// The REST `stateCode` value.
    pub fn state_code(self) -> &'static str {
        match self {
            PaymentStatus::Init => "P00001",
            PaymentStatus::Authorised => "P00002",
            PaymentStatus::Success => "P00003",
            PaymentStatus::FullyRefunded => "P00004",
            PaymentStatus::PartialRefunded => "P00005",
            PaymentStatus::Cancelled => "P00006",
            PaymentStatus::Voided => "P00007",
            PaymentStatus::Failed => "P00008",
            PaymentStatus::Expired => "P00010",
        }
    }

    /// Whether refunds can be taken against the payment.
    pub fn is_refundable(self) -> bool {
        matches!(
            self,
            PaymentStatus::Success | PaymentStatus::PartialRefunded
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Amount, AttemptId, Currency, Money, OrderId, PaymentMethod, Timestamp};
    use rstest::rstest;

    fn attempt(status: AttemptStatus) -> Attempt {
        let t = Timestamp::from_epoch_millis(0);
        Attempt {
            id: AttemptId::generate(t),
            order_id: OrderId::generate(t),
            method: PaymentMethod::Alipay,
            status,
            money: Money::new(Amount::from_minor(1000).unwrap(), Currency::Cad),
            created_at: t,
            settled_at: None,
            bizpay_order_id: None,
            authorised_at: None,
            capture_at: None,
            buyer_paid: None,
        }
    }

    #[test]
    fn an_authorised_card_is_held_until_captured_or_voided() {
        let held = Attempt {
            authorised_at: Some(Timestamp::from_epoch_millis(5)),
            ..attempt(AttemptStatus::Pending)
        };
        let s = PaymentStatus::of(&held, OrderStatus::Processing, 0);
        assert_eq!((s.code(), s.state_code()), ("authorised", "P00002"));
        assert!(!s.is_refundable());
        let voided = Attempt {
            status: AttemptStatus::Cancelled,
            ..held.clone()
        };
        let s = PaymentStatus::of(&voided, OrderStatus::Closed(CloseReason::Failed), 0);
        assert_eq!((s.code(), s.state_code()), ("orderclosed", "P00007"));
        let lapsed = PaymentStatus::of(&held, OrderStatus::Closed(CloseReason::Expired), 0);
        assert_eq!(lapsed, PaymentStatus::Expired);
    }

    #[rstest]
    #[case(AttemptStatus::Pending, OrderStatus::Processing, 0, "init", "P00001")]
    #[case(
        AttemptStatus::Pending,
        OrderStatus::Closed(CloseReason::Expired),
        0,
        "orderclosed",
        "P00010"
    )]
    #[case(AttemptStatus::Paid, OrderStatus::Success, 0, "success", "P00003")]
    #[case(AttemptStatus::Paid, OrderStatus::Success, 1, "partial_refunded", "P00005")]
    #[case(AttemptStatus::Paid, OrderStatus::Success, 999, "partial_refunded", "P00005")]
    #[case(AttemptStatus::Paid, OrderStatus::Success, 1000, "fully_refunded", "P00004")]
    #[case(
        AttemptStatus::Failed,
        OrderStatus::Closed(CloseReason::Failed),
        0,
        "orderclosed",
        "P00008"
    )]
    #[case(AttemptStatus::Cancelled, OrderStatus::Processing, 0, "orderclosed", "P00006")]
    fn statuses_fold_in_refunds(
        #[case] a: AttemptStatus,
        #[case] order: OrderStatus,
        #[case] refunded: u64,
        #[case] code: &str,
        #[case] state: &str,
    ) {
        let s = PaymentStatus::of(&attempt(a), order, refunded);
        assert_eq!((s.code(), s.state_code()), (code, state));
        assert_eq!(
            s.is_refundable(),
            code == "success" || code == "partial_refunded"
        );
    }
}
