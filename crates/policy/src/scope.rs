//! Role scopes (`/`, `/dbs/{db}`, `/dbs/{db}/colls/{container}`) and which resources they cover.

use std::fmt;

/// Where a role's actions apply, as in Cosmos DB data-plane RBAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scope {
    /// `/`: the whole account.
    Account,
    /// `/dbs/{db}`: one database and all its containers.
    Database(String),
    /// `/dbs/{db}/colls/{container}`: one container.
    Container { database: String, container: String },
}

/// The resource an operation addresses, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target<'a> {
    Account,
    Database(&'a str),
    Container {
        database: &'a str,
        container: &'a str,
    },
}

const SHAPE: &str = "must be \"/\", \"/dbs/{db}\" or \"/dbs/{db}/colls/{container}\"";

impl Scope {
    /// Parses a scope string. Names are taken literally: no decoding, no patterns.
    pub(crate) fn parse(text: &str) -> Result<Scope, String> {
        if text == "/" {
            return Ok(Scope::Account);
        }
        let Some(rest) = text.strip_prefix('/') else {
            return Err(format!("scope {text:?} {SHAPE}"));
        };
        let segments: Vec<&str> = rest.split('/').collect();
        match segments.as_slice() {
            ["dbs", db] => {
                check_name(text, db)?;
                Ok(Scope::Database((*db).to_owned()))
            }
            ["dbs", db, "colls", container] => {
                check_name(text, db)?;
                check_name(text, container)?;
                Ok(Scope::Container {
                    database: (*db).to_owned(),
                    container: (*container).to_owned(),
                })
            }
            _ => Err(format!("scope {text:?} {SHAPE}")),
        }
    }

    /// Whether a grant at this scope applies to `target`. Names compare exactly.
    pub(crate) fn covers(&self, target: Target<'_>) -> bool {
        match (self, target) {
            (Scope::Account, _) => true,
            (Scope::Database(db), Target::Database(d)) => db == d,
            (Scope::Database(db), Target::Container { database, .. }) => db == database,
            (
                Scope::Container {
                    database,
                    container,
                },
                Target::Container {
                    database: d,
                    container: c,
                },
            ) => database == d && container == c,
            _ => false,
        }
    }

    /// Whether this is a container scope inside database `db`.
    pub(crate) fn is_container_in(&self, db: &str) -> bool {
        matches!(self, Scope::Container { database, .. } if database == db)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Account => f.write_str("/"),
            Scope::Database(db) => write!(f, "/dbs/{db}"),
            Scope::Container {
                database,
                container,
            } => {
                write!(f, "/dbs/{database}/colls/{container}")
            }
        }
    }
}

/// Rejects names that could never match a resource the protocol crate accepts, and `*`, which
/// is kept free for patterns.
fn check_name(scope: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("scope {scope:?} has an empty name; {SHAPE}"));
    }
    if name == "." || name == ".." {
        return Err(format!("scope {scope:?} has a dot segment"));
    }
    if name.contains('*') {
        return Err(format!(
            "scope {scope:?} contains \"*\"; patterns are not supported"
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| matches!(c, '\\' | '#' | '?') || c.is_control())
    {
        return Err(format!(
            "scope {scope:?} contains the character {bad:?}, which is not allowed in names"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container<'a>(database: &'a str, container: &'a str) -> Target<'a> {
        Target::Container {
            database,
            container,
        }
    }

    #[test]
    fn the_three_scope_shapes_parse() {
        assert_eq!(Scope::parse("/"), Ok(Scope::Account));
        assert_eq!(
            Scope::parse("/dbs/shop"),
            Ok(Scope::Database("shop".into()))
        );
        assert_eq!(
            Scope::parse("/dbs/shop/colls/orders"),
            Ok(Scope::Container {
                database: "shop".into(),
                container: "orders".into()
            })
        );
    }

    #[test]
    fn malformed_scopes_are_rejected() {
        for bad in [
            "",
            "dbs/shop",
            "/dbs",
            "/dbs/",
            "/dbs/shop/",
            "/dbs/shop/colls",
            "/dbs/shop/colls/",
            "/dbs/shop/colls/orders/docs",
            "/DBS/shop",
            "/dbs/shop/COLLS/orders",
            "//dbs/shop",
            "/dbs//colls/orders",
            "/dbs/../colls/orders",
            "/dbs/shop/colls/*",
            "/dbs/sh*p",
            "/dbs/shop/colls/a\\b",
            "/dbs/shop/colls/a?b",
            "/dbs/shop/colls/a#b",
            "/dbs/shop/colls/a\u{0}b",
        ] {
            assert!(Scope::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn account_scope_covers_everything() {
        let scope = Scope::Account;
        assert!(scope.covers(Target::Account));
        assert!(scope.covers(Target::Database("shop")));
        assert!(scope.covers(container("shop", "payroll")));
    }

    #[test]
    fn database_scope_covers_the_database_and_its_containers_only() {
        let scope = Scope::parse("/dbs/shop").expect("valid scope");
        assert!(scope.covers(Target::Database("shop")));
        assert!(scope.covers(container("shop", "orders")));
        assert!(!scope.covers(Target::Account));
        assert!(!scope.covers(Target::Database("shop2")));
        assert!(!scope.covers(Target::Database("Shop")));
        assert!(!scope.covers(container("shopping", "orders")));
    }

    #[test]
    fn container_scope_covers_that_container_only() {
        let scope = Scope::parse("/dbs/shop/colls/orders").expect("valid scope");
        assert!(scope.covers(container("shop", "orders")));
        assert!(!scope.covers(container("shop", "orders-archive")));
        assert!(!scope.covers(container("shop", "order")));
        assert!(!scope.covers(container("shop", "Orders")));
        assert!(!scope.covers(container("other", "orders")));
        assert!(!scope.covers(Target::Database("shop")));
        assert!(!scope.covers(Target::Account));
    }

    #[test]
    fn scopes_display_as_written() {
        for text in ["/", "/dbs/shop", "/dbs/shop/colls/orders"] {
            let scope = Scope::parse(text).expect("valid scope");
            assert_eq!(scope.to_string(), text);
        }
    }
}
