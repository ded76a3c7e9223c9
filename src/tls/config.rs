//! [`TlsConfig`]: certificates and keys in, the rustls `ServerConfig` every new connection gets
//! out.
//!
//! The configuration is rustls's safe defaults (TLS 1.2 and 1.3, its cipher suites, the
//! `aws-lc-rs` provider, whose key exchange prefers the hybrid post-quantum X25519MLKEM768 and
//! falls back to X25519, P-256 and P-384) with one addition: ALPN offers `http/1.1`, the only protocol served, so a client
//! that offers `h2` as well gets `http/1.1` and a client that offers only `h2` is refused in
//! the handshake rather than misunderstood after it.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use super::error::TlsError;
use super::sni::SniCertificates;

/// How the server speaks TLS: its certificates (one, or several chosen by SNI), or a rustls
/// configuration of your own. Give it to [`ServerBuilder::tls`](crate::ServerBuilder::tls);
/// swap it on a running server with [`ServerHandle::reload_tls`](crate::ServerHandle::reload_tls).
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use wsreactor::tls::TlsConfig;
///
/// let tls = TlsConfig::from_pem_files("cert.pem", "key.pem")?
///     // Optional: another certificate for clients that ask for this name.
///     .with_sni_pem_files("chat.example.org", "chat.pem", "chat-key.pem")?;
/// # let _ = tls;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct TlsConfig {
    /// The certificates, when they were given here (not with `from_rustls`).
    certificates: Option<SniCertificates>,
    server: Arc<ServerConfig>,
}

impl TlsConfig {
    /// A certificate chain (leaf first) and its private key (PKCS#8, PKCS#1 or SEC1), both PEM
    /// files, as written by certbot, `openssl` or `mkcert`.
    pub fn from_pem_files(
        cert_chain: impl AsRef<Path>,
        private_key: impl AsRef<Path>,
    ) -> Result<Self, TlsError> {
        Self::with_certificates(SniCertificates::new(load_pem_files(
            cert_chain.as_ref(),
            private_key.as_ref(),
        )?))
    }

    /// Like [`from_pem_files`](Self::from_pem_files), from PEM text in memory.
    pub fn from_pem(cert_chain: &[u8], private_key: &[u8]) -> Result<Self, TlsError> {
        Self::with_certificates(SniCertificates::new(load_pem(cert_chain, private_key)?))
    }

    /// A certificate chain (leaf first) and its private key, DER-encoded.
    pub fn from_der(
        cert_chain: Vec<CertificateDer<'static>>,
        private_key: PrivateKeyDer<'static>,
    ) -> Result<Self, TlsError> {
        Self::with_certificates(SniCertificates::new(certified_key(
            cert_chain,
            private_key,
        )?))
    }

    /// Your own rustls configuration, used as it is (set its `alpn_protocols` to `http/1.1`
    /// yourself if you want ALPN). For what this type does not offer: client certificates, a
    /// resolver of your own (ACME), other protocol versions.
    pub fn from_rustls(server: Arc<ServerConfig>) -> Self {
        TlsConfig {
            certificates: None,
            server,
        }
    }

    /// Adds a certificate for clients that ask for `server_name` (SNI); a name like
    /// `*.example.org` covers one label. Clients that ask for no name, or another one, get the
    /// first certificate.
    pub fn with_sni_pem_files(
        self,
        server_name: &str,
        cert_chain: impl AsRef<Path>,
        private_key: impl AsRef<Path>,
    ) -> Result<Self, TlsError> {
        let key = load_pem_files(cert_chain.as_ref(), private_key.as_ref())?;
        self.with_sni(server_name, key)
    }

    /// Like [`with_sni_pem_files`](Self::with_sni_pem_files), with a DER chain and key.
    pub fn with_sni_der(
        self,
        server_name: &str,
        cert_chain: Vec<CertificateDer<'static>>,
        private_key: PrivateKeyDer<'static>,
    ) -> Result<Self, TlsError> {
        self.with_sni(server_name, certified_key(cert_chain, private_key)?)
    }

    /// The rustls configuration the server gives each new connection.
    pub fn rustls_config(&self) -> &Arc<ServerConfig> {
        &self.server
    }

    fn with_sni(self, server_name: &str, key: CertifiedKey) -> Result<Self, TlsError> {
        let Some(mut certificates) = self.certificates else {
            return Err(TlsError::SniOnCustomConfig);
        };
        certificates.add(server_name, key)?;
        Self::with_certificates(certificates)
    }

    fn with_certificates(certificates: SniCertificates) -> Result<Self, TlsError> {
        let mut server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(certificates.clone()));
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsConfig {
            certificates: Some(certificates),
            server: Arc::new(server),
        })
    }
}

/// The crypto provider: `aws-lc-rs`, whose key exchange prefers X25519MLKEM768.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn load_pem_files(cert_chain: &Path, private_key: &Path) -> Result<CertifiedKey, TlsError> {
    let pem_error = |path: &Path| {
        let path = path.to_owned();
        move |error| TlsError::Pem { path, error }
    };
    let chain = CertificateDer::pem_file_iter(cert_chain)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(pem_error(cert_chain))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(cert_chain.to_owned()));
    }
    let key = PrivateKeyDer::from_pem_file(private_key).map_err(pem_error(private_key))?;
    certified_key(chain, key)
}

fn load_pem(cert_chain: &[u8], private_key: &[u8]) -> Result<CertifiedKey, TlsError> {
    let memory = || Path::new("<memory>").to_owned();
    let chain = CertificateDer::pem_slice_iter(cert_chain)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::Pem {
            path: memory(),
            error,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(memory()));
    }
    let key = PrivateKeyDer::from_pem_slice(private_key).map_err(|error| TlsError::Pem {
        path: memory(),
        error,
    })?;
    certified_key(chain, key)
}

/// Parses the key and checks that it belongs to the chain's leaf certificate.
fn certified_key(
    cert_chain: Vec<CertificateDer<'static>>,
    private_key: PrivateKeyDer<'static>,
) -> Result<CertifiedKey, TlsError> {
    if cert_chain.is_empty() {
        return Err(TlsError::NoCertificate(Path::new("<chain>").to_owned()));
    }
    Ok(CertifiedKey::from_der(
        cert_chain,
        private_key,
        &provider(),
    )?)
}
