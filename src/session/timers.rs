//! A WebSocket's own timers (`Context::set_timer`): kept in its `Open` phase, fired as work
//! for its job.
//!
//! A handler's timer requests arrive with its reply ([`apply_timers`](Session::apply_timers),
//! from `machine.rs`): each `set` becomes an instant on the loop's clock, each `cancel` removes
//! one. The earliest instant is one more deadline of the connection (`deadline.rs`), so the
//! loop's timer heap wakes it — but only while no job is out and one may go out: a timer that
//! comes due meanwhile waits, and fires with the next job. Then
//! [`timers_for_job`](Session::timers_for_job) hands every due key to the job in the order of
//! their instants (`on_timer` is called for each, in order with the connection's other calls)
//! together with the keys still armed, which the handler's `Context` needs to refuse one too
//! many. A connection without timers holds `None` (8 bytes): no allocation, and one test per
//! step. Timers end with the `Open` phase: a connection that is closing never calls back.

use crate::config::deadline_after;
use crate::dispatch::{FiredTimers, TimerBook, TimerRequest};
use crate::session::connection::Session;
use crate::session::env::Env;
use crate::session::phase::Phase;

impl Session {
    /// Timers armed on the connection now (for the harness's checks).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn armed_timers(&self) -> usize {
        match &self.phase {
            Phase::Open(open) => open.timers.len(),
            _ => 0,
        }
    }

    /// The connection's timers for the job being made, if it is an open WebSocket that has
    /// some: the due ones taken out (none once the server is shutting down: the connection is
    /// about to close).
    pub(crate) fn timers_for_job(&mut self, env: &Env<'_>) -> Option<Box<FiredTimers>> {
        match &mut self.phase {
            Phase::Open(open) if !env.shutting_down => {
                open.timers.take_for_job(env.now, env.metrics)
            }
            _ => None,
        }
    }

    /// Is one of the connection's timers due now (a job is owed for it)?
    pub(crate) fn timer_due(&self, env: &Env<'_>) -> bool {
        matches!(&self.phase, Phase::Open(open) if !env.shutting_down && open.timers.any_due(env.now))
    }

    /// Carries out what a reply's calls asked of the timers, in order, from the loop's time
    /// now. Fired timers whose `on_timer` did not run (a call before them deferred) are armed
    /// again, due at once. Only an open WebSocket keeps timers: for one that is closing the
    /// requests are moot.
    pub(crate) fn apply_timers(&mut self, env: &mut Env<'_>, book: Option<Box<TimerBook>>) {
        let Some(book) = book.filter(|book| !book.is_empty()) else {
            return;
        };
        let Phase::Open(open) = &mut self.phase else {
            return;
        };
        let limit = env.config.max_timers_per_connection;
        let timers = &mut open.timers;
        let mut refused = 0;
        for key in book.fired.iter().copied() {
            refused += usize::from(!timers.set(key, env.now, limit, env.metrics));
        }
        for request in book.requests.iter().copied() {
            match request {
                TimerRequest::Set { key, after } => {
                    let at = deadline_after(env.now, after);
                    refused += usize::from(!timers.set(key, at, limit, env.metrics));
                }
                TimerRequest::Cancel { key } => timers.cancel(key, env.metrics),
            }
        }
        if refused > 0 {
            log::warn!(
                "{}: {refused} timers past max_timers_per_connection",
                self.id
            );
        }
    }
}
