//! Plain HTTP requests with a context: what [`Handler::on_http`](crate::Handler::on_http) is
//! given ([`HttpContext`]) and what it gives back ([`Answer`]).
//!
//! The runner makes a context for each request of a batch (the connection's id and the server
//! handle) and takes the answer's response to encode it, in the batch's order.

use std::net::SocketAddr;

use crate::conn_id::ConnId;
use crate::dispatch::ServerHandle;
use crate::http::Response;

/// A handler's way to the rest of the server while it answers a plain HTTP request: the
/// [`ServerHandle`] (stats, pushes to WebSocket connections, topics, shutdown) and the
/// connection's id and peer.
pub struct HttpContext<'a> {
    conn: ConnId,
    peer: Option<SocketAddr>,
    server: &'a ServerHandle,
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
    pub(crate) fn new(conn: ConnId, peer: Option<SocketAddr>, server: &'a ServerHandle) -> Self {
        HttpContext { conn, peer, server }
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
}

/// What [`Handler::on_http`](crate::Handler::on_http) answers: a response, now
/// (`Answer::from(response)`, or `response.into()`).
#[derive(Debug)]
pub struct Answer {
    response: Response,
}

impl Answer {
    /// Answers with `response` now, in the order of the connection's pipelined requests.
    pub fn now(response: Response) -> Self {
        Answer { response }
    }

    pub(crate) fn into_response(self) -> Response {
        self.response
    }
}

impl From<Response> for Answer {
    fn from(response: Response) -> Self {
        Answer::now(response)
    }
}
