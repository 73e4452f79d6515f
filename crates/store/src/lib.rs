//! Durable storage for ottgate: the [`Store`] trait and its implementations.
//!
//! Every method is one atomic unit: a state change and the outbox row announcing it are
//! written together or not at all, and a method returns only once its write is durable.
//! Implementations are free to batch concurrent writes into one transaction (group
//! commit); the interface never exposes a transaction to callers, which is what makes
//! that possible.

pub mod center;
pub mod copy;
mod postgres;
mod rows;
mod sqlite;

pub use postgres::{PgOptions, PgStore};

pub use center::{AuditEntry, DayTotal, ListStatus, NewSession, PaymentFilter, PaymentSummary};
pub use sqlite::SqliteStore;
/// Writes sharing one SQLite commit at most, unless configured otherwise.
pub use sqlite::engine::MAX_BATCH as SQLITE_MAX_BATCH;

use async_trait::async_trait;
use ottgate_core::{
    Amount, Attempt, AttemptId, AttemptOutcome, AttemptStatus, ChannelIds, Merchant, MerchantId,
    MerchantRef, NotifyId, Order, OrderId, PaymentMethod, Refund, RefundId, RefundStatus,
    Settlement, Timestamp, TransitionError, order::NotPayable,
};
use std::fmt;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database error: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// No connection to the database could be had in time (it is down, or every
    /// connection is busy).
    #[error("database unreachable: {0}")]
    Pool(String),
    #[error("migration failed: {0}")]
    Migrate(String),
    /// The store cannot be opened as configured.
    #[error("{0}")]
    Config(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("{0} already exists")]
    Duplicate(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The write met a concurrent one (on another gateway instance) too many times in a row
    /// and was not applied; the request may be retried.
    #[error("the write met concurrent writes and was not applied")]
    Contended,
    /// The write was not taken: the store is shutting down, or its batch could not begin.
    #[error("the store is unavailable")]
    Unavailable,
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A merchant with the secrets the gateway needs, still sealed.
#[derive(Clone, PartialEq, Eq)]
pub struct MerchantRecord {
    pub merchant: Merchant,
    /// The sign key encrypted under the deployment master key.
    pub sign_key_sealed: Vec<u8>,
    /// argon2id PHC string of the REST app key.
    pub app_key_hash: String,
    pub rotation: KeyRotation,
}

/// What is left of the merchant's last key rotations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRotation {
    /// The sign key before the last rotation (sealed) and until when requests signed with it
    /// are still accepted.
    pub previous_sign_key: Option<(Vec<u8>, Timestamp)>,
    /// Which webhook secret signs callbacks (0: the first).
    pub webhook_secret_version: u32,
    /// Until when the version before it signs callbacks too.
    pub previous_webhook_until: Option<Timestamp>,
}

impl fmt::Debug for MerchantRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MerchantRecord")
            .field("merchant", &self.merchant)
            .finish_non_exhaustive()
    }
}

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

/// What [`Store::remove_user`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserRemoval {
    Removed,
    /// No such user of this merchant.
    NotFound,
    /// Nothing: the merchant would be left without an admin.
    LastAdmin,
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    /// A new attempt was created.
    Created(Attempt),
    /// A pending attempt for the same method was resumed (the buyer clicked twice, or came
    /// back to the page).
    Resumed(Attempt),
    NotPayable(NotPayable),
}

/// A verified result for an attempt, to apply.
#[derive(Debug, Clone)]
pub struct SettleRequest {
    pub attempt_id: AttemptId,
    pub outcome: AttemptOutcome,
    pub at: Timestamp,
    pub bizpay_order_id: Option<String>,
    /// The merchant callback to enqueue if, and only if, this outcome pays the order.
    pub on_paid: Option<NewDelivery>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettleOutcome {
    Applied {
        settlement: Settlement,
        order: Order,
        attempt: Attempt,
    },
    /// The same outcome was applied before: nothing changed (duplicate notification).
    AlreadyApplied { order: Order, attempt: Attempt },
    /// The outcome contradicts the recorded state; nothing changed.
    Rejected {
        error: TransitionError,
        order: Order,
        attempt: Attempt,
    },
}

impl SettleOutcome {
    pub fn order(&self) -> &Order {
        match self {
            SettleOutcome::Applied { order, .. }
            | SettleOutcome::AlreadyApplied { order, .. }
            | SettleOutcome::Rejected { order, .. } => order,
        }
    }

