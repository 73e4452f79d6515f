//! The store conformance suite: every case is generic over [`Store`], and runs against
//! each implementation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code")]

use ottgate_core::merchant::MerchantName;
use ottgate_core::order::NotPayable;
use ottgate_core::{
    Amount, AttemptId, AttemptOutcome, AttemptStatus, ChannelIds, CloseReason, Currency, Merchant,
    MerchantId, MerchantRef, Money, NotifyId, OperatorId, Order, OrderId, OrderKind, OrderStatus,
    PaymentMethod, RefundId, RefundStatus, RefundedBy, Timestamp,
};
use ottgate_store::prelude::*;
use ottgate_store::{
    AuditEntry, Authorise, BarcodeBacklog, BarcodeJob, BarcodePhase, DayRange, DeliveryClaim, Due,
    EventFilter, FinishRefund, HoldOutcome, IdempotencyAnswer, IdempotencyKey, KeyRotation,
    LinkFlows, ListStatus, NewSession, NewSignKey, PaymentFilter,
};
use ottgate_store::{
    BeginRefund, CreateOutcome, Delivery, DeliveryAttemptRecord, DeliveryState, Idempotency,
    IdempotencyClaim, MerchantRecord, NewDelivery, NewOrder, NewRefund, NewUser, NextStep,
    PgOptions, PgStore, RefundRequestKey, SettleOutcome, SettleRequest, SignInAttempt, SqliteStore,
    StartOutcome, Store, StoreError, UserRemoval, UserRole,
};
use std::sync::Arc;
use std::time::Duration;

const T0: Timestamp = Timestamp::from_epoch_millis(1_700_000_000_000);

fn at(secs: u64) -> Timestamp {
    T0.plus(Duration::from_secs(secs))
}

/// The merchant's callbacks from `since` on, at most ten.
fn events_since(merchant: &MerchantId, since: Timestamp) -> EventFilter {
    EventFilter {
        before: None,
        merchant: merchant.clone(),
        since,
        limit: 10,
    }
}

/// The merchant's thirty days from `from`.
fn month_from(merchant: &MerchantId, from: Timestamp) -> DayRange {
    DayRange {
        merchant: merchant.clone(),
        from,
        days: 30,
    }
}

fn merchant(id: &str) -> MerchantRecord {
    MerchantRecord {
        merchant: Merchant::new(
            MerchantId::parse(id).unwrap(),
            MerchantName::parse("Maple Tea House").unwrap(),
            OperatorId::parse("0000000696").unwrap(),
            vec![Currency::Cad, Currency::Usd],
            T0,
        ),
        sign_key_sealed: vec![1, 2, 3],
        app_key_hash: "$argon2id$placeholder".into(),
        rotation: KeyRotation::default(),
        link: LinkFlows {
            mer_code: format!("{:0>32}", id.to_ascii_lowercase()),
            ..LinkFlows::default()
        },
        time_zone: None,
    }
}

fn order(m: &MerchantRecord, reference: &str, duration_secs: u64) -> NewOrder {
    let merchant = &m.merchant;
    NewOrder {
        order: Order {
            reference: Some(MerchantRef::parse(reference).unwrap()),
            sale_num: "S-1".into(),
            redirect_url: "https://shop.example/return".into(),
            remarks: Some("可以".into()),
            ..Order::new(
                OrderKind::Checkout,
                merchant,
                Money::new(Amount::from_minor(1234).unwrap(), Currency::Cad),
                "https://shop.example/notify".into(),
                T0,
                Duration::from_secs(duration_secs),
            )
        },
        request_md5: format!("MD5-{reference}"),
        response_data: format!("{{\"prepay_order_id\":\"{reference}\"}}"),
        first_attempt: None,
    }
}

fn delivery(o: &Order, attempt: &AttemptId) -> NewDelivery {
    NewDelivery {
        notify_id: NotifyId::generate(),
        merchant_id: o.merchant_id.clone(),
        order_id: o.id.clone(),
        attempt_id: Some(attempt.clone()),
        event: "paid".into(),
        url: o.callback_url.clone(),
        body: "{}".into(),
    }
}

/// Deliveries due at `now` that `worker` leases for a minute (at most 10).
async fn claim<S: Store>(store: &S, now: Timestamp, worker: &str) -> Vec<Delivery> {
    store
        .claim_due_deliveries(DeliveryClaim {
            now,
            lease: Duration::from_secs(60),
            owner: worker.to_string(),
            limit: 10,
        })
        .await
        .unwrap()
}

fn settle_req(
    o: &Order,
    attempt: &AttemptId,
    outcome: AttemptOutcome,
    t: Timestamp,
) -> SettleRequest {
    SettleRequest {
        attempt_id: attempt.clone(),
        outcome,
        at: t,
        bizpay_order_id: Some("SB0001".into()),
        buyer_paid: None,
        on_paid: Some(delivery(o, attempt)),
        capture: false,
    }
}

/// A merchant and an open order, ready to pay.
async fn open_order<S: Store>(store: &S, reference: &str) -> Order {
    let m = merchant("ON00000001");
    match store.insert_merchant(m.clone()).await {
        Ok(()) | Err(StoreError::Duplicate(_)) => {}
        Err(e) => panic!("{e}"),
    }
    let new = order(&m, reference, 600);
    assert_eq!(
        store.create_order(new.clone()).await.unwrap(),
        CreateOutcome::Created {
            id: new.order.id.clone(),
            attempt: None
        }
    );
    new.order
}

async fn an_order_is_found_by_its_remarks_newest_first<S: Store>(store: S) {
    let m = merchant("ON00000001");
    store.insert_merchant(m.clone()).await.unwrap();
    let other = merchant("ON00000002");
    store.insert_merchant(other.clone()).await.unwrap();
    let mut ids = Vec::new();
    for (i, (owner, reference)) in [(&m, "R-1"), (&m, "R-2"), (&other, "R-3")]
        .into_iter()
        .enumerate()
    {
        let mut new = order(owner, reference, 600);
        new.order.remarks = Some("WC-7781".into());
        new.order.created_at = at(u64::try_from(i).unwrap());
        store.create_order(new.clone()).await.unwrap();
        ids.push(new.order.id);
    }
    let found = store
        .order_by_remarks(&m.merchant.id, "WC-7781")
        .await
        .unwrap();
    assert_eq!(
        found.map(|o| o.id),
        Some(ids[1].clone()),
        "the merchant's newest"
    );
    assert_eq!(
        store
            .order_by_remarks(&m.merchant.id, "WC-77")
            .await
            .unwrap(),
        None,
        "exactly"
    );
    let theirs = store
        .order_by_remarks(&other.merchant.id, "WC-7781")
        .await
        .unwrap();
    assert_eq!(theirs.map(|o| o.id), Some(ids[2].clone()));
}

async fn started<S: Store>(store: &S, o: &Order, method: PaymentMethod, t: Timestamp) -> AttemptId {
    match store.start_attempt(&o.id, method, t).await.unwrap() {
        StartOutcome::Created(a) | StartOutcome::Resumed(a) => a.id,
        StartOutcome::NotPayable(r) => panic!("not payable: {r}"),
    }
}

async fn merchants_round_trip_and_ids_are_unique<S: Store>(store: S) {
    let m = merchant("ON00000001");
    store.insert_merchant(m.clone()).await.unwrap();
    assert_eq!(
        store.merchant(&m.merchant.id).await.unwrap(),
        Some(m.clone())
    );
    assert!(matches!(
        store.insert_merchant(m.clone()).await,
        Err(StoreError::Duplicate(_))
    ));
    // Methods and channel ids change; nothing else does.
    let ids = ChannelIds {
        wechat_sub_mch_id: Some("1900000109".into()),
        mcc: Some("5812".into()),
    };
    let methods = [PaymentMethod::Alipay, PaymentMethod::UnionPay];
    let mut changed = m.merchant.clone();
    changed.methods = methods.to_vec();
    changed.channel_ids = ids.clone();
    changed.name = MerchantName::parse("Not Written").unwrap();
    assert!(store.update_merchant_channels(&changed).await.unwrap());
    let updated = store.merchant(&m.merchant.id).await.unwrap().unwrap();
    assert_eq!(
        (
            updated.merchant.methods.as_slice(),
            &updated.merchant.channel_ids
        ),
        (methods.as_slice(), &ids)
    );
    assert_eq!(updated.sign_key_sealed, m.sign_key_sealed);
    assert_eq!(updated.merchant.name, m.merchant.name);
    changed.id = MerchantId::parse("ON99999999").unwrap();
    assert!(!store.update_merchant_channels(&changed).await.unwrap());
    assert_eq!(
        store
            .merchant(&MerchantId::parse("ON99999999").unwrap())
            .await
            .unwrap(),
        None
    );
}

async fn link_flows_are_found_by_mer_code_and_off_until_switched_on<S: Store>(store: S) {
    let m = merchant("ON00000001");
    let other = merchant("ON00000002");
    store.insert_merchant(m.clone()).await.unwrap();
    store.insert_merchant(other.clone()).await.unwrap();
    let found = store
        .merchant_by_mer_code(&m.link.mer_code)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.merchant.id, m.merchant.id);
    assert!(!found.link.enabled, "off until the merchant enables them");
    assert_eq!(store.merchant_by_mer_code("nope").await.unwrap(), None);
    let on = LinkFlows {
        mer_code: "ignored: the code stays".into(),
        enabled: true,
        callback_url: Some("https://shop.example/notify".into()),
    };
    assert!(store.set_link_flows(&m.merchant.id, &on).await.unwrap());
    let now = store.merchant(&m.merchant.id).await.unwrap().unwrap();
    assert_eq!(
        now.link,
        LinkFlows {
            mer_code: m.link.mer_code.clone(),
            ..on.clone()
        }
    );
    let untouched = store.merchant(&other.merchant.id).await.unwrap().unwrap();
    assert_eq!(untouched.link, other.link);
    let missing = MerchantId::parse("ON99999999").unwrap();
    assert!(!store.set_link_flows(&missing, &on).await.unwrap());
    // Two merchants never share a code; one inserted without a code has none.
    let mut clash = merchant("ON00000003");
    clash.link.mer_code = m.link.mer_code.clone();
    assert!(store.insert_merchant(clash).await.is_err());
    let mut codeless = merchant("ON00000004");
    codeless.link.mer_code.clear();
    store.insert_merchant(codeless.clone()).await.unwrap();
    let mut codeless_too = merchant("ON00000005");
    codeless_too.link.mer_code.clear();
    store.insert_merchant(codeless_too).await.unwrap();
    assert_eq!(store.merchant_by_mer_code("").await.unwrap(), None);
}

async fn a_repeated_reference_returns_the_first_request_and_response<S: Store>(store: S) {
    let o = open_order(&store, "prepay-1").await;
    let m = merchant("ON00000001");
    let mut again = order(&m, "prepay-1", 60);
    again.request_md5 = "OTHER".into();
    assert_eq!(
        store.create_order(again).await.unwrap(),
        CreateOutcome::Exists {
            request_md5: "MD5-prepay-1".into(),
            response_data: "{\"prepay_order_id\":\"prepay-1\"}".into()
        }
    );
    let by_ref = store
        .order_by_reference(&o.merchant_id, o.reference.as_ref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_ref, o);
    assert_eq!(
        store.order_by_token(&o.token).await.unwrap(),
        Some(o.clone())
    );
    assert_eq!(store.order(&o.id).await.unwrap(), Some(o));
}

async fn a_colliding_order_id_is_replaced_with_a_fresh_one<S: Store>(store: S) {
    let first = open_order(&store, "collide-1").await;
    let m = merchant("ON00000001");
    let mut second = order(&m, "collide-2", 60);
    second.order.id = first.id.clone(); // as if another process generated the same id
    let CreateOutcome::Created { id, .. } = store.create_order(second.clone()).await.unwrap()
    else {
        panic!("not created")
    };
    assert_ne!(id, first.id);
    let stored = store
        .order_by_reference(&m.merchant.id, second.order.reference.as_ref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.id, id);
    assert_eq!(
        store.order(&first.id).await.unwrap().unwrap().reference,
        first.reference
    );
}

