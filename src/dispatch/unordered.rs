//! Out-of-order completions: handler calls whose answers need not keep the order of the
//! messages (requests with ids), as the hand-off carries them.
//!
//! A call that defers out of order (`Context::defer_unordered`) ends as usual: its job's
//! reply goes home and the connection goes on to its next messages. What the reply carries is
//! a [`Started`] entry — the handler's tag and an [`UnorderedLink`] to the application's cell,
//! where the user's handle will put its completion. The session registers each with an id and
//! the deadline `deferred_timeout` (`session/unordered.rs`); then, whichever comes first:
//!
//! - the completion, on any thread: the cell sends an [`Arrival`] — the connection, the id, and
//!   the user's closure, type-erased — on the loop's reply channel. It never touches the
//!   session: the loop puts the closure in the connection's inbox, and the connection's next
//!   job runs it on a worker, in order with the connection's other calls, with the session
//!   lent and sends compressed as the connection agreed. Completed before the loop registered
//!   it (the job's reply was still on its way), the cell keeps the closure and gives it at the
//!   registration ([`Registered::Completed`]);
//! - the deadline or the close: the session ends the cell ([`UnorderedCell::end`]), and a
//!   completion that comes later gets an `Err`, its closure dropped.
//!
//! The reply channel is unbounded, and bounded by construction: each outstanding completion
//! sends at most one arrival, and a connection has at most `max_unordered_per_connection`
//! outstanding. So a completer never waits on a loop — not even an inline handler completing on
//! the loop's own thread.

use std::any::Any;
use std::sync::Arc;

use crate::conn_id::ConnId;
use crate::dispatch::reclaimed::Reclaimed;

/// The user's completion closure, type-erased: only the runner knows the session type it takes.
pub(crate) type CompletionBox = Box<dyn Any + Send>;

/// The application's cell of one out-of-order completion, as the loop sees it.
pub(crate) trait UnorderedCell: Send + Sync + std::fmt::Debug {
    /// The loop waits for it now, as `id` of its connection: what came meanwhile.
    fn register(&self, id: u32) -> Registered;

    /// The loop gives up on it (its deadline passed, or the connection closed): a completion
    /// that comes later gets `Err`. False if the completion is on its way already (its arrival
    /// will come).
    fn end(&self, why: Reclaimed) -> bool;
}

/// The loop's end of an out-of-order completion.
pub(crate) type UnorderedLink = Arc<dyn UnorderedCell>;

/// What a cell had when the loop registered it.
#[derive(Debug)]
pub(crate) enum Registered {
    /// Nothing yet: its arrival will come.
    Waiting,
    /// It was completed (`Some`: the closure to run) or every handle dropped (`None`) before
    /// the loop knew it.
    Completed(Option<CompletionBox>),
}

/// An out-of-order completion came: for the connection's inbox.
#[derive(Debug)]
pub(crate) struct Arrival {
    pub conn: ConnId,
    /// The id the session registered it with.
    pub id: u32,
    /// The closure to run; `None` if every handle was dropped without completing.
    pub call: Option<CompletionBox>,
}

/// The out-of-order completions a job's calls started, with their tags, until the session
/// registers them. Dropped unregistered — its reply never reached a live connection — each
/// is ended as closed, so no completer is left believing it will run.
#[derive(Debug, Default)]
pub(crate) struct Started(Vec<(u64, UnorderedLink)>);

impl Started {
    /// A call started one, tagged `tag`.
    pub(crate) fn push(&mut self, tag: u64, link: UnorderedLink) {
        self.0.push((tag, link));
    }

    /// How many.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Takes them all, to register.
    pub(crate) fn take(&mut self) -> Vec<(u64, UnorderedLink)> {
        std::mem::take(&mut self.0)
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        for (_, link) in self.0.drain(..) {
            link.end(Reclaimed::Closed);
        }
    }
}
