//! The SQLite store's write path: 64 PREPAY_INIT-sized orders created at once, with group
//! commit (up to 256 writes share one commit) and with one commit per write — durable
//! (`synchronous=FULL`) either way, on the machine's own disk.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::future::join_all;
use ottgate_core::merchant::MerchantName;
use ottgate_core::{
    Amount, Clock, Currency, Merchant, MerchantId, MerchantRef, Money, OperatorId, Order,
    OrderKind, SystemClock,
};
use ottgate_store::prelude::*;
use ottgate_store::{MerchantRecord, NewOrder, SqliteStore};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const AT_ONCE: usize = 64;

fn merchant() -> Merchant {
    Merchant::new(
        MerchantId::parse("ON00000001").unwrap(),
        MerchantName::parse("Bench Shop").unwrap(),
        OperatorId::parse("0000000696").unwrap(),
        vec![Currency::Cad],
        SystemClock.now(),
    )
}

fn order(merchant: &Merchant, n: u64) -> NewOrder {
    let reference = format!("bench-{n}");
    NewOrder {
        order: Order {
            reference: Some(MerchantRef::parse(&reference).unwrap()),
            sale_num: "1".into(),
            redirect_url: "https://shop.example/return".into(),
            ..Order::new(
                OrderKind::Checkout,
                merchant,
                Money::new(Amount::from_minor(1234).unwrap(), Currency::Cad),
                "https://shop.example/notify".into(),
                SystemClock.now(),
                Duration::from_secs(3600),
            )
        },
        request_md5: format!("{n:032X}"),
        response_data: format!(
            r#"{{"prepay_order_id":"{reference}","payinfo":"https://pay.example/checkout/0123456789abcdef","expire_time":"20261127120000"}}"#
        ),
        first_attempt: None,
    }
}

fn batch(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut group = c.benchmark_group("sqlite_store");
    group.throughput(Throughput::Elements(AT_ONCE as u64));
    group.sample_size(20);
    for (name, max_batch) in [("group_commit", 256), ("one_commit_per_write", 1)] {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("bench.db");
        let store = rt
            .block_on(SqliteStore::open_with(url.to_str().unwrap(), max_batch))
            .unwrap();
        let m = merchant();
        rt.block_on(store.insert_merchant(MerchantRecord {
            merchant: m.clone(),
            sign_key_sealed: vec![0; 40],
            app_key_hash: "$argon2id$bench".into(),
            rotation: Default::default(),
            link: Default::default(),
            time_zone: None,
        }))
        .unwrap();
        let next = AtomicU64::new(0);
        group.bench_function(format!("create_{AT_ONCE}_orders/{name}"), |b| {
            b.iter(|| {
                rt.block_on(join_all((0..AT_ONCE).map(|_| {
                    store.create_order(order(&m, next.fetch_add(1, Ordering::Relaxed)))
                })))
                .into_iter()
                .for_each(|r| {
                    r.expect("created");
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, batch);
criterion_main!(benches);
