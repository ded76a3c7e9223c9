//! Plain HTTP on the core: keep-alive, pipelining, errors the loop answers itself, half-close.

use super::*;

fn statuses(out: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(out)
        .lines()
        .filter(|l| l.starts_with("HTTP/1.1 "))
        .map(|l| l[9..12].to_owned())
        .collect()
}

#[test]
fn pipelined_requests_are_one_batch_answered_in_order() {
    let mut h = harness(config());
    let peer = h.connect();
    h.send(
        peer,
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(h.queued_jobs(), 1);
    h.run_jobs(1);
    assert_eq!(statuses(&h.take_output(peer)), ["200", "200", "200"]);
    assert_eq!(h.stats().http_requests, 3);
    assert_eq!(h.phase(peer), Some("Http"));
}

#[test]
fn a_bad_request_is_answered_by_the_loop_and_the_connection_lingers() {
    let mut h = harness(config());
    let peer = h.connect();
    h.send(peer, b"NOT HTTP\r\n\r\n");
    assert_eq!(h.queued_jobs(), 0, "no handler for bytes that are not HTTP");
    let out = String::from_utf8(h.take_output(peer)).unwrap();
    assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
    assert!(h.fin_received(peer));
    h.peer_eof(peer);
    assert_eq!(h.stats().closed_protocol_error, 1);
}

#[test]
fn an_error_after_good_requests_is_answered_after_them() {
    let mut h = harness(config());
    let peer = h.connect();
    h.send(
        peer,
        b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/9.9\r\n\r\n",
    );
    h.run_jobs(1);
    assert_eq!(statuses(&h.take_output(peer)), ["200", "505"]);
    assert_eq!(h.phase(peer), Some("Lingering"));
    h.peer_eof(peer);
    assert_eq!(h.stats().closed_protocol_error, 1);
}

#[test]
fn connection_close_lingers_until_the_peer_closes_too() {
    let mut h = harness(config());
    let peer = h.connect();
    h.send(
        peer,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    h.run_jobs(1);
    assert_eq!(statuses(&h.take_output(peer)), ["200"]);
    assert!(h.fin_received(peer));
    assert_eq!(
        h.phase(peer),
        Some("Lingering"),
        "our bytes are out; the peer's FIN is not in"
    );
    h.peer_eof(peer);
    assert_eq!(h.phase(peer), None);
    assert_eq!(h.stats().closed_clean, 1);
}

#[test]
fn a_half_closed_client_gets_its_response() {
    let mut h = harness(config());
    let peer = h.connect();
    h.put(peer, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    h.peer_eof(peer);
    assert_eq!(h.queued_jobs(), 1);
    h.run_jobs(1);
    assert_eq!(statuses(&h.take_output(peer)), ["200"]);
    assert_eq!(h.phase(peer), None);
}

#[test]
fn a_request_split_byte_by_byte_is_parsed_once_complete() {
    let mut h = harness(config());
    let peer = h.connect();
    for byte in b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n" {
        h.send(peer, &[*byte]);
    }
    h.run_jobs(1);
    assert_eq!(statuses(&h.take_output(peer)), ["200"]);
}

#[test]
fn an_upgrade_without_host_is_rejected_by_the_loop() {
    let mut h = harness(config());
    let peer = h.connect();
    let request = String::from_utf8(upgrade_request("/ws")).unwrap();
    h.send(peer, request.replace("Host: x\r\n", "").as_bytes());
    assert_eq!(h.queued_jobs(), 0, "on_upgrade never hears of it");
    let out = String::from_utf8(h.take_output(peer)).unwrap();
    assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
    assert!(
        out.ends_with("400 Bad Request: missing Host header\n"),
        "{out}"
    );
    assert_eq!(h.phase(peer), Some("Lingering"));
    assert_eq!(h.stats().upgrades, 0);
}

#[test]
fn an_http10_request_may_omit_host() {
    let mut h = harness(config());
    let peer = h.connect();
    h.send(peer, b"GET /old HTTP/1.0\r\n\r\n");
    h.run_jobs(1);
    assert_eq!(statuses(&h.take_output(peer)), ["200"]);
}

#[test]
fn a_cross_origin_upgrade_is_refused_by_the_loop_without_a_job() {
    let mut h = harness(config());
    let peer = h.connect();
    let request = String::from_utf8(upgrade_request("/ws")).unwrap();
    let cross = request.replace("Host: x\r\n", "Host: x\r\nOrigin: https://evil.example\r\n");
    h.send(peer, cross.as_bytes());
    assert_eq!(h.queued_jobs(), 0, "on_upgrade never hears of it");
    let out = String::from_utf8(h.take_output(peer)).unwrap();
    assert!(out.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{out}");
    assert!(
        out.ends_with(
            "403 Forbidden: cross-origin WebSocket upgrade refused: the Origin is neither this \
             server's own (its Host) nor an allowed origin\n"
        ),
        "{out}"
    );
    assert!(h.fin_received(peer));
    h.peer_eof(peer);
    let stats = h.stats();
    assert_eq!((stats.origin_refused, stats.upgrades), (1, 0), "{stats:?}");
    assert_eq!(stats.closed_protocol_error, 1, "{stats:?}");

    // The same request from the server's own origin upgrades.
    let peer = h.connect();
    let own = request.replace("Host: x\r\n", "Host: x\r\nOrigin: http://x\r\n");
    h.send(peer, own.as_bytes());
    assert_eq!(h.queued_jobs(), 1);
    h.run_jobs(1);
    assert!(h.take_output(peer).starts_with(b"HTTP/1.1 101 "));
    assert_eq!(h.stats().origin_refused, 1);
}
