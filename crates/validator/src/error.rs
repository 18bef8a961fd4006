/// Why a token was refused, or why the validator could not start.
///
/// Messages are short, lowercase and constant: they never contain the token, a signature, a key
/// or any other value taken from the token, so they are safe to log. The reason code is stable
/// and meant for audit records and metrics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The token is longer than the configured cap; nothing was parsed.
    #[error("token is {size} bytes, more than the {max} allowed")]
    TooLarge { size: usize, max: usize },

    /// The compact serialization, base64url or JSON is not well formed.
    #[error("malformed token: {0}")]
    Malformed(&'static str),

    /// The header `alg` is unknown, symmetric, `none`, or not allowed for the issuer.
    #[error("token algorithm is not allowed")]
    UnsupportedAlgorithm,

    /// The header carries key material or a key URL (`jwk`, `jku`, `x5u`, `x5c`), a `crit` list,
    /// or a JWE-only member. The field names the member.
    #[error("token header member {0} is not accepted")]
    ForbiddenHeader(&'static str),

    /// The header `typ` is not one the issuer accepts.
    #[error("token type is not accepted")]
    BadTyp,

    /// The `iss` claim names no configured issuer.
    #[error("token issuer is not configured")]
    UnknownIssuer,

    /// The `iss` claim has the form of a configured multi-tenant issuer, for a tenant that is
    /// not in its `tenants` list.
    #[error("token tenant is not allowed")]
    TenantNotAllowed,

    /// No key of the issuer's key set has the token's `kid` (after at most one refetch), or the
    /// token has no `kid` and the set has no single compatible key.
    #[error("no signing key matches the token")]
    UnknownKey,

    /// The key with the token's `kid` declares an `issuer` (as Entra's keys do) that is not the
    /// token's; checked for multi-tenant issuers.
    #[error("signing key belongs to another issuer")]
    KeyIssuerMismatch,

    /// More than one key of the issuer's set fits the token's `kid` and `alg`.
    #[error("several signing keys match the token")]
    AmbiguousKey,

    /// A key with the token's `kid` exists but cannot be used with the token's `alg` (the key
    /// declares another `alg`, or its type or curve does not fit).
    #[error("signing key does not fit the token algorithm")]
    KeyAlgMismatch,

    /// The signature does not verify with the selected key.
    #[error("token signature is invalid")]
    BadSignature,

    /// `exp` is in the past by more than the leeway.
    #[error("token has expired")]
    Expired,

    /// `nbf` is in the future by more than the leeway.
    #[error("token is not valid yet")]
    NotYetValid,

    /// `iat` is in the future by more than the leeway.
    #[error("token was issued in the future")]
    IssuedInFuture,

    /// `aud` has no member equal to a configured audience.
    #[error("token audience is not accepted")]
    BadAudience,

    /// A required claim is absent. The field names the claim.
    #[error("token claim {0} is missing")]
    MissingClaim(&'static str),

    /// A claim has the wrong JSON type or an unusable value. The field names the claim.
    #[error("token claim {0} is invalid")]
    InvalidClaim(&'static str),

    /// `exp - iat` is longer than the issuer's `max_token_lifetime_seconds`.
    #[error("token lifetime is longer than allowed")]
    LifetimeTooLong,

    /// The issuer's keys cannot be had: the discovery document or key set could not be fetched
    /// or holds no usable key, and no recent enough copy is cached.
    #[error("signing keys of issuer {issuer:?} are unavailable")]
    KeysUnavailable {
        issuer: String,
        retry_after_seconds: u64,
    },

    /// The discovery document names another issuer than the configured one.
    #[error("discovery document of issuer {expected:?} names issuer {found:?}")]
    DiscoveryIssuerMismatch { expected: String, found: String },

    /// The configuration is invalid; `problems` holds every problem as `"path.field: message"`.
    #[error("invalid validator configuration: {}", problems.join("; "))]
    InvalidConfig { problems: Vec<String> },

    /// No cryptography provider could be selected for `jsonwebtoken`.
    #[error("no jwt crypto provider is available")]
    NoCryptoProvider,
}

impl TokenError {
    /// A stable short code for audit records and metrics.
    pub fn reason_code(&self) -> &'static str {
        match self {
            TokenError::TooLarge { .. } => "token_too_large",
            TokenError::Malformed(_) => "malformed_token",
            TokenError::UnsupportedAlgorithm => "unsupported_algorithm",
            TokenError::ForbiddenHeader(_) => "forbidden_header",
            TokenError::BadTyp => "bad_typ",
            TokenError::UnknownIssuer => "unknown_issuer",
            TokenError::TenantNotAllowed => "tenant_not_allowed",
            TokenError::UnknownKey => "unknown_key",
            TokenError::KeyIssuerMismatch => "key_issuer_mismatch",
            TokenError::AmbiguousKey => "ambiguous_key",
            TokenError::KeyAlgMismatch => "key_alg_mismatch",
            TokenError::BadSignature => "bad_signature",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::IssuedInFuture => "issued_in_future",
            TokenError::BadAudience => "bad_audience",
            TokenError::MissingClaim(_) => "missing_claim",
            TokenError::InvalidClaim(_) => "invalid_claim",
            TokenError::LifetimeTooLong => "lifetime_too_long",
            TokenError::KeysUnavailable { .. } => "keys_unavailable",
            TokenError::DiscoveryIssuerMismatch { .. } => "discovery_issuer_mismatch",
            TokenError::InvalidConfig { .. } => "invalid_config",
            TokenError::NoCryptoProvider => "no_crypto_provider",
        }
    }

    /// True when the token could not be judged because keys cannot be had. The server answers
    /// 503 with `Retry-After` instead of 401 for these.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, TokenError::KeysUnavailable { .. })
    }

    /// Seconds after which a retry may succeed, for `Retry-After`; `None` unless
    /// [`is_unavailable`](Self::is_unavailable).
    pub fn retry_after_seconds(&self) -> Option<u64> {
        match self {
            TokenError::KeysUnavailable {
                retry_after_seconds,
                ..
            } => Some(*retry_after_seconds),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_key_unavailability_is_reported_as_unavailable() {
        let down = TokenError::KeysUnavailable {
            issuer: "https://a".into(),
            retry_after_seconds: 30,
        };
        assert!(down.is_unavailable());
        assert_eq!(down.retry_after_seconds(), Some(30));
        assert!(!TokenError::BadSignature.is_unavailable());
        assert_eq!(TokenError::Expired.retry_after_seconds(), None);
    }

    #[test]
    fn reason_codes_are_snake_case() {
        let samples = [
            TokenError::TooLarge { size: 2, max: 1 },
            TokenError::ForbiddenHeader("jwk"),
            TokenError::InvalidClaim("exp"),
            TokenError::InvalidConfig { problems: vec![] },
        ];
        for error in samples {
            let code = error.reason_code();
            assert!(
                code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{code}"
            );
        }
    }
}
