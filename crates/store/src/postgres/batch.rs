//! Group commit for creates on PostgreSQL. Every order created at the same moment (by any
//! request on this gateway) goes into the database through one multi-row `INSERT … SELECT
//! FROM UNNEST(…) ON CONFLICT DO NOTHING RETURNING id`, autocommitted: one statement, one
//! commit and one WAL flush for the batch instead of one each. A batch forms while the one
//! before it is in flight: under light load each order is a batch of its own and waits for
//! nothing.
//!
//! Each caller learns whether *its* row went in. A row left out (its reference or token
//! already taken, by a replay or by another row of the same batch) — or a whole batch that
//! failed, say on a row naming an unknown merchant — sends its callers to the
//! transactional path ([`super::orders::create`]), which sorts out replays and reports each
//! caller's own error. So batching changes what is committed together, never what a
//! caller is told.

use deadpool_postgres::Pool;
use ottgate_core::MerchantRef;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::db;
use crate::rows;
use crate::{NewOrder, Result};

/// Orders in one statement at most.
const MAX_BATCH: usize = 128;

/// Batches in flight at once (each on its own pooled connection).
const IN_FLIGHT: usize = 4;

struct Job {
    new: Arc<NewOrder>,
    inserted: oneshot::Sender<bool>,
}

/// The handle requests send their orders through; the batching task ends with the last one.
#[derive(Clone)]
pub(super) struct Creates {
    jobs: mpsc::Sender<Job>,
}

impl Creates {
    pub(super) fn start(pool: Pool) -> Self {
        let (jobs, queue) = mpsc::channel(4096);
        tokio::spawn(run(pool, queue));
        Self { jobs }
    }

    /// Inserts `new` (which has no first attempt) in the next batch; whether it went in.
    /// `false` also when the batch could not run: the caller's own transaction then tells.
    pub(super) async fn insert(&self, new: Arc<NewOrder>) -> bool {
        let (inserted, answer) = oneshot::channel();
        if self.jobs.send(Job { new, inserted }).await.is_err() {
            return false;
        }
        answer.await.unwrap_or(false)
    }
}

async fn run(pool: Pool, mut queue: mpsc::Receiver<Job>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut batch = Vec::with_capacity(MAX_BATCH);
        if queue.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return; // every handle is gone
        }
        let pool = pool.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let inserted = match insert_all(&pool, &batch).await {
                Ok(ids) => ids,
                Err(e) => {
                    tracing::debug!(error = %e, orders = batch.len(), "batched create failed; each order goes on alone");
                    HashSet::new()
                }
            };
            for job in batch {
                let went_in = inserted.contains(job.new.order.id.as_str());
                let _ = job.inserted.send(went_in);
            }
        });
    }
}

/// One statement for the batch; the ids that went in.
async fn insert_all(pool: &Pool, batch: &[Job]) -> Result<HashSet<String>> {
    let orders = || batch.iter().map(|j| &j.new.order);
    let text = |f: fn(&Job) -> &str| batch.iter().map(f).collect::<Vec<&str>>();
    let id = text(|j| j.new.order.id.as_str());
    let merchant = text(|j| j.new.order.merchant_id.as_str());
    let kind = text(|j| j.new.order.kind.code());
    let reference: Vec<Option<&str>> = orders()
        .map(|o| o.reference.as_ref().map(MerchantRef::as_str))
        .collect();
    let token = text(|j| j.new.order.token.as_str());
    let amount: Vec<i64> = orders()
        .map(|o| rows::amount_to_db(o.money.amount))
        .collect();
    let currency = text(|j| j.new.order.money.currency.code());
    let sale_num = text(|j| &j.new.order.sale_num);
    let shop = text(|j| j.new.order.shop_id.as_str());
    let operator = text(|j| j.new.order.operator_id.as_str());
    let redirect = text(|j| &j.new.order.redirect_url);
    let callback = text(|j| &j.new.order.callback_url);
    let duration: Vec<i64> = orders()
        .map(|o| i64::try_from(o.duration_secs).unwrap_or(i64::MAX))
        .collect();
    let email: Vec<Option<&str>> = orders().map(|o| o.email.as_deref()).collect();
    let remarks: Vec<Option<&str>> = orders().map(|o| o.remarks.as_deref()).collect();
    let status = text(|j| j.new.order.status.code());
    let created: Vec<i64> = orders().map(|o| o.created_at.epoch_millis()).collect();
    let expires: Vec<i64> = orders().map(|o| o.expires_at.epoch_millis()).collect();
    let md5 = text(|j| &j.new.request_md5);
    let response = text(|j| &j.new.response_data);
    let tip: Vec<i64> = orders()
        .map(|o| i64::try_from(o.tip).unwrap_or(i64::MAX))
        .collect();
    let terminal: Vec<Option<&str>> = orders().map(|o| o.terminal.as_deref()).collect();
    let client = super::client_of(pool).await?;
    let rows = db::all(
        &client,
        "INSERT INTO orders (id, merchant_id, kind, reference, token, amount, currency, sale_num, shop_id,
         operator_id, redirect_url, callback_url, duration_secs, email, remarks, status, created_at, expires_at,
         request_md5, response_data, tip, terminal)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[],
           $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::bigint[],
           $14::text[], $15::text[], $16::text[], $17::bigint[], $18::bigint[], $19::text[], $20::text[],
           $21::bigint[], $22::text[])
         ON CONFLICT DO NOTHING
         RETURNING id",
        &[
            &id, &merchant, &kind, &reference, &token, &amount, &currency, &sale_num, &shop,
            &operator, &redirect, &callback, &duration, &email, &remarks, &status, &created,
            &expires, &md5, &response, &tip, &terminal,
        ],
    )
    .await?;
    rows.iter()
        .map(|row| Ok(row.try_get::<_, String>("id")?))
        .collect()
}
