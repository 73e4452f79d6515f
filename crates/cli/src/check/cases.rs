//! The cases of `ottgate check`, each as the checker plays it and judges it
//! (docs/checker.md has the table: what it does, what a careful shop does, how to fix a
//! FAIL).

use anyhow::{Context, Result, bail};
use ottgate_client::SignKey;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

use super::{Checker, Outcome, Payment, Verdict, acknowledged, answer_line, epoch_millis, short};

impl Checker {
    /// Sends a forgery for the unpaid order `p` and judges what the shop did.
    async fn forgery(&mut self, case: &'static str, p: &Payment, body: String) -> Result<Outcome> {
        let sent = epoch_millis();
        let (status, answer) = self.post(&p.callback_url, &body).await;
        let mut evidence = vec![
            format!("sent to {}: {}", p.callback_url, short(&body)),
            format!("answer: HTTP {status} {}", short(&answer)),
        ];
        let asked = self.asked_about(p, sent).await?;
        if !asked.is_empty() {
            evidence.push(format!("then asked the gateway: {}", asked.join(", ")));
        }
        if let Some((state, fulfilments)) = self.shop_state(p).await? {
            evidence.push(format!(
                "order page: {state}, fulfilled {fulfilments} time(s)"
            ));
            let (verdict, why) = if state == "paid" || fulfilments > 0 {
                (
                    Verdict::Fail,
                    "the order was marked paid by a callback that is not genuine".to_owned(),
                )
            } else {
                (Verdict::Pass, "the order stayed unpaid".to_owned())
            };
            return Ok(Outcome {
                case,
                verdict,
                why,
                evidence,
            });
        }
        let (verdict, why) = if !acknowledged(status, &answer) {
            (Verdict::Pass, format!("refused it (HTTP {status})"))
        } else if asked.is_empty() {
            (
                Verdict::Fail,
                "acknowledged it without asking the gateway (a shop that acknowledges but ignores forgeries shows it with --order-url)".to_owned(),
            )
        } else {
            (
                Verdict::Skip,
                "acknowledged it and asked the gateway; whether it fulfilled needs --order-url"
                    .to_owned(),
            )
        };
        Ok(Outcome {
            case,
            verdict,
            why,
            evidence,
        })
    }

