//! [`MemoryBudget`]: one event loop's part of the server-wide bound on buffered bytes
//! (`Config::max_buffered_bytes`).
//!
//! Every per-connection limit (`max_pending_bytes`, `max_outbound_bytes`, `max_message_size`)
//! bounds one connection; this bounds their sum over the whole server. What a connection holds
//! is [`Connection::buffered_bytes`](crate::session::Connection::buffered_bytes): its read
//! buffer, a message being received, its inbox, its job, its output.
//!
//! # Accounting without contention
//!
//! Each loop keeps the exact total of its own connections (`local`): the table measures a
//! connection before and after every step and passes both here ([`charge`](MemoryBudget::charge)),
//! which is two sums of a few fields and no atomic. The loop publishes its total to the shared
//! `buffered_bytes` gauge once per turn, or sooner when it has moved by more than a 64th of the
//! budget. A loop's view of the server total is then the shared gauge with its own published
//! share replaced by its exact one: exact for its own connections, and at most a turn behind for
//! the other loops'.
//!
//! # What the budget does
//!
//! | server total | effect |
//! |---|---|
//! | under ¾ of the budget | nothing |
//! | ¾ of it or more ("pressure") | a connection holding at least [`hold_limit`](MemoryBudget::hold_limit) is not read (the table lists it and drives it again when the pressure passes) |
//! | over the budget | the table drops its slow consumers (output not draining) that hold the most, with `1008`, until its view is back under ⅞ of the budget |
//!
//! The hold limit is half a connection's fair share, `budget / (2 × open connections)`, but never
//! below two read buffers: when the total is near the budget while the average connection holds
//! under half its share, the ones over it are the cause. A well-behaved client holds one read
//! buffer at most between messages and is never paused or dropped.

use std::sync::atomic::Ordering;

use crate::config::Config;
use crate::metrics::{Metrics, adjust};

/// One loop's accounting of the bytes its connections hold, and the budget's levels.
#[derive(Debug)]
pub(crate) struct MemoryBudget {
    /// `max_buffered_bytes`: the server-wide bound.
    limit: usize,
    /// Three quarters of it: reading pauses for the biggest holders from here.
    pressure: usize,
    /// Seven eighths of it: dropping stops here.
    relief: usize,
    /// The smallest hold limit: two read buffers.
    min_hold: usize,
    /// Bytes this loop's connections hold now (exact).
    local: usize,
    /// What this loop last added to the shared `buffered_bytes` gauge.
    published: usize,
    /// The total at the last search for slow consumers that found none: searching again is
    /// pointless until the total has grown by a 64th of the budget (a search walks the slab,
    /// and pushes may ask for one thousands of times a turn).
    fruitless_at: Option<usize>,
}

impl MemoryBudget {
    pub(crate) fn new(config: &Config) -> Self {
        let limit = config.max_buffered_bytes;
        MemoryBudget {
            limit,
            pressure: limit / 4 * 3,
            relief: limit / 8 * 7,
            min_hold: config.read_buffer_size.saturating_mul(2),
            local: 0,
            published: 0,
            fruitless_at: None,
        }
    }

    /// A connection went from holding `before` bytes to `after` (0 once it is removed).
    #[inline]
    pub(crate) fn charge(&mut self, before: usize, after: usize, metrics: &Metrics) {
        if before == after {
            return; // the common case: a connection that holds nothing between events
        }
        self.local = (self.local + after).saturating_sub(before);
        if self.local.abs_diff(self.published) > self.limit / 64 {
            self.publish(metrics);
        }
    }

    /// Adds this loop's change since the last call to the shared gauge.
    pub(crate) fn publish(&mut self, metrics: &Metrics) {
        adjust(
            &metrics.buffered_bytes,
            self.published as u64,
            self.local as u64,
        );
        self.published = self.local;
    }

    /// This loop's view of the server-wide total: the shared gauge with its own share exact.
    pub(crate) fn total(&self, metrics: &Metrics) -> usize {
        let shared = metrics.buffered_bytes.load(Ordering::Relaxed) as usize;
        shared.saturating_sub(self.published) + self.local
    }

    /// Bytes this loop's connections hold now.
    pub(crate) fn local(&self) -> usize {
        self.local
    }

    /// Under pressure, the most a connection may hold and still be read; `usize::MAX` when there
    /// is no pressure.
    pub(crate) fn hold_limit(&self, metrics: &Metrics) -> usize {
        if self.total(metrics) < self.pressure {
            return usize::MAX;
        }
        let open = metrics.connections_open.load(Ordering::Relaxed).max(1) as usize;
        (self.limit / open.saturating_mul(2)).max(self.min_hold)
    }

