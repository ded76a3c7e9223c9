//! Both directions of the close handshake, protocol errors, EOF, lingering and FIN, shutdown.

use super::*;
use crate::ws::CloseCode;

#[test]
fn the_client_closes_first_and_gets_its_code_echoed() {
    let mut h = harness(config());
    let peer = upgraded(&mut h);
    h.send(peer, &text("before"));
    h.send(peer, &close_frame(4000));
    assert_eq!(
        h.phase(peer),
        Some("PeerClosed"),
        "the message before it is still out"
    );
    assert!(
        h.take_output(peer).is_empty(),
        "no close frame before the echo of `before`"
    );
    h.run_all_jobs();
    let out = h.take_output(peer);
    assert_eq!(texts(&out), ["before"]);
    assert_eq!(
        close_code(&out),
        Some(4000),
        "echoed after the reply (RFC 6455 §5.5.1)"
    );
    assert_eq!(h.phase(peer), Some("Lingering"));
    assert!(h.fin_received(peer), "FIN after the close frame");
    h.send(peer, b"ignored garbage after the close");
    assert_eq!(h.phase(peer), Some("Lingering"), "read and discarded");
    h.peer_eof(peer);
    assert_eq!(h.phase(peer), None);
    h.run_all_jobs();
    assert_eq!(h.close_code(peer), Some(CloseCode::Other(4000)));
    assert_eq!(h.stats().closed_clean, 1);
}

#[test]
fn an_empty_close_frame_is_answered_with_an_empty_one() {
    let mut h = harness(config());
    let peer = upgraded(&mut h);
    h.send(peer, &client_frame(0x8, b""));
    assert_eq!(close_code(&h.take_output(peer)), None);
    h.peer_eof(peer);
    h.run_all_jobs();
    assert_eq!(
        h.close_code(peer),
        Some(CloseCode::Status),
        "1005: no code was given"
    );
}

#[test]
fn the_server_closes_first_and_waits_for_the_answer() {
    let mut h = harness(config());
    let peer = upgraded(&mut h);
    h.send(peer, &text("close"));
    h.run_all_jobs();
    assert_eq!(close_code(&h.take_output(peer)), Some(1000));
    assert_eq!(h.phase(peer), Some("Closing"));
    h.send(peer, &text("data after our close is discarded"));
    assert_eq!(h.queued_jobs(), 0);
    h.send(peer, &close_frame(1000));
    assert_eq!(h.phase(peer), Some("Lingering"));
    assert!(h.fin_received(peer));
    h.peer_eof(peer);
    assert_eq!(h.phase(peer), None);
    h.run_all_jobs();
    assert_eq!(h.close_code(peer), Some(CloseCode::Normal));
    assert_eq!(h.stats().closed_clean, 1);
}

#[test]
fn a_close_from_a_handle_starts_the_handshake() {
    let mut h = harness(config());
    let peer = upgraded(&mut h);
    h.close(peer, CloseCode::Again);
    assert_eq!(close_code(&h.take_output(peer)), Some(1013));
    assert_eq!(h.phase(peer), Some("Closing"));
}

#[test]
fn the_peer_may_end_the_closing_wait_with_eof() {
    let mut h = harness(config());
    let peer = upgraded(&mut h);
    h.close(peer, CloseCode::Normal);
    h.peer_eof(peer);
    assert_eq!(
        h.phase(peer),
        None,
        "EOF: lingered, flushed, FIN sent, done"
    );
    assert!(h.fin_received(peer));
}

#[test]
fn a_handler_panic_closes_with_1011() {
    let mut h = harness(config());
    let peer = upgraded(&mut h);
    h.send(peer, &text("panic"));
    h.run_all_jobs();
    assert_eq!(close_code(&h.take_output(peer)), Some(1011));
    h.send(peer, &close_frame(1011));
    h.peer_eof(peer);
    assert_eq!(
        h.stats().closed_server,
        1,
        "the server's decision, not a clean close"
    );
}

#[test]
fn a_protocol_error_fails_the_connection_with_its_code() {
    let mut h = harness(config());
    let peer = upgraded(&mut h);
    let mut unmasked = text("x");
    unmasked[1] &= 0x7f; // clear the mask bit (the payload stays masked garbage)
    h.send(peer, &unmasked);
    let out = h.take_output(peer);
    assert_eq!(close_code(&out), Some(1002));
    assert_eq!(h.phase(peer), Some("Lingering"));
    assert!(h.fin_received(peer));
    h.peer_eof(peer);
    h.run_all_jobs();
    assert_eq!(h.close_code(peer), Some(CloseCode::Protocol));
    assert_eq!(h.stats().closed_protocol_error, 1);
}

#[test]
fn invalid_utf8_is_1007_and_messages_before_it_are_still_handled() {
    let mut h = harness(config());
    let peer = upgraded(&mut h);
    let mut bytes = text("fine");
    bytes.extend(client_frame(0x1, &[0xff, 0xfe]));
    h.send(peer, &bytes);
    // The bad frame is found while "fine" waits for the handler: its answer comes first.
    assert_eq!(h.phase(peer), Some("PeerClosed"));
    assert!(
        h.take_output(peer).is_empty(),
        "nothing yet: no close frame"
    );
    h.run_all_jobs();
    let out = h.take_output(peer);
    assert_eq!(texts(&out), ["fine"]);
    assert_eq!(close_code(&out), Some(1007));
    assert_eq!(h.phase(peer), Some("Lingering"));
    assert_eq!(h.close_code(peer), None, "not yet: the peer has not closed");
    h.peer_eof(peer);
    h.run_all_jobs();
    assert_eq!(h.close_code(peer), Some(CloseCode::Invalid));
}

