//! Deferred completions: a handler call that hands its completion to another thread, as the
//! hand-off carries it.
//!
//! A call that defers does not end its job. The runner parks what the job still owns — its
//! [`Lease`], the session it took along, the messages of its batch not yet handled — in a
//! [`Pending`] behind a [`DeferredCell`] (the application's, which also keeps the user's
//! completion), and sends its loop a [`Deferral`] instead of a [`Reply`]: the bytes the call
//! sent before deferring, what the session does after them, and a [`DeferredLink`] to the cell.
//! The connection's job slot holds that link until one of two things happens, whichever comes
//! first — the cell's state is taken exactly once, under its lock:
//!
//! - the completion, on any thread: it takes the pending state, adds what it sends and gives
//!   back the session, and sends an ordinary [`Reply`] — built from the lease — on the loop's
//!   reply channel, so order, compression and the session go the way every reply goes;
//! - the loop reclaims it ([`DeferredCell::reclaim`]): at the deadline, or when the connection
//!   closes. The lease goes home to the slot from there, and a completion that comes later
//!   finds the cell empty: a harmless `Err` for the completer.
//!
//! If the loop finds the cell already taken, a completion is running and its reply is on its
//! way: the slot waits for it as for any job out, and an owed `on_close` settles on it.

use std::sync::Arc;

use crate::conn_id::ConnId;
use crate::dispatch::job::{After, Inbound, Lease, Output, Reply, SessionBox};
use crate::dispatch::reclaimed::Reclaimed;
use crate::dispatch::unordered::Arrival;

/// What a deferred job still owns while it waits for its completion.
#[derive(Debug)]
pub(crate) struct Pending {
    pub lease: Lease,
    /// Set up for the connection (its compression); what the completion sends goes here.
    pub output: Output,
    /// The connection's session, lent to the completion.
    pub session: Option<SessionBox>,
    /// Messages of the job's batch after the call that deferred: handled by the next job.
    pub unhandled: Vec<Inbound>,
}

impl Pending {
    /// The reply that brings it home with what the completion added (or nothing): the messages
    /// it did not reach go back to the connection's inbox, ahead of any newer ones.
    pub(crate) fn into_reply(self) -> Reply {
        let Pending {
            lease,
            mut output,
            session,
            unhandled,
        } = self;
        output.unhandled = unhandled;
        Reply {
            lease,
            output,
            after: After::Continue,
            session,
        }
    }
}

/// The application's cell holding a deferred job's [`Pending`] state (and the user's handle on
/// it), as the loop sees it.
pub(crate) trait DeferredCell: Send + Sync + std::fmt::Debug {
    /// The deferral is on its way to the loop, ahead of any reply (the worker sent it, or the
    /// inline loop applied it): completions may take the pending state from now on. Until then
    /// one waits, so that its reply can never overtake the deferral. `Some` if every handle on
    /// it was dropped meanwhile: the job completes with nothing, and whoever announced sends it
    /// home.
    fn announce(&self) -> Option<Pending>;

    /// Takes the pending state, if no completion has taken it yet; a completion that comes
    /// later learns `why` it is too late. `None`: a completion has it, and its reply is coming.
    fn reclaim(&self, why: Reclaimed) -> Option<Pending>;
}

/// The loop's end of a deferred job: kept in the connection's job slot.
pub(crate) type DeferredLink = Arc<dyn DeferredCell>;

/// A handler call deferred its completion: what goes to the loop instead of a reply.
#[derive(Debug)]
pub(crate) struct Deferral {
    pub conn: ConnId,
    pub link: DeferredLink,
    /// What the calls of the job sent before the one that deferred, and that call up to then:
    /// written now.
    pub output: Output,
    /// What the session does after those bytes (the upgrade's `101` went out, say).
    pub after: After,
}

/// What running a job sends back to its loop.
#[derive(Debug)]
pub(crate) enum Returned {
    /// The job is done: its reply, with the lease.
    Reply(Reply),
    /// A call deferred its completion: the lease waits in the deferral's cell.
    Deferred(Deferral),
    /// An out-of-order completion came (`unordered.rs`): no lease, no job of its own.
    Unordered(Arrival),
}

impl Returned {
    /// The connection it is for.
    pub(crate) fn conn(&self) -> ConnId {
        match self {
            Returned::Reply(reply) => reply.conn(),
            Returned::Deferred(deferral) => deferral.conn,
            Returned::Unordered(arrival) => arrival.conn,
        }
    }

    /// Bytes of output it carries (for the trace).
    pub(crate) fn output_len(&self) -> usize {
        match self {
            Returned::Reply(reply) => reply.output.len(),
            Returned::Deferred(deferral) => deferral.output.len(),
            Returned::Unordered(_) => 0,
        }
    }
}

impl From<Reply> for Returned {
    fn from(reply: Reply) -> Self {
        Returned::Reply(reply)
    }
}
