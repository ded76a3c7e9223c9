//! Counters the server keeps about itself, and the [`Stats`] snapshot users read.
//!
//! The event loop and the workers bump relaxed atomics in [`Metrics`] (one cache-friendly add per
//! event, no locks); [`ServerHandle::stats`](crate::ServerHandle::stats) copies them into a plain
//! [`Stats`] value. Counters only grow; gauges (`connections_open`, `busy_workers`, ...) go up and
//! down.

use std::sync::atomic::{AtomicU64, Ordering};

/// Why the server closed (or lost) a connection, for the `closed_*` counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseKind {
    /// A completed WebSocket close handshake or an HTTP connection that ended normally.
    Clean,
    /// The peer sent bytes that broke HTTP or RFC 6455 (a 4xx/5xx or close 1002/1007/1009).
    ProtocolError,
    /// Reset, broken pipe, EOF without a close frame.
    PeerGone,
    /// A deadline passed (request, close handshake, shutdown).
    Timeout,
    /// The server's own decision: slow consumer, handler panic, shutdown.
    Server,
}

/// Which deadline fired, for the `timeouts_*` counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeoutKind {
    /// A request was not complete within `request_timeout` (slowloris guard).
    Request,
    /// A keep-alive HTTP connection sent no new request within `keep_alive_timeout`.
    Idle,
    /// A WebSocket did not answer our ping within `pong_timeout`.
    Pong,
    /// A WebSocket reached `max_lifetime`.
    Lifetime,
    /// Output made no progress for `write_stall_timeout`.
    WriteStall,
    /// The peer did not finish the close handshake (or close TCP) within `close_timeout`.
    Close,
}

/// The live counters, shared by the event loop, the workers and every `ServerHandle`.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub connections_accepted: AtomicU64,
    pub connections_rejected: AtomicU64,
    pub connections_open: AtomicU64,
    pub websocket_open: AtomicU64,
    pub closed_clean: AtomicU64,
    pub closed_protocol_error: AtomicU64,
    pub closed_peer_gone: AtomicU64,
    pub closed_timeout: AtomicU64,
    pub closed_server: AtomicU64,
    pub http_requests: AtomicU64,
    pub upgrades: AtomicU64,
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub jobs_dispatched: AtomicU64,
    pub busy_workers: AtomicU64,
    pub pending_outbound_bytes: AtomicU64,
    pub stale_replies_dropped: AtomicU64,
    pub handler_panics: AtomicU64,
    pub accept_errors: AtomicU64,
    pub backpressure_pauses: AtomicU64,
    pub slab_capacity: AtomicU64,
    pub pooled_buffers: AtomicU64,
    pub pings_sent: AtomicU64,
    pub timeouts_request: AtomicU64,
    pub timeouts_idle: AtomicU64,
    pub timeouts_pong: AtomicU64,
    pub timeouts_lifetime: AtomicU64,
    pub timeouts_write_stall: AtomicU64,
    pub timeouts_close: AtomicU64,
}

/// Adds `n` to a counter (relaxed: counters order nothing).
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// Subtracts `n` from a gauge.
pub(crate) fn sub(gauge: &AtomicU64, n: u64) {
    gauge.fetch_sub(n, Ordering::Relaxed);
}

/// Moves a gauge by one contributor's change from `old` to `new`.
pub(crate) fn adjust(gauge: &AtomicU64, old: u64, new: u64) {
    if new >= old {
        add(gauge, new - old);
    } else {
        sub(gauge, old - new);
    }
}

impl Metrics {
    pub(crate) fn closed(&self, kind: CloseKind) {
        sub(&self.connections_open, 1);
        let counter = match kind {
            CloseKind::Clean => &self.closed_clean,
            CloseKind::ProtocolError => &self.closed_protocol_error,
            CloseKind::PeerGone => &self.closed_peer_gone,
            CloseKind::Timeout => &self.closed_timeout,
            CloseKind::Server => &self.closed_server,
        };
        add(counter, 1);
    }

