//! [`Forwarder`]: how one event loop's publications reach the subscribers of the other loops.
//!
//! A handler's publication is delivered on the loop that applied its reply; then the table hands
//! it here (`ConnectionTable::take_forwards`, once per turn) and it leaves as a
//! `Command::Publish` on every other loop's command queue — the same bounded queue a
//! `ServerHandle` uses — with one ring of that loop's waker per batch. The frame is not copied:
//! each command holds a reference to the bytes the handler encoded.
//!
//! A loop never waits (another loop may be waiting to forward to it), so a command queue that is
//! full keeps the rest of the batch in a backlog for that loop, in order, offered again at every
//! turn (the loop polls again within [`RETRY_AFTER`] while a backlog waits). The backlog is
//! bounded like the queue, at `command_queue_capacity` publications: past it a publication is
//! dropped for that loop, counted in `Stats::publications_dropped` and logged. Order per pair of
//! loops is kept: a publication is only sent once all earlier ones for that loop have been.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Sender, TrySendError};

use crate::dispatch::{Command, LoopLink, LoopWaker, Publication, Relay};
use crate::metrics::{Metrics, add};

/// How soon a loop with a backlog for another loop offers it again.
pub(crate) const RETRY_AFTER: Duration = Duration::from_millis(1);

/// The other loops of the server, and what waits to be sent to each.
#[derive(Debug, Default)]
pub(crate) struct Forwarder {
    peers: Vec<Peer>,
    /// Most publications waiting for one loop's queue to have room (beyond the queue itself).
    max_backlog: usize,
    /// The backplane to the other nodes, if there is one: the loop tells it what it subscribes
    /// to (publications reach it from the threads that make them, `dispatch/relay.rs`).
    relay: Option<Arc<dyn Relay>>,
}

/// Another event loop, as this one forwards to it.
#[derive(Debug)]
struct Peer {
    index: usize,
    commands: Sender<Command>,
    waker: Arc<LoopWaker>,
    /// Publications not yet sent, in order: the queue was full (at most `max_backlog`).
    backlog: VecDeque<Publication>,
    /// Something was sent since the last ring of its waker.
    sent: bool,
}

impl Forwarder {
    /// Forwards to every loop of `links` but loop `own`, keeping at most `max_backlog`
    /// publications waiting for each.
    pub(crate) fn new(own: usize, links: &[LoopLink], max_backlog: usize) -> Self {
        let peers = links
            .iter()
            .enumerate()
            .filter(|&(index, _)| index != own)
            .map(|(index, link)| Peer {
                index,
                commands: link.commands.clone(),
                waker: Arc::clone(&link.waker),
                backlog: VecDeque::new(),
                sent: false,
            })
            .collect();
        Forwarder {
            peers,
            max_backlog,
            relay: None,
        }
    }

    /// The same, with the backplane to the other nodes.
    pub(crate) fn with_relay(mut self, relay: Option<Arc<dyn Relay>>) -> Self {
        self.relay = relay;
        self
    }

    /// The backplane to the other nodes, if there is one.
    pub(crate) fn relay(&self) -> Option<Arc<dyn Relay>> {
        self.relay.clone()
    }

    /// Are there other loops?
    pub(crate) fn has_peers(&self) -> bool {
        !self.peers.is_empty()
    }

    /// Does a publication wait for a full queue?
    pub(crate) fn has_backlog(&self) -> bool {
        self.peers.iter().any(|peer| !peer.backlog.is_empty())
    }

    /// Sends `publications` to every other loop, after what waits for it already.
    pub(crate) fn send(&mut self, publications: Vec<Publication>, metrics: &Metrics) {
        for peer in &mut self.peers {
            peer.flush();
            let mut dropped = 0;
            for publication in &publications {
                if peer.backlog.len() >= self.max_backlog {
                    dropped += 1;
                    continue;
                }
                peer.backlog.push_back(Publication {
                    sender: None,
                    ..publication.clone()
                });
                if peer.backlog.len() == 1 {
                    peer.flush();
                }
            }
            peer.wake();
            if dropped > 0 {
                add(&metrics.publications_dropped, dropped);
                log::warn!(
                    "loop {}'s command queue stays full: {dropped} publications dropped for it",
                    peer.index
                );
            }
        }
    }

    /// Offers each loop what waits for it, in order, until its queue is full.
    pub(crate) fn retry(&mut self) {
        for peer in &mut self.peers {
            peer.flush();
            peer.wake();
        }
    }
}

