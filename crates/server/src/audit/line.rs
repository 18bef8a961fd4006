//! The audit record's JSON line, written by hand.
//!
//! The line is byte for byte what `serde_json` makes of the record's `Serialize` derive (same
//! keys in the same order, same escapes, same number formats; the tests hold the two equal over
//! generated records), without its per-key and per-byte work: the keys are literals, and a
//! string is checked for characters to escape eight bytes at a time, then copied whole.

use std::sync::Arc;

use super::{AuditPrincipal, AuditRecord, PrincipalView, ShadowRecord};

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
    put(out, b"{\"schema\":", schema);
    put(out, b",\"time\":", time);
    put(out, b",\"request_id\":", request_id);
    put(out, b",\"trace_id\":", trace_id);
    put(out, b",\"activity_id\":", activity_id);
    put(out, b",\"client_address\":", client_address);
    put(out, b",\"forwarded_for\":", forwarded_for);
    put(out, b",\"user_agent\":", user_agent);
    put(out, b",\"principal\":", principal);
    put(out, b",\"method\":", method);
    put(out, b",\"path\":", path);
    put(out, b",\"operation\":", operation);
    put(out, b",\"actions\":", actions);
    put(out, b",\"database\":", database);
    put(out, b",\"container\":", container);
    put(out, b",\"item_id\":", item_id);
    put(out, b",\"partition_key\":", partition_key);
    put(out, b",\"decision\":", decision);
    put(out, b",\"reason\":", reason);
    put(out, b",\"rule\":", rule);
    put(out, b",\"policy_version\":", policy_version);
    put(out, b",\"roles\":", roles);
    put(out, b",\"shadow\":", shadow);
    put(out, b",\"status\":", status);
    put(out, b",\"substatus\":", substatus);
    put(out, b",\"request_charge\":", request_charge);
    put(out, b",\"bytes_in\":", bytes_in);
    put(out, b",\"bytes_out\":", bytes_out);
    put(out, b",\"upstream_status\":", upstream_status);
    put(out, b",\"upstream_latency_ms\":", upstream_latency_ms);
    put(out, b",\"upstream_region\":", upstream_region);
    put(out, b",\"completed\":", completed);
    put(out, b",\"latency_ms\":", latency_ms);
    out.push(b'}');
}

/// The key (with the comma before it, and the colon), then the value.
fn put<T: Json + ?Sized>(out: &mut Vec<u8>, key: &[u8], value: &T) {
    out.extend_from_slice(key);
    value.write(out);
}

/// A value of the record, written as `serde_json` writes it.
trait Json {
    fn write(&self, out: &mut Vec<u8>);
}

impl Json for str {
    fn write(&self, out: &mut Vec<u8>) {
        string(out, self);
    }
}

impl Json for String {
    fn write(&self, out: &mut Vec<u8>) {
        string(out, self);
    }
}

impl<T: Json + ?Sized> Json for &T {
    fn write(&self, out: &mut Vec<u8>) {
        (**self).write(out);
    }
}

impl<T: Json + ?Sized> Json for Arc<T> {
    fn write(&self, out: &mut Vec<u8>) {
        (**self).write(out);
    }
}

impl<T: Json> Json for Option<T> {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Some(value) => value.write(out),
            None => out.extend_from_slice(b"null"),
        }
    }
}

impl<T: Json> Json for Vec<T> {
    fn write(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        for (index, value) in self.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            value.write(out);
        }
        out.push(b']');
    }
}

impl Json for u16 {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(itoa::Buffer::new().format(*self).as_bytes());
    }
}

impl Json for u64 {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(itoa::Buffer::new().format(*self).as_bytes());
    }
}

/// A finite number in the shortest form that reads back the same (as `serde_json` writes it);
/// NaN and the infinities, which JSON cannot hold, as `null`.
impl Json for f64 {
    fn write(&self, out: &mut Vec<u8>) {
        if self.is_finite() {
            out.extend_from_slice(zmij::Buffer::new().format_finite(*self).as_bytes());
        } else {
            out.extend_from_slice(b"null");
        }
    }
}

impl Json for bool {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(if *self { b"true" } else { b"false" });
    }
}

/// Appends `principal` as a JSON object; [`PrincipalView`] keeps the result.
pub(super) fn principal(principal: &AuditPrincipal, out: &mut Vec<u8>) {
    let AuditPrincipal {
        iss,
        sub,
        oid,
        tid,
        client_id,
        token_fingerprint,
    } = principal;
    put(out, b"{\"iss\":", iss);
    put(out, b",\"sub\":", sub);
    put(out, b",\"oid\":", oid);
    put(out, b",\"tid\":", tid);
    put(out, b",\"client_id\":", client_id);
    put(out, b",\"token_fingerprint\":", token_fingerprint);
    out.push(b'}');
}

impl Json for PrincipalView {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.json());
    }
}

impl Json for ShadowRecord {
    fn write(&self, out: &mut Vec<u8>) {
        let ShadowRecord { rule, reason } = self;
        put(out, b"{\"rule\":", rule);
        put(out, b",\"reason\":", reason);
        out.push(b'}');
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
