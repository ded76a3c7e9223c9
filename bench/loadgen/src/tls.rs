//! `--tls`: WebSocket over TLS (`wss://`), with rustls's buffered client
//! ([`rustls::ClientConnection`], the `aws-lc-rs` provider, as the echo example's), driven from the mio loops the way rustls's
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
//!   version and key exchange negotiated are in the JSON line (`tls`), and the key-exchange group
//!   of every handshake is counted (`tls_groups`, [`Handshakes`]).
//! - Key exchange: the provider's default, as Chrome and Firefox offer it: the hybrid
//!   post-quantum X25519MLKEM768 first, with two key shares in the ClientHello, X25519MLKEM768
//!   and plain X25519 (the hybrid's X25519 half, sent for free), so a server without ML-KEM
//!   (Debian's Go 1.19) picks X25519 without a HelloRetryRequest round trip (counted in
//!   `tls_hello_retries`, which stays 0 when that holds). A server with it (rustls: the echo
//!   example and tokio-echo) negotiates X25519MLKEM768: an ML-KEM-768 encapsulation on top of
//!   the X25519 exchange, on both sides. `--tls-groups X25519` offers X25519 alone, for a key
//!   exchange like for like with a server that has no ML-KEM.
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
use rustls::crypto::{SupportedKxGroup, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CipherSuite, ClientConfig, ClientConnection, DigitallySignedStruct, HandshakeKind, NamedGroup,
    RootCertStore, SignatureScheme,
};

use super::Json;

/// The client side of `--tls`: one config for every connection of every loop.
#[derive(Debug)]
pub(crate) struct Tls {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl Tls {
    /// Reads the trusted certificates from the PEM file `ca` and builds the client config;
    /// `groups` is `--tls-groups` (`None`: the provider's default key exchange).
    pub(crate) fn new(
        ca: &str,
        name: &str,
        resume: bool,
        groups: Option<&str>,
    ) -> Result<Tls, String> {
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
        let mut provider = rustls::crypto::aws_lc_rs::default_provider();
        if let Some(groups) = groups {
            provider.kx_groups = kx_groups(groups)?;
        }
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

/// `--tls-groups`: the key-exchange groups named in `list` (comma-separated, any case), in that
/// order; the first gets a key share in the ClientHello (and its X25519 half, for the hybrid).
fn kx_groups(list: &str) -> Result<Vec<&'static dyn SupportedKxGroup>, String> {
    let known = rustls::crypto::aws_lc_rs::ALL_KX_GROUPS;
    let group_name = |g: &&dyn SupportedKxGroup| format!("{:?}", g.name());
    list.split(',')
        .map(|name| {
            known
                .iter()
                .find(|g| group_name(g).eq_ignore_ascii_case(name.trim()))
                .copied()
                .ok_or_else(|| {
                    let known: Vec<String> = known.iter().map(group_name).collect();
                    format!(
                        "--tls-groups: unknown group {name:?} (known: {})",
                        known.join(", ")
                    )
                })
        })
        .collect()
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

/// What the completed handshakes negotiated, tallied per loop and merged for the JSON line: the
/// first one's [`describe`], and over all of them the key-exchange groups, the resumed sessions
/// and the HelloRetryRequests.
#[derive(Debug, Default)]
pub(crate) struct Handshakes {
    first: Option<String>,
    /// Handshakes per key-exchange group (`None`: none negotiated, a TLS 1.2 resumption), in
    /// the order the groups were first seen (one or two entries: a linear search is enough).
    groups: Vec<(Option<NamedGroup>, u64)>,
    /// Handshakes that resumed a session (only with `--tls-resume`).
    resumed: u64,
    /// Handshakes in which the server asked for another key share (HelloRetryRequest).
    retried: u64,
}

impl Handshakes {
    /// Counts the handshake `tls` has just completed.
    pub(crate) fn record(&mut self, tls: &ClientConnection) {
        self.first.get_or_insert_with(|| describe(tls));
        let group = tls.negotiated_key_exchange_group().map(|g| g.name());
        self.add_group(group, 1);
        match tls.handshake_kind() {
            Some(HandshakeKind::Resumed) => self.resumed += 1,
            Some(HandshakeKind::FullWithHelloRetryRequest) => self.retried += 1,
            _ => {}
        }
    }

    /// Adds another loop's tally to this one (its first handshake counts if this has none).
    pub(crate) fn merge(&mut self, other: Handshakes) {
        if self.first.is_none() {
            self.first = other.first;
        }
        for (group, n) in other.groups {
            self.add_group(group, n);
        }
        self.resumed += other.resumed;
        self.retried += other.retried;
    }

    fn add_group(&mut self, group: Option<NamedGroup>, n: u64) {
        match self.groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, count)) => *count += n,
            None => self.groups.push((group, n)),
        }
    }

    /// `tls` (the first handshake's [`describe`], or `not established`), `tls_groups` (every
    /// handshake's key-exchange group, most used first: `"X25519MLKEM768:100"`, or
    /// `"X25519MLKEM768:90,X25519:10"` if they differed), `tls_resumed` and `tls_hello_retries`.
    pub(crate) fn write_json(&self, j: &mut Json) {
        j.str("tls", self.first.as_deref().unwrap_or("not established"));
        let mut groups = self.groups.clone();
        groups.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
        let groups: Vec<String> = groups
            .iter()
            .map(|(g, n)| match g {
                Some(g) => format!("{g:?}:{n}"),
                None => format!("none:{n}"),
            })
            .collect();
        j.str("tls_groups", &groups.join(","));
        j.int("tls_resumed", self.resumed);
        j.int("tls_hello_retries", self.retried);
    }
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
