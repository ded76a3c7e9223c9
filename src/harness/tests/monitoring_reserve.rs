//! The monitoring reserve on the core: a connection admitted beyond `max_connections` gets one
//! answer for `metrics_path` or `health_path` and is closed; anything else gets `503` from the
//! loop, without the handler; all its clocks are `monitoring_timeout`.

use super::*;
use crate::harness::AppEvent;

/// The paths set, and a `monitoring_timeout` shorter than every other clock.
fn monitored() -> Config {
    Config {
        metrics_path: Some("/metrics".into()),
        health_path: Some("/healthz".into()),
        monitoring_timeout: secs(2),
        ..config()
    }
}

/// `bytes` as text without its `Date` line (the one field that changes with the clock).
fn undated(bytes: &[u8]) -> String {
    let text = String::from_utf8(bytes.to_vec()).expect("UTF-8");
    let mut lines: Vec<&str> = text.split("\r\n").collect();
    let dates = lines.iter().filter(|l| l.starts_with("Date: ")).count();
    assert_eq!(dates, 1, "one Date field in {text:?}");
    lines.retain(|l| !l.starts_with("Date: "));
    lines.join("\r\n")
}

/// Exactly what a connection the server has no room for receives.
const REFUSED: &str = "HTTP/1.1 503 Service Unavailable\r\n\
    Content-Type: text/plain; charset=utf-8\r\nRetry-After: 1\r\nContent-Length: 21\r\n\
    Connection: close\r\n\r\ntoo many connections\n";

/// Exactly the test application's answer to a request that closes the connection.
const SERVED: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\
    Content-Length: 3\r\nConnection: close\r\n\r\nok\n";

/// Sends `request` on a fresh reserve connection and checks it is refused with `503` at once,
/// without a job, and that the connection then ends.
fn expect_refused(request: &[u8]) {
    let mut h = harness(monitored());
    let peer = h.connect_to_reserve();
    h.send(peer, request);
    assert_eq!(h.queued_jobs(), 0, "{:?}", String::from_utf8_lossy(request));
    assert_eq!(undated(&h.take_output(peer)), REFUSED);
    assert!(h.fin_received(peer));
    assert_eq!(h.phase(peer), Some("Lingering"));
    h.peer_eof(peer);
    assert_eq!(h.phase(peer), None);
    let stats = h.stats();
    assert_eq!(stats.connections_rejected, 1);
    assert_eq!(stats.closed_server, 1);
    assert_eq!((stats.monitoring_served, stats.http_requests), (0, 0));
    assert_eq!((stats.monitoring_open, stats.connections_open), (0, 0));
    assert!(h.app_events().is_empty(), "the handler never hears of it");
}

