//! The table's timed work, once per loop turn: connections the fairness budget stopped
//! (`run_ready`), deadlines (`fire_timers`), jobs held for room in the job queue
//! (`retry_held`), the memory budget (`keep_budget`) and the gauges (`report_gauges`); and the
//! two ends of a graceful shutdown (`begin_shutdown`, `abort_all`).

use std::time::{Duration, Instant};

use super::{ConnectionTable, Owed, Poller};
use crate::dispatch::{JobQueue, Offered};
use crate::metrics::{CloseKind, add, adjust};
use crate::netpoller::release::return_free_memory;
use crate::transport::Transport;

impl<T: Transport, P: Poller<T>, Q: JobQueue> ConnectionTable<T, P, Q> {
    /// Drives the connections that used up their read budget last turn (fairness).
    pub(crate) fn run_ready(&mut self, now: Instant) {
        if self.ready.is_empty() {
            return; // the common case: keep the vector's capacity
        }
        for id in std::mem::take(&mut self.ready) {
            if let Some(index) = self.live(id) {
                self.step(index, now, |_, _| {});
            }
        }
    }

    /// Pops the deadlines that are due and hands each to its session (stale entries — of gone
    /// connections, or replaced by an earlier one — are skipped). A clock that moved later has
    /// nothing due yet: the session's outcome schedules its new instant.
    pub(crate) fn fire_timers(&mut self, now: Instant) {
        while let Some((at, id)) = self.timers.pop_due(now) {
            let Some(index) = self.live(id) else {
                continue; // the connection is gone
            };
            let entry = &mut self.slab[index];
            if entry.deadline != Some(at) {
                continue; // replaced by an earlier entry
            }
            entry.deadline = None;
            self.step(index, now, |session, env| session.on_timer(env));
        }
    }

    /// Offers held work again, oldest first, while the job queue has room: owed `on_close` jobs,
    /// then the held jobs of connections.
    pub(crate) fn retry_held(&mut self, now: Instant) {
        if self.close_backlog.is_empty() && self.held.is_empty() {
            return;
        }
        while let Some(job) = self.close_backlog.pop_front() {
            match self.jobs.offer(job) {
                Offered::Full(job) => {
                    self.close_backlog.push_front(job);
                    return;
                }
                Offered::Queued | Offered::Ran(_) => add(&self.metrics.jobs_dispatched, 1),
                Offered::Gone(job) => {
                    log::error!(
                        "{}: nobody runs jobs any more; on_close dropped",
                        job.conn()
                    );
                }
            }
        }
        let mut tries = self.held.len();
        while tries > 0 && self.jobs.has_room() {
            tries -= 1;
            let Some(id) = self.held.pop_front() else {
                return;
            };
            if let Some(index) = self.live(id).filter(|&i| self.slab[i].job_held) {
                self.step(index, now, |_, _| {});
                if self.live(id).is_some_and(|i| self.slab[i].job_held) {
                    self.held.push_back(id);
                }
            }
        }
    }

    /// Starts a graceful shutdown: from now on no new requests are taken and no WebSocket data
    /// is read; each connection, once its handler work is done, gets `1001` (WebSocket) or is
    /// let go (HTTP).
    pub(crate) fn begin_shutdown(&mut self, now: Instant) {
        self.shutting_down = true;
        let indices: Vec<usize> = self.slab.iter().map(|(index, _)| index).collect();
        for index in indices {
            self.step(index, now, |_, _| {});
        }
    }

    /// Ends what shutdown could not finish in time: every connection left is dropped, and the
    /// `on_close` calls still owed are returned — those waiting for a job's reply, and those
    /// that found the job queue full — for the loop to deliver in order.
    pub(crate) fn abort_all(&mut self, now: Instant) -> Owed {
        let indices: Vec<usize> = self.slab.iter().map(|(index, _)| index).collect();
        for index in indices {
            self.step(index, now, |session, env| {
                session.abort(env, CloseKind::Timeout);
            });
        }
        // No turn follows to publish what the drops gave back (buffers, slab, timers, budget).
        self.report_gauges();
        (
            std::mem::take(&mut self.owed),
            std::mem::take(&mut self.close_backlog),
        )
    }

