//! The REST API v1 (`/api/v1/...`): bearer-token auth, Alipay wap-pay and web-pay, status
//! queries and refunds, on the same core as the checkout. The OpenAPI document is built
//! from the handlers themselves, so it cannot drift from the routes.

mod card;
mod events;
pub(crate) mod extract;
mod idempotency;
mod pay;
pub mod token;

pub use extract::{JsonObject, RestError};

use axum::{Json, Router};
use std::sync::Arc;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ottgate REST API (OTT Pay v1)",
        version = "1",
        description = "OTT Pay's REST merchant API as ottgate serves it. Every response is `{\"status\":\"SUCCESS\",\"result\":{…}}` or `{\"status\":\"ERROR\",\"result\":{\"code\":…,\"message\":…}}`. Amounts are strings of cents. Payment results also arrive as an encrypted callback to `callbackURL` (the envelope API's Appendix A crypto, keyed by the merchant's sign key).\n\nError codes: 10003 authorization failed (wrong appId/appKey, or too many failures), 10005 invalid parameter (the message names the field), 10200 gateway error, 20004 database error, 20014 refund exceeds the refundable amount, 20019 payment not found, 20008 not a test card (sandbox; refused unkept), 20020 payment not refundable (not paid, or a card authorisation not captured) or not voidable (captured), 20021 not a card payment (reverse), 20030 card declined, 20031 no channel for the method, 20041 already fully refunded, 90000 missing, malformed, expired or invalid bearer token."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Bearer tokens"),
        (name = "pay", description = "Payments"),
        (name = "payment", description = "Status queries"),
        (name = "refund", description = "Refunds"),
        (name = "events", description = "The callbacks owed to the merchant, and resending them"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Every REST route, each registered with its OpenAPI operation, plus the document itself
/// at `/api/v1/openapi.json`.
pub fn router(state: &AppState) -> Router<AppState> {
    // The calls that create or move money take an Idempotency-Key.
    let money = OpenApiRouter::new()
        .routes(routes!(pay::wap_pay))
        .routes(routes!(pay::web_pay))
        .routes(routes!(pay::weixin_active_pay))
        .routes(routes!(pay::weixin_h5_pay))
        .routes(routes!(pay::weixin_public_pay))
        .routes(routes!(pay::alipay_in_app_pay))
        .routes(routes!(pay::unionpay_in_app_pay))
        .routes(routes!(pay::refund))
        .routes(routes!(card::payment_3ds_v2))
        .routes(routes!(card::local_card_refund))
        .routes(routes!(card::local_card_reverse))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::idempotent,
        ))
        // Outermost: a client hanging up stops nothing, the key's answer included.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::to_completion,
        ));
    let (router, document) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(pay::token))
        .routes(routes!(pay::status_query))
        .routes(routes!(pay::status_query_by_reference))
        .routes(routes!(events::list))
        .routes(routes!(events::redeliver))
        .merge(money)
        .split_for_parts();
    let document = Arc::new(document);
    router.route(
        "/api/v1/openapi.json",
        axum::routing::get(move || {
            let document = document.clone();
            async move { Json(document.as_ref().clone()) }
        }),
    )
}
