//! cosmogate against two independent, real OpenID providers: oidc-provider 9 (Node) and
//! glewlwyd 2.7 (C, from Debian), with RS256 and ES256 tokens, and a key rotation that
//! oidc-provider performs while requests flow through cosmogate.
//!
//! Every request here reads the `shop/orders` container's metadata through cosmogate, which
//! the Cosmos-compatible server answers with 200 when cosmogate lets it through.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cosmogate_e2e::{
    CONTAINER, DATABASE, DEFAULT_RESOURCE, ExtraIssuer, Glewlwyd, RotationPhase, Stack,
    StackOptions, UpstreamAuth,
};
use serde_json::{Value, json};
use tokio::sync::watch;

const READER: (&str, &str) = ("app-reader", "reader-secret");
const ES256: (&str, &str) = ("app-es256", "es256-secret");

/// Requests per rotation phase (before publish, after publish, after switch, after retire).
const QUOTA: usize = 50;
const PHASES: usize = 4;
/// Concurrent request loops during the rotation.
const WORKERS: usize = 4;

/// Upper bounds for the polling loops: they end as soon as their condition holds.
const POLL: Duration = Duration::from_millis(20);
const MAX_POLLS: usize = 3000;

/// The header of a compact JWS.
fn jwt_header(token: &str) -> Value {
    let part = token.split('.').next().expect("a header part");
    let bytes = URL_SAFE_NO_PAD.decode(part).expect("base64url header");
    serde_json::from_slice(&bytes).expect("a JSON header")
}

