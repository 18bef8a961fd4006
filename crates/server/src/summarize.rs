//! `cosmogate audit summarize`: what an auditor asks of a set of audit files. Who did which
//! operations on which containers, which requests were denied for whom and why, and how
//! requests and denials spread over time, optionally within a time range.
//!
//! Files are read line by line, so their size does not matter. A line that is not an audit
//! record of a known schema is counted, and the first few are listed with their location; it
//! never stops the summary. Rendering is in `table` (terminal) and `html` (a self-contained
//! report); both treat every string from a record as hostile.

mod html;
mod table;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use crate::audit::SCHEMA;

/// How many malformed lines are listed by location; the rest are only counted.
const MALFORMED_LISTED: usize = 20;

/// A line longer than this is not a record (real ones are a few kilobytes at most).
const MAX_LINE_BYTES: usize = 1 << 20;

/// The first second that humantime can no longer format (year 10000).
const END_OF_TIME: u64 = 253_402_300_800;

/// Why a summary could not be made. Malformed lines are not errors: they are counted.
#[derive(Debug, thiserror::Error)]
pub enum SummarizeError {
    /// No audit file was named.
    #[error("no audit files given")]
    NoInput,
    /// An audit file could not be opened or read.
    #[error("cannot read {path}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A `--from` or `--to` value is not a time cosmogate understands.
    #[error("invalid time {value:?}: expected RFC 3339 in UTC (2026-12-03T11:00:00Z) or a date")]
    InvalidTime { value: String },
    /// The range ends before, or where, it starts.
    #[error("empty time range: the start must be before the end")]
    EmptyRange,
}

impl SummarizeError {
    /// A stable short code for the failure.
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::NoInput => "no_input",
            Self::ReadFile { .. } => "read_failed",
            Self::InvalidTime { .. } => "invalid_time",
            Self::EmptyRange => "empty_range",
        }
    }
}

/// Which records count: those whose `time` is at or after `from` and before `to`. An open end
/// is unbounded; the default range holds every record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub from: Option<SystemTime>,
    pub to: Option<SystemTime>,
}

impl TimeRange {
    /// Parses the command line's `--from` and `--to`: RFC 3339 in UTC (`Z` optional, `T` or a
    /// space between date and time, any fraction of a second), or a bare date for midnight.
    pub fn parse(from: Option<&str>, to: Option<&str>) -> Result<TimeRange, SummarizeError> {
        let range = TimeRange {
            from: from.map(parse_time).transpose()?,
            to: to.map(parse_time).transpose()?,
        };
        if let (Some(from), Some(to)) = (range.from, range.to)
            && from >= to
        {
            return Err(SummarizeError::EmptyRange);
        }
        Ok(range)
    }

    /// Whether a record at `time` is inside the range.
    pub fn contains(&self, time: SystemTime) -> bool {
        self.from.is_none_or(|from| time >= from) && self.to.is_none_or(|to| time < to)
    }
}

/// Parses one time as [`TimeRange::parse`] does.
pub fn parse_time(value: &str) -> Result<SystemTime, SummarizeError> {
    let invalid = || SummarizeError::InvalidTime {
        value: cut(value, 64),
    };
    let value = value.trim();
    let parsed = if value.len() == "2026-12-03".len() {
        humantime::parse_rfc3339(&format!("{value}T00:00:00Z"))
    } else {
        humantime::parse_rfc3339_weak(value)
    };
    let time = parsed.map_err(|_| invalid())?;
    if seconds(time).is_none() {
        return Err(invalid());
    }
    Ok(time)
}

/// What a set of audit files says, ready to be shown as a table or an HTML report.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    range: TimeRange,
    files: Vec<FileStats>,
    first: Option<SystemTime>,
    last: Option<SystemTime>,
    totals: Counts,
    out_of_range: u64,
    malformed: u64,
    malformed_lines: Vec<MalformedLine>,
    activity: BTreeMap<ActivityKey, Counts>,
    denials: BTreeMap<DenialKey, u64>,
    /// Requests per minute since the epoch; charts merge them into coarser buckets.
    minutes: BTreeMap<u64, Counts>,
}

