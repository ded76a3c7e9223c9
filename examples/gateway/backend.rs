//! The bulkhead: the only threads that talk to Redis, with a bounded queue in front of them.
//!
//! A WebSocket worker [`submit`](Backend::submit)s a checked request and returns at once: it
//! never waits for Redis, so a slow or dead backend cannot take the workers (and the echo and
//! every other connection with them). Refusals are immediate: the connection's limit of
//! unanswered requests, an open breaker, a full queue. A backend thread takes the request, and
//! within its deadline: asks the breaker, checks a connection out of the pool, sends the
//! command with the time left as the socket's timeout, and retries with full jitter where it
//! is safe — a call that never reached Redis (no connection) always, one that may have reached
//! it only for an idempotent command. The answer goes to the client through the
//! `ServerHandle` the request came with.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use failsafe::backoff::{GenRange, ThreadLocalGenRange};
use wsreactor::{ConnId, Deferred, Responder, Response, ServerHandle, Unordered};

use super::breaker::{Breaker, Refusal};
use super::flags::Options;
use super::handler::Session;
use super::metrics::Metrics;
use super::pool::{Conn, Pool};
use super::protocol::{self, ErrorKind, Request};

/// What the gateway keeps per WebSocket: its unanswered requests, and whether it has closed.
#[derive(Debug, Default)]
pub struct Tab {
    pub in_flight: AtomicUsize,
    pub closed: AtomicBool,
}

/// A request on its way to a backend thread.
struct Job {
    conn: ConnId,
    request: Request,
    arrived: Instant,
    deadline: Instant,
    tab: Arc<Tab>,
    reply: Answering,
}

/// How a backend thread answers a request.
pub enum Answering {
    /// Pushed to the connection through the server (`ServerHandle::send`, uncompressed): the
    /// connection goes on meanwhile, and its answers come in the order they are ready.
    Push(ServerHandle),
    /// The completion of the handler call that deferred (`Context::defer`): sent as from the
    /// handler (compressed if agreed), and the connection's next message waits for it.
    Deferred(Deferred<Session>),
    /// The completion of a call that deferred out of order (`Context::defer_unordered`): sent
    /// as from the handler (compressed if agreed), while the connection goes on.
    Unordered(Unordered<Session>),
    /// The answer to `GET /get?key=K`, given later (`HttpContext::answer_later`): the JSON
    /// text with the status of its outcome, in its place among the connection's requests.
    Http(Responder),
}

impl Answering {
    fn deliver(self, conn: ConnId, text: String, status: u16) {
        let delivered = match self {
            // Waits for room in the loop's command queue (backpressure); a connection that
            // closed meanwhile is dropped there.
            Answering::Push(server) => server.send(conn, text).map_err(|e| e.to_string()),
            Answering::Deferred(deferred) => deferred
                .complete(move |ctx| {
                    ctx.send(text);
                })
                .map_err(|e| e.to_string()),
            Answering::Unordered(handle) => handle
                .complete(move |ctx| {
                    ctx.send(text);
                })
                .map_err(|e| e.to_string()),
            Answering::Http(responder) => {
                let response = Response::new(status)
                    .with_header("Content-Type", "application/json")
                    .with_body(text);
                responder.complete(response).map_err(|e| e.to_string())
            }
        };
        if let Err(err) = delivered {
            log::debug!("{conn}: answer not delivered: {err}");
        }
    }
}

/// Why a call failed, as the retry and the breaker see it.
enum Failure {
    /// Redis answered with an error: it is up; the client hears Redis's words.
    Reply(String),
    /// The pool had no free connection before the deadline, and Redis is reachable: busy.
    Busy,
    /// No connection could be made: the command never reached Redis.
    Unreachable(String),
    /// The command may have reached Redis, and no answer came (I/O error, connection lost).
    Lost(String),
    /// No answer before the deadline.
    Deadline,
}

/// A request's outcome: Redis's answer, or the error to answer with.
type Answer = Result<redis::Value, (ErrorKind, String)>;

/// What a backend thread needs.
struct Shared {
    pool: Pool,
    breaker: Breaker,
    metrics: Arc<Metrics>,
    retries: u32,
    retry_backoff: Duration,
    connection_timeout: Duration,
    /// Kept for the queue's depth.
    queue: Receiver<Job>,
}

/// The backend threads and their queue.
pub struct Backend {
    /// `None` once stopping: the threads finish what is queued and end.
    queue: Option<Sender<Job>>,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    request_timeout: Duration,
    max_in_flight: usize,
}

impl Backend {
    pub fn start(
        options: &Options,
        pool: Pool,
        breaker: Breaker,
        metrics: &Arc<Metrics>,
    ) -> std::io::Result<Backend> {
        let (queue, jobs) = crossbeam_channel::bounded(options.backend_queue);
        let shared = Arc::new(Shared {
            pool,
            breaker,
            metrics: Arc::clone(metrics),
            retries: options.retries,
            retry_backoff: options.retry_backoff,
            connection_timeout: options.connection_timeout,
            queue: jobs.clone(),
        });
        let mut threads = Vec::with_capacity(options.backend_threads);
        for n in 0..options.backend_threads {
            let (shared, jobs) = (Arc::clone(&shared), jobs.clone());
            let thread = thread::Builder::new()
                .name(format!("gateway-backend-{n}"))
                .spawn(move || shared.work(&jobs))?;
            threads.push(thread);
        }
        Ok(Backend {
            queue: Some(queue),
            shared,
            threads,
            request_timeout: options.request_timeout,
            max_in_flight: options.max_in_flight,
        })
    }

