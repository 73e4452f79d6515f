//! Envelope codec throughput: seal and open of a typical PREPAY_INIT body.
#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ottgate_envelope::{Fields, SignKey, open, seal};
use std::hint::black_box;

fn prepay_init() -> Fields {
    serde_json::from_str(
        r#"{"merchant_id":"ON00004652","shop_id":"ON00004652001","operator_id":"0000000696",
            "prepay_order_id":"prepay20220727132626764","sale_num":"20220727132626764",
            "amount":"5","currency_type":"CAD","biz_type":"PREPAY",
            "redirect_url":"https://shop.example/return","call_back_url":"https://shop.example/notify",
            "duration":"100","email":"buyer@example.com","remarks":"BLA"}"#,
    )
    .unwrap()
}

fn codec(c: &mut Criterion) {
    let key = SignKey::new("6698851A525C9433").unwrap();
    let fields = prepay_init();
    let sealed = seal(&fields, &key);
    let mut group = c.benchmark_group("envelope");
    group.throughput(Throughput::Elements(1));
    group.bench_function("seal_prepay_init", |b| {
        b.iter(|| seal(black_box(&fields), &key))
    });
    group.bench_function("open_prepay_init", |b| {
        b.iter(|| open(black_box(&sealed.data), sealed.md5.as_str(), &key).unwrap())
    });
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
