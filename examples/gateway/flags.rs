//! The gateway's command line: every limit as a `--flag value` (or `--flag=value`), checked
//! before anything starts. Durations take a unit: `250ms`, `2s`, `5m`; `0` turns an optional one
//! off.

use std::net::SocketAddr;
use std::time::Duration;

/// Everything the gateway is started with.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where WebSocket clients and browsers connect.
    pub addr: SocketAddr,
    /// The backend: `redis://[:password@]host:port[/db]`.
    pub redis: String,
    /// WebSocket worker threads (they parse requests; they never wait for Redis).
    pub workers: usize,
    /// WebSocket connections open at once (the server's `max_connections`).
    pub max_connections: usize,
    /// Connections the pool may hold (r2d2 `max_size`).
    pub pool_size: u32,
    /// Idle connections the pool keeps ready (r2d2 `min_idle`).
    pub pool_min_idle: u32,
    /// A connection older than this is closed and replaced (checked on checkout, on check-in
    /// and by the pool's reaper). `None`: never.
    pub max_lifetime: Option<Duration>,
    /// An idle connection older than this is closed by the pool's reaper. `None`: never.
    pub idle_timeout: Option<Duration>,
    /// How long to connect to Redis, and how long a checkout waits when Redis cannot be
    /// reached (a busy pool is waited for up to the request's deadline).
    pub connection_timeout: Duration,
    /// `PING` a pooled connection before handing it to a request.
    pub test_on_check_out: bool,
    /// From the request's arrival to its answer: queueing, pool wait, retries and the command.
    pub request_timeout: Duration,
    /// Extra attempts for a call that failed on the way (never for a command that may have run,
    /// unless it is idempotent).
    pub retries: u32,
    /// The first retry's backoff ceiling; each retry doubles it (full jitter below it).
    pub retry_backoff: Duration,
    /// Consecutive failed calls that open the circuit breaker.
    pub breaker_failures: u32,
    /// How long the breaker stays open the first time (then doubled, up to the maximum).
    pub breaker_backoff: Duration,
    pub breaker_max_backoff: Duration,
    /// Threads that do the backend I/O: the bulkhead.
    pub backend_threads: usize,
    /// Requests that may wait for a backend thread; past it, `overloaded` at once.
    pub backend_queue: usize,
    /// Requests one WebSocket may have unanswered; past it, `too_many_in_flight` at once.
    pub max_in_flight: usize,
    /// Put a relay in front of Redis that delays every byte sent to it by this much (a slow
    /// backend, for demonstrations and benchmarks).
    pub backend_delay: Option<Duration>,
    /// Call Redis on the WebSocket workers themselves, without the bulkhead: what the gateway
    /// would be without it, for measurements only.
    pub blocking_workers: bool,
    /// Answer a message of one request through a deferred completion (`Context::defer`)
    /// instead of a push through the server: the connection's next message waits for it.
    pub deferred: bool,
    /// Serve each request through an out-of-order completion (`Context::defer_unordered`):
    /// at most this many outstanding per connection (`Config::max_unordered_per_connection`),
    /// answers compressed as from the handler, in the order they are ready. 0: off.
    pub unordered: usize,
}

impl Default for Options {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Options {
            addr: SocketAddr::from(([127, 0, 0, 1], 9003)),
            redis: "redis://127.0.0.1:6379".to_owned(),
            workers: cpus,
            max_connections: 10_000,
            pool_size: 16,
            pool_min_idle: 2,
            max_lifetime: Some(Duration::from_secs(30 * 60)),
            idle_timeout: Some(Duration::from_secs(5 * 60)),
            connection_timeout: Duration::from_millis(250),
            test_on_check_out: true,
            request_timeout: Duration::from_secs(2),
            retries: 2,
            retry_backoff: Duration::from_millis(10),
            breaker_failures: 5,
            breaker_backoff: Duration::from_secs(1),
            breaker_max_backoff: Duration::from_secs(30),
            backend_threads: 32,
            backend_queue: 1024,
            max_in_flight: 64,
            backend_delay: None,
            blocking_workers: false,
            deferred: false,
            unordered: 0,
        }
    }
}

/// A flag: its name, its help (default in brackets), and how it sets `Options`.
struct Flag {
    name: &'static str,
    help: &'static str,
    set: fn(&mut Options, &str) -> Result<(), String>,
}

macro_rules! flag {
    ($name:literal, $field:ident, $parse:expr, $help:literal) => {
        Flag {
            name: $name,
            help: $help,
            set: |options, value| {
                options.$field = $parse(value).map_err(|e| format!("--{}: {e}", $name))?;
                Ok(())
            },
        }
    };
}

fn number<T: std::str::FromStr>(value: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    value
        .parse()
        .map_err(|e| format!("{value:?} is not a number ({e})"))
}

fn text(value: &str) -> Result<String, String> {
    Ok(value.to_owned())
}

