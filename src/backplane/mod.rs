//! Topics across nodes: a Redis backplane (feature `redis`), so that a topic published on any
//! node reaches its subscribers on every node started with the same Redis.
//!
//! | file | what it does |
//! |---|---|
//! | `mod.rs` | the running [`Backplane`], the core's [`Relay`], and its threads' start |
//! | `spec.rs` | [`RedisBackplane`]: what the user configures (URL, key prefix, recovery) |
//! | `publisher.rs` | the publisher thread: a bounded queue, pipelined `PUBLISH` (or the history script) |
//! | `subscriber.rs` | the subscriber thread: one pub/sub connection, subscriptions kept in line with the loops', publications forwarded into them |
//! | `recovery.rs` | the history thread: answers `Context::subscribe_from` |
//! | `history.rs` | a topic's capped stream, its epoch and offsets, the two Lua scripts |
//! | `envelope.rs` | a publication on a channel: a text head, then the frame as encoded |
//! | `connect.rs` | connecting within `backplane_timeout`, the bounded backoff |
//!
//! **In**: publications made on this node enter [`Backplane::publish`] from whatever thread
//! made them (never waiting: a bounded queue, drops counted); the loops say what they subscribe
//! to and ask for recoveries ([`Relay::interest`], [`Relay::recover`]). **Out**: publications
//! of the other nodes — and, for recovery topics, of this one too, with their positions — enter
//! each loop as commands on its bounded queue, with a ring of its waker. Three threads of their
//! own talk to Redis, each on its own connection, and nothing else ever waits on it.
//!
//! Delivery is at most once, as with Socket.IO's Redis adapter and Centrifugo: what cannot reach
//! Redis, what a full queue drops and what a node misses while its subscription is down is lost,
//! and counted (`Stats::backplane_*`). Topics with recovery keep a capped history in Redis and
//! give every publication a position, so a client that reconnects can get exactly what it
//! missed, or hear that it cannot (see `history.rs`).

mod connect;
mod envelope;
mod history;
mod publisher;
mod recovery;
mod spec;
mod subscriber;

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crossbeam_channel::{Sender, TrySendError};

use crate::config::Config;
use crate::conn_id::ConnId;
use crate::dispatch::{Local, LoopLink, Relay};
use crate::metrics::{Metrics, add};
use crate::topic::{Position, Topic};
use connect::Backoff;
use history::{Epochs, Keys, Limits};
use publisher::{Outgoing, Publisher};
use recovery::HistoryReader;
use subscriber::{Control, Subscriber};

pub(crate) use spec::Recovery;
pub use spec::{BackplaneError, Framing, RedisBackplane};

/// A running backplane: the core's [`Relay`], and the threads that talk to Redis.
pub(crate) struct Backplane {
    node: u64,
    recovery: Recovery,
    publications: Sender<Outgoing>,
    control: Sender<Control>,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// How far the subscriber has come with what the loops subscribed to.
    alignment: Arc<Alignment>,
    /// Publications from Redis each loop dropped at its full queue.
    drops: Arc<Vec<std::sync::atomic::AtomicU64>>,
}

/// What the loops asked the subscriber thread to listen to, and how much of it is done: a
/// publication of a topic with a history waits (at most `backplane_timeout`) until the
/// subscriptions made before it are confirmed by Redis, so that this node hears it too.
#[derive(Debug, Default)]
pub(crate) struct Alignment {
    /// Interest changes sent (each has its number).
    pub requested: std::sync::atomic::AtomicU64,
    /// The number of the last change the subscriber has carried out and Redis confirmed.
    pub aligned: std::sync::atomic::AtomicU64,
    /// The topics whose channel Redis has confirmed, now: a publication of one of them needs
    /// no wait.
    pub confirmed: Mutex<HashSet<Topic>>,
}

impl Alignment {
    /// The interest change a publication of `topic` must wait for: none if nobody here needs to
    /// hear it, or if its channel is confirmed already.
    fn needed(&self, topic: &Topic, subscribed_here: bool) -> u64 {
        let requested = self.requested.load(Ordering::Acquire);
        if !subscribed_here {
            return 0;
        }
        match self.confirmed.lock() {
            Ok(confirmed) if confirmed.contains(topic) => 0,
            _ => requested,
        }
    }
}

