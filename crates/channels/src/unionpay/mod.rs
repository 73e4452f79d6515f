//! UnionPay online payments, gateway 5.1.0 (docs/unionpay.md): the connector.
//!
//! The buyer's browser POSTs our signed form to `frontTransReq.do` (an auto-submitted
//! page), pays at UnionPay, and comes back to `frontUrl` (display only). The result that
//! counts is UnionPay's signed form POSTed to `backUrl` (our `/notify/unionpay`), answered
//! with HTTP 200. `queryTrans.do` confirms; refunds go to `backTransReq.do`, their result
//! again to `backUrl`. A QR code the merchant shows is asked for on `backTransReq.do`
//! (`txnSubType=07`, `bizType=000000`) and answered with `qrCode`; its result arrives the
//! same way (docs/wallets.md).

pub mod sign;
pub mod simulator;
pub mod statement;
mod wallet;

use async_trait::async_trait;
use ottgate_core::{Amount, Currency, Money, Timestamp};
use rsa::{RsaPrivateKey, RsaPublicKey};
use sign::Fields;
use std::fmt;
use std::time::Duration;
use url::Url;
pub use wallet::{Section, WALLET};

use crate::alipay::{private_key_pem, public_key_pem};
use crate::notification::stated_minor;
use crate::{
    BarcodePayment, BarcodeResult, BarcodeRules, Channel, ChannelError, Device, Flow, Notification,
    NotificationError, Outcome, PaymentRef, PaymentStart, QueryPayment, QueryRefund, QueryResult,
    RefundPayment, RefundQueryResult, RefundResult, StartAction, StartPayment, Subject,
    UndoPayment, UndoResult,
};

/// What the gateway needs to act as a UnionPay online merchant (or acquirer).
#[derive(Clone)]
pub struct UnionPayConfig {
    /// The gateway root, e.g. `https://gateway.95516.com/` (ending in `/`); the endpoints
    /// are `gateway/api/frontTransReq.do`, `queryTrans.do` and `backTransReq.do` under it.
    pub gateway_url: Url,
    /// Where our own server-to-server requests go (`queryTrans.do`, `backTransReq.do`),
    /// when not under `gateway_url` (a sandbox reaches its simulator directly).
    pub back_gateway_url: Option<Url>,
    /// Where the reconciliation file is asked for (the file-transfer request): UnionPay's
    /// own host, `https://filedownload.95516.com/`.
    pub file_url: Url,
    pub mer_id: String,
    /// The serial number of our signing certificate (`certId`).
    pub cert_id: String,
    pub signing_key: Box<RsaPrivateKey>,
    /// UnionPay's signing key, pinned (see the README: 5.1.0 messages also carry it as
    /// `signPubKeyCert`, which this connector does not chain-validate).
    pub verifying_key: Box<RsaPublicKey>,
    /// Where UnionPay posts results (our `/notify/unionpay`).
    pub notify_url: Url,
    pub test_mode: bool,
}

impl fmt::Debug for UnionPayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnionPayConfig")
            .field("gateway_url", &self.gateway_url.as_str())
            .field("mer_id", &self.mer_id)
            .field("cert_id", &self.cert_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct UnionPayConnector {
    config: UnionPayConfig,
    http: reqwest::Client,
}

/// `bizType` of online (browser) payments: gateway payment.
pub const ONLINE_BIZ_TYPE: &str = "000201";
/// `bizType` of QR code payments.
pub const QR_BIZ_TYPE: &str = "000000";

/// ISO 4217 numeric codes, as `currencyCode` carries them.
pub fn currency_code(currency: Currency) -> &'static str {
    match currency {
        Currency::Cad => "124",
        Currency::Usd => "840",
        Currency::Cny => "156",
    }
}

pub fn currency_from_code(code: &str) -> Option<Currency> {
    Currency::ALL
        .into_iter()
        .find(|c| currency_code(*c) == code)
}

/// Whether `txnAmt` (minor units) and `currencyCode` are exactly `expected`.
pub fn amount_matches(txn_amt: &str, currency_code: &str, expected: Money) -> bool {
    currency_from_code(currency_code) == Some(expected.currency)
        && txn_amt.parse::<u64>().ok() == Some(expected.amount.minor())
}

