//! EX_RATE_QUERY "1.0": the day's exchange rate to CNY, as WeChat Pay states it
//! (`pay/queryexchagerate`), remembered per currency per day (docs/envelope.md).

use ottgate_api::RspCode;
use ottgate_api::direct::{ExRateQueryRequest, ExRateQueryResponse};
use ottgate_api::prepay::to_fields;
use ottgate_channels::ExchangeRate;
use ottgate_core::PaymentMethod;
use ottgate_envelope::Fields;
use std::collections::HashMap;
use std::sync::Mutex;

use crate::envelope_api::ProtocolError;
use crate::fields::{optional_merchant, required};
use crate::payments::Signing;
use crate::state::AppState;

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

/// 1 CNY is 1 CNY: no wallet is asked.
const CNY_RATE: u64 = 100_000_000;

pub async fn query(
    state: &AppState,
    signing: &Signing,
    fields: &Fields,
) -> Result<Fields, ProtocolError> {
    let r = ExRateQueryRequest::read(fields)?;
    optional_merchant(r.merchant_id, signing)?;
    let fee_type = required(r.fee_type, "fee_type")?.to_ascii_uppercase();
    if fee_type.len() != 3 || !fee_type.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(ProtocolError::format(
            "fee_type must be an ISO 4217 currency code such as CAD",
        ));
    }
    let today = state
        .clock
        .now()
        .beijing_compact()
        .get(..8)
        .unwrap_or_default()
        .to_owned();
    let rate = if fee_type == "CNY" {
        ExchangeRate {
            fee_type: fee_type.clone(),
            rate: CNY_RATE,
            rate_time: today,
        }
    } else {
        rate_of(state, &fee_type, &today).await?
    };
    Ok(to_fields(&ExRateQueryResponse {
        rsp_code: RspCode::Success.as_str().into(),
        rsp_msg: RspCode::Success.default_message().into(),
        fee_type: rate.fee_type,
        rate: rate.rate.to_string(),
        rate_time: rate.rate_time,
    }))
}

async fn rate_of(
    state: &AppState,
    fee_type: &str,
    today: &str,
) -> Result<ExchangeRate, ProtocolError> {
    if let Some(rate) = state.rates.get(fee_type, today) {
        return Ok(rate);
    }
    // WeChat Pay quotes the rates OTT Pay passes on.
    let source = state
        .channels
        .for_method(PaymentMethod::WeChatPay)
        .ok_or_else(|| {
            ProtocolError::new(
                RspCode::Fail,
                "no exchange-rate source is configured (WeChat Pay)",
            )
        })?;
    match source.exchange_rate(fee_type, today).await {
        Ok(Some(rate)) => {
            // Kept under the day it was asked for, whatever day the wallet dates it.
            state.rates.put(ExchangeRate {
                rate_time: today.to_owned(),
                ..rate.clone()
            });
            Ok(rate)
        }
        Ok(None) => Err(ProtocolError::invalid(format!(
            "fee_type {fee_type} has no exchange rate"
        ))),
        Err(e) => {
            tracing::warn!(fee_type, error = %e, "exchange rate query failed");
            Err(ProtocolError::new(
                RspCode::Fail,
                "the exchange rate could not be fetched; try again later",
            ))
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
