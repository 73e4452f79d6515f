//! Reconciliation against the wallets' statements, through real HTTP: the gateway
//! downloads the simulated wallet's statement of the day, matches every line, repairs what
//! the wallet's query confirms (one callback), and keeps the rest open for an operator.

use ottgate_channels::simkit::FaultKind;
use ottgate_core::recon::WalletDay;
use ottgate_core::{Clock, SystemClock};
use ottgate_server::service::DiscrepancyState;
use ottgate_server::service::statements::{DayRun, ReconError};
use ottgate_testkit::Fetch;

use crate::harness::{Options, TestGateway};
use crate::wechat::{pay_on_phone, wechat_attempt};

/// A WeChat payment the buyer paid; the gateway heard of it unless `lost`.
async fn paid(t: &TestGateway, reference: &str, lost: bool) -> String {
    let (attempt, scan) = wechat_attempt(t, reference).await;
    if lost {
        t.fault("wechatpay", FaultKind::Drop, &attempt).await;
    }
    pay_on_phone(t, &scan, "pay").await;
    if !lost {
        t.wait_paid(&attempt).await;
    }
    attempt
}

async fn run(t: &TestGateway, day: WalletDay) -> Result<DayRun, ReconError> {
    t.gateway
        .state()
        .service
        .reconcile_day("wechatpay", day)
        .await
}

