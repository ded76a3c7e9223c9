//! The gateway's counters, and how they appear after the server's own in `/metrics`
//! (`gateway_*` families, through `Handler::write_metrics`).
//!
//! Backend threads, the pool's hooks and the breaker's instrument bump relaxed atomics; a
//! scrape reads them, with the pool's size and the queue's depth read at that moment.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use wsreactor::{Exposition, MetricKind};

use super::breaker::{BreakerState, STATES};
use super::protocol::ErrorKind;

/// Histogram buckets, in seconds: 100 µs to 10 s.
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 10.0,
];

/// A histogram of durations, lock-free.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations per bucket (not cumulative), and one past the last bucket.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|&le| seconds <= le)
            .unwrap_or(BUCKETS.len());
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn write(&self, out: &mut Exposition<'_>, name: &str, help: &str) {
        out.family(name, MetricKind::Histogram, help);
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0;
        for (i, le) in BUCKETS.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            out.sample(&bucket, &[("le", &le.to_string())], cumulative as f64);
        }
        cumulative += self.counts[BUCKETS.len()].load(Ordering::Relaxed);
        out.sample(&bucket, &[("le", "+Inf")], cumulative as f64);
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        out.sample(&format!("{name}_sum"), &[], sum);
        out.sample(&format!("{name}_count"), &[], cumulative as f64);
    }
}

/// Why the pool closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recycled {
    /// It reached `max_lifetime` (on checkout, on check-in, or in the reaper).
    Lifetime,
    /// It stayed idle for `idle_timeout` (or the pool was dropped).
    Idle,
    /// It failed: an I/O error or a timeout during a request left it unusable.
    Broken,
    /// Its `PING` on checkout failed (the backend dropped it): never handed to a request.
    FailedCheck,
}

const RECYCLED: [(Recycled, &str); 4] = [
    (Recycled::Lifetime, "lifetime"),
    (Recycled::Idle, "idle"),
    (Recycled::Broken, "broken"),
    (Recycled::FailedCheck, "failed_check"),
];

/// How requests ended, in the order of [`OUTCOMES`].
pub const OUTCOMES: [&str; 10] = [
    "ok",
    "bad_request",
    "forbidden",
    "too_many_in_flight",
    "overloaded",
    "unavailable",
    "timeout",
    "backend",
    "failed",
    "shutting_down",
];

fn outcome_index(kind: Option<ErrorKind>) -> usize {
    let name = kind.map_or("ok", ErrorKind::as_str);
    OUTCOMES.iter().position(|o| *o == name).unwrap_or(0)
}

/// Everything the gateway counts.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Requests answered, by outcome.
    pub requests: [AtomicU64; OUTCOMES.len()],
    /// Requests whose connection closed before a backend thread took them: not run.
    pub abandoned: AtomicU64,
    pub retries: AtomicU64,
    /// Requests accepted and not yet answered.
    pub in_flight: AtomicU64,
    /// Backend threads running a request now.
    pub busy_threads: AtomicU64,
    /// Backend calls (one per attempt that reached Redis), from send to answer.
    pub backend_latency: Histogram,
    /// From a request's arrival to its answer leaving the gateway.
    pub request_latency: Histogram,
    /// Threads waiting for a pooled connection now.
    pub pool_waiting: AtomicU64,
    pub pool_wait: Histogram,
    pub checkouts_failed: AtomicU64,
    pub connections_opened: AtomicU64,
    pub connect_errors: AtomicU64,
    pub recycled: [AtomicU64; RECYCLED.len()],
    /// The breaker's state (`BreakerState as u64`), its transitions by new state, and the
    /// calls it refused.
    pub breaker_state: AtomicU64,
    pub breaker_transitions: [AtomicU64; STATES.len()],
    pub breaker_rejected: AtomicU64,
}

/// What a scrape reads besides the counters.
pub struct Gauges {
    pub pool_connections: u32,
    pub pool_idle: u32,
    pub pool_max: u32,
    pub queue_depth: usize,
    pub threads: usize,
}

