//! WebSocket behaviour over real sockets: echo, fragmentation, control frames, the close
//! handshake, every protocol violation the server must answer with a specific close code, the
//! opening handshake's edge cases (early first frame, subprotocols, rejection).
//!
//! Well-formed traffic goes through tungstenite; malformed bytes go through a raw `TcpStream`
//! with frames built by `common::frame` / `common::masked`.

mod common;

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex};

use common::*;
use tungstenite::Message;
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::CloseFrame as TCloseFrame;
use tungstenite::protocol::frame::coding::CloseCode as TCloseCode;
use wsreactor::{Context, Handler, OriginPolicy, Request, Upgrade, UpgradeOffer, UpgradeOrigin};

const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CONT: u8 = 0x0;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// Deterministic pseudo-random bytes (xorshift64*), so a failure is reproducible.
fn random_bytes(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Sends `bytes` on a fresh raw WebSocket connection to an echo server and asserts the server
/// fails the connection with `code`, then closes TCP.
fn expect_failure(bytes: &[u8], code: u16) {
    let server = start(config(), echo());
    let mut stream = raw_websocket(server.local_addr());
    stream.write_all(bytes).unwrap();
    assert_eq!(read_close_code(&mut stream), Some(code));
    assert!(
        reaches_eof(&mut stream),
        "server keeps the TCP connection open"
    );
    // Our FIN ends the server's lingering at once (instead of at its close timeout).
    stream.shutdown(Shutdown::Write).unwrap();
    let stats = wait_for_stats(&server.handle(), "connection closed", |s| {
        s.connections_open == 0
    });
    assert_eq!(stats.closed_protocol_error, 1, "{stats:?}");
    assert_eq!(stats.messages_out, 0, "{stats:?}");
    server.shutdown().unwrap();
}

/// A close-frame payload: code then reason.
fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason);
    payload
}

#[test]
fn echoes_text_and_binary_messages_exactly() {
    let server = start(config(), echo());
    let mut client = connect(server.local_addr());
    let texts = ["hello", "héllo wörld ✓", "a", &"x".repeat(200), "🦀🦀"];
    for text in texts {
        client.send(Message::text(text)).unwrap();
        assert_eq!(client.read().unwrap(), Message::text(text));
    }
    let binaries: [Vec<u8>; 4] = [
        vec![0, 1, 2, 255],
        vec![0xFF; 126],
        random_bytes(65_536, 7),
        random_bytes(70_000, 8),
    ];
    for binary in &binaries {
        client.send(Message::binary(binary.clone())).unwrap();
        assert_eq!(client.read().unwrap(), Message::binary(binary.clone()));
    }
    // Empty messages are valid and are echoed as empty messages of the same type.
    client.send(Message::text("")).unwrap();
    assert_eq!(client.read().unwrap(), Message::text(""));
    client.send(Message::binary(Vec::new())).unwrap();
    assert_eq!(client.read().unwrap(), Message::binary(Vec::new()));

    let stats = server.handle().stats();
    assert_eq!(stats.messages_in, 11);
    assert_eq!(stats.messages_out, 11);
    client.close(None).unwrap();
    server.shutdown().unwrap();
}

#[test]
fn pipelined_messages_are_echoed_in_order() {
    let server = start(config(), echo());
    let mut client = connect(server.local_addr());
    for i in 0..50 {
        client.write(Message::text(format!("m{i}"))).unwrap();
    }
    client.flush().unwrap();
    for i in 0..50 {
        assert_eq!(client.read().unwrap(), Message::text(format!("m{i}")));
    }
    client.close(None).unwrap();
    server.shutdown().unwrap();
}

