//! The connection state machine: every phase transition and every close decision, each a method
//! named for the event that causes it.
//!
//! | event | method |
//! |---|---|
//! | a valid upgrade request was parsed | [`upgrade_requested`](Session::upgrade_requested) |
//! | a request the loop answers itself (an error before any request) | [`request_rejected`](Session::request_rejected) |
//! | a monitoring-reserve connection asked for anything but metrics or health | [`refused_at_capacity`](Session::refused_at_capacity) |
//! | a job's reply came back | [`replied`](Session::replied) |
//! | the peer's close frame | [`peer_closed`](Session::peer_closed) |
//! | the peer's EOF | [`peer_eof`](Session::peer_eof) |
//! | the peer broke RFC 6455 | [`protocol_error`](Session::protocol_error) |
//! | we close (handler, handle, lifetime, shutdown) | [`we_close`](Session::we_close) |
//! | the handler's work is done (reply in, nothing pending) | [`work_done`](Session::work_done) |
//! | all output is out | [`drained`](Session::drained) |
//! | a deadline fired | [`timed_out`](Session::timed_out) |
//! | a push found the connection's output over its bound | [`slow_consumer`](Session::slow_consumer) |
//! | the transport failed | [`transport_failed`](Session::transport_failed) |
//! | the server gives up on it (shutdown timeout) | [`abort`](Session::abort) |
//!
//! Each transition says what is written to the peer (a close frame, an HTTP error, FIN) and
//! what the handler will be told (the `CloseInfo` kept in the phase until `on_close`).
//! `docs/architecture.md` lists every (phase, event) pair. Nothing else in the crate assigns
//! [`Session::phase`] except `Session::new`.

use crate::dispatch::{After, Output};
use crate::http::{HttpError, Response, too_many_connections};
use crate::metrics::{CloseKind, TimeoutKind, add, sub};
use crate::session::connection::Session;
use crate::session::env::Env;
use crate::session::phase::{
    Closed, Closing, JobSlot, Lingering, OnClose, Open, PeerClosed, PeerEnd, Phase, Upgrading,
};

use crate::ws::{CloseCode, CloseFrame, CloseInfo, PerMessageDeflate, WsError, encode_close};

impl Session {
    /// Moves to `next`, keeping the phase gauges in step, starting the phase's wait clock, and
    /// narrating the move at trace level.
    fn enter(&mut self, env: &mut Env<'_>, next: Phase) {
        log::trace!("{}: {} -> {}", self.id, self.phase.name(), next.name());
        if let Some(gauge) = self.phase.gauge(env.metrics) {
            sub(gauge, 1);
        }
        if let Some(gauge) = next.gauge(env.metrics) {
            add(gauge, 1);
        }
        if let Phase::Open(open) = &self.phase {
            // The handler's timers end with the phase: none calls back once it is closing.
            open.timers.forget(env.metrics);
        }
        self.phase = next;
        self.clocks.wait_since = env.now;
    }

    /// Moves to `Lingering`: its `close_timeout` runs once the output has drained.
    fn linger(
        &mut self,
        env: &mut Env<'_>,
        end: CloseKind,
        peer_eof: bool,
        on_close: Option<CloseInfo>,
    ) {
        let lingering = Lingering {
            fin_sent: false,
            peer_eof,
            end,
            on_close,
        };
        self.enter(env, Phase::Lingering(lingering));
    }

    /// Queues a close frame: the one place the session writes one.
    fn queue_close(&mut self, env: &mut Env<'_>, code: CloseCode, reason: &str) {
        let mut frame = Vec::with_capacity(4 + reason.len());
        encode_close(&mut frame, code, reason);
        self.queue(env, &frame);
    }

    /// Queues a response the loop sends itself, with `Connection: close` (no handler involved).
    fn queue_response(&mut self, env: &mut Env<'_>, response: &Response) {
        self.queue_vec(env, response.to_closing_bytes());
    }

    /// The conversation is ending: what was not yet handed to the handler is dropped.
    fn drop_unhandled(&mut self) {
        if let Some(inbox) = self.phase.inbox_mut() {
            inbox.take();
        }
        if matches!(self.job, JobSlot::Held(_))
            && let JobSlot::Held(run) = std::mem::take(&mut self.job)
        {
            // The held job carried the state out of the connection: it stays for `on_close`.
            self.state = self.state.take().or(run.session);
            run.lease.end();
        }
    }

