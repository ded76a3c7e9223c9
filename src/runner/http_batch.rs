//! A job of pipelined HTTP requests: each answered in order — by the server's own metrics and
//! health paths, or by [`Handler::on_http`] — then the batch's tail (an upgrade, an error).
//!
//! A request enters with the framing its response needs (version, keep-alive, `HEAD`); its
//! answer leaves encoded into the job's [`Output`]. An answer given later
//! ([`HttpContext::answer_later`](crate::HttpContext::answer_later)) that was not completed
//! inside the call ends the job early: the responses so far go to the loop in a deferral,
//! with the requests after it and the tail as an [`HttpLater`] for the session to hand out
//! once the answer's reply is in (`session/http_later.rs`), and the job's lease waits in the
//! answer's cell (`handler/responder.rs`).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crate::conn_id::ConnId;
use crate::dispatch::{After, Framing, HttpLater, HttpTail, Lease, Output, Returned};
use crate::handler::call::{Keep, panicked_in};
use crate::handler::{Given, Handler, HttpCell, HttpContext, internal_error_response};
use crate::http::{Request, Response};
use crate::runner::{HandlerRunner, reply};

/// What became of one request.
enum Answered {
    /// Its response, to encode now, and whether the connection stays open after it.
    Now(Response, bool),
    /// Its response will come through the cell's responder: park the job.
    Later(Arc<HttpCell>),
}

impl<H: Handler, K: Keep<H::Session>> HandlerRunner<H, K> {
    /// A batch of HTTP requests answered in order, then its tail (an upgrade, an error): the
    /// reply with what the session does next — or a deferral, if an answer is given later or
    /// `on_open` deferred.
    pub(super) fn run_http(
        &self,
        lease: Lease,
        requests: Vec<Request>,
        tail: HttpTail,
    ) -> Returned {
        let conn = lease.conn();
        let mut output = Output::default();
        let close = After::CloseHttp { bad_request: false };
        // A monitoring-reserve request: its response closes the connection.
        let last_closes = matches!(tail, HttpTail::Close);
        let count = requests.len();
        let mut requests = requests.into_iter().enumerate();
        while let Some((i, request)) = requests.next() {
            let framing = Framing::of(&request, last_closes && i + 1 == count);
            match self.answer(conn, request, framing) {
                Answered::Now(response, keep_alive) => {
                    let Framing {
                        version, head_only, ..
                    } = framing;
                    response.encode(&mut output.bytes, version, keep_alive, head_only);
                    if !keep_alive {
                        return reply(lease, output, close, None);
                    }
                }
                Answered::Later(cell) => {
                    output.http = Some(Box::new(HttpLater {
                        owed: Some(framing),
                        requests: requests.map(|(_, request)| request).collect(),
                        tail,
                    }));
                    return cell.park(lease, output);
                }
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
                return self.upgrade_and_open(lease, &request, upgrade, output);
            }
        };
        reply(lease, output, after, None)
    }

    /// The answer to one plain HTTP request: the server's own for its paths, else the
    /// handler's — now, or later. A panic answers `500` and closes the connection.
    fn answer(&self, conn: ConnId, request: Request, framing: Framing) -> Answered {
        if let Some(response) = self.builtin_response(&request) {
            return Answered::Now(response, framing.keep_alive);
        }
        let mut ctx = HttpContext::new(conn, request.peer_addr(), &self.server, framing);
        let call = catch_unwind(AssertUnwindSafe(|| self.handler.on_http(&mut ctx, request)));
        let made = ctx.take_later();
        let given = match call {
            Ok(answer) => answer.into_given(),
            Err(_) => {
                panicked_in(&self.server, conn, "on_http_request");
                if let Some(cell) = made {
                    cell.unused();
                }
                return Answered::Now(internal_error_response(), false);
            }
        };
        match (given, made) {
            (Given::Now(response), made) => {
                if let Some(cell) = made {
                    cell.unused();
                }
                Answered::Now(response, framing.keep_alive)
            }
            (Given::Later(cell), Some(made)) if Arc::ptr_eq(&cell, &made) => {
                match cell.after_call() {
                    Some(response) => Answered::Now(response, framing.keep_alive),
                    None => Answered::Later(cell),
                }
            }
            (Given::Later(_), made) => {
                log::error!("{conn}: on_http returned an answer made for another request: 500");
                if let Some(cell) = made {
                    cell.unused();
                }
                Answered::Now(internal_error_response(), framing.keep_alive)
            }
        }
    }
}
