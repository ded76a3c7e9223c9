//! Running a job's handler calls: the application side of the [`JobRunner`] seam.
//!
//! A [`Job`] enters (from a worker thread, or from the loop itself with inline handlers); the
//! [`Handler`] is called for each of its requests or messages inside `catch_unwind`, with a
//! [`Context`] that encodes what the handler sends into one [`Output`]; a [`Reply`] leaves. The
//! opt-in metrics and health paths are answered here, before the handler is asked. A panicking
//! handler closes its connection with `1011` (or answers `500`) and is counted; the thread goes
//! on.
//!
//! Each WebSocket's [`Handler::Session`] lives here as a [`Slot`] (the session and the
//! connection's [`Peer`]), made from the session `on_upgrade` accepted with and boxed
//! type-erased into the [`Reply`]; the core carries the box to the connection and back in each
//! [`Job`], and this runner — the one place that knows the handler's types — unboxes it for
//! every call.
//!
//! permessage-deflate happens here too, on the thread that runs the handler: the offer is
//! negotiated before `on_upgrade`, compressed messages are inflated before `on_message` (a
//! message that inflates past `max_message_size`, or is not deflate data, closes the connection
//! with `1009` or `1007`), and what the handler sends is compressed into the `Output`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crate::buffer::OWNED_CHUNK_MIN;
use crate::config::Config;
use crate::conn_id::ConnId;
use crate::dispatch::ServerHandle;
use crate::dispatch::{
    After, Batch, Compressing, HttpTail, Inbound, Job, JobRunner, Output, Reply, Run, SessionBox,
    Work,
};
use crate::handler::{Context, Flow, Handler, HttpContext, Peer, Upgrade, UpgradeOffer};
use crate::http::{Request, Response, UpgradeRequest, Version, switching_protocols};
use crate::metrics::add;
use crate::prometheus::{self, Exposition};
use crate::ws::deflate::negotiate;
use crate::ws::{CloseCode, CloseFrame, PerMessageDeflate};

/// A WebSocket's session as the runner keeps it: the handler's state, and who the peer is.
struct Slot<S> {
    peer: Peer,
    session: S,
}

impl<S: Default + Send + 'static> Slot<S> {
    /// The slot in a job's box; a fresh one if the box is missing or of another type (neither
    /// happens: the box was made here).
    fn unbox(session: Option<SessionBox>, conn: ConnId) -> Box<Slot<S>> {
        match session.map(|boxed| boxed.downcast::<Slot<S>>()) {
            Some(Ok(slot)) => slot,
            Some(Err(_)) | None => {
                log::error!("{conn}: job without its session; starting from the default");
                Box::new(Slot {
                    peer: Peer::default(),
                    session: S::default(),
                })
            }
        }
    }
}

/// The handler, and what its calls need: the server handle for `Context` and `on_close`, and
/// the configuration for the built-in paths.
pub(crate) struct HandlerRunner<H> {
    handler: H,
    server: ServerHandle,
    metrics_path: Option<String>,
    health_path: Option<String>,
    /// `Config::compression`.
    compression: bool,
    compression_level: u32,
    compression_threshold: usize,
    /// The limit on an inflated message.
    max_message_size: usize,
    /// `Config::high_water_bytes`, for `Context::pressure`.
    high_water: usize,
}

impl<H: Handler> HandlerRunner<H> {
    pub(crate) fn new(handler: H, server: ServerHandle, config: &Config) -> Arc<Self> {
        Arc::new(HandlerRunner {
            handler,
            server,
            metrics_path: config.metrics_path.clone(),
            health_path: config.health_path.clone(),
            compression: config.compression,
            compression_level: config.compression_level,
            compression_threshold: config.compression_threshold,
            max_message_size: config.max_message_size,
            high_water: config.water_marks().1,
        })
    }

    /// How replies are compressed on a connection that agreed on `deflate`.
    fn compressing(&self, deflate: Option<PerMessageDeflate>) -> Option<Compressing> {
        deflate.map(|agreement| Compressing {
            window_bits: agreement.server_window_bits(),
            level: self.compression_level,
            threshold: self.compression_threshold,
        })
    }
}

impl<H: Handler> JobRunner for HandlerRunner<H> {
    fn run(&self, job: Job) -> Option<Reply> {
        match job {
            Job::Run(Run {
                lease,
                work: Work::Messages(batch),
                session,
                queued,
            }) => {
                let conn = lease.conn();
                let mut slot = Slot::<H::Session>::unbox(session, conn);
                let flow = Flow {
                    queued,
                    high_water: self.high_water,
                };
                let output = self.run_messages(conn, batch, &mut slot, flow);
                Some(Reply {
                    lease,
                    output,
                    after: After::Continue,
                    session: Some(slot),
                })
            }
            Job::Run(Run {
                lease,
                work: Work::Http { requests, tail },
                ..
            }) => {
                let (output, after, session) = self.run_http(lease.conn(), requests, tail);
                Some(Reply {
                    lease,
                    output,
                    after,
                    session,
                })
            }
            Job::Close {
                conn,
                info,
                session,
            } => {
                let slot = Slot::<H::Session>::unbox(session, conn);
                let server = &self.server;
                let call = || self.handler.on_close(conn, slot.session, &info, server);
                if catch_unwind(AssertUnwindSafe(call)).is_err() {
                    self.panicked(conn, "on_close");
                }
                None
            }
        }
    }
}