    /// Queues `request` for `conn`, or says at once why not (the error to answer with).
    pub fn submit(
        &self,
        conn: ConnId,
        request: Request,
        tab: &Arc<Tab>,
        reply: impl FnOnce() -> Answering,
    ) -> Result<(), (Request, ErrorKind, String)> {
        if tab.in_flight.fetch_add(1, Ordering::AcqRel) >= self.max_in_flight {
            tab.in_flight.fetch_sub(1, Ordering::AcqRel);
            let why = format!(
                "at most {} requests unanswered per connection",
                self.max_in_flight
            );
            return Err((request, ErrorKind::TooManyInFlight, why));
        }
        if let Some(refusal) = self.shared.breaker.refuses_now() {
            tab.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err((request, ErrorKind::Unavailable, unavailable(refusal)));
        }
        let arrived = Instant::now();
        let job = Job {
            conn,
            request,
            arrived,
            deadline: arrived + self.request_timeout,
            tab: Arc::clone(tab),
            // Made only for a request that gets this far: a refusal defers nothing.
            reply: reply(),
        };
        self.shared
            .metrics
            .in_flight
            .fetch_add(1, Ordering::Relaxed);
        let queued = match &self.queue {
            Some(queue) => queue.try_send(job),
            None => Err(TrySendError::Disconnected(job)),
        };
        let (job, kind) = match queued {
            Ok(()) => return Ok(()),
            Err(TrySendError::Full(job)) => (job, ErrorKind::Overloaded),
            Err(TrySendError::Disconnected(job)) => (job, ErrorKind::ShuttingDown),
        };
        tab.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.shared
            .metrics
            .in_flight
            .fetch_sub(1, Ordering::Relaxed);
        let why = match kind {
            ErrorKind::Overloaded => "every backend thread is busy and the queue is full",
            _ => "the gateway is stopping",
        };
        Err((job.request, kind, why.to_owned()))
    }

    /// Serves `request` here, on the calling thread — a WebSocket worker — and returns the
    /// answer: the gateway without its bulkhead (`--blocking-workers`), for comparison only.
    pub fn serve_here(&self, conn: ConnId, request: &Request) -> String {
        let arrived = Instant::now();
        let answer = match self.shared.breaker.refuses_now() {
            Some(refusal) => Err((ErrorKind::Unavailable, unavailable(refusal))),
            None => self
                .shared
                .serve(conn, request, arrived + self.request_timeout),
        };
        self.shared.answer(request, answer, arrived)
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.shared.metrics
    }

    pub fn breaker(&self) -> &Breaker {
        &self.shared.breaker
    }

    /// The pool's size and idle connections, and the queue's depth, now.
    pub fn gauges(&self) -> super::metrics::Gauges {
        let state = self.shared.pool.r2d2.state();
        super::metrics::Gauges {
            pool_connections: state.connections,
            pool_idle: state.idle_connections,
            pool_max: self.shared.pool.r2d2.max_size(),
            queue_depth: self.shared.queue.len(),
            threads: self.threads.len(),
        }
    }
}

