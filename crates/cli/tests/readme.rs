//! The README is true (issue 23, item 13): its shell session and its REST session are run
//! against a real `ottgate serve`, command by command, and every `"key": "value"` of each
//! sample answer must be what the gateway answers now; its `user add` sample is what
//! `user add` prints; the simulator routes it names answer. Ids, keys and times differ from
//! run to run, so those are compared by shape (and remembered: a later command naming the
//! README's id is sent the real one); `…` stands for what the README leaves out.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code")]

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::{Credentials, Server, add_merchant, ottgate};

const README: &str = include_str!("../../../README.md");
/// The gateway's address as the README writes it.
const README_BASES: [&str; 2] = ["http://127.0.0.1:8080", "localhost:8080"];

/// What the README wrote → what this run got: ids learnt from answers, and the merchant's.
#[derive(Default)]
struct Learnt(BTreeMap<String, String>);

impl Learnt {
    fn apply(&self, text: &str, base: &str) -> String {
        let mut out = text.to_owned();
        for readme_base in README_BASES {
            out = out.replace(readme_base, base);
        }
        // Longest first, so an id is never replaced inside a longer one.
        let mut known: Vec<_> = self.0.iter().collect();
        known.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
        for (readme, real) in known {
            out = out.replace(readme.as_str(), real);
        }
        out
    }
}

/// Every `"key": value` of a JSON-ish sample (values: strings, numbers, or `…`), in order.
fn pairs(text: &str) -> Vec<(String, String)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let string_at = |mut i: usize| -> (String, usize) {
        let mut s = String::new();
        i += 1;
        while i < chars.len() && chars[i] != '"' {
            if chars[i] == '\\' {
                i += 1;
            }
            if i < chars.len() {
                s.push(chars[i]);
            }
            i += 1;
        }
        (s, i + 1)
    };
    while i < chars.len() {
        if chars[i] != '"' {
            i += 1;
            continue;
        }
        let (key, mut j) = string_at(i);
        while j < chars.len() && chars[j] == ' ' {
            j += 1;
        }
        if j >= chars.len() || chars[j] != ':' {
            i = j;
            continue;
        }
        j += 1;
        while j < chars.len() && chars[j] == ' ' {
            j += 1;
        }
        match chars.get(j) {
            Some('"') => {
                let (value, end) = string_at(j);
                out.push((key, value));
                i = end;
            }
            Some(c) if c.is_ascii_digit() || *c == '…' => {
                let value: String = chars[j..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == '…' || **c == '.')
                    .collect();
                i = j + value.chars().count();
                out.push((key, value));
            }
            _ => i = j,
        }
    }
    out
}

/// Every key and scalar value of a JSON answer, at any depth.
fn flatten(v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match v {
                    serde_json::Value::String(s) => out.push((k.clone(), s.clone())),
                    serde_json::Value::Number(n) => out.push((k.clone(), n.to_string())),
                    serde_json::Value::Bool(b) => out.push((k.clone(), b.to_string())),
                    _ => {
                        out.push((k.clone(), "…".into()));
                        flatten(v, out);
                    }
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| flatten(v, out)),
        _ => {}
    }
}

/// Digits as `#`, month names as `Mon`, AM/PM as `XM`, a hex key as its length: what stays
/// from run to run.
fn shape(s: &str) -> String {
    let hex_key = s.len() >= 16
        && s.chars().all(|c| c.is_ascii_hexdigit())
        && s.chars().any(|c| c.is_ascii_alphabetic());
    if hex_key {
        return format!("hex key of {}", s.len());
    }
    let mut out = String::new();
    let mut digits = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            if !digits {
                out.push('#');
            }
            digits = true;
        } else {
            digits = false;
            out.push(c);
        }
    }
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    for m in months {
        out = out.replace(m, "Mon");
    }
    out.replace(" AM", " XM").replace(" PM", " XM")
}

