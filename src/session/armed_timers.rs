//! An open WebSocket's armed timers ([`ArmedTimers`], kept in its `Open` phase): a key and an
//! instant each, the earliest found by a look through them. What a handler's requests do to
//! them and how they fire is `timers.rs`.

use std::time::Instant;

use crate::dispatch::FiredTimers;
use crate::metrics::{Metrics, add, sub};

/// An open WebSocket's armed timers: at most `max_timers_per_connection`, in the order they
/// were first set. Boxed, and `None` without any: 8 bytes in every connection, the rest only
/// in those that use timers, given back when the last one fires or is cancelled.
#[derive(Debug, Default)]
pub(crate) struct ArmedTimers {
    #[allow(clippy::box_collection)]
    entries: Option<Box<Vec<Armed>>>,
}

#[derive(Debug, Clone, Copy)]
struct Armed {
    key: u64,
    at: Instant,
}

impl ArmedTimers {
    fn all(&self) -> &[Armed] {
        self.entries.as_deref().map_or(&[], Vec::as_slice)
    }

    /// The earliest instant, if any timer is armed.
    #[inline]
    pub(crate) fn earliest(&self) -> Option<Instant> {
        self.entries.as_ref()?.iter().map(|armed| armed.at).min()
    }

    /// Is a timer due at `now`?
    pub(crate) fn any_due(&self, now: Instant) -> bool {
        self.all().iter().any(|armed| armed.at <= now)
    }

    /// Timers armed.
    pub(crate) fn len(&self) -> usize {
        self.all().len()
    }

    /// The timers end with the phase: the gauge forgets them.
    pub(crate) fn forget(&self, metrics: &Metrics) {
        if self.len() > 0 {
            sub(&metrics.connection_timers, self.len() as u64);
        }
    }

    /// Disarms every timer (the server is shutting down: none would fire).
    pub(crate) fn clear(&mut self, metrics: &Metrics) {
        self.forget(metrics);
        self.entries = None;
    }

    /// What a job takes along: the keys due at `now`, taken out in the order of their
    /// instants, and the keys of the others. `None` for a connection without timers.
    pub(crate) fn take_for_job(
        &mut self,
        now: Instant,
        metrics: &Metrics,
    ) -> Option<Box<FiredTimers>> {
        let entries = self.entries.as_mut()?;
        let mut due: Vec<Armed> = entries.iter().filter(|a| a.at <= now).copied().collect();
        due.sort_by_key(|armed| armed.at);
        entries.retain(|armed| armed.at > now);
        if !due.is_empty() {
            sub(&metrics.connection_timers, due.len() as u64);
            add(&metrics.timers_fired, due.len() as u64);
        }
        let armed = entries.iter().map(|armed| armed.key).collect();
        if entries.is_empty() {
            self.entries = None;
        }
        Some(Box::new(FiredTimers {
            fired: due.into_iter().map(|armed| armed.key).collect(),
            armed,
        }))
    }

    /// Arms `key` at `at`, or moves it there; refused past `limit` (the handler's `Context`
    /// refused it already: this only keeps the bound whatever a job says).
    pub(crate) fn set(&mut self, key: u64, at: Instant, limit: usize, metrics: &Metrics) -> bool {
        // Most connections keep one timer (a heartbeat): room for one, grown if need be.
        let entries = self
            .entries
            .get_or_insert_with(|| Box::new(Vec::with_capacity(1)));
        if let Some(armed) = entries.iter_mut().find(|armed| armed.key == key) {
            armed.at = at;
            return true;
        }
        if entries.len() >= limit {
            if entries.is_empty() {
                self.entries = None;
            }
            return false;
        }
        entries.push(Armed { key, at });
        add(&metrics.connection_timers, 1);
        true
    }

    pub(crate) fn cancel(&mut self, key: u64, metrics: &Metrics) {
        let Some(entries) = self.entries.as_mut() else {
            return;
        };
        let before = entries.len();
        entries.retain(|armed| armed.key != key);
        if entries.len() < before {
            sub(&metrics.connection_timers, 1);
        }
        if entries.is_empty() {
            self.entries = None;
        }
    }
}
