//! [`ServerHandle`]: the thread-safe way into a running server from anywhere.
//!
//! A handle encodes a message into frame bytes on the caller's thread, puts a `Command` on the
//! owning loop's bounded command queue (on every loop's, for a broadcast or a publication to a
//! topic, each holding a reference to the same encoded frame), and rings that loop's waker. The loop applies commands
//! between readiness events: a send to a [`ConnId`] whose generation no longer matches is dropped
//! and counted, never delivered to whoever now holds that slab slot.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{Receiver, TrySendError};

use crate::conn_id::ConnId;
use crate::dispatch::job::Job;
use crate::dispatch::link::{Command, LoopLink, Push, on_loop_thread};
use crate::dispatch::relay::{Local, Relay};
use crate::error::SendError;
use crate::metrics::{Metrics, Stats, add};
use crate::topic::Topic;
use crate::ws::{CloseCode, CloseFrame, Message, encode_frame, encode_shared_frame};

/// What every handle shares with the loops and the workers.
#[derive(Debug)]
pub(crate) struct Shared {
    /// One link per event loop, indexed by [`ConnId::event_loop`].
    pub loops: Vec<LoopLink>,
    pub metrics: Arc<Metrics>,
    /// Kept only to read the job queue's depth for [`Stats`].
    pub jobs: Receiver<Job>,
    /// Read by every loop at each turn.
    pub shutdown: Arc<AtomicBool>,
    pub local_addr: SocketAddr,
    /// What new TLS connections get, swapped by `reload_tls`.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub tls: SharedTls,
    /// The backplane that carries publications to the other nodes, if there is one.
    pub relay: Option<Arc<dyn Relay>>,
}

/// The TLS acceptor a server shares between its loops and handles (`None`: plain TCP).
#[cfg(feature = "tls")]
pub(crate) type SharedTls = Option<Arc<crate::tls::TlsAcceptor>>;
/// The TLS acceptor a server shares between its loops and handles: never one without the
/// `tls` feature.
#[cfg(not(feature = "tls"))]
pub(crate) type SharedTls = Option<Arc<NoTls>>;

/// What stands for the TLS acceptor in a build without TLS: a type with no values.
#[cfg(not(feature = "tls"))]
#[derive(Debug)]
pub(crate) enum NoTls {}

/// A cheap, cloneable, thread-safe handle to a running server: push messages to connections,
/// broadcast, publish to topics, close, read [`Stats`], shut down.
///
/// Sends are asynchronous: `Ok` means the loop has the message, not that the client has read it.
#[derive(Debug, Clone)]
pub struct ServerHandle {
    shared: Arc<Shared>,
}

