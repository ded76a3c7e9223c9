//! One client connection as its session sees it: a transport, a phase, a job slot, borrowed
//! buffers and a few clocks — and the byte-moving steps on them.
//!
//! Bytes enter through [`Connection::read_once`] (transport → pooled [`ReadBuffer`]) and leave
//! through [`Connection::queue`] / [`Connection::queue_vec`] / [`Connection::queue_shared`] (→
//! pooled [`WriteBuffer`]) and [`Connection::flush`] (→ transport, one `writev` for many
//! chunks). What the bytes mean is decided elsewhere: `inbound.rs` decodes them, `machine.rs` moves between phases, `drive.rs`
//! runs the steps in order. Nothing here knows a socket or a clock of its own: the transport is
//! a type parameter and every step is handed a [`Turn`] with the time.

use std::io::IoSlice;
use std::sync::Arc;
use std::time::Instant;

use mio::Interest;

use crate::buffer::{BufferPool, MAX_SLICES, ReadBuffer, WriteBuffer};
use crate::config::Config;
use crate::conn_id::ConnId;
use crate::metrics::{Admission, Metrics, add, sub};
use crate::session::phase::{Http, JobSlot, Phase};
use crate::session::pubsub::Subscriptions;
use crate::session::work::SessionBox;
use crate::transport::{IoOutcome, PeerGone, Transport};

/// What a session borrows from its event loop for one step: the time of this loop turn (one
/// clock read per turn; tests pass any instant they like), the configuration, the loop's buffer
/// pool and the shared counters, whether the server is shutting down, what the memory budget
/// allows, and the loop's registry of topics.
#[derive(Debug)]
pub(crate) struct Turn<'a> {
    pub now: Instant,
    pub config: &'a Config,
    pub pool: &'a mut BufferPool,
    pub metrics: &'a Metrics,
    pub shutting_down: bool,
    /// The server is near its memory budget (`max_buffered_bytes`): a connection that holds
    /// this many [`buffered_bytes`](Connection::buffered_bytes) or more is not read until the
    /// pressure passes. `usize::MAX` when there is no pressure.
    pub hold_limit: usize,
    /// Who subscribes to what on this loop, and where publications go (`pubsub.rs`).
    pub topics: &'a mut dyn Subscriptions,
}

/// When things last happened, for the deadlines (`deadline.rs` derives them from these).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clocks {
    /// When the current wait began: in `Http`, the last response drained or the first byte of
    /// a request arrived; in `Closing`/`Lingering`, the last output drained.
    pub wait_since: Instant,
    /// When bytes last arrived (keepalive pings go to connections silent since then).
    pub last_read: Instant,
    /// Since when pending output has made no progress (write-stall timeout).
    pub write_blocked_since: Option<Instant>,
}

/// One client connection, generic over its transport.
#[derive(Debug)]
pub(crate) struct Connection<T> {
    pub id: ConnId,
    pub transport: T,
    pub phase: Phase,
    pub job: JobSlot,
    /// The last readiness event said readable and no read has hit `WouldBlock` since. With
    /// edge-triggered polling no new event comes until we drain, so this is remembered here.
    pub readable: bool,
    pub input: Option<ReadBuffer>,
    pub output: Option<WriteBuffer>,
    pub clocks: Clocks,
    /// The handler's state for this WebSocket (`Handler::Session`, with what the runner keeps
    /// beside it), type-erased: the core only carries it. Here between jobs; with the job while
    /// one runs; to `on_close` at the end.
    pub session: Option<SessionBox>,
    /// Which count its place was taken from: a connection on the monitoring reserve is served
    /// once, for monitoring only (`monitoring_reserve.rs`).
    pub admission: Admission,
}

/// What one read attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadResult {
    /// Bytes were added to the read buffer.
    Data,
    /// Nothing more for now (`WouldBlock`): wait for the next readiness event.
    Drained,
    /// The read buffer is at its size limit: decode before reading more.
    BufferFull,
    /// The peer sent FIN.
    Eof,
    /// Reset or error: the connection is dead.
    Failed,
}

impl<T: Transport> Connection<T> {
    /// A new connection in `Http`, counted in its phase's gauge.
    pub(crate) fn new(
        id: ConnId,
        transport: T,
        peer: Option<std::net::SocketAddr>,
        now: Instant,
        metrics: &Metrics,
    ) -> Self {
        let phase = Phase::Http(Http {
            peer,
            ..Http::default()
        });
        if let Some(gauge) = phase.gauge(metrics) {
            add(gauge, 1);
        }
        Connection {
            id,
            transport,
            phase,
            job: JobSlot::Idle,
            readable: false,
            input: None,
            output: None,
            session: None,
            clocks: Clocks {
                wait_since: now,
                last_read: now,
                write_blocked_since: None,
            },
            admission: Admission::Ordinary,
        }
    }

