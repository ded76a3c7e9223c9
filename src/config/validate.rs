//! [`Config::validate`]: what a configuration may not be, checked once when the server is built.
//!
//! A value is refused when nothing sensible can come of it — a zero where at least one is
//! needed, a zero timeout, a read buffer too small for a frame header, an absurd number of
//! threads, queues the server would have to allocate whole and could not — with an
//! [`Error::InvalidConfig`] that names the field and says why. Every other value is taken, and
//! a maximum means "forever" or "unbounded" (the module docs of `config.rs`).

use std::time::Duration;

use crate::config::Config;
use crate::error::Error;

/// Bytes of one slot of the job queue, at most: `crossbeam-channel` allocates the whole queue
/// when it is made (a stamp and a `Job`; 96 bytes on x86-64, checked by a test in `server.rs`).
pub(crate) const JOB_SLOT_BYTES: usize = 128;
/// Bytes of one slot of a command queue, at most (a stamp and a `Command`; 56 on x86-64).
pub(crate) const COMMAND_SLOT_BYTES: usize = 64;
/// Bytes of room for one readiness event, at most: `mio`'s `Events` and the loop's copy of it
/// (28 on x86-64).
pub(crate) const EVENT_BYTES: usize = 32;

impl Config {
    /// Most worker threads. Each is an OS thread whose handle is reserved when the server is
    /// built; operating systems refuse far fewer by default (Linux: `kernel.pid_max`, often
    /// 32,768), so more can only be a mistake.
    pub const MAX_WORKERS: usize = 65_536;

    /// Most event loops. One per core is the point, and every loop keeps a link to every other
    /// loop (to forward publications), so their cost grows with the square of their number.
    pub const MAX_EVENT_LOOPS: usize = 1024;

    /// Largest `read_buffer_size`: every busy connection holds a read buffer, allocated and
    /// zeroed when its first bytes arrive, and output is packed into chunks of that size. One
    /// read seldom returns more than a socket's receive buffer (a few MiB), so a larger buffer
    /// would only cost memory: 1,000 busy connections would hold 64 GiB at this size.
    pub const MAX_READ_BUFFER_SIZE: usize = 64 * 1024 * 1024;

    /// Most bytes the server may allocate when it is built, for what is allocated whole then:
    /// the job queue (`job_queue_capacity` slots of at most 128 bytes) and, for each event loop,
    /// its command queue (`command_queue_capacity` slots of at most 64 bytes) and room for
    /// `max_events` readiness events (at most 32 bytes each). The defaults take about 1 MiB on
    /// four cores. A configuration past this is refused rather than left to abort in the
    /// allocator.
    pub const MAX_PREALLOCATED_BYTES: usize = 1024 * 1024 * 1024;

    /// Largest `backplane_queue_capacity`: the queue is allocated whole when the server is
    /// built (a slot is under 96 bytes), so this is under 400 MiB.
    pub const MAX_BACKPLANE_QUEUE: usize = 4 * 1024 * 1024;

    /// Largest `max_timers_per_connection`: every step of a connection looks through its armed
    /// timers for the earliest, and a few dozen are what a handler needs.
    pub const MAX_TIMERS_PER_CONNECTION: usize = 1024;

    /// Largest `max_unordered_per_connection`: each step of a connection looks through its
    /// outstanding completions for the earliest deadline, and a client with more requests in
    /// flight than this is better served by more connections.
    pub const MAX_UNORDERED_PER_CONNECTION: usize = 1024;

    /// Refuses a configuration that cannot work, naming the field: a zero where at least one is
    /// needed, a zero timeout, a read buffer outside 256 bytes..[`MAX_READ_BUFFER_SIZE`],
    /// more threads than [`MAX_WORKERS`] or [`MAX_EVENT_LOOPS`], queues and event buffers past
    /// [`MAX_PREALLOCATED_BYTES`], a compression level above 9, more timers per connection than
    /// [`MAX_TIMERS_PER_CONNECTION`] or out-of-order completions than
    /// [`MAX_UNORDERED_PER_CONNECTION`], a monitoring path that does not start with `/`. Every
    /// value it accepts is served without a panic (durations at their maximum mean "forever",
    /// sizes "unbounded": see each field).
    ///
    /// [`MAX_READ_BUFFER_SIZE`]: Config::MAX_READ_BUFFER_SIZE
    /// [`MAX_WORKERS`]: Config::MAX_WORKERS
    /// [`MAX_EVENT_LOOPS`]: Config::MAX_EVENT_LOOPS
    /// [`MAX_PREALLOCATED_BYTES`]: Config::MAX_PREALLOCATED_BYTES
    /// [`MAX_TIMERS_PER_CONNECTION`]: Config::MAX_TIMERS_PER_CONNECTION
    /// [`MAX_UNORDERED_PER_CONNECTION`]: Config::MAX_UNORDERED_PER_CONNECTION
    pub fn validate(&self) -> Result<(), Error> {
        self.check_counts()?;
        self.check_sizes()?;
        self.check_preallocation()?;
        self.check_timeouts()?;
        self.check_paths()?;
        self.check_origins()?;
        self.check_backplane()
    }