/// A verified notification, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// About a payment (`txnType=01`).
    Payment {
        order_id: String,
        query_id: String,
        txn_amt: String,
        currency_code: String,
        resp_code: String,
    },
    /// About a refund (`txnType=04`); `order_id` is the refund's, `orig_query_id` the
    /// payment's `queryId`.
    Refund {
        order_id: String,
        orig_query_id: String,
        txn_amt: String,
        currency_code: String,
        resp_code: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoticeError {
    #[error("notification lacks {0}")]
    Missing(&'static str),
    #[error("txnType {0} is not a payment or a refund")]
    UnknownType(String),
}

impl Notice {
    /// Reads an already verified notification.
    pub fn read(fields: &Fields) -> Result<Self, NoticeError> {
        let get = |name: &'static str| {
            fields
                .get(name)
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or(NoticeError::Missing(name))
        };
        match get("txnType")?.as_str() {
            "01" => Ok(Notice::Payment {
                order_id: get("orderId")?,
                query_id: get("queryId")?,
                txn_amt: get("txnAmt")?,
                currency_code: get("currencyCode")?,
                resp_code: get("respCode")?,
            }),
            "04" => Ok(Notice::Refund {
                order_id: get("orderId")?,
                orig_query_id: get("origQryId")?,
                txn_amt: get("txnAmt")?,
                currency_code: get("currencyCode")?,
                resp_code: get("respCode")?,
            }),
            other => Err(NoticeError::UnknownType(other.to_owned())),
        }
    }
}

/// What a `respCode` / `origRespCode` says about a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Succeeded,
    /// Not final yet: the query (reconciliation) will tell.
    Undecided,
    Failed,
}

impl Verdict {
    /// `00` and `A6` (succeeded with a deferred part) succeeded; `03`, `04`, `05` (timeout,
    /// unknown, processing) and no code at all are not final; anything else failed.
    pub fn of(code: &str) -> Self {
        match code {
            "00" | "A6" => Verdict::Succeeded,
            "" | "03" | "04" | "05" => Verdict::Undecided,
            _ => Verdict::Failed,
        }
    }
}

