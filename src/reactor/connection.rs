//! One client connection as the event loop sees it: a socket, a phase, and borrowed buffers.
//!
//! A `Connection` lives in the loop's slab under the key that is also its mio `Token`. Its
//! [`Phase`] is the protocol state machine:
//!
//! ```text
//!   Http ──valid upgrade──> Upgrading ──101 written──> Open ──close sent──> Closing
//!    │                          │ rejected              │ close received      │ close received
//!    └──Connection: close / 4xx─┴──────────────────────>┴──────────────> Lingering ──EOF──> closed
//! ```
//!
//! `Lingering` is the polite end of every path: flush what is queued, send FIN, read and discard
//! until the peer closes too (or `close_timeout` passes), so our last bytes are not destroyed by
//! a reset. This module holds the state and the socket-level steps (read into the read buffer,
//! write from the write buffer, keep the registered interest in step); `drive.rs` decides what
//! happens next.

use std::io::IoSlice;
use std::time::Instant;

use mio::Interest;
use mio::net::TcpStream;

use crate::dispatch::{ConnId, Job};
use crate::handler::CloseInfo;
use crate::http::RequestParser;
use crate::metrics::{CloseKind, add, sub};
use crate::reactor::buffer_pool::{MAX_SLICES, ReadBuffer, WriteBuffer};
use crate::reactor::event_loop::Core;
use crate::reactor::io::{self, IoOutcome};
use crate::ws::{Message, MessageDecoder};

/// Where a connection is in its protocol life.
#[derive(Debug)]
pub(crate) enum Phase {
    /// Reading HTTP/1.1 requests (keep-alive, pipelining).
    Http { parser: RequestParser },
    /// A valid upgrade request is with the handler (`on_upgrade`); reading waits.
    Upgrading,
    /// A WebSocket connection. `close_received` is set once the peer's close frame arrived: the
    /// loop answers it once the messages before it are handled.
    Open {
        decoder: MessageDecoder,
        close_received: bool,
    },
    /// We sent a close frame and read until the peer's close frame arrives.
    Closing { decoder: MessageDecoder },
    /// Flush, send FIN, discard input until EOF.
    Lingering,
}

impl Phase {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Phase::Http { .. } => "Http",
            Phase::Upgrading => "Upgrading",
            Phase::Open { .. } => "Open",
            Phase::Closing { .. } => "Closing",
            Phase::Lingering => "Lingering",
        }
    }
}

/// What a read attempt found.
#[derive(Debug)]
pub(crate) enum ReadResult {
    /// Bytes were added to the read buffer.
    Data,
    /// Nothing more for now (`WouldBlock`): wait for the next readiness event.
    Drained,
    /// The read buffer is at its size limit: process before reading more.
    BufferFull,
    /// The peer sent FIN.
    Eof,
    /// Reset or error: the connection is dead.
    Failed,
}

/// One client connection.
#[derive(Debug)]
pub(crate) struct Connection {
    pub id: ConnId,
    pub socket: TcpStream,
    pub phase: Phase,
    /// The interest registered with the poller now (READABLE, plus WRITABLE while output waits).
    pub registered: Interest,
    /// The last readiness event said readable and no read has hit `WouldBlock` since. With
    /// edge-triggered polling no new event comes until we drain, so this is remembered here.
    pub readable: bool,
    /// The peer sent FIN (read returned 0).
    pub peer_eof: bool,
    /// FIN sent (`shutdown(Write)`), in `Lingering`.
    pub fin_sent: bool,
    /// A job for this connection is with a worker: at most one at a time.
    pub job_in_flight: bool,
    /// A job that found the job queue full; it goes first when there is room.
    pub stalled: Option<Box<Job>>,
    /// Messages decoded while the previous job runs.
    pub pending: Vec<Message>,
    pub pending_bytes: usize,
    /// Pushes that arrived while the upgrade was with the handler: written after the `101`.
    /// Boxed on purpose: 8 bytes instead of 24 in every connection, for a rare case.
    #[allow(clippy::box_collection)]
    pub early_output: Option<Box<Vec<u8>>>,
    pub input: Option<ReadBuffer>,
    pub output: Option<WriteBuffer>,
    /// The timer-heap entry that counts (see `deadline.rs`); other entries for it are stale.
    pub deadline: Option<Instant>,
    /// When the current phase began (an open WebSocket's age, for `max_lifetime`).
    pub phase_since: Instant,
    /// When the current wait began: in `Http`, the last response drained or the first byte of
    /// a request arrived; in `Closing`/`Lingering`, the last output drained.
    pub wait_since: Instant,
    /// When bytes last arrived (keepalive pings go to connections silent since then).
    pub last_read: Instant,
    /// When our keepalive ping went out, until anything arrives.
    pub ping_sent: Option<Instant>,
    /// Since when pending output has made no progress (write-stall timeout).
    pub write_blocked_since: Option<Instant>,
    /// At least one HTTP response was written: an idle wait is keep-alive, not a new request.
    pub served: bool,
    /// `on_open` ran, so exactly one `on_close` is owed.
    pub upgraded: bool,
    /// How the WebSocket ended, for `on_close` (`None` until decided: `1006` by default).
    pub close_info: Option<Box<CloseInfo>>,
    /// Why the server is ending this connection, for the stats.
    pub end_kind: CloseKind,
}

