//! permessage-deflate through the state machine: compressed messages in and out, frames still
//! in flight when we close, and a message that fails to inflate where the handler runs.

use super::*;
use crate::harness::{AppEvent, compressed_hello, upgrade_request_offering};
use crate::ws::{CloseCode, Compressed, Message};

/// Connects a peer that offers permessage-deflate and completes its upgrade.
fn upgraded_with_deflate(h: &mut Harness) -> usize {
    let peer = h.connect();
    h.send(
        peer,
        &upgrade_request_offering("/ws", Some("permessage-deflate")),
    );
    assert_eq!(h.run_jobs(1), 1, "the upgrade job");
    let head = String::from_utf8(h.take_output(peer)).expect("an ASCII head");
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(
        head.contains("Sec-WebSocket-Extensions: permessage-deflate;"),
        "{head}"
    );
    assert_eq!(h.phase(peer), Some("Open"));
    peer
}

/// A masked frame with RSV1 set.
fn compressed(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = crate::harness::client_fragment(fin, opcode, payload);
    frame[0] |= 0x40;
    frame
}

#[test]
fn a_compressed_message_is_handled_and_its_echo_compressed() {
    let mut h = harness(config());
    let peer = upgraded_with_deflate(&mut h);
    h.send(peer, &compressed_hello());
    h.run_all_jobs();
    let out = h.take_output(peer);
    // The test app compresses every reply: FIN + RSV1 + text.
    assert_eq!(out[0], 0xC1, "{out:x?}");
    let (_, payload) = frames(&out).remove(0);
    let echo = Compressed {
        text: true,
        payload,
    };
    assert_eq!(echo.inflate(100), Ok(Message::Text("Hello".into())));
    assert_eq!(h.stats().compressed_in, 1);
    assert_eq!(h.stats().compressed_out, 1);
}

/// Regression: `Closing` decoded the peer's frames without the agreement, so a compressed frame
/// still in flight when the server closed was a protocol error instead of being ignored.
#[test]
fn compressed_frames_in_flight_when_we_close_are_ignored() {
    let mut h = harness(config());
    let peer = upgraded_with_deflate(&mut h);
    h.send(peer, &text("close"));
    h.run_all_jobs();
    assert_eq!(close_code(&h.take_output(peer)), Some(1000));
    assert_eq!(h.phase(peer), Some("Closing"));
    h.send(peer, &compressed_hello());
    assert_eq!(h.phase(peer), Some("Closing"));
    h.send(peer, &close_frame(1000));
    h.peer_eof(peer);
    h.run_all_jobs();
    assert_eq!(h.close_code(peer), Some(CloseCode::Normal));
    assert_eq!(h.stats().closed_clean, 1);
    assert_eq!(h.stats().closed_protocol_error, 0);
}

/// Regression: a message that failed to inflate after the peer's close frame was answered with
/// an echo of the peer's 1000, and the messages after it still reached the handler.
#[test]
fn an_inflate_failure_fails_the_connection_and_nothing_after_it_is_handled() {
    let mut h = harness(config());
    let peer = upgraded_with_deflate(&mut h);
    let mut wire = text("before");
    wire.extend(compressed(true, 0x2, &[0xff, 0xff, 0xff]));
    wire.extend(text("after"));
    wire.extend(close_frame(1000));
    h.send(peer, &wire);
    assert_eq!(h.phase(peer), Some("PeerClosed"));
    h.run_all_jobs();
    let out = h.take_output(peer);
    // The test app compresses its replies: no plain text frames, one data frame for "before".
    let data: Vec<u8> = frames(&out).iter().map(|(op, _)| *op).collect();
    assert_eq!(data, [0x1, 0x8], "{out:x?}");
    assert_eq!(close_code(&out), Some(1007));
    assert_eq!(h.phase(peer), Some("Lingering"));
    h.peer_eof(peer);
    h.run_all_jobs();
    assert_eq!(h.close_code(peer), Some(CloseCode::Invalid));
    let messages: Vec<_> = h
        .app_events()
        .into_iter()
        .filter_map(|e| match e {
            AppEvent::Message(_, m) => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(messages, [Message::Text("before".into())]);
    assert_eq!(h.stats().closed_protocol_error, 1);
}

#[test]
fn an_inflate_failure_while_open_fails_at_once() {
    let mut h = harness(config());
    let peer = upgraded_with_deflate(&mut h);
    h.send(peer, &compressed(true, 0x1, &[0x07]));
    h.run_all_jobs();
    let out = h.take_output(peer);
    assert_eq!(close_code(&out), Some(1007));
    assert_eq!(h.phase(peer), Some("Lingering"));
    assert!(h.fin_received(peer), "failing, not a close handshake");
}
