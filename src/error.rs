//! The errors a user of the library sees: building and running the server, and pushing messages.
//!
//! Protocol errors caused by a peer never reach the user as `Err`: they become an HTTP status
//! ([`HttpError`](crate::http::HttpError)) or a WebSocket close code
//! ([`WsError`](crate::ws::WsError)) sent to that peer, and a counter in [`Stats`](crate::Stats).

use std::fmt;
use std::io;
use std::net::SocketAddr;

/// An error from building, starting or joining a [`Server`](crate::Server).
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A [`Config`](crate::Config) field has a value that cannot work; the text names it.
    InvalidConfig(String),
    /// The listening socket could not be created or bound.
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// What the operating system said.
        source: io::Error,
    },
    /// Creating the poller, the waker, or a thread failed.
    Io(io::Error),
    /// A server thread ended by panicking (a bug in wsreactor: handler panics are caught).
    ThreadPanicked(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidConfig(why) => write!(f, "invalid configuration: {why}"),
            Error::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            Error::Io(err) => write!(f, "I/O error: {err}"),
            Error::ThreadPanicked(which) => write!(f, "the {which} thread panicked"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Bind { source, .. } => Some(source),
            Error::Io(err) => Some(err),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Self {
        Error::Io(err)
    }
}

/// Why a message could not be handed to the event loop by a
/// [`ServerHandle`](crate::ServerHandle).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The server has shut down; nothing will be delivered.
    Stopped,
    /// The command queue is full (only from the `try_*` methods; the others wait for room).
    Full,
    /// The topic's name is longer than [`MAX_TOPIC_LEN`](crate::topic::MAX_TOPIC_LEN) bytes
    /// ([`ServerHandle::publish`](crate::ServerHandle::publish)); nothing was sent.
    TopicTooLong,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Stopped => f.write_str("the server has stopped"),
            SendError::Full => f.write_str("the server's command queue is full"),
            SendError::TopicTooLong => write!(
                f,
                "the topic's name is longer than {} bytes",
                crate::topic::MAX_TOPIC_LEN
            ),
        }
    }
}

impl std::error::Error for SendError {}

/// Why [`Context::ping`](crate::Context::ping) sent nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PingError {
    /// The payload has this many bytes, more than the 125 a control frame may carry
    /// (RFC 6455 §5.5).
    TooLong(usize),
}

impl fmt::Display for PingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PingError::TooLong(len) => write!(
                f,
                "a ping carries at most 125 bytes (RFC 6455 §5.5), not {len}"
            ),
        }
    }
}

impl std::error::Error for PingError {}

/// Why [`Context::set_timer`](crate::Context::set_timer) armed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimerError {
    /// The connection has this many timers armed already, as many as
    /// [`Config::max_timers_per_connection`](crate::Config::max_timers_per_connection) allows.
    TooMany(usize),
}

impl fmt::Display for TimerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimerError::TooMany(limit) => write!(
                f,
                "the connection has {limit} timers armed, as many as max_timers_per_connection allows"
            ),
        }
    }
}

impl std::error::Error for TimerError {}
