//! The hand-off between the event loop and the worker threads.
//!
//! Data enters from the loop as a [`Job`] (a connection's batch of requests or messages) on one
//! bounded crossbeam channel that every worker receives from, so any idle worker takes the next
//! batch of any connection. A worker runs the [`Handler`](crate::Handler) and sends one [`Reply`]
//! back on the loop's reply channel, then rings the loop's waker. Pushes from other threads travel
//! the same way as [`Command`]s, through a [`ServerHandle`].

mod conn_id;
mod handle;
mod job;
mod worker;

pub use conn_id::ConnId;
pub use handle::ServerHandle;
pub(crate) use handle::{Command, LoopLink, Shared, mark_loop_thread};
pub(crate) use job::{After, HttpTail, Job, Output, Reply, Work};
pub(crate) use worker::{WorkerPool, run_job};
