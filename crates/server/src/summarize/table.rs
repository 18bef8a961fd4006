//! The summary as plain text for a terminal.
//!
//! Record strings come from clients, so control and bidirectional-override characters are
//! shown escaped (`\u{1b}`) rather than passed to the terminal, and long cells are cut.

use std::fmt::Write;
use std::ops::Range;

use super::{Summary, Who, format_time};

/// Longest cell shown, in characters; longer ones end with `…`.
const MAX_CELL: usize = 100;

impl Summary {
    /// The summary as text tables: the files read, the period, totals, who did which
    /// operations on which containers, denials by principal and reason, and malformed lines.
    pub fn table(&self) -> String {
        let mut out = String::new();
        self.write_overview(&mut out);
        out.push_str("\nActivity by principal\n");
        out.push_str(&self.activity_table());
        out.push_str("\nDenials by principal and reason\n");
        out.push_str(&self.denials_table());
        if !self.malformed_lines.is_empty() {
            let listed = self.malformed_lines.len();
            let _ = writeln!(out, "\nMalformed lines (first {listed})");
            for line in &self.malformed_lines {
                let _ = writeln!(out, "  {}: {}", clean(&line.location), clean(&line.problem));
            }
        }
        out
    }

    fn write_overview(&self, out: &mut String) {
        for file in &self.files {
            let _ = writeln!(
                out,
                "File:      {} ({} records, {} malformed lines)",
                clean(&file.path),
                file.records,
                file.malformed
            );
        }
        let period = match self.period() {
            Some((first, last)) => format!("{} to {}", format_time(first), format_time(last)),
            None => "no records".to_owned(),
        };
        let _ = writeln!(out, "Period:    {period}");
        if self.range.from.is_some() || self.range.to.is_some() {
            let _ = writeln!(out, "Range:     {}", self.range_text());
        }
        let _ = writeln!(
            out,
            "Requests:  {} ({} allowed, {} denied); {} outside the range; {} malformed lines",
            self.requests(),
            self.allowed(),
            self.denied(),
            self.out_of_range,
            self.malformed
        );
    }

    /// `from X`, `to Y`, or both; the end is exclusive.
    pub(super) fn range_text(&self) -> String {
        let from = self.range.from.map(|t| format!("from {}", format_time(t)));
        let to = self
            .range
            .to
            .map(|t| format!("to {} (exclusive)", format_time(t)));
        let parts: Vec<String> = [from, to].into_iter().flatten().collect();
        parts.join(" ")
    }

    fn activity_table(&self) -> String {
        let header = [
            "SUBJECT",
            "CONTAINER",
            "OPERATION",
            "ALLOWED",
            "DENIED",
            "ISSUER",
        ];
        let rows = self
            .activity
            .iter()
            .map(|(key, counts)| {
                let (sub, iss) = who_cells(key.who.as_ref());
                vec![
                    sub,
                    key.target.clone(),
                    key.operation.clone(),
                    counts.allowed.to_string(),
                    counts.denied.to_string(),
                    iss,
                ]
            })
            .collect();
        render(&header, rows, 3..5)
    }

    fn denials_table(&self) -> String {
        let header = ["SUBJECT", "REASON", "STATUS", "COUNT", "ISSUER"];
        let rows = self
            .denials
            .iter()
            .map(|(key, count)| {
                let (sub, iss) = who_cells(key.who.as_ref());
                vec![
                    sub,
                    key.reason.clone(),
                    key.status.to_string(),
                    count.to_string(),
                    iss,
                ]
            })
            .collect();
        render(&header, rows, 2..4)
    }
}

/// Subject and issuer cells; requests without a validated token have neither.
pub(super) fn who_cells(who: Option<&Who>) -> (String, String) {
    match who {
        Some(who) => (who.sub.clone(), who.iss.clone()),
        None => ("(no valid token)".to_owned(), "-".to_owned()),
    }
}

/// Aligned columns; the `numeric` ones are right-aligned.
fn render(header: &[&str], rows: Vec<Vec<String>>, numeric: Range<usize>) -> String {
    if rows.is_empty() {
        return "  (none)\n".to_owned();
    }
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|row| row.iter().map(|cell| clean(cell)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|title| title.len()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|title| title.to_string()).collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (column, (cell, width)) in row.iter().zip(&widths).enumerate() {
            let pad = width - cell.chars().count();
            line.push_str("  ");
            if numeric.contains(&column) {
                line.extend(std::iter::repeat_n(' ', pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A cell safe for a terminal: escapes, then cuts.
pub(super) fn clean(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars() {
        if is_unsafe(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    if out.chars().count() > MAX_CELL {
        out = out.chars().take(MAX_CELL - 1).collect();
        out.push('…');
    }
    out
}

/// Characters that move the cursor, change colours or reorder text on a terminal.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}
