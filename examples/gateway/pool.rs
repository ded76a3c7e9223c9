//! The bounded pool of Redis connections: r2d2, over the `redis` crate's synchronous client.
//!
//! r2d2 holds at most `pool_size` connections, keeps `pool_min_idle` ready, `PING`s one before
//! lending it (`test_on_check_out`) and closes those idle past `idle_timeout` or older than
//! `max_lifetime` in its reaper. The [`Manager`] around `redis::Client` adds what the gateway
//! needs to see and to trust: a connection past `max_lifetime` is refused on checkout and on
//! check-in too (r2d2's reaper only looks every 30 s); a connection a request saw fail (an I/O
//! error, a timeout that may leave a late answer on the wire) is never lent again; and every
//! connection closed is counted by its reason (`metrics.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use r2d2::{CustomizeConnection, HandleError, ManageConnection};
use redis::{ConnectionLike, ErrorKind, RedisError};

use super::flags::Options;
use super::metrics::{Metrics, Recycled};

/// A pooled connection: the client's connection, when it was made, and what the gateway
/// learnt about it.
pub struct Conn {
    pub redis: redis::Connection,
    born: Instant,
    /// A request saw it fail: closed on check-in.
    pub poisoned: bool,
    /// Why the pool is closing it, once the manager decided so.
    retired: Option<Recycled>,
}

/// `redis::Client` as an r2d2 connection manager, with lifetimes and health checks the
/// gateway can see.
pub struct Manager {
    client: redis::Client,
    connect_timeout: Duration,
    max_lifetime: Option<Duration>,
    metrics: Arc<Metrics>,
    /// The last attempt to connect failed (and none has succeeded since): a checkout that
    /// times out now is the backend's failure, not a busy pool.
    unreachable: Arc<AtomicBool>,
}

impl Manager {
    fn expired(&self, conn: &Conn) -> bool {
        self.max_lifetime
            .is_some_and(|lifetime| conn.born.elapsed() >= lifetime)
    }
}

impl ManageConnection for Manager {
    type Connection = Conn;
    type Error = RedisError;

    fn connect(&self) -> Result<Conn, RedisError> {
        match self
            .client
            .get_connection_with_timeout(self.connect_timeout)
        {
            Ok(redis) => {
                self.unreachable.store(false, Ordering::Relaxed);
                Ok(Conn {
                    redis,
                    born: Instant::now(),
                    poisoned: false,
                    retired: None,
                })
            }
            Err(err) => {
                self.unreachable.store(true, Ordering::Relaxed);
                self.metrics.connect_errors.fetch_add(1, Ordering::Relaxed);
                Err(err)
            }
        }
    }

    /// On checkout: too old, or no `PONG` within the connect timeout — closed, and the next
    /// idle connection (or a new one) is tried; the request never sees this one.
    fn is_valid(&self, conn: &mut Conn) -> Result<(), RedisError> {
        if self.expired(conn) {
            conn.retired = Some(Recycled::Lifetime);
            let why = "past max_lifetime";
            return Err(RedisError::from((
                ErrorKind::Client,
                "retired",
                why.to_owned(),
            )));
        }
        let checked = conn
            .redis
            .set_read_timeout(Some(self.connect_timeout))
            .and_then(|()| redis::cmd("PING").query::<String>(&mut conn.redis));
        match checked {
            Ok(pong) if pong == "PONG" => Ok(()),
            Ok(other) => {
                conn.retired = Some(Recycled::FailedCheck);
                let why = format!("PING answered {other:?}");
                Err(RedisError::from((ErrorKind::Client, "bad PING", why)))
            }
            Err(err) => {
                conn.retired = Some(Recycled::FailedCheck);
                Err(err)
            }
        }
    }

    /// On check-in: failed during a request, closed by the client library, or too old.
    fn has_broken(&self, conn: &mut Conn) -> bool {
        if conn.poisoned || !conn.redis.is_open() {
            conn.retired = Some(Recycled::Broken);
            return true;
        }
        if self.expired(conn) {
            conn.retired = Some(Recycled::Lifetime);
            return true;
        }
        false
    }
}

/// Counts connections made and closed (with the reason the manager gave, or the reaper's).
#[derive(Debug)]
struct Counting {
    max_lifetime: Option<Duration>,
    metrics: Arc<Metrics>,
}

impl CustomizeConnection<Conn, RedisError> for Counting {
    fn on_acquire(&self, _conn: &mut Conn) -> Result<(), RedisError> {
        self.metrics
            .connections_opened
            .fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn on_release(&self, conn: Conn) {
        let old = self
            .max_lifetime
            .is_some_and(|lifetime| conn.born.elapsed() >= lifetime);
        let why = conn.retired.unwrap_or(if old {
            Recycled::Lifetime
        } else {
            Recycled::Idle
        });
        log::debug!("pool: connection closed ({why:?})");
        self.metrics.recycled(why);
    }
}

/// r2d2 reports every failed connect and check here: they are counted and visible on the
/// breaker, so the log gets them at debug level only (Redis down would otherwise log several
/// lines a second).
#[derive(Debug)]
struct Quiet;

impl HandleError<RedisError> for Quiet {
    fn handle_error(&self, error: RedisError) {
        log::debug!("pool: {error}");
    }
}

/// The pool, and whether its last connect failed.
pub struct Pool {
    pub r2d2: r2d2::Pool<Manager>,
    pub unreachable: Arc<AtomicBool>,
}

impl Pool {
    /// Builds the pool without waiting for Redis: the gateway starts (and says `unavailable`)
    /// while Redis is down.
    pub fn new(
        options: &Options,
        redis: redis::ConnectionInfo,
        metrics: &Arc<Metrics>,
    ) -> Result<Pool, String> {
        let client = redis::Client::open(redis).map_err(|e| format!("redis: {e}"))?;
        let unreachable = Arc::new(AtomicBool::new(false));
        let manager = Manager {
            client,
            connect_timeout: options.connection_timeout,
            max_lifetime: options.max_lifetime,
            metrics: Arc::clone(metrics),
            unreachable: Arc::clone(&unreachable),
        };
        let counting = Counting {
            max_lifetime: options.max_lifetime,
            metrics: Arc::clone(metrics),
        };
        let r2d2 = r2d2::Pool::builder()
            .max_size(options.pool_size)
            .min_idle(Some(options.pool_min_idle))
            .test_on_check_out(options.test_on_check_out)
            .max_lifetime(options.max_lifetime)
            .idle_timeout(options.idle_timeout)
            .connection_timeout(options.connection_timeout)
            .connection_customizer(Box::new(counting))
            .error_handler(Box::new(Quiet))
            .build_unchecked(manager);
        Ok(Pool { r2d2, unreachable })
    }

    /// Was the last attempt to connect a failure?
    pub fn unreachable(&self) -> bool {
        self.unreachable.load(Ordering::Relaxed)
    }
}
