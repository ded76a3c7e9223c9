//! Which deadline a connection is waiting for, derived from its state instead of stored, and
//! what happens when it comes due.
//!
//! A connection can be under several clocks at once (an open WebSocket: keepalive ping,
//! maximum lifetime, and a write stall if output is stuck). Rather than keep a timer per clock,
//! [`Connection::next_deadline`] computes the earliest one from the connection's timestamps; the
//! event loop puts it on its timer heap only when it is *earlier* than what is already scheduled
//! (`netpoller/table.rs`). Clocks that move later (every read pushes the ping back) cost nothing:
//! when the earlier heap entry comes due, the loop recomputes, finds nothing due yet, and re-arms
//! for the new instant. So a busy connection pushes about one heap entry per `ping_interval`,
//! not one per read.
//!
//! | deadline | applies | when it fires |
//! |---|---|---|
//! | `request_timeout` | `Http`, from the first byte of a request (or accept) to its end, chunked body included | `408` if bytes came, else close |
//! | `monitoring_timeout` | `Http` on the monitoring reserve, from accept to the end of the head; also caps its write stall and linger | `408` if bytes came, else close |
//! | `keep_alive_timeout` | `Http`, idle after a response | close |
//! | `ping_interval` | `Open`, since the last byte received | send a ping |
//! | `pong_timeout` | `Open`, after our ping | drop (`1006` to `on_close`) |
//! | `max_lifetime` | `Open`, since the upgrade | close `1001` |
//! | `message_timeout` | `Open`, from a message's first byte while the decoder holds it in part | close `1008` |
//! | `write_stall_timeout` | any phase, output stuck without progress | drop (`1008` to `on_close`) |
//! | `close_timeout` | `Closing`/`Lingering`, after output drained | drop |
//! | `deferred_timeout` | any phase, while a handler call's completion is deferred | take the job back; `on_deferred_timeout` (default: close `1011`) |
//! | `deferred_timeout`, out of order | `Open`, `PeerClosed`, each outstanding `Context::defer_unordered` | end it; `on_unordered_timeout` with its tag (default: close `1011`), in the next job |
//! | the handler's timers (`Context::set_timer`) | `Open`, the earliest of them, while no job is out and one may go out | `on_timer` for each that is due, in the next job (`timers.rs`) |
//!
//! A duration at its maximum (`Duration::MAX`) means the clock never runs out: every instant
//! here comes from `config::deadline_after`, which takes anything past a century as a century.

use std::time::Instant;

use crate::config::{Config, deadline_after};
use crate::metrics::{TimeoutKind, add};
use crate::session::connection::Session;
use crate::session::env::Env;
use crate::session::phase::{JobSlot, Open, Phase};

use crate::ws::{OpCode, encode_frame};

/// What happens when a deadline comes due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// The WebSocket has been silent for `ping_interval`: send a ping.
    Ping,
    /// A timeout: the connection is answered (`408`), closed (`1001`) or dropped.
    Timeout(TimeoutKind),
    /// A deferred completion did not come within `deferred_timeout`: take the job back.
    Deferred,
    /// A timer the handler set came due: the next job takes it (`timers.rs`).
    Timer,
    /// An out-of-order completion did not come within `deferred_timeout` (`unordered.rs`).
    Unordered,
}

