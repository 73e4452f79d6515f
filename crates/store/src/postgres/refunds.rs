//! The `refunds` table. Beginning a refund locks its payment's row, so refunds started on
//! several gateways at once are checked one after another against what is left.

use super::{PgStore, db, due};
use crate::due::Due;
use crate::refunds::q;
use crate::rows::{self, RefundRow};
use crate::{BeginRefund, FinishRefund, NewRefund, Result, StoreError};
use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Transaction};
use ottgate_core::{AttemptId, AttemptStatus, Refund, RefundId, Timestamp};

pub(super) fn refund(row: &tokio_postgres::Row) -> Result<Refund> {
    RefundRow::from_pg(row)?.into_refund()
}

pub(super) async fn of_payment(c: &impl GenericClient, payment: &AttemptId) -> Result<Vec<Refund>> {
    let sql = q::OF_PAYMENT.pg;
    db::each(db::all(c, sql, &[&payment.as_str()]).await?, refund)
}

pub(super) async fn by_id(c: &impl GenericClient, id: &RefundId) -> Result<Option<Refund>> {
    let row = db::opt(c, q::BY_ID.pg, &[&id.as_str()]).await?;
    row.as_ref().map(refund).transpose()
}

pub(super) async fn begin(tx: &Transaction<'_>, r: &NewRefund) -> Result<BeginRefund> {
    let payment = db::opt(
        tx,
        q::PAYMENT.pg,
        &[&r.payment_id.as_str(), &r.merchant_id.as_str()],
    )
    .await?;
    let Some(payment) = payment else {
        return Ok(BeginRefund::PaymentNotFound);
    };
    let payment = db::attempt(&payment)?;
    if let Some(merchant_refund_id) = &r.merchant_refund_id {
        let earlier = db::opt(
            tx,
            q::BY_MERCHANT_REFUND_ID.pg,
            &[&r.merchant_id.as_str(), merchant_refund_id],
        )
        .await?;
        if let Some(earlier) = earlier {
            return Ok(crate::rows::asked_before(refund(&earlier)?, r));
        }
    }
    if let Some(request) = &r.request {
        // Asked under the payment's lock: a request repeated on another gateway waits
        // here for the first, then finds its refund.
        let earlier = db::opt(
            tx,
            q::BY_REQUEST_KEY.pg,
            &[
                &r.merchant_id.as_str(),
                &request.key,
                &request.since.epoch_millis(),
            ],
        )
        .await?;
        if let Some(earlier) = earlier {
            return Ok(crate::rows::asked_before(refund(&earlier)?, r));
        }
    }
    if payment.status != AttemptStatus::Paid {
        return Ok(BeginRefund::NotRefundable(payment.status));
    }
    let held: i64 = db::one(tx, q::HELD.pg, &[&payment.id.as_str()])
        .await?
        .try_get(0)?;
    let refund = match crate::refunds::reserve(r, &payment, held) {
        Ok(refund) => refund,
        Err(refundable) => return Ok(BeginRefund::Exceeds { refundable }),
    };
    let inserted = db::exec(
        tx,
        q::INSERT.pg,
        &[
            &refund.id.as_str(),
            &refund.merchant_id.as_str(),
            &refund.payment_id.as_str(),
            &refund.merchant_refund_id,
            &rows::amount_to_db(refund.money.amount),
            &refund.money.currency.code(),
            &refund.status.code(),
            &refund.created_at.epoch_millis(),
            &r.request.as_ref().map(|k| k.key.as_str()),
            &r.requested_by.code(),
            &r.reason,
        ],
    )
    .await?;
    if inserted == 0 {
        // Another refund under this merchant refund id (for another payment) got in first:
        // running again finds it.
        return Err(StoreError::Contended);
    }
    Ok(BeginRefund::Reserved(refund))
}

pub(super) async fn finish(tx: &Transaction<'_>, f: &FinishRefund) -> Result<Refund> {
    let params: db::Params<'_> = &[
        &f.status.code(),
        &f.at.epoch_millis(),
        &f.channel_refund_id,
        &f.id.as_str(),
    ];
    db::exec(tx, q::FINISH.pg, params).await?;
    by_id(tx, &f.id)
        .await?
        .ok_or(StoreError::NotFound("refund"))
}

#[async_trait]
impl crate::Refunds for PgStore {
    async fn begin_refund(&self, refund: NewRefund) -> Result<BeginRefund> {
        in_tx!(self, |tx| begin(&tx, &refund))
    }

    async fn finish_refund(&self, finish: FinishRefund) -> Result<Refund> {
        in_tx!(self, |tx| super::refunds::finish(&tx, &finish))
    }

    async fn refunds(&self, payment: &AttemptId) -> Result<Vec<Refund>> {
        of_payment(&self.client().await?, payment).await
    }

    async fn refund(&self, id: &RefundId) -> Result<Option<Refund>> {
        by_id(&self.client().await?, id).await
    }

    async fn refunds_to_reconcile(&self, due: Due) -> Result<Vec<Refund>> {
        let rows = in_tx!(self, |tx| due::claim_due_for_check(
            &tx, "refunds", "pending", due
        ))?;
        db::each(rows, refund)
    }

    async fn mark_refund_checked(&self, id: &RefundId, at: Timestamp) -> Result<()> {
        in_tx!(self, |tx| due::stamp_checked(
            &tx,
            "refunds",
            id.as_str(),
            at
        ))
    }
}
