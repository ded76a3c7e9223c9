//! The units of work that cross between the loop and the workers, in both directions.
//!
//! A [`Job`] carries everything one connection has ready (never more than one job per connection
//! is in flight, which is how per-connection order is kept across a pool of workers). A [`Reply`]
//! carries the encoded bytes the handler produced, ready for the socket, and what the loop must do
//! after writing them ([`After`]).

use crate::dispatch::ConnId;
use crate::handler::CloseInfo;
use crate::http::{HttpError, Request, UpgradeRequest};
use crate::ws::{CloseFrame, Message};

/// One connection's batch of work for a worker.
#[derive(Debug)]
pub(crate) struct Job {
    pub conn: ConnId,
    pub work: Work,
}

/// What a job asks the handler to do.
#[derive(Debug)]
pub(crate) enum Work {
    /// Pipelined HTTP requests, answered in order, then possibly an upgrade or an error.
    Http {
        requests: Vec<Request>,
        tail: HttpTail,
    },
    /// WebSocket messages that arrived since the previous job, in order.
    Messages(Vec<Message>),
    /// The connection has closed: call `on_close`. No reply is sent for this job.
    Closed(CloseInfo),
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
}

/// Bytes produced by a handler call, already encoded for the wire.
#[derive(Debug, Default)]
pub(crate) struct Output {
    /// Encoded frames or HTTP responses, in order.
    pub(crate) bytes: Vec<u8>,
    /// WebSocket data messages among them (for the stats).
    pub(crate) messages: u64,
    /// A close frame to send after `bytes`, if the handler asked to close (or panicked).
    pub(crate) close: Option<CloseFrame>,
}

/// A worker's answer to one job.
#[derive(Debug)]
pub(crate) struct Reply {
    pub conn: ConnId,
    pub output: Output,
    pub after: After,
}

/// What the loop does once a reply's bytes are queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum After {
    /// Carry on in the same phase.
    Continue,
    /// The `101` went out: the connection now speaks WebSocket.
    Upgraded,
    /// The last HTTP response asked to close (or was an error): flush, then close.
    CloseHttp,
}
