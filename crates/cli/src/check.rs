//! `ottgate check`: runs the cases a careless integration gets wrong against a merchant's
//! real shop, through a sandbox gateway, and reports case by case what the shop did
//! (docs/checker.md). It never moves money: it refuses a gateway that is not in sandbox
//! mode (whose `/sandbox/v1/check` does not exist).

use anyhow::{Context, Result, bail};
use clap::Args;
use ottgate_client::{Client, Fields, SignKey};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::merchant_api::Credentials;

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    credentials: Credentials,
    /// A page of your shop that starts a payment (fetched once per case that needs an
    /// order, following redirects): how the checker gets fresh orders. Without it, the
    /// checker asks you to create each order and waits.
    #[arg(long)]
    start_url: Option<String>,
    /// A test-mode page of your shop answering `{"state": "paid"|"unpaid"|"refunded"|
    /// "cancelled", "fulfilments": N}` for the order whose reference replaces `{reference}`:
    /// lets each case check what your shop did, not only what it answered.
    #[arg(long)]
    order_url: Option<String>,
    /// Text your return page shows for a paid order (e.g. "Payment received"): the browser
    /// return cases look for it.
    #[arg(long)]
    paid_text: Option<String>,
    /// Only these cases (see --list).
    #[arg(long, value_delimiter = ',')]
    cases: Vec<String>,
    /// List the cases and exit.
    #[arg(long)]
    list: bool,
    /// One JSON document instead of the table.
    #[arg(long)]
    json: bool,
    /// Also write a JUnit report there (for CI).
    #[arg(long)]
    junit: Option<std::path::PathBuf>,
    /// How long to wait for each order to be created (seconds).
    #[arg(long, default_value_t = 300)]
    wait: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
enum Verdict {
    Pass,
    Fail,
    Warn,
    Skip,
}

#[derive(Debug, Clone, Serialize)]
struct Outcome {
    case: &'static str,
    verdict: Verdict,
    why: String,
    evidence: Vec<String>,
}

/// The cases, in the order they run: what a careful integration does in each.
const CASES: [(&str, &str); 18] = [
    (
        "success",
        "a paid order's callback is acknowledged as OTT Pay expects (SUCCESS), and the order is fulfilled once",
    ),
    (
        "duplicate",
        "the same genuine callback again, in sequence and at once: each acknowledged, fulfilled once",
    ),
    ("declined", "a declined payment is never shown as paid"),
    (
        "expired",
        "an order that expired unpaid is never shown as paid",
    ),
    (
        "late_success",
        "a genuine success arriving after the order expired (the money was taken) is acknowledged and recorded or refunded, never dropped",
    ),
    (
        "out_of_order",
        "a genuine paid callback arriving after the payment was refunded is acknowledged and fulfils nothing",
    ),
    (
        "query_processing",
        "a genuine paid callback while the gateway's query still says PROCESSING: the shop waits (or takes the callback), never gives the order up",
    ),
    (
        "answer_lost",
        "the shop's answer to a callback is lost (as after a 500 or a time-out): the gateway retries on its schedule; the retry is acknowledged and the order fulfilled once",
    ),
    (
        "forged_key",
        "a callback sealed with another sign key is refused",
    ),
    (
        "forged_window",
        "a callback sealed with the right key but another 16-character window is refused",
    ),
    (
        "forged_amount",
        "a correctly sealed callback for another amount than the order's is refused",
    ),
    (
        "rsp_code",
        "genuine data saying the payment failed, with the outer rsp_code set to SUCCESS, is not taken as paid",
    ),
    (
        "replayed_order",
        "another order's genuine callback, sent for this order, does not pay this order",
    ),
    (
        "signature",
        "a genuine callback without its OTTGate-Signature, or with one an hour old, is refused (a warning where the shop does not check the header)",
    ),
    (
        "return_unpaid",
        "a correctly signed browser return saying Trade_Finished for an unpaid order does not make it paid",
    ),
    (
        "return_amount",
        "a browser return with total_fee changed is not believed",
    ),
    (
        "return_sign",
        "a browser return with a bad sign is not believed",
    ),
    (
        "return_h5pay",
        "h5Pay's unsigned status=success return is not believed",
    ),
];

