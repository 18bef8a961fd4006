//! The registered claims: their types are checked before the signature (a wrong type is a
//! malformed token), their values after it.

use std::collections::BTreeSet;
use std::sync::{Mutex, OnceLock, PoisonError};

use serde_json::{Map, Value};

use crate::config::IssuerConfig;
use crate::error::TokenError;
use crate::normalize;

/// The registered claims the validator acts on, with their types checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Claims {
    pub(crate) iss: String,
    pub(crate) sub: String,
    pub(crate) aud: Vec<String>,
    pub(crate) exp: i64,
    pub(crate) nbf: Option<i64>,
    pub(crate) iat: Option<i64>,
}

/// Reads `iss`, `sub`, `aud`, `exp` (all required) and `nbf`, `iat` (optional). A claim with
/// the wrong JSON type is refused, never skipped: `iss` must be a string (an array is refused),
/// `aud` a string or an array of strings, the times JSON numbers.
pub(crate) fn read(payload: &Map<String, Value>) -> Result<Claims, TokenError> {
    let iss = required_string(payload, "iss")?;
    let sub = required_string(payload, "sub")?;
    if sub.is_empty() {
        return Err(TokenError::InvalidClaim("sub"));
    }
    let aud = audience(payload)?;
    let exp =
        numeric_date(payload, "exp", Rounding::Down)?.ok_or(TokenError::MissingClaim("exp"))?;
    let nbf = numeric_date(payload, "nbf", Rounding::Up)?;
    let iat = numeric_date(payload, "iat", Rounding::Up)?;
    Ok(Claims {
        iss,
        sub,
        aud,
        exp,
        nbf,
        iat,
    })
}

/// Checks the claim values against the issuer's settings at time `now` (Unix seconds). Runs
/// only after the signature verified, so a forged token is reported as such, not as expired.
pub(crate) fn check(claims: &Claims, config: &IssuerConfig, now: i64) -> Result<(), TokenError> {
    let leeway = i64::try_from(config.leeway_seconds).unwrap_or(i64::MAX);
    if now >= claims.exp.saturating_add(leeway) {
        return Err(TokenError::Expired);
    }
    if claims
        .nbf
        .is_some_and(|nbf| nbf > now.saturating_add(leeway))
    {
        return Err(TokenError::NotYetValid);
    }
    if claims
        .iat
        .is_some_and(|iat| iat > now.saturating_add(leeway))
    {
        return Err(TokenError::IssuedInFuture);
    }

    let accepted = claims
        .aud
        .iter()
        .any(|aud| config.audiences.iter().any(|ok| ok == aud));
    if !accepted {
        return Err(TokenError::BadAudience);
    }

    if let Some(max) = config.max_token_lifetime_seconds {
        let iat = claims.iat.ok_or(TokenError::MissingClaim("iat"))?;
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        if claims.exp.saturating_sub(iat) > max {
            return Err(TokenError::LifetimeTooLong);
        }
    }
    Ok(())
}

