//! The loop's table of connections, and every connection's I/O: a slab of sessions with their
//! transports, where each event is turned into reads, hand-offs and writes.
//!
//! The event loop (`event_loop.rs`) turns what `poll` and the channels deliver into calls here:
//! [`readiness`](ConnectionTable::readiness) for a socket event, [`reply`](ConnectionTable::reply)
//! for a worker's answer, [`command`](ConnectionTable::command) for a push; then once per turn the
//! timed work of `table/turn.rs`. Each call finds the connection (checking the `ConnId`
//! generation: stale work is dropped and counted), gives its session the event, and **pumps**
//! it — the netpoller's side of a connection, where every read, write and registration happens:
//!
//! 1. read into the buffer the session lends ([`Session::read_space`]), within the fairness
//!    budget — once per round, until `WouldBlock`;
//! 2. hand off the job it has ready ([`Session::poll_job`]) to the job queue — the worker
//!    pool's, or the handler inline;
//! 3. write what it has to say ([`Session::poll_transmit`]: one `writev`, or FIN) until done or
//!    `WouldBlock`;
//!
//! round again while that made room for more, then act on the session's one [`Outcome`]
//! ([`settle`](ConnectionTable::settle)): the interest to register, the deadline to schedule, the
//! change in buffered bytes to charge to the memory budget, the lists to keep, or its removal.
//!
//! The table is generic over the transport, the [`Poller`] registrations go to, and the
//! [`JobQueue`] jobs go to: the event loop uses `Stream` (TCP, or TLS), `mio::Registry` and the
//! worker pool's channel; the unit tests and the fuzz target use an in-memory wire, a recording
//! poller and a queue they empty by hand. Nothing here knows HTTP or WebSocket: what bytes mean
//! is the session's business.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::Arc;
use std::time::Instant;

use mio::{Interest, Token};
use slab::Slab;

use crate::buffer::BufferPool;
use crate::config::Config;
use crate::conn_id::ConnId;
use crate::dispatch::{Job, JobQueue, Returned};
use crate::metrics::{Admission, Metrics, add};
use crate::netpoller::budget::MemoryBudget;
use crate::netpoller::release::MemoryRelease;
use crate::netpoller::timers::Timers;
use crate::netpoller::topics::TopicRegistry;
use crate::session::{Env, Outcome, OwedClose, Session};
use crate::transport::Transport;

mod commands;
mod ending;
mod fanout;
mod inspect;
mod pump;
mod turn;

pub(crate) use pump::Readiness;

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

/// A slab entry: the connection's session and transport, and what the netpoller keeps for it —
/// the interest registered now and the deadline scheduled on the heap (Go keeps the same in a
/// `pollDesc`), the edge-triggered "readable" memo, and what it is charged and listed for.
#[derive(Debug)]
struct Entry<T> {
    session: Session,
    transport: T,
    interest: Interest,
    deadline: Option<Instant>,
    /// The last readiness event said readable and no read has found the socket drained since
    /// (`WouldBlock`, or a short read: `pump.rs`). With edge-triggered polling no new event
    /// comes until the socket is drained, so it is kept here.
    readable: bool,
    /// A readiness event said the peer closed its side (or the socket failed): read to the
    /// end, a short read no longer says drained, as no new data will raise another event.
    read_closed: bool,
    /// The bytes the memory budget charges it now: its session's and its transport's.
    held: usize,
    /// Its job waits for room in the job queue (it is on the `held` list).
    job_held: bool,
    /// On the `paused` list: it held too much to be read while the budget was under pressure.
    budget_paused: bool,
}

