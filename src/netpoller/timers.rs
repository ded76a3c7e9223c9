//! Deadlines on the loop, without a thread per timer: a min-heap of `(instant, ConnId)`.
//!
//! A connection has at most one deadline that counts at a time: the earliest of its clocks
//! (request, keep-alive idle, ping, pong, lifetime, write stall, close — seven kinds, derived by
//! the session's `deadline.rs`). Scheduling pushes `(instant, ConnId)` on the heap; the heap is
//! never searched or edited. When an entry comes due, the loop checks that the connection still
//! exists with that generation and that its scheduled deadline is that instant: if not, the entry
//! was cancelled or replaced and is skipped ("lazy cancellation"). The heap's top is the `poll`
//! timeout, which is how Go's runtime turns `SetDeadline` into a wake-up of its netpoller.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use crate::conn_id::ConnId;

/// A min-heap of connection deadlines with lazy cancellation.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, ConnId)>>,
}

impl Timers {
    pub(crate) fn schedule(&mut self, at: Instant, conn: ConnId) {
        self.heap.push(Reverse((at, conn)));
    }

    /// Time until the earliest entry (zero if it is due), or `None` when there is none.
    pub(crate) fn next_timeout(&self, now: Instant) -> Option<Duration> {
        self.heap
            .peek()
            .map(|Reverse((at, _))| at.saturating_duration_since(now))
    }

    /// Removes and returns one entry that is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, ConnId)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse(entry)| entry),
            _ => None,
        }
    }

    /// Gives back the heap's spare room (after a storm: it keeps its peak capacity otherwise).
    pub(crate) fn shrink(&mut self) {
        self.heap.shrink_to_fit();
    }

    /// Entries on the heap (live and stale).
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_due_in_order() {
        let mut timers = Timers::default();
        let now = Instant::now();
        let a = ConnId::new(0, 1, 1);
        let b = ConnId::new(0, 2, 2);
        timers.schedule(now + Duration::from_secs(2), a);
        timers.schedule(now + Duration::from_secs(1), b);
        assert_eq!(timers.next_timeout(now), Some(Duration::from_secs(1)));
        assert!(timers.pop_due(now).is_none());
        let later = now + Duration::from_secs(3);
        assert_eq!(timers.pop_due(later).map(|(_, c)| c), Some(b));
        assert_eq!(timers.pop_due(later).map(|(_, c)| c), Some(a));
        assert_eq!(timers.len(), 0);
    }
}