impl Peer {
    /// Sends what waits, oldest first, until the queue is full.
    fn flush(&mut self) {
        while let Some(Publication { topic, frame, .. }) = self.backlog.pop_front() {
            match self.commands.try_send(Command::Publish { topic, frame }) {
                Ok(()) => self.sent = true,
                Err(TrySendError::Full(Command::Publish { topic, frame })) => {
                    let sender = None;
                    self.backlog.push_front(Publication {
                        topic,
                        frame,
                        sender,
                    });
                    return;
                }
                Err(TrySendError::Full(_)) => return,
                Err(TrySendError::Disconnected(_)) => {
                    // That loop has finished (shutdown): nobody is left to deliver to.
                    self.backlog.clear();
                    return;
                }
            }
        }
    }

    /// Rings the loop once for everything sent since the last ring.
    fn wake(&mut self) {
        if std::mem::take(&mut self.sent) {
            self.waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topic::Topic;
    use crossbeam_channel::Receiver;
    use mio::{Poll, Token, Waker};

    /// Links to `n` loops whose command queues hold `capacity` commands each.
    fn links(n: usize, capacity: usize) -> (Poll, Vec<LoopLink>, Vec<Receiver<Command>>) {
        let poll = Poll::new().expect("poll");
        let waker = Arc::new(LoopWaker::new(
            Waker::new(poll.registry(), Token(0)).expect("waker"),
        ));
        let mut links = Vec::new();
        let mut queues = Vec::new();
        for _ in 0..n {
            let (commands, queue) = crossbeam_channel::bounded(capacity);
            let (replies, _) = crossbeam_channel::unbounded();
            let waker = Arc::clone(&waker);
            links.push(LoopLink {
                commands,
                replies,
                waker,
            });
            queues.push(queue);
        }
        (poll, links, queues)
    }

    fn publication(text: &str) -> Publication {
        Publication {
            topic: Topic::new("t").expect("a short name"),
            frame: text.as_bytes().into(),
            sender: None,
        }
    }

    /// The frames waiting in `queue`, as text.
    fn drain(queue: &Receiver<Command>) -> Vec<String> {
        queue
            .try_iter()
            .map(|command| match command {
                Command::Publish { frame, .. } => String::from_utf8_lossy(&frame).into_owned(),
                other => panic!("not a publication: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn publications_go_to_every_other_loop_in_order_through_a_bounded_backlog() {
        let (_poll, links, queues) = links(3, 1);
        let metrics = Metrics::default();
        let mut forwarder = Forwarder::new(1, &links, 2);
        assert!(forwarder.has_peers());
        let batch = ["a", "b", "c", "d"].map(publication).to_vec();
        forwarder.send(batch, &metrics);
        // Each queue takes one, each backlog two; one publication per loop is dropped.
        assert_eq!(drain(&queues[0]), ["a"]);
        assert!(drain(&queues[1]).is_empty(), "not to itself");
        assert_eq!(drain(&queues[2]), ["a"]);
        assert!(forwarder.has_backlog());
        assert_eq!(metrics.snapshot().publications_dropped, 2);
        forwarder.retry();
        assert_eq!(drain(&queues[0]), ["b"]);
        forwarder.send(vec![publication("e")], &metrics);
        assert_eq!(drain(&queues[0]), ["c"], "behind what was waiting");
        forwarder.retry();
        assert_eq!(drain(&queues[0]), ["e"]);
        assert_eq!(
            drain(&queues[2]),
            ["b"],
            "queue 2 was not drained meanwhile"
        );
        forwarder.retry();
        forwarder.retry();
        assert_eq!(drain(&queues[2]), ["c"]);
        forwarder.retry();
        assert_eq!(drain(&queues[2]), ["e"]);
        assert!(!forwarder.has_backlog());
    }

    #[test]
    fn a_loop_that_has_finished_takes_nothing_and_holds_nothing() {
        let (_poll, links, mut queues) = links(2, 1);
        let mut forwarder = Forwarder::new(0, &links, 8);
        queues.truncate(1); // loop 1's receiver is gone
        forwarder.send(["a", "b"].map(publication).to_vec(), &Metrics::default());
        assert!(!forwarder.has_backlog());
        assert!(!Forwarder::new(0, &links[..1], 8).has_peers());
    }
}
