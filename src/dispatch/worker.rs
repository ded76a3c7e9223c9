//! The worker pool: N OS threads that run the handler on jobs from one shared queue.
//!
//! Each worker loops on `jobs.recv()`, runs [`run_job`], sends the [`Reply`] to the loop and
//! rings its waker. It ends when the loop drops the job sender and the queue is empty, so every
//! job queued before shutdown still runs. Handler panics are caught per call: the connection is
//! closed with `1011` (or gets a `500`), and the worker goes on.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use crossbeam_channel::Receiver;

use crate::dispatch::{After, ConnId, HttpTail, Job, Output, Reply, ServerHandle, Work};
use crate::handler::{Context, Handler, Upgrade};
use crate::http::{Request, Response, UpgradeRequest, Version, switching_protocols};
use crate::metrics::{add, sub};
use crate::reactor::buffer_pool::OWNED_CHUNK_MIN;
use crate::ws::{CloseCode, CloseFrame, Message};

/// The running worker threads.
#[derive(Debug)]
pub(crate) struct WorkerPool {
    threads: Vec<JoinHandle<()>>,
}

impl WorkerPool {
    /// Starts `count` workers named `wsreactor-worker-N`.
    pub(crate) fn spawn(
        count: usize,
        jobs: Receiver<Job>,
        handler: Arc<dyn Handler>,
        server: ServerHandle,
    ) -> std::io::Result<Self> {
        let mut threads = Vec::with_capacity(count);
        for n in 0..count {
            let jobs = jobs.clone();
            let (handler, server) = (Arc::clone(&handler), server.clone());
            let thread = thread::Builder::new()
                .name(format!("wsreactor-worker-{n}"))
                .spawn(move || work(&jobs, &*handler, &server))?;
            threads.push(thread);
        }
        Ok(WorkerPool { threads })
    }

    /// Waits for every worker to finish; false if one panicked outside a handler call.
    pub(crate) fn join(self) -> bool {
        self.threads.into_iter().all(|t| t.join().is_ok())
    }
}

fn work(jobs: &Receiver<Job>, handler: &dyn Handler, server: &ServerHandle) {
    while let Ok(job) = jobs.recv() {
        let metrics = server.metrics();
        add(&metrics.busy_workers, 1);
        let reply = run_job(handler, server, job);
        sub(&metrics.busy_workers, 1);
        if let Some(reply) = reply {
            // Back to the loop that owns the connection. The reply channel is unbounded: each
            // job yields at most one reply and jobs are bounded by the job queue, so it never
            // grows past that, and never blocks a worker.
            let link = server.link(reply.conn);
            if link.replies.send(reply).is_err() {
                log::debug!("event loop gone; reply dropped");
            }
            link.waker.wake();
        }
    }
}

/// Runs one job's handler calls and encodes their output. `None` for `Work::Closed`, which
/// needs no answer.
pub(crate) fn run_job(handler: &dyn Handler, server: &ServerHandle, job: Job) -> Option<Reply> {
    let conn = job.conn;
    match job.work {
        Work::Messages(messages) => Some(Reply {
            conn,
            output: run_messages(handler, server, conn, messages),
            after: After::Continue,
        }),
        Work::Http { requests, tail } => Some(run_http(handler, server, conn, requests, tail)),
        Work::Closed(info) => {
            let call = catch_unwind(AssertUnwindSafe(|| handler.on_close(conn, &info, server)));
            if call.is_err() {
                panicked(server, conn, "on_close");
            }
            None
        }
    }
}

fn run_messages(
    handler: &dyn Handler,
    server: &ServerHandle,
    conn: ConnId,
    messages: Vec<Message>,
) -> Output {
    // Room for an echo of the whole batch up front: one allocation instead of a series of
    // reallocations (large payloads are moved, not copied, so they need no room here).
    let small: usize = messages
        .iter()
        .map(|m| {
            if m.len() < OWNED_CHUNK_MIN {
                m.len() + 10
            } else {
                10
            }
        })
        .sum();
    let mut output = Output {
        bytes: Vec::with_capacity(small),
        ..Output::default()
    };
    for message in messages {
        let mut ctx = Context::new(conn, &mut output, server);
        if catch_unwind(AssertUnwindSafe(|| handler.on_message(&mut ctx, message))).is_err() {
            panicked(server, conn, "on_message");
            output.close = Some(internal_error());
        }
        if output.close.is_some() {
            // Messages after a close are dropped: the handler asked to end the conversation.
            break;
        }
    }
    output
}

