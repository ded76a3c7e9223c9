//! The netpoller: an event loop over `mio`, its connections, buffers and deadlines.
//!
//! Bytes enter from sockets in [`event_loop`] (readiness) and [`connection`] (reads), become
//! requests and messages in [`inbound`], go to the workers as jobs from [`drive`], and come back
//! as replies that `drive` queues and `connection` writes. Nothing here runs user code.

pub(crate) mod buffer_pool;
pub(crate) mod connection;
pub(crate) mod deadline;
pub(crate) mod drive;
pub(crate) mod event_loop;
pub(crate) mod inbound;
pub(crate) mod io;
pub(crate) mod timer;
pub(crate) mod waker;

pub(crate) use event_loop::{Channels, EventLoop, WAKER};
pub(crate) use waker::LoopWaker;
