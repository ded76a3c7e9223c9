//! The netpoller: one thread, one `mio::Poll`, every connection of this loop.
//!
//! # How a turn works
//!
//! [`EventLoop::run`] blocks in `poll` until a socket is ready, the waker rings, or the next
//! deadline comes. Then it:
//!
//! 1. handles each readiness event: `LISTENER` → accept until `WouldBlock`; `WAKER` → nothing
//!    (channels are drained every turn anyway); `Token(i)` → mark slab entry `i` readable and
//!    [`drive`] it;
//! 2. drains the reply channel (workers' answers) and the command channel (pushes), applying each
//!    to its connection if the `ConnId` generation still matches (else: dropped and counted);
//! 3. drives the connections that used up their read budget last turn (fairness);
//! 4. fires due deadlines; retries jobs that found the job queue full;
//! 5. starts or finishes a graceful shutdown.
//!
//! # Edge-triggered readiness
//!
//! mio registers sockets edge-triggered: an event says "something changed", once. So the loop
//! drains reads and accepts until `WouldBlock`, remembers in userland what it did not drain
//! (`Connection::readable`, the ready list), and treats an event that finds nothing to do as
//! normal (spurious events are allowed by `Poll`'s contract).
//!
//! # Interest
//!
//! Every socket is registered READABLE; WRITABLE is added only while output is pending (a write
//! hit `WouldBlock`) and removed when it drains. In the common case a reply is written at once and
//! no `reregister` syscall happens at all. See `docs/architecture.md` for the alternatives.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Registry, Token};
use slab::Slab;

use crate::config::Config;
use crate::dispatch::{
    After, Command, ConnId, Job, Reply, ServerHandle, Work, mark_loop_thread, run_job,
};
use crate::handler::CloseInfo;
use crate::handler::Handler;
use crate::http::HttpLimits;
use crate::metrics::{CloseKind, Metrics, add, adjust, sub};
use crate::reactor::LoopWaker;
use crate::reactor::buffer_pool::BufferPool;
use crate::reactor::connection::{Connection, Phase};
use crate::reactor::drive::{Verdict, apply_reply, drive, push, start_close};
use crate::reactor::timer::Timers;
use crate::ws::DecoderLimits;

mod accept;
mod timers;

/// The listening socket's token.
pub(crate) const LISTENER: Token = Token(usize::MAX);
/// The waker's token.
pub(crate) const WAKER: Token = Token(usize::MAX - 1);

/// Everything a connection step needs besides the connection itself, so that a connection can
/// be borrowed mutably from the slab while the rest of the loop is borrowed too.
pub(crate) struct Core {
    pub config: Arc<Config>,
    pub registry: Registry,
    pub pool: BufferPool,
    pub timers: Timers,
    pub jobs: Sender<Job>,
    pub metrics: Arc<Metrics>,
    /// Connections holding a job that found the queue full, oldest first.
    pub stalled: VecDeque<ConnId>,
    /// Connections that stopped reading only because their read budget ran out.
    pub ready: Vec<ConnId>,
    pub shutting_down: bool,
    /// The time at the start of this turn (one clock read per turn).
    pub now: Instant,
    pub http_limits: HttpLimits,
    pub decoder_limits: DecoderLimits,
    /// The server's handle (for inline handlers' `Context`, the shutdown flag, the stats).
    pub server: ServerHandle,
    /// The handler, when it runs inline on this thread instead of on the workers.
    pub inline: Option<Arc<dyn Handler>>,
}

/// An `on_close` waiting for the reply of a job that was running when its connection closed.
#[derive(Debug)]
struct Owed {
    info: CloseInfo,
    /// The job was the upgrade: `on_open` runs (and `on_close` is owed) only if it accepted.
    only_if_upgraded: bool,
}

impl Owed {
    /// What `on_close` gets, now that the job's reply is here, if it is owed at all.
    fn settle(self, reply: &Reply) -> Option<CloseInfo> {
        (!self.only_if_upgraded || reply.after == After::Upgraded).then_some(self.info)
    }
}

/// The channels that connect a loop to the workers and the handles, and its waker.
#[derive(Debug)]
pub(crate) struct Channels {
    pub jobs: Sender<Job>,
    pub replies: Receiver<Reply>,
    pub commands: Receiver<Command>,
    pub waker: Arc<LoopWaker>,
}

