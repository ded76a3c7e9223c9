//! The loop's table of connections: a slab keyed by token, the timer heap, the buffer pool, and
//! the lists that keep the loop fair and backpressure lossless — with no I/O of its own.
//!
//! The event loop (`event_loop.rs`) turns what `poll` and the channels deliver into calls here:
//! [`readiness`](ConnectionTable::readiness) for a socket event, [`reply`](ConnectionTable::reply)
//! for a worker's answer, [`command`](ConnectionTable::command) for a push, then once per turn
//! [`run_ready`](ConnectionTable::run_ready), [`fire_timers`](ConnectionTable::fire_timers) and
//! [`retry_held`](ConnectionTable::retry_held). Each call finds the connection (checking the
//! `ConnId` generation: stale work is dropped and counted), lets its session take the event and
//! [`drive`](crate::session::Connection::drive) as far as it can, and then keeps the
//! bookkeeping that is the netpoller's: the registered interest, the scheduled deadline, the
//! ready and held lists, and — when a connection is removed — the `on_close` it is owed and the
//! end of its subscriptions. The loop's topics live here too, outside the connections: the
//! [`TopicRegistry`] is lent to each session step, and the publications a step leaves behind
//! are delivered to this loop's subscribers right after it (`table/fanout.rs`).
//!
//! The table is generic over the transport, the [`Poller`] that registrations go to, and the
//! [`JobQueue`] jobs go to. The event loop uses `Stream` (TCP, or TLS), `mio::Registry` and the
//! worker pool's channel; the unit tests and the fuzz target use an in-memory wire, a recording
//! poller and a queue they empty by hand. Nothing here knows HTTP or WebSocket: phases are the
//! session's business.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Interest, Token};
use slab::Slab;

use crate::buffer::BufferPool;
use crate::config::Config;
use crate::conn_id::ConnId;
use crate::metrics::{Admission, CloseKind, Metrics, add, adjust};
use crate::netpoller::budget::MemoryBudget;
use crate::netpoller::link::Command;
use crate::netpoller::release::{MemoryRelease, return_free_memory};
use crate::netpoller::timers::Timers;
use crate::netpoller::topics::TopicRegistry;
use crate::session::{
    Connection, Job, JobQueue, JobSlot, Offered, OnClose, Phase, Reply, SessionBox, Turn, Verdict,
    Work,
};
use crate::transport::Transport;
use crate::ws::CloseInfo;

mod fanout;

/// Where the table registers its transports' interest: `mio::Registry` on the event loop.
pub(crate) trait Poller<T> {
    /// Starts watching a new transport.
    fn register(&mut self, transport: &mut T, token: Token, interest: Interest) -> io::Result<()>;
    /// Changes what a watched transport is watched for.
    fn reregister(&mut self, transport: &mut T, token: Token, interest: Interest)
    -> io::Result<()>;
    /// Stops watching a transport (before it is closed).
    fn deregister(&mut self, transport: &mut T);
}

impl<S: mio::event::Source> Poller<S> for mio::Registry {
    fn register(&mut self, source: &mut S, token: Token, interest: Interest) -> io::Result<()> {
        mio::Registry::register(self, source, token, interest)
    }

    fn reregister(&mut self, source: &mut S, token: Token, interest: Interest) -> io::Result<()> {
        mio::Registry::reregister(self, source, token, interest)
    }

    fn deregister(&mut self, source: &mut S) {
        if let Err(err) = mio::Registry::deregister(self, source) {
            log::trace!("deregister: {err}");
        }
    }
}

/// A slab entry: the connection's session, and what the netpoller keeps for it — the interest
/// registered now and the deadline scheduled on the heap (Go keeps the same in a `pollDesc`),
/// and whether the memory budget paused its reading.
#[derive(Debug)]
struct Entry<T> {
    conn: Connection<T>,
    interest: Interest,
    deadline: Option<Instant>,
    /// On the `paused` list: it held too much to be read while the budget was under pressure.
    budget_paused: bool,
}

