//! `cosmogate check`: every problem of a configuration and of its policy, at once.

use std::path::Path;
use std::process::ExitCode;

use cosmogate_policy::{Policy, PolicyError};
use cosmogate_server::{Config, StartupError};

use super::{issuer_configured, raw_policy_path};

/// Validates the configuration and the policy it names. Problems go to standard error, one
/// per line as `file: path: message`; warnings (issuers the policy names that the
/// configuration does not accept) too. Exits non-zero when there is any problem.
pub(crate) fn check(config_path: &Path) -> ExitCode {
    let mut problems: Vec<String> = Vec::new();
    let mut warnings: Vec<String> = Vec::new();

    let (policy_path, issuers, config_fingerprint) = match Config::load(config_path) {
        Ok(loaded) => {
            warnings.extend(loaded.config.listen.warnings());
            (
                Some(loaded.config.policy.file.clone()),
                Some(
                    loaded
                        .config
                        .issuers
                        .iter()
                        .map(|i| i.issuer.clone())
                        .collect::<Vec<_>>(),
                ),
                Some(loaded.fingerprint),
            )
        }
        Err(StartupError::Invalid { problems: found }) => {
            problems.extend(found);
            (raw_policy_path(config_path), None, None)
        }
        Err(err) => {
            problems.push(format!("{}: {}", config_path.display(), error_chain(&err)));
            (None, None, None)
        }
    };

    // A missing policy file is already a configuration problem (`policy.file`).
    let policy =
        policy_path
            .filter(|path| path.is_file())
            .and_then(|path| match Policy::load(&path) {
                Ok(policy) => Some((path, policy)),
                Err(err) => {
                    problems.extend(policy_problems(&err));
                    None
                }
            });
    if let (Some((path, policy)), Some(issuers)) = (&policy, &issuers) {
        for (at, issuer) in policy.issuers() {
            if !issuer_configured(issuers, &issuer) {
                warnings.push(format!(
                    "{}: {at}: {issuer:?} is not a configured issuer, so this condition never \
                     matches",
                    path.display()
                ));
            }
        }
    }

    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    if !problems.is_empty() {
        for problem in &problems {
            eprintln!("{problem}");
        }
        eprintln!("{} problem(s) found", problems.len());
        return ExitCode::FAILURE;
    }
    report_valid(config_path, config_fingerprint.as_deref(), policy.as_ref());
    ExitCode::SUCCESS
}

fn report_valid(
    config: &Path,
    fingerprint: Option<&str>,
    policy: Option<&(std::path::PathBuf, Policy)>,
) {
    let Some((path, policy)) = policy else {
        return;
    };
    println!(
        "{}: configuration and policy are valid (configuration fingerprint {}; policy {} \
         fingerprint {}: {} roles, {} bindings, {} deny rules)",
        config.display(),
        fingerprint.unwrap_or("-"),
        path.display(),
        policy.fingerprint(),
        policy.role_count(),
        policy.binding_count(),
        policy.deny_count(),
    );
}

fn policy_problems(err: &PolicyError) -> Vec<String> {
    match err {
        PolicyError::Invalid { problems } => problems.clone(),
        other => vec![error_chain(other)],
    }
}

/// The error and its causes, each said once: a cause an error's own message already quotes
/// (`cannot read {path}: {source}`) is not repeated.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("cannot read x.toml: {0}")]
        Quoting(#[source] std::io::Error),
        #[error("configuration is invalid")]
        Wrapping(#[source] std::io::Error),
    }

    #[test]
    fn each_cause_is_said_once() {
        let missing = || std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        assert_eq!(
            error_chain(&Outer::Quoting(missing())),
            "cannot read x.toml: no such file"
        );
        assert_eq!(
            error_chain(&Outer::Wrapping(missing())),
            "configuration is invalid: no such file"
        );
    }
}