async fn choosing_the_same_method_twice_resumes_the_pending_attempt<S: Store>(store: S) {
    let o = open_order(&store, "prepay-2").await;
    let first = started(&store, &o, PaymentMethod::Alipay, at(1)).await;
    assert!(matches!(
        store.start_attempt(&o.id, PaymentMethod::Alipay, at(2)).await.unwrap(),
        StartOutcome::Resumed(a) if a.id == first
    ));
    let other = started(&store, &o, PaymentMethod::WeChatPay, at(3)).await;
    assert_ne!(first, other);
    let attempts = store.attempts(&o.id).await.unwrap();
    assert_eq!(
        attempts.iter().map(|a| a.method).collect::<Vec<_>>(),
        [PaymentMethod::Alipay, PaymentMethod::WeChatPay]
    );
    let (order, together) = store.order_with_attempts(&o.id).await.unwrap().unwrap();
    assert_eq!(
        (order, together),
        (store.order(&o.id).await.unwrap().unwrap(), attempts)
    );
    assert_eq!(
        store
            .order_with_attempts(&OrderId::generate(at(9)))
            .await
            .unwrap(),
        None
    );
    // Asked as its merchant: the same; asked as another merchant: nothing.
    let mine = store
        .merchant_order_with_attempts(&o.merchant_id, &o.id)
        .await
        .unwrap();
    assert_eq!(mine, store.order_with_attempts(&o.id).await.unwrap());
    let stranger = MerchantId::parse("ON00000077").unwrap();
    assert_eq!(
        store
            .merchant_order_with_attempts(&stranger, &o.id)
            .await
            .unwrap(),
        None
    );
}

async fn paying_enqueues_exactly_one_callback_even_when_repeated<S: Store>(store: S) {
    let o = open_order(&store, "prepay-3").await;
    let a = started(&store, &o, PaymentMethod::Alipay, at(1)).await;
    let first = store
        .settle(settle_req(&o, &a, AttemptOutcome::Paid, at(5)))
        .await
        .unwrap();
    let SettleOutcome::Applied {
        settlement,
        order,
        attempt,
    } = first
    else {
        panic!("{first:?}")
    };
    assert!(settlement.order_paid);
    assert_eq!(order.status, OrderStatus::Success);
    assert_eq!(order.paid_attempt.as_ref(), Some(&a));
    assert_eq!(order.finished_at, Some(at(5)));
    assert_eq!(attempt.status, AttemptStatus::Paid);
    assert_eq!(attempt.bizpay_order_id.as_deref(), Some("SB0001"));
    let again = store
        .settle(settle_req(&o, &a, AttemptOutcome::Paid, at(6)))
        .await
        .unwrap();
    assert!(matches!(again, SettleOutcome::AlreadyApplied { .. }));
    let deliveries = store.deliveries_for_order(&o.id).await.unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].state, DeliveryState::Pending);
    assert_eq!(deliveries[0].next_attempt_at, Some(at(5)));
    // A contradicting outcome changes nothing.
    let late_fail = store
        .settle(settle_req(&o, &a, AttemptOutcome::Failed, at(7)))
        .await
        .unwrap();
    assert!(matches!(late_fail, SettleOutcome::Rejected { .. }));
    assert_eq!(
        store.order(&o.id).await.unwrap().unwrap().status,
        OrderStatus::Success
    );
}

async fn concurrent_payments_of_one_attempt_apply_once<S: Store>(store: S) {
    let store = Arc::new(store);
    let o = open_order(&*store, "prepay-4").await;
    let a = started(&*store, &o, PaymentMethod::UnionPay, at(1)).await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (store, o, a) = (store.clone(), o.clone(), a.clone());
            tokio::spawn(async move {
                store
                    .settle(settle_req(&o, &a, AttemptOutcome::Paid, at(10 + i)))
                    .await
            })
        })
        .collect();
    let mut applied = 0;
    for t in tasks {
        if matches!(t.await.unwrap().unwrap(), SettleOutcome::Applied { .. }) {
            applied += 1;
        }
    }
    assert_eq!(applied, 1);
    assert_eq!(store.deliveries_for_order(&o.id).await.unwrap().len(), 1);
}

async fn a_second_paid_attempt_is_recorded_without_a_second_callback<S: Store>(store: S) {
    let o = open_order(&store, "prepay-5").await;
    let a = started(&store, &o, PaymentMethod::Alipay, at(1)).await;
    let b = started(&store, &o, PaymentMethod::WeChatPay, at(2)).await;
    store
        .settle(settle_req(&o, &a, AttemptOutcome::Paid, at(3)))
        .await
        .unwrap();
    let second = store
        .settle(settle_req(&o, &b, AttemptOutcome::Paid, at(4)))
        .await
        .unwrap();
    let SettleOutcome::Applied {
        settlement, order, ..
    } = second
    else {
        panic!("{second:?}")
    };
    assert!(settlement.duplicate_payment && !settlement.order_paid);
    assert_eq!(order.paid_attempt.as_ref(), Some(&a));
    assert_eq!(store.deliveries_for_order(&o.id).await.unwrap().len(), 1);
}

async fn a_declined_payment_closes_the_order<S: Store>(store: S) {
    let o = open_order(&store, "prepay-6").await;
    let a = started(&store, &o, PaymentMethod::Gp, at(1)).await;
    store
        .settle(settle_req(&o, &a, AttemptOutcome::Failed, at(2)))
        .await
        .unwrap();
    let order = store.order(&o.id).await.unwrap().unwrap();
    assert_eq!(order.status, OrderStatus::Closed(CloseReason::Failed));
    assert!(store.deliveries_for_order(&o.id).await.unwrap().is_empty());
    assert_eq!(
        store
            .start_attempt(&o.id, PaymentMethod::Alipay, at(3))
            .await
            .unwrap(),
        StartOutcome::NotPayable(NotPayable::Closed)
    );
}

async fn expiry_closes_orders_and_their_pending_attempts<S: Store>(store: S) {
    let o = open_order(&store, "prepay-7").await; // expires at +600 s
    let a = started(&store, &o, PaymentMethod::Alipay, at(1)).await;
    assert!(store.expire_due(at(599), 100).await.unwrap().is_empty());
    assert_eq!(
        store.expire_due(at(600), 100).await.unwrap(),
        vec![o.id.clone()]
    );
    assert_eq!(
        store.order(&o.id).await.unwrap().unwrap().status,
        OrderStatus::Closed(CloseReason::Expired)
    );
    assert_eq!(
        store.attempt(&a).await.unwrap().unwrap().status,
        AttemptStatus::Expired
    );
    assert_eq!(
        store
            .start_attempt(&o.id, PaymentMethod::Alipay, at(601))
            .await
            .unwrap(),
        StartOutcome::NotPayable(NotPayable::Expired)
    );
    // The wallet's word wins: a verified payment after expiry pays, and is flagged.
    let late = store
        .settle(settle_req(&o, &a, AttemptOutcome::Paid, at(700)))
        .await
        .unwrap();
    let SettleOutcome::Applied { order, .. } = late else {
        panic!("{late:?}")
    };
    assert_eq!(order.status, OrderStatus::Success);
    assert!(order.paid_after_close);
    assert_eq!(store.deliveries_for_order(&o.id).await.unwrap().len(), 1);
}

async fn an_unswept_expired_order_is_not_payable<S: Store>(store: S) {
    let o = open_order(&store, "prepay-8").await;
    assert_eq!(
        store
            .start_attempt(&o.id, PaymentMethod::Alipay, at(600))
            .await
            .unwrap(),
        StartOutcome::NotPayable(NotPayable::Expired)
    );
    assert_eq!(
        store.order(&o.id).await.unwrap().unwrap().status,
        OrderStatus::Closed(CloseReason::Expired)
    );
}

async fn a_read_closes_an_expired_order_once<S: Store>(store: S) {
    let o = open_order(&store, "prepay-11").await;
    assert!(!store.close_if_expired(&o.id, at(599)).await.unwrap());
    assert!(store.close_if_expired(&o.id, at(600)).await.unwrap());
    assert!(!store.close_if_expired(&o.id, at(601)).await.unwrap());
    let closed = store.order(&o.id).await.unwrap().unwrap();
    assert_eq!(
        (closed.status, closed.finished_at),
        (OrderStatus::Closed(CloseReason::Expired), Some(at(600)))
    );
}

async fn an_order_expired_now_is_closed_once_and_a_late_payment_still_pays_it<S: Store>(store: S) {
    let o = open_order(&store, "prepay-expire-now").await;
    let a = started(&store, &o, PaymentMethod::Alipay, at(1)).await;
    assert!(store.expire_now(&o.id, at(5)).await.unwrap());
    assert!(!store.expire_now(&o.id, at(6)).await.unwrap());
    let (closed, attempts) = store.order_with_attempts(&o.id).await.unwrap().unwrap();
    assert_eq!(
        (closed.status, closed.finished_at, closed.expires_at),
        (
            OrderStatus::Closed(CloseReason::Expired),
            Some(at(5)),
            at(5)
        )
    );
    assert_eq!(attempts[0].status, AttemptStatus::Expired);
    // The wallet's verified success after expiry still pays it, flagged, with its callback.
    let outcome = store
        .settle(settle_req(&o, &a, AttemptOutcome::Paid, at(7)))
        .await
        .unwrap();
    let SettleOutcome::Applied {
        settlement, order, ..
    } = outcome
    else {
        panic!("not applied: {outcome:?}");
    };
    assert!(settlement.paid_after_close && settlement.order_paid);
    assert_eq!(order.status, OrderStatus::Success);
    assert_eq!(store.next_delivery_due().await.unwrap(), Some(at(7)));
    // A paid order is not expired by it.
    assert!(!store.expire_now(&o.id, at(8)).await.unwrap());
}

async fn deliveries_are_leased_retried_and_finished<S: Store>(store: S) {
    let o = open_order(&store, "prepay-9").await;
    let a = started(&store, &o, PaymentMethod::Alipay, at(1)).await;
    store
        .settle(settle_req(&o, &a, AttemptOutcome::Paid, at(2)))
        .await
        .unwrap();
    assert_eq!(store.next_delivery_due().await.unwrap(), Some(at(2)));
    assert!(claim(&store, at(1), "w1").await.is_empty());
    let claimed = claim(&store, at(2), "w1").await;
    assert_eq!(claimed.len(), 1);
    // Leased: another worker gets nothing until the lease runs out.
    assert!(claim(&store, at(3), "w2").await.is_empty());
    let d = &claimed[0];
    let failed = DeliveryAttemptRecord {
        delivery_id: d.id,
        lease_owner: "w1".into(),
        started_at: at(2),
        duration: Duration::from_millis(30),
        http_status: Some(500),
        error: Some("HTTP 500".into()),
        response_start: None,
        next: NextStep::RetryAt(at(17)),
    };
    assert!(store.record_delivery_attempt(failed.clone()).await.unwrap());
    // The lease is released with the record; a stale owner cannot record again.
    assert!(!store.record_delivery_attempt(failed).await.unwrap());
    assert!(claim(&store, at(16), "w2").await.is_empty());
    assert_eq!(store.stats(at(17)).await.unwrap().deliveries_leased, 0);
    let again = claim(&store, at(17), "w2").await;
    assert_eq!(again[0].attempts, 1);
    assert_eq!(
        store.stats(at(18)).await.unwrap().deliveries_leased,
        1,
        "held by w2"
    );
    let ok = DeliveryAttemptRecord {
        delivery_id: d.id,
        lease_owner: "w2".into(),
        started_at: at(17),
        duration: Duration::from_millis(20),
        http_status: Some(200),
        error: None,
        response_start: Some("SUCCESS".into()),
        next: NextStep::Delivered,
    };
    assert!(store.record_delivery_attempt(ok).await.unwrap());
    let done = &store.deliveries_for_order(&o.id).await.unwrap()[0];
    assert_eq!((done.state, done.attempts), (DeliveryState::Delivered, 2));
    assert_eq!(store.next_delivery_due().await.unwrap(), None);
    let attempts = store.delivery_attempts(d.id).await.unwrap();
    assert_eq!(
        attempts.iter().map(|a| a.http_status).collect::<Vec<_>>(),
        [Some(500), Some(200)]
    );
    assert_eq!(attempts[1].response_start.as_deref(), Some("SUCCESS"));
    let stats = store.stats(at(18)).await.unwrap();
    assert_eq!(stats.deliveries_leased, 0, "released with the record");
    assert!(stats.deliveries_by_state.contains(&("delivered".into(), 1)));
    assert!(stats.orders_by_status.contains(&("success".into(), 1)));
}

