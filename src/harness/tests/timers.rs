//! A handler's own timers in the core, on a hand-driven clock: a timer fires at exactly its
//! deadline and not a nanosecond before, as work for the connection's job (never beside one,
//! waiting for a job or a deferred completion that is out), before the messages of that job; a
//! reset moves it, a cancel removes it, one too many is refused; zero fires with the next job,
//! a century never; a connection that closes never calls back, and the gauge follows.

use super::*;
use crate::harness::AppEvent;
use crate::ws::CloseCode;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The keys of the timers that fired for peer `peer`, in order.
fn fired(h: &Harness, peer: usize) -> Vec<u64> {
    let id = h.id(peer);
    h.app_events()
        .into_iter()
        .filter_map(|event| match event {
            AppEvent::Timer(conn, key) if conn == id => Some(key),
            _ => None,
        })
        .collect()
}

/// Peer `peer` sends `text` and its job runs.
fn say(h: &mut Harness, peer: usize, text_: &str) {
    h.send(peer, &text(text_));
    assert_eq!(h.run_jobs(1), 1, "the job for {text_:?}");
}

#[test]
fn a_timer_fires_at_exactly_its_deadline_and_not_before() {
    let mut h = harness(config());
    let peer = upgraded(&mut h);
    say(&mut h, peer, "timer:7:1000");
    assert_eq!(h.stats().connection_timers, 1);
    h.advance(Duration::from_nanos(999_999_999));
    assert_eq!(h.queued_jobs(), 0, "a nanosecond early");
    assert!(fired(&h, peer).is_empty());
    h.advance(Duration::from_nanos(1));
    assert_eq!(h.queued_jobs(), 1, "due: a job of its own");
    assert_eq!(h.stats().connection_timers, 0, "fired: no longer armed");
    h.run_jobs(1);
    assert_eq!(fired(&h, peer), [7]);
    assert_eq!(h.stats().timers_fired, 1);
    h.advance(secs(10));
    assert_eq!(fired(&h, peer), [7], "once");
    h.check_invariants().unwrap();
}

#[test]
fn setting_an_armed_key_resets_it_and_cancel_removes_it() {
    let mut h = harness(config());
    let peer = upgraded(&mut h);
    say(&mut h, peer, "timer:1:1000");
    say(&mut h, peer, "timer:2:1000");
    h.advance(ms(600));
    say(&mut h, peer, "timer:1:1000");
    say(&mut h, peer, "cancel:2");
    assert_eq!(h.stats().connection_timers, 1, "1 reset, 2 cancelled");
    h.advance(ms(999));
    assert_eq!(h.queued_jobs(), 0, "2 cancelled, 1 moved to 1.6 s");
    h.advance(ms(1));
    h.run_all_jobs();
    assert_eq!(fired(&h, peer), [1]);
    h.check_invariants().unwrap();
}

#[test]
fn one_timer_too_many_is_refused_and_a_reset_is_not_one_more() {
    let mut h = harness(Config {
        max_timers_per_connection: 2,
        ..config()
    });
    let peer = upgraded(&mut h);
    let id = h.id(peer);
    let mut batch = text("timer:1:50");
    batch.extend(text("timer:2:100"));
    batch.extend(text("timer:3:100"));
    batch.extend(text("timer:1:100"));
    h.send(peer, &batch);
    h.run_jobs(1);
    assert!(h.app_events().contains(&AppEvent::TimerRefused(id, 3)));
    assert_eq!(h.stats().connection_timers, 2);
    h.advance(ms(100));
    h.run_all_jobs();
    assert_eq!(fired(&h, peer), [1, 2], "1 was reset to 100 ms: set first");
    say(&mut h, peer, "timer:3:100");
    assert_eq!(h.stats().connection_timers, 1, "room again once they fired");
    h.check_invariants().unwrap();
}

#[test]
fn a_timer_due_while_a_job_is_out_waits_and_goes_before_the_messages_of_the_next() {
    let mut h = harness(config());
    let peer = upgraded(&mut h);
    say(&mut h, peer, "timer:1:100");
    h.send(peer, &text("a"));
    assert_eq!(h.queued_jobs(), 1, "a's job is out");
    h.advance(ms(100));
    h.send(peer, &text("b"));
    assert_eq!(h.queued_jobs(), 1, "no second job beside it");
    h.run_jobs(1);
    assert_eq!(texts(&h.take_output(peer)), ["a"]);
    assert_eq!(h.queued_jobs(), 1, "the timer and b, one job");
    h.run_jobs(1);
    let id = h.id(peer);
    let events = h.app_events();
    let timer = events.iter().position(|e| *e == AppEvent::Timer(id, 1));
    let b = events
        .iter()
        .position(|e| *e == AppEvent::Message(id, "b".into()));
    assert!(timer.is_some() && timer < b, "{events:?}");
    assert_eq!(texts(&h.take_output(peer)), ["b"]);
    h.check_invariants().unwrap();
}

#[test]
fn a_timer_waits_for_a_deferred_completion() {
    let mut h = harness(config());
    let peer = upgraded(&mut h);
    say(&mut h, peer, "timer:1:100");
    say(&mut h, peer, "defer");
    h.advance(ms(500));
    assert_eq!(h.queued_jobs(), 0, "the completion is out");
    assert!(fired(&h, peer).is_empty());
    assert!(h.complete_deferred("done"));
    assert_eq!(h.queued_jobs(), 1, "then the timer");
    h.run_jobs(1);
    assert_eq!(fired(&h, peer), [1]);
    h.check_invariants().unwrap();
}

#[test]
fn zero_fires_with_the_next_job_and_a_century_never() {
    let mut h = harness(config());
    let peer = upgraded(&mut h);
    say(&mut h, peer, &format!("timer:2:{}", u64::MAX));
    say(&mut h, peer, "timer:1:0");
    assert_eq!(h.queued_jobs(), 1, "due at once");
    h.run_jobs(1);
    assert_eq!(fired(&h, peer), [1]);
    h.advance(Duration::from_secs(50 * 365 * 24 * 3600));
    assert_eq!(h.queued_jobs(), 0, "u64::MAX ms is taken as a century");
    assert_eq!(h.stats().connection_timers, 1);
    h.check_invariants().unwrap();
}

#[test]
fn a_connection_that_closes_never_calls_back_and_on_close_comes_once() {
    let mut h = harness(config());
    let peer = upgraded(&mut h);
    say(&mut h, peer, "timer:1:100");
    say(&mut h, peer, "timer:2:200");
    h.send(peer, &close_frame(1000));
    h.run_all_jobs();
    assert_eq!(h.stats().connection_timers, 0, "they ended with Open");
    h.advance(secs(1));
    h.peer_eof(peer);
    h.run_all_jobs();
    assert_eq!(h.phase(peer), None);
    assert!(fired(&h, peer).is_empty());
    assert_eq!(h.close_code(peer), Some(CloseCode::Normal));
    h.check_invariants().unwrap();
    h.check_every_close_delivered().unwrap();
}

#[test]
fn inline_handlers_fire_timers_on_the_loop_in_the_same_order() {
    let mut h = harness(Config {
        inline_handlers: true,
        ..config()
    });
    let peer = upgraded(&mut h);
    h.send(peer, &text("timer:3:10"));
    h.send(peer, &text("timer:4:10"));
    h.advance(ms(10));
    assert_eq!(fired(&h, peer), [3, 4]);
    h.send(peer, &text("x"));
    assert_eq!(texts(&h.take_output(peer)), ["x"]);
    h.check_invariants().unwrap();
}
