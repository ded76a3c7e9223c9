//! The netpoller: one thread, one `mio::Poll`, and the loop that feeds its table.
//!
//! # How a turn works
//!
//! [`EventLoop::run`] blocks in `poll` until a socket is ready, the waker rings, or the next
//! deadline comes (the `poll` timeout is the earliest deadline: Go's `netpoll(delay)`). Then it:
//!
//! 1. handles each readiness event: `LISTENER` → accept until `WouldBlock`; `WAKER` → nothing
//!    more (channels are drained every turn anyway); `Token(i)` → slab entry `i` is readable
//!    and/or writable: its session is driven;
//! 2. drains the reply channel (workers' answers) and the command channel (pushes), applying each
//!    to its connection if the `ConnId` generation still matches (else: dropped and counted);
//! 3. drives the connections that used up their read budget last turn (fairness);
//! 4. fires due deadlines; offers held jobs again; keeps the memory budget (drops slow consumers
//!    past it, resumes the connections it paused, gives memory back after a storm); resumes
//!    accepting after an `EMFILE` pause;
//! 5. forwards what its handlers published to the other loops' command queues (`forward.rs`);
//! 6. starts or finishes a graceful shutdown.
//!
//! # Edge-triggered readiness
//!
//! mio registers sockets edge-triggered: an event says "something changed", once. So the loop
//! drains reads and accepts until `WouldBlock`, remembers in userland what it did not drain (the
//! session's `readable` flag, the table's ready list), and treats an event that finds nothing to
//! do as normal (spurious events are allowed by `Poll`'s contract).
//!
//! # Interest
//!
//! Every socket is registered READABLE; WRITABLE is added only while output is pending (a write
//! hit `WouldBlock`) and removed when it drains. In the common case a reply is written at once and
//! no `reregister` syscall happens at all. See `docs/architecture.md` for the alternatives.
//!
//! Everything protocol-specific happens in the sessions; everything this file does is I/O and
//! bookkeeping between `poll`, the channels and the table (`table.rs`).

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Registry, Token};

use crate::config::{Config, deadline_after};
use crate::conn_id::ConnId;
use crate::dispatch::{
    Command, Executor, Job, LoopWaker, Reclaimed, Reply, Returned, SharedTls, drop_with_the_loop,
    mark_loop_thread,
};
use crate::metrics::Metrics;
use crate::netpoller::forward::{Forwarder, RETRY_AFTER};
use crate::netpoller::table::{ConnectionTable, Readiness};
use crate::session::OwedClose;
use crate::transport::Stream;

/// The listening socket's token.
pub(crate) const LISTENER: Token = Token(usize::MAX);
/// The waker's token.
pub(crate) const WAKER: Token = Token(usize::MAX - 1);

/// What a loop is built from, besides its configuration and counters.
#[derive(Debug)]
pub(crate) struct LoopParts {
    pub poll: Poll,
    pub listener: TcpListener,
    /// Where its jobs go: the worker pool's queue, or the handler inline.
    pub executor: Executor,
    /// Workers' replies (and deferrals, and completions) for this loop's connections.
    pub replies: Receiver<Returned>,
    /// Pushes from handles.
    pub commands: Receiver<Command>,
    pub waker: Arc<LoopWaker>,
    /// Set by `ServerHandle::shutdown`.
    pub shutdown: Arc<AtomicBool>,
    /// The other loops, for the publications of this loop's handlers.
    pub forwarder: Forwarder,
    /// TLS for every accepted socket, when the server has it.
    pub tls: SharedTls,
}

/// One event loop: a poller, a listener, and the table of its connections.
#[derive(Debug)]
pub(crate) struct EventLoop {
    /// This loop's number (the `event_loop` of its `ConnId`s, and `loop N` in the trace).
    index: usize,
    poll: Poll,
    events: Events,
    /// (token, what the event says for reading) copied out of `events` so handling them can borrow `self`.
    scratch: Vec<(Token, Readiness)>,
    pub(super) listener: Option<TcpListener>,
    pub(super) table: ConnectionTable<Stream, Registry, Executor>,
    /// Wraps each accepted socket in TLS, when the server has it.
    pub(super) tls: SharedTls,
    pub(super) config: Arc<Config>,
    pub(super) metrics: Arc<Metrics>,
    replies: Receiver<Returned>,
    commands: Receiver<Command>,
    waker: Arc<LoopWaker>,
    shutdown: Arc<AtomicBool>,
    /// The time at the start of this turn (one clock read per turn).
    pub(super) now: Instant,
    pub(super) accept_paused_until: Option<Instant>,
    shutdown_deadline: Option<Instant>,
    /// A message was waiting when the last turn ended (a flood of commands is drained a
    /// queue's worth per turn; a reply may come in after the drain): poll without blocking.
    messages_waiting: bool,
    /// Runs on a thread of its own ([`run`](Self::run)), not driven by a caller's turns.
    on_own_thread: bool,
    forwarder: Forwarder,
}

