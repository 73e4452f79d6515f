//! The merchant center in a real headless Chromium: sign in, list, filter, detail, resend,
//! refund, CSV download, a new password, sign out; and the screenshots the README shows
//! (overview, list and detail at desktop and phone width, in English and Chinese). Set
//! `OTTGATE_SCREENSHOTS=<dir>` to keep them (`docs/screenshots` is made this way).

use fantoccini::Locator;
use std::time::{Duration, Instant};

use crate::browser::{DESKTOP, click, start_driver_as, text_of, wait_for_url};
use crate::harness::TestGateway;
use ottgate_server::UserRole;

/// A merchant with paid, refunded and open payments, and an admin's password.
async fn shop() -> (TestGateway, String, String) {
    let t = TestGateway::start().await;
    let mut first_paid = String::new();
    for (i, (method, outcome)) in [
        ("ALIPAY", Some("paid")),
        ("WECHATPAY", Some("paid")),
        ("UNIONPAY", Some("paid")),
        ("GP", Some("paid")),
        ("ALIPAY", Some("failed")),
        ("WECHATPAY", None),
    ]
    .into_iter()
    .enumerate()
    {
        let created = t.create(&format!("SHOP-{:04}", 1000 + i)).await;
        if let Some(outcome) = outcome {
            let (_, body) = t.complete(&created.payinfo, method, outcome).await;
            if first_paid.is_empty() {
                first_paid = body["order_id"].as_str().unwrap().to_owned();
            }
        }
    }
    t.receiver.wait_for(4).await;
    // The list shows (and links) the payment by the id the APIs gave: the payment id.
    let order = first_paid;
    let password = ottgate_server::users::add_user(
        &*t.gateway.state().service.store,
        &*t.gateway.state().service.clock,
        t.merchant.merchant.id.as_str(),
        "ada@shop.example",
        UserRole::Admin,
    )
    .await
    .unwrap()
    .password
    .expose_secret()
    .to_owned();
    (t, order, password)
}

async fn sign_in(c: &fantoccini::Client, t: &TestGateway, password: &str) {
    c.goto(t.base.join("dashboard/login").unwrap().as_str())
        .await
        .unwrap();
    let email = c.wait().for_element(Locator::Id("email")).await.unwrap();
    email.send_keys("ada@shop.example").await.unwrap();
    let field = c.find(Locator::Id("password")).await.unwrap();
    field.send_keys(password).await.unwrap();
    click(c, "sign-in").await;
    wait_for_url(c, |u| u.path() == "/dashboard").await;
}