#[test]
fn a_metrics_request_on_the_reserve_is_answered_then_the_connection_closes() {
    let mut h = harness(monitored());
    let peer = h.connect_to_reserve();
    assert_eq!(h.stats().monitoring_open, 1);
    h.send(peer, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(
        h.queued_jobs(),
        1,
        "the runner answers it, as on any connection"
    );
    h.run_jobs(1);
    assert_eq!(undated(&h.take_output(peer)), SERVED, "Connection: close");
    assert!(h.fin_received(peer));
    assert_eq!(h.phase(peer), Some("Lingering"));
    h.peer_eof(peer);
    assert_eq!(h.phase(peer), None);
    let stats = h.stats();
    assert_eq!((stats.monitoring_served, stats.http_requests), (1, 1));
    assert_eq!((stats.monitoring_open, stats.connections_open), (0, 0));
    assert_eq!((stats.closed_clean, stats.connections_rejected), (1, 0));
    assert_eq!(
        h.app_events(),
        [AppEvent::Http(h.id(peer), "/metrics".into())]
    );
}

#[test]
fn a_health_check_by_head_or_with_a_query_is_answered_too() {
    for request in [
        &b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"GET /healthz?probe=k8s HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    ] {
        let mut h = harness(monitored());
        let peer = h.connect_to_reserve();
        h.send(peer, request);
        assert_eq!(h.run_jobs(1), 1);
        let out = undated(&h.take_output(peer));
        assert!(out.contains(" 200 OK\r\n"), "{out}");
        assert!(out.contains("\r\nConnection: close\r\n"), "{out}");
        assert!(h.fin_received(peer));
        assert_eq!(h.stats().monitoring_served, 1);
    }
}

#[test]
fn another_path_gets_503_and_never_reaches_the_handler() {
    expect_refused(b"GET /other HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_refused(b"GET /metrics/extra HTTP/1.1\r\nHost: x\r\n\r\n");
}

#[test]
fn an_upgrade_on_the_reserve_gets_503() {
    expect_refused(&upgrade_request("/ws"));
    expect_refused(&upgrade_request("/metrics"));
}

#[test]
fn a_method_other_than_get_or_head_gets_503() {
    expect_refused(b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    expect_refused(b"DELETE /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
}

#[test]
fn a_body_on_the_reserve_gets_503_before_it_arrives() {
    // Heads alone: the body is refused from its announcement, none of it is awaited or held.
    expect_refused(b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n");
    expect_refused(b"POST /other HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n");
    expect_refused(
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
          Expect: 100-continue\r\n\r\n",
    );
    // A chunked body is refused at its first chunk.
    expect_refused(
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
    );
}

#[test]
fn bytes_that_are_not_http_get_their_usual_error() {
    let mut h = harness(monitored());
    let peer = h.connect_to_reserve();
    h.send(peer, b"NOT HTTP\r\n\r\n");
    assert_eq!(h.queued_jobs(), 0);
    let out = undated(&h.take_output(peer));
    assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
    assert_eq!(
        h.stats().connections_rejected,
        0,
        "not a refusal for capacity"
    );
    h.peer_eof(peer);
    assert_eq!(h.stats().monitoring_open, 0);
}

#[test]
fn pipelined_requests_after_the_monitoring_one_are_not_served() {
    let mut h = harness(monitored());
    let peer = h.connect_to_reserve();
    h.send(
        peer,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /other HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(h.run_jobs(usize::MAX), 1, "one job, of one request");
    assert_eq!(undated(&h.take_output(peer)), SERVED);
    h.run_all_jobs();
    assert_eq!(h.queued_jobs(), 0);
    assert_eq!(h.stats().http_requests, 1);
    assert_eq!(h.stats().monitoring_served, 1);
}

#[test]
fn a_silent_reserve_connection_is_closed_at_the_monitoring_timeout() {
    let mut h = harness(monitored());
    let peer = h.connect_to_reserve();
    h.advance(Duration::from_millis(1999));
    assert_eq!(h.phase(peer), Some("Http"));
    h.advance(Duration::from_millis(1));
    assert_eq!(h.phase(peer), None, "2 s, not the 10 s request_timeout");
    assert!(h.take_output(peer).is_empty());
    let stats = h.stats();
    assert_eq!((stats.timeouts_request, stats.closed_timeout), (1, 1));
    assert_eq!(stats.monitoring_open, 0, "its place is back");
}

#[test]
fn a_slow_head_gets_408_at_the_monitoring_timeout_counted_from_the_accept() {
    let mut h = harness(monitored());
    let peer = h.connect_to_reserve();
    h.advance(Duration::from_millis(1500));
    // The first byte does not restart the clock, as it would on an ordinary connection.
    h.send(peer, b"GET /metrics HTTP/1.1\r\nHo");
    h.advance(Duration::from_millis(499));
    assert_eq!(h.phase(peer), Some("Http"));
    h.advance(Duration::from_millis(1));
    let out = undated(&h.take_output(peer));
    assert!(out.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{out}");
    assert_eq!(h.phase(peer), Some("Lingering"));
    assert_eq!(h.stats().timeouts_request, 1);
}

#[test]
fn a_reserve_connection_lingers_no_longer_than_the_monitoring_timeout() {
    let mut h = harness(monitored());
    let peer = h.connect_to_reserve();
    h.send(peer, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    h.run_jobs(1);
    assert!(h.fin_received(peer));
    // The peer never closes: the linger ends after 2 s, not `close_timeout`'s 5 s.
    h.advance(Duration::from_millis(1999));
    assert_eq!(h.phase(peer), Some("Lingering"));
    h.advance(Duration::from_millis(1));
    assert_eq!(h.phase(peer), None);
    assert_eq!(h.stats().monitoring_open, 0);
}

#[test]
fn a_reserve_connection_that_does_not_read_is_dropped_at_the_monitoring_timeout() {
    let mut h = harness(monitored());
    let peer = h.connect_to_reserve();
    h.set_write_room(peer, 0);
    h.send(peer, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    h.run_jobs(1);
    assert_eq!(
        h.phase(peer),
        Some("Lingering"),
        "its answer waits to be written"
    );
    h.advance(secs(2));
    assert_eq!(h.phase(peer), None, "2 s, not `write_stall_timeout`'s 30 s");
    assert_eq!(h.stats().timeouts_write_stall, 1);
}

#[test]
fn ordinary_connections_keep_their_clocks_and_keep_alive() {
    let mut h = harness(monitored());
    let peer = h.connect();
    h.send(peer, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    h.run_jobs(1);
    let out = undated(&h.take_output(peer));
    assert!(!out.contains("Connection: close"), "{out}");
    assert_eq!(h.phase(peer), Some("Http"), "kept alive");
    h.send(peer, b"GET /other HTTP/1.1\r\nHost: x\r\n\r\n");
    h.run_jobs(1);
    assert!(undated(&h.take_output(peer)).starts_with("HTTP/1.1 200 OK\r\n"));
    let other = h.connect();
    h.advance(secs(9));
    assert_eq!(
        h.phase(other),
        Some("Http"),
        "request_timeout, not monitoring_timeout"
    );
    let stats = h.stats();
    assert_eq!(
        (stats.monitoring_served, stats.connections_rejected),
        (0, 0)
    );
}

#[test]
fn at_shutdown_a_reserve_connection_takes_no_request() {
    let mut h = harness(monitored());
    let peer = h.connect_to_reserve();
    h.shutdown();
    h.send(peer, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(h.queued_jobs(), 0);
    h.peer_eof(peer);
    assert_eq!(h.phase(peer), None);
    assert_eq!(h.stats().monitoring_open, 0);
}