/// Reads every file and summarises the records inside `range`.
pub fn summarize(inputs: &[PathBuf], range: TimeRange) -> Result<Summary, SummarizeError> {
    if inputs.is_empty() {
        return Err(SummarizeError::NoInput);
    }
    let mut summary = Summary {
        range,
        ..Summary::default()
    };
    for path in inputs {
        let read_error = |source| SummarizeError::ReadFile {
            path: path.clone(),
            source,
        };
        let file = File::open(path).map_err(read_error)?;
        summary
            .read(path, BufReader::new(file))
            .map_err(read_error)?;
    }
    Ok(summary)
}

impl Summary {
    /// Requests inside the range.
    pub fn requests(&self) -> u64 {
        self.totals.allowed + self.totals.denied
    }

    /// Requests inside the range that were allowed.
    pub fn allowed(&self) -> u64 {
        self.totals.allowed
    }

    /// Requests inside the range that were denied.
    pub fn denied(&self) -> u64 {
        self.totals.denied
    }

    /// Records left out because they fall outside the range.
    pub fn out_of_range(&self) -> u64 {
        self.out_of_range
    }

    /// Lines that are not audit records.
    pub fn malformed(&self) -> u64 {
        self.malformed
    }

    /// The times of the first and last request inside the range.
    pub fn period(&self) -> Option<(SystemTime, SystemTime)> {
        Some((self.first?, self.last?))
    }

    fn read(&mut self, path: &Path, mut reader: impl BufRead) -> io::Result<()> {
        self.files.push(FileStats {
            path: path.display().to_string(),
            ..FileStats::default()
        });
        let mut buffer = Vec::new();
        let mut number = 0;
        while let Some(line) = next_line(&mut reader, &mut buffer)? {
            number += 1;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match parse_record(line) {
                Ok(record) => self.add(record),
                Err(problem) => self.add_malformed(path, number, problem),
            }
        }
        Ok(())
    }

    fn add(&mut self, record: Record) {
        let file = self.files.last_mut().expect("a file is being read");
        file.records += 1;
        if !self.range.contains(record.time) {
            self.out_of_range += 1;
            return;
        }
        self.first = Some(self.first.map_or(record.time, |t| t.min(record.time)));
        self.last = Some(self.last.map_or(record.time, |t| t.max(record.time)));

        let denied = record.decision == Decision::Deny;
        self.totals.count(denied);
        let minute = seconds(record.time).unwrap_or_default() / 60;
        self.minutes.entry(minute).or_default().count(denied);
        let who = record.principal.map(|p| Who {
            sub: p.sub,
            iss: p.iss,
        });
        let activity = ActivityKey {
            who: who.clone(),
            target: target(record.database.as_deref(), record.container.as_deref()),
            operation: operation(record.operation, &record.actions),
        };
        self.activity.entry(activity).or_default().count(denied);
        if denied {
            let key = DenialKey {
                who,
                reason: record.reason,
                status: record.status,
            };
            *self.denials.entry(key).or_default() += 1;
        }
    }

    fn add_malformed(&mut self, path: &Path, line: u64, problem: String) {
        self.malformed += 1;
        if let Some(file) = self.files.last_mut() {
            file.malformed += 1;
        }
        if self.malformed_lines.len() < MALFORMED_LISTED {
            self.malformed_lines.push(MalformedLine {
                location: format!("{}:{line}", path.display()),
                problem,
            });
        }
    }
}

#[derive(Debug, Clone, Default)]
struct FileStats {
    path: String,
    records: u64,
    malformed: u64,
}

#[derive(Debug, Clone)]
struct MalformedLine {
    location: String,
    problem: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    allowed: u64,
    denied: u64,
}

impl Counts {
    fn count(&mut self, denied: bool) {
        if denied {
            self.denied += 1;
        } else {
            self.allowed += 1;
        }
    }

    fn total(&self) -> u64 {
        self.allowed + self.denied
    }
}

