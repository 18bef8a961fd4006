use std::sync::Arc;

use proptest::prelude::*;

use super::*;

fn needs_escape(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

fn serde_line(record: &AuditRecord) -> String {
    serde_json::to_string(record).expect("records serialise")
}

fn our_line(record: &AuditRecord) -> String {
    let mut out = Vec::new();
    write(record, &mut out);
    String::from_utf8(out).expect("the line is UTF-8")
}

fn our_string(value: &str) -> String {
    let mut out = Vec::new();
    string(&mut out, value);
    String::from_utf8(out).expect("the string is UTF-8")
}

#[test]
fn the_word_test_flags_exactly_the_words_holding_a_byte_to_escape() {
    for byte in 0..=u8::MAX {
        for position in 0..8 {
            let mut word = [b'a'; 8];
            word[position] = byte;
            assert_eq!(
                word_needs_escape(u64::from_le_bytes(word)),
                needs_escape(byte),
                "byte {byte:#04x} at {position}"
            );
        }
    }
    // Bytes next to the flagged ones, and high bytes, flag nothing on their own.
    for filler in [0x20, 0x21, 0x23, 0x5b, 0x5d, 0x7f, 0x80, 0xa2, 0xdc, 0xff] {
        assert!(!word_needs_escape(u64::from_le_bytes([filler; 8])));
    }
}

#[test]
fn every_escape_lands_as_serde_json_writes_it_at_every_offset() {
    // Each byte to escape, at every place in strings long enough to span two words.
    let specials: Vec<char> = (0u8..0x20).map(char::from).chain(['"', '\\']).collect();
    for special in specials {
        for len in 1..=17 {
            for at in 0..len {
                let value: String = (0..len)
                    .map(|i| if i == at { special } else { 'x' })
                    .collect();
                assert_eq!(
                    our_string(&value),
                    serde_json::to_string(&value).expect("strings serialise"),
                    "{special:?} at {at} of {len}"
                );
            }
        }
    }
}

#[test]
fn escapes_are_the_short_forms_or_lowercase_unicode() {
    assert_eq!(
        our_string("a\"b\\c\nd\re\tf\u{8}g\u{c}h\u{1}i\u{1f}j\u{7f}k"),
        r#""a\"b\\c\nd\re\tf\bg\fh\u0001i\u001fj"#.to_owned() + "\u{7f}k\""
    );
    // Non-ASCII is copied as it is, across word boundaries.
    assert_eq!(our_string("ééééé€€€😀😀"), "\"ééééé€€€😀😀\"");
    assert_eq!(our_string(""), "\"\"");
}

#[test]
fn floats_are_written_as_serde_json_writes_them() {
    for value in [
        0.0,
        -0.0,
        1.0,
        0.127,
        1830.0,
        1e21,
        1e-7,
        123_456.789,
        f64::MIN_POSITIVE,
        f64::MAX,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ] {
        let mut ours = Vec::new();
        value.write(&mut ours);
        assert_eq!(
            String::from_utf8(ours).expect("UTF-8"),
            serde_json::to_string(&value).expect("floats serialise"),
            "{value}"
        );
    }
}

fn full_record() -> AuditRecord {
    AuditRecord {
        schema: crate::audit::SCHEMA,
        time: "2026-12-04T03:09:01.847Z".to_owned(),
        request_id: "c3ba4173-56cc-4996-8fd4-cd81197558dd".to_owned(),
        trace_id: "2e158f03d45155795cac070c9ed9d291".to_owned(),
        activity_id: "1f143494-b44b-4103-b0d2-cb2715c0d78d".to_owned(),
        client_address: "127.0.0.1:43026".into(),
        forwarded_for: Some("203.0.113.7".to_owned()),
        user_agent: Some("azsdk-js-azure-cosmos/4.0 \"quoted\"".to_owned()),
        principal: Some(Arc::new(
            AuditPrincipal {
                iss: "https://login.example.test/contoso/v2.0".to_owned(),
                sub: "bench-user-0001".to_owned(),
                oid: Some("6c0f8a2e-3b1d-4f0a-9a7e-1f2b3c4d5e6f".to_owned()),
                tid: None,
                client_id: Some("0f1e2d3c".to_owned()),
                token_fingerprint: "361903c4408b68a0".to_owned(),
            }
            .into(),
        )),
        method: "GET".to_owned(),
        path: "/dbs/benchdb/colls/orders/docs/order-000001".to_owned(),
        operation: Some("read_item"),
        actions: vec!["items/read", "items/query"],
        database: Some("benchdb".into()),
        container: Some("orders".into()),
        item_id: Some("order-000001".to_owned()),
        partition_key: Some(r#"["tenant-7"]"#.to_owned()),
        decision: "allow",
        reason: "allowed",
        rule: Some("bench-reader".to_owned()),
        policy_version: Some("7d4534a6ca512009".into()),
        roles: vec!["bench-reader".to_owned(), "auditor".to_owned()],
        shadow: vec![
            ShadowRecord {
                rule: "tighter".to_owned(),
                reason: "no_role".to_owned(),
            },
            ShadowRecord {
                rule: "tightest".to_owned(),
                reason: "scope".to_owned(),
            },
        ],
        status: 200,
        substatus: Some("1002".to_owned()),
        request_charge: Some(1.0),
        bytes_in: 12,
        bytes_out: 498,
        upstream_status: Some(200),
        upstream_latency_ms: Some(0.127),
        upstream_region: Some("West Europe".to_owned()),
        completed: true,
        latency_ms: 0.15,
    }
}

#[test]
fn a_full_record_and_an_empty_one_match_serde_json() {
    let full = full_record();
    assert_eq!(our_line(&full), serde_line(&full));
    let empty = AuditRecord {
        forwarded_for: None,
        user_agent: None,
        principal: None,
        operation: None,
        actions: Vec::new(),
        database: None,
        container: None,
        item_id: None,
        partition_key: None,
        rule: None,
        policy_version: None,
        roles: Vec::new(),
        shadow: Vec::new(),
        substatus: None,
        request_charge: None,
        upstream_status: None,
        upstream_latency_ms: None,
        upstream_region: None,
        completed: false,
        ..full
    };
    assert_eq!(our_line(&empty), serde_line(&empty));
    let value: serde_json::Value = serde_json::from_str(&our_line(&empty)).expect("JSON");
    assert_eq!(value["principal"], serde_json::Value::Null);
    assert_eq!(value["completed"], false);
}

/// Text a client could put in a record: any Unicode, or mostly the characters JSON escapes.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[\\x00-\\x1f\"\\\\a-z/é€😀\u{7f}]{0,40}",]
}

fn leaked(value: String) -> &'static str {
    Box::leak(value.into_boxed_str())
}

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        (0u64..10_000_000).prop_map(|micros| micros as f64 / 1000.0),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(-0.0),
    ]
}

