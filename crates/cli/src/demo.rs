//! `ottgate demo`: a whole checkout payment on a throwaway gateway, as a merchant and a
//! buyer would do it, printing every message both as it travels and decrypted.

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::body::Bytes;
use axum::routing::{get, post};
use ottgate_client::{Client, PrepayInitRequest, SignKey};
use ottgate_server::{Currency, Gateway, NewMerchant};

use crate::throwaway::Throwaway;
use reqwest::StatusCode;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use url::Url;

fn bold(text: &str) -> String {
    use std::io::IsTerminal;
    if std::io::stdout().is_terminal() {
        format!("\x1b[1m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

fn heading(n: u32, title: &str) {
    println!("\n{}", bold(&format!("== {n}. {title}")));
}

fn pretty(json: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(json).unwrap_or_default()
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("   {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The merchant's own web server: receives callbacks, and shows the buyer a thank-you page.
async fn start_merchant_site() -> Result<(Url, mpsc::Receiver<Bytes>, CancellationToken)> {
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    let app = Router::new()
        .route(
            "/notify",
            post(move |body: Bytes| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(body).await;
                    "SUCCESS"
                }
            }),
        )
        .route("/thanks", get(|| async { "Thank you for your order." }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = Url::parse(&format!("http://{}/", listener.local_addr()?))?;
    let stop = CancellationToken::new();
    let token = stop.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { token.cancelled().await })
            .await;
    });
    Ok((url, rx, stop))
}

pub async fn run() -> Result<()> {
    let gateway = Throwaway::start(|c| {
        c.sandbox.enabled = true;
        c.callbacks.delivery_poll_interval_ms = 200;
    })
    .await?;
    let result = walk_through(&gateway.gateway, &gateway.base).await;
    gateway.stop().await;
    result
}

async fn walk_through(gateway: &Gateway, base: &str) -> Result<()> {
    println!(
        "ottgate demo: a sandbox gateway is running at {base} on a temporary SQLite database."
    );

    heading(1, "Create a merchant");
    let created = gateway
        .create_merchant(NewMerchant {
            name: "Maple Tea House".into(),
            id: None,
            currencies: vec![Currency::Cad],
        })
        .await?;
    let m = &created.merchant;
    println!(
        "   merchant_id {}  shop_id {}  operator_id {}",
        m.id, m.shop_id, m.operator_id
    );
    println!(
        "   sign_key    {}  (the merchant's secret: it keys every message below)",
        created.sign_key.expose_secret()
    );
    let key = SignKey::new(created.sign_key.expose_secret()).context("sign key")?;
    let client = Client::new(base, m.id.as_str(), key)?;

    let (site, mut callbacks, stop_site) = start_merchant_site().await?;
    println!("   the merchant's site (callback receiver) is at {site}");

    heading(
        2,
        "Merchant server → gateway: PREPAY_INIT (create a checkout order)",
    );
    let reference = format!("demo{}", std::process::id());
    let request = PrepayInitRequest {
        merchant_id: Some(m.id.to_string()),
        shop_id: Some(m.shop_id.to_string()),
        operator_id: Some(m.operator_id.to_string()),
        prepay_order_id: Some(reference.clone()),
        sale_num: Some("INV-1001".into()),
        amount: Some("1288".into()),
        currency_type: Some("CAD".into()),
        biz_type: Some("PREPAY".into()),
        redirect_url: Some(site.join("thanks")?.to_string()),
        call_back_url: Some(site.join("notify")?.to_string()),
        duration: Some("600".into()),
        email: Some("buyer@example.com".into()),
        remarks: Some("2 x Earl Grey".into()),
    };
    let exchange = client
        .exchange(
            "PREPAY_INIT",
            "2.0",
            ottgate_client::prepay_fields(&request),
        )
        .await?;
    println!(
        "   request data (plaintext):\n{}",
        indent(&pretty(&exchange.request_fields))
    );
    println!(
        "   POST /processV2 (on the wire):\n{}",
        indent(&pretty(&exchange.request))
    );
    println!(
        "   response (on the wire, HTTP {}):\n{}",
        exchange.http_status,
        indent(&pretty(&exchange.response))
    );
    let Some(plain) = &exchange.response_plaintext else {
        bail!(
            "PREPAY_INIT failed: {} {}",
            exchange.response.rsp_code,
            exchange.response.rsp_msg
        );
    };
    println!(
        "   response data (decrypted, md5 verified):\n{}",
        indent(plain)
    );
    let payinfo = exchange
        .response_fields
        .as_ref()
        .and_then(|f| f.get("payinfo"))
        .and_then(|v| v.as_str())
        .context("no payinfo")?
        .to_owned();

    heading(3, "Buyer's browser → hosted checkout (payinfo)");
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let page = browser.get(&payinfo).send().await?;
    let status = page.status();
    let html = page.text().await?;
    let offered: Vec<&str> = ["WECHATPAY", "ALIPAY", "UNIONPAY", "GP"]
        .into_iter()
        .filter(|m| html.contains(&format!("id=\"method-{m}\"")))
        .collect();
    println!("   GET {payinfo} → {status}");
    println!(
        "   the page shows Maple Tea House, CA$12.88, a countdown, and the methods: {}",
        offered.join(", ")
    );

    heading(4, "Buyer chooses Alipay, and pays at (simulated) Alipay");
    let chose = browser
        .post(format!("{payinfo}/pay"))
        .form(&[("method", "ALIPAY")])
        .send()
        .await?;
    let wallet = location(&chose)?;
    println!(
        "   POST {payinfo}/pay method=ALIPAY → {} → Alipay's gateway.do, our request signed (RSA2):",
        chose.status()
    );
    let wallet_url = Url::parse(&wallet)?;
    for (k, v) in wallet_url.query_pairs() {
        let v = if k == "sign" {
            format!("{}…", v.chars().take(40).collect::<String>())
        } else {
            v.into_owned()
        };
        println!("      {k} = {v}");
    }
    let cashier = browser.get(&wallet).send().await?;
    println!(
        "   GET gateway.do → {} : the simulated Alipay verified the signature and shows its cashier",
        cashier.status()
    );
    let out_trade_no = wallet_url
        .query_pairs()
        .find(|(k, _)| k == "out_trade_no")
        .map(|(_, v)| v.into_owned())
        .context("no out_trade_no")?;
    let pay_url = wallet_url.join(&format!("cashier/{out_trade_no}"))?;
    let paid = browser
        .post(pay_url.as_str())
        .form(&[("action", "pay")])
        .send()
        .await?;
    let back = location(&paid)?;
    println!(
        "   POST cashier action=pay → {} → back to the gateway with Alipay's signed result;",
        paid.status()
    );
    println!(
        "   meanwhile Alipay POSTs its signed notification to /notify/alipay (verified, amount checked)"
    );
    let returned = browser.get(&back).send().await?;
    let merchant_url = location(&returned)?;
    println!("   GET return → {} →\n   {merchant_url}", returned.status());

    heading(5, "Merchant checks the browser return (redirect_url)");
    let query = Url::parse(&merchant_url)?
        .query()
        .unwrap_or_default()
        .to_owned();
    let params = client.verify_redirect(&query)?;
    println!(
        "   total_fee={} trade_no={} out_trade_no={} trade_status={}",
        params.total_fee, params.trade_no, params.out_trade_no, params.trade_status
    );
    println!("   sign verified with the merchant's sign key ✔");

    heading(6, "Gateway → merchant: encrypted callback to call_back_url");
    let body = tokio::time::timeout(Duration::from_secs(15), callbacks.recv())
        .await
        .context("no callback within 15 s")?
        .context("callback receiver closed")?;
    let envelope: serde_json::Value = serde_json::from_slice(&body)?;
    println!("   received (on the wire):\n{}", indent(&pretty(&envelope)));
    let (callback, plaintext) = client.open_callback(&body)?;
    println!("   data (decrypted, md5 verified):\n{}", indent(&plaintext));
    println!(
        "   paid {} cents, order_id {}, wallet transaction {}",
        callback.amount, callback.order_id, callback.bizpay_order_id
    );

    heading(
        7,
        "Merchant server → gateway: PREPAY_QUERY (confirm before shipping)",
    );
    let query_exchange = client
        .exchange(
            "PREPAY_QUERY",
            "2.0",
            ottgate_client::query_fields(client.merchant_id(), &reference),
        )
        .await?;
    println!(
        "   response (on the wire):\n{}",
        indent(&pretty(&query_exchange.response))
    );
    let plain = query_exchange
        .response_plaintext
        .context("PREPAY_QUERY carried no data")?;
    println!("   response data (decrypted):\n{}", indent(&plain));
    let status = query_exchange
        .response_fields
        .as_ref()
        .and_then(|f| f.get("status"))
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned();
    stop_site.cancel();
    if status != "SUCCESS" || !params.is_success() || callback.order_id != params.trade_no {
        bail!("the payment did not complete as expected (status {status})");
    }
    println!(
        "\n{} order {reference} is paid (status SUCCESS), the callback arrived and verified.",
        bold("Demo complete:")
    );
    Ok(())
}

fn location(response: &reqwest::Response) -> Result<String> {
    if !(response.status().is_redirection() || response.status() == StatusCode::FOUND) {
        bail!("expected a redirect, got {}", response.status());
    }
    Ok(response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .context("redirect without Location")?
        .to_owned())
}
