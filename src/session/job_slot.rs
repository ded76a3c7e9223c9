//! A connection's job slot: whether its job is with the handler — with a worker, held for room
//! in the job queue, or deferred to a completion on another thread — and the [`Lease`] that
//! keeps its handler calls from overlapping.
//!
//! The slot lends one lease per job ([`JobSlot::lend`]) and takes the next job only once the
//! lease is back ([`JobSlot::give_back`], from the job's reply). A deferred job's lease waits in
//! its completion's cell (`dispatch/deferred.rs`); the slot keeps the link and the deadline,
//! and takes the job back itself if the deadline or the close comes first
//! ([`JobSlot::take_back`]).

use std::time::Instant;

use crate::conn_id::ConnId;
use crate::dispatch::{DeferredLink, Lease, Reclaimed, Reply, Run};

/// Whether the connection's job is with the handler. At most one is — the slot lends one
/// [`Lease`], and takes the next job only once it is given back — so a connection's handler
/// calls never overlap and keep their order.
#[derive(Debug, Default)]
pub(crate) enum JobSlot {
    /// Nothing with the handler.
    #[default]
    Idle,
    /// A job is with a worker; its reply has not come back. It carries this many payload bytes
    /// (charged to the connection by the memory budget until the reply).
    InFlight(usize),
    /// A job found the job queue full and waits here to be offered again (backpressure: the
    /// connection reads no more meanwhile, beyond its inbox).
    Held(Box<Run>),
    /// A call of the job handed its completion to another thread (`dispatch/deferred.rs`):
    /// no worker has it, its lease waits in the link's cell, and the connection's next job
    /// waits for the completion's reply — or for `deadline`, when the slot reclaims it.
    Deferred(Box<Deferred>),
}

/// A job out without a worker, waiting for its completion (boxed: rare, and the slot stays
/// small).
#[derive(Debug)]
pub(crate) struct Deferred {
    /// Its payload bytes, charged to the connection until it is back.
    pub bytes: usize,
    /// When the slot takes it back without its completion (`Config::deferred_timeout`).
    pub deadline: Instant,
    pub link: DeferredLink,
}

/// What became of a deferred job the slot tried to take back.
#[derive(Debug)]
pub(crate) enum Taken {
    /// The slot has it (and is idle again): the lease went home; here is what the job still
    /// held, as the reply that would have brought it.
    Back(Box<Reply>),
    /// A completion is running and its reply is coming: the slot waits for it as for any job
    /// out.
    Completing,
    /// No job was deferred.
    Nothing,
}

impl JobSlot {
    /// Lends the slot to a job of `bytes` payload bytes. Only an idle slot lends.
    pub(crate) fn lend(&mut self, conn: ConnId, bytes: usize) -> Lease {
        debug_assert!(
            matches!(self, JobSlot::Idle),
            "{conn}: the slot is not idle"
        );
        *self = JobSlot::InFlight(bytes);
        Lease::new(conn, bytes)
    }

    /// A held job goes out again, with the lease it already has.
    pub(crate) fn resend(&mut self) -> Option<Run> {
        let JobSlot::Held(run) = std::mem::take(self) else {
            return None;
        };
        *self = JobSlot::InFlight(run.lease.bytes());
        Some(*run)
    }

    /// The queue had no room: the job waits here.
    pub(crate) fn hold(&mut self, run: Run) {
        *self = JobSlot::Held(Box::new(run));
    }

    /// The job's reply came home with the lease: the slot is free for the next job.
    pub(crate) fn give_back(&mut self, lease: Lease) {
        debug_assert!(self.is_out(), "{}", lease.conn());
        lease.end();
        *self = JobSlot::Idle;
    }

    /// The job out deferred its completion (`link`): the slot holds the link until its reply,
    /// or takes it back at `deadline`.
    pub(crate) fn defer(&mut self, link: DeferredLink, deadline: Instant) {
        let JobSlot::InFlight(bytes) = *self else {
            // Only a job out can defer: anything else is a stray deferral, taken back at once.
            debug_assert!(false, "a deferral for a slot that has no job out");
            if let Some(pending) = link.reclaim(Reclaimed::Closed) {
                pending.lease.end();
            }
            return;
        };
        *self = JobSlot::Deferred(Box::new(Deferred {
            bytes,
            deadline,
            link,
        }));
    }

    /// Takes a deferred job back without its completion (`why`: its deadline passed, or the
    /// connection closed).
    pub(crate) fn take_back(&mut self, why: Reclaimed) -> Taken {
        let JobSlot::Deferred(deferred) = &*self else {
            return Taken::Nothing;
        };
        let bytes = deferred.bytes;
        match deferred.link.reclaim(why) {
            Some(pending) => {
                *self = JobSlot::InFlight(bytes);
                let reply = pending.into_reply();
                let Reply { lease, .. } = &reply;
                debug_assert_eq!(lease.bytes(), bytes);
                Taken::Back(Box::new(reply))
            }
            None => {
                *self = JobSlot::InFlight(bytes);
                Taken::Completing
            }
        }
    }

    /// The deadline of a deferred job, if the slot holds one.
    pub(crate) fn deferred_deadline(&self) -> Option<Instant> {
        match self {
            JobSlot::Deferred(deferred) => Some(deferred.deadline),
            _ => None,
        }
    }

    /// A job is out — with a worker, or deferred — and its reply will come.
    pub(crate) fn is_out(&self) -> bool {
        matches!(self, JobSlot::InFlight(_) | JobSlot::Deferred(_))
    }

    /// Charged to the memory budget: the held job's bytes, or those of the job out.
    pub(crate) fn bytes(&self) -> usize {
        match self {
            JobSlot::Idle => 0,
            JobSlot::InFlight(bytes) => *bytes,
            JobSlot::Held(run) => run.lease.bytes(),
            JobSlot::Deferred(deferred) => deferred.bytes,
        }
    }
}