    pub fn attempt(&self) -> &Attempt {
        match self {
            SettleOutcome::Applied { attempt, .. }
            | SettleOutcome::AlreadyApplied { attempt, .. }
            | SettleOutcome::Rejected { attempt, .. } => attempt,
        }
    }
}

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
}

/// What a merchant-center user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserRole {
    /// Reads, and refunds, resends, rotates keys, changes methods.
    Admin,
    /// Reads.
    Viewer,
}

impl UserRole {
    pub fn code(self) -> &'static str {
        match self {
            UserRole::Admin => "admin",
            UserRole::Viewer => "viewer",
        }
    }

    pub fn from_code(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(UserRole::Admin),
            "viewer" => Some(UserRole::Viewer),
            _ => None,
        }
    }
}

/// A person who signs in to the merchant center, with their password hash.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: i64,
    pub merchant_id: MerchantId,
    /// Lower-cased; unique across the deployment.
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: String,
    pub role: UserRole,
    pub created_at: Timestamp,
}

impl fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("merchant_id", &self.merchant_id)
            .field("email", &self.email)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// A user to create (the store assigns the id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub merchant_id: MerchantId,
    pub email: String,
    pub password_hash: String,
    pub role: UserRole,
    pub created_at: Timestamp,
}

/// A request asking to run once per key.
#[derive(Debug, Clone)]
pub struct IdempotencyClaim {
    pub merchant_id: MerchantId,
    /// What the key is for (a route, an envelope action): keys of different scopes never
    /// meet.
    pub scope: String,
    pub key: String,
    /// What makes two requests "the same" (a hash of the body).
    pub request_hash: String,
    pub now: Timestamp,
    /// How long the claim holds while its request runs.
    pub lease: Duration,
    /// How long a finished answer is replayed.
    pub retention: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Idempotency {
    /// The key is ours: run the request, then finish (or release) it.
    Fresh,
    /// The same request was answered before: answer this.
    Replay { status: u16, body: String },
    /// The same request is running right now.
    InProgress,
    /// The key was used for another request.
    Mismatch,
}

/// A failed REST sign-in, counted before the app key is checked (so concurrent guesses
/// cannot overtake the limit) against every counter it touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInAttempt {
    /// Counters that always apply, with their limits (the address; the appId from it).
    pub counters: Vec<(String, u32)>,
    /// The per-appId counter and its ceiling, which does not apply to a trusted pair.
    pub app_counter: (String, u32),
    /// The (appId, address) pair: trusted for `trust` after it signs in.
    pub pair: String,
    pub trust: Duration,
    pub now: Timestamp,
    /// Failures older than this no longer count.
    pub window: Duration,
}

/// Counts for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// `(status code, count)` of orders.
    pub orders_by_status: Vec<(String, u64)>,
    /// `(state, count)` of callback deliveries.
    pub deliveries_by_state: Vec<(String, u64)>,
    /// Pending deliveries some gateway holds a lease on now (being delivered).
    pub deliveries_leased: u64,
    /// The connection pool, where the store has one (PostgreSQL).
    pub pool: Option<PoolStatus>,
}

/// A store's connection pool, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStatus {
    pub max_size: usize,
    /// Connections open now.
    pub size: usize,
    /// Open and idle.
    pub available: usize,
    /// Requests waiting for a connection.
    pub waiting: usize,
}