#[test]
fn one_mebibyte_messages_are_echoed_byte_for_byte() {
    let server = start(config(), echo());
    let mut client = connect(server.local_addr());

    let binary = random_bytes(1024 * 1024, 0x5EED);
    client.send(Message::binary(binary.clone())).unwrap();
    match client.read().unwrap() {
        Message::Binary(echoed) => {
            assert_eq!(echoed.len(), binary.len());
            assert!(echoed[..] == binary[..], "binary echo differs");
        }
        other => panic!("expected binary, got {other:?}"),
    }

    // Text with multi-byte characters straddling every read-buffer boundary.
    let alphabet = ['a', 'é', '✓', '🦀', 'Z', ' '];
    let mut text = String::new();
    let mut i = 0usize;
    while text.len() < 1024 * 1024 {
        text.push(alphabet[(i * 7 + i / 3) % alphabet.len()]);
        i += 1;
    }
    client.send(Message::text(text.clone())).unwrap();
    match client.read().unwrap() {
        Message::Text(echoed) => assert!(echoed.as_str() == text, "text echo differs"),
        other => panic!("expected text, got {other:?}"),
    }
    let stats = server.handle().stats();
    assert_eq!(stats.messages_in, 2);
    assert!(stats.bytes_in > 2 * 1024 * 1024, "{stats:?}");
    client.close(None).unwrap();
    server.shutdown().unwrap();
}

#[test]
fn raw_one_mebibyte_binary_frame_is_echoed() {
    let server = start(config(), echo());
    let mut stream = raw_websocket(server.local_addr());
    let payload = random_bytes(1024 * 1024, 99);
    let frame = masked(true, BINARY, &payload);
    // Write from another thread while this one reads: neither side may need the other to be
    // idle for progress.
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || writer.write_all(&frame).unwrap());
    let (fin, opcode, echoed) = read_frame(&mut stream).unwrap();
    sender.join().unwrap();
    assert!(fin);
    assert_eq!(opcode, BINARY);
    assert!(echoed == payload, "echo differs");
    // Gone before the shutdown: it would not answer the server's close frame.
    drop(stream);
    server.shutdown().unwrap();
}

#[test]
fn fragmented_text_with_ping_in_the_middle() {
    let server = start(config(), echo());
    let mut stream = raw_websocket(server.local_addr());
    let mut bytes = masked(false, TEXT, b"Hel");
    bytes.extend(masked(true, PING, b"ping-1"));
    bytes.extend(masked(false, CONT, "lo, wö".as_bytes()));
    bytes.extend(masked(true, CONT, b"rld"));
    stream.write_all(&bytes).unwrap();
    assert_eq!(
        read_frame(&mut stream).unwrap(),
        (true, PONG, b"ping-1".to_vec())
    );
    assert_eq!(
        read_frame(&mut stream).unwrap(),
        (true, TEXT, "Hello, wörld".as_bytes().to_vec())
    );
    assert_eq!(server.handle().stats().messages_in, 1);
    // Gone before the shutdown: it would not answer the server's close frame.
    drop(stream);
    server.shutdown().unwrap();
}

#[test]
fn utf8_sequence_split_across_fragments_is_valid() {
    let server = start(config(), echo());
    let mut stream = raw_websocket(server.local_addr());
    // "κ" is CE BA, "🦀" is F0 9F A6 80: both cut between fragments.
    let mut bytes = masked(false, TEXT, b"a\xCE");
    bytes.extend(masked(false, CONT, b"\xBAb\xF0\x9F"));
    bytes.extend(masked(true, CONT, b"\xA6\x80"));
    stream.write_all(&bytes).unwrap();
    assert_eq!(
        read_frame(&mut stream).unwrap(),
        (true, TEXT, "aκb🦀".as_bytes().to_vec())
    );
    // Gone before the shutdown: it would not answer the server's close frame.
    drop(stream);
    server.shutdown().unwrap();
}

