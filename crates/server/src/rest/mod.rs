//! The REST API v1 (`/api/v1/...`): bearer-token auth, Alipay wap-pay and web-pay, status
//! queries and refunds, on the same core as the checkout. The OpenAPI document is built
//! from the handlers themselves, so it cannot drift from the routes.

mod card;
mod events;
pub(crate) mod extract;
mod idempotency;
mod pay;
mod settlements;
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
        (name = "settlements", description = "What the merchant is owed for a day: payments, refunds, fees"),
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

/// The routes that take an `Idempotency-Key` (they create or move money).
const IDEMPOTENT: [&str; 11] = [
    "/api/v1/pay/alipay/wap-pay",
    "/api/v1/pay/alipay/web-pay",
    "/api/v1/pay/weixin/active-pay",
    "/api/v1/pay/weixin/h5-pay",
    "/api/v1/pay/weixin/public-pay",
    "/api/v1/pay/alipay/inapp-pay",
    "/api/v1/pay/unionpay/inapp-secure-pay",
    "/api/v1/pay/refund",
    "/api/v1/payment/local-card/payment3dsV2",
    "/api/v1/payment/local-card/refund",
    "/api/v1/payment/local-card/reverse",
];

/// What every operation's handler cannot say of itself, written into the document: the
/// server (this gateway, wherever it is reached), the `Idempotency-Key` header of the
/// routes that take it with the answers it adds (409, 422), and the answers the layers
/// around every route give (401 where a token is needed, 408, 413 for a body, 500).
fn finish(document: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::{Required, ResponseBuilder, ServerBuilder};
    document.servers = Some(vec![
        ServerBuilder::new()
            .url("/")
            .description(Some("this gateway (the document is served by it)"))
            .build(),
    ]);
    let answer = |description: &str| ResponseBuilder::new().description(description).build();
    for (path, item) in &mut document.paths.paths {
        let posts = item.post.is_some();
        for operation in [item.get.as_mut(), item.post.as_mut()]
            .into_iter()
            .flatten()
        {
            let responses = &mut operation.responses.responses;
            let mut add = |status: &str, description: &str| {
                responses
                    .entry(status.to_owned())
                    .or_insert_with(|| answer(description).into());
            };
            if IDEMPOTENT.contains(&path.as_str()) {
                add(
                    "409",
                    "10005: a request with this Idempotency-Key is still being processed; retry shortly",
                );
                add(
                    "422",
                    "10005: this Idempotency-Key was used for a different request",
                );
            }
            if operation.security.is_some() {
                add("401", "90000: missing, malformed, expired or invalid token");
            }
            add(
                "408",
                "the request (its body included) took longer than the server's request timeout",
            );
            if posts {
                add("413", "10005: the request body is too large");
            }
            add(
                "500",
                "10200 / 20004: the gateway or its database failed; nothing was done that a retry (with the same Idempotency-Key) would do twice",
            );
            if IDEMPOTENT.contains(&path.as_str()) {
                let key = ParameterBuilder::new()
                    .name("Idempotency-Key")
                    .parameter_in(ParameterIn::Header)
                    .required(Required::False)
                    .description(Some(
                        "1 to 255 printable ASCII characters, one per intended payment or refund: the same request sent again with it is answered as the first time (kept 24 hours by default), never made twice",
                    ))
                    .schema(Some(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .min_length(Some(1))
                            .max_length(Some(255)),
                    ))
                    .build();
                operation.parameters.get_or_insert_with(Vec::new).push(key);
            }
        }
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
        .routes(routes!(settlements::list))
        .merge(money)
        .split_for_parts();
    let mut document = document;
    finish(&mut document);
    let document = Arc::new(document);
    router.route(
        "/api/v1/openapi.json",
        axum::routing::get(move || {
            let document = document.clone();
            async move { Json(document.as_ref().clone()) }
        }),
    )
}
