//! Every limit of the server a user would tune, in one place, with its default and the reason
//! for it.
//!
//! A [`Config`] enters through [`ServerBuilder`](crate::ServerBuilder), is checked once by
//! [`Config::validate`] when the server is built, and is then shared read-only by the event loop
//! (sockets, buffers, parsers, timers) and the worker pool (queue sizes).
//!
//! # Extreme values
//!
//! No value that `validate` accepts makes the server panic or allocate without bound at startup.
//! `validate` refuses what cannot work — a zero where at least one is needed, a zero timeout, a
//! read buffer too small for a frame header or larger than [`Config::MAX_READ_BUFFER_SIZE`],
//! more threads than [`Config::MAX_WORKERS`] / [`Config::MAX_EVENT_LOOPS`], queues and event
//! buffers that would take more than [`Config::MAX_PREALLOCATED_BYTES`] up front — and names the
//! field. Everything else is taken as given, and its maximum means what it says:
//!
//! - every duration at its maximum means **forever**: a deadline further away than a century
//!   (`Duration::MAX` included) is scheduled a century ahead, so it never comes
//!   ([`deadline_after`]: the one place a configured duration is added to an instant);
//! - every byte or count limit at its maximum means **unbounded** (`usize::MAX`): its sums and
//!   multiples saturate (twice `max_outbound_bytes`, `max_header_bytes + max_body_size`), room
//!   is sized by what arrives rather than by the limit (`max_headers`), and
//!   `max_buffered_bytes` still bounds what all connections hold together unless it is unbounded
//!   too;
//! - a few values are taken in a range instead of refused: `high_water_bytes` within
//!   1..=`max_outbound_bytes`, `low_water_bytes` at most half of that, `backlog` at most
//!   `i32::MAX`.
//!
//! # What is fixed, and why
//!
//! A few constants elsewhere bound memory or time. None is a field, because each is set by a
//! protocol or by how the implementation works, not by the deployment:
//!
//! | constant | value | why it is fixed |
//! |---|---|---|
//! | [`MAX_TOPIC_LEN`](crate::MAX_TOPIC_LEN) (`topic.rs`) | 256 bytes | part of the API: a name is checked where it is made (`Topic::new`, in handlers and handles, which have no `Config`), and a too-long name is an error the caller sees (`TopicError`, `SendError::TopicTooLong`) |
//! | `RESERVE_AHEAD` (`ws/decoder.rs`) | 64 KiB | the most reserved for a frame before its bytes arrive, so an announced length costs at most this until its bytes are sent; the frame itself is bounded by `max_frame_size` and `max_message_size` |
//! | `STORM` (`netpoller/release.rs`) | 8 MiB | decides only *whether* a loop's peak was a storm worth `malloc_trim`; the memory is bounded by `max_buffered_bytes`, and the wait by `release_memory_after` |
//! | `INCOMING_MAX`, `RECORD_MAX`, `WRITE_MAX` (`transport/tls.rs`) | 4 records (≈ 72 KiB), 1 record, 64 KiB (and the rest of a slice shorter than a record) | set by TLS's record size (RFC 8446 §5.2): one record must fit, a handshake message may span a few; counted in the connection's buffered bytes |
//! | `MAX_CONTROL_PAYLOAD` (`ws/frame.rs`) | 125 bytes | RFC 6455 §5.5 |
//! | `MAX_SIZE_DIGITS` (`http/chunked.rs`) | 16 hex digits | a chunk size must fit in 64 bits; the body is bounded by `max_body_size` |
//! | `FIRST_INFLATE_CHUNK` (`ws/deflate/codec.rs`) | 4 KiB | where an inflate buffer starts; it grows up to `max_message_size` |
//! | `OWNED_CHUNK_MIN`, `SHARED_CHUNK_MIN`, `MAX_SLICES` (`buffer/write.rs`) | 4 KiB, 1 KiB, 64 | how output is packed for `writev` (measured thresholds), not how much |
//! | `RETRY_AFTER` (`netpoller/forward.rs`) | 1 ms | how soon a loop offers publications to another loop's full queue again; the backlog is bounded by `command_queue_capacity` |

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::http::{ForwardedHost, HttpLimits, OriginCheck, OriginPolicy};
use crate::ws::DecoderLimits;

mod validate;

#[cfg(test)]
pub(crate) use validate::{COMMAND_SLOT_BYTES, EVENT_BYTES, JOB_SLOT_BYTES};

