//! Out-of-order completions in the core, without sockets: the connection goes on to its next
//! messages while they are outstanding; each completion joins the inbox and runs in a job of
//! its own connection, in any order; at the limit the peer's messages wait (and the inbox
//! fills: reading stops) until one completes or expires; the deadline owes
//! `on_unordered_timeout`; the close ends them, and `on_close` runs once.

use super::*;
use crate::dispatch::JobRunner;
use crate::harness::AppEvent;
use crate::ws::CloseCode;

fn unordered(limit: usize, timeout: Duration) -> Config {
    Config {
        max_unordered_per_connection: limit,
        deferred_timeout: timeout,
        ..config()
    }
}

#[test]
fn the_connection_goes_on_and_completions_run_in_any_order() {
    let mut h = harness(unordered(4, secs(30)));
    let peer = upgraded(&mut h);
    let mut bytes = text("unordered:1");
    bytes.extend(text("unordered:2"));
    bytes.extend(text("a"));
    h.send(peer, &bytes);
    h.run_all_jobs();
    assert_eq!(texts(&h.take_output(peer)), ["a"], "no wait for 1 and 2");
    assert_eq!(h.inbox_len(peer), 0);
    assert!(h.complete_unordered(2, "two"));
    assert_eq!(
        h.queued_jobs(),
        1,
        "the completion is a job of its connection"
    );
    h.run_all_jobs();
    assert!(h.complete_unordered(1, "one"));
    h.run_all_jobs();
    assert_eq!(texts(&h.take_output(peer)), ["two", "one"]);
    assert!(!h.complete_unordered(1, "again"), "completed already");
    let id = h.id(peer);
    let events = h.app_events();
    assert!(events.contains(&AppEvent::Completed(id, "two".into())));
    h.check_invariants().unwrap();
}

#[test]
fn a_completion_that_comes_while_a_job_runs_waits_for_it() {
    let mut h = harness(unordered(4, secs(30)));
    let peer = upgraded(&mut h);
    h.send(peer, &text("unordered:1"));
    h.run_all_jobs();
    h.send(peer, &text("b"));
    let job = h.steal_job().expect("b's job");
    assert!(h.complete_unordered(1, "one"));
    assert_eq!(
        h.queued_jobs(),
        0,
        "one job at a time: the completion waits"
    );
    h.finish_job(job);
    h.run_all_jobs();
    assert_eq!(texts(&h.take_output(peer)), ["b", "one"]);
    h.check_invariants().unwrap();
}

#[test]
fn completed_before_its_reply_reached_the_loop_it_runs_after_it() {
    let mut h = harness(unordered(4, secs(30)));
    let peer = upgraded(&mut h);
    h.send(peer, &text("unordered:7"));
    let job = h.steal_job().expect("the job");
    // The job runs (its cell is made) but its reply is not applied yet: complete first.
    let returned = h.app.run(job.0).expect("a reply");
    assert!(h.complete_unordered(7, "seven"), "kept in the cell");
    h.table.reply(returned, h.now);
    h.turn();
    h.run_all_jobs();
    assert_eq!(texts(&h.take_output(peer)), ["seven"]);
    h.check_invariants().unwrap();
}

#[test]
fn at_the_limit_the_next_message_waits_until_one_completes() {
    let mut h = harness(unordered(2, secs(30)));
    let peer = upgraded(&mut h);
    let mut bytes = text("unordered:1");
    bytes.extend(text("unordered:2"));
    h.send(peer, &bytes);
    h.run_all_jobs();
    h.send(peer, &text("b"));
    assert_eq!(h.queued_jobs(), 0, "b waits: two outstanding");
    assert_eq!(h.inbox_len(peer), 1);
    let id = h.id(peer);
    assert!(!h.app_events().contains(&AppEvent::Message(id, "b".into())));
    assert!(h.complete_unordered(1, "one"));
    h.run_all_jobs();
    assert_eq!(texts(&h.take_output(peer)), ["b", "one"]);
    h.check_invariants().unwrap();
}

#[test]
fn at_the_limit_a_full_inbox_stops_reading() {
    let mut config = unordered(1, secs(30));
    config.max_pending_messages = 2;
    let mut h = harness(config);
    let peer = upgraded(&mut h);
    h.send(peer, &text("unordered:1"));
    h.run_all_jobs();
    let mut bytes = text("b");
    bytes.extend(text("c"));
    bytes.extend(text("d"));
    h.send(peer, &bytes);
    assert_eq!(h.inbox_len(peer), 2, "d stays unread in the read buffer");
    assert_eq!(h.queued_jobs(), 0);
    assert!(h.complete_unordered(1, "one"));
    h.run_all_jobs();
    // "one" came before d was read: d follows it.
    assert_eq!(texts(&h.take_output(peer)), ["b", "c", "one", "d"]);
    h.check_invariants().unwrap();
}

