//! A whole event loop's connection core without sockets, for unit tests and the fuzz target.
//!
//! [`Harness`] owns a [`ConnectionTable`] over in-memory wires (`transport/memory.rs`), a poller
//! that only records interest, and a job queue the test empties by hand — running each job
//! through a small echo application ([`TestApp`]) and feeding its reply back, as a worker would.
//! The test plays the peers (bytes, chunking, EOF, resets, a peer that stops reading), the
//! clock (`advance`), the workers (`run_jobs`, with a queue capacity it chooses) and the poller
//! (readiness is delivered after every change of a wire, edge-triggered: once per change).
//! Everything is deterministic: no threads, no sleeps, no real time. What must hold after every
//! step — the budget, the bounds, the interest, the order of the application's events — is
//! checked by `check.rs`; what a `ServerHandle` sends the loop is played by `handle.rs`.
//!
//! With the `fuzzing` feature this module is public as `wsreactor::fuzzing`.

mod app;
mod check;
mod client;
mod commands;
mod handle;
mod script;
#[cfg(test)]
mod tests;
mod unordered;
mod unordered_cell;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Interest, Token};

use crate::config::{Config, deadline_after};
use crate::conn_id::ConnId;
use crate::dispatch::{Job, JobRunner, Returned};
use crate::metrics::{Admission, Metrics, Stats};
use crate::netpoller::{ConnectionTable, Readiness};
use crate::transport::memory::{MemoryTransport, Wire};
use crate::ws::{CloseCode, Message};
use check::EventAudit;

pub use app::{AppEvent, TestApp};
pub(crate) use app::{ManualQueue, RecordingPoller};
pub use client::{
    client_fragment, client_frame, compressed_hello, masked_frame, upgrade_request,
    upgrade_request_offering,
};
pub use script::{fuzz_config, random_script, run_script};

/// One simulated peer: its wire and the connection it became.
#[derive(Debug)]
struct Peer {
    wire: Wire,
    id: ConnId,
    admission: Admission,
}

/// An event loop's connection core with in-memory peers, a hand-driven clock and hand-run jobs.
#[derive(Debug)]
pub struct Harness {
    table: ConnectionTable<MemoryTransport, RecordingPoller, ManualQueue>,
    peers: Vec<Peer>,
    app: Arc<TestApp>,
    config: Arc<Config>,
    metrics: Arc<Metrics>,
    now: Instant,
    audit: RefCell<EventAudit>,
}

impl Harness {
    /// A core with `config` (its `addr`, `workers` and `event_loops` do not matter) and a job
    /// queue of `job_queue_capacity` jobs that nobody empties until [`run_jobs`](Self::run_jobs).
    pub fn new(config: Config) -> Self {
        let inline = config.inline_handlers;
        Harness::build(config, inline)
    }

