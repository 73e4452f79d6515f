#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ottgate_server::fuzz::unionpay_notification(data));