/// The server's configuration. Build one with `Config::default()` and change fields, or through
/// the setters of [`ServerBuilder`](crate::ServerBuilder).
///
/// Each field's documentation says its default and why it is that.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Address to listen on. Default `127.0.0.1:9001` (loopback only: exposing a server is a
    /// decision, not a default).
    pub addr: SocketAddr,
    /// Number of worker threads that run the handler. Default: the number of CPUs
    /// (`std::thread::available_parallelism`), at least 1. At most [`Config::MAX_WORKERS`].
    pub workers: usize,
    /// Number of event loops (netpoller threads), each with its own `Poll`, slab, buffers and
    /// listening socket bound with `SO_REUSEPORT` (the kernel spreads new connections over
    /// them). Default: the number of CPUs (like `workers`), so a multi-core machine serves
    /// sockets on every core; with the server pinned to one core, 1 is best (see
    /// docs/benchmarks.md). At most [`Config::MAX_EVENT_LOOPS`] (the default too).
    pub event_loops: usize,
    /// Run the handler on the event-loop thread instead of the worker pool: no hand-off, no
    /// wake-up, so the cheapest path for handlers that never block (an echo, a broadcast). A
    /// handler that blocks stalls every connection of its loop. No worker threads are started.
    /// Default `false`.
    pub inline_handlers: bool,
    /// Listen backlog (`listen(2)`). Default 1,024: with 128, bursts of connects overflow the
    /// SYN queue and wait a full second for the retransmit. Values past `i32::MAX` are taken as
    /// `i32::MAX`, and the kernel caps the backlog at `net.core.somaxconn` anyway.
    pub backlog: u32,
    /// Most connections open at once. Beyond it a new connection gets
    /// `503 Service Unavailable` with `Retry-After` and is closed. Default 10,000. `usize::MAX`:
    /// unbounded (the process's file-descriptor limit is then the bound: accepting pauses on
    /// `EMFILE`, see `accept_backoff`).
    pub max_connections: usize,
    /// Most bytes of request line + headers. Beyond it: `431`. Default 16 KiB; at least 64.
    /// A request's head and body must fit in its read buffer together, so the buffer may grow to
    /// `max_header_bytes + max_body_size` (saturating: `usize::MAX` for either is unbounded).
    pub max_header_bytes: usize,
    /// Most header fields in one request. Beyond it: `431`. Default 64. `usize::MAX`: unbounded
    /// (room for the fields is sized by the head's length, never by this number).
    pub max_headers: usize,
    /// Largest plain-HTTP request body (`Content-Length`). Beyond it: `413`. Default 1 MiB.
    /// 0: no request may have a body; `usize::MAX`: unbounded.
    pub max_body_size: usize,
    /// Largest WebSocket message (after reassembly of fragments). Beyond it: close `1009`.
    /// Default 16 MiB, the largest message of the Autobahn test suite. `usize::MAX`: unbounded.
    pub max_message_size: usize,
    /// Largest single WebSocket frame, checked from its header before its payload is read.
    /// Beyond it: close `1009`. Default 16 MiB (a client may still send larger messages in
    /// several frames, up to `max_message_size`). A frame larger than `max_message_size` is
    /// refused by that limit, so a larger value here is harmless. `usize::MAX`: unbounded.
    pub max_frame_size: usize,
    /// Most frames one fragmented message may have. Beyond it: close `1009`. Default 65,536
    /// (what the Autobahn suite sends at most). `usize::MAX`: unbounded.
    pub max_fragments: usize,
    /// Negotiate permessage-deflate (RFC 7692) with clients that offer it, always without
    /// context takeover: each message is compressed on its own by a codec of the thread that
    /// runs the handler, so an idle connection holds no zlib state. A compressed message may
    /// inflate to at most `max_message_size` (checked while inflating; beyond it: close
    /// `1009`). Default `false`: it costs CPU per message, and Node `ws`, gorilla and
    /// uWebSockets default to off too. [`Handler::on_upgrade`](crate::Handler::on_upgrade) can
    /// decline it per connection.
    pub compression: bool,
    /// Messages shorter than this are sent uncompressed even when compression was negotiated
    /// (RSV1 clear; RFC 7692 lets each message choose). Default 1 KiB, like Node `ws`: deflating
    /// a few bytes costs more than it saves. 0 compresses every message; `usize::MAX` none.
    pub compression_threshold: usize,
    /// Compression level for sent messages, 0 (store) to 9 (smallest). Default 1, the fastest:
    /// fixed Huffman codes, by the library's own encoder (`ws/deflate/encoder.rs`). 2: the same
    /// encoder with codes made for each message, a fifth smaller for JSON (gorilla's ratio) for
    /// 1.4-1.7 times the CPU. 3 to 9: zlib-rs, more CPU for ratio. Above 9 is refused.
    pub compression_level: u32,
    /// Size of a pooled read buffer (and of the chunks output is packed into). Default 16 KiB:
    /// large enough that one read usually holds many small frames, small enough that 10,000
    /// busy connections fit in 160 MiB. At least 256 bytes (a frame header must fit) and at most
    /// [`Config::MAX_READ_BUFFER_SIZE`].
    pub read_buffer_size: usize,
    /// Most free buffers the loop keeps for reuse; more are freed. Default 256. 0 keeps none;
    /// `usize::MAX` keeps every buffer once used (none is made in advance).
    pub max_pooled_buffers: usize,
    /// Most bytes read from one socket per event-loop turn before the loop serves others
    /// (fairness budget; the read that crosses it completes: one read takes at most
    /// `read_buffer_size`, or 64 KiB of a large payload read straight into its message).
    /// Default 256 KiB. `usize::MAX`: no budget (a socket is read until it is drained or its
    /// connection may take no more). Also the most compressed and inflated bytes a pool's loop
    /// inflates for a batch it may handle itself (`Handler::handles_without_blocking`).
    pub max_read_per_turn: usize,
    /// Capacity of the job queue shared by the workers. When it is full the loop keeps messages on
    /// their connection and stops reading those sockets (backpressure). Default 1,024. The queue
    /// is allocated whole when the server is built: see [`Config::MAX_PREALLOCATED_BYTES`].
    pub job_queue_capacity: usize,
    /// Capacity of the queue that carries pushes ([`ServerHandle::send`](crate::ServerHandle::send),
    /// broadcasts, closes) from other threads to the loop. A full queue makes `send` wait and
    /// `try_send` fail. Default 4,096. Each event loop has one, allocated whole when the server
    /// is built: see [`Config::MAX_PREALLOCATED_BYTES`].
    pub command_queue_capacity: usize,
    /// Most messages a connection may hold while its previous job runs. At this count the loop
    /// stops reading the socket until the job completes. Also the most pipelined HTTP requests
    /// taken into one job. Default 64. `usize::MAX`: unbounded.
    pub max_pending_messages: usize,
    /// Most bytes of messages a connection may hold while its previous job runs (a message larger
    /// than this is still accepted, alone). Default 1 MiB. Compressed messages count as received:
    /// a batch of them inflates one message at a time on the worker, each to at most
    /// `max_message_size`. `usize::MAX`: unbounded.
    pub max_pending_bytes: usize,
    /// Outbound bytes a connection may have waiting for the socket. At this level the loop
    /// dispatches no new job for it (and so stops reading it); a push or broadcast that would
    /// take it past twice this level closes the connection with `1008` (slow consumer).
    /// Default 4 MiB. `usize::MAX`: unbounded (twice it saturates).
    pub max_outbound_bytes: usize,
    /// Most bytes all connections together may hold for their peers: read buffers, messages
    /// being received or waiting for a job, jobs with the handler, and output. Each limit above
    /// bounds one connection; this bounds their sum, so a few hundred clients that send and
    /// never read cannot take the machine's memory. Past three quarters of it, connections
    /// holding more than their share of it stop being read (backpressure, the biggest holders
    /// first); past it, the connections whose output is stuck and that hold the most are
    /// dropped with `1008` until the server is back under it. Well-behaved clients, which hold
    /// little, keep being served. Default 256 MiB. `usize::MAX`: no server-wide budget.
    pub max_buffered_bytes: usize,
    /// Output queued for a WebSocket past which `Context::send` answers `Pressure::High` and
    /// the handler will hear `Handler::on_drain` once it falls to `low_water_bytes`: the
    /// application's signal to slow down before `max_outbound_bytes` stops the connection (and
    /// twice that drops a slow consumer). Default 1 MiB; taken as at most `max_outbound_bytes`
    /// (so a smaller outbound limit needs no change here) and at least 1 byte (an empty queue
    /// is never past the mark).
    pub high_water_bytes: usize,
    /// See `high_water_bytes`: the level output must fall back to for `on_drain`. Default
    /// 64 KiB; taken as at most half the high-water mark in use.
    pub low_water_bytes: usize,
    /// After a storm — a loop's connections held 8 MiB or more, then fell to an eighth of
    /// their peak — and this long calm, the loop empties its buffer pool and asks the allocator
    /// to give its free pages back to the OS (`malloc_trim` with glibc, which otherwise keeps
    /// the peak: see docs/hardening.md). Once per storm; ordinary traffic never triggers it.
    /// `None` (or a century or more, `Duration::MAX` included): never. Default 1 s.
    pub release_memory_after: Option<Duration>,
    /// How long a connection may take to send a complete HTTP request (request line, headers and
    /// body) after it connects or after its previous response. Default 10 s (slowloris guard).
    /// `Duration::MAX` (a century or more): no limit.
    pub request_timeout: Duration,
    /// How long a keep-alive HTTP connection may sit idle between a response and the first
    /// byte of its next request before it is closed. Default 30 s. `Duration::MAX` (a century
    /// or more): no limit.
    pub keep_alive_timeout: Duration,
    /// Send a ping to a WebSocket that has been silent this long (no bytes received); `None`
    /// (or a century or more, `Duration::MAX` included) sends none. Default 30 s: dead peers are
    /// found and NAT mappings stay open.
    pub ping_interval: Option<Duration>,
    /// After a keepalive ping, how long the peer has to send anything (the pong, or any frame)
    /// before the connection is dropped. Default 10 s. `Duration::MAX` (a century or more): no
    /// limit.
    pub pong_timeout: Duration,
    /// Close a WebSocket with `1001` ("going away") this long after it opened, so clients
    /// reconnect (to another server, after a deploy); `None` (or a century or more) keeps
    /// connections forever. Default `None`.
    pub max_lifetime: Option<Duration>,
    /// How long one WebSocket message may take to arrive, from its first byte to its last (all
    /// its fragments; a control frame counts too). Past it the connection is closed with `1008`:
    /// a client that announces a 16 MiB frame and sends it at 1 KiB/s is not idle, so no ping
    /// catches it, and would otherwise hold its buffer forever. Default 30 s; raise it for slow
    /// links that upload large messages (16 MiB in 30 s is 560 KB/s). `Duration::MAX` (a
    /// century or more): no limit.
    pub message_timeout: Duration,
    /// A connection whose pending output makes no progress for this long (the client does not
    /// read) is dropped and its buffers freed. Default 30 s. `Duration::MAX` (a century or
    /// more): no limit (`max_buffered_bytes` still drops the biggest stalled holders).
    pub write_stall_timeout: Duration,
    /// How long a handler call's deferred completion
    /// ([`Context::defer`](crate::Context::defer)) may take. Meanwhile the connection's next
    /// message waits (its inbox fills within `max_pending_messages`, then reading stops); past
    /// it the job is taken back, a completion that comes later gets
    /// [`DeferredError::TimedOut`](crate::DeferredError::TimedOut), and
    /// [`Handler::on_deferred_timeout`](crate::Handler::on_deferred_timeout) runs (by default:
    /// close with `1011`). The same deadline bounds an HTTP answer given later
    /// ([`HttpContext::answer_later`](crate::HttpContext::answer_later)): past it the client
    /// gets `504 Gateway Timeout` (the connection stays open if the request kept it alive),
    /// the requests pipelined behind it go on, and a late
    /// [`Responder::complete`](crate::Responder::complete) gets `TimedOut`. Default 30 s.
    /// `Duration::MAX` (a century or more): no limit.
    pub deferred_timeout: Duration,
    /// How many handler calls of one WebSocket may complete out of order at once
    /// ([`Context::defer_unordered`](crate::Context::defer_unordered): requests with ids, whose
    /// answers need not keep the order of the requests). Each outstanding one has the deadline
    /// `deferred_timeout`. At the limit, `defer_unordered` answers
    /// [`UnorderedError::TooMany`](crate::UnorderedError::TooMany) and the connection's next
    /// message waits (in its inbox, then TCP backpressure) until one completes or expires.
    /// Default 0: off (`defer_unordered` answers
    /// [`UnorderedError::Off`](crate::UnorderedError::Off)); at most
    /// [`MAX_UNORDERED_PER_CONNECTION`](Self::MAX_UNORDERED_PER_CONNECTION).
    pub max_unordered_per_connection: usize,
    /// Serve `Stats` as Prometheus text at this path (e.g. `/metrics`) instead of passing the
    /// request to the handler. Default `None` (opt-in: metrics can be sensitive).
    pub metrics_path: Option<String>,
    /// Answer `200 ok` at this path (e.g. `/healthz`) while running, `503` while shutting down.
    /// Default `None`.
    pub health_path: Option<String>,
    /// How long the loop waits for the peer's close frame (or EOF) after sending its own close
    /// frame or an error response, before dropping the TCP connection. Default 5 s.
    /// `Duration::MAX` (a century or more): as long as the peer takes.
    pub close_timeout: Duration,
    /// How long `shutdown` waits for close handshakes and queued jobs before it drops the
    /// remaining connections. Default 5 s. Zero drops them at once; `Duration::MAX` (a century
    /// or more) waits as long as they take.
    pub shutdown_timeout: Duration,
    /// How long accepting pauses after `accept` fails for lack of file descriptors
    /// (`EMFILE`/`ENFILE`), instead of spinning. Default 100 ms. `Duration::MAX` (a century or
    /// more): one such failure stops accepting for good.
    pub accept_backoff: Duration,
    /// Most readiness events taken from one `poll` call. Default 1,024. Each event loop
    /// allocates room for them when the server is built: see
    /// [`Config::MAX_PREALLOCATED_BYTES`].
    pub max_events: usize,
    /// Connections beyond `max_connections` admitted only to ask for `metrics_path` or
    /// `health_path`, so the server can still be watched when it is full. A connection on this
    /// reserve gets one answer, then is closed: `GET`/`HEAD` of one of those paths is answered
    /// as usual (with `Connection: close`); anything else — another path, an upgrade, a request
    /// with a body — gets `503` with `Retry-After: 1`, like a connection past the reserve, which
    /// is refused at once. Unused when neither path is set; 0 turns it off. Default 8: enough
    /// for a scraper and a few health checkers at once, and small, because every place is a
    /// connection beyond the limit. `usize::MAX`: unbounded.
    pub monitoring_reserve: usize,
    /// How long a connection on the monitoring reserve has, from its accept, to send its whole
    /// request head (else: `408`, or closed if it sent nothing); its linger and write-stall
    /// timeouts are capped at this too. Default 2 s: a scraper sends its request at once, and a
    /// slowloris cannot hold a place of the reserve for long. `Duration::MAX`: no cap beyond the
    /// other timeouts.
    pub monitoring_timeout: Duration,
    /// Most topics one connection may be subscribed to at once
    /// ([`Context::subscribe`](crate::Context::subscribe)). A subscription past it is refused by
    /// the event loop, logged and counted in
    /// [`Stats::subscriptions_refused`](crate::Stats::subscriptions_refused); the connection
    /// stays open. Each subscription costs an entry in its loop's registry (the name is shared),
    /// so this bounds what one client can make the server hold. 0: nobody may subscribe;
    /// `usize::MAX`: unbounded. Default 64.
    pub max_subscriptions: usize,
    /// Most timers one WebSocket may have armed at once
    /// ([`Context::set_timer`](crate::Context::set_timer); resetting an armed one does not
    /// count twice). One more is an `Err` from `set_timer`, and nothing is armed. The timers
    /// live in the connection (a key and an instant each; none allocated until the first), and
    /// each step of the connection looks through them for the earliest, so this bounds what
    /// one connection may hold and cost. 0: no timers; at most
    /// [`MAX_TIMERS_PER_CONNECTION`](Config::MAX_TIMERS_PER_CONNECTION). Default 16.
    pub max_timers_per_connection: usize,
    /// Which browser pages may open a WebSocket here, by the `Origin` of the upgrade request.
    /// A browser sends a page's cookies and HTTP credentials with an upgrade to any site, and
    /// the same-origin policy does not cover WebSockets: without this check, any page a logged-in
    /// user visits could talk to this server as that user (Cross-Site WebSocket Hijacking). The
    /// event loop checks it when the upgrade request arrives, before
    /// [`Handler::on_upgrade`](crate::Handler::on_upgrade) (so a handler that overrides
    /// `on_upgrade` keeps the protection), and refuses with `403` and a one-line reason, counted
    /// in [`Stats::origin_refused`](crate::Stats::origin_refused). Requests without `Origin`
    /// (programs, not browsers) are always accepted. Default [`OriginPolicy::SameOrigin`]: the
    /// origin's host and port must be the request's `Host` (gorilla's default); `Origin: null`
    /// is refused. [`OriginPolicy::Allow`] adds origins (`https://app.example.com`,
    /// `https://*.example.com`), checked by [`Config::validate`]; [`OriginPolicy::Any`] turns the
    /// check off. Behind a reverse proxy, see `forwarded_host`.
    pub allowed_origins: OriginPolicy,
    /// Which header, if any, the origin check takes the requested host from instead of `Host`:
    /// behind a reverse proxy that rewrites `Host` to its upstream's address
    /// (`127.0.0.1:9001`), no browser page would be same-origin. Better: have the proxy pass the
    /// client's `Host` on (nginx: `proxy_set_header Host $host;`) and leave this alone. Trust a
    /// forwarded header only when every request comes through a proxy that sets it, replacing
    /// whatever the client sent. Default [`ForwardedHost::Ignore`].
    pub forwarded_host: ForwardedHost,
    /// With a backplane ([`ServerBuilder::backplane`](crate::ServerBuilder), feature `redis`):
    /// most publications of this node waiting for the backplane's publisher thread. Past it a
    /// publication still reaches this node's subscribers but not the other nodes: dropped,
    /// counted in `Stats::backplane_publish_dropped` (a worker or a loop never waits for
    /// Redis). Default 16,384 (a few seconds of a busy node's publications while Redis is slow
    /// or being reconnected). At least 1, at most [`Config::MAX_BACKPLANE_QUEUE`] (allocated
    /// whole when the server is built).
    pub backplane_queue_capacity: usize,
    /// With a backplane: the longest any one operation on Redis may take — connecting (and
    /// `AUTH`), a pipelined batch of publications, a subscription's confirmation, loading a
    /// topic's history. Past it the connection is taken as failed and made again (what it was
    /// sending is counted as lost). Only the backplane's own threads ever wait on Redis.
    /// Default 2 s. More than zero; at its maximum, a day.
    pub backplane_timeout: Duration,
    /// With a backplane: the longest pause between two attempts to connect to Redis. The first
    /// retry comes after 50 ms (or this, if shorter), and each failure doubles the pause up to
    /// this bound. Default 5 s. More than zero.
    pub backplane_backoff_max: Duration,
    /// With recovery on for a topic (`RedisBackplane::recover`): the most publications its
    /// Redis stream keeps (`XADD ... MAXLEN`); a position older than that cannot be recovered.
    /// Default 1,000. At least 1.
    pub history_max_len: usize,
    /// With recovery on for a topic: how long a publication stays in its history. Older ones
    /// are trimmed when the topic is next published to, and the whole history expires this
    /// long after the topic's last publication (then its epoch changes). Default 10 minutes.
    /// At least 1 ms; a century or more (`Duration::MAX`): kept for as long as Redis keeps it.
    pub history_max_age: Duration,
    /// With recovery on: the most live publications held for one subscription made with
    /// `Context::subscribe_from` while its history loads (they follow the history, in order).
    /// A subscription that would hold more is refused as "cannot recover" (counted in
    /// `Stats::backplane_recovery_refused`). Default 1,024. At least 1.
    pub recovery_buffer: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 9001)),
            workers: cpus().min(Config::MAX_WORKERS),
            event_loops: cpus().min(Config::MAX_EVENT_LOOPS),
            inline_handlers: false,
            backlog: 1024,
            max_connections: 10_000,
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            max_body_size: 1024 * 1024,
            max_message_size: 16 * 1024 * 1024,
            max_frame_size: 16 * 1024 * 1024,
            max_fragments: 65_536,
            compression: false,
            compression_threshold: 1024,
            compression_level: 1,
            read_buffer_size: 16 * 1024,
            max_pooled_buffers: 256,
            max_read_per_turn: 256 * 1024,
            job_queue_capacity: 1024,
            command_queue_capacity: 4096,
            max_pending_messages: 64,
            max_pending_bytes: 1024 * 1024,
            max_outbound_bytes: 4 * 1024 * 1024,
            max_buffered_bytes: 256 * 1024 * 1024,
            high_water_bytes: 1024 * 1024,
            low_water_bytes: 64 * 1024,
            release_memory_after: Some(Duration::from_secs(1)),
            request_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(30),
            ping_interval: Some(Duration::from_secs(30)),
            pong_timeout: Duration::from_secs(10),
            max_lifetime: None,
            message_timeout: Duration::from_secs(30),
            write_stall_timeout: Duration::from_secs(30),
            deferred_timeout: Duration::from_secs(30),
            max_unordered_per_connection: 0,
            metrics_path: None,
            health_path: None,
            close_timeout: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(5),
            accept_backoff: Duration::from_millis(100),
            max_events: 1024,
            monitoring_reserve: 8,
            monitoring_timeout: Duration::from_secs(2),
            max_subscriptions: 64,
            max_timers_per_connection: 16,
            allowed_origins: OriginPolicy::SameOrigin,
            forwarded_host: ForwardedHost::Ignore,
            backplane_queue_capacity: 16 * 1024,
            backplane_timeout: Duration::from_secs(2),
            backplane_backoff_max: Duration::from_secs(5),
            history_max_len: 1000,
            history_max_age: Duration::from_secs(600),
            recovery_buffer: 1024,
        }
    }
}

