//! What user code implements: the [`Handler`] trait, and the [`Context`] it replies through.
//!
//! Each WebSocket connection owns a value of the handler's [`Handler::Session`] type: made when
//! the upgrade is accepted, lent (`&mut`, through [`Context::session_mut`]) to `on_open` and every
//! `on_message`, and given to `on_close` at the end. Because a connection has at most one job
//! with the handler at a time, the session travels with the job to whichever thread runs it and
//! back — no lock, no map from ids to state.
//!
//! By default the event loop never calls a handler. It turns bytes into requests and messages and
//! sends them as jobs to the worker pool; a worker calls the handler (through `runner.rs`) with a
//! `Context`, collects what the handler sends into one batch of encoded frames, and gives that
//! batch back to the loop, which writes it. So a handler may block (database call, file read) without stalling other
//! connections, and calls for one connection never overlap: `on_open`, each `on_message` and
//! `on_close` run one after another, in order, even though any worker may run each of them.
//!
//! The exception is [`Config::inline_handlers`](crate::Config::inline_handlers): then the
//! loop calls the handler itself, on its own thread, in the same order. That is the fastest path
//! for handlers that never block, and stalls the loop's other connections for one that does.
//! Between the two, the loop also makes the calls a handler declares non-blocking
//! ([`Handler::answers_without_blocking`], [`Handler::handles_without_blocking`]).
//!
//! A handler reaches other connections through topics too: `Context::subscribe` and
//! `Context::publish` travel with the same batch, in order with its sends, and the loop carries
//! them out against its registry of subscriptions (`session/topics.rs`, `netpoller/topics.rs`).

pub(crate) mod call;
pub(crate) mod deferred;
mod http;
mod responder;
mod timers;
mod topics;
mod unordered;
mod upgrade;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::conn_id::ConnId;
use crate::dispatch::Output;
use crate::dispatch::ServerHandle;
use crate::error::PingError;
use crate::http::{Request, Response, split_target};
use crate::prometheus::Exposition;
use crate::ws::frame::MAX_CONTROL_PAYLOAD;
use crate::ws::{CloseCode, CloseFrame, CloseInfo, Message, OpCode};

pub use deferred::{Deferred, DeferredError};
pub(crate) use http::Given;
pub use http::{Answer, HttpContext};
pub use responder::Responder;
pub(crate) use responder::{HttpCell, internal_error_response};
pub use unordered::{Unordered, UnorderedError};
pub use upgrade::{Upgrade, UpgradeOffer};

