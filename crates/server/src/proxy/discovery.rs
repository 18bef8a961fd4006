//! Endpoint discovery: the account document and `content-location` name the upstream
//! account; the client must see cosmogate (per region, when regions are configured) instead.

use bytes::Bytes;
use cosmogate_upstream::UpstreamBody;
use http::header::{CONTENT_LOCATION, HeaderValue};
use http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;

use crate::error::GatewayError;
use crate::gateway::Shared;

/// `content-location` names the upstream account; it must name cosmogate instead.
pub(super) fn rewrite_content_location(shared: &Shared, headers: &mut HeaderMap) {
    let Some(value) = headers.get(CONTENT_LOCATION) else {
        return;
    };
    let rewritten = value
        .to_str()
        .ok()
        .and_then(|text| {
            cosmogate_protocol::rewrite_content_location(
                text,
                &shared.public_url,
                &shared.routes.public_urls(),
            )
        })
        .and_then(|text| HeaderValue::from_str(&text).ok());
    match rewritten {
        Some(value) => headers.insert(CONTENT_LOCATION, value),
        None => headers.remove(CONTENT_LOCATION),
    };
}

/// Points every endpoint the account advertises back at cosmogate, so SDKs that follow
/// endpoint discovery keep sending their requests through the proxy.
pub(super) async fn rewrite_account(
    shared: &Shared,
    mut body: UpstreamBody,
) -> Result<Bytes, GatewayError> {
    let unreadable = GatewayError::Upstream {
        reason: "account_document_unreadable",
        status: StatusCode::BAD_GATEWAY,
    };
    let limit = shared.limits.max_account_document_bytes;
    let mut bytes = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(unreadable);
        };
        if let Some(data) = frame.data_ref() {
            if bytes.len() + data.len() > limit {
                return Err(unreadable);
            }
            bytes.extend_from_slice(data);
        }
    }
    let rewritten = cosmogate_protocol::rewrite_account_document_by_region(
        &bytes,
        &shared.public_url,
        &shared.routes.public_urls(),
    )
    .map_err(|err| GatewayError::Upstream {
        reason: err.reason_code(),
        status: StatusCode::BAD_GATEWAY,
    })?;
    Ok(Bytes::from(rewritten))
}
