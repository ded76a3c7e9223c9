//! Starting and stopping a server: [`ServerBuilder`] → [`Server`] → [`Server::join`].
//!
//! `build` validates the [`Config`], binds one listening socket per event loop (with `socket2`,
//! for the backlog and `SO_REUSEPORT`), creates each loop's poller, waker and channels, starts
//! the worker threads and the event-loop threads, and returns at once. The [`Server`] owns those
//! threads; a [`ServerHandle`] (cloneable) talks to them. `build_driven` makes the same loop
//! without any thread, for the caller to drive (`driven.rs`).

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread::{self, JoinHandle};

use mio::net::TcpListener;
use mio::{Poll, Waker};

use crate::config::Config;
use crate::dispatch::{Executor, Job, LoopLink, LoopWaker, Relay, SharedRunner, SharedTls};
use crate::dispatch::{ServerHandle, Shared, WorkerPool};
use crate::driven::DrivenServer;
use crate::error::Error;
use crate::handler::Handler;
use crate::handler::call::{Carried, Local};
use crate::metrics::Metrics;
use crate::netpoller::{EventLoop, Forwarder, LoopParts, WAKER};
use crate::runner::HandlerRunner;

mod listen;

use listen::{listen, listen_all};

/// The running backplane, or a type with no values without the `redis` feature.
#[cfg(feature = "redis")]
use crate::backplane::Backplane;
#[cfg(not(feature = "redis"))]
#[derive(Debug)]
enum Backplane {}
#[cfg(not(feature = "redis"))]
impl Backplane {
    fn stop(&self) -> bool {
        match *self {}
    }
}
/// The backplane as the core sees it.
#[cfg(feature = "redis")]
fn relay_of(backplane: &Option<Arc<Backplane>>) -> Option<Arc<dyn Relay>> {
    backplane
        .clone()
        .map(|backplane| backplane as Arc<dyn Relay>)
}
#[cfg(not(feature = "redis"))]
fn relay_of(_: &Option<Arc<Backplane>>) -> Option<Arc<dyn Relay>> {
    None
}

/// Collects the configuration, then [`build`](Self::build)s and starts a server.
#[derive(Debug, Clone, Default)]
pub struct ServerBuilder {
    config: Config,
    /// TLS on the port (`wss://`, `https://`), when set.
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::TlsConfig>,
    /// The Redis the topics are shared through, when set (feature `redis`).
    #[cfg(feature = "redis")]
    backplane: Option<crate::backplane::RedisBackplane>,
}

impl ServerBuilder {
    /// A builder with [`Config::default`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the whole configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Changes the configuration in place: `.configure(|c| c.max_connections = 100)`.
    pub fn configure(mut self, change: impl FnOnce(&mut Config)) -> Self {
        change(&mut self.config);
        self
    }

