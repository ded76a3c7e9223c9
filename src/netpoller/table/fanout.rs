//! Delivering frames encoded once for many connections: broadcasts and publications to topics.
//!
//! Broadcasts ([`deliver_broadcasts`](ConnectionTable::deliver_broadcasts)) go to every open
//! WebSocket of the loop, a run of them together, written once per connection. Publications enter the table's [`TopicRegistry`](crate::netpoller::topics::TopicRegistry)
//! from the session steps (a handler published: `Connection::queue_output`), from a command (a
//! `ServerHandle` or another loop published: [`queue_publication`](ConnectionTable::queue_publication)), or from a
//! reply whose connection has gone ([`publish_orphaned`](ConnectionTable::publish_orphaned)).
//! [`deliver_publications`](ConnectionTable::deliver_publications) then hands each, in order, to
//! every subscriber of its topic on this loop — by reference to the one encoded frame, under the
//! slow-consumer bound of any push — and the memory budget is checked after each, as after any
//! push. Consecutive publications to one topic from one sender (a publisher's burst, handled
//! in one job) are delivered together: each subscriber is given them all, then written once,
//! with one `writev` (uWebSockets' corking, per subscriber) — up to [`CORK_BYTES`] at a time. A publication of this loop's handlers then leaves for the other loops through
//! [`take_forwards`](ConnectionTable::take_forwards), which the event loop drains each turn.

use std::sync::Arc;
use std::time::Instant;

use super::{ConnectionTable, Poller};
use crate::conn_id::ConnId;
use crate::dispatch::{History, JobQueue, Ordered, Output, Publication, Relay};
use crate::metrics::add;
use crate::session::Subscriptions;
use crate::topic::Topic;
use crate::transport::Transport;

/// Bytes a subscriber's output gathers from a group of publications before it is written: one
/// `writev`'s worth (less if `max_outbound_bytes` is less).
const CORK_BYTES: usize = 64 * 1024;

impl<T: Transport, P: Poller<T>, Q: JobQueue> ConnectionTable<T, P, Q> {
    /// The broadcasts from `ServerHandle`s waiting in `broadcasts` (a run of them drained from
    /// the command queue): each to every open WebSocket of this loop, in order — by reference
    /// when large (one encoded copy for every connection) — and written once per connection,
    /// as a group of publications is.
    pub(super) fn deliver_broadcasts(&mut self, now: Instant) {
        if self.broadcasts.is_empty() {
            return;
        }
        let frames = std::mem::take(&mut self.broadcasts);
        let open: Vec<ConnId> = self
            .slab
            .iter()
            .filter(|(_, entry)| entry.session.is_websocket())
            .map(|(_, entry)| entry.session.id)
            .collect();
        for id in open {
            self.write_frames(id, &frames, now);
        }
        // What an inline handler published as its connection was pumped.
        if self.topics.has_pending() {
            self.deliver_publications(now);
        }
    }

    /// A publication from a `ServerHandle` or from another loop (which sent it to every loop),
    /// for this loop's subscribers only: queued, to be delivered with those after it
    /// (`commands.rs`).
    pub(super) fn queue_publication(&mut self, topic: Topic, frame: Arc<[u8]>) {
        let sender = None;
        let publication = Publication {
            topic,
            frame,
            sender,
        };
        self.topics.publish(publication);
    }

    /// A publication from the backplane with its position: delivered to this loop's
    /// subscribers (but `except`) in the order the backplane gives them — held for those whose
    /// history is still loading.
    pub(super) fn publish_ordered(&mut self, ordered: Ordered, now: Instant) {
        let Ordered {
            topic,
            frame,
            position,
            except,
        } = ordered;
        let subscribers = self.topics.subscribers(&topic, except);
        for &id in &subscribers {
            if !self.topics.hold(id, &topic, position, &frame) {
                self.deliver(id, std::slice::from_ref(&frame), now);
            }
        }
        self.topics.recycle(subscribers);
        self.deliver_publications(now);
        if self.budget.exceeded(&self.metrics) {
            self.drop_slow_consumers(now);
        }
    }

    /// A recovery's history: to its connection, before what was held for it.
    pub(super) fn recovered(&mut self, history: History, now: Instant) {
        self.topics.recovered(history);
        self.deliver_publications(now);
    }

    /// A reply for a connection that has gone while its job was with the handler: its
    /// subscriptions ended with it (and those the job asked for are not taken), but what the
    /// handler published still reaches the topic's subscribers.
    pub(super) fn publish_orphaned(&mut self, conn: ConnId, output: &mut Output, now: Instant) {
        if output.topics.is_empty() {
            return;
        }
        let (publications, ordered) = output.take_publications(conn);
        for publication in publications {
            self.topics.publish(publication);
        }
        for (topic, frame) in ordered {
            self.topics.publish_ordered(topic, frame, None);
        }
        self.deliver_publications(now);
    }

