//! One request's path: authenticate, classify, decide, forward, audit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Instant, SystemTime};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use cosmogate_policy::{HeldRoles, Policy, Subject};
use cosmogate_protocol::{Operation, OperationKind, RequestHead};
use cosmogate_upstream::{IdleTimeout, UpstreamBody};
use cosmogate_validator::Principal;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, USER_AGENT};
use http::{HeaderMap, HeaderName, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::audit::{self, AuditRecord, PrincipalView};
use crate::body::{Counted, ProxyBody, full};
use crate::error::GatewayError;
use crate::gateway::Shared;
use crate::otel::RequestSpan;
use crate::trace::TraceContext;

mod discovery;
mod head;
mod pending;
mod unread;

use discovery::{rewrite_account, rewrite_content_location};
use head::{check_headers, drop_own_headers, ensure_activity_id, forwarded_for, header_text};
use pending::Pending;
use unread::RequestBody;

// Header names parsed once: a lookup by `&str` parses and checks the name on every call.
static ACTIVITY_ID: HeaderName = HeaderName::from_static("x-ms-activity-id");
static REQUEST_ID: HeaderName = HeaderName::from_static("x-cosmogate-request-id");
static SUBSTATUS: HeaderName = HeaderName::from_static("x-ms-substatus");
static REQUEST_CHARGE: HeaderName = HeaderName::from_static("x-ms-request-charge");

/// Serves one request. Never fails: every refusal becomes a Cosmos-shaped response, and every
/// request produces exactly one audit record: when its response body ends, or, if the client
/// goes away before the response is ready, when the request is abandoned.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    peer: Peer,
    mut request: Request<Incoming>,
) -> Response<ProxyBody> {
    let started = Instant::now();
    // Headers the client named in `Connection` never reach Cosmos DB, so neither the audit
    // record nor any decision may be based on them.
    cosmogate_upstream::strip_hop_by_hop(request.headers_mut());
    drop_own_headers(request.headers_mut());
    let (trace, span) = shared.telemetry.start(request.headers());
    let record = new_record(&shared, &peer, &trace, &mut request);
    let bytes_in = Arc::new(AtomicU64::new(0));
    let exchange = Exchange {
        trace,
        bytes_in: Arc::clone(&bytes_in),
        span: span.clone(),
    };
    let mut pending = Pending::new(&shared, record, started, bytes_in, span);
    let record = pending.record();
    let (parts, body) = request.into_parts();
    let mut body = RequestBody::new(body, parts.version, &parts.headers);
    let response = match process(&shared, record, &exchange, parts, &mut body).await {
        Ok(response) => response,
        Err(err) => {
            let mut response = refuse(record, err);
            body.settle(&mut response, &exchange.bytes_in).await;
            response
        }
    };
    pending.finish(response)
}

/// The client end of a connection, with its address formatted once for the audit records of
/// every request on it.
#[derive(Clone)]
pub(crate) struct Peer {
    pub(crate) addr: SocketAddr,
    pub(crate) text: Arc<str>,
}

impl Peer {
    pub(crate) fn new(addr: SocketAddr) -> Peer {
        Peer {
            addr,
            text: addr.to_string().into(),
        }
    }
}

/// What the steps of one request share besides its audit record.
struct Exchange {
    trace: TraceContext,
    /// Request body bytes read so far, counted as they stream upstream.
    bytes_in: Arc<AtomicU64>,
    /// The exported span, ended with the audit record.
    span: RequestSpan,
}

fn new_record(
    shared: &Shared,
    peer: &Peer,
    trace: &TraceContext,
    request: &mut Request<Incoming>,
) -> AuditRecord {
    let activity_id = ensure_activity_id(request.headers_mut());
    let headers = request.headers();
    AuditRecord {
        schema: audit::SCHEMA,
        time: audit::timestamp(SystemTime::now()),
        request_id: head::uuid_text(uuid::Uuid::new_v4()),
        trace_id: trace.trace_id_hex(),
        activity_id,
        client_address: Arc::clone(&peer.text),
        forwarded_for: forwarded_for(shared, peer.addr, headers),
        user_agent: header_text(headers, &USER_AGENT),
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
        rule: None,
        policy_version: None,
        roles: Vec::new(),
        shadow: Vec::new(),
        status: 0,
        substatus: None,
        request_charge: None,
        bytes_in: 0,
        bytes_out: 0,
        upstream_status: None,
        upstream_latency_ms: None,
        upstream_region: None,
        completed: false,
        latency_ms: 0.0,
    }
}