/// The application's side of the server. Every method but `on_message` has a default.
///
/// The methods run on worker threads — or on the event-loop threads with
/// [`Config::inline_handlers`](crate::Config::inline_handlers), or when declared non-blocking —
/// so the threaded server
/// ([`ServerBuilder::build`](crate::ServerBuilder::build)) wants a handler that is
/// `Send + Sync`, and sessions that are `Send`; a server driven by the caller's thread
/// ([`ServerBuilder::build_driven`](crate::ServerBuilder::build_driven)) calls them on that
/// thread only, and takes handlers and sessions that are neither (`Rc<RefCell<_>>` state shared
/// with the caller's own loop). There is one call per connection at a time, in order. A panic in any of them
/// is caught: the connection is closed with `1011` (or `500` for HTTP) and the server keeps
/// running.
///
/// A closure `Fn(&mut Context<'_>, Message)` is a `Handler` too (with `()` sessions), for
/// one-line servers:
///
/// ```no_run
/// let server = wsreactor::Server::builder()
///     .build(|ctx: &mut wsreactor::Context<'_>, msg: wsreactor::Message| ctx.send(msg))
///     .expect("bind");
/// server.join().expect("clean exit");
/// ```
pub trait Handler: 'static {
    /// What each WebSocket connection keeps between calls: the value `on_upgrade` accepted
    /// with ([`Upgrade::accept_with`]; `Default::default()` for [`Upgrade::accept`]), then in
    /// [`Context::session_mut`] for `on_open` and every `on_message`, and by value in
    /// `on_close`. `()` when there is nothing to keep (an idle connection then costs nothing
    /// more). `Send` for the threaded server (it travels with each job to whichever worker runs
    /// it), and for [`Context::defer`]; a driven server's may be anything.
    type Session: Default + 'static;

    /// Decides on a valid WebSocket upgrade request (any path, by default). `offer` holds the
    /// subprotocols the client offered, the compression the server would agree to, and how the
    /// request's `Origin` passed the origin check ([`UpgradeOffer::origin`]). Check the path, an
    /// auth header here; return [`Upgrade::reject`] to answer with a status instead of `101`,
    /// [`Upgrade::accept_with`] to start the connection's session with what was learnt here
    /// (the user a token names), or [`Upgrade::without_compression`] to decline compression.
    ///
    /// The origin check has already run, on the event loop, when this is called: an upgrade from
    /// a page of another site than
    /// [`Config::allowed_origins`](crate::Config::allowed_origins) allows never gets here (it
    /// was answered `403`), whatever this method does.
    fn on_upgrade(&self, request: &Request, offer: &UpgradeOffer) -> Upgrade<Self::Session> {
        let _ = (request, offer);
        Upgrade::accept()
    }

    /// A WebSocket connection is open (the `101` is ahead of anything sent here). The upgrade
    /// request, with every header, is in [`Context::request`] (here only): fill the session
    /// with what later calls need.
    fn on_open(&self, ctx: &mut Context<'_, Self::Session>) {
        let _ = ctx;
    }

    /// A complete text or binary message arrived (fragments reassembled, UTF-8 checked).
    fn on_message(&self, ctx: &mut Context<'_, Self::Session>, message: Message);

    /// A call of this connection deferred its completion ([`Context::defer`]) and
    /// [`Config::deferred_timeout`](crate::Config::deferred_timeout) passed before it came: the
    /// connection has moved on (what the call sent before deferring went out; the completion,
    /// if it comes, gets [`DeferredError::TimedOut`]). Runs before anything else of the
    /// connection's next job. The default closes the connection with `1011` (internal error):
    /// its client was left without an answer. If the client closed meanwhile (its close frame
    /// or EOF came while the call was deferred) it still runs, before the messages that came
    /// ahead of the close (a close here drops them, as always), and the connection ends as the
    /// client asked: the close frame echoes the client's code. If the server closed it meanwhile (`Context::close`, `ServerHandle::close`,
    /// shutdown, a deadline) it does not run: the connection is ending, and only `on_close`
    /// follows.
    fn on_deferred_timeout(&self, ctx: &mut Context<'_, Self::Session>) {
        ctx.close(CloseCode::Error, "deferred reply timed out");
    }

    /// A call deferred out of order ([`Context::defer_unordered`]) with `tag`, and
    /// [`Config::deferred_timeout`](crate::Config::deferred_timeout) passed before its
    /// completion came (which now gets [`DeferredError::TimedOut`]). Runs in order with the
    /// connection's other calls, in its next job. The default closes the connection with
    /// `1011`, as [`on_deferred_timeout`](Self::on_deferred_timeout) does; a handler that
    /// answers requests with ids would rather send an error for `tag` and go on.
    fn on_unordered_timeout(&self, ctx: &mut Context<'_, Self::Session>, tag: u64) {
        let _ = tag;
        ctx.close(CloseCode::Error, "deferred reply timed out");
    }

    /// A timer this connection set ([`Context::set_timer`]) came due: `key` is the one it was
    /// set with. Runs in order with the connection's other calls — never beside one, and not
    /// while a call's completion is deferred: a timer that comes due meanwhile fires after it —
    /// after `on_drain` and before the messages of its job. A fired timer is no longer armed
    /// (set it again for a heartbeat); one reset or cancelled before its call is not called.
    /// Never called once the connection is closing.
    fn on_timer(&self, ctx: &mut Context<'_, Self::Session>, key: u64) {
        let _ = (ctx, key);
    }

    /// A pong answered a ping this handler sent ([`Context::ping`]): `payload` is the pong's
    /// (RFC 6455 §5.5.3: the ping's, echoed). Runs in order with the connection's messages,
    /// where the pong arrived among them. Each ping sent is owed one pong, so a handler that
    /// never pings is never called; pongs beyond those (unsolicited ones, answers to the
    /// server's keepalive pings) are taken as signs of life and go no further — which is why a
    /// pong may answer the keepalive while one of yours is out: match on the payload. For an
    /// application keepalive or a round-trip time: send a ping with a time or a counter in a
    /// timer ([`Context::set_timer`]), and compare here.
    fn on_pong(&self, ctx: &mut Context<'_, Self::Session>, payload: &[u8]) {
        let _ = (ctx, payload);
    }

    /// The output queued for this WebSocket passed `high_water_bytes` (a send answered
    /// [`Pressure::High`]) and has now fallen to `low_water_bytes`: the client reads again,
    /// and it is time to resume sending. Runs before the messages of its job, if any.
    fn on_drain(&self, ctx: &mut Context<'_, Self::Session>) {
        let _ = ctx;
    }

    /// The connection has closed; no more messages will arrive and nothing more can be sent to
    /// it. Called exactly once for every connection that had `on_open`, after its last
    /// `on_message`, with its session. `server` can reach the other connections.
    fn on_close(
        &self,
        conn: ConnId,
        session: Self::Session,
        close: &CloseInfo,
        server: &ServerHandle,
    ) {
        let _ = (conn, session, close, server);
    }

    /// A plain HTTP request (not an upgrade), with its connection's [`HttpContext`] (the
    /// server handle, the connection's id). Pipelined requests are answered in order. The
    /// default calls [`on_http_request`](Self::on_http_request): a handler implements one or
    /// the other.
    fn on_http(&self, ctx: &mut HttpContext<'_>, request: Request) -> Answer {
        let _ = ctx;
        Answer::from(self.on_http_request(&request))
    }

    /// A plain HTTP request (not an upgrade), for handlers that need no context: called by the
    /// default [`on_http`](Self::on_http). Pipelined requests are answered in order. The
    /// default answers `404 Not Found`.
    fn on_http_request(&self, request: &Request) -> Response {
        let _ = request;
        Response::not_found()
    }

    /// Whether [`on_http`](Self::on_http) answers `request` without blocking — a page from
    /// memory, a redirect, a `404` — so that, with the worker pool, the event loop answers it
    /// itself instead of handing it to a worker and taking the answer back (two thread switches
    /// and a wake-up per request; docs/benchmarks.md measures the difference). Such a call holds
    /// up every other connection of its loop while it runs: say `true` only for answers that
    /// never wait (no I/O, no lock held for long); an answer that waits for a backend is given
    /// later from a worker ([`HttpContext::answer_later`]). Asked on the loop thread before each
    /// batch of pipelined requests is answered; the batch stays on the loop only if every
    /// request in it is declared so, and never with an upgrade in it. Not asked with inline
    /// handlers or on a driven server, where every call runs on the loop anyway. A panic here
    /// counts as `false`. The default is `false`: every request goes to a worker.
    fn answers_without_blocking(&self, request: &Request) -> bool {
        let _ = request;
        false
    }

    /// Whether [`on_message`](Self::on_message) handles `message` without blocking — an echo,
    /// a publication, a reply computed from memory — so that, with the worker pool, the event
    /// loop calls it itself instead of handing the batch to a worker and taking the reply back
    /// (two thread switches and a wake-up per batch; docs/benchmarks.md measures the
    /// difference). As with [`answers_without_blocking`](Self::answers_without_blocking), such
    /// a call holds up every other connection of its loop while it runs: say `true` only for
    /// calls that never wait; one that waits for a backend defers its reply from a worker
    /// ([`Context::defer`]). Asked on the loop thread before each batch; the batch stays on
    /// the loop only if it holds data messages alone, each declared so. On a connection that
    /// agreed to compression, the loop inflates a compressed message to ask about it if the
    /// batch's compressed and inflated bytes stay within `Config::max_read_per_turn`; a longer
    /// one goes to a worker unasked (and so does the rest of its batch). Not asked with inline
    /// handlers or on a driven server. A panic here counts as `false`. The default is `false`:
    /// every message goes to a worker.
    fn handles_without_blocking(&self, message: &Message) -> bool {
        let _ = message;
        false
    }

    /// Adds the application's own metric families to the Prometheus text the server serves at
    /// [`Config::metrics_path`](crate::Config::metrics_path), after the server's own
    /// (`wsreactor_*`). Called on the thread that answers that request, once per scrape. The
    /// default adds nothing.
    fn write_metrics(&self, exposition: &mut Exposition<'_>) {
        let _ = exposition;
    }
}