impl fmt::Debug for Backplane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backplane")
            .field("node", &format_args!("{:016x}", self.node))
            .finish_non_exhaustive()
    }
}

impl Backplane {
    /// Starts the publisher, subscriber and history threads of `spec` for the loops of `links`.
    pub(crate) fn start(
        spec: RedisBackplane,
        config: &Config,
        links: &[LoopLink],
        metrics: &Arc<Metrics>,
    ) -> std::io::Result<Arc<Backplane>> {
        let common = Common {
            node: node_id(),
            keys: Keys {
                prefix: spec.prefix.clone(),
            },
            limits: Limits {
                max_len: config.history_max_len,
                max_age_ms: age_ms(config.history_max_age),
            },
            stop: Arc::new(AtomicBool::new(false)),
            alignment: Arc::new(Alignment::default()),
            metrics: Arc::clone(metrics),
            drops: Arc::new(links.iter().map(|_| Default::default()).collect()),
        };
        let (publications, queue) = crossbeam_channel::bounded(config.backplane_queue_capacity);
        let (control, control_rx) = crossbeam_channel::unbounded();
        let (history, requests) = crossbeam_channel::unbounded();
        let publisher = common.publisher(&spec, config, queue);
        let subscriber = common.subscriber(&spec, config, links, control_rx, history);
        let reader = common.reader(&spec, config, links, requests);
        let spawn = |name: &str, run: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(format!("wsreactor-backplane-{name}"))
                .spawn(run)
        };
        let threads = vec![
            spawn("pub", Box::new(move || publisher.run()))?,
            spawn("sub", Box::new(move || subscriber.run()))?,
            spawn("history", Box::new(move || reader.run()))?,
        ];
        log::info!("backplane: node {:016x} on {}", common.node, spec.shown);
        Ok(Arc::new(Backplane {
            node: common.node,
            recovery: spec.recovery,
            publications,
            control,
            metrics: common.metrics,
            stop: common.stop,
            threads: Mutex::new(threads),
            alignment: common.alignment,
            drops: common.drops,
        }))
    }

    /// Sends what is queued, then stops every thread (after the loops and the workers have
    /// stopped: their last publications go out too). True if none panicked.
    pub(crate) fn stop(&self) -> bool {
        self.stop.store(true, Ordering::Release);
        let threads = match self.threads.lock() {
            Ok(mut threads) => std::mem::take(&mut *threads),
            Err(_) => return false,
        };
        threads.into_iter().all(|thread| thread.join().is_ok())
    }
}

impl Drop for Backplane {
    /// A server that failed to start after its backplane did (or whose last handle is gone)
    /// leaves no thread behind: they see the flag within a tick and end.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// What the backplane's threads share.
struct Common {
    node: u64,
    keys: Keys,
    limits: Limits,
    stop: Arc<AtomicBool>,
    alignment: Arc<Alignment>,
    metrics: Arc<Metrics>,
    drops: Arc<Vec<std::sync::atomic::AtomicU64>>,
}

impl Common {
    fn publisher(
        &self,
        spec: &RedisBackplane,
        config: &Config,
        queue: crossbeam_channel::Receiver<Outgoing>,
    ) -> Publisher {
        Publisher {
            client: spec.client.clone(),
            queue,
            node: self.node,
            keys: self.keys.clone(),
            history: self.limits,
            timeout: config.backplane_timeout,
            backoff: Backoff::new(config.backplane_backoff_max),
            metrics: Arc::clone(&self.metrics),
            stop: Arc::clone(&self.stop),
            epochs: Epochs { state: self.node },
            alignment: Arc::clone(&self.alignment),
        }
    }

