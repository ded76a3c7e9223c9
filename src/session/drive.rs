//! The session step: given what just happened to a connection (readiness, a reply, a push, a
//! deadline), move it as far forward as it can go without blocking.
//!
//! [`Connection::drive`] runs the steps in the order a byte travels: **read** what the
//! transport has (within the fairness budget and the backpressure rules), **decode** it into
//! work, **dispatch** the next job, apply the phase rules that were waiting for the handler
//! (**work done**), and **write** what is queued — round again while something moved, then give
//! idle buffers back. It returns a [`Verdict`] for the event loop: wait, drive again next turn,
//! or remove the connection.

use crate::metrics::{CloseKind, add};
use crate::session::connection::{Connection, ReadResult, Turn};
use crate::session::phase::{Drain, JobSlot, Phase};
use crate::session::work::{Batch, Job, JobQueue, Offered, Work};
use crate::transport::Transport;

/// What the loop must do with a connection after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Keep it; it waits for readiness, a reply or a timer.
    Wait,
    /// Keep it, and drive it again next turn: it stopped reading only because its fairness
    /// budget (`max_read_per_turn`) ran out, and edge-triggered readiness will not say so again.
    Again,
    /// It reached `Closed`: remove it now (deregister, close the transport, settle `on_close`).
    Close(CloseKind),
}

impl<T: Transport> Connection<T> {
    /// Moves the connection forward as far as it can go without blocking.
    pub(crate) fn drive(&mut self, turn: &mut Turn<'_>, jobs: &mut impl JobQueue) -> Verdict {
        let mut budget = turn.config.max_read_per_turn;
        let mut out_of_budget = false;
        while !matches!(self.phase, Phase::Closed(_)) {
            // 1. Read, while the socket has bytes and the connection may take them.
            let mut read = None;
            if self.readable && self.wants_input(turn) {
                if budget == 0 {
                    // Fairness: others get their turn; this one continues on the next turn.
                    out_of_budget = true;
                } else {
                    read = Some(self.read_some(turn, &mut budget));
                }
            }
            // 2. Decode: messages into the inbox, pings answered, closes and errors handled.
            self.decode(turn);
            // 3. Dispatch the next job, if there is work and none is out.
            let ran_inline = self.dispatch(turn, jobs);
            if read == Some(ReadResult::Data) || ran_inline {
                continue;
            }
            // 4. The phase rules that wait for the handler's work to be done.
            self.work_done(turn);
            // 5. Write.
            let max_out = turn.config.max_outbound_bytes;
            let held_back = self.output_len() >= max_out;
            if self.flush(turn).is_err() {
                self.transport_failed(turn);
                break;
            }
            if self.output_len() == 0 {
                self.drained(turn);
            }
            // Output that had passed the high-water mark fell to the low one: round again, so
            // the `on_drain` goes out now rather than with the next message.
            if self.note_drained(turn) {
                continue;
            }
            // Output at its limit held back dispatch and reading above. If this flush took it
            // below the limit, go round again: nothing else would wake this connection (its
            // inbox is already here, and edge-triggered readiness already reported the unread
            // bytes), so it would stall until a timer fired. Each extra round needs the output
            // to have refilled past the limit, which the shared read budget bounds.
            if !(held_back && self.output_len() < max_out) {
                break;
            }
        }
        if let Phase::Closed(closed) = &self.phase {
            return Verdict::Close(closed.kind);
        }
        self.release_buffers(turn.pool);
        if out_of_budget {
            Verdict::Again
        } else {
            Verdict::Wait
        }
    }

    /// The inbox as the next batch, carrying an owed `on_drain` (alone, if no message waits).
    fn take_messages(&mut self) -> Option<Batch> {
        let drain_due = match &mut self.phase {
            Phase::Open(open) if open.drain == Drain::Due => {
                open.drain = Drain::Flowing;
                true
            }
            _ => false,
        };
        let inbox = self.phase.inbox_mut()?;
        let mut batch = match inbox.take() {
            Some(batch) => batch,
            None if drain_due => inbox.empty_batch(),
            None => return None,
        };
        batch.drained = drain_due;
        Some(batch)
    }

    /// One read, charged to the fairness budget; EOF and failures go to the state machine.
    fn read_some(&mut self, turn: &mut Turn<'_>, budget: &mut usize) -> ReadResult {
        let before = self.input.as_ref().map_or(0, |input| input.len());
        let result = self.read_once(turn, self.max_input_len(turn.config));
        match result {
            ReadResult::Data => {
                let after = self.input.as_ref().map_or(0, |input| input.len());
                *budget = budget.saturating_sub(after.saturating_sub(before));
            }
            ReadResult::Drained => self.readable = false,
            ReadResult::BufferFull => {}
            ReadResult::Eof => self.peer_eof(turn),
            ReadResult::Failed => self.transport_failed(turn),
        }
        result
    }

    /// Offers the connection's next job — a held one first — if it has work and none is out.
    /// Returns true when the job ran inline and its reply is already applied.
    fn dispatch(&mut self, turn: &mut Turn<'_>, jobs: &mut impl JobQueue) -> bool {
        if !self.may_dispatch(turn.config) {
            return false;
        }
        let was_held = self.holds_job();
        let job = match std::mem::take(&mut self.job) {
            JobSlot::Held(job) => *job,
            JobSlot::Idle | JobSlot::InFlight(_) => {
                let work = match self.phase {
                    // No new requests are taken once the server is shutting down.
                    Phase::Http(_) if turn.shutting_down => None,
                    Phase::Http(_) => self.take_http_batch(turn),
                    _ => self.take_messages().map(Work::Messages),
                };
                let Some(work) = work else {
                    return false;
                };
                Job {
                    conn: self.id,
                    work,
                    session: self.session.take(),
                    queued: self.output_len(),
                }
            }
        };
        let described = log::log_enabled!(log::Level::Trace).then(|| job.work.describe());
        let bytes = job.work.held_bytes();
        match jobs.offer(job) {
            Offered::Queued => {
                // The queue narrates this one, with its depth.
                self.job = JobSlot::InFlight(bytes);
                add(&turn.metrics.jobs_dispatched, 1);
                false
            }
            Offered::Full(job) => {
                // Backpressure: keep the job here. Reading stops as the connection fills up:
                // HTTP at once (it is not idle), WebSocket when its inbox is full.
                if !was_held {
                    add(&turn.metrics.backpressure_pauses, 1);
                    log::trace!("{}: job queue full, job held", self.id);
                }
                self.job = JobSlot::Held(Box::new(job));
                false
            }
            Offered::Ran(reply) => {
                // Inline: the handler ran here and now; its reply applies at once, and what is
                // still buffered can go next.
                add(&turn.metrics.jobs_dispatched, 1);
                if let Some(what) = described {
                    log::trace!("{}: job ran inline: {what}", self.id);
                }
                match reply {
                    Some(reply) => self.replied(turn, reply),
                    None => self.job = JobSlot::Idle,
                }
                true
            }
            Offered::Gone => {
                log::error!("{}: nobody runs jobs any more; job dropped", self.id);
                false
            }
        }
    }
}
