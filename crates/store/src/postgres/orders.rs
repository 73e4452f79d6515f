//! The `orders` table. Every change of an order (and of its attempts) first locks the
//! order's row, so gateways changing one order at once take turns.

use super::{PgStore, db};
use crate::orders::q;
use crate::rows::{self};
use crate::{CreateOutcome, NewOrder, Result, StoreError};
use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Transaction};
use ottgate_core::{
    Attempt, AttemptStatus, CheckoutToken, MerchantId, MerchantRef, Order, OrderId, PaymentMethod,
    Timestamp,
};

async fn one_by(c: &impl GenericClient, sql: &str, value: &str) -> Result<Option<Order>> {
    db::opt(c, sql, &[&value])
        .await?
        .as_ref()
        .map(db::order)
        .transpose()
}

pub(super) async fn by_id(c: &impl GenericClient, id: &OrderId) -> Result<Option<Order>> {
    one_by(c, q::BY_ID.pg, id.as_str()).await
}

pub(super) async fn by_token(
    c: &impl GenericClient,
    token: &CheckoutToken,
) -> Result<Option<Order>> {
    one_by(c, q::BY_TOKEN.pg, token.as_str()).await
}

pub(super) async fn by_reference(
    c: &impl GenericClient,
    merchant: &MerchantId,
    reference: &MerchantRef,
) -> Result<Option<Order>> {
    let sql = q::BY_REFERENCE.pg;
    let row = db::opt(c, sql, &[&merchant.as_str(), &reference.as_str()]).await?;
    row.as_ref().map(db::order).transpose()
}

pub(super) async fn by_remarks(
    c: &impl GenericClient,
    merchant: &MerchantId,
    remarks: &str,
) -> Result<Option<Order>> {
    let row = db::opt(c, q::BY_REMARKS.pg, &[&merchant.as_str(), &remarks]).await?;
    row.as_ref().map(db::order).transpose()
}

pub(super) async fn with_reference(
    c: &impl GenericClient,
    reference: &MerchantRef,
    limit: u32,
) -> Result<Vec<Order>> {
    let sql = q::WITH_REFERENCE.pg;
    let rows = db::all(c, sql, &[&reference.as_str(), &i64::from(limit)]).await?;
    db::each(rows, db::order)
}

/// The order and its attempts as of one moment: both read in one read-only repeatable-read
/// transaction, whose four statements (BEGIN, two SELECTs, COMMIT) are sent together and
/// answered together — one round trip instead of four. The statements are prepared first,
/// so nothing is sent out of order.
/// The order and its attempts, of `merchant` only when one is named: then another
/// merchant's order costs exactly what a missing one does (both statements filter by it).
pub(super) async fn with_attempts(
    c: &deadpool_postgres::Client,
    id: &OrderId,
    merchant: Option<&MerchantId>,
) -> Result<Option<(Order, Vec<Attempt>)>> {
    let order_sql = c.prepare_cached(q::OF_MERCHANT.pg).await?;
    // Pipelined, the attempts are read whatever the order turns out to be: of the merchant
    // only when one is named (then a join), else by the order's id alone.
    let attempts_text = match merchant {
        Some(_) => q::ATTEMPTS_OF_MERCHANT.pg,
        None => crate::attempts::q::OF_ORDER.pg,
    };
    let attempts_sql = c.prepare_cached(attempts_text).await?;
    let id = id.as_str();
    let merchant = merchant.map(MerchantId::as_str);
    let params: db::Params<'_> = &[&id, &merchant];
    let attempt_params: db::Params<'_> = if merchant.is_some() { params } else { &[&id] };
    // `biased`: polled (so sent) in this order.
    let (begin, order_row, attempt_rows, commit) = tokio::join!(
        biased;
        c.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"),
        c.query_opt(&order_sql, params),
        c.query(&attempts_sql, attempt_params),
        c.batch_execute("COMMIT"),
    );
    begin?;
    let (order_row, attempt_rows) = (order_row?, attempt_rows?);
    commit?;
    let Some(row) = order_row else {
        return Ok(None);
    };
    Ok(Some((
        db::order(&row)?,
        db::each(attempt_rows, db::attempt)?,
    )))
}

/// Locks an order until the transaction ends, and reads it.
pub(super) const LOCK: &str = "SELECT * FROM orders WHERE id = $1 FOR UPDATE";

/// The order, locked until the transaction ends.
pub(super) async fn lock(tx: &Transaction<'_>, id: &str) -> Result<Order> {
    let row = db::opt(tx, LOCK, &[&id]).await?;
    db::order(&row.ok_or(StoreError::NotFound("order"))?)
}