async fn an_expired_lease_is_taken_over<S: Store>(store: S) {
    let o = open_order(&store, "prepay-10").await;
    let a = started(&store, &o, PaymentMethod::Alipay, at(1)).await;
    store
        .settle(settle_req(&o, &a, AttemptOutcome::Paid, at(2)))
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_due_deliveries(DeliveryClaim {
                now: at(2),
                lease: Duration::from_secs(30),
                owner: "crashed".to_string(),
                limit: 10
            })
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .claim_due_deliveries(DeliveryClaim {
                now: at(32),
                lease: Duration::from_secs(30),
                owner: "w2".to_string(),
                limit: 10
            })
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn a_failing_write_does_not_spoil_its_batch<S: Store>(store: S) {
    let store = Arc::new(store);
    store.insert_merchant(merchant("ON00000001")).await.unwrap();
    // Many writes at once share batches; the duplicates fail alone.
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                if i % 2 == 0 {
                    store
                        .insert_merchant(merchant("ON00000001"))
                        .await
                        .map(|_| false)
                } else {
                    let m = merchant("ON00000001");
                    store
                        .create_order(order(&m, &format!("batch-{i}"), 60))
                        .await
                        .map(|_| true)
                }
            })
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(true) => created += 1,
            Err(StoreError::Duplicate(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(created, 25);
    for i in (1..50).step_by(2) {
        let r = MerchantRef::parse(&format!("batch-{i}")).unwrap();
        assert!(
            store
                .order_by_reference(&MerchantId::parse("ON00000001").unwrap(), &r)
                .await
                .unwrap()
                .is_some()
        );
    }
}

/// Creates made at the same moment share batches (a SQLite commit, a PostgreSQL multi-row
/// insert). Within them: the same reference twice (one is created, the other told what the
/// first was), an order of a merchant that does not exist (refused alone), and an order
/// whose id another one in flight already has (created under a fresh id). Every other order
/// goes in, each caller told about its own.
async fn concurrent_creates_each_get_their_own_answer<S: Store>(store: S) {
    let store = Arc::new(store);
    let m = merchant("ON00000001");
    store.insert_merchant(m.clone()).await.unwrap();
    let stranger = merchant("ON00000404");
    let shared_id = order(&m, "shared-id-a", 60).order.id;
    let news: Vec<NewOrder> = (0..60)
        .map(|i| match i {
            // Two requests under one reference, with different bodies.
            10 | 11 => {
                let mut new = order(&m, "twice", 60);
                new.request_md5 = format!("MD5-twice-{i}");
                new
            }
            20 => order(&stranger, "stranger", 60),
            30 | 31 => {
                let mut new = order(&m, &format!("shared-id-{i}"), 60);
                new.order.id = shared_id.clone();
                new
            }
            _ => order(&m, &format!("many-{i}"), 60),
        })
        .collect();
    let tasks: Vec<_> = news
        .iter()
        .cloned()
        .map(|new| {
            let store = store.clone();
            tokio::spawn(async move { store.create_order(new).await })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    let mut twice_created = 0;
    let mut twice_told = Vec::new();
    let mut ids = std::collections::HashSet::new();
    for (i, (new, answer)) in news.iter().zip(answers).enumerate() {
        match (i, answer) {
            (20, Err(_)) => {}
            (20, other) => panic!("an unknown merchant's order: {other:?}"),
            (10 | 11, Ok(CreateOutcome::Created { .. })) => twice_created += 1,
            (10 | 11, Ok(CreateOutcome::Exists { request_md5, .. })) => {
                twice_told.push(request_md5);
            }
            (_, Ok(CreateOutcome::Created { id, attempt: None })) => {
                let stored = store
                    .order_by_reference(&m.merchant.id, new.order.reference.as_ref().unwrap())
                    .await
                    .unwrap()
                    .unwrap_or_else(|| panic!("order {i} was said to be created"));
                assert_eq!(stored.id, id, "order {i}");
                assert_eq!(stored.token, new.order.token, "order {i}");
                assert!(ids.insert(id), "order {i}: an id given twice");
            }
            (_, other) => panic!("order {i}: {other:?}"),
        }
    }
    assert_eq!(twice_created, 1);
    assert_eq!(twice_told.len(), 1);
    assert!(twice_told[0].starts_with("MD5-twice-"));
    assert_eq!(
        ids.len(),
        57,
        "every other order created, under distinct ids"
    );
    assert!(
        ids.contains(&shared_id),
        "one of the two keeps the shared id"
    );
    let twice = store
        .order_by_reference(&m.merchant.id, &MerchantRef::parse("twice").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_ne!(twice.reference, None);
    assert!(
        store
            .order_by_reference(
                &stranger.merchant.id,
                &MerchantRef::parse("stranger").unwrap()
            )
            .await
            .unwrap()
            .is_none()
    );
}

async fn users_are_removed_with_their_sessions_but_never_the_last_admin<S: Store>(store: S) {
    store.insert_merchant(merchant("ON00000001")).await.unwrap();
    store.insert_merchant(merchant("ON00000002")).await.unwrap();
    let add = |email: &'static str, merchant: &'static str, role: UserRole| {
        let store = &store;
        async move {
            store
                .insert_user(NewUser {
                    merchant_id: MerchantId::parse(merchant).unwrap(),
                    email: email.into(),
                    password_hash: "$argon2id$v=19$placeholder".into(),
                    role,
                    created_at: T0,
                })
                .await
                .unwrap()
        }
    };
    let ada = add("ada@shop.example", "ON00000001", UserRole::Admin).await;
    let vic = add("vic@shop.example", "ON00000001", UserRole::Viewer).await;
    add("zed@other.example", "ON00000002", UserRole::Admin).await;
    store
        .insert_session(NewSession {
            id_hash: "vic-session".into(),
            user_id: vic.id,
            created_at: T0,
            expires_at: at(3600),
        })
        .await
        .unwrap();
    let ours = MerchantId::parse("ON00000001").unwrap();
    // Another merchant's user, and nobody at all, are not found.
    assert_eq!(
        store.remove_user(&ours, "zed@other.example").await.unwrap(),
        UserRemoval::NotFound
    );
    assert_eq!(
        store
            .remove_user(&ours, "nobody@shop.example")
            .await
            .unwrap(),
        UserRemoval::NotFound
    );
    assert!(
        store
            .user_by_email("zed@other.example")
            .await
            .unwrap()
            .is_some()
    );
    // The only admin stays.
    assert_eq!(
        store.remove_user(&ours, "ada@shop.example").await.unwrap(),
        UserRemoval::LastAdmin
    );
    // A viewer goes, and so does their session.
    assert_eq!(
        store.remove_user(&ours, "VIC@shop.example").await.unwrap(),
        UserRemoval::Removed
    );
    assert_eq!(store.user_by_email("vic@shop.example").await.unwrap(), None);
    assert_eq!(
        store.session_user("vic-session", at(1)).await.unwrap(),
        None
    );
    assert_eq!(store.users_of(&ours).await.unwrap(), vec![ada.clone()]);
    // With a second admin, either may go, but not both.
    add("bob@shop.example", "ON00000001", UserRole::Admin).await;
    assert_eq!(
        store.remove_user(&ours, "ada@shop.example").await.unwrap(),
        UserRemoval::Removed
    );
    assert_eq!(
        store.remove_user(&ours, "bob@shop.example").await.unwrap(),
        UserRemoval::LastAdmin
    );
    // The email is free again.
    add("ada@shop.example", "ON00000001", UserRole::Viewer).await;
}

/// Two admins removing each other at the same moment: one of them stays.
async fn admins_removing_each_other_at_once_leave_one<S: Store>(store: S) {
    let store = Arc::new(store);
    store.insert_merchant(merchant("ON00000001")).await.unwrap();
    for email in ["ada@shop.example", "bob@shop.example"] {
        store
            .insert_user(NewUser {
                merchant_id: MerchantId::parse("ON00000001").unwrap(),
                email: email.into(),
                password_hash: "$argon2id$v=19$placeholder".into(),
                role: UserRole::Admin,
                created_at: T0,
            })
            .await
            .unwrap();
    }
    let ours = MerchantId::parse("ON00000001").unwrap();
    let tasks: Vec<_> = ["ada@shop.example", "bob@shop.example"]
        .into_iter()
        .map(|email| {
            let (store, ours) = (store.clone(), ours.clone());
            tokio::spawn(async move { store.remove_user(&ours, email).await.unwrap() })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    outcomes.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(outcomes, vec![UserRemoval::LastAdmin, UserRemoval::Removed]);
    assert_eq!(store.users_of(&ours).await.unwrap().len(), 1);
}

/// What the wallet said the buyer paid in yuan, and who asked for each refund and why, read
/// back as written (issue 23: the payment's page shows them).
async fn the_buyers_yuan_and_who_refunded_why_are_kept<S: Store>(store: S) {
    let o = open_order(&store, "prepay-yuan").await;
    let a = started(&store, &o, PaymentMethod::WeChatPay, at(1)).await;
    let said = ottgate_core::BuyerPaid {
        cny: 6293,
        rate: Some("510000000".into()),
    };
    let paid = store
        .settle(SettleRequest {
            buyer_paid: Some(said.clone()),
            ..settle_req(&o, &a, AttemptOutcome::Paid, at(2))
        })
        .await
        .unwrap();
    assert_eq!(paid.attempt().buyer_paid.as_ref(), Some(&said));
    let read = store.attempt(&a).await.unwrap().unwrap();
    assert_eq!(read.buyer_paid, Some(said));
    let by_user = NewRefund {
        requested_by: RefundedBy::User("ana@shop.example".into()),
        reason: Some("Wrong size".into()),
        ..refund_req(&o, &a, 100, None)
    };
    store.begin_refund(by_user).await.unwrap();
    store
        .begin_refund(NewRefund {
            id: RefundId::generate(at(11)),
            ..refund_req(&o, &a, 200, None)
        })
        .await
        .unwrap();
    let refunds = store.refunds(&a).await.unwrap();
    let told: Vec<_> = refunds
        .iter()
        .map(|r| (r.requested_by.clone(), r.reason.clone()))
        .collect();
    assert_eq!(
        told,
        [
            (
                Some(RefundedBy::User("ana@shop.example".into())),
                Some("Wrong size".into())
            ),
            (Some(RefundedBy::Rest), None),
        ]
    );
}

/// A wallet's day: what the gateway did that day with that wallet, and what is pending;
/// a run's findings replace the day's open discrepancies, never a repaired or resolved one.
async fn a_wallets_day_is_read_and_each_run_replaces_its_open_discrepancies<S: Store>(store: S) {
    use ottgate_core::recon::{Side, WalletDay};
    use ottgate_store::{
        DiscrepancyFilter, DiscrepancyState, FinishedRun, NewDiscrepancy, ReconRun, RecordQuery,
        Resolution,
    };
    let o = open_order(&store, "recon-paid").await;
    let paid = started(&store, &o, PaymentMethod::WeChatPay, at(1)).await;
    store
        .settle(settle_req(&o, &paid, AttemptOutcome::Paid, at(2)))
        .await
        .unwrap();
    let BeginRefund::Reserved(refund) = store
        .begin_refund(refund_req(&o, &paid, 300, None))
        .await
        .unwrap()
    else {
        panic!("a refund is reserved");
    };
    store
        .finish_refund(FinishRefund {
            id: refund.id.clone(),
            status: RefundStatus::Success,
            channel_refund_id: Some("WXR1".into()),
            at: at(11),
        })
        .await
        .unwrap();
    let pending = started(
        &store,
        &open_order(&store, "recon-pending").await,
        PaymentMethod::WeChatPay,
        at(3),
    )
    .await;
    let other = open_order(&store, "recon-alipay").await;
    let alipay = started(&store, &other, PaymentMethod::Alipay, at(4)).await;
    store
        .settle(settle_req(&other, &alipay, AttemptOutcome::Paid, at(5)))
        .await
        .unwrap();

    let day = WalletDay::of(at(2));
    let query = RecordQuery {
        method: PaymentMethod::WeChatPay,
        day,
        pending_since: at(0),
    };
    let mut read: Vec<_> = store
        .recon_records(query)
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                r.record.side,
                r.record.ours,
                r.record.wallets,
                r.record.money.amount.minor(),
                r.record.done,
                r.record.on_day,
            )
        })
        .collect();
    read.sort();
    let mut want = vec![
        (
            Side::Payment,
            paid.as_str().to_owned(),
            Some("SB0001".to_owned()),
            1234,
            true,
            true,
        ),
        (
            Side::Payment,
            pending.as_str().to_owned(),
            None,
            1234,
            false,
            false,
        ),
        (
            Side::Refund,
            refund.id.as_str().to_owned(),
            Some("WXR1".to_owned()),
            300,
            true,
            true,
        ),
    ];
    want.sort();
    assert_eq!(read, want);
    // The next day holds only what is still pending.
    let next = store
        .recon_records(RecordQuery {
            day: day.next(),
            ..query
        })
        .await
        .unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].record.ours, pending.as_str());
    let one = store
        .recon_record(Side::Payment, paid.as_str())
        .await
        .unwrap()
        .unwrap();
    assert!(one.record.done && !one.record.on_day);
    assert_eq!(one.merchant_id, o.merchant_id);
    assert_eq!(
        store.recon_record(Side::Refund, "nope").await.unwrap(),
        None
    );

    let found = |kind: &str, ours: &str, state| NewDiscrepancy {
        kind: kind.into(),
        side: Side::Payment,
        ours: ours.into(),
        wallets: Some("4200".into()),
        merchant_id: Some(o.merchant_id.clone()),
        stated: Some(Money::new(Amount::from_minor(1235).unwrap(), Currency::Cad)),
        recorded: None,
        state,
        note: String::new(),
    };
    let run = |found: Vec<NewDiscrepancy>, t| FinishedRun {
        run: ReconRun {
            wallet: "wechatpay".into(),
            day,
            lines: 3,
            matched: 3 - found.len() as u64,
            found: found.len() as u64,
            repaired: 0,
            finished_at: at(t),
        },
        found,
    };
    store
        .save_recon_run(run(
            vec![
                found("amount_differs", "A1", DiscrepancyState::Open),
                found("status_differs", "A2", DiscrepancyState::Repaired),
            ],
            100,
        ))
        .await
        .unwrap();
    store
        .save_recon_run(run(
            vec![
                found("wallet_only", "A3", DiscrepancyState::Open),
                found("status_differs", "A2", DiscrepancyState::Open),
            ],
            200,
        ))
        .await
        .unwrap();
    let all = store
        .discrepancies(DiscrepancyFilter {
            day: Some(day),
            ..Default::default()
        })
        .await
        .unwrap();
    let kept: Vec<_> = all
        .iter()
        .map(|d| (d.found.kind.as_str(), d.found.ours.as_str(), d.found.state))
        .collect();
    assert_eq!(
        kept,
        [
            ("status_differs", "A2", DiscrepancyState::Repaired),
            ("wallet_only", "A3", DiscrepancyState::Open)
        ],
        "the first run's open one is gone; its repaired one stays as it was"
    );
    assert_eq!(
        all[1].found,
        found("wallet_only", "A3", DiscrepancyState::Open)
    );
    assert_eq!(all[1].found_at, at(200));
    let runs = store.recon_runs(Some(day)).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0].found, runs[0].finished_at), (2, at(200)));
    assert_eq!(store.recon_runs(None).await.unwrap(), runs);

    let resolution = Resolution {
        id: all[1].id,
        by: "ops@acquirer".into(),
        note: "test trade".into(),
        at: at(300),
    };
    let resolved = store
        .resolve_discrepancy(resolution.clone())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resolved.found.state, DiscrepancyState::Resolved);
    assert_eq!(
        (
            resolved.resolved_by.as_deref(),
            resolved.found.note.as_str(),
            resolved.resolved_at
        ),
        (Some("ops@acquirer"), "test trade", Some(at(300)))
    );
    assert_eq!(
        store.resolve_discrepancy(resolution).await.unwrap(),
        None,
        "only an open one"
    );
    let open = store
        .discrepancies(DiscrepancyFilter {
            open_only: true,
            wallet: Some("wechatpay".into()),
            day: None,
        })
        .await
        .unwrap();
    assert!(open.is_empty());
    // A run after the resolution leaves it resolved.
    store
        .save_recon_run(run(
            vec![found("wallet_only", "A3", DiscrepancyState::Open)],
            400,
        ))
        .await
        .unwrap();
    let again = store
        .discrepancies(DiscrepancyFilter::default())
        .await
        .unwrap();
    assert_eq!(again.len(), 2);
    assert_eq!(again[1].found.state, DiscrepancyState::Resolved);
}

