//! In-store barcode payments (PASSIVEPAY, docs/instore.md). The gateway charges the code the
//! buyer's wallet shows and, when the wallet does not decide at once, runs that wallet's
//! published rule on the till's behalf: ask again on its schedule, then undo (WeChat
//! `reverse`, Alipay `cancel`, UnionPay's void). The rule's state is a job written before
//! the wallet is first asked, so a gateway killed mid-payment leaves it for whichever
//! gateway runs next: every barcode payment ends paid, failed or reversed — never taken and
//! unknown — and an undo the wallet keeps refusing stays visible and is asked again.

use ottgate_channels::{
    BarcodePayment, BarcodeResult, BarcodeRules, Channel, QueryPayment, QueryResult, UndoPayment,
    UndoResult, VerifiedResult,
};
use ottgate_core::{Attempt, AttemptOutcome, AttemptStatus, Merchant, Money, Order, Timestamp};
use ottgate_store::{BarcodeJob, BarcodePhase, SettleOutcome};
use std::sync::Arc;
use std::time::Duration;

use super::{Service, ServiceError};

/// Time the first wallet call may take before a job left by a gateway that died during it
/// is taken up by another.
const FIRST_CALL: Duration = Duration::from_secs(30);
/// How often an undo the wallet refused for good is asked again (it stays visible).
const REFUSED_UNDO_EVERY: Duration = Duration::from_secs(3_600);
/// How long a claimed job is held by the gateway that claimed it.
const LEASE: Duration = Duration::from_secs(60);

/// A charge's outcome for the till, and when the wallet answered it (to measure what the
/// gateway adds after the wallet).
#[derive(Debug, Clone)]
pub struct Charged {
    pub status: BarcodeStatus,
    pub wallet_answered: Option<std::time::Instant>,
}

/// Where a barcode payment stands for the till.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BarcodeStatus {
    Paid {
        /// The wallet's buyer identity, when it gave one at once.
        buyer: Option<String>,
    },
    /// Refused, or undone: nothing taken.
    Failed { reason: String },
    /// Not decided yet: the gateway goes on asking (`PROCESSING`).
    Processing,
}

impl Service {
    /// The wallet serving `attempt`'s method and its barcode rule.
    fn barcode_channel(
        &self,
        attempt: &Attempt,
    ) -> Result<(Arc<dyn Channel>, BarcodeRules), ServiceError> {
        let channel = self
            .channels
            .for_method(attempt.method)
            .ok_or(ServiceError::NotFound("channel"))?;
        let rules = channel
            .barcode_rules()
            .ok_or(ServiceError::NotFound("barcode rules"))?;
        Ok((channel, rules))
    }

    /// Charges the buyer's `auth_code` for `attempt` (just created for a PASSIVEPAY): writes
    /// the job first, asks the wallet, applies a definite answer. A repeat (the job exists)
    /// never asks the wallet again: it reports where the payment stands. A decided job is
    /// closed by the caller ([`Self::close_barcode`]), beside its own last write.
    pub async fn charge_barcode(
        &self,
        order: &Order,
        merchant: &Merchant,
        attempt: &Attempt,
        auth_code: &str,
    ) -> Result<Charged, ServiceError> {
        let (channel, rules) = self.barcode_channel(attempt)?;
        let now = self.clock.now();
        let job = BarcodeJob {
            attempt_id: attempt.id.clone(),
            merchant_id: order.merchant_id.clone(),
            phase: BarcodePhase::Query,
            outcome: None,
            next_at: now.plus(FIRST_CALL + rules.first_query),
            query_until: now.plus(rules.query_for),
            undo_after: now.plus(rules.undo_not_before),
            tries: 0,
            last_error: None,
            created_at: now,
            finished_at: None,
        };
        if !self.store.insert_barcode_job(job.clone()).await? {
            return Ok(Charged {
                status: self.barcode_status(attempt).await?,
                wallet_answered: None,
            });
        }
        let terms = self.wallet_terms(attempt).await?;
        let answer = channel
            .barcode_pay(&BarcodePayment {
                attempt_id: attempt.id.clone(),
                merchant_id: order.merchant_id.to_string(),
                money: attempt.money,
                auth_code: auth_code.to_owned(),
                description: merchant.name.as_str().to_owned(),
                terminal: order.terminal.clone(),
                started_at: attempt.created_at,
                channel_ids: terms.ids,
            })
            .await;
        let wallet_answered = Some(std::time::Instant::now());
        let answer = match answer {
            Ok(BarcodeResult::Paid { money, .. }) if !money_agrees(money, attempt.money) => {
                tracing::error!(attempt_id = %attempt.id, "barcode payment answered for another amount; asking again");
                BarcodeResult::Undecided {
                    reason: "the wallet stated another amount".into(),
                }
            }
            Ok(answer) => answer,
            Err(e) => BarcodeResult::Undecided {
                reason: e.to_string(),
            },
        };
        match answer {
            BarcodeResult::Paid {
                bizpay_order_id,
                buyer,
                ..
            } => {
                self.barcode_settle(order, attempt, AttemptOutcome::Paid, Some(bizpay_order_id))
                    .await?;
                Ok(Charged {
                    status: BarcodeStatus::Paid { buyer },
                    wallet_answered,
                })
            }
            BarcodeResult::Declined { reason } => {
                self.barcode_settle(order, attempt, AttemptOutcome::Failed, None)
                    .await?;
                Ok(Charged {
                    status: BarcodeStatus::Failed { reason },
                    wallet_answered,
                })
            }
            BarcodeResult::Undecided { reason } => {
                tracing::info!(attempt_id = %attempt.id, %reason, "barcode payment undecided; following the wallet's rule");
                let next = BarcodeJob {
                    next_at: self.clock.now().plus(rules.first_query),
                    tries: 1,
                    last_error: Some(reason),
                    ..job
                };
                self.store.update_barcode_job(&next).await?;
                Ok(Charged {
                    status: BarcodeStatus::Processing,
                    wallet_answered: None,
                })
            }
        }
    }