#[test]
fn ping_gets_pong_with_the_same_payload() {
    let server = start(config(), echo());
    let mut stream = raw_websocket(server.local_addr());
    let payloads: [&[u8]; 3] = [b"", b"hello ping", &[0xAB; 125]];
    for payload in payloads {
        stream.write_all(&masked(true, PING, payload)).unwrap();
        assert_eq!(
            read_frame(&mut stream).unwrap(),
            (true, PONG, payload.to_vec())
        );
    }
    // An unsolicited pong is ignored: the next thing back is the echo.
    let mut bytes = masked(true, PONG, b"unsolicited");
    bytes.extend(masked(true, TEXT, b"after"));
    stream.write_all(&bytes).unwrap();
    assert_eq!(
        read_frame(&mut stream).unwrap(),
        (true, TEXT, b"after".to_vec())
    );
    // Gone before the shutdown: it would not answer the server's close frame.
    drop(stream);
    server.shutdown().unwrap();
}

#[test]
fn close_handshake_raw_echoes_code_then_closes_tcp() {
    let server = start(config(), echo());
    let mut stream = raw_websocket(server.local_addr());
    // A message just before the close frame is still answered, before the close reply.
    let mut bytes = masked(true, TEXT, b"last words");
    bytes.extend(masked(true, CLOSE, &close_payload(4000, b"bye")));
    stream.write_all(&bytes).unwrap();
    assert_eq!(
        read_frame(&mut stream).unwrap(),
        (true, TEXT, b"last words".to_vec())
    );
    let (fin, opcode, payload) = read_frame(&mut stream).unwrap();
    assert!(fin);
    assert_eq!(opcode, CLOSE);
    assert_eq!(&payload[..2], &4000u16.to_be_bytes());
    assert!(reaches_eof(&mut stream), "server did not close TCP");
    stream.shutdown(Shutdown::Write).unwrap();
    let stats = wait_for_stats(&server.handle(), "clean close", |s| s.connections_open == 0);
    assert_eq!(stats.closed_clean, 1, "{stats:?}");
    server.shutdown().unwrap();
}

#[test]
fn close_handshake_with_tungstenite() {
    let server = start(config(), echo());
    let mut client = connect(server.local_addr());
    client.send(Message::text("hi")).unwrap();
    assert_eq!(client.read().unwrap(), Message::text("hi"));
    client
        .close(Some(TCloseFrame {
            code: TCloseCode::from(4000),
            reason: "bye".into(),
        }))
        .unwrap();
    match client.read().unwrap() {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 4000),
        other => panic!("expected the close reply, got {other:?}"),
    }
    assert!(matches!(
        client.read(),
        Err(tungstenite::Error::ConnectionClosed)
    ));
    // Our FIN: the server, lingering after its close reply, sees EOF and ends the connection.
    drop(client);
    wait_for_stats(&server.handle(), "clean close", |s| {
        s.connections_open == 0 && s.closed_clean == 1
    });
    server.shutdown().unwrap();
}

#[test]
fn empty_close_frame_is_answered_with_empty_close() {
    let server = start(config(), echo());
    let mut stream = raw_websocket(server.local_addr());
    stream.write_all(&masked(true, CLOSE, b"")).unwrap();
    assert_eq!(read_close_code(&mut stream), None);
    assert!(reaches_eof(&mut stream));
    server.shutdown().unwrap();
}

#[test]
fn unmasked_client_frame_is_1002() {
    expect_failure(&frame(true, TEXT, b"hi", None), 1002);
}

#[test]
fn invalid_utf8_text_is_1007() {
    expect_failure(&masked(true, TEXT, b"ok\xFF\xFEok"), 1007);
}

#[test]
fn invalid_utf8_split_across_fragments_is_1007() {
    // A valid 4-byte prefix, then a continuation that breaks it.
    let mut bytes = masked(false, TEXT, b"ab\xF0\x9F");
    bytes.extend(masked(true, CONT, b"A"));
    expect_failure(&bytes, 1007);
}

#[test]
fn invalid_utf8_fails_before_the_message_ends() {
    // Only the first fragment is sent: the server must not wait for the rest (fail fast).
    expect_failure(&masked(false, TEXT, b"abc\xC0\xAF"), 1007);
}

