//! The PostgreSQL store, for several gateways on one database (and a standby).
//!
//! Each write is one transaction on a pooled connection, committed with
//! `synchronous_commit=on` before the method returns (with a synchronous standby, after the
//! standby has it too). What several gateways do at once is made safe in the database:
//! a change to an order and its attempts locks the order's row first; refunds lock their
//! payment's row; due deliveries and expiring orders are taken with `FOR UPDATE SKIP
//! LOCKED`; keys and references that two gateways may create at the same instant are
//! inserted with `ON CONFLICT DO NOTHING` and the loser runs again. A transaction that
//! meets a deadlock or such a race is run again, a few times, before [`StoreError::Contended`].
//!
//! The URL is libpq's: several hosts (`postgres://u@h1:5432,h2:5432/db?target_session_attrs=read-write`)
//! make the pool connect to whichever is the primary, so after a failover new connections
//! go to the promoted standby by themselves. The queries live with their table, as in the
//! SQLite store.

mod attempts;
mod batch;
mod center;
mod db;
mod deliveries;
mod idempotency;
mod merchants;
mod migrate;
mod orders;
mod refunds;
mod sign_ins;
mod users;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use ottgate_core::{
    Attempt, AttemptId, ChannelIds, CheckoutToken, MerchantId, MerchantRef, NotifyId, Order,
    OrderId, PaymentMethod, Refund, RefundId, RefundStatus, Timestamp,
};
use std::time::Duration;
use tokio_postgres::NoTls;

use crate::{
    AuditEntry, DayTotal, Event, NewSession, NewUser, PaymentFilter, PaymentSummary, SignInAttempt,
    UserRecord, UserRemoval,
};

use crate::{
    BeginRefund, CreateOutcome, Delivery, DeliveryAttemptRecord, DeliveryAttemptRow, Idempotency,
    IdempotencyClaim, MerchantRecord, NewOrder, NewRefund, PoolStatus, Result, SettleOutcome,
    SettleRequest, StartOutcome, Stats, Store, StoreError,
};

/// Fresh ids tried when a generated id collides with another gateway's.
const ID_RETRIES: usize = 5;

/// Times a transaction that met a concurrent one is run again.
const TX_RETRIES: u32 = 5;

/// How the gateway uses its database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// Connections at most, per gateway.
    pub pool_size: usize,
    /// How long to wait for a new connection (each host of a multi-host URL in turn), and
    /// for a free one when all are busy.
    pub connect_timeout: Duration,
    /// The longest any statement may run (`statement_timeout`).
    pub statement_timeout: Duration,
    /// PEM certificates to trust for the database's TLS. With them, connections use TLS
    /// (`sslmode=prefer`, the default, or `require`), verified against them; without them a
    /// URL asking `sslmode=require` is refused, and other connections are plain TCP.
    pub ca_file: Option<std::path::PathBuf>,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            pool_size: 16,
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(10),
            ca_file: None,
        }
    }
}

/// PostgreSQL-backed [`Store`].
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// Orders without a first attempt, inserted in batches (group commit).
    creates: batch::Creates,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("pool", &self.pool_status())
            .finish()
    }
}

/// Runs `$body` (an expression using the transaction `$tx`) in a transaction, committing
/// it on success and running it again when it met a concurrent transaction.
macro_rules! in_tx {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let mut tries = 0;
        loop {
            let mut client = $store.client().await?;
            let $tx = client.transaction().await?;
            let result = match $body.await {
                Ok(value) => $tx.commit().await.map(|()| value).map_err(StoreError::from),
                Err(e) => Err(e),
            };
            match result {
                Err(e) if db::is_retryable(&e) && tries < TX_RETRIES => {
                    tries += 1;
                    tracing::debug!(error = %e, tries, "transaction met another; running it again");
                    tokio::time::sleep(Duration::from_millis(u64::from(tries) * 5)).await;
                }
                other => break other,
            }
        }
    }};
}

