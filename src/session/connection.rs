//! One client connection's session: a state machine that does no I/O.
//!
//! The event loop owns the socket; the session owns what the bytes mean. Events go in — bytes
//! read into a buffer the session lends ([`read_space`](Session::read_space), then
//! [`received`](Session::received)), the peer's EOF, a job's reply, a push from another thread,
//! the time — and the loop pulls out what it must do: the bytes to write
//! ([`poll_transmit`](Session::poll_transmit), like quinn-proto's `poll_transmit`), the next job
//! to hand off ([`poll_job`](Session::poll_job)), and, after each step, one [`Outcome`]: whether
//! to read, whether to wait for WRITABLE, the next deadline, the bytes it holds, and how it
//! ended. It never reads a clock, never blocks, never names a socket or a poller: every step is
//! handed an [`Env`] with the time and the loop's tools, so every rule here is unit-tested
//! without sockets or sleeps.

use std::io::IoSlice;
use std::time::Instant;

use crate::buffer::{MAX_SLICES, ReadBuffer, WriteBuffer};
use crate::conn_id::ConnId;
use crate::dispatch::{Job, Push, Reclaimed, Reply, Run, SessionBox, Work};
use crate::metrics::{Admission, CloseKind, Metrics, add, sub};
use crate::session::env::Env;
use crate::session::phase::{Http, JobSlot, OwedClose, Phase, Taken};

/// When things last happened, for the deadlines (`deadline.rs` derives them from these).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clocks {
    /// When the current wait began: in `Http`, the last response drained or the first byte of
    /// a request arrived; in `Open`, the upgrade (`max_lifetime` counts from here); in
    /// `Closing`/`Lingering`, the last output drained.
    pub wait_since: Instant,
    /// When bytes last arrived (keepalive pings go to connections silent since then).
    pub last_read: Instant,
    /// Since when pending output has made no progress (write-stall timeout).
    pub write_blocked_since: Option<Instant>,
}

/// What the loop must write next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Transmit<'a> {
    /// One run of bytes: write it (`write`).
    One(&'a [u8]),
    /// Several chunks: have [`Session::transmit_slices`] lend them as slices for one `writev`.
    Many,
    /// Every byte is out and the conversation is over: send FIN (`shutdown(Write)`), then say
    /// [`fin_sent`](Session::fin_sent).
    Fin,
    /// Nothing to write.
    Nothing,
}

/// What a step's writing came to, as the loop reports it.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Written {
    /// Bytes of the session's output written.
    pub bytes: usize,
    /// Something was written: the session's bytes, or the transport's own.
    pub progressed: bool,
    /// Bytes remain, the session's or the transport's: the socket would block.
    pub blocked: bool,
}

/// What the loop must do after a step, in one answer.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// Bytes wait to be written: keep WRITABLE interest.
    pub write: bool,
    /// Bytes of memory the session holds for its peer now (the memory budget charges the
    /// change).
    pub held: usize,
    /// The earliest deadline that applies now.
    pub deadline: Option<Instant>,
    /// Its job waits for room in the job queue.
    pub job_held: bool,
    /// The session reached `Closed`: remove it, and settle what it is owed.
    pub ended: Option<Ending>,
}

/// How a session ended, for the loop to remove it: why, the `on_close` it is owed, and the
/// handler's state that `on_close` gets (unless the job that holds it is still running).
#[derive(Debug)]
#[must_use = "an ending carries an owed on_close"]
pub(crate) struct Ending {
    pub kind: CloseKind,
    pub owed: OwedClose,
    /// The handler's state, if it is here (not with a running job).
    pub state: Option<SessionBox>,
    /// A job is with the handler: the owed `on_close` waits for its reply.
    pub job_running: bool,
    pub admission: Admission,
}

/// One client connection's protocol life.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) id: ConnId,
    pub(crate) phase: Phase,
    pub(crate) job: JobSlot,
    pub(crate) input: Option<ReadBuffer>,
    pub(crate) output: Option<WriteBuffer>,
    pub(crate) clocks: Clocks,
    /// The handler's state for this WebSocket (`Handler::Session`, with what the runner keeps
    /// beside it), type-erased: the core only carries it. Here between jobs; with the job while
    /// one runs; to `on_close` at the end.
    pub(crate) state: Option<SessionBox>,
    /// Which count its place was taken from: a connection on the monitoring reserve is served
    /// once, for monitoring only (`monitoring_reserve.rs`).
    pub(crate) admission: Admission,
}