#[test]
fn a_protocol_error_with_a_job_out_fails_after_its_reply() {
    let mut h = harness(config());
    let peer = upgraded(&mut h);
    h.send(peer, &text("first"));
    let job = h.steal_job().expect("the job for \"first\"");
    // RSV2 without an extension: 1002, but "first" is with the handler.
    let mut bad = text("second");
    bad[0] |= 0x20;
    h.send(peer, &bad);
    assert_eq!(h.phase(peer), Some("PeerClosed"));
    assert!(
        h.take_output(peer).is_empty(),
        "nothing yet: no close frame"
    );
    h.finish_job(job);
    let out = h.take_output(peer);
    assert_eq!(texts(&out), ["first"]);
    assert_eq!(close_code(&out), Some(1002));
    assert_eq!(h.phase(peer), Some("Lingering"));
    h.peer_eof(peer);
    h.run_all_jobs();
    assert_eq!(h.close_code(peer), Some(CloseCode::Protocol));
    assert_eq!(h.stats().closed_protocol_error, 1);
}

#[test]
fn eof_without_a_close_frame_is_answered_then_reported_as_1006() {
    let mut h = harness(config());
    let peer = upgraded(&mut h);
    h.put(peer, &text("half-closed"));
    h.peer_eof(peer);
    assert_eq!(h.phase(peer), Some("PeerClosed"));
    h.run_all_jobs();
    assert_eq!(texts(&h.take_output(peer)), ["half-closed"]);
    assert_eq!(
        h.phase(peer),
        None,
        "answered, FIN sent, and the peer had closed already"
    );
    assert!(h.fin_received(peer));
    h.run_all_jobs();
    assert_eq!(h.close_code(peer), Some(CloseCode::Abnormal));
    assert_eq!(h.stats().closed_peer_gone, 1);
}

#[test]
fn a_reset_drops_the_connection_at_once() {
    let mut h = harness(config());
    let peer = upgraded(&mut h);
    h.reset(peer);
    assert_eq!(h.phase(peer), None);
    h.run_all_jobs();
    assert_eq!(h.close_code(peer), Some(CloseCode::Abnormal));
    assert_eq!(h.stats().closed_peer_gone, 1);
    assert_eq!(h.stats().connections_open, 0);
}

#[test]
fn shutdown_closes_websockets_with_1001_and_lets_idle_http_go() {
    let mut h = harness(config());
    let ws = upgraded(&mut h);
    let http = h.connect();
    let busy = upgraded(&mut h);
    h.send(busy, &text("in flight"));
    h.shutdown();
    assert_eq!(close_code(&h.take_output(ws)), Some(1001));
    assert!(h.fin_received(http), "idle HTTP: FIN at once");
    assert_eq!(
        h.phase(http),
        None,
        "shutting down: gone once its bytes are out"
    );
    assert!(
        h.take_output(busy).is_empty(),
        "the running job finishes first"
    );
    h.run_all_jobs();
    let out = h.take_output(busy);
    assert_eq!(texts(&out), ["in flight"]);
    assert_eq!(close_code(&out), Some(1001));
    for peer in [ws, busy] {
        h.send(peer, &close_frame(1001));
    }
    assert_eq!(
        h.open_connections(),
        0,
        "lingering ends as soon as the bytes are out"
    );
    h.run_all_jobs();
    h.check_every_close_delivered().unwrap();
}

#[test]
fn what_shutdown_cannot_finish_is_dropped_and_still_gets_on_close() {
    let mut h = harness(config());
    let stubborn = upgraded(&mut h);
    let busy = upgraded(&mut h);
    h.send(busy, &text("slow handler"));
    h.shutdown();
    h.finish();
    assert_eq!(h.open_connections(), 0);
    assert_eq!(h.close_code(stubborn), Some(CloseCode::Away));
    assert!(h.close_code(busy).is_some(), "after its last message");
    h.check_invariants().unwrap();
    h.check_every_close_delivered().unwrap();
}

/// What the shutdown's end drops gives its buffers back, and the gauges say so: they are
/// published each turn, and the connections dropped after the last turn must not leave them
/// counting buffers that went back to the pool (found by tests/extreme_configs.rs).
#[test]
fn the_gauges_count_what_the_shutdown_dropped() {
    let mut h = harness(config());
    let partial = upgraded(&mut h);
    // One byte of a frame's head: the read buffer is held until the rest comes.
    h.send(partial, &text("never finished")[..1]);
    assert_eq!(h.stats().buffers_in_use, 1);
    assert_eq!(h.stats().websocket_open, 1);
    h.finish();
    assert_eq!(h.open_connections(), 0);
    let stats = h.stats();
    assert_eq!(stats.buffers_in_use, 0, "given back");
    assert!(stats.pooled_buffers >= 1, "into the pool");
    assert_eq!(stats.websocket_open, 0);
    h.check_every_close_delivered().unwrap();
}
