//! The WebSocket side: `/ws` takes requests, `/echo` echoes (the unrelated traffic whose
//! latency must not suffer when the backend is slow), `GET /` is the console and live state,
//! `GET /debug` the server's own dashboard, `/metrics` the server's families and the gateway's,
//! and `GET /get?key=K` Redis's `GET K` over plain HTTP, answered later from the bulkhead
//! (`HttpContext::answer_later`): the worker returns at once, the backend thread completes the
//! response, and requests pipelined behind it wait for it.
//!
//! Every call here runs on a WebSocket worker and returns without waiting for Redis: a request
//! is parsed, checked and handed to the backend threads (`backend.rs`), or refused at once with
//! its reason. Which route a connection takes is decided in `on_upgrade` and is its session's
//! first value, with the tab of its unanswered requests.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use wsreactor::{
    Answer, CloseInfo, ConnId, Context, Exposition, Handler, HttpContext, Message, Request,
    Response, ServerHandle, Upgrade, UpgradeOffer,
};

use super::backend::{Answering, Backend, Tab};
use super::protocol::{self, ErrorKind};

/// The console on `GET /`.
const PAGE: &str = include_str!("page.html");
/// The server's own dashboard, as the echo example serves it.
const DASHBOARD: &str = include_str!("../echo/dashboard.html");

/// The path of the Prometheus text (the server's `metrics_path`).
pub const METRICS_PATH: &str = "/metrics";

/// What a WebSocket is for.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// JSON requests to Redis.
    #[default]
    Gateway,
    /// Echo: traffic that never touches the backend.
    Echo,
}

/// A connection's session: its route, and its tab of unanswered requests (shared with the
/// backend threads that answer them).
#[derive(Debug, Default)]
pub struct Session {
    route: Route,
    tab: Arc<Tab>,
}

/// The gateway's handler.
pub struct Gateway {
    backend: Backend,
    dashboard: String,
    /// `--blocking-workers`: call Redis on the WebSocket worker itself (no bulkhead), to
    /// measure what the bulkhead is for.
    blocking: bool,
    /// `--deferred`: a message of one request defers its call (`Context::defer`) and the
    /// backend thread completes it, instead of pushing the answer through the server.
    deferred: bool,
    /// `--unordered N`: every request defers its call out of order (`Context::defer_unordered`)
    /// and the backend thread completes it.
    unordered: bool,
}

impl Gateway {
    pub fn new(backend: Backend, blocking: bool, deferred: bool) -> Self {
        Gateway {
            backend,
            dashboard: DASHBOARD.replace("{{METRICS_PATH}}", METRICS_PATH),
            blocking,
            deferred,
            unordered: false,
        }
    }