    /// Bytes waiting to go to the peer: our queue, plus what the transport holds itself.
    pub(crate) fn output_len(&self) -> usize {
        self.output.as_ref().map_or(0, WriteBuffer::len) + self.transport.buffered_output()
    }

    /// Bytes of memory the connection holds for its peer now: its read buffer, a message the
    /// decoder assembles, messages in its inbox, its job (held, or with the handler), pushes
    /// waiting for the `101`, and its output. What the server's memory budget counts; zero
    /// for an idle connection.
    pub(crate) fn buffered_bytes(&self) -> usize {
        let input = self.input.as_ref().map_or(0, ReadBuffer::capacity);
        let job = match &self.job {
            JobSlot::Idle => 0,
            JobSlot::InFlight(bytes) => *bytes,
            JobSlot::Held(job) => job.work.held_bytes(),
        };
        let phase = match &self.phase {
            Phase::Open(open) => open.decoder.buffered_bytes() + open.inbox.bytes(),
            Phase::PeerClosed(closed) => closed.inbox.bytes(),
            Phase::Closing(closing) => closing.decoder.buffered_bytes(),
            Phase::Upgrading(upgrading) => upgrading.early.as_ref().map_or(0, |early| early.len()),
            Phase::Http(_) | Phase::Lingering(_) | Phase::Closed(_) => 0,
        };
        input + self.transport.buffered_input() + job + phase + self.output_len()
    }

    /// No job with the handler or waiting, no messages held: the handler's work is done.
    pub(crate) fn is_idle(&self) -> bool {
        matches!(self.job, JobSlot::Idle) && self.phase.inbox().is_none_or(|inbox| inbox.is_empty())
    }

    /// In `Http`: has a request begun? Its bytes wait in the read buffer, or the parser holds
    /// part of it already (a chunked body is decoded as it arrives, so the buffer may be
    /// empty mid-request). `request_timeout` runs, and answers `408`, while one has.
    pub(crate) fn request_begun(&self) -> bool {
        self.input.as_ref().is_some_and(|input| !input.is_empty())
            || matches!(&self.phase, Phase::Http(http) if http.parser.has_begun())
    }

    /// A job waits for room in the job queue.
    pub(crate) fn holds_job(&self) -> bool {
        matches!(self.job, JobSlot::Held(_))
    }

    /// The interest the poller should have for this transport: READABLE always, WRITABLE only
    /// while output waits (a write hit `WouldBlock`). In the common case a reply is written at
    /// once and the interest never changes, so no `reregister` syscall happens at all.
    pub(crate) fn wanted_interest(&self) -> Interest {
        if self.output_len() > 0 {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        }
    }

    /// Queues bytes for the peer (taking a write buffer from the pool if none is held).
    pub(crate) fn queue(&mut self, turn: &mut Turn<'_>, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        add(&turn.metrics.pending_outbound_bytes, bytes.len() as u64);
        let pool = &mut *turn.pool;
        self.output
            .get_or_insert_with(|| pool.take_write())
            .extend(bytes, &mut pool.chunks);
    }

    /// Like [`queue`](Self::queue), taking ownership of the bytes: a large payload is queued
    /// as is and written from its own buffer (no copy).
    pub(crate) fn queue_vec(&mut self, turn: &mut Turn<'_>, bytes: Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        add(&turn.metrics.pending_outbound_bytes, bytes.len() as u64);
        let pool = &mut *turn.pool;
        self.output
            .get_or_insert_with(|| pool.take_write())
            .append_vec(bytes, &mut pool.chunks);
    }

    /// Queues a frame shared with other connections (a topic publication, a broadcast): a large
    /// one by reference to the one encoded copy, a small one packed like any small frame.
    pub(crate) fn queue_shared(&mut self, turn: &mut Turn<'_>, frame: &Arc<[u8]>) {
        if frame.is_empty() {
            return;
        }
        add(&turn.metrics.pending_outbound_bytes, frame.len() as u64);
        let pool = &mut *turn.pool;
        self.output
            .get_or_insert_with(|| pool.take_write())
            .append_shared(frame, &mut pool.chunks);
    }