#[test]
fn past_the_limit_a_call_is_refused_and_off_by_default() {
    let mut h = harness(unordered(1, secs(30)));
    let peer = upgraded(&mut h);
    let mut bytes = text("unordered:1");
    bytes.extend(text("unordered:2"));
    h.send(peer, &bytes);
    h.run_all_jobs();
    let id = h.id(peer);
    assert!(h.app_events().contains(&AppEvent::UnorderedRefused(id, 2)));
    let mut h = harness(config());
    let peer = upgraded(&mut h);
    h.send(peer, &text("unordered:1"));
    h.run_all_jobs();
    let id = h.id(peer);
    assert!(h.app_events().contains(&AppEvent::UnorderedRefused(id, 1)));
    h.check_invariants().unwrap();
}

#[test]
fn past_the_deadline_on_unordered_timeout_runs_and_a_late_completion_is_refused() {
    let mut h = harness(unordered(4, secs(5)));
    let peer = upgraded(&mut h);
    h.send(peer, &text("unordered:9"));
    h.run_all_jobs();
    h.advance(Duration::from_millis(4_999));
    assert_eq!(h.queued_jobs(), 0, "not yet");
    h.advance(Duration::from_millis(1));
    assert_eq!(h.stats().unordered_expired, 1);
    h.run_all_jobs();
    assert_eq!(close_code(&h.take_output(peer)), Some(1011));
    assert!(!h.complete_unordered(9, "late"), "ended at the deadline");
    let id = h.id(peer);
    assert!(h.app_events().contains(&AppEvent::UnorderedTimeout(id, 9)));
    h.check_invariants().unwrap();
}

#[test]
fn a_close_ends_them_and_on_close_runs_once() {
    let mut h = harness(unordered(4, secs(30)));
    let peer = upgraded(&mut h);
    let mut bytes = text("unordered:1");
    bytes.extend(text("unordered:2"));
    h.send(peer, &bytes);
    h.run_all_jobs();
    assert!(
        h.complete_unordered(1, "one"),
        "its arrival is in the inbox"
    );
    h.fail(peer);
    assert_eq!(h.phase(peer), None, "closed: nothing is awaited any more");
    h.run_all_jobs();
    assert!(!h.complete_unordered(2, "late"), "ended by the close");
    let id = h.id(peer);
    let closes = h
        .app_events()
        .iter()
        .filter(|event| matches!(event, AppEvent::Close(c, _) if *c == id))
        .count();
    assert_eq!(closes, 1);
    assert_eq!(h.close_code(peer), Some(CloseCode::Abnormal));
    h.check_invariants().unwrap();
}

#[test]
fn after_the_peers_close_frame_they_are_awaited_before_the_answer() {
    let mut h = harness(unordered(4, secs(30)));
    let peer = upgraded(&mut h);
    h.send(peer, &text("unordered:1"));
    h.run_all_jobs();
    h.send(peer, &close_frame(1000));
    assert!(h.take_output(peer).is_empty(), "no answer to the close yet");
    assert_eq!(h.phase(peer), Some("PeerClosed"));
    assert!(h.complete_unordered(1, "one"));
    h.run_all_jobs();
    let out = h.take_output(peer);
    assert_eq!(texts(&out), ["one"]);
    assert_eq!(close_code(&out), Some(1000), "then the echo of the close");
    h.check_invariants().unwrap();
}

#[test]
fn a_dropped_handle_frees_its_place() {
    let mut h = harness(unordered(1, secs(30)));
    let peer = upgraded(&mut h);
    h.send(peer, &text("unordered:1"));
    h.run_all_jobs();
    h.send(peer, &text("b"));
    assert_eq!(h.queued_jobs(), 0);
    assert!(h.drop_unordered(1));
    assert_eq!(h.stats().deferred_abandoned, 1);
    h.run_all_jobs();
    assert_eq!(texts(&h.take_output(peer)), ["b"]);
    h.check_invariants().unwrap();
}

#[test]
fn a_shutdown_waits_for_them_and_a_due_timer_does_not_spin_meanwhile() {
    let mut h = harness(unordered(4, secs(30)));
    let peer = upgraded(&mut h);
    let mut bytes = text("unordered:1");
    bytes.extend(text("timer:0:10"));
    h.send(peer, &bytes);
    h.run_all_jobs();
    h.shutdown();
    // The timer comes due while the connection awaits its completion: disarmed, not fired
    // (a loop that took it as its deadline again and again would never return from here).
    h.advance(Duration::from_secs(1));
    assert_eq!(h.phase(peer), Some("Open"), "awaiting the completion");
    assert!(h.complete_unordered(1, "one"));
    h.run_all_jobs();
    let out = h.take_output(peer);
    assert_eq!(texts(&out), ["one"]);
    assert_eq!(close_code(&out), Some(1001), "then the shutdown's close");
    let id = h.id(peer);
    assert!(!h.app_events().contains(&AppEvent::Timer(id, 0)));
    h.check_invariants().unwrap();
}
