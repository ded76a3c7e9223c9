//! The words the threads share about topics: what a handler asks ([`TopicRequest`], carried in
//! its job's `Output`), and what travels to subscribers ([`Publication`]).
//!
//! Requests enter an `Output` on the thread that runs the handler and are carried out by the
//! session when the loop applies the reply (`session/topics.rs`); publications leave the session
//! for the loop's registry (`netpoller/topics.rs`), which the table delivers from and forwards to
//! the other loops. Nothing here does anything: these are the types that cross between places.

use std::sync::Arc;

use crate::conn_id::ConnId;
use crate::topic::{Position, Topic};

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
    /// Subscribe, and first deliver what was published to `topic` after `since` (from the
    /// backplane's history) — or `unrecoverable` (an encoded frame) if that cannot be had.
    SubscribeFrom {
        topic: Topic,
        since: Position,
        unrecoverable: Arc<[u8]>,
    },
    Unsubscribe(Topic),
    /// Send `frame` to every subscriber of `topic` — this connection too if `to_sender` and it
    /// is subscribed. `ordered`: the topic keeps a history on the backplane, which delivers it
    /// everywhere, this node too, once it has its position: the loop only hands it over (after
    /// the requests before it, so that a subscription made just before it hears it).
    Publish {
        topic: Topic,
        frame: Arc<[u8]>,
        to_sender: bool,
        ordered: bool,
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

/// A publication of a topic the backplane orders: its topic and frame.
pub(crate) type OrderedPublication = (Topic, Arc<[u8]>);