impl Connection {
    pub(crate) fn new(id: ConnId, socket: TcpStream, now: Instant) -> Self {
        Connection {
            id,
            socket,
            phase: Phase::Http {
                parser: RequestParser::new(),
            },
            registered: Interest::READABLE,
            readable: false,
            peer_eof: false,
            fin_sent: false,
            job_in_flight: false,
            stalled: None,
            pending: Vec::new(),
            pending_bytes: 0,
            early_output: None,
            input: None,
            output: None,
            deadline: None,
            phase_since: now,
            wait_since: now,
            last_read: now,
            ping_sent: None,
            write_blocked_since: None,
            served: false,
            upgraded: false,
            close_info: None,
            end_kind: CloseKind::Clean,
        }
    }

    /// Bytes waiting to be written.
    pub(crate) fn output_len(&self) -> usize {
        self.output.as_ref().map_or(0, WriteBuffer::len)
    }

    /// No job in flight or waiting, no messages held: the connection's handler work is done.
    pub(crate) fn is_idle(&self) -> bool {
        !self.job_in_flight && self.stalled.is_none() && self.pending.is_empty()
    }

    /// Records how the WebSocket ended, unless that was already decided.
    pub(crate) fn set_close_info(&mut self, info: CloseInfo) {
        if self.close_info.is_none() {
            self.close_info = Some(Box::new(info));
        }
    }

    /// Moves to `phase` at `now` (its clocks start), narrating the transition at trace level.
    pub(crate) fn enter(&mut self, phase: Phase, now: Instant) {
        log::trace!("{}: {} -> {}", self.id, self.phase.name(), phase.name());
        self.phase = phase;
        self.phase_since = now;
        self.wait_since = now;
    }

    /// Queues bytes for the socket (taking a write buffer from the pool if none is held).
    pub(crate) fn queue(&mut self, core: &mut Core, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        add(&core.metrics.pending_outbound_bytes, bytes.len() as u64);
        let pool = &mut core.pool;
        self.output
            .get_or_insert_with(|| pool.take_write())
            .extend(bytes, pool);
    }

    /// Like [`queue`](Self::queue), taking ownership of the bytes: a large payload is queued
    /// as is and written from its own buffer (no copy).
    pub(crate) fn queue_vec(&mut self, core: &mut Core, bytes: Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        add(&core.metrics.pending_outbound_bytes, bytes.len() as u64);
        let pool = &mut core.pool;
        self.output
            .get_or_insert_with(|| pool.take_write())
            .append_vec(bytes, pool);
    }

