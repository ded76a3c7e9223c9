//! Topics over the connection core: subscribe, publish, unsubscribe, "everyone but the sender",
//! subscriptions ending with the connection (also while its job is with the handler), the
//! per-connection limit, slow subscribers dropped, one shared copy of a large frame, and what
//! is kept for the other loops. The test application's commands (`sub:T`, `unsub:T`,
//! `pub:T:text`, `others:T:text`) stand for a handler calling `Context`.

use super::{config, harness, text, texts, upgraded};
use crate::buffer::SHARED_CHUNK_MIN;
use crate::config::Config;
use crate::harness::Harness;
use crate::harness::handle::Sent;
use crate::ws::CloseCode;

/// Peer `peer` sends `command` and its job runs.
fn command(h: &mut Harness, peer: usize, command: &str) {
    h.send(peer, &text(command));
    h.run_all_jobs();
}

/// What each of `peers` received since last asked, as texts.
fn received(h: &mut Harness, peers: &[usize]) -> Vec<Vec<String>> {
    peers.iter().map(|&p| texts(&h.take_output(p))).collect()
}

#[test]
fn subscribers_get_what_is_published_to_their_topic_only() {
    let mut h = harness(config());
    let (a, b, c) = (upgraded(&mut h), upgraded(&mut h), upgraded(&mut h));
    command(&mut h, a, "sub:red");
    command(&mut h, b, "sub:red");
    command(&mut h, c, "sub:blue");
    assert_eq!(h.subscriptions(a), ["red"]);
    assert_eq!((h.stats().topics, h.stats().subscriptions), (2, 3));

    command(&mut h, c, "pub:red:hello red");
    assert_eq!(
        received(&mut h, &[a, b, c]),
        [vec!["hello red"], vec!["hello red"], vec![]],
        "the publisher need not subscribe; blue hears nothing"
    );
    h.publish("blue", "from a handle");
    assert_eq!(
        received(&mut h, &[a, b, c]),
        [vec![], vec![], vec!["from a handle"]]
    );
    h.publish("green", "nobody");
    assert_eq!(
        received(&mut h, &[a, b, c]),
        [vec![], vec![], Vec::<String>::new()]
    );
    let stats = h.stats();
    assert_eq!(stats.topic_deliveries, 3);
    h.check_invariants().unwrap();
}

#[test]
fn the_sender_gets_its_own_publication_unless_it_excludes_itself() {
    let mut h = harness(config());
    let (a, b) = (upgraded(&mut h), upgraded(&mut h));
    command(&mut h, a, "sub:room");
    command(&mut h, b, "sub:room");
    command(&mut h, a, "pub:room:to all");
    assert_eq!(received(&mut h, &[a, b]), [vec!["to all"], vec!["to all"]]);
    command(&mut h, a, "others:room:not to me");
    assert_eq!(
        received(&mut h, &[a, b]),
        [vec![], vec!["not to me"]],
        "publish_to_others skips the sender"
    );
}

#[test]
fn a_handler_s_sends_and_its_own_publications_keep_their_order() {
    let mut h = harness(config());
    let a = upgraded(&mut h);
    // One job: subscribe, then a send, a publication, a send — in that order on the wire.
    let messages = ["sub:t", "one", "pub:t:two", "three", "pub:t:four"];
    h.send(a, &messages.map(text).concat());
    assert_eq!(h.run_jobs(1), 1);
    let got = texts(&h.take_output(a));
    assert_eq!(got, ["one", "two", "three", "four"]);
}

#[test]
fn a_subscription_takes_effect_before_later_publications_of_the_same_call() {
    let mut h = harness(config());
    let a = upgraded(&mut h);
    let messages = [
        "pub:t:before",
        "sub:t",
        "pub:t:after",
        "unsub:t",
        "pub:t:gone",
    ];
    h.send(a, &messages.map(text).concat());
    assert_eq!(h.run_jobs(1), 1, "one job");
    assert_eq!(texts(&h.take_output(a)), ["after"]);
    assert!(h.subscriptions(a).is_empty());
    assert_eq!(h.stats().subscriptions, 0);
}

