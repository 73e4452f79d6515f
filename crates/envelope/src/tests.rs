use super::*;
use proptest::prelude::*;
use rstest::rstest;
use serde_json::json;

fn key(k: &str) -> SignKey {
    SignKey::new(k).unwrap()
}

fn object(v: Value) -> Fields {
    match v {
        Value::Object(m) => m,
        _ => unreachable!("test literal is an object"),
    }
}

// docs/envelope.md, Appendix A: the published example, byte for byte.
const APPENDIX_A_PLAINTEXT: &str = r#"{"orderId":"1234567890","idCardName":"张三","idCardNum":"123456789012345678","bankCardNum":"62000000000010","mobile":"13711111111","idCardType":"1"}"#;
const APPENDIX_A_DATA: &str = "Y2+GoqBBPc6EJ9JzXRFoOziKd+DqWg5FiUZY1IYoVBVv0xfFznT9/qanMpiNEamEN2NM7J+hxoRn8VGSJImA2soeip9nYr+VJvTXe7D8j4aXiKyFipuPVCQLiCDg3jkJP+S2EezYMf7crqKY/YAni1CCeIwr2aJfFVT1vYhsWIm8t3eyPL//cY4kwombAKhE2gAdEFXz6gVvencz80aRWQ==";

// docs/envelope.md, Appendix A: the REST API's callback example.
const CALLBACK_DATA: &str = "vg8LJmi7ryeVxUTVfPC6N1l5ebL9cgn4MdlyLFEL6eqZQN+XvkvNhZevFmRitDLTUTcAcRnKYs407K3ePY2pslEgZYDoa9x80PBh95s7aqAYCwUlY5j9IUtklLlzqNT0mFPS7Fn5p6cr1EkBRVh82QHueCdkWVoFhvVHVYYrwQqF5cmPO+JNuDOei6goomz1QTfvv7M8zc4TT+r/EwKIDm4eoV9EeTk98gSiUy4+2ThLRrtZOFHqVP7OAjJ318X2EIKoZRA5lp42kdRVmd/mXi8aZpTVEiAT2GK7p3TNXFNXuPLcl6DhEUK9FLMrHcl4";
const CALLBACK_PLAINTEXT: &str = r#"{"amount":"3","bizpay_order_id":"AL5909918566288061","exchange_rate":"5.057030","tip":"1","merchant_id":"ON00004652","order_id":"16795056216014900","finish_time":"2023-03-23 01:21:53","remarks":"可以","sub_openId":"2088032832386722"}"#;

#[test]
fn appendix_a_digest_matches_the_published_md5() {
    let fields: Fields = serde_json::from_str(APPENDIX_A_PLAINTEXT).unwrap();
    assert_eq!(digest(&fields).as_str(), "C12F9560769C2CB55E6954935B325916");
}

#[test]
fn appendix_a_key_is_the_middle_sixteen_hex_characters() {
    let k = derive_key("C12F9560769C2CB55E6954935B325916", &key("6698851A525C9433"));
    assert_eq!(&k, b"EF1712FC070C2C21");
}

#[test]
fn appendix_a_plaintext_seals_to_the_published_ciphertext() {
    let sealed = seal_text(APPENDIX_A_PLAINTEXT, &key("6698851A525C9433")).unwrap();
    assert_eq!(sealed.md5.as_str(), "C12F9560769C2CB55E6954935B325916");
    assert_eq!(sealed.data, APPENDIX_A_DATA);
}

#[test]
fn appendix_a_ciphertext_opens_to_the_published_plaintext() {
    let opened = open(
        APPENDIX_A_DATA,
        "C12F9560769C2CB55E6954935B325916",
        &key("6698851A525C9433"),
    )
    .unwrap();
    assert_eq!(opened.plaintext, APPENDIX_A_PLAINTEXT);
    assert_eq!(opened.fields["idCardName"], "张三");
}

#[test]
fn callback_example_opens_and_its_md5_verifies() {
    let opened = open(
        CALLBACK_DATA,
        "5A917182659DE14DCB3022CA6518F34F",
        &key("A8B5FE540E38A5A9"),
    )
    .unwrap();
    assert_eq!(opened.plaintext, CALLBACK_PLAINTEXT);
    assert_eq!(opened.fields["finish_time"], "2023-03-23 01:21:53");
    assert_eq!(
        &derive_key("5A917182659DE14DCB3022CA6518F34F", &key("A8B5FE540E38A5A9")),
        b"BFE59D83C221F217"
    );
}

