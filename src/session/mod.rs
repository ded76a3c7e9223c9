//! The connection session: one connection's protocol life, sans-I/O.
//!
//! A [`Connection`] holds a transport (any [`Transport`](crate::transport::Transport): a TCP
//! socket on the event loop, an in-memory wire in the unit tests), its [`Phase`] in the state
//! machine, whether a job is with the handler, and buffers borrowed from the loop. Every step is
//! handed the time and the loop's tools in a [`Turn`], and a [`JobQueue`] to offer work to; it
//! never blocks, never reads a clock, and never touches a poller. So every rule here — phases,
//! backpressure, deadlines, close bookkeeping — is unit-tested without sockets or sleeps.
//!
//! | file | what it does |
//! |---|---|
//! | `phase.rs` | the phases and what each holds; the inbox; the job slot; what `on_close` is owed |
//! | `machine.rs` | every transition, named for its event |
//! | `connection.rs` | the connection: read into, queue onto and write from pooled buffers |
//! | `inbound.rs` | bytes → HTTP batches and WebSocket messages (through the codecs) |
//! | `backpressure.rs` | when to stop reading, when a job may go out, the bound on pushes |
//! | `monitoring_reserve.rs` | a connection admitted beyond `max_connections`: one metrics or health request, or `503` |
//! | `drive.rs` | one step: read → decode → dispatch → work done → write |
//! | `deadline.rs` | which deadline applies now, and what happens when it comes due |
//! | `work.rs` | jobs, replies and encoded output; the job-queue and job-runner seams |
//! | `pubsub.rs` | what a handler asks of topics, publications, and the seam to the loop's registry |
//! | `topics.rs` | a handler's subscriptions and publications in its output, carried out in order |
//!
//! Data enters through [`Connection::drive`] (after readiness), [`Connection::replied`] (a
//! job's answer), [`Connection::push`] (a push from another thread) and
//! [`Connection::expire`] (a deadline); it leaves through the transport and as [`Job`]s.

mod backpressure;
mod connection;
mod deadline;
mod drive;
mod inbound;
mod machine;
mod monitoring_reserve;
mod phase;
mod pubsub;
mod topics;
mod work;

pub(crate) use connection::{Connection, Turn};
pub(crate) use drive::Verdict;
pub(crate) use monitoring_reserve::too_many_connections;
pub(crate) use phase::{JobSlot, OnClose, Phase};
pub(crate) use pubsub::{Publication, Subscriptions};
pub(crate) use work::{
    After, Batch, Compressing, HttpTail, Job, JobQueue, JobRunner, Offered, Output, Reply,
    SessionBox, Work,
};
