//! TLS (feature `tls`) over real sockets: `wss://` and `https://` with rustls clients, SNI,
//! certificate rotation through `ServerHandle::reload_tls`, configuration errors, and every bad
//! input the issue names — garbage instead of a ClientHello, a truncated ClientHello, plaintext
//! HTTP on the TLS port, a stalled handshake, `close_notify` mid-message, an alert — none of
//! which may hurt the loop or leave memory held.

#![cfg(feature = "tls")]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::tls::{TlsClient, client_config, client_config_with_groups, peer_leaf, tls_connect};
use common::*;
use rustls::crypto::aws_lc_rs::kx_group;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConnection, NamedGroup, StreamOwned};
use tungstenite::Message as TMessage;
use wsreactor::tls::{TlsConfig, TlsError};
use wsreactor::{
    CloseInfo, ConnId, Context, Handler, Message, Request, Response, Server, ServerHandle,
};

/// A self-signed certificate for `names`: its DER (to trust) and the server's config.
struct TestCert {
    der: CertificateDer<'static>,
    cert_pem: String,
    key_pem: String,
}

impl TestCert {
    fn new(names: &[&str]) -> TestCert {
        let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
        let made = rcgen::generate_simple_self_signed(names).expect("rcgen");
        TestCert {
            der: CertificateDer::from(made.cert.der().to_vec()),
            cert_pem: made.cert.pem(),
            key_pem: made.signing_key.serialize_pem(),
        }
    }

    fn key(&self) -> PrivateKeyDer<'static> {
        use rustls::pki_types::pem::PemObject;
        PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).expect("key PEM")
    }

    fn config(&self) -> TlsConfig {
        TlsConfig::from_der(vec![self.der.clone()], self.key()).expect("TLS config")
    }

    /// A TLS client of `addr` for `localhost`, trusting this certificate alone, handshake done.
    fn connect(&self, addr: SocketAddr) -> TlsClient {
        tls_connect(addr, "localhost", client_config(&[&self.der]))
    }
}

/// A `wss://` client over a rustls connection.
fn wss(addr: SocketAddr, cert: &TestCert) -> tungstenite::WebSocket<TlsClient> {
    let stream = cert.connect(addr);
    let (client, response) =
        tungstenite::client(format!("wss://localhost:{}/ws", addr.port()), stream)
            .expect("websocket handshake over TLS");
    assert_eq!(response.status(), 101);
    client
}

fn start_tls<H>(config: wsreactor::Config, tls: TlsConfig, handler: H) -> Server
where
    H: Handler + Send + Sync,
    H::Session: Send,
{
    let _ = env_logger::builder().is_test(true).try_init();
    Server::builder()
        .config(config)
        .tls(tls)
        .build(handler)
        .expect("server starts")
}

/// Reads from a raw socket until EOF or reset, within the deadline; what came before.
fn read_to_end_or_reset(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0; 4096];
    let end = Instant::now() + DEADLINE;
    loop {
        assert!(Instant::now() < end, "the server did not close");
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// A real ClientHello, as a rustls client would send it first.
fn client_hello(cert: &TestCert) -> Vec<u8> {
    let name = ServerName::try_from("localhost").expect("name");
    let mut conn = ClientConnection::new(client_config(&[&cert.der]), name).expect("client");
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).expect("hello");
    hello
}

/// The server is still well: a new TLS client gets its echo.
fn assert_serves_wss(addr: SocketAddr, cert: &TestCert) {
    let mut client = wss(addr, cert);
    client.send(TMessage::text("still here")).unwrap();
    assert_eq!(client.read().unwrap(), TMessage::text("still here"));
}

