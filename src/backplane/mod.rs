//! Topics across nodes: a Redis backplane (feature `redis`), so that a topic published on any
//! node reaches its subscribers on every node started with the same Redis.
//!
//! | file | what it does |
//! |---|---|
//! | `mod.rs` | [`RedisBackplane`] (what the user configures), and the running [`Backplane`], the core's [`Relay`] |
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
mod subscriber;

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
use crate::ws::encode_shared_frame;
use connect::Backoff;
use history::{Epochs, Keys, Limits};
use publisher::{Outgoing, Publisher};
use recovery::HistoryReader;
use subscriber::{Control, Subscriber};

pub use history::Unrecoverable;

/// A Redis to share topics with the other nodes started with the same one:
/// [`ServerBuilder::backplane`](crate::ServerBuilder::backplane).
///
/// ```no_run
/// # use wsreactor::{RedisBackplane, Server, Framing};
/// let backplane = RedisBackplane::new("redis://127.0.0.1:6379")?
///     .recover("room/", Framing::PositionFirst);
/// # let handler = |ctx: &mut wsreactor::Context<'_>, m: wsreactor::Message| ctx.send(m);
/// let server = Server::builder().backplane(backplane).build(handler)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// The URL is `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]` (`redis://:secret@10.0.0.5`).
/// `rediss://` (TLS) is refused: see docs/scaling.md. The server starts whether or not Redis
/// answers; it connects (and reconnects) in the background, and its local topics work
/// meanwhile.
#[derive(Clone)]
pub struct RedisBackplane {
    client: redis::Client,
    /// The URL without its password, for the log.
    shown: String,
    prefix: String,
    recovery: Recovery,
}

/// How the frames of a recovery topic reach its subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// As they were published: the client cannot know their positions (the application
    /// frames them some other way, or only uses recovery through the server).
    AsPublished,
    /// Each payload begins with its position's text and a space (`9f86d081884c7d65-42 `),
    /// text and binary frames alike: the client keeps the last one it saw, and gives it back
    /// when it reconnects ([`Position`]'s `FromStr` reads it). The frame is made once per node
    /// and shared by the node's subscribers.
    PositionFirst,
}

/// Why a [`RedisBackplane`] cannot be made.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackplaneError {
    /// The URL is not a Redis URL this build can use; the text says why.
    Url(String),
}

impl fmt::Display for BackplaneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackplaneError::Url(why) => write!(f, "bad Redis URL: {why}"),
        }
    }
}

impl std::error::Error for BackplaneError {}

impl fmt::Debug for RedisBackplane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackplane")
            .field("url", &self.shown)
            .field("prefix", &self.prefix)
            .field("recovery", &self.recovery)
            .finish()
    }
}

impl RedisBackplane {
    /// The Redis at `url`; nothing is connected until the server starts.
    pub fn new(url: &str) -> Result<Self, BackplaneError> {
        if url.starts_with("rediss://") {
            return Err(BackplaneError::Url(
                "rediss:// (TLS to Redis) is not supported by this build: see docs/scaling.md"
                    .into(),
            ));
        }
        if !url.starts_with("redis://") {
            return Err(BackplaneError::Url(format!(
                "{:?} does not start with redis://",
                shown(url)
            )));
        }
        let client =
            redis::Client::open(url).map_err(|err| BackplaneError::Url(err.to_string()))?;
        Ok(RedisBackplane {
            client,
            shown: shown(url),
            prefix: "wsreactor:".to_owned(),
            recovery: Recovery::default(),
        })
    }

    /// Names every channel and key under `prefix` (default `wsreactor:`): servers with another
    /// prefix share the Redis but no topic.
    pub fn key_prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.to_owned();
        self
    }

    /// Keeps a history of every topic whose name starts with `prefix` (`""`: every topic), and
    /// delivers its publications in one order on every node — the publishing node too, once
    /// Redis has given each its position. A connection can then be subscribed from a position
    /// ([`Context::subscribe_from`](crate::Context::subscribe_from)). Each call adds a prefix;
    /// the first that matches a topic decides its framing.
    pub fn recover(mut self, prefix: &str, framing: Framing) -> Self {
        self.recovery.prefixes.push((prefix.to_owned(), framing));
        self
    }
}

/// `url` without its password.
fn shown(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// Which topics keep a history, and how their frames are framed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Recovery {
    prefixes: Vec<(String, Framing)>,
}

impl Recovery {
    /// How `topic` is framed, if it keeps a history.
    fn framing(&self, topic: &str) -> Option<Framing> {
        self.prefixes
            .iter()
            .find(|(prefix, _)| topic.starts_with(prefix.as_str()))
            .map(|(_, framing)| *framing)
    }

