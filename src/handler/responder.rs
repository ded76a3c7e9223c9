//! [`Responder`]: an HTTP request's answer, given later from another thread.
//!
//! [`HttpContext::answer_later`](crate::HttpContext::answer_later) makes a cell shared by the
//! [`Answer`](crate::Answer) the handler returns, the [`Responder`] it hands to another thread,
//! the runner and — once the call has returned — the connection's job slot. It is the
//! WebSocket deferral's mechanism (`deferred.rs`, `dispatch/deferred.rs`): the job's lease waits
//! in a [`Pending`] here, the loop holds the cell as a [`DeferredCell`] with the deadline
//! `Config::deferred_timeout`, and whoever comes first takes the pending job, under one lock:
//!
//! ```text
//!  Calling ──Answer returned──> Parked ──announced──> Waiting ──complete──> Done(Completed)
//!   │ completed inside the call: │ (the deferral is on     │ deadline: 504, close:
//!   │ answered at once           │  its way to the loop)   └───────────> Done(TimedOut | Closed)
//!   │ Answer not returned:       └ responder dropped ──> Done: answered 500
//!   └──────────────────────────> Done(Unused)
//! ```
//!
//! A completion from another thread waits while the cell is `Calling` or `Parked`, so its
//! reply never overtakes the deferral on the loop's channel; it encodes the response as its
//! request asked (version, keep-alive, `HEAD`) into the pending output and sends the reply
//! home. The responder dropped without completing answers `500` (counted with the abandoned
//! deferrals). Whatever comes second gets a [`DeferredError`].

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, ThreadId};

use crate::conn_id::ConnId;
use crate::dispatch::{
    After, Deferral, DeferredCell, Framing, Lease, Output, Pending, Reclaimed, Returned,
    ServerHandle, send_home,
};
use crate::handler::DeferredError;
use crate::http::Response;
use crate::metrics::add;

/// The way to answer an HTTP request later, from any thread: made with its [`Answer`] by
/// [`HttpContext::answer_later`](crate::HttpContext::answer_later). Move it to the thread
/// that finishes the work (a backend pool) and [`complete`](Self::complete) it there.
///
/// Until it completes, the connection answers nothing after this request: pipelined requests
/// behind it wait, and are handled once its response is queued, so responses keep the order
/// of the requests. Past [`Config::deferred_timeout`](crate::Config::deferred_timeout) the
/// client gets `504 Gateway Timeout`; dropped without completing, `500 Internal Server
/// Error`. Either way completing later is a harmless `Err`.
///
/// [`Answer`]: crate::Answer
pub struct Responder {
    conn: ConnId,
    /// Taken by [`complete`](Self::complete): a responder dropped with it never completed.
    cell: Option<Arc<HttpCell>>,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}

/// Where an answer given later stands (the module's diagram).
enum Stage {
    /// The handler call is running; a response given on its own thread waits here.
    Calling(Option<Response>),
    /// The call returned its answer; the deferral is not yet on its way to the loop.
    Parked(Pending),
    /// The loop has (or will have) the deferral: a completion may take the job.
    Waiting(Pending),
    /// Over: what a completion that comes now is told.
    Done(DeferredError),
}

struct Inner {
    stage: Stage,
    /// The responder was dropped without completing.
    dropped: bool,
}

/// The cell an [`Answer`](crate::Answer) made later, its [`Responder`], the runner and the
/// loop share.
pub(crate) struct HttpCell {
    inner: Mutex<Inner>,
    changed: Condvar,
    conn: ConnId,
    server: ServerHandle,
    /// How the request's response goes on the wire.
    framing: Framing,
    /// The thread of the handler call: a completion from it, while the call runs, cannot wait
    /// for the call to return.
    caller: ThreadId,
}

impl std::fmt::Debug for HttpCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpCell")
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}

/// The response a request gets when its handler panicked, returned a foreign answer, or let
/// its responder go without completing.
pub(crate) fn internal_error_response() -> Response {
    Response::text(500, "internal server error\n")
}

impl HttpCell {
    /// A cell for the request being answered on `conn`, and its responder.
    pub(crate) fn new(conn: ConnId, server: ServerHandle, framing: Framing) -> Arc<Self> {
        Arc::new(HttpCell {
            inner: Mutex::new(Inner {
                stage: Stage::Calling(None),
                dropped: false,
            }),
            changed: Condvar::new(),
            conn,
            server,
            framing,
            caller: thread::current().id(),
        })
    }