    /// The address to listen on ([`Config::addr`]); port 0 lets the OS pick.
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.config.addr = addr;
        self
    }

    /// The number of worker threads ([`Config::workers`]).
    pub fn workers(mut self, workers: usize) -> Self {
        self.config.workers = workers;
        self
    }

    /// Serves TLS on the port (`https://` and `wss://`; plain `http://` is then refused): see
    /// [`TlsConfig`](crate::tls::TlsConfig). Feature `tls`.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::tls::TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Shares topics with every other node started with the same Redis: what is published on
    /// any of them reaches the subscribers of all (feature `redis`; see
    /// [`RedisBackplane`](crate::RedisBackplane), and docs/architecture.md, "The backplane").
    /// Not for [`build_driven`](Self::build_driven), which ignores it.
    #[cfg(feature = "redis")]
    pub fn backplane(mut self, backplane: crate::backplane::RedisBackplane) -> Self {
        self.backplane = Some(backplane);
        self
    }

    /// Starts the backplane's threads, if there is one.
    fn start_backplane(
        &mut self,
        config: &Config,
        links: &[LoopLink],
        metrics: &Arc<Metrics>,
    ) -> Result<Option<Arc<Backplane>>, Error> {
        #[cfg(feature = "redis")]
        if let Some(spec) = self.backplane.take() {
            return Ok(Some(Backplane::start(spec, config, links, metrics)?));
        }
        let _ = (config, links, metrics);
        Ok(None)
    }

    /// The TLS acceptor the loops and handles share, if TLS is on.
    fn tls_acceptor(&self) -> SharedTls {
        #[cfg(feature = "tls")]
        return self
            .tls
            .as_ref()
            .map(|tls| Arc::new(crate::tls::TlsAcceptor::new(tls)));
        #[cfg(not(feature = "tls"))]
        None
    }

    /// Validates the configuration, binds, starts the threads, and returns the running server.
    /// Its handler is shared by every thread, and each connection's session travels to the
    /// worker that runs its next call: `Send + Sync`, and `Send` (a handler or a session that
    /// is not can be driven: [`build_driven`](Self::build_driven)).
    pub fn build<H>(mut self, handler: H) -> Result<Server, Error>
    where
        H: Handler + Send + Sync,
        H::Session: Send,
    {
        let tls = self.tls_acceptor();
        let config = Arc::new(std::mem::take(&mut self.config));
        config.validate()?;
        let (listeners, local_addr) = listen_all(&config)?;
        let metrics = Arc::new(Metrics::default());
        let shutdown = Arc::new(AtomicBool::new(false));
        let (job_tx, job_rx) = crossbeam_channel::bounded(config.job_queue_capacity);
        let (links, loops) = wire_loops(listeners, &config, &tls)?;
        let backplane = self.start_backplane(&config, &links, &metrics)?;
        let relay = relay_of(&backplane);
        let forwarders = forwarders(&links, &config, &relay);
        let handle = ServerHandle::new(Shared {
            loops: links,
            metrics: Arc::clone(&metrics),
            jobs: job_rx.clone(),
            shutdown: Arc::clone(&shutdown),
            local_addr,
            tls: tls.clone(),
            relay,
        });
        let runner: SharedRunner = Arc::new(HandlerRunner::new(
            handler,
            handle.clone(),
            &config,
            Carried,
        ));
        let worker_count = if config.inline_handlers {
            0
        } else {
            config.workers
        };
        let workers = WorkerPool::spawn(worker_count, job_rx, Arc::clone(&runner), handle.clone())?;
        let mut event_loops = Vec::with_capacity(loops.len());
        for (index, (wired, forwarder)) in loops.into_iter().zip(forwarders).enumerate() {
            let jobs = match config.inline_handlers {
                true => Jobs::Inline(Arc::clone(&runner)),
                false => Jobs::Pool(job_tx.clone(), Arc::clone(&runner)),
            };
            let parts = (index, jobs, forwarder, &shutdown, &config, &metrics);
            event_loops.push(wired.spawn(parts)?);
        }
        // Only the loops hold job senders now: when the last loop ends, the workers drain the
        // queue and exit.
        drop(job_tx);
        log_start(&config, local_addr);
        Ok(Server {
            handle,
            event_loops,
            workers,
            backplane,
        })
    }
}

/// Each loop's forwarder of publications to the other loops (and, with a backplane, to it).
fn forwarders(
    links: &[LoopLink],
    config: &Config,
    relay: &Option<Arc<dyn Relay>>,
) -> Vec<Forwarder> {
    (0..links.len())
        .map(|index| {
            Forwarder::new(index, links, config.command_queue_capacity).with_relay(relay.clone())
        })
        .collect()
}

