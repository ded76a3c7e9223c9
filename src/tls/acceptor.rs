//! [`TlsAcceptor`]: the rustls configuration new connections get, shared by the loops and the
//! handles, and swapped by [`ServerHandle::reload_tls`](crate::ServerHandle::reload_tls).
//!
//! Each accepted socket takes the current configuration (one uncontended read lock and an `Arc`
//! clone) and keeps it for its whole life: a reload changes what later connections get, never
//! what an open one uses.

use std::sync::{Arc, PoisonError, RwLock};

use mio::net::TcpStream;
use rustls::ServerConfig;
use rustls::server::UnbufferedServerConnection;

use super::TlsConfig;
use crate::metrics::Metrics;
use crate::transport::TlsStream;

/// The configuration for connections accepted from now on.
#[derive(Debug)]
pub(crate) struct TlsAcceptor {
    current: RwLock<Arc<ServerConfig>>,
}

impl TlsAcceptor {
    pub(crate) fn new(config: &TlsConfig) -> Self {
        TlsAcceptor {
            current: RwLock::new(Arc::clone(config.rustls_config())),
        }
    }

    /// A TLS server connection on a freshly accepted socket, before its handshake.
    pub(crate) fn accept(
        &self,
        socket: TcpStream,
        metrics: &Arc<Metrics>,
    ) -> Result<TlsStream, rustls::Error> {
        let config = Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner));
        let tls = UnbufferedServerConnection::new(config)?;
        Ok(TlsStream::new(socket, tls, Arc::clone(metrics)))
    }

    /// Connections accepted from now on get `config`.
    pub(crate) fn reload(&self, config: &TlsConfig) {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        *current = Arc::clone(config.rustls_config());
    }
}
