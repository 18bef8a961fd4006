use cosmogate_protocol::DataAction;

use super::*;
use crate::Subject;
use crate::test_support::{claims, container_op};

fn problems(text: &str) -> Vec<String> {
    match Policy::from_toml(text, "policy.toml") {
        Ok(policy) => panic!("expected an invalid policy, got {policy:?}"),
        Err(error) => {
            assert_eq!(error.reason_code(), "policy_invalid");
            error.problems().to_vec()
        }
    }
}

fn valid(text: &str) -> Policy {
    match Policy::from_toml(text, "policy.toml") {
        Ok(policy) => policy,
        Err(error) => panic!("expected a valid policy, got {:#?}", error.problems()),
    }
}

const EXAMPLE: &str = r#"
version = 1

[[roles]]
name = "orders-reader"
actions = ["readMetadata", "items/read", "executeQuery", "readChangeFeed"]
scopes = ["/dbs/shop/colls/orders"]

[[roles]]
name = "shop-writer"
builtin = "data-contributor"
scopes = ["/dbs/shop"]

[[bindings]]
role = "orders-reader"
issuer = "http://127.0.0.1:9400"
claim = "roles"
contains = "orders.read"

[[bindings]]
role = "shop-writer"
claim = "realm_access.roles"
one_of = ["shop.admin", "shop.writer"]
"#;

#[test]
fn the_documented_example_loads() {
    let policy = valid(EXAMPLE);
    assert_eq!(policy.role_count(), 2);
    assert_eq!(policy.binding_count(), 2);
}

#[test]
fn a_policy_with_only_a_version_loads_and_denies_everything() {
    let policy = valid("version = 1\n");
    let token = claims(serde_json::json!({"roles": ["orders.read"]}));
    let subject = Subject {
        issuer: "http://127.0.0.1:9400",
        claims: &token,
    };
    let decision = policy.decide(
        &subject,
        &container_op(&[DataAction::ItemsRead], "shop", "orders"),
    );
    assert!(!decision.allowed);
    assert_eq!(decision.reason, "no_role");
}

#[test]
fn every_problem_is_reported_at_once_with_its_path() {
    let text = r#"
version = 2
colour = "blue"

[[roles]]
name = "a"
actions = []
scopes = ["/dbs/shop/"]
extra = 1

[[roles]]
name = "b"
actions = ["items/raed", "items/*", "Microsoft.DocumentDB/databaseAccounts/nope"]
scopes = ["dbs/shop", "/dbs/shop/colls/orders"]

[[bindings]]
role = "nobody"
claim = "roles"
contains = "x"

[[bindings]]
role = "b"
claim = "roles"
equals = "x"
contains = "y"
"#;
    let found = problems(text);
    let expected = [
        "policy.toml: colour: unknown field, expected one of version, roles, bindings, deny",
        "policy.toml: version: unsupported version 2, must be 1",
        "policy.toml: roles[0].extra: unknown field, expected one of name, actions, builtin, \
         scopes, partition_key, partition_key_mode",
        "policy.toml: roles[0].actions: must not be empty",
        "policy.toml: roles[0].scopes[0]: scope \"/dbs/shop/\" must be \"/\", \"/dbs/{db}\" or \
         \"/dbs/{db}/colls/{container}\"",
        "policy.toml: roles[1].actions[0]: unknown action \"items/raed\"",
        "policy.toml: roles[1].actions[2]: unknown action \
         \"Microsoft.DocumentDB/databaseAccounts/nope\"",
        "policy.toml: roles[1].scopes[0]: scope \"dbs/shop\" must be \"/\", \"/dbs/{db}\" or \
         \"/dbs/{db}/colls/{container}\"",
        "policy.toml: bindings[0].role: unknown role \"nobody\"",
        "policy.toml: bindings[1]: exactly one of equals, contains, one_of, prefix or glob is \
         required",
    ];
    assert_eq!(found, expected);
}

