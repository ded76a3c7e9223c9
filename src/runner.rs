//! Running a job's handler calls: the application side of the [`JobRunner`] seam.
//!
//! A [`Job`] enters (from a worker thread, or from the loop itself with inline handlers or for
//! the calls the handler declares non-blocking: `on_loop.rs`); the
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
//! permessage-deflate happens here too, on the thread that runs the handler (with the worker
//! pool, the loop inflates a message to ask `handles_without_blocking` about it: `on_loop.rs`):
//! the offer is negotiated before `on_upgrade`, compressed messages are inflated before
//! `on_message` (a message that inflates past `max_message_size`, or is not deflate data,
//! closes the connection with `1009` or `1007`), and what the handler sends is compressed into
//! the `Output`.

mod http_batch;
mod on_loop;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crate::buffer::OWNED_CHUNK_MIN;
use crate::config::Config;
use crate::conn_id::ConnId;
use crate::dispatch::ServerHandle;
use crate::dispatch::{
    After, Batch, Call, Compressing, Inbound, Job, JobRunner, Lease, Output, Reply, Returned, Run,
    SessionBox, TimerBook, Work,
};
use crate::handler::call::{Carried, Keep, Slot, panicked_in};
use crate::handler::deferred::{CallSite, Cell, Early, park};
use crate::handler::{Flow, Handler, Peer, Upgrade, UpgradeOffer, internal_error_response};
use crate::http::{Request, Response, UpgradeRequest, Version, switching_protocols};
use crate::metrics::add;
use crate::prometheus::{self, Exposition};
use crate::ws::PerMessageDeflate;
use crate::ws::deflate::negotiate;

/// The handler, and what its calls need: the server handle for `Context` and `on_close`, the
/// configuration for the built-in paths, and where each connection's slot waits between calls
/// (`K`: carried with the jobs, or kept on a driven server's thread).
pub(crate) struct HandlerRunner<H: Handler, K = Carried> {
    handler: H,
    keep: K,
    server: ServerHandle,
    metrics_path: Option<String>,
    health_path: Option<String>,
    /// `Config::compression`.
    compression: bool,
    compression_level: u32,
    compression_threshold: usize,
    /// The limit on an inflated message.
    max_message_size: usize,
    /// `Config::max_read_per_turn`: the most bytes a loop inflates for one job it runs itself.
    loop_inflate_budget: usize,
    /// `Config::high_water_bytes`, for `Context::pressure`.
    high_water: usize,
    /// `Config::max_timers_per_connection`, for `Context::set_timer`.
    max_timers: usize,
    /// `Config::max_unordered_per_connection`, for `Context::defer_unordered`.
    max_unordered: usize,
}