    /// A paid order and its genuine callback body (made by the success case, or now).
    async fn paid_order(&mut self) -> Result<(Payment, String, Option<Outcome>)> {
        if let Some((p, body)) = self.paid.clone() {
            return Ok((p, body, None));
        }
        let mut p = self.fresh_order("success").await?;
        p.payment_id = Some(self.settle(&p, "paid").await?);
        let callbacks = self.delivered(&p, Duration::from_secs(20)).await?;
        let mut evidence = vec![format!("paid order {}", p.order_id)];
        let Some(callback) = callbacks.first() else {
            bail!(
                "the gateway sent no callback for the paid order {}",
                p.order_id
            );
        };
        let body = callback
            .get("body")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let answers = callback
            .get("answers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        evidence.extend(answers.iter().map(answer_line));
        let delivered = callback.get("state").and_then(Value::as_str) == Some("delivered");
        let mut outcome = if delivered {
            Outcome {
                case: "success",
                verdict: Verdict::Pass,
                why: "the callback was acknowledged".into(),
                evidence,
            }
        } else {
            Outcome {
                case: "success",
                verdict: Verdict::Fail,
                why: "the genuine callback was not acknowledged (OTT Pay expects HTTP 200 with SUCCESS): the gateway keeps sending it".into(),
                evidence,
            }
        };
        // The buyer comes back through the genuine, signed return.
        if !p.redirect_url.is_empty() {
            let pairs = self.genuine_return(&p);
            let (url, status, page) = self.open_return(&p, &pairs).await?;
            outcome
                .evidence
                .push(format!("opened {url}: HTTP {status} {}", short(&page)));
            let says_paid = self.paid_text.as_ref().map(|t| page.contains(t.as_str()));
            if outcome.verdict == Verdict::Pass
                && (!(200..400).contains(&status) || says_paid == Some(false))
            {
                outcome.verdict = Verdict::Fail;
                outcome.why = format!(
                    "the return page of the paid order does not say it is paid (HTTP {status})"
                );
            }
        }
        if let Some((state, fulfilments)) = self.shop_state(&p).await? {
            outcome.evidence.push(format!(
                "order page: {state}, fulfilled {fulfilments} time(s)"
            ));
            if state != "paid" || fulfilments != 1 {
                outcome.verdict = Verdict::Fail;
                outcome.why = format!(
                    "after the genuine callback the order is {state}, fulfilled {fulfilments} time(s); expected paid, once"
                );
            }
        } else if outcome.verdict == Verdict::Pass {
            outcome.why.push_str(" (fulfilled once? needs --order-url)");
        }
        self.paid = Some((p.clone(), body.clone()));
        Ok((p, body, Some(outcome)))
    }

    /// The verdict of a case that needs the shop's order page to say `p` was never paid.
    async fn never_paid(&self, case: &'static str, p: &Payment, what: &str) -> Result<Outcome> {
        let Some((state, n)) = self.shop_state(p).await? else {
            return Ok(Outcome {
                case,
                verdict: Verdict::Skip,
                why: "needs --order-url".into(),
                evidence: Vec::new(),
            });
        };
        let evidence = vec![format!(
            "{what} {}; order page: {state}, fulfilled {n} time(s)",
            p.order_id
        )];
        let bad = state == "paid" || n > 0;
        Ok(Outcome {
            case,
            verdict: if bad { Verdict::Fail } else { Verdict::Pass },
            why: if bad {
                format!("the {what} is shown as paid")
            } else {
                "not shown as paid".into()
            },
            evidence,
        })
    }

    /// The query pairs of `p`'s genuine browser return saying `Trade_Finished`, signed as
    /// the gateway signs them.
    fn genuine_return(&self, p: &Payment) -> Vec<(String, String)> {
        let params = ottgate_client::RedirectParams {
            total_fee: p.amount.clone(),
            trade_no: p.payment_id.clone().unwrap_or_else(|| p.order_id.clone()),
            out_trade_no: p.reference.clone().unwrap_or_else(|| p.order_id.clone()),
            trade_status: "Trade_Finished".into(),
        };
        params
            .query_pairs(&self.key)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect()
    }

    async fn tampered_return(&self, case: &'static str, p: &Payment) -> Result<Outcome> {
        if p.redirect_url.is_empty() {
            return Ok(Outcome {
                case,
                verdict: Verdict::Skip,
                why: "this kind of order has no browser return".into(),
                evidence: Vec::new(),
            });
        }
        let reference = p.reference.clone().unwrap_or_else(|| p.order_id.clone());
        let trade_no = p.payment_id.clone().unwrap_or_else(|| p.order_id.clone());
        let mut pairs = self.genuine_return(p);
        match case {
            "return_amount" => {
                let less = p
                    .amount
                    .parse::<u64>()
                    .unwrap_or(100)
                    .saturating_sub(1)
                    .max(1);
                pairs[0].1 = less.to_string();
            }
            "return_sign" => pairs[4].1 = "0".repeat(32),
            "return_h5pay" => {
                pairs = vec![
                    ("amount".into(), p.amount.clone()),
                    ("orderID".into(), reference),
                    ("tranID".into(), trade_no),
                    ("status".into(), "success".into()),
                ];
            }
            _ => {}
        }
        let (url, status, page) = self.open_return(p, &pairs).await?;
        let mut evidence = vec![
            format!("opened {url}"),
            format!("page: HTTP {status} {}", short(&page)),
        ];
        let says_paid = self.paid_text.as_ref().map(|t| page.contains(t.as_str()));
        if let Some((state, n)) = self.shop_state(p).await? {
            evidence.push(format!("order page: {state}, fulfilled {n} time(s)"));
            if state == "paid" || n > 0 || says_paid == Some(true) {
                return Ok(Outcome {
                    case,
                    verdict: Verdict::Fail,
                    why: "the shop believed a browser return that no payment backs".into(),
                    evidence,
                });
            }
            return Ok(Outcome {
                case,
                verdict: Verdict::Pass,
                why: "the order stayed unpaid".into(),
                evidence,
            });
        }
        Ok(match says_paid {
            Some(true) => Outcome {
                case,
                verdict: Verdict::Fail,
                why: "the return page says paid for an unpaid order".into(),
                evidence,
            },
            Some(false) => Outcome {
                case,
                verdict: Verdict::Pass,
                why: "the return page does not say paid".into(),
                evidence,
            },
            None => Outcome {
                case,
                verdict: Verdict::Skip,
                why: "needs --order-url or --paid-text".into(),
                evidence,
            },
        })
    }

    /// The order expires while the buyer is paying; the wallet's success arrives after.
    async fn late_success(&mut self, case: &'static str) -> Result<Outcome> {
        let p = self.fresh_order(case).await?;
        self.settle(&p, "started").await?;
        self.settle(&p, "expired").await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut evidence = vec![format!(
            "order {} expired while the buyer was paying",
            p.order_id
        )];
        if let Some((state, n)) = self.shop_state(&p).await? {
            evidence.push(format!(
                "order page after expiry: {state}, fulfilled {n} time(s)"
            ));
            if state == "paid" || n > 0 {
                return Ok(Outcome {
                    case,
                    verdict: Verdict::Fail,
                    why: "the expired order is shown as paid before any payment".into(),
                    evidence,
                });
            }
        }
        let since = epoch_millis();
        self.settle(&p, "paid_late").await?;
        evidence.push("then the wallet's success arrived".into());
        let (state, answers) = self.settled_callback(&p, Duration::from_secs(20)).await?;
        evidence.extend(answers);
        let refunded = self
            .asked_about(&p, since)
            .await?
            .iter()
            .any(|call| call.contains("REFUND") || call.contains("refund"));
        if refunded {
            evidence.push("then refunded it".into());
        }
        if state != "delivered" {
            return Ok(Outcome {
                case,
                verdict: Verdict::Fail,
                why: "the buyer paid after expiry and the shop did not acknowledge the callback: record the payment or refund it".into(),
                evidence,
            });
        }
        let Some((state, n)) = self.shop_state(&p).await? else {
            return Ok(if refunded {
                Outcome {
                    case,
                    verdict: Verdict::Pass,
                    why: "acknowledged it and refunded the payment".into(),
                    evidence,
                }
            } else {
                Outcome {
                    case,
                    verdict: Verdict::Skip,
                    why: "acknowledged it; recorded or refunded? needs --order-url".into(),
                    evidence,
                }
            });
        };
        evidence.push(format!("order page: {state}, fulfilled {n} time(s)"));
        Ok(
            if (state == "paid" && n == 1) || state == "refunded" || refunded {
                Outcome {
                    case,
                    verdict: Verdict::Pass,
                    why: format!("acknowledged it; the order is {state}"),
                    evidence,
                }
            } else {
                Outcome {
                    case,
                    verdict: Verdict::Fail,
                    why: format!(
                        "acknowledged a payment taken after expiry, then left the order {state}, fulfilled {n} time(s): the buyer paid for nothing (record it or refund it)"
                    ),
                    evidence,
                }
            },
        )
    }

    /// A paid order refunded, then its paid callback again; and an order refunded before
    /// its paid callback ever arrived.
    async fn out_of_order(&mut self, case: &'static str) -> Result<Outcome> {
        let mut evidence = Vec::new();
        let mut wrong = Vec::new();
        // Paid, fulfilled, refunded, then the paid callback again.
        let first = self.fresh_order(case).await?;
        self.settle(&first, "paid").await?;
        let (state, answers) = self
            .settled_callback(&first, Duration::from_secs(20))
            .await?;
        evidence.push(format!(
            "order {} paid; its callback {state}",
            first.order_id
        ));
        evidence.extend(answers);
        let before = self.shop_state(&first).await?;
        self.settle(&first, "refunded").await?;
        let again = self.resend(&first, 1, false, "genuine").await?;
        evidence.push("refunded in full, then its paid callback came again".into());
        evidence.extend(
            again
                .iter()
                .map(|(s, a)| format!("answer: HTTP {s} {}", short(a))),
        );
        let after = self.shop_state(&first).await?;
        if let (Some((_, was)), Some((state, n))) = (&before, &after) {
            evidence.push(format!(
                "order page: {state}, fulfilled {n} time(s) (before: {was})"
            ));
            if n > was {
                wrong.push(format!(
                    "fulfilled again by a paid callback after the refund ({n} times)"
                ));
            }
        }
        // Refunded before its paid callback arrived.
        let second = self.fresh_order(case).await?;
        self.faults(&second, json!({"hold_callbacks": true}))
            .await?;
        self.settle(&second, "paid").await?;
        self.settle(&second, "refunded").await?;
        let late = self.resend(&second, 1, false, "genuine").await?;
        self.faults(&second, json!({})).await?;
        evidence.push(format!(
            "order {} paid and refunded before its paid callback arrived",
            second.order_id
        ));
        evidence.extend(
            late.iter()
                .map(|(s, a)| format!("answer: HTTP {s} {}", short(a))),
        );
        let acknowledged_all = again.iter().chain(&late).all(|(s, a)| acknowledged(*s, a));
        let Some((state, n)) = self.shop_state(&second).await? else {
            return Ok(Outcome {
                case,
                verdict: Verdict::Skip,
                why: "needs --order-url (what the shop did with a paid callback after the refund)"
                    .into(),
                evidence,
            });
        };
        evidence.push(format!("order page: {state}, fulfilled {n} time(s)"));
        if state == "paid" || n > 0 {
            wrong.push(format!(
                "fulfilled an order whose payment was refunded before its callback arrived ({state}, {n} time(s)): ask the gateway (STATUS_QUERY) when a callback comes"
            ));
        }
        Ok(if let Some(why) = wrong.first() {
            Outcome {
                case,
                verdict: Verdict::Fail,
                why: why.clone(),
                evidence,
            }
        } else if !acknowledged_all {
            Outcome {
                case,
                verdict: Verdict::Warn,
                why: "fulfilled nothing, but did not acknowledge a genuine callback: the gateway keeps sending it".into(),
                evidence,
            }
        } else {
            Outcome {
                case,
                verdict: Verdict::Pass,
                why: "acknowledged them and fulfilled nothing more".into(),
                evidence,
            }
        })
    }

    /// The gateway's queries say PROCESSING for a few seconds after the paid callback.
    async fn query_processing(&mut self, case: &'static str) -> Result<Outcome> {
        const LAG: Duration = Duration::from_secs(4);
        let p = self.fresh_order(case).await?;
        let since = epoch_millis();
        self.faults(&p, json!({"lag_queries_secs": LAG.as_secs()}))
            .await?;
        let lagging = Instant::now();
        self.settle(&p, "paid").await?;
        let callbacks = self.delivered(&p, Duration::from_secs(20)).await?;
        let first = callbacks
            .first()
            .and_then(|c| c.get("answers"))
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .cloned()
            .unwrap_or_default();
        let took = first.get("error").is_none_or(Value::is_null)
            && acknowledged(
                u16::try_from(
                    first
                        .get("http_status")
                        .and_then(Value::as_u64)
                        .unwrap_or(0),
                )
                .unwrap_or(0),
                first
                    .get("answer")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            );
        let mut evidence = vec![
            format!(
                "order {} paid; queries answer PROCESSING for {} s",
                p.order_id,
                LAG.as_secs()
            ),
            answer_line(&first),
        ];
        let asked = self.asked_about(&p, since).await?;
        if !asked.is_empty() {
            evidence.push(format!("asked the gateway: {}", asked.join(", ")));
        }
        let during = self.shop_state(&p).await?;
        if let Some((state, n)) = &during {
            evidence.push(format!(
                "order page meanwhile: {state}, fulfilled {n} time(s)"
            ));
        }
        tokio::time::sleep(LAG.saturating_sub(lagging.elapsed())).await;
        self.faults(&p, json!({})).await?;
        let retry = self.resend(&p, 1, false, "genuine").await?;
        evidence.extend(retry.iter().map(|(s, a)| {
            format!(
                "then, the query saying paid, the retry: HTTP {s} {}",
                short(a)
            )
        }));
        let retry_taken = retry.iter().all(|(s, a)| acknowledged(*s, a));
        let after = self.shop_state(&p).await?;
        if let (Some((during, _)), Some((state, n))) = (&during, &after) {
            evidence.push(format!("order page: {state}, fulfilled {n} time(s)"));
            let gave_up = ["cancelled", "unpaid"].contains(&during.as_str()) && took;
            return Ok(if gave_up || state != "paid" {
                Outcome {
                    case,
                    verdict: Verdict::Fail,
                    why: format!(
                        "gave a paid order up while the gateway still said PROCESSING: it ended {state} (query again later, or answer FAIL so the callback comes again)"
                    ),
                    evidence,
                }
            } else if *n != 1 {
                Outcome {
                    case,
                    verdict: Verdict::Fail,
                    why: format!("fulfilled {n} times for one payment"),
                    evidence,
                }
            } else {
                Outcome {
                    case,
                    verdict: Verdict::Pass,
                    why: "waited for the payment, fulfilled once".into(),
                    evidence,
                }
            });
        }
        Ok(if !retry_taken {
            Outcome {
                case,
                verdict: Verdict::Fail,
                why: "still refused the callback once the gateway said paid".into(),
                evidence,
            }
        } else if !took {
            Outcome {
                case,
                verdict: Verdict::Pass,
                why: "refused the callback while the gateway said PROCESSING, acknowledged it once it said paid".into(),
                evidence,
            }
        } else {
            Outcome {
                case,
                verdict: Verdict::Skip,
                why: "acknowledged the callback while the gateway said PROCESSING; recorded the payment? needs --order-url".into(),
                evidence,
            }
        })
    }

    /// The shop's first answer to a paid callback never reaches the gateway.
    async fn answer_lost(&mut self, case: &'static str) -> Result<Outcome> {
        let p = self.fresh_order(case).await?;
        self.faults(&p, json!({"lose_answers": 1})).await?;
        self.settle(&p, "paid").await?;
        // The gateway's first retry comes after its schedule's first gap (15 s by default).
        let (state, answers) = self.settled_callback(&p, Duration::from_secs(90)).await?;
        self.faults(&p, json!({})).await?;
        let mut evidence = vec![format!(
            "order {} paid; the shop's first answer dropped",
            p.order_id
        )];
        evidence.extend(answers);
        if state != "delivered" {
            return Ok(Outcome {
                case,
                verdict: Verdict::Fail,
                why: format!("the gateway's retry was not acknowledged (callback {state})"),
                evidence,
            });
        }
        Ok(match self.shop_state(&p).await? {
            Some((state, n)) => {
                evidence.push(format!("order page: {state}, fulfilled {n} time(s)"));
                if state == "paid" && n == 1 {
                    Outcome {
                        case,
                        verdict: Verdict::Pass,
                        why: "acknowledged the retry, fulfilled once".into(),
                        evidence,
                    }
                } else {
                    Outcome {
                        case,
                        verdict: Verdict::Fail,
                        why: format!(
                            "after a retry the order is {state}, fulfilled {n} time(s); expected paid, once (a callback whose answer was lost comes again)"
                        ),
                        evidence,
                    }
                }
            }
            None => Outcome {
                case,
                verdict: Verdict::Skip,
                why: "acknowledged the retry; fulfilled once? needs --order-url".into(),
                evidence,
            },
        })
    }

    pub(super) async fn run(&mut self, case: &'static str) -> Result<Outcome> {
        match case {
            "success" => {
                let (_, _, outcome) = self.paid_order().await?;
                Ok(outcome.unwrap_or(Outcome {
                    case,
                    verdict: Verdict::Skip,
                    why: "ran before".into(),
                    evidence: Vec::new(),
                }))
            }
            "duplicate" => {
                let (p, _, _) = self.paid_order().await?;
                let mut evidence = Vec::new();
                let mut all = true;
                for at_once in [false, true] {
                    for (s, a) in self.resend(&p, 2, at_once, "genuine").await? {
                        all &= acknowledged(s, &a);
                        let how = if at_once { "at once" } else { "again" };
                        evidence.push(format!("{how}: HTTP {s} {}", short(&a)));
                    }
                }
                if !all {
                    return Ok(Outcome { case, verdict: Verdict::Fail, why: "a repeated genuine callback was not acknowledged: the gateway would keep sending it".into(), evidence });
                }
                match self.shop_state(&p).await? {
                    Some((state, n)) => {
                        evidence.push(format!("order page: {state}, fulfilled {n} time(s)"));
                        let verdict = if n == 1 { Verdict::Pass } else { Verdict::Fail };
                        let why = if n == 1 {
                            "acknowledged every repeat, fulfilled once".into()
                        } else {
                            format!("fulfilled {n} times for one payment")
                        };
                        Ok(Outcome {
                            case,
                            verdict,
                            why,
                            evidence,
                        })
                    }
                    None => Ok(Outcome {
                        case,
                        verdict: Verdict::Skip,
                        why: "acknowledged every repeat; fulfilled once? needs --order-url".into(),
                        evidence,
                    }),
                }
            }
            "signature" => {
                let (p, _, _) = self.paid_order().await?;
                let mut evidence = Vec::new();
                let mut accepted = Vec::new();
                for how in ["none", "stale", "old"] {
                    for (s, a) in self.resend(&p, 1, false, how).await? {
                        evidence.push(format!("signature {how}: HTTP {s} {}", short(&a)));
                        if acknowledged(s, &a) {
                            accepted.push(how);
                        }
                    }
                }
                Ok(if accepted.is_empty() {
                    Outcome {
                        case,
                        verdict: Verdict::Pass,
                        why: "checks OTTGate-Signature".into(),
                        evidence,
                    }
                } else {
                    Outcome {
                        case,
                        verdict: Verdict::Warn,
                        why: format!(
                            "accepted a callback whose OTTGate-Signature was {} (checking it stops a captured callback from being replayed)",
                            accepted.join(" or ")
                        ),
                        evidence,
                    }
                })
            }
            "return_unpaid" | "return_amount" | "return_sign" | "return_h5pay" => {
                let p = self.fresh_order(case).await?;
                self.tampered_return(case, &p).await
            }
            "declined" => {
                let p = self.fresh_order(case).await?;
                self.settle(&p, "failed").await?;
                tokio::time::sleep(Duration::from_millis(500)).await;
                self.never_paid(case, &p, "declined order").await
            }
            "expired" => {
                let p = self.fresh_order(case).await?;
                self.settle(&p, "expired").await?;
                tokio::time::sleep(Duration::from_millis(500)).await;
                self.never_paid(case, &p, "expired order").await
            }
            "late_success" => self.late_success(case).await,
            "out_of_order" => self.out_of_order(case).await,
            "query_processing" => self.query_processing(case).await,
            "answer_lost" => self.answer_lost(case).await,
            "forged_key" => {
                let p = self.fresh_order(case).await?;
                let stranger =
                    SignKey::new(format!("{:032X}", rand::random::<u128>())).context("key")?;
                let body = self.envelope(
                    "SUCCESS",
                    ottgate_client::seal(&self.callback_data(&p, "success", &p.amount), &stranger),
                );
                self.forgery(case, &p, body).await
            }
            "forged_window" => {
                let p = self.fresh_order(case).await?;
                let body = self.envelope(
                    "SUCCESS",
                    ottgate_client::seal_in_window(
                        &self.callback_data(&p, "success", &p.amount),
                        &self.key,
                        0,
                    ),
                );
                self.forgery(case, &p, body).await
            }
            "forged_amount" => {
                let p = self.fresh_order(case).await?;
                let more = p.amount.parse::<u64>().unwrap_or(0) + 100;
                let body = self.envelope(
                    "SUCCESS",
                    ottgate_client::seal(
                        &self.callback_data(&p, "success", &more.to_string()),
                        &self.key,
                    ),
                );
                self.forgery(case, &p, body).await
            }
            "forged_currency" => {
                let p = self.fresh_order(case).await?;
                let mut data = self.callback_data(&p, "success", &p.amount);
                let other = if p.currency == "USD" { "CAD" } else { "USD" };
                data.insert("currency_type".into(), Value::String(other.into()));
                let body = self.envelope("SUCCESS", ottgate_client::seal(&data, &self.key));
                self.forgery(case, &p, body).await
            }
            "rsp_code" => {
                let p = self.fresh_order(case).await?;
                let body = self.envelope(
                    "SUCCESS",
                    ottgate_client::seal(&self.callback_data(&p, "failure", &p.amount), &self.key),
                );
                self.forgery(case, &p, body).await
            }
            "replayed_order" => {
                let (_, body, _) = self.paid_order().await?;
                let p = self.fresh_order(case).await?;
                self.forgery(case, &p, body).await
            }
            other => bail!("unknown case {other}"),
        }
    }
}