#[test]
fn callback_example_plaintext_reseals_to_the_published_ciphertext() {
    let sealed = seal_text(CALLBACK_PLAINTEXT, &key("A8B5FE540E38A5A9")).unwrap();
    assert_eq!(sealed.md5.as_str(), "5A917182659DE14DCB3022CA6518F34F");
    assert_eq!(sealed.data, CALLBACK_DATA);
}

#[test]
fn synthetic_vector_of_section_2_6_reproduces() {
    let fields = object(json!({"order_id": "2020041468976O124O000857"}));
    let sealed = seal(&fields, &key("6698851A525C9433"));
    assert_eq!(sealed.md5.as_str(), "0C0FCFBFAB9FDE3E303CF4BB76636CF5");
    assert_eq!(
        &derive_key(sealed.md5.as_str(), &key("6698851A525C9433")),
        b"1CA5669A064FF772"
    );
    assert_eq!(
        sealed.data,
        "xqUuCbGv3yoWShSDVp0nXVhJ9tR3AHPVz8amWs7UG4OMiX/2xPSXj3o3xWZ3bZT1"
    );
}

#[test]
fn keys_sort_by_bytes_not_case_insensitively() {
    // docs/envelope.md, Appendix A: '_' (0x5F) sorts before 'h' and 'n'; "operator_id" before "orderId".
    let fields: Fields = serde_json::from_str(r#"{"orderId":"2020041468976O124O000857","merchant_id":"ON00000097","operator_id":"0000020156","txnTime":"20191125162635","txnAmt":"100","cc_number":"5160736813962037","frontUrl":"https://www.ezshops.ca/UPI_OTTPAY_result.php","backUrl":"https://www.ezshops.ca/UPI_TTPAY_callback.php","channelType":"UPAYONLINE","bizType":"securePay","cc_channelType":"web"}"#).unwrap();
    assert_eq!(digest(&fields).as_str(), "CA4018EB30888C5E2D782F7E0D32CE33");
}

#[test]
fn encrypting_the_concatenated_values_is_not_what_the_protocol_does() {
    // docs/envelope.md, Appendix A, the counter-test: the JSON object is encrypted, not the value string.
    let k = derive_key("C12F9560769C2CB55E6954935B325916", &key("6698851A525C9433"));
    let wrong = cipher::encrypt(
        &k,
        "62000000000010张三1234567890123456781137111111111234567890".as_bytes(),
    );
    assert_eq!(
        base64_lenient::encode(&wrong),
        "bL8DFhSOZgsz4KJi0AFQkSkXF4JHNnQgYC6pMWuUxswSEPZ8M72LaB+PrKxWnjpFzPp8nRfOI6k0Tdcv3WuSmw=="
    );
    assert_ne!(base64_lenient::encode(&wrong), APPENDIX_A_DATA);
}

#[rstest]
#[case::null_is_empty(json!({"a": "x", "b": null}), "x")]
#[case::number_is_json_text(json!({"a": 5, "b": "y"}), "5y")]
#[case::bool_is_json_text(json!({"a": true}), "true")]
#[case::array_is_compact_json(json!({"a": [{"m": "1"}], "b": "z"}), r#"[{"m":"1"}]z"#)]
#[case::uppercase_sorts_before_underscore_and_lowercase(json!({"amount": "3", "Tip": "1", "_x": "2"}), "123")]
fn digest_renders_values_as_the_design_says(#[case] fields: Value, #[case] concatenation: &str) {
    let expected = digest::md5_upper_hex(concatenation.as_bytes());
    assert_eq!(digest(&object(fields)).as_str(), expected);
}

#[test]
fn open_accepts_a_peer_that_sends_its_md5_in_lowercase() {
    // A lenient peer keys with the md5 text exactly as it sends it; the comparison with
    // our recomputed digest must ignore case.
    let k = key("6698851A525C9433");
    let lower = "c12f9560769c2cb55e6954935b325916";
    let raw = cipher::encrypt(&derive_key(lower, &k), APPENDIX_A_PLAINTEXT.as_bytes());
    let opened = open(&base64_lenient::encode(&raw), lower, &k).unwrap();
    assert_eq!(opened.plaintext, APPENDIX_A_PLAINTEXT);
}

#[test]
fn open_ignores_line_wrapping_and_spaces() {
    let wrapped: String = APPENDIX_A_DATA
        .as_bytes()
        .chunks(60)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\r\n");
    let spaced = APPENDIX_A_DATA
        .as_bytes()
        .chunks(60)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(" ");
    for data in [wrapped, spaced] {
        let opened = open(
            &data,
            "C12F9560769C2CB55E6954935B325916",
            &key("6698851A525C9433"),
        )
        .unwrap();
        assert_eq!(opened.plaintext, APPENDIX_A_PLAINTEXT);
    }
}

#[test]
fn open_reads_spaces_that_stand_for_plus() {
    assert!(APPENDIX_A_DATA.contains('+'));
    let mangled = APPENDIX_A_DATA.replace('+', " ");
    let opened = open(
        &mangled,
        "C12F9560769C2CB55E6954935B325916",
        &key("6698851A525C9433"),
    )
    .unwrap();
    assert_eq!(opened.plaintext, APPENDIX_A_PLAINTEXT);
}

#[rstest]
#[case::sixty(60)]
#[case::sixty_four(64)]
#[case::seventy_six(76)]
#[case::odd(50)]
fn open_reads_space_wrapping_and_spaces_for_plus_together(#[case] width: usize) {
    let spaced = APPENDIX_A_DATA
        .as_bytes()
        .chunks(width)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(" ");
    let mangled = spaced.replace('+', " ");
    let opened = open(
        &mangled,
        "C12F9560769C2CB55E6954935B325916",
        &key("6698851A525C9433"),
    )
    .unwrap();
    assert_eq!(opened.plaintext, APPENDIX_A_PLAINTEXT);
}

#[test]
fn open_with_the_wrong_sign_key_is_a_padding_error() {
    let err = open(
        APPENDIX_A_DATA,
        "C12F9560769C2CB55E6954935B325916",
        &key("0000000000000000"),
    )
    .unwrap_err();
    assert_eq!(err, OpenError::Padding);
}

#[rstest]
#[case::not_base64("!!!!", OpenError::Base64)]
#[case::not_whole_blocks("AAAA", OpenError::BlockLength)]
#[case::empty("", OpenError::BlockLength)]
fn open_rejects_malformed_data(#[case] data: &str, #[case] expected: OpenError) {
    let err = open(
        data,
        "C12F9560769C2CB55E6954935B325916",
        &key("6698851A525C9433"),
    )
    .unwrap_err();
    assert_eq!(err, expected);
}

#[rstest]
#[case::short("C12F")]
#[case::not_hex("Z12F9560769C2CB55E6954935B325916")]
fn open_rejects_a_malformed_md5(#[case] md5: &str) {
    let err = open(APPENDIX_A_DATA, md5, &key("6698851A525C9433")).unwrap_err();
    assert_eq!(err, OpenError::Md5Format);
}

#[test]
fn swapping_ciphertext_blocks_is_caught_by_the_md5_check() {
    // Values aligned so that blocks 1 and 3 are whole runs of value text: swapping them
    // decrypts to valid JSON with different values, which only the md5 check can catch.
    let text = r#"{"a":"0123456789AAAAAAAAAAAAAAAA","b":"012345678BBBBBBBBBBBBBBBB9"}"#;
    let k = key("6698851A525C9433");
    let sealed = seal_text(text, &k).unwrap();
    let mut raw = base64_lenient::decode(&sealed.data).unwrap();
    let (b1, b3) = (raw[16..32].to_vec(), raw[48..64].to_vec());
    raw[16..32].copy_from_slice(&b3);
    raw[48..64].copy_from_slice(&b1);
    let forged = base64_lenient::encode(&raw);
    // The forgery does decrypt to a well-formed object...
    let plain = cipher::decrypt(&derive_key(sealed.md5.as_str(), &k), &raw).unwrap();
    assert!(serde_json::from_slice::<Fields>(&plain).is_ok());
    // ...but is rejected.
    assert_eq!(
        open(&forged, sealed.md5.as_str(), &k).unwrap_err(),
        OpenError::Md5Mismatch
    );
}

#[test]
fn blocks_from_another_message_are_rejected() {
    let k = key("6698851A525C9433");
    let a = seal(
        &object(json!({"order_id": "A0000000000000000000000000000001"})),
        &k,
    );
    let b = seal(
        &object(json!({"order_id": "B0000000000000000000000000000002"})),
        &k,
    );
    let mut raw_a = base64_lenient::decode(&a.data).unwrap();
    let raw_b = base64_lenient::decode(&b.data).unwrap();
    raw_a[16..32].copy_from_slice(&raw_b[16..32]);
    assert!(open(&base64_lenient::encode(&raw_a), a.md5.as_str(), &k).is_err());
}

#[test]
fn sign_key_never_prints() {
    let k = key("6698851A525C9433");
    assert_eq!(format!("{k:?}"), "SignKey(***)");
}

#[rstest]
#[case("")]
#[case("has space")]
#[case("ключ")]
fn sign_key_rejects_non_printable_ascii(#[case] raw: &str) {
    assert!(SignKey::new(raw).is_err());
}

fn json_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<String>().prop_map(Value::String),
        any::<i64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
    ]
}

