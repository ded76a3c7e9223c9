//! [`TopicRegistry`]: one event loop's subscriptions — topic → subscribers, and connection →
//! topics — and the publications waiting to be delivered or forwarded.
//!
//! The registry lives in the loop's table, beside the slab and outside every `Connection`: a
//! connection that subscribes to nothing costs nothing here, and one that does costs an entry
//! per topic in two maps (the topic's name is shared, not copied). Subscriptions enter from the
//! sessions, which carry out their handlers' requests through the [`Subscriptions`] seam; the
//! table ends all of a connection's subscriptions when it removes the connection
//! ([`leave_all`](TopicRegistry::leave_all)), so none outlives it — whatever its job was doing.
//!
//! Publications enter from the sessions (a handler published) and from commands (a
//! `ServerHandle` or another loop did), wait in [`pending`](TopicRegistry::next_group) until
//! the table delivers each to the topic's subscribers here, and — those of this loop's handlers,
//! when there are other loops — leave again through [`take_outbox`](TopicRegistry::take_outbox)
//! for the event loop to forward.
//!
//! Bounded: a connection may hold at most `Config::max_subscriptions` subscriptions (past it the
//! subscription is refused, logged and counted), and names at most `MAX_TOPIC_LEN` bytes.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use crate::config::Config;
use crate::conn_id::ConnId;
use crate::dispatch::{History, Publication, Relay};
use crate::metrics::{Metrics, add, sub};
use crate::session::Subscriptions;
use crate::topic::{Position, Topic};

/// One loop's topics, subscribers and publications in flight.
#[derive(Debug)]
pub(crate) struct TopicRegistry {
    /// Every topic with at least one subscriber here, and who they are.
    subscribers: HashMap<Topic, HashSet<ConnId>>,
    /// Every connection with at least one subscription, and to what (at most
    /// `max_per_connection` topics).
    memberships: HashMap<ConnId, Vec<Topic>>,
    max_per_connection: usize,
    /// Publications to deliver on this loop, in the order they were made.
    pending: VecDeque<Publication>,
    /// Publications of this loop's handlers, for the other loops.
    outbox: Vec<Publication>,
    /// There are other loops to forward to.
    forwarding: bool,
    /// Reused for each delivery's list of subscribers.
    scratch: Vec<ConnId>,
    /// Reused for each group of publications delivered together.
    group: Vec<Publication>,
    metrics: Arc<Metrics>,
    /// The backplane, told when a topic gains its first subscriber here or loses its last, and
    /// this loop's number.
    relay: Option<(usize, Arc<dyn Relay>)>,
    /// Subscriptions made from a position whose history has not come yet, with the positioned
    /// publications held for them meanwhile (at most `recovery_buffer` each) — or whose
    /// history came before the live publications it already gave.
    recovering: HashMap<(ConnId, Topic), Recovering>,
    max_held: usize,
    /// Frames for one connection each, in order: a history, what was held while it loaded, or
    /// a "cannot recover" frame.
    direct: VecDeque<(ConnId, Arc<[u8]>)>,
}

/// Where a subscription from a position stands.
///
/// The history thread reads Redis on a connection of its own, so it may read further than the
/// subscriber thread has forwarded: the live publications up to the history's last one can
/// still be on their way when the history is delivered. They arrive in offset order, so the
/// first one past that position ends the recovery.
#[derive(Debug)]
enum Recovering {
    /// The history has not come: live publications are held.
    Loading(Held),
    /// The history went out, up to `top`: live publications up to it are duplicates.
    Delivered { top: Position },
}

/// What a subscription from a position waits with.
#[derive(Debug)]
struct Held {
    /// Sent instead of the history if it cannot be had.
    unrecoverable: Arc<[u8]>,
    /// Positioned publications that came live meanwhile, in order.
    publications: Vec<(Position, Arc<[u8]>)>,
}

impl TopicRegistry {
    pub(crate) fn new(config: &Config, metrics: Arc<Metrics>) -> Self {
        TopicRegistry {
            subscribers: HashMap::new(),
            memberships: HashMap::new(),
            max_per_connection: config.max_subscriptions,
            pending: VecDeque::new(),
            outbox: Vec::new(),
            forwarding: false,
            scratch: Vec::new(),
            group: Vec::new(),
            metrics,
            relay: None,
            recovering: HashMap::new(),
            max_held: config.recovery_buffer,
            direct: VecDeque::new(),
        }
    }

