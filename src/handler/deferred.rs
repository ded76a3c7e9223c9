//! [`Deferred`]: a handler call's completion, handed to another thread.
//!
//! [`Context::defer`](crate::Context::defer) makes a cell shared by the handles it returns, the
//! runner and — once the call has returned — the connection's job slot. The cell moves through
//! four stages, under one lock:
//!
//! ```text
//!  Filling ──call returns──> Parked ──announced──> Waiting ──complete──> Done(Completed)
//!   │ completed or dropped      │ (the deferral is on     │ deadline, close
//!   │ inside the call: runs     │  its way to the loop)   └──────────────> Done(TimedOut | Closed)
//!   └ at once, no deferral      └ every handle dropped ──> Done(Dropped): completes with nothing
//! ```
//!
//! A completion on another thread waits while the cell is `Filling` or `Parked` — the call is
//! still running, or its deferral has not yet left for the loop — so its reply can never
//! overtake the deferral on the loop's channel. It then takes the pending job
//! ([`Pending`]: the lease, the session, the output, the messages not yet handled), runs the
//! user's closure with a [`Context`] as a handler call would — sends compressed as the
//! connection agreed, the session lent — and sends the reply home. Whatever comes second —
//! a completion after the deadline or the close, a second completion — finds `Done` and gets a
//! [`DeferredError`]. No path drops the lease: the last handle dropped completes with nothing.
//!
//! Every handler call runs through a [`CallSite`] — what a call needs, and `catch_unwind` —
//! which resolves what the call did with a deferral: completed on its own thread, the
//! completion runs right there, in the same context; dropped, the call is over; handed
//! elsewhere, the caller parks the job ([`park`]) and sends the deferral home.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, ThreadId};

use crate::conn_id::ConnId;
use crate::dispatch::{
    After, Deferral, DeferredCell, Inbound, Lease, Output, Pending, Reclaimed, Returned,
    ServerHandle, SessionBox, send_home,
};
use crate::handler::call::{Slot, internal_error, panicked_in};
use crate::handler::{Context, Flow};
use crate::http::Request;
use crate::metrics::add;

/// A completion the handler's own thread gave before its call returned (it runs right after
/// the call, with the same context).
pub(crate) type Early<S> = Box<dyn FnOnce(&mut Context<'_, S>) + Send>;

/// The handle on a deferred handler call: send it to the thread that will finish the work, and
/// [`complete`](Self::complete) there. Made by [`Context::defer`](crate::Context::defer).
///
/// Until it completes, the connection handles no other message (they wait in its inbox, within
/// its limits). Completing runs a closure with a [`Context`] for the connection, as a handler
/// call: its sends go out after what the call sent before deferring, compressed if the
/// connection agreed to it, and it has the connection's session. Past
/// [`Config::deferred_timeout`](crate::Config::deferred_timeout), or once the connection has
/// closed, completing fails harmlessly. Dropping every handle without completing counts as
/// completing with nothing (and is counted in `Stats::deferred_abandoned`).
pub struct Deferred<S: Default + Send + 'static = ()> {
    cell: Arc<Cell<S>>,
}

impl<S: Default + Send + 'static> std::fmt::Debug for Deferred<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deferred")
            .field("conn", &self.cell.conn)
            .finish_non_exhaustive()
    }
}

/// Why [`Deferred::complete`] could not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeferredError {
    /// [`Config::deferred_timeout`](crate::Config::deferred_timeout) passed first: the
    /// connection moved on (and [`Handler::on_deferred_timeout`](crate::Handler::on_deferred_timeout)
    /// ran; an HTTP request answered later got `504 Gateway Timeout`).
    TimedOut,
    /// The connection closed first (or the server stopped).
    Closed,
    /// Another handle on the same call completed it already.
    Completed,
    /// The HTTP handler call that made this [`Responder`](crate::Responder) did not return its
    /// [`Answer`](crate::Answer) (it answered otherwise, or panicked): nobody waits for it.
    Unused,
}

