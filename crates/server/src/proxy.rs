//! One request's path: authenticate, classify, decide, forward, audit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use cosmogate_policy::Subject;
use cosmogate_protocol::{Operation, OperationKind, RequestHead};
use cosmogate_upstream::UpstreamBody;
use cosmogate_validator::Principal;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, HeaderValue};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::audit::{self, AuditPrincipal, AuditRecord};
use crate::body::{Finish, ProxyBody, full};
use crate::error::GatewayError;
use crate::gateway::Shared;

const ACTIVITY_ID: &str = "x-ms-activity-id";
const REQUEST_ID: &str = "x-cosmogate-request-id";

/// Serves one request. Never fails: every refusal becomes a Cosmos-shaped response, and every
/// request produces exactly one audit record, written when its response body ends.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    peer: SocketAddr,
    mut request: Request<Incoming>,
) -> Response<ProxyBody> {
    let started = Instant::now();
    let mut record = new_record(peer, &mut request);
    let response = match process(&shared, &mut record, request).await {
        Ok(response) => response,
        Err(err) => refuse(&mut record, err),
    };
    finish(&shared, record, started, response)
}

fn new_record(peer: SocketAddr, request: &mut Request<Incoming>) -> AuditRecord {
    let activity_id = ensure_activity_id(request.headers_mut());
    AuditRecord {
        schema: audit::SCHEMA,
        time: audit::timestamp(SystemTime::now()),
        request_id: uuid::Uuid::new_v4().to_string(),
        activity_id,
        client_address: peer.to_string(),
        principal: None,
        method: audit::capped(request.method().as_str()),
        path: audit::capped(request.uri().path()),
        operation: None,
        actions: Vec::new(),
        database: None,
        container: None,
        item_id: None,
        partition_key: None,
        decision: "deny",
        reason: "unknown",
        roles: Vec::new(),
        status: 0,
        substatus: None,
        request_charge: None,
        completed: false,
        latency_ms: 0.0,
    }
}

/// Keeps the client's activity id when it is a UUID, else sets a fresh one, so the request
/// Cosmos DB logs and the audit record carry the same id.
fn ensure_activity_id(headers: &mut HeaderMap) -> String {
    let given = headers
        .get(ACTIVITY_ID)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| uuid::Uuid::parse_str(text).ok());
    let id = given.unwrap_or_else(uuid::Uuid::new_v4).to_string();
    if let Ok(value) = HeaderValue::from_str(&id) {
        headers.insert(ACTIVITY_ID, value);
    }
    id
}

async fn process(
    shared: &Shared,
    record: &mut AuditRecord,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, GatewayError> {
    let principal = authenticate(shared, request.headers()).await?;
    record.principal = Some(AuditPrincipal {
        iss: audit::capped(&principal.issuer),
        sub: audit::capped(&principal.subject),
        token_fingerprint: principal.token_fingerprint.clone(),
    });

    let (mut parts, body) = request.into_parts();
    // Headers the client named in `Connection` never reach Cosmos DB, so they must not reach
    // the classifier either: policy decides on exactly what is forwarded.
    cosmogate_upstream::strip_hop_by_hop(&mut parts.headers);
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let mut operation = cosmogate_protocol::classify(&RequestHead {
        method: &parts.method,
        path: target,
        headers: &parts.headers,
    })?;
    note_operation(record, &operation);

    let body = if operation.needs_body() {
        let bytes = read_batch_body(body, shared.limits.max_batch_body_bytes).await?;
        cosmogate_protocol::classify_batch_body(&mut operation, &bytes)?;
        note_operation(record, &operation);
        full_upstream(bytes)
    } else {
        body.map_err(Into::into).boxed_unsync()
    };

    authorize(shared, record, &principal, &operation)?;
    forward(shared, record, &operation, Request::from_parts(parts, body)).await
}

async fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<Principal, GatewayError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(GatewayError::Unauthenticated {
            reason: "missing_credential",
            token_presented: false,
        });
    };
    if values.next().is_some() {
        return Err(GatewayError::Unauthenticated {
            reason: "duplicate_authorization",
            token_presented: true,
        });
    }
    let token = cosmogate_protocol::parse_authorization(value.as_bytes())?;
    Ok(shared.validator.validate(&token.token).await?)
}

fn note_operation(record: &mut AuditRecord, operation: &Operation) {
    record.operation = Some(operation.kind.as_str());
    record.actions = operation
        .actions
        .iter()
        .map(|action| action.as_str())
        .collect();
    record.database = operation.database.as_deref().map(audit::capped);
    record.container = operation.container.as_deref().map(audit::capped);
    record.item_id = operation.item_id.as_deref().map(audit::capped);
    record.partition_key = operation
        .partition_key
        .as_ref()
        .map(|key| audit::capped(&key.raw));
}

