//! The policy file format beyond roles and bindings by exact name: patterns, combined
//! conditions, partition-key binding, deny rules and audit-only modes, and how every problem
//! in them is reported.

mod support;

use cosmogate_policy::Policy;

fn problems(text: &str) -> Vec<String> {
    match Policy::from_toml(text, "p.toml") {
        Ok(policy) => panic!("expected problems, got {policy:?}"),
        Err(error) => {
            assert_eq!(error.reason_code(), "policy_invalid");
            error.problems().to_vec()
        }
    }
}

const FULL: &str = r#"
version = 1

[[roles]]
name = "tenant-rw"
builtin = "data-contributor"
scopes = ["/dbs/saas/colls/orders", "/dbs/tenant-*/colls/orders"]
partition_key = ["{claims.tenant}", "{claims.user}"]
partition_key_mode = "enforce"

[[roles]]
name = "analytics"
builtin = "data-reader"
scopes = ["/dbs/*/colls/events-*"]

[[bindings]]
role = "tenant-rw"
issuer = "http://127.0.0.1:9400"
all = [
  { claim = "roles", contains = "tenant.rw" },
  { claim = "tenant", glob = "t-*" },
]

[[bindings]]
role = "analytics"
any = [
  { issuer = "http://127.0.0.1:9400", claim = "groups", prefix = "analytics-" },
  { claim = "realm_access.roles", one_of = ["bi", "reporting"] },
  { all = [{ claim = "azp", equals = "dashboards" }, { claim = "scp", contains = "read" }] },
]

[[deny]]
name = "no-deletes-in-prod"
actions = ["items/delete"]
scopes = ["/dbs/saas"]
unless = { claim = "roles", contains = "break-glass" }

[[deny]]
name = "partner-idp-reads-nothing"
actions = ["readMetadata", "containers/*"]
scopes = ["/"]
issuer = "http://127.0.0.1:9500"
mode = "audit"
"#;

#[test]
fn a_policy_using_every_feature_loads() {
    let policy = support::policy(FULL);
    assert_eq!(policy.role_count(), 2);
    assert_eq!(policy.binding_count(), 2);
    assert_eq!(policy.deny_count(), 2);
}

#[test]
fn the_fingerprint_is_a_short_hash_of_the_text() {
    let a = support::policy(FULL);
    let b = support::policy(FULL);
    let c = support::policy(&format!("{FULL}\n# a comment changes the fingerprint\n"));
    assert_eq!(a.fingerprint().len(), 16);
    assert!(a.fingerprint().chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert_ne!(a.fingerprint(), c.fingerprint());
    assert_eq!(Policy::deny_all().fingerprint(), "deny-all");
}

#[test]
fn issuers_named_anywhere_are_listed_with_their_path() {
    let policy = support::policy(FULL);
    let issuers = policy.issuers();
    assert_eq!(
        issuers,
        [
            ("bindings[0].issuer".to_owned(), support::IDP.to_owned()),
            (
                "bindings[1].any[0].issuer".to_owned(),
                support::IDP.to_owned()
            ),
            ("deny[1].issuer".to_owned(), support::OTHER_IDP.to_owned()),
        ]
    );
}

#[test]
fn problems_in_nested_conditions_name_their_full_path() {
    let text = r#"
version = 1
[[roles]]
name = "r"
builtin = "data-reader"
scopes = ["/"]
[[bindings]]
role = "r"
all = [{ claim = "roles", contians = "x" }, 3, {}]
any = []
[[bindings]]
role = "r"
any = [{ any = [{ claim = "a..b", glob = "" }] }, { equals = "x" }]
[[bindings]]
role = "r"
all = "roles"
[[bindings]]
role = "r"
"#;
    assert_eq!(
        problems(text),
        [
            "p.toml: bindings[0].all[0].contians: unknown field, expected one of issuer, claim, \
             equals, contains, one_of, prefix, glob, all, any",
            "p.toml: bindings[0].all[0]: exactly one of equals, contains, one_of, prefix or glob \
             is required",
            "p.toml: bindings[0].all[1]: must be a table",
            "p.toml: bindings[0].all[2]: must not be empty",
            "p.toml: bindings[0].any: must not be empty",
            "p.toml: bindings[1].any[0].any[0].claim: \"a..b\" must be a claim name or dotted \
             path such as \"realm_access.roles\"",
            "p.toml: bindings[1].any[0].any[0].glob: must not be empty",
            "p.toml: bindings[1].any[1]: equals, contains, one_of, prefix or glob needs claim",
            "p.toml: bindings[2].all: must be an array of condition tables",
            "p.toml: bindings[3]: a condition is required: claim with one of equals, contains, \
             one_of, prefix or glob, issuer, all or any",
        ]
    );
}

#[test]
fn conditions_nest_only_so_deep() {
    let mut condition = "{ claim = \"roles\", contains = \"x\" }".to_owned();
    for _ in 0..9 {
        condition = format!("{{ all = [{condition}] }}");
    }
    let text = format!(
        "version = 1\n[[roles]]\nname = \"r\"\nbuiltin = \"data-reader\"\nscopes = [\"/\"]\n\
         [[bindings]]\nrole = \"r\"\nall = [{condition}]\n"
    );
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].contains("conditions nest more than 8 deep"),
        "{found:#?}"
    );
}

