//! Refunds: reserve the amount, ask the payment's channel, record the answer.

use ottgate_channels::{ChannelError, RefundPayment, RefundResult};
use ottgate_core::{Amount, AttemptId, MerchantId, Refund, RefundId, RefundStatus};
use ottgate_store::{BeginRefund, FinishRefund, NewRefund, RefundRequestKey, StoreError};

use super::{Service, ServiceError};

#[derive(Debug, thiserror::Error)]
pub enum RefundError {
    #[error("payment not found")]
    PaymentNotFound,
    #[error("the payment is not paid, so it cannot be refunded")]
    NotPaid,
    /// A card payment authorised and not captured yet: nothing was taken to give back.
    #[error(
        "the payment is a card authorisation not captured yet: void it (REST local-card/reverse) \
         instead, or refund it once captured"
    )]
    Authorised,
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

/// A refund as a merchant asked for it.
#[derive(Debug, Clone)]
pub struct RefundAsk {
    pub merchant: MerchantId,
    pub payment_id: AttemptId,
    pub amount: Amount,
    /// The merchant's own refund id (the envelope's `order_id`): asked again, it is this
    /// refund.
    pub merchant_refund_id: Option<String>,
    /// What names the request, prefixed by its door (`rest:` and the Idempotency-Key,
    /// `envelope:` and the canonical hash, `dashboard:` and the form's one-time token):
    /// asked again within the idempotency retention, it is this refund, even when the first
    /// answer never reached the merchant.
    pub request_key: Option<String>,
    /// Who asks.
    pub requested_by: ottgate_core::RefundedBy,
    /// Why, in the merchant's words (the merchant center's optional reason).
    pub reason: Option<String>,
}

/// A refund made, or found made by the same request before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refunded {
    pub refund: Refund,
    /// `true`: this request (its refund id or request key) asked before; nothing new was
    /// refunded, this is the refund it made.
    pub replayed: bool,
}

impl Service {
    /// Refunds `amount` of `merchant`'s paid payment `payment_id`. The amount is held before
    /// the channel is asked, and the request's key is written with it, so concurrent
    /// refunds can never exceed what was paid and a request asked again is never refunded
    /// twice. Callers run this [`Service::to_completion`].
    pub async fn refund(&self, ask: RefundAsk) -> Result<Refunded, RefundError> {
        let now = self.clock.now();
        let since = now.minus(self.settings.idempotency_retention);
        let RefundAsk {
            merchant,
            payment_id,
            amount,
            merchant_refund_id,
            request_key,
            requested_by,
            reason,
        } = ask;
        let begun = self
            .store
            .begin_refund(NewRefund {
                id: RefundId::generate(now),
                merchant_id: merchant.clone(),
                payment_id: payment_id.clone(),
                merchant_refund_id,
                amount,
                at: now,
                request: request_key.map(|key| RefundRequestKey { key, since }),
                requested_by,
                reason,
            })
            .await?;
        let refund = match begun {
            BeginRefund::Reserved(r) => r,
            BeginRefund::Replayed(refund) => {
                tracing::info!(refund_id = %refund.id, payment_id = %payment_id, "refund asked again; answering the one made");
                return Ok(Refunded {
                    refund,
                    replayed: true,
                });
            }
            BeginRefund::IdReused(_) => return Err(RefundError::IdReused),
            BeginRefund::PaymentNotFound => return Err(RefundError::PaymentNotFound),
            BeginRefund::NotRefundable(_) => {
                let held = self
                    .store
                    .attempt(&payment_id)
                    .await?
                    .is_some_and(|a| a.is_authorised());
                return Err(if held {
                    RefundError::Authorised
                } else {
                    RefundError::NotPaid
                });
            }
            BeginRefund::Exceeds { refundable } => return Err(RefundError::Exceeds { refundable }),
        };
        let attempt = self
            .store
            .attempt(&payment_id)
            .await?
            .ok_or(ServiceError::NotFound("attempt"))?;
        let Some(channel) = self.channels.for_method(attempt.method) else {
            self.store
                .finish_refund(FinishRefund {
                    id: refund.id.clone(),
                    status: RefundStatus::Failed,
                    channel_refund_id: None,
                    at: self.clock.now(),
                })
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
            self.store.finish_refund(FinishRefund {
                id: refund.id.clone(),
                status,
                channel_refund_id: channel_ref,
                at: self.clock.now(),
            })
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
        let result = result.map(|refund| Refunded {
            refund,
            replayed: false,
        });
        match &result {
            Ok(Refunded { refund: r, .. }) => {
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

impl Service {
    /// Refund `id`, whoever's it is (a wallet's notification names it).
    pub async fn refund_by_id(&self, id: &RefundId) -> Result<Option<Refund>, ServiceError> {
        Ok(self.store.refund(id).await?)
    }

    /// A payment's refunds, oldest first.
    pub async fn refunds_of(&self, payment: &AttemptId) -> Result<Vec<Refund>, ServiceError> {
        Ok(self.store.refunds(payment).await?)
    }

    /// Records the wallet's final word on refund `id` (a failed one releases its amount).
    pub async fn finish_refund(
        &self,
        id: &RefundId,
        status: RefundStatus,
        wallet_reference: Option<String>,
    ) -> Result<Refund, ServiceError> {
        Ok(self
            .store
            .finish_refund(FinishRefund {
                id: id.clone(),
                status,
                channel_refund_id: wallet_reference,
                at: self.clock.now(),
            })
            .await?)
    }
}