impl ServerBuilder {
    /// Validates the configuration and binds, but starts no thread: the returned
    /// [`DrivenServer`] runs on the caller's thread, one [`turn`](DrivenServer::turn) at a time,
    /// with its handler called inline (see [`DrivenServer`] for when to choose it). The handler
    /// and its sessions are only ever used on that thread, so neither needs to be `Send`:
    /// state in an `Rc<RefCell<_>>` can be shared with the caller's own loop. Of the
    /// configuration, `event_loops` is taken as 1, `inline_handlers` as `true` and `workers` is
    /// not used; everything else applies.
    pub fn build_driven(self, handler: impl Handler) -> Result<DrivenServer, Error> {
        let tls = self.tls_acceptor();
        let mut config = self.config;
        config.event_loops = 1;
        config.inline_handlers = true;
        let config = Arc::new(config);
        config.validate()?;
        let listener = listen(config.addr, &config, false)?;
        let local_addr = listener.local_addr()?;
        let metrics = Arc::new(Metrics::default());
        let shutdown = Arc::new(AtomicBool::new(false));
        // No worker takes jobs; the receiver only lets the stats read a queue depth of 0.
        let (_, job_rx) = crossbeam_channel::bounded(1);
        let (links, mut loops) = wire_loops(vec![listener], &config, &tls)?;
        let handle = ServerHandle::new(Shared {
            loops: links,
            metrics: Arc::clone(&metrics),
            jobs: job_rx,
            shutdown: Arc::clone(&shutdown),
            local_addr,
            tls: tls.clone(),
            relay: None,
        });
        // On this thread only: the handler and its sessions need not be `Send`.
        let runner = HandlerRunner::new(handler, handle.clone(), &config, Local::default());
        let wired = loops
            .pop()
            .ok_or(Error::InvalidConfig("no event loop".into()))?;
        let executor = Executor::Local(Rc::new(runner));
        let forwarder = Forwarder::default(); // one loop: nobody to forward to
        let event_loop = wired.start(0, executor, forwarder, &shutdown, &config, &metrics)?;
        // The thread that builds it usually drives it: its pushes must not wait on itself.
        crate::dispatch::mark_loop_thread();
        log::info!("listening on {local_addr} (driven by the caller's thread)");
        Ok(DrivenServer::new(event_loop, handle))
    }
}

/// One loop's poller, listener and channels, made before the handle that links to them.
struct WiredLoop {
    poll: Poll,
    listener: TcpListener,
    replies: crossbeam_channel::Receiver<crate::dispatch::Returned>,
    commands: crossbeam_channel::Receiver<crate::dispatch::Command>,
    waker: Arc<LoopWaker>,
    tls: SharedTls,
}

/// Where a threaded loop's jobs go, in a form its thread can take along (the loop and its
/// executor are made on that thread).
enum Jobs {
    Pool(crossbeam_channel::Sender<Job>, SharedRunner),
    Inline(SharedRunner),
}

/// What a threaded loop starts with: its number, its jobs' way, its forwarder, and the shared
/// shutdown flag, configuration and counters.
type LoopStart<'a> = (
    usize,
    Jobs,
    Forwarder,
    &'a Arc<AtomicBool>,
    &'a Arc<Config>,
    &'a Arc<Metrics>,
);

impl WiredLoop {
    /// Starts the loop's thread (`wsreactor-loop-N`) and makes the loop there, where it stays:
    /// an executor may run the handler inline. Returns once the loop is made, so an error in
    /// making it is this call's.
    fn spawn(self, start: LoopStart<'_>) -> Result<JoinHandle<()>, Error> {
        let (index, jobs, forwarder, shutdown, config, metrics) = start;
        let shared = (
            Arc::clone(shutdown),
            Arc::clone(config),
            Arc::clone(metrics),
        );
        let (made, ready) = std::sync::mpsc::sync_channel(1);
        let thread = thread::Builder::new()
            .name(format!("wsreactor-loop-{index}"))
            .spawn(move || {
                let (shutdown, config, metrics) = shared;
                let executor = match jobs {
                    Jobs::Pool(jobs, runner) => Executor::Pool(jobs, runner),
                    Jobs::Inline(runner) => Executor::Inline(runner),
                };
                match self.start(index, executor, forwarder, &shutdown, &config, &metrics) {
                    Ok(event_loop) => {
                        let _ = made.send(Ok(()));
                        event_loop.run();
                    }
                    Err(err) => drop(made.send(Err(err))),
                }
            })?;
        match ready.recv() {
            Ok(Ok(())) => Ok(thread),
            Ok(Err(err)) => {
                let _ = thread.join();
                Err(err)
            }
            Err(_) => Err(Error::Io(std::io::Error::other(
                "an event loop thread ended before its loop was made",
            ))),
        }
    }

    /// The event loop, ready to run, sending its jobs to `executor`.
    fn start(
        self,
        index: usize,
        executor: Executor,
        forwarder: Forwarder,
        shutdown: &Arc<AtomicBool>,
        config: &Arc<Config>,
        metrics: &Arc<Metrics>,
    ) -> Result<EventLoop, Error> {
        let parts = LoopParts {
            poll: self.poll,
            listener: self.listener,
            executor,
            replies: self.replies,
            commands: self.commands,
            waker: self.waker,
            shutdown: Arc::clone(shutdown),
            forwarder,
            tls: self.tls,
        };
        Ok(EventLoop::new(
            index,
            Arc::clone(config),
            Arc::clone(metrics),
            parts,
        )?)
    }
}