impl<H: Handler, K: Keep<H::Session>> HandlerRunner<H, K> {
    pub(crate) fn new(handler: H, server: ServerHandle, config: &Config, keep: K) -> Self {
        HandlerRunner {
            handler,
            keep,
            server,
            metrics_path: config.metrics_path.clone(),
            health_path: config.health_path.clone(),
            compression: config.compression,
            compression_level: config.compression_level,
            compression_threshold: config.compression_threshold,
            max_message_size: config.max_message_size,
            loop_inflate_budget: config.max_read_per_turn,
            high_water: config.water_marks().1,
            max_timers: config.max_timers_per_connection,
            max_unordered: config.max_unordered_per_connection,
        }
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

impl<H: Handler, K: Keep<H::Session>> JobRunner for HandlerRunner<H, K> {
    fn run(&self, job: Job) -> Option<Returned> {
        match job {
            Job::Run(Run {
                lease,
                work: Work::Messages(batch),
                session,
                queued,
            }) => {
                let slot = self.keep.take(lease.conn(), session);
                let flow = Flow {
                    queued,
                    high_water: self.high_water,
                    max_timers: self.max_timers,
                    unordered: batch.unordered,
                    max_unordered: self.max_unordered,
                };
                Some(self.run_messages(lease, batch, slot, flow))
            }
            Job::Run(Run {
                lease,
                work: Work::Http { requests, tail },
                ..
            }) => Some(self.run_http(lease, requests, tail)),
            Job::Close {
                conn,
                info,
                session,
            } => {
                let slot = self.keep.take(conn, session);
                let server = &self.server;
                let call = || self.handler.on_close(conn, slot.session, &info, server);
                if catch_unwind(AssertUnwindSafe(call)).is_err() {
                    panicked_in(server, conn, "on_close");
                }
                None
            }
        }
    }

    fn runs_on_loop(&self, job: &mut Job) -> bool {
        match job {
            Job::Run(Run {
                lease,
                work: Work::Http { requests, tail },
                ..
            }) => self.http_on_loop(lease.conn(), requests, tail),
            Job::Run(Run {
                lease,
                work: Work::Messages(batch),
                ..
            }) => self.messages_on_loop(lease.conn(), batch),
            Job::Close { .. } => false,
        }
    }
}

impl<H: Handler, K: Keep<H::Session>> HandlerRunner<H, K> {
    /// A batch's calls in order — `on_deferred_timeout`, `on_drain`, `on_timer` for each timer
    /// that fired, then `on_message` (or `on_pong`) for each message — until one closes, fails
    /// or defers: the reply, or the deferral that parks the rest of the batch until the
    /// completion.
    fn run_messages(
        &self,
        lease: Lease,
        batch: Batch,
        mut slot: Box<Slot<H::Session>>,
        flow: Flow,
    ) -> Returned {
        let conn = lease.conn();
        let Batch {
            messages,
            deflate,
            drained,
            expired,
            timers,
            ..
        } = batch;
        let mut output = Output::with_capacity(echo_room(&messages));
        output.compressing = self.compressing(deflate);
        output.timers = timers.map(|timers| Box::new(TimerBook::new(*timers, self.max_timers)));
        let mut messages = messages.into_iter();
        let mut site = CallSite {
            conn,
            output: &mut output,
            server: &self.server,
            slot: &mut slot,
            request: None,
            flow,
        };
        let mut parked = self.run_hooks(&mut site, expired, drained);
        let mut held = Vec::new(); // the peer's, while out-of-order completions have no room
        while parked.is_none() && site.output.close.is_none() {
            let Some(message) = messages.next() else {
                break;
            };
            if message.is_from_peer() && (!held.is_empty() || !has_unordered_room(&site)) {
                held.push(message);
                continue;
            }
            match self.call_one(&mut site, message) {
                Ok(deferred) => parked = deferred,
                Err(Inflate) => break,
            }
        }
        // What no call reached goes back to the inbox (after a close, the session drops it).
        held.extend(messages);
        match parked {
            Some(cell) => park(&cell, lease, output, slot, held, After::Continue),
            None => {
                output.unhandled = held;
                let session = self.keep.keep(lease.conn(), slot);
                reply(lease, output, After::Continue, session)
            }
        }
    }

    /// One message's call: `on_message`, or `on_pong`; `Some` if it deferred. A compressed
    /// message that does not inflate is the peer's error: nothing after it is handled, and the
    /// session fails the connection.
    fn call_one(
        &self,
        site: &mut CallSite<'_, H::Session>,
        message: Inbound,
    ) -> Result<Option<Arc<Cell<H::Session>>>, Inflate> {
        match message.into_call(self.max_message_size) {
            Ok(Call::Message(message)) => {
                Ok(site.call("on_message", |ctx| self.handler.on_message(ctx, message)))
            }
            Ok(Call::Pong(payload)) => {
                Ok(site.call("on_pong", |ctx| self.handler.on_pong(ctx, &payload)))
            }
            Ok(Call::Completion(call)) => match call.downcast::<Early<H::Session>>() {
                Ok(call) => Ok(site.call("an out-of-order completion", *call)),
                Err(_) => {
                    log::error!("{}: a completion of another session type", site.conn);
                    Ok(None)
                }
            },
            Ok(Call::UnorderedTimeout(tag)) => Ok(site.call("on_unordered_timeout", |ctx| {
                self.handler.on_unordered_timeout(ctx, tag);
            })),
            Err(err) => {
                log::debug!("{}: a compressed message failed: {err}", site.conn);
                add(&self.server.metrics().inflate_failures, 1);
                site.output.failed = Some(err);
                Err(Inflate)
            }
        }
    }

    /// The calls a batch owes before its messages: `on_deferred_timeout`, `on_drain`, then
    /// `on_timer` for each timer that fired and was not reset or cancelled meanwhile. `Some`
    /// if one deferred (the fired timers not reached go back to the connection, still due).
    fn run_hooks(
        &self,
        site: &mut CallSite<'_, H::Session>,
        expired: bool,
        drained: bool,
    ) -> Option<Arc<Cell<H::Session>>> {
        if expired {
            let parked = site.call("on_deferred_timeout", |ctx| {
                self.handler.on_deferred_timeout(ctx);
            });
            if parked.is_some() {
                return parked;
            }
        }
        if drained && site.output.close.is_none() {
            let parked = site.call("on_drain", |ctx| self.handler.on_drain(ctx));
            if parked.is_some() {
                return parked;
            }
        }
        while site.output.close.is_none() {
            let Some(key) = site
                .output
                .timers
                .as_mut()
                .and_then(|book| book.next_fired())
            else {
                break;
            };
            let parked = site.call("on_timer", |ctx| self.handler.on_timer(ctx, key));
            if parked.is_some() {
                return parked;
            }
        }
        None
    }

    /// `on_upgrade`, then the `101` and `on_open` if it accepted: the reply, with the new
    /// connection's session — or the deferral, if `on_open` deferred.
    fn upgrade_and_open(
        &self,
        lease: Lease,
        request: &Request,
        upgrade: UpgradeRequest,
        mut output: Output,
    ) -> Returned {
        let conn = lease.conn();
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
                let slot = Box::new(Slot { peer, session });
                return self.open(lease, request, slot, output, deflate);
            }
            Ok(Upgrade::Reject(response)) => response,
            Err(_) => {
                panicked_in(&self.server, conn, "on_upgrade");
                internal_error_response()
            }
        };
        response.encode(&mut output.bytes, request.version(), false, false);
        reply(lease, output, After::CloseHttp { bad_request: false }, None)
    }