impl<F, R> Handler for F
where
    F: Fn(&mut Context<'_>, Message) -> R + 'static,
{
    type Session = ();

    fn on_message(&self, ctx: &mut Context<'_>, message: Message) {
        // Whatever the closure returns (`ctx.send`'s `Pressure`, or nothing) is not needed.
        let _ = self(ctx, message);
    }
}

/// What a [`Context::send`] found: the output queued for the connection, this call's included,
/// against the high-water mark (`Config::high_water_bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pressure {
    /// Below the mark: send on.
    Low,
    /// At or past it: the client reads slower than it is sent to. Sending more still works
    /// (until `max_outbound_bytes` stops the connection, and twice that drops it), but the
    /// handler should hold back; `on_drain` says when the output has fallen to
    /// `low_water_bytes`.
    High,
}

/// The output queued for a connection when its job left, and the mark to compare with; how
/// many timers it may arm (`Config::max_timers_per_connection`); its out-of-order completions
/// outstanding when the job left, and how many it may have.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Flow {
    pub queued: usize,
    pub high_water: usize,
    pub max_timers: usize,
    pub unordered: usize,
    pub max_unordered: usize,
}

/// Who is on the other end of a WebSocket, kept with its session for the whole connection:
/// the client's address, the request-target it upgraded on and the subprotocol agreed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Peer {
    pub addr: Option<SocketAddr>,
    pub target: String,
    pub protocol: Option<String>,
}

