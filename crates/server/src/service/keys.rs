//! Idempotency keys, for every door that takes one (REST `Idempotency-Key`, an envelope
//! REFUND without a refund id, the merchant center's form tokens): a key is claimed for the
//! settings' lease, answered, or given back.

use ottgate_core::MerchantId;
use ottgate_store::{Idempotency, IdempotencyAnswer, IdempotencyClaim, IdempotencyKey};

fn named(merchant: &MerchantId, scope: &str, key: &str) -> IdempotencyKey {
    IdempotencyKey {
        merchant_id: merchant.clone(),
        scope: scope.to_owned(),
        key: key.to_owned(),
    }
}

use super::{Service, ServiceError};

impl Service {
    /// Claims `merchant`'s `key` in `scope` for a request whose content hashes to
    /// `request_hash`: run it (`Fresh`), replay the first answer, wait, or refuse another
    /// request under the key.
    pub async fn claim_key(
        &self,
        merchant: &MerchantId,
        scope: &str,
        key: &str,
        request_hash: String,
    ) -> Result<Idempotency, ServiceError> {
        let claim = IdempotencyClaim {
            merchant_id: merchant.clone(),
            scope: scope.to_owned(),
            key: key.to_owned(),
            request_hash,
            now: self.clock.now(),
            lease: self.settings.idempotency_lease,
            retention: self.settings.idempotency_retention,
        };
        Ok(self.store.claim_idempotency(claim).await?)
    }

    /// Records the answer a repeat under the key gets.
    pub async fn answer_key(
        &self,
        merchant: &MerchantId,
        scope: &str,
        key: &str,
        status: u16,
        body: String,
    ) -> Result<(), ServiceError> {
        Ok(self
            .store
            .finish_idempotency(IdempotencyAnswer {
                key: named(merchant, scope, key),
                status,
                body,
            })
            .await?)
    }

    /// Gives the key back unanswered: nothing was done, the request may come again.
    pub async fn release_key(
        &self,
        merchant: &MerchantId,
        scope: &str,
        key: &str,
    ) -> Result<(), ServiceError> {
        Ok(self
            .store
            .release_idempotency(named(merchant, scope, key))
            .await?)
    }
}