/// A TLS connector that trusts the certificates in `ca_file` (PEM) and nothing else.
fn tls(ca_file: &std::path::Path) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let bad = |e: String| StoreError::Pool(format!("db_ca_file {}: {e}", ca_file.display()));
    let pem = std::fs::read(ca_file).map_err(|e| bad(e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots
            .add(cert.map_err(|e| bad(e.to_string()))?)
            .map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("no certificate in it".into()));
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

impl PgStore {
    /// Connects to the database at `url` (libpq URL syntax, one or several hosts) and
    /// applies pending migrations under an advisory lock.
    pub async fn open(url: &str, options: &PgOptions) -> Result<Self> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Pool(format!("bad PostgreSQL URL: {e}")))?;
        config.connect_timeout(options.connect_timeout);
        // Acknowledged means committed (and, with a synchronous standby, replicated):
        // whatever the server's default, this session waits for it.
        let session = format!(
            "-c synchronous_commit=on -c statement_timeout={}",
            db::millis(options.statement_timeout)
        );
        let session = match config.get_options() {
            Some(given) => format!("{given} {session}"),
            None => session,
        };
        config.options(&session);
        if config.get_application_name().is_none() {
            config.application_name("ottgate");
        }
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match (&options.ca_file, config.get_ssl_mode()) {
            (Some(ca_file), _) => Manager::from_config(config, tls(ca_file)?, manager_config),
            (None, tokio_postgres::config::SslMode::Require) => {
                return Err(StoreError::Pool(
                    "sslmode=require needs the certificates to trust (db_ca_file)".into(),
                ));
            }
            (None, _) => Manager::from_config(config, NoTls, manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.connect_timeout))
            .create_timeout(Some(options.connect_timeout))
            .recycle_timeout(Some(options.connect_timeout))
            .build()
            .map_err(|e| StoreError::Pool(e.to_string()))?;
        let store = Self {
            creates: batch::Creates::start(pool.clone()),
            pool,
        };
        migrate::run(&mut store.client().await?).await?;
        Ok(store)
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Client> {
        client_of(&self.pool).await
    }

    pub fn pool_status(&self) -> PoolStatus {
        let status = self.pool.status();
        PoolStatus {
            max_size: status.max_size,
            size: status.size,
            available: status.available,
            waiting: status.waiting,
        }
    }
}

/// A pooled connection, or the pool's error with what lies under it.
async fn client_of(pool: &Pool) -> Result<deadpool_postgres::Client> {
    pool.get().await.map_err(|e| {
        // The pool's message, and what lies under it (refused, TLS, authentication).
        let mut message = e.to_string();
        let mut cause = std::error::Error::source(&e);
        while let Some(inner) = cause {
            message = format!("{message}: {inner}");
            cause = inner.source();
        }
        StoreError::Pool(message)
    })
}

#[async_trait]
impl Store for PgStore {
    async fn ready(&self) -> Result<()> {
        migrate::check(&self.client().await?).await
    }

    async fn insert_merchant(&self, record: MerchantRecord) -> Result<()> {
        in_tx!(self, |tx| merchants::insert(&tx, &record))
    }

    async fn merchant(&self, id: &MerchantId) -> Result<Option<MerchantRecord>> {
        merchants::by_id(&self.client().await?, id).await
    }

    async fn merchant_by_app_id(&self, app_id: &str) -> Result<Option<MerchantRecord>> {
        merchants::by_app_id(&self.client().await?, app_id).await
    }

    async fn rotate_sign_key(
        &self,
        id: &MerchantId,
        sealed: Vec<u8>,
        previous_until: Timestamp,
    ) -> Result<bool> {
        in_tx!(self, |tx| merchants::rotate_sign_key(
            &tx,
            id,
            &sealed,
            previous_until
        ))
    }

    async fn rotate_webhook_secret(
        &self,
        id: &MerchantId,
        previous_until: Timestamp,
    ) -> Result<Option<u32>> {
        in_tx!(self, |tx| merchants::rotate_webhook_secret(
            &tx,
            id,
            previous_until
        ))
    }

