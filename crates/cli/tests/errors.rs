//! What a person at the terminal reads when they get something wrong: one line naming the
//! flag and what to do — never a stack trace (also with `RUST_BACKTRACE=1`), never a
//! repeated cause — and a store command that says which database it used and refuses to
//! make a second one by accident.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code")]

mod support;

use std::process::{Output, Stdio};
use support::{Server, add_merchant, db_url, ottgate};

const KEY: &str = "0123456789ABCDEF0123456789ABCDEF";

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A user error: exit status 1 and one line on stderr, `error: …` saying `wanted`.
fn one_clear_line(out: &Output, wanted: &str) {
    let text = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert_eq!(text.lines().count(), 1, "one line: {text}");
    assert!(text.starts_with("error: "), "{text}");
    assert!(text.contains(wanted), "{wanted:?} in {text}");
    for noise in ["panicked", "backtrace", "Caused by", "Stack"] {
        assert!(!text.contains(noise), "{noise} in {text}");
    }
}

#[test]
fn merchant_command_mistakes_are_one_line_naming_the_flag_and_the_fix() {
    let query = |gateway: &str| {
        ottgate()
            .args(["query", "--order-id", "X", "--merchant-id", "ON00000001"])
            .args(["--sign-key", KEY, "--gateway", gateway])
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap()
    };
    one_clear_line(&query("127.0.0.1:8080"), "add http://");
    // Port 9 (discard) is closed on a test machine.
    one_clear_line(
        &query("http://127.0.0.1:9"),
        "is `ottgate serve` running there?",
    );

    // An amount that is not cents is refused before anything is sent, by its flag.
    let out = ottgate()
        .args(["refund", "--order-id", "X", "--amount", "12.50"])
        .args(["--merchant-id", "ON00000001", "--sign-key", KEY])
        .args(["--gateway", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--amount"), "{}", stderr(&out));
    assert!(stderr(&out).contains("whole number of cents"));

    // The gateway's field names come with the flag that sets them.
    let dir = tempfile::tempdir().unwrap();
    let gateway = Server::start(dir.path());
    let c = add_merchant(dir.path(), "Flag Shop");
    let out = ottgate()
        .args(["refund", "--order-id", "NOSUCHPAYMENT1", "--amount", "100"])
        .args(["--merchant-id", &c.merchant_id, "--sign-key", &c.sign_key])
        .args(["--gateway", &gateway.base])
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    one_clear_line(&out, "order_id (--order-id)");
    let checkout_in = |currency: &str, reference: &str| {
        ottgate()
            .args(["pay", "checkout", "--amount", "100", "--currency", currency])
            .args(["--reference", reference])
            .args(["--redirect-url", "https://shop.test/r"])
            .args(["--callback-url", "https://shop.test/c"])
            .args(["--merchant-id", &c.merchant_id, "--sign-key", &c.sign_key])
            .args(["--operator-id", &c.operator_id, "--gateway", &gateway.base])
            .output()
            .unwrap()
    };
    // `--currency cad` is CAD.
    let out = checkout_in("cad", "cli-lower-cad");
    assert!(out.status.success(), "{}", stderr(&out));
    // A currency the merchant does not take: the refusal lists the ones it does.
    let out = checkout_in("cny", "cli-cny");
    one_clear_line(
        &out,
        "currency_type (--currency) CNY is not one of this merchant's currencies (CAD, USD)",
    );
}

#[test]
fn a_store_command_says_which_database_and_refuses_to_make_a_second_one() {
    let dir = tempfile::tempdir().unwrap();
    // Run from an empty directory: no database here, and none is made.
    let out = ottgate()
        .current_dir(dir.path())
        .args(["merchant", "add", "--name", "Lost Shop"])
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    one_clear_line(&out, "add --create to make a new one");
    assert!(stderr(&out).contains(&dir.path().join("ottgate.db").display().to_string()));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    // With --create it is made, and said.
    let out = ottgate()
        .current_dir(dir.path())
        .args([
            "merchant",
            "add",
            "--name",
            "Found Shop",
            "--create",
            "--env",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("database: sqlite://ottgate.db (created)"));
    // --env: lines a shell takes, for every merchant command.
    let env = String::from_utf8(out.stdout).unwrap();
    for name in [
        "OTTGATE_GATEWAY",
        "OTTGATE_MERCHANT_ID",
        "OTTGATE_SIGN_KEY",
        "OTTGATE_OPERATOR_ID",
        "OTTGATE_APP_KEY",
    ] {
        assert!(env.contains(&format!("export {name}=")), "{env}");
    }
    // Again, it is used and said.
    let out = ottgate()
        .args([
            "user",
            "add",
            "--merchant",
            "NOSUCH0001",
            "--email",
            "a@shop.test",
        ])
        .env("OTTGATE_DATABASE_URL", db_url(dir.path()))
        .output()
        .unwrap();
    assert!(stderr(&out).contains(&format!("database: {}", db_url(dir.path()))));
    assert!(stderr(&out).contains("error: no merchant NOSUCH0001"));

    // A directory given as --config is refused by name.
    one_clear_line(
        &ottgate()
            .args(["config", "print", "--config"])
            .arg(dir.path())
            .output()
            .unwrap(),
        "is a directory",
    );
}

#[test]
fn output_cut_short_by_the_reader_ends_quietly() {
    // `ottgate config print | head -0`: the reader is gone before the first line.
    let mut child = ottgate()
        .args(["config", "print"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn config_check_makes_every_check_serve_makes_and_print_shows_every_setting() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_url(dir.path());
    let out = ottgate()
        .args(["config", "check"])
        .env("OTTGATE_DATABASE_URL", &db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(said.contains("configuration OK"), "{said}");
    assert!(said.contains("(made on first start)"), "{said}");
    // Nothing was made.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    // The first problem, by section and key.
    one_clear_line(
        &ottgate()
            .args(["config", "check"])
            .env("OTTGATE_CALLBACK_RETRY_SCHEDULE", "soon")
            .output()
            .unwrap(),
        "(callbacks): callback_retry_schedule",
    );
    // A wallet section's problem, found without starting: live mode, a bad sign type.
    let wechat = [
        ("OTTGATE_SANDBOX", "false"),
        ("OTTGATE_WECHATPAY__APPID", "wx2421b1c4370ec43b"),
        ("OTTGATE_WECHATPAY__MCH_ID", "1900000109"),
        ("OTTGATE_WECHATPAY__SUB_MCH_ID", "0012"),
        (
            "OTTGATE_WECHATPAY__API_KEY",
            "192006250b4c09247ec02edce69f6a2d",
        ),
        ("OTTGATE_WECHATPAY__SERVER_IP", "203.0.113.9"),
        ("OTTGATE_DATABASE_URL", &db),
    ];
    let out = ottgate()
        .args(["config", "check"])
        .envs(wechat)
        .env("OTTGATE_WECHATPAY__SIGN_TYPE", "SHA1")
        .output()
        .unwrap();
    one_clear_line(&out, "[wechatpay] sign_type");

    // Numbers in the environment stay the text they were for text settings (a leading zero
    // kept), and every effective setting is printed.
    let out = ottgate()
        .args(["config", "print"])
        .envs(wechat)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    for line in [
        "mch_id = \"1900000109\"",
        "sub_mch_id = \"0012\"",
        "api_key = \"***\"",
        "public_url = \"http://127.0.0.1:8080/\"",
        "allow_private_callbacks = false",
        "master_key_file = ",
    ] {
        assert!(printed.contains(line), "{line} in {printed}");
    }
    assert!(!printed.contains("192006250b4c09247ec02edce69f6a2d"));
}

#[test]
fn a_human_log_that_is_not_a_terminal_is_plain_text_with_clean_latencies() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = ottgate()
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "human"])
        .args(["--database-url", &db_url(dir.path())])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let listen = loop {
        let line = lines.next().unwrap().unwrap();
        seen.push(line.clone());
        if let Some(at) = line.find("listen=") {
            break line[at + 7..].split_whitespace().next().unwrap().to_owned();
        }
    };
    {
        use std::io::{Read, Write};
        let mut http = std::net::TcpStream::connect(&listen).unwrap();
        http.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        http.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    let request = loop {
        let line = lines.next().unwrap().unwrap();
        seen.push(line.clone());
        if line.contains("route=/healthz") {
            break line;
        }
    };
    child.kill().unwrap();
    child.wait().unwrap();
    for line in &seen {
        assert!(!line.contains('\u{1b}'), "colour in a log file: {line:?}");
    }
    let latency = request.split("latency_ms=").nth(1).unwrap();
    let latency = latency.split_whitespace().next().unwrap();
    let decimals = latency.split('.').nth(1).map_or(0, str::len);
    assert!(decimals <= 3, "latency_ms={latency}");
}
