//! # wsreactor
//!
//! A WebSocket + HTTP/1.1 server on a hand-written reactor over [`mio`], with a pool of OS worker
//! threads and no async runtime. It does explicitly what Go's runtime does for a
//! goroutine-per-connection server:
//!
//! | Go                                  | here                                                     |
//! |-------------------------------------|----------------------------------------------------------|
//! | netpoller (epoll/kqueue)            | one `mio::Poll` per event-loop thread (`src/netpoller/`) |
//! | a parked goroutine per connection   | a small `Connection` in a `Slab`, keyed by its `Token`   |
//! | bufio buffers per goroutine         | buffers borrowed from a pool only while bytes move       |
//! | worker goroutines + channels        | `crossbeam-channel` job queue + N worker threads         |
//! | `SetDeadline`                       | a timer heap whose next deadline is `poll`'s timeout     |
//!
//! ## A guided tour, bottom to top
//!
//! 1. **Codecs** (`src/http/`, `src/ws/`): bytes in, requests and messages out; no I/O.
//! 2. **Transport and buffers** (`src/transport/`, `src/buffer/`): the seam a session reads
//!    and writes through (a TCP socket, or an in-memory wire in tests), and the pooled buffers
//!    a connection holds only while bytes move.
//! 3. **Session** (`src/session/`): one connection's state machine — HTTP, upgrade, WebSocket,
//!    closing — sans-I/O: it is given a transport, the time and a job queue, so every rule is
//!    unit-tested without sockets.
//! 4. **Netpoller** (`src/netpoller/`): each event loop (one per CPU, sharing the port through
//!    `SO_REUSEPORT`) waits in `poll`, accepts, and hands readiness, replies and deadlines to its
//!    table of connections; it knows no protocol.
//! 5. **Dispatch** (`src/dispatch/`): a connection's requests and messages go, one job at a time,
//!    to a worker, which calls your [`Handler`] with a [`Context`]; what the handler sends comes
//!    back as a reply through a channel and a `mio::Waker`.
//! 6. **The application layer**: [`Handler`], [`Server`], [`ServerHandle`], [`Stats`]; topics
//!    (publish and subscribe) through [`Context`] and [`ServerHandle`].
//!
//! `docs/architecture.md` follows one message through every function on that path, and
//! `docs/netpoller.md` maps each part onto Go's runtime.
//!
//! ## Example
//!
//! ```no_run
//! use wsreactor::{Context, Handler, Message, Request, Response, Server};
//!
//! struct Echo;
//!
//! impl Handler for Echo {
//!     type Session = ();
//!
//!     fn on_message(&self, ctx: &mut Context<'_>, message: Message) {
//!         ctx.send(message);
//!     }
//!     fn on_http_request(&self, _request: &Request) -> Response {
//!         Response::text(200, "connect with a WebSocket client\n")
//!     }
//! }
//!
//! let server = Server::builder()
//!     .addr("127.0.0.1:9001".parse().unwrap())
//!     .build(Echo)?;
//! println!("listening on {}", server.local_addr());
//! server.join()?;
//! # Ok::<(), wsreactor::Error>(())
//! ```

// One exception, measured and audited: `malloc_trim` in src/netpoller/release.rs.
#![deny(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]

// Layers, bottom to top; a module imports only from the layers below it (docs/architecture.md).
// The codecs: bytes in, requests, frames and messages out; no I/O.
#[cfg(feature = "fuzzing")]
pub mod http;
#[cfg(not(feature = "fuzzing"))]
mod http;
#[cfg(feature = "fuzzing")]
pub mod ws;
#[cfg(not(feature = "fuzzing"))]
mod ws;
// What every layer shares: the configuration, connection ids, counters, user-facing errors,
// topic names.
mod config;
mod conn_id;
mod error;
mod metrics;
mod topic;
// The transport seam and the pooled buffers.
mod buffer;
mod transport;
// One connection's state machine, sans-I/O.
mod session;
// The event loops and their tables of connections.
mod netpoller;
// Jobs to the worker pool; the handle for other threads.
mod dispatch;
// What users see, and what runs their handler.
mod driven;
mod handler;
mod prometheus;
mod runner;
mod server;
// Topics across nodes, through Redis.
#[cfg(feature = "redis")]
mod backplane;
#[cfg(feature = "tls")]
pub mod tls;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
// The connection core over in-memory wires, for the unit tests and the fuzz targets.
#[cfg(any(test, feature = "fuzzing"))]
mod harness;

#[cfg(feature = "redis")]
pub use backplane::{BackplaneError, Framing, RedisBackplane};
pub use config::Config;
pub use conn_id::ConnId;
pub use dispatch::ServerHandle;
pub use driven::{DrivenServer, Turned};
pub use error::{Error, PingError, SendError, TimerError};
pub use handler::{
    Answer, Context, Deferred, DeferredError, Handler, HttpContext, Pressure, Responder, Unordered,
    UnorderedError, Upgrade, UpgradeOffer,
};
pub use http::origin::{ForwardedHost, OriginPattern, OriginPolicy, UpgradeOrigin};
pub use http::{Request, RequestBuilder, Response, Version};
pub use metrics::Stats;
pub use prometheus::{Exposition, MetricKind};
pub use server::{Server, ServerBuilder};
pub use topic::{MAX_TOPIC_LEN, Position, PositionError, TopicError};
pub use ws::{CloseCode, CloseInfo, Message, PerMessageDeflate};

/// The README's code blocks are compiled as doctests, so the embedding example cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