/// A value that changes from run to run: an id, a key, a time.
fn varies(s: &str) -> bool {
    let digits = s.chars().filter(char::is_ascii_digit).count();
    let hex = s.len() >= 16 && s.chars().all(|c| c.is_ascii_hexdigit());
    digits >= 8 || hex
}

/// Whether `real` is what the README's `readme` value says; learns ids on the way.
fn agrees(readme: &str, real: &str, learnt: &mut Learnt, base: &str) -> bool {
    if readme == "…" {
        return true;
    }
    if let Some(prefix) = readme.strip_suffix('…') {
        return real.starts_with(&learnt.apply(prefix, base));
    }
    let readme = learnt.apply(readme, base);
    if readme == real {
        return true;
    }
    if varies(&readme) && shape(&readme) == shape(real) {
        learnt.0.insert(readme, real.to_owned());
        return true;
    }
    false
}

/// Checks each of the README's pairs against the answer; the ones that disagree.
fn drift(readme: &str, answer: &str, learnt: &mut Learnt, base: &str) -> Vec<String> {
    let expected = pairs(readme);
    let mut real = Vec::new();
    match serde_json::from_str::<serde_json::Value>(answer) {
        Ok(v) => flatten(&v, &mut real),
        Err(_) => {
            // A plain answer (a buyer's code): one value.
            let (want, got) = (readme.trim(), answer.trim());
            return if expected.is_empty() && agrees(want, got, learnt, base) {
                Vec::new()
            } else {
                vec![format!("answer {got:?}, the README says {want:?}")]
            };
        }
    }
    let mut wrong = Vec::new();
    for (key, value) in expected {
        let candidates: Vec<&String> = real
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v)
            .collect();
        if !candidates.iter().any(|v| agrees(&value, v, learnt, base)) {
            wrong.push(format!(
                "{key}: README {value:?}, the gateway {candidates:?}"
            ));
        }
    }
    wrong
}

/// Splits a command line as a shell would (quotes, a trailing `# comment`).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut in_word = false;
    for c in line.chars() {
        match (quote, c) {
            (None, '#') if !in_word => break,
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (_, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(word);
    }
    out
}

/// The README's section from `heading` to the next `## ` heading.
fn section(heading: &str) -> &'static str {
    let start = README
        .find(heading)
        .unwrap_or_else(|| panic!("{heading} in the README"));
    let rest = &README[start + heading.len()..];
    &rest[..rest.find("\n## ").unwrap_or(rest.len())]
}

/// The shell session: each `$ ` line with the lines that follow it, up to the next.
fn shell_session() -> Vec<(String, String)> {
    let intro = "A session against `ottgate serve` (sandbox), from the shell:";
    let block = &README[README.find(intro).expect("the shell session")..];
    let block = &block[block.find("```").unwrap() + 3..];
    let block = &block[..block.find("```").unwrap()];
    let mut steps: Vec<(String, String)> = Vec::new();
    for line in block.lines() {
        if let Some(command) = line.strip_prefix("$ ") {
            steps.push((command.to_owned(), String::new()));
        } else if let Some((_, answer)) = steps.last_mut() {
            answer.push_str(line);
            answer.push('\n');
        }
    }
    steps
}

/// The REST session: each `POST|GET /…` request (with its body) and its `→` answer.
fn rest_session() -> Vec<(String, String, String, String)> {
    let mut steps = Vec::new();
    let mut current: Option<(String, String, String, String)> = None;
    let mut in_answer = false;
    for line in section("## The REST API v1").lines().map(str::trim) {
        let request = ["POST /", "GET /"].iter().any(|p| line.starts_with(p));
        if request || line.starts_with("```") || line.is_empty() {
            if let Some(step) = current.take() {
                steps.push(step);
            }
            in_answer = false;
        }
        if request {
            let (method, rest) = line.split_once(' ').unwrap();
            let (path, body) = rest.split_once(' ').unwrap_or((rest, ""));
            current = Some((
                method.into(),
                path.into(),
                body.trim().into(),
                String::new(),
            ));
        } else if let Some(answer) = line.strip_prefix("→ ") {
            in_answer = true;
            if let Some(step) = current.as_mut() {
                step.3.push_str(answer);
            }
        } else if let Some(step) = current.as_mut() {
            if in_answer {
                step.3.push_str(line);
            } else {
                step.2.push_str(line);
            }
        }
    }
    steps.retain(|s| !s.3.is_empty());
    steps
}

