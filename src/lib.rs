//! # wsreactor
//!
//! A WebSocket + HTTP/1.1 server on a hand-written reactor over [`mio`], with a pool of OS worker
//! threads and no async runtime. It does explicitly what Go's runtime does for a
//! goroutine-per-connection server:
//!
//! | Go                                  | here                                                  |
//! |-------------------------------------|-------------------------------------------------------|
//! | netpoller (epoll/kqueue)            | one `mio::Poll` in the event-loop thread (`reactor`)  |
//! | a parked goroutine per connection   | a small `Connection` in a `Slab`, keyed by its `Token`|
//! | bufio buffers per goroutine         | buffers borrowed from a pool only while bytes move    |
//! | worker goroutines + channels        | `crossbeam-channel` job queue + N worker threads      |
//! | `SetDeadline`                       | a timer heap whose next deadline is `poll`'s timeout  |
//!
//! ## A guided tour
//!
//! 1. [`Server::builder`] binds, starts the event loops and the workers ([`server`](crate::Server)).
//! 2. Each event loop (`src/reactor/event_loop.rs`; one per CPU, sharing the port through
//!    `SO_REUSEPORT`) waits in `poll`, accepts, and drives each
//!    ready connection (`src/reactor/drive.rs`): read into a pooled buffer, parse HTTP
//!    ([`http`]) or decode frames ([`ws`]), answer pings and closes itself.
//! 3. Requests and messages go as one job per connection at a time to a worker
//!    (`src/dispatch/worker.rs`), which calls your [`Handler`] with a [`Context`].
//! 4. What the handler sends comes back as a reply through a channel and a `mio::Waker`; the loop
//!    writes it, registering WRITABLE interest only if the socket is full.
//!
//! `docs/architecture.md` follows one message through every function on that path.
//!
//! ## Example
//!
//! ```no_run
//! use wsreactor::{Context, Handler, Message, Request, Response, Server};
//!
//! struct Echo;
//!
//! impl Handler for Echo {
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

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod config;
mod dispatch;
mod error;
mod handler;
pub mod http;
mod metrics;
mod prometheus;
mod reactor;
mod server;
pub mod ws;

pub use config::Config;
pub use dispatch::{ConnId, ServerHandle};
pub use error::{Error, SendError};
pub use handler::{CloseInfo, Context, Handler, Upgrade};
pub use http::{Request, Response};
pub use metrics::Stats;
pub use server::{Server, ServerBuilder};
pub use ws::{CloseCode, Message};

/// The README's code blocks are compiled as doctests, so the embedding example cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