impl ServerHandle {
    pub(crate) fn new(shared: Shared) -> Self {
        ServerHandle {
            shared: Arc::new(shared),
        }
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    pub(crate) fn shutdown_requested(&self) -> bool {
        self.shared.shutdown.load(Ordering::Acquire)
    }

    /// Loads a new TLS configuration (a renewed certificate, say) for the connections accepted
    /// from now on; those already open keep theirs. Fails with
    /// [`TlsError::NotEnabled`](crate::tls::TlsError::NotEnabled) on a server built without
    /// [`ServerBuilder::tls`](crate::ServerBuilder::tls).
    #[cfg(feature = "tls")]
    pub fn reload_tls(&self, tls: &crate::tls::TlsConfig) -> Result<(), crate::tls::TlsError> {
        let acceptor = self
            .shared
            .tls
            .as_ref()
            .ok_or(crate::tls::TlsError::NotEnabled)?;
        acceptor.reload(tls);
        log::info!("TLS configuration reloaded for new connections");
        Ok(())
    }

    /// The link to the loop that owns `conn`.
    pub(crate) fn link(&self, conn: ConnId) -> &LoopLink {
        // Every ConnId is made by a loop of this server, so the index is in range; fall back to
        // loop 0 rather than panic on an id forged by hand (it is then dropped as stale).
        let links = &self.shared.loops;
        links.get(conn.event_loop()).unwrap_or(&links[0])
    }

    /// Sends `message` to the connection `conn`, waiting for room in the command queue if it is
    /// full (on an event-loop thread, in an inline handler, it fails with [`SendError::Full`]
    /// instead: that queue is drained by the very thread that would wait). A message for a
    /// connection that has closed is dropped by the loop (and counted in
    /// [`Stats::stale_replies_dropped`]).
    pub fn send(&self, conn: ConnId, message: impl Into<Message>) -> Result<(), SendError> {
        let bytes = encode(message.into());
        let push = Push::Send(bytes);
        self.submit(self.link(conn), Command::Push { conn, push }, true)
    }

    /// Like [`send`](Self::send), but fails with [`SendError::Full`] instead of waiting.
    pub fn try_send(&self, conn: ConnId, message: impl Into<Message>) -> Result<(), SendError> {
        let bytes = encode(message.into());
        let push = Push::Send(bytes);
        self.submit(self.link(conn), Command::Push { conn, push }, false)
    }

    /// Sends `message` to every open WebSocket connection: encoded once, uncompressed, and
    /// shared by every connection of every loop (a frame of
    /// 1 KiB or more is queued by reference, never copied per connection).
    pub fn broadcast(&self, message: impl Into<Message>) -> Result<(), SendError> {
        let message = message.into();
        let bytes = encode_shared_frame(message.opcode(), message.as_bytes());
        for link in &self.shared.loops {
            let bytes = Arc::clone(&bytes);
            self.submit(link, Command::Broadcast { bytes }, true)?;
        }
        Ok(())
    }

    /// Sends `message` to every connection subscribed to `topic`
    /// ([`Context::subscribe`](crate::Context::subscribe)), on every event loop, waiting for
    /// room in the command queues as [`send`](Self::send) does. Encoded once, uncompressed, and
    /// shared by every subscriber (a frame of 1 KiB or more is queued by reference, never copied
    /// per subscriber); a subscriber whose queued output would pass twice
    /// [`Config::max_outbound_bytes`](crate::Config::max_outbound_bytes) is dropped with `1008`.
    ///
    /// Publications from one thread reach each subscriber in the order they were made, and in
    /// order with that thread's [`send`](Self::send)s to the same connection (both go through
    /// its loop's one command queue). A subscription reaches the publications its loop handles
    /// after it took effect; with a publication already in flight, it may or may not. A topic
    /// nobody subscribes to costs each loop a map lookup. `Err` if the server has stopped, or
    /// [`SendError::TopicTooLong`].
    ///
    /// With a backplane ([`ServerBuilder::backplane`](crate::ServerBuilder), feature `redis`)
    /// it also goes to the other nodes, without waiting: at most once, a loss counted in
    /// `Stats::backplane_*`, never an `Err` here. A topic with a history is delivered on this
    /// node too only when it comes back from Redis with its position.
    pub fn publish(&self, topic: &str, message: impl Into<Message>) -> Result<(), SendError> {
        self.publish_waiting(topic, &message.into(), true)
    }

    /// Like [`publish`](Self::publish), but fails with [`SendError::Full`] instead of waiting
    /// when a loop's command queue is full (the loops before it in the server's order have the
    /// publication then; the others do not).
    pub fn try_publish(&self, topic: &str, message: impl Into<Message>) -> Result<(), SendError> {
        self.publish_waiting(topic, &message.into(), false)
    }

    fn publish_waiting(&self, topic: &str, message: &Message, wait: bool) -> Result<(), SendError> {
        let topic = Topic::new(topic).map_err(|_| SendError::TopicTooLong)?;
        let frame = encode_shared_frame(message.opcode(), message.as_bytes());
        if self.shutdown_requested() {
            return Err(SendError::Stopped);
        }
        if self.relay_publish(&topic, &frame, None) == Local::Ordered {
            // Delivered here too when it comes back from the backplane, in the topic's order.
            add(&self.shared.metrics.publishes, 1);
            return Ok(());
        }
        for (i, link) in self.shared.loops.iter().enumerate() {
            let (topic, frame) = (topic.clone(), Arc::clone(&frame));
            self.submit(link, Command::Publish { topic, frame }, wait)?;
            if i == 0 {
                add(&self.shared.metrics.publishes, 1);
            }
        }
        Ok(())
    }

    /// Does the backplane keep a history of `topic` (and deliver it in one order everywhere)?
    pub(crate) fn relay_orders(&self, topic: &Topic) -> bool {
        self.shared
            .relay
            .as_ref()
            .is_some_and(|relay| relay.orders(topic))
    }

    /// Offers a publication made on this node to the backplane, if there is one: how this node
    /// delivers it ([`Local::Now`] without a backplane).
    pub(crate) fn relay_publish(
        &self,
        topic: &Topic,
        frame: &Arc<[u8]>,
        except: Option<ConnId>,
    ) -> Local {
        match &self.shared.relay {
            Some(relay) => relay.publish(topic, frame, except, false),
            None => Local::Now,
        }
    }

    /// Starts the close handshake with `conn` (its `on_close` follows), waiting for room in the
    /// command queue if it is full (on an event-loop thread it fails with [`SendError::Full`]
    /// instead, as [`send`](Self::send) does; [`try_close`](Self::try_close) never waits).
    pub fn close(&self, conn: ConnId, code: CloseCode, reason: &str) -> Result<(), SendError> {
        let frame = CloseFrame {
            code,
            reason: reason.to_owned(),
        };
        let push = Push::Close(frame);
        self.submit(self.link(conn), Command::Push { conn, push }, true)
    }

    /// Like [`close`](Self::close), but fails with [`SendError::Full`] instead of waiting when
    /// the loop's command queue is full (a caller that must not block: an event loop of its
    /// own, a timer thread; try again later, or drop the connection's other pushes first).
    pub fn try_close(&self, conn: ConnId, code: CloseCode, reason: &str) -> Result<(), SendError> {
        let frame = CloseFrame {
            code,
            reason: reason.to_owned(),
        };
        let push = Push::Close(frame);
        self.submit(self.link(conn), Command::Push { conn, push }, false)
    }

    /// Starts a graceful shutdown and returns at once: the loops stop accepting, send close
    /// `1001` to every WebSocket, wait for the close handshakes up to
    /// [`Config::shutdown_timeout`](crate::Config::shutdown_timeout), let queued jobs finish,
    /// and end every thread. Use [`Server::join`](crate::Server::join) to wait for that.
    pub fn shutdown(&self) {
        self.shared.shutdown.store(true, Ordering::Release);
        for link in &self.shared.loops {
            link.waker.wake();
        }
    }

    /// Publications from the backplane (feature `redis`) each event loop dropped because its
    /// command queue was full, by loop (their sum is `Stats::backplane_delivery_dropped`);
    /// empty without a backplane. Also in the Prometheus text, as
    /// `wsreactor_backplane_loop_drops_total{loop="N"}`.
    pub fn backplane_drops_per_loop(&self) -> Vec<u64> {
        self.shared
            .relay
            .as_ref()
            .map_or_else(Vec::new, |relay| relay.loop_drops())
    }

    /// A copy of the server's counters now.
    pub fn stats(&self) -> Stats {
        let mut stats = self.shared.metrics.snapshot();
        stats.job_queue_depth = self.shared.jobs.len() as u64;
        stats
    }

    /// The address the server listens on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    fn submit(&self, link: &LoopLink, command: Command, wait: bool) -> Result<(), SendError> {
        if self.shutdown_requested() {
            return Err(SendError::Stopped);
        }
        if wait && !on_loop_thread() {
            link.commands
                .send(command)
                .map_err(|_| SendError::Stopped)?;
        } else {
            link.commands.try_send(command).map_err(|err| match err {
                TrySendError::Full(_) => SendError::Full,
                TrySendError::Disconnected(_) => SendError::Stopped,
            })?;
        }
        link.waker.wake();
        Ok(())
    }
}

fn encode(message: Message) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(message.len() + 10);
    encode_frame(&mut bytes, message.opcode(), message.as_bytes());
    bytes
}