/// A handler's way back to its connection, and to the rest of the server; `S` is the
/// handler's [`Handler::Session`].
///
/// Sends are collected and written, in order, after the handler returns (so several sends in one
/// call become one write). After [`close`](Self::close) further sends are ignored.
///
/// Topics (pub/sub): [`subscribe`](Self::subscribe) and [`unsubscribe`](Self::unsubscribe)
/// this connection, [`publish`](Self::publish) to every subscriber on every event loop, or
/// [`publish_to_others`](Self::publish_to_others). They are carried out in the order they were
/// called, among the sends: a handler that subscribes, sends `a`, publishes `x` to that topic
/// and sends `b` receives `a`, `x`, `b`.
pub struct Context<'a, S = ()> {
    conn: ConnId,
    output: &'a mut Output,
    server: &'a ServerHandle,
    session: &'a mut S,
    peer: &'a Peer,
    request: Option<&'a Request>,
    flow: Flow,
    /// Made by the first [`defer`](Self::defer) of this call.
    deferral: Option<Arc<deferred::Cell<S>>>,
}

impl<S> std::fmt::Debug for Context<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("conn", &self.conn)
            .field("peer", self.peer)
            .finish_non_exhaustive()
    }
}

impl<'a, S> Context<'a, S> {
    pub(crate) fn new(
        conn: ConnId,
        output: &'a mut Output,
        server: &'a ServerHandle,
        session: &'a mut S,
        peer: &'a Peer,
        request: Option<&'a Request>,
        flow: Flow,
    ) -> Self {
        Context {
            conn,
            output,
            server,
            session,
            peer,
            request,
            flow,
            deferral: None,
        }
    }

    /// The deferral this call made, if it called [`defer`](Self::defer).
    pub(crate) fn take_deferral(&mut self) -> Option<Arc<deferred::Cell<S>>> {
        self.deferral.take()
    }

    /// Bytes queued for this connection now: what waited for the socket when this call began,
    /// plus what this call has sent so far (encoded frames).
    pub fn queued_bytes(&self) -> usize {
        self.flow.queued + self.output.len()
    }

    /// This connection's id: keep it to push to this client later from any thread.
    pub fn conn(&self) -> ConnId {
        self.conn
    }

    /// This connection's state ([`Handler::Session`]), owned by the connection.
    pub fn session(&self) -> &S {
        self.session
    }

    /// This connection's state, to change it.
    pub fn session_mut(&mut self) -> &mut S {
        self.session
    }

