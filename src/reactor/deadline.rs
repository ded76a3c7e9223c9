//! Which deadline a connection is waiting for, derived from its state instead of stored.
//!
//! A connection can be subject to several clocks at once (an open WebSocket: keepalive ping,
//! maximum lifetime, and a write stall if output is stuck). Rather than keep a timer per clock,
//! [`next`] computes the earliest one from the connection's timestamps, and [`arm`] puts it on
//! the loop's timer heap only when it is *earlier* than what is already scheduled. Clocks that
//! move later (every read pushes the ping back) cost nothing: when the earlier heap entry comes
//! due, the loop recomputes, finds nothing due yet, and re-arms for the new instant. So a busy
//! connection pushes about one heap entry per `ping_interval`, not one per read.

use std::time::Instant;

use crate::config::Config;
use crate::metrics::TimeoutKind;
use crate::reactor::connection::{Connection, Phase};
use crate::reactor::event_loop::Core;

/// What happens when a deadline comes due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// The WebSocket has been silent for `ping_interval`: send a ping.
    Ping,
    /// A timeout: the connection is answered (408), closed (1001) or dropped.
    Timeout(TimeoutKind),
}

/// The earliest deadline that applies to `conn` in its current state, if any.
pub(crate) fn next(conn: &Connection, config: &Config) -> Option<(Instant, Due)> {
    let mut earliest: Option<(Instant, Due)> = None;
    let mut consider = |at: Instant, due: Due| {
        if earliest.is_none_or(|(t, _)| at < t) {
            earliest = Some((at, due));
        }
    };
    if let Some(since) = conn.write_blocked_since {
        consider(
            since + config.write_stall_timeout,
            Due::Timeout(TimeoutKind::WriteStall),
        );
    }
    let waiting = conn.is_idle() && conn.output_len() == 0;
    match conn.phase {
        Phase::Http { .. } if waiting => {
            let request_started = conn.input.as_ref().is_some_and(|input| !input.is_empty());
            if request_started || !conn.served {
                consider(
                    conn.wait_since + config.request_timeout,
                    Due::Timeout(TimeoutKind::Request),
                );
            } else {
                consider(
                    conn.wait_since + config.keep_alive_timeout,
                    Due::Timeout(TimeoutKind::Idle),
                );
            }
        }
        Phase::Open { .. } => {
            if let Some(lifetime) = config.max_lifetime {
                consider(
                    conn.phase_since + lifetime,
                    Due::Timeout(TimeoutKind::Lifetime),
                );
            }
            if let Some(interval) = config.ping_interval {
                match conn.ping_sent {
                    Some(sent) => {
                        consider(sent + config.pong_timeout, Due::Timeout(TimeoutKind::Pong))
                    }
                    None => consider(conn.last_read + interval, Due::Ping),
                }
            }
        }
        Phase::Closing { .. } | Phase::Lingering if conn.output_len() == 0 => {
            consider(
                conn.wait_since + config.close_timeout,
                Due::Timeout(TimeoutKind::Close),
            );
        }
        _ => {}
    }
    earliest
}

/// Schedules the connection's next deadline if it is earlier than the one already scheduled.
pub(crate) fn arm(conn: &mut Connection, core: &mut Core) {
    let Some((at, due)) = next(conn, &core.config) else {
        return;
    };
    if conn.deadline.is_none_or(|scheduled| at < scheduled) {
        log::trace!(
            "{}: deadline {due:?} in {:?}",
            conn.id,
            at.saturating_duration_since(core.now)
        );
        conn.deadline = Some(at);
        core.timers.schedule(at, conn.id);
    }
}