/// A wallet's day is run by one gateway at a time: a claim holds until it runs out (a
/// gateway that died), is renewed by its holder, and is given back when the statement
/// was not ready.
async fn a_wallets_day_is_claimed_by_one_gateway_until_its_claim_runs_out<S: Store>(store: S) {
    use ottgate_core::recon::WalletDay;
    use ottgate_store::DayClaim;
    let day = WalletDay::parse("2026-12-04").unwrap();
    let claim = |holder: &str, now: u64| DayClaim {
        wallet: "wechatpay".into(),
        day,
        holder: holder.into(),
        now: at(now),
        until: at(now + 600),
    };
    assert!(store.claim_recon_day(claim("a", 0)).await.unwrap());
    assert!(
        !store.claim_recon_day(claim("b", 1)).await.unwrap(),
        "a holds it"
    );
    assert!(
        store.claim_recon_day(claim("a", 2)).await.unwrap(),
        "its holder renews it"
    );
    assert!(
        !store.claim_recon_day(claim("b", 601)).await.unwrap(),
        "renewed until 602"
    );
    assert!(
        store.claim_recon_day(claim("b", 602)).await.unwrap(),
        "a died: b takes over"
    );
    assert!(!store.claim_recon_day(claim("a", 603)).await.unwrap());
    // Another day, or another wallet, is claimed on its own.
    assert!(
        store
            .claim_recon_day(DayClaim {
                day: day.next(),
                ..claim("a", 603)
            })
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_recon_day(DayClaim {
                wallet: "alipay".into(),
                ..claim("a", 603)
            })
            .await
            .unwrap()
    );
    store
        .release_recon_day("wechatpay", day, "a")
        .await
        .unwrap();
    assert!(
        !store.claim_recon_day(claim("c", 604)).await.unwrap(),
        "only its holder gives it back"
    );
    store
        .release_recon_day("wechatpay", day, "b")
        .await
        .unwrap();
    assert!(store.claim_recon_day(claim("c", 604)).await.unwrap());
}

/// A merchant's day for its settlement: its payments paid and refunds carried out that day,
/// nothing of another merchant's, another day's or what was not done; its fee rates kept
/// per method. The statements' totals are the sums of their lines, for every merchant.
async fn each_merchants_settlement_day_is_its_own_and_adds_up<S: Store>(store: S) {
    use ottgate_core::recon::{Side, WalletDay};
    use ottgate_core::settlement::{FeeRate, settle};
    use ottgate_store::MethodFee;
    let ids = ["ON00000001", "ON00000002", "ON00000003"];
    for id in ids {
        store.insert_merchant(merchant(id)).await.unwrap();
    }
    let methods = [
        PaymentMethod::WeChatPay,
        PaymentMethod::Alipay,
        PaymentMethod::UnionPay,
    ];
    let mut seed = 0x5eed_u64;
    let mut next = move |below: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % below
    };
    for id in ids {
        for method in methods {
            let rate = FeeRate {
                ppm: u32::try_from(next(40_000)).unwrap(),
                fixed_minor: next(50),
            };
            store
                .set_fee(&MerchantId::parse(id).unwrap(), MethodFee { method, rate })
                .await
                .unwrap();
        }
    }
    // Merchant → (gross, refunds, payments, refunds made).
    let mut want: std::collections::HashMap<&str, (u64, u64, usize, usize)> = Default::default();
    for n in 0..45 {
        let id = ids[n % 3];
        let mut new = order(&merchant(id), &format!("settle-{n}"), 3_600);
        let amount = 100 + next(100_000);
        let currency = if n % 5 == 0 {
            Currency::Usd
        } else {
            Currency::Cad
        };
        new.order.money = Money::new(Amount::from_minor(amount).unwrap(), currency);
        store.create_order(new.clone()).await.unwrap();
        let o = new.order;
        let method = methods[usize::try_from(next(3)).unwrap()];
        let a = started(&store, &o, method, at(1)).await;
        if n % 9 == 4 {
            continue; // never paid
        }
        store
            .settle(settle_req(&o, &a, AttemptOutcome::Paid, at(2)))
            .await
            .unwrap();
        let entry = want.entry(id).or_default();
        entry.0 += amount;
        entry.2 += 1;
        if n % 4 == 1 {
            let part = 1 + next(amount);
            let BeginRefund::Reserved(r) = store
                .begin_refund(NewRefund {
                    id: RefundId::generate(at(10)),
                    ..refund_req(&o, &a, part, None)
                })
                .await
                .unwrap()
            else {
                panic!("within what was paid");
            };
            let carried_out = n % 8 != 5;
            store
                .finish_refund(FinishRefund {
                    id: r.id.clone(),
                    status: if carried_out {
                        RefundStatus::Success
                    } else {
                        RefundStatus::Failed
                    },
                    channel_refund_id: None,
                    at: at(11),
                })
                .await
                .unwrap();
            if carried_out {
                entry.1 += part;
                entry.3 += 1;
            }
        }
    }
    let day = WalletDay::of(at(2));
    for id in ids {
        let merchant_id = MerchantId::parse(id).unwrap();
        let items = store
            .settlement_items(&merchant_id, day.start(), day.end())
            .await
            .unwrap();
        let (gross, refunds, payments, refund_count) = want[id];
        assert_eq!(
            items.iter().filter(|i| i.side == Side::Payment).count(),
            payments,
            "{id}"
        );
        assert_eq!(
            items.iter().filter(|i| i.side == Side::Refund).count(),
            refund_count
        );
        let fees = store.fees(&merchant_id).await.unwrap();
        assert_eq!(fees.len(), 3);
        let statements = settle(items, |m| {
            fees.iter()
                .find(|f| f.method == m)
                .map(|f| f.rate)
                .unwrap_or_default()
        });
        let total = |f: fn(&ottgate_core::settlement::Statement) -> u64| {
            statements.iter().map(f).sum::<u64>()
        };
        assert_eq!(total(|s| s.gross), gross, "{id}");
        assert_eq!(total(|s| s.refunds), refunds, "{id}");
        for s in &statements {
            assert_eq!(s.fees, s.lines.iter().map(|l| l.fee).sum::<u64>());
            assert_eq!(s.net, s.lines.iter().map(|l| l.net).sum::<i64>());
            assert!(s.lines.iter().all(|l| l.item.currency == s.currency));
        }
        // Another day has none of it.
        assert!(
            store
                .settlement_items(&merchant_id, day.end(), day.next().end())
                .await
                .unwrap()
                .is_empty()
        );
    }
}

/// A paid payment of 1234 (CAD) and its id.
async fn paid_payment<S: Store>(store: &S, reference: &str) -> (Order, AttemptId) {
    let o = open_order(store, reference).await;
    let a = started(store, &o, PaymentMethod::Alipay, at(1)).await;
    store
        .settle(settle_req(&o, &a, AttemptOutcome::Paid, at(2)))
        .await
        .unwrap();
    (o, a)
}

fn refund_req(
    o: &Order,
    payment: &AttemptId,
    amount: u64,
    merchant_refund_id: Option<&str>,
) -> NewRefund {
    NewRefund {
        id: RefundId::generate(at(10)),
        merchant_id: o.merchant_id.clone(),
        payment_id: payment.clone(),
        merchant_refund_id: merchant_refund_id.map(str::to_owned),
        amount: Amount::from_minor(amount).unwrap(),
        at: at(10),
        request: None,
        requested_by: RefundedBy::Rest,
        reason: None,
    }
}

fn keyed(mut r: NewRefund, key: &str, since: Timestamp) -> NewRefund {
    r.request = Some(RefundRequestKey {
        key: key.into(),
        since,
    });
    r
}

async fn refunds_never_exceed_the_paid_amount_even_when_concurrent<S: Store>(store: S) {
    let store = Arc::new(store);
    let (o, payment) = paid_payment(&*store, "refund-1").await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (store, req) = (store.clone(), refund_req(&o, &payment, 100, None));
            tokio::spawn(async move { store.begin_refund(req).await.unwrap() })
        })
        .collect();
    let (mut reserved, mut refused) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            BeginRefund::Reserved(r) => {
                reserved += 1;
                store
                    .finish_refund(FinishRefund {
                        id: r.id.clone(),
                        status: RefundStatus::Success,
                        channel_refund_id: Some("SBR".into()),
                        at: at(11),
                    })
                    .await
                    .unwrap();
            }
            BeginRefund::Exceeds { refundable } => {
                refused += 1;
                assert!(refundable < 100);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        (reserved, refused),
        (12, 8),
        "1234 holds twelve refunds of 100"
    );
    let refunds = store.refunds(&payment).await.unwrap();
    assert_eq!(
        refunds.iter().map(|r| r.money.amount.minor()).sum::<u64>(),
        1200
    );
    assert!(refunds.iter().all(|r| r.status == RefundStatus::Success));
    let first = &refunds[0];
    assert_eq!(store.refund(&first.id).await.unwrap().as_ref(), Some(first));
    assert_eq!(
        store.refund(&RefundId::generate(at(99))).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .begin_refund(refund_req(&o, &payment, 35, None))
            .await
            .unwrap(),
        BeginRefund::Exceeds { refundable: 34 }
    );
}

