//! permessage-deflate (RFC 7692) end to end: the negotiation as a client sees it in the `101`,
//! compressed messages both ways (raw frames, so RSV1 can be checked), the RSV1 rules, the
//! decompression bomb, `on_upgrade`'s veto, and a real client (tungstenite has no deflate; the
//! Python and browser clients are in tests/interop.rs).

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};

use common::*;
use wsreactor::ws::Compressed;
use wsreactor::ws::deflate::compress;
use wsreactor::{Config, Context, Handler, Message, Request, Upgrade, UpgradeOffer};

const BROWSER_OFFER: &str = "permessage-deflate; client_max_window_bits";
/// "Hello" compressed without context takeover (RFC 7692 §7.2.3.1).
const HELLO_DEFLATED: [u8; 7] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
const AGREED: &str = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

fn compressing_config() -> Config {
    let mut config = config();
    config.compression = true;
    config.compression_threshold = 64;
    config
}

/// Upgrades with `Sec-WebSocket-Extensions: offer` (if any); returns the stream and the
/// extension header of the `101`, if it has one.
fn upgrade_offering(addr: SocketAddr, offer: Option<&str>) -> (TcpStream, Option<String>) {
    let mut stream = raw(addr);
    let extension = offer.map_or_else(String::new, |offer| {
        format!("Sec-WebSocket-Extensions: {offer}\r\n")
    });
    let request = upgrade_request("/ws").replacen("\r\n\r\n", &format!("\r\n{extension}\r\n"), 1);
    stream.write_all(request.as_bytes()).expect("write upgrade");
    let head = read_http_head(&mut stream).expect("a response");
    assert_eq!(status(&head), 101, "{head}");
    let agreed = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("sec-websocket-extensions")
            .then(|| value.trim().to_owned())
    });
    (stream, agreed)
}

/// A masked client frame with RSV1 set on it.
fn compressed_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = masked(fin, opcode, payload);
    frame[0] |= 0x40;
    frame
}

/// JSON-like text that compresses well, `len` bytes long.
fn json(len: usize) -> String {
    let mut text = String::new();
    let mut i = 0;
    while text.len() < len {
        text.push_str(&format!(
            "{{\"id\":{i},\"user\":\"user{}\",\"event\":\"move\",\"x\":{},\"y\":{}}},",
            i % 17,
            i * 3 % 101,
            i * 7 % 53
        ));
        i += 1;
    }
    text.truncate(len);
    text
}

#[test]
fn the_offer_of_real_clients_is_answered_with_exactly_the_chosen_parameters() {
    let server = start(compressing_config(), echo());
    let addr = server.local_addr();
    let table = [
        (Some(BROWSER_OFFER), Some(AGREED.to_owned())),
        (Some("permessage-deflate"), Some(AGREED.to_owned())),
        (
            Some("permessage-deflate; server_max_window_bits=10; client_no_context_takeover"),
            Some(format!("{AGREED}; server_max_window_bits=10")),
        ),
        // zlib cannot write a raw 8-bit window: that offer is declined, the next one taken.
        (
            Some("permessage-deflate; server_max_window_bits=8, permessage-deflate"),
            Some(AGREED.to_owned()),
        ),
        // Declined offers do not fail the upgrade: it goes on without compression.
        (Some("permessage-deflate; server_max_window_bits=8"), None),
        (Some("permessage-deflate; mystery_parameter"), None),
        (
            Some("permessage-deflate; client_no_context_takeover; client_no_context_takeover"),
            None,
        ),
        (Some("x-webkit-deflate-frame"), None),
        (None, None),
    ];
    for (offer, expected) in table {
        let (_stream, agreed) = upgrade_offering(addr, offer);
        assert_eq!(agreed, expected, "{offer:?}");
    }
    server.shutdown().expect("clean shutdown");
}

#[test]
fn compression_is_off_unless_configured() {
    let server = start(config(), echo());
    let (mut stream, agreed) = upgrade_offering(server.local_addr(), Some(BROWSER_OFFER));
    assert_eq!(agreed, None);
    // Without the agreement, RSV1 is a protocol error.
    stream
        .write_all(&compressed_frame(true, 0x1, &HELLO_DEFLATED))
        .expect("write");
    assert_eq!(read_close_code(&mut stream), Some(1002));
    server.shutdown().expect("clean shutdown");
}

