//! The commands for the people who write policy: `check`, `explain` and `policy test`.
//!
//! None of them serves traffic or contacts an identity provider or Cosmos DB: they read the
//! configuration and the policy, and decide requests described on the command line or in a
//! cases file exactly as `serve` would decide them.

mod cases;
mod check;
mod explain;
mod jwt;

use std::path::{Path, PathBuf};

use cosmogate_policy::Policy;
use cosmogate_server::Config;

pub(crate) use cases::{TestArgs, policy_test};
pub(crate) use check::check;
pub(crate) use explain::{ExplainArgs, explain};

/// Where a tool finds the policy: through a configuration, or directly.
#[derive(Debug, Clone, clap::Args)]
#[group(required = true, multiple = false)]
pub(crate) struct PolicySource {
    /// The configuration file; the policy it names is used, and its issuers are checked.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// A policy file, used without any configuration (handy in CI).
    #[arg(long)]
    policy: Option<PathBuf>,
}

/// A loaded policy and what the configuration says about it.
pub(crate) struct Loaded {
    pub(crate) policy: Policy,
    pub(crate) path: PathBuf,
    /// The configured issuers, when a configuration was given and is valid.
    pub(crate) issuers: Option<Vec<String>>,
}

impl PolicySource {
    /// Loads the policy, printing why not to standard error. A configuration with problems
    /// of its own is tolerated (with a warning) as long as it names a policy file.
    pub(crate) fn load(&self) -> Option<Loaded> {
        let (path, issuers) = match (&self.config, &self.policy) {
            (_, Some(policy)) => (policy.clone(), None),
            (Some(config), None) => match Config::load(config) {
                Ok(loaded) => (
                    loaded.config.policy.file.clone(),
                    Some(
                        loaded
                            .config
                            .issuers
                            .iter()
                            .map(|i| i.issuer.clone())
                            .collect(),
                    ),
                ),
                Err(err) => {
                    eprintln!(
                        "warning: {} has problems (run `cosmogate check`): {err}",
                        config.display()
                    );
                    (raw_policy_path(config)?, None)
                }
            },
            (None, None) => return None,
        };
        match Policy::load(&path) {
            Ok(policy) => Some(Loaded {
                policy,
                path,
                issuers,
            }),
            Err(err) => {
                eprintln!("{err}");
                for problem in err.problems() {
                    eprintln!("  {problem}");
                }
                None
            }
        }
    }
}

/// The `[policy] file` of a configuration that does not load, resolved like `Config::load`
/// resolves it (relative to the configuration's directory).
pub(crate) fn raw_policy_path(config: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(config).ok()?;
    let table: toml::Table = toml::from_str(&text).ok()?;
    let file = table.get("policy")?.get("file")?.as_str()?;
    let file = PathBuf::from(file);
    if file.is_relative() {
        return Some(config.parent().unwrap_or(Path::new(".")).join(file));
    }
    Some(file)
}

/// Whether `issuer` is one of the configured ones; a configured `{tenantid}` template
/// matches any text in its place.
pub(crate) fn issuer_configured(configured: &[String], issuer: &str) -> bool {
    configured
        .iter()
        .any(|known| match known.split_once("{tenantid}") {
            None => known == issuer,
            Some((before, after)) => {
                issuer.len() > before.len() + after.len()
                    && issuer.starts_with(before)
                    && issuer.ends_with(after)
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_issuers_match_any_tenant_in_place() {
        let configured = vec![
            "https://login.microsoftonline.com/{tenantid}/v2.0".to_owned(),
            "http://127.0.0.1:9400".to_owned(),
        ];
        assert!(issuer_configured(&configured, "http://127.0.0.1:9400"));
        assert!(!issuer_configured(&configured, "http://127.0.0.1:9400/"));
        assert!(issuer_configured(
            &configured,
            "https://login.microsoftonline.com/t1/v2.0"
        ));
        assert!(!issuer_configured(
            &configured,
            "https://login.microsoftonline.com//v2.0"
        ));
    }
}