#[tokio::test]
async fn a_merchant_works_the_dashboard_in_headless_chromium() {
    let (t, order, password) = shop().await;
    let (driver, c) = start_driver_as(DESKTOP, "1280,900").await;
    sign_in(&c, &t, &password).await;
    // The chart is drawn: one bar a day for 30 days.
    let bars = c.find_all(Locator::Css("#chart svg rect")).await.unwrap();
    assert_eq!(bars.len(), 30);

    // The list, then a filter.
    c.find(Locator::LinkText("Payments"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_url(&c, |u| u.path() == "/dashboard/payments").await;
    let rows = c
        .find_all(Locator::Css("#payments tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 6);
    c.find(Locator::Id("f-status"))
        .await
        .unwrap()
        .select_by_value("paid")
        .await
        .unwrap();
    click(&c, "apply").await;
    wait_for_url(&c, |u| u.query().is_some_and(|q| q.contains("status=paid"))).await;
    let rows = c
        .find_all(Locator::Css("#payments tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 4);

    // The detail: resend its callback, refund part of it.
    c.find(Locator::LinkText(&order))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_url(&c, |u| u.path().ends_with(&order)).await;
    assert_eq!(
        text_of(&c, Locator::Css(".delivery-state")).await,
        "Acknowledged"
    );
    c.find(Locator::Css("button.resend"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_url(&c, |u| u.query() == Some("notice=resent")).await;
    t.receiver.wait_for(5).await;
    let amount = c.find(Locator::Id("refund-amount")).await.unwrap();
    amount.clear().await.unwrap();
    amount.send_keys("1.00").await.unwrap();
    click(&c, "refund-submit").await;
    // The second step says what will happen; confirming refunds.
    wait_for_url(&c, |u| u.path().ends_with("/refund")).await;
    assert!(
        text_of(&c, Locator::Id("confirm"))
            .await
            .contains("1.00 CAD")
    );
    click(&c, "confirm-submit").await;
    wait_for_url(&c, |u| {
        u.query()
            .is_some_and(|q| q == "notice=refund_pending" || q == "notice=refunded")
    })
    .await;
    assert!(!text_of(&c, Locator::Id("notice")).await.is_empty());

    // The CSV export downloads.
    c.goto(t.base.join("dashboard/payments").unwrap().as_str())
        .await
        .unwrap();
    click(&c, "export").await;
    let file = driver.downloads().join("payments.csv");
    let deadline = Instant::now() + Duration::from_secs(15);
    let csv = loop {
        if let Ok(text) = std::fs::read_to_string(&file)
            && text.ends_with("\r\n")
        {
            break text;
        }
        assert!(Instant::now() < deadline, "no CSV downloaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(csv.starts_with("order_id,reference,created,paid,method"));
    assert_eq!(csv.split_terminator("\r\n").count(), 7);

    // A new password, chosen on the settings page: this browser carries on signed in.
    let new_password = "correct horse battery staple";
    c.goto(t.base.join("dashboard/settings").unwrap().as_str())
        .await
        .unwrap();
    for (field, value) in [
        ("current", password.as_str()),
        ("new", new_password),
        ("repeat", new_password),
    ] {
        c.wait()
            .for_element(Locator::Css(&format!(
                "#change-password input[name={field}]"
            )))
            .await
            .unwrap()
            .send_keys(value)
            .await
            .unwrap();
    }
    c.find(Locator::Css("#change-password button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_url(&c, |u| u.query() == Some("notice=password_changed")).await;
    assert!(
        text_of(&c, Locator::Id("notice"))
            .await
            .contains("Password changed")
    );

    // Sign out: the dashboard sends us back to the login.
    click(&c, "sign-out").await;
    wait_for_url(&c, |u| u.path() == "/dashboard/login").await;
    c.goto(t.base.join("dashboard/payments").unwrap().as_str())
        .await
        .unwrap();
    wait_for_url(&c, |u| u.path() == "/dashboard/login").await;
    // The new password signs in.
    sign_in(&c, &t, new_password).await;
    c.close().await.unwrap();
}

#[tokio::test]
async fn screenshots_of_the_dashboard_at_two_widths_in_two_languages() {
    let (t, order, password) = shop().await;
    let (_driver, c) = start_driver_as(DESKTOP, "1280,900").await;
    sign_in(&c, &t, &password).await;
    let keep = std::env::var_os("OTTGATE_SCREENSHOTS").map(std::path::PathBuf::from);
    let pages = [
        ("overview", "dashboard".to_owned()),
        ("payments", "dashboard/payments".to_owned()),
        ("payment", format!("dashboard/payments/{order}")),
    ];
    for (width, height, device) in [(1280, 900, "desktop"), (412, 915, "phone")] {
        c.set_window_size(width, height).await.unwrap();
        for lang in ["en", "zh"] {
            for (name, path) in &pages {
                let url = t.base.join(&format!("{path}?lang={lang}")).unwrap();
                c.goto(url.as_str()).await.unwrap();
                let heading = text_of(&c, Locator::Css("main h1")).await;
                assert!(!heading.is_empty());
                let png = c.screenshot().await.unwrap();
                assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
                // The PNG's width (IHDR) is the viewport's: nothing overflows sideways.
                let shot_width = u32::from_be_bytes(png[16..20].try_into().unwrap());
                assert!(shot_width <= width, "{name} {device}: {shot_width}");
                let scroll_width: u64 = c
                    .execute("return document.documentElement.scrollWidth", vec![])
                    .await
                    .unwrap()
                    .as_u64()
                    .unwrap();
                let inner_width: u64 = c
                    .execute("return window.innerWidth", vec![])
                    .await
                    .unwrap()
                    .as_u64()
                    .unwrap();
                assert!(
                    scroll_width <= inner_width,
                    "{name} {device} {lang}: the page is wider than the screen"
                );
                if let Some(dir) = &keep {
                    std::fs::create_dir_all(dir).unwrap();
                    std::fs::write(
                        dir.join(format!("dashboard-{name}-{device}-{lang}.png")),
                        &png,
                    )
                    .unwrap();
                }
            }
        }
    }
    c.close().await.unwrap();
}

/// The elements of the page that reach past the right edge of the viewport (inside a
/// scrolling box or not), as `tag#id.class (right edge)`.
const OVERFLOWING: &str = r#"
const width = document.documentElement.clientWidth;
const out = [];
for (const el of document.querySelectorAll('body *')) {
  const r = el.getBoundingClientRect();
  if (r.width === 0 || r.height === 0) continue;
  if (r.right > width + 0.5 || r.left < -0.5) {
    out.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
      (el.className && typeof el.className === 'string' ? '.' + el.className.split(' ').join('.') : '') +
      ' (' + Math.round(r.left) + '..' + Math.round(r.right) + ' of ' + width + ')');
  }
}
return out.slice(0, 12);
"#;

/// The text a person reads on the page: every text node outside `<code>` (what a merchant's
/// server answered is shown as it wrote it), scripts and styles, with each button's label.
const VISIBLE_TEXT: &str = r#"
const out = [];
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
while (walker.nextNode()) {
  const n = walker.currentNode;
  if (n.parentElement.closest('code,script,style')) continue;
  out.push(n.textContent);
}
for (const b of document.querySelectorAll('input[type=submit],input[placeholder]')) {
  out.push(b.value || '', b.placeholder || '');
}
document.title && out.push(document.title);
return out.join(' ');
"#;

/// Words of English on a Chinese page: runs of three or more Latin letters, in words that
/// are not ids, amounts, emails, URLs, or zone names (those hold digits, `@`, `.`, `/`,
/// `-` or `_`), nor one of the names that stay as they are in Chinese (currency codes and
/// the zone's abbreviations, the product's, the APIs' and the link flows' names, the
/// language switch's "English"), nor the merchant's own words (`theirs`: their name).
fn english_words(text: &str, theirs: &str) -> Vec<String> {
    const KEPT: [&str; 19] = [
        "ottgate", "CAD", "CNY", "USD", "UTC", "EST", "EDT", "HTTP", "API", "REST", "REFUND",
        "appKey", "appId", "merCode", "CSV", "wapPay", "webPay", "inAppPay", "English",
    ];
    let theirs: Vec<&str> = theirs.split_whitespace().collect();
    let mut found = Vec::new();
    for word in text.split(|c: char| c.is_whitespace() || "（）()[]：，,、·“”\"'|".contains(c))
    {
        if word.is_empty()
            || word
                .chars()
                .any(|c| c.is_ascii_digit() || "@./-_#=".contains(c))
        {
            continue;
        }
        for run in word.split(|c: char| !c.is_ascii_alphabetic()) {
            let known = KEPT.contains(&run) || theirs.contains(&run);
            if run.len() >= 3 && !known && !found.iter().any(|f| f == run) {
                found.push(run.to_owned());
            }
        }
    }
    found
}

#[test]
fn english_words_are_found_but_not_ids_codes_or_names() {
    let text = "已支付 12.34 CAD · Paid 订单 ada@shop.example America/Toronto h5Pay 回调 \
                Callback http://shop.example/notify Maple Tea House";
    assert_eq!(english_words(text, "Maple Tea House"), ["Paid", "Callback"]);
}

/// At phone widths (360 and 412 px) and at a desktop's (1280 px) no element of any
/// merchant-center page reaches past the screen, in English or Chinese: the key facts are
/// read without sideways scrolling. And no Chinese page has a word of English left.
#[tokio::test]
async fn every_merchant_center_page_fits_360_412_and_1280_px_and_speaks_chinese_throughout() {
    let (t, order, password) = shop().await;
    let (_driver, c) = start_driver_as(DESKTOP, "412,915").await;
    sign_in(&c, &t, &password).await;
    let pages = [
        "dashboard".to_owned(),
        "dashboard/payments".to_owned(),
        format!("dashboard/payments/{order}"),
        format!("dashboard/payments/{order}?notice=amount_too_much&amount=99.00"),
        "dashboard/settings".to_owned(),
        format!(
            "dashboard/settlements?date={}",
            ottgate_core::recon::WalletDay::of(ottgate_core::Clock::now(
                &ottgate_core::SystemClock
            ))
        ),
    ];
    let mut wrong = Vec::new();
    let mut english = Vec::new();
    for width in [360, 412, 1280] {
        c.set_window_size(width, 800).await.unwrap();
        for lang in ["en", "zh"] {
            for path in &pages {
                let sep = if path.contains('?') { '&' } else { '?' };
                let url = t.base.join(&format!("{path}{sep}lang={lang}")).unwrap();
                c.goto(url.as_str()).await.unwrap();
                let found = c.execute(OVERFLOWING, vec![]).await.unwrap();
                let found: Vec<String> = serde_json::from_value(found).unwrap();
                if !found.is_empty() {
                    wrong.push(format!("{width} px {lang} /{path}: {}", found.join(", ")));
                }
                if lang == "zh" && width == 360 {
                    let text = c.execute(VISIBLE_TEXT, vec![]).await.unwrap();
                    let name = t.merchant.merchant.name.as_str().to_owned();
                    let words = english_words(text.as_str().unwrap_or_default(), &name);
                    if !words.is_empty() {
                        english.push(format!("/{path}: {}", words.join(" ")));
                    }
                }
            }
            // The refund's confirmation page.
            c.goto(
                t.base
                    .join(&format!("dashboard/payments/{order}?lang={lang}"))
                    .unwrap()
                    .as_str(),
            )
            .await
            .unwrap();
            let amount = c.find(Locator::Id("refund-amount")).await.unwrap();
            amount.send_keys("1.00").await.unwrap();
            click(&c, "refund-submit").await;
            wait_for_url(&c, |u| u.path().ends_with("/refund")).await;
            let found: Vec<String> =
                serde_json::from_value(c.execute(OVERFLOWING, vec![]).await.unwrap()).unwrap();
            if !found.is_empty() {
                wrong.push(format!(
                    "{width} px {lang} refund confirmation: {}",
                    found.join(", ")
                ));
            }
            if lang == "zh" && width == 360 {
                let text = c.execute(VISIBLE_TEXT, vec![]).await.unwrap();
                let name = t.merchant.merchant.name.as_str().to_owned();
                let words = english_words(text.as_str().unwrap_or_default(), &name);
                if !words.is_empty() {
                    english.push(format!("refund confirmation: {}", words.join(" ")));
                }
            }
        }
    }
    c.close().await.unwrap();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(
        english.is_empty(),
        "English on Chinese pages:\n{}",
        english.join("\n")
    );
}