    /// Reads once into the read buffer, which may grow up to `max_len` bytes.
    pub(crate) fn read_once(&mut self, turn: &mut Turn<'_>, max_len: usize) -> ReadResult {
        // A reserve connection's clock runs from its accept, not from its first byte.
        let between_requests =
            !self.request_begun() && matches!(self.phase, Phase::Http(_)) && !self.is_on_reserve();
        let input = self.input.get_or_insert_with(|| turn.pool.take_read());
        let spare = input.spare(max_len);
        if spare.is_empty() {
            return ReadResult::BufferFull;
        }
        match self.transport.read(spare) {
            IoOutcome::Progress(n) => {
                if between_requests {
                    // The first byte of a request: `request_timeout` counts from here.
                    self.clocks.wait_since = turn.now;
                }
                input.filled(n);
                self.clocks.last_read = turn.now;
                if let Phase::Open(open) = &mut self.phase {
                    // Anything from the peer answers our keepalive ping.
                    open.ping_sent = None;
                }
                add(&turn.metrics.bytes_in, n as u64);
                log::trace!("{}: read {n} bytes", self.id);
                ReadResult::Data
            }
            IoOutcome::WouldBlock => {
                log::trace!("{}: read would block: drained", self.id);
                ReadResult::Drained
            }
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
    /// from the last write that made progress while output remains.
    pub(crate) fn flush(&mut self, turn: &mut Turn<'_>) -> Result<(), PeerGone> {
        let before = self.output_len();
        if before == 0 {
            return Ok(());
        }
        self.write_queued(turn)?;
        if self.transport.buffered_output() > 0 {
            self.transport.flush()?;
        }
        let after = self.output_len();
        if after == 0 {
            self.clocks.write_blocked_since = None;
            if !matches!(self.phase, Phase::Open(_)) {
                // Keep-alive idleness and the close timeout count from the last byte out.
                self.clocks.wait_since = turn.now;
            }
        } else if after < before || self.clocks.write_blocked_since.is_none() {
            self.clocks.write_blocked_since = Some(turn.now);
        }
        Ok(())
    }

    fn write_queued(&mut self, turn: &mut Turn<'_>) -> Result<(), PeerGone> {
        let Some(output) = self.output.as_mut() else {
            return Ok(());
        };
        while !output.is_empty() {
            // One chunk: a plain write; several: one writev for all of them.
            let outcome = if output.chunk_count() == 1 {
                self.transport.write(output.front())
            } else {
                let mut slices = [IoSlice::new(&[]); MAX_SLICES];
                let used = output.slices(&mut slices);
                self.transport.write_vectored(&slices[..used])
            };
            match outcome {
                IoOutcome::Progress(n) => {
                    output.advance(n, &mut turn.pool.chunks);
                    add(&turn.metrics.bytes_out, n as u64);
                    sub(&turn.metrics.pending_outbound_bytes, n as u64);
                    log::trace!("{}: wrote {n} bytes", self.id);
                }
                IoOutcome::WouldBlock => {
                    log::trace!("{}: socket full, {} bytes wait", self.id, output.len());
                    break;
                }
                IoOutcome::Closed => return Err(PeerGone),
                IoOutcome::Failed(err) => {
                    log::debug!("{}: write failed: {err}", self.id);
                    return Err(PeerGone);
                }
            }
        }
        Ok(())
    }

    /// Gives drained buffers back to the pool (and lets the transport free its own): an idle
    /// connection holds none.
    pub(crate) fn release_buffers(&mut self, pool: &mut BufferPool) {
        self.transport.release_idle();
        if self.input.as_ref().is_some_and(ReadBuffer::is_empty)
            && let Some(buf) = self.input.take()
        {
            pool.give_read(buf);
            let free = pool.len();
            log::trace!("{}: read buffer back to the pool ({free} free)", self.id);
        }
        if self.output.as_ref().is_some_and(WriteBuffer::is_empty)
            && let Some(buf) = self.output.take()
        {
            pool.give_write(buf);
            let free = pool.len();
            log::trace!("{}: write buffer back to the pool ({free} free)", self.id);
        }
    }

    /// Gives every buffer back, drained or not, when the connection is removed.
    pub(crate) fn return_all_buffers(&mut self, pool: &mut BufferPool, metrics: &Metrics) {
        if let Some(input) = self.input.take() {
            pool.give_read(input);
        }
        if let Some(output) = self.output.take() {
            sub(&metrics.pending_outbound_bytes, output.len() as u64);
            pool.give_write(output);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Memory per idle connection is a headline number: the slab entry is all an idle upgraded
    /// connection costs in user space (no buffers, an 8-byte decoder).
    #[test]
    fn an_idle_connection_is_small() {
        let size = std::mem::size_of::<Connection<crate::transport::Stream>>();
        eprintln!("size_of::<Connection<Stream>>() = {size}");
        assert!(size <= 320, "Connection grew to {size} bytes");
    }
}
