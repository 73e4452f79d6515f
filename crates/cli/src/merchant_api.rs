//! `ottgate pay`, `ottgate query`, `ottgate refund`, `ottgate rate`: a merchant's calls from
//! the shell, through the SDK, against any gateway (ottgate or OTT Pay). Results print as
//! JSON on stdout; a QR code to show is also drawn on stderr.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use ottgate_client::{
    ActivePayRequest, Client, H5PayRequest, InAppPayRequest, LocalCardPaymentRequest,
    MiniProgramPayRequest, PassivePayRequest, PayRequest, PrepayInitRequest, RestClient, SignKey,
};
use serde::Serialize;

/// Where the gateway is and who the merchant is: shown after each command's own options.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Gateway and merchant")]
pub struct Credentials {
    /// Gateway base URL.
    #[arg(long, env = "OTTGATE_GATEWAY", default_value = "http://127.0.0.1:8080", global = true)]
    gateway: String,
    /// The merchant's id (`merchant_id`), as `ottgate merchant add` printed it.
    #[arg(long, env = "OTTGATE_MERCHANT_ID", global = true)]
    merchant_id: Option<String>,
    /// The merchant's sign key (envelope API and callbacks).
    #[arg(long, env = "OTTGATE_SIGN_KEY", hide_env_values = true, global = true)]
    sign_key: Option<String>,
    /// Default: the merchant id followed by 001.
    #[arg(long, env = "OTTGATE_SHOP_ID", global = true)]
    shop_id: Option<String>,
    /// The operator (cashier) id the envelope calls name, as `ottgate merchant add` printed it.
    #[arg(long, env = "OTTGATE_OPERATOR_ID", global = true)]
    operator_id: Option<String>,
    /// REST appId; default: the merchant id.
    #[arg(long, env = "OTTGATE_APP_ID", global = true)]
    app_id: Option<String>,
    /// REST appKey.
    #[arg(long, env = "OTTGATE_APP_KEY", hide_env_values = true, global = true)]
    app_key: Option<String>,
}

impl Credentials {
    /// The merchant's sign key.
    pub(crate) fn sign_key(&self) -> Result<SignKey> {
        let key = self
            .sign_key
            .as_deref()
            .context("--sign-key (or OTTGATE_SIGN_KEY) is required")?;
        SignKey::new(key).context("sign key")
    }

    pub(crate) fn merchant_id(&self) -> Result<&str> {
        self.merchant_id
            .as_deref()
            .context("--merchant-id (or OTTGATE_MERCHANT_ID) is required")
    }

    /// `--gateway`, which must be an absolute http(s) URL.
    fn gateway(&self) -> Result<&str> {
        let gateway = self.gateway.as_str();
        match url::Url::parse(gateway) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Ok(gateway),
            Ok(_) | Err(url::ParseError::RelativeUrlWithoutBase) => bail!(
                "--gateway {gateway} is not an http(s) URL: add http:// (e.g. http://{})",
                gateway.split("://").last().unwrap_or(gateway)
            ),
            Err(e) => bail!("--gateway {gateway} is not a URL: {e}"),
        }
    }

    pub(crate) fn envelope(&self) -> Result<Client> {
        let merchant_id = self.merchant_id()?;
        let key = self
            .sign_key
            .as_deref()
            .context("--sign-key (or OTTGATE_SIGN_KEY) is required")?;
        Ok(Client::new(
            self.gateway()?,
            merchant_id,
            SignKey::new(key).context("sign key")?,
        )?)
    }

    fn operator_id(&self) -> Result<String> {
        self.operator_id
            .clone()
            .context("--operator-id (or OTTGATE_OPERATOR_ID) is required")
    }

    fn rest(&self) -> Result<RestClient> {
        let app_id = match &self.app_id {
            Some(id) => id.as_str(),
            None => self
                .merchant_id()
                .context("--app-id (or --merchant-id) is required")?,
        };
        let key = self
            .app_key
            .as_deref()
            .context("--app-key (or OTTGATE_APP_KEY) is required")?;
        Ok(RestClient::new(self.gateway()?, app_id, key)?)
    }
}

