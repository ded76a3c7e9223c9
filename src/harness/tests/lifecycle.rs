//! A WebSocket's life from upgrade to `on_close`: early frames, stale replies, owed `on_close`.

use super::*;
use crate::harness::AppEvent;
use crate::ws::{CloseCode, Message};

#[test]
fn a_message_is_echoed_through_a_job() {
    let mut h = harness(config());
    let peer = upgraded(&mut h);
    h.send(peer, &text("hi"));
    assert_eq!(h.queued_jobs(), 1, "one job with the message");
    assert!(
        h.take_output(peer).is_empty(),
        "nothing before the handler ran"
    );
    h.run_jobs(1);
    assert_eq!(texts(&h.take_output(peer)), ["hi"]);
    let stats = h.stats();
    assert_eq!(
        (stats.messages_in, stats.messages_out, stats.upgrades),
        (1, 1, 1)
    );
    assert_eq!((stats.phase_open, stats.websocket_open), (1, 1));
    assert_eq!(
        stats.buffers_in_use, 0,
        "an idle connection holds no buffer"
    );
    h.check_invariants().unwrap();
}

#[test]
fn frames_in_the_same_bytes_as_the_upgrade_are_decoded_after_the_101() {
    let mut h = harness(config());
    let peer = h.connect();
    let mut bytes = upgrade_request("/ws");
    bytes.extend(text("early"));
    bytes.extend(text("bird"));
    h.send(peer, &bytes);
    assert_eq!(h.phase(peer), Some("Upgrading"));
    assert_eq!(
        h.queued_jobs(),
        1,
        "the upgrade only: no frame is decoded before the 101"
    );
    h.run_jobs(1);
    let out = h.take_output(peer);
    assert!(out.starts_with(b"HTTP/1.1 101 "));
    assert_eq!(
        h.queued_jobs(),
        1,
        "the early frames, as one batch, right after the upgrade"
    );
    h.run_jobs(1);
    assert_eq!(texts(&h.take_output(peer)), ["early", "bird"]);
}

#[test]
fn messages_arriving_while_a_job_runs_become_the_next_batch_in_order() {
    let mut h = harness(config());
    let peer = upgraded(&mut h);
    h.send(peer, &text("1"));
    h.send(peer, &text("2"));
    h.send(peer, &text("3"));
    assert_eq!(h.queued_jobs(), 1, "one job out at a time");
    h.run_jobs(1);
    assert_eq!(h.queued_jobs(), 1, "the next batch went out with the reply");
    h.run_jobs(1);
    assert_eq!(texts(&h.take_output(peer)), ["1", "2", "3"]);
    let batches: Vec<_> = h
        .app_events()
        .into_iter()
        .filter_map(|e| match e {
            AppEvent::Message(_, Message::Text(t)) => Some(t),
            _ => None,
        })
        .collect();
    assert_eq!(batches, ["1", "2", "3"]);
}

#[test]
fn a_reply_for_a_connection_that_closed_is_not_delivered_to_its_successor() {
    let mut h = harness(config());
    let old = upgraded(&mut h);
    h.send(old, &text("for the old one"));
    let job = h.steal_job().expect("the message job");
    h.fail(old);
    assert_eq!(h.phase(old), None, "the socket failed: removed");
    let new = upgraded(&mut h);
    assert_eq!(
        h.id(new).index(),
        h.id(old).index(),
        "the slab slot is reused"
    );
    assert_ne!(h.id(new), h.id(old), "with a new generation");
    h.finish_job(job);
    h.run_all_jobs();
    assert!(h.take_output(new).is_empty(), "nothing for the successor");
    // The old connection owed on_close after that job: it ran now, with 1006.
    assert_eq!(h.close_code(old), Some(CloseCode::Abnormal));
    h.push(old, "late push");
    assert!(h.take_output(new).is_empty());
    assert_eq!(
        h.stats().stale_replies_dropped,
        1,
        "the push; the reply settled on_close"
    );
    h.check_invariants().unwrap();
}

