use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use jsonwebtoken::crypto::CryptoProvider;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use url::Url;

use crate::claims::{self, Claims};
use crate::clock::{Clock, SystemClock};
use crate::compact;
use crate::config::{IssuerConfig, KeySource, validate_issuers};
use crate::error::TokenError;
use crate::fetch::{self, Discovery};
use crate::header::{self, JoseHeader, normalize_typ};
use crate::jwks::{self, Miss, VerifyKey};
use crate::keystore::{IssuerKeys, KeyStatus};
use crate::principal::{Principal, token_fingerprint};

/// A `kid` longer than this is refused without a lookup or a refetch.
const MAX_KID_BYTES: usize = 256;

/// Values from the token are cut to this many bytes before they are logged.
const MAX_LOGGED_BYTES: usize = 128;

/// Validates OIDC access tokens against a fixed list of issuers. Cheap to clone.
#[derive(Clone)]
pub struct Validator {
    inner: Arc<Inner>,
}

struct Inner {
    issuers: HashMap<String, Issuer>,
    max_token_bytes: usize,
    clock: Arc<dyn Clock>,
}

struct Issuer {
    config: IssuerConfig,
    /// The `jsonwebtoken` validation for each allowed algorithm, built once.
    validations: Vec<(Algorithm, Validation)>,
    typ: Vec<String>,
    keys: IssuerKeys,
}

impl fmt::Debug for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut issuers: Vec<&str> = self.inner.issuers.keys().map(String::as_str).collect();
        issuers.sort_unstable();
        f.debug_struct("Validator")
            .field("issuers", &issuers)
            .field("max_token_bytes", &self.inner.max_token_bytes)
            .finish_non_exhaustive()
    }
}

impl Validator {
    /// Checks the configuration, then fetches the discovery document (unless `jwks_uri` is
    /// set) and the key set of every issuer. Returns only when every issuer has usable keys,
    /// so a returned validator is ready. Tokens longer than `max_token_bytes` are refused before
    /// parsing ([`DEFAULT_MAX_TOKEN_BYTES`](crate::DEFAULT_MAX_TOKEN_BYTES) is a sensible
    /// value). `http` should not follow redirects; redirected responses are refused anyway.
    pub async fn new(
        issuers: Vec<IssuerConfig>,
        max_token_bytes: usize,
        http: reqwest::Client,
    ) -> Result<Validator, TokenError> {
        Self::with_clock(issuers, max_token_bytes, http, Arc::new(SystemClock)).await
    }

    /// [`new`](Self::new) with another time source, for tests.
    pub async fn with_clock(
        issuers: Vec<IssuerConfig>,
        max_token_bytes: usize,
        http: reqwest::Client,
        clock: Arc<dyn Clock>,
    ) -> Result<Validator, TokenError> {
        let mut problems = validate_issuers(&issuers, "issuers");
        if max_token_bytes == 0 {
            problems.push("max_token_bytes: must be positive".to_owned());
        }
        if !problems.is_empty() {
            return Err(TokenError::InvalidConfig { problems });
        }
        ensure_crypto_provider()?;

        let mut loaded = HashMap::new();
        for config in issuers {
            let jwks_uri = resolve_jwks_uri(&config, &http).await?;
            let keys = IssuerKeys::load(&config, jwks_uri, http.clone(), clock.clone()).await?;
            let validations = config
                .allowed_algorithms()
                .into_iter()
                .map(|a| (a, jwt_validation(&config, a)));
            let issuer = Issuer {
                validations: validations.collect(),
                typ: config.typ.iter().map(|t| normalize_typ(t)).collect(),
                keys,
                config,
            };
            loaded.insert(issuer.config.issuer.clone(), issuer);
        }
        let inner = Inner {
            issuers: loaded,
            max_token_bytes,
            clock,
        };
        Ok(Validator {
            inner: Arc::new(inner),
        })
    }

    /// Validates `token` (the bare compact JWS) and returns who presented it.
    pub async fn validate(&self, token: &str) -> Result<Principal, TokenError> {
        let result = self.check(token).await;
        if let Err(error) = &result {
            let fingerprint = token_fingerprint(token);
            tracing::debug!(reason = error.reason_code(), token.fingerprint = %fingerprint,
                "Token refused");
        }
        result
    }

