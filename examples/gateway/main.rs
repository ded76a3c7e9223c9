//! A WebSocket gateway to Redis: clients send JSON requests, one per line, and each is served by
//! a call to Redis through a bounded, health-checked connection pool (r2d2), behind a circuit
//! breaker (failsafe), within a deadline, retried with jitter where that is safe — on threads
//! of its own, so that a slow or dead backend never takes the WebSocket workers.
//!
//! ```text
//! redis-server --port 6379 &
//! cargo run --release --example gateway -- --redis redis://127.0.0.1:6379
//! ```
//!
//! ```text
//! → {"id": 1, "cmd": ["SET", "greeting", "hello"]}
//! ← {"id":1,"ok":"OK"}
//! → {"id": 2, "cmd": "GET greeting"}
//! ← {"id":2,"ok":"hello"}
//! → {"id": 3, "cmd": "GET greeting"}          (Redis down, the breaker open)
//! ← {"error":"unavailable","id":3,"message":"backend unavailable: ..."}
//! ```
//!
//! Which thread does what:
//!
//! | threads | what they do | never |
//! |---|---|---|
//! | event loops (wsreactor) | sockets, frames, timers | block |
//! | WebSocket workers (`--workers`) | parse a request, check it, queue it or refuse it at once; echo on `/echo` | wait for Redis |
//! | backend threads (`--backend-threads`, the bulkhead) | breaker, pool checkout, the command, retries, the answer | exceed the request's deadline |
//! | r2d2's own (3) | connect, reap idle and old connections | serve requests |
//!
//! A client hears, for every request, `{"id": ID, "ok": VALUE}` or `{"id": ID, "error": KIND,
//! "message": WHY}` with KIND one of `bad_request`, `forbidden`, `too_many_in_flight`,
//! `overloaded`, `unavailable` (breaker open: at once, while Redis is down), `timeout`,
//! `backend` (Redis said no), `failed` (Redis unreachable after the retries), `shutting_down`.
//! Answers come in the order Redis answers them, which may differ from the order asked: the
//! id tells them apart. `GET /` shows the pool, the breaker and the outcomes live; `/metrics`
//! is the server's Prometheus text followed by the gateway's (`gateway_*`); `/debug` is the
//! server's dashboard. Ctrl-C or SIGTERM shuts down gracefully (close `1001` to every client;
//! queued requests are answered or time out first).
//!
//! By default the backend threads answer through `ServerHandle::send`: a connection's requests
//! are served side by side (up to `--max-in-flight`), and answers come as they are ready,
//! uncompressed. With `--deferred true` a message of one request defers its handler call
//! (`Context::defer`) once the bulkhead takes it, and the backend thread completes it
//! (`Deferred::complete`): the answer goes out as from the handler (compressed if agreed), and
//! the connection's next message waits for it — goroutine-per-connection order, one request
//! at a time per connection, still without holding a WebSocket worker. With `--unordered N`
//! every request defers its call out of order (`Context::defer_unordered`): up to N per
//! connection are served side by side, as with pushes, and each answer goes out as from the
//! handler, compressed if agreed, in the order they are ready; at N the connection's next
//! message waits (TCP backpressure) instead of being refused.
//!
//! Plain HTTP clients have `GET /get?key=K` (`curl 'http://HOST/get?key=greeting'` →
//! `{"id":"greeting","ok":"hello"}`): the handler answers later
//! (`HttpContext::answer_later`), the bulkhead's thread completes the response
//! (`Responder::complete`) with `200`, or the error's status (`502` Redis failed, `503`
//! unavailable or overloaded, `504` past the deadline); a request pipelined behind it waits
//! for it. It always goes through the bulkhead, `--blocking-workers` or not.

#[path = "../common/cli.rs"]
mod cli;

pub mod backend;
pub mod breaker;
pub mod delay;
pub mod flags;
pub mod handler;
pub mod metrics;
pub mod pool;
pub mod protocol;

use std::net::ToSocketAddrs;
use std::process::ExitCode;
use std::sync::Arc;

use redis::{ConnectionAddr, ConnectionInfo};
use wsreactor::Server;

use self::backend::Backend;
use self::breaker::Breaker;
use self::flags::{Options, Parsed};
use self::handler::{Gateway, METRICS_PATH};
use self::metrics::Metrics;
use self::pool::Pool;

/// A running gateway: its server, and its counters (for tests; `/metrics` shows them too).
pub struct Started {
    pub server: Server,
    pub metrics: Arc<Metrics>,
}

/// Starts the pool, the breaker, the backend threads and the server, without waiting for
/// Redis (while it is down, requests are answered `failed`, then `unavailable`).
pub fn start(options: &Options) -> Result<Started, String> {
    flags::validate(options)?;
    let metrics = Arc::new(Metrics::default());
    let pool = Pool::new(options, backend_address(options)?, &metrics)?;
    let breaker = Breaker::new(
        options.breaker_failures,
        options.breaker_backoff,
        options.breaker_max_backoff,
        &metrics,
    );
    let backend = Backend::start(options, pool, breaker, &metrics)
        .map_err(|e| format!("cannot start the backend threads: {e}"))?;
    let server = Server::builder()
        .configure(|config| {
            config.addr = options.addr;
            config.workers = options.workers;
            config.max_connections = options.max_connections;
            config.metrics_path = Some(METRICS_PATH.to_owned());
            config.health_path = Some("/healthz".to_owned());
            config.max_unordered_per_connection = options.unordered;
        })
        .build(
            Gateway::new(backend, options.blocking_workers, options.deferred)
                .with_unordered(options.unordered > 0),
        )
        .map_err(|e| e.to_string())?;
    Ok(Started { server, metrics })
}

/// Where the pool connects: Redis, or the delay relay in front of it (`--backend-delay`).
fn backend_address(options: &Options) -> Result<ConnectionInfo, String> {
    let client = redis::Client::open(options.redis.as_str()).map_err(|e| e.to_string())?;
    let info = client.get_connection_info().clone();
    let Some(delay) = options.backend_delay else {
        return Ok(info);
    };
    let ConnectionAddr::Tcp(host, port) = info.addr() else {
        return Err("--backend-delay needs a redis:// address (plain TCP)".to_owned());
    };
    let target = (host.as_str(), *port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| format!("cannot resolve {host}:{port}"))?;
    let relay = delay::start(target, delay).map_err(|e| format!("delay relay: {e}"))?;
    Ok(info.set_addr(ConnectionAddr::Tcp(relay.ip().to_string(), relay.port())))
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match flags::parse(&args) {
        Ok(Parsed::Serve(options)) => options,
        Ok(Parsed::Help) => {
            print!("{}", flags::usage());
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprint!("gateway: {err}\n\n{}", flags::usage());
            return ExitCode::from(2);
        }
    };
    let started = match start(&options) {
        Ok(started) => started,
        Err(err) => {
            eprintln!("gateway: {err}");
            return ExitCode::FAILURE;
        }
    };
    let addr = started.server.local_addr();
    let banner = format!(
        "gateway on http://{addr}/ (requests: ws://{addr}/ws, echo: ws://{addr}/echo; backend {})",
        options.redis
    );
    cli::serve_until_signal("gateway", started.server, &banner)
}