/// Checks the issuer's `required_claims` against the (signature-verified) payload: each must
/// be present, as a whole member name first and then as a dotted path, with its configured type.
pub(crate) fn check_required(
    payload: &Map<String, Value>,
    config: &IssuerConfig,
) -> Result<(), TokenError> {
    for (name, expected) in &config.required_claims {
        let found = payload
            .get(name)
            .or_else(|| normalize::lookup(payload, name));
        match found {
            None => return Err(TokenError::MissingClaim(interned(name))),
            Some(value) if !expected.matches(value) => {
                return Err(TokenError::InvalidClaim(interned(name)));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// A `'static` copy of a configured claim name, for the error variants. Only names from the
/// configuration come here, never token data, and each distinct name is stored once, so the
/// memory kept is bounded by the configuration.
fn interned(name: &str) -> &'static str {
    static NAMES: OnceLock<Mutex<BTreeSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(known) = names.get(name) {
        return known;
    }
    let stored: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(stored);
    stored
}

fn required_string(payload: &Map<String, Value>, name: &'static str) -> Result<String, TokenError> {
    match payload.get(name) {
        Some(Value::String(value)) => Ok(value.clone()),
        Some(_) => Err(TokenError::InvalidClaim(name)),
        None => Err(TokenError::MissingClaim(name)),
    }
}

/// `aud` as a list. An empty array is a valid shape that no audience matches.
fn audience(payload: &Map<String, Value>) -> Result<Vec<String>, TokenError> {
    const INVALID: TokenError = TokenError::InvalidClaim("aud");
    match payload.get("aud") {
        Some(Value::String(single)) => Ok(vec![single.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned).ok_or(INVALID))
            .collect(),
        Some(_) => Err(INVALID),
        None => Err(TokenError::MissingClaim("aud")),
    }
}

/// Which way a fractional time is rounded: always towards the stricter outcome.
#[derive(Clone, Copy)]
enum Rounding {
    Down,
    Up,
}

/// The largest time accepted, in seconds (about the year 33658); beyond it a value is refused
/// rather than risk float-to-integer surprises.
const MAX_NUMERIC_DATE: f64 = 1e12;

fn numeric_date(
    payload: &Map<String, Value>,
    name: &'static str,
    rounding: Rounding,
) -> Result<Option<i64>, TokenError> {
    let number = match payload.get(name) {
        None => return Ok(None),
        Some(Value::Number(number)) => number,
        Some(_) => return Err(TokenError::InvalidClaim(name)),
    };
    if let Some(whole) = number.as_i64() {
        return Ok(Some(whole));
    }
    let value = number.as_f64().ok_or(TokenError::InvalidClaim(name))?;
    if !value.is_finite() || value.abs() > MAX_NUMERIC_DATE {
        return Err(TokenError::InvalidClaim(name));
    }
    let rounded = match rounding {
        Rounding::Down => value.floor(),
        Rounding::Up => value.ceil(),
    };
    Ok(Some(rounded as i64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn payload(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("test payload must be an object"),
        }
    }

    fn base() -> Value {
        json!({"iss":"https://idp.test","sub":"u-1","aud":"api://x","exp":NOW + 600,
               "nbf":NOW - 10,"iat":NOW - 10})
    }

    fn with(name: &str, value: Value) -> Map<String, Value> {
        let mut map = payload(base());
        map.insert(name.to_owned(), value);
        map
    }

    fn without(name: &str) -> Map<String, Value> {
        let mut map = payload(base());
        map.remove(name);
        map
    }

    fn config() -> IssuerConfig {
        serde_json::from_value(json!({"issuer":"https://idp.test","audiences":["api://x"]}))
            .expect("test config must parse")
    }

    fn checked(map: Map<String, Value>) -> Result<(), TokenError> {
        check(&read(&map)?, &config(), NOW)
    }

    #[test]
    fn a_complete_payload_passes() {
        assert_eq!(checked(payload(base())), Ok(()));
    }

    #[test]
    fn required_claims_must_be_present() {
        for name in ["iss", "sub", "aud", "exp"] {
            assert_eq!(
                read(&without(name)),
                Err(TokenError::MissingClaim(name)),
                "{name}"
            );
        }
    }

    #[test]
    fn wrongly_typed_claims_are_invalid_not_skipped() {
        let cases = [
            ("iss", json!(["https://idp.test"])),
            ("iss", json!(42)),
            ("sub", json!(7)),
            ("sub", json!("")),
            ("exp", json!("1900000000")),
            ("exp", json!(null)),
            ("exp", json!(1e300)),
            ("nbf", json!(true)),
            ("iat", json!("now")),
            ("aud", json!({"v":"api://x"})),
            ("aud", json!(["api://x", 7])),
            ("aud", json!(null)),
            ("aud", json!(42)),
        ];
        for (name, value) in cases {
            let expected = Err(TokenError::InvalidClaim(name));
            assert_eq!(
                read(&with(name, value.clone())).map(|_| ()),
                expected,
                "{name}={value}"
            );
        }
    }

    #[test]
    fn audience_must_match_a_configured_value_exactly() {
        let good = [
            json!("api://x"),
            json!(["other", "api://x"]),
            json!(["api://x", "other"]),
        ];
        for aud in good {
            assert_eq!(checked(with("aud", aud.clone())), Ok(()), "{aud}");
        }
        let bad = [
            json!([]),
            json!("API://X"),
            json!("api://x/"),
            json!(" api://x"),
            json!("api://x\u{0}"),
            json!("other"),
        ];
        for aud in bad {
            assert_eq!(
                checked(with("aud", aud.clone())),
                Err(TokenError::BadAudience),
                "{aud}"
            );
        }
    }

    #[test]
    fn expiry_honours_the_leeway_on_both_sides() {
        assert_eq!(checked(with("exp", json!(NOW - 59))), Ok(()));
        assert_eq!(
            checked(with("exp", json!(NOW - 60))),
            Err(TokenError::Expired)
        );
        assert_eq!(
            checked(with("exp", json!(NOW - 61))),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn future_nbf_and_iat_beyond_the_leeway_are_refused() {
        assert_eq!(checked(with("nbf", json!(NOW + 59))), Ok(()));
        assert_eq!(checked(with("nbf", json!(NOW + 60))), Ok(()));
        assert_eq!(
            checked(with("nbf", json!(NOW + 61))),
            Err(TokenError::NotYetValid)
        );
        assert_eq!(checked(with("iat", json!(NOW + 59))), Ok(()));
        assert_eq!(
            checked(with("iat", json!(NOW + 3600))),
            Err(TokenError::IssuedInFuture)
        );
    }

    #[test]
    fn fractional_times_round_towards_refusal() {
        let claims = read(&with("exp", json!(NOW as f64 + 0.9))).expect("reads");
        assert_eq!(claims.exp, NOW);
        let claims = read(&with("nbf", json!(NOW as f64 + 0.1))).expect("reads");
        assert_eq!(claims.nbf, Some(NOW + 1));
    }

    #[test]
    fn an_old_iat_is_fine_without_a_lifetime_limit() {
        assert_eq!(checked(with("iat", json!(NOW - 30 * 86_400))), Ok(()));
    }

    #[test]
    fn lifetime_limit_needs_iat_and_bounds_exp_minus_iat() {
        let mut config = config();
        config.max_token_lifetime_seconds = Some(3600);
        let long = read(&with("iat", json!(NOW - 30 * 86_400))).expect("reads");
        assert_eq!(check(&long, &config, NOW), Err(TokenError::LifetimeTooLong));
        let no_iat = read(&without("iat")).expect("reads");
        assert_eq!(
            check(&no_iat, &config, NOW),
            Err(TokenError::MissingClaim("iat"))
        );
        let fine = read(&payload(base())).expect("reads");
        assert_eq!(check(&fine, &config, NOW), Ok(()));
    }
}
