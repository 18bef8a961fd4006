use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair, RSA_PKCS1_SHA256, RSA_PKCS1_SHA512, RSA_PSS_SHA256, RsaKeyPair,
};

use super::*;

const INPUT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1In0";

fn token() -> String {
    format!("{INPUT}.c2ln")
}

fn rsa_pair() -> (RsaKeyPair, PublicKey) {
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("generates");
    let public = pair.public_key();
    let key = PublicKey::rsa(
        public.modulus().big_endian_without_leading_zero(),
        public.exponent().big_endian_without_leading_zero(),
        Algorithm::RS256,
    )
    .expect("a generated key is accepted");
    (pair, key)
}

fn rsa_sign(pair: &RsaKeyPair, padding: &'static dyn sig::RsaEncoding) -> Vec<u8> {
    let mut signature = vec![0; pair.public_modulus_len()];
    pair.sign(
        padding,
        &SystemRandom::new(),
        INPUT.as_bytes(),
        &mut signature,
    )
    .expect("signs");
    signature
}

fn slots_parsed(key: &PublicKey) -> usize {
    key.parsed
        .iter()
        .filter(|slot| slot.get().is_some())
        .count()
}

#[test]
fn an_rsa_key_without_alg_is_parsed_once_per_algorithm_it_is_asked_for() {
    let (pair, key) = rsa_pair();
    assert_eq!(
        slots_parsed(&key),
        1,
        "RS256 is parsed when the set is read"
    );
    let pkcs1 = rsa_sign(&pair, &RSA_PKCS1_SHA256);
    for _ in 0..3 {
        verify_signature(&token(), &pkcs1, &key, Algorithm::RS256).expect("verifies");
    }
    assert_eq!(slots_parsed(&key), 1, "later tokens reuse the parsed key");

    let pss = rsa_sign(&pair, &RSA_PSS_SHA256);
    verify_signature(&token(), &pss, &key, Algorithm::PS256).expect("PSS verifies");
    let rs512 = rsa_sign(&pair, &RSA_PKCS1_SHA512);
    verify_signature(&token(), &rs512, &key, Algorithm::RS512).expect("RS512 verifies");
    assert_eq!(slots_parsed(&key), 3);

    // A signature made with one padding or hash never passes as another.
    for (signature, alg) in [
        (&pkcs1, Algorithm::PS256),
        (&pss, Algorithm::RS256),
        (&rs512, Algorithm::RS256),
    ] {
        assert_eq!(
            verify_signature(&token(), signature, &key, alg),
            Err(TokenError::BadSignature)
        );
    }
}

#[test]
fn a_changed_input_or_signature_is_a_bad_signature() {
    let (pair, key) = rsa_pair();
    let signature = rsa_sign(&pair, &RSA_PKCS1_SHA256);
    let other_input = format!("{INPUT}x.c2ln");
    assert_eq!(
        verify_signature(&other_input, &signature, &key, Algorithm::RS256),
        Err(TokenError::BadSignature)
    );
    let mut flipped = signature.clone();
    flipped[10] ^= 1;
    assert_eq!(
        verify_signature(&token(), &flipped, &key, Algorithm::RS256),
        Err(TokenError::BadSignature)
    );
    for short in [&signature[..255], &[][..]] {
        assert_eq!(
            verify_signature(&token(), short, &key, Algorithm::RS256),
            Err(TokenError::BadSignature)
        );
    }
}

/// A 1024-bit RSA key (generated with `openssl genrsa 1024`, e = 65537) and its valid PKCS #1
/// v1.5 SHA-256 signature over `INPUT` (`openssl dgst -sha256 -sign`, checked with `-verify`).
const RSA_1024_N: [&str; 4] = [
    "d05e53248bab4e6586612574d75170eb56ffdf190e785a5a2155ae3a1228a46a",
    "a8d26eb3a4da34897c5b4894cbb551ceac1794c9de6856c05f2b383402c3349f",
    "68489a5411e5f4fb5e18c77cdc3da5ede050a9fdcb15a1d939248501bb62c1bb",
    "a7ce3d5b44e3ce1bf0291966d0a427778908f6dca2e3d4870e4d311f081e1aff",
];
const RSA_1024_SIGNATURE: [&str; 4] = [
    "48d2bf9d99c95fedab071d337bb02726d0f9a0a27c290985c559ef864393ba1d",
    "b9197256f64b16ad0dd12ed584572fc6a9d22cefc38788c0539753ee220b5114",
    "01dff75af6aeaf41d4148d9b81de4751b1f915d4063a733c64679ac532f6a9c2",
    "c7ee3841d02155caa31f4a399c4a4af074bc12638eaf6c0c80a6321b916d54e4",
];

fn unhex(parts: &[&str]) -> Vec<u8> {
    hex::decode(parts.concat()).expect("hex")
}

#[test]
fn a_valid_signature_from_an_rsa_key_below_2048_bits_is_refused() {
    // The key set parser refuses such a key before this point; here the verifier is shown to
    // refuse it too, with a signature that is valid for it.
    let key = PublicKey::rsa(&unhex(&RSA_1024_N), &[1, 0, 1], Algorithm::RS256)
        .expect("aws-lc parses a 1024-bit key; the size is checked at verification");
    assert_eq!(
        verify_signature(
            &token(),
            &unhex(&RSA_1024_SIGNATURE),
            &key,
            Algorithm::RS256
        ),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn ec_and_ed25519_keys_verify_their_one_algorithm_only() {
    let rng = SystemRandom::new();
    for (signing, kind, alg) in [
        (
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            KeyKind::P256,
            Algorithm::ES256,
        ),
        (
            &ECDSA_P384_SHA384_FIXED_SIGNING,
            KeyKind::P384,
            Algorithm::ES384,
        ),
    ] {
        let pair = EcdsaKeyPair::generate(signing).expect("generates");
        let key = PublicKey::ec(kind, pair.public_key().as_ref().to_vec()).expect("parses");
        let signature = pair.sign(&rng, INPUT.as_bytes()).expect("signs");
        verify_signature(&token(), signature.as_ref(), &key, alg).expect("verifies");
        assert_eq!(
            verify_signature(&token(), signature.as_ref(), &key, Algorithm::RS256),
            Err(TokenError::KeyAlgMismatch)
        );
    }
    let pair = Ed25519KeyPair::generate().expect("generates");
    let key = PublicKey::ed25519(pair.public_key().as_ref().to_vec()).expect("parses");
    let signature = pair.sign(INPUT.as_bytes());
    verify_signature(&token(), signature.as_ref(), &key, Algorithm::EdDSA).expect("verifies");
    assert_eq!(
        verify_signature(&token(), signature.as_ref(), &key, Algorithm::ES256),
        Err(TokenError::KeyAlgMismatch)
    );
}

#[test]
fn a_point_off_its_curve_is_refused_when_the_key_is_read() {
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("generates");
    let mut point = pair.public_key().as_ref().to_vec();
    point[40] ^= 1;
    assert!(PublicKey::ec(KeyKind::P256, point).is_err());
    let good = pair.public_key().as_ref().to_vec();
    assert!(
        PublicKey::ec(KeyKind::P384, good).is_err(),
        "a P-256 point is not P-384"
    );
}

#[test]
fn debug_output_shows_no_key_material() {
    let (_, key) = rsa_pair();
    assert_eq!(format!("{key:?}"), "PublicKey([redacted])");
}