    /// Answers every request through an out-of-order completion (the server's
    /// `max_unordered_per_connection` set).
    pub fn with_unordered(mut self, unordered: bool) -> Self {
        self.unordered = unordered;
        self
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Every request of one message: queued for the backend, or refused now. With `--deferred`
    /// a message of one request defers its call once the backend takes it, and the backend
    /// thread completes it; a refusal answers at once.
    fn requests(&self, ctx: &mut Context<'_, Session>, text: &str) {
        let (conn, server) = (ctx.conn(), ctx.server().clone());
        let tab = Arc::clone(&ctx.session().tab);
        let parsed: Vec<_> = protocol::parse_lines(text).collect();
        let defer = self.deferred && parsed.len() == 1;
        for parsed in parsed {
            let (id, kind, why) = match parsed {
                Ok(request) if self.blocking => {
                    ctx.send(self.backend.serve_here(conn, &request));
                    continue;
                }
                Ok(request) => {
                    // Past the limit within one message (the next message would wait), the
                    // rest are pushed. The backend answers by `--request-timeout`, long before
                    // `deferred_timeout`: the tag is not needed.
                    let reply = || match (self.unordered, defer) {
                        (true, _) => ctx
                            .defer_unordered(0)
                            .map_or_else(|_| Answering::Push(server.clone()), Answering::Unordered),
                        (false, true) => Answering::Deferred(ctx.defer()),
                        (false, false) => Answering::Push(server.clone()),
                    };
                    match self.backend.submit(conn, request, &tab, reply) {
                        Ok(()) => continue,
                        Err((request, kind, why)) => (request.id, kind, why),
                    }
                }
                Err(refused) => (refused.id, refused.kind, refused.message),
            };
            self.backend.metrics().answered(Some(kind));
            ctx.send(protocol::error(&id, kind, &why));
        }
    }
}

impl Gateway {
    /// `GET /get?key=K`: Redis's `GET K` through the bulkhead, answered later by the backend
    /// thread with `{"id": K, "ok": VALUE}` (`200`) or `{"id": K, "error": KIND, ...}` with
    /// the kind's status; refused at once (`400`, `503`) when it cannot be queued.
    fn http_get(&self, ctx: &mut HttpContext<'_>, request: &Request) -> Answer {
        let json = |status, text: String| {
            Response::new(status)
                .with_header("Content-Type", "application/json")
                .with_body(text)
                .into()
        };
        let Some(key) = request
            .query()
            .and_then(|q| protocol::query_value(q, "key"))
        else {
            let why = "GET /get?key=K: the key is missing";
            self.backend.metrics().answered(Some(ErrorKind::BadRequest));
            return json(
                400,
                protocol::error(&serde_json::Value::Null, ErrorKind::BadRequest, why),
            );
        };
        let conn = ctx.conn();
        let mut later = None;
        let reply = || {
            let (answer, responder) = ctx.answer_later();
            later = Some(answer);
            Answering::Http(responder)
        };
        // One request on a tab of its own: HTTP keeps its order, one answer at a time.
        match self
            .backend
            .submit(conn, protocol::get_request(&key), &Arc::default(), reply)
        {
            // `reply` made the answer once the bulkhead took the request.
            Ok(()) => later.unwrap_or_else(|| json(500, "{}".to_owned())),
            Err((request, kind, why)) => {
                self.backend.metrics().answered(Some(kind));
                json(kind.http_status(), protocol::error(&request.id, kind, &why))
            }
        }
    }
}

impl Handler for Gateway {
    type Session = Session;

    fn on_upgrade(&self, request: &Request, _offer: &UpgradeOffer) -> Upgrade<Session> {
        let route = match request.path() {
            "/ws" => Route::Gateway,
            "/echo" => Route::Echo,
            _ => return Upgrade::reject(404, "WebSockets connect to /ws (requests) or /echo\n"),
        };
        Upgrade::accept_with(Session {
            route,
            tab: Arc::default(),
        })
    }

    fn on_message(&self, ctx: &mut Context<'_, Session>, message: Message) {
        match (ctx.session().route, message) {
            (Route::Echo, message) => {
                ctx.send(message);
            }
            (Route::Gateway, Message::Text(text)) => self.requests(ctx, &text),
            (Route::Gateway, Message::Binary(_)) => {
                let why = "requests are JSON text, one per line";
                let answer = protocol::error(&serde_json::Value::Null, ErrorKind::BadRequest, why);
                self.backend.metrics().answered(Some(ErrorKind::BadRequest));
                ctx.send(answer);
            }
        }
    }

    fn on_close(&self, _conn: ConnId, session: Session, _close: &CloseInfo, _: &ServerHandle) {
        // Requests still queued for it are not run.
        session.tab.closed.store(true, Ordering::Release);
    }

    fn on_http(&self, ctx: &mut HttpContext<'_>, request: Request) -> Answer {
        match (request.method(), request.path()) {
            ("GET" | "HEAD", "/") => Response::html(200, PAGE).into(),
            ("GET" | "HEAD", "/debug") => Response::html(200, self.dashboard.as_str()).into(),
            ("GET" | "HEAD", "/get") => self.http_get(ctx, &request),
            _ => Response::text(
                404,
                "not found: the console is at /, requests go to ws://HOST/ws or GET /get?key=K\n",
            )
            .into(),
        }
    }

    fn write_metrics(&self, exposition: &mut Exposition<'_>) {
        self.backend
            .metrics()
            .write(exposition, &self.backend.gauges());
    }
}