impl Session {
    /// The earliest deadline that applies to the connection in its current state, if any.
    pub(crate) fn next_deadline(&self, config: &Config) -> Option<(Instant, Due)> {
        let mut earliest: Option<(Instant, Due)> = None;
        let mut consider = |at: Instant, due: Due| {
            if earliest.is_none_or(|(t, _)| at < t) {
                earliest = Some((at, due));
            }
        };
        let clocks = &self.clocks;
        // Every configured duration is added through `deadline_after`: at its maximum it means
        // "never" rather than an `Instant` overflow. A reserve connection's clocks are all
        // capped at `monitoring_timeout`.
        let after = |since: Instant, timeout| deadline_after(since, timeout);
        let limit = |timeout| self.clock_limit(timeout, config);
        if let Some(since) = clocks.write_blocked_since {
            let kind = TimeoutKind::WriteStall;
            consider(
                after(since, limit(config.write_stall_timeout)),
                Due::Timeout(kind),
            );
        }
        if let Some(at) = self.job.deferred_deadline() {
            consider(at, Due::Deferred);
        }
        if let Some(at) = self
            .phase
            .inbox()
            .and_then(|inbox| inbox.unordered_deadline())
        {
            consider(at, Due::Unordered);
        }
        let waiting = self.is_idle() && self.output_len() == 0;
        match &self.phase {
            Phase::Http(http) if waiting => {
                if self.request_begun() || !http.served {
                    let at = after(clocks.wait_since, limit(config.request_timeout));
                    consider(at, Due::Timeout(TimeoutKind::Request));
                } else {
                    let at = after(clocks.wait_since, config.keep_alive_timeout);
                    consider(at, Due::Timeout(TimeoutKind::Idle));
                }
            }
            Phase::Open(open) => self.open_deadlines(open, config, &mut consider),
            Phase::Closing(_) | Phase::Lingering(_) if self.output_len() == 0 => {
                let at = after(clocks.wait_since, limit(config.close_timeout));
                consider(at, Due::Timeout(TimeoutKind::Close));
            }
            _ => {}
        }
        earliest
    }

    /// The clocks of an open WebSocket: a message arriving, its lifetime, the keepalive.
    fn open_deadlines(
        &self,
        open: &Open,
        config: &Config,
        consider: &mut impl FnMut(Instant, Due),
    ) {
        if let Some(since) = open.message_since {
            let kind = TimeoutKind::Message;
            consider(
                deadline_after(since, config.message_timeout),
                Due::Timeout(kind),
            );
        }
        if let Some(lifetime) = config.max_lifetime {
            let kind = TimeoutKind::Lifetime;
            // In `Open`, `wait_since` is when it opened: no event of the phase moves it.
            let opened_at = self.clocks.wait_since;
            consider(deadline_after(opened_at, lifetime), Due::Timeout(kind));
        }
        // A timer that comes due while a job is out (or output holds jobs back) waits for it:
        // it fires with the next job, and is the connection's deadline again only then.
        if let Some(at) = open.timers.earliest()
            && matches!(self.job, JobSlot::Idle)
            && self.may_dispatch(config)
        {
            consider(at, Due::Timer);
        }
        if let Some(interval) = config.ping_interval {
            match open.ping_sent {
                Some(sent) => {
                    let kind = TimeoutKind::Pong;
                    consider(
                        deadline_after(sent, config.pong_timeout),
                        Due::Timeout(kind),
                    );
                }
                None => consider(deadline_after(self.clocks.last_read, interval), Due::Ping),
            }
        }
    }

    /// Acts on a deadline that came due: a keepalive ping is queued here; a timeout goes to the
    /// state machine (`machine.rs`, `timed_out`).
    pub(crate) fn expire(&mut self, env: &mut Env<'_>, due: Due) {
        match due {
            Due::Ping => {
                let Phase::Open(open) = &mut self.phase else {
                    return;
                };
                open.ping_sent = Some(env.now);
                log::trace!("{}: silent, sending a keepalive ping", self.id);
                let mut ping = Vec::with_capacity(2);
                encode_frame(&mut ping, OpCode::Ping, b"");
                self.queue(env, &ping);
                add(&env.metrics.pings_sent, 1);
            }
            Due::Timeout(kind) => self.timed_out(env, kind),
            Due::Deferred => self.deferral_expired(env),
            Due::Unordered => self.unordered_expired(env),
            // The pump's next `poll_job` takes every timer due now into a job — none once
            // the server is shutting down (a connection still awaiting out-of-order
            // completions stays open meanwhile): disarmed, they are no deadline any more.
            Due::Timer => match &mut self.phase {
                Phase::Open(open) if env.shutting_down => open.timers.clear(env.metrics),
                _ => log::trace!("{}: a timer of the handler came due", self.id),
            },
        }
    }
}