/// Inserts the order under `id` unless any of its unique keys (id, token, the merchant's
/// reference) is taken; whether it went in.
async fn insert(c: &impl GenericClient, new: &NewOrder, id: &OrderId) -> Result<bool> {
    let o = &new.order;
    let inserted = db::exec(
        c,
        "INSERT INTO orders (id, merchant_id, kind, reference, token, amount, currency, sale_num, shop_id,
         operator_id, redirect_url, callback_url, duration_secs, email, remarks, status, created_at, expires_at,
         request_md5, response_data, tip, terminal)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)
         ON CONFLICT DO NOTHING",
        &[
            &id.as_str(),
            &o.merchant_id.as_str(),
            &o.kind.code(),
            &o.reference.as_ref().map(MerchantRef::as_str),
            &o.token.as_str(),
            &rows::amount_to_db(o.money.amount),
            &o.money.currency.code(),
            &o.sale_num,
            &o.shop_id.as_str(),
            &o.operator_id.as_str(),
            &o.redirect_url,
            &o.callback_url,
            &i64::try_from(o.duration_secs).unwrap_or(i64::MAX),
            &o.email,
            &o.remarks,
            &o.status.code(),
            &o.created_at.epoch_millis(),
            &o.expires_at.epoch_millis(),
            &new.request_md5,
            &new.response_data,
            &i64::try_from(o.tip).unwrap_or(i64::MAX),
            &o.terminal,
        ],
    )
    .await?;
    Ok(inserted == 1)
}

pub(super) async fn create(tx: &Transaction<'_>, new: &NewOrder) -> Result<CreateOutcome> {
    let o = &new.order;
    let mut id = o.id.clone();
    for _ in 0..super::ID_RETRIES {
        if let Some(exists) = existing(tx, new).await? {
            return Ok(exists);
        }
        if insert(tx, new, &id).await? {
            let attempt = match new.first_attempt {
                Some(method) => {
                    let order = Order {
                        id: id.clone(),
                        ..o.clone()
                    };
                    Some(insert_attempt(tx, &order, method, o.created_at).await?)
                }
                None => None,
            };
            return Ok(CreateOutcome::Created { id, attempt });
        }
        // Nothing inserted: another gateway took the reference a moment ago (the next
        // round finds it), or the generated id or token collided.
        id = OrderId::generate(o.created_at);
    }
    Err(StoreError::Duplicate("order id"))
}

/// The first request and answer under this order's merchant reference, if there is one.
async fn existing(tx: &Transaction<'_>, new: &NewOrder) -> Result<Option<CreateOutcome>> {
    let Some(reference) = &new.order.reference else {
        return Ok(None);
    };
    let sql = q::FIRST_REQUEST.pg;
    let row = db::opt(
        tx,
        sql,
        &[&new.order.merchant_id.as_str(), &reference.as_str()],
    )
    .await?;
    row.map(|row| {
        Ok(CreateOutcome::Exists {
            request_md5: row.try_get(0)?,
            response_data: row.try_get(1)?,
        })
    })
    .transpose()
}

pub(super) async fn set_response_data(
    tx: &Transaction<'_>,
    order: &OrderId,
    response_data: &str,
) -> Result<bool> {
    let sql = q::SET_RESPONSE_DATA.pg;
    Ok(db::exec(tx, sql, &[&response_data, &order.as_str()]).await? == 1)
}