#[test]
fn version_must_be_present_and_the_integer_one() {
    assert_eq!(problems(""), ["policy.toml: version: missing, must be 1"]);
    assert_eq!(
        problems("version = \"1\""),
        ["policy.toml: version: must be the integer 1"]
    );
    assert_eq!(
        problems("version = 0"),
        ["policy.toml: version: unsupported version 0, must be 1"]
    );
}

#[test]
fn fields_of_the_wrong_type_are_named() {
    let text = r#"
version = 1
[[roles]]
name = 3
actions = "items/read"
scopes = ["/", 7]
[[bindings]]
role = "r"
claim = ["roles"]
one_of = "x"
"#;
    assert_eq!(
        problems(text),
        [
            "policy.toml: roles[0].name: must be a string",
            "policy.toml: roles[0].actions: must be an array of strings",
            "policy.toml: roles[0].scopes[1]: must be a string",
            "policy.toml: bindings[0].role: unknown role \"r\"",
            "policy.toml: bindings[0].claim: must be a string",
            "policy.toml: bindings[0].one_of: must be an array of strings",
        ]
    );
}

#[test]
fn missing_required_fields_are_reported() {
    let text = "version = 1\n[[roles]]\nname = \"r\"\nactions = [\"items/read\"]\n\
                [[bindings]]\nrole = \"r\"\nequals = \"x\"\n";
    assert_eq!(
        problems(text),
        [
            "policy.toml: roles[0]: missing field `scopes`",
            "policy.toml: bindings[0]: equals, contains, one_of, prefix or glob needs claim",
        ]
    );
}

#[test]
fn roles_and_bindings_must_be_arrays_of_tables() {
    let text = "version = 1\nroles = \"r\"\nbindings = [1]\n";
    assert_eq!(
        problems(text),
        [
            "policy.toml: roles: must be an array of tables ([[roles]])",
            "policy.toml: bindings[0]: must be a table",
        ]
    );
}

#[test]
fn a_role_needs_exactly_one_of_actions_and_builtin() {
    let text = r#"
version = 1
[[roles]]
name = "both"
actions = ["items/read"]
builtin = "data-reader"
scopes = ["/"]
[[roles]]
name = "neither"
scopes = ["/"]
[[roles]]
name = "owner"
builtin = "data-owner"
scopes = []
"#;
    assert_eq!(
        problems(text),
        [
            "policy.toml: roles[0]: set either actions or builtin, not both",
            "policy.toml: roles[1]: one of actions or builtin is required",
            "policy.toml: roles[2].builtin: unknown built-in role \"data-owner\", expected \
             \"data-reader\" or \"data-contributor\"",
            "policy.toml: roles[2].scopes: must not be empty",
        ]
    );
}

#[test]
fn duplicate_role_names_are_rejected() {
    let text = r#"
version = 1
[[roles]]
name = "r"
builtin = "data-reader"
scopes = ["/"]
[[roles]]
name = "r"
builtin = "data-contributor"
scopes = ["/"]
"#;
    assert_eq!(
        problems(text),
        ["policy.toml: roles[1].name: duplicate role name \"r\""]
    );
}

#[test]
fn a_binding_to_an_invalid_role_is_not_also_reported_as_unknown() {
    let text = r#"
version = 1
[[roles]]
name = "r"
actions = ["items/nope"]
scopes = ["/"]
[[bindings]]
role = "r"
claim = "roles"
contains = "x"
"#;
    assert_eq!(
        problems(text),
        ["policy.toml: roles[0].actions[0]: unknown action \"items/nope\""]
    );
}