/// A deadline a century away: further than any process runs, so it never comes.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// The instant `after` from `now`, for every configured duration: one that would reach past a
/// century (`Duration::MAX` included) is taken as a century, which never comes, so a duration at
/// its maximum means "forever" instead of overflowing `Instant` (which panics).
pub(crate) fn deadline_after(now: Instant, after: Duration) -> Instant {
    let mut after = after.min(FOREVER);
    loop {
        match now.checked_add(after) {
            Some(at) => return at,
            // A clock that cannot count a century ahead (none Rust supports does): the latest
            // instant it can, within a factor of two. Zero always fits, so this ends.
            None => after /= 2,
        }
    }
}

/// The number of CPUs, at least 1: the default number of workers and event loops.
fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Config {
    /// What the origin check of an upgrade needs (`allowed_origins`, `forwarded_host`).
    pub(crate) fn origin_check(&self) -> OriginCheck<'_> {
        OriginCheck {
            policy: &self.allowed_origins,
            forwarded: self.forwarded_host,
        }
    }

    /// Twice `max_outbound_bytes` (saturating): past it a push drops the connection as a slow
    /// consumer.
    pub(crate) fn max_pushed_bytes(&self) -> usize {
        self.max_outbound_bytes.saturating_mul(2)
    }

    /// How far an HTTP connection's read buffer may grow: a whole request, head and body
    /// (`max_header_bytes + max_body_size`, saturating).
    pub(crate) fn max_http_input(&self) -> usize {
        self.max_header_bytes.saturating_add(self.max_body_size)
    }

    /// The low- and high-water marks in use: `high_water_bytes` at most `max_outbound_bytes`
    /// and at least 1 (an empty queue is never past the mark: with a mark of 0 every reply, even
    /// an empty one, would owe an `on_drain`, whose reply would owe another, without end),
    /// `low_water_bytes` at most half of that.
    pub(crate) fn water_marks(&self) -> (usize, usize) {
        let high = self.high_water_bytes.min(self.max_outbound_bytes).max(1);
        (self.low_water_bytes.min(high / 2), high)
    }

    pub(crate) fn http_limits(&self) -> HttpLimits {
        HttpLimits {
            max_header_bytes: self.max_header_bytes,
            max_headers: self.max_headers,
            max_body_size: self.max_body_size,
        }
    }

    pub(crate) fn decoder_limits(&self) -> DecoderLimits {
        DecoderLimits {
            max_message_size: self.max_message_size,
            max_fragments: self.max_fragments,
            max_frame_size: self.max_frame_size,
            deflate: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_at_the_maximum_is_a_century_away() {
        let now = Instant::now();
        let second = Duration::from_secs(1);
        assert_eq!(deadline_after(now, second), now + second);
        assert_eq!(deadline_after(now, FOREVER), now + FOREVER);
        // `now + Duration::MAX` panics; this does not, and never comes.
        assert_eq!(deadline_after(now, Duration::MAX), now + FOREVER);
        let later = deadline_after(now, FOREVER);
        assert_eq!(deadline_after(later, Duration::MAX), later + FOREVER);
    }
}
