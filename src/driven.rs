//! The caller-driven server: one event loop that runs on the caller's thread, one
//! [`turn`](DrivenServer::turn) at a time, with no thread of its own.
//!
//! [`ServerBuilder::build_driven`](crate::ServerBuilder::build_driven) binds and makes the same
//! event loop the threaded server runs, with the handler called inline. Each `turn` waits in
//! `poll` for at most the time the caller gives it (or the loop's next deadline, if sooner),
//! then handles what arrived — readiness, pushes from handles, timers, the memory budget — and
//! returns. Pushes from other threads ring the loop's waker, which ends a `turn` early; the
//! poller's file descriptor ([`AsRawFd`](std::os::fd::AsRawFd)) is readable whenever sockets or
//! pushes wait, so an outer event loop (epoll, a GUI's, a game's) can watch it — for no longer
//! than [`timeout`](DrivenServer::timeout), the loop's next deadline — and call `turn` with a
//! zero timeout when either comes. Shutting down is a few more turns: closes go out, then
//! [`turn`](DrivenServer::turn) says [`Turned::Stopped`].

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::dispatch::ServerHandle;
use crate::dispatch::mark_loop_thread;
use crate::error::Error;
use crate::netpoller::EventLoop;

/// A server that runs only when its owner calls [`turn`](Self::turn): no threads, handlers
/// inline, one event loop.
///
/// Choose it over [`Server`](crate::Server) when the program already owns its main loop and its
/// thread — a game or GUI frame loop, an embedded controller, an existing epoll loop — or may not
/// start threads. Its handlers run between the program's own work, so they must not block;
/// everything else (limits, deadlines, backpressure, the budget, graceful shutdown) is the same.
/// It uses one core; the threaded server scales across all of them.
///
/// Its handler and the connections' sessions live on the thread that builds and drives it, so
/// neither needs to be `Send` or `Sync`: a handler may hold `Rc<RefCell<_>>` state that the
/// program's own loop reads between turns, and sessions may hold `Rc`s too (each connection's
/// session is kept by the server, on that thread, between its calls). For the same reason a
/// `DrivenServer` is not `Send` itself: it stays on the thread that built it. A session that is
/// `Send` may still defer a call to another thread ([`Context::defer`](crate::Context::defer)):
/// it travels with the completion and comes back.
///
/// ```no_run
/// use std::time::Duration;
/// use wsreactor::{Context, Message, Server, Turned};
///
/// let mut server = Server::builder()
///     .build_driven(|ctx: &mut Context<'_>, msg: Message| ctx.send(msg))?;
/// let handle = server.handle();
/// loop {
///     // ... the program's own work ...
///     handle.broadcast("tick").ok(); // on this thread: never waits
///     if server.turn(Some(Duration::from_millis(16)))? == Turned::Stopped {
///         break;
///     }
/// }
/// # Ok::<(), wsreactor::Error>(())
/// ```
#[derive(Debug)]
pub struct DrivenServer {
    /// `None` once the loop has finished (after a completed shutdown).
    event_loop: Option<EventLoop>,
    handle: ServerHandle,
    #[cfg(unix)]
    fd: std::os::fd::RawFd,
}

/// What a [`turn`](DrivenServer::turn) left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turned {
    /// The server is serving: call `turn` again.
    Running,
    /// A shutdown has completed: every connection is closed and every `on_close` ran. Further
    /// turns return this at once.
    Stopped,
}

impl DrivenServer {
    pub(crate) fn new(event_loop: EventLoop, handle: ServerHandle) -> Self {
        DrivenServer {
            #[cfg(unix)]
            fd: event_loop.raw_fd(),
            event_loop: Some(event_loop),
            handle,
        }
    }

    /// A handle to push messages, broadcast, read stats or shut down — from this thread or any
    /// other (another thread's push wakes a `turn` that is waiting). On the thread that calls
    /// `turn`, the waiting forms (`send`, `broadcast`) fail with
    /// [`SendError::Full`](crate::SendError::Full) instead of waiting when the command queue
    /// is full, since only that thread empties it.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// Waits for events for at most `timeout` (`None`: until something happens — a socket, a
    /// push, or the loop's next deadline; `Some(Duration::ZERO)`: not at all), handles them,
    /// and returns. Handlers run inside this call.
    pub fn turn(&mut self, timeout: Option<Duration>) -> Result<Turned, Error> {
        let Some(event_loop) = self.event_loop.as_mut() else {
            return Ok(Turned::Stopped);
        };
        mark_loop_thread();
        if !event_loop.turn(timeout)? {
            return Ok(Turned::Running);
        }
        if let Some(event_loop) = self.event_loop.take() {
            event_loop.finish();
        }
        Ok(Turned::Stopped)
    }

    /// The longest an outer event loop may wait before calling [`turn`](Self::turn) even if
    /// the descriptor stays quiet: the loop's next deadline (a ping, a timeout, work left from
    /// the last turn), or `None` when it has none. Timers do not make the descriptor readable.
    pub fn timeout(&self) -> Option<Duration> {
        self.event_loop.as_ref()?.poll_timeout()
    }

    /// Turns until `deadline` (handling events as they come), or until the server stops.
    pub fn run_until(&mut self, deadline: Instant) -> Result<Turned, Error> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let turned = self.turn(Some(left))?;
            if turned == Turned::Stopped || left.is_zero() {
                return Ok(turned);
            }
        }
    }

    /// Shuts down gracefully, turning until it is complete: WebSockets get `1001`, running
    /// work finishes, and what is left at `shutdown_timeout` is dropped.
    pub fn shutdown(mut self) -> Result<(), Error> {
        self.handle.shutdown();
        while self.turn(None)? == Turned::Running {}
        Ok(())
    }
}

#[cfg(unix)]
impl std::os::fd::AsRawFd for DrivenServer {
    /// The event loop's poller (an epoll file descriptor on Linux): readable whenever a
    /// [`turn`](DrivenServer::turn) would find work. Register it, for reading, in an outer
    /// event loop, and take it out again once a turn returns [`Turned::Stopped`]: the poller
    /// is closed then.
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd
    }
}