impl<H: Handler> HandlerRunner<H> {
    fn run_messages(
        &self,
        conn: ConnId,
        batch: Batch,
        slot: &mut Slot<H::Session>,
        flow: Flow,
    ) -> Output {
        let Batch {
            messages,
            deflate,
            drained,
            ..
        } = batch;
        let mut output = Output::with_capacity(echo_room(&messages));
        output.compressing = self.compressing(deflate);
        if drained {
            let Slot { peer, session } = &mut *slot;
            let mut ctx = Context::new(conn, &mut output, &self.server, session, peer, None, flow);
            if catch_unwind(AssertUnwindSafe(|| self.handler.on_drain(&mut ctx))).is_err() {
                self.panicked(conn, "on_drain");
                output.close = Some(internal_error());
                return output;
            }
        }
        for message in messages {
            let message = match message.into_message(self.max_message_size) {
                Ok(message) => message,
                Err(err) => {
                    log::debug!("{conn}: a compressed message failed: {err}");
                    add(&self.server.metrics().inflate_failures, 1);
                    // Nothing after it is handled: the session fails the connection.
                    output.failed = Some(err);
                    break;
                }
            };
            let Slot { peer, session } = &mut *slot;
            let mut ctx = Context::new(conn, &mut output, &self.server, session, peer, None, flow);
            let call = || self.handler.on_message(&mut ctx, message);
            if catch_unwind(AssertUnwindSafe(call)).is_err() {
                self.panicked(conn, "on_message");
                output.close = Some(internal_error());
            }
            if output.close.is_some() {
                // Messages after a close are dropped: the handler asked to end the conversation.
                break;
            }
        }
        output
    }

    /// A batch of HTTP requests answered in order, then its tail (an upgrade, an error): the
    /// bytes, what the session does next, and a new WebSocket's session.
    fn run_http(
        &self,
        conn: ConnId,
        requests: Vec<Request>,
        tail: HttpTail,
    ) -> (Output, After, Option<SessionBox>) {
        let mut output = Output::default();
        let close = After::CloseHttp { bad_request: false };
        // A monitoring-reserve request: its response closes the connection.
        let last_closes = matches!(tail, HttpTail::Close);
        let count = requests.len();
        for (i, request) in requests.into_iter().enumerate() {
            let keep_alive = request.keep_alive() && !(last_closes && i + 1 == count);
            let head_only = request.method() == "HEAD";
            let version = request.version();
            let answer = catch_unwind(AssertUnwindSafe(|| self.answer(conn, request)));
            let (response, keep_alive) = match answer {
                Ok(response) => (response, keep_alive),
                Err(_) => {
                    self.panicked(conn, "on_http_request");
                    (internal_error_response(), false)
                }
            };
            response.encode(&mut output.bytes, version, keep_alive, head_only);
            if !keep_alive {
                return (output, close, None);
            }
        }
        let after = match tail {
            HttpTail::None => After::Continue,
            HttpTail::Close => close,
            HttpTail::Error(err) => {
                output.bytes.extend(err.to_response().to_closing_bytes());
                After::CloseHttp { bad_request: true }
            }
            HttpTail::Upgrade(upgrade) => {
                let (request, upgrade) = *upgrade;
                let (after, session) = self.upgrade_and_open(conn, &request, upgrade, &mut output);
                return (output, after, session);
            }
        };
        (output, after, None)
    }

    /// `on_upgrade`, then the `101` and `on_open` if it accepted: what the session does next,
    /// and the new connection's session.
    fn upgrade_and_open(
        &self,
        conn: ConnId,
        request: &Request,
        upgrade: UpgradeRequest,
        output: &mut Output,
    ) -> (After, Option<SessionBox>) {
        // The origin was checked on the loop (`check_upgrade`): a refused one never gets here.
        let offer = UpgradeOffer {
            protocols: upgrade.protocols,
            origin: upgrade.origin,
            compression: if self.compression {
                negotiate(request.headers_all("sec-websocket-extensions"))
            } else {
                None
            },
        };
        let decide = || self.handler.on_upgrade(request, &offer);
        let close = After::CloseHttp { bad_request: false };
        let response = match catch_unwind(AssertUnwindSafe(decide)) {
            Ok(Upgrade::Accept {
                protocol,
                headers,
                compression,
                session,
            }) => {
                let protocol = protocol.filter(|chosen| offered(conn, &offer, chosen));
                let deflate = offer.compression.filter(|_| compression);
                let headers = with_extension(headers, deflate);
                let response = switching_protocols(&upgrade.key, protocol.as_deref(), &headers);
                response.encode(&mut output.bytes, Version::Http11, true, false);
                output.compressing = self.compressing(deflate);
                let peer = Peer {
                    addr: request.peer_addr(),
                    target: request.target().to_owned(),
                    protocol,
                };
                let session = self.open(conn, request, Slot { peer, session }, output);
                return (After::Upgraded { deflate }, Some(session));
            }
            Ok(Upgrade::Reject(response)) => response,
            Err(_) => {
                self.panicked(conn, "on_upgrade");
                internal_error_response()
            }
        };
        response.encode(&mut output.bytes, request.version(), false, false);
        (close, None)
    }

