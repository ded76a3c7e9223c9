//! A connection's I/O — every read, write and `shutdown` the netpoller makes for it — in one
//! place: the pump that moves a session as far as it can go without blocking.
//!
//! [`pump`] reads once into the buffer the session lends ([`Session::read_space`](crate::session::Session::read_space)), hands off
//! the job the session has ready ([`Session::poll_job`](crate::session::Session::poll_job)): to the worker pool's queue, or to the
//! handler inline), and writes what the session has to say ([`Session::poll_transmit`](crate::session::Session::poll_transmit): one
//! `writev`, or FIN) until done or `WouldBlock` — round again while that made room for more.
//! Registrations with the poller are the table's (`table.rs`, `settle`).

use std::io::IoSlice;

use super::Entry;
use crate::buffer::MAX_SLICES;
use crate::dispatch::{JobQueue, Offered, Returned};
use crate::metrics::add;
use crate::session::{Env, ReadSpace, Transmit, Written};
use crate::transport::{IoOutcome, Transport};

/// What one readiness event says of a connection's socket, for reading. (Whether it is
/// writable the table need not know: every event makes the connection's step, which writes
/// whatever waits until `WouldBlock`.)
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Readiness {
    /// There may be bytes (or EOF, or an error) to read.
    pub readable: bool,
    /// The peer closed its side, or the socket failed: reading ends with EOF or the error.
    pub read_closed: bool,
}

/// What one read of the pump came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// Bytes came.
    Bytes,
    /// The socket may have bytes, but the session had no room for them (a full inbox, a full
    /// read buffer, output at its limit, its phase).
    Refused,
    /// Nothing to read now: not readable, drained, closed, failed, or out of budget.
    Done,
}

/// Moves one connection as far as it can go without blocking: read what the socket has into
/// the session's buffer, hand off its job, write what it has to say — and round again while that
/// made room for more. True when it stopped reading only because its fairness budget
/// (`max_read_per_turn`) ran out: edge-triggered readiness will not say so again.
pub(super) fn pump<T: Transport, Q: JobQueue>(
    entry: &mut Entry<T>,
    env: &mut Env<'_>,
    jobs: &mut Q,
) -> bool {
    let mut budget = env.config.max_read_per_turn;
    let mut out_of_budget = false;
    let mut retried = false;
    while !entry.session.is_closed() {
        let read = read(entry, env, &mut budget, &mut out_of_budget);
        let ran_inline = hand_off(entry, env, jobs);
        if read == Read::Bytes || ran_inline {
            retried = false;
            continue;
        }
        if write(entry, env) {
            continue;
        }
        // The hand-off may have made the room the read was refused: a full inbox went out as
        // a job, or a full read buffer was decoded into the message it begins. The socket's
        // bytes raised their readiness event long ago and no other will come for them
        // (edge-triggered): read now, or they wait for some later event — for good, if none.
        // (`may_read` says yes only when `read_space` lends, so this round reads; `retried`
        // makes sure of it.)
        if read == Read::Refused && !retried && entry.session.may_read(env) {
            retried = true;
            continue;
        }
        break;
    }
    out_of_budget
}

/// Reads once into the session's buffer, if the socket may have bytes, the session takes them
/// and the budget allows. The pump decodes and dispatches what came before the next read, so
/// backpressure stops reading as soon as the session is full.
fn read<T: Transport>(
    entry: &mut Entry<T>,
    env: &mut Env<'_>,
    budget: &mut usize,
    out_of_budget: &mut bool,
) -> Read {
    if !entry.readable {
        return Read::Done;
    }
    let Some(ReadSpace { first, then }) = entry.session.read_space(env) else {
        return Read::Refused;
    };
    if *budget == 0 {
        // Fairness: others get their turn; this one continues on the next turn.
        *out_of_budget = true;
        return Read::Done;
    }
    let asked = first.len() + then.len();
    let outcome = if then.is_empty() {
        entry.transport.read(first)
    } else {
        entry.transport.read_two(first, then)
    };
    match outcome {
        IoOutcome::Progress(n) => {
            // A short read drained the socket (as tokio assumes on epoll): new bytes raise a new
            // edge, so the next read waits for it instead of finding `WouldBlock` — one system
            // call less per request. Not once the peer closed: its EOF raises no new edge.
            if !entry.read_closed && entry.transport.read_drained(asked, n) {
                log::trace!("{}: short read: drained", entry.session.id);
                entry.readable = false;
            }
            entry.session.received(env, n);
            *budget = budget.saturating_sub(n);
            return Read::Bytes;
        }
        IoOutcome::WouldBlock => {
            log::trace!("{}: read would block: drained", entry.session.id);
            entry.readable = false;
        }
        IoOutcome::Closed => {
            log::trace!("{}: read EOF", entry.session.id);
            entry.readable = false;
            entry.session.peer_eof(env);
        }
        IoOutcome::Failed(err) => {
            log::debug!("{}: read failed: {err}", entry.session.id);
            entry.session.transport_failed(env);
        }
    }
    Read::Done
}