/// One event loop's connections, sans-I/O.
#[derive(Debug)]
pub(crate) struct ConnectionTable<T, P, Q> {
    /// This loop's number: the `event_loop` of every `ConnId` it makes.
    loop_index: usize,
    config: Arc<Config>,
    metrics: Arc<Metrics>,
    slab: Slab<Entry<T>>,
    pool: BufferPool,
    timers: Timers,
    /// Connections that stopped reading only because their read budget ran out.
    ready: Vec<ConnId>,
    /// Connections holding a job that found the job queue full, oldest first.
    held: VecDeque<ConnId>,
    /// `on_close` owed to connections removed while a job of theirs was running: settled when
    /// that job's reply arrives, so `on_close` always follows the last `on_message`.
    owed: HashMap<ConnId, OnClose>,
    /// `on_close` jobs that found the job queue full, in order.
    close_backlog: VecDeque<Job>,
    /// This loop's part of the server-wide memory budget.
    budget: MemoryBudget,
    /// Connections the budget stopped reading, to drive again when the pressure passes.
    paused: Vec<ConnId>,
    /// Whether a storm is over and its memory can go back to the OS.
    release: MemoryRelease,
    next_generation: u64,
    shutting_down: bool,
    poller: P,
    jobs: Q,
    /// The gauges this loop last added to the shared ones (slab capacity, free buffers, buffers
    /// in use, timer entries): each loop contributes its own share.
    reported: [u64; 4],
    /// Who subscribes to what on this loop, and the publications to deliver or forward.
    topics: TopicRegistry,
    /// Publications are being delivered (a step made while delivering leaves its own for the
    /// same round).
    delivering: bool,
}

impl<T: Transport, P: Poller<T>, Q: JobQueue> ConnectionTable<T, P, Q> {
    pub(crate) fn new(
        loop_index: usize,
        config: Arc<Config>,
        metrics: Arc<Metrics>,
        poller: P,
        jobs: Q,
    ) -> Self {
        ConnectionTable {
            loop_index,
            topics: TopicRegistry::new(&config, Arc::clone(&metrics)),
            delivering: false,
            pool: BufferPool::new(config.read_buffer_size, config.max_pooled_buffers),
            budget: MemoryBudget::new(&config),
            release: MemoryRelease::new(config.release_memory_after),
            config,
            metrics,
            slab: Slab::new(),
            timers: Timers::default(),
            ready: Vec::new(),
            held: VecDeque::new(),
            owed: HashMap::new(),
            close_backlog: VecDeque::new(),
            paused: Vec::new(),
            next_generation: 1,
            shutting_down: false,
            poller,
            jobs,
            reported: [0; 4],
        }
    }

    /// Takes a new connection (its place, `admission`, is already taken): a slab slot, a
    /// `ConnId` with a fresh generation, READABLE interest, the request deadline.
    pub(crate) fn admit(
        &mut self,
        mut transport: T,
        peer: Option<std::net::SocketAddr>,
        now: Instant,
        admission: Admission,
    ) -> io::Result<ConnId> {
        let entry = self.slab.vacant_entry();
        let index = entry.key();
        let id = ConnId::new(self.loop_index, index, self.next_generation);
        self.poller
            .register(&mut transport, Token(index), Interest::READABLE)?;
        self.next_generation += 1;
        let mut conn = Connection::new(id, transport, peer, now, &self.metrics);
        conn.admission = admission;
        entry.insert(Entry {
            conn,
            interest: Interest::READABLE,
            deadline: None,
            budget_paused: false,
        });
        self.arm(index, now);
        Ok(id)
    }

