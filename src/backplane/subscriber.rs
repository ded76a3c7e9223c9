//! The subscriber thread: one Redis connection per node in pub/sub mode, subscribed to the
//! channel of every topic that some event loop of this node has a subscriber for, forwarding
//! each publication it receives into those loops.
//!
//! **In**: what the loops subscribe to arrives on the control channel ([`Control::Interest`],
//! sent by a loop's registry when a topic gains its first subscriber there or loses its last),
//! with the recoveries they ask for ([`Control::Recover`]); the thread reads it at least every
//! [`TICK`] and brings the connection's subscriptions in line (`SUBSCRIBE`/`UNSUBSCRIBE`, each
//! confirmed within `backplane_timeout`). A recovery is handed to the history thread only once
//! its topic's subscription is confirmed, so nothing published after the history is read can
//! be missed: it arrives live, and the loop holds it until the history is delivered.
//!
//! **Out**: a publication goes to each loop with a subscriber of its topic as a command on that
//! loop's bounded queue, and rings its waker; the thread never waits for a loop — a full queue
//! drops the publication for that loop, counted in `backplane_delivery_dropped` and logged
//! with the loop. A node's own live publications were delivered where they were made: dropped
//! here. Positioned ones (recovery topics) are delivered by every node, the publishing one
//! too, in offset order; an offset skipped is a gap, counted in `backplane_gap_publications`.
//!
//! **Failures**: when the connection fails (Redis restarted, or closed it as a slow consumer
//! past its `client-output-buffer-limit pubsub`), the thread connects again after a pause that
//! doubles up to `backplane_backoff_max`, and subscribes again to every topic that still has
//! subscribers. What was published meanwhile did not reach this node: lost (at most once), or
//! for recovery topics seen as a gap, which a client can fill by subscribing from its last
//! position again.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use redis::{Client, Msg, PubSub, RedisError};

use super::connect::{Backoff, TICK, connect, wait};
use super::envelope::{self, Envelope};
use super::history::Keys;
use super::recovery::Request;
use super::{Alignment, Recovery};
use crate::conn_id::ConnId;
use crate::dispatch::{Command, LoopLink, Ordered};
use crate::metrics::{Metrics, add};
use crate::topic::{Position, Topic};

/// Most messages read in a row before the control channel is looked at again.
const READ_BURST: usize = 1024;
/// Most channels in one `SUBSCRIBE` or `UNSUBSCRIBE`.
const CHANNELS_PER_COMMAND: usize = 256;

/// What the loops tell the subscriber thread.
#[derive(Debug)]
pub(crate) enum Control {
    /// Loop `event_loop` has its first subscriber to `topic`, or no longer any.
    Interest {
        event_loop: usize,
        topic: Topic,
        subscribed: bool,
        /// Its place among the changes (`Alignment::requested`).
        number: u64,
    },
    /// `conn` subscribed to `topic` from `since`: read its history once the channel is ours.
    Recover {
        conn: ConnId,
        topic: Topic,
        since: Position,
    },
}

/// How a session with Redis ended.
enum Ended {
    Stopped,
    Failed(RedisError),
}

/// The subscriber thread's state.
pub(crate) struct Subscriber {
    pub client: Client,
    pub node: u64,
    pub keys: Keys,
    pub recovery: Recovery,
    pub timeout: Duration,
    pub backoff: Backoff,
    pub metrics: Arc<Metrics>,
    pub stop: Arc<AtomicBool>,
    pub control: Receiver<Control>,
    pub loops: Vec<LoopLink>,
    /// The history thread, which answers recoveries.
    pub history: Sender<Request>,
    /// Every topic with a subscriber on some loop, and which loops.
    pub routes: HashMap<Topic, Vec<usize>>,
    /// The last position received per recovery topic, to see gaps.
    pub last: HashMap<Topic, Position>,
    /// Recoveries waiting for their topic's subscription, with their deadline.
    pub waiting: Vec<Request>,
    /// Deliveries dropped per loop (each loop's full command queue), shared with the relay.
    pub dropped: Arc<Vec<std::sync::atomic::AtomicU64>>,
    /// How far the subscriptions are confirmed, for the publisher.
    pub alignment: Arc<Alignment>,
    /// The number of the last interest change read.
    pub seen: u64,
}

