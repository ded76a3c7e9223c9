//! The circuit breaker around every backend call: failsafe's state machine (consecutive
//! failures open it; after a backoff it lets a call through, half-open; a success closes it, a
//! failure opens it again for twice as long, up to a ceiling), with one probe at a time while
//! half-open, and its state and transitions in the gateway's metrics.
//!
//! A backend thread asks for a [`Permit`] before it calls Redis and reports how the call went on
//! it: success, failure, or neither (the call never happened: its deadline passed first, or the
//! pool was merely busy). The WebSocket workers ask [`Breaker::refuses_now`] before queueing a
//! request, so that while Redis is down a client hears it at once, not after a queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use failsafe::failure_policy::{ConsecutiveFailures, consecutive_failures};
use failsafe::{Instrument, StateMachine};

use super::metrics::Metrics;

/// The breaker's states, as the metrics number them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed = 0,
    Open = 1,
    HalfOpen = 2,
}

/// Each state and its name in the metrics, in the order of `Metrics::breaker_transitions`.
pub const STATES: [(BreakerState, &str); 3] = [
    (BreakerState::Closed, "closed"),
    (BreakerState::Open, "open"),
    (BreakerState::HalfOpen, "half_open"),
];

impl BreakerState {
    pub fn from_u64(value: u64) -> Self {
        match value {
            1 => BreakerState::Open,
            2 => BreakerState::HalfOpen,
            _ => BreakerState::Closed,
        }
    }
}

/// How long the breaker stays open: `start`, doubled at each reopening, at most `max`
/// (failsafe's own backoffs count whole seconds; this one keeps milliseconds).
#[derive(Debug, Clone)]
pub struct Doubling {
    next: Duration,
    max: Duration,
}

impl Iterator for Doubling {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let now = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        Some(now)
    }
}

/// failsafe's hooks: the state and its transitions into the gateway's metrics.
#[derive(Debug)]
struct Observer {
    metrics: Arc<Metrics>,
}

impl Observer {
    fn entered(&self, state: BreakerState) {
        let before = self
            .metrics
            .breaker_state
            .swap(state as u64, Ordering::Relaxed);
        if before != state as u64 {
            self.metrics.breaker_transitions[state as usize].fetch_add(1, Ordering::Relaxed);
            match state {
                BreakerState::Open => log::warn!("backend breaker open: failing fast"),
                BreakerState::HalfOpen => log::info!("backend breaker half-open: probing"),
                BreakerState::Closed => log::info!("backend breaker closed: backend is back"),
            }
        }
    }
}

impl Instrument for Observer {
    fn on_call_rejected(&self) {
        self.metrics
            .breaker_rejected
            .fetch_add(1, Ordering::Relaxed);
    }

    fn on_open(&self) {
        self.entered(BreakerState::Open);
    }

    fn on_half_open(&self) {
        self.entered(BreakerState::HalfOpen);
    }

    fn on_closed(&self) {
        self.entered(BreakerState::Closed);
    }
}

/// Why a call may not go to the backend now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Open: the backend failed `failures` times in a row; it is left alone until the backoff
    /// ends.
    Open,
    /// Half-open, and another call is the probe.
    Probing,
}

/// The breaker, shared by every backend thread and WebSocket worker.
pub struct Breaker {
    machine: StateMachine<ConsecutiveFailures<Doubling>, Observer>,
    /// A half-open probe is out.
    probing: AtomicBool,
    metrics: Arc<Metrics>,
}

impl Breaker {
    pub fn new(
        failures: u32,
        backoff: Duration,
        max_backoff: Duration,
        metrics: &Arc<Metrics>,
    ) -> Self {
        let doubling = Doubling {
            next: backoff,
            max: max_backoff,
        };
        let observer = Observer {
            metrics: Arc::clone(metrics),
        };
        Breaker {
            machine: StateMachine::new(consecutive_failures(failures, doubling), observer),
            probing: AtomicBool::new(false),
            metrics: Arc::clone(metrics),
        }
    }