    /// A readiness event for `token`. Edge-triggered: the session reads until `WouldBlock`, and
    /// remembers "readable" until then; a spurious event simply finds nothing to do.
    pub(crate) fn readiness(&mut self, token: Token, readable: bool, writable: bool, now: Instant) {
        let Some(entry) = self.slab.get_mut(token.0) else {
            return;
        };
        log::trace!(
            "token {} -> {} ({}): readable={readable} writable={writable}",
            token.0,
            entry.conn.id,
            entry.conn.phase.name()
        );
        entry.conn.readable |= readable;
        self.step(token.0, now, |_, _| {});
    }

    /// A job's reply. For a live connection it is applied; for one that is gone it may settle an
    /// owed `on_close`; otherwise it is stale and dropped.
    pub(crate) fn reply(&mut self, mut reply: Reply, now: Instant) {
        let id = reply.conn;
        if let Some(index) = self.live(id) {
            return self.step(index, now, |conn, turn| conn.replied(turn, reply));
        }
        self.publish_orphaned(&mut reply, now);
        match self.owed.remove(&id) {
            Some(owed) => {
                if let Some(info) = owed.settle(&reply) {
                    self.queue_on_close(id, info, reply.session);
                }
            }
            None => {
                log::trace!("{id}: stale reply dropped");
                add(&self.metrics.stale_replies_dropped, 1);
            }
        }
    }

    /// A command from a `ServerHandle`. Pushes are the one producer the loop cannot slow down by
    /// not reading, so the budget is checked after each (a turn may carry thousands).
    pub(crate) fn command(&mut self, command: Command, now: Instant) {
        self.apply_command(command, now);
        if self.budget.exceeded(&self.metrics) {
            self.drop_slow_consumers(now);
        }
    }

    fn apply_command(&mut self, command: Command, now: Instant) {
        match command {
            Command::Send { conn, bytes } => self.push(conn, &bytes, now),
            Command::Close { conn, frame } => match self.live(conn) {
                Some(index) => self.step(index, now, |conn, turn| {
                    let end = CloseKind::Clean;
                    conn.we_close(turn, frame.code, &frame.reason, end);
                }),
                None => add(&self.metrics.stale_replies_dropped, 1),
            },
            Command::Publish { topic, frame } => self.publish(topic, frame, now),
            Command::Broadcast { bytes } => self.broadcast(&bytes, now),
        }
    }

    fn push(&mut self, id: ConnId, bytes: &[u8], now: Instant) {
        match self.live(id) {
            Some(index) => self.step(index, now, |conn, turn| conn.push(turn, bytes)),
            None => {
                log::trace!("{id}: push for a closed connection dropped");
                add(&self.metrics.stale_replies_dropped, 1);
            }
        }
    }

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

