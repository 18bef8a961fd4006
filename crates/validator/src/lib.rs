//! OIDC access-token validation for cosmogate.
//!
//! Given a bare compact JWS, the [`Validator`] checks its size, its encoding (strict base64url,
//! JSON without duplicate members), its header (asymmetric `alg` from the issuer's allow-list,
//! accepted `typ`, no `jwk`/`jku`/`x5u`/`x5c`/`crit`), the types of the registered claims, then
//! the signature against the key set of the issuer named by `iss` (discovered, cached,
//! refetched at most once per cooldown for an unknown `kid`), and finally `exp`, `nbf`, `iat`
//! with bounded leeway and `aud`. On success it returns a [`Principal`].
//!
//! It does not extract the token from HTTP headers, map errors to responses, decide what a
//! principal may do, or log above debug level: the server and policy crates do that. Discovery
//! documents are fetched once, at start-up; only key sets are refreshed afterwards.
//!
//! Known limits, by design for now:
//! - `aud` is always required: issuers that put the audience elsewhere (Cognito access tokens
//!   use `client_id`) are not supported, nor is Entra's multi-tenant `{tenantid}` issuer
//!   template; configure each tenant's issuer exactly.
//! - Keys given only as `x5c` certificates (without `n`/`e` or `x`/`y`) are skipped.
//! - Padded base64url (as some load balancers emit) is refused; there is no opt-in yet.
//! - When a cached key set expires, the request that notices it fetches the new set inline
//!   (bounded by a 10 s timeout); concurrent requests keep using the old set meanwhile.
//! - A stale key set is used for at most [`MAX_STALE_SECONDS`] after its lifetime when refreshes
//!   fail; [`Validator::key_status`] reports this so the server can warn.

mod claims;
mod clock;
mod compact;
mod config;
mod error;
mod fetch;
mod header;
mod jwks;
mod keystore;
mod principal;
mod validator;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{DEFAULT_MAX_TOKEN_BYTES, IssuerConfig, MAX_LEEWAY_SECONDS, validate_issuers};
pub use error::TokenError;
pub use keystore::{KeyStatus, MAX_STALE_SECONDS};
pub use principal::{Principal, token_fingerprint};
pub use validator::Validator;