    /// How long `poll` may sleep for the table's sake: zero while connections wait on the ready
    /// list, else until the earliest deadline (`None`: no deadline at all).
    pub(crate) fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        if !self.ready.is_empty() {
            return Some(Duration::ZERO);
        }
        let release = self
            .release
            .deadline()
            .map(|at| at.saturating_duration_since(now));
        [self.timers.next_timeout(now), release]
            .into_iter()
            .flatten()
            .min()
    }

    /// Keeps the memory budget, once per turn: past it, drops the slow consumers that hold the
    /// most until the server is back under seven eighths of it; once the pressure has passed,
    /// drives the connections it paused, so they read again.
    pub(crate) fn keep_budget(&mut self, now: Instant) {
        if self.budget.exceeded(&self.metrics) {
            self.drop_slow_consumers(now);
        }
        if !self.paused.is_empty() && self.budget.hold_limit(&self.metrics) == usize::MAX {
            for id in std::mem::take(&mut self.paused) {
                if let Some(index) = self.live(id) {
                    self.slab[index].budget_paused = false;
                    self.step(index, now, |_, _| {});
                }
            }
        }
        if self.release.observe(self.budget.local(), now) {
            self.release_memory();
        }
    }

    /// A storm is over: free the pooled buffers and the timer heap's spare room, and ask the
    /// allocator to give free pages back to the OS.
    fn release_memory(&mut self) {
        let started = Instant::now();
        self.pool.shrink();
        self.timers.shrink();
        self.ready.shrink_to_fit();
        self.paused.shrink_to_fit();
        self.held.shrink_to_fit();
        let trimmed = return_free_memory();
        add(&self.metrics.memory_releases, 1);
        log::info!(
            "loop {}: storm over, memory released in {:?} (allocator trimmed: {trimmed})",
            self.loop_index,
            started.elapsed()
        );
    }

    /// Over the budget: the connections whose output is not draining (the peer does not read)
    /// and that hold at least the hold limit, biggest first, are dropped with `1008`. Clients
    /// that read what they are sent are never chosen; if the slow consumers are not enough,
    /// the pause on reading holds the rest.
    pub(super) fn drop_slow_consumers(&mut self, now: Instant) {
        let floor = self.budget.hold_limit(&self.metrics);
        let mut stuck: Vec<(usize, usize)> = self
            .slab
            .iter()
            .filter(|(_, entry)| entry.session.write_blocked() && entry.held >= floor)
            .map(|(index, entry)| (entry.held, index))
            .collect();
        stuck.sort_unstable_by(|a, b| b.cmp(a));
        let mut dropped = 0;
        for (held, index) in stuck {
            if self.budget.relieved(&self.metrics) {
                break;
            }
            dropped += 1;
            let total = self.budget.total(&self.metrics);
            log::warn!(
                "{}: dropped: holds {held} bytes it cannot send while the server holds \
                 {total} (max_buffered_bytes {})",
                self.slab[index].session.id,
                self.config.max_buffered_bytes
            );
            add(&self.metrics.budget_drops, 1);
            self.step(index, now, |session, env| session.over_budget(env));
        }
        self.budget.searched(dropped, &self.metrics);
    }

    /// Adds this loop's change in its gauges to the shared ones.
    pub(crate) fn report_gauges(&mut self) {
        self.budget.publish(&self.metrics);
        let now = [
            self.slab.capacity() as u64,
            self.pool.len() as u64,
            self.pool.in_use() as u64,
            self.timers.len() as u64,
        ];
        let gauges = [
            &self.metrics.slab_capacity,
            &self.metrics.pooled_buffers,
            &self.metrics.buffers_in_use,
            &self.metrics.pending_timers,
        ];
        for ((gauge, was), new) in gauges.into_iter().zip(self.reported).zip(now) {
            adjust(gauge, was, new);
        }
        self.reported = now;
    }
}
