//! The client-facing TLS configuration.
//!
//! TLS is on unless the configuration says `listen.tls = false` (see [`for_listener`]).

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::ListenConfig;
use crate::error::StartupError;

/// The acceptor for the configured listener: `Some` for TLS, `None` for plain HTTP, which
/// only an explicit `listen.tls = false` gives. A TLS listener without a certificate or key
/// is an error here too, although configuration validation reports it first.
pub fn for_listener(listen: &ListenConfig) -> Result<Option<TlsAcceptor>, StartupError> {
    if !listen.tls {
        return Ok(None);
    }
    match (&listen.tls_cert_file, &listen.tls_key_file) {
        (Some(cert), Some(key)) => acceptor(cert, key).map(Some),
        _ => Err(StartupError::Tls(
            "listen.tls_cert_file and listen.tls_key_file are required unless listen.tls = false"
                .to_owned(),
        )),
    }
}

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
