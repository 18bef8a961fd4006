//! Bytes as an `Authorization` header value: the protocol crate's header parsing, then the
//! validator's token parsing (everything before key selection) on whatever token it yields,
//! and on the raw bytes as a bare token too. The bytes are also split at the first NUL into a
//! header and a payload that the harness encodes itself, so mutations reach the JSON and claim
//! checks without first having to produce valid base64url. None of it may panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

use cosmogate_validator::fuzzing;

fuzz_target!(|data: &[u8]| {
    if let Ok(client) = cosmogate_protocol::parse_authorization(data) {
        let _ = fuzzing::inspect_unverified(&client.token);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = fuzzing::inspect_unverified(text);
    }
    if let Some(split) = data.iter().position(|byte| *byte == 0) {
        let _ = fuzzing::inspect_segments(&data[..split], &data[split + 1..]);
    }
});