/// One event loop's connections.
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
    owed: HashMap<ConnId, OwedClose>,
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
    /// Broadcasts drained from the command queue, waiting for those after them (`commands.rs`).
    broadcasts: Vec<Arc<[u8]>>,
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
            broadcasts: Vec::new(),
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
        entry.insert(Entry {
            session: Session::new(id, peer, admission, now, &self.metrics),
            transport,
            interest: Interest::READABLE,
            deadline: None,
            readable: false,
            read_closed: false,
            held: 0,
            job_held: false,
            budget_paused: false,
        });
        let deadline = self.slab[index].session.next_deadline(&self.config);
        self.arm(index, deadline.map(|(at, _)| at), now);
        Ok(id)
    }

    /// A readiness event for `token`. Edge-triggered: the session is read until the socket is
    /// drained, and "readable" is remembered until then; a spurious event simply finds nothing
    /// to do.
    pub(crate) fn readiness(&mut self, token: Token, ready: Readiness, now: Instant) {
        let Some(entry) = self.slab.get_mut(token.0) else {
            return;
        };
        log::trace!(
            "token {} -> {} ({}): {ready:?}",
            token.0,
            entry.session.id,
            entry.session.phase_name(),
        );
        entry.readable |= ready.readable;
        entry.read_closed |= ready.read_closed;
        self.step(token.0, now, |_, _| {});
    }

    /// A job's reply, the deferral of one of its calls, or an out-of-order completion. For a
    /// live connection it is
    /// applied; for one that is gone it may settle an owed `on_close`; otherwise it is stale
    /// and dropped.
    pub(crate) fn reply(&mut self, returned: Returned, now: Instant) {
        match (self.live(returned.conn()), returned) {
            (Some(index), returned) => {
                self.step(index, now, |session, env| session.returned(env, returned));
            }
            (None, Returned::Reply(reply)) => self.orphaned_reply(reply, now),
            (None, Returned::Deferred(deferral)) => self.orphaned_deferral(deferral, now),
            (None, Returned::Unordered(arrival)) => self.orphaned_arrival(&arrival),
        }
    }

    /// The slab index of `id` if it is still the connection in its slot (same generation).
    fn live(&self, id: ConnId) -> Option<usize> {
        let index = id.index();
        self.slab
            .get(index)
            .is_some_and(|entry| entry.session.id == id)
            .then_some(index)
    }

    /// Gives the connection at `index` an event and pumps it; then delivers what it published
    /// (nothing, for a loop without topics).
    fn step(&mut self, index: usize, now: Instant, event: impl FnOnce(&mut Session, &mut Env<'_>)) {
        self.serve(index, now, event);
        if self.topics.has_pending() {
            self.deliver_publications(now);
        }
    }

    /// Gives the connection at `index` an event, pumps its I/O, and settles its outcome.
    fn serve(
        &mut self,
        index: usize,
        now: Instant,
        event: impl FnOnce(&mut Session, &mut Env<'_>),
    ) {
        let hold_limit = self.budget.hold_limit(&self.metrics);
        let Some(entry) = self.slab.get_mut(index) else {
            return;
        };
        let mut env = Env {
            now,
            config: &self.config,
            pool: &mut self.pool,
            metrics: &self.metrics,
            shutting_down: self.shutting_down,
            hold_limit,
            topics: &mut self.topics,
        };
        event(&mut entry.session, &mut env);
        let again = pump::pump(entry, &mut env, &mut self.jobs);
        entry.transport.release_idle();
        let outcome = entry.session.outcome(&mut env);
        self.settle(index, outcome, again, hold_limit, now);
    }

    /// Acts on a session's outcome: removal, the memory budget's charge (the one place it is
    /// made), the ready, held and paused lists, the deadline, the interest.
    fn settle(
        &mut self,
        index: usize,
        outcome: Outcome,
        again: bool,
        hold_limit: usize,
        now: Instant,
    ) {
        let entry = &mut self.slab[index];
        if let Some(ending) = outcome.ended {
            self.budget.charge(entry.held, 0, &self.metrics);
            return self.remove(index, ending);
        }
        let id = entry.session.id;
        let transport = entry.transport.buffered_input() + entry.transport.buffered_output();
        let held = outcome.held + transport;
        self.budget.charge(entry.held, held, &self.metrics);
        entry.held = held;
        if held >= hold_limit && entry.readable && !entry.budget_paused {
            // Not read because it holds too much while memory is short: nothing else may
            // wake it (edge-triggered readiness already reported the unread bytes).
            log::debug!("{id}: holds {held} bytes near the memory budget; reading paused");
            add(&self.metrics.budget_pauses, 1);
            entry.budget_paused = true;
            self.paused.push(id);
        }
        if again {
            self.ready.push(id);
        }
        if outcome.job_held && !entry.job_held {
            // Listed once; `retry_held` re-lists it if a retry fails.
            add(&self.metrics.backpressure_pauses, 1);
            self.held.push_back(id);
        }
        entry.job_held = outcome.job_held;
        let write = outcome.write || entry.transport.buffered_output() > 0;
        self.arm(index, outcome.deadline, now);
        self.update_interest(index, write, now);
    }

    /// Schedules the connection's next deadline if it is earlier than the one already scheduled.
    fn arm(&mut self, index: usize, deadline: Option<Instant>, now: Instant) {
        let entry = &mut self.slab[index];
        let Some(at) = deadline else {
            return;
        };
        if entry.deadline.is_none_or(|scheduled| at < scheduled) {
            let id = entry.session.id;
            log::trace!("{id}: deadline in {:?}", at.saturating_duration_since(now));
            entry.deadline = Some(at);
            self.timers.schedule(at, id);
        }
    }

    /// Re-registers the transport when the interest it needs has changed (WRITABLE only while
    /// output waits), so the common path makes no syscall.
    fn update_interest(&mut self, index: usize, write: bool, now: Instant) {
        let entry = &mut self.slab[index];
        let wanted = if write {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        if wanted == entry.interest {
            return;
        }
        let id = entry.session.id;
        match self
            .poller
            .reregister(&mut entry.transport, Token(index), wanted)
        {
            Ok(()) => {
                log::trace!("{id}: interest {:?} -> {wanted:?}", entry.interest);
                entry.interest = wanted;
            }
            Err(err) => {
                log::debug!("{id}: reregister failed: {err}");
                self.step(index, now, |session, env| session.transport_failed(env));
            }
        }
    }
}

/// What the table hands the event loop at the end of a shutdown: the `on_close` calls still
/// owed, those waiting for a running job's reply and those waiting for room in the job queue.
pub(crate) type Owed = (HashMap<ConnId, OwedClose>, VecDeque<Job>);

#[cfg(test)]
mod tests {
    /// The slab entry is what an idle connection costs in user space (its session holds no
    /// buffer): a headline number, measured per connection in docs/benchmarks.md (`idle`).
    #[test]
    fn a_slab_entry_is_small() {
        let size = std::mem::size_of::<super::Entry<crate::transport::Stream>>();
        eprintln!("size_of::<Entry<Stream>>() = {size}");
        assert!(size <= 336, "the slab entry grew to {size} bytes");
    }
}
