//! What every handler call shares: the connection's [`Slot`] (its session and peer), where it
//! is kept between calls ([`Keep`]), and what a call that panics costs (`1011`, counted).
//!
//! A threaded server's slots travel with the jobs ([`Carried`]: boxed type-erased into the
//! core's `SessionBox`, so the session must be `Send`); a driven server keeps them on its one
//! thread ([`Local`]: a map by connection, so the session need not be `Send`). A slot that
//! left with a deferred call's completion comes back carried either way.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::conn_id::ConnId;
use crate::dispatch::{ServerHandle, SessionBox};
use crate::handler::Peer;
use crate::metrics::add;
use crate::ws::{CloseCode, CloseFrame};

/// A WebSocket's session as the runner keeps it: the handler's state, and who the peer is.
pub(crate) struct Slot<S> {
    pub peer: Peer,
    pub session: S,
}

impl<S: Default + 'static> Slot<S> {
    /// The slot in a job's box; a fresh one if the box is missing or of another type (neither
    /// happens: the box was made by the runner).
    pub(crate) fn unbox(session: Option<SessionBox>, conn: ConnId) -> Box<Slot<S>> {
        match Slot::carried(session) {
            Some(slot) => slot,
            None => Slot::lost(conn),
        }
    }

    /// The slot a job's box carries, if it carries one.
    fn carried(session: Option<SessionBox>) -> Option<Box<Slot<S>>> {
        session?.downcast::<Slot<S>>().ok()
    }

    fn lost(conn: ConnId) -> Box<Slot<S>> {
        log::error!("{conn}: job without its session; starting from the default");
        Box::new(Slot {
            peer: Peer::default(),
            session: S::default(),
        })
    }
}

/// Where a connection's slot waits between its handler calls.
pub(crate) trait Keep<S> {
    /// The slot for a call of `conn`: the one its job carried, or the one kept here (taken).
    fn take(&self, conn: ConnId, carried: Option<SessionBox>) -> Box<Slot<S>>;

    /// The call is over: the slot goes with the reply (`Some`), or stays here (`None`).
    fn keep(&self, conn: ConnId, slot: Box<Slot<S>>) -> Option<SessionBox>;
}

/// Slots travel with the jobs, to whichever worker runs them (the threaded server).
#[derive(Debug, Default)]
pub(crate) struct Carried;

impl<S: Default + Send + 'static> Keep<S> for Carried {
    fn take(&self, conn: ConnId, carried: Option<SessionBox>) -> Box<Slot<S>> {
        Slot::unbox(carried, conn)
    }

    fn keep(&self, _conn: ConnId, slot: Box<Slot<S>>) -> Option<SessionBox> {
        Some(slot)
    }
}

/// Slots stay on the one thread that runs every call (a driven server), by connection.
pub(crate) struct Local<S> {
    slots: RefCell<HashMap<ConnId, Box<Slot<S>>>>,
}

impl<S> Default for Local<S> {
    fn default() -> Self {
        Local {
            slots: RefCell::new(HashMap::new()),
        }
    }
}

impl<S: Default + 'static> Keep<S> for Local<S> {
    fn take(&self, conn: ConnId, carried: Option<SessionBox>) -> Box<Slot<S>> {
        // Back from a deferred call's completion, or kept here since the last call.
        let kept = self.slots.borrow_mut().remove(&conn);
        Slot::carried(carried)
            .or(kept)
            .unwrap_or_else(|| Slot::lost(conn))
    }

    fn keep(&self, conn: ConnId, slot: Box<Slot<S>>) -> Option<SessionBox> {
        self.slots.borrow_mut().insert(conn, slot);
        None
    }
}

/// Counts and logs a handler call that panicked.
pub(crate) fn panicked_in(server: &ServerHandle, conn: ConnId, call: &str) {
    add(&server.metrics().handler_panics, 1);
    log::error!("{conn}: handler panicked in {call}; closing the connection");
}

/// The close frame a connection gets when its handler panicked.
pub(crate) fn internal_error() -> CloseFrame {
    CloseFrame {
        code: CloseCode::Error,
        reason: "handler panicked".into(),
    }
}
