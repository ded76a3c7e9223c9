//! The fairness budget: one busy socket cannot starve the others; what it leaves is read on the
//! next turn (edge-triggered readiness will not say it again).

use super::*;

#[test]
fn a_firehose_reads_its_budget_then_waits_for_the_next_turn() {
    let mut h = harness(Config {
        max_read_per_turn: 1024,
        max_pending_messages: 1000,
        max_pending_bytes: 1 << 20,
        inline_handlers: true,
        ..config()
    });
    let hose = upgraded(&mut h);
    let quiet = upgraded(&mut h);
    let mut flood = Vec::new();
    for _ in 0..100 {
        flood.extend(text(&"f".repeat(100)));
    }
    h.set_read_chunk(hose, 512);
    h.put(hose, &flood);
    h.put(quiet, &text("me too"));
    h.notify_readable(hose);
    let left = h.unread(hose);
    assert!(left > 0, "the budget stopped it");
    assert!(
        flood.len() - left <= 1024,
        "read {} bytes in one turn",
        flood.len() - left
    );
    h.notify_readable(quiet);
    assert_eq!(
        texts(&h.take_output(quiet)),
        ["me too"],
        "the other one was served meanwhile"
    );
    // Each turn reads one more budget's worth, without any new readiness event.
    let mut turns = 0;
    while h.unread(hose) > 0 {
        h.turn();
        turns += 1;
        assert!(turns < 100, "no progress");
    }
    assert!(turns >= flood.len() / 1024, "{turns} turns");
    assert_eq!(texts(&h.take_output(hose)).len(), 100);
}

#[test]
fn a_spurious_event_finds_nothing_and_changes_nothing() {
    let mut h = harness(config());
    let peer = upgraded(&mut h);
    let before = h.stats();
    h.readable(peer);
    h.readable(peer);
    assert_eq!(h.stats().bytes_in, before.bytes_in);
    assert_eq!(h.phase(peer), Some("Open"));
    assert_eq!(
        h.stats().buffers_in_use,
        0,
        "the buffer taken for the read went back"
    );
    h.check_invariants().unwrap();
}
