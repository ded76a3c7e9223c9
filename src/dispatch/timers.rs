//! Per-connection timers as the hand-off carries them: the keys a job tells its handler about,
//! and the requests its calls make.
//!
//! The timers themselves live in the connection's session (`session/timers.rs`), on the loop:
//! a handler runs elsewhere, so `Context::set_timer` and `Context::cancel_timer` are recorded in
//! the job's [`Output`](crate::dispatch::Output) as [`TimerRequest`]s — in order, like its
//! sends — and the session carries them out when it applies the reply. So that the handler
//! can be told at once that it asked for too many, each job brings the keys armed when it left
//! ([`FiredTimers`]), and the [`TimerBook`] in its output keeps them up to date call by call
//! (a deferred completion's output inherits it). Nothing here reads a clock: a request carries
//! its duration, and the session adds it to the loop's time.

use std::time::Duration;

/// What a job brings of its connection's timers: those that fired (in the order of their
/// deadlines; `on_timer` is called for each, after `on_drain` and before the messages), and
/// the keys of the others still armed. Both empty — no allocation — for a connection that has
/// none.
#[derive(Debug, Default)]
pub(crate) struct FiredTimers {
    pub fired: Vec<u64>,
    pub armed: Vec<u64>,
}

/// One timer request of a handler call, carried out by the session in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimerRequest {
    /// Arm `key` to fire `after` from when the loop applies the reply (resetting it if it is
    /// armed).
    Set { key: u64, after: Duration },
    /// Disarm `key` (nothing if it is not armed).
    Cancel { key: u64 },
}

/// Why a timer could not be set: more would be armed than the connection may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooMany {
    pub limit: usize,
}

/// A job's view of its connection's timers, kept up to date by its calls, and the requests
/// they made.
#[derive(Debug, Default)]
pub(crate) struct TimerBook {
    /// Keys armed now as the calls see them: those of the job (fired ones included until their
    /// `on_timer` begins), plus those set since, minus those cancelled.
    armed: Vec<u64>,
    /// Fired keys whose `on_timer` has not begun: a set or a cancel of one takes it out (the
    /// call is not made). Those left when a call defers go back to the connection, still due.
    pub(crate) fired: Vec<u64>,
    /// The requests, in order.
    pub(crate) requests: Vec<TimerRequest>,
    /// `Config::max_timers_per_connection`.
    limit: usize,
}

impl TimerBook {
    /// The book of a job that brought `timers`, for a connection that may arm `limit`.
    pub(crate) fn new(timers: FiredTimers, limit: usize) -> Self {
        let FiredTimers { fired, mut armed } = timers;
        armed.extend_from_slice(&fired);
        TimerBook {
            armed,
            fired,
            requests: Vec::new(),
            limit,
        }
    }

    /// The same view, with no requests and nothing fired: where a deferred call's completion
    /// goes on.
    pub(crate) fn sibling(&self) -> Self {
        TimerBook {
            armed: self.armed.clone(),
            fired: Vec::new(),
            requests: Vec::new(),
            limit: self.limit,
        }
    }

    /// Arms (or resets) `key`; refused if it is new and the connection has `limit` armed.
    pub(crate) fn set(&mut self, key: u64, after: Duration) -> Result<(), TooMany> {
        if !self.armed.contains(&key) {
            if self.armed.len() >= self.limit {
                return Err(TooMany { limit: self.limit });
            }
            self.armed.push(key);
        }
        self.fired.retain(|&k| k != key);
        self.requests.push(TimerRequest::Set { key, after });
        Ok(())
    }

    /// Disarms `key`; true if it was armed.
    pub(crate) fn cancel(&mut self, key: u64) -> bool {
        let was = self.armed.contains(&key);
        if was {
            self.armed.retain(|&k| k != key);
            self.fired.retain(|&k| k != key);
            self.requests.push(TimerRequest::Cancel { key });
        }
        was
    }

    /// The next fired timer whose `on_timer` is due now, taken: it is no longer armed.
    pub(crate) fn next_fired(&mut self) -> Option<u64> {
        if self.fired.is_empty() {
            return None;
        }
        let key = self.fired.remove(0);
        self.armed.retain(|&k| k != key);
        Some(key)
    }

    /// Keys armed now, as the calls see them.
    pub(crate) fn armed(&self) -> usize {
        self.armed.len()
    }

    /// Nothing to carry out.
    pub(crate) fn is_empty(&self) -> bool {
        self.requests.is_empty() && self.fired.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book(fired: &[u64], armed: &[u64], limit: usize) -> TimerBook {
        let timers = FiredTimers {
            fired: fired.to_vec(),
            armed: armed.to_vec(),
        };
        TimerBook::new(timers, limit)
    }

    #[test]
    fn a_new_key_past_the_limit_is_refused_and_a_reset_is_not() {
        let mut book = book(&[], &[1, 2], 2);
        assert_eq!(book.set(1, Duration::ZERO), Ok(()), "a reset");
        assert_eq!(book.set(3, Duration::ZERO), Err(TooMany { limit: 2 }));
        assert!(book.cancel(2));
        assert!(!book.cancel(2), "not armed any more");
        assert_eq!(book.set(3, Duration::MAX), Ok(()));
        assert_eq!(book.armed(), 2);
        assert_eq!(
            book.requests.len(),
            3,
            "a refused set, a vain cancel: no request"
        );
    }

    #[test]
    fn fired_timers_count_until_their_call_and_a_reset_or_cancel_skips_it() {
        let mut book = book(&[5, 6, 7], &[1], 4);
        assert_eq!(book.armed(), 4);
        assert_eq!(book.set(9, Duration::ZERO), Err(TooMany { limit: 4 }));
        assert!(book.cancel(6));
        assert_eq!(book.set(7, Duration::from_secs(1)), Ok(()), "reset");
        assert_eq!(book.next_fired(), Some(5));
        assert_eq!(book.next_fired(), None, "6 cancelled, 7 reset");
        assert_eq!(book.armed(), 2, "1 and 7");
        assert_eq!(book.sibling().armed(), 2);
    }
}
