//! STATUS_QUERY "1.0" and REFUND "1.0": any payment of the merchant — checkout, REST,
//! ACTIVEPAY or H5PAY — by the gateway's id or, for ACTIVEPAY and H5PAY, by the
//! merchant's own `order_id`.

use crate::service::{Idempotency, ServiceError};
use ottgate_api::RspCode;
use ottgate_api::payment::{
    RefundRequest, RefundResponse, StatusQueryRequest, StatusQueryResponse,
};
use ottgate_api::prepay::to_fields;
use ottgate_core::{Amount, OrderKind};
use ottgate_envelope::Fields;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

use super::error::ProtocolError;
use super::fields::{optional_merchant, required};
use crate::service::Signing;
use crate::service::refunds::{RefundAsk, RefundError};
use crate::state::AppState;

pub async fn status_query(
    state: &AppState,
    signing: &Signing,
    fields: &Fields,
) -> Result<Fields, ProtocolError> {
    let r = StatusQueryRequest::read(fields)?;
    optional_merchant(r.merchant_id, signing)?;
    let order_id = required(r.order_id, "order_id")?;
    let merchant = &signing.merchant;
    let view = state
        .service
        .payment(&merchant.id, &order_id)
        .await?
        .ok_or_else(|| ProtocolError::invalid("order_id not found"))?;
    let view = state.as_queried(view);
    let card = view.order.kind.is_card();
    let response = StatusQueryResponse {
        rsp_code: RspCode::Success.as_str().into(),
        rsp_msg: RspCode::Success.default_message().into(),
        merchant_id: merchant.id.to_string(),
        order_id: view.order.merchant_order_id(&view.attempt.id),
        order_status: view.status.code().into(),
        state_code: view.status.state_code().into(),
        payment_method: view.attempt.method.code().into(),
        amount: view.attempt.money.amount.to_string(),
        refund_amount: view.refunded().to_string(),
        currency_type: view.attempt.money.currency.code().into(),
        tip: view.order.tip.to_string(),
        bizpay_order_id: view.attempt.bizpay_order_id.clone(),
        trade_time: view.trade_time().beijing_compact(),
        create_time: view.attempt.created_at.beijing_compact(),
        prepay_order_id: (view.order.kind == OrderKind::Checkout)
            .then(|| view.order.reference_str().to_owned()),
        reference: view.order.reference.as_ref().map(ToString::to_string),
        total_amount: card.then(|| view.attempt.money.amount.to_string()),
        currency: card.then(|| view.attempt.money.currency.code().to_owned()),
    };
    Ok(to_fields(&response))
}

/// The scope of envelope REFUNDs made idempotent without a refund id.
const REFUND_SCOPE: &str = "envelope:REFUND";

