//! The hand-off between the event loops and the worker threads, and the way in from anywhere.
//!
//! Jobs enter from the loops on one bounded crossbeam channel that every worker receives from
//! (`worker.rs`), so any idle worker takes the next batch of any connection. A worker runs the
//! job through the application's [`JobRunner`](crate::session::JobRunner) and sends one reply
//! back to the loop that owns the connection, then rings that loop's waker. Pushes from any
//! thread travel to the loops as commands, through a [`ServerHandle`] (`handle.rs`).

mod handle;
mod worker;

pub use handle::ServerHandle;
pub(crate) use handle::Shared;
pub(crate) use worker::WorkerPool;
