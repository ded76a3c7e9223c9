//! Every deadline kind, driven by a hand-moved clock: request, keep-alive idle, ping and pong,
//! lifetime, message, write stall, close handshake, and the end of a linger.

use super::*;
use crate::ws::CloseCode;

#[test]
fn a_partial_request_gets_408_at_the_request_timeout() {
    let mut h = harness(config());
    let peer = h.connect();
    h.send(peer, b"GET / HTTP/1.1\r\nHost:");
    h.advance(secs(9));
    assert_eq!(h.phase(peer), Some("Http"));
    h.advance(secs(1));
    let out = String::from_utf8(h.take_output(peer)).unwrap();
    assert!(out.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{out}");
    assert!(out.contains("Connection: close\r\n"));
    assert_eq!(h.phase(peer), Some("Lingering"));
    assert!(h.fin_received(peer));
    assert_eq!(h.stats().timeouts_request, 1);
}

#[test]
fn a_silent_new_connection_is_closed_without_a_response() {
    let mut h = harness(config());
    let peer = h.connect();
    h.advance(secs(10));
    assert_eq!(h.phase(peer), None);
    assert!(h.take_output(peer).is_empty());
    assert_eq!(h.stats().closed_timeout, 1);
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let mut h = harness(config());
    let peer = h.connect();
    h.send(peer, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    h.run_jobs(1);
    assert!(h.take_output(peer).starts_with(b"HTTP/1.1 200 OK\r\n"));
    h.advance(secs(29));
    assert_eq!(
        h.phase(peer),
        Some("Http"),
        "keep-alive, not the 10 s request timeout"
    );
    h.advance(secs(1));
    assert_eq!(h.phase(peer), None);
    assert_eq!(h.stats().timeouts_idle, 1);
}

#[test]
fn a_silent_websocket_is_pinged_and_dropped_when_it_does_not_answer() {
    let mut h = harness(Config {
        ping_interval: Some(secs(30)),
        ..config()
    });
    let peer = upgraded(&mut h);
    h.advance(secs(30));
    assert_eq!(frames(&h.take_output(peer)), [(0x9, vec![])], "a ping");
    h.advance(secs(9));
    assert_eq!(h.phase(peer), Some("Open"));
    h.advance(secs(1));
    assert_eq!(h.phase(peer), None, "no pong within pong_timeout");
    h.run_all_jobs();
    assert_eq!(h.close_code(peer), Some(CloseCode::Abnormal));
    let stats = h.stats();
    assert_eq!((stats.pings_sent, stats.timeouts_pong), (1, 1));
}

#[test]
fn any_frame_answers_the_ping_and_reading_pushes_the_next_one_back() {
    let mut h = harness(Config {
        ping_interval: Some(secs(30)),
        ..config()
    });
    let peer = upgraded(&mut h);
    h.advance(secs(20));
    h.send(peer, &client_frame(0xA, b"")); // an unsolicited pong counts as traffic
    h.advance(secs(20));
    assert!(
        h.take_output(peer).is_empty(),
        "silent for 20 s only: no ping yet"
    );
    h.advance(secs(10));
    assert_eq!(frames(&h.take_output(peer)), [(0x9, vec![])]);
    h.send(peer, &text("alive"));
    h.run_all_jobs();
    h.advance(secs(15));
    assert_eq!(h.phase(peer), Some("Open"), "the message answered the ping");
}

#[test]
fn max_lifetime_closes_with_1001_and_waits_for_the_answer() {
    let mut h = harness(Config {
        max_lifetime: Some(secs(60)),
        ..config()
    });
    let peer = upgraded(&mut h);
    h.advance(secs(60));
    assert_eq!(close_code(&h.take_output(peer)), Some(1001));
    assert_eq!(h.phase(peer), Some("Closing"));
    h.send(peer, &close_frame(1001));
    assert_eq!(h.phase(peer), Some("Lingering"));
    h.peer_eof(peer);
    assert_eq!(h.phase(peer), None);
    h.run_all_jobs();
    assert_eq!(h.close_code(peer), Some(CloseCode::Away));
    let stats = h.stats();
    assert_eq!((stats.timeouts_lifetime, stats.closed_server), (1, 1));
}

/// The WebSocket form of slowloris: a frame header announcing 1,000 bytes, then a few bytes
/// every 5 s. The trickle keeps the connection from looking idle (no ping), so only the message
/// deadline ends it: `1008` at 30 s from the message's first byte.
#[test]
fn a_message_that_trickles_in_is_closed_with_1008_at_the_message_timeout() {
    let mut h = harness(Config {
        message_timeout: secs(30),
        ping_interval: Some(secs(20)),
        ..config()
    });
    let peer = upgraded(&mut h);
    let frame = client_frame(0x2, &[7; 1000]);
    h.send(peer, &frame[..12]);
    for chunk in frame[12..].chunks(10).take(5) {
        h.advance(secs(5));
        h.send(peer, chunk);
    }
    assert!(h.take_output(peer).is_empty(), "no ping: it is not silent");
    h.advance(secs(4));
    assert!(h.take_output(peer).is_empty(), "29 s: not yet");
    h.advance(secs(1));
    assert_eq!(close_code(&h.take_output(peer)), Some(1008));
    assert_eq!(h.phase(peer), Some("Closing"));
    h.send(peer, &close_frame(1008));
    h.peer_eof(peer);
    h.run_all_jobs();
    assert_eq!(h.close_code(peer), Some(CloseCode::Policy));
    let stats = h.stats();
    assert_eq!((stats.timeouts_message, stats.closed_timeout), (1, 1));
}

/// A header byte alone starts the clock too; each complete message stops it, and the next one
/// gets its own 30 s.
#[test]
fn each_message_gets_its_own_message_timeout() {
    let mut h = harness(Config {
        message_timeout: secs(30),
        ..config()
    });
    let peer = upgraded(&mut h);
    for n in 0..3 {
        let frame = text(&format!("slow {n}"));
        h.send(peer, &frame[..1]);
        h.advance(secs(29));
        h.send(peer, &frame[1..]);
        h.run_all_jobs();
        assert_eq!(texts(&h.take_output(peer)), [format!("slow {n}")]);
    }
    h.advance(secs(60));
    assert_eq!(
        h.phase(peer),
        Some("Open"),
        "between messages no clock runs"
    );
    h.send(peer, &text("x")[..1]);
    h.advance(secs(30));
    assert_eq!(close_code(&h.take_output(peer)), Some(1008));
}

#[test]
fn output_that_makes_no_progress_is_dropped_at_the_write_stall_timeout() {
    let mut h = harness(config());
    let peer = upgraded(&mut h);
    h.set_write_room(peer, 10);
    h.send(peer, &text(&"z".repeat(100)));
    h.run_all_jobs();
    assert_eq!(h.take_output(peer).len(), 10, "the socket took 10 bytes");
    h.advance(secs(29));
    assert_eq!(h.phase(peer), Some("Open"));
    h.advance(secs(1));
    assert_eq!(h.phase(peer), None);
    h.run_all_jobs();
    assert_eq!(h.close_code(peer), Some(CloseCode::Policy));
    let stats = h.stats();
    assert_eq!(
        (stats.timeouts_write_stall, stats.pending_outbound_bytes),
        (1, 0)
    );
}

#[test]
fn progress_restarts_the_write_stall_clock() {
    let mut h = harness(config());
    let peer = upgraded(&mut h);
    h.set_write_room(peer, 10);
    h.send(peer, &text(&"z".repeat(100)));
    h.run_all_jobs();
    h.advance(secs(20));
    h.set_write_room(peer, 10); // the client read a little
    h.advance(secs(20));
    assert_eq!(h.phase(peer), Some("Open"), "20 s since the last progress");
    h.set_write_room(peer, usize::MAX);
    assert_eq!(h.take_output(peer).len(), 102);
    h.advance(secs(60));
    assert_eq!(
        h.phase(peer),
        Some("Open"),
        "no output left: no stall clock"
    );
}

#[test]
fn a_close_handshake_the_peer_never_answers_times_out() {
    let mut h = harness(config());
    let peer = upgraded(&mut h);
    h.send(peer, &text("close"));
    h.run_all_jobs();
    assert_eq!(close_code(&h.take_output(peer)), Some(1000));
    assert_eq!(h.phase(peer), Some("Closing"));
    h.advance(secs(4));
    assert_eq!(h.phase(peer), Some("Closing"));
    h.advance(secs(1));
    assert_eq!(h.phase(peer), None);
    assert_eq!(h.stats().timeouts_close, 1);
    h.run_all_jobs();
    assert_eq!(
        h.close_code(peer),
        Some(CloseCode::Normal),
        "on_close hears our code"
    );
}

#[test]
fn a_linger_whose_fin_is_out_ends_for_its_own_reason() {
    let mut h = harness(config());
    let peer = h.connect();
    h.send(
        peer,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    h.run_jobs(1);
    assert!(h.fin_received(peer));
    h.advance(secs(5));
    assert_eq!(h.phase(peer), None);
    let stats = h.stats();
    assert_eq!(
        (stats.closed_clean, stats.timeouts_close),
        (1, 0),
        "not a failed handshake"
    );
}

/// Regression (the hostile mix): a client that never reads and is mid-message when its
/// `message_timeout` fires gets a close frame that waits behind output it will never take. The
/// connection is `Closing`, where the peer's bytes are read and discarded; with the output
/// stuck that discarding had no end but the write stall, and soaked up gigabytes at full speed.
/// Now a closing connection whose output is blocked is not read, and the write stall drops it
/// on time.
#[test]
fn a_closing_connection_whose_output_is_stuck_is_not_read() {
    let mut h = harness(Config {
        message_timeout: secs(30),
        write_stall_timeout: secs(31),
        ..config()
    });
    let peer = upgraded(&mut h);
    h.set_write_room(peer, 0);
    h.push(peer, &"o".repeat(1000)); // output the client will never take
    let frame = client_frame(0x2, &[7; 100_000]);
    h.send(peer, &frame[..50_000]);
    h.advance(secs(30));
    assert_eq!(h.phase(peer), Some("Closing"), "the message timeout fired");
    h.send(peer, &frame[50_000..]);
    assert_eq!(
        h.unread(peer),
        frame.len() - 50_000,
        "nothing is read to be discarded while our close frame cannot go out"
    );
    h.advance(secs(1));
    assert_eq!(
        h.phase(peer),
        None,
        "dropped at the write stall, 31 s after it began"
    );
    let stats = h.stats();
    assert_eq!((stats.timeouts_message, stats.timeouts_write_stall), (1, 1));
}
