//! [`ServerHandle`]: the thread-safe way into a running server from anywhere.
//!
//! A handle encodes a message into frame bytes on the caller's thread, puts a [`Command`] on the
//! loop's bounded command queue, and rings the loop's waker. The loop applies commands between
//! readiness events: a send to a [`ConnId`] whose generation no longer matches is dropped and
//! counted, never delivered to whoever now holds that slab slot.

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::dispatch::{ConnId, Job, Reply};
use crate::error::SendError;
use crate::http::{Request, Response};
use crate::metrics::{Metrics, Stats};
use crate::prometheus;
use crate::reactor::LoopWaker;
use crate::ws::{CloseCode, CloseFrame, Message, encode_frame};

/// A request from another thread for the event loop.
#[derive(Debug)]
pub(crate) enum Command {
    /// Write these encoded frames (`messages` data messages) to one connection.
    Send { conn: ConnId, bytes: Vec<u8> },
    /// Start the close handshake on one connection.
    Close { conn: ConnId, frame: CloseFrame },
    /// Write these encoded frames to every open WebSocket connection.
    Broadcast { bytes: Arc<[u8]> },
}

/// The ways into one event loop: its command and reply channels and its waker.
#[derive(Debug)]
pub(crate) struct LoopLink {
    /// Pushes from handles (bounded).
    pub commands: Sender<Command>,
    /// Workers' replies for this loop's connections (unbounded; see `server.rs`).
    pub replies: Sender<Reply>,
    pub waker: Arc<LoopWaker>,
}

thread_local! {
    /// Set on event-loop threads: a handle used there (an inline handler) must never wait for
    /// room in a command queue that only that same thread drains.
    static ON_LOOP_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Marks the current thread as an event-loop thread.
pub(crate) fn mark_loop_thread() {
    ON_LOOP_THREAD.with(|flag| flag.set(true));
}

/// What every handle shares with the loops and the workers.
#[derive(Debug)]
pub(crate) struct Shared {
    /// One link per event loop, indexed by [`ConnId::event_loop`].
    pub loops: Vec<LoopLink>,
    pub metrics: Arc<Metrics>,
    /// Kept only to read the job queue's depth for [`Stats`].
    pub jobs: Receiver<Job>,
    pub shutdown: AtomicBool,
    pub local_addr: SocketAddr,
    /// [`Config::metrics_path`](crate::Config::metrics_path).
    pub metrics_path: Option<String>,
    /// [`Config::health_path`](crate::Config::health_path).
    pub health_path: Option<String>,
}

/// A cheap, cloneable, thread-safe handle to a running server: push messages to connections,
/// broadcast, close, read [`Stats`], shut down.
///
/// Sends are asynchronous: `Ok` means the loop has the message, not that the client has read it.
#[derive(Debug, Clone)]
pub struct ServerHandle {
    shared: Arc<Shared>,
}

impl ServerHandle {
    pub(crate) fn new(shared: Shared) -> Self {
        ServerHandle {
            shared: Arc::new(shared),
        }
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    pub(crate) fn metrics_arc(&self) -> Arc<Metrics> {
        Arc::clone(&self.shared.metrics)
    }

    pub(crate) fn shutdown_requested(&self) -> bool {
        self.shared.shutdown.load(Ordering::Acquire)
    }

    /// The link to the loop that owns `conn`, and that loop's waker.
    pub(crate) fn link(&self, conn: ConnId) -> &LoopLink {
        // Every ConnId is made by a loop of this server, so the index is in range; fall back to
        // loop 0 rather than panic on an id forged by hand (it is then dropped as stale).
        let links = &self.shared.loops;
        links.get(conn.event_loop()).unwrap_or(&links[0])
    }

    /// Sends `message` to the connection `conn`, waiting for room in the command queue if it is
    /// full (on an event-loop thread, in an inline handler, it fails with [`SendError::Full`]
    /// instead: that queue is drained by the very thread that would wait). A message for a
    /// connection that has closed is dropped by the loop (and counted in
    /// [`Stats::stale_replies_dropped`]).
    pub fn send(&self, conn: ConnId, message: impl Into<Message>) -> Result<(), SendError> {
        let bytes = encode(message.into());
        self.submit(self.link(conn), Command::Send { conn, bytes }, true)
    }

    /// Like [`send`](Self::send), but fails with [`SendError::Full`] instead of waiting.
    pub fn try_send(&self, conn: ConnId, message: impl Into<Message>) -> Result<(), SendError> {
        let bytes = encode(message.into());
        self.submit(self.link(conn), Command::Send { conn, bytes }, false)
    }

    /// Sends `message` to every open WebSocket connection (encoded once, copied per connection).
    pub fn broadcast(&self, message: impl Into<Message>) -> Result<(), SendError> {
        let bytes: Arc<[u8]> = encode(message.into()).into();
        for link in &self.shared.loops {
            let bytes = Arc::clone(&bytes);
            self.submit(link, Command::Broadcast { bytes }, true)?;
        }
        Ok(())
    }

    /// Starts the close handshake with `conn` (its `on_close` follows).
    pub fn close(&self, conn: ConnId, code: CloseCode, reason: &str) -> Result<(), SendError> {
        let frame = CloseFrame {
            code,
            reason: reason.to_owned(),
        };
        self.submit(self.link(conn), Command::Close { conn, frame }, true)
    }

    /// Starts a graceful shutdown and returns at once: the loop stops accepting, sends close
    /// `1001` to every WebSocket, waits for the close handshakes up to
    /// [`Config::shutdown_timeout`](crate::Config::shutdown_timeout), lets queued jobs finish,
    /// and ends every thread. Use [`Server::join`](crate::Server::join) to wait for that.
    pub fn shutdown(&self) {
        self.shared.shutdown.store(true, Ordering::Release);
        for link in &self.shared.loops {
            link.waker.wake();
        }
    }

    /// A copy of the server's counters now.
    pub fn stats(&self) -> Stats {
        self.shared.metrics.snapshot(self.shared.jobs.len())
    }

    /// The address the server listens on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// The server's own answer for the opt-in metrics and health paths, if `request` is for one.
    pub(crate) fn builtin_response(&self, request: &Request) -> Option<Response> {
        let path = Some(request.path());
        if path == self.shared.metrics_path.as_deref() {
            let body = prometheus::render(&self.stats());
            return Some(
                Response::new(200)
                    .with_header("Content-Type", prometheus::CONTENT_TYPE)
                    .with_body(body),
            );
        }
        if path == self.shared.health_path.as_deref() {
            return Some(if self.shutdown_requested() {
                Response::text(503, "shutting down\n")
            } else {
                Response::text(200, "ok\n")
            });
        }
        None
    }

    fn submit(&self, link: &LoopLink, command: Command, wait: bool) -> Result<(), SendError> {
        if self.shutdown_requested() {
            return Err(SendError::Stopped);
        }
        if wait && !ON_LOOP_THREAD.with(Cell::get) {
            link.commands
                .send(command)
                .map_err(|_| SendError::Stopped)?;
        } else {
            link.commands.try_send(command).map_err(|err| match err {
                TrySendError::Full(_) => SendError::Full,
                TrySendError::Disconnected(_) => SendError::Stopped,
            })?;
        }
        link.waker.wake();
        Ok(())
    }
}

fn encode(message: Message) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(message.len() + 10);
    encode_frame(&mut bytes, message.opcode(), message.as_bytes());
    bytes
}
