//! Plain HTTP/1.1 behaviour over real sockets: keep-alive, pipelining, fragmentation, HEAD,
//! HTTP/1.0, half-close, handshake validation, limits, timeouts, `max_connections`, handler
//! panics and connection churn. Every client is a raw `TcpStream` so the exact bytes on the wire
//! are asserted.

mod common;

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use common::http::*;
use common::*;
use wsreactor::{Context, Handler, Message, Request, Response};

#[test]
fn get_with_keep_alive() {
    let server = start(config(), App);
    let mut stream = raw(server.local_addr());
    stream
        .write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (head, body) = read_http_response(&mut stream).unwrap();
    assert_eq!(
        without_date(&head),
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 10\r\n\r\n"
    );
    assert_eq!(body, b"GET /hello");
    // Same connection, second request.
    stream
        .write_all(b"GET /again?x=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    expect_ok(&mut stream, "GET /again");
    let stats = server.handle().stats();
    assert_eq!(stats.http_requests, 2);
    assert_eq!(stats.connections_accepted, 1);
    server.shutdown().unwrap();
}

#[test]
fn pipelined_requests_in_one_write() {
    let server = start(config(), App);
    let mut stream = raw(server.local_addr());
    stream
        .write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    for body in ["GET /a", "GET /b", "GET /c"] {
        expect_ok(&mut stream, body);
    }
    // The connection is still usable afterwards.
    stream
        .write_all(b"GET /d HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    expect_ok(&mut stream, "GET /d");
    // A stray CRLF after a body (as some clients send) is skipped before the next request.
    stream
        .write_all(b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx\r\nGET /f HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    expect_ok(&mut stream, "POST /e x");
    expect_ok(&mut stream, "GET /f");
    assert_eq!(server.handle().stats().http_requests, 6);
    server.shutdown().unwrap();
}

#[test]
fn pipelined_requests_then_upgrade_in_one_write() {
    let server = start(config(), App);
    let mut stream = raw(server.local_addr());
    let mut bytes =
        b"GET /one HTTP/1.1\r\nHost: x\r\n\r\nPOST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz".to_vec();
    bytes.extend_from_slice(upgrade_request("/ws").as_bytes());
    stream.write_all(&bytes).unwrap();
    expect_ok(&mut stream, "GET /one");
    expect_ok(&mut stream, "POST /two xyz");
    let head = read_http_head(&mut stream).unwrap();
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    assert_eq!(
        header(&head, "sec-websocket-accept"),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    // The connection now speaks WebSocket.
    stream.write_all(&masked(true, 0x1, b"ping?")).unwrap();
    assert_eq!(
        read_frame(&mut stream).unwrap(),
        (true, 0x1, b"ping?".to_vec())
    );
    let stats = server.handle().stats();
    assert_eq!((stats.http_requests, stats.upgrades), (2, 1));
    server.shutdown().unwrap();
}

#[test]
fn request_split_byte_by_byte() {
    let server = start(config(), App);
    let handle = server.handle();
    let mut stream = raw(server.local_addr());
    let request = b"GET /bytes HTTP/1.1\r\nHost: example\r\nAccept: */*\r\n\r\n";
    for (i, byte) in request.iter().enumerate() {
        stream.write_all(&[*byte]).unwrap();
        stream.flush().unwrap();
        // The server really sees one byte at a time.
        wait_for_stats(&handle, "the byte is read", |s| s.bytes_in == i as u64 + 1);
    }
    expect_ok(&mut stream, "GET /bytes");
    assert_eq!(handle.stats().http_requests, 1);
    server.shutdown().unwrap();
}

#[test]
fn post_body_echoed_also_when_split() {
    let server = start(config(), App);
    let handle = server.handle();
    let mut stream = raw(server.local_addr());
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world")
        .unwrap();
    expect_ok(&mut stream, "POST /echo hello world");

    // Head and half the body, then (once the server has read them) the rest.
    let before = handle.stats().bytes_in;
    let first = b"POST /split HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234";
    stream.write_all(first).unwrap();
    wait_for_stats(&handle, "the first part is read", |s| {
        s.bytes_in == before + first.len() as u64
    });
    assert_eq!(handle.stats().http_requests, 1, "must wait for the body");
    stream.write_all(b"56789").unwrap();
    expect_ok(&mut stream, "POST /split 0123456789");
    server.shutdown().unwrap();
}

#[test]
fn http10_closes_unless_keep_alive() {
    let server = start(config(), App);
    let addr = server.local_addr();

    let mut stream = raw(addr);
    stream.write_all(b"GET /old HTTP/1.0\r\n\r\n").unwrap();
    let (head, body) = read_http_response(&mut stream).unwrap();
    assert_eq!(
        without_date(&head),
        format!("HTTP/1.1 200 OK\r\n{CONTENT_TYPE}Content-Length: 8\r\nConnection: close\r\n\r\n")
    );
    assert_eq!(body, b"GET /old");
    assert_eq!(read_until_eof(&mut stream), b"");

    let mut stream = raw(addr);
    stream
        .write_all(b"GET /ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let (head, body) = read_http_response(&mut stream).unwrap();
    assert_eq!(
        without_date(&head),
        format!(
            "HTTP/1.1 200 OK\r\n{CONTENT_TYPE}Content-Length: 7\r\nConnection: keep-alive\r\n\r\n"
        )
    );
    assert_eq!(body, b"GET /ka");
    stream
        .write_all(b"GET /ka2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let (head, body) = read_http_response(&mut stream).unwrap();
    assert_eq!(header(&head, "connection"), "keep-alive");
    assert_eq!(body, b"GET /ka2");
    server.shutdown().unwrap();
}

#[test]
fn http11_connection_close() {
    let server = start(config(), App);
    let mut stream = raw(server.local_addr());
    // The second request must not be answered: the first asked to close.
    stream
        .write_all(b"GET /bye HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /ignored HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (head, body) = read_http_response(&mut stream).unwrap();
    assert_eq!(
        without_date(&head),
        format!("HTTP/1.1 200 OK\r\n{CONTENT_TYPE}Content-Length: 8\r\nConnection: close\r\n\r\n")
    );
    assert_eq!(body, b"GET /bye");
    assert_eq!(read_until_eof(&mut stream), b"");
    assert_eq!(server.handle().stats().http_requests, 1);
    server.shutdown().unwrap();
}

#[test]
fn head_has_content_length_but_no_body() {
    let server = start(config(), App);
    let mut stream = raw(server.local_addr());
    stream
        .write_all(b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // "HEAD /h" is 7 bytes: announced, not sent.
    let head = read_http_head(&mut stream).unwrap();
    assert_eq!(without_date(&head), ok_head(7));
    // The very next bytes are the second response.
    expect_ok(&mut stream, "GET /after");
    server.shutdown().unwrap();
}

#[test]
fn bad_upgrades_are_rejected() {
    let server = start(config(), App);
    let addr = server.local_addr();
    let key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let base = "Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n";

    let no_key = format!("GET /ws HTTP/1.1\r\n{base}Sec-WebSocket-Version: 13\r\n\r\n");
    expect_error(
        addr,
        no_key.as_bytes(),
        "HTTP/1.1 400 Bad Request",
        "missing Sec-WebSocket-Key",
    );

    // "dGhlIHNhbXBsZQ==" is base64 for 10 bytes.
    let short_key = format!(
        "GET /ws HTTP/1.1\r\n{base}Sec-WebSocket-Key: dGhlIHNhbXBsZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    expect_error(
        addr,
        short_key.as_bytes(),
        "HTTP/1.1 400 Bad Request",
        "invalid Sec-WebSocket-Key",
    );

    let v8 = format!("GET /ws HTTP/1.1\r\n{base}{key}Sec-WebSocket-Version: 8\r\n\r\n");
    let head = expect_error(
        addr,
        v8.as_bytes(),
        "HTTP/1.1 426 Upgrade Required",
        "Sec-WebSocket-Version: 13",
    );
    // RFC 9110 §15.5.22 and §7.8: Upgrade, and the upgrade option beside close in one field.
    assert_eq!(
        without_date(&head),
        format!(
            "HTTP/1.1 426 Upgrade Required\r\n{CONTENT_TYPE}Connection: Upgrade, close\r\n\
             Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nContent-Length: 83\r\n\r\n"
        )
    );

    let post = format!("POST /ws HTTP/1.1\r\n{base}{key}Sec-WebSocket-Version: 13\r\n\r\n");
    expect_error(
        addr,
        post.as_bytes(),
        "HTTP/1.1 400 Bad Request",
        "must use GET",
    );
    assert_eq!(server.handle().stats().upgrades, 0);

    // Token lists and case: valid.
    let mut stream = raw(addr);
    let ok = format!(
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n\
         {key}Sec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(ok.as_bytes()).unwrap();
    let head = read_http_head(&mut stream).unwrap();
    assert_eq!(
        without_date(&head),
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
    );
    wait_for_stats(&server.handle(), "upgrade counted", |s| s.upgrades == 1);
    assert_serves(addr);
    server.shutdown().unwrap();
}

/// RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status code to any HTTP/1.1
/// request message that lacks a Host header field and to any request message that contains more
/// than one Host header field line or a Host header field with an invalid field value."
#[test]
fn host_is_required_single_and_valid() {
    let server = start(config(), App);
    let addr = server.local_addr();
    let bad = [
        (&b"GET / HTTP/1.1\r\n\r\n"[..], "missing Host header"),
        (
            b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n",
            "missing Host header",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
            "more than one Host header",
        ),
        (
            b"GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n",
            "more than one Host header",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
            "invalid Host header",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
            "invalid Host header",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n",
            "invalid Host header",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a:80x\r\n\r\n",
            "invalid Host header",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n",
            "invalid Host header",
        ),
        (
            b"GET / HTTP/1.0\r\nHost: a\x01b\r\n\r\n",
            "invalid header value",
        ),
    ];
    // (A control character is already refused by httparse as an invalid field value.)
    for (request, why) in bad {
        let head = expect_error(addr, request, "HTTP/1.1 400 Bad Request", why);
        let length = format!("400 Bad Request: {why}\n").len();
        assert_eq!(
            without_date(&head),
            format!(
                "HTTP/1.1 400 Bad Request\r\n{CONTENT_TYPE}Connection: close\r\n\
                 Content-Length: {length}\r\n\r\n"
            )
        );
    }
    // Upgrades too: the handshake without Host never reaches on_upgrade.
    let no_host = upgrade_request("/ws").replace("Host: localhost\r\n", "");
    expect_error(
        addr,
        no_host.as_bytes(),
        "HTTP/1.1 400 Bad Request",
        "missing Host header",
    );
    // Valid: HTTP/1.0 without Host, an empty Host, a port, a bracketed IPv6 literal.
    let mut stream = raw(addr);
    stream
        .write_all(b"GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let (head, body) = read_http_response(&mut stream).unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert_eq!(body, b"GET /old");
    for host in ["", "example.com:8080", "[::1]:9001", "127.0.0.1"] {
        let mut stream = raw(addr);
        let request = format!("GET /h HTTP/1.1\r\nHost: {host}\r\n\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        expect_ok(&mut stream, "GET /h");
    }
    let stats = server.handle().stats();
    assert_eq!((stats.http_requests, stats.upgrades), (5, 0));
    server.shutdown().unwrap();
}

#[test]
fn limits_and_malformed_requests() {
    let mut config = config();
    config.max_header_bytes = 1024;
    config.max_headers = 8;
    config.max_body_size = 1000;
    let server = start(config, App);
    let addr = server.local_addr();
    let handle = server.handle();

    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(2000)
    );
    expect_error(
        addr,
        big.as_bytes(),
        "HTTP/1.1 431 Request Header Fields Too Large",
        "too large",
    );
    assert_serves(addr);

    let mut many = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for i in 0..9 {
        many.push_str(&format!("X-{i}: v\r\n"));
    }
    many.push_str("\r\n");
    assert!(many.len() < 1024);
    expect_error(
        addr,
        many.as_bytes(),
        "HTTP/1.1 431 Request Header Fields Too Large",
        "too many request header fields",
    );
    assert_serves(addr);

    // 10,000 headers (~110 KB): rejected, connection closed, server fine.
    let mut flood = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for i in 0..10_000 {
        flood.push_str(&format!("X-{i}: v\r\n"));
    }
    flood.push_str("\r\n");
    expect_error(
        addr,
        flood.as_bytes(),
        "HTTP/1.1 431 Request Header Fields Too Large",
        "",
    );
    assert_serves(addr);

    // 413 comes from the head alone: no body is ever sent.
    expect_error(
        addr,
        b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n",
        "HTTP/1.1 413 Content Too Large",
        "1000 byte limit",
    );
    assert_serves(addr);

    expect_error(
        addr,
        b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n",
        "HTTP/1.1 400 Bad Request",
        "invalid Content-Length",
    );
    expect_error(
        addr,
        b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "HTTP/1.1 501 Not Implemented",
        "only the chunked transfer coding is supported",
    );
    expect_error(addr, b"HELLO THERE\r\n\r\n", "HTTP/1.1 400 Bad Request", "");
    expect_error(
        addr,
        b"GET / HTTP/2.0\r\n\r\n",
        "HTTP/1.1 505 HTTP Version Not Supported",
        "only HTTP/1.0 and HTTP/1.1",
    );
    // A body of exactly max_body_size is fine.
    let mut stream = raw(addr);
    let body = "b".repeat(1000);
    stream
        .write_all(
            format!("POST /max HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{body}")
                .as_bytes(),
        )
        .unwrap();
    expect_ok(&mut stream, &format!("POST /max {body}"));
    assert_serves(addr);

    drop(stream);
    // Eight rejected connections; each counted once the client is gone.
    let stats = wait_for_stats(&handle, "error connections closed", |s| {
        s.closed_protocol_error == 8 && s.connections_open == 0
    });
    assert_eq!(
        stats.http_requests, 6,
        "only the assert_serves and /max requests"
    );
    server.shutdown().unwrap();
}

#[test]
fn max_connections_rejects_with_503() {
    let mut config = config();
    config.max_connections = 2;
    let server = start(config, App);
    let addr = server.local_addr();
    let handle = server.handle();

    let mut first = raw(addr);
    let second = raw(addr);
    wait_for_stats(&handle, "two connections open", |s| s.connections_open == 2);

    let mut third = raw(addr);
    let (head, body) = read_http_response(&mut third).unwrap();
    assert!(
        head.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{head}"
    );
    assert_eq!(header(&head, "retry-after"), "1");
    without_date(&head);
    assert_eq!(header(&head, "connection"), "close");
    assert_eq!(body, b"too many connections\n");
    assert_eq!(read_until_eof(&mut third), b"");
    let stats = handle.stats();
    assert_eq!(stats.connections_rejected, 1);
    assert_eq!(stats.connections_accepted, 3);
    assert_eq!(stats.connections_open, 2);

    // The admitted ones are served.
    first
        .write_all(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    expect_ok(&mut first, "GET /first");

    drop(second);
    wait_for_stats(&handle, "one connection left", |s| s.connections_open == 1);
    let mut fourth = raw(addr);
    fourth
        .write_all(b"GET /fourth HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    expect_ok(&mut fourth, "GET /fourth");
    assert_eq!(handle.stats().connections_rejected, 1);
    server.shutdown().unwrap();
}

/// Every HTTP-side timeout at 300 ms (request, keep-alive idle, write stall), so the tests hold
/// whichever of them a given wait depends on.
fn timeout_config() -> wsreactor::Config {
    let mut config = config();
    config.request_timeout = Duration::from_millis(300);
    config.keep_alive_timeout = Duration::from_millis(300);
    config.write_stall_timeout = Duration::from_millis(300);
    config
}

#[test]
fn partial_request_gets_408() {
    let server = start(timeout_config(), App);
    let mut stream = raw(server.local_addr());
    let started = Instant::now();
    stream.write_all(b"GET /slow HT").unwrap();
    let (head, body) = read_http_response(&mut stream).unwrap();
    assert_eq!(
        without_date(&head),
        format!(
            "HTTP/1.1 408 Request Timeout\r\n{CONTENT_TYPE}Content-Length: 16\r\nConnection: close\r\n\r\n"
        )
    );
    assert_eq!(body, b"request timeout\n");
    assert_eq!(read_until_eof(&mut stream), b"");
    assert!(started.elapsed() < Duration::from_secs(10));
    drop(stream);
    wait_for_stats(&server.handle(), "timeout counted", |s| {
        s.closed_timeout == 1 && s.connections_open == 0
    });
    assert_eq!(server.handle().stats().http_requests, 0);
    server.shutdown().unwrap();
}

#[test]
fn idle_connections_are_closed_after_the_timeout() {
    let server = start(timeout_config(), App);
    let addr = server.local_addr();

    // Keep-alive connection idle after one exchange: closed without a response.
    let mut stream = raw(addr);
    stream
        .write_all(b"GET /once HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    expect_ok(&mut stream, "GET /once");
    let started = Instant::now();
    assert_eq!(read_until_eof(&mut stream), b"");
    assert!(started.elapsed() < Duration::from_secs(10));

    // A connection that never sends anything: same.
    let mut silent = raw(addr);
    assert_eq!(read_until_eof(&mut silent), b"");

    wait_for_stats(&server.handle(), "both timed out", |s| {
        s.closed_timeout == 2 && s.connections_open == 0
    });
    server.shutdown().unwrap();
}

#[test]
fn slowloris_is_cut_off() {
    let server = start(timeout_config(), App);
    let mut stream = raw(server.local_addr());
    let request = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: {}", "a".repeat(100));
    let started = Instant::now();
    // One byte every ~50 ms (far slower than 300 ms allows for the whole head), until the
    // server answers or for at most 2 s. The answer must come while the client is still
    // dribbling: a server that restarted the deadline on every byte would never answer here.
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut sent = 0;
    let mut answered = false;
    while started.elapsed() < Duration::from_secs(2) {
        if stream.write_all(&request.as_bytes()[sent..=sent]).is_err() {
            break;
        }
        sent += 1;
        match stream.peek(&mut [0u8; 1]) {
            Ok(_) => {
                answered = true;
                break;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("peek: {e}"),
        }
    }
    assert!(
        answered,
        "still no answer after {sent} bytes in {:?}",
        started.elapsed()
    );
    assert!(sent < request.len(), "the head was never complete");
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let (head, body) = read_http_response(&mut stream).unwrap();
    assert!(
        head.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{head}"
    );
    assert_eq!(body, b"request timeout\n");
    assert!(reaches_eof(&mut stream));
    assert_eq!(server.handle().stats().http_requests, 0);
    server.shutdown().unwrap();
}

#[test]
fn half_closed_client_gets_its_response() {
    let server = start(config(), App);
    let mut stream = raw(server.local_addr());
    stream
        .write_all(b"GET /half HTTP/1.1\r\nHost: x\r\n\r\nPOST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok")
        .unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    expect_ok(&mut stream, "GET /half");
    expect_ok(&mut stream, "POST /two ok");
    assert_eq!(read_until_eof(&mut stream), b"");
    wait_for_stats(&server.handle(), "closed", |s| s.connections_open == 0);
    server.shutdown().unwrap();
}

#[test]
fn handler_panic_gives_500_and_closes() {
    let server = start(config(), App);
    let addr = server.local_addr();
    let mut stream = raw(addr);
    // A request before the panic is answered; the one after it is not.
    stream
        .write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /panic HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    expect_ok(&mut stream, "GET /a");
    let (head, body) = read_http_response(&mut stream).unwrap();
    assert_eq!(
        without_date(&head),
        format!(
            "HTTP/1.1 500 Internal Server Error\r\n{CONTENT_TYPE}Content-Length: 22\r\n\
             Connection: close\r\n\r\n"
        )
    );
    assert_eq!(body, b"internal server error\n");
    assert_eq!(read_until_eof(&mut stream), b"");
    assert_eq!(server.handle().stats().handler_panics, 1);
    assert_serves(addr);
    assert_eq!(server.handle().stats().handler_panics, 1);
    server.shutdown().unwrap();
}

#[test]
fn default_handler_answers_404() {
    let server = start(config(), echo());
    let mut stream = raw(server.local_addr());
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (head, body) = read_http_response(&mut stream).unwrap();
    assert_eq!(
        without_date(&head),
        format!("HTTP/1.1 404 Not Found\r\n{CONTENT_TYPE}Content-Length: 14\r\n\r\n")
    );
    assert_eq!(body, b"404 Not Found\n");
    server.shutdown().unwrap();
}

#[test]
fn connect_and_drop_churn() {
    let config = config();
    let loops = config.event_loops as u64;
    let server = start(config, App);
    let addr = server.local_addr();
    let handle = server.handle();
    for i in 0..2_000u64 {
        let mut stream = TcpStream::connect(addr).expect("connect");
        match i % 3 {
            0 => {}
            1 => stream
                .write_all(b"GET /partial HTTP/1.1\r\nHost: x\r\nHo")
                .unwrap(),
            _ => stream.write_all(b"G").unwrap(),
        }
        drop(stream);
        // Every 50 connections, let the server catch up, so at most 50 are ever open together
        // however the threads are scheduled: the slab must then stay at that size, reusing the
        // slots of closed connections. (Without this, a loop thread descheduled for a few tens
        // of milliseconds legitimately finds hundreds of connections in the backlog at once.)
        if i % 50 == 49 {
            wait_for_stats(&handle, "the batch is closed", |s| {
                s.connections_accepted == i + 1 && s.connections_open == 0
            });
        }
    }
    let stats = wait_for_stats(&handle, "every connection closed", |s| {
        s.connections_accepted >= 2_000 && s.connections_open == 0 && s.closed_clean == 2_000
    });
    assert_eq!(stats.connections_accepted, 2_000);
    assert_eq!(stats.connections_rejected, 0);
    assert_eq!(stats.http_requests, 0);
    assert!(
        stats.slab_capacity <= 64 * loops,
        "slab grew to {} with at most 50 connections open",
        stats.slab_capacity
    );
    assert_serves(addr);
    server.shutdown().unwrap();
}

#[test]
fn large_body_and_long_pipeline() {
    let server = start(config(), App);
    let mut stream = raw(server.local_addr());
    // A body far larger than the 16 KiB read buffer, echoed in a response too large for one
    // write on most systems.
    let body: String = (0..200_000)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    let request = format!(
        "POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    expect_ok(&mut stream, &format!("POST /big {body}"));

    // More pipelined requests than one job batch holds (max_pending_messages = 64).
    let mut pipeline = String::new();
    for i in 0..150 {
        pipeline.push_str(&format!("GET /p{i} HTTP/1.1\r\nHost: x\r\n\r\n"));
    }
    stream.write_all(pipeline.as_bytes()).unwrap();
    for i in 0..150 {
        expect_ok(&mut stream, &format!("GET /p{i}"));
    }
    assert_eq!(server.handle().stats().http_requests, 151);
    server.shutdown().unwrap();
}

#[test]
fn error_after_valid_requests_in_one_write() {
    let server = start(config(), App);
    let addr = server.local_addr();
    let mut stream = raw(addr);
    stream
        .write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nNOT HTTP AT ALL\r\n\r\n")
        .unwrap();
    expect_ok(&mut stream, "GET /a");
    expect_ok(&mut stream, "GET /b");
    let (head, _) = read_http_response(&mut stream).unwrap();
    assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
    assert_eq!(header(&head, "connection"), "close");
    assert_eq!(read_until_eof(&mut stream), b"");
    assert_serves(addr);
    server.shutdown().unwrap();
}

/// Answers every request with a body of `0` bytes far larger than the socket buffers.
struct Big(usize);

impl Handler for Big {
    type Session = ();

    fn on_message(&self, _ctx: &mut Context<'_>, _message: Message) {}

    fn on_http_request(&self, _request: &Request) -> Response {
        Response::new(200).with_body(vec![b'x'; self.0])
    }
}

/// Regression test: a response still being written when `request_timeout` (keep-alive) or
/// `close_timeout` (`Connection: close`) came due was cut off mid-body, although the client was
/// reading it. The deadline now counts from the last write that made progress.
#[test]
fn slow_reader_gets_the_whole_response() {
    const SIZE: usize = 16 << 20;
    let mut config = timeout_config();
    config.close_timeout = Duration::from_millis(300);
    let server = start(config, Big(SIZE));
    let handle = server.handle();
    for (i, request) in [
        &b"GET /keep HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        &b"GET /close HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"[..],
    ]
    .into_iter()
    .enumerate()
    {
        let mut stream = raw(server.local_addr());
        stream.write_all(request).unwrap();
        let head = read_http_head(&mut stream).unwrap();
        assert_eq!(header(&head, "content-length"), SIZE.to_string());
        // The server has filled the socket buffers and waits for the client.
        wait_for_stats(&handle, "the server is blocked on the socket", |s| {
            s.pending_outbound_bytes > 0
        });
        // Read 2 MiB at a time with 100 ms pauses: each pause is shorter than the 300 ms
        // timeouts, the whole download far longer. (The pauses model a slow client; they wait
        // for nothing.)
        let mut body = vec![0u8; SIZE];
        for chunk in body.chunks_mut(2 << 20) {
            std::thread::sleep(Duration::from_millis(100));
            stream.read_exact(chunk).expect("the body is not cut off");
        }
        assert!(body.iter().all(|&b| b == b'x'));
        if i == 1 {
            // `Connection: close`: the FIN comes after the last byte.
            assert_eq!(read_until_eof(&mut stream), b"");
        }
    }
    let before = wait_for_stats(&handle, "both closed", |s| s.connections_open == 0);
    // A client that reads nothing at all is still dropped after the timeout.
    let mut stream = raw(server.local_addr());
    stream
        .write_all(b"GET /stuck HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    wait_for_stats(&handle, "the stuck reader is dropped", |s| {
        s.closed_timeout == before.closed_timeout + 1 && s.connections_open == 0
    });
    assert!(
        read_http_response(&mut stream).is_err(),
        "cannot have got it all"
    );
    server.shutdown().unwrap();
}