impl std::fmt::Display for DeferredError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DeferredError::TimedOut => "the deferred call's deadline passed first",
            DeferredError::Closed => "the connection closed before the completion",
            DeferredError::Completed => "the deferred call was completed already",
            DeferredError::Unused => "the handler did not return this responder's answer",
        })
    }
}

impl std::error::Error for DeferredError {}

/// Where a deferred call stands (the module's diagram).
enum Stage<S> {
    /// The call is running.
    Filling(Inside<S>),
    /// The call returned; its deferral is not yet on its way to the loop.
    Parked { pending: Pending, dropped: bool },
    /// The loop has (or will have) the deferral: a completion may take the job.
    Waiting(Pending),
    /// Over: what a completion that comes now is told.
    Done(DeferredError),
}

/// What happened to a deferred call while the call itself was still running.
enum Inside<S> {
    Running,
    /// Completed on the call's own thread: runs when the call returns.
    Completed(Early<S>),
    /// Every handle dropped: the call goes on as if it had not deferred.
    Dropped,
}

struct Inner<S> {
    stage: Stage<S>,
    /// User handles alive (`Context::defer` called twice in one call makes two).
    handles: usize,
}

/// The cell the handles, the runner and the loop share.
pub(crate) struct Cell<S> {
    inner: Mutex<Inner<S>>,
    changed: Condvar,
    conn: ConnId,
    server: ServerHandle,
    flow: Flow,
    /// The thread of the call that deferred: a completion from it, while the call runs, cannot
    /// wait for the call to return.
    caller: ThreadId,
    /// Boxes the connection's slot to travel with the pending job: made where the session is
    /// known to be `Send` (only such a session can defer), so that the runner, which also
    /// serves sessions that are not (a driven server's), needs no such bound.
    boxer: fn(Box<Slot<S>>) -> SessionBox,
}

impl<S> std::fmt::Debug for Cell<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cell")
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}

/// What the runner does once a call that deferred has returned.
pub(crate) enum AfterCall<S> {
    /// Park the job: it waits for its completion.
    Park,
    /// It was completed inside the call: run this now, in the same context.
    RunNow(Early<S>),
    /// Every handle was dropped inside the call: go on as if it had not deferred.
    GoOn,
}

