//! OIDC access-token validation for cosmogate.
//!
//! Given a bare compact JWS, the [`Validator`] checks its size, its encoding (strict base64url,
//! JSON without duplicate members), its header (asymmetric `alg` from the issuer's allow-list,
//! accepted `typ`, no `jwk`/`jku`/`x5u`/`x5c`/`crit`), the types of the registered claims, then
//! the signature against the key set of the issuer named by `iss`, and finally `exp`, `nbf`,
//! `iat` with bounded leeway and `aud`. On success it returns a shared [`Principal`] (the same
//! one for every request with a cached token), whose
//! [`normalized_claims`](Principal::normalized_claims), worked out once, give the policy one
//! shape for `scp`, `scope`, `roles` and `groups` whatever the provider.
//!
//! Issuers are compared byte for byte. An Entra ID multi-tenant issuer
//! (`https://login.microsoftonline.com/{tenantid}/v2.0`) accepts the tenants of its allow-list
//! only, each checked against the token's `tid`.
//!
//! Key sets are fetched at start-up (a validator exists only once every issuer has keys),
//! refreshed by a background task before they expire so that no request waits on the IdP, and
//! refetched at most once per cooldown for an unknown `kid`. When the IdP is down, the last
//! good set serves for up to `max_stale_seconds`; [`Validator::key_status`] tells the server
//! when to warn, and after that window tokens fail with `keys_unavailable` (503). A token that
//! passed is remembered, under its SHA-256, until its `exp` or until its key leaves the set, so
//! a repeated token costs a hash and a lookup instead of a signature check.
//!
//! It does not extract the token from HTTP headers, map errors to responses, decide what a
//! principal may do, or log above debug level: the server and policy crates do that. Discovery
//! documents are fetched once, at start-up; only key sets are refreshed afterwards.
//!
//! Known limits, by design for now:
//! - `aud` is always required: issuers that put the audience elsewhere (Cognito access tokens
//!   use `client_id`) are not supported.
//! - A multi-tenant issuer needs its tenants listed; "any tenant" is not offered. Per-key
//!   `issuer` members are honoured only for multi-tenant issuers.
//! - Keys given only as `x5c` certificates (without `n`/`e` or `x`/`y`) are skipped.
//! - Padded base64url (as some load balancers emit) is refused; there is no opt-in yet.
//! - A cached token is not re-checked against configuration: the configuration is fixed for the
//!   life of a validator, so build a new one to change it.

mod cache;
mod claims;
mod clock;
mod compact;
mod config;
mod error;
mod fetch;
#[doc(hidden)]
pub mod fuzzing;
mod header;
mod issuer;
mod jwks;
mod keystore;
mod normalize;
mod options;
mod principal;
mod signature;
mod stats;
mod tenant;
mod validator;

pub use cache::DEFAULT_TOKEN_CACHE_ENTRIES;
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    ClaimType, DEFAULT_MAX_TOKEN_BYTES, IssuerConfig, MAX_LEEWAY_SECONDS, MAX_STALE_LIMIT_SECONDS,
    TENANT_PLACEHOLDER, validate_issuers,
};
pub use error::TokenError;
pub use keystore::{KeyStatus, MAX_STALE_SECONDS};
pub use options::ValidatorOptions;
pub use principal::{Principal, token_fingerprint};
pub use stats::ValidatorStats;
pub use validator::Validator;