/// One event loop: a poller, a listener, and a slab of connections.
pub(crate) struct EventLoop {
    poll: Poll,
    events: Events,
    /// (token, readable-ish, writable) copied out of `events` so handling them can borrow `self`.
    scratch: Vec<(Token, bool, bool)>,
    listener: Option<TcpListener>,
    connections: Slab<Connection>,
    core: Core,
    /// This loop's number: the `event_loop` of every `ConnId` it makes.
    index: usize,
    replies: Receiver<Reply>,
    commands: Receiver<Command>,
    waker: Arc<LoopWaker>,
    /// The slab capacity and pool size last added to the shared gauges.
    reported: (u64, u64),
    /// `on_close` owed to connections that closed while a job of theirs was running: sent
    /// when that job's reply arrives, so `on_close` always follows the last `on_message`.
    owed_close: HashMap<ConnId, Owed>,
    /// `on_close` jobs that found the job queue full.
    close_backlog: VecDeque<Job>,
    next_generation: u64,
    accept_paused_until: Option<Instant>,
    shutdown_deadline: Option<Instant>,
    /// The command channel was not emptied last turn: poll without blocking.
    commands_left: bool,
}

impl EventLoop {
    pub(crate) fn new(
        index: usize,
        config: Arc<Config>,
        poll: Poll,
        listener: TcpListener,
        channels: Channels,
        server: ServerHandle,
        inline: Option<Arc<dyn Handler>>,
    ) -> io::Result<Self> {
        let core = Core {
            registry: poll.registry().try_clone()?,
            pool: BufferPool::new(config.read_buffer_size, config.max_pooled_buffers),
            timers: Timers::default(),
            jobs: channels.jobs,
            metrics: server.metrics_arc(),
            stalled: VecDeque::new(),
            ready: Vec::new(),
            shutting_down: false,
            now: Instant::now(),
            http_limits: config.http_limits(),
            decoder_limits: config.decoder_limits(),
            config: Arc::clone(&config),
            server,
            inline,
        };
        let mut listener = listener;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok(EventLoop {
            events: Events::with_capacity(config.max_events),
            scratch: Vec::with_capacity(config.max_events),
            poll,
            listener: Some(listener),
            connections: Slab::new(),
            core,
            index,
            replies: channels.replies,
            commands: channels.commands,
            waker: channels.waker,
            reported: (0, 0),
            owed_close: HashMap::new(),
            close_backlog: VecDeque::new(),
            next_generation: 1,
            accept_paused_until: None,
            shutdown_deadline: None,
            commands_left: false,
        })
    }

    /// Runs until shutdown completes (or `poll` itself fails).
    pub(crate) fn run(mut self) {
        log::debug!("event loop {} running", self.index);
        mark_loop_thread();
        loop {
            let timeout = self.poll_timeout();
            log::trace!("poll (timeout {timeout:?})");
            if let Err(err) = self.poll.poll(&mut self.events, timeout) {
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                log::error!("poll failed, stopping the event loop: {err}");
                break;
            }
            self.core.now = Instant::now();
            self.handle_events();
            self.drain_channels();
            self.run_ready();
            self.fire_timers();
            self.retry_stalled();
            self.resume_accepting();
            self.check_shutdown();
            if self.shutdown_complete() {
                break;
            }
            self.report_gauges();
        }
        self.finish();
    }

    /// Adds this loop's change in slab capacity and pool size to the shared gauges (each loop
    /// contributes its own share, so the stats show the sum over loops).
    fn report_gauges(&mut self) {
        let now = (
            self.connections.capacity() as u64,
            self.core.pool.len() as u64,
        );
        let (was_slab, was_pool) = self.reported;
        adjust(&self.core.metrics.slab_capacity, was_slab, now.0);
        adjust(&self.core.metrics.pooled_buffers, was_pool, now.1);
        self.reported = now;
    }

