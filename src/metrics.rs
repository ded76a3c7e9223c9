//! Counters the server keeps about itself, and the [`Stats`] snapshot users read.
//!
//! Every counter is declared once, in the `metrics!` list below: its field, its documentation,
//! and how Prometheus shows it. From that one list come the live [`Metrics`] (relaxed atomics that
//! the event loops and workers bump: one add per event, no locks), the [`Stats`] snapshot
//! ([`ServerHandle::stats`](crate::ServerHandle::stats) copies the atomics into it),
//! [`Stats::fields`] (name and value of each, for any exporter) and [`EXPOSITION`], the table
//! `prometheus.rs` renders. Counters only grow; gauges (`connections_open`, `busy_workers`, ...)
//! go up and down.

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
    /// A WebSocket message (or control frame) took longer than `message_timeout` to arrive.
    Message,
    /// Output made no progress for `write_stall_timeout`.
    WriteStall,
    /// The peer did not finish the close handshake (or close TCP) within `close_timeout`.
    Close,
}

/// Which count a connection's place was taken from when it was accepted, and is given back to
/// when it leaves the table ([`Metrics::closed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// One of `max_connections` (`connections_open`): served like any connection.
    Ordinary,
    /// One of the `monitoring_reserve` places beyond `max_connections` (`monitoring_open`):
    /// it may ask for `metrics_path` or `health_path` once, and gets `503` for anything else.
    MonitoringReserve,
}

/// How one counter appears in the Prometheus exposition.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Exposition {
    /// The metric family, without the `wsreactor_` prefix.
    pub family: &'static str,
    /// `counter` or `gauge`.
    pub kind: &'static str,
    /// The label that tells this member of its family apart (`reason="clean"`), or empty.
    pub label: &'static str,
    /// The family's `# HELP` text (taken from its first member).
    pub help: &'static str,
}

