//! Commands from other threads — a `ServerHandle`'s pushes, broadcasts and publications, other
//! loops' forwarded publications, the backplane's — applied to the table as the event loop
//! drains its command queue.
//!
//! A publication is not delivered on its own: it waits with those that follow it, so that a
//! run of publications to one topic (a burst from a handle, a batch another loop forwarded)
//! reaches each subscriber in one write (`fanout.rs`). They go out before any other command
//! — a handle's publish, then its send to a subscriber, arrive in that order — and when the
//! loop has drained the queue ([`commands_done`](ConnectionTable::commands_done)).

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
        match command {
            Command::Push { conn, push } => match self.live(conn) {
                Some(index) => self.step(index, now, |session, env| session.command(env, push)),
                None => {
                    log::trace!("{conn}: push for a closed connection dropped");
                    add(&self.metrics.stale_replies_dropped, 1);
                }
            },
            Command::Publish { topic, frame } => return self.queue_publication(topic, frame),
            Command::Broadcast { bytes } => self.broadcast(&bytes, now),
            Command::Ordered(ordered) => self.publish_ordered(*ordered, now),
            Command::History(history) => self.recovered(*history, now),
        }
        if self.budget.exceeded(&self.metrics) {
            self.drop_slow_consumers(now);
        }
    }

    /// The loop has drained its command queue (for this turn): the publications that came
    /// last go out.
    pub(crate) fn commands_done(&mut self, now: Instant) {
        self.deliver_publications(now);
        if self.budget.exceeded(&self.metrics) {
            self.drop_slow_consumers(now);
        }
    }
}