/// Everything ottgate keeps. Implementations: [`SqliteStore`] (embedded default).
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug + 'static {
    /// Database reachable and every migration applied.
    async fn ready(&self) -> Result<()>;

    async fn insert_merchant(&self, record: MerchantRecord) -> Result<()>;
    async fn merchant(&self, id: &MerchantId) -> Result<Option<MerchantRecord>>;
    async fn merchant_by_app_id(&self, app_id: &str) -> Result<Option<MerchantRecord>>;
    /// Replaces a merchant's enabled methods and channel ids; `false` if there is no such
    /// merchant.
    /// Replaces the sign key; the old one stays accepted until `previous_until`. `false`
    /// if there is no such merchant.
    async fn rotate_sign_key(
        &self,
        id: &MerchantId,
        sealed: Vec<u8>,
        previous_until: Timestamp,
    ) -> Result<bool>;
    /// Moves callbacks to the next webhook secret; the old one signs beside it until
    /// `previous_until`. The new version, `None` if there is no such merchant.
    async fn rotate_webhook_secret(
        &self,
        id: &MerchantId,
        previous_until: Timestamp,
    ) -> Result<Option<u32>>;
    /// The merchant's merchant-center users, by email.
    async fn users_of(&self, merchant: &MerchantId) -> Result<Vec<UserRecord>>;
    async fn update_merchant_channels(
        &self,
        id: &MerchantId,
        methods: &[PaymentMethod],
        channel_ids: &ChannelIds,
    ) -> Result<bool>;

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

    /// Starts (or resumes) paying `order` with `method`, if the order is payable at `now`.
    async fn start_attempt(
        &self,
        order: &OrderId,
        method: PaymentMethod,
        now: Timestamp,
    ) -> Result<StartOutcome>;
    async fn attempt(&self, id: &AttemptId) -> Result<Option<Attempt>>;
    /// Attempt `id` if it belongs to an order of `merchant`: one lookup, whose cost does not
    /// tell another merchant's attempt from a missing one.
    async fn merchant_attempt(
        &self,
        merchant: &MerchantId,
        id: &AttemptId,
    ) -> Result<Option<Attempt>>;
    /// All attempts of an order, oldest first.
    async fn attempts(&self, order: &OrderId) -> Result<Vec<Attempt>>;
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
    /// Applies a verified outcome exactly once; enqueues `on_paid` in the same transaction
    /// when the order becomes paid.
    async fn settle(&self, request: SettleRequest) -> Result<SettleOutcome>;

    /// Pending attempts created at or before `created_before` and not checked with their
    /// wallet since `checked_before` (oldest first): what reconciliation should ask about.
    /// Each is marked checked at `now` in the same step, so gateways reconciling at the
    /// same time never take the same attempt.
    async fn attempts_to_reconcile(
        &self,
        created_before: Timestamp,
        checked_before: Timestamp,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<Attempt>>;
    /// Records that reconciliation asked the wallet about `attempt` at `at`.
    async fn mark_checked(&self, attempt: &AttemptId, at: Timestamp) -> Result<()>;

    /// Closes `order` if it is still processing and past its expiry at `now`; `true` if it
    /// was closed by this call. Read paths call it so an expired order never looks open.
    async fn close_if_expired(&self, order: &OrderId, now: Timestamp) -> Result<bool>;

    /// Closes processing orders whose expiry is at or before `now` (at most `limit`).
    /// Returns the ids closed.
    async fn expire_due(&self, now: Timestamp, limit: u32) -> Result<Vec<OrderId>>;

    /// Leases up to `limit` deliveries that are due at `now` to `owner` for `lease`.
    async fn claim_due_deliveries(
        &self,
        now: Timestamp,
        lease: Duration,
        owner: &str,
        limit: u32,
    ) -> Result<Vec<Delivery>>;
    /// Records an attempt and moves the delivery on. Returns `false` if `owner` no longer
    /// holds the lease (another worker took over); nothing is written then.
    async fn record_delivery_attempt(&self, record: DeliveryAttemptRecord) -> Result<bool>;
    async fn deliveries_for_order(&self, order: &OrderId) -> Result<Vec<Delivery>>;
    async fn delivery_attempts(&self, delivery_id: i64) -> Result<Vec<DeliveryAttemptRow>>;
    /// The earliest `next_attempt_at` of any pending delivery.
    async fn next_delivery_due(&self) -> Result<Option<Timestamp>>;
    /// `merchant`'s callbacks created at or after `since`, newest first (at most `limit`).
    async fn events(
        &self,
        merchant: &MerchantId,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<Event>>;
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

    /// Holds `amount` of a paid payment for a new refund, if that much remains — atomically,
    /// so concurrent refunds can never together exceed the paid amount.
    async fn begin_refund(&self, refund: NewRefund) -> Result<BeginRefund>;
    /// Records the channel's answer; a failed refund releases its amount.
    async fn finish_refund(
        &self,
        id: &RefundId,
        status: RefundStatus,
        channel_refund_id: Option<String>,
        at: Timestamp,
    ) -> Result<Refund>;
    /// A payment's refunds, oldest first.
    async fn refunds(&self, payment: &AttemptId) -> Result<Vec<Refund>>;
    async fn refund(&self, id: &RefundId) -> Result<Option<Refund>>;
    /// Pending refunds created at or before `created_before` and not asked about since
    /// `checked_before` (oldest first), each marked checked at `now` in the same step: what
    /// refund reconciliation should ask about.
    async fn refunds_to_reconcile(
        &self,
        created_before: Timestamp,
        checked_before: Timestamp,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<Refund>>;
    /// Records that reconciliation asked the wallet about refund `id` at `at`.
    async fn mark_refund_checked(&self, id: &RefundId, at: Timestamp) -> Result<()>;

    /// Counts for `/metrics`, leases as of `now`.
    async fn stats(&self, now: Timestamp) -> Result<Stats>;

    /// Claims an idempotency key (atomically: of two concurrent claims one is `Fresh`).
    async fn claim_idempotency(&self, claim: IdempotencyClaim) -> Result<Idempotency>;
    /// Records the answer to replay for a claimed key.
    async fn finish_idempotency(
        &self,
        merchant: &MerchantId,
        scope: &str,
        key: &str,
        status: u16,
        body: String,
    ) -> Result<()>;
    /// Gives a claimed key up unanswered (the request failed inside; it may be retried).
    async fn release_idempotency(
        &self,
        merchant: &MerchantId,
        scope: &str,
        key: &str,
    ) -> Result<()>;
    /// Forgets keys created before `before` (at most `limit`); returns how many.
    async fn prune_idempotency(&self, before: Timestamp, limit: u32) -> Result<u64>;

    /// Adds a merchant-center user; `Duplicate("user")` if the email is taken, `NotFound`
    /// if the merchant is unknown.
    async fn insert_user(&self, user: NewUser) -> Result<UserRecord>;
    /// The user signing in with `email` (compared lower-cased).
    async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>>;
    /// Replaces a user's password hash and ends their sessions; `false` if there is no such
    /// user.
    async fn set_user_password(&self, email: &str, password_hash: String) -> Result<bool>;
    /// Removes `merchant`'s user signing in with `email`, and ends their sessions — unless
    /// they are the merchant's last admin. Another merchant's user is `NotFound`.
    async fn remove_user(&self, merchant: &MerchantId, email: &str) -> Result<UserRemoval>;

    /// Records a merchant-center sign-in.
    async fn insert_session(&self, session: NewSession) -> Result<()>;
    /// The user of the session whose token hashes to `id_hash`, if it has not expired.
    async fn session_user(&self, id_hash: &str, now: Timestamp) -> Result<Option<UserRecord>>;
    /// Signs a session out (nothing happens if there is none).
    async fn end_session(&self, id_hash: &str) -> Result<()>;
    /// Forgets up to `limit` sessions expired by `now`; how many.
    async fn prune_sessions(&self, now: Timestamp, limit: u32) -> Result<u64>;

    /// A merchant's payments, newest first (see [`PaymentFilter`]).
    async fn payments(&self, filter: &PaymentFilter) -> Result<Vec<PaymentSummary>>;
    /// A merchant's orders created in the `days` days from `from`, totalled by day, method,
    /// status and currency.
    async fn day_totals(
        &self,
        merchant: &MerchantId,
        from: Timestamp,
        days: u32,
    ) -> Result<Vec<DayTotal>>;

    /// Appends to the audit log.
    async fn record_audit(&self, entry: AuditEntry) -> Result<()>;
    /// A merchant's latest `limit` audit entries, newest first.
    async fn audit_log(&self, merchant: &MerchantId, limit: u32) -> Result<Vec<AuditEntry>>;

    /// Whether several gateways may share this store (its counters then live in it).
    fn is_shared(&self) -> bool {
        false
    }

    /// Counts a failed sign-in in advance against each counter, atomically, unless one of
    /// them already holds its limit within the window (`None`: refuse). Returns what to give
    /// back if the key turns out right.
    async fn reserve_sign_in(&self, attempt: SignInAttempt) -> Result<Option<Vec<i64>>>;
    /// Gives reserved failures back; `trust` (the pair, and when) marks a sign-in that
    /// succeeded.
    async fn release_sign_in(
        &self,
        reserved: Vec<i64>,
        trust: Option<(String, Timestamp)>,
    ) -> Result<()>;
}
