//! [`Unordered`]: a handler call whose answer may come after the connection's later messages —
//! for requests with ids (a gateway, JSON-RPC), where the client matches answers to requests.
//!
//! [`Context::defer_unordered`] makes a cell shared by the handle it returns and — once the
//! call's reply has reached the loop — the connection's session (`session/unordered.rs`). The
//! call returns at once and the connection goes on to its next messages. Completing never
//! touches the session from the completer's thread: the closure, boxed, goes to the loop on its
//! reply channel (`dispatch/unordered.rs`), joins the connection's inbox, and the connection's
//! next job runs it on a worker with a [`Context`], in order with the connection's other calls.
//! The cell's states, under one lock:
//!
//! ```text
//!  Starting ──registered──> Waiting(id) ──complete/drop──> Done(Completed): the arrival goes home
//!   │ complete/drop             │ deadline, close
//!   ▼ (before the reply came)   └──────────────────────> Done(TimedOut | Closed): complete → Err
//!  Early(closure or nothing) ──registered──> given to the session at once
//! ```

use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::conn_id::ConnId;
use crate::dispatch::{
    Arrival, CompletionBox, Reclaimed, Registered, Returned, ServerHandle, UnorderedCell, send_home,
};
use crate::handler::Context;
use crate::handler::deferred::{DeferredError, Early};
use crate::metrics::{add, sub};

/// Why [`Context::defer_unordered`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnorderedError {
    /// [`Config::max_unordered_per_connection`](crate::Config::max_unordered_per_connection)
    /// is 0 (the default): calls complete in order only ([`Context::defer`]).
    Off,
    /// The connection has as many out-of-order completions outstanding as
    /// [`Config::max_unordered_per_connection`](crate::Config::max_unordered_per_connection)
    /// (this many) allows.
    TooMany(usize),
}

impl std::fmt::Display for UnorderedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnorderedError::Off => f.write_str(
                "out-of-order completions are off (Config::max_unordered_per_connection is 0)",
            ),
            UnorderedError::TooMany(limit) => {
                write!(
                    f,
                    "the connection has {limit} out-of-order completions outstanding"
                )
            }
        }
    }
}

impl std::error::Error for UnorderedError {}

/// The handle on a call that completes out of order: send it to the thread that does the work
/// and [`complete`](Self::complete) there. Made by [`Context::defer_unordered`].
///
/// Meanwhile the connection handles its next messages. Completing runs a closure with a
/// [`Context`] for the connection, as a handler call, on a worker, in order with the
/// connection's other calls (never beside one): its sends are compressed as the connection
/// agreed, and it has the connection's session. Dropping the handle without completing counts
/// as completing with nothing (`Stats::deferred_abandoned`) and frees its place.
pub struct Unordered<S = ()> {
    cell: Option<Arc<Cell>>,
    conn: ConnId,
    tag: u64,
    session: PhantomData<Lends<S>>,
}

/// What the handle's completion is lent: `Send` and `Sync` whatever the session is (the
/// session never leaves its connection).
type Lends<S> = dyn Fn(&mut S) + Send + Sync;

impl<S> std::fmt::Debug for Unordered<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unordered")
            .field("tag", &self.tag)
            .finish_non_exhaustive()
    }
}

/// Where an out-of-order completion stands (the module's diagram).
#[derive(Debug)]
enum Stage {
    Starting,
    Early(Option<CompletionBox>),
    Waiting(u32),
    Done(DeferredError),
}

/// The cell the handle and the session share.
#[derive(Debug)]
pub(crate) struct Cell {
    stage: Mutex<Stage>,
    conn: ConnId,
    server: ServerHandle,
}

impl Cell {
    fn lock(&self) -> MutexGuard<'_, Stage> {
        self.stage.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves to `next`: the first move out of `Starting` or `Waiting` ends its outstanding
    /// count. What it was.
    fn go(&self, stage: &mut Stage, next: Stage) -> Stage {
        let was = std::mem::replace(stage, next);
        if matches!(was, Stage::Starting | Stage::Waiting(_)) {
            sub(&self.server.metrics().unordered_outstanding, 1);
        }
        was
    }

    /// Completes with `call` (`None`: dropped without completing).
    fn complete(&self, call: Option<CompletionBox>) -> Result<(), DeferredError> {
        let mut stage = self.lock();
        match &*stage {
            Stage::Starting => {
                self.go(&mut stage, Stage::Early(call));
                Ok(())
            }
            Stage::Waiting(id) => {
                let id = *id;
                self.go(&mut stage, Stage::Done(DeferredError::Completed));
                drop(stage);
                let arrival = Arrival {
                    conn: self.conn,
                    id,
                    call,
                };
                send_home(&self.server, Returned::Unordered(arrival))
                    .map(drop)
                    .ok_or(DeferredError::Closed)
            }
            Stage::Early(_) => Err(DeferredError::Completed),
            Stage::Done(end) => {
                let end = *end;
                if call.is_some() && end != DeferredError::Completed {
                    log::debug!(
                        "{}: an out-of-order completion came too late: {end}",
                        self.conn
                    );
                    add(&self.server.metrics().deferred_late, 1);
                }
                Err(end)
            }
        }
    }
}