/// Declares every counter once; see the module documentation for what is generated.
macro_rules! metrics {
    ($(
        $(#[doc = $doc:literal])+
        $field:ident: $kind:ident $family:literal [$label:literal] $help:literal;
    )+) => {
        /// The live counters, shared by the event loops, the workers and every `ServerHandle`.
        #[derive(Debug, Default)]
        pub(crate) struct Metrics {
            $( pub(crate) $field: AtomicU64, )+
        }

        impl Metrics {
            /// A copy of every counter now.
            pub(crate) fn snapshot(&self) -> Stats {
                Stats { $( $field: self.$field.load(Ordering::Relaxed), )+ }
            }
        }

        /// A point-in-time copy of the server's counters, from
        /// [`ServerHandle::stats`](crate::ServerHandle::stats).
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct Stats {
            $( $(#[doc = $doc])+ pub $field: u64, )+
        }

        impl Stats {
            /// Every counter as `(field name, value)`, in declaration order: for exporters other
            /// than the built-in Prometheus text (a JSON feed, a log line).
            pub fn fields(&self) -> impl Iterator<Item = (&'static str, u64)> + use<> {
                [ $( (stringify!($field), self.$field), )+ ].into_iter()
            }
        }

        /// How each counter, in the order of [`Stats::fields`], appears in Prometheus text.
        pub(crate) const EXPOSITION: &[Exposition] = &[
            $( Exposition { family: $family, kind: stringify!($kind), label: $label, help: $help }, )+
        ];
    };
}

metrics! {
    /// TCP connections accepted since start (including rejected ones).
    connections_accepted: counter "connections_accepted_total" [""] "TCP connections accepted.";
    /// Connections refused with `503` because `max_connections` was reached: at once, or, on
    /// the monitoring reserve, after a request for something other than `metrics_path` or
    /// `health_path`.
    connections_rejected: counter "connections_rejected_total" [""]
        "Connections refused with 503 at max_connections.";
    /// Connections open now (HTTP and WebSocket) within `max_connections`; those on the
    /// monitoring reserve are `monitoring_open`.
    connections_open: gauge "connections_open" [""] "Connections open now.";
    /// Connections open now on the monitoring reserve: admitted beyond `max_connections` only
    /// to ask for `metrics_path` or `health_path`.
    monitoring_open: gauge "monitoring_connections_open" [""]
        "Connections open now on the monitoring reserve, beyond max_connections.";
    /// Requests for `metrics_path` or `health_path` answered on the monitoring reserve (each
    /// on a connection of its own, closed after the answer).
    monitoring_served: counter "monitoring_served_total" [""]
        "Metrics and health requests answered on the monitoring reserve.";
    /// Upgraded WebSocket connections open now (until they are closed, close handshake
    /// included).
    websocket_open: gauge "websocket_connections_open" [""]
        "Upgraded WebSocket connections open now.";
    /// Connections reading HTTP requests now (phase `Http`).
    phase_http: gauge "connections_by_phase" ["phase=\"http\""]
        "Connections open now, by phase of the connection state machine.";
    /// Connections whose upgrade request is with the handler now (phase `Upgrading`).
    phase_upgrading: gauge "connections_by_phase" ["phase=\"upgrading\""] "";
    /// Open WebSocket connections (phase `Open`).
    phase_open: gauge "connections_by_phase" ["phase=\"open\""] "";
    /// WebSocket connections whose peer has closed (close frame or EOF) while their last
    /// messages are still being handled (phase `PeerClosed`).
    phase_peer_closed: gauge "connections_by_phase" ["phase=\"peer_closed\""] "";
    /// WebSocket connections waiting for the peer's answer to our close frame (phase `Closing`).
    phase_closing: gauge "connections_by_phase" ["phase=\"closing\""] "";
    /// Connections flushing their last bytes before TCP closes (phase `Lingering`).
    phase_lingering: gauge "connections_by_phase" ["phase=\"lingering\""] "";
    /// Connections closed after a clean end (close handshake, HTTP `Connection: close`, EOF
    /// between requests).
    closed_clean: counter "connections_closed_total" ["reason=\"clean\""]
        "Connections closed, by reason.";
    /// Connections closed because the peer broke HTTP or RFC 6455.
    closed_protocol_error: counter "connections_closed_total" ["reason=\"protocol_error\""] "";
    /// Connections lost to a reset, broken pipe, or EOF without a close frame.
    closed_peer_gone: counter "connections_closed_total" ["reason=\"peer_gone\""] "";
    /// Connections closed because a deadline passed.
    closed_timeout: counter "connections_closed_total" ["reason=\"timeout\""] "";
    /// Connections closed by the server's decision (slow consumer, handler panic, shutdown).
    closed_server: counter "connections_closed_total" ["reason=\"server\""] "";
    /// Plain HTTP requests handed to the handler.
    http_requests: counter "http_requests_total" [""]
        "Plain HTTP requests handed to the handler.";
    /// Successful WebSocket upgrades (`101` sent).
    upgrades: counter "websocket_upgrades_total" [""] "WebSocket upgrades completed (101 sent).";
    /// WebSocket upgrades refused with `403` by the origin check (`Config::allowed_origins`):
    /// a page of another site, `Origin: null`, or an `Origin` that is not one. Their connections
    /// are also counted in `closed_protocol_error`, as other requests the loop refuses.
    origin_refused: counter "origin_refused_total" [""]
        "WebSocket upgrades refused with 403 by the origin check (cross-origin pages).";
    /// WebSocket data messages received.
    messages_in: counter "messages_received_total" [""] "WebSocket data messages received.";
    /// WebSocket data messages sent (replies, pushes, each broadcast copy, each topic delivery).
    messages_out: counter "messages_sent_total" [""] "WebSocket data messages sent.";
    /// Connections that agreed on permessage-deflate at the upgrade.
    deflate_upgrades: counter "deflate_upgrades_total" [""]
        "WebSocket upgrades that agreed on permessage-deflate.";
    /// Data messages received compressed (RSV1), counted by the loop before inflating.
    compressed_in: counter "compressed_messages_received_total" [""]
        "WebSocket messages received compressed.";
    /// Data messages sent compressed, RSV1 set (incompressible ones as stored deflate blocks);
    /// the others of `messages_out` went uncompressed: below the threshold, or pushed through
    /// `ServerHandle`.
    compressed_out: counter "compressed_messages_sent_total" [""]
        "WebSocket messages sent compressed.";
    /// Compressed messages that could not be inflated (too big: `1009`; not deflate data or
    /// not UTF-8: `1007`); each closed its connection.
    inflate_failures: counter "inflate_failures_total" [""]
        "Compressed messages that failed to inflate (connection closed).";
    /// Bytes read from sockets.
    bytes_in: counter "received_bytes_total" [""] "Bytes read from sockets.";
    /// Bytes written to sockets.
    bytes_out: counter "sent_bytes_total" [""] "Bytes written to sockets.";
    /// Jobs handed to the worker pool (or run inline).
    jobs_dispatched: counter "jobs_dispatched_total" [""] "Jobs handed to the worker pool.";
    /// Jobs waiting in the queue now.
    job_queue_depth: gauge "job_queue_depth" [""] "Jobs waiting for a worker.";
    /// Workers running a handler now.
    busy_workers: gauge "busy_workers" [""] "Workers running a handler now.";
    /// Bytes waiting to be written, summed over connections.
    pending_outbound_bytes: gauge "pending_outbound_bytes" [""] "Bytes waiting to be written.";
    /// Bytes the connections hold for their peers (read buffers, partial and pending messages,
    /// jobs, output), summed over the loops as each last published it (once per loop turn):
    /// what `max_buffered_bytes` bounds.
    buffered_bytes: gauge "buffered_bytes" [""]
        "Bytes held for connections (input, jobs, output), bounded by max_buffered_bytes.";
    /// Times a connection stopped being read because the server neared `max_buffered_bytes`
    /// and the connection held more than its share.
    budget_pauses: counter "budget_pauses_total" [""]
        "Times a socket stopped being read because the memory budget was near.";
    /// Connections dropped because the server passed `max_buffered_bytes` (slow consumers
    /// holding the most first; close `1008`).
    budget_drops: counter "budget_drops_total" [""]
        "Connections dropped because the server passed its memory budget.";
    /// Times a loop gave memory back to the OS after a storm (`release_memory_after`).
    memory_releases: counter "memory_releases_total" [""]
        "Times a loop returned memory to the OS after a storm.";
    /// TLS handshakes completed (feature `tls`).
    tls_handshakes: counter "tls_handshakes_total" [""] "TLS handshakes completed.";
    /// TLS connections that failed: bytes that are not TLS, a handshake refused, an alert from
    /// the peer, a record that does not decrypt.
    tls_errors: counter "tls_errors_total" [""]
        "TLS connections ended by an error (bad bytes, a refused handshake, an alert).";
    /// Plaintext HTTP requests that came to a TLS port (answered `400`: use `https://`).
    tls_plaintext_refused: counter "tls_plaintext_refused_total" [""]
        "Plaintext HTTP requests on a TLS port (answered 400).";
    /// Replies or pushes for a connection that had already closed (its slab slot reused or
    /// empty), detected by generation and dropped.
    stale_replies_dropped: counter "stale_replies_dropped_total" [""]
        "Replies or pushes for connections already closed.";
    /// Handler calls that panicked (each closed its connection with `1011`).
    handler_panics: counter "handler_panics_total" [""] "Handler calls that panicked.";
    /// Handler calls that deferred their completion to another thread (`Context::defer`), and
    /// HTTP answers given later (`HttpContext::answer_later`) not completed inside the call.
    deferred_calls: counter "deferred_calls_total" [""]
        "Handler calls that deferred their completion.";
    /// Deferred completions that did not come within `deferred_timeout` (the job was taken
    /// back and `on_deferred_timeout` called, or the HTTP request answered `504`).
    deferred_expired: counter "deferred_expired_total" [""]
        "Deferred completions past deferred_timeout.";
    /// Deferred completions (ordered or unordered) whose every handle was dropped without
    /// completing (counted as completed with nothing; an HTTP responder dropped so answers
    /// `500`).
    deferred_abandoned: counter "deferred_abandoned_total" [""]
        "Deferred completions dropped without completing.";
    /// Completions (ordered or unordered) that came too late: after the deadline or the
    /// connection's close (the completer got an `Err`).
    deferred_late: counter "deferred_late_total" [""]
        "Completions after the deadline or the close.";
    /// Handler calls that deferred their completion out of order (`Context::defer_unordered`).
    unordered_calls: counter "unordered_calls_total" [""]
        "Handler calls completing out of order.";
    /// Out-of-order completions not yet handed to their connection, over all connections.
    unordered_outstanding: gauge "unordered_outstanding" [""]
        "Out-of-order completions outstanding.";
    /// Out-of-order completions past `deferred_timeout` (`on_unordered_timeout` called).
    unordered_expired: counter "unordered_expired_total" [""]
        "Out-of-order completions past deferred_timeout.";
    /// `accept` failures (for example `EMFILE`), each followed by a pause.
    accept_errors: counter "accept_errors_total" [""]
        "accept() failures (each followed by a pause).";
    /// Times a connection's reading was paused because a queue or buffer was full.
    backpressure_pauses: counter "backpressure_pauses_total" [""]
        "Times a socket stopped being read because a queue was full.";
    /// Slots in the connection slabs (occupied or free): returns to its level when connections
    /// end.
    slab_capacity: gauge "slab_capacity" [""] "Slots in the connection slabs.";
    /// Free buffers held by the loops' buffer pools.
    pooled_buffers: gauge "pooled_buffers" [""] "Free buffers in the loops' pools.";
    /// Read and write buffers lent to connections now (0 when every connection is idle).
    buffers_in_use: gauge "buffers_in_use" [""] "Buffers lent to connections now.";
    /// Entries in the loops' timer heaps (live deadlines plus stale ones not yet popped).
    pending_timers: gauge "pending_timers" [""] "Entries in the loops' timer heaps.";
    /// Timers the handlers have armed on their connections now (`Context::set_timer`), not
    /// yet fired or cancelled, summed over the connections.
    connection_timers: gauge "connection_timers" [""]
        "Timers armed by handlers on their connections now.";
    /// Handler timers that fired (each an `on_timer` call, unless the call before it closed).
    timers_fired: counter "connection_timers_fired_total" [""]
        "Handler timers that fired.";
    /// Keepalive pings sent to silent WebSocket connections.
    pings_sent: counter "pings_sent_total" [""] "Keepalive pings sent.";
    /// Requests not complete within `request_timeout` (answered `408`).
    timeouts_request: counter "timeouts_total" ["kind=\"request\""]
        "Deadlines that fired, by kind.";
    /// Idle keep-alive HTTP connections closed after `keep_alive_timeout`.
    timeouts_idle: counter "timeouts_total" ["kind=\"idle\""] "";
    /// WebSocket connections closed because no pong came within `pong_timeout`.
    timeouts_pong: counter "timeouts_total" ["kind=\"pong\""] "";
    /// WebSocket connections closed with `1001` at `max_lifetime`.
    timeouts_lifetime: counter "timeouts_total" ["kind=\"lifetime\""] "";
    /// WebSockets closed because a message did not arrive within `message_timeout`.
    timeouts_message: counter "timeouts_total" ["kind=\"message\""] "";
    /// Connections dropped because their output made no progress for `write_stall_timeout`.
    timeouts_write_stall: counter "timeouts_total" ["kind=\"write_stall\""] "";
    /// Connections dropped because the close handshake did not finish within `close_timeout`.
    timeouts_close: counter "timeouts_total" ["kind=\"close\""] "";
    /// Topics with at least one subscriber now, summed over the event loops (each loop keeps
    /// its own registry: a topic with subscribers on two loops counts twice).
    topics: gauge "topics" [""]
        "Topics with subscribers now, summed over the event loops.";
    /// Subscriptions now: (connection, topic) pairs.
    subscriptions: gauge "subscriptions" [""] "Subscriptions of connections to topics now.";
    /// Subscriptions refused because the connection already had `max_subscriptions`.
    subscriptions_refused: counter "subscriptions_refused_total" [""]
        "Subscriptions refused at max_subscriptions.";
    /// Messages published to a topic (`Context::publish`, `publish_to_others`,
    /// `ServerHandle::publish`), each counted once however many subscribers it reaches.
    publishes: counter "publishes_total" [""] "Messages published to topics.";
    /// Published messages queued for a subscriber: one per subscriber reached (also counted
    /// in `messages_out`).
    topic_deliveries: counter "topic_deliveries_total" [""]
        "Published messages queued for a subscriber.";
    /// Publications an event loop could not forward to another loop, whose command queue stayed
    /// full past its backlog (see `docs/architecture.md`, Topics).
    publications_dropped: counter "publications_dropped_total" [""]
        "Publications not forwarded to another event loop because its queue stayed full.";
    /// Publications this node sent to the Redis backplane (feature `redis`).
    backplane_published: counter "backplane_published_total" [""]
        "Publications this node sent to the backplane.";
    /// Publications that could not reach the backplane: its connection was down or failed
    /// while they were being sent (at most once: they are not sent again).
    backplane_publish_failed: counter "backplane_lost_total" ["reason=\"publish_failed\""]
        "Publications lost on their way through the backplane, by where.";
    /// Publications dropped because the backplane's publish queue
    /// (`backplane_queue_capacity`) was full.
    backplane_publish_dropped: counter "backplane_lost_total" ["reason=\"publish_queue_full\""]
        "";
    /// Publications from the backplane not given to an event loop because its command queue
    /// was full (summed over the loops; each drop is logged with its loop).
    backplane_delivery_dropped: counter "backplane_lost_total" ["reason=\"loop_queue_full\""]
        "";
    /// Publications missing between two positions a node received on a topic with recovery
    /// (each gap counts the offsets it skipped).
    backplane_gap_publications: counter "backplane_lost_total" ["reason=\"gap\""] "";
    /// Publications of other nodes this node received from the backplane.
    backplane_received: counter "backplane_received_total" [""]
        "Publications of other nodes received from the backplane.";
    /// Times a backplane connection (subscriber or publisher) was established again after it
    /// failed or could not be made.
    backplane_reconnects: counter "backplane_reconnects_total" [""]
        "Backplane connections made again after a failure.";
    /// 1 while the backplane's subscriber connection is up and subscribed, else 0.
    backplane_connected: gauge "backplane_connected" [""]
        "1 while the backplane subscriber connection is up.";
    /// Channels this node's backplane is subscribed to now (topics with a subscriber on some
    /// event loop).
    backplane_channels: gauge "backplane_channels" [""] "Channels the backplane listens to now.";
    /// Publications a recovery (`Context::subscribe_from`) delivered from a topic's history.
    backplane_recovered: counter "backplane_recovered_total" [""]
        "Publications delivered from a topic's history by a recovery.";
    /// Recoveries refused: the position was older than the history, of another epoch, or the
    /// history could not be read in time.
    backplane_recovery_refused: counter "backplane_recovery_refused_total" [""]
        "Recoveries that could not give what a client missed.";
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
    /// Counts a connection that left the slab, by why it ended, and gives its place back.
    pub(crate) fn closed(&self, kind: CloseKind, admission: Admission) {
        self.release(admission);
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

    /// Takes a place among at most `reserve` connections of the monitoring reserve (the same
    /// single atomic step as [`reserve_connection`](Self::reserve_connection), on its own
    /// count); false (and nothing taken) when full or when `reserve` is 0.
    pub(crate) fn reserve_monitoring_connection(&self, reserve: usize) -> bool {
        let reserve = reserve as u64;
        self.monitoring_open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < reserve).then_some(open + 1)
            })
            .is_ok()
    }

    /// Gives back the place a connection took when it was admitted.
    pub(crate) fn release(&self, admission: Admission) {
        match admission {
            Admission::Ordinary => sub(&self.connections_open, 1),
            Admission::MonitoringReserve => sub(&self.monitoring_open, 1),
        }
    }

    /// Counts a deadline that fired.
    pub(crate) fn timeout(&self, kind: TimeoutKind) {
        let counter = match kind {
            TimeoutKind::Request => &self.timeouts_request,
            TimeoutKind::Idle => &self.timeouts_idle,
            TimeoutKind::Pong => &self.timeouts_pong,
            TimeoutKind::Lifetime => &self.timeouts_lifetime,
            TimeoutKind::Message => &self.timeouts_message,
            TimeoutKind::WriteStall => &self.timeouts_write_stall,
            TimeoutKind::Close => &self.timeouts_close,
        };
        add(counter, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_has_an_exposition_and_families_are_adjacent() {
        let stats = Stats::default();
        assert_eq!(stats.fields().count(), EXPOSITION.len());
        // A family's members follow one another, so HELP/TYPE are written once per family.
        let mut seen: Vec<&str> = Vec::new();
        for entry in EXPOSITION {
            if seen.last() != Some(&entry.family) {
                assert!(!seen.contains(&entry.family), "{} is split", entry.family);
                assert!(!entry.help.is_empty(), "{} has no help", entry.family);
                seen.push(entry.family);
            }
        }
    }

    #[test]
    fn snapshot_copies_every_counter() {
        let metrics = Metrics::default();
        add(&metrics.messages_in, 3);
        add(&metrics.timeouts_close, 1);
        let stats = metrics.snapshot();
        assert_eq!(stats.messages_in, 3);
        let fields: Vec<_> = stats.fields().filter(|(_, v)| *v > 0).collect();
        assert_eq!(fields, [("messages_in", 3), ("timeouts_close", 1)]);
    }

    #[test]
    fn the_monitoring_reserve_is_counted_apart_from_max_connections() {
        let metrics = Metrics::default();
        assert!(metrics.reserve_connection(1));
        assert!(!metrics.reserve_connection(1), "max_connections reached");
        assert!(
            !metrics.reserve_monitoring_connection(0),
            "a reserve of 0 is off"
        );
        assert!(metrics.reserve_monitoring_connection(2));
        assert!(metrics.reserve_monitoring_connection(2));
        assert!(
            !metrics.reserve_monitoring_connection(2),
            "the reserve is full"
        );
        metrics.closed(CloseKind::Clean, Admission::MonitoringReserve);
        let stats = metrics.snapshot();
        assert_eq!((stats.connections_open, stats.monitoring_open), (1, 1));
        assert!(
            !metrics.reserve_connection(1),
            "a reserve place is not an ordinary one"
        );
        assert!(metrics.reserve_monitoring_connection(2));
        metrics.closed(CloseKind::Clean, Admission::Ordinary);
        assert!(metrics.reserve_connection(1));
    }
}
