//! Every backpressure rule of a connection, in one place.
//!
//! Three bounded places can fill: a connection's inbox (messages waiting for its next job), its
//! outbound queue, and the shared job queue (a job that found it full is held on the
//! connection). When one is full the session stops reading that socket: the kernel's receive
//! buffer fills, TCP's window closes, and the client slows down. Nothing decoded is dropped and
//! no queue grows past its bound. Pushes from other threads are the one producer the loop cannot
//! slow down this way, so they have a hard bound instead: past twice `max_outbound_bytes` the
//! client is a slow consumer and is dropped (`machine.rs`, `slow_consumer`). Broadcasts and topic
//! publications are pushes too, under the same bound.
//!
//! Below those bounds the handler can see its own: the bytes queued for its connection
//! (`Context::queued_bytes`), whether a send took them past `high_water_bytes`
//! (`Context::send` answers [`Pressure`](crate::Pressure)), and `on_drain` once they fall back
//! to `low_water_bytes` — the application's chance to slow down before the slow-consumer rule
//! drops the client.
//!
//! Each bound is per connection; their sum is bounded by the server's memory budget
//! (`max_buffered_bytes`, kept by `netpoller/budget.rs`). Near it, the loop passes a
//! `hold_limit` in the [`Turn`]: a connection already holding that much is not read either,
//! which is the same backpressure applied to the biggest holders first.

use std::sync::Arc;

use crate::config::Config;
use crate::metrics::add;
use crate::session::connection::Session;
use crate::session::env::Env;
use crate::session::phase::{Drain, JobSlot, Phase};

impl Session {
    /// Should the loop read from this socket now? False when the connection holds as much as it
    /// may, when it waits for the handler (HTTP reads one batch at a time), or when the peer has
    /// nothing more to say.
    #[inline]
    pub(crate) fn wants_input(&self, env: &Env<'_>) -> bool {
        let room_out = self.output_len() < env.config.max_outbound_bytes;
        match &self.phase {
            // While an answer is deferred (`http_later.rs`) it reads on, into its read buffer
            // and no further: a reset (or EOF) is noticed while the answer is awaited.
            Phase::Http(http) => {
                !http.peer_eof
                    && (self.is_idle() || matches!(self.job, JobSlot::Deferred(_)))
                    && room_out
                    && !env.shutting_down
                    && self.within_budget(env)
            }
            Phase::Open(open) => {
                !env.shutting_down
                    && room_out
                    && !open.inbox.is_full(env.config)
                    && self.within_budget(env)
            }
            // After our close frame, and while lingering, everything is read and discarded —
            // while our output moves. With it blocked (the peer does not read), our close
            // frame or response cannot reach the peer, and discarding would have no end but
            // the write stall: a client could have the loop read gigabytes at full speed.
            Phase::Closing(_) => self.clocks.write_blocked_since.is_none(),
            Phase::Lingering(lingering) => {
                !lingering.peer_eof && self.clocks.write_blocked_since.is_none()
            }
            Phase::Upgrading(_) | Phase::PeerClosed(_) | Phase::Closed(_) => false,
        }
    }

    /// The memory budget's rule: near the budget, a connection that already holds
    /// `env.hold_limit` bytes or more is not read (the loop lists it, and drives it again
    /// when the pressure passes). Those holding little — well-behaved clients — read on.
    #[inline]
    pub(crate) fn within_budget(&self, env: &Env<'_>) -> bool {
        env.hold_limit == usize::MAX || self.buffered_bytes() < env.hold_limit
    }

    /// May the next job go out? Not while one is out, and not while the outbound queue is at its
    /// limit (the job's reply would only add to it).
    #[inline]
    pub(crate) fn may_dispatch(&self, config: &Config) -> bool {
        !self.job.is_out() && self.output_len() < config.max_outbound_bytes
    }

    /// Queues bytes pushed from another thread (`ServerHandle::send`, a broadcast) if the
    /// connection can take them: an open WebSocket, or one whose upgrade is with the handler
    /// (they follow the `101`). Past the hard bound the connection is dropped as a slow
    /// consumer. A push to a connection that is ending is dropped and counted as stale.
    pub(crate) fn push(&mut self, env: &mut Env<'_>, bytes: &[u8]) {
        let limit = env.config.max_pushed_bytes();
        match &mut self.phase {
            Phase::Open(_) | Phase::PeerClosed(_) => {
                if self.output_len() + bytes.len() > limit {
                    return self.slow_consumer(env);
                }
                self.queue(env, bytes);
                add(&env.metrics.messages_out, 1);
                self.note_backlog(env);
            }
            Phase::Upgrading(upgrading) => {
                let early = upgrading.early.get_or_insert_with(Box::default);
                if early.len() + bytes.len() > limit {
                    return self.slow_consumer(env);
                }
                early.extend_from_slice(bytes);
                add(&env.metrics.messages_out, 1);
            }
            _ => add(&env.metrics.stale_replies_dropped, 1),
        }
    }

    /// Output was queued: past `high_water_bytes` an open WebSocket is backlogged, and its
    /// handler will hear `on_drain` when the output falls to `low_water_bytes`.
    #[inline]
    pub(crate) fn note_backlog(&mut self, env: &Env<'_>) {
        let queued = self.output_len();
        if let Phase::Open(open) = &mut self.phase
            && open.inbox.drain == Drain::Flowing
            && queued >= env.config.water_marks().1
        {
            log::trace!(
                "{}: {queued} bytes queued: past the high-water mark",
                self.id
            );
            open.inbox.drain = Drain::Backlogged;
        }
    }

    /// Output was written: a backlogged WebSocket whose output fell to `low_water_bytes` owes
    /// its handler `on_drain`. True when that just happened and a job may carry it now.
    #[inline]
    pub(crate) fn note_drained(&mut self, env: &Env<'_>) -> bool {
        let queued = self.output_len();
        let may_dispatch = self.may_dispatch(env.config);
        match &mut self.phase {
            Phase::Open(open)
                if open.inbox.drain == Drain::Backlogged
                    && queued <= env.config.water_marks().0 =>
            {
                log::trace!("{}: drained to {queued} bytes: on_drain owed", self.id);
                open.inbox.drain = Drain::Due;
                may_dispatch
            }
            _ => false,
        }
    }

    /// Like [`push`](Self::push), for a frame shared with other connections (a broadcast, a
    /// topic publication): an open WebSocket queues it by reference (`queue_shared`), under the
    /// same bound. True if it was queued.
    pub(crate) fn push_shared(&mut self, env: &mut Env<'_>, frame: &Arc<[u8]>) -> bool {
        if !matches!(self.phase, Phase::Open(_) | Phase::PeerClosed(_)) {
            self.push(env, frame);
            return matches!(self.phase, Phase::Upgrading(_));
        }
        if self.output_len() + frame.len() > env.config.max_pushed_bytes() {
            self.slow_consumer(env);
            return false;
        }
        self.queue_shared(env, frame);
        add(&env.metrics.messages_out, 1);
        self.note_backlog(env);
        true
    }

    /// How large the read buffer may grow: a whole HTTP request must fit for the parser;
    /// WebSocket frames stream through the decoder, so the pooled size is enough.
    #[inline]
    pub(crate) fn max_input_len(&self, config: &Config) -> usize {
        match self.phase {
            // Reading on while an answer is deferred: one buffer's worth at most.
            Phase::Http(_) if matches!(self.job, JobSlot::Deferred(_)) => {
                config.read_buffer_size.min(config.max_http_input())
            }
            Phase::Http(_) => config.max_http_input(),
            _ => config.read_buffer_size,
        }
    }
}
