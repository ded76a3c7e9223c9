//! The connection session: one connection's protocol life, as a state machine that does no I/O.
//!
//! A [`Session`] holds a connection's [`Phase`] in the state machine, its job slot, the buffers
//! it borrows from the loop while bytes move, and a few clocks. It never names a socket, a poller
//! or a thread: the event loop reads into a buffer the session lends, tells it what happened
//! (bytes, EOF, a reply, a push, the time), pulls out what to write and the next job, and acts on
//! the one [`Outcome`] each step ends with. Every step is handed the time and the loop's tools in
//! an [`Env`]; so every rule here — phases, backpressure, deadlines, close bookkeeping — is
//! unit-tested without sockets or sleeps.
//!
//! | file | what it does |
//! |---|---|
//! | `connection.rs` | the session: events in, bytes to write, the next job, and the [`Outcome`] of a step |
//! | `buffers.rs` | the read and write buffers a session borrows from its loop while bytes move |
//! | `env.rs` | what the loop lends a session for an event ([`Env`]), and the seam to its registry of topics |
//! | `phase.rs` | the phases and what each holds; the inbox; the job slot and its lease; what `on_close` is owed |
//! | `job_slot.rs` | the job slot: the one job out (with a worker, held, or deferred) and its lease |
//! | `machine.rs` | every transition, named for its event |
//! | `inbound.rs` | bytes → HTTP batches and WebSocket messages (through the codecs) |
//! | `backpressure.rs` | when to stop reading, when a job may go out, the bound on pushes |
//! | `monitoring_reserve.rs` | a connection admitted beyond `max_connections`: one metrics or health request, or `503` |
//! | `deferral.rs` | a job whose call deferred its completion: its deadline, and taking it back |
//! | `http_later.rs` | an HTTP request answered later: the requests after it wait, the `504` at its deadline |
//! | `outstanding.rs` | the out-of-order completions an inbox waits for, ended as closed when it goes |
//! | `unordered.rs` | the out-of-order completions a WebSocket waits for: registered from replies, their arrivals into the inbox, their deadlines |
//! | `deadline.rs` | which deadline applies now, and what happens when it comes due |
//! | `topics.rs` | a handler's subscriptions and publications in its output, carried out in order |
//! | `armed_timers.rs` | an open WebSocket's armed timers: keys and instants, the earliest |
//! | `timers.rs` | a WebSocket's own timers (`Context::set_timer`): armed from its replies, fired as work for its job |
//!
//! Data enters through [`Session::received`] (bytes read into [`Session::read_space`]),
//! [`Session::replied`] (a job's answer), [`Session::command`] and [`Session::push_shared`]
//! (pushes from other threads), and [`Session::on_timer`] (a deadline); it leaves through
//! [`Session::poll_transmit`] (bytes for the socket) and [`Session::poll_job`] (work for the
//! handler).

mod armed_timers;
mod backpressure;
mod buffers;
mod connection;
mod deadline;
mod deferral;
mod env;
mod http_later;
mod inbound;
mod job_slot;
mod machine;
mod monitoring_reserve;
mod outstanding;
mod phase;
mod timers;
mod topics;
mod unordered;

pub(crate) use connection::{Ending, Outcome, Session, Transmit, Written};
pub(crate) use env::{Env, Subscriptions};
pub(crate) use inbound::ReadSpace;
pub(crate) use monitoring_reserve::at_capacity_response;
pub(crate) use phase::OwedClose;