    /// Closes the job of a barcode payment the first answer decided (paid or failed). Left
    /// undone (a crash), the worker closes it when it comes due: the payment is settled
    /// already.
    pub async fn close_barcode(
        &self,
        attempt: &ottgate_core::AttemptId,
        status: &BarcodeStatus,
    ) -> Result<(), ServiceError> {
        let (outcome, reason) = match status {
            BarcodeStatus::Paid { .. } => ("paid", None),
            BarcodeStatus::Failed { reason } => ("failed", Some(reason.clone())),
            BarcodeStatus::Processing => return Ok(()),
        };
        match self.store.barcode_job(attempt).await? {
            Some(job) if job.phase != BarcodePhase::Done => {
                self.finish_barcode(job, outcome, reason).await
            }
            _ => Ok(()),
        }
    }

    /// Where `attempt`'s barcode payment stands now.
    pub async fn barcode_status(&self, attempt: &Attempt) -> Result<BarcodeStatus, ServiceError> {
        let attempt = self.existing_attempt(&attempt.id).await?;
        let job = self.store.barcode_job(&attempt.id).await?;
        let reason = || {
            job.as_ref()
                .and_then(|j| match j.outcome.as_deref() {
                    Some("reversed") => {
                        Some("undecided, then reversed: nothing was taken".to_owned())
                    }
                    _ => j.last_error.clone(),
                })
                .unwrap_or_else(|| "declined".to_owned())
        };
        Ok(match attempt.status {
            AttemptStatus::Paid => BarcodeStatus::Paid { buyer: None },
            AttemptStatus::Pending => BarcodeStatus::Processing,
            AttemptStatus::Expired
                if job.as_ref().is_some_and(|j| j.phase != BarcodePhase::Done) =>
            {
                BarcodeStatus::Processing
            }
            _ => BarcodeStatus::Failed { reason: reason() },
        })
    }