#[test]
fn unsubscribed_connections_hear_nothing_more() {
    let mut h = harness(config());
    let (a, b) = (upgraded(&mut h), upgraded(&mut h));
    command(&mut h, a, "sub:t");
    command(&mut h, a, "sub:u");
    command(&mut h, a, "unsub:t");
    command(&mut h, a, "unsub:never-subscribed");
    assert_eq!(h.subscriptions(a), ["u"]);
    command(&mut h, b, "pub:t:x");
    command(&mut h, b, "pub:u:y");
    assert_eq!(texts(&h.take_output(a)), ["y"]);
    assert_eq!((h.stats().topics, h.stats().subscriptions), (1, 1));
}

#[test]
fn subscriptions_end_when_the_connection_closes() {
    let mut h = harness(config());
    let (a, b) = (upgraded(&mut h), upgraded(&mut h));
    command(&mut h, a, "sub:t");
    command(&mut h, a, "sub:u");
    command(&mut h, b, "sub:t");
    h.fail(a);
    assert_eq!(h.phase(a), None);
    assert_eq!((h.stats().topics, h.stats().subscriptions), (1, 1));
    h.publish("t", "still here");
    assert_eq!(texts(&h.take_output(b)), ["still here"]);
    assert_eq!(
        h.stats().stale_replies_dropped,
        0,
        "nothing is sent to the gone one"
    );
    // A connection that reuses a's slot starts with nothing.
    h.run_all_jobs(); // a's on_close
    let c = upgraded(&mut h);
    assert_eq!(h.id(c).index(), h.id(a).index());
    assert!(h.subscriptions(c).is_empty());
    h.check_invariants().unwrap();
}

#[test]
fn a_subscription_in_a_job_that_outlives_its_connection_is_not_taken() {
    let mut h = harness(config());
    let (a, b) = (upgraded(&mut h), upgraded(&mut h));
    command(&mut h, b, "sub:room");
    command(&mut h, a, "sub:old");
    // One job: both messages arrive in one read.
    h.send(a, &[text("sub:room"), text("pub:room:last words")].concat());
    let job = h.steal_job().expect("a's job");
    h.fail(a); // gone while its job is with the handler
    assert_eq!(
        h.stats().subscriptions,
        1,
        "a's subscriptions ended with it"
    );
    h.finish_job(job);
    assert_eq!(
        h.stats().subscriptions,
        1,
        "the late subscribe is not taken"
    );
    assert_eq!(h.stats().topics, 1);
    assert_eq!(
        texts(&h.take_output(b)),
        ["last words"],
        "what it published still reaches the room"
    );
    h.check_invariants().unwrap();
    h.run_all_jobs();
    h.check_every_close_delivered().unwrap();
}

#[test]
fn publications_of_a_closing_connection_still_reach_the_others() {
    let mut h = harness(config());
    let (a, b) = (upgraded(&mut h), upgraded(&mut h));
    command(&mut h, a, "sub:room");
    command(&mut h, b, "sub:room");
    h.send(a, &text("pub:room:bye all"));
    let job = h.steal_job().expect("a's job");
    h.close(a, CloseCode::Away); // our close frame goes out while the job runs
    h.take_output(a);
    h.finish_job(job);
    assert_eq!(texts(&h.take_output(b)), ["bye all"]);
    assert!(
        texts(&h.take_output(a)).is_empty(),
        "no data after our close frame"
    );
}

#[test]
fn subscriptions_past_the_limit_are_refused_and_counted() {
    let mut h = harness(Config {
        max_subscriptions: 2,
        ..config()
    });
    let a = upgraded(&mut h);
    for message in ["sub:1", "sub:2", "sub:1", "sub:3"] {
        command(&mut h, a, message);
    }
    assert_eq!(h.subscriptions(a), ["1", "2"], "subscribing twice is once");
    assert_eq!(h.stats().subscriptions_refused, 1);
    assert_eq!(h.phase(a), Some("Open"), "refused, not closed");
    command(&mut h, a, "unsub:1");
    command(&mut h, a, "sub:3");
    assert_eq!(h.subscriptions(a), ["2", "3"]);
}