impl<S: Default + 'static> Cell<S> {
    pub(crate) fn new(conn: ConnId, server: ServerHandle, flow: Flow) -> Arc<Self>
    where
        S: Send,
    {
        Arc::new(Cell {
            inner: Mutex::new(Inner {
                stage: Stage::Filling(Inside::Running),
                handles: 0,
            }),
            changed: Condvar::new(),
            conn,
            server,
            flow,
            caller: thread::current().id(),
            boxer: box_slot::<S>,
        })
    }

    /// A new user handle on the cell.
    pub(crate) fn handle(self: &Arc<Self>) -> Deferred<S>
    where
        S: Send,
    {
        self.lock().handles += 1;
        Deferred {
            cell: Arc::clone(self),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<S>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The call that deferred has returned: what now.
    pub(crate) fn after_call(&self) -> AfterCall<S> {
        let mut inner = self.lock();
        let Stage::Filling(inside) = &mut inner.stage else {
            return AfterCall::GoOn;
        };
        match std::mem::replace(inside, Inside::Running) {
            Inside::Running => AfterCall::Park,
            Inside::Completed(complete) => {
                inner.stage = Stage::Done(DeferredError::Completed);
                AfterCall::RunNow(complete)
            }
            Inside::Dropped => {
                inner.stage = Stage::Done(DeferredError::Completed);
                drop(inner);
                self.abandoned();
                AfterCall::GoOn
            }
        }
    }

    /// Parks the job after [`AfterCall::Park`]: it waits for its announcement.
    pub(crate) fn park(&self, pending: Pending) {
        let mut inner = self.lock();
        let dropped = inner.handles == 0;
        inner.stage = Stage::Parked { pending, dropped };
    }

    /// Completes with `complete`, waiting while the call (or its deferral) is on its way.
    fn complete(&self, complete: Early<S>) -> Result<(), DeferredError>
    where
        S: Send,
    {
        let mut inner = self.lock();
        loop {
            match &mut inner.stage {
                Stage::Waiting(_) => break,
                Stage::Filling(inside @ Inside::Running)
                    if thread::current().id() == self.caller =>
                {
                    *inside = Inside::Completed(complete);
                    return Ok(());
                }
                Stage::Filling(Inside::Running) | Stage::Parked { .. } => {
                    inner = self
                        .changed
                        .wait(inner)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                Stage::Filling(_) => return Err(DeferredError::Completed),
                Stage::Done(end) => {
                    let end = *end;
                    if end != DeferredError::Completed {
                        log::debug!("{}: a completion came too late: {end}", self.conn);
                        add(&self.server.metrics().deferred_late, 1);
                    }
                    return Err(end);
                }
            }
        }
        let stage = std::mem::replace(&mut inner.stage, Stage::Done(DeferredError::Completed));
        drop(inner);
        if let Stage::Waiting(pending) = stage {
            self.finish(pending, complete);
        }
        Ok(())
    }

    /// Runs the completion on the pending job and sends the reply (or, if it deferred again,
    /// the new deferral) home.
    fn finish(&self, pending: Pending, complete: Early<S>)
    where
        S: Send,
    {
        let Pending {
            lease,
            mut output,
            session,
            unhandled,
        } = pending;
        let mut slot = Slot::<S>::unbox(session, self.conn);
        let again = CallSite {
            conn: self.conn,
            output: &mut output,
            server: &self.server,
            slot: &mut slot,
            request: None,
            flow: self.flow,
        }
        .call("a deferred completion", complete);
        let returned = match again {
            Some(cell) => park(&cell, lease, output, slot, unhandled, After::Continue),
            None => Returned::Reply(
                Pending {
                    lease,
                    output,
                    session: Some(slot),
                    unhandled,
                }
                .into_reply(),
            ),
        };
        send_home(&self.server, returned);
    }

    /// Counts a call whose every handle was dropped without completing it.
    fn abandoned(&self) {
        log::debug!("{}: deferred call dropped without completing", self.conn);
        add(&self.server.metrics().deferred_abandoned, 1);
    }

    /// A handle went away; the last one completes with nothing if nothing completed.
    fn release(&self) {
        let mut inner = self.lock();
        inner.handles -= 1;
        if inner.handles > 0 {
            return;
        }
        match &mut inner.stage {
            Stage::Filling(inside @ Inside::Running) => *inside = Inside::Dropped,
            Stage::Parked { dropped, .. } => *dropped = true,
            Stage::Waiting(_) => {
                let stage =
                    std::mem::replace(&mut inner.stage, Stage::Done(DeferredError::Completed));
                drop(inner);
                if let Stage::Waiting(pending) = stage {
                    self.abandoned();
                    send_home(&self.server, Returned::Reply(pending.into_reply()));
                }
            }
            Stage::Filling(_) | Stage::Done(_) => {}
        }
    }
}

impl<S: Default + 'static> DeferredCell for Cell<S> {
    fn announce(&self) -> Option<Pending> {
        let mut inner = self.lock();
        let stage = std::mem::replace(&mut inner.stage, Stage::Done(DeferredError::Completed));
        let abandoned = match stage {
            Stage::Parked {
                pending,
                dropped: false,
            } => {
                inner.stage = Stage::Waiting(pending);
                None
            }
            Stage::Parked {
                pending,
                dropped: true,
            } => Some(pending),
            other => {
                inner.stage = other;
                None
            }
        };
        drop(inner);
        self.changed.notify_all();
        if abandoned.is_some() {
            self.abandoned();
        }
        abandoned
    }

    fn reclaim(&self, why: Reclaimed) -> Option<Pending> {
        let end = match why {
            Reclaimed::Expired => DeferredError::TimedOut,
            Reclaimed::Closed => DeferredError::Closed,
        };
        let mut inner = self.lock();
        let stage = std::mem::replace(&mut inner.stage, Stage::Done(end));
        let taken = match stage {
            Stage::Parked { pending, .. } | Stage::Waiting(pending) => Some(pending),
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

impl<S: Default + Send + 'static> Deferred<S> {
    /// Completes the deferred call: runs `complete` with a [`Context`] for the connection, as a
    /// handler call would run (its sends go out in order after what the call sent before
    /// deferring, compressed as the connection agreed; the session is lent; a panic closes the
    /// connection with `1011`), and hands what it produced to the connection's event loop.
    /// The connection's next message is handled after it.
    ///
    /// Called on another thread while the call that deferred is still running, it waits for
    /// that call to return. Called inside that call (on its own thread), `complete` runs right
    /// after it returns, as if the call had not deferred. `Err` — and `complete` never runs —
    /// after [`Config::deferred_timeout`](crate::Config::deferred_timeout), after the
    /// connection closed, or when another handle completed it already.
    pub fn complete(
        self,
        complete: impl FnOnce(&mut Context<'_, S>) + Send + 'static,
    ) -> Result<(), DeferredError> {
        self.cell.complete(Box::new(complete))
    }

    /// The connection this call belongs to.
    pub fn conn(&self) -> ConnId {
        self.cell.conn
    }
}

impl<S: Default + Send + 'static> Drop for Deferred<S> {
    fn drop(&mut self) {
        self.cell.release();
    }
}

/// What one handler call needs.
pub(crate) struct CallSite<'a, S> {
    pub conn: ConnId,
    pub output: &'a mut Output,
    pub server: &'a ServerHandle,
    pub slot: &'a mut Slot<S>,
    /// The upgrade request, for `on_open`.
    pub request: Option<&'a Request>,
    pub flow: Flow,
}

impl<S: Default + 'static> CallSite<'_, S> {
    /// Runs one handler call (`what` names it in the log if it panics: the connection then
    /// closes with `1011`). A completion given inside it runs right after, in the same context.
    /// `Some` if the call deferred and its completion will come from elsewhere: park the job.
    pub(crate) fn call(
        &mut self,
        what: &str,
        call: impl FnOnce(&mut Context<'_, S>),
    ) -> Option<Arc<Cell<S>>> {
        let mut cell = self.once(what, call)?;
        loop {
            match cell.after_call() {
                AfterCall::Park => return Some(cell),
                AfterCall::GoOn => return None,
                AfterCall::RunNow(complete) => {
                    cell = self.once("a deferred completion", complete)?;
                }
            }
        }
    }

    fn once(&mut self, what: &str, call: impl FnOnce(&mut Context<'_, S>)) -> Option<Arc<Cell<S>>> {
        let Slot { peer, session } = &mut *self.slot;
        let mut ctx = Context::new(
            self.conn,
            self.output,
            self.server,
            session,
            peer,
            self.request,
            self.flow,
        );
        let panicked = catch_unwind(AssertUnwindSafe(|| call(&mut ctx))).is_err();
        let deferral = ctx.take_deferral();
        if panicked {
            panicked_in(self.server, self.conn, what);
            self.output.close = Some(internal_error());
        }
        deferral
    }
}

/// Parks a job whose call deferred: what it still owns waits in `cell` for the completion
/// (or the loop); the deferral — with what was sent so far, written now — goes to the loop.
pub(crate) fn park<S: Default + 'static>(
    cell: &Arc<Cell<S>>,
    lease: Lease,
    output: Output,
    slot: Box<Slot<S>>,
    unhandled: Vec<Inbound>,
    after: After,
) -> Returned {
    let conn = lease.conn();
    cell.park(Pending {
        lease,
        output: output.sibling(),
        session: Some((cell.boxer)(slot)),
        unhandled,
    });
    Returned::Deferred(Deferral {
        conn,
        link: Arc::clone(cell) as _,
        output,
        after,
    })
}

/// A slot boxed to travel with a job: its session is `Send`.
fn box_slot<S: Send + 'static>(slot: Box<Slot<S>>) -> SessionBox {
    slot
}
