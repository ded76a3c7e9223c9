//! The netpoller: event loops over `mio`, and the protocol-neutral machinery around them.
//!
//! | file | what it does |
//! |---|---|
//! | `event_loop.rs` | the thread: `poll`, the turn, the channels, accept pauses, shutdown |
//! | `accept.rs` | accept until `WouldBlock`; past `max_connections` the monitoring reserve, then `503`; pause on `EMFILE` |
//! | `table.rs` | the slab of connections (session, transport, interest, deadline); every event becomes a step, and each step's outcome is settled: budget, lists, deadline, interest |
//! | `table/pump.rs` | a connection's I/O: every read, write and FIN the loop makes for it |
//! | `table/turn.rs` | the table's timed work each turn: fairness, timers, held jobs, the memory budget, gauges; shutdown |
//! | `table/ending.rs` | removal, and the `on_close` each removed connection is owed |
//! | `table/fanout.rs` | broadcasts, and publications delivered to this loop's subscribers and kept for the other loops |
//! | `topics.rs` | the loop's registry of subscriptions (topic → subscribers, connection → topics), bounded |
//! | `forward.rs` | publications of this loop's handlers sent on to the other loops, in order, with a bounded backlog |
//! | `budget.rs` | the loop's part of the server-wide memory budget: pressure, hold limit, when to drop |
//! | `release.rs` | when a storm is over, give its memory back to the OS |
//! | `timers.rs` | the deadline heap whose top is the `poll` timeout |
//!
//! Readiness enters from `poll`, replies and commands from the channels; all of it goes to the
//! sessions (`src/session/`) through the table, which makes every read and write for them and
//! knows no protocol: what bytes mean, each session decides. Publications to topics are
//! delivered by the table to this loop's subscribers and leave for the other loops as commands
//! on their queues. Sockets, buffers and timers stay on this thread; only jobs and their
//! replies cross to the workers (`src/dispatch/`).

mod accept;
mod budget;
mod event_loop;
mod forward;
mod release;
mod table;
mod timers;
mod topics;

pub(crate) use event_loop::{EventLoop, LoopParts, WAKER};
pub(crate) use forward::Forwarder;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use table::{ConnectionTable, Poller, Readiness};