    /// Waits up to `wait` for `attempt`'s barcode payment to be decided.
    pub async fn await_barcode(
        &self,
        attempt: &Attempt,
        wait: Duration,
    ) -> Result<BarcodeStatus, ServiceError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let status = self.barcode_status(attempt).await?;
            if status != BarcodeStatus::Processing || tokio::time::Instant::now() >= deadline {
                return Ok(status);
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            tokio::time::sleep(left.min(Duration::from_millis(100))).await;
        }
    }

    /// Applies a barcode payment's result (its callback, if the merchant gave a URL, goes
    /// out when it is paid).
    async fn barcode_settle(
        &self,
        order: &Order,
        attempt: &Attempt,
        outcome: AttemptOutcome,
        bizpay_order_id: Option<String>,
    ) -> Result<SettleOutcome, ServiceError> {
        self.apply_result_to(
            order,
            attempt,
            VerifiedResult {
                attempt_id: attempt.id.clone(),
                outcome,
                bizpay_order_id,
                buyer_paid: None,
            },
        )
        .await
    }

    async fn finish_barcode(
        &self,
        job: BarcodeJob,
        outcome: &str,
        last_error: Option<String>,
    ) -> Result<(), ServiceError> {
        let now = self.clock.now();
        let done = BarcodeJob {
            phase: BarcodePhase::Done,
            outcome: Some(outcome.to_owned()),
            next_at: now,
            last_error: last_error.or(job.last_error.clone()),
            finished_at: Some(now),
            ..job
        };
        self.store.update_barcode_job(&done).await?;
        tracing::info!(attempt_id = %done.attempt_id, outcome, "barcode payment finished");
        self.metrics
            .outcome(&self.metrics.settlements, &format!("barcode_{outcome}"));
        Ok(())
    }

    /// The follow-up of an in-store payment's attempt, if it is one.
    pub async fn barcode_follow_up(
        &self,
        attempt: &ottgate_core::AttemptId,
    ) -> Result<Option<BarcodeJob>, ServiceError> {
        Ok(self.store.barcode_job(attempt).await?)
    }

    /// Barcode payments not finished: being asked about, being undone.
    pub async fn barcode_backlog(&self) -> Result<ottgate_store::BarcodeBacklog, ServiceError> {
        Ok(self.store.barcode_backlog().await?)
    }

    /// Runs every barcode job due now (one pass of the worker); returns how many.
    pub async fn barcode_due(&self) -> Result<usize, ServiceError> {
        let jobs = self
            .store
            .claim_barcode_jobs(self.clock.now(), LEASE, 50)
            .await?;
        let n = jobs.len();
        for job in jobs {
            let id = job.attempt_id.clone();
            if let Err(e) = self.barcode_step(job).await {
                tracing::warn!(attempt_id = %id, error = %e, "barcode step failed; it is due again after its lease");
            }
        }
        Ok(n)
    }

    /// One step of a barcode payment's rule: a query, or an undo.
    async fn barcode_step(&self, job: BarcodeJob) -> Result<(), ServiceError> {
        let attempt = self.existing_attempt(&job.attempt_id).await?;
        let order = self.existing_order(&attempt.order_id).await?;
        // Decided meanwhile (by the first answer, or another gateway).
        match (attempt.status, job.phase) {
            (AttemptStatus::Paid, _) => return self.finish_barcode(job, "paid", None).await,
            (AttemptStatus::Failed | AttemptStatus::Cancelled, BarcodePhase::Query) => {
                return self.finish_barcode(job, "failed", None).await;
            }
            _ => {}
        }
        let (channel, rules) = self.barcode_channel(&attempt)?;
        let terms = self.wallet_terms(&attempt).await?;
        let now = self.clock.now();
        match job.phase {
            BarcodePhase::Query | BarcodePhase::Done => {
                let answer = channel
                    .query(&QueryPayment {
                        attempt_id: attempt.id.clone(),
                        money: attempt.money,
                        started_at: attempt.created_at,
                        flow: terms.flow,
                        channel_ids: terms.ids,
                    })
                    .await;
                match answer {
                    Ok(QueryResult::Paid {
                        bizpay_order_id,
                        money,
                    }) if money_agrees(money, attempt.money) => {
                        self.barcode_settle(
                            &order,
                            &attempt,
                            AttemptOutcome::Paid,
                            Some(bizpay_order_id),
                        )
                        .await?;
                        self.finish_barcode(job, "paid", None).await
                    }
                    Ok(QueryResult::Closed) => {
                        self.barcode_settle(&order, &attempt, AttemptOutcome::Failed, None)
                            .await?;
                        self.finish_barcode(job, "failed", Some("closed at the wallet".into()))
                            .await
                    }
                    other => {
                        let said = match other {
                            Ok(r) => format!("{r:?}"),
                            Err(e) => e.to_string(),
                        };
                        let next_query = now.plus(rules.query_every);
                        let next = if next_query.epoch_millis() <= job.query_until.epoch_millis() {
                            BarcodeJob {
                                next_at: next_query,
                                tries: job.tries + 1,
                                last_error: Some(said),
                                ..job
                            }
                        } else {
                            tracing::info!(attempt_id = %attempt.id, "barcode payment still undecided; undoing it");
                            BarcodeJob {
                                phase: BarcodePhase::Undo,
                                next_at: later_of(now, job.undo_after),
                                tries: 0,
                                last_error: Some(said),
                                ..job
                            }
                        };
                        self.store.update_barcode_job(&next).await?;
                        Ok(())
                    }
                }
            }
            BarcodePhase::Undo => {
                let answer = channel
                    .undo(&UndoPayment {
                        attempt_id: attempt.id.clone(),
                        bizpay_order_id: attempt.bizpay_order_id.clone(),
                        money: attempt.money,
                        started_at: attempt.created_at,
                        channel_ids: terms.ids.clone(),
                        at: now,
                    })
                    .await;
                let (again_after, said) = match answer {
                    Ok(UndoResult::Undone) => {
                        self.barcode_settle(&order, &attempt, AttemptOutcome::Failed, None)
                            .await?;
                        return self
                            .finish_barcode(
                                job,
                                "reversed",
                                Some("undecided, then reversed".into()),
                            )
                            .await;
                    }
                    Ok(UndoResult::Again { reason }) => (rules.undo_every, reason),
                    Err(e) => (rules.undo_every, e.to_string()),
                    Ok(UndoResult::Refused { reason }) => {
                        tracing::error!(attempt_id = %attempt.id, %reason, "the wallet refuses to undo a barcode payment; asked again hourly, see the merchant center");
                        (REFUSED_UNDO_EVERY, format!("undo refused: {reason}"))
                    }
                };
                let next = BarcodeJob {
                    next_at: now.plus(again_after),
                    tries: job.tries + 1,
                    last_error: Some(said),
                    ..job
                };
                self.store.update_barcode_job(&next).await?;
                Ok(())
            }
        }
    }
}

/// Whether the amount a wallet stated (if it stated one) is the payment's.
fn money_agrees(stated: Option<Money>, expected: Money) -> bool {
    stated.is_none_or(|m| m == expected)
}

fn later_of(a: Timestamp, b: Timestamp) -> Timestamp {
    if a.epoch_millis() >= b.epoch_millis() {
        a
    } else {
        b
    }
}
