//! What reading the client's `Authorization` header costs, per accepted form: `type=aad` raw
//! (JavaScript and Python SDKs), `type=aad` percent-encoded as a whole (.NET and Rust SDKs,
//! which forces a decode and a copy), and `Bearer`; plus a refused key credential.
//!
//! The token is a realistic RS256 access token of about 900 characters (three base64url parts
//! of the sizes Entra ID and Keycloak tokens have); only its framing is read here.
//! Run with `cargo bench -p cosmogate-protocol --bench authorization`.

use std::hint::black_box;

use cosmogate_protocol::parse_authorization;
use criterion::{Criterion, criterion_group, criterion_main};

/// A stand-in JWT with the length and alphabet of a real one (the parser does not decode it).
fn jwt() -> String {
    let part = |len: usize, seed: u8| -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        (0..len)
            .map(|i| ALPHABET[(i * 7 + seed as usize) % ALPHABET.len()] as char)
            .collect()
    };
    format!("{}.{}.{}", part(100, 1), part(450, 2), part(342, 3))
}

/// Percent-encodes everything but unreserved characters, as `encodeURIComponent` does.
fn percent_encoded(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3 / 2);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn bench_authorization(c: &mut Criterion) {
    let jwt = jwt();
    let raw = format!("type=aad&ver=1.0&sig={jwt}");
    let encoded = percent_encoded(&raw);
    let bearer = format!("Bearer {jwt}");
    let master =
        percent_encoded("type=master&ver=1.0&sig=YD98TEaA+V23w1lQ8ggqXqzcyVxbVUNAKf0Y6c8oLc4=");

    for value in [&raw, &encoded, &bearer] {
        let token = parse_authorization(value.as_bytes()).expect("bench headers must parse");
        assert_eq!(
            token.token,
            jwt.as_str(),
            "the bench header must carry the token"
        );
    }
    assert!(parse_authorization(master.as_bytes()).is_err());

    let mut group = c.benchmark_group("authorization");
    let cases = [
        ("aad_raw", &raw),
        ("aad_percent_encoded", &encoded),
        ("bearer", &bearer),
        ("refused_master_key", &master),
    ];
    for (name, value) in cases {
        group.bench_function(name, |b| {
            b.iter(|| {
                let _ = black_box(parse_authorization(black_box(value.as_bytes())));
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_authorization);
criterion_main!(benches);
