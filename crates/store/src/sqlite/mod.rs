//! The embedded default store: one SQLite file in WAL mode, `synchronous=FULL`.
//!
//! The [`engine`] runs every write on one writer thread (group commit) and every read on a
//! few reader threads, each owning a synchronous connection with its prepared statements
//! cached. The queries live with their table (`merchants`, `orders`, `attempts`,
//! `refunds`, `deliveries`, `idempotency`, `sign_ins`, `users`, `center`); the [`Store`]
//! implementation here only says which runs where.

mod attempts;
mod center;
mod db;
mod deliveries;
pub(crate) mod engine;
mod idempotency;
mod merchants;
mod migrate;
mod orders;
mod refunds;
mod sign_ins;
mod users;

use async_trait::async_trait;
use ottgate_core::{
    Attempt, AttemptId, ChannelIds, CheckoutToken, MerchantId, MerchantRef, NotifyId, Order,
    OrderId, PaymentMethod, Refund, RefundId, RefundStatus, Timestamp,
};
use rusqlite::{Connection, params};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::rows::{AttemptRow, RefundRow};
use crate::{
    AuditEntry, BeginRefund, CreateOutcome, DayTotal, Delivery, DeliveryAttemptRecord,
    DeliveryAttemptRow, Event, Idempotency, IdempotencyClaim, MerchantRecord, NewOrder, NewRefund,
    NewSession, NewUser, PaymentFilter, PaymentSummary, Result, SettleOutcome, SettleRequest,
    SignInAttempt, StartOutcome, Stats, Store, StoreError, UserRecord, UserRemoval,
};
use engine::Engine;

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

/// SQLite-backed [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    engine: Engine,
}

/// The file a `sqlite://path`, `sqlite:path` or plain path names (query options, which
/// earlier versions accepted, are ignored: every connection is configured the same way).
fn file_of(url: &str) -> PathBuf {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    PathBuf::from(path.split('?').next().unwrap_or(path))
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://path` or a plain
    /// path) and applies pending migrations.
    pub async fn open(url: &str) -> Result<Self> {
        Self::open_with(url, engine::MAX_BATCH).await
    }

    /// As [`SqliteStore::open`], with at most `max_batch` writes sharing one commit (1: a
    /// commit per write — what group commit is measured against).
    pub async fn open_with(url: &str, max_batch: usize) -> Result<Self> {
        let path = file_of(url);
        // The writer and each reader open the file on their own connection: an in-memory
        // database would be a different, empty one on each.
        if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" {
            return Err(StoreError::Config(format!(
                "{url}: the SQLite store needs a file (an in-memory database is not supported)"
            )));
        }
        let engine = tokio::task::spawn_blocking(move || -> Result<Engine> {
            let mut c = engine::connect(&path)?;
            migrate::run(&mut c)?;
            drop(c);
            Engine::start(&path, max_batch)
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("opening the database: {e}")))??;
        Ok(Self { engine })
    }

    /// The database file (for `copy`, which reads every table on a connection of its own).
    pub(crate) fn path(&self) -> &Path {
        self.engine.path()
    }

    /// Rows of `table` (attempts or refunds) still `pending`, created at or before
    /// `created_before` and not asked about since `checked_before`, oldest first, each
    /// marked checked at `now`: what reconciliation asks the wallets about.
    async fn claim_due_for_check<R, F>(
        &self,
        table: &'static str,
        pending: &'static str,
        due: Due,
        convert: F,
    ) -> Result<Vec<R>>
    where
        R: Send + 'static,
        F: Fn(&rusqlite::Row<'_>) -> rusqlite::Result<R> + Send + 'static,
    {
        self.engine
            .write(move |c| {
                let sql = format!(
                    "UPDATE {table} SET last_checked_at = ?1 WHERE id IN
                       (SELECT id FROM {table} WHERE status = ?2 AND created_at <= ?3
                          AND (last_checked_at IS NULL OR last_checked_at <= ?4)
                        ORDER BY created_at LIMIT ?5)
                     RETURNING *"
                );
                db::all(
                    c,
                    &sql,
                    params![
                        due.now.epoch_millis(),
                        pending,
                        due.created_before.epoch_millis(),
                        due.checked_before.epoch_millis(),
                        i64::from(due.limit),
                    ],
                    convert,
                )
            })
            .await
    }

    /// Records that reconciliation asked about row `id` of `table` at `at`.
    async fn stamp_checked(&self, table: &'static str, id: String, at: Timestamp) -> Result<()> {
        self.engine
            .write(move |c| {
                let sql = format!("UPDATE {table} SET last_checked_at = ?1 WHERE id = ?2");
                db::exec(c, &sql, params![at.epoch_millis(), id])?;
                Ok(())
            })
            .await
    }
}

