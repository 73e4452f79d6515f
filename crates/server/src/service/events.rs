//! The callbacks a merchant is owed, as the event log and the merchant center show them, and
//! sending one again.

use ottgate_core::{MerchantId, NotifyId, OrderId};
use ottgate_store::{Delivery, DeliveryAttemptRow, Event, EventFilter};

use super::{Service, ServiceError};

impl Service {
    /// A merchant's callbacks created at or after `since`, newest first (at most `limit`).
    pub async fn events(&self, filter: EventFilter) -> Result<Vec<Event>, ServiceError> {
        Ok(self.store.events(filter).await?)
    }

    /// Sends `merchant`'s callback `id` again now (one on its way already is not sent beside
    /// itself); `None` if it is not the merchant's.
    pub async fn redeliver(
        &self,
        merchant: &MerchantId,
        id: &NotifyId,
    ) -> Result<Option<Delivery>, ServiceError> {
        let delivery = self.store.redeliver(merchant, id, self.clock.now()).await?;
        if delivery.is_some() {
            self.delivery_wakeup.notify_one();
        }
        Ok(delivery)
    }

    /// `order`'s callbacks, each with every attempt at delivering it.
    pub async fn deliveries_of(
        &self,
        order: &OrderId,
    ) -> Result<Vec<(Delivery, Vec<DeliveryAttemptRow>)>, ServiceError> {
        let deliveries = self.store.deliveries_for_order(order).await?;
        let mut out = Vec::with_capacity(deliveries.len());
        for d in deliveries {
            let attempts = self.store.delivery_attempts(d.id).await?;
            out.push((d, attempts));
        }
        Ok(out)
    }
}
