//! The server-wide memory budget (`max_buffered_bytes`): near it the biggest holders stop being
//! read and resume when it passes, nothing lost; past it the slow consumer holding the most is
//! dropped with `1008`; connections that read what they are sent are never dropped.

use super::*;
use std::time::Duration;

use crate::ws::CloseCode;

const KIB: usize = 1024;

/// A 64 KiB budget (pressure from 48 KiB), small read buffers, and per-connection limits
/// large enough that only the budget binds.
fn budget_config() -> Config {
    Config {
        max_buffered_bytes: 64 * KIB,
        read_buffer_size: KIB,
        max_outbound_bytes: 1024 * KIB,
        ..config()
    }
}

fn texts_of(h: &mut Harness, peer: usize) -> Vec<String> {
    texts(&h.take_output(peer))
}

#[test]
fn near_the_budget_the_biggest_holder_stops_being_read_and_resumes_after() {
    let mut h = harness(budget_config());
    let hog = upgraded(&mut h);
    let legit = upgraded(&mut h);
    h.set_write_room(hog, 0); // it sends and never reads
    let message = "m".repeat(2 * KIB);
    let mut burst = Vec::new();
    for _ in 0..30 {
        burst.extend(text(&message));
    }
    h.send(hog, &burst);
    assert!(
        h.stats().buffered_bytes >= 48 * KIB as u64,
        "{} bytes held: pressure",
        h.stats().buffered_bytes
    );
    h.send(hog, &text("after the pause"));
    assert!(h.unread(hog) > 0, "holding more than its share: not read");
    assert_eq!(h.stats().budget_pauses, 1);

    h.send(legit, &text("hi"));
    h.run_all_jobs();
    assert_eq!(
        texts_of(&mut h, legit),
        ["hi"],
        "the small holder is served"
    );
    assert_eq!(h.phase(hog), Some("Open"));
    h.check_invariants().unwrap();

    // The hog reads again: its output drains, the pressure passes, and the loop drives it.
    h.set_write_room(hog, usize::MAX);
    h.run_all_jobs();
    assert_eq!(h.unread(hog), 0, "read again once the pressure passed");
    let echoed = texts_of(&mut h, hog);
    assert_eq!(echoed.len(), 31, "nothing lost");
    assert_eq!(echoed[30], "after the pause");
    assert_eq!(h.stats().budget_drops, 0);
    assert_eq!(h.stats().buffered_bytes, 0);
    h.check_invariants().unwrap();
}

#[test]
fn past_the_budget_the_slow_consumer_holding_most_is_dropped_with_1008() {
    let mut h = harness(budget_config());
    let big = upgraded(&mut h);
    let small = upgraded(&mut h);
    let legit = upgraded(&mut h);
    h.set_write_room(big, 0);
    h.set_write_room(small, 0);
    h.push(small, &"s".repeat(10 * KIB));
    h.push(big, &"b".repeat(25 * KIB));
    h.push(big, &"b".repeat(25 * KIB));
    assert_eq!(h.stats().budget_drops, 0, "60 KiB is not yet past 64 KiB");
    h.push(big, &"b".repeat(25 * KIB));
    assert_eq!(
        h.phase(big),
        None,
        "past the budget: the biggest slow consumer goes"
    );
    assert_eq!(h.stats().budget_drops, 1);
    assert_eq!(h.phase(small), Some("Open"), "one drop was enough");
    assert_eq!(h.phase(legit), Some("Open"));
    h.run_all_jobs();
    assert_eq!(h.close_code(big), Some(CloseCode::Policy));
    let held = h.stats().buffered_bytes as usize;
    assert!(
        (10 * KIB..11 * KIB).contains(&held),
        "what is left is the small one's push: {held}"
    );
    h.send(legit, &text("still served"));
    h.run_all_jobs();
    assert_eq!(texts_of(&mut h, legit), ["still served"]);
    h.check_invariants().unwrap();
}