#[test]
fn wss_echoes_text_binary_and_large_messages_and_closes_cleanly() {
    let cert = TestCert::new(&["localhost"]);
    let server = start_tls(config(), cert.config(), echo());
    let mut client = wss(server.local_addr(), &cert);
    assert_eq!(
        client.get_ref().conn.alpn_protocol(),
        Some(&b"http/1.1"[..]),
        "ALPN chose http/1.1"
    );
    client.send(TMessage::text("hello")).unwrap();
    assert_eq!(client.read().unwrap(), TMessage::text("hello"));
    client.send(TMessage::binary(vec![0, 1, 2, 255])).unwrap();
    assert_eq!(client.read().unwrap(), TMessage::binary(vec![0, 1, 2, 255]));
    // Bigger than a TLS record (16 KiB) and than one write's worth (64 KiB).
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    client.send(TMessage::binary(big.clone())).unwrap();
    assert_eq!(client.read().unwrap(), TMessage::binary(big));
    client
        .close(Some(tungstenite::protocol::CloseFrame {
            code: 1000.into(),
            reason: "bye".into(),
        }))
        .unwrap();
    loop {
        match client.read() {
            Ok(TMessage::Close(frame)) => {
                assert_eq!(frame.map(|f| u16::from(f.code)), Some(1000));
            }
            Ok(other) => panic!("unexpected {other:?}"),
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(err) => panic!("while closing: {err}"),
        }
    }
    let stats = wait_for_stats(&server.handle(), "closed", |s| s.connections_open == 0);
    assert_eq!(stats.tls_handshakes, 1);
    assert_eq!(stats.tls_errors, 0);
    assert_eq!(stats.closed_clean, 1);
    server.shutdown().unwrap();
}

