//! The phases of a connection — the states of its state machine — each holding what matters in
//! it and nothing else.
//!
//! ```text
//!            upgrade request           101 written
//!   Http ──────────────────> Upgrading ───────────> Open ──we close──> Closing
//!    │ Connection: close,        │ rejected          │ │                 │ peer's close
//!    │ bad request, EOF          │                   │ │ close frame     │ frame or EOF
//!    ▼                           ▼                   │ ▼ or EOF          ▼
//!   Lingering <──────────────────┴─protocol error────┘ PeerClosed ──> Lingering ──> Closed
//!              (flush, FIN, wait for the peer's EOF)     (answer, then linger)
//! ```
//!
//! Every move between them is made in `machine.rs`, each named for the event that causes it;
//! `docs/architecture.md` has the full table. What is *not* a phase: whether a job is with the
//! handler ([`JobSlot`], orthogonal: HTTP, upgrade and WebSocket phases all have jobs), the
//! buffers, and the clocks (in `connection.rs`).

use std::time::Instant;

use crate::config::Config;
use crate::conn_id::ConnId;
use crate::dispatch::{After, Batch, HttpLater, Inbound, Job, Reply, SessionBox};
use crate::http::{HttpError, HttpLimits, Parsed, RequestParser};
use crate::metrics::{CloseKind, Metrics};
use crate::session::armed_timers::ArmedTimers;
pub(crate) use crate::session::job_slot::{JobSlot, Taken};
use crate::session::outstanding::Outstanding;
use crate::ws::{CloseInfo, MessageDecoder, PerMessageDeflate};

/// Where a connection is in its protocol life.
#[derive(Debug)]
pub(crate) enum Phase {
    /// Reading HTTP/1.1 requests (keep-alive, pipelining), one batch with the handler at a time.
    Http(Http),
    /// A valid upgrade request is with the handler (`on_upgrade`, then `on_open`); no reading.
    Upgrading(Upgrading),
    /// A WebSocket: frames are decoded into the inbox, which becomes the next job.
    Open(Open),
    /// The peer ended the conversation (close frame or EOF) while messages before that are
    /// still with the handler: no more reading; once the handler is done, answer and linger.
    PeerClosed(PeerClosed),
    /// We sent our close frame; reading (and discarding data) until the peer's close frame.
    Closing(Closing),
    /// Nothing more to say: flush, send FIN, read and discard until the peer's EOF, so our last
    /// bytes are not destroyed by a reset.
    Lingering(Lingering),
    /// Done: the event loop removes the connection and settles its `on_close`.
    Closed(Closed),
}

/// `Http`: the request parser, and what has happened on this keep-alive connection.
#[derive(Debug, Default)]
pub(crate) struct Http {
    pub parser: RequestParser,
    /// The client's address, from `accept` (given to each request; after an upgrade the
    /// runner keeps it with the connection's session).
    pub peer: Option<std::net::SocketAddr>,
    /// At least one response went out: an idle wait is keep-alive, not a slow first request.
    pub served: bool,
    /// The client half-closed: answer what it sent, then linger.
    pub peer_eof: bool,
    /// An answer deferred, or the requests after it (`http_later.rs`).
    pub later: Option<Box<HttpLater>>,
}

impl Http {
    /// Parses the next request from `input`; a complete one carries the client's address.
    pub(crate) fn parse(&mut self, input: &[u8], limits: &HttpLimits) -> Result<Parsed, HttpError> {
        let mut parsed = self.parser.parse(input, limits)?;
        if let Parsed::Complete { request, .. } = &mut parsed {
            request.set_peer_addr(self.peer);
        }
        Ok(parsed)
    }
}

/// `Upgrading`: pushes that arrive before the `101` is written wait here, and follow it.
#[derive(Debug, Default)]
pub(crate) struct Upgrading {
    /// Boxed: 8 bytes in every connection instead of 24, for a rare case.
    #[allow(clippy::box_collection)]
    pub early: Option<Box<Vec<u8>>>,
    /// An answer deferred before the upgrade request, or the requests after it
    /// (`http_later.rs`): the upgrade is handled after them.
    pub later: Option<Box<HttpLater>>,
}

