//! Reconciling a wallet's day against its statement (docs/reconciliation.md): every line
//! matched to the gateway's payment or refund, each difference kept as a discrepancy, and
//! the confirmable ones — the wallet booked what the gateway holds as pending — repaired
//! by asking the wallet, exactly as a late notification would (one callback).

use std::collections::HashMap;

use ottgate_channels::ChannelError;
use ottgate_core::recon::{Outcome, Record, Side, WalletDay, reconcile};
use ottgate_core::{AttemptId, AttemptStatus, MerchantId, PaymentMethod, RefundId, RefundStatus};
use ottgate_store::{
    Discrepancy, DiscrepancyFilter, DiscrepancyState, FinishedRun, NewDiscrepancy, ReconRun,
    RecordQuery, Resolution,
};

use super::{Service, ServiceError};

/// How far back payments and refunds still pending are looked at for a day: a line the
/// wallet booked may be for one begun days before (a long-lived order).
const PENDING_WINDOW: std::time::Duration = std::time::Duration::from_secs(3 * 86_400);

/// How many days back the schedule looks for a statement not reconciled yet (a gateway
/// down for a day catches up).
pub const LOOKBACK_DAYS: u32 = 3;

/// How long a gateway's claim on running a day holds: a run takes seconds, so a claim
/// still held after this is a gateway that died, and another takes the day over.
pub const RUN_LEASE: std::time::Duration = std::time::Duration::from_secs(600);

