//! The units of work that cross between a connection's session and whoever runs its handler.
//!
//! A session hands out a [`Job`]: everything one connection has ready (its pipelined HTTP
//! requests, or the messages decoded since its previous job), with the [`Lease`] on the
//! connection's one job slot. A [`Reply`] brings back the bytes the handler produced, already
//! encoded for the socket ([`Output`]), what the session must do after writing them ([`After`]),
//! and the lease — the only way a session takes a reply back. `on_close` is the one job without
//! a lease: it is the connection's last call, and nothing comes back from it.
//!
//! These are the types the hand-off carries (`handoff.rs`); nothing here runs anything.

use std::cell::Cell;

use crate::buffer::OWNED_CHUNK_MIN;
use crate::conn_id::ConnId;
use crate::dispatch::http_later::{HttpLater, HttpTail};
use crate::dispatch::timers::{FiredTimers, TimerBook};
use crate::dispatch::topics::TopicRequest;
use crate::dispatch::unordered::{CompletionBox, Started};
use crate::http::Request;
use crate::ws::deflate::compress;
use crate::ws::{
    CloseFrame, CloseInfo, Compressed, Message, OpCode, PerMessageDeflate, WsError,
    encode_data_header, encode_frame,
};

/// The handler's per-connection state, type-erased: the core carries it between the connection
/// and the jobs; only the runner (which knows the handler's `Session` type) looks inside.
pub(crate) type SessionBox = Box<dyn std::any::Any + Send>;

/// The one job a connection may have out at a time, lent with the job and given back with its
/// reply: the type that keeps a connection's handler calls from overlapping. Only a session's
/// job slot makes one (`session/phase.rs`, `JobSlot::lend`); only a reply carries it home.
///
/// It cannot be copied. A lease dropped on the way — not given back to its slot, nor settled
/// for a connection that has gone — is a bug: debug builds panic, release builds log it. The
/// one exception is what a loop that has shut down drops with its reply channel
/// ([`drop_with_the_loop`]).
#[derive(Debug)]
#[must_use = "a lease goes back to its connection in the job's reply"]
pub(crate) struct Lease {
    conn: ConnId,
    /// Payload bytes the job carries: charged to the connection until the lease is back.
    bytes: usize,
    done: bool,
}

impl Lease {
    /// A lease on `conn`'s job slot for a job of `bytes` payload bytes (`JobSlot::lend`).
    pub(crate) fn new(conn: ConnId, bytes: usize) -> Self {
        Lease {
            conn,
            bytes,
            done: false,
        }
    }

