//! `cosmogate audit summarize` on a recorded session (`tests/fixtures/audit-session.jsonl`):
//! two principals of one issuer, the same subject at a second issuer, unauthenticated
//! requests, a control-plane refusal, a principal whose name is markup, and three lines that
//! are not records of this schema.

use std::path::PathBuf;

use cosmogate_server::{Summary, TimeRange, summarize};
use serde_json::Value;

const ISSUER: &str = "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0";
const PARTNER: &str = "https://idp.partner.test/realms/apps";

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audit-session.jsonl")
}

fn summary(range: TimeRange) -> Summary {
    summarize(&[fixture()], range).expect("the fixture summarises")
}

/// The table line whose cells, split on runs of spaces, start with `cells`.
fn row<'t>(table: &'t str, cells: &[&str]) -> Option<&'t str> {
    table.lines().find(|line| {
        let words: Vec<&str> = line
            .split("  ")
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .collect();
        words.starts_with(cells)
    })
}

fn assert_row(table: &str, cells: &[&str]) {
    assert!(row(table, cells).is_some(), "no row {cells:?} in\n{table}");
}

#[test]
fn the_table_shows_who_did_what_where_and_every_denial() {
    let summary = summary(TimeRange::default());
    assert_eq!(summary.requests(), 26);
    assert_eq!((summary.allowed(), summary.denied()), (18, 8));
    assert_eq!(summary.malformed(), 3);
    let table = summary.table();

    assert!(table.contains("26 (18 allowed, 8 denied)"), "{table}");
    assert!(table.contains("2026-12-03T11:00:01.125Z to 2026-12-03T16:30:00.000Z"));
    for cells in [
        ["app-writer", "-", "read_account", "1", "0", ISSUER],
        ["app-writer", "shop/orders", "create_item", "3", "0", ISSUER],
        ["app-writer", "shop/orders", "read_item", "7", "0", ISSUER],
        ["app-writer", "-", "-", "0", "1", ISSUER],
        ["app-reader", "shop/orders", "create_item", "0", "2", ISSUER],
        ["app-reader", "shop/payroll", "read_item", "0", "1", ISSUER],
        [
            "app-writer",
            "shop/orders",
            "upsert_item",
            "2",
            "0",
            PARTNER,
        ],
        ["(no valid token)", "shop/orders", "-", "0", "3", "-"],
    ] {
        assert_row(&table, &cells);
    }
    let denials = table
        .split("Denials by principal and reason")
        .nth(1)
        .expect("a denials section");
    for cells in [
        ["(no valid token)", "expired", "401", "1", "-"],
        ["(no valid token)", "missing_credential", "401", "2", "-"],
        ["app-reader", "action_not_granted", "403", "3", ISSUER],
        ["app-writer", "control_plane_operation", "403", "1", ISSUER],
    ] {
        assert_row(denials, &cells);
    }
}

#[test]
fn malformed_lines_are_counted_and_located_not_fatal() {
    let table = summary(TimeRange::default()).table();
    assert!(table.contains("3 malformed lines"), "{table}");
    for line in [
        ":14: not JSON",
        ":21: not JSON",
        ":26: unknown schema \"cosmogate.audit/0\"",
    ] {
        assert!(table.contains(line), "no {line:?} in\n{table}");
    }
}

#[test]
fn the_time_range_keeps_its_start_and_drops_its_end() {
    let range = TimeRange::parse(Some("2026-12-03T11:30:05Z"), Some("2026-12-03 16:30:00"))
        .expect("a range");
    let summary = summary(range);
    assert_eq!(summary.requests(), 15, "11:30:05 is kept, 16:30:00 is not");
    assert_eq!(summary.out_of_range(), 11);
    let table = summary.table();
    assert!(table.contains("11 outside the range"), "{table}");
    assert!(table.contains("from 2026-12-03T11:30:05.000Z"), "{table}");
    let created = ["app-writer", "shop/orders", "create_item"];
    assert!(
        row(&table, &created).is_none(),
        "all creates were before 11:30:05"
    );
    assert_row(
        &table,
        &["app-reader", "shop/orders", "read_item", "3", "0"],
    );
    assert_row(
        &table,
        &["app-writer", "shop/orders", "read_item", "2", "0"],
    );
}

#[test]
fn the_html_report_is_self_contained_and_has_the_chart() {
    let html = summary(TimeRange::default()).html();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(
        html.contains("default-src 'none'"),
        "a CSP forbids loading anything"
    );
    assert!(html.contains("<style>") && !html.contains("<link"));
    assert!(
        !html.contains("<script") && !html.contains("<img"),
        "markup escaped"
    );
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let lower = html.to_lowercase().replace(['"', '\'', ' '], "");
    for attribute in ["src=", "href=", "url("] {
        for scheme in ["http:", "https:", "//"] {
            let reference = format!("{attribute}{scheme}");
            assert!(
                !lower.contains(&reference),
                "external reference {reference}"
            );
        }
    }

    let svg = html.split("<svg").nth(1).expect("an inline SVG chart");
    assert!(
        html.contains("Requests and denials per hour"),
        "5.5 hours: hourly buckets"
    );
    assert_eq!(
        svg.matches("<g><title>").count(),
        6,
        "11:00 to 16:00, gaps filled"
    );
    assert!(
        svg.contains("<title>12-03 11:00: 19 requests, 6 denied</title>"),
        "{svg}"
    );
    assert!(
        svg.contains("<title>12-03 12:00: 6 requests, 2 denied</title>"),
        "{svg}"
    );
    assert!(
        svg.contains("<title>12-03 14:00: 0 requests, 0 denied</title>"),
        "{svg}"
    );
    assert!(html.contains("Activity by principal") && html.contains("action_not_granted"));
}

#[test]
fn a_short_period_is_charted_per_minute() {
    let range = TimeRange::parse(Some("2026-12-03T11:00:00Z"), Some("2026-12-03T11:10:00Z"))
        .expect("a range");
    let html = summary(range).html();
    assert!(html.contains("Requests and denials per minute"));
    let svg = html.split("<svg").nth(1).expect("a chart");
    assert_eq!(
        svg.matches("<g><title>").count(),
        9,
        "11:00 to 11:08, gaps filled"
    );
    assert!(
        svg.contains("<title>11:02: 2 requests, 0 denied</title>"),
        "{svg}"
    );
    assert!(
        svg.contains("<title>11:04: 0 requests, 0 denied</title>"),
        "{svg}"
    );
}

#[test]
fn every_record_in_the_fixture_is_valid_under_the_published_schema() {
    let schema_path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/audit-log.schema.json");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).expect("schema")).expect("json");
    let validator = jsonschema::draft202012::new(&schema).expect("the schema compiles");
    let text = std::fs::read_to_string(fixture()).expect("fixture");
    let valid = text
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|record| validator.is_valid(record))
        .count();
    let summary = summary(TimeRange::default());
    assert_eq!(valid as u64, summary.requests() + summary.out_of_range());
}
