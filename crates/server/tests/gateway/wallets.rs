//! What the simulated wallets that notify on their own schedule do alike through the
//! gateway: a spoilt notification is refused and the wallet's re-sent copy settles the
//! payment; a lost one is recovered by asking the wallet. Each case plays one wallet.

use ottgate_channels::simkit::FaultKind;
use rstest::rstest;
use std::time::Duration;

use crate::harness::{Options, TestGateway};
use crate::{unionpay, wechat};

#[derive(Debug, Clone, Copy)]
enum Wallet {
    WeChat,
    UnionPay,
}

impl Wallet {
    /// Its simulator's name (`/sim/{name}/`).
    fn name(self) -> &'static str {
        match self {
            Wallet::WeChat => "wechatpay",
            Wallet::UnionPay => "unionpay",
        }
    }

    /// A payment opened at the wallet: the attempt, and where the buyer acts on it (the
    /// scanned-code page, the cashier).
    async fn attempt(self, t: &TestGateway, reference: &str) -> (String, String) {
        match self {
            Wallet::WeChat => wechat::wechat_attempt(t, reference).await,
            Wallet::UnionPay => unionpay::unionpay_attempt(t, reference).await,
        }
    }

    /// The buyer pays or fails there and walks away: only the wallet tells the gateway.
    async fn complete(self, t: &TestGateway, at: &str, action: &str) {
        match self {
            Wallet::WeChat => wechat::pay_on_phone(t, at, action).await,
            Wallet::UnionPay => unionpay::press(t, at, action).await,
        }
    }

    /// How the wallet's transaction ids begin, where they have a fixed shape.
    fn transaction_prefix(self) -> Option<&'static str> {
        match self {
            Wallet::WeChat => Some("42000"),
            Wallet::UnionPay => None,
        }
    }
}

#[rstest]
#[case::wechat(Wallet::WeChat)]
#[case::unionpay(Wallet::UnionPay)]
#[tokio::test]
async fn a_refused_notification_is_resent_until_one_verifies(#[case] wallet: Wallet) {
    // The first delivery is spoilt in transit (refused); the wallet re-sends on its schedule
    // (scaled), and the sound copy settles the payment. A duplicate changes nothing more.
    let t = TestGateway::start().await;
    let (spoilt, spoilt_at) = wallet.attempt(&t, "retry-1").await;
    let (doubled, doubled_at) = wallet.attempt(&t, "retry-2").await;
    t.fault(wallet.name(), FaultKind::CorruptSignature, &spoilt)
        .await;
    t.fault(wallet.name(), FaultKind::Duplicate, &doubled).await;
    wallet.complete(&t, &spoilt_at, "pay").await;
    wallet.complete(&t, &doubled_at, "pay").await;
    for attempt in [&spoilt, &doubled] {
        t.wait_paid(attempt).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    t.gateway.deliver_due().await.unwrap();
    let callbacks = t.receiver.wait_for(2).await;
    assert_eq!(callbacks.len(), 2, "one callback each");
    if let Some(prefix) = wallet.transaction_prefix() {
        for body in &callbacks {
            let callback = t.client.verify_callback(body).unwrap();
            assert!(callback.bizpay_order_id.starts_with(prefix));
        }
    }
    let metrics = t.page(t.base.join("metrics").unwrap()).await;
    assert!(
        metrics.contains("ottgate_wallet_notifications_total{outcome=\"rejected\"} 1"),
        "{metrics}"
    );
}

#[rstest]
#[case::wechat(Wallet::WeChat)]
#[case::unionpay(Wallet::UnionPay)]
#[tokio::test]
async fn a_dropped_notification_is_recovered_by_reconciliation(#[case] wallet: Wallet) {
    let t = TestGateway::with(Options {
        manual_clock: true,
        workers: false,
        ..Default::default()
    })
    .await;
    let (paid, paid_at) = wallet.attempt(&t, "dropped-1").await;
    let (failed, failed_at) = wallet.attempt(&t, "dropped-2").await;
    let (untouched, _) = wallet.attempt(&t, "dropped-3").await;
    t.fault(wallet.name(), FaultKind::Drop, &paid).await;
    t.fault(wallet.name(), FaultKind::Drop, &failed).await;
    wallet.complete(&t, &paid_at, "pay").await;
    wallet.complete(&t, &failed_at, "fail").await;
    tokio::time::sleep(Duration::from_millis(200)).await; // (nothing is coming)
    assert_eq!(t.attempt_status(&paid).await, "init");
    assert_eq!(t.gateway.reconcile_due().await.unwrap(), 0, "too early");
    t.advance(Duration::from_secs(61));
    assert_eq!(t.gateway.reconcile_due().await.unwrap(), 2);
    assert_eq!(t.attempt_status(&paid).await, "success");
    assert_eq!(t.attempt_status(&failed).await, "orderclosed");
    assert_eq!(
        t.attempt_status(&untouched).await,
        "init",
        "not paid at the wallet: still open"
    );
    t.gateway.deliver_due().await.unwrap();
    let callback = t.client.verify_callback(&t.receiver.received()[0]).unwrap();
    assert_eq!(callback.order_id, paid);
}
