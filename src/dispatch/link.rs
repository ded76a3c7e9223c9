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
use std::sync::atomic::{AtomicU8, Ordering, fence};

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
/// A [`mio::Waker`] makes `poll` return with the `WAKER` token. Ringing it is a syscall (an
/// `eventfd` write), and it is needed only while the loop is parked — in `poll`, or between two
/// turns of a driven server. So the waker keeps the loop's state, as Go's netpoller does
/// (`netpollBreak` runs only while a thread is blocked in `netpoll`, and its `netpollWakeSig`
/// makes a burst of wakes one):
///
/// ```text
///            ┌─────────── poll returned (awake) ────────────┐
///            v                                              │
///         Awake ──parks: end of a turn, channels empty──> Parked ──a sender rings──> Rung
///            ^                                                                        │
///            └─────────────────── poll returned (awake) ──────────────────────────────┘
/// ```
///
/// A sender puts its message in the channel, then rings only if the loop is `Parked`; the first
/// such sender moves it to `Rung`, later ones stay quiet. While the loop is `Awake` nobody
/// rings: it drains its channels before it parks again. No message is ever left unseen, by
/// the pairing of two fences: the sender's (after its message, before it reads the state) and
/// the loop's in [`park`](Self::park) (after it says `Parked`, before it looks at its channels).
/// Either the sender sees `Parked` and rings, or the loop sees the message and does not sleep.
#[derive(Debug)]
pub(crate) struct LoopWaker {
    waker: Waker,
    state: AtomicU8,
}

/// The loop is running a turn: it will look at its channels before it parks.
const AWAKE: u8 = 0;
/// The loop is in `poll`, or about to be, or between the turns of a driven server.
const PARKED: u8 = 1;
/// A sender has rung the parked loop: `poll` returns (or the driven server's fd is readable).
const RUNG: u8 = 2;

impl LoopWaker {
    /// A waker for a loop that has not run yet: parked, so the first message rings.
    pub(crate) fn new(waker: Waker) -> Self {
        LoopWaker {
            waker,
            state: AtomicU8::new(PARKED),
        }
    }

    /// Wakes the loop if it is parked and nobody rang yet. Called after putting a message in
    /// one of the loop's channels. Returns true if it rang (a syscall), false if the loop is
    /// awake or a wake is already on its way.
    pub(crate) fn wake(&self) -> bool {
        // Pairs with the fence in `park`: the message is in before the state is read.
        fence(Ordering::SeqCst);
        if self.state.load(Ordering::Relaxed) != PARKED
            || self
                .state
                .compare_exchange(PARKED, RUNG, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return false;
        }
        if let Err(err) = self.waker.wake() {
            log::warn!("cannot wake the event loop: {err}");
        }
        true
    }

    /// Called by the loop when `poll` returns, before it drains its channels: until it parks
    /// again, senders do not ring.
    pub(crate) fn awake(&self) {
        self.state.store(AWAKE, Ordering::SeqCst);
    }

    /// Called by the loop at the end of a turn, before it may sleep: from now on senders ring.
    /// True if a message came in since the loop drained its channels (its sender saw the loop
    /// awake and did not ring): the loop must not sleep through it — on its own thread it
    /// polls without waiting; a driven server rings itself ([`wake`](Self::wake)), since its
    /// owner may be watching its fd.
    pub(crate) fn park(&self, pending: impl FnOnce() -> bool) -> bool {
        self.state.store(PARKED, Ordering::SeqCst);
        // Pairs with the fence in `wake`: the state is out before the channels are read.
        fence(Ordering::SeqCst);
        pending()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll, Token};
    use std::time::Duration;

    fn waker() -> (Poll, Arc<LoopWaker>) {
        let poll = Poll::new().expect("poll");
        let waker = Waker::new(poll.registry(), Token(0)).expect("waker");
        (poll, Arc::new(LoopWaker::new(waker)))
    }

    #[test]
    fn only_a_parked_loop_is_rung_and_only_once() {
        let (_poll, waker) = waker();
        assert!(
            waker.wake(),
            "a new loop is parked: the first message rings"
        );
        assert!(!waker.wake(), "rung already");
        waker.awake();
        assert!(!waker.wake(), "an awake loop drains before it sleeps");
        assert!(
            waker.park(|| true),
            "what came in while awake is reported at parking"
        );
        assert!(waker.wake(), "parked again: rings");
    }

    /// A sender races a loop that parks and wakes as the real one does. The sender sends its
    /// next message as soon as the loop says it has the previous one — just before the loop
    /// parks, the moment a lost wake-up would happen. If a message were ever left unseen, `poll`
    /// would sleep through its 10 s and the test fail.
    #[test]
    fn no_message_is_left_unseen_by_a_parking_loop() {
        const MESSAGES: usize = 5_000;
        let (mut poll, waker) = waker();
        let (tx, rx) = crossbeam_channel::unbounded();
        let (ack_tx, ack_rx) = crossbeam_channel::unbounded();
        let sender = {
            let waker = Arc::clone(&waker);
            std::thread::spawn(move || {
                for i in 0..MESSAGES {
                    tx.send(i).expect("send");
                    waker.wake();
                    while ack_rx.recv().expect("ack") <= i {}
                }
            })
        };
        let mut events = Events::with_capacity(8);
        let mut received = 0;
        while received < MESSAGES {
            if !waker.park(|| !rx.is_empty()) {
                poll.poll(&mut events, Some(Duration::from_secs(10)))
                    .expect("poll");
                assert!(
                    !events.is_empty(),
                    "slept through a message: {received} of {MESSAGES} received"
                );
            }
            waker.awake();
            while rx.try_recv().is_ok() {
                received += 1;
            }
            let _ = ack_tx.send(received);
            // The rest of a turn, of varying length: the sender's next message lands before,
            // during or after the parking.
            for _ in 0..(received % 64) * 50 {
                std::hint::spin_loop();
            }
        }
        sender.join().expect("sender");
    }
}
