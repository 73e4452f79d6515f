//! The merchant center as one person's browser sees it, for the tests that sign in.

use ottgate_core::AttemptId;
use ottgate_server::UserRole;
use ottgate_testkit::Fetch;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, SET_COOKIE};
use std::collections::BTreeMap;

use crate::harness::TestGateway;

/// One person's browser at the merchant center: its cookies, kept by hand.
pub struct Center<'a> {
    pub t: &'a TestGateway,
    pub cookies: BTreeMap<String, String>,
    /// The `Set-Cookie` headers of the last answer.
    pub set_cookies: Vec<String>,
}

impl<'a> Center<'a> {
    pub fn new(t: &'a TestGateway) -> Self {
        Self {
            t,
            cookies: BTreeMap::new(),
            set_cookies: Vec::new(),
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn keep(&mut self, r: &reqwest::Response) {
        self.set_cookies = r
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for c in &self.set_cookies {
            let pair = c.split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() || c.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
    }

    pub async fn get(&mut self, path: &str) -> reqwest::Response {
        let r = self
            .t
            .get(path.trim_start_matches('/'))
            .header(COOKIE, self.cookie_header())
            .fetch()
            .await;
        self.keep(&r);
        r
    }

    /// The page's HTML, without the `data-label` attributes of its table cells (the phone
    /// layout's labels), so assertions read each table as written.
    pub async fn page(&mut self, path: &str) -> String {
        let r = self.get(path).await;
        assert_eq!(r.status(), StatusCode::OK, "GET {path}");
        without_labels(&r.text().await.unwrap())
    }

    /// POSTs `form` as the page's form would be sent: a form that changes something carries
    /// a fresh one-time `form_token` (as each rendered form does), unless `form` has its own.
    pub async fn post<F: serde::Serialize + ?Sized>(
        &mut self,
        path: &str,
        form: &F,
    ) -> reqwest::Response {
        let mut pairs: Vec<(String, String)> =
            serde_json::from_value(serde_json::to_value(form).unwrap()).unwrap();
        let changes_something = !path.ends_with("/login") && !path.ends_with("/logout");
        if changes_something && pairs.iter().all(|(k, _)| k != "form_token") {
            pairs.push(("form_token".into(), fresh_form_token()));
        }
        self.post_exactly(path, &pairs).await
    }

    /// The settings page's "add user" form, with `csrf` as its token.
    pub async fn add_user(&mut self, csrf: &str, email: &str, role: &str) -> reqwest::Response {
        let form = [("csrf_token", csrf), ("email", email), ("role", role)];
        self.post("/dashboard/settings/users", &form).await
    }

    /// POSTs exactly `form`.
    pub async fn post_exactly(
        &mut self,
        path: &str,
        form: &[(String, String)],
    ) -> reqwest::Response {
        let r = self
            .t
            .post(path.trim_start_matches('/'))
            .header(COOKIE, self.cookie_header())
            .form(form)
            .fetch()
            .await;
        self.keep(&r);
        r
    }

    /// Signs in; the answer to the POST.
    pub async fn sign_in(&mut self, email: &str, password: &str) -> reqwest::Response {
        let form = self.page("/dashboard/login").await;
        let csrf = attribute_named(&form, "csrf_token");
        self.post(
            "/dashboard/login",
            &[
                ("email", email),
                ("password", password),
                ("csrf_token", csrf.as_str()),
            ],
        )
        .await
    }

    /// The CSRF token of the session (from any page's sign-out form).
    pub async fn csrf(&mut self) -> String {
        let page = self.page("/dashboard").await;
        attribute_named(&page, "csrf_token")
    }
}

/// The `value` of the first input named `name`.
pub fn attribute_named(page: &str, name: &str) -> String {
    let at = page
        .find(&format!("name=\"{name}\""))
        .unwrap_or_else(|| panic!("no {name} in {page}"));
    let tag = &page[page[..at].rfind('<').unwrap()..at + page[at..].find('>').unwrap()];
    let v = tag.find("value=\"").unwrap() + 7;
    tag[v..v + tag[v..].find('"').unwrap()].to_owned()
}

/// A user of `merchant` with `role`; their one-time password.
pub async fn user(t: &TestGateway, merchant: &str, email: &str, role: UserRole) -> String {
    let state = t.gateway.state();
    ottgate_server::users::add_user(
        &*state.service.store,
        &*state.service.clock,
        merchant,
        email,
        role,
    )
    .await
    .unwrap()
    .password
    .expose_secret()
    .to_owned()
}

/// A user of the test gateway's own merchant; their one-time password.
pub async fn own_user(t: &TestGateway, email: &str, role: UserRole) -> String {
    let merchant = t.merchant.merchant.id.as_str();
    user(t, merchant, email, role).await
}

pub async fn admin(t: &TestGateway) -> Center<'_> {
    let password = own_user(t, "ada@shop.example", UserRole::Admin).await;
    let mut c = Center::new(t);
    let r = c.sign_in("ada@shop.example", &password).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    c
}

/// A checkout paid with `method`: (order id, payment id).
pub async fn paid(t: &TestGateway, reference: &str, method: &str) -> (String, String) {
    let created = t.create(reference).await;
    let (status, body) = t.complete(&created.payinfo, method, "paid").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let payment = body["order_id"].as_str().unwrap().to_owned();
    (order_of(t, &payment).await, payment)
}

pub async fn order_of(t: &TestGateway, payment: &str) -> String {
    t.gateway
        .state()
        .service
        .store
        .attempt(&AttemptId::parse(payment).unwrap())
        .await
        .unwrap()
        .unwrap()
        .order_id
        .to_string()
}

/// `html` without its ` data-label="…"` attributes.
pub fn without_labels(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(at) = rest.find(" data-label=\"") {
        out.push_str(&rest[..at]);
        let after = &rest[at + " data-label=\"".len()..];
        rest = after.find('"').map_or("", |end| &after[end + 1..]);
    }
    out.push_str(rest);
    out
}

/// A one-time form token as a rendered form carries it.
pub fn fresh_form_token() -> String {
    (0..32)
        .map(|_| char::from(b"0123456789abcdef"[rand::random::<usize>() % 16]))
        .collect()
}