    /// Pops the deadlines that are due; skips stale entries, re-arms those whose clock moved
    /// later, and hands the rest to their session.
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
            match entry.conn.next_deadline(&self.config) {
                Some((when, due)) if when <= now => {
                    self.step(index, now, |conn, turn| conn.expire(turn, due));
                }
                // A clock moved later (bytes arrived): schedule its new instant.
                _ => self.arm(index, now),
            }
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
                Offered::Gone => {}
            }
        }
        let mut tries = self.held.len();
        while tries > 0 && self.jobs.has_room() {
            tries -= 1;
            let Some(id) = self.held.pop_front() else {
                return;
            };
            if let Some(index) = self.live(id).filter(|&i| self.slab[i].conn.holds_job()) {
                self.step(index, now, |_, _| {});
                if self.live(id).is_some_and(|i| self.slab[i].conn.holds_job()) {
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
    pub(crate) fn abort_all(&mut self, now: Instant) -> (HashMap<ConnId, OnClose>, VecDeque<Job>) {
        let indices: Vec<usize> = self.slab.iter().map(|(index, _)| index).collect();
        for index in indices {
            self.step(index, now, |conn, turn| {
                conn.abort(turn, CloseKind::Timeout)
            });
        }
        self.budget.publish(&self.metrics);
        (
            std::mem::take(&mut self.owed),
            std::mem::take(&mut self.close_backlog),
        )
    }

    /// The job queue (for the loop's last, waiting hand-over at shutdown).
    pub(crate) fn jobs(&self) -> &Q {
        &self.jobs
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.slab.len()
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
    fn drop_slow_consumers(&mut self, now: Instant) {
        let floor = self.budget.hold_limit(&self.metrics);
        let mut stuck: Vec<(usize, usize)> = self
            .slab
            .iter()
            .filter(|(_, entry)| entry.conn.clocks.write_blocked_since.is_some())
            .map(|(index, entry)| (entry.conn.buffered_bytes(), index))
            .filter(|&(held, _)| held >= floor)
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
                self.slab[index].conn.id,
                self.config.max_buffered_bytes
            );
            add(&self.metrics.budget_drops, 1);
            self.step(index, now, |conn, turn| conn.over_budget(turn));
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

    /// The connection `id`, if it is still in the table (tests and the fuzz harness).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn connection(&self, id: ConnId) -> Option<&Connection<T>> {
        self.live(id).map(|index| &self.slab[index].conn)
    }

    /// Every connection in the table (tests and the fuzz harness).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn connections(&self) -> impl Iterator<Item = &Connection<T>> {
        self.slab.iter().map(|(_, entry)| &entry.conn)
    }

    /// The bytes the budget charges this loop now (tests and the fuzz harness check that it is
    /// the sum of its connections' `buffered_bytes`).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.budget.local()
    }

    /// The poller (tests and the fuzz harness).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn poller(&self) -> &P {
        &self.poller
    }

    /// The job queue (tests and the fuzz harness run its jobs by hand).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn jobs_mut(&mut self) -> &mut Q {
        &mut self.jobs
    }

    /// The slab index of `id` if it is still the connection in its slot (same generation).
    fn live(&self, id: ConnId) -> Option<usize> {
        let index = id.index();
        self.slab
            .get(index)
            .is_some_and(|entry| entry.conn.id == id)
            .then_some(index)
    }

    /// Lets the connection at `index` take `event`, drives it, and keeps the netpoller's
    /// bookkeeping; then delivers what it published (nothing, for a loop without topics).
    fn step(
        &mut self,
        index: usize,
        now: Instant,
        event: impl FnOnce(&mut Connection<T>, &mut Turn<'_>),
    ) {
        self.step_session(index, now, event);
        if self.topics.has_pending() {
            self.deliver_publications(now);
        }
    }

    /// Lets the connection at `index` take `event`, drives it, and keeps the netpoller's
    /// bookkeeping: removal, the ready and held lists, the deadline, the interest.
    fn step_session(
        &mut self,
        index: usize,
        now: Instant,
        event: impl FnOnce(&mut Connection<T>, &mut Turn<'_>),
    ) {
        let Some(entry) = self.slab.get_mut(index) else {
            return;
        };
        let was_held = entry.conn.holds_job();
        let held_before = entry.conn.buffered_bytes();
        let hold_limit = self.budget.hold_limit(&self.metrics);
        let mut turn = Turn {
            now,
            config: &self.config,
            pool: &mut self.pool,
            metrics: &self.metrics,
            shutting_down: self.shutting_down,
            hold_limit,
            topics: &mut self.topics,
        };
        event(&mut entry.conn, &mut turn);
        let verdict = entry.conn.drive(&mut turn, &mut self.jobs);
        let id = entry.conn.id;
        if let Verdict::Close(kind) = verdict {
            self.budget.charge(held_before, 0, &self.metrics);
            return self.remove(index, kind);
        }
        let held = entry.conn.buffered_bytes();
        self.budget.charge(held_before, held, &self.metrics);
        if held >= hold_limit && entry.conn.readable && !entry.budget_paused {
            // Not read because it holds too much while memory is short: nothing else may
            // wake it (edge-triggered readiness already reported the unread bytes).
            log::debug!("{id}: holds {held} bytes near the memory budget; reading paused");
            add(&self.metrics.budget_pauses, 1);
            entry.budget_paused = true;
            self.paused.push(id);
        }
        if verdict == Verdict::Again {
            self.ready.push(id);
        }
        if !was_held && entry.conn.holds_job() {
            // Listed once; `retry_held` re-lists it if a retry fails.
            self.held.push_back(id);
        }
        self.arm(index, now);
        self.update_interest(index, now);
    }

    /// Schedules the connection's next deadline if it is earlier than the one already scheduled.
    fn arm(&mut self, index: usize, now: Instant) {
        let entry = &mut self.slab[index];
        let Some((at, due)) = entry.conn.next_deadline(&self.config) else {
            return;
        };
        if entry.deadline.is_none_or(|scheduled| at < scheduled) {
            let id = entry.conn.id;
            log::trace!(
                "{id}: deadline {due:?} in {:?}",
                at.saturating_duration_since(now)
            );
            entry.deadline = Some(at);
            self.timers.schedule(at, id);
        }
    }

    /// Re-registers the transport when the interest it needs has changed (WRITABLE only while
    /// output waits), so the common path makes no syscall.
    fn update_interest(&mut self, index: usize, now: Instant) {
        let entry = &mut self.slab[index];
        let wanted = entry.conn.wanted_interest();
        if wanted == entry.interest {
            return;
        }
        let id = entry.conn.id;
        match self
            .poller
            .reregister(&mut entry.conn.transport, Token(index), wanted)
        {
            Ok(()) => {
                log::trace!("{id}: interest {:?} -> {wanted:?}", entry.interest);
                entry.interest = wanted;
            }
            Err(err) => {
                log::debug!("{id}: reregister failed: {err}");
                self.step(index, now, |conn, turn| conn.transport_failed(turn));
            }
        }
    }

    /// Removes a closed connection: deregister, free its buffers, count it, and deliver — or
    /// keep owing — its `on_close`.
    fn remove(&mut self, index: usize, kind: CloseKind) {
        let mut entry = self.slab.remove(index);
        let conn = &mut entry.conn;
        self.topics.leave_all(conn.id);
        self.poller.deregister(&mut conn.transport);
        conn.return_all_buffers(&mut self.pool, &self.metrics);
        let job_running = matches!(conn.job, JobSlot::InFlight(_));
        // The session is here, or in a job that waited for room (and dies with it); a running
        // job has it, and its reply brings it to the owed `on_close`.
        let session = conn.session.take().or_else(|| match &mut conn.job {
            JobSlot::Held(job) => job.session.take(),
            _ => None,
        });
        let on_close = match &mut conn.phase {
            Phase::Closed(closed) => std::mem::replace(&mut closed.on_close, OnClose::Nothing),
            _ => OnClose::Nothing,
        };
        match on_close {
            OnClose::Nothing => {}
            owed if job_running => {
                self.owed.insert(conn.id, owed);
            }
            OnClose::Call(info) => self.queue_on_close(conn.id, info, session),
            OnClose::IfUpgradeAccepted => {}
        }
        self.metrics.closed(kind, conn.admission);
        log::debug!("{}: closed ({kind:?})", conn.id);
    }

    /// Offers an `on_close` job, behind any that are already waiting for room.
    fn queue_on_close(&mut self, conn: ConnId, info: CloseInfo, session: Option<SessionBox>) {
        let job = Job {
            conn,
            work: Work::Closed(info),
            session,
            queued: 0,
        };
        if !self.close_backlog.is_empty() {
            return self.close_backlog.push_back(job);
        }
        match self.jobs.offer(job) {
            Offered::Queued | Offered::Ran(_) => add(&self.metrics.jobs_dispatched, 1),
            Offered::Full(job) => self.close_backlog.push_back(job),
            Offered::Gone => log::error!("{conn}: nobody runs jobs any more; on_close dropped"),
        }
    }
}