#[test]
fn text_ending_in_a_truncated_sequence_is_1007() {
    let mut bytes = masked(false, TEXT, b"abc");
    bytes.extend(masked(true, CONT, b"\xCE"));
    expect_failure(&bytes, 1007);
}

#[test]
fn message_over_max_message_size_is_1009_from_the_header() {
    let mut config = config();
    config.max_message_size = 1024;
    let server = start(config, echo());
    let mut stream = raw_websocket(server.local_addr());

    // At the limit: fine.
    let payload = vec![b'x'; 1024];
    stream.write_all(&masked(true, BINARY, &payload)).unwrap();
    assert_eq!(read_frame(&mut stream).unwrap(), (true, BINARY, payload));

    // Over it: only the header (2 + 2 length + 4 mask bytes) is sent; the server must decide
    // from the announced length, without waiting for the payload.
    let big = masked(true, BINARY, &[0u8; 2000]);
    stream.write_all(&big[..8]).unwrap();
    assert_eq!(read_close_code(&mut stream), Some(1009));
    assert!(reaches_eof(&mut stream));
    server.shutdown().unwrap();
}

#[test]
fn a_two_gibibyte_length_header_is_1009_at_once_with_default_limits() {
    let server = start(config(), echo());
    let handle = server.handle();
    let mut stream = raw_websocket(server.local_addr());
    // A binary frame announcing 2 GiB (64-bit length), with its mask key, and no payload.
    let mut header = vec![0x82, 0x80 | 127];
    header.extend_from_slice(&(2u64 << 30).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    stream.write_all(&header).unwrap();
    assert_eq!(read_close_code(&mut stream), Some(1009));
    assert!(reaches_eof(&mut stream));
    drop(stream); // our FIN ends the server's lingering at once
    let stats = wait_for_stats(&handle, "closed", |s| s.connections_open == 0);
    assert_eq!(stats.closed_protocol_error, 1);
    assert_eq!(stats.pending_outbound_bytes, 0);
    server.shutdown().unwrap();
}

#[test]
fn fragmented_message_over_max_message_size_is_1009() {
    let mut config = config();
    config.max_message_size = 1024;
    let server = start(config, echo());
    let mut stream = raw_websocket(server.local_addr());
    let mut bytes = masked(false, TEXT, &[b'a'; 600]);
    bytes.extend(masked(true, CONT, &[b'b'; 600]));
    stream.write_all(&bytes).unwrap();
    assert_eq!(read_close_code(&mut stream), Some(1009));
    assert!(reaches_eof(&mut stream));
    assert_eq!(server.handle().stats().messages_out, 0);
    server.shutdown().unwrap();
}

#[test]
fn reserved_bit_rsv1_is_1002() {
    let mut bytes = masked(true, TEXT, b"compressed?");
    bytes[0] |= 0x40;
    expect_failure(&bytes, 1002);
}

#[test]
fn unknown_opcode_is_1002() {
    expect_failure(&masked(true, 0x3, b"what"), 1002);
}

#[test]
fn control_frame_over_125_bytes_is_1002() {
    expect_failure(&masked(true, PING, &[b'p'; 126]), 1002);
}

#[test]
fn fragmented_ping_is_1002() {
    expect_failure(&masked(false, PING, b"frag"), 1002);
}

#[test]
fn continuation_without_start_is_1002() {
    expect_failure(&masked(true, CONT, b"orphan"), 1002);
}

#[test]
fn new_data_frame_inside_fragmented_message_is_1002() {
    let mut bytes = masked(false, TEXT, b"part one");
    bytes.extend(masked(true, TEXT, b"not a continuation"));
    expect_failure(&bytes, 1002);
}

#[test]
fn close_with_forbidden_codes_is_1002() {
    for code in [1005u16, 999, 5000, 1006, 1015] {
        expect_failure(&masked(true, CLOSE, &close_payload(code, b"")), 1002);
    }
}

#[test]
fn close_with_invalid_utf8_reason_is_1007() {
    expect_failure(
        &masked(true, CLOSE, &close_payload(1000, b"bad \xFF")),
        1007,
    );
}

#[test]
fn close_with_one_byte_payload_is_1002() {
    expect_failure(&masked(true, CLOSE, &[0x03]), 1002);
}

#[test]
fn first_frame_in_the_upgrade_write_is_not_lost() {
    let server = start(config(), echo());
    let mut stream = raw(server.local_addr());
    let mut bytes = upgrade_request("/ws").into_bytes();
    bytes.extend(masked(true, TEXT, b"early bird"));
    bytes.extend(masked(true, BINARY, &[1, 2, 3]));
    stream.write_all(&bytes).unwrap();
    let head = read_http_head(&mut stream).unwrap();
    assert_eq!(status(&head), 101, "{head}");
    assert!(
        head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
        "{head}"
    );
    assert_eq!(
        read_frame(&mut stream).unwrap(),
        (true, TEXT, b"early bird".to_vec())
    );
    assert_eq!(
        read_frame(&mut stream).unwrap(),
        (true, BINARY, vec![1, 2, 3])
    );
    // Gone before the shutdown: it would not answer the server's close frame.
    drop(stream);
    server.shutdown().unwrap();
}

/// Confirms "chat" when offered, records what the client offered.
struct Subprotocols {
    offered: Arc<Mutex<Vec<Vec<String>>>>,
}

impl Handler for Subprotocols {
    type Session = ();

    fn on_upgrade(&self, _request: &Request, offer: &UpgradeOffer) -> Upgrade {
        let protocols = offer.protocols();
        self.offered.lock().unwrap().push(protocols.to_vec());
        if protocols.iter().any(|p| p == "chat") {
            Upgrade::accept_protocol("chat")
        } else {
            Upgrade::accept()
        }
    }

    fn on_message(&self, ctx: &mut Context<'_>, message: wsreactor::Message) {
        ctx.send(message);
    }
}

#[test]
fn subprotocol_is_chosen_by_on_upgrade() {
    let offered = Arc::new(Mutex::new(Vec::new()));
    let server = start(
        config(),
        Subprotocols {
            offered: Arc::clone(&offered),
        },
    );
    let addr = server.local_addr();
    let mut request = format!("ws://{addr}/chat").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "superchat, chat".parse().unwrap());
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let (mut client, response) = tungstenite::client(request, stream).expect("handshake");
    assert_eq!(response.status().as_u16(), 101);
    let protocols: Vec<_> = response
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(protocols, ["chat"]);
    assert_eq!(
        *offered.lock().unwrap(),
        [vec!["superchat".to_owned(), "chat".to_owned()]]
    );
    client.send(Message::text("in chat")).unwrap();
    assert_eq!(client.read().unwrap(), Message::text("in chat"));
    client.close(None).unwrap();

    // Without an offer, no Sec-WebSocket-Protocol header at all.
    let mut stream = raw(addr);
    stream
        .write_all(upgrade_request("/plain").as_bytes())
        .unwrap();
    let head = read_http_head(&mut stream).unwrap();
    assert_eq!(status(&head), 101, "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("sec-websocket-protocol"),
        "{head}"
    );
    // Gone before the shutdown: it would not answer the server's close frame.
    drop(stream);
    server.shutdown().unwrap();
}