fn merchant_env(cmd: &mut std::process::Command, server: &Server, c: &Credentials) {
    cmd.env("OTTGATE_GATEWAY", &server.base)
        .env("OTTGATE_MERCHANT_ID", &c.merchant_id)
        .env("OTTGATE_SHOP_ID", &c.shop_id)
        .env("OTTGATE_OPERATOR_ID", &c.operator_id)
        .env("OTTGATE_SIGN_KEY", &c.sign_key)
        .env("OTTGATE_APP_ID", &c.app_id)
        .env("OTTGATE_APP_KEY", &c.app_key);
}

/// Runs one shell-session command; its standard output.
async fn run_shell(line: &str, server: &Server, c: &Credentials, learnt: &Learnt) -> String {
    let words = words(&learnt.apply(line, &server.base));
    match words[0].as_str() {
        "ottgate" => {
            let mut cmd = ottgate();
            merchant_env(&mut cmd, server, c);
            let out = cmd.args(&words[1..]).output().unwrap();
            assert!(
                out.status.success(),
                "README: `{line}` failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        }
        "curl" => {
            let url = words
                .iter()
                .find(|w| w.contains("/sandbox/") || w.contains("/api/"))
                .unwrap();
            let url = if url.starts_with("http") {
                url.clone()
            } else {
                format!("http://{url}")
            };
            let body = words
                .iter()
                .position(|w| w == "-d")
                .map(|i| words[i + 1].clone());
            let http = reqwest::Client::new();
            let r = match body {
                Some(body) => http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body),
                None => http.get(&url),
            };
            r.send().await.unwrap().text().await.unwrap()
        }
        other => panic!("README: a command the test does not run: {other}"),
    }
}

#[tokio::test]
async fn the_readme_shell_and_rest_sessions_are_what_the_gateway_answers() {
    let dir = tempfile::tempdir().unwrap();
    let c = add_merchant(dir.path(), "Maple Tea House");
    let mut server = Server::start(dir.path());
    let base = server.base.clone();
    let mut learnt = Learnt::default();
    // The README's merchant and its appKey placeholder are this run's.
    for id in ["ON31171045", "ON00004652", "ON12345678"] {
        learnt.0.insert(id.into(), c.merchant_id.clone());
    }
    learnt.0.insert("<32 hex>".into(), c.app_key.clone());
    let mut wrong = Vec::new();

    let shell = shell_session();
    assert!(shell.len() >= 8, "the shell session is found: {shell:?}");
    for (line, readme) in &shell {
        // A query may have to wait for the gateway to follow a payment up.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let answer = run_shell(line, &server, &c, &learnt).await;
            let found = drift(readme, &answer, &mut learnt, &base);
            if found.is_empty() {
                break;
            }
            if !line.starts_with("ottgate query") || Instant::now() > deadline {
                wrong.push(format!("$ {line}\n  {}", found.join("\n  ")));
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    let rest = rest_session();
    assert!(rest.len() >= 8, "the REST session is found: {rest:?}");
    let http = reqwest::Client::new();
    let mut token = String::new();
    for (method, path, body, readme) in &rest {
        let url = format!("{base}{}", learnt.apply(path, &base));
        let mut request = match method.as_str() {
            "GET" => http.get(&url),
            _ => http
                .post(&url)
                .header("content-type", "application/json")
                .body(learnt.apply(body, &base)),
        };
        if !token.is_empty() {
            request = request.bearer_auth(&token);
        }
        let answer = request.send().await.unwrap().text().await.unwrap();
        if path.ends_with("/auth/token") {
            let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
            token = v["result"]["token"].as_str().unwrap_or_default().to_owned();
        }
        let found = drift(readme, &answer, &mut learnt, &base);
        if !found.is_empty() {
            wrong.push(format!("{method} {path}\n  {}", found.join("\n  ")));
        }
    }

    // The simulator routes the README names answer for the session's payments.
    let routes = section("## Wallets: connectors and simulators");
    for route in [
        "/sim/alipay/trades/",
        "/sim/wechatpay/orders/",
        "/sim/unionpay/orders/",
    ] {
        assert!(
            routes.contains(&format!("GET {route}")),
            "{route} in the README"
        );
    }
    let learnt_ids: Vec<String> = learnt.0.values().cloned().collect();
    for route in ["/sim/alipay/trades/", "/sim/wechatpay/orders/"] {
        let mut found = false;
        for id in &learnt_ids {
            let r = http.get(format!("{base}{route}{id}")).send().await.unwrap();
            found |= r.status().is_success();
        }
        assert!(found, "{route} answers for a payment of the session");
    }

    // `user add` prints what the README shows.
    let sample = &README[README.find("user add --merchant").unwrap()..];
    let sample = &sample[..sample.find("```").unwrap()];
    let mut cmd = ottgate();
    let out = cmd
        .args([
            "user",
            "add",
            "--merchant",
            &c.merchant_id,
            "--email",
            "ada@shop.example",
            "--role",
            "admin",
        ])
        .env("OTTGATE_DATABASE_URL", support::db_url(dir.path()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    for line in sample.lines().filter_map(|l| l.strip_prefix("# ")) {
        let mut parts = line.split_whitespace();
        let (key, value) = (parts.next().unwrap(), parts.next().unwrap_or(""));
        let real = printed
            .lines()
            .find_map(|l| l.strip_prefix(key).filter(|rest| rest.starts_with(' ')))
            .map(str::trim);
        match real {
            Some(real) if agrees(value, real, &mut learnt, &base) => {}
            _ => wrong.push(format!("user add: {key} {value:?}, printed {real:?}")),
        }
    }

    server.terminate();
    assert!(
        wrong.is_empty(),
        "the README drifted:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_readme_reader_reads_answers_as_written() {
    assert_eq!(
        pairs(r#"{ "a": "1", "n": 17, "x": …, "o": {"k":"v"} }"#),
        [
            ("a".to_owned(), "1".to_owned()),
            ("n".to_owned(), "17".to_owned()),
            ("x".to_owned(), "…".to_owned()),
            ("k".to_owned(), "v".to_owned()),
        ]
    );
    assert_eq!(
        words("ottgate pay --x 'a b' # note"),
        ["ottgate", "pay", "--x", "a b"]
    );
    assert_eq!(
        shape("Nov 22, 2026 12:58:44 PM"),
        shape("Dec 6, 2026 5:08:10 AM")
    );
    let mut learnt = Learnt::default();
    assert!(agrees(
        "17953235195163877",
        "17965048764244941",
        &mut learnt,
        "http://h"
    ));
    assert!(!agrees(
        "SB17953235195163877",
        "2026112222001421823750833262",
        &mut learnt,
        "http://h"
    ));
    assert!(!agrees("success", "pending", &mut learnt, "http://h"));
    assert!(agrees(
        "2c8646b9986f30acbc07ef5f4e53e21e",
        "e717c4dec6546e42a494410e2a4f928d",
        &mut learnt,
        "http://h"
    ));
    assert_eq!(
        learnt.apply(
            "/events/2c8646b9986f30acbc07ef5f4e53e21e/redeliver",
            "http://h"
        ),
        "/events/e717c4dec6546e42a494410e2a4f928d/redeliver"
    );
    assert!(agrees(
        "http://127.0.0.1:8080/sim/…",
        "http://h/sim/alipay",
        &mut learnt,
        "http://h"
    ));
}