prop_compose! {
    fn principal()(
        texts in prop::collection::vec(text(), 6),
        present in prop::collection::vec(any::<bool>(), 3),
    ) -> AuditPrincipal {
        let kept = |i: usize| present[i - 2].then(|| texts[i].clone());
        AuditPrincipal {
            iss: texts[0].clone(),
            sub: texts[1].clone(),
            oid: kept(2),
            tid: kept(3),
            client_id: kept(4),
            token_fingerprint: texts[5].clone(),
        }
    }
}

prop_compose! {
    fn record()(
        texts in prop::collection::vec(text(), 20),
        present in prop::collection::vec(any::<bool>(), 12),
        principal in proptest::option::of(principal()),
        actions in prop::collection::vec(text(), 0..4),
        roles in prop::collection::vec(text(), 0..4),
        shadow in prop::collection::vec((text(), text()), 0..3),
        numbers in (any::<u16>(), any::<u64>(), any::<u64>(), any::<u16>(), any::<bool>()),
        floats in (number(), number(), number()),
    ) -> AuditRecord {
        let kept = |i: usize| present[i].then(|| texts[i].clone());
        AuditRecord {
            schema: leaked(texts[0].clone()),
            time: texts[1].clone(),
            request_id: texts[2].clone(),
            trace_id: texts[3].clone(),
            activity_id: texts[4].clone(),
            client_address: texts[5].as_str().into(),
            forwarded_for: kept(6),
            user_agent: kept(7),
            principal: principal.map(|p| Arc::new(p.into())),
            method: texts[8].clone(),
            path: texts[9].clone(),
            operation: kept(10).map(leaked),
            actions: actions.into_iter().map(leaked).collect(),
            database: kept(11).map(Into::into),
            container: present[0].then(|| texts[12].as_str().into()),
            item_id: present[1].then(|| texts[13].clone()),
            partition_key: present[2].then(|| texts[14].clone()),
            decision: leaked(texts[15].clone()),
            reason: leaked(texts[16].clone()),
            rule: present[3].then(|| texts[17].clone()),
            policy_version: present[4].then(|| texts[18].as_str().into()),
            roles,
            shadow: shadow
                .into_iter()
                .map(|(rule, reason)| ShadowRecord { rule, reason })
                .collect(),
            status: numbers.0,
            substatus: present[5].then(|| texts[19].clone()),
            request_charge: present[6].then_some(floats.0),
            bytes_in: numbers.1,
            bytes_out: numbers.2,
            upstream_status: present[7].then_some(numbers.3),
            upstream_latency_ms: present[8].then_some(floats.1),
            upstream_region: present[9].then(|| texts[6].clone()),
            completed: numbers.4,
            latency_ms: floats.2,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_record_is_the_line_serde_json_would_write(record in record()) {
        let ours = our_line(&record);
        prop_assert_eq!(&ours, &serde_line(&record));
        // And it reads back as one JSON object.
        let value: serde_json::Value = serde_json::from_str(&ours).expect("JSON");
        prop_assert!(value.is_object());
    }

    #[test]
    fn any_string_is_escaped_as_serde_json_does(value in text()) {
        prop_assert_eq!(our_string(&value), serde_json::to_string(&value).expect("strings"));
    }

    #[test]
    fn the_word_test_agrees_with_the_bytes(word in any::<[u8; 8]>()) {
        prop_assert_eq!(
            word_needs_escape(u64::from_le_bytes(word)),
            word.iter().copied().any(needs_escape)
        );
    }
}