#[test]
fn compressed_messages_are_inflated_and_replies_compressed_above_the_threshold() {
    let server = start(compressing_config(), echo());
    let (mut stream, agreed) = upgrade_offering(server.local_addr(), Some(BROWSER_OFFER));
    assert_eq!(agreed.as_deref(), Some(AGREED));

    // RFC 7692 §7.2.3.1: "Hello", compressed; the echo is below the threshold: RSV1 clear.
    stream
        .write_all(&compressed_frame(true, 0x1, &HELLO_DEFLATED))
        .expect("write");
    assert_eq!(
        read_raw_frame(&mut stream).unwrap(),
        (0x81, b"Hello".to_vec())
    );

    // 4 KiB of JSON, compressed, in three fragments (RSV1 on the first only): the echo comes
    // back compressed, and inflates to the same text.
    let text = json(4096);
    let deflated = compress(text.as_bytes(), 15, 6);
    let (a, rest) = deflated.split_at(deflated.len() / 3);
    let (b, c) = rest.split_at(rest.len() / 2);
    let mut wire = compressed_frame(false, 0x1, a);
    wire.extend(masked(false, 0x0, b));
    wire.extend(masked(true, 0x0, c));
    stream.write_all(&wire).expect("write");
    let (first, payload) = read_raw_frame(&mut stream).unwrap();
    assert_eq!(first, 0xC1, "FIN + RSV1 + text");
    assert!(payload.len() < text.len() / 3, "{} bytes", payload.len());
    let echoed = Compressed {
        text: true,
        payload,
    }
    .inflate(1 << 20)
    .unwrap();
    assert_eq!(echoed, Message::Text(text.clone()));

    // An uncompressed message on the same connection is fine too; its echo is compressed.
    stream
        .write_all(&masked(true, 0x2, text.as_bytes()))
        .expect("write");
    let (first, payload) = read_raw_frame(&mut stream).unwrap();
    assert_eq!(first, 0xC2, "FIN + RSV1 + binary");
    let echoed = Compressed {
        text: false,
        payload,
    }
    .inflate(1 << 20)
    .unwrap();
    assert_eq!(echoed.as_bytes(), text.as_bytes());

    // Control frames still work, uncompressed.
    stream
        .write_all(&masked(true, 0x9, b"ping"))
        .expect("write");
    assert_eq!(
        read_raw_frame(&mut stream).unwrap(),
        (0x8A, b"ping".to_vec())
    );
    let stats = server.handle().stats();
    assert_eq!(stats.deflate_upgrades, 1);
    assert_eq!(stats.compressed_in, 2);
    assert_eq!(stats.compressed_out, 2);
    server.shutdown().expect("clean shutdown");
}

#[test]
fn rsv1_where_it_may_not_be_is_a_protocol_error() {
    let server = start(compressing_config(), echo());
    let addr = server.local_addr();
    let hello = HELLO_DEFLATED;
    let cases: [Vec<u8>; 3] = [
        // RSV1 on a continuation frame.
        [
            compressed_frame(false, 0x1, &hello[..3]),
            compressed_frame(true, 0x0, &hello[3..]),
        ]
        .concat(),
        // RSV1 on a ping.
        compressed_frame(true, 0x9, b"x"),
        // RSV2 is never negotiated.
        {
            let mut frame = masked(true, 0x1, b"x");
            frame[0] |= 0x20;
            frame
        },
    ];
    for wire in cases {
        let (mut stream, agreed) = upgrade_offering(addr, Some(BROWSER_OFFER));
        assert!(agreed.is_some());
        stream.write_all(&wire).expect("write");
        assert_eq!(read_close_code(&mut stream), Some(1002), "{wire:x?}");
        assert!(reaches_eof(&mut stream));
    }
    server.shutdown().expect("clean shutdown");
}

#[test]
fn bad_deflate_data_is_closed_with_1007_and_bad_inflated_text_too() {
    let server = start(compressing_config(), echo());
    let addr = server.local_addr();
    let latin1 = compress(&[0xe9; 300], 15, 1);
    for (opcode, payload) in [(0x2, vec![0xff, 0xff, 0xff]), (0x1, latin1)] {
        let (mut stream, _) = upgrade_offering(addr, Some(BROWSER_OFFER));
        stream
            .write_all(&compressed_frame(true, opcode, &payload))
            .expect("write");
        assert_eq!(read_close_code(&mut stream), Some(1007));
    }
    assert_eq!(server.handle().stats().inflate_failures, 2);
    server.shutdown().expect("clean shutdown");
}