impl Metrics {
    /// A request answered: `None` for success.
    pub fn answered(&self, kind: Option<ErrorKind>) {
        self.requests[outcome_index(kind)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn recycled(&self, why: Recycled) {
        let slot = RECYCLED.iter().position(|(r, _)| *r == why).unwrap_or(0);
        self.recycled[slot].fetch_add(1, Ordering::Relaxed);
    }

    pub fn requests(&self, outcome: &str) -> u64 {
        let slot = OUTCOMES.iter().position(|o| *o == outcome).unwrap_or(0);
        self.requests[slot].load(Ordering::Relaxed)
    }

    pub fn write(&self, out: &mut Exposition<'_>, gauges: &Gauges) {
        self.write_pool(out, gauges);
        self.write_breaker(out);
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        out.family(
            "gateway_requests_total",
            MetricKind::Counter,
            "requests answered, by outcome",
        );
        for (i, outcome) in OUTCOMES.iter().enumerate() {
            let value = load(&self.requests[i]) as f64;
            out.sample("gateway_requests_total", &[("outcome", outcome)], value);
        }
        out.counter(
            "gateway_requests_abandoned_total",
            "requests not run: their connection closed first",
            load(&self.abandoned),
        );
        out.counter(
            "gateway_retries_total",
            "attempts after the first",
            load(&self.retries),
        );
        out.gauge(
            "gateway_requests_in_flight",
            "requests accepted and not yet answered",
            load(&self.in_flight) as f64,
        );
        out.gauge(
            "gateway_backend_threads",
            "threads that do backend I/O (the bulkhead)",
            gauges.threads as f64,
        );
        out.gauge(
            "gateway_backend_threads_busy",
            "backend threads running a request",
            load(&self.busy_threads) as f64,
        );
        out.gauge(
            "gateway_backend_queue_depth",
            "requests waiting for a backend thread",
            gauges.queue_depth as f64,
        );
        self.backend_latency.write(
            out,
            "gateway_backend_latency_seconds",
            "one Redis call, sent to answered",
        );
        self.request_latency.write(
            out,
            "gateway_request_latency_seconds",
            "a request, arrival to answer",
        );
    }

    fn write_pool(&self, out: &mut Exposition<'_>, gauges: &Gauges) {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let in_use = gauges.pool_connections.saturating_sub(gauges.pool_idle);
        out.gauge(
            "gateway_pool_connections",
            "connections the pool holds",
            f64::from(gauges.pool_connections),
        );
        out.gauge(
            "gateway_pool_connections_in_use",
            "connections lent to requests",
            f64::from(in_use),
        );
        out.gauge(
            "gateway_pool_connections_idle",
            "connections ready in the pool",
            f64::from(gauges.pool_idle),
        );
        out.gauge(
            "gateway_pool_max_connections",
            "the pool's capacity",
            f64::from(gauges.pool_max),
        );
        out.gauge(
            "gateway_pool_waiting",
            "threads waiting for a connection",
            load(&self.pool_waiting) as f64,
        );
        self.pool_wait.write(
            out,
            "gateway_pool_wait_seconds",
            "waits for a pooled connection",
        );
        out.counter(
            "gateway_pool_checkouts_failed_total",
            "checkouts that got no connection in time",
            load(&self.checkouts_failed),
        );
        out.counter(
            "gateway_pool_connections_opened_total",
            "connections made",
            load(&self.connections_opened),
        );
        out.counter(
            "gateway_pool_connect_errors_total",
            "attempts to connect that failed",
            load(&self.connect_errors),
        );
        out.family(
            "gateway_pool_connections_recycled_total",
            MetricKind::Counter,
            "connections closed by the pool, by reason",
        );
        for (i, (_, reason)) in RECYCLED.iter().enumerate() {
            let value = load(&self.recycled[i]) as f64;
            out.sample(
                "gateway_pool_connections_recycled_total",
                &[("reason", reason)],
                value,
            );
        }
    }

    fn write_breaker(&self, out: &mut Exposition<'_>) {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let state = load(&self.breaker_state);
        out.family(
            "gateway_breaker_state",
            MetricKind::Gauge,
            "1 for the circuit breaker's state now",
        );
        for (which, name) in STATES {
            let now = u8::from(state == which as u64);
            out.sample("gateway_breaker_state", &[("state", name)], f64::from(now));
        }
        out.family(
            "gateway_breaker_transitions_total",
            MetricKind::Counter,
            "the breaker's changes of state, by new state",
        );
        for (i, (_, name)) in STATES.iter().enumerate() {
            let value = load(&self.breaker_transitions[i]) as f64;
            out.sample("gateway_breaker_transitions_total", &[("to", name)], value);
        }
        out.counter(
            "gateway_breaker_rejected_total",
            "calls refused while open (or while a probe runs)",
            load(&self.breaker_rejected),
        );
    }

    /// The breaker's state now.
    pub fn breaker_state(&self) -> BreakerState {
        BreakerState::from_u64(self.breaker_state.load(Ordering::Relaxed))
    }
}
