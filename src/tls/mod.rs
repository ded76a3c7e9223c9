//! TLS for `wss://` and `https://` (feature `tls`): certificates in, a rustls configuration out.
//!
//! A [`TlsConfig`] is what you give [`ServerBuilder::tls`](crate::ServerBuilder::tls): a
//! certificate chain and its private key (PEM files, PEM bytes or DER), optionally more of them
//! chosen by the name the client asks for (SNI), or a rustls `ServerConfig` of your own. The
//! server then speaks TLS on its port, for HTTP and WebSocket alike; the handler sees the same
//! requests and messages as over plain TCP.
//!
//! Certificates are renewed every few weeks in practice:
//! [`ServerHandle::reload_tls`](crate::ServerHandle::reload_tls) swaps in a new `TlsConfig` for
//! the connections accepted from then on, while those already open carry on with theirs.
//!
//! | file | what it does |
//! |---|---|
//! | `config.rs` | [`TlsConfig`]: loading certificates and keys, the rustls configuration (ALPN `http/1.1`) |
//! | `sni.rs` | picking a certificate by the server name in the ClientHello |
//! | `acceptor.rs` | the configuration new connections get, swapped by a reload |
//! | `error.rs` | [`TlsError`] |
//!
//! The bytes themselves — the handshake, records in and out, `close_notify` — are the loop's
//! work, in `src/transport/tls.rs`.

mod acceptor;
mod config;
mod error;
mod sni;

pub(crate) use acceptor::TlsAcceptor;
pub use config::TlsConfig;
pub use error::TlsError;

/// rustls itself, for [`TlsConfig::from_rustls`].
pub use rustls;
/// Certificate and key types, for [`TlsConfig::from_der`].
pub use rustls::pki_types::{CertificateDer, PrivateKeyDer};