impl EventLoop {
    pub(crate) fn new(
        index: usize,
        config: Arc<Config>,
        metrics: Arc<Metrics>,
        parts: LoopParts,
    ) -> io::Result<Self> {
        let LoopParts {
            poll,
            mut listener,
            executor,
            replies,
            commands,
            waker,
            shutdown,
            forwarder,
            tls,
        } = parts;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let registry = poll.registry().try_clone()?;
        let mut table = ConnectionTable::new(
            index,
            Arc::clone(&config),
            Arc::clone(&metrics),
            registry,
            executor,
        );
        table.forward_publications(forwarder.has_peers());
        table.set_relay(forwarder.relay());
        Ok(EventLoop {
            index,
            events: Events::with_capacity(config.max_events),
            scratch: Vec::with_capacity(config.max_events),
            poll,
            listener: Some(listener),
            table,
            tls,
            config,
            metrics,
            replies,
            commands,
            waker,
            shutdown,
            now: Instant::now(),
            accept_paused_until: None,
            shutdown_deadline: None,
            messages_waiting: false,
            on_own_thread: false,
            forwarder,
        })
    }

    /// Runs until shutdown completes (or `poll` itself fails): the loop of a thread of its own.
    pub(crate) fn run(mut self) {
        log::debug!("loop {}: running", self.index);
        mark_loop_thread();
        self.on_own_thread = true;
        loop {
            match self.turn(None) {
                Ok(false) => {}
                Ok(true) => break,
                Err(err) => {
                    log::error!("loop {}: poll failed, stopping: {err}", self.index);
                    break;
                }
            }
        }
        self.finish();
    }

    /// One turn: `poll` for at most `limit` (`None`: as long as the loop's own deadlines
    /// allow), then everything it delivered, the channels, the ready list, the timers, the held
    /// jobs and the budget. True once a shutdown has completed: then [`finish`](Self::finish).
    pub(crate) fn turn(&mut self, limit: Option<Duration>) -> io::Result<bool> {
        let timeout = match (self.poll_timeout(), limit) {
            (Some(own), Some(limit)) => Some(own.min(limit)),
            (own, limit) => own.or(limit),
        };
        log::trace!("loop {}: poll (timeout {timeout:?})", self.index);
        if let Err(err) = self.poll.poll(&mut self.events, timeout) {
            if err.kind() == io::ErrorKind::Interrupted {
                return Ok(false);
            }
            return Err(err);
        }
        self.waker.awake();
        self.now = Instant::now();
        self.handle_events();
        self.drain_channels();
        self.table.run_ready(self.now);
        self.table.fire_timers(self.now);
        self.table.retry_held(self.now);
        self.table.keep_budget(self.now);
        self.forward_publications();
        self.resume_accepting();
        self.check_shutdown();
        if self.shutdown_complete() {
            return Ok(true);
        }
        self.table.report_gauges();
        self.park();
        Ok(false)
    }

    /// The end of a turn: the loop may sleep now, so senders must ring its waker — unless a
    /// message came in since the channels were drained (its sender saw the loop awake). Then
    /// the loop's own thread polls without waiting, and a driven server rings itself so that
    /// its fd, which its owner may be watching, is readable.
    fn park(&mut self) {
        let (replies, commands) = (&self.replies, &self.commands);
        self.messages_waiting = self
            .waker
            .park(|| !replies.is_empty() || !commands.is_empty());
        if self.messages_waiting && !self.on_own_thread {
            self.waker.wake();
        }
    }