fn kid(token: &str) -> String {
    jwt_header(token)["kid"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A token shaped like the IdP's but naming a `kid` no JWKS has, with a dummy signature:
/// cosmogate refuses it, after a refetch of the issuer's keys if the cooldown allows one.
fn unknown_kid_token(issuer: &str, kid: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs();
    let header = json!({"alg": "RS256", "typ": "at+jwt", "kid": kid});
    let payload = json!({
        "iss": issuer, "aud": DEFAULT_RESOURCE, "sub": "probe", "client_id": "probe",
        "iat": now, "exp": now + 300,
    });
    let encode = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
    let signature = URL_SAFE_NO_PAD.encode([0u8; 256]);
    format!("{}.{}.{signature}", encode(&header), encode(&payload))
}

/// `token` with its claims replaced by `claims`, keeping header and signature.
fn with_claims(token: &str, claims: &Value) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
    parts.join(".")
}

fn claims(token: &str) -> Value {
    let part = token.split('.').nth(1).expect("a payload part");
    let bytes = URL_SAFE_NO_PAD.decode(part).expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// Reads the container's metadata through cosmogate with `token`; returns the status.
async fn read_container(stack: &Stack, http: &reqwest::Client, token: &str) -> u16 {
    let url = format!("{}dbs/{DATABASE}/colls/{CONTAINER}", stack.gateway_url);
    let response = http
        .get(url)
        .header("authorization", format!("type=aad&ver=1.0&sig={token}"))
        .header("x-ms-version", "2018-12-31")
        .send()
        .await
        .expect("cosmogate answers");
    response.status().as_u16()
}

/// A policy granting `shop/orders` reads to oidc-provider's `cosmos.reader` role and, when
/// given, to tokens of `glewlwyd` carrying its `cosmos.read` scope.
fn write_policy(dir: &std::path::Path, glewlwyd: Option<&Glewlwyd>) -> std::path::PathBuf {
    let mut policy = format!(
        "version = 1\n\n[[roles]]\nname = \"orders-reader\"\nbuiltin = \"data-reader\"\n\
         scopes = [\"/dbs/{DATABASE}/colls/{CONTAINER}\"]\n\n[[bindings]]\n\
         role = \"orders-reader\"\nclaim = \"roles\"\ncontains = \"cosmos.reader\"\n"
    );
    if let Some(glewlwyd) = glewlwyd {
        policy.push_str(&format!(
            "\n[[bindings]]\nrole = \"orders-reader\"\nissuer = \"{}\"\nclaim = \"scope\"\n\
             contains = \"{}\"\n",
            glewlwyd.issuer, glewlwyd.scope
        ));
    }
    let path = dir.join("providers-policy.toml");
    std::fs::write(&path, policy).expect("policy written");
    path
}

async fn audit_reasons(stack: &Stack) -> Vec<String> {
    let audit = stack.audit().await;
    let reasons = audit
        .iter()
        .map(|r| r["reason"].as_str().unwrap_or("").to_owned());
    reasons.collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_provider_rs256_and_es256_tokens_pass_through_cosmogate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = StackOptions::new(UpstreamAuth::MasterKey);
    options.policy_file = Some(write_policy(dir.path(), None));
    let stack = Stack::start(&options).await.expect("the stack starts");
    let http = stack.https_client().expect("client");

    for ((client, secret), alg) in [(READER, "RS256"), (ES256, "ES256")] {
        let token = stack.idp.token(client, secret).await.expect("a token");
        let header = jwt_header(&token);
        assert_eq!(header["alg"], alg);
        assert_eq!(header["typ"], "at+jwt");
        assert_eq!(read_container(&stack, &http, &token).await, 200, "{alg}");
    }

    let audit = stack.audit().await;
    let subjects: Vec<&str> = audit
        .iter()
        .map(|record| {
            assert_eq!(record["decision"], "allow", "{record}");
            assert_eq!(record["principal"]["iss"], stack.idp.issuer.as_str());
            record["principal"]["sub"].as_str().unwrap_or_default()
        })
        .collect();
    assert_eq!(subjects, [READER.0, ES256.0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glewlwyd_rs256_and_es256_tokens_pass_through_cosmogate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let glewlwyd = Glewlwyd::start(dir.path()).await.expect("glewlwyd starts");
    assert!(
        glewlwyd.issuer.ends_with("/api/oidc"),
        "{}",
        glewlwyd.issuer
    );
    let mut options = StackOptions::new(UpstreamAuth::MasterKey);
    options.policy_file = Some(write_policy(dir.path(), Some(&glewlwyd)));
    // Without resource indicators glewlwyd's `aud` is the granted scope list.
    options.extra_issuers.push(ExtraIssuer {
        issuer: glewlwyd.issuer.clone(),
        audiences: vec![glewlwyd.scope.clone()],
    });
    let stack = Stack::start(&options).await.expect("the stack starts");
    let http = stack.https_client().expect("client");

    let mut subjects = Vec::new();
    for alg in ["RS256", "ES256"] {
        let client = glewlwyd.client(alg).expect("a client per algorithm");
        let token = glewlwyd.token_for_alg(alg).await.expect("a glewlwyd token");
        let header = jwt_header(&token);
        assert_eq!(header["alg"], alg, "{header}");
        assert_eq!(header["kid"], client.kid.as_str());
        let claims = claims(&token);
        assert_eq!(claims["iss"], glewlwyd.issuer.as_str());
        assert_eq!(claims["aud"], glewlwyd.scope.as_str());
        assert_eq!(read_container(&stack, &http, &token).await, 200, "{alg}");
        subjects.push(client.client_id.clone());
    }

    let audit = stack.audit().await;
    assert_eq!(audit.len(), 2, "{audit:#?}");
    for (record, subject) in audit.iter().zip(&subjects) {
        assert_eq!(record["decision"], "allow", "{record}");
        assert_eq!(record["principal"]["iss"], glewlwyd.issuer.as_str());
        assert_eq!(record["principal"]["sub"], subject.as_str());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_glewlwyd_token_relabelled_as_the_other_issuer_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let glewlwyd = Glewlwyd::start(dir.path()).await.expect("glewlwyd starts");
    let mut options = StackOptions::new(UpstreamAuth::MasterKey);
    options.policy_file = Some(write_policy(dir.path(), Some(&glewlwyd)));
    options.extra_issuers.push(ExtraIssuer {
        issuer: glewlwyd.issuer.clone(),
        audiences: vec![glewlwyd.scope.clone()],
    });
    let stack = Stack::start(&options).await.expect("the stack starts");
    let http = stack.https_client().expect("client");

    // A genuine glewlwyd signature, over claims that now name oidc-provider as the issuer:
    // only oidc-provider's keys may verify it, and none of them made it.
    let token = glewlwyd.token_for_alg("RS256").await.expect("a token");
    let mut relabelled = claims(&token);
    relabelled["iss"] = json!(stack.idp.issuer);
    relabelled["aud"] = json!(DEFAULT_RESOURCE);
    relabelled["roles"] = json!(["cosmos.reader"]);
    let forged = with_claims(&token, &relabelled);
    assert_eq!(read_container(&stack, &http, &forged).await, 401);
    assert_eq!(read_container(&stack, &http, &token).await, 200);

    let reasons = audit_reasons(&stack).await;
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        ["unknown_key", "bad_signature"].contains(&reasons[0].as_str()),
        "{reasons:?}"
    );
    assert!(
        stack.cosmos.requests().len() == 1,
        "only the genuine token got through"
    );
}

/// The reasons of the audited refusals so far.
async fn refusal_reasons(stack: &Stack) -> Vec<String> {
    let reasons = audit_reasons(stack).await;
    reasons.into_iter().filter(|r| r != "allowed").collect()
}

/// Waits until `counter` reaches `target`; panics after [`MAX_POLLS`] polls.
async fn wait_for_count(counter: &AtomicUsize, target: usize) {
    for _ in 0..MAX_POLLS {
        if counter.load(Ordering::SeqCst) >= target {
            return;
        }
        tokio::time::sleep(POLL).await;
    }
    panic!("the request loops never reached {target} requests");
}

/// One request of the rotation run.
#[derive(Debug)]
struct Outcome {
    phase: usize,
    kid: String,
    status: u16,
}

/// Runs requests until `issued` reaches the total; request `n` waits for phase `n / QUOTA`.
async fn request_loop(
    stack: Arc<Stack>,
    http: reqwest::Client,
    issued: Arc<AtomicUsize>,
    mut phase: watch::Receiver<usize>,
) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    loop {
        let n = issued.fetch_add(1, Ordering::SeqCst);
        if n >= QUOTA * PHASES {
            return outcomes;
        }
        let wanted = n / QUOTA;
        phase
            .wait_for(|reached| *reached >= wanted)
            .await
            .expect("the rotation driver lives");
        let (client, secret) = if n.is_multiple_of(2) { READER } else { ES256 };
        let token = stack
            .idp
            .token(client, secret)
            .await
            .expect("a fresh token");
        let status = read_container(&stack, &http, &token).await;
        outcomes.push(Outcome {
            phase: wanted,
            kid: kid(&token),
            status,
        });
    }
}

/// Sends tokens with unknown `kid`s until cosmogate has fetched the IdP's JWKS more than
/// `fetched` times, that is until its unknown-kid cooldown allowed a refetch.
async fn force_refetch(stack: &Stack, http: &reqwest::Client, fetched: u64) {
    for attempt in 0..MAX_POLLS {
        let probe = unknown_kid_token(&stack.idp.issuer, &format!("probe-{attempt}"));
        assert_eq!(read_container(stack, http, &probe).await, 401);
        if stack.idp.stats().await.expect("idp stats").jwks > fetched {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("cosmogate never refetched the key set");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_provider_key_rotation_under_traffic_fails_no_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = StackOptions::new(UpstreamAuth::MasterKey);
    options.policy_file = Some(write_policy(dir.path(), None));
    // No TTL refresh during the test: every JWKS fetch is one an unknown kid caused.
    options.jwks_cache_seconds = Some(3600);
    options.unknown_kid_cooldown_seconds = Some(5);
    let stack = Arc::new(Stack::start(&options).await.expect("the stack starts"));
    let http = stack.https_client().expect("client");

    let old_rs = stack.idp.token(READER.0, READER.1).await.expect("token");
    let old_es = stack.idp.token(ES256.0, ES256.1).await.expect("token");
    for token in [&old_rs, &old_es] {
        assert_eq!(read_container(&stack, &http, token).await, 200);
    }
    let before = stack.idp.stats().await.expect("idp stats").jwks;

    let issued = Arc::new(AtomicUsize::new(0));
    let (phase_tx, phase_rx) = watch::channel(0usize);
    let loops: Vec<_> = (0..WORKERS)
        .map(|_| {
            let run = request_loop(
                stack.clone(),
                http.clone(),
                issued.clone(),
                phase_rx.clone(),
            );
            tokio::spawn(run)
        })
        .collect();
    let steps = [
        RotationPhase::Publish,
        RotationPhase::Switch,
        RotationPhase::Retire,
    ];
    let mut rings = Vec::new();
    for (index, step) in steps.into_iter().enumerate() {
        wait_for_count(&issued, QUOTA * (index + 1)).await;
        rings.push(stack.idp.rotate(step).await.expect("the idp rotates"));
        phase_tx.send(index + 1).expect("the loops listen");
    }
    let mut outcomes = Vec::new();
    for handle in loops {
        outcomes.extend(handle.await.expect("a request loop"));
    }

    assert_eq!(rings[0].jwks, ["rsa-1", "ec-1", "rsa-2", "ec-2"]);
    assert_eq!(rings[0].signing, ["rsa-1", "ec-1"]);
    assert_eq!(rings[1].jwks, ["rsa-2", "ec-2", "rsa-1", "ec-1"]);
    assert_eq!(rings[1].signing, ["rsa-2", "ec-2"]);
    assert_eq!(rings[2].jwks, ["rsa-2", "ec-2"]);

    assert_eq!(outcomes.len(), QUOTA * PHASES);
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.status != 200).collect();
    if !failed.is_empty() {
        let refusals = refusal_reasons(&stack).await;
        panic!("requests failed during rotation: {failed:?}; audit reasons {refusals:?}");
    }
    for outcome in outcomes.iter().filter(|o| o.phase >= 2) {
        assert!(
            outcome.kid.ends_with("-2"),
            "signed after switch: {outcome:?}"
        );
    }
    for kid in ["rsa-1", "ec-1", "rsa-2", "ec-2"] {
        assert!(
            outcomes.iter().any(|o| o.kid == kid),
            "no request used {kid}"
        );
    }
    // The first token with a new kid made cosmogate refetch once; the others waited for that
    // fetch or found the new keys already there.
    let during = stack.idp.stats().await.expect("idp stats").jwks;
    assert_eq!(during - before, 1, "JWKS fetches during the rotation");

    // Until cosmogate fetches the key set again, it still holds the retired keys.
    for token in [&old_rs, &old_es] {
        assert_eq!(read_container(&stack, &http, token).await, 200);
    }
    force_refetch(&stack, &http, during).await;
    for token in [&old_rs, &old_es] {
        assert_eq!(read_container(&stack, &http, token).await, 401);
    }
    let fresh = stack.idp.token(READER.0, READER.1).await.expect("token");
    assert_eq!(read_container(&stack, &http, &fresh).await, 200);

    let reasons = audit_reasons(&stack).await;
    let tail: Vec<&str> = reasons.iter().rev().take(3).map(String::as_str).collect();
    assert_eq!(
        tail,
        ["allowed", "unknown_key", "unknown_key"],
        "{reasons:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_new_and_unknown_kids_costs_the_idp_one_jwks_fetch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = StackOptions::new(UpstreamAuth::MasterKey);
    options.policy_file = Some(write_policy(dir.path(), None));
    options.jwks_cache_seconds = Some(3600);
    options.unknown_kid_cooldown_seconds = Some(3600);
    let stack = Arc::new(Stack::start(&options).await.expect("the stack starts"));
    let http = stack.https_client().expect("client");

    stack
        .idp
        .rotate(RotationPhase::Publish)
        .await
        .expect("publish");
    stack
        .idp
        .rotate(RotationPhase::Switch)
        .await
        .expect("switch");
    let mut tokens = Vec::new();
    for n in 0..16usize {
        let (client, secret) = if n.is_multiple_of(2) { READER } else { ES256 };
        tokens.push(stack.idp.token(client, secret).await.expect("a token"));
    }
    let probes = (0..32).map(|n| unknown_kid_token(&stack.idp.issuer, &format!("random-{n}")));
    let before = stack.idp.stats().await.expect("idp stats").jwks;

    let send_all = |tokens: Vec<String>| {
        let handles: Vec<_> = tokens
            .into_iter()
            .map(|token| {
                let (stack, http) = (stack.clone(), http.clone());
                tokio::spawn(async move { read_container(&stack, &http, &token).await })
            })
            .collect();
        async move {
            let mut statuses = Vec::new();
            for handle in handles {
                statuses.push(handle.await.expect("a request task"));
            }
            statuses
        }
    };
    let statuses = send_all(tokens).await;
    if statuses.iter().any(|s| *s != 200) {
        let refusals = refusal_reasons(&stack).await;
        panic!("statuses {statuses:?}; audit reasons {refusals:?}");
    }
    let after_new = stack.idp.stats().await.expect("idp stats").jwks;
    assert_eq!(after_new - before, 1, "16 tokens with new kids, one fetch");

    let statuses = send_all(probes.collect()).await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    let after_probes = stack.idp.stats().await.expect("idp stats").jwks;
    assert_eq!(
        after_probes, after_new,
        "unknown kids within the cooldown fetch nothing"
    );

    let reasons = audit_reasons(&stack).await;
    let unknown = reasons.iter().filter(|r| *r == "unknown_key").count();
    assert_eq!(unknown, 32, "{reasons:?}");
}
