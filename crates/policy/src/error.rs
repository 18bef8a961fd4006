use std::path::PathBuf;

/// Why a policy could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The policy file could not be read.
    #[error("cannot read policy file {}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The policy text is not a valid policy. `problems` holds every problem found, each as
    /// `"origin: path: message"`.
    #[error("invalid policy: {}", problems.join("; "))]
    Invalid { problems: Vec<String> },
}

impl PolicyError {
    /// A stable short code for audit records and metrics.
    pub fn reason_code(&self) -> &'static str {
        match self {
            PolicyError::Unreadable { .. } => "policy_unreadable",
            PolicyError::Invalid { .. } => "policy_invalid",
        }
    }

    /// Every problem found in an invalid policy; empty for other errors.
    pub fn problems(&self) -> &[String] {
        match self {
            PolicyError::Invalid { problems } => problems,
            PolicyError::Unreadable { .. } => &[],
        }
    }
}