/// `Open`: the frame decoder, the messages waiting for the next job (and the out-of-order
/// completions awaited), the keepalive clock, the handler's timers. When it opened is the
/// session's `Clocks::wait_since`, which nothing moves in this phase.
#[derive(Debug)]
pub(crate) struct Open {
    pub decoder: MessageDecoder,
    pub inbox: Inbox,
    /// When our keepalive ping went out, until anything arrives (`pong_timeout`).
    pub ping_sent: Option<Instant>,
    /// When the first byte of the message (or control frame) the decoder holds in part arrived
    /// (`message_timeout`); `None` between messages.
    pub message_since: Option<Instant>,
    /// The handler's timers (`timers.rs`): empty, and unallocated, for most connections.
    pub timers: ArmedTimers,
}

impl Open {
    /// A WebSocket that opens now (the session's `wait_since`), compressing as agreed
    /// (`deflate`).
    pub(crate) fn new(deflate: Option<PerMessageDeflate>) -> Self {
        Open {
            decoder: MessageDecoder::new(),
            inbox: Inbox::new(deflate),
            ping_sent: None,
            message_since: None,
            timers: ArmedTimers::default(),
        }
    }
}

/// An open WebSocket's output against `high_water_bytes` and `low_water_bytes`: the handler hears
/// `on_drain` once output that passed the high mark falls back to the low one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Drain {
    /// Below the high mark since the last `on_drain` (or ever).
    #[default]
    Flowing,
    /// The output passed the high mark and has not fallen to the low one yet.
    Backlogged,
    /// It fell to the low mark: `on_drain` goes out with the next job.
    Due,
}

/// How the peer ended the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerEnd {
    /// With a close frame: we answer with ours, echoing its code (RFC 6455 §5.5.1).
    CloseFrame,
    /// With TCP EOF and no close frame: nothing to answer; `on_close` hears `1006`.
    Eof,
    /// By breaking the protocol after messages that are still with the handler: their replies
    /// go out first, then our close frame with the error's code (what Autobahn calls strict).
    ProtocolError,
}

/// `PeerClosed`: the last messages, and how the conversation ended.
#[derive(Debug)]
pub(crate) struct PeerClosed {
    pub inbox: Inbox,
    pub how: PeerEnd,
    /// What `on_close` will be told.
    pub ended: CloseInfo,
}

/// `Closing`: we wait for the peer's close frame.
#[derive(Debug)]
pub(crate) struct Closing {
    pub decoder: MessageDecoder,
    /// permessage-deflate was agreed: the peer's frames in flight may still be compressed.
    pub deflate: bool,
    /// What `on_close` will be told: our code and reason.
    pub ended: CloseInfo,
    /// Why the connection ends, for the stats (the server's decision, or a clean close).
    pub end: CloseKind,
}

/// `Lingering`: the polite end of every path.
#[derive(Debug)]
pub(crate) struct Lingering {
    /// FIN went out after the last byte.
    pub fin_sent: bool,
    /// The peer has closed its side too: the connection can go once our bytes are out.
    pub peer_eof: bool,
    /// Why the connection ends, for the stats.
    pub end: CloseKind,
    /// For a WebSocket, what `on_close` will be told; `None` for plain HTTP.
    pub on_close: Option<CloseInfo>,
}

/// `Closed`: why, and what the handler is still owed.
#[derive(Debug)]
pub(crate) struct Closed {
    pub kind: CloseKind,
    pub on_close: OnClose,
}

/// The `on_close` a closed connection is owed. Exactly one is owed to every connection that had
/// `on_open`, after its last `on_message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OnClose {
    /// Plain HTTP, or an upgrade that never reached the handler: nothing.
    Nothing,
    /// A WebSocket: `on_close` with this.
    Call(CloseInfo),
    /// The upgrade job was running when the connection went: `on_open` runs only if it accepts,
    /// and then `on_close` (`1006`) must follow it.
    IfUpgradeAccepted,
}

/// What a closed connection is owed, as a value the table must consume: it becomes the
/// `on_close` job ([`now`](Self::now)), waits for the reply of the job that was running
/// ([`settle`](Self::settle)), or is given up at the very end of a shutdown that could not wait
/// ([`skip`](Self::skip)). Dropping one that owes a call is a bug: debug builds panic.
#[derive(Debug)]
#[must_use = "an owed on_close is settled, delivered or skipped, never forgotten"]
pub(crate) struct OwedClose {
    owed: OnClose,
    done: bool,
}

