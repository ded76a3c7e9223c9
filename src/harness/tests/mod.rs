//! Unit tests of the connection core — the table and the sessions in it — without sockets:
//! in-memory wires, a hand-driven clock, jobs run by hand (`harness.rs`). One file per
//! behaviour; each test drives the core through real bytes and asserts the bytes, phases, close
//! codes and counters that come out.

mod backpressure;
mod bodies;
mod budget;
mod closing;
mod deadlines;
mod deferred;
mod deflate;
mod fairness;
mod http;
mod http_later;
mod lifecycle;
mod monitoring_reserve;
mod pongs;
mod scripts;
mod timers;
mod topics;
mod transport;
mod unordered;

use std::time::Duration;

use crate::config::Config;
use crate::harness::{Harness, client_frame, upgrade_request};

/// The defaults, with keepalive pings off unless a test turns them on.
fn config() -> Config {
    Config {
        ping_interval: None,
        ..Config::default()
    }
}

/// A harness with `config`.
fn harness(config: Config) -> Harness {
    Harness::new(config)
}

/// Connects a peer and completes its upgrade; returns it with the `101` already read.
fn upgraded(h: &mut Harness) -> usize {
    let peer = h.connect();
    h.send(peer, &upgrade_request("/ws"));
    if !h.config().inline_handlers {
        assert_eq!(h.run_jobs(1), 1, "the upgrade job");
    }
    let head = h.take_output(peer);
    assert!(
        head.starts_with(b"HTTP/1.1 101 "),
        "{}",
        String::from_utf8_lossy(&head)
    );
    assert_eq!(h.phase(peer), Some("Open"));
    peer
}

/// A masked text frame.
fn text(payload: &str) -> Vec<u8> {
    client_frame(0x1, payload.as_bytes())
}

/// A masked close frame with `code`.
fn close_frame(code: u16) -> Vec<u8> {
    client_frame(0x8, &code.to_be_bytes())
}

/// Server frames (unmasked) in `bytes`: (opcode, payload), and the bytes left after the last
/// whole frame.
fn frames(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 2 {
        assert_eq!(rest[1] & 0x80, 0, "server frames are never masked");
        let (len, header) = match rest[1] & 0x7f {
            126 => (usize::from(u16::from_be_bytes([rest[2], rest[3]])), 4),
            127 => {
                let mut be = [0u8; 8];
                be.copy_from_slice(&rest[2..10]);
                (u64::from_be_bytes(be) as usize, 10)
            }
            n => (usize::from(n), 2),
        };
        assert!(rest.len() >= header + len, "a truncated frame in {bytes:?}");
        out.push((rest[0] & 0x0f, rest[header..header + len].to_vec()));
        rest = &rest[header + len..];
    }
    assert!(rest.is_empty(), "trailing bytes {rest:?}");
    out
}

/// The texts of the text frames in `bytes`.
fn texts(bytes: &[u8]) -> Vec<String> {
    frames(bytes)
        .into_iter()
        .filter(|(opcode, _)| *opcode == 0x1)
        .map(|(_, payload)| String::from_utf8(payload).expect("UTF-8"))
        .collect()
}

/// The code of the close frame in `bytes` (`None` for an empty close payload).
fn close_code(bytes: &[u8]) -> Option<u16> {
    let (_, payload) = frames(bytes)
        .into_iter()
        .find(|(opcode, _)| *opcode == 0x8)
        .expect("a close frame");
    (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]))
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
