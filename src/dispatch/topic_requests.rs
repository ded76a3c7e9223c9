//! A handler's topic requests as its [`Output`] records them: each placed among the frames sent
//! before it, for the session to carry out in order when it applies the reply (`topics.rs` has
//! the types that cross).

use std::sync::Arc;

use crate::conn_id::ConnId;
use crate::dispatch::job::Output;
use crate::dispatch::topics::{OrderedPublication, Publication, TopicAction, TopicRequest};
use crate::topic::{Position, Topic};

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
