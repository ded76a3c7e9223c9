//! [`ServerHandle`]: the thread-safe way into a running server from anywhere.
//!
//! A handle encodes a message into frame bytes on the caller's thread, puts a [`Command`] on the
//! loop's bounded command queue, and rings the loop's waker. The loop applies commands between
//! readiness events: a send to a [`ConnId`] whose generation no longer matches is dropped and
//! counted, never delivered to whoever now holds that slab slot.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::dispatch::{ConnId, Job};
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

/// What every handle shares with the loop and the workers.
#[derive(Debug)]
pub(crate) struct Shared {
    pub commands: Sender<Command>,
    pub waker: Arc<LoopWaker>,
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

    /// Sends `message` to the connection `conn`, waiting for room in the command queue if it is
    /// full. A message for a connection that has closed is dropped by the loop (and counted in
    /// [`Stats::stale_replies_dropped`]).
    pub fn send(&self, conn: ConnId, message: impl Into<Message>) -> Result<(), SendError> {
        let bytes = encode(message.into());
        self.submit(Command::Send { conn, bytes })
    }

    /// Like [`send`](Self::send), but fails with [`SendError::Full`] instead of waiting.
    pub fn try_send(&self, conn: ConnId, message: impl Into<Message>) -> Result<(), SendError> {
        let bytes = encode(message.into());
        self.try_submit(Command::Send { conn, bytes })
    }

    /// Sends `message` to every open WebSocket connection (encoded once, copied per connection).
    pub fn broadcast(&self, message: impl Into<Message>) -> Result<(), SendError> {
        let bytes: Arc<[u8]> = encode(message.into()).into();
        self.submit(Command::Broadcast { bytes })
    }

    /// Starts the close handshake with `conn` (its `on_close` follows).
    pub fn close(&self, conn: ConnId, code: CloseCode, reason: &str) -> Result<(), SendError> {
        let frame = CloseFrame {
            code,
            reason: reason.to_owned(),
        };
        self.submit(Command::Close { conn, frame })
    }

    /// Starts a graceful shutdown and returns at once: the loop stops accepting, sends close
    /// `1001` to every WebSocket, waits for the close handshakes up to
    /// [`Config::shutdown_timeout`](crate::Config::shutdown_timeout), lets queued jobs finish,
    /// and ends every thread. Use [`Server::join`](crate::Server::join) to wait for that.
    pub fn shutdown(&self) {
        self.shared.shutdown.store(true, Ordering::Release);
        self.shared.waker.wake();
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

    fn submit(&self, command: Command) -> Result<(), SendError> {
        if self.shutdown_requested() {
            return Err(SendError::Stopped);
        }
        self.shared
            .commands
            .send(command)
            .map_err(|_| SendError::Stopped)?;
        self.shared.waker.wake();
        Ok(())
    }

    fn try_submit(&self, command: Command) -> Result<(), SendError> {
        if self.shutdown_requested() {
            return Err(SendError::Stopped);
        }
        self.shared
            .commands
            .try_send(command)
            .map_err(|err| match err {
                TrySendError::Full(_) => SendError::Full,
                TrySendError::Disconnected(_) => SendError::Stopped,
            })?;
        self.shared.waker.wake();
        Ok(())
    }
}

fn encode(message: Message) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(message.len() + 10);
    encode_frame(&mut bytes, message.opcode(), message.as_bytes());
    bytes
}
