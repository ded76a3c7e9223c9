//! Running out of file descriptors: `accept` fails with `EMFILE`, the loop pauses accepting for
//! `accept_backoff` instead of spinning, and serves again once descriptors are free (or, with a
//! backoff of `Duration::MAX`, stays paused and goes on serving the connections it has).
//!
//! Its own test binary, so its own process: lowering `RLIMIT_NOFILE` here affects no other test.
//! Client and server share the process's descriptor table, so once the clients hold enough
//! sockets, the server's `accept` is the call that fails.

mod common;

use std::fs::File;
use std::io;
use std::net::TcpStream;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use tungstenite::Message;

const LIMIT: u64 = 256;
const EMFILE: i32 = 24;

fn nofile_limit() -> libc::rlimit {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass; it lives for the call.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(rc, 0, "getrlimit: {}", io::Error::last_os_error());
    limit
}

fn set_nofile_limit(limit: &libc::rlimit) {
    // SAFETY: setrlimit only reads the struct we pass; it lives for the call.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, limit) };
    assert_eq!(rc, 0, "setrlimit: {}", io::Error::last_os_error());
}

/// Restores the original limit even if the test fails.
struct RestoreLimit(libc::rlimit);

impl Drop for RestoreLimit {
    fn drop(&mut self) {
        // SAFETY: as in `set_nofile_limit`.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &self.0) };
    }
}

/// Lowers the process's descriptor limit to `LIMIT` (restored when the guard drops).
fn lower_limit(original: libc::rlimit) -> RestoreLimit {
    let restore = RestoreLimit(original);
    set_nofile_limit(&libc::rlimit {
        rlim_cur: LIMIT as libc::rlim_t,
        rlim_max: original.rlim_max,
    });
    assert_eq!(nofile_limit().rlim_cur, LIMIT as libc::rlim_t);
    restore
}

/// Connects to `addr` until the process is out of descriptors and the server's `accept` has
/// failed with `EMFILE`; returns the clients and the spare descriptors left.
fn exhaust(
    addr: std::net::SocketAddr,
    handle: &wsreactor::ServerHandle,
) -> (Vec<TcpStream>, Vec<File>) {
    // A few spare descriptors, to hand one at a time to the client side below.
    let mut ballast: Vec<File> = (0..8)
        .map(|_| File::open("/dev/null").expect("open /dev/null"))
        .collect();

    // Connect until the process is out of descriptors.
    let mut clients: Vec<TcpStream> = Vec::new();
    let exhausted = loop {
        assert!(
            clients.len() < 300,
            "300 connections under a limit of {LIMIT}: the limit did not apply"
        );
        match TcpStream::connect(addr) {
            Ok(stream) => clients.push(stream),
            Err(err) => break err,
        }
    };
    assert_eq!(
        exhausted.raw_os_error(),
        Some(EMFILE),
        "connect failed, but not for lack of descriptors: {exhausted}"
    );

    // If the server won the race for the last descriptor, no connection waits in the backlog.
    // Then free one ballast descriptor for a new client socket: its connection reaches the
    // backlog, and the server's accept for it finds no descriptor left.
    wait_until("accept fails with EMFILE", || {
        let stats = handle.stats();
        if stats.accept_errors > 0 {
            return true;
        }
        if stats.connections_accepted == clients.len() as u64 {
            assert!(ballast.pop().is_some(), "ran out of ballast descriptors");
            if let Ok(stream) = TcpStream::connect(addr) {
                clients.push(stream);
            }
        }
        false
    });
    (clients, ballast)
}

/// The tests lower the one process-wide descriptor limit: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn accept_backs_off_on_emfile_and_recovers() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let original = nofile_limit();
    assert!(
        original.rlim_max >= LIMIT,
        "hard limit {} below {LIMIT}",
        original.rlim_max
    );
    let mut config = config();
    // One listener: the test steers exactly which accept runs out of descriptors.
    config.event_loops = 1;
    config.accept_backoff = Duration::from_millis(50);
    config.ping_interval = None;
    let backoff = config.accept_backoff;
    let server = start(config, echo());
    let addr = server.local_addr();
    let handle = server.handle();

    let _restore = lower_limit(original);
    let (mut clients, ballast) = exhaust(addr, &handle);

    // Exhausted: the loop retries once per backoff, it does not spin. Count its failures over
    // a window of at least 10 backoff periods (measured by polling, not a single sleep).
    let first = handle.stats().accept_errors;
    let window = Instant::now();
    let mut last = first;
    wait_until("a window of 10 backoff periods", || {
        last = handle.stats().accept_errors;
        window.elapsed() >= backoff * 10
    });
    let elapsed = window.elapsed();
    let during = last - first;
    // About one failure per backoff period; a loop retrying without a pause would fail tens of
    // thousands of times here.
    let most = (elapsed.as_millis() / backoff.as_millis()) as u64 + 2;
    assert!(
        during <= most && during <= 40,
        "{during} accept errors in {elapsed:?} with a {backoff:?} backoff"
    );
    assert!(
        during >= 2,
        "only {during} accept retries in {elapsed:?}: the loop stopped retrying"
    );
    let stats = handle.stats();
    assert!(
        stats.connections_accepted < clients.len() as u64,
        "no connection waits in the backlog: {stats:?} with {} clients",
        clients.len()
    );

    // Free half of the client connections: their descriptors return at once, and the server's
    // as it sees each EOF. It accepts the waiting connections and serves a new client.
    let held = clients.len();
    clients.truncate(held / 2);
    drop(ballast);
    let mut client = connect(addr);
    client.send(Message::text("recovered")).unwrap();
    assert_eq!(client.read().unwrap(), Message::text("recovered"));
    let stats = handle.stats();
    assert_eq!(stats.upgrades, 1, "{stats:?}");
    // Every connection that waited in the backlog was accepted before the new one.
    assert_eq!(stats.connections_accepted, held as u64 + 1, "{stats:?}");
    client.close(None).unwrap();
    drop(client);
    drop(clients);
    wait_for_stats(&handle, "every connection closed", |s| {
        s.connections_open == 0
    });
    server.shutdown().unwrap();
}

/// `accept_backoff = Duration::MAX`: the pause after `EMFILE` is "forever" (it used to overflow
/// `Instant` and panic the loop thread). Accepting stays paused, and the loop goes on serving the
/// connections it has, and shuts down cleanly.
#[test]
fn a_backoff_at_its_maximum_pauses_accepting_without_a_panic() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let original = nofile_limit();
    let mut config = config();
    config.event_loops = 1;
    config.accept_backoff = Duration::MAX;
    config.ping_interval = None;
    let server = start(config, echo());
    let addr = server.local_addr();
    let handle = server.handle();
    let mut served = connect(addr);
    let restore = lower_limit(original);
    let (clients, ballast) = exhaust(addr, &handle);
    drop((clients, ballast, restore));
    // The loop lives: the connection it had still echoes.
    served.send(Message::text("still here")).unwrap();
    assert_eq!(served.read().unwrap(), Message::text("still here"));
    assert!(handle.stats().accept_errors >= 1);
    served.close(None).unwrap();
    drop(served);
    server.shutdown().expect("no thread panicked");
}
