//! The binding index must never change a decision. Each case here generates a policy (roles,
//! deny rules, and bindings whose conditions mix exact, prefix and glob tests, nested in `all`
//! and `any`) and a set of principals and operations, then decides every pair twice: with the
//! index, and with an index that files nothing, so that every binding is evaluated as a plain
//! scan would. The two decisions must be identical in every field.
//!
//! The generator is a fixed-seed pseudo-random one, so a failure names a seed that replays it.
//! Its strings are drawn from a few short pieces (ASCII in both cases, accented and CJK
//! characters, a combining accent, a space) so that prefixes overlap, nest and split characters
//! often.

use cosmogate_protocol::{DataAction, Operation, PartitionKey};
use serde_json::{Map, Value, json};

use super::BindingIndex;
use crate::claims::{ClaimPath, ClaimTest, Condition, Matcher};
use crate::glob::Glob;
use crate::policy::{Binding, Policy};
use crate::test_support::{container_op, database_op, list_databases, read_account, rid_op};

const IDP: &str = "http://127.0.0.1:9400";
const OTHER_IDP: &str = "http://127.0.0.1:9500";

const PIECES: [&str; 10] = ["a", "b", "ab", "A", "é", "e\u{301}", "É", "日本", "-", " "];

const PATHS: [&str; 4] = ["roles", "groups", "realm_access.roles", "scp"];

const SCOPES: [&str; 6] = [
    "/",
    "/dbs/shop",
    "/dbs/shop/colls/orders",
    "/dbs/shop/colls/o*",
    "/dbs/*/colls/orders",
    "/dbs/hr/colls/payroll",
];

/// SplitMix64: small, fast and good enough to spread test cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    /// Up to `max` pieces; may be empty.
    fn text(&mut self, max: usize) -> String {
        let count = self.below(max + 1);
        (0..count).map(|_| self.pick(&PIECES)).collect()
    }

    fn non_empty_text(&mut self) -> String {
        let text = self.text(3);
        if text.is_empty() {
            "a".to_owned()
        } else {
            text
        }
    }

    fn pattern(&mut self) -> String {
        let count = self.below(5);
        (0..count)
            .map(|_| {
                if self.chance(30) {
                    "*"
                } else {
                    self.pick(&PIECES)
                }
            })
            .collect()
    }
}

fn matcher(rng: &mut Rng) -> Matcher {
    match rng.below(6) {
        0 => Matcher::Equals(rng.non_empty_text()),
        1 => Matcher::Contains(rng.non_empty_text()),
        2 => Matcher::OneOf(
            (0..1 + rng.below(3))
                .map(|_| rng.non_empty_text())
                .collect(),
        ),
        // The loader refuses an empty prefix; the index must still be right for one.
        3 | 4 => Matcher::Prefix(rng.text(3)),
        _ => Matcher::Glob(Glob::new(&rng.pattern())),
    }
}

fn test(rng: &mut Rng) -> ClaimTest {
    ClaimTest {
        path: ClaimPath::new(rng.pick(&PATHS)),
        matcher: matcher(rng),
    }
}

fn issuer(rng: &mut Rng, percent: u64) -> Option<String> {
    rng.chance(percent)
        .then(|| rng.pick(&[IDP, OTHER_IDP]).to_owned())
}

fn condition(rng: &mut Rng, depth: usize) -> Condition {
    let nested = |rng: &mut Rng| -> Vec<Condition> {
        (0..1 + rng.below(3))
            .map(|_| condition(rng, depth + 1))
            .collect()
    };
    match rng.below(10) {
        0 => Condition {
            issuer: issuer(rng, 100),
            ..Condition::default()
        },
        7 | 8 if depth < 2 => Condition {
            issuer: issuer(rng, 15),
            test: rng.chance(40).then(|| test(rng)),
            all: nested(rng),
            ..Condition::default()
        },
        9 if depth < 2 => Condition {
            issuer: issuer(rng, 15),
            test: rng.chance(30).then(|| test(rng)),
            all: if rng.chance(30) {
                nested(rng)
            } else {
                Vec::new()
            },
            any: nested(rng),
        },
        _ => Condition {
            issuer: issuer(rng, 15),
            test: Some(test(rng)),
            ..Condition::default()
        },
    }
}