async fn read_batch_body(body: Incoming, limit: usize) -> Result<Bytes, GatewayError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => Err(GatewayError::TooLarge {
            reason: "batch_body_too_large",
        }),
        Err(_) => Err(GatewayError::BadRequest {
            reason: "request_body_incomplete",
        }),
    }
}

fn full_upstream(bytes: Bytes) -> UpstreamBody {
    http_body_util::Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn authorize(
    shared: &Shared,
    record: &mut AuditRecord,
    principal: &Principal,
    operation: &Operation,
) -> Result<(), GatewayError> {
    let subject = Subject {
        issuer: &principal.issuer,
        claims: &principal.claims,
    };
    let decision = shared.policy.get().decide(&subject, operation);
    record.roles = decision.roles.clone();
    if decision.allowed {
        record.decision = "allow";
        record.reason = "allowed";
        return Ok(());
    }
    let wanted: Vec<&str> = if decision.missing.is_empty() {
        record.actions.clone()
    } else {
        decision
            .missing
            .iter()
            .map(|action| action.as_str())
            .collect()
    };
    Err(GatewayError::Forbidden {
        reason: decision.reason,
        message: format!(
            "Request blocked by cosmogate: principal [{}] may not perform [{}] on [{}]",
            record.principal.as_ref().map_or("", |p| p.sub.as_str()),
            wanted.join(", "),
            scope_of(operation),
        ),
    })
}

fn scope_of(operation: &Operation) -> String {
    match (&operation.database, &operation.container) {
        (Some(database), Some(container)) => format!("/dbs/{database}/colls/{container}"),
        (Some(database), None) => format!("/dbs/{database}"),
        _ => "/".to_owned(),
    }
}

async fn forward(
    shared: &Shared,
    record: &mut AuditRecord,
    operation: &Operation,
    request: Request<UpstreamBody>,
) -> Result<Response<ProxyBody>, GatewayError> {
    let response = shared
        .forwarder
        .forward(request, &operation.resource_type, &operation.resource_link)
        .await?;
    let (mut parts, body) = response.into_parts();
    record.substatus = header_text(&parts.headers, "x-ms-substatus");
    record.request_charge =
        header_text(&parts.headers, "x-ms-request-charge").and_then(|charge| charge.parse().ok());
    if operation.kind == OperationKind::ReadAccount && parts.status == StatusCode::OK {
        let document = rewrite_account(shared, body).await?;
        parts.headers.remove(CONTENT_LENGTH);
        return Ok(Response::from_parts(parts, full(document)));
    }
    Ok(Response::from_parts(
        parts,
        body.map_err(Into::into).boxed_unsync(),
    ))
}

/// Points every endpoint the account advertises back at cosmogate, so SDKs that follow
/// endpoint discovery keep sending their requests through the proxy.
async fn rewrite_account(shared: &Shared, body: Incoming) -> Result<Bytes, GatewayError> {
    let limit = shared.limits.max_account_document_bytes;
    let bytes = Limited::new(body, limit)
        .collect()
        .await
        .map_err(|_| GatewayError::Upstream {
            reason: "account_document_unreadable",
            status: StatusCode::BAD_GATEWAY,
        })?
        .to_bytes();
    let rewritten = cosmogate_protocol::rewrite_account_document(&bytes, &shared.public_url)
        .map_err(|err| GatewayError::Upstream {
            reason: err.reason_code(),
            status: StatusCode::BAD_GATEWAY,
        })?;
    Ok(Bytes::from(rewritten))
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(audit::capped)
}

fn refuse(record: &mut AuditRecord, err: GatewayError) -> Response<ProxyBody> {
    record.reason = err.reason_code();
    match &err {
        GatewayError::Unauthenticated { .. }
        | GatewayError::Forbidden { .. }
        | GatewayError::BadRequest { .. }
        | GatewayError::TooLarge { .. } => {
            record.decision = "deny";
            tracing::info!(
                request.id = %record.request_id,
                reason = record.reason,
                status = err.status().as_u16(),
                "Request denied"
            );
        }
        GatewayError::Unavailable { .. }
        | GatewayError::Upstream { .. }
        | GatewayError::Internal { .. } => {
            tracing::warn!(
                request.id = %record.request_id,
                reason = record.reason,
                status = err.status().as_u16(),
                "Request failed"
            );
        }
    }
    err.into_response(&record.activity_id)
}

fn finish(
    shared: &Shared,
    mut record: AuditRecord,
    started: Instant,
    mut response: Response<ProxyBody>,
) -> Response<ProxyBody> {
    record.status = response.status().as_u16();
    if let Ok(value) = HeaderValue::from_str(&record.request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let sink = shared.audit.clone();
    let (parts, body) = response.into_parts();
    let body = Finish::new(body, move |completed| {
        record.completed = completed;
        // Microsecond precision is plenty, and keeps the record free of float noise.
        record.latency_ms = (started.elapsed().as_secs_f64() * 1e6).round() / 1000.0;
        sink.record(&record);
    });
    Response::from_parts(parts, body.boxed_unsync())
}
