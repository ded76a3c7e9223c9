//! The monitoring reserve over real sockets: with `max_connections` held, `metrics_path` and
//! `health_path` are still answered (one answer per connection, then close), everything else —
//! another path, an upgrade — gets `503` with `Retry-After: 1`; past the reserve, and with no
//! monitoring path set, a new connection gets its `503` at once, as it always did.
//!
//! Every assertion is on exact bytes or on the server's counters; time passes only while the
//! tests poll for a condition with a deadline.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::http::{App, expect_ok, header, read_until_eof};
use common::*;
use wsreactor::{Config, Server};

/// Exactly what a connection the server has no room for receives (without its `Date`).
const REFUSED_HEAD: &str = "HTTP/1.1 503 Service Unavailable\r\n\
    Content-Type: text/plain; charset=utf-8\r\nRetry-After: 1\r\nContent-Length: 21\r\n\
    Connection: close\r\n\r\n";
const REFUSED_BODY: &[u8] = b"too many connections\n";

/// A test config with `max_connections` and both monitoring paths set.
fn monitored(max_connections: usize, reserve: usize) -> Config {
    let mut config = config();
    config.max_connections = max_connections;
    config.monitoring_reserve = reserve;
    config.metrics_path = Some("/metrics".into());
    config.health_path = Some("/healthz".into());
    config
}

/// Sends `request` on a fresh connection and returns the response head and body, after
/// checking that the server then closes the connection.
fn ask(addr: SocketAddr, request: &[u8]) -> (String, Vec<u8>) {
    let mut stream = raw(addr);
    stream.write_all(request).expect("write request");
    let (head, body) = read_http_response(&mut stream).expect("a response");
    assert_eq!(read_until_eof(&mut stream), b"", "nothing after {head:?}");
    (head, body)
}

/// Reads the `503` a full server writes, on a connection that has sent nothing: the answer
/// comes at accept, without waiting for a request.
fn expect_refused_at_once(addr: SocketAddr) {
    let mut stream = raw(addr);
    expect_refused(&mut stream);
}

/// Reads exactly the `503` refusal, then EOF.
fn expect_refused(stream: &mut TcpStream) {
    let (head, body) = read_http_response(stream).expect("a 503");
    assert_eq!(without_date(&head), REFUSED_HEAD);
    assert_eq!(body, REFUSED_BODY);
    assert_eq!(read_until_eof(stream), b"");
}

