//! What signing and verifying cost per wallet message: the CPU a gateway spends on each
//! payment start (sign) and each notification (verify).
#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ottgate_channels::alipay::sign::{
    self as alipay, SignType, SigningMaterial, VerifyingMaterial,
};
use ottgate_channels::alipay::{private_key_pem, public_key_pem, testkeys};
use ottgate_channels::unionpay::sign as unionpay;
use ottgate_channels::wechat::sign as wechat;
use ottgate_core::Secret;
use std::collections::BTreeMap;
use std::hint::black_box;

/// A notification-sized message (about fifteen fields).
fn fields() -> BTreeMap<String, String> {
    [
        ("out_trade_no", "17953296368772745"),
        ("trade_no", "2026112222001000000000000001"),
        ("total_fee", "12.34"),
        ("currency", "CAD"),
        ("trade_status", "TRADE_FINISHED"),
        ("notify_id", "8cc4f9dca6ac0bdcc944b0cd51ce41292l"),
        ("notify_type", "trade_status_sync"),
        ("notify_time", "2026-11-22 14:00:00"),
        ("merId", "777290058110048"),
        ("orderId", "17953296368772745"),
        ("txnTime", "20261122140000"),
        ("txnAmt", "1234"),
        ("currencyCode", "124"),
        ("queryId", "202611221400001234567"),
        ("respCode", "00"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

fn signing(c: &mut Criterion) {
    let f = fields();
    let private = private_key_pem(testkeys::WALLET_PRIVATE).unwrap();
    let public = public_key_pem(testkeys::WALLET_PUBLIC).unwrap();
    let rsa_sign = SigningMaterial::Rsa(Box::new(private.clone()));
    let rsa_verify = VerifyingMaterial::Rsa(Box::new(public.clone()));
    let md5 = SigningMaterial::Md5(Secret::new(testkeys::MD5_KEY));
    let api_key = Secret::new("OttSimWeChatApiKey00000000000000");

    let mut group = c.benchmark_group("signing");
    group.throughput(Throughput::Elements(1));
    group.bench_function("alipay_md5_sign", |b| {
        b.iter(|| alipay::sign(black_box(&f), SignType::Md5, &md5).unwrap())
    });
    group.bench_function("alipay_rsa2_sign", |b| {
        b.iter(|| alipay::sign(black_box(&f), SignType::Rsa2, &rsa_sign).unwrap())
    });
    let mut signed = f.clone();
    signed.insert(
        "sign".into(),
        alipay::sign(&f, SignType::Rsa2, &rsa_sign).unwrap(),
    );
    signed.insert("sign_type".into(), "RSA2".into());
    group.bench_function("alipay_rsa2_verify", |b| {
        b.iter(|| {
            assert!(alipay::verify(
                black_box(&signed),
                SignType::Rsa2,
                &rsa_verify
            ))
        })
    });
    group.bench_function("wechat_hmac_sha256_sign", |b| {
        b.iter(|| wechat::sign(black_box(&f), wechat::SignType::HmacSha256, &api_key))
    });
    group.bench_function("unionpay_sign", |b| {
        b.iter(|| unionpay::sign(black_box(&f), &private))
    });
    let mut signed = f.clone();
    signed.insert("signature".into(), unionpay::sign(&f, &private));
    group.bench_function("unionpay_verify", |b| {
        b.iter(|| assert!(unionpay::verify(black_box(&signed), &public)))
    });
    group.finish();
}

criterion_group!(benches, signing);
criterion_main!(benches);