/// An amount as the flags take it: a whole number of cents.
pub(crate) fn cents(text: &str) -> Result<String, String> {
    if !text.is_empty() && text.len() <= 12 && text.bytes().all(|b| b.is_ascii_digit()) {
        Ok(text.to_owned())
    } else {
        Err("a whole number of cents, e.g. 1234 for 12.34".into())
    }
}

/// A currency as the flags take it: three letters, any case (`cad` is CAD).
fn currency(text: &str) -> Result<String, String> {
    if text.len() == 3 && text.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(text.to_ascii_uppercase())
    } else {
        Err("a three-letter currency code, e.g. CAD".into())
    }
}

#[derive(Debug, Subcommand)]
pub enum Pay {
    /// PREPAY_INIT: a hosted checkout order; prints its payinfo link.
    Checkout {
        /// Cents.
        #[arg(long, value_parser = cents)]
        amount: String,
        /// Currency (ISO 4217, e.g. CAD; any case).
        #[arg(long, default_value = "CAD", value_parser = currency)]
        currency: String,
        /// The merchant's order id (prepay_order_id).
        #[arg(long)]
        reference: String,
        /// Where the buyer's browser comes back to after paying.
        #[arg(long)]
        redirect_url: String,
        /// Where the gateway sends the encrypted callback once paid.
        #[arg(long)]
        callback_url: String,
        /// Seconds the buyer has to pay.
        #[arg(long, default_value = "900")]
        duration: String,
        /// How many items the order is for (sale_num).
        #[arg(long, default_value = "1")]
        sale_num: String,
        /// A note kept with the payment (remarks).
        #[arg(long)]
        remarks: Option<String>,
    },
    /// REST wap-pay: Alipay in a mobile browser; prints payInfo and paymentId.
    Wap(RestPay),
    /// REST web-pay: Alipay in a PC browser.
    Web(RestPay),
    /// REST weixin/h5-pay: WeChat Pay in a phone browser outside WeChat; prints payInfo.
    WechatH5(RestPay),
    /// REST weixin/public-pay: WeChat Pay inside WeChat's own browser; prints payInfo (the
    /// page to open in WeChat).
    WechatPublic(RestPay),
    /// REST weixin/active-pay: a WeChat Pay QR code; prints payInfo and paymentId and draws
    /// the code on stderr.
    WechatQr(RestQrPay),
    /// REST alipay/inapp-pay: Alipay in your app; prints paySign (what your app hands
    /// Alipay's app SDK) and paymentId.
    AlipayApp {
        #[command(flatten)]
        pay: RestQrPay,
        /// Your sale number (at most 32 characters).
        #[arg(long)]
        sale_number: Option<String>,
    },
    /// REST unionpay/inapp-secure-pay: UnionPay in your app; prints tn (what your app hands
    /// UnionPay's app SDK) and paymentId.
    UnionpayApp(RestQrPay),
    /// ACTIVEPAY: a QR code for the buyer to scan with the wallet's app; prints the answer
    /// (code_url, order_id) and draws the code on stderr.
    Qr {
        /// ALIPAY, WECHATPAY or UNIONPAY.
        #[arg(long)]
        wallet: String,
        /// Cents, any tip included.
        #[arg(long, value_parser = cents)]
        amount: String,
        /// The part of the amount that is a tip, in cents.
        #[arg(long)]
        tip: Option<String>,
        /// Your own id for the payment (the gateway assigns one if absent).
        #[arg(long)]
        order_id: Option<String>,
        /// Default: the merchant's default currency.
        #[arg(long, value_parser = currency)]
        currency: Option<String>,
        /// Where the gateway sends the encrypted callback once paid.
        #[arg(long)]
        callback_url: String,
        /// A note kept with the payment (remarks).
        #[arg(long)]
        remarks: Option<String>,
    },
    /// CC_PURCHASE on /processV3: a card payment on the hosted card page (sandbox); prints
    /// the answer (codeUrl, the page to send the buyer's browser to). With --preauth,
    /// CC_PREAUTH: the approved card is only authorised, for you to capture or void.
    Card {
        /// CC_PREAUTH instead of CC_PURCHASE.
        #[arg(long)]
        preauth: bool,
        /// Cents.
        #[arg(long, value_parser = cents)]
        amount: String,
        /// Your id for the payment: 1 to 20 letters and digits.
        #[arg(long)]
        order_id: String,
        /// Where the buyer's browser comes back to.
        #[arg(long)]
        front_url: String,
        /// Where the callback goes.
        #[arg(long)]
        back_url: String,
    },
    /// PASSIVEPAY: charge the code the buyer's wallet shows at your till; prints the answer
    /// (order_status success, failure or PROCESSING).
    Barcode {
        /// The code scanned from the buyer's wallet (`ottgate sandbox barcode` makes one).
        #[arg(long)]
        auth_code: String,
        /// Cents, any tip included.
        #[arg(long, value_parser = cents)]
        amount: String,
        /// ALIPAY, WECHATPAY or UNIONPAY; default: the code's wallet.
        #[arg(long)]
        wallet: Option<String>,
        /// Your own id for the payment (the gateway assigns one if absent).
        #[arg(long)]
        order_id: Option<String>,
        /// The part of the amount that is a tip, in cents.
        #[arg(long)]
        tip: Option<String>,
        /// Your till.
        #[arg(long)]
        terminal: Option<String>,
        /// Where to send the callback once paid (optional).
        #[arg(long)]
        callback_url: Option<String>,
    },
    /// REST local-card/payment3dsV2 with one of the sandbox's test cards (no card number
    /// on the command line): prints the answer — authorised, or THREEDS_AUTH_CHALLENGE with
    /// the form for the buyer's browser.
    LocalCard {
        /// Cents.
        #[arg(long)]
        amount: u64,
        /// approved (VISA), approved-mc, challenge or declined.
        #[arg(long, default_value = "approved")]
        test_card: String,
        /// Where the gateway sends the encrypted callback once paid.
        #[arg(long)]
        callback_url: String,
        /// Where the browser comes back after a 3-D Secure challenge.
        #[arg(long)]
        front_url: String,
        /// Your own order id for this payment (reference).
        #[arg(long)]
        reference: Option<String>,
    },
    /// MAPPPAY: WeChat Pay inside your mini-program for the buyer --open-id names; prints
    /// payInfo (what the mini-program hands wx.requestPayment).
    MiniProgram {
        /// Cents.
        #[arg(long, value_parser = cents)]
        amount: String,
        /// The mini-program's app id.
        #[arg(long)]
        app_id: String,
        /// The buyer's openid under that app id.
        #[arg(long)]
        open_id: String,
        /// Your own id for the payment (the gateway assigns one if absent).
        #[arg(long)]
        order_id: Option<String>,
        /// Where the gateway sends the encrypted callback once paid.
        #[arg(long)]
        callback_url: String,
    },
    /// H5PAY: WeChat Pay in a phone browser; prints payinfo (the page to send the phone to).
    H5 {
        /// Cents.
        #[arg(long, value_parser = cents)]
        amount: String,
        /// Your own id for the payment (the gateway assigns one if absent).
        #[arg(long)]
        order_id: Option<String>,
        /// Currency (ISO 4217, e.g. CAD; any case).
        #[arg(long, default_value = "CAD", value_parser = currency)]
        currency: String,
        /// Where the gateway sends the encrypted callback once paid.
        #[arg(long)]
        callback_url: String,
        /// Where the buyer's browser comes back to after paying.
        #[arg(long)]
        redirect_url: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct RestPay {
    /// Cents.
    #[arg(long, value_parser = cents)]
    amount: String,
    /// Where the gateway sends the encrypted callback once paid.
    #[arg(long)]
    callback_url: String,
    /// Where the buyer's browser comes back to after paying.
    #[arg(long)]
    return_url: String,
    /// A note kept with the payment (remark).
    #[arg(long)]
    remark: Option<String>,
    /// Your own order id for this payment (reference).
    #[arg(long)]
    reference: Option<String>,
}

/// A REST pay route without a returnURL (the buyer pays on their phone).
#[derive(Debug, Args)]
pub struct RestQrPay {
    /// Cents.
    #[arg(long, value_parser = cents)]
    amount: String,
    /// Where the gateway sends the encrypted callback once paid.
    #[arg(long)]
    callback_url: String,
    /// A note kept with the payment (remark).
    #[arg(long)]
    remark: Option<String>,
    /// Your own order id for this payment (reference).
    #[arg(long)]
    reference: Option<String>,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct Which {
    /// A payment's order id (envelope STATUS_QUERY / REFUND).
    #[arg(long)]
    order_id: Option<String>,
    /// A checkout order's prepay_order_id (PREPAY_QUERY).
    #[arg(long)]
    prepay_order_id: Option<String>,
    /// A REST paymentId.
    #[arg(long)]
    payment_id: Option<String>,
    /// A REST payment's reference.
    #[arg(long)]
    reference: Option<String>,
}

/// The request of a REST pay route without a returnURL.
fn without_return(p: RestQrPay) -> PayRequest {
    PayRequest {
        amount: p.amount,
        callback_url: p.callback_url,
        return_url: String::new(),
        remark: p.remark,
        reference: p.reference,
    }
}

fn print(value: &impl Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub async fn pay(credentials: &Credentials, command: Pay) -> Result<()> {
    match command {
        Pay::Checkout {
            amount,
            currency,
            reference,
            redirect_url,
            callback_url,
            duration,
            sale_num,
            remarks,
        } => {
            let client = credentials.envelope()?;
            let merchant_id = credentials.merchant_id()?.to_owned();
            let request = PrepayInitRequest {
                shop_id: Some(
                    credentials
                        .shop_id
                        .clone()
                        .unwrap_or_else(|| format!("{merchant_id}001")),
                ),
                operator_id: Some(
                    credentials
                        .operator_id
                        .clone()
                        .context("--operator-id (or OTTGATE_OPERATOR_ID) is required")?,
                ),
                merchant_id: Some(merchant_id),
                prepay_order_id: Some(reference),
                sale_num: Some(sale_num),
                amount: Some(amount),
                currency_type: Some(currency),
                biz_type: Some("PREPAY".into()),
                redirect_url: Some(redirect_url),
                call_back_url: Some(callback_url),
                duration: Some(duration),
                email: None,
                remarks,
            };
            print(&client.prepay_init(&request).await?)
        }
        Pay::Wap(p) => print(&credentials.rest()?.wap_pay(&rest_request(p)).await?),
        Pay::Web(p) => print(&credentials.rest()?.web_pay(&rest_request(p)).await?),
        Pay::WechatH5(p) => print(&credentials.rest()?.weixin_h5_pay(&rest_request(p)).await?),
        Pay::WechatPublic(p) => print(
            &credentials
                .rest()?
                .weixin_public_pay(&rest_request(p))
                .await?,
        ),
        Pay::AlipayApp { pay, sale_number } => {
            let request = InAppPayRequest {
                pay: without_return(pay),
                user_id: None,
                sale_number,
            };
            print(&credentials.rest()?.alipay_in_app_pay(&request).await?)
        }
        Pay::UnionpayApp(p) => print(
            &credentials
                .rest()?
                .unionpay_in_app_pay(&without_return(p))
                .await?,
        ),
        Pay::WechatQr(p) => {
            let request = without_return(p);
            let answer = credentials.rest()?.weixin_active_pay(&request).await?;
            print(&answer)?;
            eprintln!("{}", draw_qr(&answer.pay_info)?);
            Ok(())
        }
        Pay::Qr {
            wallet,
            amount,
            tip,
            order_id,
            currency,
            callback_url,
            remarks,
        } => {
            let request = ActivePayRequest {
                merchant_id: None,
                order_id,
                operator_id: Some(credentials.operator_id()?),
                amount: Some(amount),
                tip,
                biz_type: Some(wallet.to_ascii_uppercase()),
                call_back_url: Some(callback_url),
                remarks,
                currency_type: currency,
            };
            let answer = credentials.envelope()?.active_pay(&request).await?;
            print(&answer)?;
            eprintln!("{}", draw_qr(&answer.code_url)?);
            Ok(())
        }
        Pay::H5 {
            amount,
            order_id,
            currency,
            callback_url,
            redirect_url,
        } => {
            let request = H5PayRequest {
                order_id,
                operator_id: Some(credentials.operator_id()?),
                amount: Some(amount),
                currency_type: Some(currency),
                biz_type: Some("WECHATPAY".into()),
                submit_type: Some("form".into()),
                call_back_url: Some(callback_url),
                redirect_url,
                ..H5PayRequest::default()
            };
            print(&credentials.envelope()?.h5_pay(&request).await?)
        }
        Pay::MiniProgram {
            amount,
            app_id,
            open_id,
            order_id,
            callback_url,
        } => {
            let request = MiniProgramPayRequest {
                order_id,
                operator_id: Some(credentials.operator_id()?),
                amount,
                biz_type: "WECHATPAY".into(),
                app_id,
                open_id,
                call_back_url: callback_url,
                sale_num: None,
            };
            print(&credentials.envelope()?.mini_program_pay(&request).await?)
        }
        Pay::Barcode {
            auth_code,
            amount,
            wallet,
            order_id,
            tip,
            terminal,
            callback_url,
        } => {
            let request = PassivePayRequest {
                order_id,
                operator_id: credentials.operator_id.clone(),
                amount,
                tip,
                sale_num: None,
                auth_code,
                biz_type: wallet.map(|w| w.to_ascii_uppercase()),
                terminal_no: terminal,
                call_back_url: callback_url,
            };
            print(&credentials.envelope()?.passive_pay(&request).await?)
        }
        Pay::LocalCard {
            amount,
            test_card,
            callback_url,
            front_url,
            reference,
        } => {
            let number = match test_card.as_str() {
                "approved" => "4111111111111111",
                "approved-mc" => "5555555555554444",
                "challenge" => "4000020000000000",
                "declined" => "4000000000000002",
                other => bail!(
                    "--test-card {other}: choose approved, approved-mc, challenge or declined"
                ),
            };
            let request = LocalCardPaymentRequest {
                amount,
                call_back_url: callback_url,
                front_url,
                account_number: number.into(),
                account_name: Some("Test Buyer".into()),
                account_expire: format!(
                    "12{:02}",
                    (ottgate_server::Clock::now(&ottgate_server::SystemClock)
                        .utc_display()
                        .get(2..4)
                        .and_then(|y| y.parse::<u32>().ok())
                        .unwrap_or(26)
                        + 3)
                        % 100
                ),
                cvn2: "123".into(),
                ssl_avs_address: None,
                ssl_avs_city: None,
                ssl_avs_province: None,
                ssl_avs_country: None,
                ssl_avs_zip: None,
                reference,
                session_id: None,
                email: None,
                purchase_3ds_addition: None,
            };
            print(&credentials.rest()?.local_card_payment(&request).await?)
        }
        Pay::Card {
            preauth,
            amount,
            order_id,
            front_url,
            back_url,
        } => {
            // Beijing time, as OTT Pay's other times are (UTC is taken too).
            let txn_time =
                ottgate_server::Clock::now(&ottgate_server::SystemClock).beijing_compact();
            let data = serde_json::json!({
                "orderId": order_id, "txnTime": txn_time, "txnAmt": amount,
                "frontUrl": front_url, "backUrl": back_url,
                "channelType": "ELAVONECOM", "bizType": "converge_hosted", "cc_channelType": "web",
            });
            let serde_json::Value::Object(fields) = data else {
                bail!("the card request is not an object");
            };
            let exchange = credentials
                .envelope()?
                .exchange_at(
                    "processV3",
                    if preauth { "CC_PREAUTH" } else { "CC_PURCHASE" },
                    "2.0",
                    fields,
                )
                .await?;
            if exchange.response.rsp_code != "SUCCESS" {
                bail!(
                    "{}: {}",
                    exchange.response.rsp_code,
                    exchange.response.rsp_msg
                );
            }
            print(&exchange.response_fields)
        }
    }
}

/// `content` as a QR code in text: two modules per character cell, dark on light, with
/// the quiet zone, for a terminal (a phone scans it off the screen).
pub fn draw_qr(content: &str) -> Result<String> {
    let code =
        qrcode::QrCode::new(content.as_bytes()).context("the code_url cannot be a QR code")?;
    Ok(code
        .render::<qrcode::render::unicode::Dense1x2>()
        .dark_color(qrcode::render::unicode::Dense1x2::Light)
        .light_color(qrcode::render::unicode::Dense1x2::Dark)
        .build())
}

/// `ottgate rate CAD`: EX_RATE_QUERY.
pub async fn rate(credentials: &Credentials, fee_type: &str) -> Result<()> {
    print(&credentials.envelope()?.exchange_rate(fee_type).await?)
}

fn rest_request(p: RestPay) -> PayRequest {
    PayRequest {
        amount: p.amount,
        callback_url: p.callback_url,
        return_url: p.return_url,
        remark: p.remark,
        reference: p.reference,
    }
}

pub async fn query(credentials: &Credentials, which: Which) -> Result<()> {
    match which {
        Which {
            order_id: Some(id), ..
        } => print(&credentials.envelope()?.status_query(&id).await?),
        Which {
            prepay_order_id: Some(id),
            ..
        } => print(&credentials.envelope()?.prepay_query(&id).await?),
        Which {
            payment_id: Some(id),
            ..
        } => print(&credentials.rest()?.status_query(&id).await?),
        Which {
            reference: Some(r), ..
        } => print(&credentials.rest()?.status_query_by_reference(&r).await?),
        _ => bail!("say which payment: --order-id, --prepay-order-id, --payment-id or --reference"),
    }
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct RefundOf {
    /// A payment's order id (envelope REFUND).
    #[arg(long)]
    order_id: Option<String>,
    /// A REST paymentId.
    #[arg(long)]
    payment_id: Option<String>,
}

/// `ottgate reverse --payment-id …`: REST local-card/reverse, the void of a card payment not
/// captured yet.
pub async fn reverse(credentials: &Credentials, payment_id: &str) -> Result<()> {
    print(&credentials.rest()?.local_card_reverse(payment_id).await?)
}

pub async fn refund(
    credentials: &Credentials,
    of: RefundOf,
    amount: String,
    refund_id: Option<String>,
) -> Result<()> {
    match of {
        RefundOf {
            order_id: Some(id), ..
        } => print(
            &credentials
                .envelope()?
                .refund(&id, &amount, refund_id.as_deref())
                .await?,
        ),
        RefundOf {
            payment_id: Some(id),
            ..
        } => {
            if refund_id.is_some() {
                bail!("--refund-id applies to the envelope API (--order-id) only");
            }
            print(&credentials.rest()?.refund(&id, &amount).await?)
        }
        _ => bail!("say which payment: --order-id or --payment-id"),
    }
}

#[derive(Debug, Subcommand)]
pub enum Events {
    /// The merchant's callbacks, newest first, with how their delivery went.
    List {
        /// Unix seconds; default: the last 30 days.
        #[arg(long)]
        since: Option<i64>,
        /// At most this many (1–100, default 50).
        #[arg(long)]
        limit: Option<u32>,
        /// The `nextCursor` a full page printed: the page after it.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Send a callback again (an exhausted one, or one you lost).
    Redeliver {
        /// The event's id (`events list`).
        #[arg(long)]
        id: String,
    },
}

/// `ottgate events`: the REST event log.
pub async fn events(credentials: &Credentials, command: Events) -> Result<()> {
    let rest = credentials.rest()?;
    match command {
        Events::List {
            since,
            limit,
            cursor,
        } => print(&rest.events_page(since, limit, cursor.as_deref()).await?),
        Events::Redeliver { id } => print(&rest.redeliver(&id).await?),
    }
}

/// `ottgate sandbox barcode`: a one-time buyer code from a sandbox gateway, printed, and
/// drawn as a Code 128 barcode on stderr (a till's scanner reads it off the screen).
pub async fn sandbox_barcode(gateway: &str, wallet: &str, outcome: &str) -> Result<()> {
    let url = format!("{}/sandbox/v1/barcodes", gateway.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .post(&url)
        .json(&serde_json::json!({"wallet": wallet.to_ascii_uppercase(), "outcome": outcome}))
        .send()
        .await
        .with_context(|| format!("the gateway at {gateway} did not answer"))?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .context("the gateway's answer is not JSON (is it in sandbox mode?)")?;
    if !status.is_success() {
        bail!(
            "{}",
            body["rsp_msg"].as_str().unwrap_or("the gateway refused")
        );
    }
    let code = body["code"]
        .as_str()
        .context("the gateway gave no code")?
        .to_owned();
    println!("{code}");
    eprintln!("{}", draw_barcode(&code)?);
    Ok(())
}

/// `digits` as a Code 128 barcode in text: each module a column, two rows of full blocks,
/// with quiet zones — light bars on a dark terminal, as `draw_qr` draws.
pub fn draw_barcode(digits: &str) -> Result<String> {
    // Set C packs two digits a symbol; an odd count starts with one in set B.
    let data = if digits.len().is_multiple_of(2) {
        format!("\u{0106}{digits}")
    } else {
        format!("\u{0181}{}\u{0106}{}", &digits[..1], &digits[1..])
    };
    let modules = barcoders::sym::code128::Code128::new(data)
        .map_err(|e| anyhow::anyhow!("the code cannot be a barcode: {e:?}"))?
        .encode();
    let quiet = "█".repeat(10);
    let row: String = modules
        .iter()
        .map(|m| if *m == 1 { ' ' } else { '█' })
        .collect();
    let line = format!("{quiet}{row}{quiet}");
    Ok(format!(
        "{line}\n{line}\n{line}\n{digits:^width$}",
        width = line.chars().count()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buyer_code_is_drawn_as_a_code_128_barcode_of_even_and_odd_length() {
        for code in ["134567890123456789", "6291234567890123456"] {
            let drawn = draw_barcode(code).unwrap();
            let lines: Vec<&str> = drawn.lines().collect();
            assert_eq!(lines.len(), 4, "{drawn}");
            assert_eq!(lines[0], lines[2]);
            assert!(lines[3].contains(code));
            // Start, the symbols, the check symbol and stop: 11 modules each (stop 13).
            let symbols = code.len().div_ceil(2) + usize::from(code.len() % 2 == 1);
            let modules = lines[0].chars().count() - 20;
            assert_eq!(modules, 11 * (symbols + 2) + 13, "{code}");
        }
    }
}
