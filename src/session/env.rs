//! [`Env`]: what the event loop lends a session for one event, and the seam through which a
//! session reaches its loop's registry of topics ([`Subscriptions`]).

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use crate::buffer::BufferPool;
use crate::config::Config;
use crate::conn_id::ConnId;
use crate::dispatch::Publication;
use crate::metrics::Metrics;
use crate::topic::{Position, Topic};

/// What the event loop lends a session for one event: the time of this loop turn (one clock read
/// per turn; tests pass any instant they like), the configuration, the loop's buffer pool and
/// the shared counters, whether the server is shutting down, what the memory budget allows, and
/// the loop's registry of topics.
#[derive(Debug)]
pub(crate) struct Env<'a> {
    pub now: Instant,
    pub config: &'a Config,
    pub pool: &'a mut BufferPool,
    pub metrics: &'a Metrics,
    pub shutting_down: bool,
    /// The server is near its memory budget (`max_buffered_bytes`): a connection that holds
    /// this many [`buffered_bytes`](Session::buffered_bytes) or more is not read until the
    /// pressure passes. `usize::MAX` when there is no pressure.
    pub hold_limit: usize,
    /// Who subscribes to what on this loop, and where publications go (`topics.rs`).
    pub topics: &'a mut dyn Subscriptions,
}

/// The loop's registry of topics, as a session sees it (the netpoller's `TopicRegistry`).
pub(crate) trait Subscriptions: fmt::Debug {
    /// Subscribes `conn` to `topic`, unless it already has as many subscriptions as it may
    /// (then the registry logs and counts the refusal).
    fn subscribe(&mut self, conn: ConnId, topic: Topic);

    /// Subscribes `conn` to `topic` as `subscribe` does, and has the backplane deliver first
    /// what was published there after `since` — or `unrecoverable` (an encoded frame) if that
    /// cannot be had (no backplane, no history for the topic, a position too old).
    fn subscribe_from(
        &mut self,
        conn: ConnId,
        topic: Topic,
        since: Position,
        unrecoverable: Arc<[u8]>,
    );

    /// Ends `conn`'s subscription to `topic`, if it has one.
    fn unsubscribe(&mut self, conn: ConnId, topic: &Topic);

    fn is_subscribed(&self, conn: ConnId, topic: &Topic) -> bool;

    /// Hands a publication to the loop, which delivers it to the other subscribers after this
    /// step.
    fn publish(&mut self, publication: Publication);

    /// Hands a publication of a topic with a history to the backplane, which delivers it
    /// everywhere — here too, but not to `except` — once it has its position.
    fn publish_ordered(&mut self, topic: Topic, frame: Arc<[u8]>, except: Option<ConnId>);
}
