//! The client-facing TLS configuration.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::error::StartupError;

/// Builds an acceptor offering h2 and HTTP/1.1 through ALPN.
pub fn acceptor(cert_file: &Path, key_file: &Path) -> Result<TlsAcceptor, StartupError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .and_then(|iter| iter.collect::<Result<_, _>>())
        .map_err(|err| StartupError::Tls(format!("certificate {}: {err}", cert_file.display())))?;
    if certs.is_empty() {
        return Err(StartupError::Tls(format!(
            "certificate {}: no certificate found",
            cert_file.display()
        )));
    }
    // The key's contents never reach an error message, only its path.
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|_| {
        StartupError::Tls(format!(
            "key {}: not a usable private key",
            key_file.display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| StartupError::Tls(err.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|err| StartupError::Tls(format!("certificate and key: {err}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
