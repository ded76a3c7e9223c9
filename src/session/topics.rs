//! Topics as a session sees them: the requests a handler's output carries, and how a reply
//! carries them out in order.
//!
//! A handler's `Context::subscribe`, `unsubscribe`, `publish` and `publish_to_others` enter here
//! as [`TopicRequest`]s on its [`Output`], on whichever thread runs the handler. Each request
//! remembers where it falls among the frames the handler sent (a publication seals the bytes
//! sent before it into a chunk of their own). When the loop applies the reply,
//! [`Connection::queue_output`] walks the chunks and the requests together against the loop's
//! registry, which it sees through the `Subscriptions` seam (`pubsub.rs`) in its [`Turn`]:
//!
//! - a subscription or unsubscription takes effect at once, so every later request of the same
//!   reply — and every publication the loop handles afterwards — sees it;
//! - a publication reaches this very connection, if it is subscribed and did not exclude itself,
//!   exactly where the handler published it among its own sends;
//! - every publication leaves as a [`Publication`] handed to the registry, from which the table
//!   delivers it to the topic's other subscribers on this loop and forwards it to the other loops.
//!
//! The frame of a publication is encoded once, uncompressed, by the handler's thread, and shared
//! (`Arc<[u8]>`) by every subscriber on every loop: a large one is queued by reference, never
//! copied per subscriber (`buffer/write.rs`, `SHARED_CHUNK_MIN`).

use std::sync::Arc;

use crate::conn_id::ConnId;
use crate::metrics::add;
use crate::session::connection::{Connection, Turn};
use crate::session::pubsub::{Publication, TopicAction, TopicRequest};
use crate::session::work::Output;
use crate::topic::Topic;
use crate::transport::Transport;

impl Output {
    /// Asks to subscribe the connection to `topic`.
    pub(crate) fn subscribe(&mut self, topic: Topic) {
        self.request(TopicAction::Subscribe(topic));
    }

    /// Asks to end the connection's subscription to `topic`.
    pub(crate) fn unsubscribe(&mut self, topic: Topic) {
        self.request(TopicAction::Unsubscribe(topic));
    }

    /// Publishes `frame` to `topic`, after what was sent so far and before what follows.
    pub(crate) fn publish(&mut self, topic: Topic, frame: Arc<[u8]>, to_sender: bool) {
        if !self.bytes.is_empty() {
            // Seal the frames sent so far: the publication falls between them and the next.
            self.chunks.push(std::mem::take(&mut self.bytes));
        }
        self.request(TopicAction::Publish {
            topic,
            frame,
            to_sender,
        });
    }

    /// Takes the publications out of the requests, dropping the rest: for a reply that can no
    /// longer be applied to its connection `sender`.
    pub(crate) fn take_publications(&mut self, sender: ConnId) -> Vec<Publication> {
        std::mem::take(&mut self.topics)
            .into_iter()
            .filter_map(|request| match request.action {
                TopicAction::Publish { topic, frame, .. } => Some(Publication {
                    topic,
                    frame,
                    sender: Some(sender),
                }),
                TopicAction::Subscribe(_) | TopicAction::Unsubscribe(_) => None,
            })
            .collect()
    }

    fn request(&mut self, action: TopicAction) {
        let at = self.chunks.len();
        self.topics.push(TopicRequest { at, action });
    }
}

impl<T: Transport> Connection<T> {
    /// Queues a reply's output, carrying out its topic requests where they fall among its
    /// chunks. Output without topic requests — nearly all of it — is queued as it is.
    pub(crate) fn queue_output(&mut self, turn: &mut Turn<'_>, mut output: Output) {
        if output.topics.is_empty() {
            for chunk in output.into_chunks() {
                self.queue_vec(turn, chunk);
            }
            return;
        }
        let mut requests = std::mem::take(&mut output.topics).into_iter().peekable();
        for (index, chunk) in output.into_chunks().enumerate() {
            while let Some(request) = requests.next_if(|request| request.at <= index) {
                self.carry_out(turn, request.action);
            }
            self.queue_vec(turn, chunk);
        }
        for request in requests {
            self.carry_out(turn, request.action);
        }
    }

    /// A reply that came back too late for its connection's output (we already sent our close
    /// frame): its publications still go to the other subscribers; nothing else is done.
    pub(crate) fn publish_only(&mut self, turn: &mut Turn<'_>, output: &mut Output) {
        if output.topics.is_empty() {
            return;
        }
        for publication in output.take_publications(self.id) {
            turn.topics.publish(publication);
        }
    }

    fn carry_out(&mut self, turn: &mut Turn<'_>, action: TopicAction) {
        match action {
            TopicAction::Subscribe(topic) => turn.topics.subscribe(self.id, topic),
            TopicAction::Unsubscribe(topic) => turn.topics.unsubscribe(self.id, &topic),
            TopicAction::Publish {
                topic,
                frame,
                to_sender,
            } => {
                if to_sender && turn.topics.is_subscribed(self.id, &topic) {
                    // Its own publication, in order with what its handler sent.
                    self.queue_shared(turn, &frame);
                    add(&turn.metrics.messages_out, 1);
                    add(&turn.metrics.topic_deliveries, 1);
                }
                let sender = Some(self.id);
                turn.topics.publish(Publication {
                    topic,
                    frame,
                    sender,
                });
            }
        }
    }
}