    fn poll_timeout(&self) -> Option<Duration> {
        if !self.core.ready.is_empty() || self.commands_left {
            return Some(Duration::ZERO);
        }
        let now = Instant::now();
        [
            self.core.timers.next_timeout(now),
            self.accept_paused_until
                .map(|t| t.saturating_duration_since(now)),
            self.shutdown_deadline
                .map(|t| t.saturating_duration_since(now)),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn handle_events(&mut self) {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.extend(self.events.iter().map(|event| {
            let readable = event.is_readable() || event.is_read_closed() || event.is_error();
            (event.token(), readable, event.is_writable())
        }));
        log::trace!("poll returned {} events", scratch.len());
        for &(token, readable, writable) in &scratch {
            match token {
                // While accepting is paused (EMFILE), new connections wait in the backlog.
                LISTENER if self.accept_paused_until.is_none() => self.accept(),
                LISTENER => {}
                WAKER => log::trace!("woken"),
                Token(index) => {
                    log::trace!("token {index}: readable={readable} writable={writable}");
                    if let Some(conn) = self.connections.get_mut(index) {
                        conn.readable |= readable;
                        self.drive_conn(index);
                    }
                }
            }
        }
        self.scratch = scratch;
    }

    fn drive_conn(&mut self, index: usize) {
        let Some(conn) = self.connections.get_mut(index) else {
            return;
        };
        if let Verdict::Close(kind) = drive(conn, &mut self.core) {
            self.close(index, kind);
        }
    }

    /// Removes a connection: deregister, close the socket, return its buffers, owe `on_close`.
    fn close(&mut self, index: usize, kind: CloseKind) {
        let Some(mut conn) = self.connections.try_remove(index) else {
            return;
        };
        if let Err(err) = self.core.registry.deregister(&mut conn.socket) {
            log::trace!("{}: deregister: {err}", conn.id);
        }
        sub(
            &self.core.metrics.pending_outbound_bytes,
            conn.output_len() as u64,
        );
        if let Some(input) = conn.input.take() {
            self.core.pool.give_read(input);
        }
        if conn.upgraded {
            sub(&self.core.metrics.websocket_open, 1);
            let info = conn
                .close_info
                .take()
                .map_or_else(CloseInfo::abnormal, |info| *info);
            if conn.job_in_flight {
                let owed = Owed {
                    info,
                    only_if_upgraded: false,
                };
                self.owed_close.insert(conn.id, owed);
            } else {
                self.queue_close_job(conn.id, info);
            }
        } else if matches!(conn.phase, Phase::Upgrading) && conn.job_in_flight {
            // The upgrade job is running: if it accepts, `on_open` runs after this close, and
            // the matching `on_close` must still follow it.
            let owed = Owed {
                info: CloseInfo::abnormal(),
                only_if_upgraded: true,
            };
            self.owed_close.insert(conn.id, owed);
        }
        self.core.metrics.closed(kind);
        log::debug!("{}: closed ({kind:?}) in {}", conn.id, conn.phase.name());
    }

    fn queue_close_job(&mut self, conn: ConnId, info: CloseInfo) {
        let job = Job {
            conn,
            work: Work::Closed(info),
        };
        if let Some(handler) = &self.core.inline {
            run_job(&**handler, &self.core.server, job);
            return;
        }
        if !self.close_backlog.is_empty() {
            self.close_backlog.push_back(job);
            return;
        }
        match self.core.jobs.try_send(job) {
            Ok(()) => add(&self.core.metrics.jobs_dispatched, 1),
            Err(TrySendError::Full(job)) => self.close_backlog.push_back(job),
            Err(TrySendError::Disconnected(_)) => log::error!("{conn}: worker pool is gone"),
        }
    }

    fn drain_channels(&mut self) {
        self.waker.clear();
        while let Ok(reply) = self.replies.try_recv() {
            self.on_reply(reply);
        }
        // Bounded per turn so a flood of pushes cannot starve socket events.
        let budget = self.core.config.command_queue_capacity;
        self.commands_left = false;
        for _ in 0..budget {
            match self.commands.try_recv() {
                Ok(command) => self.on_command(command),
                Err(_) => return,
            }
        }
        self.commands_left = !self.commands.is_empty();
    }

    fn on_reply(&mut self, reply: Reply) {
        let id = reply.conn;
        match live(&mut self.connections, id) {
            Some(conn) => {
                apply_reply(conn, &mut self.core, reply);
                self.drive_conn(id.index());
            }
            None => match self.owed_close.remove(&id) {
                Some(owed) => {
                    if let Some(info) = owed.settle(&reply) {
                        self.queue_close_job(id, info);
                    }
                }
                None => add(&self.core.metrics.stale_replies_dropped, 1),
            },
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Send { conn: id, bytes } => self.push_to(id, &bytes),
            Command::Close { conn: id, frame } => match live(&mut self.connections, id) {
                Some(conn) => {
                    start_close(conn, &mut self.core, frame.code, &frame.reason);
                    self.drive_conn(id.index());
                }
                None => add(&self.core.metrics.stale_replies_dropped, 1),
            },
            Command::Broadcast { bytes } => {
                let open: Vec<ConnId> = self
                    .connections
                    .iter()
                    .filter(|(_, conn)| matches!(conn.phase, Phase::Open { .. }))
                    .map(|(_, conn)| conn.id)
                    .collect();
                for id in open {
                    self.push_to(id, &bytes);
                }
            }
        }
    }

    fn push_to(&mut self, id: ConnId, bytes: &[u8]) {
        let Some(conn) = live(&mut self.connections, id) else {
            add(&self.core.metrics.stale_replies_dropped, 1);
            return;
        };
        match push(conn, &mut self.core, bytes) {
            Verdict::Keep => self.drive_conn(id.index()),
            Verdict::Close(kind) => self.close(id.index(), kind),
        }
    }

    fn run_ready(&mut self) {
        let ready = std::mem::take(&mut self.core.ready);
        for id in ready {
            if live(&mut self.connections, id).is_some() {
                self.drive_conn(id.index());
            }
        }
    }

    fn retry_stalled(&mut self) {
        while let Some(job) = self.close_backlog.pop_front() {
            match self.core.jobs.try_send(job) {
                Ok(()) => add(&self.core.metrics.jobs_dispatched, 1),
                Err(TrySendError::Full(job)) => {
                    self.close_backlog.push_front(job);
                    return;
                }
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
        let mut tries = self.core.stalled.len();
        while tries > 0 && !self.core.jobs.is_full() {
            tries -= 1;
            let Some(id) = self.core.stalled.pop_front() else {
                return;
            };
            if live(&mut self.connections, id).is_some_and(|conn| conn.stalled.is_some()) {
                self.drive_conn(id.index());
                if live(&mut self.connections, id).is_some_and(|conn| conn.stalled.is_some()) {
                    self.core.stalled.push_back(id);
                }
            }
        }
    }

    fn check_shutdown(&mut self) {
        if self.core.shutting_down || !self.core.server.shutdown_requested() {
            return;
        }
        log::info!(
            "shutting down: closing {} connections",
            self.connections.len()
        );
        self.core.shutting_down = true;
        self.shutdown_deadline = Some(self.core.now + self.core.config.shutdown_timeout);
        if let Some(mut listener) = self.listener.take() {
            let _ = self.core.registry.deregister(&mut listener);
        }
        let indices: Vec<usize> = self.connections.iter().map(|(index, _)| index).collect();
        for index in indices {
            self.drive_conn(index);
        }
    }

    fn shutdown_complete(&self) -> bool {
        self.core.shutting_down
            && (self.connections.is_empty()
                || self
                    .shutdown_deadline
                    .is_some_and(|deadline| self.core.now >= deadline))
    }

    /// After the loop: drop what is left, make sure every owed `on_close` is queued after the
    /// job it must follow, then drop the job sender so the workers drain the queue and exit.
    fn finish(mut self) {
        // Pushes from now on fail with `SendError::Stopped` instead of waiting for room.
        self.commands = crossbeam_channel::never();
        let indices: Vec<usize> = self.connections.iter().map(|(index, _)| index).collect();
        for index in indices {
            self.close(index, CloseKind::Timeout);
        }
        let wait_until = Instant::now() + self.core.config.shutdown_timeout;
        while !self.owed_close.is_empty() {
            let left = wait_until.saturating_duration_since(Instant::now());
            match self.replies.recv_timeout(left) {
                Ok(reply) => {
                    let owed = self.owed_close.remove(&reply.conn);
                    if let Some(info) = owed.and_then(|owed| owed.settle(&reply)) {
                        self.close_backlog.push_back(Job {
                            conn: reply.conn,
                            work: Work::Closed(info),
                        });
                    }
                }
                Err(_) => {
                    log::warn!(
                        "{} handler jobs did not finish; their on_close calls are skipped",
                        self.owed_close.len()
                    );
                    break;
                }
            }
        }
        // Blocking is safe here: workers never block on their replies (unbounded channel) and
        // pushes now fail fast, so every worker keeps taking jobs.
        for job in self.close_backlog.drain(..) {
            if self.core.jobs.send(job).is_err() {
                break;
            }
        }
        log::debug!("event loop stopped");
    }
}

/// The connection `id` if it is still the one in its slot (same generation).
fn live(connections: &mut Slab<Connection>, id: ConnId) -> Option<&mut Connection> {
    connections.get_mut(id.index()).filter(|conn| conn.id == id)
}