#[tokio::test]
async fn a_wechat_day_reconciles_and_each_statement_fault_is_exactly_its_discrepancy() {
    let t = TestGateway::start().await;
    let service = &t.gateway.state().service;
    let day = WalletDay::of(SystemClock.now());
    let mut payments = Vec::new();
    for i in 0..12 {
        payments.push(paid(&t, &format!("recon-{i}"), false).await);
    }
    let mut refunds = Vec::new();
    for p in &payments[..3] {
        let r = t.client.refund(p, "234", None).await.unwrap();
        assert_eq!(r.refund_status, "success");
        refunds.push(r.refund_id);
    }
    assert_eq!(t.receiver.wait_for(12).await.len(), 12);

    // Not published yet: nothing is kept.
    t.fault("wechatpay", FaultKind::StatementNotReady, "").await;
    assert_eq!(run(&t, day).await.unwrap(), DayRun::NotReady);
    assert!(service.recon_day(day).await.unwrap().0.is_empty());
    // Cut off half-way: refused with its reason, nothing kept.
    t.fault("wechatpay", FaultKind::StatementCut, "").await;
    let cut = run(&t, day).await.unwrap_err().to_string();
    assert!(
        cut.contains("wechatpay's statement") && cut.contains("pay/downloadbill"),
        "{cut}"
    );
    assert!(service.recon_day(day).await.unwrap().0.is_empty());

    // A day that agrees: every line matched.
    let DayRun::Done { run: clean, found } = run(&t, day).await.unwrap() else {
        panic!("the day's bill is published at once in the sandbox");
    };
    assert_eq!((clean.lines, clean.matched), (15, 15));
    assert!(found.is_empty(), "{found:?}");

    // Now each fault, once.
    let lost = paid(&t, "recon-lost", true).await;
    assert_eq!(
        t.attempt_status(&lost).await,
        "init",
        "the notification was lost"
    );
    let refund_lost = {
        let p = &payments[4];
        t.fault("wechatpay", FaultKind::LoseAnswer, p).await;
        let r = t.client.refund(p, "100", None).await.unwrap();
        assert_eq!(r.refund_status, "pending");
        r.refund_id
    };
    t.fault("wechatpay", FaultKind::StatementAmount, &payments[5])
        .await;
    t.fault("wechatpay", FaultKind::StatementCurrency, &payments[6])
        .await;
    t.fault("wechatpay", FaultKind::OmitFromStatement, &payments[7])
        .await;
    t.fault("wechatpay", FaultKind::StatementAmount, &refunds[0])
        .await;
    t.fault("wechatpay", FaultKind::UnknownTrade, "17969999999999999")
        .await;
    let before = t.receiver.received().len();

    let DayRun::Done { run: faulty, found } = run(&t, day).await.unwrap() else {
        panic!("published");
    };
    let mut kinds: Vec<_> = found
        .iter()
        .map(|d| (d.kind.as_str(), d.side.code(), d.ours.as_str(), d.state))
        .collect();
    kinds.sort();
    let mut want = vec![
        (
            "amount_differs",
            "payment",
            payments[5].as_str(),
            DiscrepancyState::Open,
        ),
        (
            "amount_differs",
            "refund",
            refunds[0].as_str(),
            DiscrepancyState::Open,
        ),
        (
            "currency_differs",
            "payment",
            payments[6].as_str(),
            DiscrepancyState::Open,
        ),
        (
            "gateway_only",
            "payment",
            payments[7].as_str(),
            DiscrepancyState::Open,
        ),
        (
            "status_differs",
            "payment",
            lost.as_str(),
            DiscrepancyState::Repaired,
        ),
        (
            "status_differs",
            "refund",
            refund_lost.as_str(),
            DiscrepancyState::Repaired,
        ),
        (
            "wallet_only",
            "payment",
            "17969999999999999",
            DiscrepancyState::Open,
        ),
    ];
    want.sort();
    assert_eq!(kinds, want);
    assert_eq!((faulty.lines, faulty.found, faulty.repaired), (17, 7, 2));
    // 16 of ours (one omitted) and the unknown one; all match but the five that differ
    // (two of them repaired) and the unknown one.
    assert_eq!(faulty.matched, 17 - 5 - 1);

    // The repairs: the payment is paid, with exactly one callback; the refund is done.
    assert_eq!(t.attempt_status(&lost).await, "success");
    assert_eq!(t.refunded(&payments[4]).await, "100");
    assert_eq!(t.receiver.wait_for(before + 1).await.len(), before + 1);

    // Again: the repaired ones now match, the open ones are found again, not doubled, and
    // nothing is repaired or sent twice.
    let DayRun::Done { run: again, found } = run(&t, day).await.unwrap() else {
        panic!("published");
    };
    assert_eq!((again.found, again.repaired), (5, 0));
    assert!(found.iter().all(|d| d.state == DiscrepancyState::Open));
    t.gateway.deliver_due().await.unwrap();
    assert_eq!(t.receiver.received().len(), before + 1);
    let (runs, kept) = service.recon_day(day).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(kept.len(), 7, "five open, two repaired");

    // An operator resolves one, with a note; a note is required.
    let unknown = kept.iter().find(|d| d.found.kind == "wallet_only").unwrap();
    assert!(matches!(
        service.resolve_discrepancy(unknown.id, "ops", " ").await,
        Err(ReconError::NoNote)
    ));
    let resolved = service
        .resolve_discrepancy(unknown.id, "ops", "a test trade made at the wallet by hand")
        .await
        .unwrap();
    assert_eq!(resolved.found.state, DiscrepancyState::Resolved);
    assert!(matches!(
        service
            .resolve_discrepancy(unknown.id, "ops", "again")
            .await,
        Err(ReconError::NotOpen(_))
    ));

    // What Prometheus sees: the open ones by kind, and the last run.
    let metrics = t.get("metrics").fetch_text().await;
    for (kind, n) in [
        ("amount_differs", 2),
        ("currency_differs", 1),
        ("gateway_only", 1),
        ("status_differs", 0),
        ("wallet_only", 0),
    ] {
        let line =
            format!("ottgate_recon_discrepancies_open{{wallet=\"wechatpay\",kind=\"{kind}\"}} {n}");
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
    assert!(metrics.contains("ottgate_recon_last_success_timestamp_seconds{wallet=\"wechatpay\"}"));

    // An unknown wallet is named as such.
    let err = service.reconcile_day("paypal", day).await.unwrap_err();
    assert!(err.to_string().contains("wechatpay"), "{err}");
}

/// The schedule: a day is reconciled by itself once its statement is due, by exactly one
/// of the gateways asking at once; a claim whose gateway died is taken over once it runs
/// out; a day done is not run again.
#[tokio::test]
async fn each_day_is_reconciled_by_itself_once_due_by_one_gateway() {
    use ottgate_server::service::statements::RUN_LEASE;
    use std::time::Duration;
    let t = TestGateway::with(Options {
        manual_clock: true,
        workers: false,
        ..Default::default()
    })
    .await;
    let clock = t.clock.clone().unwrap();
    let service = &t.gateway.state().service;
    let payment = paid(&t, "scheduled-1", false).await;
    let day = WalletDay::of(t.now());
    let of_day = |ran: Vec<(String, WalletDay, Result<DayRun, ReconError>)>| {
        ran.into_iter()
            .filter(|(wallet, d, _)| wallet == "wechatpay" && *d == day)
            .map(|(_, _, r)| r.unwrap())
            .collect::<Vec<_>>()
    };
    let hours = |h: u64| Duration::from_secs(h * 3_600);

    // WeChat publishes at 10:00 Beijing the next morning (statements_ready_at).
    clock.set(day.end().plus(hours(9)));
    assert!(of_day(service.reconcile_due_statements("gw-a").await).is_empty());

    // A gateway claimed the day and died.
    clock.set(day.end().plus(hours(10)).plus(Duration::from_secs(60)));
    let dead = ottgate_store::DayClaim {
        wallet: "wechatpay".into(),
        day,
        holder: "gw-dead".into(),
        now: t.now(),
        until: t.now().plus(RUN_LEASE),
    };
    assert!(service.store.claim_recon_day(dead).await.unwrap());
    assert!(of_day(service.reconcile_due_statements("gw-a").await).is_empty());

    // Its claim runs out: of two gateways asking at once, one runs the day.
    clock.advance(RUN_LEASE + Duration::from_secs(1));
    let (a, b) = tokio::join!(
        service.reconcile_due_statements("gw-a"),
        service.reconcile_due_statements("gw-b")
    );
    let mut ran = of_day(a);
    ran.extend(of_day(b));
    assert_eq!(ran.len(), 1, "{ran:?}");
    let DayRun::Done { run, found } = &ran[0] else {
        panic!("published: {ran:?}");
    };
    assert_eq!((run.lines, run.matched), (1, 1), "{found:?}");
    assert_eq!(t.attempt_status(&payment).await, "success");
    // Done is done.
    clock.advance(hours(1));
    assert!(of_day(service.reconcile_due_statements("gw-b").await).is_empty());
}

/// A merchant reads what it is owed for the day over REST: each payment less its fee at
/// the merchant's rate (or the default), each refund, and totals that are their sums.
#[tokio::test]
async fn a_merchant_reads_its_days_settlement_over_rest() {
    use ottgate_core::PaymentMethod;
    use ottgate_core::settlement::FeeRate;
    let t = TestGateway::start().await;
    let service = &t.gateway.state().service;
    let first = paid(&t, "owed-1", false).await;
    let second = paid(&t, "owed-2", false).await;
    let refund = t.client.refund(&first, "234", None).await.unwrap();
    assert_eq!(refund.refund_status, "success");
    let id = t.merchant.merchant.id.as_str();
    ottgate_server::merchants::set_fee(
        &*service.store,
        id,
        PaymentMethod::WeChatPay,
        FeeRate::parse("2.2%+10").unwrap(),
    )
    .await
    .unwrap();
    let day = WalletDay::of(t.now());
    let owed = t.rest().settlements(&day.to_string()).await.unwrap();
    assert_eq!(owed.date, day.to_string());
    assert_eq!(owed.statements.len(), 1);
    let cad = &owed.statements[0];
    // 1234 × 2.2 % = 27.148 → 27, + 10 = 37 per payment.
    assert_eq!(
        (
            cad.currency.as_str(),
            cad.gross.as_str(),
            cad.refunds.as_str(),
            cad.fees.as_str()
        ),
        ("CAD", "2468", "234", "74")
    );
    assert_eq!(cad.net, (2468 - 234 - 74).to_string());
    assert_eq!((cad.payments, cad.refund_count), (2, 1));
    let lines: Vec<_> = cad
        .lines
        .iter()
        .map(|l| {
            (
                l.line_type.as_str(),
                l.id.as_str(),
                l.amount.as_str(),
                l.fee.as_str(),
                l.net.as_str(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            ("payment", first.as_str(), "1234", "37", "1197"),
            ("payment", second.as_str(), "1234", "37", "1197"),
            ("refund", refund.refund_id.as_str(), "234", "0", "-234"),
        ]
    );
    assert!(
        cad.lines
            .iter()
            .filter(|l| l.line_type == "payment")
            .all(|l| l.method == "WECHATPAY")
    );
    // The default rate for the methods the merchant has none of; other merchants see
    // only their own day.
    let rates = service.fee_rates(&t.merchant.merchant.id).await.unwrap();
    assert!(rates.contains(&(
        PaymentMethod::Alipay,
        FeeRate::parse("2.2%").unwrap(),
        false
    )));
    let (_, other) = t.other_merchant().await;
    assert!(
        other
            .settlements(&day.to_string())
            .await
            .unwrap()
            .statements
            .is_empty()
    );
    // A malformed date is refused by name.
    let err = t
        .rest()
        .settlements("2026-1-5")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("date"), "{err}");
}

async fn run_wallet(t: &TestGateway, wallet: &str, day: WalletDay) -> Result<DayRun, ReconError> {
    t.gateway.state().service.reconcile_day(wallet, day).await
}

/// Sorted `(kind, side, id, state)` of what a run found.
fn found_of(
    found: &[ottgate_server::service::NewDiscrepancy],
) -> Vec<(String, &'static str, String, DiscrepancyState)> {
    let mut kinds: Vec<_> = found
        .iter()
        .map(|d| (d.kind.clone(), d.side.code(), d.ours.clone(), d.state))
        .collect();
    kinds.sort();
    kinds
}

#[tokio::test]
async fn an_alipay_day_reconciles_and_each_fault_in_its_file_is_exactly_its_discrepancy() {
    use crate::alipay::{alipay_attempt, pay_without_return};
    let t = TestGateway::start().await;
    let day = WalletDay::of(t.now());
    let mut payments = Vec::new();
    for i in 0..8 {
        let attempt = alipay_attempt(&t, &format!("ali-{i}")).await;
        pay_without_return(&t, &attempt, "pay").await;
        t.wait_paid(&attempt).await;
        payments.push(attempt);
    }
    let refund = t.client.refund(&payments[0], "234", None).await.unwrap();
    crate::harness::eventually("the refund", || async {
        t.refunded(&payments[0]).await == "234"
    })
    .await;

    let DayRun::Done { run: clean, found } = run_wallet(&t, "alipay", day).await.unwrap() else {
        panic!("the day's file is served at once in the sandbox");
    };
    assert_eq!((clean.lines, clean.matched), (9, 9), "{found:?}");
    assert!(found.is_empty());

    t.fault("alipay", FaultKind::StatementNotReady, "").await;
    assert_eq!(
        run_wallet(&t, "alipay", day).await.unwrap(),
        DayRun::NotReady
    );
    t.fault("alipay", FaultKind::StatementCut, "").await;
    let cut = run_wallet(&t, "alipay", day).await.unwrap_err().to_string();
    assert!(cut.contains("forex_compare_file: line"), "{cut}");

    // The buyer paid; Alipay's notification never came.
    let lost = alipay_attempt(&t, "ali-lost").await;
    t.fault("alipay", FaultKind::Drop, &lost).await;
    pay_without_return(&t, &lost, "pay").await;
    assert_eq!(t.attempt_status(&lost).await, "init");
    t.fault("alipay", FaultKind::OmitFromStatement, &payments[1])
        .await;
    t.fault("alipay", FaultKind::StatementAmount, &payments[2])
        .await;
    t.fault("alipay", FaultKind::StatementCurrency, &payments[3])
        .await;
    t.fault("alipay", FaultKind::StatementAmount, &refund.refund_id)
        .await;
    t.fault("alipay", FaultKind::UnknownTrade, "17969999999999998")
        .await;
    let before = t.receiver.received().len();
    let DayRun::Done { run, found } = run_wallet(&t, "alipay", day).await.unwrap() else {
        panic!("published");
    };
    let state = |s| s;
    assert_eq!(
        found_of(&found),
        [
            (
                "amount_differs".into(),
                "payment",
                payments[2].clone(),
                state(DiscrepancyState::Open)
            ),
            (
                "amount_differs".into(),
                "refund",
                refund.refund_id.clone(),
                DiscrepancyState::Open
            ),
            (
                "currency_differs".into(),
                "payment",
                payments[3].clone(),
                DiscrepancyState::Open
            ),
            (
                "gateway_only".into(),
                "payment",
                payments[1].clone(),
                DiscrepancyState::Open
            ),
            (
                "status_differs".into(),
                "payment",
                lost.clone(),
                DiscrepancyState::Repaired
            ),
            (
                "wallet_only".into(),
                "payment",
                "17969999999999998".into(),
                DiscrepancyState::Open
            ),
        ]
    );
    assert_eq!((run.lines, run.found, run.repaired), (10, 6, 1));
    assert_eq!(t.attempt_status(&lost).await, "success");
    assert_eq!(
        t.receiver.wait_for(before + 1).await.len(),
        before + 1,
        "one callback"
    );
}

/// Hundreds of payments and refunds across the wallets whose statements ottgate reads: each
/// wallet's day reconciles to zero discrepancies.
#[tokio::test]
async fn a_day_of_hundreds_of_payments_and_refunds_across_the_wallets_reconciles_to_zero() {
    let t = TestGateway::start().await;
    let service = &t.gateway.state().service;
    let day = WalletDay::of(t.now());
    let wallets = service.reconciled_wallets();
    assert_eq!(
        wallets,
        ["wechatpay", "alipay", "unionpay"],
        "the wallets whose statements are read"
    );
    let mut refunded = Vec::new();
    let mut made = 0;
    for i in 0..200 {
        let method = ["WECHATPAY", "ALIPAY", "UNIONPAY"][i % 3];
        let created = t.create(&format!("many-{i}")).await;
        let token = created.payinfo.rsplit('/').next().unwrap().to_owned();
        let r = t
            .post(&format!("sandbox/v1/checkout/{token}/complete"))
            .json(&serde_json::json!({"method": method, "outcome": "paid"}))
            .fetch()
            .await;
        assert_eq!(r.status(), 200);
        let paid: serde_json::Value = r.json().await.unwrap();
        let id = paid["order_id"].as_str().unwrap().to_owned();
        made += 1;
        if i % 5 == 0 {
            t.wait_paid(&id).await;
            t.client.refund(&id, "100", None).await.unwrap();
            refunded.push(id);
        }
    }
    for id in &refunded {
        crate::harness::eventually("the refund", || async { t.refunded(id).await == "100" }).await;
    }
    let mut lines = 0;
    for wallet in wallets {
        let DayRun::Done { run, found } = run_wallet(&t, wallet, day).await.unwrap() else {
            panic!("{wallet}: published");
        };
        assert!(found.is_empty(), "{wallet}: {found:?}");
        assert_eq!(run.matched, run.lines);
        lines += run.lines;
    }
    assert_eq!(lines, made + refunded.len() as u64);
}

/// The merchant center: a day's settlement (totals, lines, fee rates, CSV) and, on each
/// paid payment, whether the wallet's statement agreed.
#[tokio::test]
async fn the_merchant_center_shows_a_days_settlement_and_marks_payments_reconciled() {
    use crate::center::{admin, paid as paid_with};
    use reqwest::StatusCode;
    let t = TestGateway::start().await;
    let service = &t.gateway.state().service;
    let (agreed_order, agreed) = paid_with(&t, "center-1", "WECHATPAY").await;
    let (differs_order, differs) = paid_with(&t, "center-2", "WECHATPAY").await;
    let (_, later) = paid_with(&t, "center-3", "UNIONPAY").await;
    let refund = t.client.refund(&agreed, "234", None).await.unwrap();
    let day = WalletDay::of(t.now());
    let mut c = admin(&t).await;

    // Before any run: not reconciled.
    let page = c.page(&format!("/dashboard/payments/{agreed_order}")).await;
    assert!(page.contains("Not reconciled yet"), "{page}");
    t.fault("wechatpay", FaultKind::StatementAmount, &differs)
        .await;
    run(&t, day).await.unwrap();
    let mark = |page: &str| {
        let at = page
            .find("id=\"reconciliation\">")
            .expect("the reconciliation mark");
        let rest = &page[at + "id=\"reconciliation\">".len()..];
        rest[..rest.find("</dd>").unwrap()].replace("&#39;", "'")
    };
    let page = c.page(&format!("/dashboard/payments/{agreed_order}")).await;
    assert_eq!(
        mark(&page),
        format!("Reconciled with the wallet's statement ({day})")
    );
    let page = c
        .page(&format!("/dashboard/payments/{differs_order}"))
        .await;
    assert_eq!(
        mark(&page),
        format!("Differs from the wallet's statement ({day})")
    );
    let zh = c
        .page(&format!("/dashboard/payments/{agreed_order}?lang=zh"))
        .await;
    assert!(zh.contains("已与钱包对账单核对"), "{zh}");
    c.page("/dashboard?lang=en").await;

    // The day's settlement: 3 × 12.34 paid, 2.34 refunded, 2.2 % of each (27 cents).
    let page = c.page(&format!("/dashboard/settlements?date={day}")).await;
    assert!(page.contains("id=\"nav-settlements\""));
    for shown in [
        "37.02 CAD (3)",
        "2.34 CAD (1)",
        "0.81 CAD",
        "33.87 CAD",
        "Refund",
        &refund.refund_id,
        &later,
    ] {
        assert!(page.contains(shown), "{shown} in\n{page}");
    }
    assert!(page.contains(&format!("href=\"/dashboard/payments/{agreed}\"")));
    let csv = c
        .get(&format!("/dashboard/settlements.csv?date={day}"))
        .await;
    assert_eq!(csv.status(), StatusCode::OK);
    let text = csv.text().await.unwrap();
    let rows: Vec<&str> = text.split_terminator("\r\n").collect();
    assert_eq!(
        rows[0],
        "date,currency,type,id,method,amount,fee,net,buyer_cny,fx_rate"
    );
    assert_eq!(rows.len(), 1 + 4 + 1, "three payments, a refund, a total");
    assert!(
        rows[5].starts_with(&format!("{day},CAD,total,,,34.68,0.81,33.87,")),
        "{}",
        rows[5]
    );
    let refund_row = rows.iter().find(|r| r.contains(&refund.refund_id)).unwrap();
    assert!(refund_row.contains(",refund,") && refund_row.contains(",2.34,0.00,-2.34,"));
    // Another day is empty; a day that is not one is refused.
    let empty = c
        .page(&format!("/dashboard/settlements?date={}", day.next()))
        .await;
    assert!(empty.contains("id=\"empty\""));
    assert_eq!(
        c.get("/dashboard/settlements?date=2026-02-30")
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    let _ = service;
}

#[tokio::test]
async fn a_unionpay_day_reconciles_and_each_fault_in_its_file_is_exactly_its_discrepancy() {
    use crate::center::paid as paid_with;
    let t = TestGateway::start().await;
    let day = WalletDay::of(t.now());
    let mut payments = Vec::new();
    for i in 0..6 {
        payments.push(paid_with(&t, &format!("cup-{i}"), "UNIONPAY").await.1);
    }
    let refund = t.client.refund(&payments[0], "234", None).await.unwrap();
    crate::harness::eventually("the refund", || async {
        t.refunded(&payments[0]).await == "234"
    })
    .await;
    let DayRun::Done { run: clean, found } = run_wallet(&t, "unionpay", day).await.unwrap() else {
        panic!("the day's file is served at once in the sandbox");
    };
    assert_eq!((clean.lines, clean.matched), (7, 7), "{found:?}");
    assert!(found.is_empty());

    t.fault("unionpay", FaultKind::StatementNotReady, "").await;
    assert_eq!(
        run_wallet(&t, "unionpay", day).await.unwrap(),
        DayRun::NotReady
    );
    t.fault("unionpay", FaultKind::StatementCut, "").await;
    let cut = run_wallet(&t, "unionpay", day)
        .await
        .unwrap_err()
        .to_string();
    assert!(cut.contains("fileTransfer: line"), "{cut}");

    // UnionPay carries out a refund, but its notification never comes.
    let r = t
        .post("sim/unionpay/control")
        .json(&serde_json::json!({"kind": "drop"}))
        .fetch()
        .await;
    assert_eq!(r.status(), 204);
    let lost = t.client.refund(&payments[1], "100", None).await.unwrap();
    assert_eq!(lost.refund_status, "pending");
    t.fault("unionpay", FaultKind::OmitFromStatement, &payments[2])
        .await;
    t.fault("unionpay", FaultKind::StatementAmount, &payments[3])
        .await;
    t.fault("unionpay", FaultKind::StatementAmount, &refund.refund_id)
        .await;
    t.fault("unionpay", FaultKind::UnknownTrade, "17969999999999997")
        .await;
    let DayRun::Done { run, found } = run_wallet(&t, "unionpay", day).await.unwrap() else {
        panic!("published");
    };
    assert_eq!(
        found_of(&found),
        [
            (
                "amount_differs".into(),
                "payment",
                payments[3].clone(),
                DiscrepancyState::Open
            ),
            (
                "amount_differs".into(),
                "refund",
                refund.refund_id.clone(),
                DiscrepancyState::Open
            ),
            (
                "gateway_only".into(),
                "payment",
                payments[2].clone(),
                DiscrepancyState::Open
            ),
            (
                "status_differs".into(),
                "refund",
                lost.refund_id.clone(),
                DiscrepancyState::Repaired
            ),
            (
                "wallet_only".into(),
                "payment",
                "17969999999999997".into(),
                DiscrepancyState::Open
            ),
        ]
    );
    assert_eq!((run.lines, run.found, run.repaired), (8, 5, 1));
    assert_eq!(t.refunded(&payments[1]).await, "100");
    // The file names no currency: the amount is told in the unknown trade's note.
    let unknown = found.iter().find(|d| d.kind == "wallet_only").unwrap();
    assert_eq!(unknown.stated, None);
    assert!(
        unknown.note.contains("100 minor units and no currency"),
        "{}",
        unknown.note
    );
}