async fn a_failed_refund_releases_its_amount<S: Store>(store: S) {
    let (o, payment) = paid_payment(&store, "refund-2").await;
    let BeginRefund::Reserved(r) = store
        .begin_refund(refund_req(&o, &payment, 1234, None))
        .await
        .unwrap()
    else {
        panic!("not reserved")
    };
    assert_eq!(
        store
            .begin_refund(refund_req(&o, &payment, 1, None))
            .await
            .unwrap(),
        BeginRefund::Exceeds { refundable: 0 }
    );
    let failed = store
        .finish_refund(FinishRefund {
            id: r.id.clone(),
            status: RefundStatus::Failed,
            channel_refund_id: None,
            at: at(12),
        })
        .await
        .unwrap();
    assert_eq!(
        (failed.status, failed.finished_at),
        (RefundStatus::Failed, Some(at(12)))
    );
    assert!(matches!(
        store
            .begin_refund(refund_req(&o, &payment, 1234, None))
            .await
            .unwrap(),
        BeginRefund::Reserved(_)
    ));
}

async fn a_merchant_refund_id_replays_or_conflicts<S: Store>(store: S) {
    let (o, payment) = paid_payment(&store, "refund-3").await;
    let BeginRefund::Reserved(first) = store
        .begin_refund(refund_req(&o, &payment, 500, Some("R-1")))
        .await
        .unwrap()
    else {
        panic!("not reserved")
    };
    assert_eq!(
        store
            .begin_refund(refund_req(&o, &payment, 500, Some("R-1")))
            .await
            .unwrap(),
        BeginRefund::Replayed(first.clone())
    );
    assert_eq!(
        store
            .begin_refund(refund_req(&o, &payment, 400, Some("R-1")))
            .await
            .unwrap(),
        BeginRefund::IdReused(first)
    );
    assert_eq!(store.refunds(&payment).await.unwrap().len(), 1);
}

