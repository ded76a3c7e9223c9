//! Random scripts (`harness/script.rs`, what the `connection_core` fuzz target runs), seeded so a
//! failure names a seed that reproduces it: nothing may panic, every invariant holds after every
//! step, and every connection ends closed with its `on_close` delivered.

use crate::harness::{fuzz_config, random_script, run_script};

#[test]
fn random_scripts_keep_every_invariant() {
    let mut total = crate::metrics::Stats::default();
    for seed in 0..3000u64 {
        match run_script(fuzz_config(), &random_script(seed)) {
            Ok(stats) => {
                total.upgrades += stats.upgrades;
                total.messages_in += stats.messages_in;
                total.http_requests += stats.http_requests;
                total.closed_protocol_error += stats.closed_protocol_error;
                total.closed_timeout += stats.closed_timeout;
                total.closed_clean += stats.closed_clean;
                total.backpressure_pauses += stats.backpressure_pauses;
                total.stale_replies_dropped += stats.stale_replies_dropped;
                total.pings_sent += stats.pings_sent;
                total.deflate_upgrades += stats.deflate_upgrades;
                total.compressed_in += stats.compressed_in;
                total.compressed_out += stats.compressed_out;
                total.monitoring_served += stats.monitoring_served;
                total.connections_rejected += stats.connections_rejected;
                total.budget_pauses += stats.budget_pauses;
                total.budget_drops += stats.budget_drops;
                total.topic_deliveries += stats.topic_deliveries;
                total.subscriptions_refused += stats.subscriptions_refused;
                total.unordered_expired += stats.unordered_expired;
            }
            Err(broken) => panic!("seed {seed}: {broken}"),
        }
    }
    // The scripts reach the paths they are meant to: not a test of nothing.
    eprintln!("{total:?}");
    assert!(total.upgrades > 1000, "{total:?}");
    assert!(total.messages_in > 1000, "{total:?}");
    assert!(total.http_requests > 1000, "{total:?}");
    assert!(total.closed_protocol_error > 100, "{total:?}");
    assert!(total.closed_timeout > 100, "{total:?}");
    assert!(total.closed_clean > 100, "{total:?}");
    assert!(total.backpressure_pauses > 10, "{total:?}");
    assert!(total.deflate_upgrades > 100, "{total:?}");
    assert!(total.compressed_in > 50, "{total:?}");
    assert!(total.stale_replies_dropped > 10, "{total:?}");
    assert!(total.pings_sent > 10, "{total:?}");
    // Reserve connections: served a monitoring request, or refused with 503.
    assert!(total.monitoring_served > 10, "{total:?}");
    assert!(total.connections_rejected > 10, "{total:?}");
    // The memory budget: connections paused near it, slow consumers dropped past it.
    assert!(total.budget_pauses > 10, "{total:?}");
    assert!(total.budget_drops > 10, "{total:?}");
    // Topics: publications delivered, subscriptions refused at the limit.
    assert!(total.topic_deliveries > 100, "{total:?}");
    assert!(total.subscriptions_refused > 10, "{total:?}");
    // Out-of-order completions started by the scripts, some past their deadline.
    assert!(total.unordered_expired > 10, "{total:?}");
}

#[test]
fn the_final_check_finds_an_on_close_that_never_came() {
    // The checker itself must be able to fail: a connection removed while its job runs owes
    // `on_close` until that job's reply; if the reply never comes, the check says so.
    let mut h = crate::harness::Harness::new(fuzz_config());
    let peer = h.connect();
    h.send(peer, &crate::harness::upgrade_request("/ws"));
    h.run_jobs(1);
    h.send(peer, &crate::harness::client_frame(0x1, b"x"));
    let never_finished = h.steal_job().expect("the message's job");
    h.fail(peer);
    assert!(h.check_every_close_delivered().is_err());
    never_finished.abandon();
}

/// The checker reads only the events since its last call; what it learned before still counts:
/// a second `on_open` or `on_close`, or a message after the close, recorded after a check that
/// passed, is caught by the next one.
#[test]
fn the_invariant_checker_remembers_earlier_events() {
    use super::{config, harness, upgraded};
    use crate::conn_id::ConnId;
    use crate::harness::AppEvent;
    use crate::ws::{CloseCode, Message};

    let check_after = |late: fn(ConnId) -> AppEvent| {
        let mut h = harness(config());
        let peer = upgraded(&mut h);
        let id = h.id(peer);
        h.app.record(AppEvent::Close(id, CloseCode::Normal));
        h.check_invariants().expect("opened, then closed: fine");
        h.check_invariants().expect("nothing new: still fine");
        h.app.record(late(id));
        h.check_invariants()
    };
    let twice = check_after(AppEvent::Open).expect_err("on_open twice");
    assert!(twice.contains("on_open twice"), "{twice}");
    let closed = check_after(|id| AppEvent::Close(id, CloseCode::Normal));
    let closed = closed.expect_err("on_close twice");
    assert!(
        closed.contains("on_close without on_open, or twice"),
        "{closed}"
    );
    let late = check_after(|id| AppEvent::Message(id, Message::Text("late".into())));
    let late = late.expect_err("a message after on_close");
    assert!(late.contains("outside open..close"), "{late}");
}