    /// The backplane's queue, timeouts and history bounds (used only with a backplane, checked
    /// always, so that adding one never turns a valid configuration into an invalid one).
    fn check_backplane(&self) -> Result<(), Error> {
        let capacity = self.backplane_queue_capacity;
        if capacity == 0 || capacity > Self::MAX_BACKPLANE_QUEUE {
            return Err(invalid(
                "backplane_queue_capacity",
                format!(
                    "must be between 1 and {} (allocated whole), not {capacity}",
                    Self::MAX_BACKPLANE_QUEUE
                ),
            ));
        }
        for (value, name) in [
            (self.history_max_len, "history_max_len"),
            (self.recovery_buffer, "recovery_buffer"),
        ] {
            if value == 0 {
                return Err(invalid(name, "must be at least 1"));
            }
        }
        for (value, name) in [
            (self.backplane_timeout, "backplane_timeout"),
            (self.backplane_backoff_max, "backplane_backoff_max"),
        ] {
            if value.is_zero() {
                return Err(invalid(name, "must be more than zero"));
            }
        }
        if self.history_max_age < Duration::from_millis(1) {
            return Err(invalid("history_max_age", "must be at least 1 ms"));
        }
        Ok(())
    }

    /// Every entry of `allowed_origins` parsed (an origin, or `scheme://*.domain`).
    fn check_origins(&self) -> Result<(), Error> {
        for pattern in self.allowed_origins.patterns() {
            if let Some(why) = pattern.error() {
                return Err(Error::InvalidConfig(format!(
                    "allowed_origins: {:?}: {why}",
                    pattern.as_str()
                )));
            }
        }
        Ok(())
    }

    /// Limits that must be at least 1, and the thread counts' ceilings.
    fn check_counts(&self) -> Result<(), Error> {
        let positive = [
            (self.workers, "workers"),
            (self.event_loops, "event_loops"),
            (self.backlog as usize, "backlog"),
            (self.max_connections, "max_connections"),
            (self.max_headers, "max_headers"),
            (self.max_message_size, "max_message_size"),
            (self.max_fragments, "max_fragments"),
            (self.max_frame_size, "max_frame_size"),
            (self.max_read_per_turn, "max_read_per_turn"),
            (self.job_queue_capacity, "job_queue_capacity"),
            (self.command_queue_capacity, "command_queue_capacity"),
            (self.max_pending_messages, "max_pending_messages"),
            (self.max_pending_bytes, "max_pending_bytes"),
            (self.max_outbound_bytes, "max_outbound_bytes"),
            (self.max_buffered_bytes, "max_buffered_bytes"),
            (self.max_events, "max_events"),
        ];
        if let Some((_, name)) = positive.iter().find(|(value, _)| *value == 0) {
            return Err(invalid(name, "must be at least 1"));
        }
        if self.workers > Self::MAX_WORKERS {
            return Err(invalid(
                "workers",
                format!(
                    "must be at most {} (each is an OS thread), not {}",
                    Self::MAX_WORKERS,
                    self.workers
                ),
            ));
        }
        if self.event_loops > Self::MAX_EVENT_LOOPS {
            return Err(invalid(
                "event_loops",
                format!(
                    "must be at most {} (one per core is the point), not {}",
                    Self::MAX_EVENT_LOOPS,
                    self.event_loops
                ),
            ));
        }
        Ok(())
    }