    /// A positioned publication for `conn`: held if its history is still loading, dropped if
    /// the history delivered already gave it. Past `recovery_buffer` the recovery is given up:
    /// the "cannot recover" frame, what was held and this publication go out in that order, as
    /// direct frames. True if the publication is taken care of here (held, dropped, or queued
    /// as a direct frame), false if it is to be delivered.
    pub(crate) fn hold(
        &mut self,
        conn: ConnId,
        topic: &Topic,
        at: Position,
        frame: &Arc<[u8]>,
    ) -> bool {
        if self.recovering.is_empty() {
            return false;
        }
        let key = (conn, topic.clone());
        let held = match self.recovering.get_mut(&key) {
            None => return false,
            Some(Recovering::Delivered { top }) => {
                if at.epoch == top.epoch && at.offset <= top.offset {
                    log::trace!("{conn}: {at} of {topic:?} came in its history already");
                    return true;
                }
                self.recovering.remove(&key);
                return false;
            }
            Some(Recovering::Loading(held)) => held,
        };
        if held.publications.len() < self.max_held {
            held.publications.push((at, Arc::clone(frame)));
            return true;
        }
        if let Some(Recovering::Loading(held)) = self.recovering.remove(&key) {
            log::debug!("{conn}: live publications of {topic:?} overran its recovery");
            add(&self.metrics.backplane_recovery_refused, 1);
            self.direct.push_back((conn, held.unrecoverable));
            let publications = held.publications.into_iter().map(|(_, f)| (conn, f));
            self.direct.extend(publications);
            self.direct.push_back((conn, Arc::clone(frame)));
        }
        true
    }

    /// The history a recovery asked for has come: queue it, then what was held after it — or
    /// the "cannot recover" frame, then everything held. Nothing if the connection is no longer
    /// waiting for it (gone, unsubscribed, or given up on an overrun).
    pub(crate) fn recovered(&mut self, history: History) {
        let History {
            conn,
            topic,
            outcome,
        } = history;
        let key = (conn, topic);
        let Some(Recovering::Loading(held)) = self.recovering.remove(&key) else {
            return;
        };
        match outcome {
            Ok((entries, top)) => {
                self.direct
                    .extend(entries.into_iter().map(|(_, frame)| (conn, frame)));
                let is_new = |at: &Position| at.epoch != top.epoch || at.offset > top.offset;
                let caught_up = held.publications.iter().any(|(at, _)| is_new(at));
                let after = held.publications.into_iter().filter(|(at, _)| is_new(at));
                self.direct.extend(after.map(|(_, frame)| (conn, frame)));
                if !caught_up {
                    self.recovering.insert(key, Recovering::Delivered { top });
                }
            }
            Err(why) => {
                log::debug!("{conn}: cannot recover: {why}");
                self.direct.push_back((conn, held.unrecoverable));
                let publications = held.publications.into_iter().map(|(_, f)| (conn, f));
                self.direct.extend(publications);
            }
        }
    }

    /// The next frame for one connection (a history, held publications, "cannot recover").
    pub(crate) fn next_direct(&mut self) -> Option<(ConnId, Arc<[u8]>)> {
        self.direct.pop_front()
    }

    /// Ends `conn`'s recovery of `topic`, if one waits (it unsubscribed or left).
    fn forget_recovery(&mut self, conn: ConnId, topic: &Topic) {
        if !self.recovering.is_empty() {
            self.recovering.remove(&(conn, topic.clone()));
        }
    }

    /// Tell `relay` (the backplane) which topics loop `event_loop` has subscribers for.
    pub(crate) fn set_relay(&mut self, event_loop: usize, relay: Option<Arc<dyn Relay>>) {
        self.relay = relay.map(|relay| (event_loop, relay));
    }

    /// A topic gained its first subscriber here (`subscribed`) or lost its last: the backplane
    /// listens to it for this loop, or no longer.
    fn tell_relay(&self, topic: &Topic, subscribed: bool) {
        if let Some((event_loop, relay)) = &self.relay {
            relay.interest(*event_loop, topic, subscribed);
        }
    }

