//! `ConnId`: the name of one connection that is safe to hand to other threads.
//!
//! Slab keys are reused as soon as a connection closes, so a bare key held by a worker or by
//! user code could end up naming a different client. A `ConnId` pairs the key with a generation
//! that the event loop never reuses; everything that arrives at the loop for a `ConnId` whose
//! generation no longer matches its slot is dropped and counted
//! ([`Stats::stale_replies_dropped`](crate::Stats::stale_replies_dropped)).

use std::fmt;

/// Identifies one connection for its whole life, and never another one afterwards.
///
/// Obtained from [`Context::conn`](crate::Context::conn) inside a handler; pass it to
/// [`ServerHandle::send`](crate::ServerHandle::send) to push to that client from any thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    index: usize,
    generation: u64,
}

impl ConnId {
    pub(crate) fn new(index: usize, generation: u64) -> Self {
        ConnId { index, generation }
    }

    /// The connection's slot in the event loop's slab (equal to its mio `Token`). Reused by a
    /// later connection once this one closes.
    pub fn index(self) -> usize {
        self.index
    }

    /// The generation that makes this id unique: it increases with every accepted connection.
    pub fn generation(self) -> u64 {
        self.generation
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.index, self.generation)
    }
}
