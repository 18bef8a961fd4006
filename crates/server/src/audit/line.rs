//! The audit record's JSON line, written by hand.
//!
//! The line is byte for byte what `serde_json` makes of the record's `Serialize` derive (same
//! keys in the same order, same escapes, same number formats; the tests hold the two equal over
//! generated records), without its per-key and per-byte work: the keys are literals, and a
//! string is checked for characters to escape eight bytes at a time, then copied whole.

use super::{AuditPrincipal, AuditRecord, ShadowRecord};

/// Appends `record` as one JSON object (no newline) to `out`.
pub(super) fn write(record: &AuditRecord, out: &mut Vec<u8>) {
    // Destructured without `..`: a field added to the record fails to compile here until the
    // line writes it.
    let AuditRecord {
        schema,
        time,
        request_id,
        trace_id,
        activity_id,
        client_address,
        forwarded_for,
        user_agent,
        principal,
        method,
        path,
        operation,
        actions,
        database,
        container,
        item_id,
        partition_key,
        decision,
        reason,
        rule,
        policy_version,
        roles,
        shadow,
        status,
        substatus,
        request_charge,
        bytes_in,
        bytes_out,
        upstream_status,
        upstream_latency_ms,
        upstream_region,
        completed,
        latency_ms,
    } = record;
    out.extend_from_slice(b"{\"schema\":");
    string(out, schema);
    out.extend_from_slice(b",\"time\":");
    string(out, time);
    out.extend_from_slice(b",\"request_id\":");
    string(out, request_id);
    out.extend_from_slice(b",\"trace_id\":");
    string(out, trace_id);
    out.extend_from_slice(b",\"activity_id\":");
    string(out, activity_id);
    out.extend_from_slice(b",\"client_address\":");
    string(out, client_address);
    out.extend_from_slice(b",\"forwarded_for\":");
    optional_string(out, forwarded_for.as_deref());
    out.extend_from_slice(b",\"user_agent\":");
    optional_string(out, user_agent.as_deref());
    out.extend_from_slice(b",\"principal\":");
    match principal {
        Some(principal) => write_principal(principal, out),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"method\":");
    string(out, method);
    out.extend_from_slice(b",\"path\":");
    string(out, path);
    out.extend_from_slice(b",\"operation\":");
    optional_string(out, *operation);
    out.extend_from_slice(b",\"actions\":");
    strings(out, actions);
    out.extend_from_slice(b",\"database\":");
    optional_string(out, database.as_deref());
    out.extend_from_slice(b",\"container\":");
    optional_string(out, container.as_deref());
    out.extend_from_slice(b",\"item_id\":");
    optional_string(out, item_id.as_deref());
    out.extend_from_slice(b",\"partition_key\":");
    optional_string(out, partition_key.as_deref());
    out.extend_from_slice(b",\"decision\":");
    string(out, decision);
    out.extend_from_slice(b",\"reason\":");
    string(out, reason);
    out.extend_from_slice(b",\"rule\":");
    optional_string(out, rule.as_deref());
    out.extend_from_slice(b",\"policy_version\":");
    optional_string(out, policy_version.as_deref());
    out.extend_from_slice(b",\"roles\":");
    strings(out, roles);
    out.extend_from_slice(b",\"shadow\":[");
    for (index, ShadowRecord { rule, reason }) in shadow.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"rule\":");
        string(out, rule);
        out.extend_from_slice(b",\"reason\":");
        string(out, reason);
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"status\":");
    integer(out, *status);
    out.extend_from_slice(b",\"substatus\":");
    optional_string(out, substatus.as_deref());
    out.extend_from_slice(b",\"request_charge\":");
    optional_float(out, *request_charge);
    out.extend_from_slice(b",\"bytes_in\":");
    integer(out, *bytes_in);
    out.extend_from_slice(b",\"bytes_out\":");
    integer(out, *bytes_out);
    out.extend_from_slice(b",\"upstream_status\":");
    match upstream_status {
        Some(status) => integer(out, *status),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"upstream_latency_ms\":");
    optional_float(out, *upstream_latency_ms);
    out.extend_from_slice(b",\"upstream_region\":");
    optional_string(out, upstream_region.as_deref());
    out.extend_from_slice(if *completed {
        b",\"completed\":true"
    } else {
        b",\"completed\":false"
    });
    out.extend_from_slice(b",\"latency_ms\":");
    float(out, *latency_ms);
    out.push(b'}');
}