#[test]
fn a_reply_with_no_connection_and_nothing_owed_is_counted_as_stale() {
    let mut h = harness(config());
    let peer = h.connect();
    h.set_write_room(peer, 10); // the client reads slowly
    h.send(peer, b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n");
    h.run_jobs(1);
    h.send(peer, b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n");
    let job = h.steal_job().expect("the second request's job");
    // The first response never drains: the write-stall timeout drops the connection while
    // the second request is with the handler.
    h.advance(secs(30));
    assert_eq!(h.phase(peer), None);
    h.finish_job(job);
    assert_eq!(
        h.stats().stale_replies_dropped,
        1,
        "an HTTP connection owes nothing"
    );
}

#[test]
fn on_close_waits_for_the_job_that_was_running() {
    let mut h = harness(config());
    let peer = upgraded(&mut h);
    h.send(peer, &text("last words"));
    h.fail(peer);
    assert_eq!(h.phase(peer), None);
    assert_eq!(
        h.close_code(peer),
        None,
        "not while on_message may still run"
    );
    h.run_all_jobs();
    let id = h.id(peer);
    let events = h.app_events();
    let tail: Vec<_> = events.iter().rev().take(2).rev().cloned().collect();
    assert_eq!(
        tail,
        [
            AppEvent::Message(id, Message::from("last words")),
            AppEvent::Close(id, CloseCode::Abnormal)
        ]
    );
    h.check_invariants().unwrap();
}

#[test]
fn a_connection_dropped_during_its_upgrade_gets_on_close_after_on_open() {
    let mut h = harness(config());
    let peer = h.connect();
    h.send(peer, &upgrade_request("/ws"));
    assert_eq!(h.phase(peer), Some("Upgrading"));
    // The shutdown timeout passes while on_upgrade runs: the loop drops the connection, and
    // the upgrade then accepts.
    h.shutdown();
    h.finish();
    let id = h.id(peer);
    assert_eq!(
        h.app_events(),
        [AppEvent::Open(id), AppEvent::Close(id, CloseCode::Abnormal)]
    );
    assert_eq!(h.stats().websocket_open, 0);
}

#[test]
fn a_reset_websocket_is_read_as_eof_and_its_last_answers_are_dropped() {
    let mut h = harness(config());
    let peer = upgraded(&mut h);
    h.send(peer, &text("unanswered"));
    h.reset(peer);
    assert_eq!(h.phase(peer), Some("PeerClosed"), "a reset reads like EOF");
    h.run_all_jobs();
    assert_eq!(h.phase(peer), None, "the answer's write failed: gone");
    assert_eq!(h.close_code(peer), Some(CloseCode::Abnormal));
    assert_eq!(h.stats().closed_peer_gone, 1);
}

#[test]
fn a_rejected_upgrade_owes_no_on_close() {
    let mut h = harness(config());
    let peer = h.connect();
    h.send(peer, &upgrade_request("/reject"));
    h.run_jobs(1);
    assert!(h.take_output(peer).starts_with(b"HTTP/1.1 403 "));
    assert_eq!(h.phase(peer), Some("Lingering"));
    assert!(h.fin_received(peer));
    h.peer_eof(peer);
    assert_eq!(h.phase(peer), None);
    h.run_all_jobs();
    assert!(h.app_events().is_empty(), "{:?}", h.app_events());
    assert_eq!(h.stats().closed_clean, 1);
}

#[test]
fn a_push_reaches_an_open_connection_and_a_broadcast_every_one() {
    let mut h = harness(config());
    let a = upgraded(&mut h);
    let b = upgraded(&mut h);
    let http = h.connect();
    h.push(a, "to a");
    h.broadcast("to all");
    assert_eq!(texts(&h.take_output(a)), ["to a", "to all"]);
    assert_eq!(texts(&h.take_output(b)), ["to all"]);
    assert!(
        h.take_output(http).is_empty(),
        "no WebSocket frames for HTTP connections"
    );
    assert_eq!(h.stats().messages_out, 3);
}

#[test]
fn inline_jobs_run_at_once_and_the_rest_of_the_input_follows() {
    let mut h = harness(Config {
        inline_handlers: true,
        ..config()
    });
    let peer = h.connect();
    let mut bytes = upgrade_request("/ws");
    bytes.extend(text("a"));
    bytes.extend(text("b"));
    h.send(peer, &bytes);
    assert_eq!(h.queued_jobs(), 0, "nothing waits for a worker");
    let out = h.take_output(peer);
    let body = &out[out.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4..];
    assert_eq!(texts(body), ["a", "b"]);
}

/// The session travels with the job: here it is inside a job that waits for room in a full
/// queue when the connection fails, and still reaches `on_close` (the test application records
/// `LostSession` otherwise, and `check_invariants` fails on it).
#[test]
fn a_session_inside_a_held_job_still_reaches_on_close() {
    let (mut h, peer) = a_peer_with_a_held_job();
    assert_eq!(
        h.queued_jobs(),
        1,
        "the peer's job is held on the connection"
    );
    h.fail(peer);
    assert_eq!(h.phase(peer), None);
    h.run_all_jobs();
    assert_eq!(h.close_code(peer), Some(CloseCode::Abnormal));
    assert!(
        !h.app_events().contains(&AppEvent::LostSession(h.id(peer))),
        "on_close had the session"
    );
    h.check_invariants().unwrap();
}

/// Regression (found by the random scripts once topics and sessions met): closing a connection
/// whose job waits for room drops that job's messages — and used to drop the session inside
/// it, so `on_close` came without it.
#[test]
fn closing_with_a_held_job_keeps_its_session_for_on_close() {
    let (mut h, peer) = a_peer_with_a_held_job();
    h.close(peer, CloseCode::Away);
    h.send(peer, &close_frame(1001));
    h.peer_eof(peer);
    h.run_all_jobs();
    assert_eq!(h.close_code(peer), Some(CloseCode::Away));
    assert!(
        !h.app_events().contains(&AppEvent::LostSession(h.id(peer))),
        "on_close had the session"
    );
    h.check_invariants().unwrap();
}

/// A one-job queue taken by another connection's job, and a peer whose own job (with its
/// session) waits for room on the connection.
fn a_peer_with_a_held_job() -> (Harness, usize) {
    let mut h = harness(Config {
        job_queue_capacity: 1,
        ..config()
    });
    let peer = upgraded(&mut h);
    let blocker = upgraded(&mut h);
    h.send(blocker, &text("occupies the queue"));
    h.send(peer, &text("held"));
    (h, peer)
}