    fn subscriber(
        &self,
        spec: &RedisBackplane,
        config: &Config,
        links: &[LoopLink],
        control: crossbeam_channel::Receiver<Control>,
        history: Sender<recovery::Request>,
    ) -> Subscriber {
        Subscriber {
            client: spec.client.clone(),
            node: self.node,
            keys: self.keys.clone(),
            recovery: spec.recovery.clone(),
            timeout: config.backplane_timeout,
            backoff: Backoff::new(config.backplane_backoff_max),
            metrics: Arc::clone(&self.metrics),
            stop: Arc::clone(&self.stop),
            control,
            loops: links.to_vec(),
            history,
            routes: Default::default(),
            last: Default::default(),
            waiting: Vec::new(),
            dropped: Arc::clone(&self.drops),
            alignment: Arc::clone(&self.alignment),
            seen: 0,
        }
    }

    fn reader(
        &self,
        spec: &RedisBackplane,
        config: &Config,
        links: &[LoopLink],
        requests: crossbeam_channel::Receiver<recovery::Request>,
    ) -> HistoryReader {
        HistoryReader {
            client: spec.client.clone(),
            node: self.node,
            keys: self.keys.clone(),
            limits: self.limits,
            recovery: spec.recovery.clone(),
            timeout: config.backplane_timeout,
            metrics: Arc::clone(&self.metrics),
            stop: Arc::clone(&self.stop),
            requests,
            loops: links.to_vec(),
            max_bytes: config.max_outbound_bytes,
        }
    }
}

impl Relay for Backplane {
    fn publish(
        &self,
        topic: &Topic,
        frame: &Arc<[u8]>,
        except: Option<ConnId>,
        subscribed_here: bool,
    ) -> Local {
        let ordered = self.orders(topic);
        let outgoing = Outgoing {
            topic: topic.clone(),
            frame: Arc::clone(frame),
            except,
            ordered,
            after: self.alignment.needed(topic, subscribed_here),
        };
        match self.publications.try_send(outgoing) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                let before = self
                    .metrics
                    .backplane_publish_dropped
                    .load(Ordering::Relaxed);
                add(&self.metrics.backplane_publish_dropped, 1);
                if (before + 1).is_power_of_two() {
                    log::warn!(
                        "backplane: the publish queue is full (backplane_queue_capacity): {} \
                         publications not sent to other nodes so far",
                        before + 1
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => add(&self.metrics.backplane_publish_failed, 1),
        }
        if ordered { Local::Ordered } else { Local::Now }
    }

    fn loop_drops(&self) -> Vec<u64> {
        self.drops
            .iter()
            .map(|d| d.load(Ordering::Relaxed))
            .collect()
    }

    fn orders(&self, topic: &Topic) -> bool {
        self.recovery.framing(&topic.to_string()).is_some()
    }

    fn interest(&self, event_loop: usize, topic: &Topic, subscribed: bool) {
        let topic = topic.clone();
        // Numbered under the channel's order: the number a publication reads afterwards covers
        // this change.
        let number = self.alignment.requested.fetch_add(1, Ordering::AcqRel) + 1;
        let _ = self.control.send(Control::Interest {
            event_loop,
            topic,
            subscribed,
            number,
        });
    }

    fn recover(&self, conn: ConnId, topic: &Topic, since: Position) -> bool {
        if self.recovery.framing(&topic.to_string()).is_none() {
            return false;
        }
        let topic = topic.clone();
        self.control
            .send(Control::Recover { conn, topic, since })
            .is_ok()
    }
}

/// `age` in milliseconds for Redis; 0 (no expiry) for a century or more.
fn age_ms(age: Duration) -> u64 {
    if age >= Duration::from_secs(100 * 365 * 24 * 3600) {
        0
    } else {
        u64::try_from(age.as_millis()).unwrap_or(0).max(1)
    }
}

/// A random id for this node (this process's backplane): it tells its own publications apart.
fn node_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    hasher.finish().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_milliseconds_for_redis() {
        assert_eq!(age_ms(Duration::MAX), 0, "forever: no expiry");
        assert_eq!(age_ms(Duration::from_micros(10)), 1);
        assert_eq!(age_ms(Duration::from_secs(600)), 600_000);
        assert_ne!(node_id(), 0);
    }
}
