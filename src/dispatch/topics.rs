//! The words the threads share about topics: what a handler asks ([`TopicRequest`], carried in
//! its job's `Output`), and what travels to subscribers ([`Publication`]).
//!
//! Requests enter an `Output` on the thread that runs the handler and are carried out by the
//! session when the loop applies the reply (`session/topics.rs`); publications leave the session
//! for the loop's registry (`netpoller/topics.rs`), which the table delivers from and forwards to
//! the other loops. Nothing here does anything: these are the types that cross between places.

use std::sync::Arc;

use crate::conn_id::ConnId;
use crate::dispatch::job::Output;
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

/// A handler's topic requests, placed among the frames of its output.
impl Output {
    /// Asks to subscribe the connection to `topic`.
    pub(crate) fn subscribe(&mut self, topic: Topic) {
        self.request(TopicAction::Subscribe(topic));
    }

    /// Asks to subscribe the connection to `topic` from `since` (`unrecoverable`: the frame
    /// it gets if what followed `since` cannot be had).
    pub(crate) fn subscribe_from(
        &mut self,
        topic: Topic,
        since: Position,
        unrecoverable: Arc<[u8]>,
    ) {
        self.request(TopicAction::SubscribeFrom {
            topic,
            since,
            unrecoverable,
        });
    }

    /// Asks to end the connection's subscription to `topic`.
    pub(crate) fn unsubscribe(&mut self, topic: Topic) {
        self.request(TopicAction::Unsubscribe(topic));
    }

    /// Publishes `frame` to `topic`, after what was sent so far and before what follows.
    pub(crate) fn publish(&mut self, topic: Topic, frame: Arc<[u8]>, to_sender: bool) {
        self.publish_routed(topic, frame, to_sender, false);
    }

    /// The same, for a topic the backplane orders (`ordered`: handed to it by the loop, see
    /// `TopicAction::Publish`).
    pub(crate) fn publish_routed(
        &mut self,
        topic: Topic,
        frame: Arc<[u8]>,
        to_sender: bool,
        ordered: bool,
    ) {
        if !self.bytes.is_empty() {
            // Seal the frames sent so far: the publication falls between them and the next.
            self.chunks.push(std::mem::take(&mut self.bytes));
        }
        self.request(TopicAction::Publish {
            topic,
            frame,
            to_sender,
            ordered,
        });
    }

    /// Takes the publications out of the requests, dropping the rest: for a reply that can no
    /// longer be applied to its connection `sender`. Those of ordered topics come apart, for the
    /// backplane.
    pub(crate) fn take_publications(
        &mut self,
        sender: ConnId,
    ) -> (Vec<Publication>, Vec<OrderedPublication>) {
        let mut ordered = Vec::new();
        let publications = std::mem::take(&mut self.topics)
            .into_iter()
            .filter_map(|request| match request.action {
                TopicAction::Publish {
                    topic,
                    frame,
                    ordered: true,
                    ..
                } => {
                    ordered.push((topic, frame));
                    None
                }
                TopicAction::Publish { topic, frame, .. } => Some(Publication {
                    topic,
                    frame,
                    sender: Some(sender),
                }),
                TopicAction::Subscribe(_)
                | TopicAction::SubscribeFrom { .. }
                | TopicAction::Unsubscribe(_) => None,
            })
            .collect();
        (publications, ordered)
    }

    fn request(&mut self, action: TopicAction) {
        let at = self.chunks.len();
        self.topics.push(TopicRequest { at, action });
    }
}
