//! The summary as one self-contained HTML page: inline CSS, an inline SVG chart, no scripts
//! and no external resources. A Content-Security-Policy forbids loading anything, so even a
//! string that escaped escaping could not fetch or run a thing.
//!
//! Every string from a record is HTML-escaped.

use std::fmt::Write;

use super::table::who_cells;
use super::{Counts, Summary, format_seconds, format_time};

const STYLE: &str = "
body { font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', sans-serif; color: #1d2430;
  margin: 2rem auto; max-width: 1100px; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #d8dde6; padding-bottom: .2rem; }
.meta { color: #5a6473; margin: .1rem 0; }
.cards { display: flex; gap: .8rem; flex-wrap: wrap; margin-top: 1.2rem; }
.card { border: 1px solid #d8dde6; border-radius: 6px; padding: .5rem .9rem; min-width: 8rem; }
.card b { display: block; font-size: 1.5rem; }
.card.deny b { color: #b3261e; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #e6e9ef;
  vertical-align: top; overflow-wrap: break-word; }
td.who { overflow-wrap: anywhere; min-width: 7rem; }
th { background: #f3f5f8; font-weight: 600; white-space: nowrap; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
td.deny { color: #b3261e; font-weight: 600; }
code { font: 12px ui-monospace, monospace; }
svg text { font: 11px system-ui, sans-serif; fill: #5a6473; }
";

/// The chart's drawing area, in SVG user units.
const WIDTH: f64 = 1000.0;
const HEIGHT: f64 = 300.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 40.0;
/// Labels under the x axis, at most.
const X_LABELS: usize = 8;
const ALLOWED_COLOUR: &str = "#3b73b9";
const DENIED_COLOUR: &str = "#c8372d";

impl Summary {
    /// A self-contained HTML report: totals, a chart of requests and denials over time
    /// (bucketed by minute, hour or day to fit the period), and the tables of
    /// [`Summary::table`].
    pub fn html(&self) -> String {
        let mut out = String::from(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta http-equiv=\"Content-Security-Policy\" \
             content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
             <title>cosmogate audit summary</title>\n<style>",
        );
        out.push_str(STYLE);
        out.push_str("</style>\n</head>\n<body>\n<h1>cosmogate audit summary</h1>\n");
        self.html_overview(&mut out);
        self.html_chart(&mut out);
        self.html_activity(&mut out);
        self.html_denials(&mut out);
        self.html_malformed(&mut out);
        out.push_str("</body>\n</html>\n");
        out
    }

    fn html_overview(&self, out: &mut String) {
        for file in &self.files {
            let _ = writeln!(
                out,
                "<p class=\"meta\">File <code>{}</code>: {} records, {} malformed lines</p>",
                escape(&file.path),
                file.records,
                file.malformed
            );
        }
        let period = match self.period() {
            Some((first, last)) => format!("{} to {}", format_time(first), format_time(last)),
            None => "no records".to_owned(),
        };
        let _ = writeln!(out, "<p class=\"meta\">Period: {period} (UTC)</p>");
        if self.range.from.is_some() || self.range.to.is_some() {
            let _ = writeln!(out, "<p class=\"meta\">Range: {}</p>", self.range_text());
        }
        out.push_str("<div class=\"cards\">\n");
        let cards = [
            ("", "requests", self.requests()),
            ("", "allowed", self.allowed()),
            (" deny", "denied", self.denied()),
            ("", "outside the range", self.out_of_range),
            ("", "malformed lines", self.malformed),
        ];
        for (class, label, value) in cards {
            let _ = writeln!(
                out,
                "<div class=\"card{class}\"><b>{value}</b>{label}</div>"
            );
        }
        out.push_str("</div>\n");
    }

    fn html_chart(&self, out: &mut String) {
        let series = self.series();
        let _ = writeln!(
            out,
            "<h2>Requests and denials per {} (UTC)</h2>",
            series.bucket.noun()
        );
        if series.counts.is_empty() {
            out.push_str("<p>No records in the range.</p>\n");
            return;
        }
        out.push_str(&chart(&series));
    }

    fn html_activity(&self, out: &mut String) {
        out.push_str("<h2>Activity by principal</h2>\n");
        let header = [
            "Subject",
            "Issuer",
            "Container",
            "Operation",
            "Allowed",
            "Denied",
        ];
        let rows = self.activity.iter().map(|(key, counts)| {
            let (sub, iss) = who_cells(key.who.as_ref());
            let text = [sub, iss, key.target.clone(), key.operation.clone()];
            (text.to_vec(), vec![counts.allowed, counts.denied])
        });
        table(out, &header, rows);
    }

    fn html_denials(&self, out: &mut String) {
        out.push_str("<h2>Denials by principal and reason</h2>\n");
        let header = ["Subject", "Issuer", "Reason", "Status", "Count"];
        let rows = self.denials.iter().map(|(key, count)| {
            let (sub, iss) = who_cells(key.who.as_ref());
            let text = [sub, iss, key.reason.clone(), key.status.to_string()];
            (text.to_vec(), vec![*count])
        });
        table(out, &header, rows);
    }

    fn html_malformed(&self, out: &mut String) {
        if self.malformed_lines.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "<h2>Malformed lines</h2>\n<p>{} lines are not audit records; the first {}:</p>\n<ul>",
            self.malformed,
            self.malformed_lines.len()
        );
        for line in &self.malformed_lines {
            let _ = writeln!(
                out,
                "<li><code>{}</code>: {}</li>",
                escape(&line.location),
                escape(&line.problem)
            );
        }
        out.push_str("</ul>\n");
    }

    /// Per-minute counts merged into buckets that fit the period, gaps filled with zeros.
    fn series(&self) -> Series {
        let (Some((&first, _)), Some((&last, _))) = (
            self.minutes.first_key_value(),
            self.minutes.last_key_value(),
        ) else {
            return Series {
                bucket: Bucket::Minute,
                start: 0,
                counts: Vec::new(),
            };
        };
        let bucket = Bucket::fitting(last - first + 1);
        let per = bucket.minutes();
        let start = first / per;
        let mut counts = vec![Counts::default(); (last / per - start + 1) as usize];
        for (minute, minute_counts) in &self.minutes {
            let slot = &mut counts[(minute / per - start) as usize];
            slot.allowed += minute_counts.allowed;
            slot.denied += minute_counts.denied;
        }
        Series {
            bucket,
            start: start * per * 60,
            counts,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bucket {
    Minute,
    Hour,
    Day,
}

impl Bucket {
    /// The finest bucket that keeps a period of `minutes` to a readable number of bars.
    fn fitting(minutes: u64) -> Bucket {
        match minutes {
            0..=180 => Bucket::Minute,
            181..=14_400 => Bucket::Hour,
            _ => Bucket::Day,
        }
    }

    fn minutes(self) -> u64 {
        match self {
            Bucket::Minute => 1,
            Bucket::Hour => 60,
            Bucket::Day => 1440,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Bucket::Minute => "minute",
            Bucket::Hour => "hour",
            Bucket::Day => "day",
        }
    }

    /// A bucket's start as its label: `11:03`, `12-03 11:00` or `2026-12-03`.
    fn label(self, start: u64) -> String {
        let text = format_seconds(start);
        match self {
            Bucket::Minute => text[11..16].to_owned(),
            Bucket::Hour => format!("{} {}", &text[5..10], &text[11..16]),
            Bucket::Day => text[..10].to_owned(),
        }
    }
}

#[derive(Debug)]
struct Series {
    bucket: Bucket,
    /// Seconds since the epoch at which the first bucket starts.
    start: u64,
    counts: Vec<Counts>,
}

/// Stacked bars, denials at the bottom: a bar's height is all requests in its bucket.
fn chart(series: &Series) -> String {
    let peak = series.counts.iter().map(Counts::total).max().unwrap_or(0);
    let scale = Scale::new(peak);
    let mut svg = format!(
        "<svg viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"100%\" role=\"img\" \
         aria-label=\"requests and denials per {}\">\n",
        series.bucket.noun()
    );
    grid(&mut svg, &scale);
    let slot = (WIDTH - LEFT - RIGHT) / series.counts.len() as f64;
    let width = (slot * 0.8).max(0.5);
    let label_every = series.counts.len().div_ceil(X_LABELS);
    for (index, counts) in series.counts.iter().enumerate() {
        let start = series.start + index as u64 * series.bucket.minutes() * 60;
        let label = series.bucket.label(start);
        let x = LEFT + slot * index as f64;
        let (total, denied) = (counts.total(), counts.denied);
        let _ = write!(
            svg,
            "<g><title>{label}: {total} requests, {denied} denied</title>"
        );
        let (top, middle) = (scale.y(total), scale.y(denied));
        bar(&mut svg, x, width, top, middle, ALLOWED_COLOUR);
        bar(&mut svg, x, width, middle, scale.y(0), DENIED_COLOUR);
        svg.push_str("</g>\n");
        if index % label_every == 0 {
            let _ = writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>",
                x + width / 2.0,
                HEIGHT - BOTTOM + 16.0
            );
        }
    }
    legend(&mut svg);
    svg.push_str("</svg>\n");
    svg
}

/// Maps counts to heights: four round steps from zero to at least the peak.
#[derive(Debug, Clone, Copy)]
struct Scale {
    step: u64,
}

impl Scale {
    fn new(peak: u64) -> Scale {
        Scale {
            step: tick_step(peak),
        }
    }

    fn y(&self, value: u64) -> f64 {
        let top = (self.step * 4) as f64;
        TOP + (HEIGHT - TOP - BOTTOM) * (1.0 - value as f64 / top)
    }
}

/// Horizontal lines with their values at each step.
fn grid(svg: &mut String, scale: &Scale) {
    for tick in 0..=4 {
        let value = scale.step * tick;
        let at = scale.y(value);
        let _ = writeln!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{at:.1}\" y2=\"{at:.1}\" stroke=\"#e6e9ef\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{value}</text>",
            WIDTH - RIGHT,
            LEFT - 6.0,
            at + 4.0
        );
    }
}

fn bar(svg: &mut String, x: f64, width: f64, from: f64, to: f64, colour: &str) {
    if to - from < 0.05 {
        return;
    }
    let _ = write!(
        svg,
        "<rect x=\"{x:.1}\" y=\"{from:.1}\" width=\"{width:.1}\" height=\"{:.1}\" \
         fill=\"{colour}\"/>",
        to - from
    );
}

fn legend(svg: &mut String) {
    let entries = [("allowed", ALLOWED_COLOUR), ("denied", DENIED_COLOUR)];
    for (index, (name, colour)) in entries.into_iter().enumerate() {
        let x = WIDTH - RIGHT - 170.0 + index as f64 * 85.0;
        let _ = writeln!(
            svg,
            "<rect x=\"{x:.1}\" y=\"6\" width=\"12\" height=\"12\" fill=\"{colour}\"/>\
             <text x=\"{:.1}\" y=\"16\">{name}</text>",
            x + 17.0
        );
    }
}

/// A round step (1, 2 or 5 times a power of ten) such that four steps reach `peak`.
fn tick_step(peak: u64) -> u64 {
    let rough = peak.div_ceil(4).max(1);
    let mut magnitude = 1;
    while magnitude * 10 <= rough {
        magnitude *= 10;
    }
    [1, 2, 5, 10]
        .into_iter()
        .map(|factor| factor * magnitude)
        .find(|step| *step >= rough)
        .unwrap_or(10 * magnitude)
}

/// A table whose first cells are text (subject and issuer first) and last cells counts; a
/// non-zero count in a column named "Denied" is highlighted.
fn table(out: &mut String, header: &[&str], rows: impl Iterator<Item = (Vec<String>, Vec<u64>)>) {
    let mut body = String::new();
    let mut numeric_from = header.len();
    for (text, counts) in rows {
        numeric_from = text.len();
        body.push_str("<tr>");
        for (index, cell) in text.iter().enumerate() {
            let class = if index < 2 { " class=\"who\"" } else { "" };
            let _ = write!(body, "<td{class}>{}</td>", escape(cell));
        }
        for (count, name) in counts.iter().zip(&header[text.len()..]) {
            let class = if *name == "Denied" && *count > 0 {
                "n deny"
            } else {
                "n"
            };
            let _ = write!(body, "<td class=\"{class}\">{count}</td>");
        }
        body.push_str("</tr>\n");
    }
    if body.is_empty() {
        out.push_str("<p>None.</p>\n");
        return;
    }
    out.push_str("<table>\n<tr>");
    for (index, name) in header.iter().enumerate() {
        let class = if index >= numeric_from {
            " class=\"n\""
        } else {
            ""
        };
        let _ = write!(out, "<th{class}>{name}</th>");
    }
    out.push_str("</tr>\n");
    out.push_str(&body);
    out.push_str("</table>\n");
}

/// Text safe inside HTML elements and quoted attributes.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_steps_are_round_and_four_of_them_reach_the_peak() {
        let cases = [
            (0, 1),
            (3, 1),
            (4, 1),
            (5, 2),
            (9, 5),
            (40, 10),
            (41, 20),
            (999, 500),
        ];
        for (peak, step) in cases {
            assert_eq!(tick_step(peak), step, "{peak}");
            assert!(step * 4 >= peak, "{peak}");
        }
    }

    #[test]
    fn buckets_grow_with_the_period() {
        assert_eq!(Bucket::fitting(1), Bucket::Minute);
        assert_eq!(Bucket::fitting(180), Bucket::Minute);
        assert_eq!(Bucket::fitting(181), Bucket::Hour);
        assert_eq!(Bucket::fitting(10 * 1440), Bucket::Hour);
        assert_eq!(Bucket::fitting(10 * 1440 + 1), Bucket::Day);
    }

    #[test]
    fn bucket_labels_show_what_their_size_needs() {
        let start = 1_796_295_780; // 2026-12-03T11:03:00Z
        assert_eq!(Bucket::Minute.label(start), "11:03");
        assert_eq!(Bucket::Hour.label(start - 180), "12-03 11:00");
        assert_eq!(Bucket::Day.label(start), "2026-12-03");
    }

    #[test]
    fn markup_in_record_strings_is_escaped() {
        assert_eq!(
            escape("<img src=x onerror='a'>&\"\u{1b}"),
            "&lt;img src=x onerror=&#39;a&#39;&gt;&amp;&quot;\u{fffd}"
        );
    }
}