async fn process(
    shared: &Shared,
    record: &mut AuditRecord,
    exchange: &Exchange,
    mut parts: http::request::Parts,
    request_body: &mut RequestBody,
) -> Result<Response<ProxyBody>, GatewayError> {
    check_headers(&parts.headers, &shared.limits)?;
    let principal = authenticate(shared, &parts.headers).await?;
    let known = principal.derived(Known::of);
    record.principal = Some(Arc::clone(&known.view));

    exchange.trace.propagate(&mut parts.headers);
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let mut operation = cosmogate_protocol::classify(&RequestHead {
        method: &parts.method,
        path: target,
        headers: &parts.headers,
    })?;
    note_operation(shared, record, &operation);
    exchange.span.note_operation(&operation);

    let batch = if operation.needs_body() {
        let counted = Counted::new(request_body.take()?, Arc::clone(&exchange.bytes_in));
        let bytes = read_batch_body(counted, shared.limits.max_batch_body_bytes).await?;
        request_body.finished();
        cosmogate_protocol::classify_batch_body(&mut operation, &bytes)?;
        note_operation(shared, record, &operation);
        Some(bytes)
    } else {
        None
    };

    authorize(shared, record, &principal, &known, &operation)?;
    cosmogate_protocol::canonicalize_intent(&operation, &mut parts.headers);
    // The body is taken only now, so that a refusal still finds it unread and can drain it.
    let body = match batch {
        Some(bytes) => full_upstream(bytes),
        None => Counted::new(request_body.take()?, Arc::clone(&exchange.bytes_in))
            .map_err(Into::into)
            .boxed_unsync(),
    };
    forward(shared, record, &operation, Request::from_parts(parts, body)).await
}