    /// A new WebSocket's session (as `on_upgrade` accepted it), handed to `on_open` with the
    /// upgrade request.
    fn open(
        &self,
        lease: Lease,
        request: &Request,
        mut slot: Box<Slot<H::Session>>,
        mut output: Output,
        deflate: Option<PerMessageDeflate>,
    ) -> Returned {
        let flow = Flow {
            queued: 0,
            high_water: self.high_water,
            max_timers: self.max_timers,
            unordered: 0,
            max_unordered: self.max_unordered,
        };
        let parked = CallSite {
            conn: lease.conn(),
            output: &mut output,
            server: &self.server,
            slot: &mut slot,
            request: Some(request),
            flow,
        }
        .call("on_open", |ctx| self.handler.on_open(ctx));
        let after = After::Upgraded { deflate };
        match parked {
            Some(cell) => park(&cell, lease, output, slot, Vec::new(), after),
            None => {
                let session = self.keep.keep(lease.conn(), slot);
                reply(lease, output, after, session)
            }
        }
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

/// A compressed message of the batch failed to inflate.
struct Inflate;

/// May a call start one more out-of-order completion (always, with them off)? Else the peer's
/// next messages wait.
fn has_unordered_room<S>(site: &CallSite<'_, S>) -> bool {
    let flow = site.flow;
    flow.max_unordered == 0 || flow.unordered + site.output.unordered.len() < flow.max_unordered
}

/// A job's reply, as it goes home.
fn reply(lease: Lease, output: Output, after: After, session: Option<SessionBox>) -> Returned {
    Returned::Reply(Reply {
        lease,
        output,
        after,
        session,
    })
}