proptest! {
    #[test]
    fn seal_then_open_round_trips(
        fields in prop::collection::btree_map("[a-zA-Z_]{1,12}", json_scalar(), 0..8),
        sign_key in "[0-9A-F]{16}",
    ) {
        let fields: Fields = fields.into_iter().collect();
        let k = key(&sign_key);
        let sealed = seal(&fields, &k);
        let opened = open(&sealed.data, sealed.md5.as_str(), &k).unwrap();
        prop_assert_eq!(opened.fields, fields);
    }

    #[test]
    fn open_never_panics_on_arbitrary_input(data in any::<String>(), md5 in any::<String>()) {
        let _ = open(&data, &md5, &key("6698851A525C9433"));
    }

    #[test]
    fn open_never_panics_on_arbitrary_ciphertext(
        raw in prop::collection::vec(any::<u8>(), 0..256),
        md5 in "[0-9A-F]{32}",
    ) {
        let _ = open(&base64_lenient::encode(&raw), &md5, &key("6698851A525C9433"));
    }
}

#[rstest]
#[case(4435.0, "4435.0")]
#[case(0.0, "0.0")]
#[case(-12.5, "-12.5")]
#[case(0.001, "0.001")]
#[case(9_999_999.0, "9999999.0")]
#[case(10_000_000.0, "1.0E7")]
#[case(17_047_528_085_325_164.0, "1.7047528085325164E16")]
#[case(0.0001, "1.0E-4")]
#[case(1.25e-5, "1.25E-5")]
fn numbers_render_as_java_doubles(#[case] value: f64, #[case] expected: &str) {
    assert_eq!(java_double(value), expected);
}

