//! Turning a connection's input bytes into work: HTTP requests and WebSocket messages.
//!
//! Bytes enter through the space the session lends the loop to read into
//! ([`Session::read_space`], then [`Session::received`]): its read buffer, or — for the rest of
//! a large WebSocket payload — the end of the message being assembled. They leave as a batch of
//! HTTP requests (for a job: [`Session::take_http_batch`]), as decoded messages held in the inbox
//! until the next job, or as answers queued at once, which never wait for a worker: a pong to a
//! ping, and `100 Continue` to a request that expects it (its body not yet in).
//! A close frame, a protocol error or a bad request is handed to the state machine
//! (`machine.rs`), which decides what is written and where the connection goes.

use crate::buffer::ReadBuffer;
use crate::conn_id::ConnId;
use crate::dispatch::{Batch, HttpTail, Inbound, Work};
use crate::http::{HttpError, OriginRefusal, Parsed, Request, check_upgrade};
use crate::metrics::add;
use crate::session::connection::Session;
use crate::session::env::Env;
use crate::session::phase::{Drain, Http, JobSlot, Phase};

use crate::ws::{Decoded, Message, OpCode, encode_frame};

/// The interim response to `Expect: 100-continue`: a status line and an empty header block, no
/// `Date` (RFC 9110 §6.6.1 makes it optional for 1xx) and no framing (a 1xx has no content).
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Where the loop reads next: into `first`, then — once it is full, in the same call — into
/// `then`. `then` is empty but while the rest of a large payload is read straight into its
/// message (`first`): then it is the read buffer, for what follows the payload.
pub(crate) struct ReadSpace<'a> {
    pub first: &'a mut [u8],
    pub then: &'a mut [u8],
}