    /// The server is over its budget and a search for slow consumers to drop may find one: it
    /// is the first search since the total passed the budget, or the last found some, or the
    /// total has grown since one found none.
    pub(crate) fn exceeded(&mut self, metrics: &Metrics) -> bool {
        let total = self.total(metrics);
        if total <= self.limit {
            self.fruitless_at = None;
            return false;
        }
        self.fruitless_at
            .is_none_or(|at| total > at.saturating_add(self.limit / 64))
    }

    /// A search for slow consumers dropped `dropped` connections.
    pub(crate) fn searched(&mut self, dropped: usize, metrics: &Metrics) {
        self.fruitless_at = (dropped == 0).then(|| self.total(metrics));
    }

    /// Dropping may stop: the total is back under seven eighths of the budget.
    pub(crate) fn relieved(&self, metrics: &Metrics) -> bool {
        self.total(metrics) <= self.relief
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(limit: usize) -> (MemoryBudget, Metrics) {
        let config = Config {
            max_buffered_bytes: limit,
            read_buffer_size: 1024,
            ..Config::default()
        };
        (MemoryBudget::new(&config), Metrics::default())
    }

    #[test]
    fn levels_follow_the_total() {
        let (mut budget, metrics) = budget(64 * 1024 * 1024);
        metrics.connections_open.store(4, Ordering::Relaxed);
        assert_eq!(budget.hold_limit(&metrics), usize::MAX, "no pressure at 0");
        budget.charge(0, 48 * 1024 * 1024, &metrics);
        assert_eq!(
            budget.hold_limit(&metrics),
            8 * 1024 * 1024,
            "half a fair share"
        );
        assert!(!budget.exceeded(&metrics));
        budget.charge(0, 17 * 1024 * 1024, &metrics);
        assert!(budget.exceeded(&metrics));
        assert!(!budget.relieved(&metrics));
        budget.charge(17 * 1024 * 1024, 8 * 1024 * 1024, &metrics);
        assert!(budget.relieved(&metrics), "56 MiB is 7/8 of 64 MiB");
        budget.charge(56 * 1024 * 1024, 0, &metrics);
        assert_eq!(budget.local(), 0);
        assert_eq!(budget.hold_limit(&metrics), usize::MAX);
    }

    #[test]
    fn a_fruitless_search_is_not_repeated_until_the_total_grows() {
        let (mut budget, metrics) = budget(64 * 1024 * 1024);
        budget.charge(0, 65 * 1024 * 1024, &metrics);
        assert!(budget.exceeded(&metrics));
        budget.searched(0, &metrics);
        assert!(
            !budget.exceeded(&metrics),
            "nothing to drop: do not search again"
        );
        budget.charge(0, 512 * 1024, &metrics);
        assert!(!budget.exceeded(&metrics), "grown by less than a 64th");
        budget.charge(0, 600 * 1024, &metrics);
        assert!(budget.exceeded(&metrics), "grown by more: search again");
        budget.searched(1, &metrics);
        assert!(budget.exceeded(&metrics), "the last search found one");
        budget.charge(66 * 1024 * 1024, 0, &metrics);
        assert!(!budget.exceeded(&metrics));
    }

    #[test]
    fn the_hold_limit_never_falls_below_two_read_buffers() {
        let (mut budget, metrics) = budget(1024 * 1024);
        metrics.connections_open.store(10_000, Ordering::Relaxed);
        budget.charge(0, 900 * 1024, &metrics);
        assert_eq!(budget.hold_limit(&metrics), 2048);
    }

    #[test]
    fn each_loop_sees_the_others_published_share() {
        let config = Config {
            max_buffered_bytes: 64 * 1024 * 1024,
            ..Config::default()
        };
        let metrics = Metrics::default();
        let mut a = MemoryBudget::new(&config);
        let mut b = MemoryBudget::new(&config);
        a.charge(0, 100_000, &metrics);
        assert_eq!(
            b.total(&metrics),
            0,
            "small moves wait for the end of the turn"
        );
        a.publish(&metrics);
        assert_eq!(b.total(&metrics), 100_000);
        b.charge(0, 5_000, &metrics);
        assert_eq!(b.total(&metrics), 105_000, "its own share is exact at once");
        a.charge(0, 2 * 1024 * 1024, &metrics);
        assert_eq!(
            b.total(&metrics),
            105_000 + 2 * 1024 * 1024,
            "a move past a 64th of the budget is published at once"
        );
        a.charge(100_000 + 2 * 1024 * 1024, 0, &metrics);
        a.publish(&metrics);
        b.publish(&metrics);
        assert_eq!(metrics.buffered_bytes.load(Ordering::Relaxed), 5_000);
    }
}
