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

/// Ready while every issuer's keys may be used. The upstream credential and the policy were
/// obtained before the gateway started listening, and an invalid policy is never swapped in.
async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    let unusable: Vec<String> = shared
        .validator
        .key_status()
        .into_iter()
        .filter(|status| !status.usable)
        .map(|status| status.issuer)
        .collect();
    if unusable.is_empty() {
        return (StatusCode::OK, "ready\n").into_response();
    }
    let body = format!("not ready: no usable keys for {}\n", unusable.join(", "));
    (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
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