#[test]
fn partition_key_problems_are_reported_per_template() {
    let text = r#"
version = 1
[[roles]]
name = "a"
builtin = "data-reader"
scopes = ["/"]
partition_key = ["{claims.tenant}", "{tenant}", "{claims.}"]
partition_key_mode = "shadow"
[[roles]]
name = "b"
builtin = "data-reader"
scopes = ["/"]
partition_key = []
[[roles]]
name = "c"
builtin = "data-reader"
scopes = ["/"]
partition_key_mode = "audit"
"#;
    let found = problems(text);
    assert_eq!(
        found,
        [
            "p.toml: roles[0].partition_key_mode: unknown mode \"shadow\", expected \"enforce\" \
             or \"audit\"",
            "p.toml: roles[0].partition_key[1]: unknown placeholder {tenant}; placeholders are \
             written {claims.<path>}, e.g. {claims.tenant}",
            "p.toml: roles[0].partition_key[2]: bad claim path in {claims.}; placeholders are \
             written {claims.<path>}, e.g. {claims.tenant}",
            "p.toml: roles[1].partition_key: must not be empty",
            "p.toml: roles[2].partition_key_mode: only meaningful with partition_key",
        ]
    );
}

#[test]
fn deny_rule_problems_are_reported_with_their_path() {
    let text = r#"
version = 1
[[deny]]
name = "d"
actions = ["items/raed"]
scopes = ["/dbs/a/"]
mode = "warn"
unless = "break-glass"
[[deny]]
name = "d"
actions = []
scopes = []
claim = "roles"
[[deny]]
name = "e"
actions = ["items/read"]
scopes = ["/"]
unless = { claim = "roles", contains = "x", colour = 1 }
[[deny]]
actions = ["items/read"]
scopes = ["/"]
"#;
    assert_eq!(
        problems(text),
        [
            "p.toml: deny[0].actions[0]: unknown action \"items/raed\"",
            "p.toml: deny[0].scopes[0]: scope \"/dbs/a/\" must be \"/\", \"/dbs/{db}\" or \
             \"/dbs/{db}/colls/{container}\"",
            "p.toml: deny[0].mode: unknown mode \"warn\", expected \"enforce\" or \"audit\"",
            "p.toml: deny[0].unless: must be a table of conditions",
            "p.toml: deny[1].name: duplicate deny rule name \"d\"",
            "p.toml: deny[1].actions: must not be empty",
            "p.toml: deny[1].scopes: must not be empty",
            "p.toml: deny[1]: exactly one of equals, contains, one_of, prefix or glob is \
             required",
            "p.toml: deny[2].unless.colour: unknown field, expected one of issuer, claim, \
             equals, contains, one_of, prefix, glob, all, any",
            "p.toml: deny[3]: missing field `name`",
        ]
    );
}

#[test]
fn files_in_the_first_format_still_load_unchanged() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../config/policy.toml"
    ))
    .expect("the shipped policy is readable");
    assert!(text.contains("version = 1"));
    support::policy(&text);
}

#[test]
fn an_empty_or_unreadable_policy_never_loads_and_a_bare_one_denies_everything() {
    assert!(Policy::from_toml("", "p.toml").is_err());
    assert!(Policy::from_toml("version = 1\n[[roles]]\n", "p.toml").is_err());
    let missing = Policy::load(std::path::Path::new("/nonexistent/cosmogate/policy.toml"));
    assert_eq!(
        missing.expect_err("no such file").reason_code(),
        "policy_unreadable"
    );

    let bare = support::policy("version = 1\n");
    let read = support::request(http::Method::GET, "/");
    let decision = support::decided(&bare, serde_json::json!({"roles": ["x"]}), &read);
    assert!(!decision.allowed);
    assert_eq!(decision.reason, "no_role");
}
