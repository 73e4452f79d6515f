//! What a merchant is owed for a wallet day (docs/reconciliation.md, "Settlement"): its
//! payments and refunds of the day, the fee on each payment at the merchant's rate for
//! the method (or the configured default), per currency.

use ottgate_core::recon::WalletDay;
use ottgate_core::settlement::{FeeRate, Statement, settle};
use ottgate_core::{MerchantId, PaymentMethod};

use super::{Service, ServiceError};

impl Service {
    /// A merchant's settlement statements of `day`, one per currency it was paid in.
    pub async fn settlement(
        &self,
        merchant: &MerchantId,
        day: WalletDay,
    ) -> Result<Vec<Statement>, ServiceError> {
        let items = self
            .store
            .settlement_items(merchant, day.start(), day.end())
            .await?;
        let rates = self.fee_rates(merchant).await?;
        Ok(settle(items, |method| {
            rates
                .iter()
                .find(|(m, _, _)| *m == method)
                .map_or_else(FeeRate::default, |(_, rate, _)| *rate)
        }))
    }

    /// A merchant's fee rate for each method: `(method, rate, its own)` — its own, or
    /// else the configured default.
    pub async fn fee_rates(
        &self,
        merchant: &MerchantId,
    ) -> Result<Vec<(PaymentMethod, FeeRate, bool)>, ServiceError> {
        let own = self.store.fees(merchant).await?;
        Ok(with_defaults(&own, &self.settings))
    }
}

/// Each method's fee rate: `(method, rate, its own)` — the merchant's `own`, or else the
/// configured default.
pub fn with_defaults(
    own: &[ottgate_store::MethodFee],
    settings: &crate::config::Settings,
) -> Vec<(PaymentMethod, FeeRate, bool)> {
    PaymentMethod::ALL
        .into_iter()
        .map(|method| match own.iter().find(|f| f.method == method) {
            Some(f) => (method, f.rate, true),
            None => (method, settings.default_fee(method), false),
        })
        .collect()
}
