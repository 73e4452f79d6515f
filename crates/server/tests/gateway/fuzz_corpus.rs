//! Every input the fuzzers saved (`fuzz/corpus/<target>/`), run through the same function
//! its fuzz target runs: what once crashed, or once found new code, stays covered without
//! running a fuzzer in CI.

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut inputs: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "no corpus for {target}");
    inputs
}

#[rstest::rstest]
#[case::envelope("envelope", ottgate_server::fuzz::envelope)]
#[case::lenient_base64("lenient_base64", ottgate_server::fuzz::lenient_base64)]
#[case::alipay("alipay_notification", ottgate_server::fuzz::alipay_notification)]
#[case::wechat("wechat_notification", ottgate_server::fuzz::wechat_notification)]
#[case::unionpay("unionpay_notification", ottgate_server::fuzz::unionpay_notification)]
#[case::rest("rest_body", ottgate_server::fuzz::rest_body)]
fn every_saved_fuzz_input_still_runs_cleanly(#[case] target: &str, #[case] run: fn(&[u8])) {
    for (path, input) in corpus(target) {
        let finished = std::panic::catch_unwind(|| run(&input));
        assert!(finished.is_ok(), "{} panics", path.display());
    }
}