/// A principal; `None` in the keys below stands for requests without a validated token.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Who {
    sub: String,
    iss: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ActivityKey {
    who: Option<Who>,
    target: String,
    operation: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct DenialKey {
    who: Option<Who>,
    reason: String,
    status: u16,
}

/// The fields of a record that a summary needs; the rest are ignored.
#[derive(Debug, Deserialize)]
struct RawRecord {
    schema: String,
    time: String,
    principal: Option<RawPrincipal>,
    operation: Option<String>,
    #[serde(default)]
    actions: Vec<String>,
    database: Option<String>,
    container: Option<String>,
    decision: Decision,
    reason: String,
    status: u16,
}

#[derive(Debug, Deserialize)]
struct RawPrincipal {
    iss: String,
    sub: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Decision {
    Allow,
    Deny,
}

#[derive(Debug)]
struct Record {
    time: SystemTime,
    principal: Option<RawPrincipal>,
    operation: Option<String>,
    actions: Vec<String>,
    database: Option<String>,
    container: Option<String>,
    decision: Decision,
    reason: String,
    status: u16,
}

/// Parses one line, or says in a few words why it is not a record.
fn parse_record(line: &[u8]) -> Result<Record, String> {
    let raw: RawRecord = match serde_json::from_slice(line) {
        Ok(raw) => raw,
        Err(err) if err.is_syntax() || err.is_eof() => return Err("not JSON".to_owned()),
        Err(err) => return Err(cut(&format!("not an audit record ({err})"), 120)),
    };
    if raw.schema != SCHEMA {
        return Err(format!("unknown schema {:?}", cut(&raw.schema, 40)));
    }
    let time = humantime::parse_rfc3339(&raw.time)
        .ok()
        .filter(|time| seconds(*time).is_some())
        .ok_or_else(|| format!("unreadable time {:?}", cut(&raw.time, 40)))?;
    Ok(Record {
        time,
        principal: raw.principal,
        operation: raw.operation,
        actions: raw.actions,
        database: raw.database,
        container: raw.container,
        decision: raw.decision,
        reason: raw.reason,
        status: raw.status,
    })
}

/// The next line without its newline, or `None` at the end. A line over the limit comes back
/// cut, so that it fails to parse and is counted like any other malformed line.
fn next_line<'b>(
    reader: &mut impl BufRead,
    buffer: &'b mut Vec<u8>,
) -> io::Result<Option<&'b [u8]>> {
    buffer.clear();
    let limit = (MAX_LINE_BYTES + 1) as u64;
    let read = Read::take(&mut *reader, limit).read_until(b'\n', buffer)?;
    if read == 0 {
        return Ok(None);
    }
    if buffer.last() == Some(&b'\n') {
        buffer.pop();
    } else if buffer.len() > MAX_LINE_BYTES {
        skip_line(reader)?;
    }
    Ok(Some(buffer.as_slice()))
}

/// Discards input up to and including the next newline.
fn skip_line(reader: &mut impl BufRead) -> io::Result<()> {
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(());
        }
        match available.iter().position(|byte| *byte == b'\n') {
            Some(at) => {
                reader.consume(at + 1);
                return Ok(());
            }
            None => {
                let all = available.len();
                reader.consume(all);
            }
        }
    }
}

/// `database/container`, the database alone, or `-` for account-level requests.
fn target(database: Option<&str>, container: Option<&str>) -> String {
    match (database, container) {
        (Some(database), Some(container)) => format!("{database}/{container}"),
        (Some(database), None) => database.to_owned(),
        (None, Some(container)) => format!("?/{container}"),
        (None, None) => "-".to_owned(),
    }
}

/// The classified operation, else its data actions, else `-` (refused before classification).
fn operation(operation: Option<String>, actions: &[String]) -> String {
    match operation {
        Some(operation) => operation,
        None if !actions.is_empty() => actions.join("+"),
        None => "-".to_owned(),
    }
}

/// Whole seconds since the epoch, for times that can be formatted.
fn seconds(time: SystemTime) -> Option<u64> {
    let seconds = time.duration_since(UNIX_EPOCH).ok()?.as_secs();
    (seconds < END_OF_TIME).then_some(seconds)
}

/// A time as records show it, or `?` for one that cannot be formatted.
fn format_time(time: SystemTime) -> String {
    match seconds(time) {
        Some(_) => humantime::format_rfc3339_millis(time).to_string(),
        None => "?".to_owned(),
    }
}

/// The start of a bucket, `2026-12-03T11:03:00Z`, for labels.
fn format_seconds(seconds: u64) -> String {
    let seconds = seconds.min(END_OF_TIME - 1);
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(seconds)).to_string()
}

/// The first `chars` characters of `value`.
fn cut(value: &str, chars: usize) -> String {
    value.chars().take(chars).collect()
}

#[cfg(test)]
mod tests;