/// Opens another connection to the database (for `copy`'s reading thread).
pub(crate) fn connect(path: &Path) -> Result<Connection> {
    engine::connect(path)
}

#[async_trait]
impl Store for SqliteStore {
    async fn ready(&self) -> Result<()> {
        let applied = self.engine.read(migrate::applied).await?;
        match migrate::MIGRATIONS
            .iter()
            .find(|(version, ..)| !applied.contains(version))
        {
            Some((missing, ..)) => Err(StoreError::Corrupt(format!(
                "migration {missing} not applied"
            ))),
            None => Ok(()),
        }
    }

    async fn insert_merchant(&self, record: MerchantRecord) -> Result<()> {
        self.engine
            .write(move |c| merchants::insert(c, &record))
            .await
    }

    async fn merchant(&self, id: &MerchantId) -> Result<Option<MerchantRecord>> {
        let id = id.clone();
        self.engine.read(move |c| merchants::by_id(c, &id)).await
    }

    async fn merchant_by_app_id(&self, app_id: &str) -> Result<Option<MerchantRecord>> {
        let app_id = app_id.to_owned();
        self.engine
            .read(move |c| merchants::by_app_id(c, &app_id))
            .await
    }

    async fn rotate_sign_key(
        &self,
        id: &MerchantId,
        sealed: Vec<u8>,
        previous_until: Timestamp,
    ) -> Result<bool> {
        let id = id.clone();
        self.engine
            .write(move |c| merchants::rotate_sign_key(c, &id, &sealed, previous_until))
            .await
    }

    async fn rotate_webhook_secret(
        &self,
        id: &MerchantId,
        previous_until: Timestamp,
    ) -> Result<Option<u32>> {
        let id = id.clone();
        self.engine
            .write(move |c| merchants::rotate_webhook_secret(c, &id, previous_until))
            .await
    }

    async fn users_of(&self, merchant: &MerchantId) -> Result<Vec<UserRecord>> {
        let merchant = merchant.clone();
        self.engine
            .read(move |c| users::of_merchant(c, &merchant))
            .await
    }

    async fn update_merchant_channels(
        &self,
        id: &MerchantId,
        methods: &[PaymentMethod],
        channel_ids: &ChannelIds,
    ) -> Result<bool> {
        let (id, methods, ids) = (id.clone(), methods.to_vec(), channel_ids.clone());
        self.engine
            .write(move |c| merchants::update_channels(c, &id, &methods, &ids))
            .await
    }

    async fn create_order(&self, new: NewOrder) -> Result<CreateOutcome> {
        self.engine.write(move |c| orders::create(c, &new)).await
    }

    async fn order(&self, id: &OrderId) -> Result<Option<Order>> {
        let id = id.clone();
        self.engine.read(move |c| orders::by_id(c, &id)).await
    }

    async fn order_by_token(&self, token: &CheckoutToken) -> Result<Option<Order>> {
        let token = token.clone();
        self.engine.read(move |c| orders::by_token(c, &token)).await
    }

    async fn order_by_reference(
        &self,
        merchant: &MerchantId,
        reference: &MerchantRef,
    ) -> Result<Option<Order>> {
        let (merchant, reference) = (merchant.clone(), reference.clone());
        self.engine
            .read(move |c| orders::by_reference(c, &merchant, &reference))
            .await
    }

    async fn orders_with_reference(
        &self,
        reference: &MerchantRef,
        limit: u32,
    ) -> Result<Vec<Order>> {
        let reference = reference.clone();
        self.engine
            .read(move |c| orders::with_reference(c, &reference, limit))
            .await
    }

    async fn set_response_data(&self, order: &OrderId, response_data: String) -> Result<bool> {
        let order = order.clone();
        self.engine
            .write(move |c| orders::set_response_data(c, &order, &response_data))
            .await
    }

    async fn start_attempt(
        &self,
        order: &OrderId,
        method: PaymentMethod,
        now: Timestamp,
    ) -> Result<StartOutcome> {
        let order = order.clone();
        self.engine
            .write(move |c| attempts::start(c, &order, method, now))
            .await
    }

    async fn attempt(&self, id: &AttemptId) -> Result<Option<Attempt>> {
        let id = id.clone();
        self.engine.read(move |c| attempts::by_id(c, &id)).await
    }

    async fn merchant_attempt(
        &self,
        merchant: &MerchantId,
        id: &AttemptId,
    ) -> Result<Option<Attempt>> {
        let (merchant, id) = (merchant.clone(), id.clone());
        self.engine
            .read(move |c| attempts::of_merchant(c, &merchant, &id))
            .await
    }

