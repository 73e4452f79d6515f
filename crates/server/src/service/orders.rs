//! Orders and their attempts as the entry points need them: created (a repeat told the first
//! request), found by token or reference, the first answer recorded, and read as of now.

use ottgate_core::{
    Amount, Attempt, AttemptId, CheckoutToken, Currency, Merchant, MerchantId, MerchantRef, Money,
    Order, OrderId, OrderKind, PaymentMethod,
};
use ottgate_store::{CreateOutcome, NewOrder};
use url::Url;

use super::{Service, ServiceError};

/// A payment with its one attempt, as the REST routes and the link flows ask for it.
#[derive(Debug, Clone)]
pub struct NewPayment {
    pub kind: OrderKind,
    pub method: PaymentMethod,
    pub amount: Amount,
    /// One of the merchant's; `None`: its default.
    pub currency: Option<Currency>,
    pub callback_url: Url,
    /// Where the buyer's browser comes back to; `None` where there is no browser.
    pub return_url: Option<Url>,
    pub remarks: Option<String>,
    pub reference: Option<MerchantRef>,
    pub sale_num: Option<String>,
}

/// Why a payment was not created.
#[derive(Debug, thiserror::Error)]
pub enum CreatePaymentError {
    #[error("reference has already been used")]
    ReferenceUsed,
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl Service {
    /// Creates `new`'s order with its one attempt, open for the REST payment lifetime.
    pub async fn create_payment(
        &self,
        merchant: &Merchant,
        new: NewPayment,
    ) -> Result<(Order, Attempt), CreatePaymentError> {
        let order = Order {
            reference: new.reference,
            redirect_url: new
                .return_url
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            remarks: new.remarks,
            sale_num: new.sale_num.unwrap_or_default(),
            ..Order::new(
                new.kind,
                merchant,
                Money::new(
                    new.amount,
                    new.currency.unwrap_or_else(|| merchant.default_currency()),
                ),
                new.callback_url.to_string(),
                self.clock.now(),
                self.settings.rest_payment_ttl,
            )
        };
        let created = self
            .create_order(NewOrder {
                order: order.clone(),
                request_md5: String::new(),
                response_data: String::new(),
                first_attempt: Some(new.method),
            })
            .await?;
        match created {
            CreateOutcome::Created {
                id,
                attempt: Some(attempt),
            } => Ok((Order { id, ..order }, attempt)),
            CreateOutcome::Created { .. } => Err(ServiceError::NotFound("attempt").into()),
            CreateOutcome::Exists { .. } => Err(CreatePaymentError::ReferenceUsed),
        }
    }

    /// Creates `new` (and its first attempt, if asked) unless the merchant's reference is
    /// taken: then the first request's md5 and answer, to tell a repeat from a clash.
    pub async fn create_order(&self, new: NewOrder) -> Result<CreateOutcome, ServiceError> {
        Ok(self.store.create_order(new).await?)
    }

    /// Records the answer a repeat of `order`'s request replays, when it was known only
    /// after creation (the wallet's code); `false` if one was recorded first.
    pub async fn record_answer(
        &self,
        order: &OrderId,
        answer: String,
    ) -> Result<bool, ServiceError> {
        Ok(self.store.set_response_data(order, answer).await?)
    }

    pub async fn order_by_token(
        &self,
        token: &CheckoutToken,
    ) -> Result<Option<Order>, ServiceError> {
        Ok(self.store.order_by_token(token).await?)
    }

    pub async fn order_by_reference(
        &self,
        merchant: &MerchantId,
        reference: &MerchantRef,
    ) -> Result<Option<Order>, ServiceError> {
        Ok(self.store.order_by_reference(merchant, reference).await?)
    }

    /// Orders of any merchant with this reference (at most `limit`, oldest first): the
    /// sandbox helper's lookup of a merchant's own order id.
    pub async fn orders_with_reference(
        &self,
        reference: &MerchantRef,
        limit: u32,
    ) -> Result<Vec<Order>, ServiceError> {
        Ok(self.store.orders_with_reference(reference, limit).await?)
    }

    /// Whether `id` is the gateway's id of one of `merchant`'s payments.
    pub async fn is_payment_of(
        &self,
        merchant: &MerchantId,
        id: &AttemptId,
    ) -> Result<bool, ServiceError> {
        Ok(self.store.merchant_attempt(merchant, id).await?.is_some())
    }

    /// Attempt `id`, whoever's it is (the wallets' and the buyer's lookups).
    pub async fn attempt(&self, id: &AttemptId) -> Result<Option<Attempt>, ServiceError> {
        Ok(self.store.attempt(id).await?)
    }

    /// `order`'s attempts, oldest first.
    pub async fn attempts_of(&self, order: &OrderId) -> Result<Vec<Attempt>, ServiceError> {
        Ok(self.store.attempts(order).await?)
    }

    /// `merchant`'s checkout order for its `reference` with its attempts, as of now: an
    /// order past its expiry is closed first (the write is skipped for every other order).
    pub async fn checkout_order(
        &self,
        merchant: &MerchantId,
        reference: &MerchantRef,
    ) -> Result<Option<(Order, Vec<Attempt>)>, ServiceError> {
        let Some(found) = self.store.order_by_reference(merchant, reference).await? else {
            return Ok(None);
        };
        let now = self.clock.now();
        if found.status_at(now) != found.status {
            self.store.close_if_expired(&found.id, now).await?;
        }
        Ok(self.store.order_with_attempts(&found.id).await?)
    }

    /// `merchant`'s order `id` with its attempts as of one moment; another merchant's is
    /// `None` at the cost of a missing one.
    pub async fn merchant_order(
        &self,
        merchant: &MerchantId,
        id: &OrderId,
    ) -> Result<Option<(Order, Vec<Attempt>)>, ServiceError> {
        Ok(self
            .store
            .merchant_order_with_attempts(merchant, id)
            .await?)
    }

    /// Ends `order`'s life now, as if its `duration` had run out: closed as expired if it
    /// was still processing (`true`), its pending attempts expired. For the sandbox's
    /// integration checker.
    pub async fn expire_now(&self, order: &OrderId) -> Result<bool, ServiceError> {
        Ok(self.store.expire_now(order, self.clock.now()).await?)
    }

    /// Sets the zone `merchant`'s people read times in (`None`: the deployment's).
    pub async fn set_time_zone(
        &self,
        merchant: &MerchantId,
        zone: Option<&str>,
    ) -> Result<bool, ServiceError> {
        Ok(self.store.set_time_zone(merchant, zone).await?)
    }
}