async fn authenticate(
    shared: &Shared,
    headers: &HeaderMap,
) -> Result<Arc<Principal>, GatewayError> {
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

fn note_operation(shared: &Shared, record: &mut AuditRecord, operation: &Operation) {
    let identifier = |value: &str| {
        if shared.hash_identifiers {
            audit::hashed(value)
        } else {
            audit::capped(value)
        }
    };
    record.operation = Some(operation.kind.as_str());
    record.actions = operation
        .actions
        .iter()
        .map(|action| action.as_str())
        .collect();
    record.database = operation.database.as_deref().map(audit::capped_shared);
    record.container = operation.container.as_deref().map(audit::capped_shared);
    record.item_id = operation.item_id.as_deref().map(identifier);
    record.partition_key = operation
        .partition_key
        .as_ref()
        .map(|key| identifier(&key.raw));
}

async fn read_batch_body(body: Counted<Incoming>, limit: usize) -> Result<Bytes, GatewayError> {
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

/// What the gateway keeps with a verified token's principal ([`Principal::derived`]), shared by
/// every request that presents the token: its audit view, and the roles it holds under the
/// policy that last decided for it.
struct Known {
    view: Arc<PrincipalView>,
    held: ArcSwapOption<HeldRoles>,
}

impl Known {
    fn of(principal: &Principal) -> Known {
        Known {
            view: Arc::new(PrincipalView::of(principal)),
            held: ArcSwapOption::empty(),
        }
    }

    /// The roles held under `policy`: the kept ones when they were worked out under it, else
    /// worked out now and kept (after a reload, the first request works them out again).
    fn held(&self, policy: &Policy, subject: &Subject<'_>) -> Arc<HeldRoles> {
        if let Some(held) = self.held.load().as_ref()
            && held.is_for(policy)
        {
            return Arc::clone(held);
        }
        let held = Arc::new(policy.held(subject));
        self.held.store(Some(Arc::clone(&held)));
        held
    }
}

fn authorize(
    shared: &Shared,
    record: &mut AuditRecord,
    principal: &Principal,
    known: &Known,
    operation: &Operation,
) -> Result<(), GatewayError> {
    // Claims providers shape differently (`scp` as a string or an array, nested role lists)
    // reach the policy in one shape.
    let subject = Subject {
        issuer: &principal.issuer,
        claims: principal.normalized_claims(),
    };
    let live = shared.policy.get();
    let held = known.held(&live.policy, &subject);
    let mut decision = live.policy.decide_holding(&subject, operation, &held);
    record.policy_version = Some(Arc::clone(&live.version));
    // The decision is this request's own: its strings move into the record.
    record.roles = std::mem::take(&mut decision.roles);
    record.rule = decision.rule.take().map(audit::capped_owned);
    record.shadow = decision
        .shadow
        .drain(..)
        .map(|hit| audit::ShadowRecord {
            rule: audit::capped_owned(hit.rule),
            reason: hit.reason.to_owned(),
        })
        .collect();
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
    let route = shared.routes.pick(request.uri(), request.headers());
    record.upstream_region = route.region.map(audit::capped);
    let sent = Instant::now();
    let response = route
        .forwarder
        .forward(request, &operation.resource_type, &operation.resource_link)
        .await?;
    record.upstream_latency_ms = Some(audit::millis(sent.elapsed()));
    record.upstream_status = Some(response.status().as_u16());
    record.substatus = header_text(response.headers(), &SUBSTATUS);
    // A 401 or 403 caused by cosmogate's own credential is cosmogate's fault, not the app's:
    // it becomes a 502 with the reason in the audit record.
    // Once the headers are in, a body that stops arriving is cut off rather than waited on.
    // Only a 401 or 403 is screened (its body read and replayed); any other response's body
    // is wrapped once, as it came.
    let limit = route.forwarder.body_timeout();
    let (mut parts, body) = if cosmogate_upstream::needs_screening(response.status()) {
        let (parts, body) = screen(response).await?.into_parts();
        (parts, IdleTimeout::new(body, limit).boxed_unsync())
    } else {
        let (parts, body) = response.into_parts();
        (parts, IdleTimeout::new(body, limit).boxed_unsync())
    };
    record.request_charge =
        header_text(&parts.headers, &REQUEST_CHARGE).and_then(|charge| charge.parse().ok());
    rewrite_content_location(shared, &mut parts.headers);
    if operation.kind == OperationKind::ReadAccount && parts.status == StatusCode::OK {
        let document = rewrite_account(shared, body).await?;
        parts.headers.remove(CONTENT_LENGTH);
        return Ok(Response::from_parts(parts, full(document)));
    }
    Ok(Response::from_parts(parts, body))
}

type Screened = Result<Response<UpstreamBody>, cosmogate_upstream::UpstreamError>;

/// Boxed so the future's `Send` bound is proven here, for a concrete body type: proving it
/// through the generic function inside the request future trips a rustc limitation.
fn screen(
    response: Response<cosmogate_upstream::ResponseBody>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Screened> + Send>> {
    Box::pin(cosmogate_upstream::screen_upstream_denial(response))
}

fn refuse(record: &mut AuditRecord, err: GatewayError) -> Response<ProxyBody> {
    record.reason = err.reason_code();
    match &err {
        GatewayError::Unauthenticated { .. }
        | GatewayError::Forbidden { .. }
        | GatewayError::BadRequest { .. }
        | GatewayError::TooLarge { .. }
        | GatewayError::HeadersTooLarge { .. } => {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditPrincipal;

    /// A reader role and its binding, after `roles_before` other roles: with one before it,
    /// the same principal's role sits at another position, and a role index kept from the
    /// policy without it would name the other role.
    fn policy(roles_before: &str) -> Policy {
        let text = format!(
            "version = 1\n{roles_before}\n[[roles]]\nname = \"reader\"\nbuiltin = \"data-reader\"\n\
             scopes = [\"/\"]\n[[bindings]]\nrole = \"reader\"\nclaim = \"roles\"\ncontains = \"r\"\n"
        );
        Policy::from_toml(&text, "test").expect("valid")
    }

    const WRITER: &str =
        "[[roles]]\nname = \"writer\"\nbuiltin = \"data-contributor\"\nscopes = [\"/\"]";

    fn known() -> Known {
        Known {
            view: Arc::new(PrincipalView::new(AuditPrincipal {
                iss: "https://idp.test".to_owned(),
                sub: "app".to_owned(),
                oid: None,
                tid: None,
                client_id: None,
                token_fingerprint: "00".to_owned(),
            })),
            held: ArcSwapOption::empty(),
        }
    }

    fn read_item() -> Operation {
        cosmogate_protocol::classify(&RequestHead {
            method: &http::Method::GET,
            path: "/dbs/shop/colls/orders/docs/a",
            headers: &HeaderMap::new(),
        })
        .expect("a read")
    }

    #[test]
    fn held_roles_are_kept_per_policy_and_worked_out_again_after_a_reload() {
        let claims = serde_json::json!({"roles": ["r"]});
        let claims = claims.as_object().expect("object");
        let subject = Subject {
            issuer: "https://idp.test",
            claims,
        };
        let known = known();
        let first = policy("");
        let held = known.held(&first, &subject);
        assert!(
            Arc::ptr_eq(&held, &known.held(&first, &subject)),
            "kept for the next request"
        );

        let second = policy(WRITER);
        let again = known.held(&second, &subject);
        assert!(again.is_for(&second) && !again.is_for(&first));
        let write = cosmogate_protocol::classify(&RequestHead {
            method: &http::Method::DELETE,
            path: "/dbs/shop/colls/orders/docs/a",
            headers: &HeaderMap::new(),
        })
        .expect("a delete");
        let decision = second.decide_holding(&subject, &write, &again);
        assert!(!decision.allowed, "still only a reader: {decision:?}");
        let decision = second.decide_holding(&subject, &read_item(), &again);
        assert_eq!(decision.roles, ["reader"]);
    }
}
