//! The payment service: starting a method, applying a wallet's verified result (the one
//! path by which any order becomes paid), and where the buyer's browser goes afterwards.

use ottgate_api::EnvelopeResponse;
use ottgate_api::prepay::{CallbackData, to_fields};
use ottgate_api::redirect::{
    H5LinkReturn, RedirectParams, TRADE_AUTHORISED, TRADE_CLOSED, TRADE_FINISHED,
};
use ottgate_channels::{
    Channel, ChannelError, Device, Flow, PaymentStart, StartPayment, VerifiedResult,
};
use ottgate_core::order::NotPayable;
use ottgate_core::{
    Attempt, AttemptId, CheckoutToken, Merchant, MerchantId, MerchantRef, NotifyId, Order, OrderId,
    OrderKind, OrderStatus, PaymentMethod, PaymentStatus, Refund, RefundStatus, Timestamp,
};
use ottgate_envelope::{SignKey, seal};
use ottgate_store::{NewDelivery, SettleOutcome, SettleRequest, StartOutcome, StoreError};
use std::sync::Arc;
use url::Url;

use super::{Service, ServiceError, Signing};

/// How the buyer of `order` meets the wallet: an ACTIVEPAY code is scanned, an H5PAY
/// payment happens in a phone's browser, any other in the buyer's browser on `device`.
pub fn flow_of(order: &Order, device: Device) -> Flow {
    match order.kind {
        OrderKind::ActivePay | OrderKind::Qr => Flow::MerchantQr,
        OrderKind::InWallet | OrderKind::H5Link | OrderKind::MiniProgram => Flow::InWallet,
        OrderKind::App => Flow::App,
        OrderKind::Barcode => Flow::Barcode,
        OrderKind::H5Pay => Flow::Browser(Device::Mobile),
        OrderKind::Checkout
        | OrderKind::Wap
        | OrderKind::Web
        | OrderKind::Card
        | OrderKind::CardPreAuth
        | OrderKind::LocalCard => Flow::Browser(device),
    }
}