impl Subscriber {
    pub(crate) fn run(mut self) {
        loop {
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            self.read_control();
            let name = format!("wsreactor-sub-{:016x}", self.node);
            match connect(&self.client, self.timeout, &name) {
                Ok(mut connection) => {
                    if self.backoff.succeeded() {
                        add(&self.metrics.backplane_reconnects, 1);
                        log::info!("backplane: subscriber connected to Redis again");
                    }
                    let ended = self.serve(connection.as_pubsub());
                    if let Ok(mut confirmed) = self.alignment.confirmed.lock() {
                        confirmed.clear();
                    }
                    self.metrics.backplane_connected.store(0, Ordering::Relaxed);
                    self.metrics.backplane_channels.store(0, Ordering::Relaxed);
                    match ended {
                        Ended::Stopped => return,
                        Ended::Failed(err) => {
                            log::warn!("backplane: subscriber connection lost: {err}");
                            // Not at once: a Redis that accepts and drops at once is not
                            // hammered.
                            self.backoff.lost();
                            let pause = self.backoff.failed();
                            let stop = Arc::clone(&self.stop);
                            if !wait(pause, &stop, || self.read_control()) {
                                return;
                            }
                        }
                    }
                }
                Err(err) => {
                    if self.backoff.failures == 0 {
                        log::warn!("backplane: subscriber cannot connect to Redis: {err}");
                    }
                    let pause = self.backoff.failed();
                    let stop = Arc::clone(&self.stop);
                    if !wait(pause, &stop, || {
                        self.read_control();
                        self.expire_recoveries(Instant::now());
                    }) {
                        return;
                    }
                }
            }
        }
    }

    /// Keeps the subscriptions in line with the loops' and forwards what arrives, until the
    /// connection fails or the backplane stops.
    fn serve(&mut self, mut pubsub: PubSub<'_>) -> Ended {
        let mut subscribed: HashSet<Topic> = HashSet::new();
        loop {
            if self.stop.load(Ordering::Acquire) {
                return Ended::Stopped;
            }
            self.read_control();
            if let Err(err) = self.align(&mut pubsub, &mut subscribed) {
                return Ended::Failed(err);
            }
            self.alignment.aligned.store(self.seen, Ordering::Release);
            self.metrics.backplane_connected.store(1, Ordering::Relaxed);
            self.release_recoveries(&subscribed);
            if let Err(err) = pubsub.set_read_timeout(Some(TICK)) {
                return Ended::Failed(err);
            }
            for _ in 0..READ_BURST {
                match pubsub.get_message() {
                    Ok(message) => self.receive(&message),
                    Err(err) if err.is_timeout() || interrupted(&err) => break,
                    Err(err) => return Ended::Failed(err),
                }
                if !self.waiting.is_empty() || self.routes.len() != subscribed.len() {
                    break; // a channel to subscribe, a recovery to hand on
                }
            }
        }
    }

    /// Takes in what the loops said.
    fn read_control(&mut self) {
        while let Ok(control) = self.control.try_recv() {
            match control {
                Control::Interest {
                    event_loop,
                    topic,
                    subscribed,
                    number,
                } => {
                    self.seen = self.seen.max(number);
                    self.route(event_loop, topic, subscribed);
                }
                Control::Recover { conn, topic, since } => self.waiting.push(Request {
                    conn,
                    topic,
                    since,
                    deadline: Instant::now() + self.timeout,
                    failed: false,
                }),
            }
        }
    }

    fn route(&mut self, event_loop: usize, topic: Topic, subscribed: bool) {
        if subscribed {
            let loops = self.routes.entry(topic).or_default();
            if !loops.contains(&event_loop) {
                loops.push(event_loop);
            }
        } else if let Some(loops) = self.routes.get_mut(&topic) {
            loops.retain(|&l| l != event_loop);
            if loops.is_empty() {
                self.routes.remove(&topic);
                self.last.remove(&topic);
            }
        }
    }

    /// Subscribes to the channels of topics with subscribers, and leaves the others.
    fn align(
        &mut self,
        pubsub: &mut PubSub<'_>,
        subscribed: &mut HashSet<Topic>,
    ) -> Result<(), RedisError> {
        let join: Vec<Topic> = self
            .routes
            .keys()
            .filter(|t| !subscribed.contains(*t))
            .cloned()
            .collect();
        let leave: Vec<Topic> = subscribed
            .iter()
            .filter(|t| !self.routes.contains_key(*t))
            .cloned()
            .collect();
        if join.is_empty() && leave.is_empty() {
            return Ok(());
        }
        pubsub.set_read_timeout(Some(self.timeout))?;
        for chunk in join.chunks(CHANNELS_PER_COMMAND) {
            let channels: Vec<String> = chunk.iter().map(|t| self.keys.channel(t)).collect();
            pubsub.subscribe(channels)?;
            subscribed.extend(chunk.iter().cloned());
        }
        for chunk in leave.chunks(CHANNELS_PER_COMMAND) {
            let channels: Vec<String> = chunk.iter().map(|t| self.keys.channel(t)).collect();
            pubsub.unsubscribe(channels)?;
            for topic in chunk {
                subscribed.remove(topic);
            }
        }
        if let Ok(mut confirmed) = self.alignment.confirmed.lock() {
            confirmed.clone_from(subscribed);
        }
        let channels = subscribed.len() as u64;
        self.metrics
            .backplane_channels
            .store(channels, Ordering::Relaxed);
        Ok(())
    }