    fn build(config: Config, inline: bool) -> Self {
        let config = Arc::new(config);
        let metrics = Arc::new(Metrics::default());
        let mut app = TestApp::with_timer_limit(config.max_timers_per_connection);
        app.unordered_limit = config.max_unordered_per_connection;
        let app = Arc::new(app);
        let queue = ManualQueue {
            jobs: VecDeque::new(),
            capacity: config.job_queue_capacity,
            inline: inline.then(|| Arc::clone(&app)),
        };
        let table = ConnectionTable::new(
            0,
            Arc::clone(&config),
            Arc::clone(&metrics),
            RecordingPoller::default(),
            queue,
        );
        Harness {
            table,
            peers: Vec::new(),
            app,
            config,
            metrics,
            now: Instant::now(),
            audit: RefCell::default(),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A new peer connects; returns its number.
    pub fn connect(&mut self) -> usize {
        self.admit(Admission::Ordinary)
    }

    /// A new peer connects while the server is full, and gets a place on the monitoring
    /// reserve (as the accept path gives one, `netpoller/accept.rs`); returns its number.
    pub fn connect_to_reserve(&mut self) -> usize {
        self.admit(Admission::MonitoringReserve)
    }

    fn admit(&mut self, admission: Admission) -> usize {
        let (wire, transport) = Wire::pair();
        let count = match admission {
            Admission::Ordinary => &self.metrics.connections_open,
            Admission::MonitoringReserve => &self.metrics.monitoring_open,
        };
        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let peer = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 40_000)));
        let id = match self.table.admit(transport, peer, self.now, admission) {
            Ok(id) => id,
            Err(err) => unreachable!("the recording poller never fails: {err}"),
        };
        self.peers.push(Peer {
            wire,
            id,
            admission,
        });
        self.peers.len() - 1
    }

    /// The connection id peer `peer` became.
    pub fn id(&self, peer: usize) -> ConnId {
        self.peers[peer].id
    }

    /// Peer `peer` sends `bytes`; the poller reports it readable, and the loop takes a turn.
    pub fn send(&mut self, peer: usize, bytes: &[u8]) {
        self.put(peer, bytes);
        self.readable(peer);
    }

    /// Peer `peer`'s bytes reach the socket, but no readiness event is delivered yet.
    pub fn put(&mut self, peer: usize, bytes: &[u8]) {
        self.peers[peer].wire.send(bytes);
    }

    /// Delivers a readable event for peer `peer` alone, without the rest of the loop's turn.
    pub fn notify_readable(&mut self, peer: usize) {
        let id = self.peers[peer].id;
        let ready = Readiness {
            readable: true,
            ..Readiness::default()
        };
        self.table.readiness(Token(id.index()), ready, self.now);
    }

    /// Delivers a readable event for peer `peer` that also says its side is closed (the
    /// poller's read-closed, or an error), then the rest of the loop's turn.
    fn read_closed(&mut self, peer: usize) {
        let id = self.peers[peer].id;
        let ready = Readiness {
            readable: true,
            read_closed: true,
        };
        self.table.readiness(Token(id.index()), ready, self.now);
        self.turn();
    }

    /// Reads of peer `peer`'s connection return at most `bytes` bytes each.
    pub fn set_read_chunk(&mut self, peer: usize, bytes: usize) {
        self.peers[peer].wire.with(|w| w.read_chunk = bytes.max(1));
    }

    /// Peer `peer`'s transport holds output like TLS does (see `transport/memory.rs`).
    pub fn set_buffering_transport(&mut self, peer: usize) {
        self.peers[peer].wire.with(|w| w.holds_output = true);
    }

    /// Peer `peer` sends FIN.
    pub fn peer_eof(&mut self, peer: usize) {
        self.peers[peer].wire.with(|w| w.peer_eof = true);
        self.read_closed(peer);
    }

    /// Peer `peer`'s connection is reset (`ECONNRESET`: read as EOF, then writes fail).
    pub fn reset(&mut self, peer: usize) {
        self.peers[peer].wire.with(|w| w.reset = true);
        self.read_closed(peer);
    }

    /// Peer `peer`'s socket fails with an error (`ETIMEDOUT`): the connection is dropped.
    pub fn fail(&mut self, peer: usize) {
        self.peers[peer].wire.with(|w| w.failed = true);
        self.read_closed(peer);
    }

    /// Peer `peer` lets only `bytes` more bytes into its socket until it reads again (0: it
    /// stopped reading).
    pub fn set_write_room(&mut self, peer: usize, bytes: usize) {
        self.peers[peer].wire.with(|w| w.write_room = bytes);
        self.writable(peer);
    }

    /// A readiness event saying readable, as the poller would deliver it, then the rest of the
    /// loop's turn.
    pub fn readable(&mut self, peer: usize) {
        self.notify_readable(peer);
        self.turn();
    }

    /// A readiness event saying writable, if the connection's interest includes it.
    pub fn writable(&mut self, peer: usize) {
        let id = self.peers[peer].id;
        let token = Token(id.index());
        if self.interest(peer).is_some_and(Interest::is_writable) {
            self.table.readiness(token, Readiness::default(), self.now);
        }
        self.turn();
    }

    /// What peer `peer` has received so far (taken: the next call returns only what is new).
    pub fn take_output(&mut self, peer: usize) -> Vec<u8> {
        self.peers[peer].wire.take_output()
    }

    /// How many write calls the server has made to peer `peer`'s socket.
    pub fn write_calls(&self, peer: usize) -> usize {
        self.peers[peer].wire.with(|w| w.writes)
    }

    /// Has the server sent FIN to peer `peer`?
    pub fn fin_received(&self, peer: usize) -> bool {
        self.peers[peer].wire.with(|w| w.fin_received)
    }

    /// Reads of peer `peer`'s connection that found nothing (`WouldBlock`) so far.
    pub fn empty_reads(&self, peer: usize) -> usize {
        self.peers[peer].wire.with(|w| w.empty_reads)
    }

    /// Reads of peer `peer`'s connection that brought bytes so far.
    pub fn reads(&self, peer: usize) -> usize {
        self.peers[peer].wire.with(|w| w.reads)
    }

    /// Bytes of peer `peer` the server has not read yet.
    pub fn unread(&self, peer: usize) -> usize {
        self.peers[peer].wire.with(|w| w.inbound.len())
    }

    /// The interest registered for peer `peer`'s connection, if it is still open.
    pub fn interest(&self, peer: usize) -> Option<Interest> {
        let id = self.peers[peer].id;
        self.table.session(id)?;
        self.table
            .poller()
            .interest
            .get(&Token(id.index()))
            .copied()
    }

    /// The phase of peer `peer`'s connection (`None` once it is closed and removed).
    pub fn phase(&self, peer: usize) -> Option<&'static str> {
        self.table
            .session(self.peers[peer].id)
            .map(|session| session.phase_name())
    }

    /// Moves the clock forward and runs the loop's timed work (deadlines, fairness, retries).
    /// A jump past a century (`Duration::MAX` included) is taken as a century, like every
    /// configured duration.
    pub fn advance(&mut self, by: Duration) {
        self.now = deadline_after(self.now, by);
        self.turn();
    }

    /// What the loop does after its events each turn: the ready list, the timers, the held jobs.
    pub fn turn(&mut self) {
        self.table.run_ready(self.now);
        self.table.fire_timers(self.now);
        self.table.retry_held(self.now);
        self.table.keep_budget(self.now);
        self.table.report_gauges();
    }

    /// Jobs waiting in the queue.
    pub fn queued_jobs(&self) -> usize {
        self.table.jobs().jobs.len()
    }

    /// Runs up to `n` queued jobs, oldest first, delivering each reply as a worker would, then
    /// lets the loop take a turn. Returns how many ran.
    pub fn run_jobs(&mut self, n: usize) -> usize {
        let mut ran = 0;
        while ran < n {
            let Some(job) = self.table.jobs_mut().jobs.pop_front() else {
                break;
            };
            ran += 1;
            if let Some(reply) = self.app.run(job) {
                self.table.reply(reply, self.now);
            }
        }
        self.turn();
        ran
    }

    /// Runs queued jobs until none is left.
    pub fn run_all_jobs(&mut self) {
        while self.run_jobs(usize::MAX) > 0 {}
    }

    /// Completes the oldest deferred call of the test application with the text `text` (sent,
    /// like a handler's echo), as a completion on another thread would. False if the call was
    /// taken back already (its deadline, or its connection's close).
    pub fn complete_deferred(&mut self, text: &str) -> bool {
        let Some(pending) = self.start_completion() else {
            return false;
        };
        self.finish_completion(pending, text);
        true
    }

    /// A completion takes the oldest deferred call, and runs (until
    /// [`finish_completion`](Self::finish_completion)): `None` if the loop took it back first.
    pub fn start_completion(&mut self) -> Option<PendingCompletion> {
        let cell = self.app.deferred.lock().ok()?.pop_front()?;
        cell.take().map(PendingCompletion)
    }

    /// The completion sends `text` and its reply reaches the loop.
    pub fn finish_completion(&mut self, completion: PendingCompletion, text: &str) {
        let mut pending = completion.0;
        pending.output.push_message(Message::from(text));
        let reply = Returned::Reply(pending.into_reply());
        self.table.reply(reply, self.now);
        self.turn();
    }

    /// Takes the oldest queued job out without running it (to deliver its reply late, or never).
    pub fn steal_job(&mut self) -> Option<PendingJob> {
        self.table.jobs_mut().jobs.pop_front().map(PendingJob)
    }

    /// Runs a job taken with [`steal_job`](Self::steal_job) now and delivers its reply.
    pub fn finish_job(&mut self, job: PendingJob) {
        if let Some(reply) = self.app.run(job.0) {
            self.table.reply(reply, self.now);
        }
        self.turn();
    }

    /// The topics peer `peer`'s connection is subscribed to, sorted.
    pub fn subscriptions(&self, peer: usize) -> Vec<String> {
        self.table.topics_of(self.peers[peer].id)
    }

    /// From now on, the publications of the handlers are kept for other loops, as with several
    /// event loops ([`take_forwarded`](Self::take_forwarded)).
    pub fn forward_to_other_loops(&mut self) {
        self.table.forward_publications(true);
    }

    /// The publications kept for the other loops so far: (topic, frame bytes, frame address),
    /// in order.
    pub fn take_forwarded(&mut self) -> Vec<(String, Vec<u8>, usize)> {
        self.table
            .take_forwards()
            .into_iter()
            .map(|p| {
                (
                    p.topic.to_string(),
                    p.frame.to_vec(),
                    p.frame.as_ptr() as usize,
                )
            })
            .collect()
    }

    /// Where the bytes queued for peer `peer` are, as (address, length) of each slice the next
    /// `writev` would send: which chunks are shared with other connections.
    pub fn queued_slices(&self, peer: usize) -> Vec<(usize, usize)> {
        let Some(output) = self
            .table
            .session(self.peers[peer].id)
            .and_then(|session| session.output())
        else {
            return Vec::new();
        };
        let mut slices = [std::io::IoSlice::new(&[]); crate::buffer::MAX_SLICES];
        let used = output.slices(&mut slices);
        slices[..used]
            .iter()
            .map(|slice| (slice.as_ptr() as usize, slice.len()))
            .collect()
    }

    /// Starts a graceful shutdown.
    pub fn shutdown(&mut self) {
        self.table.begin_shutdown(self.now);
        self.turn();
    }

    /// What the event loop does when its shutdown timeout has passed: drop every connection
    /// left, let the workers finish the queued jobs, and deliver each owed `on_close` once the
    /// reply it waited for is in (`EventLoop::finish`).
    pub fn finish(&mut self) {
        let (mut owed, backlog) = self.table.abort_all(self.now);
        let mut closes: Vec<Job> = backlog.into();
        while let Some(job) = self.table.jobs_mut().jobs.pop_front() {
            let Some(Returned::Reply(mut reply)) = self.app.run(job) else {
                continue;
            };
            if let Some(owed) = owed.remove(&reply.conn())
                && let Some(job) = owed.settle(&mut reply)
            {
                closes.push(job);
            }
            reply.lease.end();
        }
        owed.into_iter().for_each(|(_, owed)| owed.skip());
        for job in closes {
            self.app.run(job);
        }
    }

    /// Peers connected so far (open or not).
    pub fn peers(&self) -> usize {
        self.peers.len()
    }

    /// Connections in the table.
    pub fn open_connections(&self) -> usize {
        self.table.len()
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        let mut stats = self.metrics.snapshot();
        stats.job_queue_depth = self.queued_jobs() as u64;
        stats
    }

    /// What the application saw, in order.
    pub fn app_events(&self) -> Vec<AppEvent> {
        self.app.events()
    }

    /// The messages `on_message` was given for peer `peer`'s WebSocket, in order.
    pub fn messages_handled(&self, peer: usize) -> Vec<Message> {
        let id = self.peers[peer].id;
        let messages = self.app.events().into_iter().filter_map(|e| match e {
            AppEvent::Message(c, message) if c == id => Some(message),
            _ => None,
        });
        messages.collect()
    }

    /// The code `on_close` was given for peer `peer`'s WebSocket, if it ran.
    pub fn close_code(&self, peer: usize) -> Option<CloseCode> {
        let id = self.peers[peer].id;
        self.app.events().into_iter().find_map(|e| match e {
            AppEvent::Close(c, code) if c == id => Some(code),
            _ => None,
        })
    }
}

/// A deferred call a completion has taken, to finish later.
#[derive(Debug)]
pub struct PendingCompletion(crate::dispatch::Pending);

/// A job taken out of the queue by the test, to finish later.
#[derive(Debug)]
pub struct PendingJob(Job);

impl PendingJob {
    /// The job is lost for good, as if its worker had died: its lease ends here (dropping a
    /// job with its lease is what the core's checks catch as a bug).
    pub fn abandon(self) {
        if let Job::Run(run) = self.0 {
            run.lease.end();
        }
    }
}
