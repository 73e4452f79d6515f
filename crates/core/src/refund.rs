//! Refunds: money returned against a paid payment, in one or more parts.

use std::fmt;

use crate::ids::InvalidId;
use crate::{AttemptId, MerchantId, Money, OrderId, Timestamp};

/// ottgate's id of a refund: `REF` and 17 digits, like OTT Pay's `REF167871916840228`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RefundId(String);

impl RefundId {
    pub fn generate(now: Timestamp) -> Self {
        Self(format!("REF{}", OrderId::generate(now)))
    }

    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        let digits = s.strip_prefix("REF").unwrap_or("");
        if !digits.is_empty() && digits.len() <= 32 && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidId {
                what: "refund id",
                rule: "REF followed by digits",
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RefundId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefundStatus {
    /// Amount reserved, channel not yet confirmed.
    Pending,
    Success,
    /// The channel refused; the amount is free again.
    Failed,
}

impl RefundStatus {
    pub fn code(self) -> &'static str {
        match self {
            RefundStatus::Pending => "pending",
            RefundStatus::Success => "success",
            RefundStatus::Failed => "failed",
        }
    }

    pub fn from_code(s: &str) -> Option<Self> {
        [
            RefundStatus::Pending,
            RefundStatus::Success,
            RefundStatus::Failed,
        ]
        .into_iter()
        .find(|r| r.code() == s)
    }

    /// Whether the refund counts against the paid amount.
    pub fn holds_amount(self) -> bool {
        !matches!(self, RefundStatus::Failed)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub id: RefundId,
    pub merchant_id: MerchantId,
    /// The payment refunded (an attempt id: REST `paymentId`, envelope `order_id`).
    pub payment_id: AttemptId,
    /// The merchant's own id for the refund (envelope REFUND `order_id`), if given.
    pub merchant_refund_id: Option<String>,
    pub money: Money,
    pub status: RefundStatus,
    pub created_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// The channel's reference for the refund, once known.
    pub channel_refund_id: Option<String>,
    /// Who asked for it; `None` for refunds recorded before the gateway kept it.
    pub requested_by: Option<RefundedBy>,
    /// Why, in the merchant's words, when they gave a reason (the merchant center asks).
    pub reason: Option<String>,
}

/// Who asked for a refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundedBy {
    /// The REST API (`/api/v1/.../refund`).
    Rest,
    /// The encrypted-envelope API (`REFUND`).
    Envelope,
    /// A person in the merchant center, by their sign-in email.
    User(String),
    /// `ottgate check`, refunding the test payment it made.
    Checker,
}

impl RefundedBy {
    /// As stored: `rest`, `envelope`, `check`, or `user:` and the email.
    pub fn code(&self) -> String {
        match self {
            RefundedBy::Rest => "rest".to_owned(),
            RefundedBy::Envelope => "envelope".to_owned(),
            RefundedBy::Checker => "check".to_owned(),
            RefundedBy::User(email) => format!("user:{email}"),
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "rest" => Some(RefundedBy::Rest),
            "envelope" => Some(RefundedBy::Envelope),
            "check" => Some(RefundedBy::Checker),
            _ => code
                .strip_prefix("user:")
                .map(|email| RefundedBy::User(email.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refund_ids_look_like_ott_pays() {
        let id = RefundId::generate(Timestamp::from_epoch_millis(1_678_719_168_402));
        // `REF` and an order id: 17 digits starting at (or, when other ids were handed out
        // after a later time in this process, a little past) the given time.
        let digits = id.as_str().strip_prefix("REF").unwrap();
        assert_eq!(digits.len(), 17);
        assert!(digits.parse::<u64>().unwrap() >= 16_787_191_684_020_000);
        assert_eq!(RefundId::parse(id.as_str()), Ok(id));
        assert!(RefundId::parse("REF").is_err());
        assert!(RefundId::parse("1678719168402").is_err());
    }

    #[test]
    fn who_refunded_reads_back_as_written() {
        for by in [
            RefundedBy::Rest,
            RefundedBy::Envelope,
            RefundedBy::Checker,
            RefundedBy::User("ana@shop.example".into()),
        ] {
            assert_eq!(RefundedBy::from_code(&by.code()), Some(by));
        }
        assert_eq!(RefundedBy::from_code("someone"), None);
    }
}
