//! The REST API v1 client: token handling plus one method per endpoint.

use ottgate_api::rest::{
    Envelope, ErrorResult, EventsResult, InAppPayRequest, InAppPayResult, LocalCardPaymentRequest,
    LocalCardPaymentResult, PayRequest, PayResult, PaymentStatusResult, RedeliverResult,
    RefundRequest, RefundResult, ReverseRequest, ReverseResult, SecurePayResult, SettlementsResult,
    StatusQueryByReferenceRequest, StatusQueryRequest, TokenRequest, TokenResult,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use url::Url;

use crate::ClientError;

/// Tokens are refreshed this long before they expire.
const REFRESH_MARGIN_MS: i64 = 60_000;

/// A merchant's REST client. Tokens are fetched on first use, cached, refreshed a minute
/// before they expire, and refreshed once more if the gateway rejects one anyway.
pub struct RestClient {
    http: reqwest::Client,
    base: Url,
    app_id: String,
    app_key: String,
    /// Shared by the clients [`RestClient::idempotent`] makes.
    token: Arc<Mutex<Option<TokenResult>>>,
    /// Sent as `Idempotency-Key` on every POST.
    idempotency_key: Option<String>,
}

impl fmt::Debug for RestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestClient")
            .field("base", &self.base.as_str())
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl RestClient {
    /// A client of the REST API at `base_url` (the gateway root), with the merchant's
    /// `appId` and `appKey`; it fetches a token when first needed and renews it before it
    /// runs out.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), ottgate_client::ClientError> {
    /// let rest = ottgate_client::RestClient::new("http://127.0.0.1:8080", "ON00004652", "6d6595fd305a33f4afc5aa396fe88b8c")?;
    /// let token = rest.token().await?;
    /// # let _ = token; Ok(()) }
    /// ```
    pub fn new(base_url: &str, app_id: &str, app_key: &str) -> Result<Self, ClientError> {
        let (http, base) = crate::connection(base_url)?;
        Ok(Self {
            http,
            base,
            app_id: app_id.to_owned(),
            app_key: app_key.to_owned(),
            token: Arc::new(Mutex::new(None)),
            idempotency_key: None,
        })
    }

    /// This client sending `Idempotency-Key: key` on its calls (sharing its token): a pay
    /// or refund call sent again with the same key — after a time-out, a lost answer — is
    /// answered as the first time instead of being made twice. Use one key per intended
    /// payment or refund.
    ///
    /// ```no_run
    /// # async fn demo(rest: &ottgate_client::RestClient) -> Result<(), ottgate_client::ClientError> {
    /// // Retried as often as the network needs: refunded once.
    /// let refund = rest.idempotent("order-42-refund-1").refund("17953187906264134", "500").await?;
    /// println!("{} {}", refund.refund_id, refund.refund_status);
    /// # Ok(()) }
    /// ```
    pub fn idempotent(&self, key: &str) -> RestClient {
        RestClient {
            http: self.http.clone(),
            base: self.base.clone(),
            app_id: self.app_id.clone(),
            app_key: self.app_key.clone(),
            token: Arc::clone(&self.token),
            idempotency_key: Some(key.to_owned()),
        }
    }

    fn url(&self, path: &str) -> Result<Url, ClientError> {
        self.base
            .join(path)
            .map_err(|e| ClientError::Config(e.to_string()))
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        bearer: Option<&str>,
    ) -> Result<T, ClientError> {
        let mut request = self.http.post(self.url(path)?).json(body);
        if let Some(key) = &self.idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        self.send(request, bearer).await
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        bearer: Option<&str>,
    ) -> Result<T, ClientError> {
        self.send(self.http.get(self.url(path)?).query(query), bearer)
            .await
    }

    /// Sends `request` and reads the REST envelope's result (or its error).
    async fn send<T: DeserializeOwned>(
        &self,
        mut request: reqwest::RequestBuilder,
        bearer: Option<&str>,
    ) -> Result<T, ClientError> {
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await?;
        let envelope: Envelope<serde_json::Value> =
            serde_json::from_slice(&bytes).map_err(|_| {
                ClientError::Malformed(format!(
                    "HTTP {status} with a body that is not a REST envelope"
                ))
            })?;
        if envelope.status != "SUCCESS" {
            let error: ErrorResult = serde_json::from_value(envelope.result)
                .map_err(|e| ClientError::Malformed(e.to_string()))?;
            return Err(ClientError::Rest {
                http_status: status,
                code: error.code,
                message: error.message,
            });
        }
        serde_json::from_value(envelope.result).map_err(|e| ClientError::Malformed(e.to_string()))
    }

    /// `POST /api/v1/auth/token`, always fetching a fresh token (and caching it).
    ///
    /// ```no_run
    /// # async fn demo(rest: &ottgate_client::RestClient) -> Result<(), ottgate_client::ClientError> {
    /// let token = rest.fetch_token().await?;
    /// println!("valid until {}", token.expired);
    /// # Ok(()) }
    /// ```
    pub async fn fetch_token(&self) -> Result<TokenResult, ClientError> {
        let request = TokenRequest {
            app_id: self.app_id.clone(),
            app_key: self.app_key.clone(),
        };
        let token: TokenResult = self.post("api/v1/auth/token", &request, None).await?;
        *self
            .token
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(token.clone());
        Ok(token)
    }

    /// A token valid for at least another minute, from the cache when possible.
    pub async fn token(&self) -> Result<String, ClientError> {
        let cached = self
            .token
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        match cached {
            Some(t) if t.expired - REFRESH_MARGIN_MS > now_ms() => Ok(t.token),
            _ => Ok(self.fetch_token().await?.token),
        }
    }

    /// Runs `request` with the cached token; if the gateway rejects the token anyway
    /// (expired early by clock skew, or its secret rotated), once more with a fresh one.
    async fn authed<T, F, Fut>(&self, request: F) -> Result<T, ClientError>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<T, ClientError>>,
    {
        match request(self.token().await?).await {
            Err(ClientError::Rest {
                http_status: 401, ..
            }) => request(self.fetch_token().await?.token).await,
            other => other,
        }
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.authed(|token| async move { self.post(path, body, Some(&token)).await })
            .await
    }

    /// `GET /api/v1/events`: the merchant's callbacks, newest first — since `since` (unix
    /// seconds; default the last 30 days), at most `limit` (default 50, at most 100).
    ///
    /// ```no_run
    /// # async fn demo(rest: &ottgate_client::RestClient) -> Result<(), ottgate_client::ClientError> {
    /// // The callbacks of the last day, at most 20.
    /// let since = 1_764_900_000;
    /// let events = rest.events(Some(since), Some(20)).await?;
    /// let _ = events;
    /// # Ok(()) }
    /// ```
    pub async fn events(
        &self,
        since: Option<i64>,
        limit: Option<u32>,
    ) -> Result<EventsResult, ClientError> {
        self.events_page(since, limit, None).await
    }

    /// [`Self::events`] from `cursor` on: the `next_cursor` of the page before (a page
    /// answers one when it is full).
    ///
    /// ```no_run
    /// # async fn demo(rest: &ottgate_client::RestClient) -> Result<(), ottgate_client::ClientError> {
    /// let mut cursor = None;
    /// loop {
    ///     let page = rest.events_page(None, Some(100), cursor.as_deref()).await?;
    ///     for event in &page.events {
    ///         println!("{} {} {:?}", event.id, event.state, event.last_error);
    ///     }
    ///     match page.next_cursor {
    ///         Some(next) => cursor = Some(next),
    ///         None => break,
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn events_page(
        &self,
        since: Option<i64>,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<EventsResult, ClientError> {
        let mut query = Vec::new();
        if let Some(cursor) = cursor {
            query.push(("cursor", cursor.to_owned()));
        }
        if let Some(since) = since {
            query.push(("since", since.to_string()));
        }
        if let Some(limit) = limit {
            query.push(("limit", limit.to_string()));
        }
        let query = &query;
        self.authed(|token| async move { self.get("api/v1/events", query, Some(&token)).await })
            .await
    }

    /// `GET /api/v1/settlements`: what the merchant is owed for a wallet day (`yyyy-MM-dd`,
    /// Beijing): one statement per currency — gross, refunds, fees, net, and the payments
    /// and refunds they add up from, in cents.
    ///
    /// ```no_run
    /// # async fn demo(rest: &ottgate_client::RestClient) -> Result<(), ottgate_client::ClientError> {
    /// let day = rest.settlements("2026-12-04").await?;
    /// for s in &day.statements {
    ///     println!("{}: net {} ({} payments, fees {})", s.currency, s.net, s.payments, s.fees);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn settlements(&self, date: &str) -> Result<SettlementsResult, ClientError> {
        let query = &[("date", date.to_owned())];
        self.authed(
            |token| async move { self.get("api/v1/settlements", query, Some(&token)).await },
        )
        .await
    }

    /// `POST /api/v1/events/{id}/redeliver`: sends the callback `id` again.
    ///
    /// ```no_run
    /// # async fn demo(rest: &ottgate_client::RestClient) -> Result<(), ottgate_client::ClientError> {
    /// rest.redeliver("5d1c0f3a9e2b4c7d8e6f1a2b3c4d5e6f").await?;
    /// # Ok(()) }
    /// ```
    pub async fn redeliver(&self, id: &str) -> Result<RedeliverResult, ClientError> {
        let path = format!("api/v1/events/{id}/redeliver");
        let path = &path;
        self.authed(
            |token| async move { self.post(path, &serde_json::json!({}), Some(&token)).await },
        )
        .await
    }

    /// `POST /api/v1/pay/alipay/wap-pay`: Alipay in a mobile browser.
    ///
    /// ```no_run
    /// # async fn demo(rest: &ottgate_client::RestClient) -> Result<(), ottgate_client::ClientError> {
    /// use ottgate_client::PayRequest;
    /// let paid = rest.idempotent("SHOP-1002").wap_pay(&PayRequest {
    ///     amount: "1234".into(),
    ///     callback_url: "https://shop.example/ottpay/notify".into(),
    ///     return_url: "https://shop.example/ottpay/return".into(),
    ///     remark: Some("2 x tea".into()),
    ///     reference: Some("SHOP-1002".into()),
    /// }).await?;
    /// println!("send the phone to {}; paymentId {}", paid.pay_info, paid.payment_id);
    /// # Ok(()) }
    /// ```
    pub async fn wap_pay(&self, request: &PayRequest) -> Result<PayResult, ClientError> {
        self.call("api/v1/pay/alipay/wap-pay", request).await
    }

    /// `POST /api/v1/pay/alipay/web-pay`: Alipay in a PC browser.
    ///
    /// ```no_run
    /// # async fn demo(rest: &ottgate_client::RestClient) -> Result<(), ottgate_client::ClientError> {
    /// use ottgate_client::PayRequest;
    /// let order = PayRequest {
    ///     amount: "1234".into(),
    ///     callback_url: "https://shop.example/ottpay/notify".into(),
    ///     return_url: "https://shop.example/ottpay/return".into(),
    ///     remark: None,
    ///     reference: Some("SHOP-1003".into()),
    /// };
    /// let paid = rest.web_pay(&order).await?;
    /// println!("send the browser to {}", paid.pay_info);
    /// # Ok(()) }
    /// ```
    pub async fn web_pay(&self, request: &PayRequest) -> Result<PayResult, ClientError> {
        self.call("api/v1/pay/alipay/web-pay", request).await
    }

    /// `POST /api/v1/pay/weixin/active-pay`: a WeChat Pay QR code for the merchant to show;
    /// `payInfo` is the code's text. `return_url` is not used (leave it empty).
    ///
    /// ```no_run
    /// # async fn demo(rest: &ottgate_client::RestClient) -> Result<(), ottgate_client::ClientError> {
    /// use ottgate_client::PayRequest;
    /// let order = PayRequest {
    ///     amount: "1234".into(),
    ///     callback_url: "https://shop.example/ottpay/notify".into(),
    ///     return_url: "https://shop.example/ottpay/return".into(),
    ///     remark: None,
    ///     reference: Some("SHOP-1003".into()),
    /// };
    /// let qr = rest.weixin_active_pay(&order).await?;
    /// println!("show a QR code of {}", qr.pay_info);
    /// # Ok(()) }
    /// ```
    pub async fn weixin_active_pay(&self, request: &PayRequest) -> Result<PayResult, ClientError> {
        self.call("api/v1/pay/weixin/active-pay", request).await
    }

    /// `POST /api/v1/pay/weixin/h5-pay`: WeChat Pay in a mobile browser outside WeChat.
    ///
    /// ```no_run
    /// # async fn demo(rest: &ottgate_client::RestClient) -> Result<(), ottgate_client::ClientError> {
    /// use ottgate_client::PayRequest;
    /// let order = PayRequest {
    ///     amount: "1234".into(),
    ///     callback_url: "https://shop.example/ottpay/notify".into(),
    ///     return_url: "https://shop.example/ottpay/return".into(),
    ///     remark: None,
    ///     reference: Some("SHOP-1003".into()),
    /// };
    /// let paid = rest.weixin_h5_pay(&order).await?;
    /// println!("send the phone to {}", paid.pay_info);
    /// # Ok(()) }
    /// ```
    pub async fn weixin_h5_pay(&self, request: &PayRequest) -> Result<PayResult, ClientError> {
        self.call("api/v1/pay/weixin/h5-pay", request).await
    }

    /// `POST /api/v1/pay/weixin/public-pay`: WeChat Pay inside WeChat's own browser;
    /// `payInfo` is the page to open there.
    ///
    /// ```no_run
    /// # async fn demo(rest: &ottgate_client::RestClient) -> Result<(), ottgate_client::ClientError> {
    /// use ottgate_client::PayRequest;
    /// let order = PayRequest {
    ///     amount: "1234".into(),
    ///     callback_url: "https://shop.example/ottpay/notify".into(),
    ///     return_url: "https://shop.example/ottpay/return".into(),
    ///     remark: None,
    ///     reference: Some("SHOP-1003".into()),
    /// };
    /// let paid = rest.weixin_public_pay(&order).await?;
    /// println!("open in WeChat: {}", paid.pay_info);
    /// # Ok(()) }
    /// ```
    pub async fn weixin_public_pay(&self, request: &PayRequest) -> Result<PayResult, ClientError> {
        self.call("api/v1/pay/weixin/public-pay", request).await
    }

    /// `POST /api/v1/pay/alipay/inapp-pay`: Alipay in the merchant's app; `paySign` is what
    /// the app hands Alipay's app SDK.
    ///
    /// ```no_run
    /// # async fn demo(rest: &ottgate_client::RestClient) -> Result<(), ottgate_client::ClientError> {
    /// use ottgate_client::PayRequest;
    /// let order = PayRequest {
    ///     amount: "1234".into(),
    ///     callback_url: "https://shop.example/ottpay/notify".into(),
    ///     return_url: "https://shop.example/ottpay/return".into(),
    ///     remark: None,
    ///     reference: Some("SHOP-1003".into()),
    /// };
    /// use ottgate_client::InAppPayRequest;
    /// let app = rest.alipay_in_app_pay(&InAppPayRequest { pay: order, user_id: None, sale_number: None }).await?;
    /// println!("hand {} to Alipay's app SDK", app.pay_sign);
    /// # Ok(()) }
    /// ```
    pub async fn alipay_in_app_pay(
        &self,
        request: &InAppPayRequest,
    ) -> Result<InAppPayResult, ClientError> {
        self.call("api/v1/pay/alipay/inapp-pay", request).await
    }

    /// `POST /api/v1/pay/unionpay/inapp-secure-pay`: UnionPay in the merchant's app; `tn`
    /// is what the app hands UnionPay's app SDK. `return_url` is not used (leave it empty).
    ///
    /// ```no_run
    /// # async fn demo(rest: &ottgate_client::RestClient) -> Result<(), ottgate_client::ClientError> {
    /// use ottgate_client::PayRequest;
    /// let order = PayRequest {
    ///     amount: "1234".into(),
    ///     callback_url: "https://shop.example/ottpay/notify".into(),
    ///     return_url: "https://shop.example/ottpay/return".into(),
    ///     remark: None,
    ///     reference: Some("SHOP-1003".into()),
    /// };
    /// let app = rest.unionpay_in_app_pay(&order).await?;
    /// println!("hand tn {} to UnionPay's app SDK", app.tn);
    /// # Ok(()) }
    /// ```
    pub async fn unionpay_in_app_pay(
        &self,
        request: &PayRequest,
    ) -> Result<SecurePayResult, ClientError> {
        self.call("api/v1/pay/unionpay/inapp-secure-pay", request)
            .await
    }

    /// `POST /api/v1/payment/status-query`
    ///
    /// ```no_run
    /// # async fn demo(rest: &ottgate_client::RestClient) -> Result<(), ottgate_client::ClientError> {
    /// let payment = rest.status_query("17953187906264134").await?;
    /// println!("{} ({})", payment.payment_status, payment.state_code);
    /// # Ok(()) }
    /// ```
    pub async fn status_query(&self, payment_id: &str) -> Result<PaymentStatusResult, ClientError> {
        self.call(
            "api/v1/payment/status-query",
            &StatusQueryRequest {
                payment_id: payment_id.to_owned(),
            },
        )
        .await
    }

    /// `POST /api/v1/payment/status-query-by-reference`
    ///
    /// ```no_run
    /// # async fn demo(rest: &ottgate_client::RestClient) -> Result<(), ottgate_client::ClientError> {
    /// let payment = rest.status_query_by_reference("SHOP-1002").await?;
    /// println!("{}", payment.payment_status);
    /// # Ok(()) }
    /// ```
    pub async fn status_query_by_reference(
        &self,
        reference: &str,
    ) -> Result<PaymentStatusResult, ClientError> {
        let request = StatusQueryByReferenceRequest {
            reference: reference.to_owned(),
        };
        self.call("api/v1/payment/status-query-by-reference", &request)
            .await
    }

    /// `POST /api/v1/pay/refund`
    ///
    /// ```no_run
    /// # async fn demo(rest: &ottgate_client::RestClient) -> Result<(), ottgate_client::ClientError> {
    /// let refund = rest.idempotent("SHOP-1002-R1").refund("17953187906264134", "500").await?;
    /// println!("{} {}", refund.refund_id, refund.refund_status);
    /// # Ok(()) }
    /// ```
    pub async fn refund(
        &self,
        ori_payment_id: &str,
        refund_amount: &str,
    ) -> Result<RefundResult, ClientError> {
        self.refund_at("api/v1/pay/refund", ori_payment_id, refund_amount)
            .await
    }

    /// A refund (`oriPaymentId`, `refundAmount`) posted to `path`.
    async fn refund_at(
        &self,
        path: &str,
        ori_payment_id: &str,
        refund_amount: &str,
    ) -> Result<RefundResult, ClientError> {
        let request = RefundRequest {
            ori_payment_id: ori_payment_id.to_owned(),
            refund_amount: refund_amount.to_owned(),
        };
        self.call(path, &request).await
    }

    /// `POST /api/v1/payment/local-card/payment3dsV2`: a card payment with the card in the
    /// request (in the sandbox, a published test card). `authorised`, or
    /// `THREEDS_AUTH_CHALLENGE` with `escape3DSChallengeForm` to put in the buyer's browser.
    pub async fn local_card_payment(
        &self,
        request: &LocalCardPaymentRequest,
    ) -> Result<LocalCardPaymentResult, ClientError> {
        self.call("api/v1/payment/local-card/payment3dsV2", request)
            .await
    }

    /// `POST /api/v1/payment/local-card/refund`: refunds a captured card payment.
    ///
    /// ```no_run
    /// # async fn demo(rest: &ottgate_client::RestClient) -> Result<(), ottgate_client::ClientError> {
    /// let refund = rest.local_card_refund("17953187906264134", "500").await?;
    /// println!("{}", refund.refund_status);
    /// # Ok(()) }
    /// ```
    pub async fn local_card_refund(
        &self,
        ori_payment_id: &str,
        refund_amount: &str,
    ) -> Result<RefundResult, ClientError> {
        self.refund_at(
            "api/v1/payment/local-card/refund",
            ori_payment_id,
            refund_amount,
        )
        .await
    }

    /// `POST /api/v1/payment/local-card/reverse`: voids a card payment not captured yet.
    ///
    /// ```no_run
    /// # async fn demo(rest: &ottgate_client::RestClient) -> Result<(), ottgate_client::ClientError> {
    /// let voided = rest.local_card_reverse("17953187906264134").await?;
    /// println!("{}", voided.payment_status);
    /// # Ok(()) }
    /// ```
    pub async fn local_card_reverse(&self, payment_id: &str) -> Result<ReverseResult, ClientError> {
        let request = ReverseRequest {
            payment_id: payment_id.to_owned(),
        };
        self.call("api/v1/payment/local-card/reverse", &request)
            .await
    }
}
