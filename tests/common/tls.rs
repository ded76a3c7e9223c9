//! TLS clients for the TLS tests (tests/tls.rs, tests/tls_interop.rs): a rustls client config
//! that trusts given certificates, a connection with its handshake done, and what it was shown.

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use rustls::crypto::{CryptoProvider, SupportedKxGroup};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// A rustls client over a blocking socket.
pub type TlsClient = StreamOwned<ClientConnection, TcpStream>;

/// A rustls client config that trusts `roots` only and offers ALPN `http/1.1`, with the
/// provider's default key exchange: X25519MLKEM768 first, with an X25519 key share beside it,
/// as Chrome, Firefox and Go's crypto/tls send.
pub fn client_config(roots: &[&CertificateDer<'static>]) -> Arc<ClientConfig> {
    client_config_with_groups(roots, rustls::crypto::aws_lc_rs::DEFAULT_KX_GROUPS)
}

/// [`client_config`] offering only the key-exchange groups `groups`, in that order.
pub fn client_config_with_groups(
    roots: &[&CertificateDer<'static>],
    groups: &[&'static dyn SupportedKxGroup],
) -> Arc<ClientConfig> {
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add((*root).clone()).expect("root");
    }
    let provider = Arc::new(CryptoProvider {
        kx_groups: groups.to_vec(),
        ..rustls::crypto::aws_lc_rs::default_provider()
    });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// A TLS connection to `addr` for the server name `name`, its handshake complete.
pub fn tls_connect(addr: SocketAddr, name: &str, config: Arc<ClientConfig>) -> TlsClient {
    let server_name = ServerName::try_from(name.to_owned()).expect("server name");
    let conn = ClientConnection::new(config, server_name).expect("client");
    let mut stream = StreamOwned::new(conn, super::raw(addr));
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .expect("TLS handshake");
    }
    stream
}

/// The leaf certificate a TLS client was shown.
pub fn peer_leaf(stream: &TlsClient) -> CertificateDer<'static> {
    stream.conn.peer_certificates().expect("certificates")[0].clone()
}