/// Parses a synchronous answer: `k=v&…` with raw values (not percent-encoded); a value in
/// braces may itself contain `&` and `=` (UnionPay's SDK parses it the same way).
pub fn parse_answer(body: &str) -> Fields {
    let mut fields = Fields::new();
    let mut depth = 0usize;
    let mut start = 0;
    let bytes = body.as_bytes();
    let mut push = |part: &str| {
        if let Some((k, v)) = part.split_once('=') {
            fields.insert(k.to_owned(), v.to_owned());
        }
    };
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b'{' => depth += 1,
            b'}' => depth = depth.saturating_sub(1),
            b'&' if depth == 0 => {
                push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    push(&body[start..]);
    fields
}

/// Writes a synchronous answer as UnionPay does (raw `k=v&…`).
pub fn write_answer(fields: &Fields) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Parses a notification: a normal percent-encoded form.
pub fn parse_form(body: &[u8]) -> Fields {
    url::form_urlencoded::parse(body).into_owned().collect()
}

impl UnionPayConnector {
    pub fn new(config: UnionPayConfig) -> Result<Self, ChannelError> {
        let http = crate::build_http(crate::upstream_http())?;
        Ok(Self { config, http })
    }

    pub fn config(&self) -> &UnionPayConfig {
        &self.config
    }

    /// Whether a message is about this merchant account (`merId`).
    pub fn is_for_our_account(&self, fields: &Fields) -> bool {
        fields.get("merId") == Some(&self.config.mer_id)
    }

    /// Whether a message carries UnionPay's valid signature.
    pub fn verify(&self, fields: &Fields) -> bool {
        fields.get("signMethod").map(String::as_str) == Some("01")
            && sign::verify(fields, &self.config.verifying_key)
    }

    /// Where the buyer's browser posts (`frontTransReq.do`).
    fn front_endpoint(&self, name: &str) -> Result<Url, ChannelError> {
        crate::url_under(&self.config.gateway_url, &format!("gateway/api/{name}"))
    }

    /// Where our server posts.
    fn endpoint(&self, name: &str) -> Result<Url, ChannelError> {
        let root = self
            .config
            .back_gateway_url
            .as_ref()
            .unwrap_or(&self.config.gateway_url);
        crate::url_under(root, &format!("gateway/api/{name}"))
    }

    /// A purchase UnionPay is asked for server to server — `(txnType, txnSubType,
    /// bizType)` at `endpoint`, no `frontUrl` since no browser comes back — and, from its
    /// verified answer about exactly this order, the field `wanted` (`qrCode`, `tn`).
    async fn purchase_for(
        &self,
        payment: &StartPayment,
        codes: (&str, &str, &str),
        endpoint: &str,
        wanted: &str,
    ) -> Result<String, ChannelError> {
        let mut f = self.base(codes, payment.attempt_id.as_str(), payment.created_at);
        let fields = [
            ("channelType", "08".to_owned()),
            ("txnAmt", payment.money.amount.minor().to_string()),
            (
                "currencyCode",
                currency_code(payment.money.currency).to_owned(),
            ),
            ("backUrl", self.config.notify_url.to_string()),
            ("payTimeout", payment.expires_at.beijing_compact()),
        ];
        f.extend(fields.into_iter().map(|(k, v)| (k.to_owned(), v)));
        let answer = self.call(endpoint, f).await?;
        let code = answer.get("respCode").map_or("", String::as_str);
        if code != "00" {
            return Err(ChannelError::upstream(format!(
                "{endpoint}: {code} {}",
                answer.get("respMsg").map_or("", String::as_str)
            )));
        }
        if answer.get("orderId").map(String::as_str) != Some(payment.attempt_id.as_str()) {
            return Err(ChannelError::upstream(format!(
                "{endpoint} answered about another order"
            )));
        }
        answer
            .get(wanted)
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or_else(|| ChannelError::upstream(format!("{endpoint}: no {wanted}")))
    }

    /// `backTransReq.do` with `txnType=01`, `txnSubType=07`: a QR code the buyer scans.
    async fn apply_qr_code(&self, payment: &StartPayment) -> Result<PaymentStart, ChannelError> {
        let codes = ("01", "07", QR_BIZ_TYPE);
        let qr_code = self
            .purchase_for(payment, codes, "backTransReq.do", "qrCode")
            .await?;
        Ok(PaymentStart {
            action: StartAction::qr_url(qr_code, self.config.test_mode),
            channel_order_id: None,
        })
    }

    /// `appTransReq.do`: a purchase for UnionPay's app SDK, answered with its `tn`
    /// (docs/unionpay.md, App payments).
    async fn app_transaction(&self, payment: &StartPayment) -> Result<PaymentStart, ChannelError> {
        let codes = ("01", "01", ONLINE_BIZ_TYPE);
        let tn = self
            .purchase_for(payment, codes, "appTransReq.do", "tn")
            .await?;
        Ok(PaymentStart {
            action: StartAction::AppSdk {
                params: vec![("tn".to_owned(), tn)],
            },
            channel_order_id: None,
        })
    }

    /// `queryTrans.do` about transaction `order_id` sent at `txn_time`: `None` when
    /// UnionPay has no such transaction (`respCode=34`: not paid yet, or a request still
    /// travelling), else UnionPay's verified answer about exactly that order.
    async fn query_trans(
        &self,
        order_id: &str,
        txn_time: Timestamp,
    ) -> Result<Option<Fields>, ChannelError> {
        let mut f = self.base(("00", "00", "000000"), order_id, txn_time);
        f.insert("channelType".into(), "07".into());
        let answer = self.call("queryTrans.do", f).await?;
        match answer.get("respCode").map_or("", String::as_str) {
            "00" => {}
            "34" => return Ok(None),
            other => return Err(ChannelError::upstream(format!("queryTrans: {other}"))),
        }
        if answer.get("orderId").map(String::as_str) != Some(order_id) {
            return Err(ChannelError::upstream(
                "queryTrans answered about another order",
            ));
        }
        Ok(Some(answer))
    }

    /// The fields every request carries, for `txnType`/`txnSubType`/`bizType`.
    fn base(&self, txn: (&str, &str, &str), order_id: &str, txn_time: Timestamp) -> Fields {
        let (txn_type, txn_sub_type, biz_type) = txn;
        [
            ("version", "5.1.0"),
            ("encoding", "UTF-8"),
            ("signMethod", "01"),
            ("txnType", txn_type),
            ("txnSubType", txn_sub_type),
            ("bizType", biz_type),
            ("accessType", "0"),
            ("merId", &self.config.mer_id),
            ("certId", &self.config.cert_id),
            ("orderId", order_id),
            ("txnTime", &txn_time.beijing_compact()),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }

    fn signed(&self, mut fields: Fields) -> Fields {
        let signature = sign::sign(&fields, &self.config.signing_key);
        fields.insert("signature".into(), signature);
        fields
    }

    /// POSTs a signed request to a back-end endpoint; returns the verified answer.
    async fn call(&self, endpoint: &str, fields: Fields) -> Result<Fields, ChannelError> {
        self.call_at(self.endpoint(endpoint)?, endpoint, fields)
            .await
    }

    /// [`Self::call`] to `url`, named `endpoint` in errors.
    async fn call_at(
        &self,
        url: Url,
        endpoint: &str,
        fields: Fields,
    ) -> Result<Fields, ChannelError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.signed(fields).iter())
            .finish();
        let response = self
            .http
            .post(url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=UTF-8",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| ChannelError::unreachable("UnionPay", e))?;
        let text = response
            .text()
            .await
            .map_err(|e| ChannelError::upstream_from("UnionPay answer unreadable", e))?;
        let answer = parse_answer(text.trim());
        if !self.verify(&answer) {
            // Format errors are answered unsigned; say which, without trusting the rest.
            let code = answer.get("respCode").map_or("no respCode", String::as_str);
            return Err(ChannelError::upstream(format!(
                "{endpoint}: unsigned answer ({code})"
            )));
        }
        Ok(answer)
    }
}

fn minor_money(txn_amt: Option<&String>, code: Option<&String>) -> Option<Money> {
    Some(Money::new(
        Amount::from_minor(txn_amt?.parse().ok()?).ok()?,
        currency_from_code(code?)?,
    ))
}

#[async_trait]
impl Channel for UnionPayConnector {
    fn name(&self) -> &'static str {
        "unionpay"
    }

    fn is_test_mode(&self) -> bool {
        self.config.test_mode
    }

    /// A signed form POSTed to `backUrl`: a purchase's or a refund's result, for our `merId`.
    /// (Answered with HTTP 200 to accept, the default acknowledgement.)
    fn read_notification(&self, body: &[u8]) -> Result<Notification, NotificationError> {
        let fields = parse_form(body);
        if !self.verify(&fields) {
            return Err(NotificationError::BadSignature);
        }
        if !self.is_for_our_account(&fields) {
            return Err(NotificationError::NotOurAccount);
        }
        let outcome = |resp_code: &str, wallet_ref: Option<String>| match Verdict::of(resp_code) {
            Verdict::Succeeded => Outcome::Succeeded { wallet_ref },
            Verdict::Undecided => Outcome::Undecided,
            Verdict::Failed => Outcome::Failed,
        };
        let notice =
            Notice::read(&fields).map_err(|e| NotificationError::Malformed(e.to_string()))?;
        Ok(match notice {
            Notice::Payment {
                order_id,
                query_id,
                txn_amt,
                currency_code,
                resp_code,
            } => Notification {
                subject: Subject::Payment {
                    attempt_id: order_id,
                },
                money: stated_minor(Some(&txn_amt), currency_from_code(&currency_code)),
                outcome: outcome(&resp_code, Some(query_id)),
                sub_merchant: None,
                message_id: None,
                buyer_paid: None,
            },
            Notice::Refund {
                order_id,
                orig_query_id,
                txn_amt,
                currency_code,
                resp_code,
            } => Notification {
                subject: Subject::Refund {
                    refund_id: order_id,
                    payment: PaymentRef::Wallets(orig_query_id),
                },
                money: stated_minor(Some(&txn_amt), currency_from_code(&currency_code)),
                outcome: outcome(&resp_code, fields.get("queryId").cloned()),
                sub_merchant: None,
                message_id: None,
                buyer_paid: None,
            },
        })
    }

    async fn start(&self, payment: &StartPayment) -> Result<PaymentStart, ChannelError> {
        let channel_type = match payment.flow {
            Flow::MerchantQr => return self.apply_qr_code(payment).await,
            Flow::Browser(Device::Mobile) => "08",
            Flow::Browser(Device::Desktop) => "07",
            Flow::InWallet => {
                return Err(ChannelError::Config(
                    "UnionPay has no payment inside its own browser here".into(),
                ));
            }
            Flow::App => return self.app_transaction(payment).await,
            Flow::Barcode => return Err(crate::barcode_not_started()),
        };
        let mut f = self.base(
            ("01", "01", ONLINE_BIZ_TYPE),
            payment.attempt_id.as_str(),
            payment.created_at,
        );
        let fields = [
            ("channelType", channel_type.to_owned()),
            ("txnAmt", payment.money.amount.minor().to_string()),
            (
                "currencyCode",
                currency_code(payment.money.currency).to_owned(),
            ),
            ("frontUrl", payment.return_url.to_string()),
            ("backUrl", self.config.notify_url.to_string()),
            ("payTimeout", payment.expires_at.beijing_compact()),
        ];
        f.extend(fields.into_iter().map(|(k, v)| (k.to_owned(), v)));
        Ok(PaymentStart {
            action: StartAction::PostForm {
                action: self.front_endpoint("frontTransReq.do")?,
                fields: self.signed(f).into_iter().collect(),
            },
            channel_order_id: None,
        })
    }

    /// `queryTrans.do`: `respCode=34` is "no such transaction" (the buyer has not paid
    /// yet); otherwise `origRespCode` is the payment's own result.
    async fn query(&self, payment: &QueryPayment) -> Result<QueryResult, ChannelError> {
        let Some(answer) = self
            .query_trans(payment.attempt_id.as_str(), payment.started_at)
            .await?
        else {
            return Ok(QueryResult::NotFound);
        };
        let code = |name: &str| answer.get(name).map_or("", String::as_str);
        Ok(match Verdict::of(code("origRespCode")) {
            Verdict::Succeeded => QueryResult::Paid {
                bizpay_order_id: code("queryId").to_owned(),
                money: minor_money(answer.get("txnAmt"), answer.get("currencyCode")),
            },
            Verdict::Undecided => QueryResult::Pending,
            Verdict::Failed => QueryResult::Closed,
        })
    }

    fn reads_statements(&self) -> bool {
        true
    }

    /// The file-transfer request (`txnType=76`, `fileType=00`) for the day as `settleDate`
    /// (`MMDD`): the detail file of the zip in `fileContent` (docs/reconciliation.md).
    /// `respCode=98` (no file) is not ready.
    async fn statement(
        &self,
        day: ottgate_core::recon::WalletDay,
    ) -> Result<Option<Vec<ottgate_core::recon::StatementLine>>, ChannelError> {
        let compact = day.compact();
        let mut f = self.base(("76", "01", "000000"), "", crate::simkit::now());
        f.remove("orderId");
        f.insert("settleDate".into(), compact[4..].to_owned());
        f.insert("fileType".into(), "00".into());
        let answer = self
            .call_at(self.config.file_url.clone(), "fileTransfer", f)
            .await?;
        match answer.get("respCode").map(String::as_str) {
            Some("00") => {}
            Some("98") => return Ok(None),
            other => {
                return Err(ChannelError::upstream(format!(
                    "fileTransfer: {} {}",
                    other.unwrap_or("no respCode"),
                    answer.get("respMsg").map_or("", String::as_str)
                )));
            }
        }
        let file = |e: statement::FileError| ChannelError::upstream(format!("fileTransfer: {e}"));
        let detail = statement::unpack_detail(answer.get("fileContent").map_or("", String::as_str))
            .map_err(file)?;
        let lines = statement::parse(&detail).map_err(file)?;
        statement::statement_lines(lines).map(Some).map_err(file)
    }

    fn can_query_refunds(&self) -> bool {
        true
    }

    /// `queryTrans.do` on the refund's own `orderId` and `txnTime`.
    async fn query_refund(&self, refund: &QueryRefund) -> Result<RefundQueryResult, ChannelError> {
        let Some(answer) = self
            .query_trans(refund.refund_id.as_str(), refund.requested_at)
            .await?
        else {
            return Ok(RefundQueryResult::Pending);
        };
        let code = |name: &str| answer.get(name).map_or("", String::as_str);
        Ok(match Verdict::of(code("origRespCode")) {
            Verdict::Succeeded
                if !amount_matches(code("txnAmt"), code("currencyCode"), refund.money) =>
            {
                return Err(ChannelError::upstream(
                    "queryTrans reports another refund amount",
                ));
            }
            Verdict::Succeeded => RefundQueryResult::Succeeded {
                channel_refund_id: answer.get("queryId").cloned(),
            },
            Verdict::Undecided => RefundQueryResult::Pending,
            Verdict::Failed => RefundQueryResult::Failed,
        })
    }

    /// UnionPay publishes no interval for barcode queries (docs/instore.md): as the other
    /// wallets — query 3 s after an undecided answer, every 5 s up to 60 s; then void
    /// (`31`), again every 5 s while UnionPay answers `03`/`04`/`05` or does not answer.
    fn barcode_rules(&self) -> Option<BarcodeRules> {
        Some(BarcodeRules {
            first_query: Duration::from_secs(3),
            query_every: Duration::from_secs(5),
            query_for: Duration::from_secs(60),
            undo_not_before: Duration::ZERO,
            undo_every: Duration::from_secs(5),
        })
    }

    /// The consume `01`/`06` with the buyer's code in `qrNo`. UnionPay accepts it at once
    /// (`00`) and decides by notification; so an accepted consume is asked about once at
    /// once (`queryTrans.do`): `origRespCode` `00` is paid. `03`/`04`/`05`, no answer, or no
    /// decision yet are undecided; any other code is final.
    async fn barcode_pay(&self, payment: &BarcodePayment) -> Result<BarcodeResult, ChannelError> {
        let mut f = self.base(
            ("01", "06", QR_BIZ_TYPE),
            payment.attempt_id.as_str(),
            payment.started_at,
        );
        let fields = [
            ("channelType", "08".to_owned()),
            ("txnAmt", payment.money.amount.minor().to_string()),
            (
                "currencyCode",
                currency_code(payment.money.currency).to_owned(),
            ),
            ("qrNo", payment.auth_code.clone()),
            ("backUrl", self.config.notify_url.to_string()),
        ];
        f.extend(fields.into_iter().map(|(k, v)| (k.to_owned(), v)));
        if let Some(terminal) = &payment.terminal {
            f.insert("termId".into(), terminal.chars().take(8).collect());
        }
        let undecided = |reason: String| Ok(BarcodeResult::Undecided { reason });
        let answer = match self.call("backTransReq.do", f).await {
            Ok(answer) => answer,
            Err(ChannelError::Upstream { message, .. }) => return undecided(message),
            Err(e) => return Err(e),
        };
        let code = |name: &str| answer.get(name).map_or("", String::as_str).to_owned();
        match Verdict::of(&code("respCode")) {
            Verdict::Succeeded => {}
            Verdict::Undecided => return undecided(format!("respCode {}", code("respCode"))),
            Verdict::Failed => {
                return Ok(BarcodeResult::Declined {
                    reason: format!("{} {}", code("respCode"), code("respMsg"))
                        .trim()
                        .to_owned(),
                });
            }
        }
        let found = match self
            .query_trans(payment.attempt_id.as_str(), payment.started_at)
            .await
        {
            Ok(Some(found)) => found,
            Ok(None) => return undecided("accepted, not decided yet".into()),
            Err(e) => return undecided(e.to_string()),
        };
        let get = |name: &str| found.get(name).map_or("", String::as_str);
        Ok(match Verdict::of(get("origRespCode")) {
            Verdict::Succeeded => BarcodeResult::Paid {
                bizpay_order_id: get("queryId").to_owned(),
                buyer: None,
                money: minor_money(found.get("txnAmt"), found.get("currencyCode")),
            },
            Verdict::Undecided => BarcodeResult::Undecided {
                reason: format!("origRespCode {}", get("origRespCode")),
            },
            Verdict::Failed => BarcodeResult::Declined {
                reason: format!("{} {}", get("origRespCode"), get("origRespMsg"))
                    .trim()
                    .to_owned(),
            },
        })
    }

    /// The void `31`/`00` of the consume (its `queryId` asked for first when not known): a
    /// consume UnionPay never received needs none. `03`/`04`/`05` or no answer: ask again.
    async fn undo(&self, payment: &UndoPayment) -> Result<UndoResult, ChannelError> {
        let again = |reason: String| Ok(UndoResult::Again { reason });
        let original = match &payment.bizpay_order_id {
            Some(id) => id.clone(),
            None => match self
                .query_trans(payment.attempt_id.as_str(), payment.started_at)
                .await
            {
                Ok(Some(found)) => found.get("queryId").cloned().unwrap_or_default(),
                Ok(None) => return Ok(UndoResult::Undone),
                Err(e) => return again(e.to_string()),
            },
        };
        let void_id = format!("{}V", payment.attempt_id);
        let mut f = self.base(("31", "00", QR_BIZ_TYPE), &void_id, payment.at);
        let fields = [
            ("channelType", "08".to_owned()),
            ("origQryId", original),
            ("txnAmt", payment.money.amount.minor().to_string()),
            (
                "currencyCode",
                currency_code(payment.money.currency).to_owned(),
            ),
            ("backUrl", self.config.notify_url.to_string()),
        ];
        f.extend(fields.into_iter().map(|(k, v)| (k.to_owned(), v)));
        let answer = match self.call("backTransReq.do", f).await {
            Ok(answer) => answer,
            Err(ChannelError::Upstream { message, .. }) => return again(message),
            Err(e) => return Err(e),
        };
        let code = answer.get("respCode").map_or("", String::as_str);
        Ok(match Verdict::of(code) {
            Verdict::Succeeded => UndoResult::Undone,
            Verdict::Undecided => UndoResult::Again {
                reason: format!("respCode {code}"),
            },
            Verdict::Failed => UndoResult::Refused {
                reason: format!(
                    "{code} {}",
                    answer.get("respMsg").map_or("", String::as_str)
                )
                .trim()
                .to_owned(),
            },
        })
    }

    /// `backTransReq.do`, `txnType=04`: accepted now, the result by notification.
    async fn refund(&self, refund: &RefundPayment) -> Result<RefundResult, ChannelError> {
        let original = refund
            .bizpay_order_id
            .as_deref()
            .ok_or_else(|| ChannelError::upstream("refund: the payment has no UnionPay queryId"))?;
        let biz_type = if matches!(refund.flow, Flow::MerchantQr | Flow::Barcode) {
            QR_BIZ_TYPE
        } else {
            ONLINE_BIZ_TYPE
        };
        let mut f = self.base(("04", "00", biz_type), refund.refund_id.as_str(), refund.at);
        let fields = [
            ("channelType", "07".to_owned()),
            ("origQryId", original.to_owned()),
            ("txnAmt", refund.money.amount.minor().to_string()),
            (
                "currencyCode",
                currency_code(refund.money.currency).to_owned(),
            ),
            ("backUrl", self.config.notify_url.to_string()),
        ];
        f.extend(fields.into_iter().map(|(k, v)| (k.to_owned(), v)));
        let answer = self.call("backTransReq.do", f).await?;
        let code = answer.get("respCode").map_or("", String::as_str);
        // Accepted (or not refused yet): decided by notification. An answer without a
        // code accepts nothing.
        if !code.is_empty() && Verdict::of(code) != Verdict::Failed {
            Ok(RefundResult::Pending)
        } else {
            Ok(RefundResult::Refused {
                reason: format!(
                    "{code} {}",
                    answer.get("respMsg").map_or("", String::as_str)
                )
                .trim()
                .to_owned(),
            })
        }
    }
}

