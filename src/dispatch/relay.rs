//! [`Relay`]: the seam through which a backplane (`src/backplane/`, feature `redis`) carries this
//! node's topics to the other nodes — and the one way the core talks to it.
//!
//! Three things cross it, all from the core to the backplane, none of them waiting:
//!
//! - a publication made on this node (`Context::publish`, `ServerHandle::publish`) is offered to
//!   the relay by the thread that made it, before any loop sees it; the relay answers how this
//!   node delivers it ([`Local`]): at once, as without a backplane, or only when it comes back
//!   from the backplane with its position in the topic's history (ordered topics);
//! - a loop tells the relay when a topic gains its first subscriber on that loop, or loses its
//!   last ([`Relay::interest`]): what this node must listen to;
//! - a loop asks for the history of a topic after a position, for a connection subscribed with
//!   `Context::subscribe_from` ([`Relay::recover`]).
//!
//! What comes back from the backplane enters each loop as a [`Command`](super::Command) on its
//! bounded command queue, like any publication from another thread.

use std::fmt;
use std::sync::Arc;

use crate::conn_id::ConnId;
use crate::topic::{Position, Topic};

/// How this node delivers a publication it made, as its relay says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Local {
    /// At once, to this node's subscribers (the copy that comes back from the backplane, if
    /// any, is dropped there): at most once, in order per publisher.
    Now,
    /// Only when it comes back from the backplane with its position, as on every other node:
    /// every subscriber of the topic sees one order.
    Ordered,
}

/// A backplane, as the core sees it. Every method returns at once: whatever talks to the
/// backplane's server does it on the backplane's own threads.
pub(crate) trait Relay: Send + Sync + fmt::Debug {
    /// `frame` (encoded once, shared) was published to `topic` on this node, not to be
    /// delivered to `except` (a `publish_to_others`): send it to the other nodes.
    /// `subscribed_here`: the caller's loop has subscribers of the topic, which must hear it (an
    /// ordered topic then waits until their subscription is in place).
    fn publish(
        &self,
        topic: &Topic,
        frame: &Arc<[u8]>,
        except: Option<ConnId>,
        subscribed_here: bool,
    ) -> Local;

    /// Does it keep a history of `topic`, and so deliver it in one order everywhere
    /// ([`Local::Ordered`])?
    fn orders(&self, topic: &Topic) -> bool;

    /// Event loop `event_loop` has its first subscriber to `topic` (`subscribed`), or no longer
    /// any.
    fn interest(&self, event_loop: usize, topic: &Topic, subscribed: bool);

    /// Publications from the backplane each event loop dropped at its full command queue
    /// (index: the loop).
    fn loop_drops(&self) -> Vec<u64>;

    /// `conn` subscribed to `topic` from `since`: load what was published after it, and send it
    /// to the connection's loop as a `Command::History`. False if the topic keeps no history
    /// (nothing will come).
    fn recover(&self, conn: ConnId, topic: &Topic, since: Position) -> bool;
}