/// What names an envelope REFUND sent without a refund id: every field of the request with
/// its name, in one canonical text (names sorted, each value as JSON), hashed. Two
/// different refunds never share it — unlike the md5, which joins bare values, so that
/// `P-1` + `23` and `P-12` + `3` sign alike.
pub(crate) fn canonical_key(fields: &Fields) -> String {
    let sorted: BTreeMap<&str, &serde_json::Value> =
        fields.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let text = serde_json::to_string(&sorted).unwrap_or_default();
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// REFUND "1.0". With the merchant's refund id (`order_id`) a repeat is recognised by that
/// id; without one, the same request (every field alike, [`canonical_key`]) within the
/// retention window answers the first result instead of refunding again
/// (docs/envelope.md). Either way the key is written with the refund itself, so a repeat
/// after a lost answer — a dropped connection, a killed gateway — finds the refund made.
pub async fn refund(
    state: &AppState,
    signing: &Signing,
    fields: &Fields,
) -> Result<Fields, ProtocolError> {
    if fields
        .get("order_id")
        .is_some_and(|id| !id.is_null() && id.as_str() != Some(""))
    {
        return refund_once(state, signing, fields, None).await;
    }
    let merchant = &signing.merchant.id;
    let key = canonical_key(fields);
    let claimed = state
        .service
        .claim_key(merchant, REFUND_SCOPE, &key, key.clone())
        .await?;
    match claimed {
        Idempotency::Replay { body, .. } => match serde_json::from_str(&body) {
            Ok(serde_json::Value::Object(first)) => {
                tracing::info!(merchant_id = %merchant, "identical REFUND retried; replaying the first result");
                Ok(first)
            }
            _ => Err(ProtocolError::internal(&ServiceError::Corrupt(
                "stored refund result",
            ))),
        },
        Idempotency::InProgress | Idempotency::Mismatch => Err(ProtocolError::new(
            RspCode::Processing,
            "an identical REFUND is being processed; query the payment for its result",
        )),
        Idempotency::Fresh => {
            let request_key = format!("envelope:{key}");
            let result = refund_once(state, signing, fields, Some(request_key)).await;
            let recorded = match &result {
                Ok(answer) => {
                    let text = serde_json::Value::Object(answer.clone()).to_string();
                    state
                        .service
                        .answer_key(merchant, REFUND_SCOPE, &key, 200, text)
                        .await
                }
                // Refused: nothing was refunded, and a retry is asked again.
                Err(_) => {
                    state
                        .service
                        .release_key(merchant, REFUND_SCOPE, &key)
                        .await
                }
            };
            if let Err(e) = recorded {
                tracing::error!(error = %e, "refund idempotency could not be recorded");
            }
            result
        }
    }
}

async fn refund_once(
    state: &AppState,
    signing: &Signing,
    fields: &Fields,
    request_key: Option<String>,
) -> Result<Fields, ProtocolError> {
    let r = RefundRequest::read(fields)?;
    optional_merchant(r.merchant_id, signing)?;
    let ori = required(r.ori_order_id, "ori_order_id")?;
    let amount = r
        .refund_amt
        .ok_or_else(|| ProtocolError::invalid("missing required field: refund_amt"))?;
    let amount = Amount::parse(&amount)
        .map_err(|e| ProtocolError::format(e.to_string().replacen("amount", "refund_amt", 1)))?;
    let bad_id = |id: &String| id.len() > 64 || !id.bytes().all(|b| b.is_ascii_graphic());
    if r.order_id.as_ref().is_some_and(bad_id) {
        return Err(ProtocolError::format(
            "order_id must be 1 to 64 printable ASCII characters without spaces",
        ));
    }
    let not_found = || ProtocolError::invalid("ori_order_id not found");
    let merchant = &signing.merchant;
    let payment = state
        .service
        .payment(&merchant.id, &ori)
        .await?
        .ok_or_else(not_found)?;
    let refund = state
        .service
        .refund(RefundAsk {
            merchant: merchant.id.clone(),
            payment_id: payment.attempt.id.clone(),
            amount,
            merchant_refund_id: r.order_id.clone(),
            request_key,
            requested_by: ottgate_core::RefundedBy::Envelope,
            reason: None,
        })
        .await
        .map(|refunded| refunded.refund)
        .map_err(|e| match e {
            RefundError::PaymentNotFound => not_found(),
            RefundError::NotPaid => ProtocolError::new(
                RspCode::OrderTypeError,
                "ori_order_id is not a paid payment",
            ),
            // Appendix B's "pre-authoried order": an authorisation is voided, not refunded.
            RefundError::Authorised => ProtocolError::new(
                RspCode::OrderTypeError,
                "ori_order_id is a card authorisation not captured yet: it cannot be refunded",
            ),
            RefundError::Exceeds { refundable: 0 } => {
                ProtocolError::new(RspCode::Fail, "ori_order_id is already fully refunded")
            }
            RefundError::Exceeds { refundable } => ProtocolError::new(
                RspCode::Fail,
                format!("refund_amt exceeds the refundable amount ({refundable})"),
            ),
            RefundError::IdReused => ProtocolError::new(
                RspCode::OrderUsed,
                "order_id has already been used for a different refund",
            ),
            RefundError::Refused(reason) => {
                ProtocolError::new(RspCode::Fail, format!("refund refused: {reason}"))
            }
            RefundError::Service(e) => ProtocolError::internal(&e),
        })?;
    let response = RefundResponse {
        rsp_code: RspCode::Success.as_str().into(),
        rsp_msg: RspCode::Success.default_message().into(),
        merchant_id: merchant.id.to_string(),
        order_id: refund
            .merchant_refund_id
            .clone()
            .unwrap_or_else(|| refund.id.to_string()),
        refund_id: refund.id.to_string(),
        ori_order_id: payment.order.merchant_order_id(&refund.payment_id),
        refund_amt: refund.money.amount.to_string(),
        refund_status: refund.status.code().into(),
        currency_type: refund.money.currency.code().into(),
        trade_time: refund
            .finished_at
            .unwrap_or(refund.created_at)
            .beijing_compact(),
    };
    Ok(to_fields(&response))
}

#[cfg(test)]
mod tests {
    use super::canonical_key;
    use ottgate_envelope::Fields;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn fields(pairs: &[(&str, Value)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn refunds_whose_values_join_alike_have_different_keys() {
        let a = fields(&[("ori_order_id", json!("P-1")), ("refund_amt", json!("23"))]);
        let b = fields(&[("ori_order_id", json!("P-12")), ("refund_amt", json!("3"))]);
        assert_ne!(canonical_key(&a), canonical_key(&b));
        // A value moved to another name is another request too.
        let c = fields(&[("ori_order_id", json!("23")), ("refund_amt", json!("P-1"))]);
        assert_ne!(canonical_key(&a), canonical_key(&c));
    }

    fn a_field() -> impl Strategy<Value = (String, Value)> {
        let name = prop::sample::select(vec![
            "merchant_id",
            "ori_order_id",
            "refund_amt",
            "operator_id",
            "order_id",
        ]);
        let value = prop_oneof![
            "[A-Z0-9-]{0,6}".prop_map(Value::from),
            (0u64..10_000).prop_map(Value::from),
            Just(Value::Null),
        ];
        (name, value).prop_map(|(n, v)| (n.to_owned(), v))
    }

    proptest! {
        /// Two refund requests share a key exactly when they are the same request (every
        /// field alike, whatever order the fields came in).
        #[test]
        fn the_key_is_the_same_exactly_for_the_same_request(
            a in prop::collection::vec(a_field(), 0..5),
            b in prop::collection::vec(a_field(), 0..5),
        ) {
            let (a, b): (Fields, Fields) = (a.into_iter().collect(), b.into_iter().collect());
            prop_assert_eq!(canonical_key(&a) == canonical_key(&b), a == b);
            let reversed: Fields = a.iter().rev().map(|(k, v)| (k.clone(), v.clone())).collect();
            prop_assert_eq!(canonical_key(&a), canonical_key(&reversed));
        }
    }
}
