//! The loop's doorbell: how worker threads and handles wake a loop blocked in `poll`.
//!
//! A [`mio::Waker`] makes `poll` return with the `WAKER` token. Ringing it is a syscall, so
//! `LoopWaker` coalesces: the first sender after the loop last looked rings it, later senders see
//! the `pending` flag and stay quiet. The loop clears the flag *before* draining its channels, so
//! a message sent after the drain started always rings again: no message is ever left unseen.
//! This is Go's `netpollBreak`, whose `netpollWakeSig` flag does the same coalescing.

use std::sync::atomic::{AtomicBool, Ordering};

use mio::Waker;

/// A coalescing wrapper around the loop's [`mio::Waker`].
#[derive(Debug)]
pub(crate) struct LoopWaker {
    waker: Waker,
    pending: AtomicBool,
}

impl LoopWaker {
    pub(crate) fn new(waker: Waker) -> Self {
        LoopWaker {
            waker,
            pending: AtomicBool::new(false),
        }
    }

    /// Wakes the loop unless a wake is already on its way. Called after putting a message in
    /// one of the loop's channels. Returns true if it rang (a syscall), false if it coalesced
    /// with a wake already pending.
    pub(crate) fn wake(&self) -> bool {
        if self.pending.swap(true, Ordering::AcqRel) {
            return false;
        }
        if let Err(err) = self.waker.wake() {
            log::warn!("cannot wake the event loop: {err}");
        }
        true
    }

    /// Called by the loop before it drains its channels: the next `wake` rings again.
    pub(crate) fn clear(&self) {
        self.pending.store(false, Ordering::Release);
    }
}