/// What a day's run came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DayRun {
    /// The wallet has not published the day's statement yet: nothing was changed.
    NotReady,
    Done {
        run: ReconRun,
        found: Vec<NewDiscrepancy>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ReconError {
    #[error("no wallet named {0:?} takes payments here (these do: {1})")]
    UnknownWallet(String, String),
    /// The statement could not be had or read: nothing was changed.
    #[error("{wallet}'s statement: {error}")]
    Statement { wallet: String, error: ChannelError },
    #[error("no open discrepancy {0}")]
    NotOpen(i64),
    #[error("a resolution needs a note saying why")]
    NoNote,
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<ottgate_store::StoreError> for ReconError {
    fn from(e: ottgate_store::StoreError) -> Self {
        Self::Service(e.into())
    }
}

impl Service {
    /// The wallets this gateway takes payments with: `(name, method)`.
    pub fn statement_wallets(&self) -> Vec<(&'static str, PaymentMethod)> {
        PaymentMethod::ALL
            .into_iter()
            .filter_map(|m| self.channels.for_method(m).map(|c| (c.name(), m)))
            .filter(|(name, _)| *name != "sandbox")
            .collect()
    }

    /// The wallets whose statements the gateway reads (what `ottgate recon run` runs by
    /// default).
    pub fn reconciled_wallets(&self) -> Vec<&'static str> {
        self.statement_wallets()
            .into_iter()
            .filter(|(_, m)| {
                self.channels
                    .for_method(*m)
                    .is_some_and(|c| c.reads_statements())
            })
            .map(|(name, _)| name)
            .collect()
    }

    /// Reconciles `wallet`'s `day`: downloads its statement, matches it, repairs what the
    /// wallet's query confirms, and saves the run (replacing the day's open discrepancies:
    /// runs can be repeated for any day).
    pub async fn reconcile_day(&self, wallet: &str, day: WalletDay) -> Result<DayRun, ReconError> {
        self.reconcile_statement(wallet, day, false).await
    }

    /// [`Service::reconcile_day`]; with `none_is_empty`, a statement the wallet still does
    /// not have is taken as empty (a day without trades at the wallet: whatever the
    /// gateway counts done that day is then at the gateway only).
    async fn reconcile_statement(
        &self,
        wallet: &str,
        day: WalletDay,
        none_is_empty: bool,
    ) -> Result<DayRun, ReconError> {
        let wallets = self.statement_wallets();
        let Some(&(name, method)) = wallets.iter().find(|(name, _)| *name == wallet) else {
            let names: Vec<_> = wallets.iter().map(|(n, _)| *n).collect();
            return Err(ReconError::UnknownWallet(wallet.into(), names.join(", ")));
        };
        let channel = self
            .channels
            .for_method(method)
            .ok_or(ServiceError::NotFound("wallet"))?;
        let lines = match channel.statement(day).await {
            Ok(Some(lines)) => lines,
            Ok(None) if none_is_empty => Vec::new(),
            Ok(None) => {
                self.metrics.outcome(&self.metrics.recon_runs, "not_ready");
                return Ok(DayRun::NotReady);
            }
            Err(error) => {
                self.metrics.outcome(&self.metrics.recon_runs, "failed");
                return Err(ReconError::Statement {
                    wallet: name.into(),
                    error,
                });
            }
        };
        let held = self
            .store
            .recon_records(RecordQuery {
                method,
                day,
                pending_since: day.start().minus(PENDING_WINDOW),
            })
            .await?;
        // The records and their merchants side by side: matching borrows the records.
        let (mut records, mut owners): (Vec<Record>, Vec<MerchantId>) =
            held.into_iter().map(|h| (h.record, h.merchant_id)).unzip();
        let mut outcomes = reconcile(&lines, &records);
        // A line the day's records lack may name a payment or refund begun or done on
        // another day: look each up by its id before calling it the wallet's alone.
        let mut more = Vec::new();
        if outcomes.iter().any(|o| matches!(o, Outcome::WalletOnly(_))) {
            let mut known: std::collections::HashSet<&str> =
                records.iter().map(|r| r.ours.as_str()).collect();
            for outcome in &outcomes {
                if let Outcome::WalletOnly(line) = outcome
                    && !known.contains(line.ours.as_str())
                    && let Some(found) = self.store.recon_record(line.side, &line.ours).await?
                {
                    known.insert(line.ours.as_str());
                    more.push(found);
                }
            }
        }
        if !more.is_empty() {
            for found in more {
                records.push(found.record);
                owners.push(found.merchant_id);
            }
            outcomes = reconcile(&lines, &records);
        }
        let merchants: HashMap<&str, &MerchantId> =
            if outcomes.iter().all(|o| matches!(o, Outcome::Matched)) {
                HashMap::new()
            } else {
                records
                    .iter()
                    .zip(&owners)
                    .map(|(r, m)| (r.ours.as_str(), m))
                    .collect()
            };
        let mut found = Vec::new();
        let mut count = 0u64;
        for outcome in &outcomes {
            if matches!(outcome, Outcome::Matched) {
                count += 1;
                continue;
            }
            let mut d = discrepancy(outcome, &merchants);
            if let Outcome::StatusDiffers { record, .. } = outcome {
                match self.repair(record).await {
                    Ok(true) => {
                        d.state = DiscrepancyState::Repaired;
                        d.note = match record.side {
                            Side::Payment => "the wallet's query confirmed the payment; \
                                              settled, and the merchant's callback sent"
                                .into(),
                            Side::Refund => {
                                "the wallet's query confirmed the refund; recorded".into()
                            }
                        };
                    }
                    Ok(false) => {
                        d.note = "the wallet booked it, the gateway holds it as not done, \
                                  and the wallet's query did not confirm it"
                            .into();
                    }
                    Err(e) => {
                        tracing::warn!(id = %record.ours, error = %e, "statement repair failed");
                        d.note = format!("the repair failed: {e}");
                    }
                }
            }
            found.push(d);
        }
        let repaired = found
            .iter()
            .filter(|d| d.state == DiscrepancyState::Repaired)
            .count() as u64;
        let run = ReconRun {
            wallet: name.into(),
            day,
            lines: lines.len() as u64,
            matched: count,
            found: found.len() as u64,
            repaired,
            finished_at: self.clock.now(),
        };
        self.store
            .save_recon_run(FinishedRun {
                run: run.clone(),
                found: found.clone(),
            })
            .await?;
        self.metrics.outcome(&self.metrics.recon_runs, "done");
        tracing::info!(
            wallet = name,
            day = %day,
            lines = run.lines,
            matched = run.matched,
            discrepancies = run.found,
            repaired = run.repaired,
            "statement reconciled"
        );
        Ok(DayRun::Done { run, found })
    }

    /// The daily schedule's step: for each wallet in `statements_ready_at`, each of the last
    /// [`LOOKBACK_DAYS`] days whose statement is due and not reconciled yet is claimed
    /// (one gateway runs a day; a claim that runs out — a gateway that died — is taken
    /// over) and run. A statement not ready is given back and asked for again next time;
    /// one still missing a day after it was due is taken as empty. Returns what ran.
    pub async fn reconcile_due_statements(
        &self,
        holder: &str,
    ) -> Vec<(String, WalletDay, Result<DayRun, ReconError>)> {
        let now = self.clock.now();
        let mut out = Vec::new();
        let served: Vec<_> = self
            .statement_wallets()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        let mut day = WalletDay::of(now);
        for _ in 0..LOOKBACK_DAYS {
            day = day.previous();
            let ready_at = |minutes: u32| {
                day.end()
                    .plus(std::time::Duration::from_secs(u64::from(minutes) * 60))
            };
            let due: Vec<(&String, std::time::Duration)> = self
                .settings
                .statements_ready_at
                .iter()
                .filter(|(wallet, minutes)| {
                    served.contains(&wallet.as_str()) && now >= ready_at(*minutes)
                })
                .map(|(wallet, minutes)| (wallet, ready_at(*minutes).until(now)))
                .collect();
            if due.is_empty() {
                continue;
            }
            // The day's runs, read once for every wallet due.
            let ran = match self.store.recon_runs(Some(day)).await {
                Ok(runs) => runs,
                Err(e) => {
                    // Told once; the day's wallets are looked at again next time.
                    out.push((due[0].0.clone(), day, Err(e.into())));
                    continue;
                }
            };
            for (wallet, late) in due {
                if ran.iter().any(|r| &r.wallet == wallet) {
                    continue;
                }
                let claim = ottgate_store::DayClaim {
                    wallet: wallet.clone(),
                    day,
                    holder: holder.into(),
                    now,
                    until: now.plus(RUN_LEASE),
                };
                match self.store.claim_recon_day(claim).await {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        out.push((wallet.clone(), day, Err(e.into())));
                        continue;
                    }
                }
                let overdue = late >= std::time::Duration::from_secs(86_400);
                let result = self.reconcile_statement(wallet, day, overdue).await;
                if !matches!(result, Ok(DayRun::Done { .. }))
                    && let Err(e) = self.store.release_recon_day(wallet, day, holder).await
                {
                    tracing::warn!(wallet, day = %day, error = %e, "could not give the day back");
                }
                out.push((wallet.clone(), day, result));
            }
        }
        out
    }

    /// Asks the wallet about a payment or refund its statement books as done and the
    /// gateway does not; applies a confirmation. Returns whether it was repaired.
    async fn repair(&self, record: &Record) -> Result<bool, ServiceError> {
        match record.side {
            Side::Payment => {
                let Ok(id) = AttemptId::parse(&record.ours) else {
                    return Ok(false);
                };
                let Some(attempt) = self.store.attempt(&id).await? else {
                    return Ok(false);
                };
                if attempt.status == AttemptStatus::Paid {
                    return Ok(false);
                }
                self.settle_by_query(&attempt).await
            }
            Side::Refund => {
                let Ok(id) = RefundId::parse(&record.ours) else {
                    return Ok(false);
                };
                let Some(refund) = self.store.refund(&id).await? else {
                    return Ok(false);
                };
                Ok(self.reconcile_refund(&refund).await?
                    && self
                        .store
                        .refund(&id)
                        .await?
                        .is_some_and(|r| r.status == RefundStatus::Success))
            }
        }
    }

    /// The runs of `day` and its discrepancies (every state).
    pub async fn recon_day(
        &self,
        day: WalletDay,
    ) -> Result<(Vec<ReconRun>, Vec<Discrepancy>), ServiceError> {
        let runs = self.store.recon_runs(Some(day)).await?;
        let found = self
            .store
            .discrepancies(DiscrepancyFilter {
                day: Some(day),
                ..Default::default()
            })
            .await?;
        Ok((runs, found))
    }

    /// Every open discrepancy, and the latest run of each wallet (for `/metrics`).
    pub async fn recon_standing(&self) -> Result<(Vec<ReconRun>, Vec<Discrepancy>), ServiceError> {
        let runs = self.store.recon_runs(None).await?;
        let open = self
            .store
            .discrepancies(DiscrepancyFilter {
                open_only: true,
                ..Default::default()
            })
            .await?;
        Ok((runs, open))
    }

    /// Where a paid attempt stands against its wallet's statement: reconciled (its day
    /// was run and nothing about it is open), differing (an open discrepancy names it), or
    /// not reconciled yet (`None`: its day was not run, or its wallet's statements are not
    /// read).
    pub async fn reconciliation_of(
        &self,
        attempt: &ottgate_core::Attempt,
    ) -> Result<Option<(WalletDay, Option<String>)>, ServiceError> {
        let (Some(settled), AttemptStatus::Paid) = (attempt.settled_at, attempt.status) else {
            return Ok(None);
        };
        let Some(channel) = self.channels.for_method(attempt.method) else {
            return Ok(None);
        };
        let day = WalletDay::of(settled);
        let ran = self.store.recon_runs(Some(day)).await?;
        if !ran.iter().any(|r| r.wallet == channel.name()) {
            return Ok(None);
        }
        let open = self
            .store
            .discrepancies(DiscrepancyFilter {
                day: Some(day),
                wallet: Some(channel.name().into()),
                open_only: true,
            })
            .await?;
        let differs = open
            .into_iter()
            .find(|d| d.found.ours == attempt.id.as_str())
            .map(|d| d.found.kind);
        Ok(Some((day, differs)))
    }

    /// An operator resolves an open discrepancy, saying why it stands.
    pub async fn resolve_discrepancy(
        &self,
        id: i64,
        by: &str,
        note: &str,
    ) -> Result<Discrepancy, ReconError> {
        if note.trim().is_empty() {
            return Err(ReconError::NoNote);
        }
        self.store
            .resolve_discrepancy(Resolution {
                id,
                by: by.into(),
                note: note.trim().into(),
                at: self.clock.now(),
            })
            .await?
            .ok_or(ReconError::NotOpen(id))
    }
}

