//! When a notification is late or lost: asking the wallet ourselves, and applying a
//! definite answer exactly as a notification would be (the reconciliation worker calls
//! these for attempts and refunds pending too long).

use ottgate_channels::{QueryPayment, QueryRefund, QueryResult, RefundQueryResult, VerifiedResult};
use ottgate_core::{Attempt, AttemptOutcome, AttemptStatus, Refund, RefundStatus};
use ottgate_store::SettleOutcome;

use super::{Service, ServiceError};

impl Service {
    /// Asks the wallet about a refund it accepted but has not reported on, and records a
    /// definite answer. Returns whether anything changed.
    pub async fn reconcile_refund(&self, refund: &Refund) -> Result<bool, ServiceError> {
        if refund.status != RefundStatus::Pending {
            return Ok(false);
        }
        let attempt = self
            .store
            .attempt(&refund.payment_id)
            .await?
            .ok_or(ServiceError::NotFound("attempt"))?;
        let Some(channel) = self
            .channels
            .for_method(attempt.method)
            .filter(|c| c.can_query_refunds())
        else {
            self.store
                .mark_refund_checked(&refund.id, self.clock.now())
                .await?;
            return Ok(false);
        };
        let answer = channel
            .query_refund(&QueryRefund {
                refund_id: refund.id.clone(),
                payment_id: attempt.id.clone(),
                requested_at: refund.created_at,
                asked_at: self.clock.now(),
                money: refund.money,
                channel_ids: self.channel_ids_of(&attempt).await?,
            })
            .await;
        self.store
            .mark_refund_checked(&refund.id, self.clock.now())
            .await?;
        let (status, channel_ref) = match answer {
            Ok(RefundQueryResult::Succeeded { channel_refund_id }) => {
                (RefundStatus::Success, channel_refund_id)
            }
            Ok(RefundQueryResult::Failed) => (RefundStatus::Failed, None),
            Ok(RefundQueryResult::Pending) => return Ok(false),
            Err(e) => {
                tracing::warn!(refund_id = %refund.id, error = %e, "refund reconciliation query failed");
                return Ok(false);
            }
        };
        let finished = self
            .store
            .finish_refund(ottgate_store::FinishRefund {
                id: refund.id.clone(),
                status,
                channel_refund_id: channel_ref,
                at: self.clock.now(),
            })
            .await?;
        let changed = finished.status == status && finished.status != RefundStatus::Pending;
        if changed {
            self.metrics
                .outcome(&self.metrics.notifications, "reconciled");
            tracing::info!(refund_id = %refund.id, status = status.code(), "refund settled by reconciliation query");
        }
        Ok(changed)
    }

    /// Asks the wallet about a pending attempt and applies a definite answer. Returns
    /// whether anything changed.
    pub async fn reconcile(&self, attempt: &Attempt) -> Result<bool, ServiceError> {
        if attempt.status != AttemptStatus::Pending {
            return Ok(false);
        }
        self.settle_by_query(attempt).await
    }

    /// Asks the wallet about an attempt, whatever the gateway holds it as, and applies a
    /// definite answer as a notification would (a late payment of a closed order pays it,
    /// as the state machine allows). Returns whether anything changed.
    pub(crate) async fn settle_by_query(&self, attempt: &Attempt) -> Result<bool, ServiceError> {
        let Some(channel) = self.channels.for_method(attempt.method) else {
            return Ok(false);
        };
        let terms = self.wallet_terms(attempt).await?;
        let answer = channel
            .query(&QueryPayment {
                attempt_id: attempt.id.clone(),
                money: attempt.money,
                started_at: attempt.created_at,
                flow: terms.flow,
                channel_ids: terms.ids,
            })
            .await;
        self.store
            .mark_checked(&attempt.id, self.clock.now())
            .await?;
        let outcome = match answer {
            Ok(QueryResult::Paid { money: Some(m), .. }) if m != attempt.money => {
                tracing::warn!(attempt_id = %attempt.id, "wallet reports a payment of another amount; not applied");
                return Ok(false);
            }
            Ok(QueryResult::Paid {
                bizpay_order_id, ..
            }) => (AttemptOutcome::Paid, Some(bizpay_order_id)),
            Ok(QueryResult::Closed) => (AttemptOutcome::Failed, None),
            Ok(QueryResult::Pending | QueryResult::NotFound) => return Ok(false),
            Err(e) => {
                tracing::warn!(attempt_id = %attempt.id, error = %e, "reconciliation query failed");
                return Ok(false);
            }
        };
        let applied = self
            .apply_result(VerifiedResult {
                attempt_id: attempt.id.clone(),
                outcome: outcome.0,
                bizpay_order_id: outcome.1,
                buyer_paid: None,
            })
            .await?;
        let changed = matches!(applied, SettleOutcome::Applied { .. });
        if changed {
            self.metrics
                .outcome(&self.metrics.notifications, "reconciled");
            tracing::info!(attempt_id = %attempt.id, outcome = outcome.0.code(), "settled by reconciliation query");
        }
        Ok(changed)
    }
}
