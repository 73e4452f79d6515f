//! Issue 23, item 14: every page a buyer meets in the sandbox — each wallet's simulated
//! cashier, the test-card page — speaks the buyer's language (their phone's
//! `Accept-Language`), names the merchant as the wallet knows it, and carries the TEST MODE
//! banner.

use ottgate_testkit::Fetch;
use reqwest::header::ACCEPT_LANGUAGE;

use crate::harness::{TestGateway, attribute, hidden_inputs, location};

const CHINESE: &str = "zh-CN,zh;q=0.9,en;q=0.5";

async fn get(t: &TestGateway, url: &str, lang: &str) -> String {
    let r = t.http.get(url).header(ACCEPT_LANGUAGE, lang).fetch().await;
    assert_eq!(r.status(), 200, "{url}");
    r.text().await.unwrap()
}

/// `page` is in `lang`'s words, under the banner, naming `merchant`.
fn reads(page: &str, banner: &str, merchant: &str, words: &[&str]) {
    assert!(page.contains(banner), "banner {banner}: {page}");
    assert!(page.contains(merchant), "merchant {merchant}: {page}");
    for w in words {
        assert!(page.contains(w), "{w}: {page}");
    }
}

#[tokio::test]
async fn each_simulated_wallet_speaks_the_buyers_language_and_names_the_merchant() {
    let t = TestGateway::start().await;
    let name = "<strong>Maple Tea House</strong>";

    // WeChat Pay: the phone that scanned the code.
    let (_, scan) = crate::wechat::wechat_attempt(&t, "sim-lang-wx").await;
    reads(
        &get(&t, &scan, "en-CA").await,
        "SIMULATED WECHAT PAY — TEST MODE — no real money",
        &format!("Paying: {name}"),
        &["<html lang=\"en\">", ">Pay</button>", ">Cancel</button>"],
    );
    let zh = get(&t, &scan, CHINESE).await;
    reads(
        &zh,
        "模拟微信支付 — 测试模式 — 不涉及真实资金",
        &format!("收款方： {name}"),
        &[
            "<html lang=\"zh-CN\">",
            ">支付</button>",
            ">取消</button>",
            ">微信支付</h1>",
        ],
    );
    assert!(!zh.contains(">Pay</button>"));

    // Alipay: its cashier, where the checkout sends the browser.
    let created = t.create("sim-lang-ali").await;
    let cashier = location(&t.choose(&created.payinfo, "ALIPAY").await);
    reads(
        &get(&t, &cashier, "en").await,
        "SIMULATED ALIPAY — TEST MODE",
        &format!("Paying: {name}"),
        &[">Alipay cashier</h1>", ">Fail</button>"],
    );
    reads(
        &get(&t, &cashier, CHINESE).await,
        "模拟支付宝 — 测试模式",
        &format!("收款方： {name}"),
        &[">支付宝收银台</h1>", ">支付失败</button>", "电脑"],
    );

    // UnionPay: the cashier the auto-submitted form opens; UnionPay's request carries the
    // merchant's number, not its name (its cashier shows the name on file for it).
    let created = t.create("sim-lang-up").await;
    let chose = t
        .choose(&created.payinfo, "UNIONPAY")
        .await
        .text()
        .await
        .unwrap();
    let r = t
        .http
        .post(attribute(&chose, "wallet-form", "action"))
        .header(ACCEPT_LANGUAGE, CHINESE)
        .form(&hidden_inputs(&chose))
        .fetch()
        .await;
    let zh = r.text().await.unwrap();
    reads(
        &zh,
        "模拟银联 — 测试模式",
        "收款方： <strong>商户号 ",
        &[">银联</h1>", ">支付</button>"],
    );
    // An unknown QR code: the refusal too, in Chinese.
    let refused = t
        .http
        .get(t.base.join("sim/alipay/qr/NOSUCHCODE").unwrap())
        .header(ACCEPT_LANGUAGE, CHINESE)
        .fetch()
        .await
        .text()
        .await
        .unwrap();
    assert!(
        refused.contains("支付请求被拒绝。") && refused.contains("模拟支付宝"),
        "{refused}"
    );
}

#[tokio::test]
async fn the_test_card_page_speaks_the_buyers_language() {
    let t = TestGateway::start().await;
    let answer = crate::cards::ok(
        &t,
        "processV3",
        "CC_PURCHASE",
        crate::cards::purchase(&t, "CARDLANG1", "2500"),
    )
    .await;
    let code_url = answer["codeUrl"].as_str().unwrap().to_owned();
    let en = get(&t, &code_url, "en").await;
    for w in [
        "Test card payment",
        "Card number",
        "TEST MODE",
        "Maple Tea House",
    ] {
        assert!(en.contains(w), "{w}: {en}");
    }
    let zh = get(&t, &code_url, CHINESE).await;
    for w in [
        "测试银行卡支付",
        "卡号",
        "有效期（MM/YY）",
        "测试模式",
        "Maple Tea House",
        "仅限测试卡",
    ] {
        assert!(zh.contains(w), "{w}: {zh}");
    }
    for english in ["Card number", "Test cards only", ">Pay<"] {
        assert!(!zh.contains(english), "{english} on the Chinese page");
    }
    // A refused number says why in the buyer's language.
    let r = t
        .http
        .post(&code_url)
        .header(ACCEPT_LANGUAGE, CHINESE)
        .form(&[
            ("number", "4242 4242 4242 4242"),
            ("expiry", "12/40"),
            ("cvc", "123"),
        ])
        .fetch()
        .await;
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("沙箱中只接受下方列出的测试卡。")
    );
}
