//! The ways into one event loop from other threads: its command queue, its reply channel and its
//! waker ([`LoopWaker`]), bundled as a [`LoopLink`].
//!
//! Workers send each job's [`Reply`] on the loop's reply channel; handles send [`Command`]s
//! (pushes, broadcasts, publications, closes) on its bounded command queue — and so do the other
//! loops, forwarding their handlers' publications (`netpoller/forward.rs`); all of them then ring
//! the waker. The loop drains both between readiness events. Whatever arrives for a `ConnId` whose generation no
//! longer matches its slot is dropped and counted there, never delivered to a successor.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::Sender;
use mio::Waker;

use crate::conn_id::ConnId;
use crate::dispatch::deferred::Returned;
use crate::topic::{Position, Topic};
use crate::ws::CloseFrame;

/// A request from another thread for the event loop.
#[derive(Debug)]
pub(crate) enum Command {
    /// Something for one connection's session (the loop hands it over without looking inside).
    Push { conn: ConnId, push: Push },
    /// Write these encoded frames to every open WebSocket connection of the loop.
    Broadcast { bytes: Arc<[u8]> },
    /// Write this encoded frame to every subscriber of `topic` on the loop (from a handle, or
    /// forwarded by the loop whose handler published it).
    Publish { topic: Topic, frame: Arc<[u8]> },
    /// A publication from the backplane with its position in the topic's history: delivered
    /// in that order to the subscribers of the loop (held for those whose history is loading).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Ordered(Box<Ordered>),
    /// The history a connection subscribed with `Context::subscribe_from` missed, or why it
    /// cannot have it.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    History(Box<History>),
}

/// A positioned publication from the backplane.
#[derive(Debug)]
pub(crate) struct Ordered {
    pub topic: Topic,
    pub frame: Arc<[u8]>,
    pub position: Position,
    /// The connection it must not reach (`publish_to_others` on this node).
    pub except: Option<ConnId>,
}

/// The answer to a recovery (`Relay::recover`).
#[derive(Debug)]
pub(crate) struct History {
    pub conn: ConnId,
    pub topic: Topic,
    /// The publications after the position asked for, in order, and the position the history
    /// ended at when it was read; or why not (for the log).
    pub outcome: Result<(Vec<Entry>, Position), String>,
}

/// A publication of a topic's history: its position and its frame.
pub(crate) type Entry = (Position, Arc<[u8]>);

/// What another thread asks of one connection.
#[derive(Debug)]
pub(crate) enum Push {
    /// Write these encoded frames.
    Send(Vec<u8>),
    /// Start the close handshake.
    Close(CloseFrame),
}

/// The ways into one event loop.
#[derive(Debug, Clone)]
pub(crate) struct LoopLink {
    /// Pushes from handles (bounded: `command_queue_capacity`).
    pub commands: Sender<Command>,
    /// Replies for this loop's connections. Unbounded, yet bounded in practice: one reply per
    /// job, and jobs are bounded by the job queue plus the workers, so it never holds more than
    /// `job_queue_capacity + workers` replies, and a worker never blocks on it. A deferred
    /// job sends two: its deferral, then its completion's reply (from any thread).
    pub replies: Sender<Returned>,
    pub waker: Arc<LoopWaker>,
}

thread_local! {
    /// Set on event-loop threads: a handle used there (an inline handler) must never wait for
    /// room in a command queue that only that same thread drains.
    static ON_LOOP_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Marks the current thread as an event-loop thread.
pub(crate) fn mark_loop_thread() {
    ON_LOOP_THREAD.with(|flag| flag.set(true));
}

/// Is the current thread an event-loop thread?
pub(crate) fn on_loop_thread() -> bool {
    ON_LOOP_THREAD.with(Cell::get)
}

/// The loop's doorbell: how worker threads and handles wake a loop blocked in `poll`.
///
/// A [`mio::Waker`] makes `poll` return with the `WAKER` token. Ringing it is a syscall, so
/// `LoopWaker` coalesces: the first sender after the loop last looked rings it, later senders
/// see the `pending` flag and stay quiet. The loop clears the flag *before* draining its
/// channels, so a message sent after the drain started always rings again: no message is ever
/// left unseen. This is Go's `netpollBreak`, whose `netpollWakeSig` flag does the same.
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
