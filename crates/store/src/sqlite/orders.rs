//! The `orders` table: what merchants asked to be paid, and whether it was.

use super::ID_RETRIES;
use super::{SqliteStore, db};
use crate::orders::q;
use crate::rows::{self, AttemptRow, OrderRow};
use crate::{CreateOutcome, NewOrder, Result, StoreError};
use async_trait::async_trait;
use ottgate_core::{
    Attempt, AttemptStatus, CheckoutToken, MerchantId, MerchantRef, Order, OrderId, PaymentMethod,
    Timestamp,
};
use rusqlite::{Connection, params};

fn one(c: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<Option<Order>> {
    db::opt(c, sql, params, OrderRow::from_sqlite)?
        .map(OrderRow::into_order)
        .transpose()
}

pub(super) fn by_id(c: &Connection, id: &OrderId) -> Result<Option<Order>> {
    one(c, q::BY_ID.sqlite, [id.as_str()])
}

pub(super) fn by_token(c: &Connection, token: &CheckoutToken) -> Result<Option<Order>> {
    one(c, q::BY_TOKEN.sqlite, [token.as_str()])
}

pub(super) fn by_reference(
    c: &Connection,
    merchant: &MerchantId,
    reference: &MerchantRef,
) -> Result<Option<Order>> {
    one(
        c,
        q::BY_REFERENCE.sqlite,
        [merchant.as_str(), reference.as_str()],
    )
}

pub(super) fn by_remarks(
    c: &Connection,
    merchant: &MerchantId,
    remarks: &str,
) -> Result<Option<Order>> {
    one(c, q::BY_REMARKS.sqlite, [merchant.as_str(), remarks])
}

pub(super) fn with_reference(
    c: &Connection,
    reference: &MerchantRef,
    limit: u32,
) -> Result<Vec<Order>> {
    db::all(
        c,
        q::WITH_REFERENCE.sqlite,
        params![reference.as_str(), i64::from(limit)],
        OrderRow::from_sqlite,
    )?
    .into_iter()
    .map(OrderRow::into_order)
    .collect()
}

/// An order and its attempts as of one moment: one read transaction (in WAL mode, one
/// snapshot).
/// The order and its attempts as of one moment, of `merchant` only when one is named: then
/// another merchant's order costs exactly what a missing one does.
pub(super) fn with_attempts(
    c: &Connection,
    id: &OrderId,
    merchant: Option<&MerchantId>,
) -> Result<Option<(Order, Vec<Attempt>)>> {
    c.execute_batch("BEGIN")?;
    let read = (|| {
        let key = rusqlite::params![id.as_str(), merchant.map(MerchantId::as_str)];
        let order = one(c, q::OF_MERCHANT.sqlite, key)?;
        let Some(order) = order else {
            return Ok(None);
        };
        // The order is the merchant's (or none was named): its attempts by its id.
        let attempts = db::all(
            c,
            crate::attempts::q::OF_ORDER.sqlite,
            [id.as_str()],
            AttemptRow::from_sqlite,
        )?
        .into_iter()
        .map(AttemptRow::into_attempt)
        .collect::<Result<_>>()?;
        Ok(Some((order, attempts)))
    })();
    c.execute_batch("COMMIT")?;
    read
}

pub(super) fn load(c: &Connection, id: &str) -> Result<Order> {
    one(c, q::BY_ID.sqlite, [id])?.ok_or(StoreError::NotFound("order"))
}

pub(super) fn create(c: &Connection, new: &NewOrder) -> Result<CreateOutcome> {
    let o = &new.order;
    if let Some(reference) = &o.reference {
        let existing = db::opt(
            c,
            q::FIRST_REQUEST.sqlite,
            [o.merchant_id.as_str(), reference.as_str()],
            |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
        )?;
        if let Some((request_md5, response_data)) = existing {
            return Ok(CreateOutcome::Exists {
                request_md5,
                response_data,
            });
        }
    }
    let mut id = o.id.clone();
    for _ in 0..ID_RETRIES {
        let inserted = db::exec(
            c,
            "INSERT INTO orders (id, merchant_id, kind, reference, token, amount, currency, sale_num, shop_id,
             operator_id, redirect_url, callback_url, duration_secs, email, remarks, status, created_at, expires_at,
             request_md5, response_data, tip, terminal)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)",
            params![
                id.as_str(),
                o.merchant_id.as_str(),
                o.kind.code(),
                o.reference.as_ref().map(MerchantRef::as_str),
                o.token.as_str(),
                rows::amount_to_db(o.money.amount),
                o.money.currency.code(),
                &o.sale_num,
                o.shop_id.as_str(),
                o.operator_id.as_str(),
                &o.redirect_url,
                &o.callback_url,
                i64::try_from(o.duration_secs).unwrap_or(i64::MAX),
                &o.email,
                &o.remarks,
                o.status.code(),
                o.created_at.epoch_millis(),
                o.expires_at.epoch_millis(),
                &new.request_md5,
                &new.response_data,
                i64::try_from(o.tip).unwrap_or(i64::MAX),
                &o.terminal,
            ],
        );
        match inserted {
            Ok(_) => {
                let attempt = match new.first_attempt {
                    Some(method) => {
                        let order = Order {
                            id: id.clone(),
                            ..o.clone()
                        };
                        Some(insert_attempt(c, &order, method, o.created_at)?)
                    }
                    None => None,
                };
                return Ok(CreateOutcome::Created { id, attempt });
            }
            // The reference was checked above in this same transaction, so a unique
            // violation here is an id generated by another process at the same moment.
            Err(e) if db::is_unique_violation(&e) => id = OrderId::generate(o.created_at),
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Duplicate("order id"))
}

