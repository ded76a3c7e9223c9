//! The monitoring reserve: what a connection admitted beyond `max_connections` may do.
//!
//! When the server is full, the accept path (`netpoller/accept.rs`) still admits up to
//! `Config::monitoring_reserve` connections, marked [`Admission::MonitoringReserve`], so that
//! `metrics_path` and `health_path` can be read at the moment they matter most. Such a
//! connection is an ordinary `Http` connection with three differences, all decided here:
//!
//! - **One request, screened at its head.** Its bytes enter through
//!   [`Session::take_monitoring_request`] instead of `take_http_batch`: the head is parsed
//!   with a body limit of 0, so a body is refused before any of it is buffered. `GET` or `HEAD`
//!   of `metrics_path` or `health_path` (path without the query), not an upgrade, without a
//!   body, leaves as a one-request [`Work::Http`] job ending in [`HttpTail::Close`]: the runner
//!   answers it as usual, with `Connection: close`, and the connection lingers and ends.
//!   Anything else — another path or method, an upgrade, a body — is answered by the loop with
//!   [`too_many_connections`] (`503`, `Retry-After: 1`), exactly what a connection past the
//!   reserve gets, and never reaches the handler. Bytes that are not HTTP get their usual
//!   error status.
//! - **Short clocks.** [`Session::clock_limit`] caps every timeout of a reserve connection
//!   at `monitoring_timeout`: its head must be in that long after the accept (the clock does
//!   not restart at the first byte), and its linger and write stall end as soon. A slowloris
//!   holds a place of the reserve for about twice `monitoring_timeout` at most.
//! - **Its own count.** Its place is one of `Metrics::monitoring_open`, given back when it
//!   leaves the table, so the reserve never eats into `max_connections`.

use std::time::Duration;

use crate::config::Config;
use crate::dispatch::{HttpTail, Work};
use crate::http::{HttpError, HttpLimits, Parsed, Request, check_upgrade, too_many_connections};
use crate::metrics::{Admission, add};
use crate::session::connection::Session;
use crate::session::env::Env;
use crate::session::phase::Phase;

/// The bytes of the answer the accept path writes to a connection past `max_connections` and
/// its reserve, straight into the fresh socket: [`too_many_connections`], closing.
pub(crate) fn at_capacity_response() -> Vec<u8> {
    too_many_connections().to_closing_bytes()
}

/// Is `request` one a reserve connection may make: `GET` or `HEAD` of `metrics_path` or
/// `health_path`, not an upgrade, without a body?
fn is_monitoring_request(request: &Request, config: &Config) -> bool {
    let path = Some(request.path());
    let monitored = path == config.metrics_path.as_deref() || path == config.health_path.as_deref();
    monitored
        && matches!(request.method(), "GET" | "HEAD")
        && request.body().is_empty()
        && matches!(check_upgrade(request, &config.origin_check()), Ok(None))
}

impl Session {
    /// Was this connection admitted on the monitoring reserve?
    pub(crate) fn is_on_reserve(&self) -> bool {
        self.admission == Admission::MonitoringReserve
    }

    /// `timeout`, or `monitoring_timeout` if that is shorter and this is a reserve connection.
    pub(crate) fn clock_limit(&self, timeout: Duration, config: &Config) -> Duration {
        if self.is_on_reserve() {
            timeout.min(config.monitoring_timeout)
        } else {
            timeout
        }
    }

    /// A reserve connection's one request, if its head is in and it is for monitoring: a job
    /// for the runner that closes the connection after the answer. A request for anything else
    /// is refused with `503` here (`refused_at_capacity`); bytes that are not HTTP are answered
    /// with their error (`request_rejected`). Either way no job comes out.
    pub(crate) fn take_monitoring_request(&mut self, env: &mut Env<'_>) -> Option<Work> {
        let Phase::Http(http) = &mut self.phase else {
            return None;
        };
        let input = self.input.as_mut().filter(|input| !input.is_empty())?;
        // A body limit of 0: a `Content-Length` body is refused from the head, a chunked one at
        // its first chunk, before any of it is held.
        let limits = HttpLimits {
            max_body_size: 0,
            ..env.config.http_limits()
        };
        match http.parse(input.data(), &limits) {
            Ok(Parsed::Partial { consumed }) => {
                input.consume(consumed);
                // A chunked head that expects `100-continue`: a body is coming. Refuse it now
                // rather than let the client wait for a `100` that will not come.
                if http.parser.take_continue() {
                    self.refused_at_capacity(env);
                }
                None
            }
            Ok(Parsed::Complete { request, consumed }) => {
                input.consume(consumed);
                if !is_monitoring_request(&request, env.config) {
                    self.refused_at_capacity(env);
                    return None;
                }
                add(&env.metrics.http_requests, 1);
                Some(Work::Http {
                    requests: vec![request],
                    tail: HttpTail::Close,
                })
            }
            Err(HttpError::PayloadTooLarge { .. }) => {
                self.refused_at_capacity(env);
                None
            }
            Err(err) => {
                self.request_rejected(env, &err);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            metrics_path: Some("/metrics".into()),
            health_path: Some("/healthz".into()),
            ..Config::default()
        }
    }

    #[test]
    fn only_reads_of_the_monitoring_paths_are_monitoring_requests() {
        let upgrade = |path: &str| {
            Request::builder("GET", path)
                .header("Host", "x")
                .header("Upgrade", "websocket")
                .header("Connection", "Upgrade")
                .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
                .header("Sec-WebSocket-Version", "13")
                .build()
        };
        let table = [
            (Request::builder("GET", "/metrics").build(), true),
            (Request::builder("HEAD", "/metrics").build(), true),
            (Request::builder("GET", "/healthz").build(), true),
            (Request::builder("GET", "/healthz?verbose=1").build(), true),
            (Request::builder("GET", "/other").build(), false),
            (Request::builder("GET", "/metrics/").build(), false),
            (Request::builder("POST", "/metrics").build(), false),
            (Request::builder("DELETE", "/healthz").build(), false),
            (Request::builder("GET", "/metrics").body("x").build(), false),
            (upgrade("/metrics"), false),
            (upgrade("/ws"), false),
        ];
        for (request, expected) in table {
            let got = is_monitoring_request(&request, &config());
            assert_eq!(got, expected, "{} {}", request.method(), request.target());
        }
    }

    #[test]
    fn with_no_monitoring_path_nothing_is_a_monitoring_request() {
        let none = Config::default();
        for path in ["/metrics", "/healthz", "/"] {
            let request = Request::builder("GET", path).build();
            assert!(!is_monitoring_request(&request, &none), "{path}");
        }
    }
}
