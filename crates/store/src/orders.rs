//! Orders: created once per merchant reference (a repeat is told the first request), read by id, checkout token or reference, with their attempts as of one moment, and closed when they expire.

use crate::Result;
use async_trait::async_trait;
use ottgate_core::{Attempt, MerchantId, MerchantRef, Order, OrderId, PaymentMethod, Timestamp};

/// An order to create, with what makes a repeated create a safe retry.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub order: Order,
    /// The md5 of the PREPAY_INIT request: the same md5 again is a retry.
    pub request_md5: String,
    /// The response data (JSON text) to replay on a retry.
    pub response_data: String,
    /// REST payments start paying at once: the first attempt, created in the same
    /// transaction.
    pub first_attempt: Option<PaymentMethod>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// Created, under this id (the requested one, or a fresh one if it collided), with its
    /// first attempt when one was asked for.
    Created {
        id: OrderId,
        attempt: Option<Attempt>,
    },
    /// An order with this merchant reference already exists.
    Exists {
        request_md5: String,
        response_data: String,
    },
}

#[async_trait]
pub trait Orders: Send + Sync {
    /// Creates an order (and its first attempt, if asked) unless one with the same merchant
    /// reference exists.
    async fn create_order(&self, new: NewOrder) -> Result<CreateOutcome>;

    async fn order(&self, id: &OrderId) -> Result<Option<Order>>;

    async fn order_by_token(&self, token: &ottgate_core::CheckoutToken) -> Result<Option<Order>>;

    async fn order_by_reference(
        &self,
        merchant: &MerchantId,
        reference: &MerchantRef,
    ) -> Result<Option<Order>>;

    /// `merchant`'s newest order whose remarks are exactly `remarks`.
    async fn order_by_remarks(&self, merchant: &MerchantId, remarks: &str)
    -> Result<Option<Order>>;

    /// Orders of any merchant with this reference, oldest first (at most `limit`): the
    /// sandbox helper's lookup of a merchant's own order id.
    async fn orders_with_reference(
        &self,
        reference: &MerchantRef,
        limit: u32,
    ) -> Result<Vec<Order>>;

    /// Records the response to replay for `order` when it was not known at creation (an
    /// ACTIVEPAY answer carries the wallet's code). `false` if one was already recorded
    /// (the first answer stands) or there is no such order.
    async fn set_response_data(&self, order: &OrderId, response_data: String) -> Result<bool>;

    /// An order and its attempts as of one moment (a settlement changes both together, so
    /// reading them separately can pair a settled attempt with a stale order).
    async fn order_with_attempts(&self, id: &OrderId) -> Result<Option<(Order, Vec<Attempt>)>>;

    /// The same, of `merchant` only: another merchant's order is `None` at the cost of a
    /// missing one (no timing tells them apart).
    async fn merchant_order_with_attempts(
        &self,
        merchant: &MerchantId,
        id: &OrderId,
    ) -> Result<Option<(Order, Vec<Attempt>)>>;

    /// Closes `order` if it is still processing and past its expiry at `now`; `true` if it
    /// was closed by this call. Read paths call it so an expired order never looks open.
    async fn close_if_expired(&self, order: &OrderId, now: Timestamp) -> Result<bool>;

    /// Closes processing orders whose expiry is at or before `now` (at most `limit`).
    /// Returns the ids closed.
    async fn expire_due(&self, now: Timestamp, limit: u32) -> Result<Vec<OrderId>>;

    /// Ends `order`'s life now, as if its `duration` had run out at `now`: if it is still
    /// processing it is closed as expired, its expiry set to `now` and its pending attempts
    /// expired; `true` if it was closed by this call. The sandbox's integration checker
    /// uses it (an expired order, then a wallet's late success).
    async fn expire_now(&self, order: &OrderId, now: Timestamp) -> Result<bool>;
}

/// This table's SQL where both backends agree, written once (`sql!`: `?N` for SQLite,
/// `$N` for PostgreSQL).
pub(crate) mod q {
    use crate::sql::Sql;

    /// The order, if it is still processing past its expiry — locked on PostgreSQL.
    pub(crate) const EXPIRED: Sql = sql!(
        "SELECT id FROM orders WHERE id = ?1 AND status = 'processing' AND expires_at <= ?2",
        pg_suffix = " FOR UPDATE"
    );
    /// Orders to close, oldest expiry first — on PostgreSQL those no other gateway is
    /// closing.
    pub(crate) const EXPIRED_DUE: Sql = sql!(
        "SELECT id FROM orders WHERE status = 'processing' AND expires_at <= ?1 ORDER BY expires_at LIMIT ?2",
        pg_suffix = " FOR UPDATE SKIP LOCKED"
    );
    /// The order, of the merchant `?2` only if one is named.
    pub(crate) const OF_MERCHANT: Sql = sql!(
        "SELECT * FROM orders WHERE id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR merchant_id = ?2)"
    );
    /// Its attempts, oldest first, of the merchant `?2` only if one is named.
    pub(crate) const ATTEMPTS_OF_MERCHANT: Sql = sql!(
        "SELECT a.* FROM attempts a JOIN orders o ON o.id = a.order_id
         WHERE a.order_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR o.merchant_id = ?2)
         ORDER BY a.created_at, a.id"
    );

    pub(crate) const BY_ID: Sql = sql!("SELECT * FROM orders WHERE id = ?1");
    pub(crate) const BY_REFERENCE: Sql =
        sql!("SELECT * FROM orders WHERE merchant_id = ?1 AND reference = ?2");
    pub(crate) const BY_REMARKS: Sql = sql!(
        "SELECT * FROM orders WHERE merchant_id = ?1 AND remarks = ?2
         ORDER BY created_at DESC, id DESC LIMIT 1"
    );
    pub(crate) const BY_TOKEN: Sql = sql!("SELECT * FROM orders WHERE token = ?1");
    pub(crate) const CLOSE_EXPIRED: Sql = sql!(
        "UPDATE orders SET status = 'expired', finished_at = ?1 WHERE id = ?2 AND status = 'processing'"
    );
    pub(crate) const EXPIRE_NOW: Sql = sql!(
        "UPDATE orders SET status = 'expired', finished_at = ?1, expires_at = ?1 WHERE id = ?2 AND status = 'processing'"
    );
    pub(crate) const CLOSE_PENDING_ATTEMPTS: Sql = sql!(
        "UPDATE attempts SET status = ?1, settled_at = ?2 WHERE order_id = ?3 AND status = ?4"
    );
    pub(crate) const COUNT_BY_STATUS: Sql =
        sql!("SELECT status, COUNT(*) FROM orders GROUP BY status");
    pub(crate) const FIRST_REQUEST: Sql = sql!(
        "SELECT request_md5, response_data FROM orders WHERE merchant_id = ?1 AND reference = ?2"
    );
    pub(crate) const SET_RESPONSE_DATA: Sql =
        sql!("UPDATE orders SET response_data = ?1 WHERE id = ?2 AND response_data = ''");
    pub(crate) const WITH_REFERENCE: Sql =
        sql!("SELECT * FROM orders WHERE reference = ?1 ORDER BY created_at LIMIT ?2");
}
