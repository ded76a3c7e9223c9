//! The registry's recoveries, without Redis: what a subscription from a position holds, and
//! in what order its history, its held publications and its "cannot recover" frame go out.

use std::sync::Mutex;

use super::*;

/// A relay that takes every recovery and remembers it.
#[derive(Debug, Default)]
struct Recorder {
    recoveries: Mutex<Vec<(ConnId, String, Position)>>,
}

impl Relay for Recorder {
    fn publish(
        &self,
        _: &Topic,
        _: &Arc<[u8]>,
        _: Option<ConnId>,
        _: bool,
    ) -> crate::dispatch::Local {
        crate::dispatch::Local::Ordered
    }
    fn orders(&self, _: &Topic) -> bool {
        true
    }
    fn interest(&self, _: usize, _: &Topic, _: bool) {}
    fn loop_drops(&self) -> Vec<u64> {
        Vec::new()
    }
    fn recover(&self, conn: ConnId, topic: &Topic, since: Position) -> bool {
        let mut recoveries = self.recoveries.lock().expect("not poisoned");
        recoveries.push((conn, topic.to_string(), since));
        true
    }
}

fn registry(max_held: usize, relay: Option<Arc<dyn Relay>>) -> TopicRegistry {
    let config = Config {
        recovery_buffer: max_held,
        ..Config::default()
    };
    let mut registry = TopicRegistry::new(&config, Arc::new(Metrics::default()));
    registry.set_relay(0, relay);
    registry
}

fn frame(text: &str) -> Arc<[u8]> {
    text.as_bytes().into()
}

fn at(offset: u64) -> Position {
    Position { epoch: 7, offset }
}

/// The direct frames queued, as text.
fn directs(registry: &mut TopicRegistry) -> Vec<String> {
    std::iter::from_fn(|| registry.next_direct())
        .map(|(_, f)| String::from_utf8_lossy(&f).into_owned())
        .collect()
}

#[test]
fn without_a_backplane_a_subscription_from_a_position_gets_the_unrecoverable_frame() {
    let mut registry = registry(4, None);
    let (conn, topic) = (ConnId::new(0, 1, 1), Topic::new("t").expect("short"));
    registry.subscribe_from(conn, topic.clone(), at(3), frame("cannot"));
    assert!(
        registry.is_subscribed(conn, &topic),
        "subscribed all the same"
    );
    assert!(registry.has_pending());
    assert_eq!(directs(&mut registry), ["cannot"]);
    assert!(
        !registry.hold(conn, &topic, at(4), &frame("live")),
        "delivered as usual"
    );
}

#[test]
fn the_history_goes_first_then_what_was_held_after_it() {
    let recorder = Arc::new(Recorder::default());
    let mut registry = registry(8, Some(recorder.clone()));
    let (conn, topic) = (ConnId::new(0, 1, 1), Topic::new("t").expect("short"));
    registry.subscribe_from(conn, topic.clone(), at(2), frame("cannot"));
    assert_eq!(recorder.recoveries.lock().expect("lock").len(), 1);
    // Live publications 4 and 5 come before the history, which was read up to 4.
    assert!(registry.hold(conn, &topic, at(4), &frame("4")));
    assert!(registry.hold(conn, &topic, at(5), &frame("5")));
    assert!(directs(&mut registry).is_empty());
    let entries = vec![(at(3), frame("3")), (at(4), frame("4"))];
    let history = History {
        conn,
        topic: topic.clone(),
        outcome: Ok((entries, at(4))),
    };
    registry.recovered(history);
    assert_eq!(directs(&mut registry), ["3", "4", "5"], "4 once");
    assert!(!registry.hold(conn, &topic, at(6), &frame("6")), "live now");
}

#[test]
fn a_refusal_sends_the_unrecoverable_frame_then_what_was_held() {
    let mut registry = registry(8, Some(Arc::new(Recorder::default())));
    let (conn, topic) = (ConnId::new(0, 1, 1), Topic::new("t").expect("short"));
    registry.subscribe_from(conn, topic.clone(), at(2), frame("cannot"));
    assert!(registry.hold(conn, &topic, at(9), &frame("9")));
    let history = History {
        conn,
        topic: topic.clone(),
        outcome: Err("too old".into()),
    };
    registry.recovered(history);
    assert_eq!(directs(&mut registry), ["cannot", "9"]);
}

