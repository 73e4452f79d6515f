//! The embedded default store: one SQLite file in WAL mode, `synchronous=FULL`.
//!
//! Reads go through a small pool of connections (WAL lets them run beside the writer);
//! every write goes through the group-commit [`writer`]. The queries live with their table
//! (`merchants`, `orders`, `attempts`, `refunds`, `deliveries`, `idempotency`); the
//! [`Store`] implementation here only says which runs where.

mod attempts;
mod center;
mod deliveries;
mod idempotency;
mod merchants;
mod orders;
mod refunds;
mod sign_ins;
mod users;
pub(crate) mod writer;

use async_trait::async_trait;
use futures::FutureExt;
use ottgate_core::{
    Attempt, AttemptId, ChannelIds, CheckoutToken, MerchantId, MerchantRef, NotifyId, Order,
    OrderId, PaymentMethod, Refund, RefundId, RefundStatus, Timestamp,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;
use std::time::Duration;

use crate::rows::{AttemptRow, RefundRow};
use crate::{AuditEntry, DayTotal, NewSession, PaymentFilter, PaymentSummary};
use crate::{
    BeginRefund, CreateOutcome, Delivery, DeliveryAttemptRecord, DeliveryAttemptRow, Event,
    Idempotency, IdempotencyClaim, MerchantRecord, NewOrder, NewRefund, NewUser, Result,
    SettleOutcome, SettleRequest, SignInAttempt, StartOutcome, Stats, Store, StoreError,
    UserRecord,
};
use writer::Writer;

/// Which rows reconciliation takes: see [`Store::attempts_to_reconcile`].
#[derive(Debug, Clone, Copy)]
struct Due {
    created_before: Timestamp,
    checked_before: Timestamp,
    now: Timestamp,
    limit: u32,
}

/// Fresh ids tried when a generated id collides with one from another process.
const ID_RETRIES: usize = 5;

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// SQLite-backed [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    writer: Writer,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://path` or a plain
    /// path) and applies pending migrations.
    pub async fn open(url: &str) -> Result<Self> {
        Self::open_with(url, writer::MAX_BATCH).await
    }

    /// As [`SqliteStore::open`], with at most `max_batch` writes sharing one commit (1: a
    /// commit per write — what group commit is measured against).
    pub async fn open_with(url: &str, max_batch: usize) -> Result<Self> {
        let url = if url.starts_with("sqlite:") {
            url.to_owned()
        } else {
            format!("sqlite://{url}")
        };
        let options = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&pool).await?;
        let writer = Writer::start(options, max_batch).await?;
        Ok(Self { pool, writer })
    }

    /// The read pool (for `copy`, which reads every table as it is).
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Rows of `table` (attempts or refunds) still `pending`, created at or before
    /// `created_before` and not asked about since `checked_before`, oldest first, each
    /// marked checked at `now`: what reconciliation asks the wallets about.
    async fn claim_due_for_check<R>(
        &self,
        table: &'static str,
        pending: &'static str,
        due: Due,
    ) -> Result<Vec<R>>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin + 'static,
    {
        self.writer
            .write(move |c| {
                async move {
                    let sql = format!(
                        "UPDATE {table} SET last_checked_at = ? WHERE id IN
                           (SELECT id FROM {table} WHERE status = ? AND created_at <= ?
                              AND (last_checked_at IS NULL OR last_checked_at <= ?)
                            ORDER BY created_at LIMIT ?)
                         RETURNING *"
                    );
                    Ok(sqlx::query_as(&sql)
                        .bind(due.now.epoch_millis())
                        .bind(pending)
                        .bind(due.created_before.epoch_millis())
                        .bind(due.checked_before.epoch_millis())
                        .bind(i64::from(due.limit))
                        .fetch_all(&mut *c)
                        .await?)
                }
                .boxed()
            })
            .await
    }

    /// Records that reconciliation asked about row `id` of `table` at `at`.
    async fn stamp_checked(&self, table: &'static str, id: String, at: Timestamp) -> Result<()> {
        self.writer
            .write(move |c| {
                async move {
                    let sql = format!("UPDATE {table} SET last_checked_at = ? WHERE id = ?");
                    sqlx::query(&sql)
                        .bind(at.epoch_millis())
                        .bind(&id)
                        .execute(&mut *c)
                        .await?;
                    Ok(())
                }
                .boxed()
            })
            .await
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ready(&self) -> Result<()> {
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = 1")
                .fetch_all(&self.pool)
                .await?;
        match MIGRATOR.iter().find(|m| !applied.contains(&m.version)) {
            Some(missing) => Err(StoreError::Corrupt(format!(
                "migration {} not applied",
                missing.version
            ))),
            None => Ok(()),
        }
    }

    async fn insert_merchant(&self, record: MerchantRecord) -> Result<()> {
        self.writer
            .write(move |c| merchants::insert(c, record).boxed())
            .await
    }

    async fn merchant(&self, id: &MerchantId) -> Result<Option<MerchantRecord>> {
        merchants::by_id(&self.pool, id).await
    }

    async fn merchant_by_app_id(&self, app_id: &str) -> Result<Option<MerchantRecord>> {
        merchants::by_app_id(&self.pool, app_id).await
    }

    async fn rotate_sign_key(
        &self,
        id: &MerchantId,
        sealed: Vec<u8>,
        previous_until: Timestamp,
    ) -> Result<bool> {
        let id = id.clone();
        self.writer
            .write(move |c| merchants::rotate_sign_key(c, id, sealed, previous_until).boxed())
            .await
    }

    async fn rotate_webhook_secret(
        &self,
        id: &MerchantId,
        previous_until: Timestamp,
    ) -> Result<Option<u32>> {
        let id = id.clone();
        self.writer
            .write(move |c| merchants::rotate_webhook_secret(c, id, previous_until).boxed())
            .await
    }

    async fn users_of(&self, merchant: &MerchantId) -> Result<Vec<UserRecord>> {
        users::of_merchant(&self.pool, merchant).await
    }

    async fn update_merchant_channels(
        &self,
        id: &MerchantId,
        methods: &[PaymentMethod],
        channel_ids: &ChannelIds,
    ) -> Result<bool> {
        let (id, methods, ids) = (id.clone(), methods.to_vec(), channel_ids.clone());
        self.writer
            .write(move |c| merchants::update_channels(c, id, methods, ids).boxed())
            .await
    }

    async fn create_order(&self, new: NewOrder) -> Result<CreateOutcome> {
        self.writer
            .write(move |c| orders::create(c, new).boxed())
            .await
    }

    async fn order(&self, id: &OrderId) -> Result<Option<Order>> {
        orders::by_id(&self.pool, id).await
    }

    async fn order_by_token(&self, token: &CheckoutToken) -> Result<Option<Order>> {
        orders::by_token(&self.pool, token).await
    }

    async fn order_by_reference(
        &self,
        merchant: &MerchantId,
        reference: &MerchantRef,
    ) -> Result<Option<Order>> {
        orders::by_reference(&self.pool, merchant, reference).await
    }

    async fn orders_with_reference(
        &self,
        reference: &MerchantRef,
        limit: u32,
    ) -> Result<Vec<Order>> {
        orders::with_reference(&self.pool, reference, limit).await
    }

    async fn set_response_data(&self, order: &OrderId, response_data: String) -> Result<bool> {
        let order = order.clone();
        self.writer
            .write(move |c| orders::set_response_data(c, order, response_data).boxed())
            .await
    }

    async fn start_attempt(
        &self,
        order: &OrderId,
        method: PaymentMethod,
        now: Timestamp,
    ) -> Result<StartOutcome> {
        let order = order.clone();
        self.writer
            .write(move |c| attempts::start(c, order, method, now).boxed())
            .await
    }

    async fn attempt(&self, id: &AttemptId) -> Result<Option<Attempt>> {
        attempts::by_id(&self.pool, id).await
    }

    async fn merchant_attempt(
        &self,
        merchant: &MerchantId,
        id: &AttemptId,
    ) -> Result<Option<Attempt>> {
        attempts::of_merchant(&self.pool, merchant, id).await
    }

    async fn attempts(&self, order: &OrderId) -> Result<Vec<Attempt>> {
        attempts::of_order(&self.pool, order).await
    }

    async fn order_with_attempts(&self, id: &OrderId) -> Result<Option<(Order, Vec<Attempt>)>> {
        orders::with_attempts(&self.pool, id).await
    }

    async fn settle(&self, request: SettleRequest) -> Result<SettleOutcome> {
        self.writer
            .write(move |c| attempts::settle(c, request).boxed())
            .await
    }

    async fn attempts_to_reconcile(
        &self,
        created_before: Timestamp,
        checked_before: Timestamp,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<Attempt>> {
        let due = Due {
            created_before,
            checked_before,
            now,
            limit,
        };
        let rows: Vec<AttemptRow> = self
            .claim_due_for_check("attempts", "PROCESSING", due)
            .await?;
        let mut attempts = rows
            .into_iter()
            .map(AttemptRow::into_attempt)
            .collect::<Result<Vec<_>>>()?;
        attempts.sort_by_key(|a| (a.created_at, a.id.clone()));
        Ok(attempts)
    }

    async fn mark_checked(&self, attempt: &AttemptId, at: Timestamp) -> Result<()> {
        self.stamp_checked("attempts", attempt.to_string(), at)
            .await
    }

    async fn close_if_expired(&self, order: &OrderId, now: Timestamp) -> Result<bool> {
        let order = order.clone();
        self.writer
            .write(move |c| orders::close_if_expired(c, order, now).boxed())
            .await
    }

    async fn expire_due(&self, now: Timestamp, limit: u32) -> Result<Vec<OrderId>> {
        self.writer
            .write(move |c| orders::expire_due(c, now, limit).boxed())
            .await
    }

    async fn claim_due_deliveries(
        &self,
        now: Timestamp,
        lease: Duration,
        owner: &str,
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        let claim = deliveries::Claim {
            now,
            lease,
            owner: owner.to_owned(),
            limit,
        };
        self.writer
            .write(move |c| deliveries::claim_due(c, claim).boxed())
            .await
    }

    async fn record_delivery_attempt(&self, record: DeliveryAttemptRecord) -> Result<bool> {
        self.writer
            .write(move |c| deliveries::record_attempt(c, record).boxed())
            .await
    }

    async fn deliveries_for_order(&self, order: &OrderId) -> Result<Vec<Delivery>> {
        deliveries::of_order(&self.pool, order).await
    }

    async fn delivery_attempts(&self, delivery_id: i64) -> Result<Vec<DeliveryAttemptRow>> {
        deliveries::attempts_of(&self.pool, delivery_id).await
    }

    async fn next_delivery_due(&self) -> Result<Option<Timestamp>> {
        deliveries::next_due(&self.pool).await
    }

    async fn events(
        &self,
        merchant: &MerchantId,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<Event>> {
        deliveries::events(&self.pool, merchant, since, limit).await
    }

    async fn prune_events(&self, before: Timestamp, limit: u32) -> Result<u64> {
        self.writer
            .write(move |c| deliveries::prune(c, before, limit).boxed())
            .await
    }

    async fn redeliver(
        &self,
        merchant: &MerchantId,
        notify_id: &NotifyId,
        now: Timestamp,
    ) -> Result<Option<Delivery>> {
        let (merchant, notify_id) = (merchant.clone(), notify_id.clone());
        self.writer
            .write(move |c| deliveries::redeliver(c, merchant, notify_id, now).boxed())
            .await
    }

    async fn begin_refund(&self, refund: NewRefund) -> Result<BeginRefund> {
        self.writer
            .write(move |c| refunds::begin(c, refund).boxed())
            .await
    }

    async fn finish_refund(
        &self,
        id: &RefundId,
        status: RefundStatus,
        channel_refund_id: Option<String>,
        at: Timestamp,
    ) -> Result<Refund> {
        let finish = refunds::Finish {
            id: id.clone(),
            status,
            channel_refund_id,
            at,
        };
        self.writer
            .write(move |c| refunds::finish(c, finish).boxed())
            .await
    }

    async fn refunds(&self, payment: &AttemptId) -> Result<Vec<Refund>> {
        refunds::of_payment(&self.pool, payment).await
    }

    async fn refund(&self, id: &RefundId) -> Result<Option<Refund>> {
        refunds::by_id(&self.pool, id).await
    }

    async fn refunds_to_reconcile(
        &self,
        created_before: Timestamp,
        checked_before: Timestamp,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<Refund>> {
        let due = Due {
            created_before,
            checked_before,
            now,
            limit,
        };
        let rows: Vec<RefundRow> = self.claim_due_for_check("refunds", "pending", due).await?;
        let mut refunds = rows
            .into_iter()
            .map(RefundRow::into_refund)
            .collect::<Result<Vec<_>>>()?;
        refunds.sort_by_key(|r| (r.created_at, r.id.clone()));
        Ok(refunds)
    }

    async fn mark_refund_checked(&self, id: &RefundId, at: Timestamp) -> Result<()> {
        self.stamp_checked("refunds", id.to_string(), at).await
    }

    async fn stats(&self, now: Timestamp) -> Result<Stats> {
        let orders: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM orders GROUP BY status")
                .fetch_all(&self.pool)
                .await?;
        let deliveries: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, COUNT(*) FROM deliveries GROUP BY state")
                .fetch_all(&self.pool)
                .await?;
        let leased: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM deliveries WHERE state = 'pending' AND lease_until > ?",
        )
        .bind(now.epoch_millis())
        .fetch_one(&self.pool)
        .await?;
        let to_u64 = |rows: Vec<(String, i64)>| {
            rows.into_iter()
                .map(|(k, n)| (k, u64::try_from(n).unwrap_or(0)))
                .collect()
        };
        Ok(Stats {
            orders_by_status: to_u64(orders),
            deliveries_by_state: to_u64(deliveries),
            deliveries_leased: u64::try_from(leased).unwrap_or(0),
            pool: None,
        })
    }

    async fn claim_idempotency(&self, claim: IdempotencyClaim) -> Result<Idempotency> {
        self.writer
            .write(move |c| idempotency::claim(c, claim).boxed())
            .await
    }

    async fn finish_idempotency(
        &self,
        merchant: &MerchantId,
        scope: &str,
        key: &str,
        status: u16,
        body: String,
    ) -> Result<()> {
        let answer = idempotency::Answer {
            merchant: merchant.clone(),
            scope: scope.to_owned(),
            key: key.to_owned(),
            status,
            body,
        };
        self.writer
            .write(move |c| idempotency::finish(c, answer).boxed())
            .await
    }

    async fn release_idempotency(
        &self,
        merchant: &MerchantId,
        scope: &str,
        key: &str,
    ) -> Result<()> {
        let (merchant, scope, key) = (merchant.clone(), scope.to_owned(), key.to_owned());
        self.writer
            .write(move |c| idempotency::release(c, merchant, scope, key).boxed())
            .await
    }

    async fn prune_idempotency(&self, before: Timestamp, limit: u32) -> Result<u64> {
        self.writer
            .write(move |c| idempotency::prune(c, before, limit).boxed())
            .await
    }

    async fn reserve_sign_in(&self, attempt: SignInAttempt) -> Result<Option<Vec<i64>>> {
        self.writer
            .write(move |c| sign_ins::reserve(c, attempt).boxed())
            .await
    }

    async fn release_sign_in(
        &self,
        reserved: Vec<i64>,
        trust: Option<(String, Timestamp)>,
    ) -> Result<()> {
        self.writer
            .write(move |c| sign_ins::release(c, reserved, trust).boxed())
            .await
    }

    async fn insert_user(&self, user: NewUser) -> Result<UserRecord> {
        self.writer
            .write(move |c| users::insert(c, user).boxed())
            .await
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>> {
        users::by_email(&self.pool, email).await
    }

    async fn set_user_password(&self, email: &str, password_hash: String) -> Result<bool> {
        let email = email.to_owned();
        self.writer
            .write(move |c| users::set_password(c, email, password_hash).boxed())
            .await
    }

    async fn insert_session(&self, session: NewSession) -> Result<()> {
        self.writer
            .write(move |c| center::insert_session(c, session).boxed())
            .await
    }

    async fn session_user(&self, id_hash: &str, now: Timestamp) -> Result<Option<UserRecord>> {
        center::session_user(&self.pool, id_hash, now).await
    }

    async fn end_session(&self, id_hash: &str) -> Result<()> {
        let id_hash = id_hash.to_owned();
        self.writer
            .write(move |c| center::end_session(c, id_hash).boxed())
            .await
    }

    async fn prune_sessions(&self, now: Timestamp, limit: u32) -> Result<u64> {
        self.writer
            .write(move |c| center::prune_sessions(c, now, limit).boxed())
            .await
    }

    async fn payments(&self, filter: &PaymentFilter) -> Result<Vec<PaymentSummary>> {
        center::payments(&self.pool, filter).await
    }

    async fn day_totals(
        &self,
        merchant: &MerchantId,
        from: Timestamp,
        days: u32,
    ) -> Result<Vec<DayTotal>> {
        center::day_totals(&self.pool, merchant, from, days).await
    }

    async fn record_audit(&self, entry: AuditEntry) -> Result<()> {
        self.writer
            .write(move |c| center::record_audit(c, entry).boxed())
            .await
    }

    async fn audit_log(&self, merchant: &MerchantId, limit: u32) -> Result<Vec<AuditEntry>> {
        center::audit_log(&self.pool, merchant, limit).await
    }
}
