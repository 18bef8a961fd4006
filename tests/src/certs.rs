//! A throwaway test CA and a server certificate for 127.0.0.1 and localhost.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// PEM files written by [`Certs::generate`].
#[derive(Debug, Clone)]
pub struct Certs {
    /// The CA certificate clients should trust (`ca.pem`).
    pub ca: PathBuf,
    /// The server certificate for `127.0.0.1` and `localhost`, signed by the CA (`server.pem`).
    pub cert: PathBuf,
    /// The server certificate's private key, PKCS#8 (`server-key.pem`).
    pub key: PathBuf,
}

impl Certs {
    /// Generates a fresh CA and a server certificate signed by it, writing them into `dir`.
    /// All keys are ECDSA P-256. Both the rig's Cosmos server and cosmogate can serve the
    /// same server certificate.
    pub fn generate(dir: &Path) -> anyhow::Result<Certs> {
        let ca_key = KeyPair::generate().context("generating the CA key")?;
        let ca_params = ca_params()?;
        let ca_cert = ca_params.self_signed(&ca_key).context("signing the CA")?;
        let issuer = Issuer::new(ca_params, ca_key);

        let leaf_key = KeyPair::generate().context("generating the server key")?;
        let leaf = leaf_params()?
            .signed_by(&leaf_key, &issuer)
            .context("signing the server certificate")?;

        let certs = Certs {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server-key.pem"),
        };
        write(&certs.ca, &ca_cert.pem())?;
        write(&certs.cert, &leaf.pem())?;
        write(&certs.key, &leaf_key.serialize_pem())?;
        Ok(certs)
    }

    /// The CA certificate as PEM text.
    pub fn ca_pem(&self) -> anyhow::Result<String> {
        fs::read_to_string(&self.ca).with_context(|| format!("reading {}", self.ca.display()))
    }
}

fn ca_params() -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, "cosmogate e2e test CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

fn leaf_params() -> anyhow::Result<CertificateParams> {
    let mut params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])?;
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

fn write(path: &Path, pem: &str) -> anyhow::Result<()> {
    fs::write(path, pem).with_context(|| format!("writing {}", path.display()))
}