#[test]
fn https_requests_are_answered_over_tls_with_keep_alive() {
    let cert = TestCert::new(&["localhost"]);
    let server = start_tls(
        config(),
        cert.config(),
        |_: &mut Context<'_>, _: Message| {},
    );
    let mut stream = cert.connect(server.local_addr());
    for _ in 0..2 {
        stream
            .write_all(b"GET /nothing HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let head = read_http_head(&mut stream).unwrap();
        assert!(head.starts_with("HTTP/1.1 404 Not Found\r\n"), "{head}");
        let len: usize = common::http::header(&head, "content-length")
            .parse()
            .unwrap();
        let mut body = vec![0; len];
        stream.read_exact(&mut body).unwrap();
    }
    server.shutdown().unwrap();
}

#[test]
fn plaintext_http_on_the_tls_port_gets_a_400_that_says_to_use_https() {
    let cert = TestCert::new(&["localhost"]);
    let server = start_tls(config(), cert.config(), echo());
    let mut stream = raw(server.local_addr());
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let got = String::from_utf8(read_to_end_or_reset(&mut stream)).unwrap();
    let body = "This port speaks TLS: use https:// or wss://\n";
    assert_eq!(
        got,
        format!(
            "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    );
    let stats = wait_for_stats(&server.handle(), "closed", |s| s.connections_open == 0);
    assert_eq!(stats.tls_plaintext_refused, 1);
    assert_serves_wss(server.local_addr(), &cert);
    server.shutdown().unwrap();
}

#[test]
fn garbage_instead_of_a_client_hello_gets_an_alert_and_the_connection_ends() {
    let cert = TestCert::new(&["localhost"]);
    let server = start_tls(config(), cert.config(), echo());
    // Not a record type at all, then a handshake record whose body is nonsense.
    for garbage in [
        vec![0x00, 0xff, 0x13, 0x37, 0x00, 0x10, 1, 2, 3, 4, 5, 6, 7, 8],
        [&[0x16, 0x03, 0x01, 0x00, 0x08][..], &[0xee; 8]].concat(),
    ] {
        let mut stream = raw(server.local_addr());
        stream.write_all(&garbage).unwrap();
        let got = read_to_end_or_reset(&mut stream);
        // A fatal alert record (type 21), or nothing: never application data.
        assert!(got.is_empty() || got[0] == 0x15, "{got:02x?}");
    }
    let stats = wait_for_stats(&server.handle(), "closed, nothing held", |s| {
        s.connections_open == 0 && s.buffered_bytes == 0
    });
    assert_eq!(stats.tls_errors, 2);
    assert_serves_wss(server.local_addr(), &cert);
    server.shutdown().unwrap();
}

#[test]
fn a_truncated_client_hello_and_a_silent_client_are_closed_at_the_request_deadline() {
    let cert = TestCert::new(&["localhost"]);
    let mut config = config();
    config.request_timeout = Duration::from_millis(300);
    let server = start_tls(config, cert.config(), echo());
    let hello = client_hello(&cert);
    let mut truncated = raw(server.local_addr());
    truncated.write_all(&hello[..hello.len() / 2]).unwrap();
    let mut silent = raw(server.local_addr());
    let started = Instant::now();
    assert!(read_to_end_or_reset(&mut truncated).is_empty());
    assert!(read_to_end_or_reset(&mut silent).is_empty());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250),
        "closed early: {waited:?}"
    );
    let stats = wait_for_stats(&server.handle(), "closed, nothing held", |s| {
        s.connections_open == 0 && s.buffered_bytes == 0
    });
    assert_eq!(stats.timeouts_request, 2);
    // Half a hello, then EOF: closed at once, not at the deadline.
    let mut half_then_eof = raw(server.local_addr());
    half_then_eof.write_all(&hello[..hello.len() / 2]).unwrap();
    half_then_eof.shutdown(std::net::Shutdown::Write).unwrap();
    let started = Instant::now();
    assert!(read_to_end_or_reset(&mut half_then_eof).is_empty());
    assert!(started.elapsed() < Duration::from_millis(250));
    assert_serves_wss(server.local_addr(), &cert);
    server.shutdown().unwrap();
}

#[test]
fn a_client_that_does_not_trust_the_certificate_sends_an_alert_and_is_counted() {
    let cert = TestCert::new(&["localhost"]);
    let stranger = TestCert::new(&["localhost"]);
    let server = start_tls(config(), cert.config(), echo());
    let name = ServerName::try_from("localhost").unwrap();
    let conn = ClientConnection::new(client_config(&[&stranger.der]), name).unwrap();
    let mut stream = StreamOwned::new(conn, raw(server.local_addr()));
    let mut failed = None;
    while stream.conn.is_handshaking() {
        if let Err(err) = stream.conn.complete_io(&mut stream.sock) {
            failed = Some(err);
            break;
        }
    }
    let err = failed.expect("the client refuses the certificate");
    assert!(err.to_string().contains("certificate"), "{err}");
    // The client's alert (unknown CA) reaches the server, which ends the connection.
    let stats = wait_for_stats(&server.handle(), "alert counted", |s| {
        s.tls_errors == 1 && s.connections_open == 0
    });
    assert_eq!(stats.tls_handshakes, 0);
    assert_serves_wss(server.local_addr(), &cert);
    server.shutdown().unwrap();
}

/// Records what `on_close` hears.
#[derive(Clone, Default)]
struct CloseRecorder {
    closes: Arc<Mutex<Vec<u16>>>,
}

impl Handler for CloseRecorder {
    type Session = ();

    fn on_message(&self, ctx: &mut Context<'_>, message: Message) {
        ctx.send(message);
    }

    fn on_close(&self, _: ConnId, _: (), close: &CloseInfo, _: &ServerHandle) {
        self.closes.lock().unwrap().push(u16::from(close.code));
    }

    fn on_http_request(&self, _: &Request) -> Response {
        Response::text(404, "no\n")
    }
}

#[test]
fn close_notify_in_the_middle_of_a_message_ends_the_connection_as_abnormal() {
    let cert = TestCert::new(&["localhost"]);
    let app = CloseRecorder::default();
    let server = start_tls(config(), cert.config(), app.clone());
    let mut stream = cert.connect(server.local_addr());
    stream.write_all(upgrade_request("/ws").as_bytes()).unwrap();
    let head = read_http_head(&mut stream).unwrap();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    // The first fragment of a text message, then close_notify: the message never ends.
    stream
        .write_all(&masked(false, 0x1, b"half a mess"))
        .unwrap();
    stream.conn.send_close_notify();
    stream.flush().unwrap();
    while stream.conn.wants_write() {
        stream.conn.write_tls(&mut stream.sock).unwrap();
    }
    // The server answers with its own close_notify and FIN: a clean end of the TLS stream.
    let mut rest = Vec::new();
    let read = stream.read_to_end(&mut rest);
    assert!(read.is_ok(), "{read:?}");
    assert!(rest.is_empty(), "no frames after close_notify: {rest:02x?}");
    wait_until("on_close", || !app.closes.lock().unwrap().is_empty());
    assert_eq!(*app.closes.lock().unwrap(), vec![1006]);
    let stats = wait_for_stats(&server.handle(), "closed, nothing held", |s| {
        s.connections_open == 0 && s.buffered_bytes == 0
    });
    assert_eq!(stats.tls_errors, 0);
    server.shutdown().unwrap();
}

#[test]
fn a_reload_serves_the_new_certificate_to_new_connections_while_old_ones_go_on() {
    let first = TestCert::new(&["localhost"]);
    let second = TestCert::new(&["localhost"]);
    let server = start_tls(config(), first.config(), echo());
    let addr = server.local_addr();
    let trust_both = client_config(&[&first.der, &second.der]);
    let mut old = tls_connect(addr, "localhost", Arc::clone(&trust_both));
    assert_eq!(peer_leaf(&old), first.der);
    server.handle().reload_tls(&second.config()).unwrap();
    let new = tls_connect(addr, "localhost", trust_both);
    assert_eq!(peer_leaf(&new), second.der);
    // The connection from before the reload still works.
    old.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = Vec::new();
    old.read_to_end(&mut response).unwrap();
    assert!(response.starts_with(b"HTTP/1.1 "), "{response:?}");
    server.shutdown().unwrap();
}

#[test]
fn sni_picks_the_certificate_for_the_name_asked() {
    let default = TestCert::new(&["localhost"]);
    let chat = TestCert::new(&["chat.test"]);
    let tls = default
        .config()
        .with_sni_der("chat.test", vec![chat.der.clone()], chat.key())
        .unwrap();
    let server = start_tls(config(), tls, echo());
    let trust = client_config(&[&default.der, &chat.der]);
    let addr = server.local_addr();
    assert_eq!(
        peer_leaf(&tls_connect(addr, "chat.test", Arc::clone(&trust))),
        chat.der
    );
    assert_eq!(
        peer_leaf(&tls_connect(addr, "localhost", trust)),
        default.der
    );
    server.shutdown().unwrap();
}

#[test]
fn configuration_errors_are_reported_by_kind() {
    let cert = TestCert::new(&["localhost"]);
    let other = TestCert::new(&["localhost"]);
    let dir = std::env::temp_dir().join(format!("wsreactor-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let cert_pem = write("cert.pem", &cert.cert_pem);
    let key_pem = write("key.pem", &cert.key_pem);
    let other_key = write("other-key.pem", &other.key_pem);
    let empty = write("empty.pem", "");
    assert!(TlsConfig::from_pem_files(&cert_pem, &key_pem).is_ok());
    let missing = dir.join("missing.pem");
    match TlsConfig::from_pem_files(&missing, &key_pem) {
        Err(TlsError::Pem { path, .. }) => assert_eq!(path, missing),
        other => panic!("{other:?}"),
    }
    match TlsConfig::from_pem_files(&empty, &key_pem) {
        Err(TlsError::NoCertificate(path)) => assert_eq!(path, empty),
        other => panic!("{other:?}"),
    }
    match TlsConfig::from_pem_files(&cert_pem, &empty) {
        Err(TlsError::Pem { path, .. }) => assert_eq!(path, empty),
        other => panic!("{other:?}"),
    }
    match TlsConfig::from_pem_files(&cert_pem, &other_key) {
        Err(TlsError::Rustls(err)) => assert!(err.to_string().contains("key"), "{err}"),
        other => panic!("a key that is not the certificate's: {other:?}"),
    }
    match TlsConfig::from_pem(b"not pem", cert.key_pem.as_bytes()) {
        Err(TlsError::NoCertificate(_)) => {}
        other => panic!("{other:?}"),
    }
    let custom = TlsConfig::from_rustls(Arc::clone(cert.config().rustls_config()));
    match custom.with_sni_der("x.test", vec![other.der.clone()], other.key()) {
        Err(TlsError::SniOnCustomConfig) => {}
        other => panic!("{other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();

    let plain = start(config(), echo());
    match plain.handle().reload_tls(&cert.config()) {
        Err(TlsError::NotEnabled) => {}
        other => panic!("{other:?}"),
    }
    plain.shutdown().unwrap();
}

#[test]
fn idle_tls_connections_hold_no_buffers() {
    let cert = TestCert::new(&["localhost"]);
    let server = start_tls(config(), cert.config(), echo());
    let mut clients: Vec<_> = (0..20).map(|_| wss(server.local_addr(), &cert)).collect();
    for client in &mut clients {
        client.send(TMessage::binary(vec![7; 40_000])).unwrap();
        assert_eq!(client.read().unwrap(), TMessage::binary(vec![7; 40_000]));
    }
    let stats = wait_for_stats(&server.handle(), "all idle", |s| {
        s.buffered_bytes == 0 && s.buffers_in_use == 0
    });
    assert_eq!(stats.websocket_open, 20);
    assert_eq!(stats.tls_handshakes, 20);
    drop(clients);
    server.shutdown().unwrap();
}

#[test]
fn shutdown_sends_1001_over_tls() {
    let cert = TestCert::new(&["localhost"]);
    let server = start_tls(config(), cert.config(), echo());
    let mut client = wss(server.local_addr(), &cert);
    let (done_tx, done_rx) = mpsc::channel();
    let handle = server.handle();
    std::thread::spawn(move || done_tx.send(server.shutdown()).unwrap());
    match client.read() {
        Ok(TMessage::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("expected a 1001 close, got {other:?}"),
    }
    drop(client);
    let result = done_rx.recv_timeout(DEADLINE).expect("shutdown finished");
    assert!(result.is_ok(), "{result:?}");
    drop(handle);
}

/// A small deterministic generator (xorshift), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn mutated_handshakes_and_corrupt_records_never_hurt_the_loop() {
    let cert = TestCert::new(&["localhost"]);
    let mut config = config();
    config.request_timeout = Duration::from_millis(200);
    let server = start_tls(config, cert.config(), echo());
    let addr = server.local_addr();
    let hello = client_hello(&cert);
    let trust = client_config(&[&cert.der]);
    let mut rng = Rng(0x5eed_1e55_0000_0011);
    for round in 0..150 {
        let mut stream = match round % 3 {
            // A ClientHello with a few bytes changed, maybe cut short.
            0 => {
                let mut bytes = hello.clone();
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(bytes.len());
                    bytes[at] ^= 1 << rng.below(8);
                }
                bytes.truncate(1 + rng.below(bytes.len()));
                let mut stream = raw(addr);
                let _ = stream.write_all(&bytes);
                stream
            }
            // Random bytes after a valid record header of each content type.
            1 => {
                let kind = [0x14, 0x15, 0x16, 0x17][rng.below(4)];
                let len = rng.below(300);
                let mut bytes = vec![kind, 0x03, 0x03, (len >> 8) as u8, len as u8];
                bytes.extend((0..len).map(|_| rng.next() as u8));
                let mut stream = raw(addr);
                let _ = stream.write_all(&bytes);
                stream
            }
            // A finished handshake, then records that do not decrypt.
            _ => {
                let client = tls_connect(addr, "localhost", Arc::clone(&trust));
                let mut stream = client.sock;
                let len = 17 + rng.below(200);
                let mut bytes = vec![0x17, 0x03, 0x03, (len >> 8) as u8, len as u8];
                bytes.extend((0..len).map(|_| rng.next() as u8));
                let _ = stream.write_all(&bytes);
                stream
            }
        };
        let _ = stream.shutdown(std::net::Shutdown::Write);
        read_to_end_or_reset(&mut stream);
    }
    let stats = wait_for_stats(&server.handle(), "all closed, nothing held", |s| {
        s.connections_open == 0 && s.buffered_bytes == 0
    });
    assert!(stats.tls_errors >= 100, "{stats:?}");
    assert_serves_wss(addr, &cert);
    server.shutdown().unwrap();
}

#[test]
fn a_request_and_a_frame_split_into_one_byte_records_are_served() {
    let cert = TestCert::new(&["localhost"]);
    let server = start_tls(config(), cert.config(), echo());
    let mut stream = cert.connect(server.local_addr());
    stream.conn.set_buffer_limit(None);
    // Every byte its own record, all of them in one burst on the socket.
    let one_byte_records = |bytes: &[u8], stream: &mut TlsClient| {
        for byte in bytes {
            stream.conn.writer().write_all(&[*byte]).unwrap();
        }
        while stream.conn.wants_write() {
            stream.conn.write_tls(&mut stream.sock).unwrap();
        }
    };
    one_byte_records(upgrade_request("/ws").as_bytes(), &mut stream);
    let head = read_http_head(&mut stream).unwrap();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    let text = "x".repeat(3000);
    one_byte_records(&masked(true, 0x1, text.as_bytes()), &mut stream);
    let mut reply = vec![0; 4 + text.len()];
    stream.read_exact(&mut reply).unwrap();
    assert_eq!(&reply[..4], &[0x81, 126, 0x0b, 0xb8]);
    assert_eq!(&reply[4..], text.as_bytes());
    server.shutdown().unwrap();
}

/// The key-exchange groups a ClientHello record carries key shares for (RFC 8446 §4.2.8), in
/// its order.
fn key_share_groups(hello: &[u8]) -> Vec<u16> {
    let u16_at = |at: usize| u16::from_be_bytes([hello[at], hello[at + 1]]);
    assert_eq!(hello[0], 22, "a handshake record");
    assert_eq!(hello[5], 1, "a ClientHello");
    // Record header (5), handshake header (4), version (2), random (32).
    let mut at = 5 + 4 + 2 + 32;
    at += 1 + hello[at] as usize; // session id
    at += 2 + u16_at(at) as usize; // cipher suites
    at += 1 + hello[at] as usize; // compression methods
    let end = at + 2 + u16_at(at) as usize;
    at += 2;
    while at < end {
        let (kind, len) = (u16_at(at), u16_at(at + 2) as usize);
        if kind == 51 {
            let mut groups = Vec::new();
            let mut share = at + 4 + 2;
            while share < at + 4 + len {
                groups.push(u16_at(share));
                share += 4 + u16_at(share + 2) as usize;
            }
            return groups;
        }
        at += 4 + len;
    }
    panic!("no key_share extension");
}

#[test]
fn a_client_offering_x25519mlkem768_and_x25519_gets_the_post_quantum_hybrid() {
    let cert = TestCert::new(&["localhost"]);
    // The client sends key shares for both, as Chrome, Firefox and Go do: the hybrid group
    // first, and its classical half beside it.
    let offered = key_share_groups(&client_hello(&cert));
    let (hybrid, classical) = (
        u16::from(NamedGroup::X25519MLKEM768),
        u16::from(NamedGroup::X25519),
    );
    assert_eq!(offered, [hybrid, classical]);

    let server = start_tls(config(), cert.config(), echo());
    let stream = cert.connect(server.local_addr());
    let group = stream.conn.negotiated_key_exchange_group().expect("group");
    assert_eq!(group.name(), NamedGroup::X25519MLKEM768);
    assert_serves_wss(server.local_addr(), &cert);
    server.shutdown().unwrap();
}

#[test]
fn a_client_offering_only_x25519_still_connects_and_gets_x25519() {
    let cert = TestCert::new(&["localhost"]);
    let classical_only = client_config_with_groups(&[&cert.der], &[kx_group::X25519]);
    let server = start_tls(config(), cert.config(), echo());
    let stream = tls_connect(server.local_addr(), "localhost", classical_only);
    let group = stream.conn.negotiated_key_exchange_group().expect("group");
    assert_eq!(group.name(), NamedGroup::X25519);
    // The connection serves: a request over it is answered.
    let mut stream = stream;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let head = read_http_head(&mut stream).unwrap();
    assert!(head.starts_with("HTTP/1.1 404 Not Found\r\n"), "{head}");
    server.shutdown().unwrap();
}

/// The records of what the server sends, counted on the wire beside a rustls client reading
/// them: (records, plaintext) once `want` bytes of plaintext have come.
fn records_until(stream: &mut TlsClient, want: usize) -> (usize, Vec<u8>) {
    let mut raw = Vec::new();
    let (mut parsed, mut records) = (0, 0);
    let mut plaintext = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    while plaintext.len() < want {
        let n = stream.sock.read(&mut chunk).expect("read");
        assert!(n > 0, "EOF after {} bytes of plaintext", plaintext.len());
        raw.extend_from_slice(&chunk[..n]);
        // A record: type, version (2 bytes), length (2 bytes), then that many bytes.
        while raw.len() >= parsed + 5 {
            let length = usize::from(u16::from_be_bytes([raw[parsed + 3], raw[parsed + 4]]));
            if raw.len() < parsed + 5 + length {
                break;
            }
            parsed += 5 + length;
            records += 1;
        }
        let mut rest = &chunk[..n];
        while !rest.is_empty() {
            stream.conn.read_tls(&mut rest).expect("read_tls");
            stream.conn.process_new_packets().expect("records");
            let _ = stream.conn.reader().read_to_end(&mut plaintext);
        }
    }
    (records, plaintext)
}

#[test]
fn a_64_kib_message_and_its_header_go_out_in_five_records() {
    let cert = TestCert::new(&["localhost"]);
    let server = start_tls(config(), cert.config(), echo());
    let mut stream = cert.connect(server.local_addr());
    stream.write_all(upgrade_request("/ws").as_bytes()).unwrap();
    let head = read_http_head(&mut stream).unwrap();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    // Session tickets came with the handshake's end; nothing else is pending.
    let payload: Vec<u8> = (0..64 * 1024u32).map(|i| (i % 251) as u8).collect();
    stream.write_all(&masked(true, 0x2, &payload)).unwrap();
    // The echo: a 10-byte header and 64 KiB. Four full records for 64 KiB and one for the
    // header — not a sixth for the last 10 bytes past the first write's 64 KiB.
    let (records, echoed) = records_until(&mut stream, 10 + payload.len());
    assert_eq!(&echoed[..10], &[0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]);
    assert!(echoed[10..] == payload[..], "the payload comes back");
    assert_eq!(records, 5);
    server.shutdown().unwrap();
}
