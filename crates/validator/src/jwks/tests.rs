use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
};
use serde_json::json;

use super::*;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn rsa(kid: &str) -> Value {
    json!({"kty":"RSA","kid":kid,"n":b64(&[0xc5; 256]),"e":"AQAB"})
}

/// An EC key on `crv`: a real point for P-256 and P-384 at their sizes (aws-lc refuses a point
/// off its curve), filler bytes otherwise, for keys that must be refused before that.
fn ec(kid: &str, crv: &str, size: usize) -> Value {
    let signing = match (crv, size) {
        ("P-256", 32) => Some(&ECDSA_P256_SHA256_FIXED_SIGNING),
        ("P-384", 48) => Some(&ECDSA_P384_SHA384_FIXED_SIGNING),
        _ => None,
    };
    let (x, y) = match signing {
        Some(signing) => {
            let pair = EcdsaKeyPair::generate(signing).expect("generates");
            let point = pair.public_key().as_ref();
            (point[1..=size].to_vec(), point[size + 1..].to_vec())
        }
        None => (vec![7; size], vec![9; size]),
    };
    json!({"kty":"EC","kid":kid,"crv":crv,"x":b64(&x),"y":b64(&y)})
}

fn parse(keys: Vec<Value>) -> ParsedSet {
    let document = serde_json::to_vec(&json!({ "keys": keys })).expect("serializes");
    parse_set(&document).expect("document parses")
}

fn with(mut key: Value, name: &str, value: Value) -> Value {
    key[name] = value;
    key
}

#[test]
fn an_entra_style_key_without_alg_or_use_is_usable_for_every_rsa_algorithm() {
    let set = parse(vec![rsa("rsa-1")]);
    assert_eq!(set.keys.len(), 1);
    for alg in [Algorithm::RS256, Algorithm::PS256, Algorithm::RS512] {
        assert!(set.keys[0].fits(alg));
    }
    assert!(!set.keys[0].fits(Algorithm::ES256));
}

#[test]
fn bad_unknown_and_encryption_keys_are_skipped_without_spoiling_the_set() {
    let set = parse(vec![
        with(rsa("enc"), "use", json!("enc")),
        with(rsa("oaep"), "alg", json!("RSA-OAEP")),
        json!({"kty":"RSA","kid":"short","n":"BQ","e":"AQAB"}),
        json!({"kty":"oct","kid":"hmac","k":"c2VjcmV0"}),
        json!({"kty":"AKP","kid":"pq","pub":"AAAA"}),
        json!({"kid":"no-kty"}),
        json!("not an object"),
        with(rsa("kid-number"), "kid", json!(5)),
        with(rsa("ops"), "key_ops", json!(["encrypt"])),
        ec("p521", "P-521", 66),
        ec("wrong-size", "P-256", 48),
        with(ec("ec-rs", "P-256", 32), "alg", json!("RS256")),
        rsa("good"),
    ]);
    let kids: Vec<_> = set.keys.iter().map(|k| k.kid.as_deref()).collect();
    assert_eq!(kids, [Some("good")]);
    assert_eq!(set.skipped, 12);
}

#[test]
fn rsa_keys_outside_what_the_verifier_accepts_are_skipped_when_read() {
    let modulus = |bytes: Vec<u8>| json!({"kty":"RSA","kid":"k","n":b64(&bytes),"e":"AQAB"});
    let mut short = vec![0x7f; 256];
    short[255] = 0xc5;
    let mut even = vec![0xc5; 256];
    even[255] = 0xc4;
    let exponent = |e: &[u8]| json!({"kty":"RSA","kid":"k","n":b64(&[0xc5; 256]),"e":b64(e)});
    for (key, why) in [
        (modulus(short), "2047-bit modulus"),
        (modulus(even), "even modulus"),
        (modulus(vec![0xc5; 1025]), "8200-bit modulus"),
        (exponent(&[1]), "exponent 1"),
        (exponent(&[1, 0, 0]), "even exponent"),
        (exponent(&[3, 0, 0, 0, 1]), "34-bit exponent"),
    ] {
        let set = parse(vec![key]);
        assert!(set.keys.is_empty(), "{why} must be skipped");
    }
    for key in [
        modulus(vec![0xc5; 1024]),
        exponent(&[3]),
        exponent(&[1, 0, 0, 0, 1]),
    ] {
        assert_eq!(parse(vec![key]).keys.len(), 1);
    }
}

