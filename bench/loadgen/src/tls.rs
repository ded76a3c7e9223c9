//! `--tls`: WebSocket over TLS (`wss://`), with rustls's buffered client
//! ([`rustls::ClientConnection`], the `ring` provider), driven from the mio loops the way rustls's
//! `tlsclient-mio` example drives it: bytes from the socket go in through `read_tls` and
//! `process_new_packets`, plaintext comes out of `reader()`; what we send goes in through
//! `writer()` and out with `write_tls` while the connection `wants_write`.
//!
//! Two things differ from the example, both to keep the load generator's cost per byte down and
//! its syscalls the same as without TLS:
//!
//! - The socket is read into the loop's 256 KiB buffer (one `recv`, as in plain mode), and that is
//!   fed to `read_tls` as a byte slice: `read_tls` on the socket itself reads at most 4 KiB per
//!   call, so a 64 KiB echo would take 16 `recv`s.
//! - Interest is not re-registered from `wants_read`/`wants_write` after every event. The sockets
//!   stay registered for both, edge-triggered, as in plain mode: a client connection always wants
//!   to read, and every event ends with a flush that writes whatever rustls wants written
//!   ([`flush`]), so an edge is never missed and no `epoll_ctl` is spent per event.
//!
//! What the client does in a handshake is kept close to what a browser does, at the least cost
//! that keeps the server's side of it the same:
//!
//! - Cipher suites in a browser's order, `TLS13_AES_128_GCM_SHA256` first (rustls's own order puts
//!   AES-256 first). This matters: rustls servers follow the client's order, Go's crypto/tls its
//!   own (AES-128 first), so with rustls's order the Rust servers would negotiate AES-256 and
//!   SHA-384 and Go AES-128 and SHA-256, and the comparison would be between suites. The suite,
//!   version and key exchange negotiated are in the JSON line (`tls`).
//! - Key exchange: rustls's default, an X25519 key share (as browsers offer, less their
//!   post-quantum hybrid, which the `ring` provider does not have).
//! - The server's certificate: a certificate byte for byte equal to one in `--tls-ca` is
//!   accepted as it is (pinned: no chain to build, no signature over the certificate to check,
//!   no name or validity check); any other is verified by webpki with `--tls-ca` as the roots,
//!   for the name `--tls-name` (`localhost`, also sent as SNI). The handshake's own signature
//!   (CertificateVerify, the proof that the server holds the key) is always verified. Pinning
//!   saves the load generator one ECDSA verification per handshake (about 90 µs here), which the
//!   server never pays: the client's side of a TLS handshake costs more than the server's, and
//!   in `churn` the load generator's core is the limit first.
//! - Session resumption is off unless `--tls-resume`: every churn cycle is a full handshake,
//!   whatever tickets the server hands out.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use mio::net::TcpStream;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CipherSuite, ClientConfig, ClientConnection, DigitallySignedStruct, HandshakeKind,
    RootCertStore, SignatureScheme,
};

/// The client side of `--tls`: one config for every connection of every loop.
#[derive(Debug)]
pub(crate) struct Tls {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl Tls {
    /// Reads the trusted certificates from the PEM file `ca` and builds the client config.
    pub(crate) fn new(ca: &str, name: &str, resume: bool) -> Result<Tls, String> {
        let certs = CertificateDer::pem_file_iter(ca)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("--tls-ca {ca}: {e}"))?;
        if certs.is_empty() {
            return Err(format!("--tls-ca {ca}: no certificate in the file"));
        }
        let mut roots = RootCertStore::empty();
        for cert in &certs {
            roots
                .add(cert.clone())
                .map_err(|e| format!("--tls-ca {ca}: certificate not usable as a CA: {e}"))?;
        }
        let mut provider = rustls::crypto::ring::default_provider();
        // A browser's order: AES-128-GCM first (see the module's comment).
        provider
            .cipher_suites
            .sort_by_key(|s| s.suite() != CipherSuite::TLS13_AES_128_GCM_SHA256);
        let provider = Arc::new(provider);
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| format!("--tls-ca {ca}: {e}"))?;
        let verifier = Arc::new(Verifier {
            pinned: certs,
            webpki,
            algorithms: provider.signature_verification_algorithms,
        });
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS config: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        if !resume {
            config.resumption = Resumption::disabled();
        }
        let name = ServerName::try_from(name.to_owned())
            .map_err(|e| format!("--tls-name {name:?}: {e}"))?;
        Ok(Tls {
            config: Arc::new(config),
            name,
        })
    }

    /// A new client connection (its ClientHello waits in `wants_write`).
    pub(crate) fn connect(&self) -> Result<Box<ClientConnection>, String> {
        ClientConnection::new(Arc::clone(&self.config), self.name.clone())
            .map(Box::new)
            .map_err(|e| format!("TLS client: {e}"))
    }
}

