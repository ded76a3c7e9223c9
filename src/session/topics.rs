//! Topics as a session sees them: the requests a handler's output carries, and how a reply
//! carries them out in order.
//!
//! A handler's `Context::subscribe`, `unsubscribe`, `publish` and `publish_to_others` enter here
//! as [`TopicRequest`]s on its [`Output`], on whichever thread runs the handler. Each request
//! remembers where it falls among the frames the handler sent (a publication seals the bytes
//! sent before it into a chunk of their own). When the loop applies the reply,
//! [`Connection::queue_output`] walks the chunks and the requests together against the loop's
//! registry, which it sees through the [`Subscriptions`] seam in its [`Env`]:
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

use crate::dispatch::{Output, Publication, TopicAction};
use crate::metrics::add;
use crate::session::connection::Session;
use crate::session::env::Env;

impl Session {
    /// Queues a reply's output, carrying out its topic requests where they fall among its
    /// chunks. Output without topic requests — nearly all of it — is queued as it is.
    pub(crate) fn queue_output(&mut self, env: &mut Env<'_>, mut output: Output) {
        if output.topics.is_empty() {
            for chunk in output.into_chunks() {
                self.queue_vec(env, chunk);
            }
            return;
        }
        let mut requests = std::mem::take(&mut output.topics).into_iter().peekable();
        for (index, chunk) in output.into_chunks().enumerate() {
            while let Some(request) = requests.next_if(|request| request.at <= index) {
                self.carry_out(env, request.action);
            }
            self.queue_vec(env, chunk);
        }
        for request in requests {
            self.carry_out(env, request.action);
        }
    }

    /// A reply that came back too late for its connection's output (we already sent our close
    /// frame): its publications still go to the other subscribers; nothing else is done.
    pub(crate) fn publish_only(&mut self, env: &mut Env<'_>, output: &mut Output) {
        if output.topics.is_empty() {
            return;
        }
        let (publications, ordered) = output.take_publications(self.id);
        for publication in publications {
            env.topics.publish(publication);
        }
        for (topic, frame) in ordered {
            env.topics.publish_ordered(topic, frame, Some(self.id));
        }
    }

    fn carry_out(&mut self, env: &mut Env<'_>, action: TopicAction) {
        match action {
            TopicAction::Subscribe(topic) => env.topics.subscribe(self.id, topic),
            TopicAction::SubscribeFrom {
                topic,
                since,
                unrecoverable,
            } => env
                .topics
                .subscribe_from(self.id, topic, since, unrecoverable),
            TopicAction::Unsubscribe(topic) => env.topics.unsubscribe(self.id, &topic),
            TopicAction::Publish {
                topic,
                frame,
                to_sender,
                ordered: true,
            } => {
                let except = (!to_sender).then_some(self.id);
                env.topics.publish_ordered(topic, frame, except);
            }
            TopicAction::Publish {
                topic,
                frame,
                to_sender,
                ordered: false,
            } => {
                if to_sender && env.topics.is_subscribed(self.id, &topic) {
                    // Its own publication, in order with what its handler sent.
                    self.queue_shared(env, &frame);
                    add(&env.metrics.messages_out, 1);
                    add(&env.metrics.topic_deliveries, 1);
                }
                let sender = Some(self.id);
                env.topics.publish(Publication {
                    topic,
                    frame,
                    sender,
                });
            }
        }
    }
}