#[test]
fn a_point_off_its_curve_is_skipped() {
    let set = parse(vec![json!({
        "kty":"EC","kid":"off","crv":"P-256","x":b64(&[7; 32]),"y":b64(&[9; 32])
    })]);
    assert!(set.keys.is_empty());
    assert_eq!(set.skipped, 1);
}

#[test]
fn curves_are_bound_to_their_algorithms() {
    let set = parse(vec![ec("p256", "P-256", 32), ec("p384", "P-384", 48)]);
    assert!(set.keys[0].fits(Algorithm::ES256) && !set.keys[0].fits(Algorithm::ES384));
    assert!(set.keys[1].fits(Algorithm::ES384) && !set.keys[1].fits(Algorithm::ES256));
}

#[test]
fn documents_that_are_not_key_sets_fail_as_a_whole() {
    for document in [&b"<html></html>"[..], b"{}", br#"{"keys":{}}"#, b"[]"] {
        assert!(parse_set(document).is_err());
    }
    assert!(parse(vec![]).keys.is_empty());
}

#[test]
fn selection_by_kid_needs_exactly_one_fitting_key() {
    let set = parse(vec![
        rsa("rsa-1"),
        with(rsa("rsa-b1"), "alg", json!("RS256")),
        with(rsa("dup"), "alg", json!("RS256")),
        with(rsa("dup"), "alg", json!("PS256")),
        rsa("twin"),
        rsa("twin"),
    ]);
    let keys = &set.keys;
    assert_eq!(
        select(keys, Some("rsa-1"), Algorithm::RS256).map(|k| k.kid.clone()),
        Ok(Some("rsa-1".into()))
    );
    assert_eq!(
        select(keys, Some("nope"), Algorithm::RS256).err(),
        Some(Miss::UnknownKid)
    );
    assert_eq!(
        select(keys, Some("rsa-b1"), Algorithm::PS256).err(),
        Some(Miss::Mismatch)
    );
    assert_eq!(
        select(keys, Some("rsa-1"), Algorithm::ES256).err(),
        Some(Miss::Mismatch)
    );
    assert!(select(keys, Some("dup"), Algorithm::PS256).is_ok());
    assert_eq!(
        select(keys, Some("twin"), Algorithm::RS256).err(),
        Some(Miss::Ambiguous)
    );
}

#[test]
fn a_token_without_kid_needs_a_single_compatible_key() {
    let one = parse(vec![rsa("rsa-1"), ec("ec-1", "P-256", 32)]);
    assert!(select(&one.keys, None, Algorithm::RS256).is_ok());
    assert_eq!(
        select(&one.keys, None, Algorithm::ES384).err(),
        Some(Miss::NoKey)
    );
    let two = parse(vec![rsa("a"), rsa("b")]);
    assert_eq!(
        select(&two.keys, None, Algorithm::RS256).err(),
        Some(Miss::Ambiguous)
    );
}

#[test]
fn key_debug_output_hides_the_key() {
    let set = parse(vec![rsa("rsa-1")]);
    let printed = format!("{:?}", set.keys[0]);
    assert!(printed.contains("[redacted]") && !printed.contains(&b64(&[0xc5; 256])));
}

#[test]
fn the_thumbprint_is_the_rfc_7638_one() {
    // The example key of RFC 7638 §3.1 and its published thumbprint.
    let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_\
             BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0\
             _FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTW\
             hAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
    let set = parse(vec![
        json!({"kty":"RSA","kid":"2011-04-29","n":n,"e":"AQAB"}),
    ]);
    assert_eq!(
        b64(&set.keys[0].thumbprint),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}

#[test]
fn the_thumbprint_ignores_kid_alg_and_use_but_not_the_key() {
    let plain = parse(vec![rsa("a")]);
    let dressed = parse(vec![with(
        with(rsa("b"), "alg", json!("RS256")),
        "use",
        json!("sig"),
    )]);
    assert_eq!(plain.keys[0].thumbprint, dressed.keys[0].thumbprint);
    let p256 = parse(vec![ec("a", "P-256", 32)]);
    assert_ne!(plain.keys[0].thumbprint, p256.keys[0].thumbprint);
}

#[test]
fn a_key_issuer_member_is_kept_and_must_be_a_string() {
    let template = "https://login.microsoftonline.com/{tenantid}/v2.0";
    let set = parse(vec![
        with(rsa("a"), "issuer", json!(template)),
        with(rsa("b"), "issuer", json!(["x"])),
    ]);
    assert_eq!(set.keys.len(), 1);
    assert_eq!(set.keys[0].issuer.as_deref(), Some(template));
    assert_eq!(set.skipped, 1);
}
