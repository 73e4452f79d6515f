//! The REST API v1 client: token handling plus one method per endpoint.

use ottgate_api::rest::{
    Envelope, ErrorResult, EventsResult, InAppPayRequest, InAppPayResult, LocalCardPaymentRequest,
    LocalCardPaymentResult, PayRequest, PayResult, PaymentStatusResult, RedeliverResult,
    RefundRequest, RefundResult, ReverseRequest, ReverseResult, SecurePayResult,
    StatusQueryByReferenceRequest, StatusQueryRequest, TokenRequest, TokenResult,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::sync::Mutex;
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
    token: Mutex<Option<TokenResult>>,
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
    pub fn new(base_url: &str, app_id: &str, app_key: &str) -> Result<Self, ClientError> {
        let (http, base) = crate::connection(base_url)?;
        Ok(Self {
            http,
            base,
            app_id: app_id.to_owned(),
            app_key: app_key.to_owned(),
            token: Mutex::new(None),
        })
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
        self.send(self.http.post(self.url(path)?).json(body), bearer)
            .await
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
    pub async fn events(
        &self,
        since: Option<i64>,
        limit: Option<u32>,
    ) -> Result<EventsResult, ClientError> {
        let mut query = Vec::new();
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

    /// `POST /api/v1/events/{id}/redeliver`: sends the callback `id` again.
    pub async fn redeliver(&self, id: &str) -> Result<RedeliverResult, ClientError> {
        let path = format!("api/v1/events/{id}/redeliver");
        let path = &path;
        self.authed(
            |token| async move { self.post(path, &serde_json::json!({}), Some(&token)).await },
        )
        .await
    }

    /// `POST /api/v1/pay/alipay/wap-pay`: Alipay in a mobile browser.
    pub async fn wap_pay(&self, request: &PayRequest) -> Result<PayResult, ClientError> {
        self.call("api/v1/pay/alipay/wap-pay", request).await
    }

    /// `POST /api/v1/pay/alipay/web-pay`: Alipay in a PC browser.
    pub async fn web_pay(&self, request: &PayRequest) -> Result<PayResult, ClientError> {
        self.call("api/v1/pay/alipay/web-pay", request).await
    }

    /// `POST /api/v1/pay/weixin/active-pay`: a WeChat Pay QR code for the merchant to show;
    /// `payInfo` is the code's text. `return_url` is not used (leave it empty).
    pub async fn weixin_active_pay(&self, request: &PayRequest) -> Result<PayResult, ClientError> {
        self.call("api/v1/pay/weixin/active-pay", request).await
    }

    /// `POST /api/v1/pay/weixin/h5-pay`: WeChat Pay in a mobile browser outside WeChat.
    pub async fn weixin_h5_pay(&self, request: &PayRequest) -> Result<PayResult, ClientError> {
        self.call("api/v1/pay/weixin/h5-pay", request).await
    }

    /// `POST /api/v1/pay/weixin/public-pay`: WeChat Pay inside WeChat's own browser;
    /// `payInfo` is the page to open there.
    pub async fn weixin_public_pay(&self, request: &PayRequest) -> Result<PayResult, ClientError> {
        self.call("api/v1/pay/weixin/public-pay", request).await
    }

    /// `POST /api/v1/pay/alipay/inapp-pay`: Alipay in the merchant's app; `paySign` is what
    /// the app hands Alipay's app SDK.
    pub async fn alipay_in_app_pay(
        &self,
        request: &InAppPayRequest,
    ) -> Result<InAppPayResult, ClientError> {
        self.call("api/v1/pay/alipay/inapp-pay", request).await
    }

    /// `POST /api/v1/pay/unionpay/inapp-secure-pay`: UnionPay in the merchant's app; `tn`
    /// is what the app hands UnionPay's app SDK. `return_url` is not used (leave it empty).
    pub async fn unionpay_in_app_pay(
        &self,
        request: &PayRequest,
    ) -> Result<SecurePayResult, ClientError> {
        self.call("api/v1/pay/unionpay/inapp-secure-pay", request)
            .await
    }

    /// `POST /api/v1/payment/status-query`
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
    pub async fn local_card_reverse(&self, payment_id: &str) -> Result<ReverseResult, ClientError> {
        let request = ReverseRequest {
            payment_id: payment_id.to_owned(),
        };
        self.call("api/v1/payment/local-card/reverse", &request)
            .await
    }
}
