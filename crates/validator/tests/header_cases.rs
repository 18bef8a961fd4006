//! Token encoding and header cases (C01-C03, C05, C12, kid abuse, typ, algorithms).

mod common;

use common::*;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;

#[tokio::test]
async fn baseline_token_is_accepted_and_described() {
    let rig = rig().await;
    let token = t0();
    let principal = rig.validator.validate(&token).await.expect("T0 is valid");
    assert_eq!(principal.issuer, ISSUER_A);
    assert_eq!(principal.subject, "u-100");
    assert_eq!(principal.expires_at, NOW + 600);
    assert_eq!(principal.key_id.as_deref(), Some("rsa-1"));
    assert_eq!(principal.claim("roles"), Some(&json!(["orders.read"])));
    assert_eq!(principal.token_fingerprint.len(), 16);
    let printed = format!(
        "{principal:?} {}",
        serde_json::to_string(&*principal).expect("json")
    );
    assert!(!printed.contains(&token));
}

#[tokio::test]
async fn es256_token_from_the_ec_key_is_accepted() {
    let rig = rig().await;
    let token = sign(
        &json!({"alg":"ES256","kid":"ec-1"}),
        &t0_payload(),
        &key("ec-1"),
    );
    assert_eq!(rig.reason(&token).await, "ok");
}

// C01 -----------------------------------------------------------------------------------------

#[tokio::test]
async fn unsigned_tokens_are_refused_before_any_key_lookup() {
    let rig = rig().await;
    let hits = rig.mock.jwks_hits("a");
    let mut payload = t0_payload();
    payload["roles"] = json!(["orders.write"]);
    let payload = b64(payload.to_string());
    let real_signature = t0().rsplit('.').next().expect("has signature").to_owned();
    let headers = [
        json!({"alg":"none"}),
        json!({"alg":"None"}),
        json!({"alg":"NONE"}),
        json!({"alg":"nOnE"}),
        json!({"alg":""}),
        json!({"typ":"JWT"}),
        json!({"alg":"none","kid":"rsa-1"}),
    ];
    for header in headers {
        let head = b64(header.to_string());
        for signature in ["", "AAAA", real_signature.as_str()] {
            let token = format!("{head}.{payload}.{signature}");
            let reason = rig.reason(&token).await;
            assert!(
                matches!(reason, "unsupported_algorithm" | "malformed_token"),
                "{header} {reason}"
            );
        }
        assert_eq!(
            rig.reason(&format!("{head}.{payload}")).await,
            "malformed_token"
        );
    }
    assert_eq!(
        rig.mock.jwks_hits("a"),
        hits,
        "no key set fetch for unsigned tokens"
    );
}

// C02 -----------------------------------------------------------------------------------------

/// The base64 body of a PEM file, on one line (the `x5c` form).
fn pem_body(pem: &[u8]) -> String {
    let text = String::from_utf8(pem.to_vec()).expect("pem is text");
    text.lines()
        .filter(|line| !line.starts_with("-----"))
        .collect()
}

fn pem_body_der(pem: &[u8]) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(pem_body(pem))
        .expect("pem body decodes")
}

#[tokio::test]
async fn hmac_tokens_keyed_with_the_public_key_are_refused() {
    let rig = rig().await;
    let spki_pem = fixture("rsa-1.pub.pem");
    let rsa_jwk = key("rsa-1").jwk("rsa-1", None, None);
    let modulus = {
        use base64::Engine;
        let n = rsa_jwk["n"].as_str().expect("n");
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(n)
            .expect("n decodes")
    };
    let secrets: Vec<Vec<u8>> = vec![
        spki_pem.clone(),
        spki_pem.trim_ascii_end().to_vec(),
        pem_body_der(&spki_pem),
        pem_body_der(&fixture("rsa-1.pub.pkcs1.pem")),
        rsa_jwk.to_string().into_bytes(),
        modulus,
    ];
    let mut payload = t0_payload();
    payload["roles"] = json!(["orders.write"]);
    for (alg, name) in [
        (Algorithm::HS256, "HS256"),
        (Algorithm::HS384, "HS384"),
        (Algorithm::HS512, "HS512"),
    ] {
        let header = json!({"alg": name, "typ": "JWT", "kid": "rsa-1"}).to_string();
        for secret in &secrets {
            let key = EncodingKey::from_secret(secret).expect("hmac key");
            let token = sign_raw(header.as_bytes(), payload.to_string().as_bytes(), &key, alg);
            assert_eq!(rig.reason(&token).await, "unsupported_algorithm", "{name}");
        }
    }
}