/// A poller, waker and channels for each listener: the links handles use, and the loops' ends.
fn wire_loops(
    listeners: Vec<TcpListener>,
    config: &Config,
    tls: &SharedTls,
) -> Result<(Vec<LoopLink>, Vec<WiredLoop>), Error> {
    let mut links = Vec::with_capacity(listeners.len());
    let mut loops = Vec::with_capacity(listeners.len());
    for listener in listeners {
        let poll = Poll::new()?;
        let waker = Arc::new(LoopWaker::new(Waker::new(poll.registry(), WAKER)?));
        // Unbounded, yet bounded in practice: see `LoopLink::replies`.
        let (reply_tx, replies) = crossbeam_channel::unbounded();
        let (command_tx, commands) = crossbeam_channel::bounded(config.command_queue_capacity);
        links.push(LoopLink {
            commands: command_tx,
            replies: reply_tx,
            waker: Arc::clone(&waker),
        });
        loops.push(WiredLoop {
            poll,
            listener,
            replies,
            commands,
            waker,
            tls: tls.clone(),
        });
    }
    Ok((links, loops))
}

/// A running server: its event-loop threads (one per CPU by default) and its pool of worker
/// threads (none with inline handlers).
///
/// Dropping a `Server` does not stop it; call [`shutdown`](Self::shutdown) (or
/// [`ServerHandle::shutdown`] from anywhere, then [`join`](Self::join)).
#[derive(Debug)]
pub struct Server {
    handle: ServerHandle,
    event_loops: Vec<JoinHandle<()>>,
    workers: WorkerPool,
    /// The backplane's threads, stopped after the loops and the workers.
    backplane: Option<Arc<Backplane>>,
}

impl Server {
    /// A builder with the default configuration.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::new()
    }

    /// A handle to push messages, read stats or shut down, from any thread.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// Starts a graceful shutdown and waits for it to finish.
    pub fn shutdown(self) -> Result<(), Error> {
        self.handle.shutdown();
        self.join()
    }

    /// Waits until the server has stopped (after a shutdown started from any handle): every
    /// event loop has closed its connections and every queued job has run.
    pub fn join(self) -> Result<(), Error> {
        // Join every loop, even after one failed (`all` would stop at the first failure).
        let joined: Vec<bool> = self
            .event_loops
            .into_iter()
            .map(|thread| thread.join().is_ok())
            .collect();
        let loop_ok = joined.iter().all(|ok| *ok);
        let workers_ok = self.workers.join();
        // Last: what the loops and `on_close` calls published is sent first.
        let backplane_ok = self.backplane.is_none_or(|backplane| backplane.stop());
        match (loop_ok, workers_ok, backplane_ok) {
            (true, true, true) => Ok(()),
            (false, _, _) => Err(Error::ThreadPanicked("event loop")),
            (true, false, _) => Err(Error::ThreadPanicked("worker")),
            (true, true, false) => Err(Error::ThreadPanicked("backplane")),
        }
    }
}

fn log_start(config: &Config, local_addr: SocketAddr) {
    let handlers = if config.inline_handlers {
        "inline handlers".to_owned()
    } else {
        format!("{} workers", config.workers)
    };
    let loops = config.event_loops;
    log::info!("listening on {local_addr} ({loops} event loops, {handlers})");
}

#[cfg(test)]
mod tests {
    use std::mem::size_of;

    use crate::config::{COMMAND_SLOT_BYTES, EVENT_BYTES, JOB_SLOT_BYTES};

    /// `Config::validate` bounds what the server allocates when it is built with these sizes
    /// (`Config::MAX_PREALLOCATED_BYTES`): they must stay upper bounds. A slot of a
    /// `crossbeam-channel` array queue is a stamp and the message.
    #[test]
    fn the_preallocation_check_knows_the_slot_sizes() {
        let stamp = size_of::<usize>();
        assert!(stamp + size_of::<crate::dispatch::Job>() <= JOB_SLOT_BYTES);
        assert!(stamp + size_of::<crate::dispatch::Command>() <= COMMAND_SLOT_BYTES);
        let copied = size_of::<(mio::Token, bool, bool)>();
        assert!(size_of::<mio::event::Event>() + copied <= EVENT_BYTES);
    }
}
