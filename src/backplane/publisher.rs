//! The publisher thread: takes this node's publications from a bounded queue and sends them to
//! Redis on a connection of its own, pipelined — all that waits in the queue, up to [`BATCH`],
//! goes in one write and one read of the replies.
//!
//! Publications enter from whatever thread made them (`Backplane::publish`: a worker, a loop
//! with inline handlers, a user thread through a `ServerHandle`), which never waits: past
//! `Config::backplane_queue_capacity` a publication is dropped and counted
//! (`backplane_publish_dropped`). They leave as `PUBLISH` (live topics) or as a call of the
//! publish script (topics with recovery, `history.rs`), in the order they were queued: one
//! queue, one thread, one connection, so what one publisher publishes reaches Redis — and
//! every node — in its order.
//!
//! At most once: a batch whose connection fails is not sent again; it is counted in
//! `backplane_publish_failed`, like everything queued while Redis cannot be reached (each
//! failed attempt to connect drops what waits, so nothing stale is sent after an outage). The
//! connection is made again after a pause that doubles up to `backplane_backoff_max`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use redis::{Client, Connection, RedisResult};

use super::Alignment;
use super::connect::{Backoff, TICK, bounded, connect, wait};
use super::envelope;
use super::history::{self, Keys};
use crate::conn_id::ConnId;
use crate::metrics::{Metrics, add};
use crate::topic::Topic;

/// Most publications in one pipelined write.
pub(crate) const BATCH: usize = 256;

/// One publication on its way to Redis.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub topic: Topic,
    pub frame: Arc<[u8]>,
    pub except: Option<ConnId>,
    /// The topic keeps a history: publish through the script, which gives it its position.
    pub ordered: bool,
    /// The interest changes made before it (`Alignment::requested`): an ordered publication
    /// waits until they are confirmed, so that this node's new subscribers hear it.
    pub after: u64,
}

/// The publisher thread's state.
pub(crate) struct Publisher {
    pub client: Client,
    pub queue: Receiver<Outgoing>,
    pub node: u64,
    pub keys: Keys,
    pub history: history::Limits,
    pub timeout: Duration,
    pub backoff: Backoff,
    pub metrics: Arc<Metrics>,
    /// Set once the loops and workers have stopped: send what is queued, then end.
    pub stop: Arc<AtomicBool>,
    /// Fresh epochs for the script, should a topic's history have to start again.
    pub epochs: history::Epochs,
    pub alignment: Arc<Alignment>,
}

impl Publisher {
    pub(crate) fn run(mut self) {
        let mut connection: Option<Connection> = None;
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            match self.queue.recv_timeout(TICK) {
                Ok(first) => batch.push(first),
                Err(RecvTimeoutError::Timeout) if self.stop.load(Ordering::Acquire) => return,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            }
            batch.extend(self.queue.try_iter().take(BATCH - 1));
            self.await_subscriptions(&batch);
            let connected = match connection.as_mut() {
                Some(connection) => connection,
                None => match self.connect() {
                    Some(made) => connection.insert(made),
                    None => {
                        let queued = self.queue.try_iter().count();
                        self.lost(batch.len() + queued, "Redis cannot be reached");
                        batch.clear();
                        let pause = self.backoff.failed();
                        if !wait(pause, &self.stop, || {}) {
                            let queued = self.queue.try_iter().count();
                            self.lost(queued, "stopping while Redis cannot be reached");
                            return;
                        }
                        continue;
                    }
                },
            };
            match self.send(connected, &batch) {
                Ok(()) => add(&self.metrics.backplane_published, batch.len() as u64),
                Err(err) => {
                    self.lost(batch.len(), &format!("the connection failed: {err}"));
                    self.backoff.lost();
                    connection = None;
                }
            }
            batch.clear();
        }
    }

    /// Waits (at most `backplane_timeout`) until the subscriptions made before the batch's
    /// ordered publications are confirmed: a member that subscribes and publishes at once
    /// hears its own publication.
    fn await_subscriptions(&self, batch: &[Outgoing]) {
        let needed = batch
            .iter()
            .filter(|outgoing| outgoing.ordered)
            .map(|outgoing| outgoing.after)
            .max()
            .unwrap_or(0);
        let aligned = || self.alignment.aligned.load(Ordering::Acquire) >= needed;
        if aligned() {
            return;
        }
        let end = Instant::now() + bounded(self.timeout);
        while !aligned() && Instant::now() < end && !self.stop.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// A connection with the publish script loaded, or `None` (logged) if Redis cannot be
    /// reached now.
    fn connect(&mut self) -> Option<Connection> {
        let name = format!("wsreactor-pub-{:016x}", self.node);
        let made = connect(&self.client, self.timeout, &name).and_then(|mut connection| {
            history::load_scripts(&mut connection)?;
            Ok(connection)
        });
        match made {
            Ok(connection) => {
                if self.backoff.succeeded() {
                    add(&self.metrics.backplane_reconnects, 1);
                    log::info!("backplane: publisher connected to Redis again");
                }
                Some(connection)
            }
            Err(err) => {
                if self.backoff.failures == 0 {
                    log::warn!("backplane: publisher cannot connect to Redis: {err}");
                }
                None
            }
        }
    }

    /// Sends `batch` in one pipeline and reads every reply.
    fn send(&mut self, connection: &mut Connection, batch: &[Outgoing]) -> RedisResult<()> {
        let mut pipe = redis::pipe();
        for outgoing in batch {
            if outgoing.ordered {
                let head = envelope::head(true, self.node, outgoing.except);
                let epoch = self.epochs.next();
                let publication = (&outgoing.topic, &outgoing.frame[..]);
                history::publish(
                    &mut pipe,
                    &self.keys,
                    publication,
                    &head,
                    &self.history,
                    epoch,
                );
            } else {
                let channel = self.keys.channel(&outgoing.topic);
                let message = envelope::live(self.node, outgoing.except, &outgoing.frame);
                pipe.cmd("PUBLISH").arg(channel).arg(message).ignore();
            }
        }
        pipe.exec(connection)
    }

    fn lost(&self, count: usize, why: &str) {
        if count == 0 {
            return;
        }
        let before = self
            .metrics
            .backplane_publish_failed
            .load(Ordering::Relaxed);
        add(&self.metrics.backplane_publish_failed, count as u64);
        // One line per outage, not one per publication.
        if before == 0 || self.backoff.failures <= 1 {
            log::warn!("backplane: {count} publications not sent to other nodes: {why}");
        }
    }
}
