//! The words a session and its loop share about topics: what a handler asks
//! ([`TopicRequest`]), what travels to subscribers ([`Publication`]), and the seam through which
//! a session reaches its loop's registry ([`Subscriptions`]).
//!
//! Requests enter an `Output` on the thread that runs the handler and are carried out by the
//! session when the loop applies the reply (`topics.rs`); publications leave the session for the
//! registry (`netpoller/topics.rs`), which the table delivers from and forwards to the other
//! loops. Nothing here does anything: these are the types that cross between those places.

use std::fmt;
use std::sync::Arc;

use crate::conn_id::ConnId;
use crate::topic::Topic;

/// One thing a handler asked about topics, placed among the frames it sent.
#[derive(Debug)]
pub(crate) struct TopicRequest {
    /// Carried out before the `at`-th chunk of the output (`Output::into_chunks` order) is
    /// queued: after everything the handler sent before asking.
    pub at: usize,
    pub action: TopicAction,
}

/// What a handler asked.
#[derive(Debug)]
pub(crate) enum TopicAction {
    Subscribe(Topic),
    Unsubscribe(Topic),
    /// Send `frame` to every subscriber of `topic` — this connection too if `to_sender` and it
    /// is subscribed.
    Publish {
        topic: Topic,
        frame: Arc<[u8]>,
        to_sender: bool,
    },
}

/// An encoded frame published to a topic, on its way to the topic's subscribers.
#[derive(Debug, Clone)]
pub(crate) struct Publication {
    pub topic: Topic,
    pub frame: Arc<[u8]>,
    /// The connection of this loop whose handler published it: the table does not deliver it
    /// to that connection (its session already did, in order, if it was meant to) and forwards
    /// it to the other loops. `None`: it came from a `ServerHandle` or from another loop, which
    /// sent it to every loop: delivered here only.
    pub sender: Option<ConnId>,
}

/// The loop's registry of topics, as a session sees it (the netpoller's `TopicRegistry`).
pub(crate) trait Subscriptions: fmt::Debug {
    /// Subscribes `conn` to `topic`, unless it already has as many subscriptions as it may
    /// (then the registry logs and counts the refusal).
    fn subscribe(&mut self, conn: ConnId, topic: Topic);

    /// Ends `conn`'s subscription to `topic`, if it has one.
    fn unsubscribe(&mut self, conn: ConnId, topic: &Topic);

    fn is_subscribed(&self, conn: ConnId, topic: &Topic) -> bool;

    /// Hands a publication to the loop, which delivers it to the other subscribers after this
    /// step.
    fn publish(&mut self, publication: Publication);
}