    async fn check(&self, token: &str) -> Result<Principal, TokenError> {
        let max = self.inner.max_token_bytes;
        if token.len() > max {
            return Err(TokenError::TooLarge {
                size: token.len(),
                max,
            });
        }
        let parts = compact::parse(token)?;
        let header = header::read(&parts.header)?;
        let claims = claims::read(&parts.payload)?;
        let issuer = self.issuer(&claims.iss)?;
        let validation = issuer.validation(header.alg)?;
        issuer.check_typ(header.typ.as_deref())?;

        let key = issuer.key_for(&header).await?;
        verify_signature(token, &key, validation)?;
        claims::check(&claims, &issuer.config, self.inner.clock.now())?;

        let Claims { iss, sub, exp, .. } = claims;
        Ok(Principal {
            issuer: iss,
            subject: sub,
            claims: parts.payload,
            expires_at: exp,
            token_fingerprint: token_fingerprint(token),
            key_id: header.kid,
        })
    }

    /// The state of every issuer's cached key set, sorted by issuer. The server can warn while
    /// `refresh_failing` is set (stale keys are being served) and report unreadiness when an
    /// issuer is no longer `usable`.
    pub fn key_status(&self) -> Vec<KeyStatus> {
        let mut status: Vec<KeyStatus> = self
            .inner
            .issuers
            .values()
            .map(|issuer| issuer.keys.status())
            .collect();
        status.sort_by(|a, b| a.issuer.cmp(&b.issuer));
        status
    }

    fn issuer(&self, iss: &str) -> Result<&Issuer, TokenError> {
        self.inner.issuers.get(iss).ok_or_else(|| {
            tracing::debug!(iss = ?clip(iss), "Token issuer is not configured");
            TokenError::UnknownIssuer
        })
    }
}

impl Issuer {
    /// A token without `typ` passes; one with `typ` must use an accepted value.
    fn check_typ(&self, typ: Option<&str>) -> Result<(), TokenError> {
        match typ {
            Some(typ) if !self.typ.contains(&normalize_typ(typ)) => Err(TokenError::BadTyp),
            _ => Ok(()),
        }
    }

    fn validation(&self, alg: Algorithm) -> Result<&Validation, TokenError> {
        let found = self.validations.iter().find(|(allowed, _)| *allowed == alg);
        found
            .map(|(_, validation)| validation)
            .ok_or(TokenError::UnsupportedAlgorithm)
    }

    /// The key for the token, from this issuer's key set only. An unknown `kid` causes at most
    /// one refetch, and only when the cooldown allows it.
    async fn key_for(&self, header: &JoseHeader) -> Result<VerifyKey, TokenError> {
        let kid = header.kid.as_deref();
        if kid.is_some_and(|kid| kid.len() > MAX_KID_BYTES) {
            return Err(TokenError::UnknownKey);
        }
        let set = self.keys.current().await?;
        match jwks::select(&set.keys, kid, header.alg) {
            Ok(key) => return Ok(key.clone()),
            Err(Miss::UnknownKid) => {}
            Err(miss) => return Err(miss_error(miss)),
        }

        tracing::debug!(issuer = %self.config.issuer, kid = ?kid.map(clip), "Unknown kid");
        let Some(set) = self.keys.refetch_for_unknown_kid(set.generation).await else {
            return Err(TokenError::UnknownKey);
        };
        jwks::select(&set.keys, kid, header.alg)
            .cloned()
            .map_err(miss_error)
    }
}

fn miss_error(miss: Miss) -> TokenError {
    match miss {
        Miss::UnknownKid | Miss::NoKey => TokenError::UnknownKey,
        Miss::Mismatch => TokenError::KeyAlgMismatch,
        Miss::Ambiguous => TokenError::AmbiguousKey,
    }
}

/// The one place a `jsonwebtoken` [`Validation`] is built; its defaults are too loose.
///
/// It allows exactly one algorithm (already checked against the issuer's list), requires
/// `exp`, `iss`, `aud` and `sub`, pins `iss` to the issuer and `aud` to its audiences. The
/// time claims are switched off here on purpose: `jsonwebtoken` reads the system clock, while
/// `exp`, `nbf` and `iat` are checked with the validator's clock and leeway in
/// `claims::check`, after the signature. The claim types were checked before (`claims::read`).
fn jwt_validation(config: &IssuerConfig, alg: Algorithm) -> Validation {
    let mut validation = Validation::new(alg);
    validation.algorithms = vec![alg];
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.set_issuer(&[config.issuer.as_str()]);
    validation.set_audience(&config.audiences);
    validation.validate_aud = true;
    validation.sub = None;
    validation.leeway = config.leeway_seconds;
    validation.reject_tokens_expiring_in_less_than = 0;
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation
}

