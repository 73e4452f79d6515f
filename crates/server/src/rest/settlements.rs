//! The merchant's settlement statements: what it is owed for a wallet day.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use ottgate_api::rest::{
    Envelope, ErrorResult, RestCode, SettlementLine, SettlementStatement, SettlementsResult,
};
use ottgate_core::recon::WalletDay;

use super::extract::{Authed, RestError, RestResult, ok};
use crate::state::AppState;

#[utoipa::path(
    get,
    path = "/api/v1/settlements",
    tag = "settlements",
    params(
        ("date" = String, Query, description = "The wallet day, yyyy-MM-dd (Beijing, as the wallets keep their books)"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One statement per currency the merchant was paid in that day (none: an empty list)", body = Envelope<SettlementsResult>),
        (status = 400, description = "10005: date missing or not yyyy-MM-dd", body = Envelope<ErrorResult>),
        (status = 401, description = "90000: missing, malformed, expired or invalid token", body = Envelope<ErrorResult>),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    authed: Authed,
    RawQuery(query): RawQuery,
) -> RestResult<SettlementsResult> {
    let date = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "date")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let day = WalletDay::parse(&date)
        .filter(|_| date.len() == 10)
        .ok_or_else(|| {
            RestError::new(
                StatusCode::BAD_REQUEST,
                RestCode::InvalidParameter,
                "date: yyyy-MM-dd expected",
            )
        })?;
    let statements = state.service.settlement(&authed.merchant.id, day).await?;
    ok(SettlementsResult {
        date: day.to_string(),
        statements: statements
            .into_iter()
            .map(|s| SettlementStatement {
                currency: s.currency.code().into(),
                gross: s.gross.to_string(),
                refunds: s.refunds.to_string(),
                fees: s.fees.to_string(),
                net: s.net.to_string(),
                payments: s.payments,
                refund_count: s.refund_count,
                buyer_cny: s.buyer_cny.to_string(),
                lines: s
                    .lines
                    .into_iter()
                    .map(|l| SettlementLine {
                        line_type: l.item.side.code().into(),
                        id: l.item.id,
                        method: l.item.method.code().into(),
                        amount: l.item.amount.to_string(),
                        fee: l.fee.to_string(),
                        net: l.net.to_string(),
                        buyer_cny: l.item.buyer_cny.map(|n| n.to_string()),
                        fx_rate: l.item.fx_rate,
                    })
                    .collect(),
            })
            .collect(),
    })
}