    /// Keep this loop's handlers' publications for the other loops (there are some), or not.
    pub(crate) fn set_forwarding(&mut self, forwarding: bool) {
        self.forwarding = forwarding;
    }

    /// Ends every subscription of `conn` (it is leaving the table).
    pub(crate) fn leave_all(&mut self, conn: ConnId) {
        if self.memberships.is_empty() {
            return; // the common case: no topics in use on this loop
        }
        let Some(topics) = self.memberships.remove(&conn) else {
            return;
        };
        log::trace!("{conn}: leaves {} topics", topics.len());
        for topic in &topics {
            self.forget_recovery(conn, topic);
            self.drop_subscriber(conn, topic);
        }
    }

    /// The next publications to deliver together: the oldest and those right after it to the
    /// same topic from the same sender — the same subscribers, who get them all in one write
    /// (give the list back with [`recycle_group`](Self::recycle_group)). Empty when none waits.
    pub(crate) fn next_group(&mut self) -> Vec<Publication> {
        let mut group = std::mem::take(&mut self.group);
        group.clear();
        if let Some(first) = self.pending.pop_front() {
            let (topic, sender) = (first.topic.clone(), first.sender);
            group.push(first);
            while self
                .pending
                .front()
                .is_some_and(|next| next.sender == sender && next.topic == topic)
            {
                group.extend(self.pending.pop_front());
            }
        }
        group
    }

    /// Takes back a list from [`next_group`](Self::next_group), to reuse its room.
    pub(crate) fn recycle_group(&mut self, group: Vec<Publication>) {
        self.group = group;
    }

    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty() || !self.direct.is_empty()
    }

    /// The subscribers of `topic` now, but `except` (give the list back with
    /// [`recycle`](Self::recycle)).
    pub(crate) fn subscribers(&mut self, topic: &Topic, except: Option<ConnId>) -> Vec<ConnId> {
        let mut ids = std::mem::take(&mut self.scratch);
        ids.clear();
        if let Some(subscribers) = self.subscribers.get(topic) {
            ids.extend(subscribers.iter().filter(|&&id| Some(id) != except));
        }
        ids
    }

    /// Takes back a list from [`subscribers`](Self::subscribers), to reuse its room.
    pub(crate) fn recycle(&mut self, ids: Vec<ConnId>) {
        self.scratch = ids;
    }

    /// A publication of this loop's handlers, delivered here: keep it for the other loops.
    pub(crate) fn forward(&mut self, publication: Publication) {
        if self.forwarding && publication.sender.is_some() {
            self.outbox.push(publication);
        }
    }

    /// The publications to forward to the other loops, in order.
    pub(crate) fn take_outbox(&mut self) -> Vec<Publication> {
        std::mem::take(&mut self.outbox)
    }

    /// The topics `conn` is subscribed to, sorted (tests and the fuzz harness).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn topics_of(&self, conn: ConnId) -> Vec<String> {
        let mut topics: Vec<String> = self
            .memberships
            .get(&conn)
            .map(|topics| topics.iter().map(Topic::to_string).collect())
            .unwrap_or_default();
        topics.sort();
        topics
    }

    /// Both maps say the same, every subscriber is `live`, no connection is over its limit,
    /// and the gauges match (tests and the fuzz harness; the gauges hold for one loop alone).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn check(&self, live: impl Fn(ConnId) -> bool) -> Result<(), String> {
        use std::sync::atomic::Ordering::Relaxed;
        let mut pairs = 0;
        for (conn, topics) in &self.memberships {
            if !live(*conn) {
                return Err(format!("{conn}: subscribed, and gone from the table"));
            }
            if topics.is_empty() || topics.len() > self.max_per_connection {
                return Err(format!("{conn}: {} subscriptions", topics.len()));
            }
            for topic in topics {
                if !self
                    .subscribers
                    .get(topic)
                    .is_some_and(|s| s.contains(conn))
                {
                    return Err(format!("{conn}: member of {topic:?}, not its subscriber"));
                }
            }
            pairs += topics.len();
        }
        let listed: usize = self.subscribers.values().map(HashSet::len).sum();
        if listed != pairs || self.subscribers.values().any(HashSet::is_empty) {
            return Err(format!(
                "{listed} subscribers listed for {pairs} memberships"
            ));
        }
        let gauges = (
            self.metrics.topics.load(Relaxed),
            self.metrics.subscriptions.load(Relaxed),
        );
        if gauges != (self.subscribers.len() as u64, pairs as u64) {
            return Err(format!(
                "gauges (topics, subscriptions) {gauges:?}, registry ({}, {pairs})",
                self.subscribers.len()
            ));
        }
        Ok(())
    }

    /// Takes `conn` off `topic`'s subscribers, and the topic off the map once nobody is left.
    fn drop_subscriber(&mut self, conn: ConnId, topic: &Topic) {
        let Some(subscribers) = self.subscribers.get_mut(topic) else {
            return;
        };
        if subscribers.remove(&conn) {
            sub(&self.metrics.subscriptions, 1);
        }
        if subscribers.is_empty() {
            self.subscribers.remove(topic);
            sub(&self.metrics.topics, 1);
            self.tell_relay(topic, false);
        }
    }
}

