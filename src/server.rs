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
use crate::dispatch::{ServerHandle, Shared, WorkerPool};
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
        let listener = listen(&config)?;
        let local_addr = listener.local_addr()?;
        let poll = Poll::new()?;
        let waker = Arc::new(LoopWaker::new(Waker::new(poll.registry(), WAKER)?));
        let (job_tx, job_rx) = crossbeam_channel::bounded(config.job_queue_capacity);
        // Unbounded, yet bounded in practice: one reply per job, and jobs are bounded by the
        // job queue plus the workers. Workers therefore never block on it (see `finish`).
        let (reply_tx, reply_rx) = crossbeam_channel::unbounded();
        let (command_tx, command_rx) = crossbeam_channel::bounded(config.command_queue_capacity);
        let handle = ServerHandle::new(Shared {
            commands: command_tx,
            waker: Arc::clone(&waker),
            metrics: Arc::new(Metrics::default()),
            jobs: job_rx.clone(),
            shutdown: AtomicBool::new(false),
            local_addr,
            metrics_path: config.metrics_path.clone(),
            health_path: config.health_path.clone(),
        });
        let handler: Arc<dyn Handler> = Arc::new(handler);
        let workers = WorkerPool::spawn(
            config.workers,
            job_rx,
            reply_tx,
            Arc::clone(&waker),
            handler,
            handle.clone(),
        )?;
        let channels = Channels {
            jobs: job_tx,
            replies: reply_rx,
            commands: command_rx,
        };
        let event_loop = EventLoop::new(config, poll, listener, channels, waker, handle.clone())?;
        let event_loop = thread::Builder::new()
            .name("wsreactor-loop".into())
            .spawn(move || event_loop.run())?;
        log::info!("listening on {local_addr}");
        Ok(Server {
            handle,
            event_loop,
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
    event_loop: JoinHandle<()>,
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
        let loop_ok = self.event_loop.join().is_ok();
        let workers_ok = self.workers.join();
        match (loop_ok, workers_ok) {
            (true, true) => Ok(()),
            (false, _) => Err(Error::ThreadPanicked("event loop")),
            (true, false) => Err(Error::ThreadPanicked("worker")),
        }
    }
}

/// Binds the listening socket with `SO_REUSEADDR` and the configured backlog.
fn listen(config: &Config) -> Result<TcpListener, Error> {
    let addr = config.addr;
    let bind = || -> std::io::Result<TcpListener> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(i32::try_from(config.backlog).unwrap_or(i32::MAX))?;
        Ok(TcpListener::from_std(socket.into()))
    };
    bind().map_err(|source| Error::Bind { addr, source })
}
