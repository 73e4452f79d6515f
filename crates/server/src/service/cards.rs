//! Card authorisations (docs/cards.md): an approved `CC_PREAUTH` or REST local-card payment
//! is only *authorised* — the money held on the card, the attempt still pending — until it
//! is captured (the attempt paid, the callback sent), voided (cancelled, the order closed)
//! or lapses at the end of the hold (the order expires). Each change happens once, under
//! the order's lock: a capture never takes a payment voided or lapsed meanwhile.

use ottgate_channels::SandboxChannel;
use ottgate_channels::VerifiedResult;
use ottgate_core::{Attempt, AttemptId, AttemptOutcome, MerchantId, Order, OrderKind, Timestamp};
use ottgate_store::{Authorise, HoldOutcome, SettleOutcome};

use super::{Service, ServiceError};

/// Why a void was refused.
#[derive(Debug, thiserror::Error)]
pub enum VoidError {
    #[error("payment not found")]
    NotFound,
    #[error("only a card payment can be voided")]
    NotACard,
    /// Paid (captured), failed, or expired: nothing is held any more.
    #[error("the payment is {0}: only a payment not captured yet can be voided")]
    Finished(&'static str),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl Service {
    /// The card acquirer approved `attempt`: its money is held. A REST local-card payment
    /// is captured by the gateway `card_capture_delay` later; a pre-authorisation waits for
    /// the merchant. Either lapses after `card_authorisation_hold`.
    pub async fn authorise_card(&self, attempt: &Attempt) -> Result<HoldOutcome, ServiceError> {
        let order = self.existing_order(&attempt.order_id).await?;
        let now = self.clock.now();
        let later = |d: std::time::Duration| now.plus(d);
        let capture_at =
            (order.kind == OrderKind::LocalCard).then(|| later(self.settings.card_capture_delay));
        let outcome = self
            .store
            .authorise(Authorise {
                attempt_id: attempt.id.clone(),
                at: now,
                capture_at,
                hold_until: later(self.settings.card_authorisation_hold),
                bizpay_order_id: Some(SandboxChannel::transaction_id(&attempt.id)),
            })
            .await?;
        if let HoldOutcome::Applied { attempt, .. } = &outcome {
            self.metrics
                .outcome(&self.metrics.settlements, "authorised");
            tracing::info!(attempt_id = %attempt.id, capture_at = ?attempt.capture_at.map(Timestamp::epoch_millis), "card payment authorised");
        }
        Ok(outcome)
    }

    /// Captures an authorised card payment: the money is taken, the attempt paid and the
    /// merchant's callback enqueued, once. Refused (`Rejected`) when the payment is no
    /// longer held.
    pub async fn capture(&self, attempt: &AttemptId) -> Result<SettleOutcome, ServiceError> {
        let attempt = self.existing_attempt(attempt).await?;
        let order = self.existing_order(&attempt.order_id).await?;
        let result = VerifiedResult {
            attempt_id: attempt.id.clone(),
            outcome: AttemptOutcome::Paid,
            bizpay_order_id: attempt.bizpay_order_id.clone(),
            buyer_paid: None,
        };
        self.settle_result(&order, &attempt, result, true).await
    }

    /// Voids merchant `merchant`'s card payment `id` before it is captured: nothing is
    /// taken, the order closes. A repeat answers as the first did.
    pub async fn void_card(
        &self,
        merchant: &MerchantId,
        id: &AttemptId,
    ) -> Result<(Order, Attempt), VoidError> {
        let attempt = self
            .store
            .merchant_attempt(merchant, id)
            .await
            .map_err(ServiceError::from)?
            .ok_or(VoidError::NotFound)?;
        let order = self.existing_order(&attempt.order_id).await?;
        if !order.kind.is_card() {
            return Err(VoidError::NotACard);
        }
        let outcome = self
            .store
            .void(&attempt.id, self.clock.now())
            .await
            .map_err(ServiceError::from)?;
        match outcome {
            HoldOutcome::Applied { order, attempt } => {
                tracing::info!(attempt_id = %attempt.id, "card payment voided");
                Ok((order, attempt))
            }
            HoldOutcome::AlreadyApplied { order, attempt } => Ok((order, attempt)),
            HoldOutcome::Refused { attempt, .. } => {
                Err(VoidError::Finished(match attempt.status {
                    ottgate_core::AttemptStatus::Paid => "captured",
                    ottgate_core::AttemptStatus::Expired => "expired",
                    _ => "failed",
                }))
            }
        }
    }

    /// Captures every authorisation whose time has come (one sweep); returns how many.
    pub async fn capture_due(&self) -> Result<usize, ServiceError> {
        let due = self.store.captures_due(self.clock.now(), 100).await?;
        let mut captured = 0;
        for id in due {
            match self.capture(&id).await? {
                SettleOutcome::Applied { .. } => captured += 1,
                other => {
                    tracing::warn!(attempt_id = %id, outcome = ?other.attempt().status, "a due capture found the payment no longer held");
                }
            }
        }
        Ok(captured)
    }
}
