//! A handler's timers for its own connection: [`Context::set_timer`] and
//! [`Context::cancel_timer`].
//!
//! The calls are recorded in the job's output (`dispatch/timers.rs`), in order, and carried
//! out by the connection's session on the loop when the reply is applied; the loop's clock
//! starts each timer then. The job brought the keys armed when it left, so a set past
//! `max_timers_per_connection` is refused here, at once.

use std::time::Duration;

use crate::error::TimerError;
use crate::handler::Context;

impl<S> Context<'_, S> {
    /// Arms a timer for this connection: [`Handler::on_timer`](crate::Handler::on_timer) is
    /// called with `key` once `after` has passed (counted from when this call's work reaches
    /// the event loop), in order with the connection's other calls. `key` is yours to choose;
    /// setting a key that is armed resets it to the new duration. Zero fires with the next
    /// job; `Duration::MAX` (past a century) never fires. A timer fires once: set it again in
    /// `on_timer` for a heartbeat.
    ///
    /// `Err` when the connection already has
    /// [`Config::max_timers_per_connection`](crate::Config::max_timers_per_connection) timers
    /// armed and `key` is not one of them: nothing is armed. After
    /// [`close`](Self::close) it is ignored (a closing connection's timers never fire).
    pub fn set_timer(&mut self, key: u64, after: Duration) -> Result<(), TimerError> {
        if self.output.close.is_some() {
            log::debug!("{}: set_timer after close ignored", self.conn);
            return Ok(());
        }
        let limit = self.flow.max_timers;
        self.output
            .timers(limit)
            .set(key, after)
            .map_err(|refused| TimerError::TooMany(refused.limit))
    }

    /// Disarms this connection's timer `key`: its `on_timer` will not be called (unless it is
    /// set again). True if it was armed — a timer that has fired and whose `on_timer` has
    /// begun is not.
    pub fn cancel_timer(&mut self, key: u64) -> bool {
        match self.output.timers.as_deref_mut() {
            Some(book) => book.cancel(key),
            None => false,
        }
    }

    /// Timers armed on this connection now, as this call sees them (its own sets and cancels
    /// included).
    pub fn armed_timers(&self) -> usize {
        self.output.timers.as_deref().map_or(0, |book| book.armed())
    }
}