    /// Delivers every waiting publication, oldest first, to the subscribers of its topic here
    /// (but its sender, whose session saw to itself), then keeps it for the other loops if one
    /// of this loop's handlers made it. Consecutive publications to the same topic from the
    /// same sender go together: each subscriber is given them all, then written once — a
    /// burst of publications costs a subscriber one `writev`, not one per publication. A step
    /// made here may publish again (an inline handler): that publication is delivered in the
    /// same round, after the others.
    pub(super) fn deliver_publications(&mut self, now: Instant) {
        if self.delivering || !self.topics.has_pending() {
            // An outer call is draining the queue, this one's publications included; or there
            // is nothing to deliver (every turn asks, most with no topic in use).
            return;
        }
        self.delivering = true;
        loop {
            while let Some((id, frame)) = self.topics.next_direct() {
                self.deliver(id, std::slice::from_ref(&frame), now);
            }
            let mut group = self.topics.next_group();
            let Some(first) = group.first() else {
                self.topics.recycle_group(group);
                break;
            };
            let subscribers = self.topics.subscribers(&first.topic, first.sender);
            log::trace!(
                "loop {}: {} publications of {} bytes to {:?}: {} subscribers here",
                self.loop_index,
                group.len(),
                first.frame.len(),
                first.topic,
                subscribers.len()
            );
            let frames: Vec<Arc<[u8]>> = group.iter().map(|p| Arc::clone(&p.frame)).collect();
            for &id in &subscribers {
                self.deliver(id, &frames, now);
            }
            self.topics.recycle(subscribers);
            if self.budget.exceeded(&self.metrics) {
                self.drop_slow_consumers(now);
            }
            for publication in group.drain(..) {
                self.topics.forward(publication);
            }
            self.topics.recycle_group(group);
        }
        self.delivering = false;
    }

    /// Queues `frames` on the subscriber `id`, in order (dropping it if it is a slow
    /// consumer), and writes them: at once when they are all queued, or whenever what waits
    /// reaches [`CORK_BYTES`] or `max_outbound_bytes` — corking must not make a subscriber that
    /// reads look like a slow consumer.
    fn deliver(&mut self, id: ConnId, frames: &[Arc<[u8]>], now: Instant) {
        let queued = self.write_frames(id, frames, now);
        add(&self.metrics.topic_deliveries, queued);
    }

    /// Queues `frames` on connection `id` and writes them, corked as [`deliver`](Self::deliver)
    /// says; returns how many were queued (not dropped with a slow consumer).
    fn write_frames(&mut self, id: ConnId, frames: &[Arc<[u8]>], now: Instant) -> u64 {
        let cork = CORK_BYTES.min(self.config.max_outbound_bytes);
        let mut delivered = 0;
        let mut rest = frames;
        while !rest.is_empty() {
            let Some(index) = self.live(id) else {
                break; // closed by this delivery or an earlier one: its subscriptions are gone
            };
            let (mut queued, mut taken) = (0, 0);
            self.serve(index, now, |session, env| {
                for frame in rest {
                    taken += 1;
                    if session.push_shared(env, frame) {
                        queued += 1;
                    }
                    if session.output_len() >= cork {
                        break;
                    }
                }
            });
            delivered += queued;
            rest = &rest[taken..];
        }
        delivered
    }

    /// Keep this loop's handlers' publications for the other loops (the event loop has some),
    /// or not (one loop; the default).
    pub(crate) fn forward_publications(&mut self, forward: bool) {
        self.topics.set_forwarding(forward);
    }

    /// Tell `relay` (the backplane, if there is one) which topics this loop has subscribers for.
    pub(crate) fn set_relay(&mut self, relay: Option<Arc<dyn Relay>>) {
        self.topics.set_relay(self.loop_index, relay);
    }

    /// The publications of this loop's handlers, delivered here, that the other loops still
    /// need, in order.
    pub(crate) fn take_forwards(&mut self) -> Vec<Publication> {
        self.topics.take_outbox()
    }

    /// The topics `id` is subscribed to, sorted (tests and the fuzz harness).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn topics_of(&self, id: ConnId) -> Vec<String> {
        self.topics.topics_of(id)
    }

    /// The registry agrees with itself, the table and the gauges (tests and the fuzz harness).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn check_topics(&self) -> Result<(), String> {
        self.topics.check(|id| self.live(id).is_some())
    }
}
