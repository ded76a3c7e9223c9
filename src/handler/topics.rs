//! A handler's topics, through its [`Context`]: subscribing its connection (from a position too,
//! with a backplane that keeps history) and publishing. The requests travel in the call's
//! [`Output`](crate::dispatch::Output), in order with its sends; the loop carries them out
//! against its registry of subscriptions, and hands the topics with a history to the backplane.

use super::Context;
use crate::metrics::add;
use crate::topic::{Position, Topic, TopicError};
use crate::ws::{Message, encode_shared_frame};

impl<S> Context<'_, S> {
    /// Subscribes this connection to `topic`: from now on it receives what is published there
    /// ([`publish`](Self::publish), [`ServerHandle::publish`](crate::ServerHandle::publish)), until
    /// [`unsubscribe`](Self::unsubscribe) or until it closes (subscriptions end with the
    /// connection). Subscribing twice is subscribing once.
    ///
    /// Like a send, it takes effect when the loop applies what this call produced (after the
    /// handler returns; at once with inline handlers), and before anything published later in
    /// this call or in later calls for this connection. Past
    /// [`Config::max_subscriptions`](crate::Config::max_subscriptions) the loop refuses it
    /// (logged, and counted in [`Stats::subscriptions_refused`](crate::Stats)); the connection
    /// stays open. After [`close`](Self::close) it is ignored. `Err` for a name longer than
    /// [`MAX_TOPIC_LEN`](crate::MAX_TOPIC_LEN) bytes.
    pub fn subscribe(&mut self, topic: &str) -> Result<(), TopicError> {
        let topic = Topic::new(topic)?;
        if self.output.close.is_some() {
            log::debug!("{}: subscribe after close ignored", self.conn);
            return Ok(());
        }
        self.output.subscribe(topic);
        Ok(())
    }

    /// Ends this connection's subscription to `topic` (if it has one): nothing published there
    /// after the loop applies this call reaches it.
    pub fn unsubscribe(&mut self, topic: &str) -> Result<(), TopicError> {
        self.output.unsubscribe(Topic::new(topic)?);
        Ok(())
    }

    /// Publishes `message` to every connection subscribed to `topic`, on every event loop —
    /// this one too, if it is subscribed (see [`publish_to_others`](Self::publish_to_others)).
    ///
    /// The frame is encoded once, here, uncompressed (like a broadcast), and shared by every
    /// subscriber. This connection gets it exactly where it was published among what this
    /// handler sends; subscribers of this loop get it when the loop applies this call, those
    /// of the other loops right after, in the order this connection published. A subscriber
    /// whose queued output would pass twice
    /// [`Config::max_outbound_bytes`](crate::Config::max_outbound_bytes) is dropped with
    /// `1008`. It still reaches the others if this connection closes meanwhile; after
    /// [`close`](Self::close) it does not reach this connection. `Err` for a name longer than
    /// [`MAX_TOPIC_LEN`](crate::MAX_TOPIC_LEN) bytes.
    ///
    /// With a backplane (feature `redis`) it also reaches the subscribers of the other nodes,
    /// at most once. On a topic with a history (`RedisBackplane::recover`) it reaches everyone,
    /// this connection too, only when Redis has given it its position: in the topic's one
    /// order, after what this handler sends in this call.
    pub fn publish(&mut self, topic: &str, message: impl Into<Message>) -> Result<(), TopicError> {
        self.publish_as(topic, &message.into(), true)
    }

    /// Like [`publish`](Self::publish), but never to this connection, even if it is subscribed
    /// (a chat room's "everyone but the sender").
    pub fn publish_to_others(
        &mut self,
        topic: &str,
        message: impl Into<Message>,
    ) -> Result<(), TopicError> {
        self.publish_as(topic, &message.into(), false)
    }

    fn publish_as(
        &mut self,
        topic: &str,
        message: &Message,
        to_me: bool,
    ) -> Result<(), TopicError> {
        let topic = Topic::new(topic)?;
        let frame = encode_shared_frame(message.opcode(), message.as_bytes());
        // After close nothing more goes to this connection.
        let to_sender = to_me && self.output.close.is_none();
        add(&self.server.metrics().publishes, 1);
        // A topic with a history is handed to the backplane by the loop, after the requests
        // made before it; every node, this one too, delivers it when it comes back with its
        // position. Another goes to the other nodes now, and is delivered here as usual.
        let ordered = self.server.relay_orders(&topic);
        if !ordered {
            let except = (!to_sender).then_some(self.conn);
            self.server.relay_publish(&topic, &frame, except);
        }
        if ordered {
            self.output.publish_routed(topic, frame, to_sender, true);
        } else {
            self.output.publish(topic, frame, to_sender);
        }
        Ok(())
    }

    /// Subscribes this connection to `topic`, as [`subscribe`](Self::subscribe) does, and
    /// first delivers what was published there after `since` — the position of the last
    /// publication its client saw, which it gave back when it reconnected — so that it misses
    /// nothing and gets nothing twice, in the topic's order. Needs a backplane that keeps the
    /// topic's history (`RedisBackplane::recover`, feature
    /// `redis`).
    ///
    /// When that cannot be had — the position is older than the history keeps
    /// ([`Config::history_max_len`](crate::Config::history_max_len), `history_max_age`), its
    /// epoch changed (the history was lost), Redis could not answer within
    /// `backplane_timeout`, more than `recovery_buffer` live publications came meanwhile, or the
    /// topic keeps no history — the connection gets `unrecoverable` instead (the application's
    /// "reload" message), then the live publications; it stays subscribed. Counted in
    /// [`Stats::backplane_recovered`](crate::Stats) and `backplane_recovery_refused`.
    ///
    /// The history arrives asynchronously: what this handler sends in this call goes out
    /// before it. `Err` for a name longer than [`MAX_TOPIC_LEN`](crate::MAX_TOPIC_LEN) bytes.
    pub fn subscribe_from(
        &mut self,
        topic: &str,
        since: Position,
        unrecoverable: impl Into<Message>,
    ) -> Result<(), TopicError> {
        let topic = Topic::new(topic)?;
        if self.output.close.is_some() {
            log::debug!("{}: subscribe after close ignored", self.conn);
            return Ok(());
        }
        let message = unrecoverable.into();
        let frame = encode_shared_frame(message.opcode(), message.as_bytes());
        self.output.subscribe_from(topic, since, frame);
        Ok(())
    }
}