/// 100 MiB of zeros deflate to about 100 KiB: with a 1 MiB message limit the connection is
/// closed with 1009 as soon as 1 MiB has been inflated (codec.rs stops at the limit; its unit
/// test checks the exact boundary).
#[test]
fn a_decompression_bomb_is_closed_with_1009() {
    let mut config = compressing_config();
    config.max_message_size = 1024 * 1024;
    let server = start(config, echo());
    // One MiB of zeros deflated, a hundred times over: each piece ends on a complete empty
    // stored block (00 00 ff ff), so the pieces chain into one valid deflate stream.
    let piece = compress(&vec![0u8; 1024 * 1024], 15, 9);
    let mut bomb = Vec::new();
    for _ in 0..100 {
        bomb.extend_from_slice(&piece);
        bomb.extend_from_slice(&[0x00, 0x00, 0xff, 0xff]);
    }
    bomb.truncate(bomb.len() - 4);
    assert!(bomb.len() < 200 * 1024, "{} bytes", bomb.len());
    // The bomb is real: without the limit it inflates to 100 MiB.
    let inflated = Compressed {
        text: false,
        payload: bomb.clone(),
    }
    .inflate(usize::MAX)
    .map(|message| message.len());
    assert_eq!(inflated, Ok(100 * 1024 * 1024));
    let (mut stream, _) = upgrade_offering(server.local_addr(), Some(BROWSER_OFFER));
    stream
        .write_all(&compressed_frame(true, 0x2, &bomb))
        .expect("write");
    assert_eq!(read_close_code(&mut stream), Some(1009));
    server.shutdown().expect("clean shutdown");
}

/// Sees the offer in `on_upgrade` and declines compression on the path `/plain`.
struct Veto {
    seen: Arc<Mutex<Vec<Option<String>>>>,
}

impl Handler for Veto {
    type Session = ();

    fn on_upgrade(&self, request: &Request, offer: &UpgradeOffer) -> Upgrade {
        let agreement = offer.compression().map(|a| a.response_header());
        self.seen.lock().unwrap().push(agreement);
        if request.path() == "/plain" {
            // The handler's own extension header is dropped: the server writes that one.
            Upgrade::accept()
                .with_header("Sec-WebSocket-Extensions", "permessage-deflate")
                .with_header("X-Plain", "yes")
                .without_compression()
        } else {
            Upgrade::accept()
        }
    }

    fn on_message(&self, ctx: &mut Context<'_>, message: Message) {
        ctx.send(message);
    }
}

#[test]
fn on_upgrade_sees_the_agreement_and_can_decline_it() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handler = Veto { seen: seen.clone() };
    let server = start(compressing_config(), handler);
    let addr = server.local_addr();
    let (_stream, agreed) = upgrade_offering(addr, Some(BROWSER_OFFER));
    assert_eq!(agreed.as_deref(), Some(AGREED));

    let mut stream = raw(addr);
    let request = upgrade_request("/plain").replacen(
        "\r\n\r\n",
        &format!("\r\nSec-WebSocket-Extensions: {BROWSER_OFFER}\r\n\r\n"),
        1,
    );
    stream.write_all(request.as_bytes()).expect("write");
    let head = read_http_head(&mut stream).expect("101");
    assert_eq!(status(&head), 101);
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("sec-websocket-extensions"),
        "{head}"
    );
    assert!(head.contains("\r\nX-Plain: yes\r\n"), "{head}");
    // Declined: RSV1 is now a protocol error, and big replies go uncompressed.
    let text = json(2000);
    stream
        .write_all(&masked(true, 0x1, text.as_bytes()))
        .expect("write");
    assert_eq!(
        read_raw_frame(&mut stream).unwrap(),
        (0x81, text.into_bytes())
    );
    stream
        .write_all(&compressed_frame(true, 0x1, &HELLO_DEFLATED))
        .expect("write");
    assert_eq!(read_close_code(&mut stream), Some(1002));

    let (_stream, agreed) = upgrade_offering(addr, None);
    assert_eq!(agreed, None);
    assert_eq!(
        *seen.lock().unwrap(),
        [Some(AGREED.to_owned()), Some(AGREED.to_owned()), None]
    );
    server.shutdown().expect("clean shutdown");
}
