//! Starting and stopping a server: [`ServerBuilder`] → [`Server`] → [`Server::join`].
//!
//! `build` validates the [`Config`], binds the listening socket (with `socket2`, for the backlog),
//! creates the poller, its waker and the channels, starts the worker threads and the event-loop
//! thread, and returns at once. The [`Server`] owns those threads; a [`ServerHandle`] (cloneable)
//! talks to them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread::{self, JoinHandle};

use mio::net::TcpListener;
use mio::{Poll, Waker};
use socket2::{Domain, Protocol, Socket, Type};

use crate::config::Config;
use crate::dispatch::{LoopLink, ServerHandle, Shared, WorkerPool};
use crate::error::Error;
use crate::handler::Handler;
use crate::metrics::Metrics;
use crate::reactor::{Channels, EventLoop, LoopWaker, WAKER};

/// Collects the configuration, then [`build`](Self::build)s and starts a server.
#[derive(Debug, Clone, Default)]
pub struct ServerBuilder {
    config: Config,
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

    /// Validates the configuration, binds, starts the threads, and returns the running server.
    pub fn build(self, handler: impl Handler) -> Result<Server, Error> {
        let config = Arc::new(self.config);
        config.validate()?;
        // Every loop gets its own listening socket on the same address (SO_REUSEPORT when
        // there are several); with port 0 the first bind picks the port for the others.
        let reuse_port = config.event_loops > 1;
        let first = listen(config.addr, &config, reuse_port)?;
        let local_addr = first.local_addr()?;
        let mut listeners = vec![first];
        for _ in 1..config.event_loops {
            listeners.push(listen(local_addr, &config, reuse_port)?);
        }
        let (job_tx, job_rx) = crossbeam_channel::bounded(config.job_queue_capacity);
        let mut links = Vec::with_capacity(config.event_loops);
        let mut parts = Vec::with_capacity(config.event_loops);
        for listener in listeners {
            let poll = Poll::new()?;
            let waker = Arc::new(LoopWaker::new(Waker::new(poll.registry(), WAKER)?));
            // Unbounded, yet bounded in practice: one reply per job, and jobs are bounded by
            // the job queue plus the workers. Workers therefore never block on it (`finish`).
            let (reply_tx, reply_rx) = crossbeam_channel::unbounded();
            let (command_tx, command_rx) =
                crossbeam_channel::bounded(config.command_queue_capacity);
            links.push(LoopLink {
                commands: command_tx,
                replies: reply_tx,
                waker: Arc::clone(&waker),
            });
            let channels = Channels {
                jobs: job_tx.clone(),
                replies: reply_rx,
                commands: command_rx,
                waker,
            };
            parts.push((poll, listener, channels));
        }
        drop(job_tx);
        let handle = ServerHandle::new(Shared {
            loops: links,
            metrics: Arc::new(Metrics::default()),
            jobs: job_rx.clone(),
            shutdown: AtomicBool::new(false),
            local_addr,
            metrics_path: config.metrics_path.clone(),
            health_path: config.health_path.clone(),
        });
        let handler: Arc<dyn Handler> = Arc::new(handler);
        let worker_count = if config.inline_handlers {
            0
        } else {
            config.workers
        };
        let workers =
            WorkerPool::spawn(worker_count, job_rx, Arc::clone(&handler), handle.clone())?;
        let mut event_loops = Vec::with_capacity(parts.len());
        for (index, (poll, listener, channels)) in parts.into_iter().enumerate() {
            let inline = config.inline_handlers.then(|| Arc::clone(&handler));
            let event_loop = EventLoop::new(
                index,
                Arc::clone(&config),
                poll,
                listener,
                channels,
                handle.clone(),
                inline,
            )?;
            let thread = thread::Builder::new()
                .name(format!("wsreactor-loop-{index}"))
                .spawn(move || event_loop.run())?;
            event_loops.push(thread);
        }
        log::info!(
            "listening on {local_addr} ({} event loops, {})",
            config.event_loops,
            if config.inline_handlers {
                "inline handlers".to_owned()
            } else {
                format!("{} workers", config.workers)
            }
        );
        Ok(Server {
            handle,
            event_loops,
            workers,
        })
    }
}

/// A running server: an event-loop thread and a pool of worker threads.
///
/// Dropping a `Server` does not stop it; call [`shutdown`](Self::shutdown) (or
/// [`ServerHandle::shutdown`] from anywhere, then [`join`](Self::join)).
#[derive(Debug)]
pub struct Server {
    handle: ServerHandle,
    event_loops: Vec<JoinHandle<()>>,
    workers: WorkerPool,
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

    /// Waits until the server has stopped (after a shutdown started from any handle): the event
    /// loop has closed every connection and every queued job has run.
    pub fn join(self) -> Result<(), Error> {
        // Join every loop, even after one failed (`all` would stop at the first failure).
        let joined: Vec<bool> = self
            .event_loops
            .into_iter()
            .map(|thread| thread.join().is_ok())
            .collect();
        let loop_ok = joined.iter().all(|ok| *ok);
        let workers_ok = self.workers.join();
        match (loop_ok, workers_ok) {
            (true, true) => Ok(()),
            (false, _) => Err(Error::ThreadPanicked("event loop")),
            (true, false) => Err(Error::ThreadPanicked("worker")),
        }
    }
}

/// Binds a listening socket with `SO_REUSEADDR` (and `SO_REUSEPORT` for several loops) and the
/// configured backlog.
fn listen(addr: SocketAddr, config: &Config, reuse_port: bool) -> Result<TcpListener, Error> {
    let bind = || -> std::io::Result<TcpListener> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        if reuse_port {
            socket.set_reuse_port(true)?;
        }
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(i32::try_from(config.backlog).unwrap_or(i32::MAX))?;
        Ok(TcpListener::from_std(socket.into()))
    };
    bind().map_err(|source| Error::Bind { addr, source })
}