#[test]
fn binding_conditions_are_checked() {
    let text = r#"
version = 1
[[roles]]
name = "r"
builtin = "data-reader"
scopes = ["/"]
[[bindings]]
role = "r"
claim = "realm_access..roles"
equals = ""
[[bindings]]
role = "r"
issuer = ""
claim = ""
one_of = []
[[bindings]]
role = "r"
claim = "roles"
one_of = ["a", ""]
[[bindings]]
role = "r"
claim = "roles"
"#;
    assert_eq!(
        problems(text),
        [
            "policy.toml: bindings[0].claim: \"realm_access..roles\" must be a claim name or \
             dotted path such as \"realm_access.roles\"",
            "policy.toml: bindings[0].equals: must not be empty",
            "policy.toml: bindings[1].issuer: must not be empty",
            "policy.toml: bindings[1].claim: must not be empty",
            "policy.toml: bindings[1].one_of: must not be empty",
            "policy.toml: bindings[2].one_of[1]: must not be empty",
            "policy.toml: bindings[3]: exactly one of equals, contains, one_of, prefix or glob \
             is required",
        ]
    );
}

#[test]
fn toml_syntax_errors_give_line_and_column() {
    let found = problems("version = 1\n[[roles]\nname = \"r\"\n");
    assert_eq!(found.len(), 1);
    assert!(
        found[0].starts_with("policy.toml: line 2, column "),
        "{found:?}"
    );
    assert!(found[0].contains("invalid toml"), "{found:?}");
}

#[test]
fn the_error_message_joins_every_problem() {
    let error = Policy::from_toml("version = 2\nx = 1\n", "p.toml").expect_err("invalid policy");
    let message = error.to_string();
    assert!(message.starts_with("invalid policy: "), "{message}");
    assert!(message.contains("p.toml: x: unknown field"), "{message}");
    assert!(
        message.contains("p.toml: version: unsupported version 2"),
        "{message}"
    );
}

#[test]
fn load_reads_a_file_and_uses_its_path_as_origin() {
    let dir = std::env::temp_dir().join(format!("cosmogate-policy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir is writable");
    let good = dir.join("good.toml");
    let bad = dir.join("bad.toml");
    std::fs::write(&good, EXAMPLE).expect("temp file is writable");
    std::fs::write(&bad, "version = 3\n").expect("temp file is writable");

    assert_eq!(Policy::load(&good).expect("example loads").role_count(), 2);
    let error = Policy::load(&bad).expect_err("version 3 is invalid");
    assert_eq!(
        error.problems(),
        [format!(
            "{}: version: unsupported version 3, must be 1",
            bad.display()
        )]
    );
    let missing = Policy::load(&dir.join("missing.toml")).expect_err("no such file");
    assert_eq!(missing.reason_code(), "policy_unreadable");
    assert!(missing.problems().is_empty());

    std::fs::remove_dir_all(&dir).expect("temp dir is removable");
}

#[test]
fn every_listed_field_is_known_to_serde() {
    let text = r#"
version = 1
[[roles]]
name = "r"
actions = ["items/read"]
builtin = "data-reader"
scopes = ["/"]
partition_key = ["{claims.tenant}"]
partition_key_mode = "audit"
[[bindings]]
role = "r"
issuer = "i"
claim = "c"
equals = "a"
contains = "b"
one_of = ["c"]
prefix = "p"
glob = "g*"
all = [{ claim = "x", equals = "y" }]
any = [{ issuer = "j" }]
[[deny]]
name = "d"
actions = ["items/read"]
scopes = ["/"]
mode = "audit"
issuer = "i"
unless = { claim = "c", contains = "x" }
"#;
    assert_eq!(
        problems(text),
        [
            "policy.toml: roles[0]: set either actions or builtin, not both",
            "policy.toml: bindings[0]: exactly one of equals, contains, one_of, prefix or glob \
             is required",
        ]
    );
}

/// Text that looks like a policy often enough to reach past the TOML parser.
const POLICY_LIKE: &str =
    "(version = 1\n)?(\\[\\[(roles|bindings|deny)\\]\\]\n)?[a-z_]{0,8} = .{0,24}\n.{0,40}";

proptest::proptest! {
    #[test]
    fn from_toml_never_panics(text in POLICY_LIKE) {
        let _ = Policy::from_toml(&text, "fuzz");
    }
}