    /// The poller's file descriptor: readable whenever a turn has something to do.
    #[cfg(unix)]
    pub(crate) fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.poll.as_raw_fd()
    }

    /// The earliest of: the table's next deadline (zero while some connection is on the ready
    /// list), the end of an accept pause, the shutdown deadline, a retry of publications waiting
    /// for another loop's full queue; zero while a message waits in a channel.
    pub(crate) fn poll_timeout(&self) -> Option<Duration> {
        if self.messages_waiting {
            return Some(Duration::ZERO);
        }
        let now = Instant::now();
        [
            self.table.poll_timeout(now),
            self.accept_paused_until
                .map(|t| t.saturating_duration_since(now)),
            self.shutdown_deadline
                .map(|t| t.saturating_duration_since(now)),
            self.forwarder.has_backlog().then_some(RETRY_AFTER),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn handle_events(&mut self) {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.extend(self.events.iter().map(|event| {
            let read_closed = event.is_read_closed() || event.is_error();
            let ready = Readiness {
                readable: event.is_readable() || read_closed,
                read_closed,
            };
            (event.token(), ready)
        }));
        let n = scratch.len();
        let events = if n == 1 { "event" } else { "events" };
        log::trace!("loop {}: poll returned {n} {events}", self.index);
        for &(token, ready) in &scratch {
            match token {
                // While accepting is paused (EMFILE), new connections wait in the backlog.
                LISTENER if self.accept_paused_until.is_none() => {
                    log::trace!("loop {}: listener readable: accepting", self.index);
                    self.accept();
                }
                LISTENER => {}
                WAKER => log::trace!("loop {}: woken", self.index),
                token => self.table.readiness(token, ready, self.now),
            }
        }
        self.scratch = scratch;
    }

    fn drain_channels(&mut self) {
        while let Ok(reply) = self.replies.try_recv() {
            let bytes = reply.output_len();
            log::trace!(
                "loop {}: reply for {} ({bytes} bytes)",
                self.index,
                reply.conn()
            );
            self.table.reply(reply, self.now);
        }
        // Bounded per turn so a flood of pushes cannot starve socket events.
        let budget = self.config.command_queue_capacity;
        for _ in 0..budget {
            match self.commands.try_recv() {
                Ok(command) => self.table.command(command, self.now),
                Err(_) => break,
            }
        }
        self.table.commands_done(self.now);
    }

    /// Sends this turn's publications of its handlers to the other loops, after what still
    /// waits for their queues.
    fn forward_publications(&mut self) {
        let publications = self.table.take_forwards();
        if !publications.is_empty() {
            self.forwarder.send(publications, &self.metrics);
        } else if self.forwarder.has_backlog() {
            self.forwarder.retry();
        }
    }

    fn check_shutdown(&mut self) {
        if self.shutdown_deadline.is_some() || !self.shutdown.load(Ordering::Acquire) {
            return;
        }
        log::info!(
            "loop {}: shutting down, closing {} connections",
            self.index,
            self.table.len()
        );
        self.shutdown_deadline = Some(deadline_after(self.now, self.config.shutdown_timeout));
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        self.table.begin_shutdown(self.now);
    }

    fn shutdown_complete(&self) -> bool {
        self.shutdown_deadline
            .is_some_and(|deadline| self.table.is_empty() || self.now >= deadline)
    }

    /// After the loop: drop what is left, make sure every owed `on_close` is queued after the
    /// job it must follow, then drop the job sender so the workers drain the queue and exit.
    pub(crate) fn finish(mut self) {
        // Pushes from now on fail with `SendError::Stopped` instead of waiting for room.
        self.commands = crossbeam_channel::never();
        let (mut owed, mut backlog) = self.table.abort_all(Instant::now());
        self.await_owed_replies(&mut owed, &mut backlog);
        // Waiting is safe here: workers never wait on their replies (unbounded channel) and
        // pushes now fail fast, so every worker keeps taking jobs.
        for job in backlog {
            if !self.table.jobs().send_waiting(job) {
                break;
            }
        }
        self.let_go_of_late_replies();
        log::debug!("loop {}: stopped", self.index);
    }

    /// The replies that came after the shutdown stopped waiting for them (a handler that ran
    /// past `shutdown_timeout`): their connections are gone, so their leases end here — and a
    /// reply that lands after this last look is dropped with the channel.
    fn let_go_of_late_replies(&mut self) {
        let mut late = 0;
        for returned in self.replies.try_iter() {
            late += 1;
            if let Some(reply) = reply_of_gone(returned) {
                reply.lease.end();
            }
        }
        if late > 0 {
            log::debug!(
                "loop {}: {late} replies came after the shutdown",
                self.index
            );
        }
        drop_with_the_loop(std::mem::replace(
            &mut self.replies,
            crossbeam_channel::never(),
        ));
    }

    /// Waits (up to `shutdown_timeout`) for the replies that settle owed `on_close` calls; those
    /// whose reply never comes are skipped.
    fn await_owed_replies(
        &self,
        owed: &mut HashMap<ConnId, OwedClose>,
        backlog: &mut VecDeque<Job>,
    ) {
        let wait_until = deadline_after(Instant::now(), self.config.shutdown_timeout);
        while !owed.is_empty() {
            let left = wait_until.saturating_duration_since(Instant::now());
            let Ok(returned) = self.replies.recv_timeout(left) else {
                log::warn!(
                    "{} handler jobs did not finish; their on_close calls are skipped",
                    owed.len()
                );
                owed.drain().for_each(|(_, owed)| owed.skip());
                return;
            };
            let Some(mut reply) = reply_of_gone(returned) else {
                continue;
            };
            if let Some(owed) = owed.remove(&reply.conn())
                && let Some(job) = owed.settle(&mut reply)
            {
                backlog.push_back(job);
            }
            reply.lease.end();
        }
    }
}

/// What came back for a connection the shutdown has dropped, as the reply that carries its
/// lease: a deferred call is taken back from its completion (`None` if the completion has it:
/// its reply comes later); an out-of-order completion's closure is dropped (`None`).
fn reply_of_gone(returned: Returned) -> Option<Reply> {
    match returned {
        Returned::Reply(reply) => Some(reply),
        Returned::Deferred(deferral) => deferral
            .link
            .reclaim(Reclaimed::Closed)
            .map(|pending| pending.into_reply()),
        Returned::Unordered(_) => None,
    }
}