    /// Sizes with a floor or a ceiling of their own.
    fn check_sizes(&self) -> Result<(), Error> {
        if self.compression_level > 9 {
            return Err(invalid(
                "compression_level",
                format!("must be between 0 and 9, not {}", self.compression_level),
            ));
        }
        if !(256..=Self::MAX_READ_BUFFER_SIZE).contains(&self.read_buffer_size) {
            return Err(invalid(
                "read_buffer_size",
                format!(
                    "must be between 256 bytes (a frame header must fit) and {} \
                     (every busy connection holds one), not {}",
                    Self::MAX_READ_BUFFER_SIZE,
                    self.read_buffer_size
                ),
            ));
        }
        if self.max_header_bytes < 64 {
            return Err(invalid("max_header_bytes", "must be at least 64 bytes"));
        }
        if self.max_timers_per_connection > Self::MAX_TIMERS_PER_CONNECTION {
            return Err(invalid(
                "max_timers_per_connection",
                format!(
                    "must be at most {} (each step of a connection looks through them), not {}",
                    Self::MAX_TIMERS_PER_CONNECTION,
                    self.max_timers_per_connection
                ),
            ));
        }
        if self.max_unordered_per_connection > Self::MAX_UNORDERED_PER_CONNECTION {
            return Err(invalid(
                "max_unordered_per_connection",
                format!(
                    "must be at most {} (each step of a connection looks through them), not {}",
                    Self::MAX_UNORDERED_PER_CONNECTION,
                    self.max_unordered_per_connection
                ),
            ));
        }
        Ok(())
    }

    /// The queues and event buffers allocated whole when the server is built must fit in
    /// [`MAX_PREALLOCATED_BYTES`](Config::MAX_PREALLOCATED_BYTES); the error names the largest
    /// part.
    fn check_preallocation(&self) -> Result<(), Error> {
        let loops = self.event_loops;
        let parts = [
            (
                "job_queue_capacity",
                self.job_queue_capacity.saturating_mul(JOB_SLOT_BYTES),
            ),
            (
                "command_queue_capacity",
                (self
                    .command_queue_capacity
                    .saturating_mul(COMMAND_SLOT_BYTES))
                .saturating_mul(loops),
            ),
            (
                "max_events",
                (self.max_events.saturating_mul(EVENT_BYTES)).saturating_mul(loops),
            ),
        ];
        let total = parts
            .iter()
            .fold(0usize, |sum, (_, bytes)| sum.saturating_add(*bytes));
        if total <= Self::MAX_PREALLOCATED_BYTES {
            return Ok(());
        }
        let (name, _) = parts
            .iter()
            .max_by_key(|(_, bytes)| *bytes)
            .copied()
            .unwrap_or(parts[0]);
        let [(_, jobs), (_, commands), (_, events)] = parts;
        let limit = Self::MAX_PREALLOCATED_BYTES;
        let why = if total == usize::MAX {
            format!(
                "is too large: the queues and event buffers allocated when the server is built \
                 would take more than usize::MAX bytes (at most \
                 Config::MAX_PREALLOCATED_BYTES, {limit})"
            )
        } else {
            format!(
                "is too large: the queues and event buffers allocated when the server is built \
                 would take {total} bytes (job queue {jobs}, command queues {commands}, event \
                 buffers {events}, for {loops} event loops), more than \
                 Config::MAX_PREALLOCATED_BYTES ({limit})"
            )
        };
        Err(invalid(name, why))
    }

    /// Every timeout must be more than zero (`None` turns the optional ones off).
    /// `shutdown_timeout` may be zero: the connections are then dropped at once.
    fn check_timeouts(&self) -> Result<(), Error> {
        let timeouts = [
            (self.request_timeout, "request_timeout"),
            (self.close_timeout, "close_timeout"),
            (self.accept_backoff, "accept_backoff"),
            (self.keep_alive_timeout, "keep_alive_timeout"),
            (self.pong_timeout, "pong_timeout"),
            (self.write_stall_timeout, "write_stall_timeout"),
            (self.message_timeout, "message_timeout"),
            (self.deferred_timeout, "deferred_timeout"),
            (self.monitoring_timeout, "monitoring_timeout"),
            (self.ping_interval.unwrap_or(Duration::MAX), "ping_interval"),
            (self.max_lifetime.unwrap_or(Duration::MAX), "max_lifetime"),
            (
                self.release_memory_after.unwrap_or(Duration::MAX),
                "release_memory_after",
            ),
        ];
        match timeouts.iter().find(|(d, _)| d.is_zero()) {
            Some((_, name)) => Err(invalid(name, "must be more than zero")),
            None => Ok(()),
        }
    }

    fn check_paths(&self) -> Result<(), Error> {
        for (path, name) in [
            (&self.metrics_path, "metrics_path"),
            (&self.health_path, "health_path"),
        ] {
            if path.as_deref().is_some_and(|p| !p.starts_with('/')) {
                return Err(invalid(name, "must start with '/'"));
            }
        }
        Ok(())
    }
}

/// The error for field `name`: "`name` `why`".
fn invalid(name: &str, why: impl std::fmt::Display) -> Error {
    Error::InvalidConfig(format!("{name} {why}"))
}

#[cfg(test)]
mod tests;