/// Marks a processing order expired, with its pending attempts.
pub(super) async fn close_expired(
    tx: &Transaction<'_>,
    order_id: &str,
    now: Timestamp,
) -> Result<()> {
    let at = now.epoch_millis();
    db::exec(tx, q::CLOSE_EXPIRED.pg, &[&at, &order_id]).await?;
    db::exec(
        tx,
        q::CLOSE_PENDING_ATTEMPTS.pg,
        &[
            &AttemptStatus::Expired.code(),
            &at,
            &order_id,
            &AttemptStatus::Pending.code(),
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn close_if_expired(
    tx: &Transaction<'_>,
    order: &OrderId,
    now: Timestamp,
) -> Result<bool> {
    let due = db::opt(tx, q::EXPIRED.pg, &[&order.as_str(), &now.epoch_millis()]).await?;
    if due.is_none() {
        return Ok(false);
    }
    close_expired(tx, order.as_str(), now).await?;
    Ok(true)
}

pub(super) async fn expire_now(
    tx: &Transaction<'_>,
    order: &OrderId,
    now: Timestamp,
) -> Result<bool> {
    let at = now.epoch_millis();
    if db::exec(tx, q::EXPIRE_NOW.pg, &[&at, &order.as_str()]).await? == 0 {
        return Ok(false);
    }
    close_expired(tx, order.as_str(), now).await?;
    Ok(true)
}

/// Closes due orders; those another gateway is closing right now are skipped, not waited
/// for, so sweepers on several gateways never close one order twice.
pub(super) async fn expire_due(
    tx: &Transaction<'_>,
    now: Timestamp,
    limit: u32,
) -> Result<Vec<OrderId>> {
    let rows = db::all(
        tx,
        q::EXPIRED_DUE.pg,
        &[&now.epoch_millis(), &i64::from(limit)],
    )
    .await?;
    let mut closed = Vec::with_capacity(rows.len());
    for row in rows {
        let id: String = row.try_get(0)?;
        close_expired(tx, &id, now).await?;
        closed.push(OrderId::parse(&id).map_err(|e| StoreError::Corrupt(e.to_string()))?);
    }
    Ok(closed)
}

/// Inserts a new pending attempt of `order`, with a fresh id if the generated one
/// collides with another gateway's.
pub(super) async fn insert_attempt(
    tx: &Transaction<'_>,
    order: &Order,
    method: PaymentMethod,
    now: Timestamp,
) -> Result<Attempt> {
    for _ in 0..super::ID_RETRIES {
        let attempt = crate::attempts::fresh(order, method, now);
        let inserted = db::exec(
            tx,
            crate::attempts::q::INSERT.pg,
            &[
                &attempt.id.as_str(),
                &attempt.order_id.as_str(),
                &method.code(),
                &attempt.status.code(),
                &rows::amount_to_db(attempt.money.amount),
                &attempt.money.currency.code(),
                &now.epoch_millis(),
            ],
        )
        .await?;
        if inserted == 1 {
            return Ok(attempt);
        }
    }
    Err(StoreError::Duplicate("attempt id"))
}

#[async_trait]
impl crate::Orders for PgStore {
    async fn create_order(&self, new: NewOrder) -> Result<CreateOutcome> {
        // The common case, batched: no first attempt, and every key free.
        let new = std::sync::Arc::new(new);
        if new.first_attempt.is_none() && self.creates.insert(new.clone()).await {
            return Ok(CreateOutcome::Created {
                id: new.order.id.clone(),
                attempt: None,
            });
        }
        in_tx!(self, |tx| create(&tx, &new))
    }

    async fn order(&self, id: &OrderId) -> Result<Option<Order>> {
        by_id(&self.client().await?, id).await
    }

    async fn order_by_token(&self, token: &CheckoutToken) -> Result<Option<Order>> {
        by_token(&self.client().await?, token).await
    }

    async fn order_by_reference(
        &self,
        merchant: &MerchantId,
        reference: &MerchantRef,
    ) -> Result<Option<Order>> {
        by_reference(&self.client().await?, merchant, reference).await
    }

    async fn order_by_remarks(
        &self,
        merchant: &MerchantId,
        remarks: &str,
    ) -> Result<Option<Order>> {
        by_remarks(&self.client().await?, merchant, remarks).await
    }

    async fn orders_with_reference(
        &self,
        reference: &MerchantRef,
        limit: u32,
    ) -> Result<Vec<Order>> {
        with_reference(&self.client().await?, reference, limit).await
    }

    async fn set_response_data(&self, order: &OrderId, response_data: String) -> Result<bool> {
        in_tx!(self, |tx| set_response_data(&tx, order, &response_data))
    }

    async fn order_with_attempts(&self, id: &OrderId) -> Result<Option<(Order, Vec<Attempt>)>> {
        with_attempts(&self.client().await?, id, None).await
    }

    async fn merchant_order_with_attempts(
        &self,
        merchant: &MerchantId,
        id: &OrderId,
    ) -> Result<Option<(Order, Vec<Attempt>)>> {
        with_attempts(&self.client().await?, id, Some(merchant)).await
    }

    async fn close_if_expired(&self, order: &OrderId, now: Timestamp) -> Result<bool> {
        in_tx!(self, |tx| close_if_expired(&tx, order, now))
    }

    async fn expire_due(&self, now: Timestamp, limit: u32) -> Result<Vec<OrderId>> {
        in_tx!(self, |tx| expire_due(&tx, now, limit))
    }

    async fn expire_now(&self, order: &OrderId, now: Timestamp) -> Result<bool> {
        in_tx!(self, |tx| expire_now(&tx, order, now))
    }
}
