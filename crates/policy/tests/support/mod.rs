//! Helpers shared by the integration tests: real requests, classified by the protocol crate,
//! decided by a policy.

#![allow(dead_code)]

use cosmogate_policy::{Decision, Policy, Subject};
use cosmogate_protocol::{ProtocolError, RequestHead, classify, classify_batch_body};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::{Map, Value};

pub const IDP: &str = "http://127.0.0.1:9400";
pub const OTHER_IDP: &str = "http://127.0.0.1:9500";

pub fn policy(text: &str) -> Policy {
    match Policy::from_toml(text, "test.toml") {
        Ok(policy) => policy,
        Err(error) => panic!("test policy must load: {:#?}", error.problems()),
    }
}

pub fn claims(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("test claims must be an object, got {other}"),
    }
}

/// A request as a test writes it.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub method: Method,
    pub path: &'a str,
    pub headers: Vec<(&'a str, &'a str)>,
    pub body: &'a [u8],
}

pub fn request<'a>(method: Method, path: &'a str) -> Request<'a> {
    Request {
        method,
        path,
        headers: Vec::new(),
        body: b"",
    }
}

impl<'a> Request<'a> {
    pub fn header(mut self, name: &'a str, value: &'a str) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn pk(self, key: &'a str) -> Self {
        self.header("x-ms-documentdb-partitionkey", key)
    }

    pub fn query(self) -> Self {
        self.header("x-ms-documentdb-isquery", "true")
            .header("content-type", "application/query+json")
    }

    pub fn body(mut self, body: &'a [u8]) -> Self {
        self.body = body;
        self
    }
}

/// Classifies `request` (head and, for batch and bulk, body) as the server does, then decides.
pub fn decide_as(
    policy: &Policy,
    issuer: &str,
    token: &Map<String, Value>,
    request: &Request<'_>,
) -> Result<Decision, ProtocolError> {
    let mut map = HeaderMap::new();
    for (name, value) in &request.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("test header names are valid");
        let value = HeaderValue::from_str(value).expect("test header values are valid");
        map.append(name, value);
    }
    let head = RequestHead {
        method: &request.method,
        path: request.path,
        headers: &map,
    };
    let mut operation = classify(&head)?;
    classify_batch_body(&mut operation, request.body)?;
    Ok(policy.decide(
        &Subject {
            issuer,
            claims: token,
        },
        &operation,
    ))
}

pub fn decide(
    policy: &Policy,
    token: Value,
    request: &Request<'_>,
) -> Result<Decision, ProtocolError> {
    decide_as(policy, IDP, &claims(token), request)
}

/// The decision, which must exist (the request classifies).
pub fn decided(policy: &Policy, token: Value, request: &Request<'_>) -> Decision {
    decide(policy, token, request)
        .unwrap_or_else(|e| panic!("{} {} must classify: {e}", request.method, request.path))
}

pub fn allowed(policy: &Policy, token: Value, request: &Request<'_>) -> bool {
    decide(policy, token, request).is_ok_and(|decision| decision.allowed)
}