impl Session {
    /// A new connection in `Http`, counted in its phase's gauge.
    pub(crate) fn new(
        id: ConnId,
        peer: Option<std::net::SocketAddr>,
        admission: Admission,
        now: Instant,
        metrics: &Metrics,
    ) -> Self {
        let phase = Phase::Http(Http {
            peer,
            ..Http::default()
        });
        if let Some(gauge) = phase.gauge(metrics) {
            add(gauge, 1);
        }
        Session {
            id,
            phase,
            job: JobSlot::Idle,
            input: None,
            output: None,
            state: None,
            clocks: Clocks {
                wait_since: now,
                last_read: now,
                write_blocked_since: None,
            },
            admission,
        }
    }

    /// The next job to hand off, if there is work and no job is out: the held one first, else
    /// the buffered bytes decoded into a batch. Without one, the rules that waited for the
    /// handler's work apply now (`work_done`): the netpoller asks before every write.
    pub(crate) fn poll_job(&mut self, env: &mut Env<'_>) -> Option<Job> {
        self.decode(env);
        self.http_answer_given_up(); // the client closed while an answer is deferred
        if !self.may_dispatch(env.config) {
            self.work_done(env);
            return None;
        }
        if let Some(run) = self.job.resend() {
            return Some(Job::Run(run));
        }
        let work = match self.phase {
            // Requests that waited for an answer deferred before them (`http_later.rs`).
            Phase::Http(_) | Phase::Upgrading(_) if self.http_waiting() => self.take_resumed_http(),
            // No new requests are taken once the server is shutting down.
            Phase::Http(_) if env.shutting_down => None,
            Phase::Http(_) => self.take_http_batch(env),
            _ => self.take_messages(env).map(Work::Messages),
        };
        let Some(work) = work else {
            self.work_done(env);
            return None;
        };
        let queued = self.output_len();
        Some(Job::Run(Run {
            lease: self.job.lend(self.id, work.held_bytes()),
            work,
            session: self.state.take(),
            queued,
        }))
    }

    /// The job from [`poll_job`](Self::poll_job) found the job queue full: it waits here, and
    /// reading stops as the connection fills up — HTTP at once (it is not idle), WebSocket when
    /// its inbox is full.
    pub(crate) fn job_refused(&mut self, job: Job) {
        match job {
            Job::Run(run) => {
                log::trace!("{}: job queue full, job held", self.id);
                self.job.hold(run);
            }
            Job::Close { .. } => log::error!("{}: an on_close job came back", self.id),
        }
    }

    /// Nobody runs jobs any more (the workers are gone): the job is dropped, its state kept.
    pub(crate) fn job_lost(&mut self, job: Job) {
        log::error!("{}: nobody runs jobs any more; job dropped", self.id);
        if let Job::Run(run) = job {
            self.state = self.state.take().or(run.session);
            self.job.give_back(run.lease);
        }
    }