    /// Ends the connection now: `Closed`, with the `on_close` its phase owes. A close reason
    /// already decided (the peer's, or ours in `Closing`) wins over `why`.
    fn close_now(&mut self, env: &mut Env<'_>, kind: CloseKind, why: Option<CloseInfo>) {
        let on_close = match &mut self.phase {
            Phase::Closed(_) => return,
            Phase::Http(_) => OnClose::Nothing,
            Phase::Upgrading(_) if self.job.is_out() => OnClose::IfUpgradeAccepted,
            Phase::Upgrading(_) => OnClose::Nothing,
            Phase::Open(_) => OnClose::Call(why.unwrap_or_else(CloseInfo::abnormal)),
            Phase::PeerClosed(PeerClosed { ended, .. }) | Phase::Closing(Closing { ended, .. }) => {
                OnClose::Call(std::mem::replace(ended, CloseInfo::abnormal()))
            }
            Phase::Lingering(lingering) => lingering
                .on_close
                .take()
                .map_or(OnClose::Nothing, OnClose::Call),
        };
        if matches!(on_close, OnClose::Call(_)) {
            // Only a connection that had `on_open` is owed `on_close`.
            sub(&env.metrics.websocket_open, 1);
        }
        self.enter(env, Phase::Closed(Closed { kind, on_close }));
    }

    /// `Http` → `Upgrading`: the batch just taken ends with a valid upgrade request.
    pub(crate) fn upgrade_requested(&mut self, env: &mut Env<'_>) {
        self.enter(env, Phase::Upgrading(Upgrading::default()));
    }

    /// `Http` → `Lingering`: bytes that are not HTTP, before any request of the batch. The loop
    /// answers with the error's status (`400`, `413`, `417`, `431`, `501`, `505`, `426`); no
    /// handler.
    pub(crate) fn request_rejected(&mut self, env: &mut Env<'_>, err: &HttpError) {
        log::debug!("{}: bad request: {err}", self.id);
        self.queue_response(env, &err.to_response());
        let peer_eof = matches!(&self.phase, Phase::Http(http) if http.peer_eof);
        self.linger(env, CloseKind::ProtocolError, peer_eof, None);
    }

    /// `Http` → `Lingering`: a connection on the monitoring reserve asked for something other
    /// than `metrics_path` or `health_path` (another path or method, an upgrade, a body). The
    /// loop answers `503` with `Retry-After: 1`, as at accept past the reserve; no handler.
    pub(crate) fn refused_at_capacity(&mut self, env: &mut Env<'_>) {
        log::debug!(
            "{}: not a monitoring request: 503 from the reserve",
            self.id
        );
        add(&env.metrics.connections_rejected, 1);
        self.queue_response(env, &too_many_connections());
        let peer_eof = matches!(&self.phase, Phase::Http(http) if http.peer_eof);
        self.linger(env, CloseKind::Server, peer_eof, None);
    }

    /// A job's reply came back (its lease is home, `connection.rs`): queue its bytes, then do
    /// what it says — stay (`Http`, `Open`), switch to `Open` after a `101`, linger after a
    /// closing HTTP response, or close if the handler asked to. After our close frame nothing
    /// more is sent.
    pub(crate) fn apply_reply(&mut self, env: &mut Env<'_>, mut output: Output, after: After) {
        if matches!(
            self.phase,
            Phase::Closing(_) | Phase::Lingering(_) | Phase::Closed(_)
        ) {
            // After sending a Close frame, the endpoint MUST NOT send any more data frames.
            // (RFC 6455 §5.5.1)
            if !output.is_empty() {
                log::debug!("{}: reply dropped, the connection is closing", self.id);
            }
            // What it published still reaches the topic's other subscribers.
            self.publish_only(env, &mut output);
            return;
        }
        if self.is_on_reserve() {
            // Its one job: the answer to its metrics or health request.
            add(&env.metrics.monitoring_served, 1);
        }
        add(&env.metrics.messages_out, output.messages);
        add(&env.metrics.compressed_out, output.compressed);
        if let Some(inbox) = self.phase.inbox_mut() {
            inbox.requeue(std::mem::take(&mut output.unhandled), output.pings);
        }
        let (close, failed) = (output.close.take(), output.failed.take());
        let (timers, started) = (output.timers.take(), output.unordered.take());
        self.queue_output(env, output);
        self.note_backlog(env);
        self.carry_on(env, after);
        self.apply_timers(env, timers); // after the `101`: `on_open` may set some
        self.register_unordered(env, started); // (or defer out of order)
        if let Some(err) = failed {
            return self.inflate_failed(env, &err);
        }
        if let Some(CloseFrame { code, reason }) = close {
            // 1011 means the handler panicked: the server's decision, not a clean close.
            let end = if code == CloseCode::Error {
                CloseKind::Server
            } else {
                CloseKind::Clean
            };
            self.we_close(env, code, &reason, end);
        }
    }