#[tokio::test]
async fn a_token_whose_alg_differs_from_the_declared_key_alg_is_refused() {
    let rig = rig().await;
    let mut payload = t0_payload();
    payload["iss"] = json!(ISSUER_B);
    let header = json!({"alg":"PS256","kid":"rsa-b1"}).to_string();
    let signer = key("rsa-b1");
    let token = sign_raw(
        header.as_bytes(),
        payload.to_string().as_bytes(),
        &signer.encoding,
        Algorithm::PS256,
    );
    assert_eq!(rig.reason(&token).await, "key_alg_mismatch");
    // The same key with its declared algorithm works.
    let good = sign(&json!({"alg":"RS256","kid":"rsa-b1"}), &payload, &signer);
    assert_eq!(rig.reason(&good).await, "ok");
}

// C03 -----------------------------------------------------------------------------------------

#[tokio::test]
async fn headers_carrying_keys_or_key_urls_are_refused_without_fetching() {
    let rig = rig().await;
    let evil = key("evil-rsa");
    let evil_jwk = evil.jwk("rsa-1", None, None);
    let canary = format!("{}/canary/jwks.json", rig.mock.base);
    let evil_cert = pem_body(&fixture("evil-rsa.crt"));
    let imds =
        "http://169.254.169.254/metadata/identity/oauth2/token?resource=https://cosmos.azure.com";
    let cases = [
        ("jwk", json!({"alg":"RS256","kid":"rsa-1","jwk":evil_jwk})),
        ("jku", json!({"alg":"RS256","kid":"evil-1","jku":canary})),
        (
            "jku",
            json!({"alg":"RS256","kid":"rsa-1","jku":"https://idp-a.test.evil.test/keys"}),
        ),
        ("x5u", json!({"alg":"RS256","kid":"rsa-1","x5u":imds})),
        (
            "x5c",
            json!({"alg":"RS256","kid":"rsa-1","x5c":[evil_cert]}),
        ),
        (
            "jku",
            json!({"alg":"RS256","kid":"rsa-1","jku":rig.mock.jwks_url("a")}),
        ),
    ];
    let hits = rig.mock.jwks_hits("a");
    let mut payload = t0_payload();
    payload["roles"] = json!(["orders.write"]);
    for (member, header) in cases {
        let token = sign(&header, &payload, &evil);
        let error = rig
            .validator
            .validate(&token)
            .await
            .expect_err("must be refused");
        assert_eq!(error.reason_code(), "forbidden_header", "{member}");
        assert!(error.to_string().contains(member));
    }
    assert_eq!(
        rig.mock
            .canary_hits
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    assert_eq!(rig.mock.jwks_hits("a"), hits);
}

// C05 -----------------------------------------------------------------------------------------

#[tokio::test]
async fn every_crit_header_is_refused_even_when_correctly_signed() {
    let rig = rig().await;
    let signer = key("rsa-1");
    const BIND: &str = "urn:test:must-bind";
    let crits = [
        json!({"alg":"RS256","kid":"rsa-1","crit":[BIND],BIND:true}),
        json!({"alg":"RS256","kid":"rsa-1","crit":[]}),
        json!({"alg":"RS256","kid":"rsa-1","crit":["alg"]}),
        json!({"alg":"RS256","kid":"rsa-1","crit":"exp"}),
        json!({"alg":"RS256","kid":"rsa-1","crit":["b64"],"b64":false}),
        json!({"alg":"RS256","kid":"rsa-1","crit":["urn:absent"]}),
    ];
    for header in crits {
        let token = sign(&header, &t0_payload(), &signer);
        assert_eq!(rig.reason(&token).await, "forbidden_header", "{header}");
    }
    assert_eq!(rig.reason(&t0()).await, "ok");
}

// C12 -----------------------------------------------------------------------------------------

/// T0 variants whose signature segment contains `-` or `_`, so alphabet swaps are visible.
fn t0_with_url_safe_characters() -> String {
    (0..200)
        .map(|n| t0_with("jti", Some(json!(format!("j-{n}")))))
        .find(|token| {
            let signature = token.rsplit('.').next().expect("signature");
            signature.contains('-') || signature.contains('_')
        })
        .expect("some signature uses - or _")
}

#[tokio::test]
async fn non_canonical_base64url_is_malformed() {
    let rig = rig().await;
    let token = t0_with_url_safe_characters();
    assert_eq!(rig.reason(&token).await, "ok");
    let segments: Vec<&str> = token.split('.').collect();
    let mut variants = Vec::new();
    for index in 0..3 {
        let mut padded = segments.clone();
        let with_pad = format!("{}=", segments[index]);
        padded[index] = &with_pad;
        variants.push(padded.join("."));
    }
    variants.push(token.replace('-', "+").replace('_', "/"));
    let last = token.chars().last().expect("non-empty");
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let value = ALPHABET.find(last).expect("base64url character");
    let sibling = ALPHABET.as_bytes()[value ^ 1] as char;
    variants.push(format!("{}{sibling}", &token[..token.len() - 1]));
    let (head, rest) = token.split_at(10);
    variants.push(format!("{head} {rest}"));
    variants.push(format!("{head}\n{rest}"));
    variants.push(format!("{head}={rest}"));
    variants.push(format!("{head}!{rest}"));
    variants.push(format!("{head}%{rest}"));
    for variant in variants {
        assert_eq!(rig.reason(&variant).await, "malformed_token", "{variant}");
    }
}

#[tokio::test]
async fn duplicate_claims_and_header_members_are_malformed() {
    let rig = rig().await;
    let signer = key("rsa-1");
    let payload = t0_payload().to_string();
    let doubled = payload.replacen('{', &format!("{{\"exp\":{},", NOW + 99_999), 1);
    let header = br#"{"alg":"RS256","kid":"rsa-1"}"#;
    let token = sign_raw(
        header,
        doubled.as_bytes(),
        &signer.encoding,
        Algorithm::RS256,
    );
    assert_eq!(rig.reason(&token).await, "malformed_token");
    let header = br#"{"alg":"RS256","kid":"rsa-1","kid":"ec-1"}"#;
    let token = sign_raw(
        header,
        payload.as_bytes(),
        &signer.encoding,
        Algorithm::RS256,
    );
    assert_eq!(rig.reason(&token).await, "malformed_token");
}

// C14 (kid abuse), typ ------------------------------------------------------------------------

#[tokio::test]
async fn odd_kids_are_refused_without_side_effects() {
    let rig = rig().await;
    let evil = key("evil-rsa");
    for kid in [
        "../../../../dev/null",
        "' OR '1'='1",
        "a\r\nFAKE-LOG-LINE",
        "a\u{0}b",
    ] {
        let token = t0_header_with("kid", Some(json!(kid)), &evil);
        assert_eq!(rig.reason(&token).await, "unknown_key", "{kid:?}");
    }
    for kid in [json!(5), json!({})] {
        let token = t0_header_with("kid", Some(kid.clone()), &evil);
        assert_eq!(rig.reason(&token).await, "malformed_token", "{kid}");
    }
    let long = t0_header_with("kid", Some(json!("a".repeat(300))), &evil);
    assert_eq!(rig.reason(&long).await, "unknown_key");
    let huge = t0_header_with("kid", Some(json!("a".repeat(65_536))), &evil);
    assert_eq!(rig.reason(&huge).await, "token_too_large");
}

#[tokio::test]
async fn typ_must_be_accepted_when_present() {
    let rig = rig().await;
    let signer = key("rsa-1");
    for (typ, expected) in [
        (Some(json!("JWT")), "ok"),
        (Some(json!("at+jwt")), "ok"),
        (Some(json!("application/AT+JWT")), "ok"),
        (None, "ok"),
        (Some(json!("JOSE")), "bad_typ"),
        (Some(json!("id+jwt")), "bad_typ"),
        (Some(json!(1)), "malformed_token"),
    ] {
        let token = t0_header_with("typ", typ.clone(), &signer);
        assert_eq!(rig.reason(&token).await, expected, "{typ:?}");
    }
}

#[tokio::test]
async fn a_token_without_kid_is_accepted_only_with_a_single_compatible_key() {
    let rig = rig().await;
    // IdP-A has one RSA key and one P-256 key: each algorithm has exactly one candidate.
    let rsa = t0_header_with("kid", None, &key("rsa-1"));
    assert_eq!(rig.reason(&rsa).await, "ok");
    let ec = sign(&json!({"alg":"ES256"}), &t0_payload(), &key("ec-1"));
    assert_eq!(rig.reason(&ec).await, "ok");

    let two_rsa = jwks(&[
        key("rsa-1").jwk("rsa-1", None, None),
        key("rsa-2").jwk("rsa-2", None, None),
    ]);
    let mock = MockIdp::start(&[("a", ISSUER_A, two_rsa), ("b", ISSUER_B, jwks_b())]).await;
    let rig = rig_on(mock).await;
    assert_eq!(rig.reason(&rsa).await, "ambiguous_key");
}

#[tokio::test]
async fn an_algorithm_outside_the_issuer_list_is_refused() {
    let rig = rig().await;
    // PS256 is allowed for IdP-B only.
    let signer = key("rsa-1");
    let header = json!({"alg":"PS256","kid":"rsa-1"}).to_string();
    let token = sign_raw(
        header.as_bytes(),
        t0_payload().to_string().as_bytes(),
        &signer.encoding,
        Algorithm::PS256,
    );
    assert_eq!(rig.reason(&token).await, "unsupported_algorithm");
}

#[tokio::test]
async fn other_algorithms_verify_with_keys_of_the_right_curve() {
    let keys = jwks(&[
        key("rsa-2").jwk("rsa-2", None, Some("sig")),
        key("ec384-1").jwk("ec384-1", None, None),
        key("ed-1").jwk("ed-1", Some("EdDSA"), None),
        key("ec-1").jwk("ec-1", None, None),
    ]);
    let mock = MockIdp::start(&[("a", ISSUER_A, keys)]).await;
    let config = mock.config(
        "a",
        ISSUER_A,
        &["PS256", "RS512", "ES256", "ES384", "EdDSA"],
    );
    let (validator, _clock) = validator_for(vec![config], 16_384).await.expect("starts");
    let payload = t0_payload().to_string();
    let cases = [
        ("rsa-2", "PS256", Algorithm::PS256, key("rsa-2"), None),
        ("rsa-2", "RS512", Algorithm::RS512, key("rsa-2"), None),
        ("ec384-1", "ES384", Algorithm::ES384, key("ec384-1"), None),
        ("ed-1", "EdDSA", Algorithm::EdDSA, key("ed-1"), None),
        ("ec-1", "ES256", Algorithm::ES256, key("ec-1"), None),
        // ES256 claimed for the P-384 key: the curve does not fit.
        (
            "ec384-1",
            "ES256",
            Algorithm::ES256,
            key("ec-1"),
            Some("key_alg_mismatch"),
        ),
    ];
    for (kid, name, alg, signer, expected) in cases {
        let header = json!({"alg": name, "kid": kid}).to_string();
        let token = sign_raw(header.as_bytes(), payload.as_bytes(), &signer.encoding, alg);
        let reason = validator
            .validate(&token)
            .await
            .err()
            .map(|e| e.reason_code());
        assert_eq!(reason, expected, "{kid} {name}");
    }
}

#[tokio::test]
async fn every_single_character_mutation_of_the_baseline_is_refused() {
    let rig = rig().await;
    let token = t0();
    for index in 0..token.len() {
        let original = token.as_bytes()[index];
        let replacement = if original == b'A' { b'B' } else { b'A' };
        let mut mutated = token.clone().into_bytes();
        mutated[index] = replacement;
        let mutated = String::from_utf8(mutated).expect("ascii");
        assert_ne!(rig.reason(&mutated).await, "ok", "position {index}");
    }
}

#[tokio::test]
async fn random_segments_never_panic_or_pass() {
    use rand::Rng;
    let rig = rig().await;
    let mut rng = rand::rng();
    for _ in 0..500 {
        let segments: Vec<String> = (0..rng.random_range(1..5))
            .map(|_| {
                let len = rng.random_range(0..64);
                let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                b64(bytes)
            })
            .collect();
        assert_ne!(rig.reason(&segments.join(".")).await, "ok");
    }
}
