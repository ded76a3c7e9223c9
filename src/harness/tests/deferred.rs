//! Deferred completions in the core, without sockets: a job whose call deferred holds the
//! connection's next job until its completion or its deadline; the deadline takes it back and
//! owes `on_deferred_timeout`; a close takes it back and `on_close` follows at once — or, with a
//! completion already running, after its reply; a completion that comes too late finds nothing.

use super::*;
use crate::harness::AppEvent;
use crate::ws::CloseCode;

fn deferring(timeout: Duration) -> Config {
    Config {
        deferred_timeout: timeout,
        ..config()
    }
}

#[test]
fn the_next_job_waits_for_the_completion_and_its_messages_keep_their_order() {
    let mut h = harness(deferring(secs(30)));
    let peer = upgraded(&mut h);
    let mut bytes = text("a");
    bytes.extend(text("defer"));
    bytes.extend(text("b"));
    h.send(peer, &bytes);
    h.run_jobs(1);
    assert_eq!(
        texts(&h.take_output(peer)),
        ["a"],
        "sent before deferring: now"
    );
    h.send(peer, &text("c"));
    assert_eq!(h.queued_jobs(), 0, "no job while the call is deferred");
    assert_eq!(h.stats().deferred_calls, 1);
    h.check_invariants().unwrap();
    assert!(h.complete_deferred("done"));
    assert_eq!(texts(&h.take_output(peer)), ["done"]);
    assert_eq!(
        h.queued_jobs(),
        1,
        "then b (left by the deferred job) and c, as one batch"
    );
    h.run_jobs(1);
    assert_eq!(texts(&h.take_output(peer)), ["b", "c"]);
    assert!(!h.complete_deferred("again"), "completed already");
    h.check_invariants().unwrap();
}

#[test]
fn past_the_deadline_the_job_is_taken_back_and_on_deferred_timeout_runs_first() {
    let mut h = harness(deferring(secs(5)));
    let peer = upgraded(&mut h);
    let mut bytes = text("defer");
    bytes.extend(text("b"));
    h.send(peer, &bytes);
    h.run_jobs(1);
    h.advance(Duration::from_millis(4_999));
    assert_eq!(h.queued_jobs(), 0, "not yet");
    h.advance(Duration::from_millis(1));
    assert_eq!(h.stats().deferred_expired, 1);
    assert_eq!(h.queued_jobs(), 1, "the job that owes on_deferred_timeout");
    h.run_jobs(1);
    assert_eq!(close_code(&h.take_output(peer)), Some(1011));
    assert!(
        !h.complete_deferred("late"),
        "a late completion finds nothing"
    );
    let id = h.id(peer);
    let events = h.app_events();
    assert!(events.contains(&AppEvent::DeferredTimeout(id)));
    assert!(
        !events.contains(&AppEvent::Message(id, "b".into())),
        "the close dropped b"
    );
    h.send(peer, &close_frame(1000));
    h.peer_eof(peer);
    assert_eq!(h.phase(peer), None);
    h.run_all_jobs();
    assert_eq!(h.close_code(peer), Some(CloseCode::Error));
    h.check_invariants().unwrap();
}

#[test]
fn a_close_takes_the_job_back_and_on_close_follows_with_the_session() {
    let mut h = harness(deferring(secs(30)));
    let peer = upgraded(&mut h);
    h.send(peer, &text("defer"));
    h.run_jobs(1);
    h.fail(peer);
    assert_eq!(h.phase(peer), None, "closed at once: nothing to wait for");
    h.run_all_jobs();
    assert_eq!(h.close_code(peer), Some(CloseCode::Abnormal));
    assert!(!h.complete_deferred("late"), "the connection closed first");
    h.check_invariants().unwrap();
}

#[test]
fn with_a_completion_running_on_close_waits_for_its_reply() {
    let mut h = harness(deferring(secs(30)));
    let peer = upgraded(&mut h);
    h.send(peer, &text("defer"));
    h.run_jobs(1);
    let completion = h.start_completion().expect("the call is pending");
    h.fail(peer);
    assert_eq!(h.phase(peer), None);
    h.run_all_jobs();
    assert_eq!(h.close_code(peer), None, "not beside the completion");
    h.finish_completion(completion, "done");
    h.run_all_jobs();
    assert_eq!(h.close_code(peer), Some(CloseCode::Abnormal));
    h.check_invariants().unwrap();
}

