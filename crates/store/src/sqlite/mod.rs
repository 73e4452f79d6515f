//! The embedded default store: one SQLite file in WAL mode, `synchronous=FULL`.
//!
//! Reads go through a small pool of connections (WAL lets them run beside the writer);
//! every write goes through the group-commit [`writer`].

mod rows;
mod writer;

use async_trait::async_trait;
use futures::FutureExt;
use ottgate_core::{
    Attempt, ChannelIds, CheckoutToken, MerchantId, MerchantRef, Order, OrderId, PaymentMethod,
    Refund, RefundId, RefundStatus, Timestamp,
};
use sqlx::SqliteConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;
use std::time::Duration;

use crate::{
    BeginRefund, CreateOutcome, Delivery, DeliveryAttemptRecord, DeliveryAttemptRow, Idempotency,
    IdempotencyClaim, MerchantRecord, NewOrder, NewRefund, Result, SettleOutcome, SettleRequest,
    StartOutcome, Stats, Store, StoreError,
};
use rows::{AttemptRow, DeliveryAttemptRowDb, DeliveryRow, MerchantRow, OrderRow, RefundRow};
use writer::Writer;

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
        let writer = Writer::start(options).await?;
        Ok(Self { pool, writer })
    }

    /// Rows of `table` (attempts or refunds) still `pending`, created at or before
    /// `created_before` and not asked about since `checked_before`, oldest first: what
    /// reconciliation asks the wallets about.
    async fn due_for_check<R>(
        &self,
        table: &'static str,
        pending: &'static str,
        created_before: Timestamp,
        checked_before: Timestamp,
        limit: u32,
    ) -> Result<Vec<R>>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin,
    {
        let sql = format!(
            "SELECT * FROM {table} WHERE status = ? AND created_at <= ?
               AND (last_checked_at IS NULL OR last_checked_at <= ?)
             ORDER BY created_at LIMIT ?"
        );
        Ok(sqlx::query_as(&sql)
            .bind(pending)
            .bind(created_before.epoch_millis())
            .bind(checked_before.epoch_millis())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?)
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

#[derive(sqlx::FromRow)]
struct IdempotencyRow {
    request_hash: String,
    state: String,
    response_status: Option<i64>,
    response_body: Option<String>,
    created_at: i64,
    locked_until: i64,
}

/// The outcome of claiming a key, read from its row (if any) as of `claim.now`.
fn idempotency_of(row: Option<IdempotencyRow>, claim: &IdempotencyClaim) -> Option<Idempotency> {
    let IdempotencyRow {
        request_hash: hash,
        state,
        response_status: status,
        response_body: body,
        created_at,
        locked_until,
    } = row?;
    let now = claim.now.epoch_millis();
    let retention = i64::try_from(claim.retention.as_millis()).unwrap_or(i64::MAX);
    if created_at.saturating_add(retention) <= now {
        return None; // expired: the key is free again
    }
    if hash != claim.request_hash {
        return Some(Idempotency::Mismatch);
    }
    match (state.as_str(), status, body) {
        ("done", Some(status), Some(body)) => Some(Idempotency::Replay {
            status: u16::try_from(status).unwrap_or(500),
            body,
        }),
        _ if locked_until > now => Some(Idempotency::InProgress),
        // Started, but its request never finished (the process died): take it over.
        _ => None,
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn claim_idempotency(&self, claim: IdempotencyClaim) -> Result<Idempotency> {
        self.writer
            .write(move |c| {
                async move {
                    let row: Option<IdempotencyRow> =
                        sqlx::query_as(
                            "SELECT request_hash, state, response_status, response_body, created_at, locked_until
                             FROM idempotency_keys WHERE merchant_id = ? AND scope = ? AND key = ?",
                        )
                        .bind(claim.merchant_id.as_str())
                        .bind(&claim.scope)
                        .bind(&claim.key)
                        .fetch_optional(&mut *c)
                        .await?;
                    if let Some(outcome) = idempotency_of(row, &claim) {
                        return Ok(outcome);
                    }
                    let lease = i64::try_from(claim.lease.as_millis()).unwrap_or(i64::MAX);
                    sqlx::query(
                        "INSERT INTO idempotency_keys (merchant_id, scope, key, request_hash, state, created_at, locked_until)
                         VALUES (?, ?, ?, ?, 'started', ?, ?)
                         ON CONFLICT (merchant_id, scope, key) DO UPDATE SET
                           request_hash = excluded.request_hash, state = 'started',
                           response_status = NULL, response_body = NULL,
                           created_at = excluded.created_at, locked_until = excluded.locked_until",
                    )
                    .bind(claim.merchant_id.as_str())
                    .bind(&claim.scope)
                    .bind(&claim.key)
                    .bind(&claim.request_hash)
                    .bind(claim.now.epoch_millis())
                    .bind(claim.now.epoch_millis().saturating_add(lease))
                    .execute(&mut *c)
                    .await?;
                    Ok(Idempotency::Fresh)
                }
                .boxed()
            })
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
        let (merchant, scope, key) = (merchant.clone(), scope.to_owned(), key.to_owned());
        self.writer
            .write(move |c| {
                async move {
                    sqlx::query(
                        "UPDATE idempotency_keys SET state = 'done', response_status = ?, response_body = ?
                         WHERE merchant_id = ? AND scope = ? AND key = ?",
                    )
                    .bind(i64::from(status))
                    .bind(&body)
                    .bind(merchant.as_str())
                    .bind(&scope)
                    .bind(&key)
                    .execute(&mut *c)
                    .await?;
                    Ok(())
                }
                .boxed()
            })
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
            .write(move |c| {
                async move {
                    sqlx::query(
                        "DELETE FROM idempotency_keys WHERE merchant_id = ? AND scope = ? AND key = ? AND state = 'started'",
                    )
                    .bind(merchant.as_str())
                    .bind(&scope)
                    .bind(&key)
                    .execute(&mut *c)
                    .await?;
                    Ok(())
                }
                .boxed()
            })
            .await
    }

    async fn prune_idempotency(&self, before: Timestamp, limit: u32) -> Result<u64> {
        self.writer
            .write(move |c| {
                async move {
                    let done = sqlx::query(
                        "DELETE FROM idempotency_keys WHERE rowid IN
                         (SELECT rowid FROM idempotency_keys WHERE created_at < ? LIMIT ?)",
                    )
                    .bind(before.epoch_millis())
                    .bind(i64::from(limit))
                    .execute(&mut *c)
                    .await?;
                    Ok(done.rows_affected())
                }
                .boxed()
            })
            .await
    }

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
            .write(move |c| {
                async move {
                    let m = &record.merchant;
                    let exists: Option<String> = sqlx::query_scalar("SELECT id FROM merchants WHERE id = ? OR app_id = ?")
                        .bind(m.id.as_str())
                        .bind(&m.app_id)
                        .fetch_optional(&mut *c)
                        .await?;
                    if exists.is_some() {
                        return Err(StoreError::Duplicate("merchant"));
                    }
                    sqlx::query(
                        "INSERT INTO merchants (id, name, shop_id, operator_id, app_id, app_key_hash, sign_key_sealed,
                         currencies, methods, created_at, wechat_sub_mch_id, mcc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    )
                    .bind(m.id.as_str())
                    .bind(m.name.as_str())
                    .bind(m.shop_id.as_str())
                    .bind(m.operator_id.as_str())
                    .bind(&m.app_id)
                    .bind(&record.app_key_hash)
                    .bind(&record.sign_key_sealed)
                    .bind(rows::join_codes(m.currencies.iter().map(|c| c.code())))
                    .bind(rows::join_codes(m.methods.iter().map(|c| c.code())))
                    .bind(m.created_at.epoch_millis())
                    .bind(&m.channel_ids.wechat_sub_mch_id)
                    .bind(&m.channel_ids.mcc)
                    .execute(&mut *c)
                    .await?;
                    Ok(())
                }
                .boxed()
            })
            .await
    }

    async fn merchant(&self, id: &MerchantId) -> Result<Option<MerchantRecord>> {
        let row: Option<MerchantRow> = sqlx::query_as("SELECT * FROM merchants WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(MerchantRow::into_record).transpose()
    }

    async fn update_merchant_channels(
        &self,
        id: &MerchantId,
        methods: &[PaymentMethod],
        channel_ids: &ChannelIds,
    ) -> Result<bool> {
        let id = id.clone();
        let methods = rows::join_codes(methods.iter().map(|m| m.code()));
        let ids = channel_ids.clone();
        self.writer
            .write(move |c| {
                async move {
                    let updated = sqlx::query(
                        "UPDATE merchants SET methods = ?, wechat_sub_mch_id = ?, mcc = ? WHERE id = ?",
                    )
                    .bind(&methods)
                    .bind(&ids.wechat_sub_mch_id)
                    .bind(&ids.mcc)
                    .bind(id.as_str())
                    .execute(&mut *c)
                    .await?;
                    Ok(updated.rows_affected() == 1)
                }
                .boxed()
            })
            .await
    }

    async fn merchant_by_app_id(&self, app_id: &str) -> Result<Option<MerchantRecord>> {
        let row: Option<MerchantRow> = sqlx::query_as("SELECT * FROM merchants WHERE app_id = ?")
            .bind(app_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(MerchantRow::into_record).transpose()
    }

    async fn create_order(&self, new: NewOrder) -> Result<CreateOutcome> {
        self.writer
            .write(move |c| ops::create_order(c, new).boxed())
            .await
    }

    async fn order(&self, id: &OrderId) -> Result<Option<Order>> {
        let row: Option<OrderRow> = sqlx::query_as("SELECT * FROM orders WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(OrderRow::into_order).transpose()
    }

    async fn order_by_token(&self, token: &CheckoutToken) -> Result<Option<Order>> {
        let row: Option<OrderRow> = sqlx::query_as("SELECT * FROM orders WHERE token = ?")
            .bind(token.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(OrderRow::into_order).transpose()
    }

    async fn order_by_reference(
        &self,
        merchant: &MerchantId,
        reference: &MerchantRef,
    ) -> Result<Option<Order>> {
        let row: Option<OrderRow> =
            sqlx::query_as("SELECT * FROM orders WHERE merchant_id = ? AND reference = ?")
                .bind(merchant.as_str())
                .bind(reference.as_str())
                .fetch_optional(&self.pool)
                .await?;
        row.map(OrderRow::into_order).transpose()
    }

    async fn orders_with_reference(
        &self,
        reference: &MerchantRef,
        limit: u32,
    ) -> Result<Vec<Order>> {
        let rows: Vec<OrderRow> =
            sqlx::query_as("SELECT * FROM orders WHERE reference = ? ORDER BY created_at LIMIT ?")
                .bind(reference.as_str())
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter().map(OrderRow::into_order).collect()
    }

    async fn set_response_data(&self, order: &OrderId, response_data: String) -> Result<bool> {
        let order = order.clone();
        self.writer
            .write(move |c| {
                async move {
                    let updated = sqlx::query(
                        "UPDATE orders SET response_data = ? WHERE id = ? AND response_data = ''",
                    )
                    .bind(&response_data)
                    .bind(order.as_str())
                    .execute(&mut *c)
                    .await?;
                    Ok(updated.rows_affected() == 1)
                }
                .boxed()
            })
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
            .write(move |c| ops::start_attempt(c, order, method, now).boxed())
            .await
    }

    async fn attempt(&self, id: &OrderId) -> Result<Option<Attempt>> {
        let row: Option<AttemptRow> = sqlx::query_as("SELECT * FROM attempts WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(AttemptRow::into_attempt).transpose()
    }

    async fn merchant_attempt(
        &self,
        merchant: &MerchantId,
        id: &OrderId,
    ) -> Result<Option<Attempt>> {
        let row: Option<AttemptRow> = sqlx::query_as(
            "SELECT attempts.* FROM attempts JOIN orders ON orders.id = attempts.order_id
             WHERE attempts.id = ? AND orders.merchant_id = ?",
        )
        .bind(id.as_str())
        .bind(merchant.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(AttemptRow::into_attempt).transpose()
    }

    async fn order_with_attempts(&self, id: &OrderId) -> Result<Option<(Order, Vec<Attempt>)>> {
        // One read transaction: in WAL mode it reads a single snapshot.
        let mut tx = self.pool.begin().await?;
        let row: Option<OrderRow> = sqlx::query_as("SELECT * FROM orders WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let rows: Vec<AttemptRow> =
            sqlx::query_as("SELECT * FROM attempts WHERE order_id = ? ORDER BY created_at, id")
                .bind(id.as_str())
                .fetch_all(&mut *tx)
                .await?;
        tx.commit().await?;
        let attempts = rows
            .into_iter()
            .map(AttemptRow::into_attempt)
            .collect::<Result<_>>()?;
        Ok(Some((row.into_order()?, attempts)))
    }

    async fn attempts(&self, order: &OrderId) -> Result<Vec<Attempt>> {
        let rows: Vec<AttemptRow> =
            sqlx::query_as("SELECT * FROM attempts WHERE order_id = ? ORDER BY created_at, id")
                .bind(order.as_str())
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter().map(AttemptRow::into_attempt).collect()
    }

    async fn settle(&self, request: SettleRequest) -> Result<SettleOutcome> {
        self.writer
            .write(move |c| ops::settle(c, request).boxed())
            .await
    }

    async fn attempts_to_reconcile(
        &self,
        created_before: Timestamp,
        checked_before: Timestamp,
        limit: u32,
    ) -> Result<Vec<Attempt>> {
        let rows: Vec<AttemptRow> = self
            .due_for_check(
                "attempts",
                "PROCESSING",
                created_before,
                checked_before,
                limit,
            )
            .await?;
        rows.into_iter().map(AttemptRow::into_attempt).collect()
    }

    async fn mark_checked(&self, attempt: &OrderId, at: Timestamp) -> Result<()> {
        self.stamp_checked("attempts", attempt.to_string(), at)
            .await
    }

    async fn close_if_expired(&self, order: &OrderId, now: Timestamp) -> Result<bool> {
        let order = order.clone();
        self.writer
            .write(move |c| ops::close_if_expired(c, order, now).boxed())
            .await
    }

    async fn expire_due(&self, now: Timestamp, limit: u32) -> Result<Vec<OrderId>> {
        self.writer
            .write(move |c| ops::expire_due(c, now, limit).boxed())
            .await
    }

    async fn claim_due_deliveries(
        &self,
        now: Timestamp,
        lease: Duration,
        owner: &str,
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        let owner = owner.to_owned();
        self.writer
            .write(move |c| ops::claim_due_deliveries(c, now, lease, owner, limit).boxed())
            .await
    }

    async fn record_delivery_attempt(&self, record: DeliveryAttemptRecord) -> Result<bool> {
        self.writer
            .write(move |c| ops::record_delivery_attempt(c, record).boxed())
            .await
    }

    async fn deliveries_for_order(&self, order: &OrderId) -> Result<Vec<Delivery>> {
        let rows: Vec<DeliveryRow> =
            sqlx::query_as("SELECT * FROM deliveries WHERE order_id = ? ORDER BY id")
                .bind(order.as_str())
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter().map(DeliveryRow::into_delivery).collect()
    }

    async fn delivery_attempts(&self, delivery_id: i64) -> Result<Vec<DeliveryAttemptRow>> {
        let rows: Vec<DeliveryAttemptRowDb> = sqlx::query_as(
            "SELECT * FROM delivery_attempts WHERE delivery_id = ? ORDER BY attempt_no",
        )
        .bind(delivery_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(DeliveryAttemptRowDb::into_row)
            .collect())
    }

    async fn next_delivery_due(&self) -> Result<Option<Timestamp>> {
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM deliveries WHERE state = 'pending'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(next.map(Timestamp::from_epoch_millis))
    }

    async fn begin_refund(&self, refund: NewRefund) -> Result<BeginRefund> {
        self.writer
            .write(move |c| ops::begin_refund(c, refund).boxed())
            .await
    }

    async fn finish_refund(
        &self,
        id: &RefundId,
        status: RefundStatus,
        channel_refund_id: Option<String>,
        at: Timestamp,
    ) -> Result<Refund> {
        let id = id.clone();
        self.writer
            .write(move |c| ops::finish_refund(c, id, status, channel_refund_id, at).boxed())
            .await
    }

    async fn refunds(&self, payment: &OrderId) -> Result<Vec<Refund>> {
        let rows: Vec<RefundRow> =
            sqlx::query_as("SELECT * FROM refunds WHERE payment_id = ? ORDER BY created_at, id")
                .bind(payment.as_str())
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter().map(RefundRow::into_refund).collect()
    }

    async fn refund(&self, id: &RefundId) -> Result<Option<Refund>> {
        let row: Option<RefundRow> = sqlx::query_as("SELECT * FROM refunds WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(RefundRow::into_refund).transpose()
    }

    async fn refunds_to_reconcile(
        &self,
        created_before: Timestamp,
        checked_before: Timestamp,
        limit: u32,
    ) -> Result<Vec<Refund>> {
        let rows: Vec<RefundRow> = self
            .due_for_check("refunds", "pending", created_before, checked_before, limit)
            .await?;
        rows.into_iter().map(RefundRow::into_refund).collect()
    }

    async fn mark_refund_checked(&self, id: &RefundId, at: Timestamp) -> Result<()> {
        self.stamp_checked("refunds", id.to_string(), at).await
    }

    async fn stats(&self) -> Result<Stats> {
        let orders: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM orders GROUP BY status")
                .fetch_all(&self.pool)
                .await?;
        let deliveries: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, COUNT(*) FROM deliveries GROUP BY state")
                .fetch_all(&self.pool)
                .await?;
        let to_u64 = |rows: Vec<(String, i64)>| {
            rows.into_iter()
                .map(|(k, n)| (k, u64::try_from(n).unwrap_or(0)))
                .collect()
        };
        Ok(Stats {
            orders_by_status: to_u64(orders),
            deliveries_by_state: to_u64(deliveries),
        })
    }
}

/// The write operations, each run by the writer inside its own savepoint.
mod ops {
    use super::*;

    /// Fresh ids tried when a generated id collides with one from another process.
    const ID_RETRIES: usize = 5;

    fn is_unique_violation(e: &sqlx::Error) -> bool {
        matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
    }
    use crate::{DeliveryState, NextStep};
    use ottgate_core::order::settle as transition;
    use ottgate_core::{AttemptStatus, CloseReason, OrderStatus};

    async fn load_order(c: &mut SqliteConnection, id: &str) -> Result<Order> {
        let row: Option<OrderRow> = sqlx::query_as("SELECT * FROM orders WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *c)
            .await?;
        row.ok_or(StoreError::NotFound("order"))?.into_order()
    }

    async fn load_attempt(c: &mut SqliteConnection, id: &str) -> Result<Attempt> {
        let row: Option<AttemptRow> = sqlx::query_as("SELECT * FROM attempts WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *c)
            .await?;
        row.ok_or(StoreError::NotFound("attempt"))?.into_attempt()
    }

    pub(super) async fn create_order(
        c: &mut SqliteConnection,
        new: NewOrder,
    ) -> Result<CreateOutcome> {
        let o = &new.order;
        if let Some(reference) = &o.reference {
            let existing: Option<(String, String)> =
                sqlx::query_as("SELECT request_md5, response_data FROM orders WHERE merchant_id = ? AND reference = ?")
                    .bind(o.merchant_id.as_str())
                    .bind(reference.as_str())
                    .fetch_optional(&mut *c)
                    .await?;
            if let Some((request_md5, response_data)) = existing {
                return Ok(CreateOutcome::Exists {
                    request_md5,
                    response_data,
                });
            }
        }
        let mut id = o.id.clone();
        for _ in 0..ID_RETRIES {
            let inserted = sqlx::query(
                "INSERT INTO orders (id, merchant_id, kind, reference, token, amount, currency, sale_num, shop_id,
                 operator_id, redirect_url, callback_url, duration_secs, email, remarks, status, created_at, expires_at,
                 request_md5, response_data, tip)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(id.as_str())
            .bind(o.merchant_id.as_str())
            .bind(o.kind.code())
            .bind(o.reference.as_ref().map(MerchantRef::as_str))
            .bind(o.token.as_str())
            .bind(rows::amount_to_db(o.money.amount))
            .bind(o.money.currency.code())
            .bind(&o.sale_num)
            .bind(o.shop_id.as_str())
            .bind(o.operator_id.as_str())
            .bind(&o.redirect_url)
            .bind(&o.callback_url)
            .bind(i64::try_from(o.duration_secs).unwrap_or(i64::MAX))
            .bind(&o.email)
            .bind(&o.remarks)
            .bind(o.status.code())
            .bind(o.created_at.epoch_millis())
            .bind(o.expires_at.epoch_millis())
            .bind(&new.request_md5)
            .bind(&new.response_data)
            .bind(i64::try_from(o.tip).unwrap_or(i64::MAX))
            .execute(&mut *c)
            .await;
            match inserted {
                Ok(_) => {
                    let attempt = match new.first_attempt {
                        Some(method) => {
                            let order = Order {
                                id: id.clone(),
                                ..o.clone()
                            };
                            Some(insert_attempt(c, &order, method, o.created_at).await?)
                        }
                        None => None,
                    };
                    return Ok(CreateOutcome::Created { id, attempt });
                }
                // The reference was checked above in this same transaction, so a unique
                // violation here is an id generated by another process at the same moment.
                Err(e) if is_unique_violation(&e) => id = OrderId::generate(o.created_at),
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Duplicate("order id"))
    }

    async fn close_expired(c: &mut SqliteConnection, order_id: &str, now: Timestamp) -> Result<()> {
        sqlx::query("UPDATE orders SET status = 'expired', finished_at = ? WHERE id = ? AND status = 'processing'")
            .bind(now.epoch_millis())
            .bind(order_id)
            .execute(&mut *c)
            .await?;
        sqlx::query(
            "UPDATE attempts SET status = ?, settled_at = ? WHERE order_id = ? AND status = ?",
        )
        .bind(AttemptStatus::Expired.code())
        .bind(now.epoch_millis())
        .bind(order_id)
        .bind(AttemptStatus::Pending.code())
        .execute(&mut *c)
        .await?;
        Ok(())
    }

    pub(super) async fn start_attempt(
        c: &mut SqliteConnection,
        order_id: OrderId,
        method: PaymentMethod,
        now: Timestamp,
    ) -> Result<StartOutcome> {
        let order = load_order(c, order_id.as_str()).await?;
        if let Err(reason) = order.check_payable(now) {
            if order.status == OrderStatus::Processing {
                close_expired(c, order_id.as_str(), now).await?;
            }
            return Ok(StartOutcome::NotPayable(reason));
        }
        let pending: Option<AttemptRow> =
            sqlx::query_as("SELECT * FROM attempts WHERE order_id = ? AND method = ? AND status = ? ORDER BY created_at DESC LIMIT 1")
                .bind(order_id.as_str())
                .bind(method.code())
                .bind(AttemptStatus::Pending.code())
                .fetch_optional(&mut *c)
                .await?;
        if let Some(row) = pending {
            return Ok(StartOutcome::Resumed(row.into_attempt()?));
        }
        Ok(StartOutcome::Created(
            insert_attempt(c, &order, method, now).await?,
        ))
    }

    /// Inserts a new pending attempt of `order`, retrying an id that collides with one
    /// generated by another process.
    async fn insert_attempt(
        c: &mut SqliteConnection,
        order: &Order,
        method: PaymentMethod,
        now: Timestamp,
    ) -> Result<Attempt> {
        for _ in 0..ID_RETRIES {
            let attempt = Attempt {
                id: OrderId::generate(now),
                order_id: order.id.clone(),
                method,
                status: AttemptStatus::Pending,
                money: order.money,
                created_at: now,
                settled_at: None,
                bizpay_order_id: None,
            };
            let inserted = sqlx::query(
                "INSERT INTO attempts (id, order_id, method, status, amount, currency, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(attempt.id.as_str())
            .bind(attempt.order_id.as_str())
            .bind(method.code())
            .bind(attempt.status.code())
            .bind(rows::amount_to_db(attempt.money.amount))
            .bind(attempt.money.currency.code())
            .bind(now.epoch_millis())
            .execute(&mut *c)
            .await;
            match inserted {
                Ok(_) => return Ok(attempt),
                Err(e) if is_unique_violation(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Duplicate("attempt id"))
    }

    pub(super) async fn settle(
        c: &mut SqliteConnection,
        req: SettleRequest,
    ) -> Result<SettleOutcome> {
        let attempt = load_attempt(c, req.attempt_id.as_str()).await?;
        let order = load_order(c, attempt.order_id.as_str()).await?;
        let effective = order.status_at(req.at);
        let settlement = match transition(effective, attempt.status, req.outcome) {
            Ok(None) => return Ok(SettleOutcome::AlreadyApplied { order, attempt }),
            Err(error) => {
                return Ok(SettleOutcome::Rejected {
                    error,
                    order,
                    attempt,
                });
            }
            Ok(Some(s)) => s,
        };
        sqlx::query(
            "UPDATE attempts SET status = ?, settled_at = ?, bizpay_order_id = COALESCE(?, bizpay_order_id),
             duplicate_payment = ? WHERE id = ? AND status = ?",
        )
        .bind(settlement.attempt.code())
        .bind(req.at.epoch_millis())
        .bind(&req.bizpay_order_id)
        .bind(settlement.duplicate_payment)
        .bind(attempt.id.as_str())
        .bind(attempt.status.code())
        .execute(&mut *c)
        .await?;
        if settlement.order != order.status {
            let finished = !matches!(settlement.order, OrderStatus::Processing);
            sqlx::query(
                "UPDATE orders SET status = ?,
                   paid_attempt = CASE WHEN ? THEN ? ELSE paid_attempt END,
                   finished_at = CASE WHEN ? THEN ? ELSE finished_at END,
                   paid_after_close = paid_after_close OR ?
                 WHERE id = ?",
            )
            .bind(settlement.order.code())
            .bind(settlement.order_paid)
            .bind(attempt.id.as_str())
            .bind(finished)
            .bind(req.at.epoch_millis())
            .bind(settlement.paid_after_close)
            .bind(order.id.as_str())
            .execute(&mut *c)
            .await?;
            if matches!(settlement.order, OrderStatus::Closed(CloseReason::Expired)) {
                close_expired(c, order.id.as_str(), req.at).await?;
            }
        }
        if settlement.order_paid
            && let Some(delivery) = &req.on_paid
        {
            insert_delivery(c, delivery, req.at).await?;
        }
        let order = load_order(c, order.id.as_str()).await?;
        let attempt = load_attempt(c, attempt.id.as_str()).await?;
        Ok(SettleOutcome::Applied {
            settlement,
            order,
            attempt,
        })
    }

    async fn insert_delivery(
        c: &mut SqliteConnection,
        d: &crate::NewDelivery,
        now: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO deliveries (notify_id, merchant_id, order_id, attempt_id, event, url, body, state,
             next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
        )
        .bind(d.notify_id.as_str())
        .bind(d.merchant_id.as_str())
        .bind(d.order_id.as_str())
        .bind(d.attempt_id.as_ref().map(OrderId::as_str))
        .bind(&d.event)
        .bind(&d.url)
        .bind(&d.body)
        .bind(now.epoch_millis())
        .bind(now.epoch_millis())
        .execute(&mut *c)
        .await?;
        Ok(())
    }

    pub(super) async fn close_if_expired(
        c: &mut SqliteConnection,
        order: OrderId,
        now: Timestamp,
    ) -> Result<bool> {
        let due: Option<String> = sqlx::query_scalar(
            "SELECT id FROM orders WHERE id = ? AND status = 'processing' AND expires_at <= ?",
        )
        .bind(order.as_str())
        .bind(now.epoch_millis())
        .fetch_optional(&mut *c)
        .await?;
        if due.is_none() {
            return Ok(false);
        }
        close_expired(c, order.as_str(), now).await?;
        Ok(true)
    }

    pub(super) async fn expire_due(
        c: &mut SqliteConnection,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<OrderId>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM orders WHERE status = 'processing' AND expires_at <= ? ORDER BY expires_at LIMIT ?",
        )
        .bind(now.epoch_millis())
        .bind(i64::from(limit))
        .fetch_all(&mut *c)
        .await?;
        let mut closed = Vec::with_capacity(ids.len());
        for id in ids {
            close_expired(c, &id, now).await?;
            closed.push(OrderId::parse(&id).map_err(|e| StoreError::Corrupt(e.to_string()))?);
        }
        Ok(closed)
    }

    pub(super) async fn claim_due_deliveries(
        c: &mut SqliteConnection,
        now: Timestamp,
        lease: Duration,
        owner: String,
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        let rows: Vec<DeliveryRow> = sqlx::query_as(
            "UPDATE deliveries SET lease_owner = ?, lease_until = ?
             WHERE id IN (SELECT id FROM deliveries
                          WHERE state = 'pending' AND next_attempt_at <= ?
                            AND (lease_until IS NULL OR lease_until <= ?)
                          ORDER BY next_attempt_at LIMIT ?)
             RETURNING *",
        )
        .bind(&owner)
        .bind(now.plus(lease).epoch_millis())
        .bind(now.epoch_millis())
        .bind(now.epoch_millis())
        .bind(i64::from(limit))
        .fetch_all(&mut *c)
        .await?;
        let mut out: Vec<Delivery> = rows
            .into_iter()
            .map(DeliveryRow::into_delivery)
            .collect::<Result<_>>()?;
        out.sort_by_key(|d| d.id);
        Ok(out)
    }

    pub(super) async fn record_delivery_attempt(
        c: &mut SqliteConnection,
        r: DeliveryAttemptRecord,
    ) -> Result<bool> {
        let attempts: Option<i64> = sqlx::query_scalar(
            "SELECT attempts FROM deliveries WHERE id = ? AND lease_owner = ? AND state = 'pending'",
        )
        .bind(r.delivery_id)
        .bind(&r.lease_owner)
        .fetch_optional(&mut *c)
        .await?;
        let Some(attempts) = attempts else {
            return Ok(false);
        };
        let attempt_no = attempts + 1;
        let finished_at = r.started_at.plus(r.duration);
        sqlx::query(
            "INSERT INTO delivery_attempts (delivery_id, attempt_no, started_at, duration_ms, http_status, error)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(r.delivery_id)
        .bind(attempt_no)
        .bind(r.started_at.epoch_millis())
        .bind(i64::try_from(r.duration.as_millis()).unwrap_or(i64::MAX))
        .bind(r.http_status.map(i64::from))
        .bind(&r.error)
        .execute(&mut *c)
        .await?;
        let (state, next_at, delivered_at) = match r.next {
            NextStep::Delivered => (
                DeliveryState::Delivered,
                None,
                Some(finished_at.epoch_millis()),
            ),
            NextStep::RetryAt(t) => (DeliveryState::Pending, Some(t.epoch_millis()), None),
            NextStep::Exhausted => (DeliveryState::Exhausted, None, None),
        };
        sqlx::query(
            "UPDATE deliveries SET attempts = ?, state = ?, next_attempt_at = ?, delivered_at = ?, last_error = ?,
             lease_owner = NULL, lease_until = NULL WHERE id = ?",
        )
        .bind(attempt_no)
        .bind(state.code())
        .bind(next_at)
        .bind(delivered_at)
        .bind(&r.error)
        .bind(r.delivery_id)
        .execute(&mut *c)
        .await?;
        Ok(true)
    }

    async fn load_refund(c: &mut SqliteConnection, id: &str) -> Result<Refund> {
        let row: Option<RefundRow> = sqlx::query_as("SELECT * FROM refunds WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *c)
            .await?;
        row.ok_or(StoreError::NotFound("refund"))?.into_refund()
    }

    pub(super) async fn begin_refund(
        c: &mut SqliteConnection,
        r: NewRefund,
    ) -> Result<BeginRefund> {
        let payment: Option<AttemptRow> = sqlx::query_as(
            "SELECT a.* FROM attempts a JOIN orders o ON o.id = a.order_id WHERE a.id = ? AND o.merchant_id = ?",
        )
        .bind(r.payment_id.as_str())
        .bind(r.merchant_id.as_str())
        .fetch_optional(&mut *c)
        .await?;
        let Some(payment) = payment else {
            return Ok(BeginRefund::PaymentNotFound);
        };
        let payment = payment.into_attempt()?;
        if let Some(merchant_refund_id) = &r.merchant_refund_id {
            let earlier: Option<RefundRow> = sqlx::query_as(
                "SELECT * FROM refunds WHERE merchant_id = ? AND merchant_refund_id = ?",
            )
            .bind(r.merchant_id.as_str())
            .bind(merchant_refund_id)
            .fetch_optional(&mut *c)
            .await?;
            if let Some(earlier) = earlier {
                let earlier = earlier.into_refund()?;
                let same = earlier.payment_id == r.payment_id && earlier.money.amount == r.amount;
                return Ok(if same {
                    BeginRefund::Replayed(earlier)
                } else {
                    BeginRefund::IdReused(earlier)
                });
            }
        }
        if payment.status != AttemptStatus::Paid {
            return Ok(BeginRefund::NotRefundable(payment.status));
        }
        let held: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(amount), 0) FROM refunds WHERE payment_id = ? AND status IN ('pending', 'success')",
        )
        .bind(payment.id.as_str())
        .fetch_one(&mut *c)
        .await?;
        let refundable = payment
            .money
            .amount
            .minor()
            .saturating_sub(u64::try_from(held).unwrap_or(0));
        if r.amount.minor() > refundable {
            return Ok(BeginRefund::Exceeds { refundable });
        }
        let refund = Refund {
            id: r.id,
            merchant_id: r.merchant_id,
            payment_id: payment.id,
            merchant_refund_id: r.merchant_refund_id,
            money: ottgate_core::Money::new(r.amount, payment.money.currency),
            status: RefundStatus::Pending,
            created_at: r.at,
            finished_at: None,
            channel_refund_id: None,
        };
        sqlx::query(
            "INSERT INTO refunds (id, merchant_id, payment_id, merchant_refund_id, amount, currency, status, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(refund.id.as_str())
        .bind(refund.merchant_id.as_str())
        .bind(refund.payment_id.as_str())
        .bind(&refund.merchant_refund_id)
        .bind(rows::amount_to_db(refund.money.amount))
        .bind(refund.money.currency.code())
        .bind(refund.status.code())
        .bind(refund.created_at.epoch_millis())
        .execute(&mut *c)
        .await?;
        Ok(BeginRefund::Reserved(refund))
    }

    pub(super) async fn finish_refund(
        c: &mut SqliteConnection,
        id: RefundId,
        status: RefundStatus,
        channel_refund_id: Option<String>,
        at: Timestamp,
    ) -> Result<Refund> {
        sqlx::query(
            "UPDATE refunds SET status = ?, finished_at = ?, channel_refund_id = COALESCE(?, channel_refund_id)
             WHERE id = ? AND status = 'pending'",
        )
        .bind(status.code())
        .bind(at.epoch_millis())
        .bind(&channel_refund_id)
        .bind(id.as_str())
        .execute(&mut *c)
        .await?;
        load_refund(c, id.as_str()).await
    }
}