    /// A new WebSocket's session (as `on_upgrade` accepted it), handed to `on_open` with the
    /// upgrade request.
    fn open(
        &self,
        conn: ConnId,
        request: &Request,
        slot: Slot<H::Session>,
        output: &mut Output,
    ) -> SessionBox {
        let mut slot = Box::new(slot);
        let Slot { peer, session } = &mut *slot;
        let flow = Flow {
            queued: 0,
            high_water: self.high_water,
        };
        let mut ctx = Context::new(
            conn,
            output,
            &self.server,
            session,
            peer,
            Some(request),
            flow,
        );
        if catch_unwind(AssertUnwindSafe(|| self.handler.on_open(&mut ctx))).is_err() {
            self.panicked(conn, "on_open");
            output.close = Some(internal_error());
        }
        slot
    }

    /// The answer to one plain HTTP request: the server's own for its paths, else the
    /// handler's.
    fn answer(&self, conn: ConnId, request: Request) -> Response {
        if let Some(response) = self.builtin_response(&request) {
            return response;
        }
        let mut ctx = HttpContext::new(conn, request.peer_addr(), &self.server);
        self.handler.on_http(&mut ctx, request).into_response()
    }

    /// The server's own answer for the opt-in metrics and health paths, if `request` is for one.
    fn builtin_response(&self, request: &Request) -> Option<Response> {
        let path = Some(request.path());
        if path == self.metrics_path.as_deref() {
            let mut body = prometheus::render(&self.server.stats());
            prometheus::render_loop_drops(&mut body, &self.server.backplane_drops_per_loop());
            let ours = body.len();
            let added = || self.handler.write_metrics(&mut Exposition::new(&mut body));
            if catch_unwind(AssertUnwindSafe(added)).is_err() {
                add(&self.server.metrics().handler_panics, 1);
                log::error!("handler panicked in write_metrics; serving the server's metrics only");
                body.truncate(ours);
            }
            return Some(
                Response::new(200)
                    .with_header("Content-Type", prometheus::CONTENT_TYPE)
                    .with_body(body),
            );
        }
        if path == self.health_path.as_deref() {
            return Some(if self.server.shutdown_requested() {
                Response::text(503, "shutting down\n")
            } else {
                Response::text(200, "ok\n")
            });
        }
        None
    }

    fn panicked(&self, conn: ConnId, call: &str) {
        add(&self.server.metrics().handler_panics, 1);
        log::error!("{conn}: handler panicked in {call}; closing the connection");
    }
}

/// Did the client offer the subprotocol `on_upgrade` chose? The server MUST answer with one of
/// the client's protocols, or none (RFC 6455 §4.2.2): another is dropped, with a warning.
fn offered(conn: ConnId, offer: &UpgradeOffer, chosen: &str) -> bool {
    let offered = offer.protocols.iter().any(|p| p == chosen);
    if !offered {
        log::warn!("{conn}: on_upgrade chose {chosen:?}, which was not offered");
    }
    offered
}

/// The handler's headers for the `101`, with the server's own `Sec-WebSocket-Extensions` for
/// the agreement in place of any the handler set.
fn with_extension(
    mut headers: Vec<(String, String)>,
    deflate: Option<PerMessageDeflate>,
) -> Vec<(String, String)> {
    headers.retain(|(name, _)| !name.eq_ignore_ascii_case("sec-websocket-extensions"));
    if let Some(agreement) = deflate {
        let value = agreement.response_header();
        headers.push(("Sec-WebSocket-Extensions".to_owned(), value));
    }
    headers
}

/// Room for an echo of the whole batch up front: one allocation instead of a series of
/// reallocations (large payloads are moved, not copied, so they need no room here).
fn echo_room(messages: &[Inbound]) -> usize {
    let header = 10;
    messages
        .iter()
        .map(|m| {
            header
                + if m.len() < OWNED_CHUNK_MIN {
                    m.len()
                } else {
                    0
                }
        })
        .sum()
}

/// The close frame a connection gets when its handler panicked.
fn internal_error() -> CloseFrame {
    CloseFrame {
        code: CloseCode::Error,
        reason: "handler panicked".into(),
    }
}

/// The response a request gets when its handler panicked.
fn internal_error_response() -> Response {
    Response::text(500, "internal server error\n")
}