fn run_http(
    handler: &dyn Handler,
    server: &ServerHandle,
    conn: ConnId,
    requests: Vec<Request>,
    tail: HttpTail,
) -> Reply {
    let mut output = Output::default();
    for request in requests {
        let keep_alive = request.keep_alive();
        let head_only = request.method() == "HEAD";
        let answer = catch_unwind(AssertUnwindSafe(|| {
            server
                .builtin_response(&request)
                .unwrap_or_else(|| handler.on_http_request(&request))
        }));
        match answer {
            Ok(response) => {
                response.encode(&mut output.bytes, request.version(), keep_alive, head_only);
                if !keep_alive {
                    return Reply {
                        conn,
                        output,
                        after: After::CloseHttp,
                    };
                }
            }
            Err(_) => {
                panicked(server, conn, "on_http_request");
                let response = Response::text(500, "internal server error\n");
                response.encode(&mut output.bytes, request.version(), false, head_only);
                return Reply {
                    conn,
                    output,
                    after: After::CloseHttp,
                };
            }
        }
    }
    let after = match tail {
        HttpTail::None => After::Continue,
        HttpTail::Error(err) => {
            err.to_response()
                .encode(&mut output.bytes, Version::Http11, false, false);
            After::CloseHttp
        }
        HttpTail::Upgrade(upgrade) => {
            let (request, upgrade) = *upgrade;
            upgrade_and_open(handler, server, conn, &request, &upgrade, &mut output)
        }
    };
    Reply {
        conn,
        output,
        after,
    }
}

/// `on_upgrade`, then the `101` and `on_open` if it accepted.
fn upgrade_and_open(
    handler: &dyn Handler,
    server: &ServerHandle,
    conn: ConnId,
    request: &Request,
    upgrade: &UpgradeRequest,
    output: &mut Output,
) -> After {
    let decision = catch_unwind(AssertUnwindSafe(|| {
        handler.on_upgrade(request, &upgrade.protocols)
    }));
    match decision {
        Ok(Upgrade::Accept { protocol, headers }) => {
            let protocol = protocol.filter(|chosen| {
                let offered = upgrade.protocols.iter().any(|p| p == chosen);
                if !offered {
                    // The server MUST answer with one of the client's protocols, or none.
                    // (RFC 6455 §4.2.2)
                    log::warn!("{conn}: on_upgrade chose {chosen:?}, which was not offered");
                }
                offered
            });
            let response = switching_protocols(&upgrade.key, protocol.as_deref(), &headers);
            response.encode(&mut output.bytes, Version::Http11, true, false);
            let mut ctx = Context::new(conn, output, server);
            if catch_unwind(AssertUnwindSafe(|| handler.on_open(&mut ctx))).is_err() {
                panicked(server, conn, "on_open");
                output.close = Some(internal_error());
            }
            After::Upgraded
        }
        Ok(Upgrade::Reject(response)) => {
            response.encode(&mut output.bytes, request.version(), false, false);
            After::CloseHttp
        }
        Err(_) => {
            panicked(server, conn, "on_upgrade");
            let response = Response::text(500, "internal server error\n");
            response.encode(&mut output.bytes, request.version(), false, false);
            After::CloseHttp
        }
    }
}

fn internal_error() -> CloseFrame {
    CloseFrame {
        code: CloseCode::Error,
        reason: "handler panicked".into(),
    }
}

fn panicked(server: &ServerHandle, conn: ConnId, call: &str) {
    add(&server.metrics().handler_panics, 1);
    log::error!("{conn}: handler panicked in {call}; closing the connection");
}