    /// What the session does after a reply's bytes: stays, is upgraded, or lingers.
    fn carry_on(&mut self, env: &mut Env<'_>, after: After) {
        match after {
            After::Continue => {
                if let Phase::Http(http) = &mut self.phase {
                    // Keep-alive: once the response drains, the idle clock starts.
                    http.served = true;
                }
            }
            After::Upgraded { deflate } => self.upgraded(env, deflate),
            After::CloseHttp { bad_request } => {
                let peer_eof = matches!(&self.phase, Phase::Http(http) if http.peer_eof);
                let end = if bad_request {
                    CloseKind::ProtocolError
                } else {
                    CloseKind::Clean
                };
                self.linger(env, end, peer_eof, None);
            }
        }
    }

    /// `Upgrading` → `Open`: the `101` (and what `on_open` sent) is queued; pushes that arrived
    /// meanwhile follow it. From here `on_close` is owed.
    fn upgraded(&mut self, env: &mut Env<'_>, deflate: Option<PerMessageDeflate>) {
        let Phase::Upgrading(upgrading) = &mut self.phase else {
            return;
        };
        let early = upgrading.early.take();
        if deflate.is_some() {
            add(&env.metrics.deflate_upgrades, 1);
        }
        self.enter(env, Phase::Open(Open::new(deflate)));
        self.clocks.last_read = env.now;
        add(&env.metrics.upgrades, 1);
        add(&env.metrics.websocket_open, 1);
        if let Some(early) = early {
            self.queue_vec(env, *early);
        }
    }

    /// The peer's close frame. `Open` → `PeerClosed` (the messages before it are still handled,
    /// then we answer); `Closing` → `Lingering` (the close handshake is complete).
    pub(crate) fn peer_closed(&mut self, env: &mut Env<'_>, frame: Option<CloseFrame>) {
        match &frame {
            Some(frame) => log::debug!("{}: close frame received: {}", self.id, frame.code),
            None => log::debug!("{}: close frame received, without a code", self.id),
        }
        match &mut self.phase {
            Phase::Open(open) => {
                let inbox = std::mem::take(&mut open.inbox);
                let ended = frame.map_or_else(|| CloseInfo::new(CloseCode::Status, ""), Into::into);
                let how = PeerEnd::CloseFrame;
                self.enter(env, Phase::PeerClosed(PeerClosed { inbox, how, ended }));
            }
            Phase::Closing(closing) => {
                log::debug!("{}: close handshake complete", self.id);
                let ended = std::mem::replace(&mut closing.ended, CloseInfo::abnormal());
                let end = closing.end;
                self.linger(env, end, false, Some(ended));
            }
            _ => {}
        }
    }

    /// The peer sent FIN. `Http`, `Lingering`: remembered (answer, then close). `Open` →
    /// `PeerClosed` (answers to what came before are still sent; `on_close` hears `1006`).
    /// `Closing` → `Lingering`.
    pub(crate) fn peer_eof(&mut self, env: &mut Env<'_>) {
        match &mut self.phase {
            Phase::Http(http) => http.peer_eof = true,
            Phase::Lingering(lingering) => lingering.peer_eof = true,
            Phase::Open(open) => {
                let inbox = std::mem::take(&mut open.inbox);
                let ended = CloseInfo::abnormal();
                let how = PeerEnd::Eof;
                self.enter(env, Phase::PeerClosed(PeerClosed { inbox, how, ended }));
            }
            Phase::Closing(closing) => {
                let ended = std::mem::replace(&mut closing.ended, CloseInfo::abnormal());
                let end = closing.end;
                self.linger(env, end, true, Some(ended));
            }
            Phase::Upgrading(_) | Phase::PeerClosed(_) | Phase::Closed(_) => {}
        }
    }