pub(super) fn set_response_data(
    c: &Connection,
    order: &OrderId,
    response_data: &str,
) -> Result<bool> {
    let updated = db::exec(
        c,
        q::SET_RESPONSE_DATA.sqlite,
        [response_data, order.as_str()],
    )?;
    Ok(updated == 1)
}

/// Marks a processing order expired, with its pending attempts.
pub(super) fn close_expired(c: &Connection, order_id: &str, now: Timestamp) -> Result<()> {
    db::exec(
        c,
        q::CLOSE_EXPIRED.sqlite,
        params![now.epoch_millis(), order_id],
    )?;
    db::exec(
        c,
        q::CLOSE_PENDING_ATTEMPTS.sqlite,
        params![
            AttemptStatus::Expired.code(),
            now.epoch_millis(),
            order_id,
            AttemptStatus::Pending.code(),
        ],
    )?;
    Ok(())
}

pub(super) fn close_if_expired(c: &Connection, order: &OrderId, now: Timestamp) -> Result<bool> {
    let due: Option<String> = db::opt(
        c,
        q::EXPIRED.sqlite,
        params![order.as_str(), now.epoch_millis()],
        db::first,
    )?;
    if due.is_none() {
        return Ok(false);
    }
    close_expired(c, order.as_str(), now)?;
    Ok(true)
}

pub(super) fn expire_now(c: &Connection, order: &OrderId, now: Timestamp) -> Result<bool> {
    let closed = db::exec(
        c,
        q::EXPIRE_NOW.sqlite,
        params![now.epoch_millis(), order.as_str()],
    )?;
    if closed == 0 {
        return Ok(false);
    }
    close_expired(c, order.as_str(), now)?;
    Ok(true)
}

pub(super) fn expire_due(c: &Connection, now: Timestamp, limit: u32) -> Result<Vec<OrderId>> {
    let ids: Vec<String> = db::all(
        c,
        q::EXPIRED_DUE.sqlite,
        params![now.epoch_millis(), i64::from(limit)],
        db::first,
    )?;
    let mut closed = Vec::with_capacity(ids.len());
    for id in ids {
        close_expired(c, &id, now)?;
        closed.push(OrderId::parse(&id).map_err(|e| StoreError::Corrupt(e.to_string()))?);
    }
    Ok(closed)
}