    async fn users_of(&self, merchant: &MerchantId) -> Result<Vec<UserRecord>> {
        users::of_merchant(&self.client().await?, merchant).await
    }

    async fn update_merchant_channels(
        &self,
        id: &MerchantId,
        methods: &[PaymentMethod],
        channel_ids: &ChannelIds,
    ) -> Result<bool> {
        in_tx!(self, |tx| merchants::update_channels(
            &tx,
            id,
            methods,
            channel_ids
        ))
    }

    async fn create_order(&self, new: NewOrder) -> Result<CreateOutcome> {
        // The common case, batched: no first attempt, and every key free.
        let new = std::sync::Arc::new(new);
        if new.first_attempt.is_none() && self.creates.insert(new.clone()).await {
            return Ok(CreateOutcome::Created {
                id: new.order.id.clone(),
                attempt: None,
            });
        }
        in_tx!(self, |tx| orders::create(&tx, &new))
    }

    async fn order(&self, id: &OrderId) -> Result<Option<Order>> {
        orders::by_id(&self.client().await?, id).await
    }

    async fn order_by_token(&self, token: &CheckoutToken) -> Result<Option<Order>> {
        orders::by_token(&self.client().await?, token).await
    }

    async fn order_by_reference(
        &self,
        merchant: &MerchantId,
        reference: &MerchantRef,
    ) -> Result<Option<Order>> {
        orders::by_reference(&self.client().await?, merchant, reference).await
    }

    async fn orders_with_reference(
        &self,
        reference: &MerchantRef,
        limit: u32,
    ) -> Result<Vec<Order>> {
        orders::with_reference(&self.client().await?, reference, limit).await
    }

    async fn set_response_data(&self, order: &OrderId, response_data: String) -> Result<bool> {
        in_tx!(self, |tx| orders::set_response_data(
            &tx,
            order,
            &response_data
        ))
    }

    async fn start_attempt(
        &self,
        order: &OrderId,
        method: PaymentMethod,
        now: Timestamp,
    ) -> Result<StartOutcome> {
        in_tx!(self, |tx| attempts::start(&tx, order, method, now))
    }

    async fn attempt(&self, id: &AttemptId) -> Result<Option<Attempt>> {
        attempts::by_id(&self.client().await?, id).await
    }

    async fn merchant_attempt(
        &self,
        merchant: &MerchantId,
        id: &AttemptId,
    ) -> Result<Option<Attempt>> {
        attempts::of_merchant(&self.client().await?, merchant, id).await
    }

    async fn attempts(&self, order: &OrderId) -> Result<Vec<Attempt>> {
        attempts::of_order(&self.client().await?, order).await
    }

    async fn order_with_attempts(&self, id: &OrderId) -> Result<Option<(Order, Vec<Attempt>)>> {
        orders::with_attempts(&self.client().await?, id, None).await
    }

    async fn merchant_order_with_attempts(
        &self,
        merchant: &MerchantId,
        id: &OrderId,
    ) -> Result<Option<(Order, Vec<Attempt>)>> {
        orders::with_attempts(&self.client().await?, id, Some(merchant)).await
    }

    async fn settle(&self, request: SettleRequest) -> Result<SettleOutcome> {
        in_tx!(self, |tx| attempts::settle(&tx, &request))
    }