    pub(crate) fn conn(&self) -> ConnId {
        self.conn
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The lease is back where it belongs (its slot, or the settlement of a connection that
    /// went while its job ran).
    pub(crate) fn end(mut self) {
        self.done = true;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let with_the_loop = LOOP_GONE.with(Cell::get);
        if !self.done && !with_the_loop && !std::thread::panicking() {
            log::error!("{}: a job's lease was dropped, not given back", self.conn);
            debug_assert!(false, "{}: a job's lease was dropped", self.conn);
        }
    }
}

thread_local! {
    /// Set on a loop thread while [`drop_with_the_loop`] drops what it held.
    static LOOP_GONE: Cell<bool> = const { Cell::new(false) };
}

/// Drops `leftovers` — a shut-down loop's reply channel — on this thread, where the leases in
/// it may go without being given back: their connections went with the loop. (A reply that
/// lands in the channel after the loop's last look at it is dropped with the channel; nothing
/// can take it back any more.)
pub(crate) fn drop_with_the_loop<T>(leftovers: T) {
    LOOP_GONE.with(|gone| gone.set(true));
    drop(leftovers);
    LOOP_GONE.with(|gone| gone.set(false));
}

/// Work for the handler.
#[derive(Debug)]
pub(crate) enum Job {
    /// Handler calls whose reply comes back to the connection.
    Run(Run),
    /// The connection has closed: call `on_close`, its last call. No reply comes back.
    Close {
        conn: ConnId,
        info: CloseInfo,
        session: Option<SessionBox>,
    },
}

/// One connection's batch of handler calls.
#[derive(Debug)]
pub(crate) struct Run {
    pub lease: Lease,
    pub work: Work,
    /// The connection's session, lent to the handler for this job (`None` before the upgrade):
    /// with at most one job out per connection, it needs no lock.
    pub session: Option<SessionBox>,
    /// Bytes queued for the connection when the job left (`Context::queued_bytes`).
    pub queued: usize,
}

impl Job {
    /// The connection the job is for.
    pub(crate) fn conn(&self) -> ConnId {
        match self {
            Job::Run(run) => run.lease.conn,
            Job::Close { conn, .. } => *conn,
        }
    }

    /// A short description for the trace: `3 messages`, `1 HTTP request + upgrade`.
    pub(crate) fn describe(&self) -> String {
        match self {
            Job::Run(run) => run.work.describe(),
            Job::Close { info, .. } => format!("on_close ({})", info.code),
        }
    }
}

/// What a job asks the handler to do.
#[derive(Debug)]
pub(crate) enum Work {
    /// Pipelined HTTP requests, answered in order, then possibly an upgrade or an error.
    Http {
        requests: Vec<Request>,
        tail: HttpTail,
    },
    /// WebSocket messages that arrived since the previous job, in order.
    Messages(Batch),
}

impl Work {
    /// A short description for the trace: `3 messages`, `1 HTTP request + upgrade`.
    pub(crate) fn describe(&self) -> String {
        match self {
            Work::Messages(batch) => plural(batch.messages.len(), "message"),
            Work::Http { requests, tail } => {
                let tail = match tail {
                    HttpTail::None | HttpTail::Close => "",
                    HttpTail::Upgrade(_) => "the upgrade request",
                    HttpTail::Error(_) => "a bad request",
                };
                match (requests.len(), tail) {
                    (n, "") => plural(n, "HTTP request"),
                    (0, tail) => tail.to_owned(),
                    (n, tail) => format!("{} + {tail}", plural(n, "HTTP request")),
                }
            }
        }
    }

    /// Payload bytes the job carries (messages, request bodies): what the memory budget charges
    /// to its connection while the job is held or with the handler.
    pub(crate) fn held_bytes(&self) -> usize {
        match self {
            Work::Messages(batch) => batch.bytes,
            Work::Http { requests, .. } => requests.iter().map(|r| r.body().len()).sum(),
        }
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// The messages of one job, and how this connection compresses.
#[derive(Debug)]
pub(crate) struct Batch {
    /// In the order they arrived.
    pub messages: Vec<Inbound>,
    /// Their payload bytes, as the inbox counted them while they arrived.
    pub bytes: usize,
    /// The connection's permessage-deflate agreement: whoever runs the job inflates the
    /// compressed messages and compresses the replies with it.
    pub deflate: Option<PerMessageDeflate>,
    /// The connection's output fell from past `high_water_bytes` to `low_water_bytes`: call
    /// `on_drain` first.
    pub drained: bool,
    /// A deferred completion of the connection passed its deadline: call
    /// `on_deferred_timeout` first of all.
    pub expired: bool,
    /// The connection's timers, if it has any: those that fired (`on_timer` for each, after
    /// `on_drain`), and the keys of the others. Boxed: rare, and a job stays small.
    pub timers: Option<Box<FiredTimers>>,
    /// Out-of-order completions of the connection outstanding when the batch left
    /// (`Context::defer_unordered` counts against its limit from there).
    pub unordered: usize,
}

/// What the loop decoded for the handler: a data message, ready or still compressed, or a pong
/// that answers a ping the handler sent. [`Inbound::into_call`] inflates, wherever the handler
/// runs; a loop with the worker pool inflates only a message it may handle itself
/// (`runner/on_loop.rs`), and the rest of that work belongs to the workers.
#[derive(Debug)]
pub(crate) enum Inbound {
    Message(Message),
    Compressed(Compressed),
    /// A pong's payload, for `on_pong` (at most 125 bytes).
    Pong(Vec<u8>),
    /// An out-of-order completion came (`unordered.rs`): the handler's closure, to run.
    Completion(CompletionBox),
    /// An out-of-order completion with this tag passed its deadline: `on_unordered_timeout`.
    UnorderedTimeout(u64),
}

/// One handler call of a batch, ready to make.
#[derive(Debug)]
pub(crate) enum Call {
    /// `on_message`.
    Message(Message),
    /// `on_pong`, with the pong's payload.
    Pong(Vec<u8>),
    /// An out-of-order completion's closure.
    Completion(CompletionBox),
    /// `on_unordered_timeout`, with the tag.
    UnorderedTimeout(u64),
}

impl Inbound {
    /// Bytes it holds now (compressed bytes for a compressed message).
    pub(crate) fn len(&self) -> usize {
        match self {
            Inbound::Message(message) => message.len(),
            Inbound::Compressed(compressed) => compressed.payload.len(),
            Inbound::Pong(payload) => payload.len(),
            Inbound::Completion(_) | Inbound::UnorderedTimeout(_) => 0,
        }
    }

    /// The call to make: a message inflated if need be to at most `max_message_size` bytes,
    /// or a pong.
    pub(crate) fn into_call(self, max_message_size: usize) -> Result<Call, WsError> {
        match self {
            Inbound::Message(message) => Ok(Call::Message(message)),
            Inbound::Compressed(compressed) => {
                compressed.inflate(max_message_size).map(Call::Message)
            }
            Inbound::Pong(payload) => Ok(Call::Pong(payload)),
            Inbound::Completion(call) => Ok(Call::Completion(call)),
            Inbound::UnorderedTimeout(tag) => Ok(Call::UnorderedTimeout(tag)),
        }
    }

    /// Is it a call from the peer (a message, a pong) — which waits while the connection has
    /// as many out-of-order completions outstanding as it may — rather than one of the
    /// connection's own completions or their timeouts, which never wait behind those?
    pub(crate) fn is_from_peer(&self) -> bool {
        matches!(
            self,
            Inbound::Message(_) | Inbound::Compressed(_) | Inbound::Pong(_)
        )
    }
}

/// How a handler's messages are compressed on their way out, when the connection negotiated
/// permessage-deflate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Compressing {
    /// The window the client allows (`server_max_window_bits`).
    pub window_bits: u8,
    /// `Config::compression_level`.
    pub level: u32,
    /// `Config::compression_threshold`: shorter messages go uncompressed.
    pub threshold: usize,
}

/// Bytes produced by a handler call, already encoded for the wire: `chunks`, then `bytes`.
#[derive(Debug, Default)]
pub(crate) struct Output {
    /// Earlier output, sealed: packed small frames, and large payloads in their own buffers
    /// (moved here from the handler's `Message`, never copied).
    pub(crate) chunks: Vec<Vec<u8>>,
    /// Encoded frames or HTTP responses being packed, after `chunks`.
    pub(crate) bytes: Vec<u8>,
    /// WebSocket data messages among them (for the stats).
    pub(crate) messages: u64,
    /// How many of those went compressed.
    pub(crate) compressed: u64,
    /// A close frame to send after `bytes`, if the handler asked to close (or panicked).
    pub(crate) close: Option<CloseFrame>,
    /// Compress data messages (permessage-deflate), or not.
    pub(crate) compressing: Option<Compressing>,
    /// A compressed message of the batch could not be inflated (`1007`, `1009`): the peer broke
    /// the protocol. What came before it was handled; the session fails the connection.
    pub(crate) failed: Option<WsError>,
    /// Pings the handler sent (`Context::ping`): as many pongs go to its `on_pong`.
    pub(crate) pings: u16,
    /// Subscriptions and publications the handler asked for, in order, each placed among the
    /// chunks (`topics.rs`). Empty for a connection that uses no topics.
    pub(crate) topics: Vec<TopicRequest>,
    /// Messages of the job that no call handled, because one deferred its completion
    /// (`deferred.rs`): back to the connection's inbox, ahead of newer ones, for the next job.
    pub(crate) unhandled: Vec<Inbound>,
    /// The connection's timers as the calls see them, and what they asked of them
    /// (`timers.rs`): made by the first call that touches them, or by a job that brought some.
    pub(crate) timers: Option<Box<TimerBook>>,
    /// Out-of-order completions its calls started (`Context::defer_unordered`), for the
    /// session to wait for (`unordered.rs`).
    pub(crate) unordered: Started,
    /// An HTTP answer was deferred (`http_later.rs`): the requests after it, for the session.
    pub(crate) http: Option<Box<HttpLater>>,
}

impl Output {
    /// Output with room for `bytes` bytes of small frames.
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        Output {
            bytes: Vec::with_capacity(bytes),
            ..Output::default()
        }
    }

    /// Empty output that compresses as this one does: where a deferred call's completion
    /// sends.
    pub(crate) fn sibling(&self) -> Self {
        Output {
            compressing: self.compressing,
            timers: self.timers.as_ref().map(|book| Box::new(book.sibling())),
            ..Output::default()
        }
    }

    /// The timers' book, made for a connection that may arm `limit` if no call touched them yet.
    pub(crate) fn timers(&mut self, limit: usize) -> &mut TimerBook {
        self.timers
            .get_or_insert_with(|| Box::new(TimerBook::new(FiredTimers::default(), limit)))
    }

    /// Appends one data frame, compressed if the connection negotiated it and the message
    /// reaches the threshold; a large payload is kept in its own buffer behind its header.
    pub(crate) fn push_message(&mut self, message: Message) {
        let opcode = message.opcode();
        let deflated = self
            .compressing
            .filter(|c| message.len() >= c.threshold)
            .map(|c| compress(message.as_bytes(), c.window_bits, c.level));
        let (payload, compressed) = match deflated {
            Some(deflated) => (deflated, true),
            None if message.len() < OWNED_CHUNK_MIN => {
                encode_frame(&mut self.bytes, opcode, message.as_bytes());
                self.messages += 1;
                return;
            }
            None => (message.into_bytes(), false),
        };
        encode_data_header(&mut self.bytes, opcode, payload.len(), compressed);
        self.compressed += u64::from(compressed);
        if payload.len() >= OWNED_CHUNK_MIN {
            self.chunks.push(std::mem::take(&mut self.bytes));
            self.chunks.push(payload);
        } else {
            self.bytes.extend_from_slice(&payload);
        }
        self.messages += 1;
    }

    /// Appends one control frame (a ping from the handler): never compressed, not counted as a
    /// message. `payload` is at most 125 bytes (the caller checks).
    pub(crate) fn push_control(&mut self, opcode: OpCode, payload: &[u8]) {
        encode_frame(&mut self.bytes, opcode, payload);
        if opcode == OpCode::Ping {
            self.pings = self.pings.saturating_add(1);
        }
    }

    /// Bytes in it, over all chunks.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len() + self.chunks.iter().map(Vec::len).sum::<usize>()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every byte, in order, as buffers to queue.
    pub(crate) fn into_chunks(self) -> impl Iterator<Item = Vec<u8>> {
        self.chunks.into_iter().chain(std::iter::once(self.bytes))
    }
}

/// The answer to one job: it brings the job's lease home.
#[derive(Debug)]
pub(crate) struct Reply {
    pub lease: Lease,
    pub output: Output,
    pub after: After,
    /// The session, given back (made by the upgrade's `on_open`, or the one the job took).
    pub session: Option<SessionBox>,
}

impl Reply {
    /// The connection the reply is for.
    pub(crate) fn conn(&self) -> ConnId {
        self.lease.conn
    }
}

/// What the session does once a reply's bytes are queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum After {
    /// Carry on in the same phase.
    Continue,
    /// The `101` went out: the connection now speaks WebSocket, compressed if `deflate` was
    /// agreed.
    Upgraded { deflate: Option<PerMessageDeflate> },
    /// The last HTTP response asked to close, or rejected the upgrade: flush, then close.
    /// `bad_request`: the batch ended with bytes that are not HTTP (a protocol error).
    CloseHttp { bad_request: bool },
}