    /// The peer broke RFC 6455 ("Fail the WebSocket Connection", §7.1.7). `Open` → `Lingering`
    /// with a close frame carrying the error's code (`1002`, `1007`, `1009`). If messages from
    /// before the bad frame are still with the handler (or waiting for it), `Open` →
    /// `PeerClosed` instead: their replies go out, then the close frame. `Closing` → `Closed`.
    pub(crate) fn protocol_error(&mut self, env: &mut Env<'_>, err: &WsError) {
        let code = err.close_code();
        log::debug!("{}: failing the connection with {code}: {err}", self.id);
        let busy = !matches!(self.job, JobSlot::Idle)
            || self.phase.inbox().is_some_and(|inbox| !inbox.is_settled());
        match &mut self.phase {
            Phase::Open(open) if busy => {
                // Messages that came before the bad frame were valid: they are answered, then
                // the connection fails (`work_done`). No more bytes are read meanwhile.
                let inbox = std::mem::take(&mut open.inbox);
                let ended = CloseInfo::new(code, err.to_string());
                let how = PeerEnd::ProtocolError;
                self.enter(env, Phase::PeerClosed(PeerClosed { inbox, how, ended }));
            }
            Phase::Open(_) => {
                let reason = err.to_string();
                self.queue_close(env, code, &reason);
                self.drop_unhandled();
                let info = CloseInfo::new(code, reason);
                self.linger(env, CloseKind::ProtocolError, false, Some(info));
            }
            Phase::Closing(_) => self.close_now(env, CloseKind::ProtocolError, None),
            _ => {}
        }
    }

    /// A compressed message failed to inflate where the handler runs (`1007` for bad deflate
    /// data or text, `1009` past `max_message_size`): the peer broke the protocol inside it.
    /// Its batch's earlier replies are already queued; nothing after it is handled. `Open` →
    /// `Lingering` as for any protocol error; `PeerClosed` → `Lingering` too, with this code
    /// instead of the echo of the peer's (or after EOF: only the close frame, then FIN).
    pub(crate) fn inflate_failed(&mut self, env: &mut Env<'_>, err: &WsError) {
        self.drop_unhandled();
        match &mut self.phase {
            Phase::Open(_) => self.protocol_error(env, err),
            Phase::PeerClosed(closed) => {
                let peer_eof = closed.how == PeerEnd::Eof;
                let (code, reason) = (err.close_code(), err.to_string());
                log::debug!("{}: failing the connection with {code}: {err}", self.id);
                self.queue_close(env, code, &reason);
                let info = CloseInfo::new(code, reason);
                self.linger(env, CloseKind::ProtocolError, peer_eof, Some(info));
            }
            _ => {}
        }
    }

    /// We start the close handshake (the handler's `close`, `ServerHandle::close`,
    /// `max_lifetime`, shutdown, a handler panic). `Open` → `Closing`, with our close frame;
    /// messages not yet handed to the handler are dropped. In other phases the conversation is
    /// already ending and nothing happens.
    pub(crate) fn we_close(
        &mut self,
        env: &mut Env<'_>,
        code: CloseCode,
        reason: &str,
        end: CloseKind,
    ) {
        let Phase::Open(open) = &mut self.phase else {
            return;
        };
        let decoder = std::mem::take(&mut open.decoder);
        let deflate = open.inbox.deflate();
        log::debug!("{}: closing with {code}", self.id);
        self.queue_close(env, code, reason);
        self.drop_unhandled();
        let ended = CloseInfo::new(code, reason);
        self.enter(
            env,
            Phase::Closing(Closing {
                decoder,
                deflate,
                ended,
                end,
            }),
        );
    }

    /// The handler's work is done (no job out or held, no messages waiting): the phase rules
    /// that were waiting for it apply. `Http` after EOF or at shutdown → `Lingering`;
    /// `PeerClosed` → `Lingering` (echoing a close frame, RFC 6455 §5.5.1); `Open` at shutdown →
    /// `Closing` with `1001`.
    #[inline]
    pub(crate) fn work_done(&mut self, env: &mut Env<'_>) {
        if !self.is_idle() {
            return;
        }
        match &mut self.phase {
            Phase::Http(http) if http.peer_eof || env.shutting_down => {
                // A half-closed client got its answers; or the server is going away between
                // requests.
                let peer_eof = http.peer_eof;
                self.linger(env, CloseKind::Clean, peer_eof, None);
            }
            Phase::PeerClosed(closed) => {
                let ended = std::mem::replace(&mut closed.ended, CloseInfo::abnormal());
                match closed.how {
                    PeerEnd::CloseFrame => {
                        // If an endpoint receives a Close frame and did not previously send a
                        // Close frame, the endpoint MUST send a Close frame in response,
                        // typically echoing the status code it received. (RFC 6455 §5.5.1)
                        self.queue_close(env, ended.code, "");
                        self.linger(env, CloseKind::Clean, false, Some(ended));
                    }
                    PeerEnd::Eof => self.linger(env, CloseKind::PeerGone, true, Some(ended)),
                    PeerEnd::ProtocolError => {
                        self.queue_close(env, ended.code, &ended.reason);
                        self.linger(env, CloseKind::ProtocolError, false, Some(ended));
                    }
                }
            }
            Phase::Open(_) if env.shutting_down => {
                self.we_close(
                    env,
                    CloseCode::Away,
                    "server shutting down",
                    CloseKind::Server,
                );
            }
            _ => {}
        }
    }

