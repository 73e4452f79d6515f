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

mod cases;

#[derive(Debug, Args)]
pub struct CheckArgs {
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
    #[command(flatten)]
    credentials: Credentials,
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
const CASES: [(&str, &str); 19] = [
    (
        "success",
        "a paid order's callback is acknowledged as OTT Pay expects (SUCCESS), its return page says paid, and the order is fulfilled once",
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
        "forged_currency",
        "a correctly sealed callback for the order's amount in another currency is refused",
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
        "a genuine callback without its OTTGate-Signature, with one an hour old, or with one made with a secret that no longer signs, is refused (a warning where the shop does not check the header)",
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

/// What the checker asks the gateway and the shop; the cases themselves are in [`cases`].
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

    /// What the shop asked the gateway about `p` since `since` (waiting a moment for it):
    /// each call, and how long after `since` it came.
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
                    .filter_map(|c| {
                        let call = c.get("call").and_then(Value::as_str)?;
                        let at = c.get("at").and_then(Value::as_i64).unwrap_or(since);
                        let after = Duration::from_millis(u64::try_from(at - since).unwrap_or(0));
                        Some(format!("{call} (+{:.1} s)", after.as_secs_f64()))
                    })
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
    /// Opens `p`'s return page as the buyer's browser would, with these query pairs.
    async fn open_return(
        &self,
        p: &Payment,
        pairs: &[(String, String)],
    ) -> Result<(url::Url, u16, String)> {
        let mut url = url::Url::parse(&p.redirect_url).context("the order's return URL")?;
        url.query_pairs_mut().extend_pairs(pairs.iter());
        Ok(match self.http.get(url.clone()).send().await {
            Ok(r) => {
                let s = r.status().as_u16();
                (url, s, r.text().await.unwrap_or_default())
            }
            Err(e) => (url, 0, format!("no answer: {e}")),
        })
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
