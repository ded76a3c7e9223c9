//! The hand-off between the event loops and the worker threads, and the way in from anywhere.
//!
//! | file | what it does |
//! |---|---|
//! | `deferred.rs` | a call that hands its completion to another thread: the [`Deferral`] the loop gets instead of a reply, the cell its lease waits in |
//! | `http_later.rs` | how a batch of HTTP requests ends ([`HttpTail`]); a request answered later: the requests after it that wait, and its framing |
//! | `job.rs` | what crosses: a [`Job`] with the [`Lease`] on its connection's job slot, the [`Reply`] that brings it home, the handler's encoded [`Output`] |
//! | `handoff.rs` | the round trip: the loop offers a job ([`Executor`]), a worker runs it ([`WorkerPool`]), the reply goes home and rings the loop's waker |
//! | `link.rs` | the ways into one loop from other threads: replies, [`Command`]s, the waker that rings only a sleeping loop ([`LoopLink`], [`LoopWaker`]) |
//! | `topic_requests.rs` | a handler's topic requests as its `Output` records them |
//! | `topics.rs` | what a handler asks of topics, and what travels to subscribers |
//! | `unordered.rs` | calls that complete out of order: what a job's reply starts, the [`Arrival`] of a completion |
//! | `timers.rs` | a connection's timers as a job carries them: the keys that fired, the requests of its calls |
//! | `handle.rs` | [`ServerHandle`]: pushes, broadcasts, publications and closes from any thread |
//! | `relay.rs` | the seam to a backplane that carries topics to other nodes ([`Relay`]) |
//!
//! Jobs enter from the loops on one bounded crossbeam channel that every worker receives from, so
//! any idle worker takes the next batch of any connection. Pushes from any thread travel to the
//! loops as commands. Nothing here knows a socket, a poller or a session's phases.

mod deferred;
mod handle;
mod handoff;
mod http_later;
mod job;
mod link;
mod reclaimed;
mod relay;
mod timers;
mod topic_requests;
mod topics;
mod unordered;

pub(crate) use deferred::{Deferral, DeferredCell, DeferredLink, Pending, Returned};
pub use handle::ServerHandle;
pub(crate) use handle::{Shared, SharedTls};
pub(crate) use handoff::{
    Executor, JobQueue, JobRunner, Offered, SharedRunner, WorkerPool, send_home,
};
pub(crate) use http_later::{Framing, HttpLater, HttpTail};
pub(crate) use job::{
    After, Batch, Call, Compressing, Inbound, Job, Lease, Output, Reply, Run, SessionBox, Work,
    drop_with_the_loop,
};
pub(crate) use link::{Command, History, LoopLink, LoopWaker, Ordered, Push, mark_loop_thread};
pub(crate) use reclaimed::Reclaimed;
#[cfg(any(test, feature = "redis"))]
pub(crate) use relay::Local;
pub(crate) use relay::Relay;
pub(crate) use timers::{FiredTimers, TimerBook, TimerRequest};
pub(crate) use topics::{Publication, TopicAction};
pub(crate) use unordered::{Arrival, CompletionBox, Registered, UnorderedCell, UnorderedLink};