#[test]
fn a_subscriber_that_does_not_read_is_dropped_as_a_slow_consumer() {
    let mut h = harness(Config {
        max_outbound_bytes: 4096,
        ..config()
    });
    let (slow, fast) = (upgraded(&mut h), upgraded(&mut h));
    command(&mut h, slow, "sub:feed");
    command(&mut h, fast, "sub:feed");
    h.set_write_room(slow, 0);
    let item = "x".repeat(2000);
    for _ in 0..5 {
        h.publish("feed", &item);
        h.take_output(fast);
    }
    assert_eq!(h.phase(slow), None, "past twice max_outbound_bytes");
    assert_eq!(h.close_code(slow), None, "on_close is a job");
    h.run_all_jobs();
    assert_eq!(h.close_code(slow), Some(CloseCode::Policy));
    assert_eq!(h.phase(fast), Some("Open"));
    assert_eq!((h.stats().topics, h.stats().subscriptions), (1, 1));
    h.check_invariants().unwrap();
}

#[test]
fn a_large_frame_is_shared_by_every_subscriber_not_copied() {
    let mut h = harness(config());
    let peers: Vec<usize> = (0..3).map(|_| upgraded(&mut h)).collect();
    for &p in &peers {
        command(&mut h, p, "sub:big");
        h.set_write_room(p, 0); // the frame stays queued, to be looked at
    }
    let payload = "b".repeat(SHARED_CHUNK_MIN);
    h.publish("big", &payload);
    let queued: Vec<Vec<(usize, usize)>> = peers.iter().map(|&p| h.queued_slices(p)).collect();
    for slices in &queued {
        assert_eq!(slices.len(), 1, "{slices:?}");
        assert_eq!(slices[0].1, SHARED_CHUNK_MIN + 4, "header and payload");
    }
    assert!(
        queued.iter().all(|slices| slices[0].0 == queued[0][0].0),
        "one frame in memory, queued on all three: {queued:?}"
    );
    // The budget counts it at its length on each connection (checked against the sum).
    h.check_invariants().unwrap();
    for &p in &peers {
        h.set_write_room(p, usize::MAX);
        assert_eq!(texts(&h.take_output(p)), std::slice::from_ref(&payload));
    }
}

#[test]
fn a_handler_s_publication_is_kept_for_the_other_loops_once_with_the_same_bytes() {
    let mut h = harness(config());
    h.forward_to_other_loops();
    let (a, b) = (upgraded(&mut h), upgraded(&mut h));
    command(&mut h, b, "sub:t");
    command(&mut h, a, "pub:t:one");
    command(&mut h, a, "others:nobody-here:two");
    h.publish("t", "from a handle");
    let forwarded = h.take_forwarded();
    let topics: Vec<&str> = forwarded.iter().map(|(t, _, _)| t.as_str()).collect();
    assert_eq!(
        topics,
        ["t", "nobody-here"],
        "in order; a handle's publication already went to every loop"
    );
    assert_eq!(forwarded[0].1, [0x81, 3, b'o', b'n', b'e']);
    assert_eq!(texts(&h.take_output(b)), ["one", "from a handle"]);
    assert!(h.take_forwarded().is_empty());
}

#[test]
fn an_inline_handler_s_topics_work_the_same() {
    let mut h = harness(Config {
        inline_handlers: true,
        ..config()
    });
    let (a, b) = (upgraded(&mut h), upgraded(&mut h));
    h.send(a, &text("sub:t"));
    h.send(b, &text("sub:t"));
    h.send(a, &text("others:t:hi b"));
    h.send(b, &text("pub:t:hi all"));
    assert_eq!(
        received(&mut h, &[a, b]),
        [vec!["hi all"], vec!["hi b", "hi all"]]
    );
    h.check_invariants().unwrap();
}

#[test]
fn a_broadcast_shares_a_large_frame_too() {
    let mut h = harness(config());
    let (a, b) = (upgraded(&mut h), upgraded(&mut h));
    h.set_write_room(a, 0);
    h.set_write_room(b, 0);
    h.broadcast(&"z".repeat(SHARED_CHUNK_MIN));
    let (qa, qb) = (h.queued_slices(a), h.queued_slices(b));
    assert_eq!(qa.len(), 1);
    assert_eq!(qa, qb, "the same bytes, once");
}