impl Drop for Backend {
    /// Stops taking requests, lets the threads finish those queued (each within its deadline)
    /// and waits for them.
    fn drop(&mut self) {
        self.queue = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn unavailable(refusal: Refusal) -> String {
    match refusal {
        Refusal::Open => "backend unavailable: the circuit breaker is open after repeated \
                          failures; it probes again after its backoff"
            .to_owned(),
        Refusal::Probing => "backend unavailable: the circuit breaker is probing whether \
                             it is back"
            .to_owned(),
    }
}

impl Shared {
    fn work(&self, jobs: &Receiver<Job>) {
        for job in jobs {
            self.metrics.busy_threads.fetch_add(1, Ordering::Relaxed);
            let answer = if job.tab.closed.load(Ordering::Acquire) {
                self.metrics.abandoned.fetch_add(1, Ordering::Relaxed);
                None
            } else {
                Some(self.serve(job.conn, &job.request, job.deadline))
            };
            self.metrics.busy_threads.fetch_sub(1, Ordering::Relaxed);
            if let Some(answer) = answer {
                let status = answer
                    .as_ref()
                    .map_or_else(|(kind, _)| kind.http_status(), |_| 200);
                let text = self.answer(&job.request, answer, job.arrived);
                job.reply.deliver(job.conn, text, status);
            }
            // Unanswered (its connection closed), a deferred call completes with nothing.
            job.tab.in_flight.fetch_sub(1, Ordering::AcqRel);
            self.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The answer's text, counted.
    fn answer(&self, request: &Request, answer: Answer, arrived: Instant) -> String {
        let (text, kind) = match answer {
            Ok(value) => (protocol::ok(&request.id, &value), None),
            Err((kind, why)) => (protocol::error(&request.id, kind, &why), Some(kind)),
        };
        self.metrics.answered(kind);
        self.metrics.request_latency.observe(arrived.elapsed());
        text
    }

    /// One request, with its retries, within its deadline.
    fn serve(&self, conn: ConnId, request: &Request, deadline: Instant) -> Answer {
        if Instant::now() >= deadline {
            let why = "the deadline passed while the request waited for a backend thread";
            return Err((ErrorKind::Timeout, why.to_owned()));
        }
        let mut attempt = 0;
        loop {
            let permit = self
                .breaker
                .permit()
                .map_err(|refusal| (ErrorKind::Unavailable, unavailable(refusal)))?;
            let (retry_safe, error) = match self.call(request, deadline) {
                Ok(value) => {
                    permit.success();
                    return Ok(value);
                }
                Err(Failure::Reply(why)) => {
                    permit.success();
                    return Err((ErrorKind::Backend, why));
                }
                Err(Failure::Busy) => {
                    // Not the backend's failure: the pool is merely full. No verdict.
                    drop(permit);
                    let why = "no pooled connection became free before the deadline";
                    return Err((ErrorKind::Timeout, why.to_owned()));
                }
                Err(Failure::Deadline) => {
                    permit.failure();
                    let why = "Redis did not answer before the deadline";
                    return Err((ErrorKind::Timeout, why.to_owned()));
                }
                Err(Failure::Unreachable(why)) => {
                    permit.failure();
                    (true, format!("cannot reach Redis: {why}"))
                }
                Err(Failure::Lost(why)) => {
                    permit.failure();
                    (request.idempotent, format!("Redis call failed: {why}"))
                }
            };
            let pause = self.jitter(attempt);
            if !retry_safe || attempt >= self.retries || Instant::now() + pause >= deadline {
                return Err((ErrorKind::Failed, error));
            }
            log::debug!("{conn}: {error}; retry {} in {pause:?}", attempt + 1);
            thread::sleep(pause);
            attempt += 1;
            self.metrics.retries.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Full jitter: a random pause below `retry_backoff · 2^attempt`.
    fn jitter(&self, attempt: u32) -> Duration {
        let ceiling = self.retry_backoff.saturating_mul(1 << attempt.min(16));
        let micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(ThreadLocalGenRange.gen_range(0, micros.max(1)))
    }

    /// One attempt: a connection from the pool, then the command.
    fn call(&self, request: &Request, deadline: Instant) -> Result<redis::Value, Failure> {
        let mut conn = self.checkout(deadline)?;
        let left = deadline.saturating_duration_since(Instant::now());
        if left < Duration::from_millis(1) {
            return Err(Failure::Deadline);
        }
        let timeouts = conn
            .redis
            .set_read_timeout(Some(left))
            .and_then(|()| conn.redis.set_write_timeout(Some(left)));
        if let Err(err) = timeouts {
            conn.poisoned = true;
            return Err(Failure::Lost(err.to_string()));
        }
        let sent = Instant::now();
        let answer = redis::cmd(request.name)
            .arg(&request.args)
            .query::<redis::Value>(&mut conn.redis);
        self.metrics.backend_latency.observe(sent.elapsed());
        answer.map_err(|err| classify(&mut conn, &err))
    }

    /// A pooled connection, waiting for one up to the deadline while Redis is reachable and
    /// the pool busy, and at most `connection_timeout` once connecting fails.
    fn checkout(
        &self,
        deadline: Instant,
    ) -> Result<r2d2::PooledConnection<super::pool::Manager>, Failure> {
        let started = Instant::now();
        self.metrics.pool_waiting.fetch_add(1, Ordering::Relaxed);
        let got = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break Err(Failure::Busy);
            }
            match self
                .pool
                .r2d2
                .get_timeout(left.min(self.connection_timeout))
            {
                Ok(conn) => break Ok(conn),
                Err(err) if self.pool.unreachable() => {
                    break Err(Failure::Unreachable(err.to_string()));
                }
                Err(_) => continue,
            }
        };
        self.metrics.pool_waiting.fetch_sub(1, Ordering::Relaxed);
        self.metrics.pool_wait.observe(started.elapsed());
        if got.is_err() {
            self.metrics
                .checkouts_failed
                .fetch_add(1, Ordering::Relaxed);
        }
        got
    }
}

/// What a failed command means, and the connection's fate: anything but an error reply from
/// Redis leaves the connection in an unknown state (a late answer may still come), so it is
/// never lent again.
fn classify(conn: &mut Conn, err: &redis::RedisError) -> Failure {
    use redis::ErrorKind as Kind;
    match err.kind() {
        Kind::Server(redis::ServerErrorKind::BusyLoading) => Failure::Lost(err.to_string()),
        Kind::Server(_) | Kind::Extension => Failure::Reply(err.to_string()),
        _ => {
            conn.poisoned = true;
            if err.is_timeout() {
                Failure::Deadline
            } else {
                Failure::Lost(err.to_string())
            }
        }
    }
}