fn switch(value: &str) -> Result<bool, String> {
    match value {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        other => Err(format!("expected true or false, not {other:?}")),
    }
}

/// `250ms`, `2s`, `5m`.
pub fn duration(value: &str) -> Result<Duration, String> {
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (digits, unit) = value.split_at(split);
    let count: u64 = digits
        .parse()
        .map_err(|_| format!("{value:?} is not a duration like 250ms, 2s or 5m"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(count)),
        "s" => Ok(Duration::from_secs(count)),
        "m" => count
            .checked_mul(60)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("{value:?} is too long")),
        _ => Err(format!("{value:?} needs a unit: ms, s or m")),
    }
}

/// A duration, or `0` for none.
fn optional_duration(value: &str) -> Result<Option<Duration>, String> {
    if value == "0" {
        return Ok(None);
    }
    duration(value).map(|d| (!d.is_zero()).then_some(d))
}

const FLAGS: &[Flag] = &[
    flag!(
        "addr",
        addr,
        number,
        "address to listen on [127.0.0.1:9003]"
    ),
    flag!("redis", redis, text, "the backend [redis://127.0.0.1:6379]"),
    flag!(
        "workers",
        workers,
        number,
        "WebSocket worker threads [CPUs]"
    ),
    flag!(
        "max-connections",
        max_connections,
        number,
        "WebSockets at once [10000]"
    ),
    flag!(
        "pool-size",
        pool_size,
        number,
        "pooled Redis connections at most [16]"
    ),
    flag!(
        "pool-min-idle",
        pool_min_idle,
        number,
        "idle connections kept ready [2]"
    ),
    flag!(
        "max-lifetime",
        max_lifetime,
        optional_duration,
        "replace connections older than this; 0: never [30m]"
    ),
    flag!(
        "idle-timeout",
        idle_timeout,
        optional_duration,
        "close connections idle this long; 0: never [5m]"
    ),
    flag!(
        "connection-timeout",
        connection_timeout,
        duration,
        "connect to Redis; checkout wait while it is unreachable [250ms]"
    ),
    flag!(
        "test-on-check-out",
        test_on_check_out,
        switch,
        "PING a pooled connection before use [true]"
    ),
    flag!(
        "request-timeout",
        request_timeout,
        duration,
        "deadline of each request, queueing included [2s]"
    ),
    flag!("retries", retries, number, "extra attempts where safe [2]"),
    flag!(
        "retry-backoff",
        retry_backoff,
        duration,
        "first retry's backoff ceiling, full jitter [10ms]"
    ),
    flag!(
        "breaker-failures",
        breaker_failures,
        number,
        "consecutive failures that open the breaker [5]"
    ),
    flag!(
        "breaker-backoff",
        breaker_backoff,
        duration,
        "first open period, before a half-open probe [1s]"
    ),
    flag!(
        "breaker-max-backoff",
        breaker_max_backoff,
        duration,
        "longest open period (doubling) [30s]"
    ),
    flag!(
        "backend-threads",
        backend_threads,
        number,
        "threads doing backend I/O: the bulkhead [32]"
    ),
    flag!(
        "backend-queue",
        backend_queue,
        number,
        "requests waiting for a backend thread; then 'overloaded' [1024]"
    ),
    flag!(
        "max-in-flight",
        max_in_flight,
        number,
        "unanswered requests per WebSocket [64]"
    ),
    flag!(
        "backend-delay",
        backend_delay,
        optional_duration,
        "relay to Redis adding this latency; 0: none [0]"
    ),
    flag!(
        "blocking-workers",
        blocking_workers,
        switch,
        "call Redis on the WebSocket workers (no bulkhead; to compare) [false]"
    ),
    flag!(
        "deferred",
        deferred,
        switch,
        "answer from the bulkhead by completing a deferred call, not a push [false]"
    ),
    flag!(
        "unordered",
        unordered,
        number,
        "answer each request by an out-of-order completion, N per connection; 0: off [0]"
    ),
];

/// What the command line asks for: serve with these options, or print the usage.
#[derive(Debug)]
pub enum Parsed {
    Serve(Box<Options>),
    Help,
}

/// The options from `args` (the program's arguments, without its name), checked.
pub fn parse(args: &[String]) -> Result<Parsed, String> {
    let mut options = Options::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--help" || arg == "-h" {
            return Ok(Parsed::Help);
        }
        let Some(name) = arg.strip_prefix("--") else {
            return Err(format!("unexpected argument {arg:?}"));
        };
        let (name, inline) = match name.split_once('=') {
            Some((name, value)) => (name, Some(value.to_owned())),
            None => (name, None),
        };
        let flag = FLAGS
            .iter()
            .find(|flag| flag.name == name)
            .ok_or_else(|| format!("unknown flag --{name}"))?;
        let value = match inline {
            Some(value) => value,
            None => args
                .next()
                .cloned()
                .ok_or_else(|| format!("--{name} needs a value"))?,
        };
        (flag.set)(&mut options, &value)?;
    }
    validate(&options)?;
    Ok(Parsed::Serve(Box::new(options)))
}