    /// `frame` as the subscribers of `topic` get it at `position`.
    pub(crate) fn frame(&self, topic: &Topic, position: Position, frame: Arc<[u8]>) -> Arc<[u8]> {
        if self.framing(&topic.to_string()) != Some(Framing::PositionFirst) {
            return frame;
        }
        let Some((opcode, payload)) = envelope::payload(&frame) else {
            return frame;
        };
        let mut prefixed = format!("{position} ").into_bytes();
        prefixed.extend_from_slice(payload);
        encode_shared_frame(opcode, &prefixed)
    }
}

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
        let node = node_id();
        let keys = Keys {
            prefix: spec.prefix.clone(),
        };
        let limits = Limits {
            max_len: config.history_max_len,
            max_age_ms: age_ms(config.history_max_age),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let alignment = Arc::new(Alignment::default());
        let (publications, queue) = crossbeam_channel::bounded(config.backplane_queue_capacity);
        let (control, control_rx) = crossbeam_channel::unbounded();
        let (history, requests) = crossbeam_channel::unbounded();
        let publisher = Publisher {
            client: spec.client.clone(),
            queue,
            node,
            keys: keys.clone(),
            history: limits,
            timeout: config.backplane_timeout,
            backoff: Backoff::new(config.backplane_backoff_max),
            metrics: Arc::clone(metrics),
            stop: Arc::clone(&stop),
            epochs: Epochs { state: node },
            alignment: Arc::clone(&alignment),
        };
        let subscriber = Subscriber {
            client: spec.client.clone(),
            node,
            keys: keys.clone(),
            recovery: spec.recovery.clone(),
            timeout: config.backplane_timeout,
            backoff: Backoff::new(config.backplane_backoff_max),
            metrics: Arc::clone(metrics),
            stop: Arc::clone(&stop),
            control: control_rx,
            loops: links.to_vec(),
            history,
            routes: Default::default(),
            last: Default::default(),
            waiting: Vec::new(),
            dropped: vec![0; links.len()],
            alignment: Arc::clone(&alignment),
            seen: 0,
        };
        let reader = HistoryReader {
            client: spec.client,
            node,
            keys,
            limits,
            recovery: spec.recovery.clone(),
            timeout: config.backplane_timeout,
            metrics: Arc::clone(metrics),
            stop: Arc::clone(&stop),
            requests,
            loops: links.to_vec(),
            max_bytes: config.max_outbound_bytes,
        };
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
        log::info!("backplane: node {node:016x} on {}", spec.shown);
        Ok(Arc::new(Backplane {
            node,
            recovery: spec.recovery,
            publications,
            control,
            metrics: Arc::clone(metrics),
            stop,
            threads: Mutex::new(threads),
            alignment,
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

impl Relay for Backplane {
    fn publish(&self, topic: &Topic, frame: &Arc<[u8]>, except: Option<ConnId>) -> Local {
        let ordered = self.orders(topic);
        let outgoing = Outgoing {
            topic: topic.clone(),
            frame: Arc::clone(frame),
            except,
            ordered,
            after: self.alignment.requested.load(Ordering::Acquire),
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
    use crate::ws::OpCode;

    #[test]
    fn urls_are_checked_and_passwords_never_shown() {
        let backplane = RedisBackplane::new("redis://:secret@127.0.0.1:6379/2").expect("valid");
        assert!(
            !format!("{backplane:?}").contains("secret"),
            "{backplane:?}"
        );
        assert_eq!(shown("redis://u:pw@h:1"), "redis://***@h:1");
        for bad in ["rediss://h", "http://h", "redis://", "h:6379"] {
            assert!(RedisBackplane::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_first_matching_prefix_decides_and_frames_get_their_position() {
        let recovery = RedisBackplane::new("redis://h")
            .expect("valid")
            .recover("room/", Framing::PositionFirst)
            .recover("", Framing::AsPublished)
            .recovery;
        assert_eq!(recovery.framing("room/1"), Some(Framing::PositionFirst));
        assert_eq!(recovery.framing("other"), Some(Framing::AsPublished));
        assert_eq!(Recovery::default().framing("room/1"), None);
        let frame = encode_shared_frame(OpCode::Text, b"hi");
        let position = Position {
            epoch: 1,
            offset: 2,
        };
        let topic = Topic::new("room/1").expect("short");
        let framed = recovery.frame(&topic, position, Arc::clone(&frame));
        assert_eq!(&*framed, b"\x81\x150000000000000001-2 hi");
        let other = Topic::new("other").expect("short");
        assert!(Arc::ptr_eq(
            &recovery.frame(&other, position, Arc::clone(&frame)),
            &frame
        ));
        assert_eq!(age_ms(Duration::MAX), 0);
        assert_eq!(age_ms(Duration::from_micros(10)), 1);
    }
}