#[test]
fn a_deadline_at_its_maximum_never_comes_and_does_not_panic() {
    let mut h = harness(deferring(Duration::MAX));
    let peer = upgraded(&mut h);
    h.send(peer, &text("defer"));
    h.run_jobs(1);
    h.advance(Duration::from_secs(365 * 24 * 3600));
    assert_eq!(h.stats().deferred_expired, 0);
    assert!(h.complete_deferred("done"));
    assert_eq!(texts(&h.take_output(peer)), ["done"]);
    h.check_invariants().unwrap();
}

#[test]
fn shutdown_waits_for_the_completion_then_closes_with_1001() {
    let mut h = harness(deferring(secs(30)));
    let peer = upgraded(&mut h);
    h.send(peer, &text("defer"));
    h.run_jobs(1);
    h.shutdown();
    assert!(
        h.take_output(peer).is_empty(),
        "the handler's work is not done"
    );
    assert!(h.complete_deferred("done"));
    let out = h.take_output(peer);
    assert_eq!(texts(&out), ["done"]);
    assert_eq!(close_code(&out), Some(1001));
    h.check_invariants().unwrap();
}

#[test]
fn after_the_peers_close_the_deadline_still_owes_on_deferred_timeout_and_the_close_is_the_peers() {
    let mut h = harness(deferring(secs(5)));
    let peer = upgraded(&mut h);
    let mut bytes = text("defer");
    bytes.extend(text("b"));
    bytes.extend(close_frame(1000));
    h.send(peer, &bytes);
    h.run_jobs(1);
    assert_eq!(h.phase(peer), Some("PeerClosed"), "b still to handle");
    h.advance(secs(5));
    assert_eq!(h.stats().deferred_expired, 1);
    h.run_all_jobs();
    let id = h.id(peer);
    let calls: Vec<AppEvent> = h
        .app_events()
        .into_iter()
        .filter(|e| matches!(e, AppEvent::DeferredTimeout(_) | AppEvent::Message(..)))
        .collect();
    assert_eq!(
        calls,
        [
            AppEvent::Message(id, "defer".into()),
            AppEvent::DeferredTimeout(id),
        ],
        "the hook runs; its 1011 close is moot and b, after it, is dropped"
    );
    assert_eq!(
        close_code(&h.take_output(peer)),
        Some(1000),
        "the echo of the peer's"
    );
    h.peer_eof(peer);
    h.run_all_jobs();
    assert_eq!(h.close_code(peer), Some(CloseCode::Normal));
    assert!(!h.complete_deferred("late"));
    h.check_invariants().unwrap();
}

#[test]
fn after_our_close_the_deadline_takes_the_call_back_and_only_on_close_follows() {
    for linger in [false, true] {
        let mut h = harness(deferring(secs(1)));
        let peer = upgraded(&mut h);
        h.send(peer, &text("defer"));
        h.run_jobs(1);
        h.close(peer, CloseCode::Away);
        assert_eq!(close_code(&h.take_output(peer)), Some(1001));
        if linger {
            h.send(peer, &close_frame(1001));
            assert_eq!(h.phase(peer), Some("Lingering"));
        } else {
            assert_eq!(h.phase(peer), Some("Closing"));
        }
        h.advance(secs(1));
        assert_eq!(h.stats().deferred_expired, 1, "linger: {linger}");
        assert_eq!(h.queued_jobs(), 0, "no on_deferred_timeout once we closed");
        assert!(!h.complete_deferred("late"), "taken back");
        if !linger {
            h.send(peer, &close_frame(1001));
        }
        h.peer_eof(peer);
        h.run_all_jobs();
        assert_eq!(h.phase(peer), None);
        let id = h.id(peer);
        assert!(!h.app_events().contains(&AppEvent::DeferredTimeout(id)));
        assert_eq!(
            h.close_code(peer),
            Some(CloseCode::Away),
            "linger: {linger}"
        );
        h.check_invariants().unwrap();
        h.check_every_close_delivered().unwrap();
    }
}