    /// Permission for one call, or why not.
    pub fn permit(&self) -> Result<Permit<'_>, Refusal> {
        if !self.machine.is_call_permitted() {
            return Err(Refusal::Open);
        }
        let probe = self.metrics.breaker_state() == BreakerState::HalfOpen;
        if probe && self.probing.swap(true, Ordering::AcqRel) {
            self.metrics
                .breaker_rejected
                .fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::Probing);
        }
        Ok(Permit {
            breaker: self,
            probe,
        })
    }

    /// Would a call be refused now? For the WebSocket workers, before they queue a request:
    /// only an open breaker (or one whose probe is out) refuses.
    pub fn refuses_now(&self) -> Option<Refusal> {
        match self.metrics.breaker_state() {
            BreakerState::Closed => None,
            BreakerState::HalfOpen if self.probing.load(Ordering::Acquire) => {
                self.metrics
                    .breaker_rejected
                    .fetch_add(1, Ordering::Relaxed);
                Some(Refusal::Probing)
            }
            BreakerState::HalfOpen => None,
            // Past the backoff this moves it to half-open, and lets the request through.
            BreakerState::Open => (!self.machine.is_call_permitted()).then_some(Refusal::Open),
        }
    }
}

/// One call's permission: report its outcome on it. Dropped without a report, it counts for
/// nothing (and frees the probe).
pub struct Permit<'a> {
    breaker: &'a Breaker,
    probe: bool,
}

impl Permit<'_> {
    /// The backend answered (an error reply from Redis counts: Redis is up).
    pub fn success(self) {
        self.breaker.machine.on_success();
    }

    /// The backend could not be reached, or failed the call.
    pub fn failure(self) {
        self.breaker.machine.on_error();
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.probe {
            self.breaker.probing.store(false, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_opens_after_consecutive_failures_probes_once_and_closes() {
        let metrics = Arc::new(Metrics::default());
        let backoff = Duration::from_millis(50);
        let breaker = Breaker::new(3, backoff, Duration::from_secs(1), &metrics);
        breaker.permit().unwrap().failure();
        breaker.permit().unwrap().success();
        for _ in 0..2 {
            breaker.permit().unwrap().failure();
        }
        assert_eq!(
            metrics.breaker_state(),
            BreakerState::Closed,
            "not consecutive yet"
        );
        breaker.permit().unwrap().failure();
        assert_eq!(metrics.breaker_state(), BreakerState::Open);
        assert_eq!(breaker.permit().err(), Some(Refusal::Open));
        assert_eq!(breaker.refuses_now(), Some(Refusal::Open));
        std::thread::sleep(backoff + Duration::from_millis(5));
        let probe = breaker.permit().expect("the probe");
        assert_eq!(metrics.breaker_state(), BreakerState::HalfOpen);
        assert_eq!(breaker.permit().err(), Some(Refusal::Probing));
        assert_eq!(breaker.refuses_now(), Some(Refusal::Probing));
        probe.failure();
        assert_eq!(metrics.breaker_state(), BreakerState::Open, "reopened");
        std::thread::sleep(2 * backoff + Duration::from_millis(5));
        breaker.permit().expect("the second probe").success();
        assert_eq!(metrics.breaker_state(), BreakerState::Closed);
        let transitions: Vec<u64> = metrics
            .breaker_transitions
            .iter()
            .map(|t| t.load(Ordering::Relaxed))
            .collect();
        assert_eq!(
            transitions,
            [1, 2, 2],
            "closed once, opened twice, half-open twice"
        );
        assert_eq!(metrics.breaker_rejected.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn the_open_period_doubles_up_to_its_ceiling() {
        let mut doubling = Doubling {
            next: Duration::from_millis(300),
            max: Duration::from_secs(1),
        };
        let periods: Vec<u128> = (0..4)
            .map(|_| doubling.next().unwrap().as_millis())
            .collect();
        assert_eq!(periods, [300, 600, 1000, 1000]);
    }
}