/// The server certificate check: pinned certificates as they are, webpki for the rest (see the
/// module's comment); the handshake signatures by the provider's algorithms, always.
#[derive(Debug)]
struct Verifier {
    pinned: Vec<CertificateDer<'static>>,
    webpki: Arc<WebPkiServerVerifier>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self
            .pinned
            .iter()
            .any(|c| c.as_ref() == end_entity.as_ref())
        {
            return Ok(ServerCertVerified::assertion());
        }
        self.webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// What was negotiated, e.g. `TLSv1_3 TLS13_AES_128_GCM_SHA256 X25519` (for the JSON line).
pub(crate) fn describe(tls: &ClientConnection) -> String {
    let version = tls
        .protocol_version()
        .map_or("?".into(), |v| format!("{v:?}"));
    let suite = tls
        .negotiated_cipher_suite()
        .map_or("?".into(), |s| format!("{:?}", s.suite()));
    let group = tls
        .negotiated_key_exchange_group()
        .map_or("?".into(), |g| format!("{:?}", g.name()));
    format!("{version} {suite} {group}")
}

/// Whether the handshake resumed a session (`--tls-resume`).
pub(crate) fn resumed(tls: &ClientConnection) -> bool {
    tls.handshake_kind() == Some(HandshakeKind::Resumed)
}

/// Hands `out[*pos..]` to rustls (which encrypts it, or holds it until the handshake is done)
/// and writes the TLS records to the socket until it would block or nothing is left; clears `out`
/// once all of it is taken. Returns the bytes written to the socket (counted in `wire`).
pub(crate) fn flush(
    tls: &mut ClientConnection,
    stream: &mut TcpStream,
    out: &mut Vec<u8>,
    pos: &mut usize,
    wire: &AtomicU64,
) -> io::Result<usize> {
    let mut written = 0;
    loop {
        // rustls takes at most its buffer limit (64 KiB of records not yet written) at a time.
        while *pos < out.len() {
            let n = tls.writer().write(&out[*pos..])?;
            if n == 0 {
                break;
            }
            *pos += n;
        }
        if *pos == out.len() {
            out.clear();
            *pos = 0;
        }
        let mut progress = false;
        while tls.wants_write() {
            match tls.write_tls(stream) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    written += n;
                    progress = true;
                    wire.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(written),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // Done, or plaintext waits for the handshake (nothing to write until the server answers).
        if out.is_empty() || !progress {
            return Ok(written);
        }
    }
}

/// Whether rustls or `out` still hold bytes for the socket.
pub(crate) fn wants_write(tls: &ClientConnection, out: &[u8], pos: usize) -> bool {
    tls.wants_write() || pos < out.len()
}

/// Feeds `data`, bytes read from the socket, to rustls and puts the plaintext they carried in
/// `plain` (cleared first; empty while the handshake goes on). Returns true if the server sent
/// `close_notify` (the bytes after it are ignored). A TLS error (a bad record, a certificate
/// that does not verify, an alert from the server) is an `Err` with rustls's words.
pub(crate) fn decrypt(
    tls: &mut ClientConnection,
    mut data: &[u8],
    plain: &mut Vec<u8>,
) -> Result<bool, String> {
    plain.clear();
    while !data.is_empty() {
        // Takes what fits in its buffer (a few KiB); the loop gives it the rest.
        let n = tls
            .read_tls(&mut data)
            .map_err(|e| format!("TLS read: {e}"))?;
        let state = tls.process_new_packets().map_err(|e| format!("TLS: {e}"))?;
        let len = state.plaintext_bytes_to_read();
        if len > 0 {
            let start = plain.len();
            plain.resize(start + len, 0);
            tls.reader()
                .read_exact(&mut plain[start..])
                .map_err(|e| format!("TLS plaintext: {e}"))?;
        }
        if state.peer_has_closed() {
            return Ok(true);
        }
        if n == 0 {
            break;
        }
    }
    Ok(false)
}

/// Queues `close_notify` (sent by the next [`flush`]).
pub(crate) fn close_notify(tls: &mut ClientConnection) {
    tls.send_close_notify();
}