/// The simulated UnionPay's merchant, signing certificate ids and keys (sandbox mode and
/// tests; the RSA pairs are the public test keys of `testkeys/`).
pub mod testkeys {
    pub const MER_ID: &str = "777290058110048";
    /// Our (the merchant's) certificate serial.
    pub const CERT_ID: &str = "69629715588";
    /// The simulated UnionPay's certificate serial.
    pub const WALLET_CERT_ID: &str = "69042905377";
}

/// A connector and the simulated UnionPay it talks to, both on the gateway
/// (`/sim/unionpay/…`, results to `/notify/unionpay`), with the public test keys.
pub fn sandbox(
    urls: impl Into<crate::SandboxUrls>,
    time_scale: f64,
) -> Result<(UnionPayConfig, simulator::UnionPaySimConfig), ChannelError> {
    use crate::alipay::testkeys as keys;
    let urls = urls.into();
    let config = UnionPayConfig {
        gateway_url: urls.public("sim/unionpay/")?,
        back_gateway_url: Some(urls.internal("sim/unionpay/")?),
        file_url: urls.internal("sim/unionpay/files")?,
        mer_id: testkeys::MER_ID.into(),
        cert_id: testkeys::CERT_ID.into(),
        signing_key: Box::new(private_key_pem(keys::MERCHANT_PRIVATE)?),
        verifying_key: Box::new(public_key_pem(keys::WALLET_PUBLIC)?),
        notify_url: urls.internal("notify/unionpay")?,
        test_mode: true,
    };
    let sim = simulator::UnionPaySimConfig {
        mer_id: testkeys::MER_ID.into(),
        merchant_public: public_key_pem(keys::MERCHANT_PUBLIC)?,
        wallet_private: private_key_pem(keys::WALLET_PRIVATE)?,
        wallet_cert_id: testkeys::WALLET_CERT_ID.into(),
        time_scale,
        base_url: urls.public("sim/unionpay/")?,
        notify_targets: crate::simkit::NotifyTargets::Under(urls.internal.clone()),
    };
    Ok((config, sim))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_keep_raw_values_and_braced_parts_whole() {
        let f =
            parse_answer("respCode=00&signature=ab+c/d==&reqReserved={a=1&b=2}&respMsg=success");
        assert_eq!(f["signature"], "ab+c/d==");
        assert_eq!(f["reqReserved"], "{a=1&b=2}");
        assert_eq!(f["respMsg"], "success");
        assert_eq!(parse_answer(&write_answer(&f)), f);
    }

    #[test]
    fn response_codes_read_as_verdicts() {
        assert_eq!(Verdict::of("00"), Verdict::Succeeded);
        assert_eq!(Verdict::of("A6"), Verdict::Succeeded);
        for undecided in ["", "03", "04", "05"] {
            assert_eq!(Verdict::of(undecided), Verdict::Undecided, "{undecided:?}");
        }
        assert_eq!(Verdict::of("01"), Verdict::Failed);
    }

    #[test]
    fn currencies_are_iso_numeric() {
        assert_eq!(currency_code(Currency::Cad), "124");
        assert_eq!(currency_from_code("840"), Some(Currency::Usd));
        assert_eq!(currency_from_code("978"), None);
        let m = Money::new(Amount::from_minor(1234).unwrap(), Currency::Cad);
        assert!(amount_matches("1234", "124", m));
        assert!(!amount_matches("1234", "156", m));
        assert!(!amount_matches("12.34", "124", m));
    }

    #[test]
    fn notices_are_payments_or_refunds() {
        let mut f = Fields::new();
        f.insert("txnType".into(), "31".into());
        assert_eq!(Notice::read(&f), Err(NoticeError::UnknownType("31".into())));
        for (k, v) in [
            ("txnType", "04"),
            ("orderId", "REF1"),
            ("origQryId", "Q1"),
            ("txnAmt", "100"),
            ("currencyCode", "124"),
        ] {
            f.insert(k.into(), v.into());
        }
        assert_eq!(Notice::read(&f), Err(NoticeError::Missing("respCode")));
        f.insert("respCode".into(), "00".into());
        assert_eq!(
            Notice::read(&f),
            Ok(Notice::Refund {
                order_id: "REF1".into(),
                orig_query_id: "Q1".into(),
                txn_amt: "100".into(),
                currency_code: "124".into(),
                resp_code: "00".into()
            })
        );
        f.insert("txnType".into(), "01".into());
        assert_eq!(Notice::read(&f), Err(NoticeError::Missing("queryId")));
    }
}