impl Subscriptions for TopicRegistry {
    fn subscribe(&mut self, conn: ConnId, topic: Topic) {
        let held = self.memberships.get(&conn);
        if held.is_some_and(|topics| topics.contains(&topic)) {
            return; // already subscribed
        }
        if held.map_or(0, Vec::len) >= self.max_per_connection {
            log::warn!(
                "{conn}: subscription to {topic:?} refused: it has {} (max_subscriptions)",
                self.max_per_connection
            );
            add(&self.metrics.subscriptions_refused, 1);
            return;
        }
        log::trace!("{conn}: subscribes to {topic:?}");
        let subscribers = self.subscribers.entry(topic.clone()).or_default();
        let first = subscribers.is_empty();
        subscribers.insert(conn);
        if first {
            add(&self.metrics.topics, 1);
            self.tell_relay(&topic, true);
        }
        add(&self.metrics.subscriptions, 1);
        self.memberships.entry(conn).or_default().push(topic);
    }

    fn subscribe_from(
        &mut self,
        conn: ConnId,
        topic: Topic,
        since: Position,
        unrecoverable: Arc<[u8]>,
    ) {
        self.subscribe(conn, topic.clone());
        if !self.is_subscribed(conn, &topic) {
            return; // refused (max_subscriptions)
        }
        let asked = self
            .relay
            .as_ref()
            .is_some_and(|(_, relay)| relay.recover(conn, &topic, since));
        if asked {
            log::trace!("{conn}: recovers {topic:?} from {since}");
            let publications = Vec::new();
            let held = Held {
                unrecoverable,
                publications,
            };
            self.recovering
                .insert((conn, topic), Recovering::Loading(held));
        } else {
            add(&self.metrics.backplane_recovery_refused, 1);
            self.direct.push_back((conn, unrecoverable));
        }
    }

    fn unsubscribe(&mut self, conn: ConnId, topic: &Topic) {
        let Some(topics) = self.memberships.get_mut(&conn) else {
            return;
        };
        let Some(at) = topics.iter().position(|t| t == topic) else {
            return;
        };
        log::trace!("{conn}: unsubscribes from {topic:?}");
        topics.swap_remove(at);
        if topics.is_empty() {
            self.memberships.remove(&conn);
        }
        self.forget_recovery(conn, topic);
        self.drop_subscriber(conn, topic);
    }

    fn is_subscribed(&self, conn: ConnId, topic: &Topic) -> bool {
        self.subscribers
            .get(topic)
            .is_some_and(|subscribers| subscribers.contains(&conn))
    }

    fn publish(&mut self, publication: Publication) {
        self.pending.push_back(publication);
    }

    fn publish_ordered(&mut self, topic: Topic, frame: Arc<[u8]>, except: Option<ConnId>) {
        match &self.relay {
            Some((_, relay)) => {
                let here = self.subscribers.contains_key(&topic);
                relay.publish(&topic, &frame, except, here);
            }
            // Only a backplane makes a topic ordered; without one, deliver it here as usual.
            None => self.pending.push_back(Publication {
                topic,
                frame,
                sender: except,
            }),
        }
    }
}

#[cfg(test)]
mod tests;