/// Verifies the signature (and, again, `iss`/`aud` presence and values) with `jsonwebtoken`.
fn verify_signature(
    token: &str,
    key: &VerifyKey,
    validation: &Validation,
) -> Result<(), TokenError> {
    let error = match jsonwebtoken::decode::<serde::de::IgnoredAny>(token, &key.key, validation) {
        Ok(_) => return Ok(()),
        Err(error) => error,
    };
    Err(match error.kind() {
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidKeyFormat
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::Provider(_) => TokenError::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => TokenError::KeyAlgMismatch,
        ErrorKind::InvalidIssuer => TokenError::UnknownIssuer,
        ErrorKind::InvalidAudience => TokenError::BadAudience,
        ErrorKind::MissingRequiredClaim(name) => TokenError::MissingClaim(claim_name(name)),
        ErrorKind::InvalidClaimFormat(name) => TokenError::InvalidClaim(claim_name(name)),
        _ => TokenError::Malformed("token refused by the jwt library"),
    })
}

fn claim_name(name: &str) -> &'static str {
    match name {
        "exp" => "exp",
        "nbf" => "nbf",
        "iss" => "iss",
        "aud" => "aud",
        "sub" => "sub",
        _ => "unknown",
    }
}

async fn resolve_jwks_uri(
    config: &IssuerConfig,
    http: &reqwest::Client,
) -> Result<Url, TokenError> {
    let url = match config.key_source() {
        Some(KeySource::Jwks(url)) => return Ok(url),
        Some(KeySource::Discovery(url)) => url,
        None => {
            return Err(TokenError::InvalidConfig {
                problems: vec![no_source(config)],
            });
        }
    };
    match fetch::discover(http, &url, &config.issuer).await {
        Ok(Discovery::Jwks(jwks_uri)) => Ok(jwks_uri),
        Ok(Discovery::IssuerMismatch(found)) => Err(TokenError::DiscoveryIssuerMismatch {
            expected: config.issuer.clone(),
            found: clip(&found).to_owned(),
        }),
        Err(error) => {
            tracing::debug!(issuer = %config.issuer, %error, "Discovery failed");
            Err(TokenError::KeysUnavailable {
                issuer: config.issuer.clone(),
                retry_after_seconds: config.unknown_kid_cooldown_seconds,
            })
        }
    }
}

fn no_source(config: &IssuerConfig) -> String {
    format!(
        "issuers: {:?} has no usable discovery_url or jwks_uri",
        config.issuer
    )
}

/// Makes sure `jsonwebtoken` has a crypto backend, so it cannot panic at first use when another
/// dependency also enabled its `rust_crypto` feature.
fn ensure_crypto_provider() -> Result<(), TokenError> {
    if CryptoProvider::try_get_default().is_some() {
        return Ok(());
    }
    // Losing a race with another installer is fine: any installed provider will do.
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    CryptoProvider::try_get_default()
        .map(|_| ())
        .ok_or(TokenError::NoCryptoProvider)
}

/// `text` cut to at most [`MAX_LOGGED_BYTES`] on a character boundary.
fn clip(text: &str) -> &str {
    if text.len() <= MAX_LOGGED_BYTES {
        return text;
    }
    let mut end = MAX_LOGGED_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> IssuerConfig {
        serde_json::from_str(r#"{"issuer":"https://idp.test","audiences":["api://x","api://y"]}"#)
            .expect("test config must parse")
    }

    #[test]
    fn the_jwt_validation_requires_the_registered_claims_and_pins_iss_and_aud() {
        let validation = jwt_validation(&config(), Algorithm::PS256);
        assert_eq!(validation.algorithms, [Algorithm::PS256]);
        for claim in ["exp", "iss", "aud", "sub"] {
            assert!(validation.required_spec_claims.contains(claim), "{claim}");
        }
        let iss = validation.iss.as_ref().expect("issuer pinned");
        assert_eq!(iss.len(), 1);
        assert!(iss.contains("https://idp.test"));
        assert_eq!(validation.aud.as_ref().map(|aud| aud.len()), Some(2));
        assert!(validation.validate_aud);
    }

    #[test]
    fn clipping_respects_character_boundaries() {
        let long = "é".repeat(100);
        let clipped = clip(&long);
        assert!(clipped.len() <= MAX_LOGGED_BYTES && clipped.chars().all(|c| c == 'é'));
        assert_eq!(clip("short"), "short");
    }

    #[test]
    fn debug_output_lists_issuers_only() {
        let inner = Inner {
            issuers: HashMap::new(),
            max_token_bytes: 10,
            clock: Arc::new(SystemClock),
        };
        let printed = format!(
            "{:?}",
            Validator {
                inner: Arc::new(inner)
            }
        );
        assert_eq!(
            printed,
            "Validator { issuers: [], max_token_bytes: 10, .. }"
        );
    }
}
