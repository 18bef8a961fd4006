//! Where the rig's files live, and the check that `scripts/setup.sh` has been run.

use std::path::{Path, PathBuf};

use anyhow::bail;

/// The repository root: the parent of this package's manifest directory.
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// `tests/rig`: the Node rig scripts and their `node_modules`.
pub fn rig_dir() -> PathBuf {
    repo_root().join("tests").join("rig")
}

/// `tests/apps`: the sample SDK apps.
pub fn apps_dir() -> PathBuf {
    repo_root().join("tests").join("apps")
}

/// The Python interpreter of the rig's virtual environment (`tests/.venv`).
pub fn venv_python() -> PathBuf {
    repo_root()
        .join("tests")
        .join(".venv")
        .join("bin")
        .join("python")
}

/// Fails with a pointer to `scripts/setup.sh` when the Node packages are not installed.
pub fn ensure_node_rig() -> anyhow::Result<()> {
    let marker = rig_dir().join("node_modules").join("oidc-provider");
    if !marker.is_dir() {
        bail!(
            "{} is missing: run scripts/setup.sh first",
            rig_dir().join("node_modules").display()
        );
    }
    Ok(())
}

/// Fails with a pointer to `scripts/setup.sh` when the Python venv is not installed.
pub fn ensure_python_venv() -> anyhow::Result<()> {
    if !venv_python().is_file() {
        bail!(
            "{} is missing: run scripts/setup.sh first",
            venv_python().display()
        );
    }
    Ok(())
}

/// Fails with a pointer to `scripts/setup.sh` when glewlwyd (Debian package) or sqlite3 is
/// missing.
pub fn ensure_glewlwyd() -> anyhow::Result<()> {
    let needed = [
        "/usr/bin/glewlwyd",
        "/usr/bin/sqlite3",
        "/usr/share/doc/glewlwyd/database/init.sqlite3.sql.gz",
    ];
    for file in needed {
        if !Path::new(file).is_file() {
            bail!("{file} is missing: run scripts/setup.sh first (it installs glewlwyd)");
        }
    }
    Ok(())
}
