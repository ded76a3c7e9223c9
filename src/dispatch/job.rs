//! The units of work that cross between the loop and the workers, in both directions.
//!
//! A [`Job`] carries everything one connection has ready (never more than one job per connection
//! is in flight, which is how per-connection order is kept across a pool of workers). A [`Reply`]
//! carries the encoded bytes the handler produced, ready for the socket, and what the loop must do
//! after writing them ([`After`]).

use crate::dispatch::ConnId;
use crate::handler::CloseInfo;
use crate::http::{HttpError, Request, UpgradeRequest};
use crate::reactor::buffer_pool::OWNED_CHUNK_MIN;
use crate::ws::{CloseFrame, Message, encode_frame, encode_header};

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

/// Bytes produced by a handler call, already encoded for the wire: `chunks`, then `bytes`.
#[derive(Debug, Default)]
pub(crate) struct Output {
    /// Earlier output, sealed: packed small frames, and large payloads in their own buffers
    /// (moved here from the handler's `Message`, never copied).
    pub(crate) chunks: Vec<Vec<u8>>,
    /// Encoded frames or HTTP responses being packed, after `chunks`.
    pub(crate) bytes: Vec<u8>,
    /// WebSocket data messages among them (for the stats).
    pub(crate) messages: u64,
    /// A close frame to send after `bytes`, if the handler asked to close (or panicked).
    pub(crate) close: Option<CloseFrame>,
}

impl Output {
    /// Appends one data frame; a large payload is kept in its own buffer behind its header.
    pub(crate) fn push_message(&mut self, message: Message) {
        let opcode = message.opcode();
        if message.len() >= OWNED_CHUNK_MIN {
            encode_header(&mut self.bytes, opcode, message.len());
            self.chunks.push(std::mem::take(&mut self.bytes));
            self.chunks.push(message.into_bytes());
        } else {
            encode_frame(&mut self.bytes, opcode, message.as_bytes());
        }
        self.messages += 1;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty() && self.chunks.iter().all(Vec::is_empty)
    }

    /// Every byte, in order, as buffers to queue.
    pub(crate) fn into_chunks(self) -> impl Iterator<Item = Vec<u8>> {
        self.chunks.into_iter().chain(std::iter::once(self.bytes))
    }
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
