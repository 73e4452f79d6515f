//! Refunds: the amount held before the wallet is asked, so refunds together never exceed the payment; a refund asked for again (by the merchant's refund id or its request's key) is that refund, never a second.

use crate::{Due, Result};
use async_trait::async_trait;
use ottgate_core::{
    Amount, Attempt, AttemptId, AttemptStatus, MerchantId, Money, Refund, RefundId, RefundStatus,
    Timestamp,
};

/// A refund to reserve against a paid payment.
#[derive(Debug, Clone)]
pub struct NewRefund {
    pub id: RefundId,
    /// The merchant asking; a payment of another merchant is "not found".
    pub merchant_id: MerchantId,
    pub payment_id: AttemptId,
    pub merchant_refund_id: Option<String>,
    pub amount: Amount,
    pub at: Timestamp,
    /// The request asking for it, when it can be named: the same request again is this
    /// refund — answered, never made a second time — even when the first request's answer
    /// was lost (the client hung up, the gateway was killed).
    pub request: Option<RefundRequestKey>,
    /// Who asks.
    pub requested_by: ottgate_core::RefundedBy,
    /// Why, when they said.
    pub reason: Option<String>,
}

/// What names the request behind a refund: a REST `Idempotency-Key`, the canonical hash of
/// an envelope REFUND without a refund id, a merchant-center form's one-time token — each
/// prefixed by where it came from, so keys of different doors never meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequestKey {
    pub key: String,
    /// Only refunds asked for at or after this match (the key's retention window).
    pub since: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BeginRefund {
    /// The amount is held by a new pending refund; the channel may now be asked.
    Reserved(Refund),
    /// The merchant's refund id (or the request's key) was used before for the same payment
    /// and amount: that refund.
    Replayed(Refund),
    /// The merchant's refund id (or the request's key) was used before for something else.
    IdReused(Refund),
    /// No such payment for this merchant.
    PaymentNotFound,
    /// The payment is not paid.
    NotRefundable(AttemptStatus),
    /// More than what remains; `refundable` is what remains (0 when fully refunded).
    Exceeds { refundable: u64 },
}

/// The wallet's answer about a pending refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishRefund {
    pub id: RefundId,
    pub status: RefundStatus,
    /// The wallet's own id of the refund, when it gave one.
    pub channel_refund_id: Option<String>,
    pub at: Timestamp,
}

/// The pending refund `asked` reserves of `payment` (its currency, its id), if `held`
/// (what its other refunds hold) leaves room for it; else how much remains refundable.
pub(crate) fn reserve(asked: &NewRefund, payment: &Attempt, held: i64) -> Result<Refund, u64> {
    let refundable = payment
        .money
        .amount
        .minor()
        .saturating_sub(u64::try_from(held).unwrap_or(0));
    if asked.amount.minor() > refundable {
        return Err(refundable);
    }
    Ok(Refund {
        id: asked.id.clone(),
        merchant_id: asked.merchant_id.clone(),
        payment_id: payment.id.clone(),
        merchant_refund_id: asked.merchant_refund_id.clone(),
        money: Money::new(asked.amount, payment.money.currency),
        status: RefundStatus::Pending,
        created_at: asked.at,
        finished_at: None,
        channel_refund_id: None,
        requested_by: Some(asked.requested_by.clone()),
        reason: asked.reason.clone(),
    })
}

#[async_trait]
pub trait Refunds: Send + Sync {
    /// Holds `amount` of a paid payment for a new refund, if that much remains — atomically,
    /// so concurrent refunds can never together exceed the paid amount.
    async fn begin_refund(&self, refund: NewRefund) -> Result<BeginRefund>;

    /// Records the wallet's answer ([`FinishRefund`]); a failed refund releases its amount.
    async fn finish_refund(&self, finish: FinishRefund) -> Result<Refund>;

    /// A payment's refunds, oldest first.
    async fn refunds(&self, payment: &AttemptId) -> Result<Vec<Refund>>;

    async fn refund(&self, id: &RefundId) -> Result<Option<Refund>>;

    /// Pending refunds to ask their wallets about ([`Due`]).
    async fn refunds_to_reconcile(&self, due: Due) -> Result<Vec<Refund>>;

    /// Records that reconciliation asked the wallet about refund `id` at `at`.
    async fn mark_refund_checked(&self, id: &RefundId, at: Timestamp) -> Result<()>;
}

/// This table's SQL where both backends agree, written once (`sql!`: `?N` for SQLite,
/// `$N` for PostgreSQL).
pub(crate) mod q {
    use crate::sql::Sql;

    /// The payment to refund, if it is the merchant's — locked on PostgreSQL, so refunds
    /// of one payment on several gateways are checked one after another.
    pub(crate) const PAYMENT: Sql = sql!(
        "SELECT a.* FROM attempts a JOIN orders o ON o.id = a.order_id WHERE a.id = ?1 AND o.merchant_id = ?2",
        pg_suffix = " FOR UPDATE OF a"
    );
    /// What the payment's refunds hold (pending or done).
    pub(crate) const HELD: Sql = sql!(
        "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM refunds WHERE payment_id = ?1 AND status IN ('pending', 'success')"
    );
    pub(crate) const INSERT: Sql = sql!(
        "INSERT INTO refunds (id, merchant_id, payment_id, merchant_refund_id, amount, currency, status, created_at, request_key,
           requested_by, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT DO NOTHING"
    );

    pub(crate) const BY_ID: Sql = sql!("SELECT * FROM refunds WHERE id = ?1");
    pub(crate) const BY_MERCHANT_REFUND_ID: Sql =
        sql!("SELECT * FROM refunds WHERE merchant_id = ?1 AND merchant_refund_id = ?2");
    pub(crate) const BY_REQUEST_KEY: Sql = sql!(
        "SELECT * FROM refunds WHERE merchant_id = ?1 AND request_key = ?2 AND created_at >= ?3
             ORDER BY created_at DESC LIMIT 1"
    );
    pub(crate) const FINISH: Sql = sql!(
        "UPDATE refunds SET status = ?1, finished_at = ?2, channel_refund_id = COALESCE(?3, channel_refund_id)
         WHERE id = ?4 AND status = 'pending'"
    );
    pub(crate) const OF_PAYMENT: Sql =
        sql!("SELECT * FROM refunds WHERE payment_id = ?1 ORDER BY created_at, id");
}
