//! Backpressure: a full inbox, a full outbound queue and a full job queue each stop reading
//! the socket; nothing is dropped, and reading resumes when there is room.

use super::*;
use crate::harness::AppEvent;

#[test]
fn a_full_inbox_stops_reading_until_the_job_returns() {
    let mut h = harness(Config {
        max_pending_messages: 2,
        ..config()
    });
    let peer = upgraded(&mut h);
    let mut burst = Vec::new();
    for n in 0..6 {
        burst.extend(text(&n.to_string()));
    }
    h.set_read_chunk(peer, 3); // so the socket is read piece by piece, like a slow network
    h.send(peer, &burst);
    // Message 0 went out as a job; 1 and 2 fill the inbox; the rest stays in the socket.
    assert_eq!(h.queued_jobs(), 1);
    assert!(
        h.unread(peer) > 0,
        "reading stopped with bytes still in the socket"
    );
    assert_eq!(h.stats().backpressure_pauses, 1);
    h.run_all_jobs();
    assert_eq!(h.unread(peer), 0, "reading resumed after each reply");
    assert_eq!(texts(&h.take_output(peer)), ["0", "1", "2", "3", "4", "5"]);
    h.check_invariants().unwrap();
}

#[test]
fn a_full_outbound_queue_stops_dispatching_and_reading() {
    let mut h = harness(Config {
        max_outbound_bytes: 1024,
        ..config()
    });
    let peer = upgraded(&mut h);
    h.set_write_room(peer, 0); // the client stops reading
    let big = "x".repeat(2000);
    h.send(peer, &text(&big));
    h.run_all_jobs();
    assert_eq!(
        h.stats().pending_outbound_bytes,
        2004,
        "the echo waits for the socket"
    );
    assert!(h.interest(peer).is_some_and(|i| i.is_writable()));
    h.send(peer, &text("next"));
    assert_eq!(
        h.queued_jobs(),
        0,
        "no job while the output is over its limit"
    );
    h.put(peer, &text("more"));
    h.readable(peer);
    let waiting = text("next").len() + text("more").len();
    assert_eq!(
        h.unread(peer),
        waiting,
        "not even read while the output is over its limit"
    );
    // The client reads again: the echo drains, and the rest follows in order.
    h.set_write_room(peer, usize::MAX);
    h.run_all_jobs();
    let out = h.take_output(peer);
    assert_eq!(texts(&out), [big.as_str(), "next", "more"]);
    assert!(
        h.interest(peer).is_some_and(|i| !i.is_writable()),
        "WRITABLE dropped once drained"
    );
    h.check_invariants().unwrap();
}

#[test]
fn a_full_job_queue_holds_the_job_on_its_connection() {
    let mut h = harness(Config {
        job_queue_capacity: 1,
        ..config()
    });
    let a = upgraded(&mut h);
    let b = upgraded(&mut h);
    h.send(a, &text("a"));
    h.send(b, &text("b"));
    assert_eq!(h.queued_jobs(), 1, "only a's job fits");
    assert_eq!(h.stats().backpressure_pauses, 1, "b's job is held");
    h.run_jobs(1);
    // a's reply made room: b's held job was offered again in the same turn.
    assert_eq!(h.queued_jobs(), 1);
    h.run_jobs(1);
    assert_eq!(texts(&h.take_output(a)), ["a"]);
    assert_eq!(texts(&h.take_output(b)), ["b"]);
    h.check_invariants().unwrap();
}

#[test]
fn a_held_http_batch_stops_reading_requests() {
    let mut h = harness(Config {
        job_queue_capacity: 1,
        ..config()
    });
    let blocker = upgraded(&mut h);
    h.send(blocker, &text("occupies the queue"));
    let peer = h.connect();
    h.set_read_chunk(peer, 40);
    h.send(
        peer,
        b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert!(h.unread(peer) > 0, "a held batch: no more reading");
    h.run_all_jobs();
    let out = String::from_utf8(h.take_output(peer)).unwrap();
    assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 2, "{out}");
}

#[test]
fn a_push_past_twice_the_outbound_limit_drops_a_slow_consumer() {
    let mut h = harness(Config {
        max_outbound_bytes: 100,
        ..config()
    });
    let peer = upgraded(&mut h);
    h.set_write_room(peer, 0);
    for _ in 0..3 {
        h.push(peer, &"y".repeat(60));
    }
    assert_eq!(
        h.phase(peer),
        Some("Open"),
        "3 frames of 62 bytes: within 200"
    );
    h.push(peer, &"y".repeat(60));
    assert_eq!(h.phase(peer), None, "past 200: dropped");
    h.run_all_jobs();
    assert_eq!(h.close_code(peer), Some(crate::ws::CloseCode::Policy));
    assert_eq!(h.stats().closed_server, 1);
    assert_eq!(h.stats().pending_outbound_bytes, 0, "its buffers are freed");
}

