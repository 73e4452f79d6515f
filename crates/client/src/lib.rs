#![deny(missing_docs)]
//! A merchant's client for the OTT Pay envelope API: typed calls, plus verification of the
//! callbacks and browser returns a merchant receives.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ottgate_client::ClientError> {
//! use ottgate_client::{Client, SignKey};
//! let client = Client::new("http://127.0.0.1:8080", "ON00004652", SignKey::new("6698851A525C9433").unwrap())?;
//! let order = client.prepay_query("prepay20220727132626764").await?;
//! println!("{}", order.status);
//! # Ok(()) }
//! ```

mod credentials;
mod rest;
mod signature;
mod time;

pub use credentials::MerchantCredentials;
pub use ottgate_api::direct::{
    ActivePayRequest, ActivePayResponse, ExRateQueryRequest, ExRateQueryResponse, H5PayRequest,
    H5PayResponse, MiniProgramPayInfo, MiniProgramPayRequest, MiniProgramPayResponse,
    PassivePayRequest, PassivePayResponse,
};
pub use ottgate_api::payment::{
    RefundRequest, RefundResponse, StatusQueryRequest, StatusQueryResponse,
};
pub use ottgate_api::prepay::{
    CallbackData, PaymentAttempt, PrepayInitRequest, PrepayInitResponse, PrepayQueryRequest,
    PrepayQueryResponse,
};
pub use ottgate_api::redirect::{H5LinkReturn, RedirectParams, SignedReturn};
pub use ottgate_api::rest::{
    EventItem, EventsResult, InAppPayRequest, InAppPayResult, LocalCardPaymentRequest,
    LocalCardPaymentResult, PayRequest, PayResult, PaymentStatusResult, RedeliverResult,
    RefundResult, ReverseResult, SecurePayResult, SettlementLine, SettlementStatement,
    SettlementsResult, TokenResult,
};
pub use ottgate_api::{EnvelopeRequest, EnvelopeResponse, RspCode};
pub use ottgate_envelope::{Fields, OpenError, Sealed, SignKey, seal, seal_in_window};
pub use rest::RestClient;
pub use signature::{SignatureError, verify_signature_header};
pub use time::parse_finish_time;

use ottgate_api::prepay::{from_fields, to_fields};
use ottgate_envelope::open;
use std::time::Duration;
use url::Url;

