//! Request bodies on the core: `Expect: 100-continue` answered by the loop itself, once and in
//! order; chunked bodies decoded as they arrive, without holding a read buffer between reads, and
//! under the request deadline and the body limit.

use super::*;

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The head of a PUT that expects `100-continue`, with a 5-byte body to follow.
const EXPECTING: &[u8] =
    b"PUT /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";

/// The head of a chunked POST.
const CHUNKED: &[u8] = b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";

/// The body of the `200` the test application answers with (the request body, echoed).
fn response_body(out: &[u8]) -> &[u8] {
    let at = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    &out[at + 4..]
}

#[test]
fn a_100_continue_goes_out_once_before_the_body_is_read() {
    let mut h = harness(config());
    let peer = h.connect();
    h.send(peer, EXPECTING);
    assert_eq!(
        h.take_output(peer),
        CONTINUE,
        "exactly the interim response"
    );
    assert_eq!(h.queued_jobs(), 0, "the handler waits for the body");
    assert_eq!(h.phase(peer), Some("Http"));
    h.send(peer, b"he");
    assert_eq!(h.take_output(peer), b"", "not twice");
    h.send(peer, b"llo");
    assert_eq!(h.run_jobs(1), 1);
    let out = h.take_output(peer);
    assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n"), "{out:?}");
    assert_eq!(response_body(&out), b"hello");
    // The next request on the connection owes its own.
    h.send(peer, EXPECTING);
    assert_eq!(h.take_output(peer), CONTINUE);
}

#[test]
fn no_100_continue_when_the_body_came_with_the_head() {
    let mut h = harness(config());
    let peer = h.connect();
    let mut request = EXPECTING.to_vec();
    request.extend_from_slice(b"hello");
    h.send(peer, &request);
    assert_eq!(h.run_jobs(1), 1);
    let out = h.take_output(peer);
    assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n"), "{out:?}");
}

#[test]
fn a_100_continue_behind_a_pipelined_request_follows_its_response() {
    let mut h = harness(config());
    let peer = h.connect();
    let mut bytes = b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    bytes.extend_from_slice(EXPECTING);
    h.send(peer, &bytes);
    assert_eq!(h.queued_jobs(), 1, "GET /first");
    assert_eq!(
        h.take_output(peer),
        b"",
        "the 100 must not overtake the response to GET /first"
    );
    h.run_jobs(1);
    let out = h.take_output(peer);
    assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n"), "{out:?}");
    assert!(
        out.ends_with(CONTINUE),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(
        String::from_utf8_lossy(&out)
            .matches("100 Continue")
            .count(),
        1
    );
    h.send(peer, b"hello");
    h.run_jobs(1);
    assert_eq!(response_body(&h.take_output(peer)), b"hello");
}

#[test]
fn an_expectation_the_server_cannot_meet_gets_417() {
    let mut h = harness(config());
    let peer = h.connect();
    h.send(
        peer,
        b"PUT /up HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 5\r\n\r\n",
    );
    let out = String::from_utf8(h.take_output(peer)).unwrap();
    assert!(
        out.starts_with("HTTP/1.1 417 Expectation Failed\r\n"),
        "{out}"
    );
    assert!(!out.contains("100 Continue"), "{out}");
    assert_eq!(h.phase(peer), Some("Lingering"));
}

#[test]
fn a_body_too_large_gets_413_instead_of_100() {
    let mut config = config();
    config.max_body_size = 4;
    let mut h = harness(config);
    let peer = h.connect();
    h.send(peer, EXPECTING);
    let out = String::from_utf8(h.take_output(peer)).unwrap();
    assert!(
        out.starts_with("HTTP/1.1 413 Content Too Large\r\n"),
        "{out}"
    );
    assert!(!out.contains("100 Continue"), "{out}");
}

#[test]
fn a_chunked_body_dribbled_byte_by_byte_holds_no_read_buffer_and_arrives_decoded() {
    let mut h = harness(config());
    let peer = h.connect();
    h.send(peer, CHUNKED);
    let body = b"4\r\nWiki\r\n5;ext\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\n";
    for byte in body {
        // What was read is decoded into the parser at once: the buffer goes back to the pool.
        assert_eq!(h.stats().buffers_in_use, 0);
        assert_eq!(h.queued_jobs(), 0);
        h.send(peer, &[*byte]);
    }
    assert_eq!(h.run_jobs(1), 1);
    let out = h.take_output(peer);
    assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n"), "{out:?}");
    assert_eq!(response_body(&out), b"Wikipedia in\r\n\r\nchunks.");
    assert_eq!(h.stats().http_requests, 1);
    assert_eq!(h.phase(peer), Some("Http"));
}

#[test]
fn a_chunked_request_then_a_pipelined_one_in_one_read() {
    let mut h = harness(config());
    let peer = h.connect();
    let mut bytes = CHUNKED.to_vec();
    bytes.extend_from_slice(b"2\r\nhi\r\n0\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n");
    h.send(peer, &bytes);
    h.run_jobs(1);
    let out = String::from_utf8(h.take_output(peer)).unwrap();
    assert_eq!(out.matches("HTTP/1.1 200 OK\r\n").count(), 2, "{out}");
    assert!(out.contains("\r\n\r\nhiHTTP/1.1 200 OK"), "{out}");
    assert_eq!(h.stats().http_requests, 2);
}

#[test]
fn the_request_deadline_runs_on_through_a_chunked_body() {
    let mut h = harness(config());
    let peer = h.connect();
    h.send(peer, CHUNKED);
    // A chunk every 4 s: each read empties the buffer, but the request that began at the head
    // keeps its deadline (10 s); a slow body is not a fresh request every time.
    for _ in 0..2 {
        h.advance(secs(4));
        h.send(peer, b"1\r\nx\r\n");
        assert_eq!(h.take_output(peer), b"");
    }
    h.advance(secs(3));
    let out = String::from_utf8(h.take_output(peer)).unwrap();
    assert!(out.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{out}");
    assert_eq!(h.stats().timeouts_request, 1);
}

#[test]
fn a_chunked_body_over_the_limit_gets_413_at_its_chunk_size() {
    let mut config = config();
    config.max_body_size = 8;
    let mut h = harness(config);
    let peer = h.connect();
    h.send(peer, CHUNKED);
    h.send(peer, b"5\r\nhello\r\n");
    assert_eq!(h.take_output(peer), b"");
    h.send(peer, b"4\r\n");
    let out = String::from_utf8(h.take_output(peer)).unwrap();
    assert!(
        out.starts_with("HTTP/1.1 413 Content Too Large\r\n"),
        "{out}"
    );
    assert_eq!(h.phase(peer), Some("Lingering"));
    assert_eq!(h.queued_jobs(), 0);
}

#[test]
fn bad_chunk_framing_gets_400() {
    let mut h = harness(config());
    let peer = h.connect();
    h.send(peer, CHUNKED);
    h.send(peer, b"5\r\nhello\n");
    let out = String::from_utf8(h.take_output(peer)).unwrap();
    assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
    assert!(out.ends_with("chunk data not followed by CRLF\n"), "{out}");
}
