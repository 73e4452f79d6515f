//! The merchant center over plain HTTP: sign-in, sessions and their cookies, CSRF on every
//! form, roles, tenant isolation, the pages, refunds and resends, and the CSV export.

use ottgate_core::{MerchantId, Timestamp};
use ottgate_server::UserRole;
use ottgate_testkit::Fetch;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION};
use std::time::Duration;

use crate::center::{Center, admin, attribute_named, fresh_form_token, own_user, paid, user};
use crate::harness::{Options, TestGateway, attribute};

#[tokio::test]
async fn signing_in_sets_a_strict_session_cookie_and_signing_out_ends_it() {
    let t = TestGateway::start().await;
    let mut c = Center::new(&t);
    let r = c.get("/dashboard").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/dashboard/login");

    let password = own_user(&t, "Ada@Shop.example", UserRole::Admin).await;
    let wrong = c.sign_in("ada@shop.example", "not-the-password").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(
        wrong
            .text()
            .await
            .unwrap()
            .contains("Wrong email or password")
    );
    assert!(!c.cookies.contains_key("ottgate_session"));
    let unknown = c.sign_in("nobody@shop.example", &password).await;
    assert_eq!(
        unknown.status(),
        StatusCode::UNAUTHORIZED,
        "the same answer"
    );

    let r = c.sign_in("ADA@shop.example", &password).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/dashboard");
    let session = c
        .set_cookies
        .iter()
        .find(|s| s.starts_with("ottgate_session="))
        .unwrap()
        .clone();
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/dashboard",
        "Max-Age=28800",
    ] {
        assert!(session.contains(attribute), "{session}");
    }
    assert!(
        !session.contains("Secure"),
        "the gateway is served over plain http here"
    );

    let r = c.get("/dashboard").await;
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'none'") && !csp.contains("script-src"));
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("form-action 'self'"));
    let overview = r.text().await.unwrap();
    assert!(overview.contains("Maple Tea House") && overview.contains("ada@shop.example"));
    assert!(
        !overview.contains("<script"),
        "the merchant center runs no script"
    );

    // Signing out needs the form's token.
    let refused = c.post("/dashboard/logout", &[("csrf_token", "00")]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        c.get("/dashboard").await.status(),
        StatusCode::OK,
        "still signed in"
    );
    let token = c.csrf().await;
    let stolen = c.cookies["ottgate_session"].clone();
    let out = c
        .post("/dashboard/logout", &[("csrf_token", token.as_str())])
        .await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(out.headers()[LOCATION], "/dashboard/login");
    assert_eq!(c.get("/dashboard").await.status(), StatusCode::SEE_OTHER);
    // A copy of the old cookie is worth nothing now.
    c.cookies.insert("ottgate_session".into(), stolen);
    assert_eq!(c.get("/dashboard").await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_login_form_needs_its_own_token_and_cookie() {
    let t = TestGateway::start().await;
    let password = own_user(&t, "ada@shop.example", UserRole::Admin).await;
    let mut c = Center::new(&t);
    let r = c
        .post(
            "/dashboard/login",
            &[
                ("email", "ada@shop.example"),
                ("password", &password),
                ("csrf_token", ""),
            ],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "no login cookie, no token"
    );
    let form = c.page("/dashboard/login").await;
    let token = attribute_named(&form, "csrf_token");
    let mut other = Center::new(&t);
    let r = other
        .post(
            "/dashboard/login",
            &[
                ("email", "ada@shop.example"),
                ("password", &password),
                ("csrf_token", token.as_str()),
            ],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "a token without its cookie (login CSRF)"
    );
    assert!(!other.cookies.contains_key("ottgate_session"));
    let r = c
        .post(
            "/dashboard/login",
            &[
                ("email", "ada@shop.example"),
                ("password", &password),
                ("csrf_token", token.as_str()),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn failed_sign_ins_are_limited_per_address_and_the_session_cookie_is_secure_over_https() {
    let t = TestGateway::with(Options {
        public_url: Some("https://pay.example/"),
        ..Options::default()
    })
    .await;
    let bob = own_user(&t, "bob@shop.example", UserRole::Viewer).await;
    let mut c = Center::new(&t);
    c.sign_in("bob@shop.example", &bob).await;
    let session = c
        .set_cookies
        .iter()
        .find(|s| s.starts_with("ottgate_session="))
        .unwrap();
    assert!(session.contains("; Secure"), "{session}");

    let password = own_user(&t, "ada@shop.example", UserRole::Viewer).await;
    let mut c = Center::new(&t);
    // The default limit: 10 failures in 5 minutes from one address.
    for _ in 0..10 {
        let r = c.sign_in("ada@shop.example", "wrong").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = c.sign_in("ada@shop.example", &password).await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    assert!(r.text().await.unwrap().contains("Too many failed sign-ins"));
    // REST token requests count separately.
    let token = t.rest().token().await;
    assert!(token.is_ok(), "{token:?}");
}

#[tokio::test]
async fn sessions_expire_and_a_new_password_ends_them() {
    let t = TestGateway::with(Options {
        manual_clock: true,
        ..Options::default()
    })
    .await;
    let mut c = admin(&t).await;
    t.advance(Duration::from_secs(8 * 3600 - 60));
    assert_eq!(c.get("/dashboard").await.status(), StatusCode::OK);
    t.advance(Duration::from_secs(61));
    assert_eq!(
        c.get("/dashboard").await.status(),
        StatusCode::SEE_OTHER,
        "8 hours"
    );

    let password = own_user(&t, "bob@shop.example", UserRole::Admin).await;
    let mut bob = Center::new(&t);
    bob.sign_in("bob@shop.example", &password).await;
    assert_eq!(bob.get("/dashboard").await.status(), StatusCode::OK);
    ottgate_server::users::reset_password(&*t.gateway.state().service.store, "bob@shop.example")
        .await
        .unwrap();
    assert_eq!(bob.get("/dashboard").await.status(), StatusCode::SEE_OTHER);
}

/// A password change form's fields.
fn password_form<'a>(
    csrf: &'a str,
    current: &'a str,
    new: &'a str,
    repeat: &'a str,
) -> [(&'static str, &'a str); 4] {
    [
        ("csrf_token", csrf),
        ("current", current),
        ("new", new),
        ("repeat", repeat),
    ]
}

#[tokio::test]
async fn users_change_their_own_password_and_every_other_session_ends() {
    let t = TestGateway::start().await;
    // A viewer: changing one's own password is not an admin action.
    let old = own_user(&t, "vic@shop.example", UserRole::Viewer).await;
    let mut c = Center::new(&t);
    assert_eq!(
        c.sign_in("vic@shop.example", &old).await.status(),
        StatusCode::SEE_OTHER
    );
    let mut elsewhere = Center::new(&t);
    elsewhere.sign_in("vic@shop.example", &old).await;
    assert_eq!(elsewhere.get("/dashboard").await.status(), StatusCode::OK);
    let settings = c.page("/dashboard/settings").await;
    assert!(settings.contains("id=\"change-password\""));
    let csrf = c.csrf().await;
    let new = "correct horse battery staple";

    let r = c
        .post(
            "/dashboard/settings/password",
            &password_form("", &old, new, new),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "no CSRF token");
    for (current, first, second, notice) in [
        ("not my password", new, new, "password_wrong"),
        (
            old.as_str(),
            new,
            "correct horse battery stapler",
            "password_mismatch",
        ),
        (old.as_str(), "too short", "too short", "password_short"),
    ] {
        let r = c
            .post(
                "/dashboard/settings/password",
                &password_form(&csrf, current, first, second),
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{notice}");
        assert_eq!(
            r.headers()["location"],
            format!("/dashboard/settings?notice={notice}").as_str()
        );
    }
    // Nothing changed so far: the old password signs in, both sessions live.
    assert_eq!(
        Center::new(&t)
            .sign_in("vic@shop.example", &old)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(elsewhere.get("/dashboard").await.status(), StatusCode::OK);

    let r = c
        .post(
            "/dashboard/settings/password",
            &password_form(&csrf, &old, new, new),
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()["location"],
        "/dashboard/settings?notice=password_changed"
    );
    // This browser carries on in a new session; the other one was signed out.
    let page = c.page("/dashboard/settings?notice=password_changed").await;
    assert!(page.contains("Password changed"));
    assert!(page.contains("Password changed"), "in the audit log");
    assert_eq!(
        elsewhere.get("/dashboard").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        Center::new(&t)
            .sign_in("vic@shop.example", &old)
            .await
            .status(),
        StatusCode::UNAUTHORIZED,
        "the old password no longer works"
    );
    assert_eq!(
        Center::new(&t)
            .sign_in("vic@shop.example", new)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn admins_remove_users_whose_sessions_end_but_never_the_last_admin() {
    let t = TestGateway::start().await;
    let mut ada = admin(&t).await;
    let vic_password = own_user(&t, "vic@shop.example", UserRole::Viewer).await;
    let mut vic = Center::new(&t);
    vic.sign_in("vic@shop.example", &vic_password).await;
    assert_eq!(vic.get("/dashboard").await.status(), StatusCode::OK);
    // Another merchant's user.
    let other = t.add_merchant("Other Shop").await;
    user(
        &t,
        other.merchant.id.as_str(),
        "zed@other.example",
        UserRole::Admin,
    )
    .await;
    let csrf = ada.csrf().await;
    let vic_csrf = vic.csrf().await;
    let remove = |csrf: &str, email: &str| {
        [
            ("csrf_token", csrf.to_owned()),
            ("email", email.to_owned()),
            ("confirm", "yes".to_owned()),
        ]
    };
    let path = "/dashboard/settings/users/remove";

    let settings = ada.page("/dashboard/settings").await;
    assert!(settings.contains("class=\"remove-user\""));
    assert!(
        !vic.page("/dashboard/settings")
            .await
            .contains("remove-user"),
        "viewers see no remove button"
    );
    let r = ada.post(path, &remove("", "vic@shop.example")).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "no CSRF token");
    let r = vic.post(path, &remove(&vic_csrf, "ada@shop.example")).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "viewers may not");
    let r = ada.post(path, &remove(&csrf, "zed@other.example")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "another merchant's user");
    let store = &t.gateway.state().service.store;
    let zed = store.user_by_email("zed@other.example").await.unwrap();
    assert!(zed.is_some(), "another merchant's user stays");
    let r = ada.post(path, &remove(&csrf, "ada@shop.example")).await;
    assert_eq!(
        r.headers()[LOCATION],
        "/dashboard/settings?notice=user_last_admin"
    );
    assert_eq!(ada.get("/dashboard").await.status(), StatusCode::OK);

    // First asked to confirm, saying who and what happens; nothing done yet.
    let asked = ada
        .post(
            path,
            &[("csrf_token", csrf.as_str()), ("email", "vic@shop.example")],
        )
        .await;
    assert_eq!(asked.status(), StatusCode::OK);
    let asked = asked.text().await.unwrap();
    assert!(asked.contains("id=\"confirm-form\"") && asked.contains("vic@shop.example"));
    assert!(asked.contains("signed out everywhere"), "{asked}");
    assert_eq!(vic.get("/dashboard").await.status(), StatusCode::OK);
    let r = ada.post(path, &remove(&csrf, "vic@shop.example")).await;
    assert_eq!(
        r.headers()[LOCATION],
        "/dashboard/settings?notice=user_removed"
    );
    let settings = ada.page("/dashboard/settings?notice=user_removed").await;
    assert!(settings.contains("User removed"));
    let audit = &settings[settings.find("id=\"audit-log\"").unwrap()..];
    assert!(audit.contains("<td>User removed</td>"));
    assert!(!settings[..settings.find("id=\"audit-log\"").unwrap()].contains("vic@shop.example"));
    assert_eq!(vic.get("/dashboard").await.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        Center::new(&t)
            .sign_in("vic@shop.example", &vic_password)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    // With a second admin, an admin may remove themselves: signed out at once.
    own_user(&t, "bob@shop.example", UserRole::Admin).await;
    let r = ada.post(path, &remove(&csrf, "ada@shop.example")).await;
    assert_eq!(r.headers()[LOCATION], "/dashboard/login");
    assert_eq!(ada.get("/dashboard").await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn guessing_the_current_password_meets_the_sign_in_limit() {
    let t = TestGateway::start().await;
    let password = own_user(&t, "vic@shop.example", UserRole::Viewer).await;
    let mut c = Center::new(&t);
    c.sign_in("vic@shop.example", &password).await;
    let csrf = c.csrf().await;
    let new = "correct horse battery staple";
    // The sign-in limit (10 failures from one address), counted alike.
    for _ in 0..10 {
        let r = c
            .post(
                "/dashboard/settings/password",
                &password_form(&csrf, "a guess", new, new),
            )
            .await;
        assert_eq!(
            r.headers()["location"],
            "/dashboard/settings?notice=password_wrong"
        );
    }
    let r = c
        .post(
            "/dashboard/settings/password",
            &password_form(&csrf, &password, new, new),
        )
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.text().await.unwrap().contains("Too many failed sign-ins"));
    // Nothing changed: the password is the one-time one still.
    assert_eq!(
        Center::new(&t)
            .sign_in("vic@shop.example", new)
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the same counters: sign-ins from here wait too"
    );
    let store = &t.gateway.state().service.store;
    let user = store
        .user_by_email("vic@shop.example")
        .await
        .unwrap()
        .unwrap();
    assert!(
        ottgate_server::users::check_password(&**store, "vic@shop.example", &password)
            .await
            .unwrap()
            .is_some_and(|u| u.id == user.id)
    );
}

#[tokio::test]
async fn the_list_filters_searches_and_pages_and_the_detail_shows_everything() {
    let t = TestGateway::start().await;
    let (alipay_order, alipay_payment) = paid(&t, "dash-alipay", "ALIPAY").await;
    let (card_order, _) = paid(&t, "dash-card", "GP").await;
    let waiting = t.create("dash-waiting").await;
    // A REST payment is listed beside the checkouts.
    let token = t.rest().token().await.unwrap();
    let (status, rest) = t
        .rest_raw(
            "api/v1/pay/alipay/wap-pay",
            Some(&token),
            t.pay_body(Some("dash-rest")),
        )
        .await;
    assert_eq!(status, 200, "{rest}");
    t.receiver.wait_for(2).await;
    let mut c = admin(&t).await;

    let list = c.page("/dashboard/payments").await;
    for reference in ["dash-alipay", "dash-card", "dash-waiting", "dash-rest"] {
        assert!(list.contains(reference), "{reference}");
    }
    // Each row says how the payment was made.
    assert_eq!(
        list.matches("<td class=\"kind\">Hosted checkout</td>")
            .count(),
        3,
        "{list}"
    );
    assert_eq!(
        list.matches("<td class=\"kind\">Mobile browser</td>")
            .count(),
        1
    );
    let paid_only = c.page("/dashboard/payments?status=paid").await;
    assert!(paid_only.contains("dash-alipay") && !paid_only.contains("dash-waiting"));
    let by_method = c.page("/dashboard/payments?status=paid&method=GP").await;
    assert!(by_method.contains(&card_order) && !by_method.contains(&alipay_order));
    for q in [
        alipay_payment.as_str(),
        "dash-alipay",
        alipay_order.as_str(),
    ] {
        let found = c.page(&format!("/dashboard/payments?q={q}")).await;
        assert!(
            found.contains(&alipay_order) && !found.contains(&card_order),
            "{q}"
        );
    }
    // Dates are the merchant's days (America/Toronto here), not UTC's.
    let toronto = |at: Timestamp| {
        chrono::DateTime::from_timestamp_millis(at.epoch_millis())
            .unwrap()
            .with_timezone(&chrono_tz::America::Toronto)
            .date_naive()
    };
    let today = toronto(t.now());
    let dated = c
        .page(&format!("/dashboard/payments?from={today}&to={today}"))
        .await;
    assert_eq!(dated.matches("data-order=").count(), 4);
    let yesterday = today.pred_opt().unwrap();
    let none = c.page(&format!("/dashboard/payments?to={yesterday}")).await;
    assert!(none.contains("id=\"empty\""));
    for bad in [
        "status=lost",
        "method=BITCOIN",
        "from=yesterday",
        "before=%21",
    ] {
        let r = c.get(&format!("/dashboard/payments?{bad}")).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    let _ = waiting;

    // The detail: its attempts and its callback with each delivery attempt.
    let detail = c.page(&format!("/dashboard/payments/{alipay_order}")).await;
    assert!(detail.contains(&alipay_payment));
    assert!(detail.contains("12.34 CAD") || detail.contains("CAD"));
    assert!(detail.contains("data-state=\"delivered\""), "{detail}");
    assert!(detail.contains("<td>200</td>") && detail.contains("<code>SUCCESS</code>"));
    assert!(detail.contains("id=\"refund-form\"") && detail.contains("class=\"resend\""));
    assert_eq!(
        c.get("/dashboard/payments/99999999999999999")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_list_pages_by_cursor_through_every_payment_once() {
    let t = TestGateway::start().await;
    let mut created = Vec::new();
    for i in 0..53 {
        created.push(t.create(&format!("page-{i:02}")).await.prepay_order_id);
    }
    let mut c = admin(&t).await;
    let mut seen = Vec::new();
    let mut next = Some("/dashboard/payments".to_owned());
    while let Some(path) = next {
        let page = c.page(&path).await;
        let rows = page.matches("data-order=").count();
        assert!(rows <= 50);
        for reference in &created {
            if page.contains(&format!("<td>{reference}</td>")) {
                seen.push(reference.clone());
            }
        }
        next = page
            .contains("id=\"next\"")
            .then(|| attribute(&page, "next", "href"));
    }
    seen.sort();
    created.sort();
    assert_eq!(seen, created);
}

#[tokio::test]
async fn an_admin_refunds_and_resends_and_each_is_audited() {
    let t = TestGateway::start().await;
    let (order, payment) = paid(&t, "dash-refund", "ALIPAY").await;
    t.receiver.wait_for(1).await;
    let mut c = admin(&t).await;
    let token = c.csrf().await;
    let path = format!("/dashboard/payments/{order}/refund");

    let r = c.post(&path, &[("amount", "3.00")]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "no token");
    let r = c
        .post(&path, &[("amount", "3.00"), ("csrf_token", "deadbeef")])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "a wrong token");
    assert_eq!(t.refunded(&payment).await, "0");

    // A refused amount says why, and keeps what was typed in the box.
    for (bad, why) in [
        ("", "amount_not_number"),
        ("0", "amount_not_number"),
        ("-1", "amount_not_number"),
        ("3.001", "amount_not_number"),
        ("abc", "amount_not_number"),
        ("99.00", "amount_too_much"),
    ] {
        let r = c
            .post(
                &path,
                &[
                    ("amount", bad),
                    ("csrf_token", token.as_str()),
                    ("confirm", "yes"),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{bad}");
        let location = r.headers()[LOCATION].to_str().unwrap().to_owned();
        assert!(
            location.contains(&format!("notice={why}")),
            "{bad}: {location}"
        );
        let page = c.page(&location).await;
        assert!(
            page.contains(&format!(
                "id=\"refund-amount\" name=\"amount\" inputmode=\"decimal\" value=\"{bad}\""
            )),
            "{bad}: the box keeps it"
        );
    }
    // The box is never filled with the full amount.
    let fresh = c.page(&format!("/dashboard/payments/{order}")).await;
    assert!(
        fresh.contains("id=\"refund-amount\" name=\"amount\" inputmode=\"decimal\" value=\"\"")
    );
    assert_eq!(t.refunded(&payment).await, "0");
    // A valid amount is first shown to confirm: the amount, what is left; nothing refunded.
    let asked = c
        .post(&path, &[("amount", "3"), ("csrf_token", token.as_str())])
        .await;
    assert_eq!(asked.status(), StatusCode::OK);
    let asked = asked.text().await.unwrap();
    assert!(
        asked.contains("3.00 CAD") && asked.contains("9.34 CAD"),
        "{asked}"
    );
    assert!(asked.contains("name=\"confirm\" value=\"yes\""));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(t.refunded(&payment).await, "0");
    let r = c
        .post(
            &path,
            &[
                ("amount", "3.00"),
                ("csrf_token", token.as_str()),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let detail = c.page(r.headers()[LOCATION].to_str().unwrap()).await;
    assert!(detail.contains("id=\"notice\""), "{detail}");
    // Alipay confirms a refund by notification.
    crate::harness::eventually("the refund", || async {
        t.refunded(&payment).await == "300"
    })
    .await;

    // Resend: without the token nothing is due again; with it the callback comes again.
    let notify = attribute_at(&detail, "data-delivery");
    let resend = format!("/dashboard/deliveries/{notify}/resend");
    let r = c.post(&resend, &[("csrf_token", "")]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(t.receiver.received().len(), 1);
    let r = c.post(&resend, &[("csrf_token", token.as_str())]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()[LOCATION].to_str().unwrap(),
        format!("/dashboard/payments/{order}?notice=resent")
    );
    let both = t.receiver.wait_for(2).await;
    assert_eq!(both[0], both[1], "byte for byte");

    let log = t
        .gateway
        .state()
        .service
        .store
        .audit_log(&t.merchant.merchant.id, 10)
        .await
        .unwrap();
    let actions: Vec<(&str, &str, &str)> = log
        .iter()
        .map(|e| (e.actor.as_str(), e.action.as_str(), e.subject.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("ada@shop.example", "resend", notify.as_str()),
            ("ada@shop.example", "refund", payment.as_str()),
        ]
    );
}

/// The value of the first `name="…"` attribute in the page.
fn attribute_at(page: &str, name: &str) -> String {
    let at = page.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
    page[at..at + page[at..].find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn a_viewer_reads_but_cannot_refund_or_resend() {
    let t = TestGateway::start().await;
    let (order, payment) = paid(&t, "dash-viewer", "GP").await;
    t.receiver.wait_for(1).await;
    let password = own_user(&t, "val@shop.example", UserRole::Viewer).await;
    let mut c = Center::new(&t);
    c.sign_in("val@shop.example", &password).await;
    let detail = c.page(&format!("/dashboard/payments/{order}")).await;
    assert!(!detail.contains("refund-form") && !detail.contains("class=\"resend\""));
    let notify = attribute_at(&detail, "data-delivery");
    let token = c.csrf().await;
    let r = c
        .post(
            &format!("/dashboard/payments/{order}/refund"),
            &[("amount", "1.00"), ("csrf_token", token.as_str())],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = c
        .post(
            &format!("/dashboard/deliveries/{notify}/resend"),
            &[("csrf_token", token.as_str())],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(t.refunded(&payment).await, "0");
    assert_eq!(t.receiver.received().len(), 1);
}

#[tokio::test]
async fn another_merchants_payments_and_callbacks_are_not_found() {
    let t = TestGateway::start().await;
    let (order, payment) = paid(&t, "dash-mine", "GP").await;
    t.receiver.wait_for(1).await;
    let mut mine = admin(&t).await;
    let detail = mine.page(&format!("/dashboard/payments/{order}")).await;
    let notify = attribute_at(&detail, "data-delivery");

    let other = t.add_merchant("Other Shop").await;
    let password = user(
        &t,
        other.merchant.id.as_str(),
        "eve@other.example",
        UserRole::Admin,
    )
    .await;
    let mut eve = Center::new(&t);
    eve.sign_in("eve@other.example", &password).await;
    let token = eve.csrf().await;
    let missing = eve.get("/dashboard/payments/99999999999999999").await;
    let missing_status = missing.status();
    let missing_body = missing.text().await.unwrap();
    let theirs = eve.get(&format!("/dashboard/payments/{order}")).await;
    assert_eq!(theirs.status(), missing_status);
    assert_eq!(
        theirs.text().await.unwrap(),
        missing_body,
        "exactly as a missing one"
    );
    assert_eq!(missing_status, StatusCode::NOT_FOUND);
    for (path, form) in [
        (
            format!("/dashboard/payments/{order}/refund"),
            vec![("amount", "1.00"), ("csrf_token", token.as_str())],
        ),
        (
            format!("/dashboard/deliveries/{notify}/resend"),
            vec![("csrf_token", token.as_str())],
        ),
    ] {
        let r = eve.post(&path, &form).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    for path in [
        "/dashboard/payments".to_owned(),
        format!("/dashboard/payments?q={payment}"),
        format!("/dashboard/payments?q={order}"),
        "/dashboard/payments.csv".to_owned(),
        "/dashboard".to_owned(),
    ] {
        let page = eve.page(&path).await;
        assert!(
            !page.contains(&format!("data-order=\"{order}\""))
                && !page.contains(&format!("{order},"))
                && !page.contains("dash-mine"),
            "{path}"
        );
    }
    let settings = eve.page("/dashboard/settings").await;
    assert!(
        !settings.contains(t.merchant.merchant.id.as_str())
            && !settings.contains("ada@shop.example"),
        "Eve's settings are Eve's merchant's"
    );
    // Eve's token is not Ada's.
    let r = mine
        .post(
            &format!("/dashboard/payments/{order}/refund"),
            &[("amount", "1.00"), ("csrf_token", token.as_str())],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(t.refunded(&payment).await, "0");
    assert_eq!(t.receiver.received().len(), 1);
    let _ = MerchantId::parse(other.merchant.id.as_str()).unwrap();
}

#[tokio::test]
async fn concurrent_refunds_from_the_dashboard_never_exceed_the_payment() {
    let t = TestGateway::start().await;
    let (order, payment) = paid(&t, "dash-race", "ALIPAY").await;
    let mut c = admin(&t).await;
    let token = c.csrf().await;
    let cookie = c.cookie_header();
    let path = format!("dashboard/payments/{order}/refund");
    // 12.34 paid; ten refunds of 5.00 at once (ten forms, each its own token): two fit.
    let tries: Vec<_> = (0..10)
        .map(|_| {
            let form_token = fresh_form_token();
            t.post(&path)
                .header(COOKIE, cookie.clone())
                .form(&[
                    ("amount", "5.00"),
                    ("csrf_token", token.as_str()),
                    ("form_token", form_token.as_str()),
                    ("confirm", "yes"),
                ])
                .fetch()
        })
        .collect();
    let mut accepted = 0;
    for r in futures::future::join_all(tries).await {
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let location = r.headers()[LOCATION].to_str().unwrap().to_owned();
        let notice = location.split("notice=").nth(1).unwrap();
        match notice.split('&').next().unwrap() {
            // Alipay confirms refunds by notification.
            "refunded" | "refund_pending" => accepted += 1,
            "amount_too_much" => {}
            other => panic!("{other}"),
        }
    }
    assert_eq!(accepted, 2);
    crate::harness::eventually("both refunds confirmed", || async {
        t.refunded(&payment).await == "1000"
    })
    .await;
}

/// A double click: the same rendered form (one `form_token`) sent twice, at once and again
/// later — one refund, and the repeats are told so. Every other form is alike: a rotation
/// sent twice rotates once, and shows the key it rotated in again.
#[tokio::test]
async fn a_form_sent_twice_is_carried_out_once_and_says_so() {
    let t = TestGateway::start().await;
    let (order, payment) = paid(&t, "dash-double", "GP").await;
    let mut c = admin(&t).await;
    let page = c.page(&format!("/dashboard/payments/{order}")).await;
    let first_step = crate::harness::hidden_inputs_of(&page, "refund-form");
    assert!(
        first_step.iter().any(|(k, _)| k == "form_token"),
        "{first_step:?}"
    );
    let mut first_step: Vec<(String, String)> = first_step;
    first_step.push(("amount".into(), "1.00".into()));
    let cookie = c.cookie_header();
    let path = format!("dashboard/payments/{order}/refund");
    // The refund form asks to confirm; the confirmation's form is the one clicked twice.
    let asked = c.post_exactly(&format!("/{path}"), &first_step).await;
    assert_eq!(asked.status(), StatusCode::OK);
    let form = crate::harness::hidden_inputs_of(&asked.text().await.unwrap(), "confirm-form");
    assert!(
        form.iter().any(|(k, v)| k == "confirm" && v == "yes"),
        "{form:?}"
    );
    let clicks: Vec<_> = (0..2)
        .map(|_| {
            t.post(&path)
                .header(COOKIE, cookie.clone())
                .form(&form)
                .fetch()
        })
        .collect();
    let mut notices: Vec<String> = futures::future::join_all(clicks)
        .await
        .iter()
        .map(|r| {
            assert_eq!(r.status(), StatusCode::SEE_OTHER);
            r.headers()[LOCATION].to_str().unwrap().to_owned()
        })
        .collect();
    notices.sort();
    assert_eq!(
        notices,
        [
            format!("/dashboard/payments/{order}?notice=once"),
            format!("/dashboard/payments/{order}?notice=refunded"),
        ]
    );
    // Sent again later (the back button): still once.
    let again = c.post_exactly(&format!("/{path}"), &form).await;
    assert_eq!(
        again.headers()[LOCATION].to_str().unwrap(),
        format!("/dashboard/payments/{order}?notice=once")
    );
    assert_eq!(t.refunded(&payment).await, "100");
    let shown = c
        .page(&format!("/dashboard/payments/{order}?notice=once"))
        .await;
    assert!(shown.contains("carried out once"), "{shown}");
    // The same token on another form is stale, and does nothing.
    let mut elsewhere = form.clone();
    elsewhere.retain(|(k, _)| k != "amount");
    let stale = c
        .post_exactly("/dashboard/settings/sign-key", &elsewhere)
        .await;
    assert_eq!(stale.status(), StatusCode::BAD_REQUEST);
    // Without a token nothing is done either.
    let bare = vec![
        ("csrf_token".to_owned(), c.csrf().await),
        ("amount".to_owned(), "1.00".to_owned()),
        ("confirm".to_owned(), "yes".to_owned()),
    ];
    let r = c.post_exactly(&format!("/{path}"), &bare).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(t.refunded(&payment).await, "100");

    // A rotation clicked twice: rotated once, its key shown to both clicks.
    let settings = c.page("/dashboard/settings").await;
    let rotate = crate::harness::hidden_inputs_of(&settings, "rotate-sign-key");
    let asked = c
        .post_exactly("/dashboard/settings/sign-key", &rotate)
        .await;
    assert_eq!(asked.status(), StatusCode::OK);
    let asked = asked.text().await.unwrap();
    assert!(
        asked.contains("The current one stops working at"),
        "{asked}"
    );
    let rotate = crate::harness::hidden_inputs_of(&asked, "confirm-form");
    let (first, second) = tokio::join!(
        t.post("dashboard/settings/sign-key")
            .header(COOKIE, cookie.clone())
            .form(&rotate)
            .fetch(),
        t.post("dashboard/settings/sign-key")
            .header(COOKIE, cookie.clone())
            .form(&rotate)
            .fetch(),
    );
    assert_eq!(
        (first.status(), second.status()),
        (StatusCode::OK, StatusCode::OK)
    );
    let (first, second) = (first.text().await.unwrap(), second.text().await.unwrap());
    let key_of = |page: &str| {
        let at = page.find("id=\"secret-value\">").unwrap() + "id=\"secret-value\">".len();
        page[at..at + page[at..].find('<').unwrap()].to_owned()
    };
    assert_eq!(key_of(&first), key_of(&second), "the same new key");
    let log = t
        .gateway
        .state()
        .service
        .store
        .audit_log(&t.merchant.merchant.id, 10)
        .await
        .unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["rotate_sign_key", "refund"], "each once");
}

#[tokio::test]
async fn the_csv_is_rfc_4180_streamed_across_batches_and_follows_the_filters() {
    let t = TestGateway::start().await;
    let (order, payment) = paid(&t, "csv-paid", "ALIPAY").await;
    let references: Vec<String> = (0..520).map(|i| format!("csv-{i:03}")).collect();
    for chunk in references.chunks(40) {
        futures::future::join_all(chunk.iter().map(|r| t.create(r))).await;
    }
    // A reference a spreadsheet would run as a formula.
    t.create("=1+1").await;
    let mut c = admin(&t).await;
    let r = c.get("/dashboard/payments.csv").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let text = r.text().await.unwrap();
    let lines: Vec<&str> = text.split_terminator("\r\n").collect();
    assert!(!text.replace("\r\n", "").contains('\n'), "CRLF line ends");
    assert_eq!(
        lines[0],
        "order_id,reference,created,paid,method,currency,amount,refunded,status,wallet_reference,payment_id"
    );
    assert_eq!(
        lines.len(),
        1 + 522,
        "every payment once, across two batches"
    );
    let mut ids: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 522);
    let formula = lines.iter().find(|l| l.contains("=1+1")).unwrap();
    assert_eq!(formula.split(',').nth(1), Some("'=1+1"), "written inert");
    let paid_line = lines.iter().find(|l| l.starts_with(&order)).unwrap();
    let fields: Vec<&str> = paid_line.split(',').collect();
    assert_eq!(fields[1], "csv-paid");
    assert_eq!(
        (fields[4], fields[5], fields[6], fields[7], fields[8]),
        ("ALIPAY", "CAD", "12.34", "0.00", "paid")
    );
    assert!(!fields[3].is_empty() && !fields[9].is_empty());

    let only_paid = c.page("/dashboard/payments.csv?status=paid").await;
    assert_eq!(only_paid.split_terminator("\r\n").count(), 2);
    let _ = payment;
}

/// The value shown once on the page a rotation or a new user answers with.
fn shown_once(page: &str) -> String {
    let at = page.find("id=\"secret-value\">").unwrap() + "id=\"secret-value\">".len();
    page[at..at + page[at..].find('<').unwrap()].to_owned()
}

#[tokio::test]
async fn a_rotated_sign_key_takes_over_and_the_old_one_works_for_its_grace_period() {
    let t = TestGateway::with(Options {
        manual_clock: true,
        ..Options::default()
    })
    .await;
    let mut c = admin(&t).await;
    let old_key = t.merchant.sign_key.expose_secret().to_owned();
    let settings = c.page("/dashboard/settings").await;
    assert!(!settings.contains(&old_key), "the sign key is shown masked");
    assert!(settings.contains(&format!("{}••••", &old_key[..4])));

    let r = c
        .post("/dashboard/settings/sign-key", &[("csrf_token", "")])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let token = c.csrf().await;
    let r = c
        .post(
            "/dashboard/settings/sign-key",
            &[("csrf_token", token.as_str()), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let new_key = shown_once(&r.text().await.unwrap());
    assert_ne!(new_key, old_key);
    let settings = c.page("/dashboard/settings").await;
    assert!(!settings.contains(&new_key) && settings.contains("id=\"sign-key-grace\""));

    // Both keys work for now, each answered under its own key.
    let fresh = ottgate_client::Client::new(
        t.base.as_str(),
        t.merchant.merchant.id.as_str(),
        ottgate_envelope::SignKey::new(new_key.clone()).unwrap(),
    )
    .unwrap();
    fresh.prepay_init(&t.order("rotated-new")).await.unwrap();
    t.client.prepay_init(&t.order("rotated-old")).await.unwrap();
    // Callbacks are sealed with the new key at once.
    let created = t.create("rotated-paid").await;
    t.complete(&created.payinfo, "GP", "paid").await;
    let bodies = t.receiver.wait_for(1).await;
    fresh.verify_callback(&bodies[0]).unwrap();
    assert!(t.client.verify_callback(&bodies[0]).is_err());

    t.advance(Duration::from_secs(24 * 3600 + 1));
    let refused = t.client.prepay_init(&t.order("rotated-late")).await;
    assert!(
        refused.is_err(),
        "the old key's grace period is over: {refused:?}"
    );
    fresh.prepay_init(&t.order("rotated-new-2")).await.unwrap();
    let log = t
        .gateway
        .state()
        .service
        .store
        .audit_log(&t.merchant.merchant.id, 5)
        .await
        .unwrap();
    assert_eq!(log[0].action, "rotate_sign_key");
}

#[tokio::test]
async fn a_rotated_webhook_secret_signs_beside_the_old_one_until_its_grace_ends() {
    let t = TestGateway::with(Options {
        manual_clock: true,
        ..Options::default()
    })
    .await;
    let mut c = admin(&t).await;
    let token = c.csrf().await;
    for forged in ["", "00", &"ab".repeat(32)] {
        let r = c
            .post(
                "/dashboard/settings/webhook-secret",
                &[("csrf_token", forged)],
            )
            .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{forged:?}");
    }
    let r = c
        .post(
            "/dashboard/settings/webhook-secret",
            &[("csrf_token", token.as_str()), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let new_secret = shown_once(&r.text().await.unwrap());
    let old_secret = t.merchant.webhook_secret.expose_secret().to_owned();
    assert!(new_secret.starts_with("whsec_") && new_secret != old_secret);

    let verifies = |secret: &str, header: &str, body: &[u8]| {
        ottgate_client::verify_signature_header(
            secret,
            header,
            body,
            t.now().epoch_millis() / 1000,
            Duration::from_secs(300),
        )
        .is_ok()
    };
    let created = t.create("whsec-1").await;
    t.complete(&created.payinfo, "GP", "paid").await;
    let bodies = t.receiver.wait_for(1).await;
    let header = t.receiver.signatures()[0].clone().unwrap();
    assert_eq!(header.matches("v1=").count(), 2, "{header}");
    assert!(verifies(&new_secret, &header, &bodies[0]));
    assert!(verifies(&old_secret, &header, &bodies[0]));

    t.advance(Duration::from_secs(24 * 3600 + 1));
    let created = t.create("whsec-2").await;
    t.complete(&created.payinfo, "GP", "paid").await;
    let bodies = t.receiver.wait_for(2).await;
    let header = t.receiver.signatures()[1].clone().unwrap();
    assert_eq!(header.matches("v1=").count(), 1, "{header}");
    assert!(verifies(&new_secret, &header, &bodies[1]));
    assert!(!verifies(&old_secret, &header, &bodies[1]));
}

#[tokio::test]
async fn methods_and_users_are_managed_by_admins_only_and_audited() {
    let t = TestGateway::start().await;
    let mut c = admin(&t).await;
    let token = c.csrf().await;
    let methods = |list: &[&str]| {
        let mut form = vec![("csrf_token".to_owned(), token.clone())];
        form.extend(list.iter().map(|m| ("method".to_owned(), (*m).to_owned())));
        form
    };
    let r = c.post("/dashboard/settings/methods", &methods(&[])).await;
    assert!(
        r.headers()[LOCATION]
            .to_str()
            .unwrap()
            .ends_with("methods_empty")
    );
    let r = c
        .post(
            "/dashboard/settings/methods",
            &methods(&["ALIPAY", "WECHATPAY"]),
        )
        .await;
    assert!(
        r.headers()[LOCATION]
            .to_str()
            .unwrap()
            .ends_with("methods_saved")
    );
    let merchant = t
        .gateway
        .state()
        .service
        .store
        .merchant(&t.merchant.merchant.id)
        .await
        .unwrap()
        .unwrap()
        .merchant;
    assert_eq!(
        merchant.methods,
        [
            ottgate_core::PaymentMethod::WeChatPay,
            ottgate_core::PaymentMethod::Alipay
        ]
    );
    let r = c
        .post("/dashboard/settings/methods", &[("method", "GP")])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "no token");

    let r = c
        .post(
            "/dashboard/settings/users",
            &[("email", "mallory@shop.example"), ("role", "admin")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "no token");
    let r = c.add_user(&token, "Vic@Shop.example", "viewer").await;
    assert_eq!(r.status(), StatusCode::OK);
    let password = shown_once(&r.text().await.unwrap());
    let r = c.add_user(&token, "vic@shop.example", "admin").await;
    assert!(
        r.headers()[LOCATION]
            .to_str()
            .unwrap()
            .ends_with("user_exists")
    );
    // Another merchant's user: refused without saying whose the address is.
    let other = t.add_merchant("Other Shop").await;
    user(
        &t,
        other.merchant.id.as_str(),
        "eve@other.example",
        UserRole::Admin,
    )
    .await;
    let r = c.add_user(&token, "eve@other.example", "viewer").await;
    let location = r.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(location.ends_with("user_unavailable"), "{location}");
    let said = c.page(&location).await;
    assert!(
        said.contains("cannot be added here") && !said.contains("exists"),
        "{said}"
    );

    let mut vic = Center::new(&t);
    assert_eq!(
        vic.sign_in("vic@shop.example", &password).await.status(),
        StatusCode::SEE_OTHER
    );
    let settings = vic.page("/dashboard/settings").await;
    assert!(!settings.contains("rotate-sign-key") && !settings.contains("methods-form"));
    assert!(!settings.contains("link-flows-form"));
    assert!(
        !settings.contains(&t.merchant.mer_code),
        "a viewer sees the merCode masked"
    );
    let vic_token = vic.csrf().await;
    for path in [
        "/dashboard/settings/sign-key",
        "/dashboard/settings/webhook-secret",
        "/dashboard/settings/methods",
        "/dashboard/settings/link-flows",
    ] {
        let r = vic
            .post(
                path,
                &[("csrf_token", vic_token.as_str()), ("method", "GP")],
            )
            .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let r = vic.add_user(&vic_token, "x@shop.example", "admin").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let settings = c.page("/dashboard/settings").await;
    let audit = &settings[settings.find("id=\"audit-log\"").unwrap()..];
    for action in ["Payment methods changed", "User added"] {
        assert!(audit.contains(&format!("<td>{action}</td>")), "{action}");
    }
    assert!(audit.contains("<td>WECHATPAY,ALIPAY</td>"));
    assert!(
        !audit.contains("Sign key rotated"),
        "the viewer's tries changed nothing"
    );
}

#[tokio::test]
async fn the_overview_totals_today_and_charts_paid_volume_by_day() {
    // A clock that stands still: "today" cannot turn over mid-test.
    let t = TestGateway::with(Options {
        manual_clock: true,
        ..Options::default()
    })
    .await;
    let (_, first) = paid(&t, "ov-1", "ALIPAY").await;
    paid(&t, "ov-2", "ALIPAY").await;
    paid(&t, "ov-3", "WECHATPAY").await;
    t.create("ov-open").await;
    let mut c = admin(&t).await;
    let overview = c.page("/dashboard").await;
    // Today's bar holds the three payments (3 × 12.34); the 29 days before are empty.
    let chart = &overview[overview.find("<svg id=\"chart-CAD\"").unwrap()..];
    let chart = &chart[..chart.find("</svg>").unwrap()];
    assert_eq!(chart.matches("<rect").count(), 30);
    assert_eq!(chart.matches("data-value=\"0\"").count(), 29);
    assert!(chart.contains("data-value=\"3702\""), "{chart}");
    let today = &overview[overview.find("id=\"today\"").unwrap()..];
    let today = &today[..today.find("</section>").unwrap()];
    assert!(
        today.contains("<td>Alipay</td><td class=\"s-success\">Paid</td><td class=\"num\">2</td><td class=\"num\">24.68 CAD</td>"),
        "{today}"
    );
    assert!(today.contains("Pending</td><td class=\"num\">1</td>"));
    // Gross, refunded and net of the paid payments, by method and currency.
    let money = &today[today.find("id=\"today-money\"").unwrap()..];
    assert!(
        money.contains("<td>Alipay</td><td>CAD</td><td class=\"num\">2</td><td class=\"num gross\">24.68 CAD</td><td class=\"num refunded\">0.00 CAD</td><td class=\"num net\">24.68 CAD</td>"),
        "{money}"
    );
    // Alipay answers a refund pending, then notifies it done.
    t.client.refund(&first, "200", None).await.unwrap();
    for _ in 0..200 {
        if t.refunded(&first).await == "200" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(t.refunded(&first).await, "200");
    let overview = c.page("/dashboard").await;
    let today = &overview[overview.find("id=\"today-money\"").unwrap()..];
    assert!(
        today.contains("<td class=\"num gross\">24.68 CAD</td><td class=\"num refunded\">2.00 CAD</td><td class=\"num net\">22.68 CAD</td>"),
        "{today}"
    );
    // The list's statuses never overlap: the refunded one is only under its own.
    let paid_list = c.page("/dashboard/payments?status=paid").await;
    let partly = c
        .page("/dashboard/payments?status=partially_refunded")
        .await;
    assert!(!paid_list.contains(">ov-1<") && paid_list.contains(">ov-2<"));
    assert!(partly.contains(">ov-1<") && !partly.contains(">ov-2<"));
    // In Chinese, remembered by a cookie.
    let zh = c.page("/dashboard?lang=zh").await;
    assert!(zh.contains("<html lang=\"zh-CN\">") && zh.contains("支付宝"));
    let again = c.page("/dashboard/payments").await;
    assert!(again.contains("商户订单号"));
    let css = c.get("/dashboard/assets/app.css").await;
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
}

#[tokio::test]
async fn an_admin_switches_link_flows_on_and_off_and_it_is_audited() {
    let t = TestGateway::start().await;
    let mut c = admin(&t).await;
    let settings = c.page("/dashboard/settings").await;
    assert!(
        settings.contains(&t.merchant.mer_code),
        "admins see the merCode"
    );
    assert!(settings.contains("link-flows-form"));
    let token = c.csrf().await;
    let link = |t: &TestGateway| {
        let store = t.gateway.state().service.store.clone();
        let id = t.merchant.merchant.id.clone();
        async move { store.merchant(&id).await.unwrap().unwrap().link }
    };
    assert!(!link(&t).await.enabled, "off until switched on");

    let form = [
        ("csrf_token", token.as_str()),
        ("enabled", "on"),
        ("callback_url", "https://shop.example/h5-notify"),
    ];
    let r = c.post("/dashboard/settings/link-flows", &form).await;
    assert!(
        r.headers()[LOCATION]
            .to_str()
            .unwrap()
            .ends_with("link_flows_saved")
    );
    let now = link(&t).await;
    assert!(now.enabled);
    assert_eq!(
        now.callback_url.as_deref(),
        Some("https://shop.example/h5-notify")
    );

    // A URL the gateway may not call changes nothing.
    let bad = [
        ("csrf_token", token.as_str()),
        ("callback_url", "ftp://shop.example/"),
    ];
    let r = c.post("/dashboard/settings/link-flows", &bad).await;
    assert!(
        r.headers()[LOCATION]
            .to_str()
            .unwrap()
            .ends_with("link_flows_invalid")
    );
    assert!(link(&t).await.enabled, "unchanged");

    // Unticked: off, and the URL cleared.
    let off = [("csrf_token", token.as_str()), ("callback_url", "")];
    c.post("/dashboard/settings/link-flows", &off).await;
    let now = link(&t).await;
    assert!(!now.enabled && now.callback_url.is_none());
    let settings = c.page("/dashboard/settings").await;
    let audit = &settings[settings.find("id=\"audit-log\"").unwrap()..];
    assert_eq!(
        audit.matches("<td>Link flows changed</td>").count(),
        2,
        "{audit}"
    );
}

/// Every id a merchant was given opens its payment: the checkout's order id, the payment id
/// (the callback's `order_id`, REST `paymentId`), its own reference; the list links by the
/// payment id and the CSV carries it. Another merchant's ids open nothing.
#[tokio::test]
async fn any_id_the_merchant_was_given_opens_the_payment_and_no_other_merchants() {
    let t = TestGateway::start().await;
    let (order, payment) = paid(&t, "one-id-1", "ALIPAY").await;
    let rest = t
        .rest()
        .wap_pay(&serde_json::from_value(t.pay_body(Some("one-id-rest"))).unwrap())
        .await
        .unwrap();
    let mut c = admin(&t).await;
    for id in [order.as_str(), payment.as_str(), "one-id-1"] {
        let page = c.page(&format!("/dashboard/payments/{id}")).await;
        assert!(page.contains("one-id-1") && page.contains(&payment), "{id}");
    }
    for id in [rest.payment_id.as_str(), "one-id-rest"] {
        let page = c.page(&format!("/dashboard/payments/{id}")).await;
        assert!(
            page.contains(&rest.payment_id) && page.contains("one-id-rest"),
            "{id}"
        );
    }
    let list = c.page("/dashboard/payments").await;
    assert!(
        list.contains(&format!("href=\"/dashboard/payments/{payment}\"")),
        "{list}"
    );
    let csv = c.get("/dashboard/payments.csv").await.text().await.unwrap();
    let line = csv.lines().find(|l| l.contains("one-id-1")).unwrap();
    assert!(line.ends_with(&format!(",{payment}")), "{line}");

    // Another merchant's payment, by each of its ids: not found.
    let (_, other_rest) = t.other_merchant().await;
    let theirs = other_rest
        .wap_pay(&serde_json::from_value(t.pay_body(Some("their-ref"))).unwrap())
        .await
        .unwrap();
    for id in [theirs.payment_id.as_str(), "their-ref"] {
        let r = c.get(&format!("/dashboard/payments/{id}")).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{id}");
    }
}

/// The REST appKey rotates like the sign key: shown once, the old one still obtains tokens
/// for 24 hours, then not; a form sent twice does not rotate twice; a viewer cannot.
#[tokio::test]
async fn a_rotated_app_key_is_shown_once_and_the_old_one_works_until_its_grace_ends() {
    let t = TestGateway::with(Options {
        manual_clock: true,
        ..Options::default()
    })
    .await;
    let mut c = admin(&t).await;
    let token = c.csrf().await;
    let r = c
        .post(
            "/dashboard/settings/app-key",
            &[("csrf_token", token.as_str()), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let new_key = shown_once(&r.text().await.unwrap());
    let old_key = t.merchant.app_key.expose_secret().to_owned();
    assert_ne!(new_key, old_key);
    let settings = c.page("/dashboard/settings").await;
    assert!(!settings.contains(&new_key) && settings.contains("id=\"app-key-grace\""));

    let app_id = t.merchant.merchant.app_id.clone();
    let rest = |key: &str| ottgate_client::RestClient::new(t.base.as_str(), &app_id, key).unwrap();
    rest(&new_key).token().await.unwrap();
    rest(&old_key).token().await.unwrap();
    t.advance(Duration::from_secs(24 * 3600 + 1));
    let refused = rest(&old_key).token().await.unwrap_err();
    assert!(refused.to_string().contains("10003"), "{refused}");
    rest(&new_key).token().await.unwrap();

    let log = t
        .gateway
        .state()
        .service
        .store
        .audit_log(&t.merchant.merchant.id, 5)
        .await
        .unwrap();
    assert_eq!(log[0].action, "rotate_app_key");

    // A viewer sees the settings but cannot rotate.
    let password = own_user(&t, "vi@shop.example", UserRole::Viewer).await;
    let mut viewer = Center::new(&t);
    viewer.sign_in("vi@shop.example", &password).await;
    let token = viewer.csrf().await;
    let r = viewer
        .post(
            "/dashboard/settings/app-key",
            &[("csrf_token", token.as_str()), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

/// Times are shown in the merchant's zone, labelled (the deployment's by default,
/// America/Toronto); an admin changes it, the CSV follows with its offset.
#[tokio::test]
async fn times_are_shown_in_the_merchants_zone_labelled_and_the_csv_carries_the_offset() {
    let t = TestGateway::start().await;
    paid(&t, "tz-1", "GP").await;
    let mut c = admin(&t).await;
    let list = c.page("/dashboard/payments").await;
    assert!(
        list.contains(" EST<") || list.contains(" EDT<"),
        "labelled Toronto time"
    );
    let token = c.csrf().await;
    let r = c
        .post(
            "/dashboard/settings/time-zone",
            &[("csrf_token", token.as_str()), ("zone", "Mars/Olympus")],
        )
        .await;
    assert!(
        r.headers()[LOCATION]
            .to_str()
            .unwrap()
            .ends_with("zone_invalid")
    );
    let r = c
        .post(
            "/dashboard/settings/time-zone",
            &[("csrf_token", token.as_str()), ("zone", "Asia/Shanghai")],
        )
        .await;
    assert!(
        r.headers()[LOCATION]
            .to_str()
            .unwrap()
            .ends_with("zone_saved")
    );
    let list = c.page("/dashboard/payments").await;
    assert!(list.contains(" CST<"), "now in Shanghai time");
    let csv = c.get("/dashboard/payments.csv").await.text().await.unwrap();
    let line = csv.lines().find(|l| l.contains("tz-1")).unwrap();
    assert!(line.contains("+08:00,"), "{line}");
}

/// Issue 23, item 6: a payment's page says everything the merchant sent and the wallet
/// reported — remarks, sale number, URLs, the yuan the buyer paid and the wallet's rate —
/// who refunded and why, and one timeline, all in words (never `SUCCESS` or `checkout`),
/// in both languages.
#[tokio::test]
async fn a_payment_page_tells_its_whole_story_in_words() {
    let t = TestGateway::start().await;
    let (attempt, scan) = crate::wechat::wechat_attempt(&t, "dash-story").await;
    crate::wechat::pay_on_phone(&t, &scan, "pay").await;
    t.wait_paid(&attempt).await;
    t.receiver.wait_for(1).await;
    let order = crate::center::order_of(&t, &attempt).await;
    let mut c = admin(&t).await;
    let token = c.csrf().await;
    let path = format!("/dashboard/payments/{order}/refund");
    let form = |confirm: &'static str| {
        vec![
            ("amount", "2.00".to_owned()),
            ("reason", "  Wrong size\n".to_owned()),
            ("csrf_token", token.clone()),
            ("confirm", confirm.to_owned()),
        ]
    };
    let asked = c.post(&path, &form("")).await.text().await.unwrap();
    assert!(asked.contains("Wrong size"), "the reason is confirmed too");
    let r = c.post(&path, &form("yes")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    t.client.refund(&attempt, "100", None).await.unwrap();

    let page = c.page(&format!("/dashboard/payments/{order}")).await;
    for (what, expected) in [
        ("remarks", "可以".to_owned()),
        ("sale number", "S-dash-story".to_owned()),
        (
            "callback URL",
            t.receiver_url.join("notify").unwrap().to_string(),
        ),
        (
            "return URL",
            t.receiver_url.join("return").unwrap().to_string(),
        ),
        ("the kind", "Hosted checkout".to_owned()),
        // 12.34 CAD at the simulator's 5.1: 62.934 yuan, as WeChat Pay's cash_fee says.
        ("yuan paid", "id=\"buyer-paid\">62.93 CNY".to_owned()),
        ("rate", "id=\"exchange-rate\">5.1 CNY per CAD".to_owned()),
        (
            "who refunded",
            "<td class=\"refunded-by\">ada@shop.example</td>".to_owned(),
        ),
        (
            "why",
            "<td class=\"refund-reason\">Wrong size</td>".to_owned(),
        ),
        ("the API refund", "Envelope API (REFUND)".to_owned()),
        ("attempt state", "<td>Paid</td>".to_owned()),
        ("refund state", "<td>Refunded</td>".to_owned()),
        ("callback state", "Acknowledged".to_owned()),
    ] {
        assert!(page.contains(&expected), "{what}: {expected}\n{page}");
    }
    // One timeline, in the order things happened.
    let timeline = &page[page.find("id=\"timeline\"").unwrap()..];
    let at = |what: &str| {
        timeline
            .find(what)
            .unwrap_or_else(|| panic!("{what} in the timeline: {timeline}"))
    };
    assert!(at("Payment created") < at("Buyer started paying with WeChat Pay"));
    assert!(at("Buyer started paying with WeChat Pay") < at("<td>Paid</td>"));
    assert!(at("<td>Paid</td>") < at("Callback sent #1"));
    assert!(at("Callback sent #1") < at("Refund asked"));
    assert!(timeline.contains("HTTP 200"));
    for raw in [
        "<td>SUCCESS<",
        ">PROCESSING<",
        ">checkout<",
        ">success<",
        ">delivered<",
        ">paid<",
    ] {
        // (The merchant's own answer to the callback is shown as they wrote it, in <code>.)
        assert!(!page.contains(raw), "{raw} on the page");
    }
    let zh = c
        .page(&format!("/dashboard/payments/{order}?lang=zh"))
        .await;
    for expected in [
        "顾客支付（人民币）",
        "收银台",
        "已确认",
        "时间线",
        "订单创建",
        "加密接口（REFUND）",
    ] {
        assert!(zh.contains(expected), "{expected}");
    }
}