/// A payment of the merchant, as the gateway lists it.
#[derive(Debug, Clone)]
struct Payment {
    order_id: String,
    payment_id: Option<String>,
    reference: Option<String>,
    kind: String,
    amount: String,
    currency: String,
    callback_url: String,
    redirect_url: String,
}

impl Payment {
    fn of(v: &Value) -> Option<Self> {
        let s = |name: &str| v.get(name).and_then(Value::as_str).map(str::to_owned);
        Some(Self {
            order_id: s("order_id")?,
            payment_id: s("payment_id"),
            reference: s("reference"),
            kind: s("kind").unwrap_or_default(),
            amount: s("amount")?,
            currency: s("currency")?,
            callback_url: s("callback_url").unwrap_or_default(),
            redirect_url: s("redirect_url").unwrap_or_default(),
        })
    }

    /// The ids a shop may ask the gateway about this payment by.
    fn ids(&self) -> Vec<&str> {
        [
            Some(&self.order_id),
            self.payment_id.as_ref(),
            self.reference.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect()
    }
}

struct Checker {
    client: Client,
    key: SignKey,
    merchant_id: String,
    http: reqwest::Client,
    start_url: Option<String>,
    order_url: Option<String>,
    paid_text: Option<String>,
    wait: Duration,
    /// Orders already used by a case (each case gets its own).
    used: HashSet<String>,
    /// A paid order and its genuine callback, once the success case made one.
    paid: Option<(Payment, String)>,
}

fn epoch_millis() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

fn fields(value: Value) -> Fields {
    match value {
        Value::Object(f) => f,
        _ => Fields::new(),
    }
}

/// Whether a shop's answer acknowledges a callback as OTT Pay expects: HTTP 2xx whose body
/// says SUCCESS.
fn acknowledged(status: u16, body: &str) -> bool {
    (200..300).contains(&status) && body.to_ascii_uppercase().contains("SUCCESS")
}

/// One answer of the shop to a callback, as the gateway recorded it.
fn answer_line(a: &Value) -> String {
    let status = a
        .get("http_status")
        .and_then(Value::as_u64)
        .map_or("no answer".to_owned(), |s| format!("HTTP {s}"));
    let mut line = format!(
        "callback answered: {status} {}",
        short(a.get("answer").and_then(Value::as_str).unwrap_or_default())
    );
    if let Some(error) = a.get("error").and_then(Value::as_str) {
        line.push_str(&format!(" ({error})"));
    }
    line
}

fn short(text: &str) -> String {
    let one_line: String = text.chars().filter(|c| !c.is_control()).take(120).collect();
    one_line
}

impl Checker {
    /// A `/sandbox/v1/check` call; refuses a gateway without it (not in sandbox mode).
    async fn ask(&self, action: &str, data: Value) -> Result<Fields> {
        let exchange = self
            .client
            .exchange_at("sandbox/v1/check", action, "1.0", fields(data))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if exchange.http_status == 404 {
            bail!(
                "the gateway is not in sandbox mode: ottgate check runs only against a sandbox \
                 gateway (it never moves real money)"
            );
        }
        if exchange.response.rsp_code != "SUCCESS" {
            bail!(
                "{}: {}",
                exchange.response.rsp_code,
                exchange.response.rsp_msg
            );
        }
        exchange
            .response_fields
            .context("the gateway's answer carried no data")
    }

