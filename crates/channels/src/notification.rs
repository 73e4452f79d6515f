//! What a wallet tells us on its own initiative, in no wallet's words. Each connector reads
//! and verifies its wallet's notifications into a [`Notification`] (signature and the
//! acquirer's own account checked), may confirm one with the wallet, and renders the
//! acknowledgement the wallet expects; the server checks the rest — which payment or refund,
//! its merchant, its money — once, for every wallet (docs/wallets.md).

use ottgate_core::Money;

/// A verified notification, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub subject: Subject,
    /// The money the wallet says changed hands, to check against ours.
    pub money: Stated,
    pub outcome: Outcome,
    /// The merchant account the wallet addressed it to, where it names one (WeChat Pay's
    /// `sub_mch_id`); see [`crate::Channel::addressed_to`].
    pub sub_merchant: Option<String>,
    /// The wallet's id for this message, by which it can be confirmed (Alipay's
    /// `notify_id`).
    pub message_id: Option<String>,
    /// What the buyer paid in yuan, where the wallet says (WeChat Pay's `cash_fee`).
    pub buyer_paid: Option<ottgate_core::BuyerPaid>,
}

/// What a notification is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A payment attempt, by the id we gave the wallet.
    Payment { attempt_id: String },
    /// A refund, by the id we gave the wallet, of the payment it names.
    Refund {
        refund_id: String,
        payment: PaymentRef,
    },
}

/// How a refund notification names the payment refunded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentRef {
    /// By the id we gave the wallet (Alipay's `out_trade_no`).
    Ours(String),
    /// By the wallet's own transaction id (UnionPay's `origQryId`).
    Wallets(String),
}

/// The money a notification states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stated {
    Money(Money),
    /// An amount or currency we cannot read: never equal to ours.
    Unreadable,
    /// This kind of notification states none (Alipay's refund results).
    Unstated,
}

/// What the wallet says happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Paid (or refunded), with the wallet's transaction id when it gives one.
    Succeeded {
        wallet_ref: Option<String>,
    },
    Failed,
    /// Not final: nothing changes (asking the wallet later decides).
    Undecided,
}

/// Why a notification could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    #[error("signature does not verify")]
    BadSignature,
    #[error("addressed to another merchant account")]
    NotOurAccount,
    #[error("malformed notification: {0}")]
    Malformed(String),
    #[error("this wallet sends no notifications")]
    Unexpected,
    #[error("the wallet does not confirm sending it")]
    NotConfirmed,
    #[error("the wallet could not be asked to confirm it: {0}")]
    Unconfirmed(String),
}

/// The answer a wallet expects to a notification: it re-sends until it gets the accepting
/// one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acknowledgement {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Acknowledgement {
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }
}

/// `minor` units of the currency with ISO code `code`, as a wallet states them.
pub fn stated_minor(minor: Option<&str>, currency: Option<ottgate_core::Currency>) -> Stated {
    let amount = minor
        .and_then(|m| m.parse::<u64>().ok())
        .and_then(|m| ottgate_core::Amount::from_minor(m).ok());
    match (amount, currency) {
        (Some(amount), Some(currency)) => Stated::Money(Money::new(amount, currency)),
        _ => Stated::Unreadable,
    }
}
