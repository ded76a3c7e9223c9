//! What every handler call shares: the connection's [`Slot`] (its session and peer, boxed
//! type-erased between calls), and what a call that panics costs (`1011`, counted).

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

impl<S: Default + Send + 'static> Slot<S> {
    /// The slot in a job's box; a fresh one if the box is missing or of another type (neither
    /// happens: the box was made by the runner).
    pub(crate) fn unbox(session: Option<SessionBox>, conn: ConnId) -> Box<Slot<S>> {
        match session.map(|boxed| boxed.downcast::<Slot<S>>()) {
            Some(Ok(slot)) => slot,
            Some(Err(_)) | None => {
                log::error!("{conn}: job without its session; starting from the default");
                Box::new(Slot {
                    peer: Peer::default(),
                    session: S::default(),
                })
            }
        }
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
