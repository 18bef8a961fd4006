//! Bytes as a fetched key set document: per-key parsing must skip what it cannot use and never
//! panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cosmogate_validator::fuzzing::parse_key_set(data);
});