/// Seals `text` as a sender whose md5 saw `signed` as the values (a Java server reading
/// numbers as doubles, say) would.
fn sealed_as_signed(text: &str, signed: &str, k: &SignKey) -> Sealed {
    let md5 = digest(&serde_json::from_str::<Fields>(signed).unwrap());
    seal_with_md5(text.as_bytes(), md5, k)
}

#[test]
fn a_number_signed_as_its_json_text_or_as_a_java_double_opens() {
    let k = key("6698851A525C9433");
    let text = r#"{"order_id":4435,"amount":"100"}"#;
    let as_json = sealed_as_signed(text, r#"{"order_id":"4435","amount":"100"}"#, &k);
    let as_java = sealed_as_signed(text, r#"{"order_id":"4435.0","amount":"100"}"#, &k);
    assert_ne!(as_json.md5, as_java.md5);
    for sealed in [as_json, as_java] {
        let opened = open(&sealed.data, sealed.md5.as_str(), &k).unwrap();
        assert_eq!(opened.fields["order_id"], 4435);
    }
}

#[rstest]
#[case::as_float_text("4435.00")]
#[case::as_string_with_quotes("\"4435\"")]
#[case::as_nothing("")]
#[case::as_scientific("4.435E3")]
fn a_number_signed_any_other_way_is_refused(#[case] rendering: &str) {
    let k = key("6698851A525C9433");
    let text = r#"{"order_id":4435,"amount":"100"}"#;
    let signed = serde_json::json!({"order_id": rendering, "amount": "100"}).to_string();
    let sealed = sealed_as_signed(text, &signed, &k);
    assert_eq!(
        open(&sealed.data, sealed.md5.as_str(), &k),
        Err(OpenError::Md5Mismatch)
    );
}

#[test]
fn php_escaped_json_opens_with_the_md5_of_its_values() {
    let k = key("6698851A525C9433");
    // json_encode's default flags: `/` and every non-ASCII character escaped.
    let text = r#"{"call_back_url":"https:\/\/shop.example\/notify","remarks":"\u53ef\u4ee5 \ud83c\udf75"}"#;
    let sealed = seal_text(text, &k).unwrap();
    let expected = digest(&object(
        json!({"call_back_url": "https://shop.example/notify", "remarks": "可以 🍵"}),
    ));
    assert_eq!(sealed.md5, expected);
    let opened = open(&sealed.data, sealed.md5.as_str(), &k).unwrap();
    assert_eq!(opened.fields["remarks"], "可以 🍵");
}

#[test]
fn only_the_middle_window_opens() {
    let key = SignKey::new("E7E2DA6CE0B9E4F1A1EBE62F2CE28D5D").unwrap();
    let mut fields = Fields::new();
    fields.insert("order_id".into(), "A1".into());
    assert_eq!(seal_in_window(&fields, &key, 8), seal(&fields, &key));
    let other = seal_in_window(&fields, &key, 0);
    assert!(open(&other.data, other.md5.as_str(), &key).is_err());
}