    /// Hands the recoveries whose topic is subscribed to the history thread; those past their
    /// deadline fail.
    fn release_recoveries(&mut self, subscribed: &HashSet<Topic>) {
        if self.waiting.is_empty() {
            return;
        }
        let now = Instant::now();
        for mut request in std::mem::take(&mut self.waiting) {
            if subscribed.contains(&request.topic) || now >= request.deadline {
                request.failed = !subscribed.contains(&request.topic);
                let _ = self.history.send(request);
            } else {
                self.waiting.push(request);
            }
        }
    }

    /// Fails the recoveries past their deadline (while Redis cannot be reached).
    fn expire_recoveries(&mut self, now: Instant) {
        for mut request in std::mem::take(&mut self.waiting) {
            if now >= request.deadline {
                request.failed = true;
                let _ = self.history.send(request);
            } else {
                self.waiting.push(request);
            }
        }
    }

    /// One message from Redis: to the loops that have subscribers for its topic (as the loops
    /// said before it arrived: a subscription made before the publication reaches it).
    fn receive(&mut self, message: &Msg) {
        self.read_control();
        let Some(topic) = self
            .keys
            .topic_of(message.get_channel_name())
            .and_then(|name| self.routes.get_key_value(name))
            .map(|(topic, _)| topic.clone())
        else {
            return; // a channel left meanwhile
        };
        let Some(envelope) = envelope::parse(message.get_payload_bytes()) else {
            log::warn!("backplane: a message on {topic:?} is not a publication: dropped");
            return;
        };
        let own = envelope.node == self.node;
        if envelope.position.is_none() && own {
            return; // delivered where it was made
        }
        if !own {
            add(&self.metrics.backplane_received, 1);
        }
        let incoming = match envelope.position {
            None => Incoming::Live(envelope.frame),
            Some(position) => self.positioned(&topic, position, envelope, own),
        };
        self.forward(&topic, &incoming);
    }

    /// A positioned publication: its gap, if any, counted; its frame as the topic is framed.
    fn positioned(
        &mut self,
        topic: &Topic,
        position: Position,
        envelope: Envelope,
        own: bool,
    ) -> Incoming {
        if let Some(last) = self.last.insert(topic.clone(), position)
            && last.epoch == position.epoch
            && position.offset > last.offset + 1
        {
            let missed = position.offset - last.offset - 1;
            add(&self.metrics.backplane_gap_publications, missed);
            log::warn!(
                "backplane: {missed} publications to {topic:?} missed (a gap before {position})"
            );
        }
        Incoming::Ordered {
            frame: self.recovery.frame(topic, position, envelope.frame),
            position,
            except: envelope.except.filter(|_| own),
        }
    }

    /// Gives `incoming` to every loop with a subscriber of `topic`, never waiting.
    fn forward(&mut self, topic: &Topic, incoming: &Incoming) {
        let Some(loops) = self.routes.get(topic) else {
            return;
        };
        for &event_loop in loops {
            let Some(link) = self.loops.get(event_loop) else {
                continue;
            };
            if link.commands.try_send(incoming.command(topic)).is_ok() {
                link.waker.wake();
                continue;
            }
            add(&self.metrics.backplane_delivery_dropped, 1);
            let dropped = self
                .dropped
                .get(event_loop)
                .map_or(0, |count| count.fetch_add(1, Ordering::Relaxed) + 1);
            if dropped.is_power_of_two() {
                log::warn!(
                    "backplane: loop {event_loop}'s command queue is full: {dropped} \
                     publications from other nodes dropped for it so far"
                );
            }
        }
    }
}

/// A read cut short by a signal (`EINTR`: the process was stopped and continued, say): nothing
/// is lost, the parser keeps what it had; read again.
fn interrupted(err: &RedisError) -> bool {
    use std::error::Error;
    err.source()
        .and_then(|source| source.downcast_ref::<std::io::Error>())
        .is_some_and(|io| io.kind() == std::io::ErrorKind::Interrupted)
}

/// A publication from Redis, on its way to the loops.
enum Incoming {
    Live(Arc<[u8]>),
    Ordered {
        frame: Arc<[u8]>,
        position: Position,
        except: Option<ConnId>,
    },
}

impl Incoming {
    /// The command for one loop (the frame is shared, not copied).
    fn command(&self, topic: &Topic) -> Command {
        match self {
            Incoming::Live(frame) => Command::Publish {
                topic: topic.clone(),
                frame: Arc::clone(frame),
            },
            Incoming::Ordered {
                frame,
                position,
                except,
            } => Command::Ordered(Box::new(Ordered {
                topic: topic.clone(),
                frame: Arc::clone(frame),
                position: *position,
                except: *except,
            })),
        }
    }
}
