//! Commands from other threads — a `ServerHandle`'s pushes, broadcasts and publications, other
//! loops' forwarded publications, the backplane's — applied to the table as the event loop
//! drains its command queue.
//!
//! Publications and broadcasts are not delivered one by one: each waits with those of its kind
//! that follow it, so that a run of publications to one topic (a burst from a handle, a batch
//! another loop forwarded), or a run of broadcasts, reaches each connection in one write
//! (`fanout.rs`). A run ends at the first command of another kind, which they go out before —
//! a handle's publish (or broadcast), then its send to one connection, arrive in that order —
//! and when the loop has drained the queue ([`commands_done`](ConnectionTable::commands_done)).

use std::time::Instant;

use super::{ConnectionTable, Poller};
use crate::dispatch::{Command, JobQueue};
use crate::metrics::add;
use crate::transport::Transport;

impl<T: Transport, P: Poller<T>, Q: JobQueue> ConnectionTable<T, P, Q> {
    /// A command from a `ServerHandle` or another loop. Pushes are the one producer the loop
    /// cannot slow down by not reading, so the budget is checked after each (a turn may carry
    /// thousands).
    pub(crate) fn command(&mut self, command: Command, now: Instant) {
        if !matches!(command, Command::Publish { .. }) {
            self.deliver_publications(now);
        }
        if !matches!(command, Command::Broadcast { .. }) {
            self.deliver_broadcasts(now);
        }
        match command {
            Command::Push { conn, push } => match self.live(conn) {
                Some(index) => self.step(index, now, |session, env| session.command(env, push)),
                None => {
                    log::trace!("{conn}: push for a closed connection dropped");
                    add(&self.metrics.stale_replies_dropped, 1);
                }
            },
            Command::Publish { topic, frame } => return self.queue_publication(topic, frame),
            Command::Broadcast { bytes } => return self.broadcasts.push(bytes),
            Command::Ordered(ordered) => self.publish_ordered(*ordered, now),
            Command::History(history) => self.recovered(*history, now),
        }
        if self.budget.exceeded(&self.metrics) {
            self.drop_slow_consumers(now);
        }
    }

    /// The loop has drained its command queue (for this turn): the publications or broadcasts
    /// that came last go out.
    pub(crate) fn commands_done(&mut self, now: Instant) {
        self.deliver_publications(now);
        self.deliver_broadcasts(now);
        if self.budget.exceeded(&self.metrics) {
            self.drop_slow_consumers(now);
        }
    }
}