/// Visible backpressure: output past `high_water_bytes` that falls to `low_water_bytes` owes
/// the handler one `on_drain`, carried by a job of its own when no message waits.
#[test]
fn output_past_the_high_water_mark_that_drains_calls_on_drain_once() {
    let mut h = harness(Config {
        high_water_bytes: 1000,
        low_water_bytes: 100,
        max_outbound_bytes: 4000,
        ..config()
    });
    let peer = upgraded(&mut h);
    let id = h.id(peer);
    let drains = |h: &Harness| {
        h.app_events()
            .iter()
            .filter(|e| **e == AppEvent::Drain(id))
            .count()
    };
    h.send(peer, &text("small"));
    h.run_all_jobs();
    h.take_output(peer);
    assert_eq!(drains(&h), 0, "never past the mark: no on_drain");

    h.set_write_room(peer, 0);
    h.send(peer, &text(&"x".repeat(1500)));
    h.run_all_jobs();
    assert_eq!(h.queued_jobs(), 0);
    h.set_write_room(peer, 700); // 1504 -> 804 bytes: still above the low mark
    h.run_all_jobs();
    assert_eq!(drains(&h), 0, "not yet down to the low mark");
    h.set_write_room(peer, usize::MAX);
    assert_eq!(h.queued_jobs(), 1, "a job for on_drain alone");
    h.run_all_jobs();
    assert_eq!(drains(&h), 1);
    h.send(peer, &text("after"));
    h.run_all_jobs();
    assert_eq!(drains(&h), 1, "once per crossing");
    let out = h.take_output(peer);
    assert_eq!(texts(&out).last().map(String::as_str), Some("after"));
    h.check_invariants().unwrap();
}

/// A high-water mark of 0 is taken as 1 byte: an empty queue is not past it. (Taken as 0, every
/// reply — the reply to an `on_drain` job too, which is empty — made the connection owe another
/// `on_drain`, without end: `run_all_jobs` never returned.)
#[test]
fn a_high_water_mark_of_zero_owes_one_on_drain_per_crossing() {
    let mut h = harness(Config {
        high_water_bytes: 0,
        ..config()
    });
    let peer = upgraded(&mut h);
    let id = h.id(peer);
    for round in 1..=3 {
        h.send(peer, &text("echo me"));
        h.run_all_jobs();
        assert_eq!(h.queued_jobs(), 0);
        let drains = h
            .app_events()
            .iter()
            .filter(|e| **e == AppEvent::Drain(id))
            .count();
        assert_eq!(drains, round, "one on_drain per echo that passed the mark");
    }
    assert_eq!(texts(&h.take_output(peer)), ["echo me"; 3]);
    h.check_invariants().unwrap();
}

/// The reply that finds the inbox full sends the inbox out as the next job, and the room that
/// makes is read into at once: the socket's bytes raised their readiness event long ago, and
/// no other comes for them (edge-triggered), so waiting for the next reply would leave the
/// socket unread for a whole job's time — or for good, if that job made no reply.
#[test]
fn a_job_that_empties_a_full_inbox_lets_reading_resume_at_once() {
    let mut h = harness(Config {
        max_pending_messages: 2,
        ..config()
    });
    let peer = upgraded(&mut h);
    let frame = text("0").len();
    let mut burst = Vec::new();
    for n in 0..8 {
        burst.extend(text(&n.to_string()));
    }
    h.set_read_chunk(peer, frame); // a frame a read: the counts below are exact
    h.send(peer, &burst);
    // Message 0 is the job; 1 and 2 fill the inbox.
    assert_eq!(h.queued_jobs(), 1);
    assert_eq!(h.unread(peer), burst.len() - 3 * frame);
    assert_eq!(h.run_jobs(1), 1);
    // 1 and 2 are the next job; 3 and 4 fill the inbox again, read without a new event.
    assert_eq!(h.queued_jobs(), 1);
    assert_eq!(
        h.unread(peer),
        burst.len() - 5 * frame,
        "read on after the reply"
    );
    h.run_all_jobs();
    assert_eq!(
        texts(&h.take_output(peer)),
        ["0", "1", "2", "3", "4", "5", "6", "7"]
    );
    h.check_invariants().unwrap();
}
