//! How connections leave the table, and the `on_close` each is owed.
//!
//! A session that reached `Closed` ends its step with an [`Ending`]: the table removes it
//! ([`remove`](ConnectionTable::remove) — its subscriptions end, its transport is deregistered
//! and closed, its place is given back) and consumes the [`OwedClose`] it carries: at once, as an
//! `on_close` job, or — when a job of the connection is still with the handler — kept until that
//! job's reply comes back ([`orphaned_reply`](ConnectionTable::orphaned_reply)), so `on_close`
//! always follows the connection's last handler call. A reply for a connection that has gone and
//! is owed nothing is stale: dropped and counted.

use std::time::Instant;

use super::{ConnectionTable, Poller};
use crate::dispatch::{Arrival, Deferral, Job, JobQueue, Offered, Reclaimed, Reply};
use crate::metrics::add;
use crate::session::Ending;
use crate::transport::Transport;

impl<T: Transport, P: Poller<T>, Q: JobQueue> ConnectionTable<T, P, Q> {
    /// Removes a closed connection: its subscriptions end, its transport is deregistered and
    /// closed, its place is given back, and its `on_close` is delivered — or kept owing.
    pub(super) fn remove(&mut self, index: usize, ending: Ending) {
        let mut entry = self.slab.remove(index);
        let id = entry.session.id;
        self.topics.leave_all(id);
        self.poller.deregister(&mut entry.transport);
        let Ending {
            kind,
            owed,
            state,
            job_running,
            admission,
        } = ending;
        if job_running && owed.is_owed() {
            self.owed.insert(id, owed);
        } else if let Some(job) = owed.now(id, state) {
            self.queue_on_close(job);
        }
        self.metrics.closed(kind, admission);
        log::debug!("{id}: closed ({kind:?})");
    }

    /// A reply for a connection that has gone while its job was with the handler: what it
    /// published still reaches the topic's subscribers; an `on_close` that waited for it is
    /// settled; anything else about it is stale.
    pub(super) fn orphaned_reply(&mut self, mut reply: Reply, now: Instant) {
        let id = reply.conn();
        self.publish_orphaned(id, &mut reply.output, now);
        match self.owed.remove(&id) {
            Some(owed) => {
                if let Some(job) = owed.settle(&mut reply) {
                    self.queue_on_close(job);
                }
            }
            None => {
                log::trace!("{id}: stale reply dropped");
                add(&self.metrics.stale_replies_dropped, 1);
            }
        }
        reply.lease.end();
    }

    /// An out-of-order completion for a connection that has gone: its closure is dropped
    /// (the connection's close ended its cell, unless the completion was already on its way).
    pub(super) fn orphaned_arrival(&mut self, arrival: &Arrival) {
        log::debug!(
            "{}: out-of-order completion for a closed connection",
            arrival.conn
        );
        add(&self.metrics.deferred_late, 1);
    }

    /// A deferral for a connection that has gone while its job was with the handler: what the
    /// call published before deferring still goes out; the job is taken back at once (the
    /// connection is closed), which settles an owed `on_close` — unless a completion already
    /// has it, and then its reply will.
    pub(super) fn orphaned_deferral(&mut self, deferral: Deferral, now: Instant) {
        let Deferral {
            conn,
            link,
            mut output,
            ..
        } = deferral;
        self.publish_orphaned(conn, &mut output, now);
        match link.reclaim(Reclaimed::Closed) {
            Some(pending) => self.orphaned_reply(pending.into_reply(), now),
            None => log::trace!("{conn}: deferral of a closed connection; its completion runs"),
        }
    }

    /// Offers an `on_close` job, behind any that are already waiting for room.
    fn queue_on_close(&mut self, job: Job) {
        let conn = job.conn();
        if !self.close_backlog.is_empty() {
            return self.close_backlog.push_back(job);
        }
        match self.jobs.offer(job) {
            Offered::Queued | Offered::Ran(_) => add(&self.metrics.jobs_dispatched, 1),
            Offered::Full(job) => self.close_backlog.push_back(job),
            Offered::Gone(_) => log::error!("{conn}: nobody runs jobs any more; on_close dropped"),
        }
    }
}

/// A table dropped without a shutdown (a caller-driven server dropped as it runs, a test that
/// stops midway): what it still owes can never be delivered. It says so, and lets the owed
/// calls and held jobs go explicitly rather than as forgotten values.
impl<T, P, Q> Drop for ConnectionTable<T, P, Q> {
    fn drop(&mut self) {
        if !self.owed.is_empty() {
            log::debug!(
                "loop {}: dropped owing {} on_close calls",
                self.loop_index,
                self.owed.len()
            );
        }
        self.owed.drain().for_each(|(_, owed)| owed.skip());
        for (_, entry) in self.slab.iter_mut() {
            entry.session.drop_held_job();
        }
    }
}