/// Roles and deny rules, as policy text (their parsing is not under test).
fn roles_and_denies(rng: &mut Rng, roles: usize) -> String {
    let mut text = String::from("version = 1\n");
    for i in 0..roles {
        let grants = rng.pick(&[
            r#"builtin = "data-reader""#,
            r#"builtin = "data-contributor""#,
            r#"actions = ["items/read"]"#,
            r#"actions = ["readMetadata", "items/delete"]"#,
        ]);
        let scopes: Vec<String> = (0..1 + rng.below(2))
            .map(|_| format!("{:?}", rng.pick(&SCOPES)))
            .collect();
        text += &format!(
            "[[roles]]\nname = \"role-{i}\"\n{grants}\nscopes = [{}]\n",
            scopes.join(", ")
        );
        if rng.chance(25) {
            text += "partition_key = [\"{claims.tid}\"]\n";
            if rng.chance(50) {
                text += "partition_key_mode = \"audit\"\n";
            }
        }
    }
    for i in 0..rng.below(3) {
        let scope = rng.pick(&SCOPES);
        let actions = rng.pick(&[r#"["items/delete"]"#, r#"["items/read", "readMetadata"]"#]);
        let who = rng.pick(&[
            "",
            "claim = \"roles\"\nprefix = \"a\"\n",
            "claim = \"groups\"\nglob = \"*b\"\n",
        ]);
        let mode = rng.pick(&["enforce", "audit"]);
        text += &format!(
            "[[deny]]\nname = \"deny-{i}\"\nactions = {actions}\nscopes = [{scope:?}]\n{who}\
             mode = \"{mode}\"\n"
        );
    }
    text
}

fn claim_value(rng: &mut Rng) -> Value {
    match rng.below(8) {
        0 => Value::Null,
        1 => json!(rng.below(10)),
        2 => json!(true),
        3 => json!({ "roles": rng.text(2) }),
        4 | 5 => Value::from(rng.text(4)),
        _ => Value::Array(
            (0..rng.below(5))
                .map(|_| match rng.below(6) {
                    0 => Value::Null,
                    1 => json!(7),
                    _ => Value::from(rng.text(3)),
                })
                .collect(),
        ),
    }
}

/// A token's claims: each claim the bindings name may be missing or of any JSON type;
/// `realm_access.roles` may be nested, a top-level name with a dot, both or neither.
fn principal(rng: &mut Rng) -> Map<String, Value> {
    let mut claims = Map::new();
    for path in ["roles", "groups", "scp"] {
        if rng.chance(75) {
            claims.insert(path.to_owned(), claim_value(rng));
        }
    }
    match rng.below(4) {
        0 => {}
        1 => {
            claims.insert("realm_access".into(), json!({ "roles": claim_value(rng) }));
        }
        2 => {
            claims.insert("realm_access.roles".into(), claim_value(rng));
        }
        _ => {
            claims.insert("realm_access".into(), claim_value(rng));
            claims.insert("realm_access.roles".into(), claim_value(rng));
        }
    }
    if rng.chance(70) {
        claims.insert("tid".into(), json!(rng.pick(&["t1", "t2"])));
    }
    claims
}

fn keyed(mut op: Operation, key: &str) -> Operation {
    op.partition_key = Some(PartitionKey {
        raw: format!("[{key:?}]"),
        values: vec![json!(key)],
    });
    op
}

fn operations() -> Vec<Operation> {
    vec![
        keyed(
            container_op(&[DataAction::ItemsRead], "shop", "orders"),
            "t1",
        ),
        keyed(
            container_op(&[DataAction::ItemsDelete], "shop", "orders"),
            "t2",
        ),
        container_op(&[DataAction::ItemsRead], "shop", "orders-2024"),
        keyed(
            container_op(&[DataAction::ItemsCreate], "hr", "payroll"),
            "t1",
        ),
        database_op(&[DataAction::ReadMetadata], "shop"),
        read_account(),
        list_databases(),
        rid_op(&[DataAction::ReadMetadata]),
    ]
}

/// One generated policy, with the index and without.
fn policies(rng: &mut Rng) -> (Policy, Policy) {
    let roles = 1 + rng.below(8);
    let text = roles_and_denies(rng, roles);
    let base = Policy::from_toml(&text, "generated")
        .unwrap_or_else(|e| panic!("generated policy must load: {e}\n{text}"));
    let bindings: Vec<Binding> = (0..rng.below(25))
        .map(|_| Binding {
            role: rng.below(roles),
            condition: condition(rng, 0),
        })
        .collect();
    let count = bindings.len();
    let indexed = Policy::new(base.roles, bindings, base.denies, base.fingerprint);
    let mut scanning = indexed.clone();
    scanning.indexes.bindings = BindingIndex::scanning(count);
    (indexed, scanning)
}

const CASES: u64 = 1_500;
const PRINCIPALS: usize = 12;

#[test]
fn indexed_decisions_are_identical_to_a_scan_of_every_binding() {
    let ops = operations();
    let mut decided = 0;
    let mut allowed = 0;
    let mut held = 0;
    let mut shadowed = 0;
    for seed in 0..CASES {
        let mut rng = Rng(seed);
        let (indexed, scanning) = policies(&mut rng);
        for _ in 0..PRINCIPALS {
            let claims = principal(&mut rng);
            let issuer = rng.pick(&[IDP, OTHER_IDP]);
            let subject = crate::Subject {
                issuer,
                claims: &claims,
            };
            let roles = indexed.held_roles(&subject);
            assert_eq!(
                roles,
                scanning.held_roles(&subject),
                "seed {seed}: held roles of {claims:?} from {issuer}"
            );
            held += usize::from(!roles.is_empty());
            for op in &ops {
                let fast = serde_json::to_value(indexed.decide(&subject, op)).expect("serializes");
                let slow = serde_json::to_value(scanning.decide(&subject, op)).expect("serializes");
                assert_eq!(fast, slow, "seed {seed}: {claims:?} from {issuer}, {op:?}");
                decided += 1;
                allowed += usize::from(fast["allowed"] == true);
                shadowed += usize::from(fast["shadow"] != json!([]));
            }
        }
    }
    // The generator must produce interesting cases, not only default denies.
    assert_eq!(decided, CASES as usize * PRINCIPALS * ops.len());
    assert!(
        held > decided / ops.len() / 4,
        "only {held} principals held a role"
    );
    assert!(
        allowed > decided / 20,
        "only {allowed} of {decided} decisions allowed"
    );
    assert!(
        shadowed > decided / 100,
        "only {shadowed} decisions had shadow hits"
    );
}

#[test]
fn the_generated_policies_exercise_prefix_and_glob_indexing() {
    let mut prefix_keys = 0;
    let mut empty_prefix_keys = 0;
    let mut unindexed = 0;
    for seed in 0..CASES {
        let (indexed, _) = policies(&mut Rng(seed));
        for binding in &indexed.bindings {
            match binding.condition.index_keys() {
                None => unindexed += 1,
                Some(keys) => {
                    for key in keys {
                        if let crate::claims::IndexKey::Prefix(_, prefix) = key {
                            prefix_keys += 1;
                            empty_prefix_keys += usize::from(prefix.is_empty());
                        }
                    }
                }
            }
        }
    }
    assert!(prefix_keys > 1_000, "{prefix_keys} prefix keys");
    assert!(
        empty_prefix_keys > 100,
        "{empty_prefix_keys} empty prefix keys"
    );
    assert!(unindexed > 100, "{unindexed} unindexed bindings");
}
