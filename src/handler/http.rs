//! Plain HTTP requests with a context: what [`Handler::on_http`](crate::Handler::on_http) is
//! given ([`HttpContext`]) and what it gives back ([`Answer`]).
//!
//! The runner makes a context for each request of a batch (the connection's id, the server
//! handle, how the request's response is framed) and takes the answer: a response now, encoded
//! in the batch's order, or one given later through a [`Responder`] (`responder.rs`), which
//! parks the rest of the batch until it comes.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::conn_id::ConnId;
use crate::dispatch::{Framing, ServerHandle};
use crate::handler::responder::{HttpCell, Responder};
use crate::http::Response;

/// A handler's way to the rest of the server while it answers a plain HTTP request: the
/// [`ServerHandle`] (stats, pushes to WebSocket connections, topics, shutdown), the
/// connection's id and peer, and [`answer_later`](Self::answer_later).
pub struct HttpContext<'a> {
    conn: ConnId,
    peer: Option<SocketAddr>,
    server: &'a ServerHandle,
    framing: Framing,
    /// Made by [`answer_later`](Self::answer_later) in this call.
    later: Option<Arc<HttpCell>>,
}

impl std::fmt::Debug for HttpContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpContext")
            .field("conn", &self.conn)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl<'a> HttpContext<'a> {
    pub(crate) fn new(
        conn: ConnId,
        peer: Option<SocketAddr>,
        server: &'a ServerHandle,
        framing: Framing,
    ) -> Self {
        HttpContext {
            conn,
            peer,
            server,
            framing,
            later: None,
        }
    }

    /// The id of the connection the request came on.
    pub fn conn(&self) -> ConnId {
        self.conn
    }

    /// The client's address (as `accept` reported it).
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// The server: its stats, its WebSocket connections and topics, its shutdown.
    pub fn server(&self) -> &ServerHandle {
        self.server
    }

    /// Answers this request later, from another thread: return the [`Answer`] from
    /// [`Handler::on_http`](crate::Handler::on_http), and move the [`Responder`] to the thread
    /// that does the work (a bounded backend pool, not the server's workers) to
    /// [`complete`](Responder::complete) it there. The worker (or the inline loop) is free
    /// as soon as the call returns.
    ///
    /// The connection keeps HTTP's order: the requests pipelined behind this one are not
    /// handled until its response is queued, and their responses follow it. The response is
    /// framed exactly as [`Answer::now`] would frame it (version, `Connection: close` or
    /// keep-alive, no body for `HEAD`). Past
    /// [`Config::deferred_timeout`](crate::Config::deferred_timeout) the client gets
    /// `504 Gateway Timeout` (the connection stays open if the request kept it alive) and a
    /// later `complete` gets [`DeferredError::TimedOut`](crate::DeferredError::TimedOut); a
    /// responder dropped without completing answers `500`; a connection that closes first
    /// makes `complete` fail with [`DeferredError::Closed`](crate::DeferredError::Closed).
    /// Completed on this thread before the call returns, the response goes out at once.
    ///
    /// The answer must be the one the call returns: a responder whose answer was not returned
    /// (another was, or the call panicked) fails with
    /// [`DeferredError::Unused`](crate::DeferredError::Unused). Called twice, the first pair
    /// is given up that way.
    pub fn answer_later(&mut self) -> (Answer, Responder) {
        if let Some(earlier) = self.later.take() {
            earlier.unused();
        }
        let cell = HttpCell::new(self.conn, self.server.clone(), self.framing);
        let responder = cell.responder();
        self.later = Some(Arc::clone(&cell));
        (
            Answer {
                kind: Kind::Later(cell),
            },
            responder,
        )
    }

    /// The cell [`answer_later`](Self::answer_later) made in this call, if any.
    pub(crate) fn take_later(&mut self) -> Option<Arc<HttpCell>> {
        self.later.take()
    }
}

/// What [`Handler::on_http`](crate::Handler::on_http) answers: a response now
/// ([`Answer::now`], `Answer::from(response)`, or `response.into()`), or one given later
/// through a [`Responder`] ([`HttpContext::answer_later`]).
#[derive(Debug)]
pub struct Answer {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Now(Response),
    Later(Arc<HttpCell>),
}

/// An answer as the runner takes it.
pub(crate) enum Given {
    Now(Response),
    /// Given later through the responder of this cell.
    Later(Arc<HttpCell>),
}

impl Answer {
    /// Answers with `response` now, in the order of the connection's pipelined requests.
    pub fn now(response: Response) -> Self {
        Answer {
            kind: Kind::Now(response),
        }
    }

    /// Will the response be given later, through a [`Responder`]?
    pub fn is_later(&self) -> bool {
        matches!(self.kind, Kind::Later(_))
    }

    pub(crate) fn into_given(self) -> Given {
        match self.kind {
            Kind::Now(response) => Given::Now(response),
            Kind::Later(cell) => Given::Later(cell),
        }
    }
}

impl From<Response> for Answer {
    fn from(response: Response) -> Self {
        Answer::now(response)
    }
}