impl Session {
    /// The space to read into now, or `None` when the session must not read (backpressure,
    /// its phase, a full buffer to decode first). While the rest of a large WebSocket payload
    /// is coming and no other bytes wait, it is the room at the end of the message being
    /// assembled (the bytes go there without a copy), then the read buffer's; otherwise the
    /// read buffer's free room alone. The read buffer is taken from the pool if none is held.
    #[inline]
    pub(crate) fn read_space(&mut self, env: &mut Env<'_>) -> Option<ReadSpace<'_>> {
        if !self.may_read(env) {
            return None;
        }
        let min = env.config.read_buffer_size;
        let max_len = self.max_input_len(env.config);
        // An idle decoder (every message that came whole) has no payload to lend room for.
        if self.input.as_ref().is_none_or(ReadBuffer::is_empty)
            && let Phase::Open(open) = &mut self.phase
            && !open.decoder.is_idle()
            && open.decoder.payload_expected(min).is_some()
        {
            let first = open.decoder.payload_space(min)?;
            // What follows the payload (the next frame's head) lands in the read buffer, in the
            // same read: a read that fills the message's room exactly would leave the loop to
            // find out with one more, empty, read.
            let input = self.input.get_or_insert_with(|| env.pool.take_read());
            let then = input.spare(max_len);
            return Some(ReadSpace { first, then });
        }
        let input = self.input.get_or_insert_with(|| env.pool.take_read());
        let spare = input.spare(max_len);
        (!spare.is_empty()).then_some(ReadSpace {
            first: spare,
            then: &mut [],
        })
    }

    /// Would [`read_space`](Self::read_space) lend room now? It asks nothing else, and lends
    /// whenever this says yes — the pump goes round on its word after a hand-off or a write
    /// that may have made room (bytes already in the socket raise no new readiness event).
    #[inline]
    pub(crate) fn may_read(&self, env: &Env<'_>) -> bool {
        let max_len = self.max_input_len(env.config);
        self.wants_input(env)
            && self
                .input
                .as_ref()
                .is_none_or(|input| input.has_room(max_len))
    }

    /// `n` bytes were read into the space [`read_space`](Self::read_space) lent.
    #[inline]
    pub(crate) fn received(&mut self, env: &mut Env<'_>, n: usize) {
        // A reserve connection's clock runs from its accept, not from its first byte.
        if !self.request_begun() && matches!(self.phase, Phase::Http(_)) && !self.is_on_reserve() {
            // The first byte of a request: `request_timeout` counts from here.
            self.clocks.wait_since = env.now;
        }
        match &mut self.phase {
            Phase::Open(open) if !open.decoder.is_idle() && open.decoder.payload_lent() => {
                let taken = open.decoder.payload_filled(n);
                if n > taken
                    && let Some(input) = self.input.as_mut()
                {
                    input.filled(n - taken);
                }
            }
            _ => {
                if let Some(input) = self.input.as_mut() {
                    input.filled(n);
                }
            }
        }
        self.clocks.last_read = env.now;
        if let Phase::Open(open) = &mut self.phase {
            // Anything from the peer answers our keepalive ping.
            open.ping_sent = None;
        }
        add(&env.metrics.bytes_in, n as u64);
        log::trace!("{}: read {n} bytes", self.id);
    }

    /// Decodes the buffered bytes of a WebSocket connection, or discards those of a lingering
    /// one. HTTP bytes are left alone: they are parsed when a job can be dispatched
    /// ([`take_http_batch`](Self::take_http_batch)), so a connection never has more than one
    /// batch of requests in hand.
    pub(crate) fn decode(&mut self, env: &mut Env<'_>) {
        match self.phase {
            Phase::Open(_) => {
                self.decode_open(env);
                self.time_the_partial_message(env);
            }
            Phase::Closing(_) => self.decode_closing(env),
            Phase::Lingering(_) => {
                if let Some(input) = self.input.as_mut() {
                    input.consume(input.len());
                }
            }
            Phase::Http(_) | Phase::Upgrading(_) | Phase::PeerClosed(_) | Phase::Closed(_) => {}
        }
    }

    /// Decodes frames into the inbox until the input is used up, the inbox is full, the peer's
    /// close frame arrives, or the peer breaks the protocol.
    fn decode_open(&mut self, env: &mut Env<'_>) {
        let mut limits = env.config.decoder_limits();
        loop {
            let Phase::Open(open) = &mut self.phase else {
                return;
            };
            limits.deflate = open.inbox.deflate();
            if open.inbox.is_full(env.config) {
                return;
            }
            let input = self.input.as_mut().filter(|input| !input.is_empty());
            if input.is_none() && (open.decoder.is_idle() || !open.decoder.payload_waiting()) {
                return;
            }
            let data = input.as_deref().map_or(&[][..], ReadBuffer::data);
            // A large message is assembled in a payload written out earlier, if one is pooled.
            let pooled = &mut |capacity| env.pool.chunks.take_payload(capacity);
            let item = match open.decoder.decode_with(data, &limits, pooled) {
                Ok((0, None)) => return,
                Ok((consumed, item)) => {
                    if let Some(input) = input {
                        input.consume(consumed);
                    }
                    item
                }
                Err(err) => return self.protocol_error(env, &err),
            };
            match item {
                None => {}
                Some(Decoded::Close(frame)) => return self.peer_closed(env, frame),
                Some(item) => self.decoded(env, item),
            }
        }
    }

    /// A message, ping or pong an open WebSocket decoded: a message goes into the inbox, a ping
    /// is answered at once.
    fn decoded(&mut self, env: &mut Env<'_>, item: Decoded) {
        let message = match item {
            Decoded::Message(message) => Inbound::Message(message),
            Decoded::Compressed(compressed) => {
                add(&env.metrics.compressed_in, 1);
                Inbound::Compressed(compressed)
            }
            Decoded::Ping(payload) => {
                // Upon receipt of a Ping frame, an endpoint MUST send a Pong frame in
                // response, with the same Application data. (RFC 6455 §5.5.2)
                log::trace!("{}: ping, answering with a pong", self.id);
                let mut pong = Vec::with_capacity(2 + payload.as_bytes().len());
                encode_frame(&mut pong, OpCode::Pong, payload.as_bytes());
                return self.queue(env, &pong);
            }
            Decoded::Pong(payload) => return self.pong(payload.as_bytes()),
            Decoded::Close(_) => return,
        };
        add(&env.metrics.messages_in, 1);
        if log::log_enabled!(log::Level::Trace) {
            let kind = match &message {
                Inbound::Message(Message::Text(_)) => "text",
                Inbound::Message(Message::Binary(_)) => "binary",
                Inbound::Compressed(c) if c.text => "compressed text",
                Inbound::Compressed(_) => "compressed binary",
                Inbound::Pong(_) => "pong",
                Inbound::Completion(_) | Inbound::UnorderedTimeout(_) => "completion",
            };
            let bytes = message.len();
            log::trace!("{}: decoded a {kind} message, {bytes} bytes", self.id);
        }
        let job_out = !matches!(self.job, JobSlot::Idle);
        let Phase::Open(open) = &mut self.phase else {
            return;
        };
        open.inbox.push(message);
        // This message fills what the connection may hold while its previous job runs, so
        // reading pauses until that job's reply (`backpressure.rs`). Counted once per pause,
        // here at the message that reaches the limit. With no job out or held, the inbox goes
        // out at once: no pause.
        if open.inbox.is_full(env.config) && job_out {
            add(&env.metrics.backpressure_pauses, 1);
        }
    }

    /// A pong: for `on_pong` if the handler is owed one (it sent a ping), else nothing to do
    /// (the keepalive took it as a sign of life already, `Session::received`).
    fn pong(&mut self, payload: &[u8]) {
        log::trace!("{}: pong, {} bytes", self.id, payload.len());
        if let Phase::Open(open) = &mut self.phase
            && open.inbox.pongs_owed > 0
        {
            open.inbox.pongs_owed -= 1;
            open.inbox.push(Inbound::Pong(payload.to_vec()));
        }
    }

    /// Starts, keeps or stops the `message_timeout` clock: it runs while part of a message (or
    /// of a frame header) is held, from the moment the first of it arrived. It stops while the
    /// inbox is full or the memory budget pauses the connection: then the loop is not reading,
    /// and the slowness is the server's.
    fn time_the_partial_message(&mut self, env: &Env<'_>) {
        let held = self.input.as_ref().is_some_and(|input| !input.is_empty());
        let within_budget = self.within_budget(env);
        let Phase::Open(open) = &mut self.phase else {
            return;
        };
        let partial = held || !open.decoder.is_idle();
        open.message_since = if partial && !open.inbox.is_full(env.config) && within_budget {
            open.message_since.or(Some(env.now))
        } else {
            None
        };
    }

    /// After our close frame: ignore data, wait for the peer's close frame.
    fn decode_closing(&mut self, env: &mut Env<'_>) {
        let mut limits = env.config.decoder_limits();
        loop {
            let Phase::Closing(closing) = &mut self.phase else {
                return;
            };
            limits.deflate = closing.deflate;
            let Some(input) = self.input.as_mut().filter(|input| !input.is_empty()) else {
                return;
            };
            match closing.decoder.decode(input.data(), &limits) {
                Ok((0, None)) => return,
                Ok((consumed, item)) => {
                    input.consume(consumed);
                    if let Some(Decoded::Close(frame)) = item {
                        return self.peer_closed(env, frame);
                    }
                }
                Err(err) => return self.protocol_error(env, &err),
            }
        }
    }

    /// The inbox as the next batch, carrying an owed `on_deferred_timeout` and `on_drain`, the
    /// timers that fired (alone, if no message waits), and the keys of those still armed. At
    /// the limit of out-of-order completions, the peer's messages stay (`unordered.rs`).
    pub(crate) fn take_messages(&mut self, env: &Env<'_>) -> Option<Batch> {
        let timer_due = self.timer_due(env);
        let open = matches!(self.phase, Phase::Open(_));
        let inbox = self.phase.inbox_mut()?;
        // `on_drain` is for an open WebSocket; `on_deferred_timeout` also after the peer's close.
        let drain_due = open && inbox.drain == Drain::Due;
        if drain_due {
            inbox.drain = Drain::Flowing;
        }
        let expired = std::mem::take(&mut inbox.expired);
        let at_limit = inbox.at_unordered_limit(env.config);
        let unordered = inbox.unordered();
        let taken = if at_limit {
            inbox.take_own()
        } else {
            inbox.take()
        };
        let mut batch = match taken {
            Some(batch) => batch,
            None if drain_due || expired || timer_due => inbox.empty_batch(),
            None => return None,
        };
        batch.drained = drain_due;
        batch.expired = expired;
        batch.unordered = unordered;
        batch.timers = self.timers_for_job(env);
        Some(batch)
    }

    /// Parses every complete request in the read buffer into one batch, stopping after an
    /// upgrade request, a request that asks to close, or an error. An error with no request
    /// before it is answered by the loop itself and yields no work; so is a `100 Continue`
    /// owed to a request whose body has not arrived, once no earlier response is outstanding.
    pub(crate) fn take_http_batch(&mut self, env: &mut Env<'_>) -> Option<Work> {
        if self.is_on_reserve() {
            return self.take_monitoring_request(env);
        }
        let Phase::Http(http) = &mut self.phase else {
            return None;
        };
        // No input buffer held (a chunked body may have used up every byte read so far): no
        // request to parse, but a 100 Continue may still be owed.
        let (requests, tail) = match self.input.as_mut() {
            Some(input) => parse_batch(self.id, http, input, env),
            None => (Vec::new(), HttpTail::None),
        };
        match tail {
            HttpTail::None if requests.is_empty() => {
                // Nothing for the handler, and no job is out (this runs only when one may be
                // dispatched), so every earlier response is already queued: a 100 Continue
                // for the request now arriving goes out in order. With requests in this
                // batch it waits for their reply, and the next call sends it.
                if http.parser.take_continue() {
                    self.send_continue(env);
                }
                return None;
            }
            HttpTail::Error(err) if requests.is_empty() => {
                self.request_rejected(env, &err);
                return None;
            }
            HttpTail::Upgrade(_) => self.upgrade_requested(env),
            HttpTail::None | HttpTail::Error(_) | HttpTail::Close => {}
        }
        Some(Work::Http { requests, tail })
    }

    /// Queues the interim `100 Continue` (RFC 9110 §15.2.1) for a request that expects it and
    /// whose body has not fully arrived: the client sends its body on seeing it (curl otherwise
    /// waits a second). Like a pong, the loop answers it itself; the phase does not change,
    /// and the final response follows from the handler.
    fn send_continue(&mut self, env: &mut Env<'_>) {
        log::trace!("{}: 100 Continue", self.id);
        self.queue(env, CONTINUE);
    }
}

/// Every complete request in `input`, up to `max_pending_messages`, stopping after an upgrade
/// request, a request that asks to close, or an error (the batch's tail).
fn parse_batch(
    id: ConnId,
    http: &mut Http,
    input: &mut ReadBuffer,
    env: &Env<'_>,
) -> (Vec<Request>, HttpTail) {
    let limits = env.config.http_limits();
    let mut requests = Vec::new();
    while requests.len() < env.config.max_pending_messages && !input.is_empty() {
        let (request, consumed) = match http.parse(input.data(), &limits) {
            Ok(Parsed::Complete { request, consumed }) => (request, consumed),
            Ok(Parsed::Partial { consumed }) => {
                // Chunked framing already decoded into the parser.
                input.consume(consumed);
                break;
            }
            Err(err) => return (requests, HttpTail::Error(err)),
        };
        input.consume(consumed);
        match check_upgrade(&request, &env.config.origin_check()) {
            Ok(Some(upgrade)) => {
                return (requests, HttpTail::Upgrade(Box::new((request, upgrade))));
            }
            Ok(None) => {
                add(&env.metrics.http_requests, 1);
                let keep_alive = request.keep_alive();
                requests.push(request);
                if !keep_alive {
                    break;
                }
            }
            Err(err) => {
                if let HttpError::OriginRefused(why) = &err {
                    origin_refused(id, env, &request, why);
                }
                return (requests, HttpTail::Error(err));
            }
        }
    }
    (requests, HttpTail::None)
}

/// Counts and logs an upgrade the origin check refused. It is answered like any request the loop
/// rejects (`403`, then the connection lingers and closes), without a job.
fn origin_refused(id: ConnId, env: &Env<'_>, request: &Request, why: &OriginRefusal) {
    log::debug!(
        "{id}: upgrade from origin {:?} refused: {why}",
        request.header("origin").unwrap_or("(not UTF-8)")
    );
    add(&env.metrics.origin_refused, 1);
}
