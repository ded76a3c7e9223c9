//! [`TlsError`]: what can go wrong while building or reloading a [`TlsConfig`](super::TlsConfig).

use std::fmt;
use std::path::PathBuf;

/// A certificate or key could not be loaded, or rustls refused the configuration.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    Pem {
        /// The file (or `<memory>` for PEM bytes).
        path: PathBuf,
        /// What was wrong with it.
        error: rustls::pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    NoCertificate(PathBuf),
    /// rustls refused the key, the chain, or the configuration (for example a key that does not
    /// match the certificate, or a key type it does not support).
    Rustls(rustls::Error),
    /// A server name for SNI that is empty or given twice.
    BadServerName(String),
    /// SNI names were added to a `TlsConfig` made from a rustls `ServerConfig`, which picks
    /// its certificates itself.
    SniOnCustomConfig,
    /// [`reload_tls`](crate::ServerHandle::reload_tls) on a server built without TLS.
    NotEnabled,
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Pem { path, error } => write!(f, "{}: {error}", path.display()),
            TlsError::NoCertificate(path) => {
                write!(f, "{}: no certificate in the file", path.display())
            }
            TlsError::Rustls(err) => write!(f, "TLS configuration: {err}"),
            TlsError::BadServerName(name) => write!(f, "server name {name:?}: empty or repeated"),
            TlsError::SniOnCustomConfig => f.write_str(
                "SNI certificates cannot be added to a rustls ServerConfig of your own: \
                 give it a certificate resolver instead",
            ),
            TlsError::NotEnabled => f.write_str("the server was built without TLS"),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Pem { error, .. } => Some(error),
            TlsError::Rustls(err) => Some(err),
            _ => None,
        }
    }
}

impl From<rustls::Error> for TlsError {
    fn from(err: rustls::Error) -> Self {
        TlsError::Rustls(err)
    }
}
