//! What the event loop, the unit tests and the fuzz harness may ask the table about itself.

use super::{ConnectionTable, Poller};
use crate::dispatch::JobQueue;
use crate::transport::Transport;
#[cfg(any(test, feature = "fuzzing"))]
use crate::{conn_id::ConnId, session::Session};

impl<T: Transport, P: Poller<T>, Q: JobQueue> ConnectionTable<T, P, Q> {
    /// The job queue (for the loop's last, waiting hand-over at shutdown).
    pub(crate) fn jobs(&self) -> &Q {
        &self.jobs
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.slab.len()
    }

    /// The session of `id`, if it is still in the table (tests and the fuzz harness).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn session(&self, id: ConnId) -> Option<&Session> {
        self.live(id).map(|index| &self.slab[index].session)
    }

    /// Every connection in the table: its session, the interest it needs (WRITABLE while its
    /// session or its transport holds output) and whether the budget's charge for it is right
    /// (tests and the fuzz harness).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn connections(&self) -> impl Iterator<Item = (&Session, mio::Interest, bool)> {
        self.slab.iter().map(|(_, entry)| {
            let output = entry.session.output_len() + entry.transport.buffered_output();
            let interest = if output > 0 {
                mio::Interest::READABLE | mio::Interest::WRITABLE
            } else {
                mio::Interest::READABLE
            };
            let held = entry.session.buffered_bytes()
                + entry.transport.buffered_input()
                + entry.transport.buffered_output();
            (&entry.session, interest, held == entry.held)
        })
    }

    /// The bytes the budget charges this loop now (tests and the fuzz harness check that it is
    /// the sum of its connections' charges).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.budget.local()
    }

    /// The sum of what the table charges its connections (tests and the fuzz harness).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn charged(&self) -> usize {
        self.slab.iter().map(|(_, entry)| entry.held).sum()
    }

    /// The poller (tests and the fuzz harness).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn poller(&self) -> &P {
        &self.poller
    }

    /// The job queue (tests and the fuzz harness run its jobs by hand).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn jobs_mut(&mut self) -> &mut Q {
        &mut self.jobs
    }
}