    /// What to write next: the queued bytes (one run, or several for one `writev`), FIN once a
    /// lingering connection has said everything, or nothing. (The rules that waited for the
    /// handler's work were applied by the `poll_job` before it, so a close frame they queued
    /// goes out in this write.)
    #[inline]
    pub(crate) fn poll_transmit(&self) -> Transmit<'_> {
        if let Some(output) = self.output.as_ref().filter(|output| !output.is_empty()) {
            return match output.chunk_count() {
                1 => Transmit::One(output.front()),
                _ => Transmit::Many,
            };
        }
        match &self.phase {
            Phase::Lingering(lingering) if !lingering.fin_sent => Transmit::Fin,
            _ => Transmit::Nothing,
        }
    }

    /// The queued chunks as slices for one `writev` (after [`Transmit::Many`]): how many.
    pub(crate) fn transmit_slices<'a>(&'a self, slices: &mut [IoSlice<'a>; MAX_SLICES]) -> usize {
        self.output
            .as_ref()
            .map_or(0, |output| output.slices(slices))
    }

    /// `n` bytes of what [`poll_transmit`](Self::poll_transmit) offered were written.
    #[inline]
    pub(crate) fn transmitted(&mut self, env: &mut Env<'_>, n: usize) {
        if let Some(output) = self.output.as_mut() {
            output.advance(n, &mut env.pool.chunks);
        }
        add(&env.metrics.bytes_out, n as u64);
        sub(&env.metrics.pending_outbound_bytes, n as u64);
        log::trace!("{}: wrote {n} bytes", self.id);
    }

    /// The write phase of a step is over: what it [`Written`]. Keeps the write-stall clock (it
    /// runs from the last write that made progress while output remains) and the idle clocks
    /// that count from the last byte out. True when the write made room for more work now:
    /// output that held dispatch and reading back fell below its limit, or `on_drain` became due.
    #[inline]
    pub(crate) fn write_ended(&mut self, env: &mut Env<'_>, written: Written) -> bool {
        let after = self.output_len();
        if !written.blocked && after == 0 {
            let was_waiting = self.clocks.write_blocked_since.take().is_some();
            if (was_waiting || written.progressed) && !matches!(self.phase, Phase::Open(_)) {
                // Keep-alive idleness and the close timeout count from the last byte out.
                self.clocks.wait_since = env.now;
            }
            self.drained(env);
        } else if written.progressed || self.clocks.write_blocked_since.is_none() {
            self.clocks.write_blocked_since = Some(env.now);
        }
        let limit = env.config.max_outbound_bytes;
        let was_held_back = after + written.bytes >= limit;
        self.note_drained(env) || (was_held_back && after < limit)
    }

    /// Has the session reached `Closed` (the loop removes it after this step)?
    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed(_))
    }

    /// Output is stuck: bytes wait and the last write made no progress (what the memory budget
    /// drops first, over its limit).
    pub(crate) fn write_blocked(&self) -> bool {
        self.clocks.write_blocked_since.is_some()
    }

    /// The loop sent FIN, as [`Transmit::Fin`] asked.
    pub(crate) fn fin_sent(&mut self, env: &mut Env<'_>) {
        if let Phase::Lingering(lingering) = &mut self.phase {
            lingering.fin_sent = true;
            log::trace!("{}: FIN sent", self.id);
        }
        self.drained(env);
    }

    /// A command from another thread for this connection.
    pub(crate) fn command(&mut self, env: &mut Env<'_>, push: Push) {
        match push {
            Push::Send(bytes) => self.push(env, &bytes),
            Push::Close(frame) => {
                self.we_close(env, frame.code, &frame.reason, CloseKind::Clean);
            }
        }
    }

    /// A deadline the loop scheduled came due: whatever is due now happens (a clock that moved
    /// later has nothing due yet, and the next [`Outcome`] says when).
    pub(crate) fn on_timer(&mut self, env: &mut Env<'_>) {
        if let Some((when, due)) = self.next_deadline(env.config)
            && when <= env.now
        {
            self.expire(env, due);
        }
    }

    /// The loop is being dropped with this session in it: a job held for room in the queue is
    /// let go, its lease with it.
    pub(crate) fn drop_held_job(&mut self) {
        if let JobSlot::Held(run) = std::mem::take(&mut self.job) {
            run.lease.end();
        }
    }

    /// Where the session stands after a step: what the loop must do now. Idle buffers go back
    /// to the pool first, so an idle connection holds none.
    #[inline]
    pub(crate) fn outcome(&mut self, env: &mut Env<'_>) -> Outcome {
        if let Phase::Closed(closed) = &mut self.phase {
            let owed = OwedClose::new(std::mem::replace(
                &mut closed.on_close,
                crate::session::phase::OnClose::Nothing,
            ));
            let kind = closed.kind;
            // A deferred job is taken back now: its completion, when it comes, finds the
            // connection closed. If one is already running, its reply settles `on_close`.
            if let Taken::Back(reply) = self.job.take_back(Reclaimed::Closed) {
                let reply = *reply;
                self.state = self.state.take().or(reply.session);
                self.job.give_back(reply.lease);
            }
            let job_running = matches!(self.job, JobSlot::InFlight(_));
            // The state is here, or in a job that waited for room (and dies with it); a running
            // job has it, and its reply brings it to the owed `on_close`.
            let state = self.state.take().or_else(|| match &mut self.job {
                JobSlot::Held(run) => run.session.take(),
                _ => None,
            });
            if let JobSlot::Held(run) = std::mem::take(&mut self.job) {
                run.lease.end();
            }
            self.return_all_buffers(env);
            return Outcome {
                write: false,
                held: 0,
                deadline: None,
                job_held: false,
                ended: Some(Ending {
                    kind,
                    owed,
                    state,
                    job_running,
                    admission: self.admission,
                }),
            };
        }
        self.release_buffers(env.pool);
        Outcome {
            write: self.output_len() > 0,
            held: self.buffered_bytes(),
            deadline: self.next_deadline(env.config).map(|(at, _)| at),
            job_held: matches!(self.job, JobSlot::Held(_)),
            ended: None,
        }
    }

    /// Bytes waiting to go to the peer, in the session's own queue.
    #[inline]
    pub(crate) fn output_len(&self) -> usize {
        self.output.as_ref().map_or(0, WriteBuffer::len)
    }

    /// Bytes of memory the session holds for its peer now: its read buffer, a message the
    /// decoder assembles, messages in its inbox, its job (held, or with the handler), pushes
    /// waiting for the `101`, and its output. What the server's memory budget counts (with what
    /// the transport holds); zero for an idle connection.
    #[inline]
    pub(crate) fn buffered_bytes(&self) -> usize {
        let input = self.input.as_ref().map_or(0, ReadBuffer::capacity);
        let phase = match &self.phase {
            Phase::Open(open) => open.decoder.buffered_bytes() + open.inbox.bytes(),
            Phase::PeerClosed(closed) => closed.inbox.bytes(),
            Phase::Closing(closing) => closing.decoder.buffered_bytes(),
            Phase::Upgrading(upgrading) => upgrading.early.as_ref().map_or(0, |early| early.len()),
            Phase::Lingering(_) | Phase::Closed(_) | Phase::Http(_) => 0,
        };
        let phase = phase + self.http_waiting_bytes();
        input + self.job.bytes() + phase + self.output_len()
    }

    /// No job with the handler or waiting, no messages or requests held, no out-of-order
    /// completion outstanding: the handler's work is done.
    #[inline]
    pub(crate) fn is_idle(&self) -> bool {
        matches!(self.job, JobSlot::Idle)
            && self.phase.inbox().is_none_or(|inbox| inbox.is_settled())
            && !self.http_waiting()
    }

    /// An open WebSocket (or one whose peer has closed while its last messages are handled):
    /// what broadcasts go to.
    pub(crate) fn is_websocket(&self) -> bool {
        matches!(self.phase, Phase::Open(_) | Phase::PeerClosed(_))
    }

    /// In `Http`: has a request begun? Its bytes wait in the read buffer, or the parser holds
    /// part of it already (a chunked body is decoded as it arrives, so the buffer may be
    /// empty mid-request). `request_timeout` runs, and answers `408`, while one has.
    pub(crate) fn request_begun(&self) -> bool {
        self.input.as_ref().is_some_and(|input| !input.is_empty())
            || matches!(&self.phase, Phase::Http(http) if http.parser.has_begun())
    }

    /// A job's reply came back: the lease goes home to the job slot, and the state machine
    /// takes the rest (`machine.rs`).
    #[inline]
    pub(crate) fn replied(&mut self, env: &mut Env<'_>, reply: Reply) {
        let Reply {
            lease,
            mut output,
            after,
            session,
        } = reply;
        self.job.give_back(lease);
        let after = self.resume_http(output.http.take(), after); // `http_later.rs`
        if session.is_some() {
            // Back from the handler (or new from `on_open`): kept until the next job, or
            // `on_close`, even if the connection is closing now.
            self.state = session;
        }
        self.apply_reply(env, output, after);
    }
}