    /// The client's address (as `accept` reported it).
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer.addr
    }

    /// The path the client upgraded on, without the query (`/ws` for `/ws?room=a`).
    pub fn path(&self) -> &str {
        split_target(&self.peer.target).0
    }

    /// The query of the request-target it upgraded on, after the first `?`, if there is one.
    pub fn query(&self) -> Option<&str> {
        split_target(&self.peer.target).1
    }

    /// The subprotocol agreed at the upgrade (`Sec-WebSocket-Protocol`), if any.
    pub fn protocol(&self) -> Option<&str> {
        self.peer.protocol.as_deref()
    }

    /// The upgrade request with all its headers: in `on_open` only (`None` later — keep what
    /// you need in the session; holding every request's headers for the connection's life
    /// would cost each idle connection their size).
    pub fn request(&self) -> Option<&Request> {
        self.request
    }

    /// Sends a message to this connection, and says whether the output queued for it is now
    /// past the high-water mark ([`Pressure::High`]: hold back until `on_drain`).
    pub fn send(&mut self, message: impl Into<Message>) -> Pressure {
        if self.output.close.is_some() {
            log::debug!("{}: send after close ignored", self.conn);
        } else {
            self.output.push_message(message.into());
        }
        self.pressure()
    }

    /// Whether the output queued for this connection is past the high-water mark now.
    pub fn pressure(&self) -> Pressure {
        if self.queued_bytes() >= self.flow.high_water {
            Pressure::High
        } else {
            Pressure::Low
        }
    }

    /// Starts the close handshake with `code` and `reason` (truncated to fit a control frame)
    /// after what was sent so far. `on_close` follows once the connection is closed.
    pub fn close(&mut self, code: CloseCode, reason: &str) {
        if self.output.close.is_none() {
            self.output.close = Some(CloseFrame {
                code,
                reason: reason.to_owned(),
            });
        }
    }

    /// Sends a ping with `payload` (at most 125 bytes, RFC 6455 §5.5) after what was sent so
    /// far: the client must answer with a pong carrying the same payload (RFC 6455 §5.5.2).
    /// The pong comes to [`Handler::on_pong`], in order with the connection's messages (and
    /// shows the connection alive, as any byte does). Never compressed. `Err` for a longer payload, and nothing is sent;
    /// after [`close`](Self::close) it is ignored.
    pub fn ping(&mut self, payload: impl AsRef<[u8]>) -> Result<(), PingError> {
        let payload = payload.as_ref();
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(PingError::TooLong(payload.len()));
        }
        if self.output.close.is_some() {
            log::debug!("{}: ping after close ignored", self.conn);
        } else {
            self.output.push_control(OpCode::Ping, payload);
        }
        Ok(())
    }

    /// Hands this call's completion to another thread: the worker (or the inline loop) is free
    /// as soon as the call returns, and the connection's next message is not handled until
    /// the returned [`Deferred`] completes — its sends, session changes and compression as
    /// from this call — or [`Config::deferred_timeout`](crate::Config::deferred_timeout)
    /// passes ([`Handler::on_deferred_timeout`] then runs; by default a close with `1011`).
    /// What this call sent before (and after) deferring goes out when it returns; the rest of
    /// its job's messages wait for the completion. A backend call with a blocking client runs
    /// on a thread of its own (a bounded pool: a bulkhead), not on the server's workers.
    ///
    /// Called twice in one call, it returns a second handle on the same completion (the first
    /// to complete wins; the other gets [`DeferredError::Completed`]). Completed on this thread
    /// before the call returns, it is as if it had not deferred; every handle dropped without
    /// completing counts as completing with nothing. `on_close` never runs beside a
    /// completion: a connection that closes first takes the call back, and the completion gets
    /// [`DeferredError::Closed`].
    pub fn defer(&mut self) -> Deferred<S>
    where
        S: Default + Send + 'static,
    {
        let (conn, flow) = (self.conn, self.flow);
        let server = self.server;
        let cell = self
            .deferral
            .get_or_insert_with(|| deferred::Cell::new(conn, server.clone(), flow));
        cell.handle()
    }

    /// The server, to send to other connections, broadcast, read stats or shut down.
    pub fn server(&self) -> &ServerHandle {
        self.server
    }
}
