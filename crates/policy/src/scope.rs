//! Rule scopes (`/`, `/dbs/{db}`, `/dbs/{db}/colls/{container}`, with `*` patterns in either
//! name) and which resources they cover.

use std::fmt;

use crate::glob::Glob;

/// Where a rule applies, as in Cosmos DB data-plane RBAC, with patterns added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scope {
    /// `/`: the whole account.
    Account,
    /// `/dbs/{db}`: the databases the name matches and all their containers.
    Database(Name),
    /// `/dbs/{db}/colls/{container}`: the containers the names match.
    Container { database: Name, container: Name },
}

/// One name of a scope: exact, or a `*` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Name {
    Exact(String),
    Pattern(Glob),
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
    /// Parses a scope string. Names are taken literally (no decoding); `*` in a name makes it
    /// a pattern.
    pub(crate) fn parse(text: &str) -> Result<Scope, String> {
        if text == "/" {
            return Ok(Scope::Account);
        }
        let Some(rest) = text.strip_prefix('/') else {
            return Err(format!("scope {text:?} {SHAPE}"));
        };
        let segments: Vec<&str> = rest.split('/').collect();
        match segments.as_slice() {
            ["dbs", db] => Ok(Scope::Database(Name::parse(text, db)?)),
            ["dbs", db, "colls", container] => Ok(Scope::Container {
                database: Name::parse(text, db)?,
                container: Name::parse(text, container)?,
            }),
            _ => Err(format!("scope {text:?} {SHAPE}")),
        }
    }

    /// Whether a rule at this scope applies to `target`. Names compare exactly.
    pub(crate) fn covers(&self, target: Target<'_>) -> bool {
        match (self, target) {
            (Scope::Account, _) => true,
            (Scope::Database(db), Target::Database(d)) => db.matches(d),
            (Scope::Database(db), Target::Container { database, .. }) => db.matches(database),
            (
                Scope::Container {
                    database,
                    container,
                },
                Target::Container {
                    database: d,
                    container: c,
                },
            ) => database.matches(d) && container.matches(c),
            _ => false,
        }
    }

    /// Whether this is a container scope inside database `db`.
    pub(crate) fn is_container_in(&self, db: &str) -> bool {
        matches!(self, Scope::Container { database, .. } if database.matches(db))
    }
}

impl Name {
    fn parse(scope: &str, name: &str) -> Result<Name, String> {
        check_name(scope, name)?;
        Ok(if Glob::is_pattern(name) {
            Name::Pattern(Glob::new(name))
        } else {
            Name::Exact(name.to_owned())
        })
    }

    pub(crate) fn matches(&self, name: &str) -> bool {
        match self {
            Name::Exact(exact) => exact == name,
            Name::Pattern(glob) => glob.matches(name),
        }
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Name::Exact(name) => f.write_str(name),
            Name::Pattern(glob) => glob.fmt(f),
        }
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
            } => write!(f, "/dbs/{database}/colls/{container}"),
        }
    }
}

/// Rejects names that could never match a resource the protocol crate accepts. `*` is the
/// pattern wildcard; resource names never contain it (Cosmos ids may, but a scope naming one
/// literally is not supported).
fn check_name(scope: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("scope {scope:?} has an empty name; {SHAPE}"));
    }
    if name == "." || name == ".." {
        return Err(format!("scope {scope:?} has a dot segment"));
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
mod tests;