    async fn payments_since(&self, since: i64) -> Result<Vec<Payment>> {
        let answer = self
            .ask("CHECK_PAYMENTS", json!({"since": since.to_string()}))
            .await?;
        Ok(answer
            .get("payments")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Payment::of).collect())
            .unwrap_or_default())
    }

    /// A new order of the shop: made by fetching `--start-url`, or by the person running
    /// the check.
    async fn fresh_order(&mut self, case: &str) -> Result<Payment> {
        // Orders there before are not this one's (another shop of the merchant may be busy).
        let since = epoch_millis() - 60_000;
        let before: HashSet<String> = self
            .payments_since(since)
            .await?
            .into_iter()
            .map(|p| p.order_id)
            .collect();
        let deadline = match &self.start_url {
            Some(url) => {
                let r = self
                    .http
                    .get(url)
                    .send()
                    .await
                    .with_context(|| format!("--start-url {url} did not answer"))?;
                let _ = r.bytes().await;
                Instant::now() + Duration::from_secs(30)
            }
            None => {
                eprintln!(
                    "{case}: create an order in your shop now (waiting {} s)…",
                    self.wait.as_secs()
                );
                Instant::now() + self.wait
            }
        };
        loop {
            if let Some(p) = self
                .payments_since(since)
                .await?
                .into_iter()
                .find(|p| !self.used.contains(&p.order_id) && !before.contains(&p.order_id))
            {
                self.used.insert(p.order_id.clone());
                return Ok(p);
            }
            if Instant::now() > deadline {
                bail!("no new order of this merchant appeared at the gateway");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn settle(&self, p: &Payment, outcome: &str) -> Result<String> {
        let answer = self
            .ask(
                "CHECK_SETTLE",
                json!({"order_id": p.order_id, "outcome": outcome}),
            )
            .await?;
        Ok(answer
            .get("payment_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned())
    }

    /// The gateway's callbacks of `p`, once one has been answered (or `wait` passed).
    async fn delivered(&self, p: &Payment, wait: Duration) -> Result<Vec<Value>> {
        let deadline = Instant::now() + wait;
        loop {
            let answer = self
                .ask("CHECK_CALLBACKS", json!({"order_id": p.order_id}))
                .await?;
            let callbacks = answer
                .get("callbacks")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let answered = callbacks.iter().any(|c| {
                c.get("answers")
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty())
            });
            if answered || Instant::now() > deadline {
                return Ok(callbacks);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Whether the shop asked the gateway about `p` since `since` (waiting a moment for it).
    async fn asked_about(&self, p: &Payment, since: i64) -> Result<Vec<String>> {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let answer = self
            .ask("CHECK_CALLS", json!({"since": since.to_string()}))
            .await?;
        let ids = p.ids();
        Ok(answer
            .get("calls")
            .and_then(Value::as_array)
            .map(|calls| {
                calls
                    .iter()
                    .filter(|c| {
                        c.get("about")
                            .and_then(Value::as_str)
                            .is_some_and(|about| ids.contains(&about))
                    })
                    .filter_map(|c| c.get("call").and_then(Value::as_str).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// What the shop's order page says: `(state, fulfilments)`.
    async fn shop_state(&self, p: &Payment) -> Result<Option<(String, u64)>> {
        let (Some(template), Some(reference)) = (&self.order_url, &p.reference) else {
            return Ok(None);
        };
        let url = template.replace("{reference}", reference);
        let body: Value = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("--order-url {url} did not answer"))?
            .json()
            .await
            .with_context(|| format!("--order-url {url} is not JSON"))?;
        let state = body
            .get("state")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let fulfilments = body.get("fulfilments").and_then(Value::as_u64).unwrap_or(0);
        Ok(Some((state, fulfilments)))
    }

    async fn post(&self, url: &str, body: &str) -> (u16, String) {
        match self
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
        {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.text().await.unwrap_or_default())
            }
            Err(e) => (0, format!("no answer: {e}")),
        }
    }

    /// Callback data for `p` claiming `status`, as the gateway would write it.
    fn callback_data(&self, p: &Payment, status: &str, amount: &str) -> Fields {
        let mut data = json!({
            "finish_time": "20261205120000",
            "order_id": p.payment_id.clone().unwrap_or_else(|| p.order_id.clone()),
            "merchant_id": self.merchant_id,
            "order_status": status,
            "amount": amount,
            "currency_type": p.currency,
            "tip": "0",
            "bizpay_order_id": format!("FORGED{}", epoch_millis()),
            "convenience_fee": "0",
            "notify_id": format!("{:032x}", rand::random::<u128>()),
        });
        if let Some(reference) = &p.reference {
            data["reference"] = Value::String(reference.clone());
            if p.kind == "checkout" {
                data["prepay_order_id"] = Value::String(reference.clone());
            }
        }
        fields(data)
    }

    fn envelope(&self, rsp_code: &str, sealed: ottgate_client::Sealed) -> String {
        json!({
            "rsp_code": rsp_code,
            "rsp_msg": "success",
            "merchant_id": self.merchant_id,
            "data": sealed.data,
            "md5": sealed.md5.as_str(),
        })
        .to_string()
    }

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

    /// Sets what the sandbox does to `p` (`CHECK_FAULTS`); `{}` clears it.
    async fn faults(&self, p: &Payment, faults: Value) -> Result<()> {
        let mut asked = faults;
        asked["order_id"] = Value::String(p.order_id.clone());
        self.ask("CHECK_FAULTS", asked).await.map(|_| ())
    }

    /// `p`'s first callback once the gateway is done with it (acknowledged, or given up),
    /// or as it stands after `wait`: its state and every answer, as evidence lines.
    async fn settled_callback(&self, p: &Payment, wait: Duration) -> Result<(String, Vec<String>)> {
        let deadline = Instant::now() + wait;
        loop {
            let answer = self
                .ask("CHECK_CALLBACKS", json!({"order_id": p.order_id}))
                .await?;
            let first = answer
                .get("callbacks")
                .and_then(Value::as_array)
                .and_then(|c| c.first())
                .cloned()
                .unwrap_or_default();
            let state = first
                .get("state")
                .and_then(Value::as_str)
                .unwrap_or("none")
                .to_owned();
            if state != "pending" && state != "none" || Instant::now() > deadline {
                let answers = first
                    .get("answers")
                    .and_then(Value::as_array)
                    .map(|answers| answers.iter().map(answer_line).collect())
                    .unwrap_or_default();
                return Ok((state, answers));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
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

    /// The gateway sends `p`'s callback again (`CHECK_RESEND`): what the shop answered.
    async fn resend(
        &self,
        p: &Payment,
        times: u64,
        at_once: bool,
        signature: &str,
    ) -> Result<Vec<(u16, String)>> {
        let answer = self
            .ask(
                "CHECK_RESEND",
                json!({"order_id": p.order_id, "times": times, "at_once": at_once, "signature": signature}),
            )
            .await?;
        Ok(answer
            .get("answers")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|x| {
                        (
                            u16::try_from(
                                x.get("http_status").and_then(Value::as_u64).unwrap_or(0),
                            )
                            .unwrap_or(0),
                            x.get("answer")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Opens the shop's return page for the unpaid order `p` as a tampering buyer would, and
    /// judges whether the shop believed it.
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
        let params = ottgate_client::RedirectParams {
            total_fee: p.amount.clone(),
            trade_no: p.payment_id.clone().unwrap_or_else(|| p.order_id.clone()),
            out_trade_no: reference.clone(),
            trade_status: "Trade_Finished".into(),
        };
        let mut pairs: Vec<(String, String)> = params
            .query_pairs(&self.key)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
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
                    ("tranID".into(), params.trade_no.clone()),
                    ("status".into(), "success".into()),
                ];
            }
            _ => {}
        }
        let mut url = url::Url::parse(&p.redirect_url).context("the order's return URL")?;
        url.query_pairs_mut().extend_pairs(pairs.iter());
        let (status, page) = match self.http.get(url.clone()).send().await {
            Ok(r) => {
                let s = r.status().as_u16();
                (s, r.text().await.unwrap_or_default())
            }
            Err(e) => (0, format!("no answer: {e}")),
        };
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

    async fn run(&mut self, case: &'static str) -> Result<Outcome> {
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
                for how in ["none", "stale"] {
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

pub async fn run(args: CheckArgs) -> Result<()> {
    if args.list {
        for (name, what) in CASES {
            println!("{name:<16} {what}");
        }
        return Ok(());
    }
    let wanted: Vec<&'static str> = if args.cases.is_empty() {
        CASES.iter().map(|(n, _)| *n).collect()
    } else {
        let mut wanted = Vec::new();
        for c in &args.cases {
            let found = CASES
                .iter()
                .find(|(n, _)| n == c)
                .with_context(|| format!("no case {c} (see --list)"))?;
            wanted.push(found.0);
        }
        wanted
    };
    let mut checker = Checker {
        client: args.credentials.envelope()?,
        key: args.credentials.sign_key()?,
        merchant_id: args.credentials.merchant_id()?.to_owned(),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?,
        start_url: args.start_url.clone(),
        order_url: args.order_url.clone(),
        paid_text: args.paid_text.clone(),
        wait: Duration::from_secs(args.wait),
        used: HashSet::new(),
        paid: None,
    };
    // Refuse a live gateway before anything else.
    checker.payments_since(epoch_millis()).await?;
    let mut outcomes = Vec::new();
    for case in wanted {
        let outcome = match checker.run(case).await {
            Ok(o) => o,
            Err(e) => Outcome {
                case,
                verdict: Verdict::Skip,
                why: format!("could not run: {e}"),
                evidence: Vec::new(),
            },
        };
        outcomes.push(outcome);
    }
    // The merchant center shows the last run.
    let reported = json!({"cases": outcomes.iter().map(|o| json!({
        "case": o.case,
        "verdict": serde_json::to_value(o.verdict).unwrap_or_default(),
        "why": o.why,
    })).collect::<Vec<_>>()});
    if let Err(e) = checker.ask("CHECK_REPORT", reported).await {
        eprintln!("the merchant center could not be told of this run: {e}");
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, junit(&outcomes)).with_context(|| format!("{}", path.display()))?;
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "cases": outcomes }))?
        );
    } else {
        println!("{:<16} {:<5} why", "case", "");
        for o in &outcomes {
            let verdict = serde_json::to_value(o.verdict)?
                .as_str()
                .unwrap_or("")
                .to_owned();
            println!("{:<16} {verdict:<5} {}", o.case, o.why);
        }
    }
    if outcomes.iter().any(|o| o.verdict == Verdict::Fail) {
        std::process::exit(1);
    }
    Ok(())
}

fn junit(outcomes: &[Outcome]) -> String {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let failures = outcomes
        .iter()
        .filter(|o| o.verdict == Verdict::Fail)
        .count();
    let skipped = outcomes
        .iter()
        .filter(|o| o.verdict == Verdict::Skip)
        .count();
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"ottgate check\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\">\n",
        outcomes.len()
    );
    for o in outcomes {
        xml.push_str(&format!("  <testcase name=\"{}\">", escape(o.case)));
        match o.verdict {
            Verdict::Fail => xml.push_str(&format!(
                "<failure message=\"{}\">{}</failure>",
                escape(&o.why),
                escape(&o.evidence.join("\n"))
            )),
            Verdict::Warn => xml.push_str(&format!(
                "<system-out>WARN: {}</system-out>",
                escape(&o.why)
            )),
            Verdict::Skip => xml.push_str(&format!("<skipped message=\"{}\"/>", escape(&o.why))),
            Verdict::Pass => {}
        }
        xml.push_str("</testcase>\n");
    }
    xml.push_str("</testsuite>\n");
    xml
}
