//! Per-merchant channel settings: which methods a merchant takes, and the ids the wallets
//! know it by, reaching the wallets' own records.

use ottgate_client::PayRequest;
use ottgate_server::{ChannelChange, PaymentMethod};
use url::Url;

use crate::harness::{TestGateway, location};

#[tokio::test]
async fn disabled_methods_are_neither_offered_nor_taken() {
    let t = TestGateway::start().await;
    let id = t.merchant.merchant.id.to_string();
    let m = t
        .gateway
        .change_merchant_channels(
            &id,
            ChannelChange {
                disable: vec![PaymentMethod::Alipay, PaymentMethod::Gp],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        m.methods,
        [PaymentMethod::WeChatPay, PaymentMethod::UnionPay]
    );
    let created = t.create("methods-1").await;
    let page = t.page(&created.payinfo).await;
    assert!(page.contains("id=\"method-WECHATPAY\"") && page.contains("id=\"method-UNIONPAY\""));
    assert!(!page.contains("id=\"method-ALIPAY\"") && !page.contains("id=\"method-GP\""));
    // Choosing it anyway (a stale page, a crafted form) opens nothing.
    let chose = t.choose(&created.payinfo, "ALIPAY").await;
    assert_eq!(chose.status(), 400, "the list again, with a message");
    assert!(chose.text().await.unwrap().contains("not available"));
    assert!(
        t.client
            .prepay_query("methods-1")
            .await
            .unwrap()
            .payments_methods
            .is_empty()
    );
    // REST payments are Alipay: refused with 20031.
    let body: PayRequest = serde_json::from_value(t.pay_body(None)).unwrap();
    let err = t.rest().wap_pay(&body).await.unwrap_err();
    assert_eq!(err.rest_code(), Some(20031), "{err}");

    // Switched back on, and a merchant cannot be left with nothing.
    t.gateway
        .change_merchant_channels(
            &id,
            ChannelChange {
                enable: vec![PaymentMethod::Alipay],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(t.rest().wap_pay(&body).await.is_ok());
    let none = t
        .gateway
        .change_merchant_channels(
            &id,
            ChannelChange {
                disable: PaymentMethod::ALL.to_vec(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(none.to_string().contains("at least one"), "{none}");
}

#[tokio::test]
async fn the_wallets_see_the_merchants_own_ids() {
    let t = TestGateway::start().await;
    let id = t.merchant.merchant.id.to_string();
    for bad in [
        ChannelChange {
            mcc: Some("58".into()),
            ..Default::default()
        },
        ChannelChange {
            wechat_sub_mch_id: Some("sub-1".into()),
            ..Default::default()
        },
    ] {
        assert!(t.gateway.change_merchant_channels(&id, bad).await.is_err());
    }
    t.gateway
        .change_merchant_channels(
            &id,
            ChannelChange {
                wechat_sub_mch_id: Some("1900000109".into()),
                mcc: Some("5812".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    // Alipay: secondary_merchant_industry is the merchant's MCC.
    let created = t.create("ids-1").await;
    let chose = t.choose(&created.payinfo, "ALIPAY").await;
    let alipay = Url::parse(&location(&chose)).unwrap();
    assert!(
        alipay
            .query_pairs()
            .any(|(k, v)| k == "secondary_merchant_industry" && v == "5812"),
        "{alipay}"
    );

    // WeChat Pay: the order is opened, queried and refunded under the merchant's
    // sub_mch_id.
    let created = t.create("ids-2").await;
    let (_, body) = t.complete(&created.payinfo, "WECHATPAY", "paid").await;
    let attempt = body["order_id"].as_str().unwrap().to_owned();
    let order = t.wallet_books("wechatpay", &attempt).await;
    assert_eq!(order["sub_mch_id"], "1900000109");
    let refund = t.client.refund(&attempt, "100", None).await.unwrap();
    assert_eq!(refund.refund_status, "success");

    // Cleared: back to the deployment's.
    t.gateway
        .change_merchant_channels(
            &id,
            ChannelChange {
                wechat_sub_mch_id: Some(String::new()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let created = t.create("ids-3").await;
    let (_, body) = t.complete(&created.payinfo, "WECHATPAY", "paid").await;
    let order = t
        .wallet_books("wechatpay", body["order_id"].as_str().unwrap())
        .await;
    assert_eq!(
        order["sub_mch_id"],
        ottgate_channels::wechat::testkeys::SUB_MCH_ID
    );
}

/// Another process (another gateway on the database, `ottgate merchant channels`) changes
/// the merchant behind this gateway's back: within a second the change is served.
#[tokio::test]
async fn a_change_made_elsewhere_is_served_within_a_second() {
    let t = TestGateway::start().await;
    let before = t.create("elsewhere-1").await;
    assert!(
        t.page(&before.payinfo)
            .await
            .contains("id=\"method-ALIPAY\"")
    );
    let store = &t.gateway.state().service.store;
    let changed_at = std::time::Instant::now();
    let mut wechat_only = t.merchant.merchant.clone();
    wechat_only.methods = vec![PaymentMethod::WeChatPay];
    wechat_only.channel_ids = Default::default();
    assert!(store.update_merchant_channels(&wechat_only).await.unwrap());
    crate::harness::eventually("the change served", || async {
        let created = t
            .create(&format!("elsewhere-{}", changed_at.elapsed().as_micros()))
            .await;
        !t.page(&created.payinfo)
            .await
            .contains("id=\"method-ALIPAY\"")
    })
    .await;
    assert!(
        changed_at.elapsed() < std::time::Duration::from_secs(3),
        "served {:?} after the change",
        changed_at.elapsed()
    );
}
