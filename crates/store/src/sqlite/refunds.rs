//! The `refunds` table: refunds hold their amount while pending, so their sum never
//! exceeds what was paid.

use super::{SqliteStore, db};
use crate::due::Due;
use crate::refunds::q;
use crate::rows::{self, AttemptRow, RefundRow};
use crate::{BeginRefund, FinishRefund, NewRefund, Result, StoreError};
use async_trait::async_trait;
use ottgate_core::{AttemptId, AttemptStatus, Refund, RefundId, Timestamp};
use rusqlite::{Connection, params};

fn one(c: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<Option<Refund>> {
    db::opt(c, sql, params, RefundRow::from_sqlite)?
        .map(RefundRow::into_refund)
        .transpose()
}

pub(super) fn of_payment(c: &Connection, payment: &AttemptId) -> Result<Vec<Refund>> {
    db::all(
        c,
        q::OF_PAYMENT.sqlite,
        [payment.as_str()],
        RefundRow::from_sqlite,
    )?
    .into_iter()
    .map(RefundRow::into_refund)
    .collect()
}

pub(super) fn by_id(c: &Connection, id: &RefundId) -> Result<Option<Refund>> {
    one(c, q::BY_ID.sqlite, [id.as_str()])
}

pub(super) fn begin(c: &Connection, r: &NewRefund) -> Result<BeginRefund> {
    let payment = db::opt(
        c,
        q::PAYMENT.sqlite,
        [r.payment_id.as_str(), r.merchant_id.as_str()],
        AttemptRow::from_sqlite,
    )?;
    let Some(payment) = payment else {
        return Ok(BeginRefund::PaymentNotFound);
    };
    let payment = payment.into_attempt()?;
    if let Some(merchant_refund_id) = &r.merchant_refund_id {
        let earlier = one(
            c,
            q::BY_MERCHANT_REFUND_ID.sqlite,
            [r.merchant_id.as_str(), merchant_refund_id.as_str()],
        )?;
        if let Some(earlier) = earlier {
            return Ok(crate::rows::asked_before(earlier, r));
        }
    }
    if let Some(request) = &r.request {
        let earlier = one(
            c,
            q::BY_REQUEST_KEY.sqlite,
            params![
                r.merchant_id.as_str(),
                &request.key,
                request.since.epoch_millis()
            ],
        )?;
        if let Some(earlier) = earlier {
            return Ok(crate::rows::asked_before(earlier, r));
        }
    }
    if payment.status != AttemptStatus::Paid {
        return Ok(BeginRefund::NotRefundable(payment.status));
    }
    let held: i64 = db::one(c, q::HELD.sqlite, [payment.id.as_str()], db::first)?;
    let refund = match crate::refunds::reserve(r, &payment, held) {
        Ok(refund) => refund,
        Err(refundable) => return Ok(BeginRefund::Exceeds { refundable }),
    };
    db::exec(
        c,
        q::INSERT.sqlite,
        params![
            refund.id.as_str(),
            refund.merchant_id.as_str(),
            refund.payment_id.as_str(),
            &refund.merchant_refund_id,
            rows::amount_to_db(refund.money.amount),
            refund.money.currency.code(),
            refund.status.code(),
            refund.created_at.epoch_millis(),
            r.request.as_ref().map(|k| k.key.as_str()),
            r.requested_by.code(),
            &r.reason,
        ],
    )?;
    Ok(BeginRefund::Reserved(refund))
}

pub(super) fn finish(c: &Connection, f: &FinishRefund) -> Result<Refund> {
    db::exec(
        c,
        q::FINISH.sqlite,
        params![
            f.status.code(),
            f.at.epoch_millis(),
            &f.channel_refund_id,
            f.id.as_str(),
        ],
    )?;
    by_id(c, &f.id)?.ok_or(StoreError::NotFound("refund"))
}

#[async_trait]
impl crate::Refunds for SqliteStore {
    async fn begin_refund(&self, refund: NewRefund) -> Result<BeginRefund> {
        self.engine.write(move |c| begin(c, &refund)).await
    }

    async fn finish_refund(&self, finish: FinishRefund) -> Result<Refund> {
        self.engine.write(move |c| self::finish(c, &finish)).await
    }

    async fn refunds(&self, payment: &AttemptId) -> Result<Vec<Refund>> {
        let payment = payment.clone();
        self.engine.read(move |c| of_payment(c, &payment)).await
    }

    async fn refund(&self, id: &RefundId) -> Result<Option<Refund>> {
        let id = id.clone();
        self.engine.read(move |c| by_id(c, &id)).await
    }

    async fn refunds_to_reconcile(&self, due: Due) -> Result<Vec<Refund>> {
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
}