/// A refund asked for again under its request's key — the first answer lost, the request
/// retried — is the refund already made, never a second one; concurrently too. The key
/// counts within its window only, and another request under it is refused.
async fn a_request_key_names_one_refund_whatever_happened_to_its_answer<S: Store>(store: S) {
    let store = Arc::new(store);
    let (o, payment) = paid_payment(&*store, "refund-keyed").await;
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let store = store.clone();
            let req = keyed(refund_req(&o, &payment, 100, None), "rest:K-1", at(0));
            tokio::spawn(async move { store.begin_refund(req).await.unwrap() })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    let reserved: Vec<_> = outcomes
        .iter()
        .filter_map(|o| match o {
            BeginRefund::Reserved(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(reserved.len(), 1, "{outcomes:?}");
    let first = reserved[0].clone();
    assert!(
        outcomes
            .iter()
            .all(|o| *o == BeginRefund::Reserved(first.clone())
                || *o == BeginRefund::Replayed(first.clone())),
        "{outcomes:?}"
    );
    // Another request under the key: refused, nothing held.
    assert_eq!(
        store
            .begin_refund(keyed(refund_req(&o, &payment, 7, None), "rest:K-1", at(0)))
            .await
            .unwrap(),
        BeginRefund::IdReused(first.clone())
    );
    // Keys of other doors, and other keys, are other refunds; past its window a key is
    // forgotten: the same request is a new refund.
    for (key, since) in [("envelope:K-1", at(0)), ("rest:K-1", at(11))] {
        let asked = keyed(refund_req(&o, &payment, 100, None), key, since);
        let begun = store.begin_refund(asked).await.unwrap();
        assert!(
            matches!(begun, BeginRefund::Reserved(_)),
            "{key}: {begun:?}"
        );
    }
    let refunds = store.refunds(&payment).await.unwrap();
    assert_eq!(refunds.len(), 3);
    assert_eq!(
        refunds.iter().map(|r| r.money.amount.minor()).sum::<u64>(),
        300
    );
}

async fn only_the_owner_can_refund_a_paid_payment<S: Store>(store: S) {
    let (o, payment) = paid_payment(&store, "refund-4").await;
    let mut other = merchant("ON00000002");
    other.merchant.app_id = "ON00000002".into();
    store.insert_merchant(other.clone()).await.unwrap();
    let mut foreign = refund_req(&o, &payment, 1, None);
    foreign.merchant_id = other.merchant.id.clone();
    assert_eq!(
        store.begin_refund(foreign).await.unwrap(),
        BeginRefund::PaymentNotFound
    );
    let unpaid_order = open_order(&store, "refund-5").await;
    let unpaid = started(&store, &unpaid_order, PaymentMethod::Gp, at(1)).await;
    assert_eq!(
        store
            .begin_refund(refund_req(&o, &unpaid, 1, None))
            .await
            .unwrap(),
        BeginRefund::NotRefundable(AttemptStatus::Pending)
    );
    assert_eq!(
        store
            .merchant_by_app_id("ON00000002")
            .await
            .unwrap()
            .map(|m| m.merchant.id),
        Some(other.merchant.id)
    );
}

async fn a_rest_payment_is_created_with_its_first_attempt<S: Store>(store: S) {
    let m = merchant("ON00000001");
    store.insert_merchant(m.clone()).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let mut new = order(&m, "unused", 60);
        new.order.kind = OrderKind::Wap;
        new.order.reference = None; // REST payments need no reference, and two without one do not collide
        new.first_attempt = Some(PaymentMethod::Alipay);
        let CreateOutcome::Created {
            id,
            attempt: Some(attempt),
        } = store.create_order(new).await.unwrap()
        else {
            panic!("no attempt")
        };
        assert_eq!(
            (attempt.order_id.clone(), attempt.method, attempt.status),
            (id.clone(), PaymentMethod::Alipay, AttemptStatus::Pending)
        );
        let stored = store.order(&id).await.unwrap().unwrap();
        assert_eq!((stored.kind, stored.reference), (OrderKind::Wap, None));
        assert_eq!(store.attempts(&id).await.unwrap(), vec![attempt]);
        ids.push(id);
    }
    assert_ne!(ids[0], ids[1]);
}

async fn a_direct_payment_keeps_its_tip_and_its_first_answer<S: Store>(store: S) {
    let m = merchant("ON00000001");
    store.insert_merchant(m.clone()).await.unwrap();
    let mut new = order(&m, "POS-4435", 60);
    new.order.kind = OrderKind::ActivePay;
    new.order.tip = 25;
    new.response_data = String::new();
    new.first_attempt = Some(PaymentMethod::WeChatPay);
    let CreateOutcome::Created { id, .. } = store.create_order(new).await.unwrap() else {
        panic!("not created")
    };
    let stored = store.order(&id).await.unwrap().unwrap();
    assert_eq!((stored.kind, stored.tip), (OrderKind::ActivePay, 25));
    assert!(
        store
            .set_response_data(&id, "{\"code_url\":\"first\"}".into())
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_response_data(&id, "{\"code_url\":\"second\"}".into())
            .await
            .unwrap(),
        "the first answer stands"
    );
    let again = order(&m, "POS-4435", 60);
    assert_eq!(
        store.create_order(again).await.unwrap(),
        CreateOutcome::Exists {
            request_md5: "MD5-POS-4435".into(),
            response_data: "{\"code_url\":\"first\"}".into()
        }
    );
    // The same reference at another merchant is another order; both are found by it.
    let other = merchant("ON00000002");
    store.insert_merchant(other.clone()).await.unwrap();
    store
        .create_order(order(&other, "POS-4435", 60))
        .await
        .unwrap();
    let reference = MerchantRef::parse("POS-4435").unwrap();
    let found = store.orders_with_reference(&reference, 5).await.unwrap();
    assert_eq!(
        found
            .iter()
            .map(|o| o.merchant_id.as_str())
            .collect::<Vec<_>>(),
        vec!["ON00000001", "ON00000002"]
    );
    assert_eq!(
        store
            .orders_with_reference(&reference, 1)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn an_attempt_is_found_only_for_its_own_merchant<S: Store>(store: S) {
    let o = open_order(&store, "owned-1").await;
    let id = started(&store, &o, PaymentMethod::Alipay, at(1)).await;
    let a = store.attempt(&id).await.unwrap().unwrap();
    let stranger = merchant("ON00000002");
    store.insert_merchant(stranger.clone()).await.unwrap();
    assert_eq!(
        store.merchant_attempt(&o.merchant_id, &a.id).await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(
        store
            .merchant_attempt(&stranger.merchant.id, &a.id)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .merchant_attempt(&o.merchant_id, &AttemptId::generate(T0))
            .await
            .unwrap(),
        None
    );
}

async fn an_idempotency_key_runs_once_replays_and_refuses_other_requests<S: Store>(store: S) {
    let m = merchant("ON00000001");
    store.insert_merchant(m.clone()).await.unwrap();
    let claim = |hash: &str, secs: u64| IdempotencyClaim {
        merchant_id: m.merchant.id.clone(),
        scope: "refund".into(),
        key: "K-1".into(),
        request_hash: hash.into(),
        now: at(secs),
        lease: Duration::from_secs(60),
        retention: Duration::from_secs(86_400),
    };
    assert_eq!(
        store.claim_idempotency(claim("A", 0)).await.unwrap(),
        Idempotency::Fresh
    );
    assert_eq!(
        store.claim_idempotency(claim("A", 1)).await.unwrap(),
        Idempotency::InProgress
    );
    assert_eq!(
        store.claim_idempotency(claim("B", 1)).await.unwrap(),
        Idempotency::Mismatch
    );
    store
        .finish_idempotency(IdempotencyAnswer {
            key: IdempotencyKey {
                merchant_id: m.merchant.id.clone(),
                scope: "refund".into(),
                key: "K-1".into(),
            },
            status: 200,
            body: "{\"ok\":1}".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        store.claim_idempotency(claim("A", 2)).await.unwrap(),
        Idempotency::Replay {
            status: 200,
            body: "{\"ok\":1}".into()
        }
    );
    // Another scope, another merchant: other keys.
    let mut elsewhere = claim("B", 3);
    elsewhere.scope = "pay".into();
    assert_eq!(
        store.claim_idempotency(elsewhere).await.unwrap(),
        Idempotency::Fresh
    );
    // A day later the key is free again; pruning forgets keys by age.
    assert_eq!(
        store.claim_idempotency(claim("B", 86_401)).await.unwrap(),
        Idempotency::Fresh
    );
    assert_eq!(
        store.prune_idempotency(at(86_400), 100).await.unwrap(),
        1,
        "the pay-scope key"
    );
    // A claim whose request died is taken over after its lease; a release frees it at once.
    let mut dead = claim("C", 90_000);
    dead.key = "K-2".into();
    assert_eq!(
        store.claim_idempotency(dead.clone()).await.unwrap(),
        Idempotency::Fresh
    );
    dead.now = at(90_061);
    assert_eq!(
        store.claim_idempotency(dead.clone()).await.unwrap(),
        Idempotency::Fresh
    );
    store
        .release_idempotency(IdempotencyKey {
            merchant_id: m.merchant.id.clone(),
            scope: "refund".into(),
            key: "K-2".into(),
        })
        .await
        .unwrap();
    dead.now = at(90_062);
    assert_eq!(
        store.claim_idempotency(dead).await.unwrap(),
        Idempotency::Fresh
    );
}

async fn concurrent_claims_of_one_key_let_exactly_one_run<S: Store>(store: S) {
    let m = merchant("ON00000001");
    store.insert_merchant(m.clone()).await.unwrap();
    let store = Arc::new(store);
    let claims = (0..20).map(|_| {
        let (store, id) = (store.clone(), m.merchant.id.clone());
        tokio::spawn(async move {
            store
                .claim_idempotency(IdempotencyClaim {
                    merchant_id: id,
                    scope: "refund".into(),
                    key: "same".into(),
                    request_hash: "H".into(),
                    now: at(0),
                    lease: Duration::from_secs(60),
                    retention: Duration::from_secs(86_400),
                })
                .await
                .unwrap()
        })
    });
    let mut fresh = 0;
    for c in claims.collect::<Vec<_>>() {
        if c.await.unwrap() == Idempotency::Fresh {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1);
}

async fn reconciliation_sees_old_unchecked_pending_attempts<S: Store>(store: S) {
    let o = open_order(&store, "reconcile-1").await;
    let a = started(&store, &o, PaymentMethod::Alipay, at(10)).await;
    assert!(
        store
            .attempts_to_reconcile(Due {
                created_before: at(9),
                checked_before: at(100),
                now: at(9),
                limit: 10
            })
            .await
            .unwrap()
            .is_empty(),
        "too young"
    );
    let due = store
        .attempts_to_reconcile(Due {
            created_before: at(70),
            checked_before: at(70),
            now: at(70),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(due.iter().map(|x| &x.id).collect::<Vec<_>>(), [&a]);
    store.mark_checked(&a, at(70)).await.unwrap();
    assert!(
        store
            .attempts_to_reconcile(Due {
                created_before: at(100),
                checked_before: at(69),
                now: at(100),
                limit: 10
            })
            .await
            .unwrap()
            .is_empty(),
        "checked recently"
    );
    assert_eq!(
        store
            .attempts_to_reconcile(Due {
                created_before: at(200),
                checked_before: at(130),
                now: at(200),
                limit: 10
            })
            .await
            .unwrap()
            .len(),
        1,
        "due again"
    );
    store
        .settle(settle_req(&o, &a, AttemptOutcome::Paid, at(201)))
        .await
        .unwrap();
    assert!(
        store
            .attempts_to_reconcile(Due {
                created_before: at(300),
                checked_before: at(300),
                now: at(300),
                limit: 10
            })
            .await
            .unwrap()
            .is_empty(),
        "settled attempts are done"
    );
}

async fn reconciling_gateways_never_take_the_same_attempt<S: Store>(store: S) {
    let store = Arc::new(store);
    for i in 0..20 {
        let o = open_order(&*store, &format!("rc-{i}")).await;
        started(&*store, &o, PaymentMethod::Alipay, at(10)).await;
    }
    let takes: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .attempts_to_reconcile(Due {
                        created_before: at(100),
                        checked_before: at(50),
                        now: at(100),
                        limit: 8,
                    })
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut taken = Vec::new();
    for take in takes {
        taken.extend(take.await.unwrap().into_iter().map(|a| a.id));
    }
    let all = taken.len();
    taken.sort();
    taken.dedup();
    assert_eq!(taken.len(), all, "an attempt was taken twice");
    assert_eq!(all, 20, "every due attempt was taken");
}

async fn the_event_log_shows_each_callback_and_resends_it_for_its_merchant_only<S: Store>(
    store: S,
) {
    let (o, _) = paid_payment(&store, "events-1").await;
    let merchant = o.merchant_id.clone();
    let events = store.events(events_since(&merchant, T0)).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].last_http_status, None, "not tried yet");
    let d = claim(&store, at(3), "w1").await.remove(0);
    let delivered = DeliveryAttemptRecord {
        delivery_id: d.id,
        lease_owner: "w1".into(),
        started_at: at(3),
        duration: Duration::from_millis(5),
        http_status: Some(200),
        error: None,
        response_start: None,
        next: NextStep::Delivered,
    };
    assert!(store.record_delivery_attempt(delivered).await.unwrap());
    let events = store.events(events_since(&merchant, T0)).await.unwrap();
    assert_eq!(
        (events[0].delivery.state, events[0].last_http_status),
        (DeliveryState::Delivered, Some(200))
    );
    assert_eq!(events[0].reference.as_deref(), Some("events-1"));
    assert!(
        store
            .events(events_since(&merchant, at(100)))
            .await
            .unwrap()
            .is_empty(),
        "since"
    );
    // Another merchant sees nothing and can resend nothing.
    let other = MerchantId::parse("ON00000099").unwrap();
    assert!(
        store
            .events(events_since(&other, T0))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.redeliver(&other, &d.notify_id, at(4)).await.unwrap(),
        None
    );
    assert!(
        claim(&store, at(4), "w2").await.is_empty(),
        "delivered: not due"
    );
    // The merchant resends it: due again, attempts kept.
    let again = store
        .redeliver(&merchant, &d.notify_id, at(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((again.state, again.attempts), (DeliveryState::Pending, 1));
    let claimed = claim(&store, at(5), "w2").await;
    assert_eq!(claimed.iter().map(|c| c.id).collect::<Vec<_>>(), [d.id]);
    // Resent while on its way: the attempt in flight keeps its lease — nobody else may
    // send it beside it — and is still recorded.
    let joined = store
        .redeliver(&merchant, &d.notify_id, at(6))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(joined.state, DeliveryState::Pending);
    assert!(
        claim(&store, at(6), "w3").await.is_empty(),
        "in flight: not claimed again"
    );
    // Past its retention a finished callback is forgotten, a pending one never.
    assert_eq!(
        store.prune_events(at(1_000), 10).await.unwrap(),
        0,
        "pending"
    );
    let done = DeliveryAttemptRecord {
        delivery_id: d.id,
        lease_owner: "w2".into(),
        started_at: at(5),
        duration: Duration::from_millis(5),
        http_status: Some(200),
        error: None,
        response_start: None,
        next: NextStep::Delivered,
    };
    assert!(store.record_delivery_attempt(done).await.unwrap());
    assert_eq!(store.prune_events(at(1), 10).await.unwrap(), 0, "younger");
    assert_eq!(store.prune_events(at(1_000), 10).await.unwrap(), 1);
    assert!(
        store
            .events(events_since(&merchant, T0))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.delivery_attempts(d.id).await.unwrap().is_empty());
    // Two more payments' callbacks: newest first, and the cursor pages past the first.
    paid_payment(&store, "events-2").await;
    paid_payment(&store, "events-3").await;
    let both = store.events(events_since(&merchant, T0)).await.unwrap();
    assert_eq!(both.len(), 2);
    assert_eq!(both[0].reference.as_deref(), Some("events-3"));
    let next = store
        .events(EventFilter {
            before: Some(both[0].cursor()),
            ..events_since(&merchant, T0)
        })
        .await
        .unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].delivery.id, both[1].delivery.id);
}

async fn users_sign_in_by_email_once_per_deployment<S: Store>(store: S) {
    store.insert_merchant(merchant("ON00000001")).await.unwrap();
    let new = |email: &str, merchant: &str| NewUser {
        merchant_id: MerchantId::parse(merchant).unwrap(),
        email: email.into(),
        password_hash: "$argon2id$v=19$placeholder".into(),
        role: UserRole::Admin,
        created_at: T0,
    };
    let user = store
        .insert_user(new("Ada@Shop.example", "ON00000001"))
        .await
        .unwrap();
    assert_eq!(
        (user.email.as_str(), user.role),
        ("ada@shop.example", UserRole::Admin)
    );
    assert!(matches!(
        store
            .insert_user(new("ADA@shop.example", "ON00000001"))
            .await,
        Err(StoreError::Duplicate(_))
    ));
    assert!(matches!(
        store
            .insert_user(new("bob@shop.example", "ON00000099"))
            .await,
        Err(StoreError::NotFound("merchant"))
    ));
    let found = store.user_by_email("ada@SHOP.example").await.unwrap();
    assert_eq!(found, Some(user));
    assert!(
        store
            .set_user_password("Ada@shop.example", "$argon2id$new".into())
            .await
            .unwrap()
    );
    let found = store
        .user_by_email("ada@shop.example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.password_hash, "$argon2id$new");
    assert!(
        !store
            .set_user_password("nobody@shop.example", "x".into())
            .await
            .unwrap()
    );
    assert_eq!(
        store.user_by_email("nobody@shop.example").await.unwrap(),
        None
    );
}

fn sign_in(addr: &str, secs: u64) -> SignInAttempt {
    SignInAttempt {
        counters: vec![(format!("ip:{addr}"), 3), (format!("pair:ON1|{addr}"), 3)],
        app_counter: ("app:ON1".into(), 5),
        pair: format!("pair:ON1|{addr}"),
        trust: Duration::from_secs(86_400),
        now: at(secs),
        window: Duration::from_secs(60),
    }
}

async fn sign_in_failures_are_limited_shared_and_given_back<S: Store>(store: S) {
    // Whether a failure from `addr` at `secs` may still be tried (and is counted).
    let taken = |addr: &'static str, secs: u64| {
        let store = &store;
        async move {
            store
                .reserve_sign_in(sign_in(addr, secs))
                .await
                .unwrap()
                .is_some()
        }
    };
    for i in 0..3 {
        assert!(taken("a", i).await);
    }
    assert!(!taken("a", 3).await, "the address is out of tries");
    // A right key gives its reservation back and trusts the pair.
    let right = store
        .reserve_sign_in(sign_in("b", 4))
        .await
        .unwrap()
        .unwrap();
    store
        .release_sign_in(right, Some(("pair:ON1|b".into(), at(4))))
        .await
        .unwrap();
    // Two more failures from elsewhere reach the appId's ceiling of five...
    assert!(taken("c", 5).await && taken("c", 6).await);
    assert!(!taken("d", 7).await, "the appId's ceiling");
    // ...which the trusted pair is exempt from; and failures leave the window.
    assert!(taken("b", 8).await);
    assert!(taken("a", 62).await);
}

async fn concurrent_sign_in_failures_never_overtake_the_limit<S: Store>(store: S) {
    let store = Arc::new(store);
    let tries: Vec<_> = (0..12)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.reserve_sign_in(sign_in("e", 1)).await.unwrap() })
        })
        .collect();
    let mut taken = 0;
    for t in tries {
        if t.await.unwrap().is_some() {
            taken += 1;
        }
    }
    assert_eq!(taken, 3);
}

async fn refund_reconciliation_sees_old_unchecked_pending_refunds<S: Store>(store: S) {
    let (o, payment) = paid_payment(&store, "refund-6").await;
    let mut refunds = Vec::new();
    for amount in [100, 200] {
        let BeginRefund::Reserved(r) = store
            .begin_refund(refund_req(&o, &payment, amount, None))
            .await
            .unwrap()
        else {
            panic!("not reserved")
        };
        refunds.push(r);
    }
    let due = |created: u64, checked: u64| {
        let store = &store;
        async move {
            store
                .refunds_to_reconcile(Due {
                    created_before: at(created),
                    checked_before: at(checked),
                    now: at(created),
                    limit: 10,
                })
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        }
    };
    assert!(due(9, 9).await.is_empty(), "too young (created at 10)");
    assert_eq!(due(70, 70).await.len(), 2);
    store
        .finish_refund(FinishRefund {
            id: refunds[0].id.clone(),
            status: RefundStatus::Success,
            channel_refund_id: None,
            at: at(71),
        })
        .await
        .unwrap();
    store
        .mark_refund_checked(&refunds[1].id, at(80))
        .await
        .unwrap();
    assert!(due(100, 79).await.is_empty(), "one done, one checked at 80");
    assert_eq!(
        due(200, 140).await,
        vec![refunds[1].id.clone()],
        "due again"
    );
}

async fn sessions_last_until_expiry_sign_out_or_a_new_password<S: Store>(store: S) {
    store.insert_merchant(merchant("ON00000001")).await.unwrap();
    let user = store
        .insert_user(NewUser {
            merchant_id: MerchantId::parse("ON00000001").unwrap(),
            email: "ada@shop.example".into(),
            password_hash: "$argon2id$placeholder".into(),
            role: UserRole::Viewer,
            created_at: T0,
        })
        .await
        .unwrap();
    let session = |hash: &str, expires: u64| NewSession {
        id_hash: hash.into(),
        user_id: user.id,
        created_at: T0,
        expires_at: at(expires),
    };
    for (hash, expires) in [("a", 100), ("b", 100), ("c", 10)] {
        store.insert_session(session(hash, expires)).await.unwrap();
    }
    assert_eq!(
        store.session_user("a", at(5)).await.unwrap(),
        Some(user.clone())
    );
    assert_eq!(store.session_user("zz", at(5)).await.unwrap(), None);
    assert_eq!(
        store.session_user("c", at(10)).await.unwrap(),
        None,
        "expired"
    );
    store.end_session("a").await.unwrap();
    assert_eq!(
        store.session_user("a", at(5)).await.unwrap(),
        None,
        "signed out"
    );
    assert_eq!(store.session_user("b", at(5)).await.unwrap(), Some(user));
    assert_eq!(store.prune_sessions(at(50), 10).await.unwrap(), 1, "c only");
    store
        .set_user_password("ada@shop.example", "$argon2id$new".into())
        .await
        .unwrap();
    assert_eq!(
        store.session_user("b", at(5)).await.unwrap(),
        None,
        "a new password signs out everywhere"
    );
}

async fn the_payment_list_filters_pages_and_totals_one_merchants_orders<S: Store>(store: S) {
    // Three paid (one half refunded), one declined, two open; and another merchant's.
    let mut ids = Vec::new();
    for i in 0..6 {
        let o = open_order(&store, &format!("list-{i}")).await;
        ids.push(o.id.clone());
        let method = if i % 2 == 0 {
            PaymentMethod::Alipay
        } else {
            PaymentMethod::WeChatPay
        };
        if i < 4 {
            let a = started(&store, &o, method, at(1)).await;
            let outcome = if i == 3 {
                AttemptOutcome::Failed
            } else {
                AttemptOutcome::Paid
            };
            store
                .settle(settle_req(&o, &a, outcome, at(2)))
                .await
                .unwrap();
            if i == 0 {
                let BeginRefund::Reserved(r) = store
                    .begin_refund(refund_req(&o, &a, 600, None))
                    .await
                    .unwrap()
                else {
                    panic!("refund refused");
                };
                store
                    .finish_refund(FinishRefund {
                        id: r.id.clone(),
                        status: RefundStatus::Success,
                        channel_refund_id: None,
                        at: at(11),
                    })
                    .await
                    .unwrap();
            }
        }
    }
    let other = merchant("ON00000002");
    store.insert_merchant(other.clone()).await.unwrap();
    store
        .create_order(order(&other, "theirs", 600))
        .await
        .unwrap();

    let filter = PaymentFilter {
        merchant: MerchantId::parse("ON00000001").unwrap(),
        status: None,
        method: None,
        from: None,
        to: None,
        search: None,
        before: None,
        limit: 50,
    };
    let list = |f: PaymentFilter| {
        let store = &store;
        async move {
            store
                .payments(&f)
                .await
                .unwrap()
                .into_iter()
                .map(|p| p.order_id)
                .collect::<Vec<_>>()
        }
    };
    let mut newest_first = ids.clone();
    newest_first.sort();
    newest_first.reverse();
    assert_eq!(
        list(filter.clone()).await,
        newest_first,
        "never the other merchant's"
    );

    let all = store.payments(&filter).await.unwrap();
    let first = all.iter().find(|p| p.order_id == ids[0]).unwrap();
    assert_eq!(first.refunded, 600);
    assert_eq!(first.method, Some(PaymentMethod::Alipay));
    assert_eq!(first.wallet_reference.as_deref(), Some("SB0001"));
    assert_eq!(first.paid_at, Some(at(2)));
    assert!(first.payment_id.is_some());
    let open = all.iter().find(|p| p.order_id == ids[5]).unwrap();
    assert_eq!(
        (open.method, open.payment_id.clone(), open.paid_at),
        (None, None, None)
    );

    let page = |before: Option<OrderId>| PaymentFilter {
        before,
        limit: 4,
        ..filter.clone()
    };
    let one = list(page(None)).await;
    let two = list(page(one.last().cloned())).await;
    assert_eq!(
        [one, two].concat(),
        newest_first,
        "the cursor walks every order once"
    );

    let with = |status| PaymentFilter {
        status: Some(status),
        ..filter.clone()
    };
    // Paid with nothing refunded: 2 of the 3 paid (the third is partly refunded).
    let paid = with(ListStatus::Paid);
    assert_eq!(list(paid.clone()).await.len(), 2);
    let paid_by_wechat = PaymentFilter {
        method: Some(PaymentMethod::WeChatPay),
        ..paid
    };
    assert_eq!(list(paid_by_wechat).await, vec![ids[1].clone()]);
    assert_eq!(
        list(with(ListStatus::PartlyRefunded)).await,
        vec![ids[0].clone()]
    );
    assert!(list(with(ListStatus::Refunded)).await.is_empty());
    // The statuses never overlap, and together they are every payment.
    let mut every = Vec::new();
    for status in [
        ListStatus::Paid,
        ListStatus::PartlyRefunded,
        ListStatus::Refunded,
        ListStatus::Failed,
        ListStatus::Closed,
        ListStatus::Pending,
    ] {
        every.extend(list(with(status)).await);
    }
    every.sort();
    let mut all_ids = ids.clone();
    all_ids.sort();
    assert_eq!(every, all_ids, "each payment under exactly one status");
    for search in [ids[2].to_string(), "list-2".to_owned()] {
        let found = PaymentFilter {
            search: Some(search),
            ..filter.clone()
        };
        assert_eq!(list(found).await, vec![ids[2].clone()]);
    }
    let theirs = PaymentFilter {
        search: Some("theirs".into()),
        ..filter.clone()
    };
    assert!(list(theirs).await.is_empty());
    let later = PaymentFilter {
        from: Some(at(1)),
        ..filter.clone()
    };
    assert!(list(later).await.is_empty(), "all were created at T0");
    let window = PaymentFilter {
        from: Some(T0),
        to: Some(at(1)),
        ..filter.clone()
    };
    assert_eq!(list(window).await.len(), 6);

    let totals = store
        .day_totals(month_from(&filter.merchant, T0))
        .await
        .unwrap();
    let count = |status: OrderStatus| -> u64 {
        totals
            .iter()
            .filter(|t| t.status == status)
            .map(|t| t.count)
            .sum()
    };
    assert_eq!(count(OrderStatus::Success), 3);
    assert_eq!(count(OrderStatus::Processing), 2);
    assert!(
        totals
            .iter()
            .all(|t| t.day == 0 && t.currency == Currency::Cad)
    );
    let paid_volume: u64 = totals
        .iter()
        .filter(|t| t.status == OrderStatus::Success)
        .map(|t| t.amount)
        .sum();
    assert_eq!(paid_volume, 3 * 1234);
    let alipay_paid = totals
        .iter()
        .find(|t| t.status == OrderStatus::Success && t.method == Some(PaymentMethod::Alipay))
        .unwrap();
    assert_eq!(alipay_paid.count, 2);
    // Refunds are counted beside the gross: the 600 refunded of the first Alipay payment.
    assert_eq!(alipay_paid.refunded, 600);
    assert_eq!(totals.iter().map(|t| t.refunded).sum::<u64>(), 600);
    assert!(
        store
            .day_totals(month_from(&filter.merchant, at(86_400)))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn the_audit_log_is_per_merchant_newest_first<S: Store>(store: S) {
    for id in ["ON00000001", "ON00000002"] {
        store.insert_merchant(merchant(id)).await.unwrap();
    }
    let entry = |m: &str, action: &str, secs: u64| AuditEntry {
        merchant_id: MerchantId::parse(m).unwrap(),
        actor: "ada@shop.example".into(),
        action: action.into(),
        subject: "16795056216014900".into(),
        detail: "3.00 CAD".into(),
        at: at(secs),
    };
    store
        .record_audit(entry("ON00000001", "refund", 1))
        .await
        .unwrap();
    store
        .record_audit(entry("ON00000002", "resend", 2))
        .await
        .unwrap();
    store
        .record_audit(entry("ON00000001", "resend", 3))
        .await
        .unwrap();
    let log = store
        .audit_log(&MerchantId::parse("ON00000001").unwrap(), 10)
        .await
        .unwrap();
    assert_eq!(
        log,
        vec![
            entry("ON00000001", "resend", 3),
            entry("ON00000001", "refund", 1)
        ]
    );
}

async fn keys_rotate_keeping_the_old_one_for_its_grace_period<S: Store>(store: S) {
    let m = merchant("ON00000001");
    store.insert_merchant(m.clone()).await.unwrap();
    let id = &m.merchant.id;
    let first = store.merchant(id).await.unwrap().unwrap();
    assert_eq!(first.rotation, KeyRotation::default());
    assert!(
        store
            .rotate_sign_key(NewSignKey {
                merchant: id.clone(),
                sealed: vec![9, 9],
                previous_until: at(3600)
            })
            .await
            .unwrap()
    );
    let rotated = store.merchant(id).await.unwrap().unwrap();
    assert_eq!(rotated.sign_key_sealed, vec![9, 9]);
    assert_eq!(
        rotated.rotation.previous_sign_key,
        Some((vec![1, 2, 3], at(3600)))
    );
    assert_eq!(
        store.rotate_webhook_secret(id, at(60)).await.unwrap(),
        Some(1)
    );
    assert_eq!(
        store.rotate_webhook_secret(id, at(90)).await.unwrap(),
        Some(2)
    );
    let rotated = store.merchant(id).await.unwrap().unwrap();
    assert_eq!(
        (
            rotated.rotation.webhook_secret_version,
            rotated.rotation.previous_webhook_until
        ),
        (2, Some(at(90)))
    );
    let nobody = MerchantId::parse("ON00000099").unwrap();
    assert!(
        !store
            .rotate_sign_key(NewSignKey {
                merchant: nobody.clone(),
                sealed: vec![1],
                previous_until: at(1)
            })
            .await
            .unwrap()
    );
    assert_eq!(
        store.rotate_webhook_secret(&nobody, at(1)).await.unwrap(),
        None
    );
    // The zone its people read times in.
    assert!(
        store
            .set_time_zone(id, Some("America/Vancouver"))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .merchant(id)
            .await
            .unwrap()
            .unwrap()
            .time_zone
            .as_deref(),
        Some("America/Vancouver")
    );
    assert!(store.set_time_zone(id, None).await.unwrap());
    assert_eq!(store.merchant(id).await.unwrap().unwrap().time_zone, None);
    assert!(!store.set_time_zone(&nobody, None).await.unwrap());
    // The app key: the old hash kept beside the new one until its grace ends.
    let before = store.merchant(id).await.unwrap().unwrap().app_key_hash;
    assert!(
        store
            .rotate_app_key(id, "$argon2id$new-app-key", at(7200))
            .await
            .unwrap()
    );
    let rotated = store.merchant(id).await.unwrap().unwrap();
    assert_eq!(rotated.app_key_hash, "$argon2id$new-app-key");
    assert_eq!(rotated.rotation.previous_app_key, Some((before, at(7200))));
    assert!(
        !store
            .rotate_app_key(&nobody, "$argon2id$x", at(1))
            .await
            .unwrap()
    );

    for (email, merchant) in [("b@shop.example", id), ("a@shop.example", id)] {
        store
            .insert_user(NewUser {
                merchant_id: merchant.clone(),
                email: email.into(),
                password_hash: "$argon2id$placeholder".into(),
                role: UserRole::Viewer,
                created_at: T0,
            })
            .await
            .unwrap();
    }
    let users = store.users_of(id).await.unwrap();
    assert_eq!(
        users.iter().map(|u| u.email.as_str()).collect::<Vec<_>>(),
        ["a@shop.example", "b@shop.example"]
    );
    assert!(store.users_of(&nobody).await.unwrap().is_empty());
}

/// Every case, once per backend: SQLite in a fresh file, PostgreSQL in a fresh database on
/// the test cluster (scripts/test.sh starts it; without it these fail).
fn authorise_req(
    attempt: &AttemptId,
    t: Timestamp,
    capture_at: Option<Timestamp>,
    hold_until: Timestamp,
) -> Authorise {
    Authorise {
        attempt_id: attempt.clone(),
        at: t,
        capture_at,
        hold_until,
        bizpay_order_id: Some("CARD-1".into()),
    }
}

async fn a_card_authorisation_holds_until_captured_voided_or_lapsed<S: Store>(store: S) {
    // Captured: held (the order open past its own expiry, until the hold ends), listed for
    // capture once due, then paid with one callback.
    let o = open_order(&store, "card-1").await; // expires at +600 s
    let a = started(&store, &o, PaymentMethod::Gp, at(1)).await;
    let held = store
        .authorise(authorise_req(&a, at(2), Some(at(60)), at(7 * 86_400)))
        .await
        .unwrap();
    let HoldOutcome::Applied { order, attempt } = &held else {
        panic!("{held:?}")
    };
    assert!(attempt.is_authorised());
    assert_eq!(attempt.authorised_at, Some(at(2)));
    assert_eq!(attempt.capture_at, Some(at(60)));
    assert_eq!(attempt.bizpay_order_id.as_deref(), Some("CARD-1"));
    assert_eq!(order.expires_at, at(7 * 86_400));
    assert!(matches!(
        store
            .authorise(authorise_req(&a, at(3), Some(at(60)), at(7 * 86_400)))
            .await
            .unwrap(),
        HoldOutcome::AlreadyApplied { .. }
    ));
    assert!(store.captures_due(at(59), 10).await.unwrap().is_empty());
    assert!(
        store.expire_due(at(601), 100).await.unwrap().is_empty(),
        "held past the order's expiry"
    );
    assert_eq!(
        store.captures_due(at(60), 10).await.unwrap(),
        vec![a.clone()]
    );
    let captured = store
        .settle(settle_req(&o, &a, AttemptOutcome::Paid, at(61)))
        .await
        .unwrap();
    assert!(
        matches!(captured, SettleOutcome::Applied { .. }),
        "{captured:?}"
    );
    assert!(store.captures_due(at(62), 10).await.unwrap().is_empty());
    assert_eq!(store.deliveries_for_order(&o.id).await.unwrap().len(), 1);
    assert!(
        matches!(
            store.void(&a, at(63)).await.unwrap(),
            HoldOutcome::Refused { .. }
        ),
        "a captured payment is refunded, not voided"
    );

    // Voided: cancelled, the order closed, nothing owed; once.
    let o = open_order(&store, "card-2").await;
    let a = started(&store, &o, PaymentMethod::Gp, at(1)).await;
    store
        .authorise(authorise_req(&a, at(2), None, at(7 * 86_400)))
        .await
        .unwrap();
    assert!(
        store
            .captures_due(at(7 * 86_400), 10)
            .await
            .unwrap()
            .is_empty(),
        "a pre-authorisation waits for the merchant"
    );
    let voided = store.void(&a, at(5)).await.unwrap();
    let HoldOutcome::Applied { order, attempt } = &voided else {
        panic!("{voided:?}")
    };
    assert_eq!(attempt.status, AttemptStatus::Cancelled);
    assert_eq!(attempt.authorised_at, Some(at(2)));
    assert_eq!(order.status, OrderStatus::Closed(CloseReason::Failed));
    assert!(matches!(
        store.void(&a, at(6)).await.unwrap(),
        HoldOutcome::AlreadyApplied { .. }
    ));
    assert!(matches!(
        store
            .authorise(authorise_req(&a, at(7), None, at(7 * 86_400)))
            .await
            .unwrap(),
        HoldOutcome::Refused { .. }
    ));
    let late_capture = store
        .settle(SettleRequest {
            capture: true,
            ..settle_req(&o, &a, AttemptOutcome::Paid, at(8))
        })
        .await
        .unwrap();
    assert!(
        matches!(late_capture, SettleOutcome::Rejected { .. }),
        "a capture never takes a voided authorisation: {late_capture:?}"
    );
    assert!(store.deliveries_for_order(&o.id).await.unwrap().is_empty());

    // Lapsed: never captured, the hold ends and the order expires as any other.
    let o = open_order(&store, "card-3").await;
    let a = started(&store, &o, PaymentMethod::Gp, at(1)).await;
    store
        .authorise(authorise_req(&a, at(2), Some(at(5_000)), at(1_000)))
        .await
        .unwrap();
    assert_eq!(
        store.expire_due(at(1_000), 100).await.unwrap(),
        vec![o.id.clone()]
    );
    assert_eq!(
        store.attempt(&a).await.unwrap().unwrap().status,
        AttemptStatus::Expired
    );
    assert!(store.captures_due(at(5_000), 10).await.unwrap().is_empty());
}

async fn a_barcode_job_is_claimed_by_one_gateway_at_a_time_and_stays_done<S: Store>(store: S) {
    let o = open_order(&store, "pos-1").await;
    let a = started(&store, &o, PaymentMethod::WeChatPay, at(1)).await;
    let job = BarcodeJob {
        attempt_id: a.clone(),
        merchant_id: o.merchant_id.clone(),
        phase: BarcodePhase::Query,
        outcome: None,
        next_at: at(35),
        query_until: at(31),
        undo_after: at(16),
        tries: 0,
        last_error: None,
        created_at: at(1),
        finished_at: None,
    };
    assert!(store.insert_barcode_job(job.clone()).await.unwrap());
    assert!(
        !store.insert_barcode_job(job.clone()).await.unwrap(),
        "one job a payment"
    );
    assert!(
        store
            .claim_barcode_jobs(at(34), Duration::from_secs(60), 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Two gateways at once: one gets it, its next time moved past the lease.
    let (first, second) = tokio::join!(
        store.claim_barcode_jobs(at(35), Duration::from_secs(60), 10),
        store.claim_barcode_jobs(at(35), Duration::from_secs(60), 10),
    );
    let claimed: Vec<BarcodeJob> = first.unwrap().into_iter().chain(second.unwrap()).collect();
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_eq!(claimed[0].next_at, at(95));
    assert!(
        store
            .claim_barcode_jobs(at(94), Duration::from_secs(60), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let undoing = BarcodeJob {
        phase: BarcodePhase::Undo,
        next_at: at(40),
        tries: 2,
        last_error: Some("recall".into()),
        ..job.clone()
    };
    assert!(store.update_barcode_job(&undoing).await.unwrap());
    assert_eq!(
        store.barcode_backlog().await.unwrap(),
        BarcodeBacklog {
            querying: 0,
            undoing: 1
        }
    );
    assert_eq!(store.barcode_job(&a).await.unwrap(), Some(undoing.clone()));
    let done = BarcodeJob {
        phase: BarcodePhase::Done,
        outcome: Some("reversed".into()),
        finished_at: Some(at(41)),
        ..undoing.clone()
    };
    assert!(store.update_barcode_job(&done).await.unwrap());
    assert!(
        !store.update_barcode_job(&undoing).await.unwrap(),
        "done stays done"
    );
    assert_eq!(store.barcode_job(&a).await.unwrap(), Some(done));
    assert!(
        store
            .claim_barcode_jobs(at(1_000), Duration::from_secs(60), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.barcode_backlog().await.unwrap(),
        BarcodeBacklog::default()
    );
}

macro_rules! store_cases {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    let dir = tempfile::tempdir().unwrap();
                    let store = SqliteStore::open(dir.path().join("t.db").to_str().unwrap()).await.unwrap();
                    super::$case(store).await;
                }
            )*
        }

        mod postgres {
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    let url = ottgate_testkit::fresh_database().await;
                    let store = PgStore::open(&url, &PgOptions::default()).await.unwrap();
                    super::$case(store).await;
                }
            )*
        }
    };
}

store_cases!(
    merchants_round_trip_and_ids_are_unique,
    the_buyers_yuan_and_who_refunded_why_are_kept,
    a_wallets_day_is_read_and_each_run_replaces_its_open_discrepancies,
    a_wallets_day_is_claimed_by_one_gateway_until_its_claim_runs_out,
    each_merchants_settlement_day_is_its_own_and_adds_up,
    a_card_authorisation_holds_until_captured_voided_or_lapsed,
    a_barcode_job_is_claimed_by_one_gateway_at_a_time_and_stays_done,
    link_flows_are_found_by_mer_code_and_off_until_switched_on,
    an_order_is_found_by_its_remarks_newest_first,
    a_repeated_reference_returns_the_first_request_and_response,
    a_colliding_order_id_is_replaced_with_a_fresh_one,
    choosing_the_same_method_twice_resumes_the_pending_attempt,
    paying_enqueues_exactly_one_callback_even_when_repeated,
    concurrent_payments_of_one_attempt_apply_once,
    a_second_paid_attempt_is_recorded_without_a_second_callback,
    a_declined_payment_closes_the_order,
    expiry_closes_orders_and_their_pending_attempts,
    an_unswept_expired_order_is_not_payable,
    a_read_closes_an_expired_order_once,
    an_order_expired_now_is_closed_once_and_a_late_payment_still_pays_it,
    deliveries_are_leased_retried_and_finished,
    an_expired_lease_is_taken_over,
    a_failing_write_does_not_spoil_its_batch,
    concurrent_creates_each_get_their_own_answer,
    refunds_never_exceed_the_paid_amount_even_when_concurrent,
    a_failed_refund_releases_its_amount,
    a_merchant_refund_id_replays_or_conflicts,
    a_request_key_names_one_refund_whatever_happened_to_its_answer,
    only_the_owner_can_refund_a_paid_payment,
    a_rest_payment_is_created_with_its_first_attempt,
    a_direct_payment_keeps_its_tip_and_its_first_answer,
    an_attempt_is_found_only_for_its_own_merchant,
    an_idempotency_key_runs_once_replays_and_refuses_other_requests,
    concurrent_claims_of_one_key_let_exactly_one_run,
    reconciliation_sees_old_unchecked_pending_attempts,
    reconciling_gateways_never_take_the_same_attempt,
    sign_in_failures_are_limited_shared_and_given_back,
    the_event_log_shows_each_callback_and_resends_it_for_its_merchant_only,
    users_sign_in_by_email_once_per_deployment,
    users_are_removed_with_their_sessions_but_never_the_last_admin,
    admins_removing_each_other_at_once_leave_one,
    concurrent_sign_in_failures_never_overtake_the_limit,
    refund_reconciliation_sees_old_unchecked_pending_refunds,
    sessions_last_until_expiry_sign_out_or_a_new_password,
    the_payment_list_filters_pages_and_totals_one_merchants_orders,
    the_audit_log_is_per_merchant_newest_first,
    keys_rotate_keeping_the_old_one_for_its_grace_period,
);

/// A database made by ottgate before the SQLite engine was rewritten (sqlx's migrator,
/// migrations 1–6, one merchant made with `ottgate merchant add`) opens, is migrated to
/// the current schema, and reads.
#[tokio::test]
async fn a_database_made_by_the_sqlx_migrator_opens_and_migrates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    std::fs::copy("tests/fixtures/made-by-sqlx-migrator.db", &path).unwrap();
    let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    store.ready().await.unwrap();
    let old = store
        .merchant(&MerchantId::parse("ON68030379").unwrap())
        .await
        .unwrap()
        .expect("the merchant made before");
    assert_eq!(old.merchant.name.as_str(), "Old Shop");
    assert_eq!(old.rotation, KeyRotation::default(), "migration 7 applied");
    store.insert_merchant(merchant("ON00000001")).await.unwrap();
    drop(store);
    let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    store.ready().await.unwrap();
    assert!(
        store
            .merchant(&MerchantId::parse("ON00000001").unwrap())
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn sqlite_data_survives_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let o = {
        let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
        open_order(&store, "durable").await
    };
    let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    store.ready().await.unwrap();
    assert_eq!(store.order(&o.id).await.unwrap(), Some(o));
}

/// Committed pages reach the database file while the store is open, long before the WAL
/// holds the 1,000 pages after which SQLite's writer would copy them itself: the
/// checkpointer thread does it. And under many writes the WAL stays bounded (it is started
/// over after the writer's own checkpoint).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_checkpoints_beside_the_writer_and_keeps_the_wal_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let store = Arc::new(SqliteStore::open(path.to_str().unwrap()).await.unwrap());
    let m = merchant("ON00000001");
    store.insert_merchant(m.clone()).await.unwrap();
    let size = |name: &str| {
        std::fs::metadata(dir.path().join(name))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    let before = size("t.db");
    for i in 0..20 {
        store
            .create_order(order(&m, &format!("copied-{i}"), 60))
            .await
            .unwrap();
    }
    // 20 small commits: a few dozen WAL pages, far below SQLite's own threshold.
    let wal_pages = size("t.db-wal") / 4096;
    assert!(wal_pages < 1000, "{wal_pages} pages in the WAL");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while size("t.db") <= before {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing was copied into the database file"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // 8,000 orders in concurrent waves: many times the 1,000 pages in all.
    let mut largest_wal = 0;
    for wave in 0..40 {
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let (store, m) = (store.clone(), m.clone());
                tokio::spawn(async move {
                    store
                        .create_order(order(&m, &format!("wave-{wave}-{i}"), 60))
                        .await
                        .unwrap()
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        largest_wal = largest_wal.max(size("t.db-wal"));
    }
    // SQLite starts the WAL over once it is all copied (4.6 MB at most when this was
    // written); left growing, it would hold every page written.
    assert!(
        largest_wal < 16 * 1024 * 1024,
        "the WAL grew to {largest_wal} bytes"
    );
}

#[tokio::test]
async fn postgres_gateways_starting_together_migrate_once() {
    let url = ottgate_testkit::fresh_database().await;
    let opening: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { PgStore::open(&url, &PgOptions::default()).await })
        })
        .collect();
    let mut stores = Vec::new();
    for open in opening {
        stores.push(open.await.unwrap().expect("every gateway starts"));
    }
    for store in &stores {
        store.ready().await.unwrap();
    }
    // Each store sees what another wrote: one schema.
    let o = open_order(&stores[0], "migrated-once").await;
    assert_eq!(stores[3].order(&o.id).await.unwrap(), Some(o));
}