    /// The one responder on a new cell.
    pub(crate) fn responder(self: &Arc<Self>) -> Responder {
        Responder {
            conn: self.conn,
            cell: Some(Arc::clone(self)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The call returned this cell's answer: the response to write now (given inside the
    /// call, or `500` for a responder dropped there), or `None`: park the job.
    pub(crate) fn after_call(&self) -> Option<Response> {
        let mut inner = self.lock();
        let Stage::Calling(early) = &mut inner.stage else {
            return Some(internal_error_response());
        };
        if let Some(response) = early.take() {
            inner.stage = Stage::Done(DeferredError::Completed);
            return Some(response);
        }
        if !inner.dropped {
            return None;
        }
        inner.stage = Stage::Done(DeferredError::Completed);
        drop(inner);
        self.abandoned();
        Some(internal_error_response())
    }

    /// The call did not return this cell's answer (it answered otherwise, or panicked): a
    /// completion gets [`DeferredError::Unused`].
    pub(crate) fn unused(&self) {
        let mut inner = self.lock();
        if let Stage::Calling(early) = &inner.stage {
            if early.is_some() {
                log::warn!(
                    "{}: a response given to a responder was dropped: the call answered otherwise",
                    self.conn
                );
            } else {
                log::debug!("{}: an answer made later was not returned", self.conn);
            }
            inner.stage = Stage::Done(DeferredError::Unused);
        }
        drop(inner);
        self.changed.notify_all();
    }

    /// Parks the job after [`after_call`](Self::after_call) said so: the deferral with the
    /// responses sent before it (and the requests after it) goes to the loop.
    pub(crate) fn park(self: &Arc<Self>, lease: Lease, output: Output) -> Returned {
        let conn = lease.conn();
        self.lock().stage = Stage::Parked(Pending {
            lease,
            output: Output::default(),
            session: None,
            unhandled: Vec::new(),
        });
        Returned::Deferred(Deferral {
            conn,
            link: Arc::clone(self) as _,
            output,
            after: After::Continue,
        })
    }

    /// The pending job answered with `response`, as the reply that brings it home.
    fn answered(&self, mut pending: Pending, response: &Response) -> Returned {
        let Framing {
            version,
            keep_alive,
            head_only,
        } = self.framing;
        response.encode(&mut pending.output.bytes, version, keep_alive, head_only);
        Returned::Reply(pending.into_reply())
    }

    /// Completes with `response`, waiting while the call (or its deferral) is on its way.
    fn complete(&self, response: Response) -> Result<(), DeferredError> {
        let mut inner = self.lock();
        loop {
            match &mut inner.stage {
                Stage::Waiting(_) => break,
                Stage::Calling(early) if thread::current().id() == self.caller => {
                    *early = Some(response);
                    return Ok(());
                }
                Stage::Calling(_) | Stage::Parked(_) => {
                    inner = self
                        .changed
                        .wait(inner)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                Stage::Done(end) => {
                    let end = *end;
                    if matches!(end, DeferredError::TimedOut | DeferredError::Closed) {
                        log::debug!("{}: an answer came too late: {end}", self.conn);
                        add(&self.server.metrics().deferred_late, 1);
                    }
                    return Err(end);
                }
            }
        }
        let stage = std::mem::replace(&mut inner.stage, Stage::Done(DeferredError::Completed));
        drop(inner);
        if let Stage::Waiting(pending) = stage {
            send_home(&self.server, self.answered(pending, &response));
        }
        Ok(())
    }

    /// Counts an answer whose responder was dropped without completing.
    fn abandoned(&self) {
        log::debug!("{}: responder dropped without answering: 500", self.conn);
        add(&self.server.metrics().deferred_abandoned, 1);
    }

    /// The responder went away without completing: the request is answered `500`.
    fn release(&self) {
        let mut inner = self.lock();
        inner.dropped = true;
        if !matches!(inner.stage, Stage::Waiting(_)) {
            // Calling: the runner answers 500 when the call returns; Parked: the announcement
            // does.
            return;
        }
        let stage = std::mem::replace(&mut inner.stage, Stage::Done(DeferredError::Completed));
        drop(inner);
        if let Stage::Waiting(pending) = stage {
            self.abandoned();
            send_home(
                &self.server,
                self.answered(pending, &internal_error_response()),
            );
        }
    }
}

impl DeferredCell for HttpCell {
    fn announce(&self) -> Option<Pending> {
        let mut inner = self.lock();
        let stage = std::mem::replace(&mut inner.stage, Stage::Done(DeferredError::Completed));
        let abandoned = match stage {
            Stage::Parked(pending) if !inner.dropped => {
                inner.stage = Stage::Waiting(pending);
                None
            }
            Stage::Parked(pending) => Some(pending),
            other => {
                inner.stage = other;
                None
            }
        };
        drop(inner);
        self.changed.notify_all();
        let mut pending = abandoned?;
        self.abandoned();
        let Framing {
            version,
            keep_alive,
            head_only,
        } = self.framing;
        internal_error_response().encode(&mut pending.output.bytes, version, keep_alive, head_only);
        Some(pending)
    }

    fn reclaim(&self, why: Reclaimed) -> Option<Pending> {
        let end = match why {
            Reclaimed::Expired => DeferredError::TimedOut,
            Reclaimed::Closed => DeferredError::Closed,
        };
        let mut inner = self.lock();
        let stage = std::mem::replace(&mut inner.stage, Stage::Done(end));
        let taken = match stage {
            Stage::Parked(pending) | Stage::Waiting(pending) => Some(pending),
            other => {
                inner.stage = other;
                None
            }
        };
        drop(inner);
        self.changed.notify_all();
        taken
    }
}

impl Responder {
    /// Answers the request with `response`, in its place among the connection's pipelined
    /// requests: framed as the request asked (its HTTP version, `Connection: close` or
    /// keep-alive, no body for `HEAD`), and the requests that waited behind it are handled
    /// next. The response is encoded on this thread and handed to the connection's event
    /// loop.
    ///
    /// Called on another thread while the handler call is still running, it waits for that
    /// call to return. Called inside the call (on its own thread), the response is written as
    /// soon as the call returns its [`Answer`](crate::Answer), as if answered at once. `Err` —
    /// and `response` is dropped — after
    /// [`Config::deferred_timeout`](crate::Config::deferred_timeout)
    /// ([`DeferredError::TimedOut`]: the client got `504`), after the connection closed
    /// ([`DeferredError::Closed`]), or when the handler did not return this responder's
    /// answer ([`DeferredError::Unused`]).
    pub fn complete(mut self, response: Response) -> Result<(), DeferredError> {
        match self.cell.take() {
            Some(cell) => cell.complete(response),
            None => Err(DeferredError::Completed),
        }
    }

    /// The connection the request came on.
    pub fn conn(&self) -> ConnId {
        self.conn
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if let Some(cell) = self.cell.take() {
            cell.release();
        }
    }
}