#[test]
fn a_client_that_reads_is_paused_but_never_dropped() {
    let mut h = harness(budget_config());
    let sender = upgraded(&mut h);
    let message = "x".repeat(4 * KIB);
    let mut burst = Vec::new();
    for _ in 0..20 {
        burst.extend(text(&message));
    }
    // 80 KiB wait for a handler that is slow: over the budget, but the client reads what it is
    // sent, so it is not a slow consumer.
    h.send(sender, &burst);
    assert!(h.stats().buffered_bytes > 64 * KIB as u64);
    h.send(sender, &text("last"));
    assert!(h.unread(sender) > 0, "paused");
    assert_eq!(h.stats().budget_drops, 0);
    assert_eq!(h.phase(sender), Some("Open"));
    h.run_all_jobs();
    let echoed = texts_of(&mut h, sender);
    assert_eq!(echoed.len(), 21, "every message echoed");
    assert_eq!(echoed[20], "last");
    assert_eq!(h.stats().budget_drops, 0);
    h.check_invariants().unwrap();
}

#[test]
fn an_http_body_counts_against_the_budget_while_its_request_is_handled() {
    let mut h = harness(Config {
        max_buffered_bytes: 16 * KIB,
        read_buffer_size: KIB,
        ..config()
    });
    let peer = h.connect();
    let body = "b".repeat(10 * KIB);
    let request = format!(
        "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    h.send(peer, request.as_bytes());
    assert_eq!(h.queued_jobs(), 1);
    assert!(
        h.stats().buffered_bytes >= body.len() as u64,
        "the job carries the body"
    );
    h.check_invariants().unwrap();
    h.run_all_jobs();
    let out = String::from_utf8(h.take_output(peer)).unwrap();
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert_eq!(h.stats().buffered_bytes, 0, "nothing held once answered");
    h.check_invariants().unwrap();
}

#[test]
fn after_a_storm_the_pool_is_emptied_and_memory_released_once() {
    let mut h = harness(Config {
        max_outbound_bytes: 8 * 1024 * KIB,
        release_memory_after: Some(Duration::from_secs(1)),
        ..config()
    });
    let peer = upgraded(&mut h);
    h.set_write_room(peer, 0);
    for _ in 0..9 {
        h.push(peer, &"s".repeat(1024 * KIB)); // 9 MiB the client does not take yet: a storm
    }
    assert!(h.stats().buffered_bytes > 9 * 1024 * KIB as u64);
    h.set_write_room(peer, usize::MAX);
    h.take_output(peer);
    assert_eq!(h.stats().buffered_bytes, 0);
    assert!(
        h.stats().pooled_buffers > 0,
        "the drained chunks are pooled"
    );
    h.advance(Duration::from_millis(999));
    assert_eq!(h.stats().memory_releases, 0, "not calm for long enough yet");
    h.advance(Duration::from_millis(1));
    assert_eq!(h.stats().memory_releases, 1, "calm for 1 s: released");
    assert_eq!(h.stats().pooled_buffers, 0, "the pool was emptied");
    h.advance(Duration::from_secs(10));
    assert_eq!(h.stats().memory_releases, 1, "once per storm");
    h.send(peer, &text("after"));
    h.run_all_jobs();
    assert_eq!(
        texts_of(&mut h, peer),
        ["after"],
        "the pool refills as needed"
    );
    h.check_invariants().unwrap();
}

#[test]
fn ordinary_traffic_never_releases_memory() {
    let mut h = harness(Config {
        release_memory_after: Some(Duration::from_millis(1)),
        ..config()
    });
    let peer = upgraded(&mut h);
    for n in 0..100 {
        h.send(peer, &text(&format!("{n}")));
        h.run_all_jobs();
        h.advance(Duration::from_millis(5));
    }
    assert_eq!(texts_of(&mut h, peer).len(), 100);
    assert_eq!(h.stats().memory_releases, 0);
}