/// Offers the session's next job. True when it ran inline and its reply is already applied (so
/// what is still buffered may make the next one).
fn hand_off<T, Q: JobQueue>(entry: &mut Entry<T>, env: &mut Env<'_>, jobs: &mut Q) -> bool {
    let Some(job) = entry.session.poll_job(env) else {
        return false;
    };
    match jobs.offer(job) {
        Offered::Queued => {
            add(&env.metrics.jobs_dispatched, 1);
            false
        }
        Offered::Full(job) => {
            entry.session.job_refused(job);
            false
        }
        Offered::Ran(returned) => {
            add(&env.metrics.jobs_dispatched, 1);
            log::trace!("{}: job ran inline", entry.session.id);
            match returned {
                Some(Returned::Reply(reply)) => entry.session.replied(env, reply),
                Some(Returned::Unordered(arrival)) => entry.session.unordered_arrived(env, arrival),
                Some(Returned::Deferred(deferral)) => {
                    let link = std::sync::Arc::clone(&deferral.link);
                    entry.session.deferred(env, deferral);
                    // Completions may take it from here; one dropped meanwhile comes home now.
                    if let Some(pending) = link.announce() {
                        entry.session.replied(env, pending.into_reply());
                    }
                }
                None => {}
            }
            true
        }
        Offered::Gone(job) => {
            entry.session.job_lost(job);
            false
        }
    }
}

/// Writes what the session has to say until done or `WouldBlock` — the transport's own held
/// bytes first (TLS records) — and sends FIN when it asks. True when that made room for more.
fn write<T: Transport>(entry: &mut Entry<T>, env: &mut Env<'_>) -> bool {
    let mut written = Written::default();
    loop {
        let held = entry.transport.buffered_output();
        if held > 0 {
            if entry.transport.flush().is_err() {
                entry.session.transport_failed(env);
                return false;
            }
            let left = entry.transport.buffered_output();
            written.progressed |= left < held;
            if left > 0 {
                written.blocked = true;
                break;
            }
        }
        let outcome = match entry.session.poll_transmit() {
            Transmit::One(bytes) => entry.transport.write(bytes),
            Transmit::Many => {
                let mut slices = [IoSlice::new(&[]); MAX_SLICES];
                let n = entry.session.transmit_slices(&mut slices);
                entry.transport.write_vectored(&slices[..n])
            }
            Transmit::Fin => {
                entry.transport.shutdown_write();
                entry.session.fin_sent(env);
                continue;
            }
            Transmit::Nothing => break,
        };
        match outcome {
            IoOutcome::Progress(n) => {
                entry.session.transmitted(env, n);
                written.bytes += n;
                written.progressed = true;
            }
            IoOutcome::WouldBlock => {
                log::trace!("{}: socket full, output waits", entry.session.id);
                written.blocked = true;
                break;
            }
            IoOutcome::Closed => {
                entry.session.transport_failed(env);
                return false;
            }
            IoOutcome::Failed(err) => {
                log::debug!("{}: write failed: {err}", entry.session.id);
                entry.session.transport_failed(env);
                return false;
            }
        }
    }
    !entry.session.is_closed() && entry.session.write_ended(env, written)
}