impl UnorderedCell for Cell {
    fn register(&self, id: u32) -> Registered {
        let mut stage = self.lock();
        match &*stage {
            Stage::Starting => {
                *stage = Stage::Waiting(id);
                Registered::Waiting
            }
            Stage::Early(_) => match self.go(&mut stage, Stage::Done(DeferredError::Completed)) {
                Stage::Early(call) => Registered::Completed(call),
                _ => Registered::Completed(None),
            },
            Stage::Waiting(_) | Stage::Done(_) => Registered::Completed(None),
        }
    }

    fn end(&self, why: Reclaimed) -> bool {
        let end = match why {
            Reclaimed::Expired => DeferredError::TimedOut,
            Reclaimed::Closed => DeferredError::Closed,
        };
        let mut stage = self.lock();
        match &*stage {
            Stage::Done(DeferredError::Completed) => false,
            Stage::Done(_) => true,
            Stage::Starting | Stage::Waiting(_) | Stage::Early(_) => {
                self.go(&mut stage, Stage::Done(end));
                true
            }
        }
    }
}

impl<S: Default + 'static> Unordered<S> {
    /// Completes the call: `complete` runs with a [`Context`] for the connection, as a handler
    /// call, in the connection's next job — after the calls already waiting, never beside one;
    /// its sends are compressed as the connection agreed; a panic closes the connection with
    /// `1011`. It never waits for the connection, and never runs on this thread.
    ///
    /// `Ok`: handed to the connection (it runs unless the connection closes first; then it is
    /// dropped). `Err` — and `complete` never runs — past
    /// [`Config::deferred_timeout`](crate::Config::deferred_timeout) (then
    /// [`Handler::on_unordered_timeout`](crate::Handler::on_unordered_timeout) ran), or once the
    /// connection has closed.
    pub fn complete(
        mut self,
        complete: impl FnOnce(&mut Context<'_, S>) + Send + 'static,
    ) -> Result<(), DeferredError> {
        let early: Early<S> = Box::new(complete);
        let call: CompletionBox = Box::new(early);
        match self.cell.take() {
            Some(cell) => cell.complete(Some(call)),
            None => Err(DeferredError::Completed),
        }
    }

    /// The tag it was made with ([`Context::defer_unordered`]).
    pub fn tag(&self) -> u64 {
        self.tag
    }

    /// The connection this call belongs to.
    pub fn conn(&self) -> ConnId {
        self.conn
    }
}

impl<S> Drop for Unordered<S> {
    fn drop(&mut self) {
        if let Some(cell) = self.cell.take() {
            log::debug!(
                "{}: out-of-order call {} dropped without completing",
                cell.conn,
                self.tag
            );
            let _ = cell.complete(None);
        }
    }
}

impl<S> Context<'_, S> {
    /// Hands this call's answer to another thread *without* holding the connection's next
    /// messages: the call returns, and the connection goes on to them while the returned
    /// [`Unordered`] is outstanding — for requests with ids, whose client matches answers to
    /// requests. Completing it runs a closure with a [`Context`] for the connection, in order
    /// with the connection's other calls (one at a time, on a worker, the session lent, sends
    /// compressed as agreed). [`Context::defer`] is the ordered form.
    ///
    /// `tag` is yours (a request id): [`Unordered::tag`], and
    /// [`Handler::on_unordered_timeout`](crate::Handler::on_unordered_timeout) if
    /// [`Config::deferred_timeout`](crate::Config::deferred_timeout) passes first (by default
    /// it closes the connection with `1011`).
    ///
    /// [`UnorderedError::Off`] unless
    /// [`Config::max_unordered_per_connection`](crate::Config::max_unordered_per_connection)
    /// is set; [`UnorderedError::TooMany`] when the connection has that many outstanding —
    /// answer the request with an error, or defer in order. At the limit the connection's next
    /// message waits (in its inbox, then TCP backpressure) until one completes or expires.
    /// Outstanding completions end with the conversation: once the connection is closing
    /// (ours or a protocol error) or closed, completing gets [`DeferredError::Closed`]. After
    /// the peer's close frame they are still awaited, before our answer to it.
    pub fn defer_unordered(&mut self, tag: u64) -> Result<Unordered<S>, UnorderedError> {
        let limit = self.flow.max_unordered;
        if limit == 0 {
            return Err(UnorderedError::Off);
        }
        if self.flow.unordered + self.output.unordered.len() >= limit {
            log::debug!(
                "{}: out-of-order call {tag} refused at the limit",
                self.conn
            );
            return Err(UnorderedError::TooMany(limit));
        }
        let metrics = self.server.metrics();
        add(&metrics.unordered_calls, 1);
        add(&metrics.unordered_outstanding, 1);
        let cell = Arc::new(Cell {
            stage: Mutex::new(Stage::Starting),
            conn: self.conn,
            server: self.server.clone(),
        });
        self.output.unordered.push(tag, Arc::clone(&cell) as _);
        Ok(Unordered {
            cell: Some(cell),
            conn: self.conn,
            tag,
            session: PhantomData,
        })
    }
}
