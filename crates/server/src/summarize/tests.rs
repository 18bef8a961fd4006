use std::io::Cursor;

use super::*;

fn at(text: &str) -> SystemTime {
    humantime::parse_rfc3339(text).expect("a test time")
}

fn record(time: &str, sub: Option<&str>, decision: &str, reason: &str) -> String {
    let principal = match sub {
        Some(sub) => format!("{{\"iss\":\"https://idp.test\",\"sub\":\"{sub}\"}}"),
        None => "null".to_owned(),
    };
    format!(
        "{{\"schema\":\"cosmogate.audit/1\",\"time\":\"{time}\",\"principal\":{principal},\
         \"operation\":\"read_item\",\"actions\":[\"items/read\"],\"database\":\"shop\",\
         \"container\":\"orders\",\"decision\":\"{decision}\",\"reason\":\"{reason}\",\
         \"status\":200,\"extra\":1}}"
    )
}

fn summary_of(text: &str, range: TimeRange) -> Summary {
    let mut summary = Summary {
        range,
        ..Summary::default()
    };
    summary
        .read(Path::new("test.jsonl"), Cursor::new(text.as_bytes()))
        .expect("reading from memory");
    summary
}

#[test]
fn times_are_read_as_rfc_3339_utc_or_as_a_date() {
    let expected = at("2026-12-03T11:00:00Z");
    for text in [
        "2026-12-03T11:00:00Z",
        "2026-12-03T11:00:00",
        "2026-12-03 11:00:00",
        "2026-12-03T11:00:00.000Z",
        "2026-12-03T11:00:00+00:00",
    ] {
        assert_eq!(parse_time(text).expect(text), expected, "{text}");
    }
    assert_eq!(
        parse_time("2026-12-03").expect("a date"),
        at("2026-12-03T00:00:00Z")
    );
    for text in [
        "",
        "yesterday",
        "2026-12-03T11:00:00+01:00",
        "1969-12-31",
        "2026-13-01",
    ] {
        let err = parse_time(text).expect_err(text);
        assert_eq!(err.reason_code(), "invalid_time", "{text}");
    }
}

#[test]
fn a_range_that_ends_where_it_starts_is_refused() {
    let err = TimeRange::parse(Some("2026-12-03"), Some("2026-12-03")).expect_err("empty");
    assert_eq!(err.reason_code(), "empty_range");
    let open = TimeRange::parse(Some("2026-12-03"), None).expect("open end");
    assert!(open.contains(at("2030-01-01T00:00:00Z")));
    assert!(!open.contains(at("2026-12-02T23:59:59Z")));
}

#[test]
fn the_range_includes_its_start_and_excludes_its_end() {
    let range = TimeRange::parse(Some("2026-12-03T11:00:00Z"), Some("2026-12-03T12:00:00Z"))
        .expect("a range");
    assert!(range.contains(at("2026-12-03T11:00:00Z")));
    assert!(range.contains(at("2026-12-03T11:59:59.999Z")));
    assert!(!range.contains(at("2026-12-03T12:00:00Z")));
}

#[test]
fn each_kind_of_malformed_line_is_counted_with_its_location() {
    let good = record("2026-12-03T11:00:00.000Z", Some("a"), "allow", "allowed");
    let lines = [
        good.as_str(),
        "not json",
        "{\"schema\":\"cosmogate.audit/1\"}",
        &good.replace("cosmogate.audit/1", "cosmogate.audit/9"),
        &good.replace("2026-12-03T11:00:00.000Z", "yesterday"),
        &good.replace("\"allow\"", "\"maybe\""),
        "",
        "{\"schema\":\"cosmogate.audit/1\",\"time\":\"2026-12-03T11:00:00.0",
    ];
    let summary = summary_of(&lines.join("\n"), TimeRange::default());
    assert_eq!(summary.requests(), 1);
    assert_eq!(summary.malformed(), 6);
    let locations: Vec<&str> = summary
        .malformed_lines
        .iter()
        .map(|line| line.location.as_str())
        .collect();
    assert_eq!(
        locations,
        [
            "test.jsonl:2",
            "test.jsonl:3",
            "test.jsonl:4",
            "test.jsonl:5",
            "test.jsonl:6",
            "test.jsonl:8"
        ]
    );
    assert_eq!(summary.malformed_lines[0].problem, "not JSON");
    assert!(
        summary.malformed_lines[2]
            .problem
            .starts_with("unknown schema")
    );
}

#[test]
fn invalid_utf8_and_overlong_lines_are_malformed_and_reading_goes_on() {
    let good = record("2026-12-03T11:00:00.000Z", Some("a"), "allow", "allowed");
    let mut text = Vec::new();
    text.extend_from_slice(b"\xff\xfe{}\n");
    text.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES + 10));
    text.push(b'\n');
    text.extend_from_slice(good.as_bytes());
    let mut summary = Summary::default();
    summary
        .read(Path::new("t"), Cursor::new(text))
        .expect("reading from memory");
    assert_eq!(summary.malformed(), 2);
    assert_eq!(summary.requests(), 1);
}

#[test]
fn records_are_grouped_by_principal_container_and_operation() {
    let lines = [
        record("2026-12-03T11:00:00.000Z", Some("a"), "allow", "allowed"),
        record("2026-12-03T11:00:30.000Z", Some("a"), "allow", "allowed"),
        record(
            "2026-12-03T11:01:00.000Z",
            Some("b"),
            "deny",
            "action_not_granted",
        ),
        record(
            "2026-12-03T11:02:00.000Z",
            None,
            "deny",
            "missing_credential",
        ),
        record("2026-12-03T13:00:00.000Z", Some("a"), "allow", "allowed"),
    ];
    let range = TimeRange::parse(None, Some("2026-12-03T12:00:00Z")).expect("a range");
    let summary = summary_of(&lines.join("\n"), range);
    assert_eq!((summary.allowed(), summary.denied()), (2, 2));
    assert_eq!(summary.out_of_range(), 1);
    assert_eq!(summary.activity.len(), 3);
    assert_eq!(summary.denials.len(), 2);
    assert_eq!(
        summary.period(),
        Some((at("2026-12-03T11:00:00Z"), at("2026-12-03T11:02:00Z")))
    );
    let minutes: Vec<u64> = summary.minutes.values().map(Counts::total).collect();
    assert_eq!(minutes, [2, 1, 1]);
}

#[test]
fn a_missing_file_is_an_error_and_no_file_at_all_too() {
    let err = summarize(&[], TimeRange::default()).expect_err("no input");
    assert_eq!(err.reason_code(), "no_input");
    let missing = PathBuf::from("/nonexistent/cosmogate-audit.jsonl");
    let err = summarize(&[missing], TimeRange::default()).expect_err("missing");
    assert_eq!(err.reason_code(), "read_failed");
    assert!(
        err.to_string()
            .contains("/nonexistent/cosmogate-audit.jsonl")
    );
}

#[test]
fn terminal_cells_escape_control_characters_and_are_cut() {
    let hostile = "evil\u{1b}[2J\u{202e}txt";
    let cell = table::clean(hostile);
    assert!(
        !cell.contains('\u{1b}') && !cell.contains('\u{202e}'),
        "{cell}"
    );
    assert!(cell.contains("\\u{1b}"), "{cell}");
    let long = table::clean(&"x".repeat(500));
    assert_eq!(long.chars().count(), 100);
    assert!(long.ends_with('…'));
}
