//! How a batch of pipelined HTTP requests ends ([`HttpTail`]), and an HTTP request answered
//! later: what a batch leaves with its connection while one of its answers is deferred.
//!
//! A handler that answers a request later (`HttpContext::answer_later`) defers its job as a
//! WebSocket call does (`deferred.rs`: the lease waits in the cell, the loop gets a
//! [`Deferral`](crate::dispatch::Deferral)). The requests of the batch after it have not been
//! handled: they go to the connection in the deferral's [`Output`](crate::dispatch::Output)
//! as an [`HttpLater`], with how the deferred request's response is framed. The session keeps
//! it and hands out the rest as its next job once the answer's reply has come — the
//! completion's response, a `500` if it was abandoned, or the `504` the session writes itself
//! at the deadline — so responses keep the order of the requests and no later request is
//! handled before the answer it follows.

use crate::http::{HttpError, Request, UpgradeRequest, Version};

/// How a response is put on the wire for its request: the request's version, whether the
/// connection stays open after it, and whether it answers `HEAD` (no body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Framing {
    pub version: Version,
    pub keep_alive: bool,
    pub head_only: bool,
}

impl Framing {
    /// The framing of `request`'s response; `last` if it is the last one the connection
    /// answers (a monitoring-reserve request): then it closes whatever the request asked.
    pub(crate) fn of(request: &Request, last: bool) -> Self {
        Framing {
            version: request.version(),
            keep_alive: request.keep_alive() && !last,
            head_only: request.method() == "HEAD",
        }
    }
}

/// A batch's requests after one answered later, and that answer's framing.
#[derive(Debug)]
pub(crate) struct HttpLater {
    /// The framing of the response still owed, until its reply is in (then `None`): if it
    /// does not keep the connection alive, the connection closes after it.
    pub owed: Option<Framing>,
    /// The requests after it, not yet handled, in order.
    pub requests: Vec<Request>,
    /// What ended the batch (an upgrade, an error), after them.
    pub tail: HttpTail,
}

impl HttpLater {
    /// Nothing is left to do: the answer came, and no request or tail waits.
    pub(crate) fn is_spent(&self) -> bool {
        self.owed.is_none() && !self.has_work()
    }

    /// Requests or a tail wait for the next job.
    pub(crate) fn has_work(&self) -> bool {
        !self.requests.is_empty() || !matches!(self.tail, HttpTail::None)
    }

    /// Payload bytes it holds (request bodies, the upgrade request's): charged to the
    /// connection while no job carries them.
    pub(crate) fn bytes(&self) -> usize {
        let tail = match &self.tail {
            HttpTail::Upgrade(upgrade) => upgrade.0.body().len(),
            HttpTail::None | HttpTail::Error(_) | HttpTail::Close => 0,
        };
        self.requests.iter().map(|r| r.body().len()).sum::<usize>() + tail
    }
}

/// What ends a batch of HTTP requests.
#[derive(Debug)]
pub(crate) enum HttpTail {
    /// Nothing: the connection stays in HTTP (unless a request asked to close).
    None,
    /// A valid WebSocket upgrade request, for `on_upgrade` and then `on_open`.
    Upgrade(Box<(Request, UpgradeRequest)>),
    /// Bytes that broke HTTP after the requests: answer with this error, then close.
    Error(HttpError),
    /// Nothing more is taken from this connection: the last response says `Connection: close`,
    /// whatever its request asked, and the connection closes after it (a request on the
    /// monitoring reserve, `monitoring_reserve.rs`).
    Close,
}
