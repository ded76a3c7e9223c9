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
    event_loop: u32,
    index: u32,
    generation: u64,
}

impl ConnId {
    pub(crate) fn new(event_loop: usize, index: usize, generation: u64) -> Self {
        ConnId {
            // Both fit: loops are few, and a slab holds far fewer than 2^32 connections (the
            // process runs out of file descriptors long before).
            event_loop: u32::try_from(event_loop).unwrap_or(u32::MAX),
            index: u32::try_from(index).unwrap_or(u32::MAX),
            generation,
        }
    }

    /// The connection's slot in its event loop's slab (equal to its mio `Token`). Reused by a
    /// later connection once this one closes.
    pub fn index(self) -> usize {
        self.index as usize
    }

    /// Which event loop owns the connection (0 when there is one loop).
    pub fn event_loop(self) -> usize {
        self.event_loop as usize
    }

    /// The generation that makes this id unique: it increases with every accepted connection.
    pub fn generation(self) -> u64 {
        self.generation
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}:{}.{}", self.event_loop, self.index, self.generation)
    }
}