/// How the wallets know an attempt's merchant, and how its buyer met the wallet.
#[derive(Debug, Clone)]
pub struct WalletTerms {
    pub ids: ottgate_core::ChannelIds,
    pub flow: Flow,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("payment method {0} is not available for this order")]
    MethodUnavailable(PaymentMethod),
    #[error(transparent)]
    NotPayable(#[from] NotPayable),
    #[error("payment channel failed: {0}")]
    Channel(#[from] ChannelError),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<StoreError> for StartError {
    fn from(e: StoreError) -> Self {
        StartError::Service(e.into())
    }
}

impl Service {
    pub async fn signing(&self, id: &MerchantId) -> Result<Option<Signing>, ServiceError> {
        let now = self.clock.now();
        if let Some(cached) = self.signings.get(id, now) {
            return Ok(Some(cached));
        }
        let Some(record) = self.store.merchant(id).await? else {
            return Ok(None);
        };
        let key = self.keyring.open_sign_key(id, &record.sign_key_sealed)?;
        let previous = match record.rotation.previous_sign_key {
            Some((sealed, until)) if until > now => {
                Some((self.keyring.open_sign_key(id, &sealed)?, until))
            }
            _ => None,
        };
        let signing = Signing {
            merchant: record.merchant,
            key,
            previous: previous.as_ref().map(|(key, _)| key.clone()),
            webhook: super::WebhookVersion {
                version: record.rotation.webhook_secret_version,
                previous_until: record.rotation.previous_webhook_until,
            },
        };
        self.signings.put(signing.clone(), previous);
        Ok(Some(signing))
    }

    /// The sign key of the merchant `order` belongs to, which must exist.
    pub async fn order_signing(&self, order: &Order) -> Result<Signing, ServiceError> {
        self.signing(&order.merchant_id)
            .await?
            .ok_or(ServiceError::NotFound("merchant"))
    }

    /// An order something else names (an attempt, a row just read), which must exist.
    pub async fn existing_order(&self, id: &OrderId) -> Result<Order, ServiceError> {
        self.store
            .order(id)
            .await?
            .ok_or(ServiceError::NotFound("order"))
    }

    /// An attempt that must exist (its id came from our own records).
    pub async fn existing_attempt(&self, id: &AttemptId) -> Result<Attempt, ServiceError> {
        self.store
            .attempt(id)
            .await?
            .ok_or(ServiceError::NotFound("attempt"))
    }

    /// The first attempt at paying `order` (ACTIVEPAY and H5PAY orders have exactly one).
    pub async fn first_attempt(&self, order: &OrderId) -> Result<Option<Attempt>, ServiceError> {
        Ok(self.store.attempts(order).await?.into_iter().next())
    }

    /// `order` as of now: closed first if it expired and the sweeper has not closed it yet,
    /// so nobody is shown an expired order as open. Whether it was closed just now.
    pub async fn as_of_now(&self, order: Order) -> Result<(Order, bool), ServiceError> {
        let now = self.clock.now();
        // Not expired as read: nothing to close, no write.
        if order.status_at(now) == order.status {
            return Ok((order, false));
        }
        // Closed here, or by another gateway (or paid) a moment ago: as it now is.
        let closed = self.store.close_if_expired(&order.id, now).await?;
        Ok((self.existing_order(&order.id).await?, closed))
    }

    fn public(&self, path: &str) -> Url {
        // public_url ends with '/', and our paths are plain ASCII segments.
        self.settings
            .public_url
            .join(path)
            .unwrap_or_else(|_| self.settings.public_url.clone())
    }

    pub fn checkout_url(&self, token: &CheckoutToken) -> Url {
        self.public(&format!("checkout/{token}"))
    }

    /// The page a buyer inside the wallet's own browser opens (REST `weixin/public-pay`).
    /// Why a payment of `kind` by `method` cannot be made for `merchant` here, if it cannot:
    /// the method is off for the merchant or has no wallet, or (inside the wallet's browser)
    /// the deployment cannot have the wallet sign the buyer in.
    pub fn unavailable(
        &self,
        merchant: &Merchant,
        method: PaymentMethod,
        kind: OrderKind,
    ) -> Option<String> {
        let Some(channel) = self
            .channels
            .for_method(method)
            .filter(|_| merchant.offers(method))
        else {
            return Some(format!(
                "{} is not available for this merchant",
                method.name()
            ));
        };
        (kind.in_wallet()
            && channel
                .payer_sign_in(&self.settings.public_url, "")
                .is_none())
        .then(|| {
            format!(
                "{} inside its own browser is not configured here ([wechatpay] app_secret)",
                method.name()
            )
        })
    }

    /// The sandbox's hosted test-card page of a card payment (docs/cards.md).
    pub fn card_page_url(&self, attempt: &ottgate_core::AttemptId) -> Url {
        self.public(&format!("sandbox/card/{attempt}"))
    }

    pub fn in_wallet_url(&self, token: &CheckoutToken) -> Url {
        self.public(&format!("checkout/{token}/wechat"))
    }

    pub fn return_url(&self, token: &CheckoutToken, attempt: &ottgate_core::AttemptId) -> Url {
        self.public(&format!("checkout/{token}/return/{attempt}"))
    }

    /// The methods a buyer can use for this merchant here: enabled for the merchant and
    /// served by a channel in this deployment.
    pub fn available_methods(&self, merchant: &Merchant) -> Vec<PaymentMethod> {
        PaymentMethod::ALL
            .into_iter()
            .filter(|m| merchant.offers(*m) && self.channels.for_method(*m).is_some())
            .collect()
    }

    /// Starts (or resumes) paying `order` with `method` on the buyer's `device` (which an
    /// ACTIVEPAY or H5PAY order decides for itself: see [`flow_of`]); returns
    /// the attempt and how the buyer reaches the wallet.
    pub async fn start_payment(
        &self,
        order: &Order,
        merchant: &Merchant,
        method: PaymentMethod,
        device: Device,
    ) -> Result<(Attempt, PaymentStart), StartError> {
        let channel = self.channel_for(merchant, method)?;
        let attempt = match self
            .store
            .start_attempt(&order.id, method, self.clock.now())
            .await?
        {
            StartOutcome::Created(a) => {
                tracing::info!(order_id = %order.id, attempt_id = %a.id, method = %method, channel = channel.name(), "payment attempt started");
                a
            }
            StartOutcome::Resumed(a) => a,
            StartOutcome::NotPayable(reason) => return Err(reason.into()),
        };
        let start = self.open_wallet(order, merchant, &attempt, device).await?;
        Ok((attempt, start))
    }

    /// The channel serving `method` for `merchant` here, if the merchant has it enabled.
    pub fn channel_for(
        &self,
        merchant: &Merchant,
        method: PaymentMethod,
    ) -> Result<Arc<dyn Channel>, StartError> {
        match self.channels.for_method(method) {
            Some(c) if merchant.offers(method) => Ok(c),
            _ => Err(StartError::MethodUnavailable(method)),
        }
    }

    /// How the wallets know the merchant whose order `attempt` belongs to.
    pub async fn channel_ids_of(
        &self,
        attempt: &Attempt,
    ) -> Result<ottgate_core::ChannelIds, ServiceError> {
        Ok(self.wallet_terms(attempt).await?.ids)
    }

    /// What a wallet is asked about `attempt` with, besides the attempt itself.
    pub async fn wallet_terms(&self, attempt: &Attempt) -> Result<WalletTerms, ServiceError> {
        let order = self.existing_order(&attempt.order_id).await?;
        let record = self
            .store
            .merchant(&order.merchant_id)
            .await?
            .ok_or(ServiceError::NotFound("merchant"))?;
        Ok(WalletTerms {
            ids: record.merchant.channel_ids,
            // Queries and refunds do not depend on the buyer's device.
            flow: flow_of(&order, Device::Desktop),
        })
    }

    /// Asks the attempt's channel where the buyer pays it.
    pub async fn open_wallet(
        &self,
        order: &Order,
        merchant: &Merchant,
        attempt: &Attempt,
        device: Device,
    ) -> Result<PaymentStart, StartError> {
        self.open_wallet_for(order, merchant, attempt, device, Buyer::default())
            .await
    }

    /// [`Self::open_wallet`] for a buyer the wallet has named ([`Buyer`]).
    pub async fn open_wallet_for(
        &self,
        order: &Order,
        merchant: &Merchant,
        attempt: &Attempt,
        device: Device,
        buyer: Buyer,
    ) -> Result<PaymentStart, StartError> {
        let channel = self.channel_for(merchant, attempt.method)?;
        let start = StartPayment {
            attempt_id: attempt.id.clone(),
            method: attempt.method,
            money: order.money,
            subject: merchant.name.as_str().to_owned(),
            merchant_id: merchant.id.clone(),
            merchant_name: merchant.name.as_str().to_owned(),
            created_at: attempt.created_at,
            expires_at: order.expires_at,
            return_url: self.return_url(&order.token, &attempt.id),
            flow: flow_of(order, device),
            payer: buyer.id,
            payer_app: buyer.app,
            channel_ids: merchant.channel_ids.clone(),
        };
        Ok(channel.start(&start).await?)
    }

    /// Applies a verified wallet result: marks the attempt (and the order) exactly once,
    /// and enqueues the merchant callback in the same transaction when the order is paid.
    pub async fn apply_result(
        &self,
        result: VerifiedResult,
    ) -> Result<SettleOutcome, ServiceError> {
        let attempt = self.existing_attempt(&result.attempt_id).await?;
        let order = self.existing_order(&attempt.order_id).await?;
        self.apply_result_to(&order, &attempt, result).await
    }

    /// [`Self::apply_result`] for a caller that holds the attempt (`result`'s) and its order
    /// already, as read since the attempt was started: their fixed fields (amounts, ids,
    /// references) are what the merchant's callback is built from; their status is settled
    /// in the store, whatever it is now.
    pub async fn apply_result_to(
        &self,
        order: &Order,
        attempt: &Attempt,
        result: VerifiedResult,
    ) -> Result<SettleOutcome, ServiceError> {
        self.settle_result(order, attempt, result, false).await
    }

    /// [`Self::apply_result_to`]; a `capture` pays only an attempt still held.
    pub(super) async fn settle_result(
        &self,
        order: &Order,
        attempt: &Attempt,
        result: VerifiedResult,
        capture: bool,
    ) -> Result<SettleOutcome, ServiceError> {
        debug_assert_eq!(attempt.id, result.attempt_id);
        debug_assert_eq!(attempt.order_id, order.id);
        let signing = self.order_signing(order).await?;
        let at = self.clock.now();
        let bizpay = result.bizpay_order_id.clone().unwrap_or_default();
        let on_paid = paid_callback(order, attempt, &signing.key, at, &bizpay);
        let outcome = self
            .store
            .settle(SettleRequest {
                attempt_id: attempt.id.clone(),
                outcome: result.outcome,
                at,
                bizpay_order_id: result.bizpay_order_id,
                buyer_paid: result.buyer_paid,
                // An in-store payment may come with no callback URL: then none is owed.
                on_paid: (!order.callback_url.is_empty()).then_some(on_paid),
                capture,
            })
            .await?;
        match &outcome {
            SettleOutcome::Applied {
                settlement,
                order,
                attempt,
            } => {
                self.metrics
                    .outcome(&self.metrics.settlements, result.outcome.code());
                tracing::info!(
                    order_id = %order.id, attempt_id = %attempt.id, outcome = result.outcome.code(),
                    order_status = order.status.code(), "payment result applied"
                );
                if settlement.paid_after_close {
                    tracing::warn!(order_id = %order.id, attempt_id = %attempt.id, "paid after the order closed; flagged for review");
                }
                if settlement.duplicate_payment {
                    tracing::warn!(order_id = %order.id, attempt_id = %attempt.id, "second payment on a paid order; refund needed");
                }
                if settlement.order_paid {
                    self.delivery_wakeup.notify_one();
                }
            }
            SettleOutcome::AlreadyApplied { attempt, .. } => {
                tracing::info!(attempt_id = %attempt.id, outcome = result.outcome.code(), "duplicate payment result ignored");
            }
            SettleOutcome::Rejected { error, attempt, .. } => {
                tracing::warn!(attempt_id = %attempt.id, %error, "contradictory payment result rejected");
            }
        }
        Ok(outcome)
    }

    /// Where the buyer's browser goes once the wallet hands it back: the merchant's
    /// `redirect_url` with the signed result when the order has one, or the checkout page
    /// to choose again while it is still open.
    ///
    /// `trade_no` is the paying attempt's order id on success, otherwise the given
    /// attempt's, otherwise (an order closed before any method was tried) the order's own id.
    /// `None` when the merchant gave no page to come back to (an H5PAY payment without
    /// `redirect_url`): the buyer then stays on our status page.
    pub fn buyer_destination(
        &self,
        order: &Order,
        attempt: Option<&Attempt>,
        key: &SignKey,
    ) -> Result<Option<Url>, ServiceError> {
        let status = order.status_at(self.clock.now());
        // A checkout order still open sends the buyer back to choose again; a REST payment
        // has no checkout page, so whatever did not pay is closed from the buyer's side.
        if status == OrderStatus::Processing && order.kind == OrderKind::Checkout {
            return Ok(Some(self.checkout_url(&order.token)));
        }
        if order.redirect_url.is_empty() {
            return Ok(None);
        }
        if order.kind == OrderKind::H5Link {
            return self.h5_link_return(order, status, attempt, key).map(Some);
        }
        let trade_status = match (status, attempt) {
            (OrderStatus::Success, _) => TRADE_FINISHED,
            // A card held, not captured yet (docs/cards.md).
            (OrderStatus::Processing, Some(a)) if a.is_authorised() => TRADE_AUTHORISED,
            _ => TRADE_CLOSED,
        };
        let trade_no = match (status, &order.paid_attempt, attempt) {
            (OrderStatus::Success, Some(paid), _) => paid.to_string(),
            (_, _, Some(attempt)) => attempt.id.to_string(),
            (_, _, None) => order.id.to_string(),
        };
        // A REST payment made without a reference is known to the merchant by its id.
        let out_trade_no = order
            .reference
            .as_ref()
            .map_or_else(|| trade_no.clone(), ToString::to_string);
        let params = RedirectParams {
            total_fee: order.money.amount.to_string(),
            trade_no,
            out_trade_no,
            trade_status: trade_status.to_owned(),
        };
        let mut url =
            Url::parse(&order.redirect_url).map_err(|e| ServiceError::BadUrl(e.to_string()))?;
        {
            let mut query = url.query_pairs_mut();
            for (k, v) in params.query_pairs(key) {
                query.append_pair(k, &v);
            }
        }
        Ok(Some(url))
    }
}

impl Service {
    /// h5Pay's way back: `newURL?amount=&orderID=&tranID=&status=`, as OTT Pay sends it,
    /// plus ottgate's `sign` over those four (docs/link-flows.md).
    fn h5_link_return(
        &self,
        order: &Order,
        status: OrderStatus,
        attempt: Option<&Attempt>,
        key: &SignKey,
    ) -> Result<Url, ServiceError> {
        let tran_id = order
            .paid_attempt
            .as_ref()
            .map(ToString::to_string)
            .or_else(|| attempt.map(|a| a.id.to_string()))
            .unwrap_or_else(|| order.id.to_string());
        let params = H5LinkReturn {
            amount: order.money.major_plain(),
            order_id: order.reference_str().to_owned(),
            tran_id,
            status: if status == OrderStatus::Success {
                "success"
            } else {
                "fail"
            }
            .to_owned(),
        };
        let mut url =
            Url::parse(&order.redirect_url).map_err(|e| ServiceError::BadUrl(e.to_string()))?;
        url.query_pairs_mut().extend_pairs(params.query_pairs(key));
        Ok(url)
    }
}

/// The success callback for `order`, paid by `attempt` at `at`, sealed with the merchant's
/// key now so every retry sends identical bytes.
fn paid_callback(
    order: &Order,
    attempt: &Attempt,
    key: &SignKey,
    at: Timestamp,
    bizpay: &str,
) -> NewDelivery {
    let notify_id = NotifyId::generate();
    let data = CallbackData {
        finish_time: at.beijing_compact(),
        order_id: order.merchant_order_id(&attempt.id),
        prepay_order_id: (order.kind == OrderKind::Checkout)
            .then(|| order.reference_str().to_owned()),
        reference: order.reference.as_ref().map(ToString::to_string),
        merchant_id: order.merchant_id.to_string(),
        order_status: "success".into(),
        amount: order.money.amount.to_string(),
        currency_type: order.money.currency.code().into(),
        tip: order.tip.to_string(),
        bizpay_order_id: bizpay.to_owned(),
        remarks: order.remarks.clone(),
        sale_num: Some(order.sale_num.clone()),
        convenience_fee: "0".into(),
        notify_id: notify_id.to_string(),
    };
    let mut fields = to_fields(&data);
    if order.kind.is_envelope_card() {
        // OTT Pay's card callback is a trigger without a status: the merchant asks
        // STATUS_QUERY for the truth (docs/cards.md).
        fields.remove("order_status");
    }
    let envelope = EnvelopeResponse::callback(order.merchant_id.as_str(), seal(&fields, key));
    NewDelivery {
        notify_id,
        merchant_id: order.merchant_id.clone(),
        order_id: order.id.clone(),
        attempt_id: Some(attempt.id.clone()),
        event: "paid".into(),
        url: order.callback_url.clone(),
        body: serde_json::to_string(&envelope).unwrap_or_default(),
    }
}

/// The buyer a payment is opened for, where the wallet needs one: WeChat's `openid` (`id`),
/// under our app id or under the merchant's mini-program's (`app`).
#[derive(Debug, Clone, Default)]
pub struct Buyer {
    pub id: Option<String>,
    pub app: Option<String>,
}

/// A payment (one attempt) with its order and refunds, as of now.
#[derive(Debug, Clone)]
pub struct PaymentView {
    pub order: Order,
    pub attempt: Attempt,
    pub refunds: Vec<Refund>,
    pub status: PaymentStatus,
}

impl PaymentView {
    /// The sum of successful refunds.
    pub fn refunded(&self) -> u64 {
        self.refunds
            .iter()
            .filter(|r| r.status == RefundStatus::Success)
            .map(|r| r.money.amount.minor())
            .sum()
    }

    /// When it was settled, or created if it has not been.
    pub fn trade_time(&self) -> Timestamp {
        self.attempt.settled_at.unwrap_or(self.attempt.created_at)
    }
}

impl Service {
    /// `merchant`'s payment `id`: the merchant's own `order_id` of an ACTIVEPAY or H5PAY
    /// payment, else the gateway's payment id. Another merchant's payment is as absent as
    /// a missing one.
    pub async fn payment(
        &self,
        merchant: &MerchantId,
        id: &str,
    ) -> Result<Option<PaymentView>, ServiceError> {
        let named = match MerchantRef::parse(id) {
            Ok(reference) => match self.store.order_by_reference(merchant, &reference).await? {
                Some(order) if order.kind.named_by_merchant() => {
                    self.first_attempt(&order.id).await?
                }
                _ => None,
            },
            Err(_) => None,
        };
        // Ownership is part of the lookup: another merchant's id costs what a missing one
        // does, so not even timing tells them apart.
        let ours = match AttemptId::parse(id) {
            Ok(id) => self.store.merchant_attempt(merchant, &id).await?,
            Err(_) => None,
        };
        match (named, ours) {
            // The merchant's own order_id of one payment is the gateway's id of another:
            // acting on either could be acting on the wrong one.
            (Some(named), Some(ours)) if named.id != ours.id => {
                Err(ServiceError::AmbiguousId(id.to_owned()))
            }
            (Some(attempt), _) | (None, Some(attempt)) => self.view(merchant, attempt).await,
            (None, None) => Ok(None),
        }
    }

    /// `merchant`'s payment for its `reference`: the paying attempt of that order, else its
    /// latest. With no order of that reference, the newest order whose remark is exactly
    /// `reference` (integrations send their order number as the REST `remark`). `None` if
    /// neither exists or the order has no attempt yet.
    pub async fn payment_by_reference(
        &self,
        merchant: &MerchantId,
        reference: &str,
    ) -> Result<Option<PaymentView>, ServiceError> {
        let by_reference = match MerchantRef::parse(reference) {
            Ok(reference) => self.store.order_by_reference(merchant, &reference).await?,
            Err(_) => None,
        };
        let order = match by_reference {
            Some(order) => Some(order),
            None if reference.is_empty() => None,
            None => self.store.order_by_remarks(merchant, reference).await?,
        };
        let Some(order) = order else {
            return Ok(None);
        };
        let attempts = self.store.attempts(&order.id).await?;
        let chosen = match &order.paid_attempt {
            Some(paid) => attempts.into_iter().find(|a| &a.id == paid),
            None => attempts.into_iter().last(),
        };
        match chosen {
            Some(attempt) => self.view(merchant, attempt).await,
            None => Ok(None),
        }
    }

    async fn view(
        &self,
        merchant: &MerchantId,
        mut attempt: Attempt,
    ) -> Result<Option<PaymentView>, ServiceError> {
        let Some(order) = self.store.order(&attempt.order_id).await? else {
            return Ok(None);
        };
        if &order.merchant_id != merchant {
            return Ok(None);
        }
        let now = self.clock.now();
        let (order, closed) = self.as_of_now(order).await?;
        if closed {
            attempt = self.existing_attempt(&attempt.id).await?;
        }
        let refunds = self.store.refunds(&attempt.id).await?;
        let refunded = refunds
            .iter()
            .filter(|r| r.status == RefundStatus::Success)
            .map(|r| r.money.amount.minor())
            .sum();
        let status = PaymentStatus::of(&attempt, order.status_at(now), refunded);
        Ok(Some(PaymentView {
            order,
            attempt,
            refunds,
            status,
        }))
    }
}
