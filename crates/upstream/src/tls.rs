//! The TLS client settings for the upstream: system roots plus an optional PEM file.

use std::path::Path;
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::error::UpstreamError;

/// A rustls client configuration trusting the system roots and every certificate in
/// `ca_file`. Fails when the file is unreadable or holds no certificate, or, with
/// `require_roots`, when no root at all is trusted.
pub(crate) fn client_config(
    ca_file: Option<&Path>,
    require_roots: bool,
) -> Result<ClientConfig, UpstreamError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!(
        added,
        ignored,
        load_errors = native.errors.len(),
        "System roots loaded"
    );
    if let Some(path) = ca_file {
        add_pem_file(&mut roots, path)?;
    }
    if require_roots && roots.is_empty() {
        return Err(UpstreamError::Config(
            "no trusted root certificates (system store empty and no ca_file)".into(),
        ));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| UpstreamError::Config(format!("tls setup failed: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

fn add_pem_file(roots: &mut RootCertStore, path: &Path) -> Result<(), UpstreamError> {
    let bad = |what: &str| UpstreamError::Config(format!("ca_file {}: {what}", path.display()));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|_| bad("cannot be read"))?
        .collect::<Result<_, _>>()
        .map_err(|_| bad("is not valid pem"))?;
    if certs.is_empty() {
        return Err(bad("holds no certificate"));
    }
    for cert in certs {
        roots
            .add(cert)
            .map_err(|_| bad("holds a certificate that cannot be used as a root"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_ca_file_is_a_config_error() {
        let err =
            client_config(Some(Path::new("/nonexistent/ca.pem")), false).expect_err("must fail");
        assert_eq!(err.reason_code(), "upstream_config");
    }

    #[test]
    fn ca_file_without_certificates_is_a_config_error() {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), "not a certificate\n").expect("write");
        let err = client_config(Some(file.path()), false).expect_err("must fail");
        assert!(err.to_string().contains("holds no certificate"), "{err}");
    }
}