#[test]
fn a_round_of_publications_reaches_each_subscriber_in_one_write() {
    let mut h = harness(config());
    let (publisher, a, b) = (upgraded(&mut h), upgraded(&mut h), upgraded(&mut h));
    command(&mut h, a, "sub:room");
    command(&mut h, b, "sub:room");
    let before = (h.write_calls(a), h.write_calls(b));
    // Three messages in one read: one job, whose reply carries three publications.
    let burst = [
        text("pub:room:one"),
        text("pub:room:two"),
        text("pub:room:three"),
    ]
    .concat();
    h.send(publisher, &burst);
    h.run_all_jobs();
    assert_eq!(
        received(&mut h, &[a, b]),
        [vec!["one", "two", "three"], vec!["one", "two", "three"]]
    );
    assert_eq!(
        (h.write_calls(a) - before.0, h.write_calls(b) - before.1),
        (1, 1),
        "the round's publications go out in one write per subscriber"
    );
    assert_eq!(h.stats().topic_deliveries, 6);
    h.check_invariants().unwrap();
}

#[test]
fn a_handle_s_burst_of_publications_goes_out_in_one_write_before_its_next_push() {
    let mut h = harness(config());
    let (a, b) = (upgraded(&mut h), upgraded(&mut h));
    command(&mut h, a, "sub:news");
    command(&mut h, b, "sub:news");
    let before = (h.write_calls(a), h.write_calls(b));
    h.publish_burst_then_push("news", &["one", "two", "three"], a, "after");
    assert_eq!(
        received(&mut h, &[a, b]),
        [
            vec!["one", "two", "three", "after"],
            vec!["one", "two", "three"]
        ],
        "the push made after the publications comes after them"
    );
    assert_eq!(
        (h.write_calls(a) - before.0, h.write_calls(b) - before.1),
        (2, 1),
        "the burst is one write per subscriber; the push its own"
    );
    h.check_invariants().unwrap();
}

#[test]
fn a_burst_larger_than_the_outbound_bound_is_written_as_it_goes_not_dropped() {
    let mut config = config();
    config.max_outbound_bytes = 1024;
    let mut h = harness(config);
    let (a, b) = (upgraded(&mut h), upgraded(&mut h));
    command(&mut h, a, "sub:big");
    let item = "x".repeat(300);
    let burst: Vec<&str> = std::iter::repeat_n(item.as_str(), 10).collect();
    let before = h.write_calls(a);
    // 10 x 300 B is past twice max_outbound_bytes: corked whole, a reading subscriber would
    // look like a slow consumer.
    h.publish_burst_then_push("big", &burst, b, "done");
    assert_eq!(
        received(&mut h, &[a])[0].len(),
        10,
        "every publication arrives"
    );
    assert_eq!(h.stats().closed_server, 0, "nobody was dropped");
    assert!(
        h.write_calls(a) - before >= 3,
        "written as the output reached the bound"
    );
    h.check_invariants().unwrap();
}

#[test]
fn a_handle_s_burst_of_broadcasts_goes_out_in_one_write_before_its_next_push() {
    let mut h = harness(config());
    let (a, b) = (upgraded(&mut h), upgraded(&mut h));
    let before = (
        h.write_calls(a),
        h.write_calls(b),
        h.stats().topic_deliveries,
    );
    h.drain_commands(&[
        Sent::Broadcast("one"),
        Sent::Broadcast("two"),
        Sent::Broadcast("three"),
        Sent::Push(a, "after"),
    ]);
    assert_eq!(
        received(&mut h, &[a, b]),
        [
            vec!["one", "two", "three", "after"],
            vec!["one", "two", "three"]
        ],
        "the push made after the broadcasts comes after them"
    );
    assert_eq!(
        (h.write_calls(a) - before.0, h.write_calls(b) - before.1),
        (2, 1),
        "the burst is one write per connection; the push its own"
    );
    assert_eq!(
        h.stats().topic_deliveries,
        before.2,
        "broadcasts are not topic deliveries"
    );
    h.check_invariants().unwrap();
}

#[test]
fn broadcasts_and_publications_from_handles_keep_their_order() {
    let mut h = harness(config());
    let (a, b) = (upgraded(&mut h), upgraded(&mut h));
    command(&mut h, a, "sub:t");
    h.drain_commands(&[
        Sent::Publish("t", "p1"),
        Sent::Broadcast("b1"),
        Sent::Publish("t", "p2"),
        Sent::Publish("t", "p3"),
        Sent::Broadcast("b2"),
        Sent::Broadcast("b3"),
    ]);
    assert_eq!(
        received(&mut h, &[a, b]),
        [
            vec!["p1", "b1", "p2", "p3", "b2", "b3"],
            vec!["b1", "b2", "b3"]
        ]
    );
    h.check_invariants().unwrap();
}