impl OwedClose {
    pub(crate) fn new(owed: OnClose) -> Self {
        OwedClose { owed, done: false }
    }

    /// Owes a handler call at all (or may, if an upgrade that was running accepts)?
    pub(crate) fn is_owed(&self) -> bool {
        self.owed != OnClose::Nothing
    }

    /// The `on_close` job for `conn` now, no job of the connection being with the handler:
    /// with the handler's `state`.
    pub(crate) fn now(mut self, conn: ConnId, state: Option<SessionBox>) -> Option<Job> {
        self.done = true;
        match std::mem::replace(&mut self.owed, OnClose::Nothing) {
            OnClose::Call(info) => Some(Job::Close {
                conn,
                info,
                session: state,
            }),
            OnClose::Nothing | OnClose::IfUpgradeAccepted => None,
        }
    }

    /// The `on_close` job once the reply of the job that was running has arrived: with the
    /// state that reply brought back.
    pub(crate) fn settle(mut self, reply: &mut Reply) -> Option<Job> {
        self.done = true;
        let info = match std::mem::replace(&mut self.owed, OnClose::Nothing) {
            OnClose::Nothing => None,
            OnClose::Call(info) => Some(info),
            OnClose::IfUpgradeAccepted => {
                matches!(reply.after, After::Upgraded { .. }).then(CloseInfo::abnormal)
            }
        }?;
        Some(Job::Close {
            conn: reply.conn(),
            info,
            session: reply.session.take(),
        })
    }

    /// Given up: the reply it waited for never came before the shutdown ended.
    pub(crate) fn skip(mut self) {
        self.done = true;
    }
}

impl Drop for OwedClose {
    fn drop(&mut self) {
        if !self.done && self.is_owed() && !std::thread::panicking() {
            log::error!("an owed on_close was dropped: {:?}", self.owed);
            debug_assert!(false, "an owed on_close was dropped: {:?}", self.owed);
        }
    }
}

/// Messages decoded while the previous job runs: they become the next job, as one batch —
/// with the calls an open WebSocket owes its handler besides them (`on_drain`,
/// `on_deferred_timeout`, the pongs of its pings). (That bookkeeping sits in what would be the
/// inbox's padding: an idle connection's size is a headline number.)
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    messages: Vec<Inbound>,
    bytes: usize,
    /// The connection's permessage-deflate agreement, fixed at the upgrade: it goes out with
    /// every batch, so that whoever runs the handler inflates and compresses.
    deflate: Option<PerMessageDeflate>,
    /// Where the output stands against the high- and low-water marks (`on_drain`).
    pub drain: Drain,
    /// A deferred completion passed its deadline: `on_deferred_timeout` goes out with the next
    /// job.
    pub expired: bool,
    /// Pings the handler sent whose pongs have not come: that many pongs join the inbox for
    /// `on_pong`; others (unsolicited, or answering the keepalive) make no work.
    pub pongs_owed: u16,
    /// Out-of-order completions outstanding (`unordered.rs`): `None` while there are none.
    pub unordered: Option<Box<Outstanding>>,
}

impl Inbox {
    /// An empty inbox for a connection that agreed on `deflate`, or not.
    pub(crate) fn new(deflate: Option<PerMessageDeflate>) -> Self {
        Inbox {
            deflate,
            ..Inbox::default()
        }
    }

    /// Did the connection agree on permessage-deflate?
    pub(crate) fn deflate(&self) -> bool {
        self.deflate.is_some()
    }

    /// Adds a decoded message.
    #[inline]
    pub(crate) fn push(&mut self, message: Inbound) {
        if self.messages.capacity() == 0 {
            // A batch usually holds several messages: skip the 1, 2, 4 reallocations.
            self.messages.reserve(8);
        }
        self.bytes += message.len();
        self.messages.push(message);
    }

    /// Holds as much as a connection may while its previous job runs (`max_pending_messages`,
    /// `max_pending_bytes`): the one place this limit is checked.
    pub(crate) fn is_full(&self, config: &Config) -> bool {
        self.messages.len() >= config.max_pending_messages || self.bytes >= config.max_pending_bytes
    }

    /// Nothing held and nothing outstanding: no call of the handler is owed.
    pub(crate) fn is_settled(&self) -> bool {
        self.messages.is_empty() && self.unordered.is_none()
    }

