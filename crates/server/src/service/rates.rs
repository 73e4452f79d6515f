//! Exchange rates to CNY, as WeChat Pay quotes them (the rates OTT Pay passes on): asked
//! once per currency per Beijing day, then remembered.

use ottgate_channels::ExchangeRate;
use ottgate_core::PaymentMethod;
use std::collections::HashMap;
use std::sync::Mutex;

use super::Service;

/// One per currency and Beijing day: a rate is asked for once a day per currency.
#[derive(Debug, Default)]
pub struct RateCache {
    rates: Mutex<HashMap<String, ExchangeRate>>,
}

impl RateCache {
    fn get(&self, fee_type: &str, day: &str) -> Option<ExchangeRate> {
        let rates = self
            .rates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        rates.get(fee_type).filter(|r| r.rate_time == day).cloned()
    }

    fn put(&self, rate: ExchangeRate) {
        let mut rates = self
            .rates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        rates.insert(rate.fee_type.clone(), rate);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RateError {
    #[error("no exchange-rate source is configured (WeChat Pay)")]
    NoSource,
    #[error("the currency has no exchange rate")]
    Unknown,
    #[error("the exchange rate could not be fetched; try again later")]
    Unavailable,
}

impl Service {
    /// Today's rate for `fee_type` (not CNY): remembered, or asked of WeChat Pay.
    pub async fn exchange_rate(
        &self,
        fee_type: &str,
        today: &str,
    ) -> Result<ExchangeRate, RateError> {
        if let Some(rate) = self.rates.get(fee_type, today) {
            return Ok(rate);
        }
        let source = self
            .channels
            .for_method(PaymentMethod::WeChatPay)
            .ok_or(RateError::NoSource)?;
        match source.exchange_rate(fee_type, today).await {
            Ok(Some(rate)) => {
                // Kept under the day it was asked for, whatever day the wallet dates it.
                self.rates.put(ExchangeRate {
                    rate_time: today.to_owned(),
                    ..rate.clone()
                });
                Ok(rate)
            }
            Ok(None) => Err(RateError::Unknown),
            Err(e) => {
                tracing::warn!(fee_type, error = %e, "exchange rate query failed");
                Err(RateError::Unavailable)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(day: &str) -> ExchangeRate {
        ExchangeRate {
            fee_type: "CAD".into(),
            rate: 510_000_000,
            rate_time: day.into(),
        }
    }

    #[test]
    fn a_rate_is_remembered_for_its_day_only() {
        let cache = RateCache::default();
        assert_eq!(cache.get("CAD", "20261127"), None);
        cache.put(rate("20261127"));
        assert_eq!(cache.get("CAD", "20261127"), Some(rate("20261127")));
        assert_eq!(cache.get("USD", "20261127"), None);
        assert_eq!(cache.get("CAD", "20261128"), None, "a new day asks again");
        cache.put(rate("20261128"));
        assert_eq!(
            cache.get("CAD", "20261127"),
            None,
            "one day kept per currency"
        );
    }
}