impl Session {
    /// The phase's name, as the trace spells it (`Http`, `Open`, `Lingering`…).
    pub(crate) fn phase_name(&self) -> &'static str {
        self.phase.name()
    }
}

/// What the unit tests and the fuzz harness check of a session after every step.
#[cfg(any(test, feature = "fuzzing"))]
impl Session {
    /// Bytes read and not yet decoded or parsed.
    pub(crate) fn input_len(&self) -> usize {
        self.input.as_ref().map_or(0, ReadBuffer::len)
    }

    /// Messages waiting in the inbox for the next job.
    pub(crate) fn inbox_len(&self) -> usize {
        self.phase.inbox().map_or(0, |inbox| inbox.len())
    }

    /// The queued output, if the session holds a write buffer.
    pub(crate) fn output(&self) -> Option<&WriteBuffer> {
        self.output.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Memory per idle connection is a headline number: the session is most of what an idle
    /// upgraded connection costs in user space (no buffers, an 8-byte decoder); the table's
    /// entry adds the transport and the netpoller's bookkeeping (`netpoller/table.rs`).
    #[test]
    fn an_idle_session_is_small() {
        let size = std::mem::size_of::<Session>();
        eprintln!("size_of::<Session>() = {size}");
        assert!(size <= 288, "Session grew to {size} bytes");
    }
}
