//! The admin listener: liveness, readiness and metrics, on a port apart from the data port so
//! it can stay off the network apps use.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use crate::gateway::Shared;
use crate::metrics;

/// Warns while an issuer's keys are served stale because its identity provider cannot be
/// reached, and once they are no longer usable; quiet while all is well.
pub(crate) fn spawn_key_watch(shared: Arc<Shared>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
        loop {
            tick.tick().await;
            for status in shared.validator.key_status() {
                if !status.usable {
                    tracing::error!(issuer = %status.issuer, "Issuer keys unusable, its tokens get 503");
                } else if status.serving_stale || status.refresh_failing {
                    tracing::warn!(
                        issuer = %status.issuer,
                        jwks.stale_seconds = status.stale_seconds,
                        "Issuer key refresh failing, serving cached keys"
                    );
                }
            }
        }
    });
}

/// Serves `/healthz`, `/readyz` and `/metrics` until the process ends.
pub(crate) fn spawn(listener: TcpListener, shared: Arc<Shared>) {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(shared);
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!(error = %err, "Admin listener failed");
        }
    });
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready while every issuer's keys may be used and the upstream token has not expired. The
/// policy was loaded before the gateway started listening, and an invalid policy is never
/// swapped in.
async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    match unready(&shared.validator.key_status(), &shared.credential.status()) {
        None => (StatusCode::OK, "ready\n").into_response(),
        Some(reasons) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", reasons.join("; ")),
        )
            .into_response(),
    }
}

/// Why the gateway cannot serve, if it cannot: issuers without usable keys (their tokens get
/// 503), and an upstream token too close to its expiry to be served because every refresh
/// since has failed (every request that would be forwarded fails).
fn unready(
    keys: &[cosmogate_validator::KeyStatus],
    credential: &cosmogate_upstream::CredentialStatus,
) -> Option<Vec<String>> {
    let mut reasons = Vec::new();
    let unusable: Vec<&str> = keys
        .iter()
        .filter(|status| !status.usable)
        .map(|status| status.issuer.as_str())
        .collect();
    if !unusable.is_empty() {
        reasons.push(format!("no usable keys for {}", unusable.join(", ")));
    }
    if let Some(token) = &credential.token
        && !token.usable
    {
        let failures: u64 = token.refresh_failures.iter().map(|(_, n)| n).sum();
        reasons.push(format!(
            "the upstream {} token is expiring or expired and not renewed ({failures} failed \
                 refreshes)",
            credential.kind
        ));
    }
    (!reasons.is_empty()).then_some(reasons)
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let state = metrics::State {
        keys: shared.validator.key_status(),
        tokens: shared.validator.stats(),
        reloads: shared.policy.counts(),
        audit_dropped: shared.audit.dropped(),
        credential: shared.credential.status(),
        export: shared.telemetry.stats(),
    };
    let body = shared.metrics.render(&state);
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use cosmogate_upstream::{CredentialStatus, TokenStatus};
    use cosmogate_validator::KeyStatus;

    use super::unready;

    fn keys(issuer: &str, usable: bool) -> KeyStatus {
        KeyStatus {
            issuer: issuer.to_owned(),
            key_count: usize::from(usable),
            refresh_failing: !usable,
            serving_stale: !usable,
            stale_seconds: 0,
            max_stale_seconds: 3600,
            usable,
            fetches: 1,
            fetch_failures: 0,
            last_error: None,
        }
    }

    fn token(expires_in: u64, failures: u64) -> CredentialStatus {
        CredentialStatus {
            kind: "managed_identity",
            token: Some(TokenStatus {
                age: Duration::from_secs(60),
                expires_in: Duration::from_secs(expires_in),
                usable: expires_in > 60,
                obtained_at: SystemTime::UNIX_EPOCH,
                refresh_attempts: failures,
                refresh_failures: [("config", 0), ("rejected", 0), ("transient", failures)],
            }),
        }
    }

    #[test]
    fn ready_with_usable_keys_and_a_live_token_or_a_master_key() {
        assert_eq!(unready(&[keys("https://a", true)], &token(600, 3)), None);
        let master = CredentialStatus {
            kind: "master_key",
            token: None,
        };
        assert_eq!(unready(&[keys("https://a", true)], &master), None);
    }

    #[test]
    fn an_upstream_token_no_longer_served_makes_the_gateway_unready() {
        for expires_in in [0, 30] {
            let reasons =
                unready(&[keys("https://a", true)], &token(expires_in, 4)).expect("unready");
            assert_eq!(
                reasons,
                [
                    "the upstream managed_identity token is expiring or expired and not renewed \
                  (4 failed refreshes)"
                ]
            );
        }
    }

    #[test]
    fn every_reason_is_given_at_once() {
        let reasons = unready(
            &[
                keys("https://a", false),
                keys("https://b", true),
                keys("https://c", false),
            ],
            &token(0, 1),
        )
        .expect("unready");
        assert_eq!(reasons.len(), 2);
        assert_eq!(reasons[0], "no usable keys for https://a, https://c");
        assert!(reasons[1].starts_with("the upstream managed_identity token is expiring"));
    }
}