#[test]
fn metrics_and_health_are_answered_when_max_connections_is_reached() {
    let server = start(monitored(2, 1), echo());
    let addr = server.local_addr();
    let handle = server.handle();
    let mut clients: Vec<Client> = (0..2).map(|_| connect(addr)).collect();
    wait_for_stats(&handle, "max_connections held by two WebSockets", |s| {
        s.connections_open == 2 && s.websocket_open == 2
    });

    let (head, body) = ask(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert_eq!(
        header(&head, "content-type"),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert_eq!(header(&head, "connection"), "close");
    let text = String::from_utf8(body).expect("UTF-8");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.contains(&"wsreactor_connections_open 2"), "{text}");
    assert!(
        lines.contains(&"wsreactor_monitoring_connections_open 1"),
        "the scrape's own connection is on the reserve: {text}"
    );
    assert!(
        lines.contains(&"# TYPE wsreactor_monitoring_served_total counter"),
        "{text}"
    );

    // The reserve has one place: the scrape gave it back when it closed.
    wait_for_stats(&handle, "the reserve place given back", |s| {
        s.monitoring_open == 0
    });
    let (head, body) = ask(addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(
        without_date(&head),
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\n\
         Connection: close\r\n\r\n"
    );
    assert_eq!(body, b"ok\n");

    let stats = wait_for_stats(&handle, "both answers counted, places back", |s| {
        s.monitoring_served == 2 && s.monitoring_open == 0
    });
    assert_eq!(stats.connections_rejected, 0, "{stats:?}");
    assert_eq!(stats.connections_open, 2, "{stats:?}");
    for (i, client) in clients.iter_mut().enumerate() {
        echo_text(client, &format!("client {i} still served"));
    }
    clients.into_iter().for_each(close_client);
    server.shutdown().unwrap();
}

#[test]
fn other_requests_and_upgrades_get_503_from_the_reserve() {
    let server = start(monitored(2, 4), App);
    let addr = server.local_addr();
    let handle = server.handle();
    let websocket = connect(addr);
    let mut keep_alive = raw(addr);
    keep_alive
        .write_all(b"GET /mine HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    expect_ok(&mut keep_alive, "GET /mine");
    wait_for_stats(&handle, "max_connections held", |s| s.connections_open == 2);

    for request in [
        b"GET /other HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        upgrade_request("/ws").into_bytes(),
        b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody".to_vec(),
    ] {
        let mut stream = raw(addr);
        stream.write_all(&request).unwrap();
        expect_refused(&mut stream);
    }
    let stats = wait_for_stats(&handle, "the refused connections gone", |s| {
        s.monitoring_open == 0
    });
    assert_eq!(stats.connections_rejected, 3, "{stats:?}");
    assert_eq!(stats.monitoring_served, 0, "{stats:?}");
    assert_eq!(
        stats.http_requests, 1,
        "the handler heard only /mine: {stats:?}"
    );
    assert_eq!(stats.upgrades, 1, "only the WebSocket that holds a place");

    // The connections within the limit are served as before.
    keep_alive
        .write_all(b"GET /again HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    expect_ok(&mut keep_alive, "GET /again");
    close_client(websocket);
    server.shutdown().unwrap();
}

#[test]
fn past_the_reserve_503_comes_at_once_and_a_silent_holder_is_closed_after_monitoring_timeout() {
    let mut config = monitored(1, 1);
    config.monitoring_timeout = Duration::from_millis(500);
    let server = start(config, echo());
    let addr = server.local_addr();
    let handle = server.handle();
    let mut client = connect(addr);
    wait_for_stats(&handle, "max_connections held", |s| s.connections_open == 1);

    let connected = Instant::now();
    let mut silent = raw(addr);
    wait_for_stats(&handle, "the reserve held", |s| s.monitoring_open == 1);
    // The reserve is full: a scrape gets its 503 at accept, before it sends anything.
    expect_refused_at_once(addr);
    assert_eq!(handle.stats().connections_rejected, 1);

    assert!(reaches_eof(&mut silent), "the silent one is closed");
    let held = connected.elapsed();
    assert!(held >= Duration::from_millis(500), "closed after {held:?}");
    assert!(
        held < Duration::from_secs(5),
        "closed after {held:?}: monitoring_timeout, not request_timeout (10 s)"
    );
    let stats = wait_for_stats(&handle, "the reserve place given back", |s| {
        s.monitoring_open == 0
    });
    assert_eq!(stats.timeouts_request, 1, "{stats:?}");

    let (head, _) = ask(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    echo_text(&mut client, "still served");
    close_client(client);
    server.shutdown().unwrap();
}

#[test]
fn without_a_monitoring_path_or_reserve_the_limit_refuses_at_once_as_before() {
    let mut no_paths = config();
    no_paths.max_connections = 2;
    let no_reserve = monitored(2, 0);
    for config in [no_paths, no_reserve] {
        let server: Server = start(config, App);
        let addr = server.local_addr();
        let handle = server.handle();
        let _first = raw(addr);
        let _second = raw(addr);
        wait_for_stats(&handle, "max_connections held", |s| s.connections_open == 2);

        expect_refused_at_once(addr);
        let mut scrape = raw(addr);
        scrape
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        expect_refused(&mut scrape);
        let stats = handle.stats();
        assert_eq!(stats.connections_rejected, 2, "{stats:?}");
        assert_eq!(stats.connections_accepted, 4, "{stats:?}");
        assert_eq!(
            (stats.monitoring_open, stats.monitoring_served),
            (0, 0),
            "{stats:?}"
        );
        server.shutdown().unwrap();
    }
}
