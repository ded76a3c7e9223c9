//! Which jobs the event loop may run itself, with the worker pool: those whose every handler
//! call the handler declared non-blocking — a batch of plain HTTP requests
//! ([`Handler::answers_without_blocking`]) or of WebSocket messages
//! ([`Handler::handles_without_blocking`]). Asked on the loop thread by
//! [`Executor::offer`](crate::dispatch::Executor) before each job; a job declared so skips the
//! hop to a worker and back (two thread switches and a wake-up). A panic in a declaration is
//! caught, counted in `handler_panics`, and read as "no".

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::conn_id::ConnId;
use crate::dispatch::{Batch, HttpTail, Inbound};
use crate::handler::Handler;
use crate::handler::call::Keep;
use crate::http::Request;
use crate::metrics::add;
use crate::runner::HandlerRunner;
use crate::ws::{Compressed, Message};

impl<H: Handler, K: Keep<H::Session>> HandlerRunner<H, K> {
    /// May this batch be answered on the loop thread? Not with an upgrade in it (`on_upgrade`
    /// and `on_open` run where the handler's calls run), nor with the metrics path (it calls
    /// `write_metrics`); the health path may; every other request only if the handler says it
    /// answers it without blocking. Its panic there is caught, counted, and read as "no".
    pub(super) fn http_on_loop(&self, conn: ConnId, requests: &[Request], tail: &HttpTail) -> bool {
        let upgrade = matches!(tail, HttpTail::Upgrade(_));
        !upgrade && requests.iter().all(|r| self.request_on_loop(conn, r))
    }

    fn request_on_loop(&self, conn: ConnId, request: &Request) -> bool {
        let path = Some(request.path());
        if path == self.metrics_path.as_deref() {
            return false;
        }
        if path == self.health_path.as_deref() {
            return true;
        }
        let asked = || self.handler.answers_without_blocking(request);
        self.declared(conn, "answers_without_blocking", asked)
    }

    /// May this batch of WebSocket calls run on the loop thread? Only data messages, each
    /// declared so by the handler; nor with any other call in the batch (`on_drain`,
    /// `on_timer`, `on_pong`, a deferred completion or its timeout: the handler declared nothing
    /// of those). A compressed message is inflated here to be asked about — if the batch's
    /// compressed and inflated bytes stay within `max_read_per_turn` (the work a loop does for
    /// one connection in a turn): a longer one, one that does not inflate, and those after it
    /// go to a worker, which inflates them (and fails the connection if it must). What was
    /// inflated stays so, wherever the batch runs.
    pub(super) fn messages_on_loop(&self, conn: ConnId, batch: &mut Batch) -> bool {
        let Batch {
            messages,
            drained,
            expired,
            timers,
            ..
        } = batch;
        if *drained || *expired || timers.is_some() {
            return false;
        }
        let mut budget = self.loop_inflate_budget;
        messages.iter_mut().all(|inbound| {
            if let Inbound::Compressed(compressed) = inbound {
                match inflate_within(compressed, self.max_message_size, &mut budget) {
                    Some(message) => *inbound = Inbound::Message(message),
                    None => return false,
                }
            }
            match inbound {
                Inbound::Message(message) => {
                    let asked = || self.handler.handles_without_blocking(message);
                    self.declared(conn, "handles_without_blocking", asked)
                }
                _ => false,
            }
        })
    }

    /// The handler's answer to a declaration; its panic is counted and read as "no".
    fn declared(&self, conn: ConnId, name: &str, asked: impl FnOnce() -> bool) -> bool {
        catch_unwind(AssertUnwindSafe(asked)).unwrap_or_else(|_| {
            log::error!("{conn}: handler panicked in {name}: sent to a worker");
            add(&self.server.metrics().handler_panics, 1);
            false
        })
    }
}

/// `compressed` inflated, if it and its inflated bytes fit in what is left of `budget` (which
/// they then take): `None` for a message too long for that, or one that does not inflate.
fn inflate_within(
    compressed: &Compressed,
    max_message_size: usize,
    budget: &mut usize,
) -> Option<Message> {
    let input = compressed.payload.len();
    let left = budget.checked_sub(input)?;
    let message = compressed.inflate(max_message_size.min(left)).ok()?;
    *budget = left - message.len();
    Some(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::deflate::compress;

    fn compressed(text: &str) -> Compressed {
        Compressed {
            text: true,
            payload: compress(text.as_bytes(), 15, 1),
        }
    }

    #[test]
    fn the_budget_takes_both_the_compressed_and_the_inflated_bytes() {
        let hello = compressed("hello hello hello hello");
        let taken = hello.payload.len() + 23;
        let mut budget = 1000;
        let message = inflate_within(&hello, usize::MAX, &mut budget);
        assert_eq!(
            message,
            Some(Message::Text("hello hello hello hello".into()))
        );
        assert_eq!(budget, 1000 - taken);
        // Exactly enough, then one byte short (compressed side, then inflated side).
        let mut budget = taken;
        assert!(inflate_within(&hello, usize::MAX, &mut budget).is_some());
        assert_eq!(budget, 0);
        let mut budget = taken - 1;
        assert_eq!(inflate_within(&hello, usize::MAX, &mut budget), None);
        assert_eq!(budget, taken - 1);
        let mut budget = hello.payload.len() - 1;
        assert_eq!(inflate_within(&hello, usize::MAX, &mut budget), None);
        // The message limit still holds, and what does not inflate is left to the worker.
        assert_eq!(inflate_within(&hello, 22, &mut 1000), None);
        let broken = Compressed {
            text: false,
            payload: vec![0xff, 0xff, 0xff],
        };
        assert_eq!(inflate_within(&broken, usize::MAX, &mut 1000), None);
    }
}