    /// Payload bytes of the messages held now.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Messages held now.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn len(&self) -> usize {
        self.messages.len()
    }

    /// What a reply brings back: the messages its job left unhandled (a call deferred before
    /// them) come back first — they arrived before every message held now —, and the pings its
    /// calls sent are owed their pongs.
    pub(crate) fn requeue(&mut self, unhandled: Vec<Inbound>, pings: u16) {
        self.pongs_owed = self.pongs_owed.saturating_add(pings);
        if unhandled.is_empty() {
            return;
        }
        self.bytes += unhandled.iter().map(Inbound::len).sum::<usize>();
        let newer = std::mem::replace(&mut self.messages, unhandled);
        self.messages.extend(newer);
    }

    /// Takes every message, for the next job.
    pub(crate) fn take(&mut self) -> Option<Batch> {
        if self.messages.is_empty() {
            return None;
        }
        Some(Batch {
            messages: std::mem::take(&mut self.messages),
            bytes: std::mem::take(&mut self.bytes),
            deflate: self.deflate,
            drained: false,
            expired: false,
            timers: None,
            unordered: 0,
        })
    }

    /// Takes the connection's own items — out-of-order completions and their timeouts —
    /// leaving the peer's messages in order: for a job while messages wait for room
    /// (`unordered.rs`).
    pub(crate) fn take_own(&mut self) -> Option<Batch> {
        let (own, peers): (Vec<_>, Vec<_>) = std::mem::take(&mut self.messages)
            .into_iter()
            .partition(|m| !m.is_from_peer());
        self.messages = peers;
        let mut batch = self.empty_batch();
        batch.bytes = own.iter().map(Inbound::len).sum();
        self.bytes -= batch.bytes;
        batch.messages = own;
        (!batch.messages.is_empty()).then_some(batch)
    }

    /// A batch of no messages (to carry `on_drain` alone).
    pub(crate) fn empty_batch(&self) -> Batch {
        Batch {
            messages: Vec::new(),
            bytes: 0,
            deflate: self.deflate,
            drained: false,
            expired: false,
            timers: None,
            unordered: 0,
        }
    }
}

impl Phase {
    /// The phase's name, as the trace and the docs spell it.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Phase::Http(_) => "Http",
            Phase::Upgrading(_) => "Upgrading",
            Phase::Open(_) => "Open",
            Phase::PeerClosed(_) => "PeerClosed",
            Phase::Closing(_) => "Closing",
            Phase::Lingering(_) => "Lingering",
            Phase::Closed(_) => "Closed",
        }
    }

    /// The `phase_*` gauge that counts connections in this phase (none for `Closed`: a closed
    /// connection leaves the slab in the same step).
    pub(crate) fn gauge<'m>(
        &self,
        metrics: &'m Metrics,
    ) -> Option<&'m std::sync::atomic::AtomicU64> {
        match self {
            Phase::Http(_) => Some(&metrics.phase_http),
            Phase::Upgrading(_) => Some(&metrics.phase_upgrading),
            Phase::Open(_) => Some(&metrics.phase_open),
            Phase::PeerClosed(_) => Some(&metrics.phase_peer_closed),
            Phase::Closing(_) => Some(&metrics.phase_closing),
            Phase::Lingering(_) => Some(&metrics.phase_lingering),
            Phase::Closed(_) => None,
        }
    }

    /// What a deferred HTTP answer left (`http_later.rs`), in the phases that can have it.
    pub(crate) fn http_later(&mut self) -> Option<&mut Option<Box<HttpLater>>> {
        match self {
            Phase::Http(http) => Some(&mut http.later),
            Phase::Upgrading(upgrading) => Some(&mut upgrading.later),
            _ => None,
        }
    }

    /// The inbox, in the phases that have one.
    pub(crate) fn inbox(&self) -> Option<&Inbox> {
        match self {
            Phase::Open(open) => Some(&open.inbox),
            Phase::PeerClosed(closed) => Some(&closed.inbox),
            _ => None,
        }
    }

    /// The inbox, mutably, in the phases that have one.
    pub(crate) fn inbox_mut(&mut self) -> Option<&mut Inbox> {
        match self {
            Phase::Open(open) => Some(&mut open.inbox),
            Phase::PeerClosed(closed) => Some(&mut closed.inbox),
            _ => None,
        }
    }
}

/// The rules the types keep, each tried the way it could be broken.
#[cfg(test)]
mod tests;