/// Refuses what cannot work, naming the flag.
pub fn validate(options: &Options) -> Result<(), String> {
    let within = |value: u64, low: u64, high: u64, flag: &str| {
        if (low..=high).contains(&value) {
            Ok(())
        } else {
            Err(format!(
                "--{flag} must be between {low} and {high}, not {value}"
            ))
        }
    };
    within(options.workers as u64, 1, 1024, "workers")?;
    within(
        options.max_connections as u64,
        1,
        1_000_000,
        "max-connections",
    )?;
    within(u64::from(options.pool_size), 1, 1024, "pool-size")?;
    within(
        u64::from(options.pool_min_idle),
        0,
        u64::from(options.pool_size),
        "pool-min-idle",
    )?;
    within(options.backend_threads as u64, 1, 4096, "backend-threads")?;
    within(options.backend_queue as u64, 1, 1 << 20, "backend-queue")?;
    within(options.max_in_flight as u64, 1, 1 << 16, "max-in-flight")?;
    within(u64::from(options.retries), 0, 10, "retries")?;
    within(
        u64::from(options.breaker_failures),
        1,
        1_000_000,
        "breaker-failures",
    )?;
    let hour = Duration::from_secs(3600);
    for (value, flag) in [
        (options.connection_timeout, "connection-timeout"),
        (options.request_timeout, "request-timeout"),
        (options.breaker_backoff, "breaker-backoff"),
        (options.breaker_max_backoff, "breaker-max-backoff"),
    ] {
        if value < Duration::from_millis(1) || value > hour {
            return Err(format!(
                "--{flag} must be between 1ms and 60m, not {value:?}"
            ));
        }
    }
    if options.retry_backoff > hour {
        return Err("--retry-backoff must be at most 60m".to_owned());
    }
    if options.breaker_max_backoff < options.breaker_backoff {
        return Err("--breaker-max-backoff must be at least --breaker-backoff".to_owned());
    }
    if options.backend_delay.is_some_and(|d| d > hour) {
        return Err("--backend-delay must be at most 60m".to_owned());
    }
    redis::Client::open(options.redis.as_str())
        .map(drop)
        .map_err(|e| format!("--redis {:?}: {e}", options.redis))
}

pub fn usage() -> String {
    let mut text = String::from(
        "usage: gateway [--flag value]...\n\n\
         A WebSocket gateway to Redis: clients send JSON requests, one per line,\n\
         {\"id\": 1, \"cmd\": [\"GET\", \"key\"]}, and get {\"id\": 1, \"ok\": ...} or\n\
         {\"id\": 1, \"error\": KIND, \"message\": ...} back. GET / is a console and the live\n\
         state of the pool and the breaker; /metrics is Prometheus text; /echo echoes.\n\
         GET /get?key=K is Redis's GET K over HTTP: {\"id\": K, \"ok\": ...} (200) or the\n\
         error with its status, answered later from the backend threads.\n\n\
         flags:\n",
    );
    for flag in FLAGS {
        text.push_str(&format!("  --{:<22} {}\n", flag.name, flag.help));
    }
    text.push_str("  --help                   this text\n");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(duration("5m"), Ok(Duration::from_secs(300)));
        assert!(duration("5").is_err());
        assert!(duration("ms").is_err());
        assert!(duration("-1s").is_err());
        assert!(duration(&format!("{}m", u64::MAX)).is_err());
        assert_eq!(optional_duration("0"), Ok(None));
    }

    #[test]
    fn flags_are_parsed_and_checked() {
        let Ok(Parsed::Serve(options)) = parse(&args("--pool-size 4 --max-lifetime=0 --retries 0"))
        else {
            panic!("parses");
        };
        assert_eq!(
            (options.pool_size, options.max_lifetime, options.retries),
            (4, None, 0)
        );
        assert!(matches!(parse(&args("--help")), Ok(Parsed::Help)));
        for (line, error) in [
            (
                "--pool-size 0",
                "--pool-size must be between 1 and 1024, not 0",
            ),
            ("--pool-size", "--pool-size needs a value"),
            ("--nope 1", "unknown flag --nope"),
            (
                "--request-timeout 0ms",
                "--request-timeout must be between 1ms and 60m, not 0ns",
            ),
            (
                "--pool-size 2 --pool-min-idle 3",
                "--pool-min-idle must be between 0 and 2, not 3",
            ),
            (
                "--breaker-backoff 2s --breaker-max-backoff 1s",
                "--breaker-max-backoff must be at least --breaker-backoff",
            ),
        ] {
            assert_eq!(
                parse(&args(line)).map(|_| ()),
                Err(error.to_owned()),
                "{line}"
            );
        }
        assert!(parse(&args("--redis nonsense")).is_err());
    }
}