/// The regression: on an overrun the publication that overran went out before the
/// "cannot recover" frame and the publications held before it.
#[test]
fn an_overrun_gives_up_in_order_and_a_late_history_is_ignored() {
    let mut registry = registry(2, Some(Arc::new(Recorder::default())));
    let (conn, topic) = (ConnId::new(0, 1, 1), Topic::new("t").expect("short"));
    registry.subscribe_from(conn, topic.clone(), at(2), frame("cannot"));
    assert!(registry.hold(conn, &topic, at(3), &frame("3")));
    assert!(registry.hold(conn, &topic, at(4), &frame("4")));
    assert!(
        registry.hold(conn, &topic, at(5), &frame("5")),
        "queued, not delivered"
    );
    assert_eq!(directs(&mut registry), ["cannot", "3", "4", "5"]);
    let history = History {
        conn,
        topic: topic.clone(),
        outcome: Ok((vec![(at(3), frame("3"))], at(3))),
    };
    registry.recovered(history);
    assert!(directs(&mut registry).is_empty(), "given up already");
}

#[test]
fn leaving_ends_a_recovery() {
    let mut registry = registry(8, Some(Arc::new(Recorder::default())));
    let (conn, topic) = (ConnId::new(0, 1, 1), Topic::new("t").expect("short"));
    registry.subscribe_from(conn, topic.clone(), at(2), frame("cannot"));
    registry.leave_all(conn);
    assert!(!registry.hold(conn, &topic, at(3), &frame("3")));
    let history = History {
        conn,
        topic,
        outcome: Err("late".into()),
    };
    registry.recovered(history);
    assert!(directs(&mut registry).is_empty());
}

/// The regression (CI, `a_recovery_while_publications_keep_coming_has_no_gap_and_no_duplicate`):
/// the history thread read Redis ahead of the subscriber thread, so publications the history
/// already held were still on their way live when it was delivered — and went out again.
#[test]
fn live_publications_the_history_already_gave_are_not_sent_again() {
    let mut registry = registry(8, Some(Arc::new(Recorder::default())));
    let (conn, topic) = (ConnId::new(0, 1, 1), Topic::new("t").expect("short"));
    registry.subscribe_from(conn, topic.clone(), at(2), frame("cannot"));
    assert!(registry.hold(conn, &topic, at(3), &frame("3")));
    let entries = vec![
        (at(3), frame("3")),
        (at(4), frame("4")),
        (at(5), frame("5")),
    ];
    let history = History {
        conn,
        topic: topic.clone(),
        outcome: Ok((entries, at(5))),
    };
    registry.recovered(history);
    assert_eq!(directs(&mut registry), ["3", "4", "5"]);
    // 4 and 5 come live after the history that gave them: dropped, not delivered.
    assert!(
        registry.hold(conn, &topic, at(4), &frame("4")),
        "a duplicate"
    );
    assert!(
        registry.hold(conn, &topic, at(5), &frame("5")),
        "a duplicate"
    );
    assert!(directs(&mut registry).is_empty());
    assert!(!registry.hold(conn, &topic, at(6), &frame("6")), "live now");
    assert!(
        !registry.hold(conn, &topic, at(7), &frame("7")),
        "and after"
    );
    let other_epoch = Position {
        epoch: 8,
        offset: 1,
    };
    assert!(!registry.hold(conn, &topic, other_epoch, &frame("e")));
}

/// After a history, a publication of another epoch (the history was lost and began again) is
/// new, whatever its offset.
#[test]
fn after_a_history_another_epoch_is_delivered() {
    let mut registry = registry(8, Some(Arc::new(Recorder::default())));
    let (conn, topic) = (ConnId::new(0, 1, 1), Topic::new("t").expect("short"));
    registry.subscribe_from(conn, topic.clone(), at(2), frame("cannot"));
    let history = History {
        conn,
        topic: topic.clone(),
        outcome: Ok((vec![(at(3), frame("3"))], at(3))),
    };
    registry.recovered(history);
    assert_eq!(directs(&mut registry), ["3"]);
    let restarted = Position {
        epoch: 8,
        offset: 1,
    };
    assert!(!registry.hold(conn, &topic, restarted, &frame("1")));
    assert!(
        !registry.hold(conn, &topic, at(3), &frame("3")),
        "caught up"
    );
}