    /// Reads once into the read buffer, which may grow up to `max_len` bytes.
    pub(crate) fn read_once(&mut self, core: &mut Core, max_len: usize) -> ReadResult {
        let input = self.input.get_or_insert_with(|| core.pool.take_read());
        let spare = input.spare(max_len);
        if spare.is_empty() {
            return ReadResult::BufferFull;
        }
        match io::read(&mut self.socket, spare) {
            IoOutcome::Progress(n) => {
                if input.is_empty() && matches!(self.phase, Phase::Http { .. }) {
                    // The first byte of a request: `request_timeout` counts from here.
                    self.wait_since = core.now;
                }
                input.filled(n);
                self.last_read = core.now;
                self.ping_sent = None;
                add(&core.metrics.bytes_in, n as u64);
                log::trace!("{}: read {n} bytes", self.id);
                ReadResult::Data
            }
            IoOutcome::WouldBlock => ReadResult::Drained,
            IoOutcome::Closed => {
                log::trace!("{}: read EOF", self.id);
                ReadResult::Eof
            }
            IoOutcome::Failed(err) => {
                log::debug!("{}: read failed: {err}", self.id);
                ReadResult::Failed
            }
        }
    }

    /// Writes queued bytes until done or `WouldBlock`, keeping the write-stall clock: it runs
    /// from the last write that made progress while output remains. `Err`: the peer is gone.
    pub(crate) fn flush(&mut self, core: &mut Core) -> Result<(), ()> {
        let before = self.output_len();
        self.write_all(core)?;
        let after = self.output_len();
        if after == 0 {
            self.write_blocked_since = None;
            if before > 0 && !matches!(self.phase, Phase::Open { .. }) {
                self.wait_since = core.now;
            }
        } else if after < before || self.write_blocked_since.is_none() {
            self.write_blocked_since = Some(core.now);
        }
        Ok(())
    }

    fn write_all(&mut self, core: &mut Core) -> Result<(), ()> {
        let Some(output) = self.output.as_mut() else {
            return Ok(());
        };
        while !output.is_empty() {
            // One chunk: a plain write; several: one writev for all of them.
            let outcome = if output.chunk_count() == 1 {
                io::write(&mut self.socket, output.front())
            } else {
                let mut slices = [IoSlice::new(&[]); MAX_SLICES];
                let used = output.slices(&mut slices);
                io::write_vectored(&mut self.socket, &slices[..used])
            };
            match outcome {
                IoOutcome::Progress(n) => {
                    output.advance(n, &mut core.pool);
                    add(&core.metrics.bytes_out, n as u64);
                    sub(&core.metrics.pending_outbound_bytes, n as u64);
                    log::trace!("{}: wrote {n} bytes", self.id);
                }
                IoOutcome::WouldBlock => break,
                IoOutcome::Closed => return Err(()),
                IoOutcome::Failed(err) => {
                    log::debug!("{}: write failed: {err}", self.id);
                    return Err(());
                }
            }
        }
        Ok(())
    }

    /// Gives drained buffers back to the pool: an idle connection holds none.
    pub(crate) fn release_buffers(&mut self, core: &mut Core) {
        if self.input.as_ref().is_some_and(ReadBuffer::is_empty) {
            if let Some(buf) = self.input.take() {
                core.pool.give_read(buf);
            }
        }
        if self.output.as_ref().is_some_and(WriteBuffer::is_empty) {
            if let Some(buf) = self.output.take() {
                core.pool.give_write(buf);
            }
        }
    }

    /// Registers WRITABLE interest only while output is pending, re-registering only when the
    /// wanted interest differs from the registered one (no syscall on the common path, where a
    /// reply is written at once).
    pub(crate) fn update_interest(&mut self, core: &Core) -> std::io::Result<()> {
        let wanted = if self.output_len() > 0 {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        if wanted != self.registered {
            let token = mio::Token(self.id.index());
            core.registry.reregister(&mut self.socket, token, wanted)?;
            log::trace!(
                "{}: interest {:?} -> {:?}",
                self.id,
                self.registered,
                wanted
            );
            self.registered = wanted;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Memory per idle connection is a headline number: the slab entry is all an idle upgraded
    /// connection costs in user space (no buffers, an 8-byte decoder).
    #[test]
    fn an_idle_connection_is_small() {
        let size = std::mem::size_of::<Connection>();
        eprintln!("size_of::<Connection>() = {size}");
        assert!(size <= 320, "Connection grew to {size} bytes");
    }
}
