//! The callback outbox: one delivery per callback owed, written with the state change it announces, leased to one gateway while it is sent, and every attempt recorded.

use crate::Result;
use async_trait::async_trait;
use ottgate_core::{AttemptId, MerchantId, NotifyId, OrderId, Timestamp};
use std::time::Duration;

/// Which of a merchant's callbacks to list: those created from `since` on, newest first,
/// at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilter {
    pub merchant: MerchantId,
    pub since: Timestamp,
    pub limit: u32,
    /// The cursor: only events before this one (an [`Event::cursor`] of the last page).
    pub before: Option<i64>,
}

/// A merchant callback to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub notify_id: NotifyId,
    pub merchant_id: MerchantId,
    pub order_id: OrderId,
    pub attempt_id: Option<AttemptId>,
    /// What is announced: `paid` (and later `closed`, `refunded`).
    pub event: String,
    pub url: String,
    /// The exact JSON body to POST, sealed at enqueue time so every retry is identical.
    pub body: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    Pending,
    Delivered,
    Exhausted,
}

impl DeliveryState {
    pub fn code(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Exhausted => "exhausted",
        }
    }

    pub fn from_code(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => DeliveryState::Pending,
            "delivered" => DeliveryState::Delivered,
            "exhausted" => DeliveryState::Exhausted,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub notify_id: NotifyId,
    pub merchant_id: MerchantId,
    pub order_id: OrderId,
    pub attempt_id: Option<AttemptId>,
    pub event: String,
    pub url: String,
    pub body: String,
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: u32,
    pub next_attempt_at: Option<Timestamp>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
}

/// The result of one delivery attempt, and what happens next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttemptRecord {
    pub delivery_id: i64,
    pub lease_owner: String,
    pub started_at: Timestamp,
    pub duration: Duration,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    /// The start of the answer's body (at most [`RESPONSE_START_CHARS`] characters).
    pub response_start: Option<String>,
    pub next: NextStep,
}

/// How much of a callback answer's body is kept.
pub const RESPONSE_START_CHARS: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    Delivered,
    RetryAt(Timestamp),
    Exhausted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttemptRow {
    pub attempt_no: u32,
    pub started_at: Timestamp,
    pub duration_ms: u64,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    pub response_start: Option<String>,
}

/// A callback as the merchant's event log shows it: the delivery and how its last attempt
/// was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub delivery: Delivery,
    pub last_http_status: Option<u16>,
    /// The merchant's own reference of the order it is about.
    pub reference: Option<String>,
}

impl Event {
    /// Where the next page starts after this event.
    pub fn cursor(&self) -> i64 {
        self.delivery.id
    }
}

/// Who claims due deliveries, and for how long: up to `limit` deliveries due at `now`,
/// leased to `owner` for `lease`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryClaim {
    pub now: Timestamp,
    pub lease: Duration,
    pub owner: String,
    pub limit: u32,
}

#[async_trait]
pub trait Deliveries: Send + Sync {
    /// Leases the deliveries due ([`DeliveryClaim`]).
    async fn claim_due_deliveries(&self, claim: DeliveryClaim) -> Result<Vec<Delivery>>;

    /// Records an attempt and moves the delivery on. Returns `false` if `owner` no longer
    /// holds the lease (another worker took over); nothing is written then.
    async fn record_delivery_attempt(&self, record: DeliveryAttemptRecord) -> Result<bool>;

    async fn deliveries_for_order(&self, order: &OrderId) -> Result<Vec<Delivery>>;

    async fn delivery_attempts(&self, delivery_id: i64) -> Result<Vec<DeliveryAttemptRow>>;

    /// The earliest `next_attempt_at` of any pending delivery.
    async fn next_delivery_due(&self) -> Result<Option<Timestamp>>;

    /// `merchant`'s callbacks created at or after `since`, newest first (at most `limit`).
    async fn events(&self, filter: EventFilter) -> Result<Vec<Event>>;

    /// Forgets finished callbacks (delivered or exhausted) created before `before`, with
    /// their delivery attempts (at most `limit`); returns how many. Pending ones are kept
    /// whatever their age.
    async fn prune_events(&self, before: Timestamp, limit: u32) -> Result<u64>;

    /// Sends `merchant`'s callback `notify_id` again (whatever its state: pending, delivered
    /// or exhausted): due at `now`. One being sent right now (its lease live) is not sent a
    /// second time beside it: the attempt in flight is the redelivery. `None` if it is not
    /// the merchant's.
    async fn redeliver(
        &self,
        merchant: &MerchantId,
        notify_id: &NotifyId,
        now: Timestamp,
    ) -> Result<Option<Delivery>>;
}

/// This table's SQL where both backends agree, written once (`sql!`: `?N` for SQLite,
/// `$N` for PostgreSQL).
pub(crate) mod q {
    use crate::sql::Sql;

    /// Finished callbacks to forget, oldest first — on PostgreSQL those no other gateway
    /// is forgetting.
    pub(crate) const TO_PRUNE: Sql = sql!(
        "SELECT id FROM deliveries WHERE state IN ('delivered', 'exhausted') AND created_at < ?1
         ORDER BY id LIMIT ?2",
        pg_suffix = " FOR UPDATE SKIP LOCKED"
    );

    pub(crate) const ATTEMPTS_OF: Sql =
        sql!("SELECT * FROM delivery_attempts WHERE delivery_id = ?1 ORDER BY attempt_no");
    pub(crate) const COUNT_BY_STATE: Sql =
        sql!("SELECT state, COUNT(*) FROM deliveries GROUP BY state");
    pub(crate) const COUNT_LEASED: Sql =
        sql!("SELECT COUNT(*) FROM deliveries WHERE state = 'pending' AND lease_until > ?1");
    pub(crate) const EVENTS: Sql = sql!(
        "SELECT d.*, (SELECT a.http_status FROM delivery_attempts a WHERE a.delivery_id = d.id
                      ORDER BY a.attempt_no DESC LIMIT 1) AS last_http_status,
                (SELECT o.reference FROM orders o WHERE o.id = d.order_id) AS reference
         FROM deliveries d WHERE d.merchant_id = ?1 AND d.created_at >= ?2 AND d.id < ?4
         ORDER BY d.id DESC LIMIT ?3"
    );
    pub(crate) const INSERT: Sql = sql!(
        "INSERT INTO deliveries (notify_id, merchant_id, order_id, attempt_id, event, url, body, state,
         next_attempt_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?8)"
    );
    pub(crate) const NEXT_DUE: Sql =
        sql!("SELECT MIN(next_attempt_at) FROM deliveries WHERE state = 'pending'");
    pub(crate) const OF_ORDER: Sql =
        sql!("SELECT * FROM deliveries WHERE order_id = ?1 ORDER BY id");
    pub(crate) const REDELIVER: Sql = sql!(
        "UPDATE deliveries SET state = 'pending', next_attempt_at =
           CASE WHEN state = 'pending' AND lease_until > ?1 THEN next_attempt_at ELSE ?1 END
         WHERE merchant_id = ?2 AND notify_id = ?3 RETURNING *"
    );
}