    async fn attempts_to_reconcile(
        &self,
        created_before: Timestamp,
        checked_before: Timestamp,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<Attempt>> {
        let due = attempts::Due {
            created_before,
            checked_before,
            now,
            limit,
        };
        let rows = in_tx!(self, |tx| attempts::claim_due_for_check(
            &tx,
            "attempts",
            "PROCESSING",
            due
        ))?;
        db::each(rows, attempts::attempt)
    }

    async fn mark_checked(&self, attempt: &AttemptId, at: Timestamp) -> Result<()> {
        in_tx!(self, |tx| attempts::stamp_checked(
            &tx,
            "attempts",
            attempt.as_str(),
            at
        ))
    }

    async fn close_if_expired(&self, order: &OrderId, now: Timestamp) -> Result<bool> {
        in_tx!(self, |tx| orders::close_if_expired(&tx, order, now))
    }

    async fn expire_due(&self, now: Timestamp, limit: u32) -> Result<Vec<OrderId>> {
        in_tx!(self, |tx| orders::expire_due(&tx, now, limit))
    }

    async fn claim_due_deliveries(
        &self,
        now: Timestamp,
        lease: Duration,
        owner: &str,
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        deliveries::claim_due(&self.client().await?, now, lease, owner, limit).await
    }

    async fn record_delivery_attempt(&self, record: DeliveryAttemptRecord) -> Result<bool> {
        deliveries::record_attempt(&self.client().await?, &record).await
    }

    async fn deliveries_for_order(&self, order: &OrderId) -> Result<Vec<Delivery>> {
        deliveries::of_order(&self.client().await?, order).await
    }

    async fn delivery_attempts(&self, delivery_id: i64) -> Result<Vec<DeliveryAttemptRow>> {
        deliveries::attempts_of(&self.client().await?, delivery_id).await
    }

    async fn next_delivery_due(&self) -> Result<Option<Timestamp>> {
        deliveries::next_due(&self.client().await?).await
    }

    async fn events(
        &self,
        merchant: &MerchantId,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<Event>> {
        deliveries::events(&self.client().await?, merchant, since, limit).await
    }

    async fn prune_events(&self, before: Timestamp, limit: u32) -> Result<u64> {
        in_tx!(self, |tx| deliveries::prune(&tx, before, limit))
    }

    async fn redeliver(
        &self,
        merchant: &MerchantId,
        notify_id: &NotifyId,
        now: Timestamp,
    ) -> Result<Option<Delivery>> {
        in_tx!(self, |tx| deliveries::redeliver(
            &tx, merchant, notify_id, now
        ))
    }

    async fn begin_refund(&self, refund: NewRefund) -> Result<BeginRefund> {
        in_tx!(self, |tx| refunds::begin(&tx, &refund))
    }

    async fn finish_refund(
        &self,
        id: &RefundId,
        status: RefundStatus,
        channel_refund_id: Option<String>,
        at: Timestamp,
    ) -> Result<Refund> {
        in_tx!(self, |tx| refunds::finish(
            &tx,
            id,
            status,
            channel_refund_id.as_deref(),
            at
        ))
    }

    async fn refunds(&self, payment: &AttemptId) -> Result<Vec<Refund>> {
        refunds::of_payment(&self.client().await?, payment).await
    }

    async fn refund(&self, id: &RefundId) -> Result<Option<Refund>> {
        refunds::by_id(&self.client().await?, id).await
    }

    async fn refunds_to_reconcile(
        &self,
        created_before: Timestamp,
        checked_before: Timestamp,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<Refund>> {
        let due = attempts::Due {
            created_before,
            checked_before,
            now,
            limit,
        };
        let rows = in_tx!(self, |tx| attempts::claim_due_for_check(
            &tx, "refunds", "pending", due
        ))?;
        db::each(rows, refunds::refund)
    }

    async fn mark_refund_checked(&self, id: &RefundId, at: Timestamp) -> Result<()> {
        in_tx!(self, |tx| attempts::stamp_checked(
            &tx,
            "refunds",
            id.as_str(),
            at
        ))
    }

    async fn stats(&self, now: Timestamp) -> Result<Stats> {
        let client = self.client().await?;
        let counts = |sql: &'static str| {
            let client = &client;
            async move {
                let rows = db::all(client, sql, &[]).await?;
                db::each(rows, |row| {
                    let n: i64 = row.try_get(1)?;
                    Ok((row.try_get(0)?, u64::try_from(n).unwrap_or(0)))
                })
            }
        };
        let leased: i64 = db::one(
            &client,
            "SELECT COUNT(*) FROM deliveries WHERE state = 'pending' AND lease_until > $1",
            &[&now.epoch_millis()],
        )
        .await?
        .try_get(0)?;
        Ok(Stats {
            orders_by_status: counts("SELECT status, COUNT(*) FROM orders GROUP BY status").await?,
            deliveries_by_state: counts("SELECT state, COUNT(*) FROM deliveries GROUP BY state")
                .await?,
            deliveries_leased: u64::try_from(leased).unwrap_or(0),
            pool: Some(self.pool_status()),
        })
    }

    async fn claim_idempotency(&self, claim: IdempotencyClaim) -> Result<Idempotency> {
        in_tx!(self, |tx| idempotency::claim(&tx, &claim))
    }

    async fn finish_idempotency(
        &self,
        merchant: &MerchantId,
        scope: &str,
        key: &str,
        status: u16,
        body: String,
    ) -> Result<()> {
        in_tx!(self, |tx| idempotency::finish(
            &tx, merchant, scope, key, status, &body
        ))
    }

    async fn release_idempotency(
        &self,
        merchant: &MerchantId,
        scope: &str,
        key: &str,
    ) -> Result<()> {
        in_tx!(self, |tx| idempotency::release(&tx, merchant, scope, key))
    }

    async fn prune_idempotency(&self, before: Timestamp, limit: u32) -> Result<u64> {
        in_tx!(self, |tx| idempotency::prune(&tx, before, limit))
    }

    fn is_shared(&self) -> bool {
        true
    }

    async fn reserve_sign_in(&self, attempt: SignInAttempt) -> Result<Option<Vec<i64>>> {
        in_tx!(self, |tx| sign_ins::reserve(&tx, &attempt))
    }

    async fn release_sign_in(
        &self,
        reserved: Vec<i64>,
        trust: Option<(String, Timestamp)>,
    ) -> Result<()> {
        in_tx!(self, |tx| sign_ins::release(&tx, &reserved, trust.as_ref()))
    }

    async fn insert_user(&self, user: NewUser) -> Result<UserRecord> {
        in_tx!(self, |tx| users::insert(&tx, &user))
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>> {
        users::by_email(&self.client().await?, email).await
    }

    async fn set_user_password(&self, email: &str, password_hash: String) -> Result<bool> {
        in_tx!(self, |tx| users::set_password(&tx, email, &password_hash))
    }

    async fn remove_user(&self, merchant: &MerchantId, email: &str) -> Result<UserRemoval> {
        in_tx!(self, |tx| users::remove(&tx, merchant, email))
    }

    async fn insert_session(&self, session: NewSession) -> Result<()> {
        in_tx!(self, |tx| center::insert_session(&tx, &session))
    }

    async fn session_user(&self, id_hash: &str, now: Timestamp) -> Result<Option<UserRecord>> {
        center::session_user(&self.client().await?, id_hash, now).await
    }

    async fn end_session(&self, id_hash: &str) -> Result<()> {
        in_tx!(self, |tx| center::end_session(&tx, id_hash))
    }

    async fn prune_sessions(&self, now: Timestamp, limit: u32) -> Result<u64> {
        in_tx!(self, |tx| center::prune_sessions(&tx, now, limit))
    }

    async fn payments(&self, filter: &PaymentFilter) -> Result<Vec<PaymentSummary>> {
        center::payments(&self.client().await?, filter).await
    }

    async fn day_totals(
        &self,
        merchant: &MerchantId,
        from: Timestamp,
        days: u32,
    ) -> Result<Vec<DayTotal>> {
        center::day_totals(&self.client().await?, merchant, from, days).await
    }

    async fn record_audit(&self, entry: AuditEntry) -> Result<()> {
        in_tx!(self, |tx| center::record_audit(&tx, &entry))
    }

    async fn audit_log(&self, merchant: &MerchantId, limit: u32) -> Result<Vec<AuditEntry>> {
        center::audit_log(&self.client().await?, merchant, limit).await
    }
}