/// Why a call or a verification failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The client cannot be made as given (a base URL that is not one, a bad key).
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// The gateway could not be reached, or its answer not read (connection, time-out).
    #[error("transport: {0}")]
    Transport(#[from] reqwest::Error),
    /// The gateway answered with a non-success `rsp_code`.
    #[error("{rsp_code}: {rsp_msg}")]
    Protocol {
        /// Appendix B's code, e.g. `PARAM_INVALID`.
        rsp_code: String,
        /// The gateway's words, naming the field at fault.
        rsp_msg: String,
    },
    /// A sealed reply or callback could not be opened (wrong key, tampering).
    #[error("cannot open sealed data: {0}")]
    Envelope(#[from] OpenError),
    /// The REST API answered `{"status":"ERROR"}`.
    #[error("{code}: {message}")]
    Rest {
        /// The HTTP status of the answer.
        http_status: u16,
        /// The REST error code, e.g. 10005 (a field missing or malformed).
        code: u32,
        /// The gateway's words.
        message: String,
    },
    /// An answer that is not what the protocol says it must be.
    #[error("unexpected message: {0}")]
    Malformed(String),
    /// A callback or browser return that is not authentic for this merchant.
    #[error("verification failed: {0}")]
    Verification(String),
}

impl ClientError {
    /// The `rsp_code` of a protocol error.
    pub fn rsp_code(&self) -> Option<&str> {
        match self {
            ClientError::Protocol { rsp_code, .. } => Some(rsp_code),
            _ => None,
        }
    }

    /// The numeric code of a REST error.
    pub fn rest_code(&self) -> Option<u32> {
        match self {
            ClientError::Rest { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// An HTTP client and the gateway root (with a trailing `/`, so paths join under it).
pub(crate) fn connection(base_url: &str) -> Result<(reqwest::Client, Url), ClientError> {
    let mut base =
        Url::parse(base_url).map_err(|e| ClientError::Config(format!("base URL: {e}")))?;
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    // Longer than the gateway's longest hold — PASSIVEPAY waits up to `passive_pay_wait_ms`
    // (30 s by default) for the wallet before answering PROCESSING — so that answer reaches
    // the till instead of a timeout.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    Ok((http, base))
}

/// One request/response pair on the wire, both sealed and opened (for logging and demos).
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The request's data before it was sealed.
    pub request_fields: Fields,
    /// The envelope as sent.
    pub request: EnvelopeRequest,
    /// The HTTP status of the answer.
    pub http_status: u16,
    /// The envelope as answered.
    pub response: EnvelopeResponse,
    /// The opened response data, when the reply carried any.
    pub response_fields: Option<Fields>,
    /// The exact decrypted response text.
    pub response_plaintext: Option<String>,
}

/// A merchant's connection to an OTT Pay (or ottgate) gateway.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    merchant_id: String,
    sign_key: SignKey,
}

impl Client {
    /// `base_url` is the gateway root, e.g. `https://frontapi.ottpay.com` or
    /// `http://127.0.0.1:8080`.
    pub fn new(base_url: &str, merchant_id: &str, sign_key: SignKey) -> Result<Self, ClientError> {
        let (http, base) = connection(base_url)?;
        Ok(Self {
            http,
            base,
            merchant_id: merchant_id.to_owned(),
            sign_key,
        })
    }

    /// The merchant this client acts for.
    pub fn merchant_id(&self) -> &str {
        &self.merchant_id
    }

    /// `fields` sealed into the envelope of `action`/`version`.
    pub fn envelope(&self, action: &str, version: &str, fields: &Fields) -> EnvelopeRequest {
        let sealed = seal(fields, &self.sign_key);
        EnvelopeRequest {
            action: action.to_owned(),
            version: version.to_owned(),
            merchant_id: self.merchant_id.clone(),
            data: sealed.data,
            md5: sealed.md5.to_string(),
            terminal_no: None,
            operator_id: None,
        }
    }

    /// The `/processV2` URL this client posts to.
    pub fn endpoint(&self) -> Result<Url, ClientError> {
        self.base
            .join("processV2")
            .map_err(|e| ClientError::Config(e.to_string()))
    }

    /// Seals `fields`, posts them as `action`/`version` to `/processV2`, and opens the reply.
    /// A non-success `rsp_code` is returned in the [`Exchange`], not as an error.
    pub async fn exchange(
        &self,
        action: &str,
        version: &str,
        fields: Fields,
    ) -> Result<Exchange, ClientError> {
        self.exchange_at("processV2", action, version, fields).await
    }

    /// [`Self::exchange`] posted to another of the envelope's paths (`processV3`, where
    /// card integrations send `CC_PURCHASE`, or `process`).
    pub async fn exchange_at(
        &self,
        path: &str,
        action: &str,
        version: &str,
        fields: Fields,
    ) -> Result<Exchange, ClientError> {
        let request = self.envelope(action, version, &fields);
        let url = self
            .base
            .join(path)
            .map_err(|e| ClientError::Config(e.to_string()))?;
        let http = self
            .http
            .post(url)
            .json(&request)
            .header("Accept", "application/json")
            .send()
            .await?;
        let http_status = http.status().as_u16();
        let body = http.bytes().await?;
        let response: EnvelopeResponse = serde_json::from_slice(&body).map_err(|_| {
            ClientError::Malformed(format!(
                "HTTP {http_status} with a body that is not an envelope"
            ))
        })?;
        let (response_fields, response_plaintext) = match (&response.data, &response.md5) {
            (Some(data), Some(md5)) => {
                let opened = open(data, md5, &self.sign_key)?;
                (Some(opened.fields), Some(opened.plaintext))
            }
            _ => (None, None),
        };
        Ok(Exchange {
            request_fields: fields,
            request,
            http_status,
            response,
            response_fields,
            response_plaintext,
        })
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        action: &str,
        version: &str,
        fields: Fields,
    ) -> Result<T, ClientError> {
        let exchange = self.exchange(action, version, fields).await?;
        if exchange.response.rsp_code != RspCode::Success.as_str() {
            return Err(ClientError::Protocol {
                rsp_code: exchange.response.rsp_code,
                rsp_msg: exchange.response.rsp_msg,
            });
        }
        let fields = exchange
            .response_fields
            .ok_or_else(|| ClientError::Malformed("success without data".into()))?;
        from_fields(&fields).map_err(|e| ClientError::Malformed(e.to_string()))
    }

    /// PREPAY_INIT "2.0": creates a checkout order. `merchant_id` is filled in if absent.
    ///
    /// ```no_run
    /// # async fn demo(client: &ottgate_client::Client) -> Result<(), ottgate_client::ClientError> {
    /// use ottgate_client::PrepayInitRequest;
    /// let order = client.prepay_init(&PrepayInitRequest {
    ///     prepay_order_id: Some("SHOP-1000".into()),
    ///     amount: Some("1234".into()),
    ///     currency_type: Some("CAD".into()),
    ///     biz_type: Some("PREPAY".into()),
    ///     call_back_url: Some("https://shop.example/ottpay/notify".into()),
    ///     redirect_url: Some("https://shop.example/ottpay/return".into()),
    ///     duration: Some("900".into()),
    ///     sale_num: Some("1".into()),
    ///     operator_id: Some("5765745857".into()),
    ///     ..PrepayInitRequest::default()
    /// }).await?;
    /// println!("send the buyer to {}", order.payinfo);
    /// # Ok(()) }
    /// ```
    pub async fn prepay_init(
        &self,
        request: &PrepayInitRequest,
    ) -> Result<PrepayInitResponse, ClientError> {
        let mut request = request.clone();
        request
            .merchant_id
            .get_or_insert_with(|| self.merchant_id.clone());
        self.call("PREPAY_INIT", "2.0", to_fields(&request)).await
    }

    /// PREPAY_QUERY "2.0": the state of a checkout order.
    ///
    /// ```no_run
    /// # async fn demo(client: &ottgate_client::Client) -> Result<(), ottgate_client::ClientError> {
    /// let order = client.prepay_query("SHOP-1000").await?;
    /// if order.status == "SUCCESS" { /* paid: show it as paid */ }
    /// # Ok(()) }
    /// ```
    pub async fn prepay_query(
        &self,
        prepay_order_id: &str,
    ) -> Result<PrepayQueryResponse, ClientError> {
        let request = PrepayQueryRequest {
            merchant_id: Some(self.merchant_id.clone()),
            prepay_order_id: Some(prepay_order_id.to_owned()),
            order_id: None,
        };
        self.call("PREPAY_QUERY", "2.0", to_fields(&request)).await
    }

    /// STATUS_QUERY "1.0": the state of any payment (a callback's `order_id`, a checkout
    /// attempt, a REST `paymentId`), refunds included.
    ///
    /// ```no_run
    /// # async fn demo(client: &ottgate_client::Client) -> Result<(), ottgate_client::ClientError> {
    /// // The callback's order_id, a checkout attempt, or a REST paymentId.
    /// let payment = client.status_query("17953187906264134").await?;
    /// println!("{} {} refunded {}", payment.order_status, payment.amount, payment.refund_amount);
    /// # Ok(()) }
    /// ```
    pub async fn status_query(&self, order_id: &str) -> Result<StatusQueryResponse, ClientError> {
        let request = StatusQueryRequest {
            merchant_id: Some(self.merchant_id.clone()),
            order_id: Some(order_id.to_owned()),
        };
        self.call("STATUS_QUERY", "1.0", to_fields(&request)).await
    }

    /// REFUND "1.0": refunds `refund_amt` cents of payment `ori_order_id`. With a
    /// `refund_id` of the merchant's, repeating the call is safe.
    ///
    /// ```no_run
    /// # async fn demo(client: &ottgate_client::Client) -> Result<(), ottgate_client::ClientError> {
    /// // Your own refund id makes a retry after a lost answer safe.
    /// let refund = client.refund("17953187906264134", "500", Some("SHOP-1000-R1")).await?;
    /// println!("{} {}", refund.refund_id, refund.refund_status);
    /// # Ok(()) }
    /// ```
    pub async fn refund(
        &self,
        ori_order_id: &str,
        refund_amt: &str,
        refund_id: Option<&str>,
    ) -> Result<RefundResponse, ClientError> {
        let request = RefundRequest {
            merchant_id: Some(self.merchant_id.clone()),
            order_id: refund_id.map(str::to_owned),
            ori_order_id: Some(ori_order_id.to_owned()),
            refund_amt: Some(refund_amt.to_owned()),
        };
        self.call("REFUND", "1.0", to_fields(&request)).await
    }

    /// ACTIVEPAY "1.0": a QR code for the merchant to show (`code_url`), paid by the
    /// buyer's wallet app. `merchant_id` is filled in if absent.
    ///
    /// ```no_run
    /// # async fn demo(client: &ottgate_client::Client) -> Result<(), ottgate_client::ClientError> {
    /// use ottgate_client::ActivePayRequest;
    /// let qr = client.active_pay(&ActivePayRequest {
    ///     order_id: Some("TILL-7-0042".into()),
    ///     operator_id: Some("5765745857".into()),
    ///     amount: Some("1234".into()),
    ///     biz_type: Some("ALIPAY".into()),
    ///     call_back_url: Some("https://shop.example/ottpay/notify".into()),
    ///     ..ActivePayRequest::default()
    /// }).await?;
    /// println!("show a QR code of {}", qr.code_url);
    /// # Ok(()) }
    /// ```
    pub async fn active_pay(
        &self,
        request: &ActivePayRequest,
    ) -> Result<ActivePayResponse, ClientError> {
        let mut request = request.clone();
        request
            .merchant_id
            .get_or_insert_with(|| self.merchant_id.clone());
        self.call("ACTIVEPAY", "1.0", to_fields(&request)).await
    }

    /// H5PAY "2.0": WeChat Pay in the buyer's phone browser (send it to `payinfo`).
    /// `merchant_id` is filled in if absent.
    ///
    /// ```no_run
    /// # async fn demo(client: &ottgate_client::Client) -> Result<(), ottgate_client::ClientError> {
    /// use ottgate_client::H5PayRequest;
    /// let h5 = client.h5_pay(&H5PayRequest {
    ///     order_id: Some("SHOP-1001".into()),
    ///     amount: Some("1234".into()),
    ///     currency_type: Some("CAD".into()),
    ///     biz_type: Some("WECHATPAY".into()),
    ///     operator_id: Some("5765745857".into()),
    ///     call_back_url: Some("https://shop.example/ottpay/notify".into()),
    ///     redirect_url: Some("https://shop.example/ottpay/return".into()),
    ///     ..H5PayRequest::default()
    /// }).await?;
    /// println!("send the phone to {}", h5.payinfo);
    /// # Ok(()) }
    /// ```
    pub async fn h5_pay(&self, request: &H5PayRequest) -> Result<H5PayResponse, ClientError> {
        let mut request = request.clone();
        request
            .merchant_id
            .get_or_insert_with(|| self.merchant_id.clone());
        self.call("H5PAY", "2.0", to_fields(&request)).await
    }

    /// MAPPPAY "1.0": WeChat Pay inside your mini-program for the buyer `open_id` names;
    /// hand `pay_info` to `wx.requestPayment` (`package_str` as `package`).
    ///
    /// ```no_run
    /// # async fn demo(client: &ottgate_client::Client) -> Result<(), ottgate_client::ClientError> {
    /// use ottgate_client::MiniProgramPayRequest;
    /// let pay = client.mini_program_pay(&MiniProgramPayRequest {
    ///     order_id: Some("MP-0042".into()),
    ///     operator_id: Some("5765745857".into()),
    ///     amount: "1234".into(),
    ///     biz_type: "WECHATPAY".into(),
    ///     app_id: "wx2421b1c4370ec43b".into(),
    ///     open_id: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o".into(),
    ///     call_back_url: "https://shop.example/ottpay/notify".into(),
    ///     ..MiniProgramPayRequest::default()
    /// }).await?;
    /// let _ = pay; // hand pay.pay_info to wx.requestPayment
    /// # Ok(()) }
    /// ```
    pub async fn mini_program_pay(
        &self,
        request: &MiniProgramPayRequest,
    ) -> Result<MiniProgramPayResponse, ClientError> {
        self.call("MAPPPAY", "1.0", to_fields(request)).await
    }

    /// PASSIVEPAY "1.0": charges the code the buyer's wallet shows at your till;
    /// `order_status` `success`, `failure` (with `reason`) or `PROCESSING` (ask
    /// [`Self::status_query`] again: the gateway follows the payment to its end).
    ///
    /// ```no_run
    /// # async fn demo(client: &ottgate_client::Client) -> Result<(), ottgate_client::ClientError> {
    /// use ottgate_client::PassivePayRequest;
    /// let charged = client.passive_pay(&PassivePayRequest {
    ///     operator_id: Some("5765745857".into()),
    ///     amount: "1234".into(),
    ///     auth_code: "134567890123456789".into(), // scanned from the buyer's wallet
    ///     terminal_no: Some("LANE-2".into()),
    ///     ..PassivePayRequest::default()
    /// }).await?;
    /// match charged.order_status.as_str() {
    ///     "success" => { /* paid */ }
    ///     "PROCESSING" => { /* ask status_query(&charged.order_id) again shortly */ }
    ///     _ => { /* declined: charged.reason */ }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn passive_pay(
        &self,
        request: &PassivePayRequest,
    ) -> Result<PassivePayResponse, ClientError> {
        self.call("PASSIVEPAY", "1.0", to_fields(request)).await
    }

    /// EX_RATE_QUERY "1.0": today's CNY rate of `fee_type` (ISO 4217), times 10^8.
    ///
    /// ```no_run
    /// # async fn demo(client: &ottgate_client::Client) -> Result<(), ottgate_client::ClientError> {
    /// let rate = client.exchange_rate("CAD").await?;
    /// println!("1 CAD = {} CNY × 10^-8", rate.rate);
    /// # Ok(()) }
    /// ```
    pub async fn exchange_rate(&self, fee_type: &str) -> Result<ExRateQueryResponse, ClientError> {
        let request = ExRateQueryRequest {
            merchant_id: Some(self.merchant_id.clone()),
            fee_type: Some(fee_type.to_owned()),
        };
        self.call("EX_RATE_QUERY", "1.0", to_fields(&request)).await
    }

    /// Opens and authenticates a callback body posted to the merchant's `call_back_url`:
    /// the md5 over the decrypted values must match and the merchant must be this one. Then
    /// check `order_status`, `amount` and `currency_type` against your own order, and
    /// answer `SUCCESS` (a callback comes again until acknowledged; fulfil once).
    ///
    /// ```
    /// use ottgate_client::{Client, Fields, SignKey, seal};
    /// let key = SignKey::new("6698851A525C9433").unwrap();
    /// let client = Client::new("http://127.0.0.1:8080", "ON00004652", key.clone()).unwrap();
    /// // What the gateway posts (here sealed by hand, as the gateway does).
    /// let data: Fields = serde_json::from_value(serde_json::json!({
    ///     "finish_time": "20261205120000", "order_id": "17953187906264134",
    ///     "merchant_id": "ON00004652", "order_status": "success", "amount": "1234",
    ///     "currency_type": "CAD", "tip": "0", "bizpay_order_id": "2026120522001486050384884379",
    ///     "convenience_fee": "0", "prepay_order_id": "SHOP-1000",
    ///     "notify_id": "5d1c0f3a9e2b4c7d8e6f1a2b3c4d5e6f",
    /// })).unwrap();
    /// let sealed = seal(&data, &key);
    /// let body = serde_json::json!({"rsp_code": "SUCCESS", "rsp_msg": "success",
    ///     "merchant_id": "ON00004652", "data": sealed.data, "md5": sealed.md5.as_str()});
    /// let callback = client.verify_callback(body.to_string().as_bytes()).unwrap();
    /// assert_eq!((callback.order_status.as_str(), callback.amount.as_str()), ("success", "1234"));
    ///
    /// // Sealed with another key: refused.
    /// let forged = seal(&data, &SignKey::new("0123456789ABCDEF").unwrap());
    /// let body = serde_json::json!({"rsp_code": "SUCCESS", "merchant_id": "ON00004652",
    ///     "data": forged.data, "md5": forged.md5.as_str()});
    /// assert!(client.verify_callback(body.to_string().as_bytes()).is_err());
    /// ```
    pub fn verify_callback(&self, body: &[u8]) -> Result<CallbackData, ClientError> {
        self.open_callback(body).map(|(data, _)| data)
    }

    /// Like [`verify_callback`](Self::verify_callback), also returning the exact plaintext.
    pub fn open_callback(&self, body: &[u8]) -> Result<(CallbackData, String), ClientError> {
        let envelope: EnvelopeResponse = serde_json::from_slice(body)
            .map_err(|_| ClientError::Malformed("callback body is not an envelope".into()))?;
        if envelope.rsp_code != RspCode::Success.as_str() {
            return Err(ClientError::Malformed(format!(
                "callback rsp_code {}",
                envelope.rsp_code
            )));
        }
        if envelope.merchant_id.as_deref() != Some(self.merchant_id.as_str()) {
            return Err(ClientError::Verification(
                "callback is for another merchant".into(),
            ));
        }
        let (Some(data), Some(md5)) = (&envelope.data, &envelope.md5) else {
            return Err(ClientError::Malformed("callback has no data".into()));
        };
        let opened = open(data, md5, &self.sign_key)?;
        let callback: CallbackData =
            from_fields(&opened.fields).map_err(|e| ClientError::Malformed(e.to_string()))?;
        if callback.merchant_id != self.merchant_id {
            return Err(ClientError::Verification(
                "callback data is for another merchant".into(),
            ));
        }
        Ok((callback, opened.plaintext))
    }

    /// Checks the query string of a browser return to the merchant's `redirect_url`
    /// (`total_fee`, `trade_no`, `out_trade_no`, `trade_status`, `sign`). A good sign says
    /// the gateway sent the buyer back with these values; still ask the gateway
    /// (`prepay_query`) before showing the order as paid, and fulfil only from the
    /// callback.
    ///
    /// ```
    /// use ottgate_client::{Client, RedirectParams, SignKey};
    /// let key = SignKey::new("6698851A525C9433").unwrap();
    /// let client = Client::new("http://127.0.0.1:8080", "ON00004652", key.clone()).unwrap();
    /// let returned = RedirectParams {
    ///     total_fee: "1234".into(),
    ///     trade_no: "17953187906264134".into(),
    ///     out_trade_no: "SHOP-1000".into(),
    ///     trade_status: "Trade_Finished".into(),
    /// };
    /// // The query string the buyer's browser arrives with.
    /// let query: String = url::form_urlencoded::Serializer::new(String::new())
    ///     .extend_pairs(returned.query_pairs(&key))
    ///     .finish();
    /// assert_eq!(client.verify_redirect(&query).unwrap().out_trade_no, "SHOP-1000");
    /// // The amount changed by the buyer: the sign no longer matches.
    /// let tampered = query.replace("total_fee=1234", "total_fee=1");
    /// assert!(client.verify_redirect(&tampered).is_err());
    /// ```
    pub fn verify_redirect(&self, query: &str) -> Result<RedirectParams, ClientError> {
        let query = query.strip_prefix('?').unwrap_or(query);
        let get = |name: &str| {
            url::form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
                .ok_or_else(|| ClientError::Verification(format!("redirect has no {name}")))
        };
        let params = RedirectParams {
            total_fee: get("total_fee")?,
            trade_no: get("trade_no")?,
            out_trade_no: get("out_trade_no")?,
            trade_status: get("trade_status")?,
        };
        let sign = get("sign")?;
        if !params.verify(&sign, &self.sign_key) {
            return Err(ClientError::Verification(
                "redirect sign does not match".into(),
            ));
        }
        Ok(params)
    }
}

/// The data object of a PREPAY_INIT request, for [`Client::exchange`].
pub fn prepay_fields(request: &PrepayInitRequest) -> Fields {
    to_fields(request)
}

/// The data object of a PREPAY_QUERY request, for [`Client::exchange`].
pub fn query_fields(merchant_id: &str, prepay_order_id: &str) -> Fields {
    to_fields(&PrepayQueryRequest {
        merchant_id: Some(merchant_id.to_owned()),
        prepay_order_id: Some(prepay_order_id.to_owned()),
        order_id: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn client() -> Client {
        Client::new(
            "http://127.0.0.1:1",
            "ON00004652",
            SignKey::new("A8B5FE540E38A5A9").unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn redirects_verify_only_with_the_right_sign() {
        let c = client();
        let p = RedirectParams {
            total_fee: "5".into(),
            trade_no: "1".into(),
            out_trade_no: "o-1".into(),
            trade_status: "Trade_Finished".into(),
        };
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(p.query_pairs(&SignKey::new("A8B5FE540E38A5A9").unwrap()))
            .finish();
        assert_eq!(c.verify_redirect(&format!("?{query}")).unwrap(), p);
        let forged = query.replace("total_fee=5", "total_fee=1");
        assert!(matches!(
            c.verify_redirect(&forged),
            Err(ClientError::Verification(_))
        ));
        assert!(matches!(
            c.verify_redirect("total_fee=5"),
            Err(ClientError::Verification(_))
        ));
    }

    #[test]
    fn callbacks_are_opened_and_checked_for_the_merchant() {
        let c = client();
        let key = SignKey::new("A8B5FE540E38A5A9").unwrap();
        let data = json!({"finish_time":"20230323012153","order_id":"1","merchant_id":"ON00004652","order_status":"success",
            "amount":"3","currency_type":"CAD","tip":"0","bizpay_order_id":"AL1","convenience_fee":"0","notify_id":"n1"});
        let fields = match data {
            serde_json::Value::Object(m) => m,
            _ => unreachable!(),
        };
        let body = serde_json::to_vec(&EnvelopeResponse::callback(
            "ON00004652",
            seal(&fields, &key),
        ))
        .unwrap();
        assert_eq!(c.verify_callback(&body).unwrap().amount, "3");
        let other = serde_json::to_vec(&EnvelopeResponse::callback(
            "ON00000001",
            seal(&fields, &key),
        ))
        .unwrap();
        assert!(matches!(
            c.verify_callback(&other),
            Err(ClientError::Verification(_))
        ));
        let wrong_key = SignKey::new("0000000000000000").unwrap();
        let forged = serde_json::to_vec(&EnvelopeResponse::callback(
            "ON00004652",
            seal(&fields, &wrong_key),
        ))
        .unwrap();
        assert!(matches!(
            c.verify_callback(&forged),
            Err(ClientError::Envelope(_))
        ));
    }
}