    async fn attempts(&self, order: &OrderId) -> Result<Vec<Attempt>> {
        let order = order.clone();
        self.engine
            .read(move |c| attempts::of_order(c, &order))
            .await
    }

    async fn order_with_attempts(&self, id: &OrderId) -> Result<Option<(Order, Vec<Attempt>)>> {
        let id = id.clone();
        self.engine
            .read(move |c| orders::with_attempts(c, &id, None))
            .await
    }

    async fn merchant_order_with_attempts(
        &self,
        merchant: &MerchantId,
        id: &OrderId,
    ) -> Result<Option<(Order, Vec<Attempt>)>> {
        let (merchant, id) = (merchant.clone(), id.clone());
        self.engine
            .read(move |c| orders::with_attempts(c, &id, Some(&merchant)))
            .await
    }

    async fn settle(&self, request: SettleRequest) -> Result<SettleOutcome> {
        self.engine
            .write(move |c| attempts::settle(c, &request))
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
        let rows = self
            .claim_due_for_check("attempts", "PROCESSING", due, AttemptRow::from_sqlite)
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
        self.engine
            .write(move |c| orders::close_if_expired(c, &order, now))
            .await
    }

    async fn expire_due(&self, now: Timestamp, limit: u32) -> Result<Vec<OrderId>> {
        self.engine
            .write(move |c| orders::expire_due(c, now, limit))
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
        self.engine
            .write(move |c| deliveries::claim_due(c, &claim))
            .await
    }

    async fn record_delivery_attempt(&self, record: DeliveryAttemptRecord) -> Result<bool> {
        self.engine
            .write(move |c| deliveries::record_attempt(c, &record))
            .await
    }

    async fn deliveries_for_order(&self, order: &OrderId) -> Result<Vec<Delivery>> {
        let order = order.clone();
        self.engine
            .read(move |c| deliveries::of_order(c, &order))
            .await
    }

    async fn delivery_attempts(&self, delivery_id: i64) -> Result<Vec<DeliveryAttemptRow>> {
        self.engine
            .read(move |c| deliveries::attempts_of(c, delivery_id))
            .await
    }

    async fn next_delivery_due(&self) -> Result<Option<Timestamp>> {
        self.engine.read(deliveries::next_due).await
    }

    async fn events(
        &self,
        merchant: &MerchantId,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<Event>> {
        let merchant = merchant.clone();
        self.engine
            .read(move |c| deliveries::events(c, &merchant, since, limit))
            .await
    }

    async fn prune_events(&self, before: Timestamp, limit: u32) -> Result<u64> {
        self.engine
            .write(move |c| deliveries::prune(c, before, limit))
            .await
    }

    async fn redeliver(
        &self,
        merchant: &MerchantId,
        notify_id: &NotifyId,
        now: Timestamp,
    ) -> Result<Option<Delivery>> {
        let (merchant, notify_id) = (merchant.clone(), notify_id.clone());
        self.engine
            .write(move |c| deliveries::redeliver(c, &merchant, &notify_id, now))
            .await
    }

    async fn begin_refund(&self, refund: NewRefund) -> Result<BeginRefund> {
        self.engine.write(move |c| refunds::begin(c, &refund)).await
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
        self.engine
            .write(move |c| refunds::finish(c, &finish))
            .await
    }

    async fn refunds(&self, payment: &AttemptId) -> Result<Vec<Refund>> {
        let payment = payment.clone();
        self.engine
            .read(move |c| refunds::of_payment(c, &payment))
            .await
    }

    async fn refund(&self, id: &RefundId) -> Result<Option<Refund>> {
        let id = id.clone();
        self.engine.read(move |c| refunds::by_id(c, &id)).await
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
        let rows = self
            .claim_due_for_check("refunds", "pending", due, RefundRow::from_sqlite)
            .await?;
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
        self.engine
            .read(move |c| {
                let count = |row: &rusqlite::Row<'_>| {
                    Ok((
                        row.get::<_, String>(0)?,
                        u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
                    ))
                };
                let orders = db::all(
                    c,
                    "SELECT status, COUNT(*) FROM orders GROUP BY status",
                    [],
                    count,
                )?;
                let deliveries = db::all(
                    c,
                    "SELECT state, COUNT(*) FROM deliveries GROUP BY state",
                    [],
                    count,
                )?;
                let leased: i64 = db::one(
                    c,
                    "SELECT COUNT(*) FROM deliveries WHERE state = 'pending' AND lease_until > ?1",
                    [now.epoch_millis()],
                    db::first,
                )?;
                Ok(Stats {
                    orders_by_status: orders,
                    deliveries_by_state: deliveries,
                    deliveries_leased: u64::try_from(leased).unwrap_or(0),
                    pool: None,
                })
            })
            .await
    }

