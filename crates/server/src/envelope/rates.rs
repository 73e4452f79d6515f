//! EX_RATE_QUERY "1.0": the day's exchange rate to CNY, as WeChat Pay states it
//! (`pay/queryexchagerate`), remembered per currency per day (`service::rates`,
//! docs/envelope.md).

use ottgate_api::RspCode;
use ottgate_api::direct::{ExRateQueryRequest, ExRateQueryResponse};
use ottgate_api::prepay::to_fields;
use ottgate_channels::ExchangeRate;
use ottgate_envelope::Fields;

use super::error::ProtocolError;
use super::fields::{optional_merchant, required};
use crate::service::Signing;
use crate::service::rates::RateError;
use crate::state::AppState;

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
        .service
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
        state
            .service
            .exchange_rate(&fee_type, &today)
            .await
            .map_err(|e| match e {
                RateError::Unknown => {
                    ProtocolError::invalid(format!("fee_type {fee_type} has no exchange rate"))
                }
                RateError::NoSource | RateError::Unavailable => {
                    ProtocolError::new(RspCode::Fail, e.to_string())
                }
            })?
    };
    Ok(to_fields(&ExRateQueryResponse {
        rsp_code: RspCode::Success.as_str().into(),
        rsp_msg: RspCode::Success.default_message().into(),
        fee_type: rate.fee_type,
        rate: rate.rate.to_string(),
        rate_time: rate.rate_time,
    }))
}