fn write_principal(principal: &AuditPrincipal, out: &mut Vec<u8>) {
    let AuditPrincipal {
        iss,
        sub,
        oid,
        tid,
        client_id,
        token_fingerprint,
    } = principal;
    out.extend_from_slice(b"{\"iss\":");
    string(out, iss);
    out.extend_from_slice(b",\"sub\":");
    string(out, sub);
    out.extend_from_slice(b",\"oid\":");
    optional_string(out, oid.as_deref());
    out.extend_from_slice(b",\"tid\":");
    optional_string(out, tid.as_deref());
    out.extend_from_slice(b",\"client_id\":");
    optional_string(out, client_id.as_deref());
    out.extend_from_slice(b",\"token_fingerprint\":");
    string(out, token_fingerprint);
    out.push(b'}');
}

fn strings(out: &mut Vec<u8>, values: &[impl AsRef<str>]) {
    out.push(b'[');
    for (index, value) in values.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        string(out, value.as_ref());
    }
    out.push(b']');
}

fn optional_string(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(value) => string(out, value),
        None => out.extend_from_slice(b"null"),
    }
}

fn integer(out: &mut Vec<u8>, value: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// A finite number in the shortest form that reads back the same (as `serde_json` writes it);
/// NaN and the infinities, which JSON cannot hold, as `null`.
fn float(out: &mut Vec<u8>, value: f64) {
    if value.is_finite() {
        out.extend_from_slice(zmij::Buffer::new().format_finite(value).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

fn optional_float(out: &mut Vec<u8>, value: Option<f64>) {
    match value {
        Some(value) => float(out, value),
        None => out.extend_from_slice(b"null"),
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// Whether any of the eight bytes is a control character, `"` or `\`: the bytes JSON strings
/// escape. Each test is exact (a byte is flagged only if some byte matches).
fn word_needs_escape(word: u64) -> bool {
    let below_space = word.wrapping_sub(ONES * 0x20) & !word;
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let quote = quote.wrapping_sub(ONES) & !quote;
    let backslash = backslash.wrapping_sub(ONES) & !backslash;
    (below_space | quote | backslash) & HIGH_BITS != 0
}

/// A JSON string: quotes, and escapes for control characters, `"` and `\`. Everything else,
/// non-ASCII included, is copied as it is (the input is UTF-8, so the output is). Clean runs
/// are copied whole; only a word that holds a byte to escape is looked at byte by byte.
fn string(out: &mut Vec<u8>, value: &str) {
    let bytes = value.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut copied = 0;
    let (words, tail) = bytes.as_chunks::<8>();
    for (index, word) in words.iter().enumerate() {
        if word_needs_escape(u64::from_le_bytes(*word)) {
            copied = escape_chunk(out, bytes, copied, index * 8, word);
        }
    }
    if !tail.is_empty() {
        // Spaces need no escape: the padding cannot flag the word.
        let mut padded = [b' '; 8];
        padded[..tail.len()].copy_from_slice(tail);
        if word_needs_escape(u64::from_le_bytes(padded)) {
            copied = escape_chunk(out, bytes, copied, words.len() * 8, tail);
        }
    }
    out.extend_from_slice(&bytes[copied..]);
    out.push(b'"');
}

/// Escapes the bytes of `chunk`, which starts at `start` of `bytes`, that need it, after copying
/// what precedes each from `copied` on; returns how far `bytes` is now written.
fn escape_chunk(
    out: &mut Vec<u8>,
    bytes: &[u8],
    mut copied: usize,
    start: usize,
    chunk: &[u8],
) -> usize {
    for (offset, &byte) in chunk.iter().enumerate() {
        if byte < 0x20 || byte == b'"' || byte == b'\\' {
            let at = start + offset;
            out.extend_from_slice(&bytes[copied..at]);
            escape(out, byte);
            copied = at + 1;
        }
    }
    copied
}

fn escape(out: &mut Vec<u8>, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let short = match byte {
        b'"' => b'"',
        b'\\' => b'\\',
        0x08 => b'b',
        0x09 => b't',
        0x0a => b'n',
        0x0c => b'f',
        0x0d => b'r',
        _ => {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0x0f)],
            ]);
            return;
        }
    };
    out.extend_from_slice(&[b'\\', short]);
}

#[cfg(test)]
mod tests;