/// A discrepancy as found, open, with the note an operator reads first.
fn discrepancy(outcome: &Outcome, merchants: &HashMap<&str, &MerchantId>) -> NewDiscrepancy {
    let (line, record) = match outcome {
        Outcome::WalletOnly(line) => (Some(line), None),
        Outcome::GatewayOnly(record) => (None, Some(record)),
        Outcome::AmountDiffers { line, record }
        | Outcome::CurrencyDiffers { line, record }
        | Outcome::StatusDiffers { line, record } => (Some(line), Some(record)),
        Outcome::Matched => (None, None),
    };
    let side = line.map_or_else(|| record.map_or(Side::Payment, |r| r.side), |l| l.side);
    let ours = record.map(|r| r.ours.clone()).or_else(|| {
        line.map(|l| {
            if l.ours.is_empty() {
                l.wallets.clone()
            } else {
                l.ours.clone()
            }
        })
    });
    let ours = ours.unwrap_or_default();
    let wallets = line
        .map(|l| l.wallets.clone())
        .or_else(|| record.and_then(|r| r.wallets.clone()))
        .filter(|w| !w.is_empty());
    let note = match outcome {
        Outcome::WalletOnly(_) => {
            "the wallet booked it; the gateway has no such payment or refund: look it up at \
             the wallet"
        }
        Outcome::GatewayOnly(_) => {
            "the gateway counts it done; the wallet's statement lacks it: ask the wallet"
        }
        Outcome::AmountDiffers { .. } => "the statement's amount is not the gateway's",
        Outcome::CurrencyDiffers { .. } => "the statement's currency is not the gateway's",
        Outcome::StatusDiffers { .. } | Outcome::Matched => "",
    };
    // A line whose currency the statement does not state, matched to nothing: its amount
    // is told in the note, not as money in a currency nobody stated.
    let unstated = line.filter(|l| !l.currency_stated && record.is_none());
    let note = match unstated {
        Some(l) => format!(
            "{note} (the statement states {} minor units and no currency)",
            l.money.amount.minor()
        ),
        None => note.to_owned(),
    };
    NewDiscrepancy {
        kind: outcome.kind().into(),
        side,
        merchant_id: merchants.get(ours.as_str()).map(|m| (*m).clone()),
        ours,
        wallets,
        stated: line.filter(|_| unstated.is_none()).map(|l| l.money),
        recorded: record.map(|r| r.money),
        state: DiscrepancyState::Open,
        note,
    }
}