    /// Every queued byte is out. In `Lingering`, once FIN has gone after the last byte (the loop
    /// sends it when `poll_transmit` asks; what the peer still sends is read and discarded, so
    /// the kernel does not answer it with a reset that could destroy our last bytes), and once
    /// the peer has closed too — or the server is shutting down — `Closed`.
    #[inline]
    pub(crate) fn drained(&mut self, env: &mut Env<'_>) {
        let Phase::Lingering(lingering) = &mut self.phase else {
            return;
        };
        if lingering.fin_sent && (lingering.peer_eof || env.shutting_down) {
            let end = lingering.end;
            self.close_now(env, end, None);
        }
    }

    /// A deadline fired (`deadline.rs` decides which). The request timeout answers `408` if a
    /// request had begun; the lifetime closes with `1001`; a linger whose FIN is out ends for
    /// the reason it was ending; everything else drops the connection.
    pub(crate) fn timed_out(&mut self, env: &mut Env<'_>, kind: TimeoutKind) {
        if let Phase::Lingering(lingering) = &self.phase
            && kind == TimeoutKind::Close
            && lingering.fin_sent
        {
            // Everything was said and our FIN sent; only the peer's FIN is missing. The
            // connection ends for the reason it was ending, not as a failed handshake.
            log::debug!("{}: linger over, the peer never closed", self.id);
            let end = lingering.end;
            return self.close_now(env, end, None);
        }
        log::debug!("{}: {kind:?} timeout in {}", self.id, self.phase.name());
        env.metrics.timeout(kind);
        match kind {
            TimeoutKind::Request if self.request_begun() => {
                let response = Response::text(408, "request timeout\n");
                self.queue_response(env, &response);
                self.linger(env, CloseKind::Timeout, false, None);
            }
            TimeoutKind::Lifetime => {
                let reason = "connection lifetime exceeded";
                self.we_close(env, CloseCode::Away, reason, CloseKind::Server);
            }
            TimeoutKind::Message => {
                // A policy, not a protocol error: the frames were valid, only far too slow.
                let reason = "message took too long to arrive";
                self.we_close(env, CloseCode::Policy, reason, CloseKind::Timeout);
            }
            TimeoutKind::WriteStall => {
                // Nothing can be sent to a client that does not read: drop it, free its buffers.
                let why = CloseInfo::new(CloseCode::Policy, "write stall");
                self.close_now(env, CloseKind::Timeout, Some(why));
            }
            TimeoutKind::Request | TimeoutKind::Idle | TimeoutKind::Pong | TimeoutKind::Close => {
                self.close_now(env, CloseKind::Timeout, None);
            }
        }
    }

    /// A push would take the queued output past its bound (twice `max_outbound_bytes`): the
    /// client does not read fast enough, and is dropped with `1008` for `on_close`.
    pub(crate) fn slow_consumer(&mut self, env: &mut Env<'_>) {
        log::debug!(
            "{}: slow consumer, {} bytes queued",
            self.id,
            self.output_len()
        );
        let why = CloseInfo::new(CloseCode::Policy, "slow consumer");
        self.close_now(env, CloseKind::Server, Some(why));
    }

    /// The server passed its memory budget and this connection, which does not read what it is
    /// sent, holds the most: dropped at once (its output could not reach the peer anyway), and
    /// `on_close` hears `1008`.
    pub(crate) fn over_budget(&mut self, env: &mut Env<'_>) {
        let why = CloseInfo::new(CloseCode::Policy, "slow consumer: server memory budget");
        self.close_now(env, CloseKind::Server, Some(why));
    }

    /// A read or write failed (reset, broken pipe, or an error): the peer is gone.
    pub(crate) fn transport_failed(&mut self, env: &mut Env<'_>) {
        self.close_now(env, CloseKind::PeerGone, None);
    }

    /// The server gives up on the connection (the shutdown timeout passed).
    pub(crate) fn abort(&mut self, env: &mut Env<'_>, kind: CloseKind) {
        self.close_now(env, kind, None);
    }
}