    async fn claim_idempotency(&self, claim: IdempotencyClaim) -> Result<Idempotency> {
        self.engine
            .write(move |c| idempotency::claim(c, &claim))
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
        self.engine
            .write(move |c| idempotency::finish(c, &answer))
            .await
    }

    async fn release_idempotency(
        &self,
        merchant: &MerchantId,
        scope: &str,
        key: &str,
    ) -> Result<()> {
        let (merchant, scope, key) = (merchant.clone(), scope.to_owned(), key.to_owned());
        self.engine
            .write(move |c| idempotency::release(c, &merchant, &scope, &key))
            .await
    }

    async fn prune_idempotency(&self, before: Timestamp, limit: u32) -> Result<u64> {
        self.engine
            .write(move |c| idempotency::prune(c, before, limit))
            .await
    }

    async fn insert_user(&self, user: NewUser) -> Result<UserRecord> {
        self.engine.write(move |c| users::insert(c, &user)).await
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>> {
        let email = email.to_owned();
        self.engine.read(move |c| users::by_email(c, &email)).await
    }

    async fn set_user_password(&self, email: &str, password_hash: String) -> Result<bool> {
        let email = email.to_owned();
        self.engine
            .write(move |c| users::set_password(c, &email, &password_hash))
            .await
    }

    async fn remove_user(&self, merchant: &MerchantId, email: &str) -> Result<UserRemoval> {
        let (merchant, email) = (merchant.clone(), email.to_owned());
        self.engine
            .write(move |c| users::remove(c, &merchant, &email))
            .await
    }

    async fn insert_session(&self, session: NewSession) -> Result<()> {
        self.engine
            .write(move |c| center::insert_session(c, &session))
            .await
    }

    async fn session_user(&self, id_hash: &str, now: Timestamp) -> Result<Option<UserRecord>> {
        let id_hash = id_hash.to_owned();
        self.engine
            .read(move |c| center::session_user(c, &id_hash, now))
            .await
    }

    async fn end_session(&self, id_hash: &str) -> Result<()> {
        let id_hash = id_hash.to_owned();
        self.engine
            .write(move |c| center::end_session(c, &id_hash))
            .await
    }

    async fn prune_sessions(&self, now: Timestamp, limit: u32) -> Result<u64> {
        self.engine
            .write(move |c| center::prune_sessions(c, now, limit))
            .await
    }

    async fn payments(&self, filter: &PaymentFilter) -> Result<Vec<PaymentSummary>> {
        let filter = filter.clone();
        self.engine
            .read(move |c| center::payments(c, &filter))
            .await
    }

    async fn day_totals(
        &self,
        merchant: &MerchantId,
        from: Timestamp,
        days: u32,
    ) -> Result<Vec<DayTotal>> {
        let merchant = merchant.clone();
        self.engine
            .read(move |c| center::day_totals(c, &merchant, from, days))
            .await
    }

    async fn record_audit(&self, entry: AuditEntry) -> Result<()> {
        self.engine
            .write(move |c| center::record_audit(c, &entry))
            .await
    }

    async fn audit_log(&self, merchant: &MerchantId, limit: u32) -> Result<Vec<AuditEntry>> {
        let merchant = merchant.clone();
        self.engine
            .read(move |c| center::audit_log(c, &merchant, limit))
            .await
    }

    async fn reserve_sign_in(&self, attempt: SignInAttempt) -> Result<Option<Vec<i64>>> {
        self.engine
            .write(move |c| sign_ins::reserve(c, &attempt))
            .await
    }

    async fn release_sign_in(
        &self,
        reserved: Vec<i64>,
        trust: Option<(String, Timestamp)>,
    ) -> Result<()> {
        self.engine
            .write(move |c| sign_ins::release(c, &reserved, trust.as_ref()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::file_of;
    use std::path::PathBuf;

    #[tokio::test]
    async fn an_in_memory_database_is_refused_with_a_reason() {
        for url in ["sqlite::memory:", "sqlite://", ":memory:"] {
            let e = super::SqliteStore::open(url).await.unwrap_err();
            assert!(e.to_string().contains("needs a file"), "{url}: {e}");
        }
    }

    #[test]
    fn database_urls_name_their_file() {
        for (url, file) in [
            ("sqlite://ottgate.db", "ottgate.db"),
            ("sqlite:///var/lib/ottgate.db", "/var/lib/ottgate.db"),
            ("sqlite:data/o.db?mode=rwc", "data/o.db"),
            ("plain.db", "plain.db"),
        ] {
            assert_eq!(file_of(url), PathBuf::from(file), "{url}");
        }
    }
}