fn upgrade_with_origin(path: &str, origin: &str) -> String {
    upgrade_request(path).replace(
        "Host: localhost\r\n",
        &format!("Host: localhost\r\nOrigin: {origin}\r\n"),
    )
}

/// What the origin check answers a refused upgrade, exactly (the body is the reason).
const NOT_ALLOWED: &str = "403 Forbidden: cross-origin WebSocket upgrade refused: the Origin is \
                           neither this server's own (its Host) nor an allowed origin\n";

#[test]
fn allowed_origins_refuse_other_origins_with_403_and_close() {
    // No handler code: the allow-list in the configuration does it, before on_upgrade.
    let mut config = config();
    config.allowed_origins = OriginPolicy::allow(["https://good.example"]);
    let server = start(config, echo());
    let addr = server.local_addr();

    let mut stream = raw(addr);
    stream
        .write_all(upgrade_with_origin("/ws", "https://evil.example").as_bytes())
        .unwrap();
    let (head, body) = read_http_response(&mut stream).unwrap();
    assert!(head.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{head}");
    assert!(head.contains("\r\nConnection: close\r\n"), "{head}");
    assert_eq!(String::from_utf8(body).unwrap(), NOT_ALLOWED);
    assert!(reaches_eof(&mut stream), "connection stays open after 403");

    // The allowed origin upgrades and echoes.
    let mut stream = raw(addr);
    stream
        .write_all(upgrade_with_origin("/ws", "https://good.example").as_bytes())
        .unwrap();
    let head = read_http_head(&mut stream).unwrap();
    assert_eq!(status(&head), 101, "{head}");
    stream.write_all(&masked(true, TEXT, b"welcome")).unwrap();
    assert_eq!(
        read_frame(&mut stream).unwrap(),
        (true, TEXT, b"welcome".to_vec())
    );
    let stats = server.handle().stats();
    assert_eq!((stats.upgrades, stats.origin_refused), (1, 1), "{stats:?}");
    // Gone before the shutdown: it would not answer the server's close frame.
    drop(stream);
    server.shutdown().unwrap();
}

/// Authenticates in `on_upgrade` (a token in the query), as many handlers do; records what each
/// call was told about the origin.
struct TokenCheck {
    origins: Arc<Mutex<Vec<UpgradeOrigin>>>,
}

impl Handler for TokenCheck {
    type Session = ();

    fn on_upgrade(&self, request: &Request, offer: &UpgradeOffer) -> Upgrade {
        self.origins.lock().unwrap().push(offer.origin().clone());
        if request.query() == Some("token=secret") {
            Upgrade::accept()
        } else {
            Upgrade::reject(401, "token required\n")
        }
    }

    fn on_message(&self, ctx: &mut Context<'_>, message: wsreactor::Message) {
        ctx.send(message);
    }
}

#[test]
fn a_handler_that_overrides_on_upgrade_keeps_the_origin_check() {
    let origins = Arc::new(Mutex::new(Vec::new()));
    let handler = TokenCheck {
        origins: Arc::clone(&origins),
    };
    let server = start(config(), handler);
    let addr = server.local_addr();
    let exchange = |request: String| {
        let mut stream = raw(addr);
        stream.write_all(request.as_bytes()).unwrap();
        let (head, body) = read_http_response(&mut stream).unwrap();
        (head, String::from_utf8(body).unwrap())
    };

    // A cross-site page with a stolen token never reaches on_upgrade.
    let (head, body) = exchange(upgrade_with_origin(
        "/ws?token=secret",
        "https://evil.example",
    ));
    assert!(head.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{head}");
    assert_eq!(body, NOT_ALLOWED);
    assert!(origins.lock().unwrap().is_empty());

    // The handler's own rejection still works for its own pages.
    let (head, body) = exchange(upgrade_with_origin("/ws", "http://localhost"));
    assert!(head.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{head}");
    assert_eq!(body, "token required\n");

    // Its own page with the token upgrades; the handler was told the origin is its own.
    let mut stream = raw(addr);
    stream
        .write_all(upgrade_with_origin("/ws?token=secret", "http://LOCALHOST:80").as_bytes())
        .unwrap();
    let head = read_http_head(&mut stream).unwrap();
    assert_eq!(status(&head), 101, "{head}");
    assert_eq!(
        *origins.lock().unwrap(),
        [
            UpgradeOrigin::SameOrigin("http://localhost".into()),
            UpgradeOrigin::SameOrigin("http://LOCALHOST:80".into()),
        ]
    );
    drop(stream);
    server.shutdown().unwrap();
}
