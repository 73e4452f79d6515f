//! Refunds: reserve the amount, ask the payment's channel, record the answer.

use ottgate_channels::{ChannelError, RefundPayment, RefundResult};
use ottgate_core::{Amount, AttemptId, MerchantId, Refund, RefundId, RefundStatus};
use ottgate_store::{BeginRefund, NewRefund, StoreError};

use super::{Service, ServiceError};

#[derive(Debug, thiserror::Error)]
pub enum RefundError {
    #[error("payment not found")]
    PaymentNotFound,
    #[error("the payment is not paid, so it cannot be refunded")]
    NotPaid,
    #[error("refund amount exceeds the refundable amount ({refundable})")]
    Exceeds { refundable: u64 },
    #[error("this refund id was already used for a different refund")]
    IdReused,
    #[error("the payment channel refused the refund: {0}")]
    Refused(String),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<StoreError> for RefundError {
    fn from(e: StoreError) -> Self {
        RefundError::Service(e.into())
    }
}

impl Service {
    /// Refunds `amount` of `merchant`'s paid payment `payment_id`. The amount is held before
    /// the channel is asked, so concurrent refunds can never exceed what was paid; a
    /// `merchant_refund_id` seen before with the same payment and amount returns that refund.
    pub async fn refund(
        &self,
        merchant: &MerchantId,
        payment_id: &AttemptId,
        amount: Amount,
        merchant_refund_id: Option<String>,
    ) -> Result<Refund, RefundError> {
        let now = self.clock.now();
        let begun = self
            .store
            .begin_refund(NewRefund {
                id: RefundId::generate(now),
                merchant_id: merchant.clone(),
                payment_id: payment_id.clone(),
                merchant_refund_id,
                amount,
                at: now,
            })
            .await?;
        let refund = match begun {
            BeginRefund::Reserved(r) => r,
            BeginRefund::Replayed(r) => return Ok(r),
            BeginRefund::IdReused(_) => return Err(RefundError::IdReused),
            BeginRefund::PaymentNotFound => return Err(RefundError::PaymentNotFound),
            BeginRefund::NotRefundable(_) => return Err(RefundError::NotPaid),
            BeginRefund::Exceeds { refundable } => return Err(RefundError::Exceeds { refundable }),
        };
        let attempt = self
            .store
            .attempt(payment_id)
            .await?
            .ok_or(ServiceError::NotFound("attempt"))?;
        let Some(channel) = self.channels.for_method(attempt.method) else {
            self.store
                .finish_refund(&refund.id, RefundStatus::Failed, None, self.clock.now())
                .await?;
            return Err(RefundError::Refused(format!(
                "no channel serves {} in this deployment",
                attempt.method
            )));
        };
        let terms = self.wallet_terms(&attempt).await?;
        let request = RefundPayment {
            channel_ids: terms.ids,
            flow: terms.flow,
            // The refund's own time: UnionPay finds it later by id and this time.
            at: refund.created_at,
            refund_id: refund.id.clone(),
            payment_id: attempt.id.clone(),
            bizpay_order_id: attempt.bizpay_order_id.clone(),
            money: refund.money,
            payment_total: attempt.money,
        };
        let answer = channel.refund(&request).await;
        let done = |status, channel_ref| {
            self.store
                .finish_refund(&refund.id, status, channel_ref, self.clock.now())
        };
        let result = match answer {
            Ok(RefundResult::Succeeded { channel_refund_id }) => {
                Ok(done(RefundStatus::Success, Some(channel_refund_id)).await?)
            }
            Ok(RefundResult::Pending) => Ok(refund.clone()),
            Ok(RefundResult::Refused { reason }) => {
                done(RefundStatus::Failed, None).await?;
                Err(RefundError::Refused(reason))
            }
            Err(ChannelError::Config(reason)) => {
                done(RefundStatus::Failed, None).await?;
                Err(RefundError::Refused(reason))
            }
            // The request may or may not have reached the wallet: the amount stays held
            // until the refund's status is known.
            Err(ChannelError::Upstream { message, source }) => {
                tracing::warn!(refund_id = %refund.id, reason = %message, cause = ?source, "refund outcome unknown; left pending");
                Ok(refund.clone())
            }
        };
        match &result {
            Ok(r) => {
                self.metrics.outcome(&self.metrics.refunds, r.status.code());
                tracing::info!(refund_id = %r.id, payment_id = %payment_id, amount = %r.money.amount, status = r.status.code(), "refund");
            }
            Err(e) => {
                self.metrics.outcome(&self.metrics.refunds, "refused");
                tracing::warn!(refund_id = %refund.id, payment_id = %payment_id, error = %e, "refund refused");
            }
        }
        result
    }
}