/// Inserts a new pending attempt of `order`, retrying an id that collides with one
/// generated by another process.
pub(super) fn insert_attempt(
    c: &Connection,
    order: &Order,
    method: PaymentMethod,
    now: Timestamp,
) -> Result<Attempt> {
    for _ in 0..ID_RETRIES {
        let attempt = crate::attempts::fresh(order, method, now);
        let inserted = db::exec(
            c,
            crate::attempts::q::INSERT.sqlite,
            params![
                attempt.id.as_str(),
                attempt.order_id.as_str(),
                method.code(),
                attempt.status.code(),
                rows::amount_to_db(attempt.money.amount),
                attempt.money.currency.code(),
                now.epoch_millis(),
            ],
        );
        if inserted? == 1 {
            return Ok(attempt);
        }
    }
    Err(StoreError::Duplicate("attempt id"))
}

#[async_trait]
impl crate::Orders for SqliteStore {
    async fn create_order(&self, new: NewOrder) -> Result<CreateOutcome> {
        self.engine.write(move |c| create(c, &new)).await
    }

    async fn order(&self, id: &OrderId) -> Result<Option<Order>> {
        let id = id.clone();
        self.engine.read(move |c| by_id(c, &id)).await
    }

    async fn order_by_token(&self, token: &CheckoutToken) -> Result<Option<Order>> {
        let token = token.clone();
        self.engine.read(move |c| by_token(c, &token)).await
    }

    async fn order_by_reference(
        &self,
        merchant: &MerchantId,
        reference: &MerchantRef,
    ) -> Result<Option<Order>> {
        let (merchant, reference) = (merchant.clone(), reference.clone());
        self.engine
            .read(move |c| by_reference(c, &merchant, &reference))
            .await
    }

    async fn order_by_remarks(
        &self,
        merchant: &MerchantId,
        remarks: &str,
    ) -> Result<Option<Order>> {
        let (merchant, remarks) = (merchant.clone(), remarks.to_owned());
        self.engine
            .read(move |c| by_remarks(c, &merchant, &remarks))
            .await
    }

    async fn orders_with_reference(
        &self,
        reference: &MerchantRef,
        limit: u32,
    ) -> Result<Vec<Order>> {
        let reference = reference.clone();
        self.engine
            .read(move |c| with_reference(c, &reference, limit))
            .await
    }

    async fn set_response_data(&self, order: &OrderId, response_data: String) -> Result<bool> {
        let order = order.clone();
        self.engine
            .write(move |c| set_response_data(c, &order, &response_data))
            .await
    }

    async fn order_with_attempts(&self, id: &OrderId) -> Result<Option<(Order, Vec<Attempt>)>> {
        let id = id.clone();
        self.engine.read(move |c| with_attempts(c, &id, None)).await
    }

    async fn merchant_order_with_attempts(
        &self,
        merchant: &MerchantId,
        id: &OrderId,
    ) -> Result<Option<(Order, Vec<Attempt>)>> {
        let (merchant, id) = (merchant.clone(), id.clone());
        self.engine
            .read(move |c| with_attempts(c, &id, Some(&merchant)))
            .await
    }

    async fn close_if_expired(&self, order: &OrderId, now: Timestamp) -> Result<bool> {
        let order = order.clone();
        self.engine
            .write(move |c| close_if_expired(c, &order, now))
            .await
    }

    async fn expire_due(&self, now: Timestamp, limit: u32) -> Result<Vec<OrderId>> {
        self.engine.write(move |c| expire_due(c, now, limit)).await
    }

    async fn expire_now(&self, order: &OrderId, now: Timestamp) -> Result<bool> {
        let order = order.clone();
        self.engine.write(move |c| expire_now(c, &order, now)).await
    }
}