    /// Takes a place among at most `max` open connections; false (and nothing taken) when full.
    pub(crate) fn reserve_connection(&self, max: usize) -> bool {
        let max = max as u64;
        self.connections_open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < max).then_some(open + 1)
            })
            .is_ok()
    }

    pub(crate) fn timeout(&self, kind: TimeoutKind) {
        let counter = match kind {
            TimeoutKind::Request => &self.timeouts_request,
            TimeoutKind::Idle => &self.timeouts_idle,
            TimeoutKind::Pong => &self.timeouts_pong,
            TimeoutKind::Lifetime => &self.timeouts_lifetime,
            TimeoutKind::WriteStall => &self.timeouts_write_stall,
            TimeoutKind::Close => &self.timeouts_close,
        };
        add(counter, 1);
    }

    pub(crate) fn snapshot(&self, job_queue_depth: usize) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            connections_accepted: get(&self.connections_accepted),
            connections_rejected: get(&self.connections_rejected),
            connections_open: get(&self.connections_open),
            websocket_open: get(&self.websocket_open),
            closed_clean: get(&self.closed_clean),
            closed_protocol_error: get(&self.closed_protocol_error),
            closed_peer_gone: get(&self.closed_peer_gone),
            closed_timeout: get(&self.closed_timeout),
            closed_server: get(&self.closed_server),
            http_requests: get(&self.http_requests),
            upgrades: get(&self.upgrades),
            messages_in: get(&self.messages_in),
            messages_out: get(&self.messages_out),
            bytes_in: get(&self.bytes_in),
            bytes_out: get(&self.bytes_out),
            jobs_dispatched: get(&self.jobs_dispatched),
            job_queue_depth: job_queue_depth as u64,
            busy_workers: get(&self.busy_workers),
            pending_outbound_bytes: get(&self.pending_outbound_bytes),
            stale_replies_dropped: get(&self.stale_replies_dropped),
            handler_panics: get(&self.handler_panics),
            accept_errors: get(&self.accept_errors),
            backpressure_pauses: get(&self.backpressure_pauses),
            slab_capacity: get(&self.slab_capacity),
            pooled_buffers: get(&self.pooled_buffers),
            pings_sent: get(&self.pings_sent),
            timeouts_request: get(&self.timeouts_request),
            timeouts_idle: get(&self.timeouts_idle),
            timeouts_pong: get(&self.timeouts_pong),
            timeouts_lifetime: get(&self.timeouts_lifetime),
            timeouts_write_stall: get(&self.timeouts_write_stall),
            timeouts_close: get(&self.timeouts_close),
        }
    }
}

/// A point-in-time copy of the server's counters, from
/// [`ServerHandle::stats`](crate::ServerHandle::stats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// TCP connections accepted since start (including rejected ones).
    pub connections_accepted: u64,
    /// Connections refused with `503` because `max_connections` was reached.
    pub connections_rejected: u64,
    /// Connections open now (HTTP and WebSocket).
    pub connections_open: u64,
    /// Upgraded WebSocket connections open now.
    pub websocket_open: u64,
    /// Connections closed after a clean end (close handshake, HTTP `Connection: close`, EOF
    /// between requests).
    pub closed_clean: u64,
    /// Connections closed because the peer broke HTTP or RFC 6455.
    pub closed_protocol_error: u64,
    /// Connections lost to a reset, broken pipe, or EOF without a close frame.
    pub closed_peer_gone: u64,
    /// Connections closed because a deadline passed.
    pub closed_timeout: u64,
    /// Connections closed by the server's decision (slow consumer, handler panic, shutdown).
    pub closed_server: u64,
    /// Plain HTTP requests handed to the handler.
    pub http_requests: u64,
    /// Successful WebSocket upgrades (`101` sent).
    pub upgrades: u64,
    /// WebSocket data messages received.
    pub messages_in: u64,
    /// WebSocket data messages sent (replies, pushes, each broadcast copy).
    pub messages_out: u64,
    /// Bytes read from sockets.
    pub bytes_in: u64,
    /// Bytes written to sockets.
    pub bytes_out: u64,
    /// Jobs handed to the worker pool.
    pub jobs_dispatched: u64,
    /// Jobs waiting in the queue now.
    pub job_queue_depth: u64,
    /// Workers running a handler now.
    pub busy_workers: u64,
    /// Bytes waiting to be written, summed over connections.
    pub pending_outbound_bytes: u64,
    /// Replies or pushes for a connection that had already closed (its slab slot reused or
    /// empty), detected by generation and dropped.
    pub stale_replies_dropped: u64,
    /// Handler calls that panicked (each closed its connection with `1011`).
    pub handler_panics: u64,
    /// `accept` failures (for example `EMFILE`), each followed by a pause.
    pub accept_errors: u64,
    /// Times a connection's reading was paused because a queue or buffer was full.
    pub backpressure_pauses: u64,
    /// Slots in the connection slab (occupied or free): returns to its level when connections end.
    pub slab_capacity: u64,
    /// Free buffers held by the loop's buffer pool.
    pub pooled_buffers: u64,
    /// Keepalive pings sent to silent WebSocket connections.
    pub pings_sent: u64,
    /// Requests not complete within `request_timeout` (answered `408`).
    pub timeouts_request: u64,
    /// Idle keep-alive HTTP connections closed after `keep_alive_timeout`.
    pub timeouts_idle: u64,
    /// WebSocket connections closed because no pong came within `pong_timeout`.
    pub timeouts_pong: u64,
    /// WebSocket connections closed with `1001` at `max_lifetime`.
    pub timeouts_lifetime: u64,
    /// Connections dropped because their output made no progress for `write_stall_timeout`.
    pub timeouts_write_stall: u64,
    /// Connections dropped because the close handshake did not finish within `close_timeout`.
    pub timeouts_close: u64,
}
