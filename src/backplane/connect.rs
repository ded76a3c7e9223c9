//! Making a connection to Redis, and waiting between attempts: every wait bounded
//! (`Config::backplane_timeout`, `Config::backplane_backoff_max`) and cut short by a stop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use redis::{Client, Connection, RedisResult};

/// The first pause after a failure (or `backplane_backoff_max`, if shorter).
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// How often a thread that waits (a pause, an idle subscriber) looks at its stop flag and its
/// other inputs.
pub(crate) const TICK: Duration = Duration::from_millis(10);
/// A configured duration is taken as at most a day (a socket timeout must be finite).
const LONGEST: Duration = Duration::from_secs(24 * 60 * 60);

/// A configured duration, made fit for a socket timeout: more than zero, at most a day.
pub(crate) fn bounded(duration: Duration) -> Duration {
    duration.clamp(Duration::from_millis(1), LONGEST)
}

/// A connection with `timeout` on connecting, on `AUTH`, and on every later read and write;
/// named `name` in `CLIENT LIST`.
pub(crate) fn connect(client: &Client, timeout: Duration, name: &str) -> RedisResult<Connection> {
    let timeout = bounded(timeout);
    let mut connection = client.get_connection_with_timeout(timeout)?;
    connection.set_read_timeout(Some(timeout))?;
    connection.set_write_timeout(Some(timeout))?;
    redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg(name)
        .exec(&mut connection)?;
    Ok(connection)
}

/// Pauses between attempts to connect: 50 ms, doubled after each failure, at most `max`.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
    max: Duration,
    /// Failures since the last success.
    pub failures: u32,
}

impl Backoff {
    pub(crate) fn new(max: Duration) -> Self {
        let max = bounded(max);
        Backoff {
            next: FIRST_BACKOFF.min(max),
            max,
            failures: 0,
        }
    }

    /// An attempt failed: how long to wait before the next.
    pub(crate) fn failed(&mut self) -> Duration {
        let pause = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        self.failures += 1;
        pause
    }

    /// A connection that was up has failed: the next one made is a reconnection.
    pub(crate) fn lost(&mut self) {
        self.failures = self.failures.max(1);
    }

    /// An attempt succeeded: the next failure waits the first pause again. True if it came
    /// after failures (a reconnection).
    pub(crate) fn succeeded(&mut self) -> bool {
        self.next = FIRST_BACKOFF.min(self.max);
        std::mem::take(&mut self.failures) > 0
    }
}

/// Waits `pause`, calling `each_tick` every [`TICK`]; returns early (false) once `stop` is set.
pub(crate) fn wait(pause: Duration, stop: &Arc<AtomicBool>, mut each_tick: impl FnMut()) -> bool {
    let end = Instant::now() + pause;
    loop {
        if stop.load(Ordering::Acquire) {
            return false;
        }
        each_tick();
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(TICK));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_bound_and_starts_again_after_a_success() {
        let mut backoff = Backoff::new(Duration::from_millis(300));
        let pauses: Vec<u128> = (0..5).map(|_| backoff.failed().as_millis()).collect();
        assert_eq!(pauses, [50, 100, 200, 300, 300]);
        assert!(backoff.succeeded(), "after failures");
        assert!(!backoff.succeeded());
        assert_eq!(backoff.failed(), FIRST_BACKOFF);
        let mut short = Backoff::new(Duration::from_millis(20));
        assert_eq!(short.failed(), Duration::from_millis(20));
        let mut forever = Backoff::new(Duration::MAX);
        for _ in 0..100 {
            assert!(forever.failed() <= LONGEST);
        }
    }
}
