//! HTTP/1.1 request bodies over real sockets: `Expect: 100-continue` (the interim response, once
//! and before the body; `417`; `413` instead of `100`) and chunked request bodies (decoded whole
//! and dribbled, the decoded-size limit, bad framing). Exact bytes on the wire, raw `TcpStream`
//! clients.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::http::*;
use common::*;

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Writes `bytes` and waits until the server has read all of them (and so has answered what
/// they called for), without sleeping.
fn write_and_wait(stream: &mut TcpStream, handle: &wsreactor::ServerHandle, bytes: &[u8]) {
    let before = handle.stats().bytes_in;
    stream.write_all(bytes).unwrap();
    wait_for_stats(handle, "the bytes are read", |s| {
        s.bytes_in == before + bytes.len() as u64
    });
}

/// RFC 9110 §10.1.1: a client that sends `Expect: 100-continue` waits for `100 Continue` before
/// the body (curl waits a second for it on every upload otherwise).
#[test]
fn expect_100_continue_is_answered_before_the_body() {
    let server = start(config(), App);
    let handle = server.handle();
    let mut stream = raw(server.local_addr());
    let head = b"PUT /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n";
    stream.write_all(head).unwrap();
    let mut interim = [0u8; CONTINUE.len()];
    stream.read_exact(&mut interim).unwrap();
    assert_eq!(interim, CONTINUE, "{:?}", String::from_utf8_lossy(&interim));
    assert_eq!(handle.stats().http_requests, 0, "the body is not in yet");
    stream.write_all(b"hello world").unwrap();
    // Exactly one interim response: the next bytes are the final one.
    expect_ok(&mut stream, "PUT /up hello world");
    // The body in the same write as the head: no 100 (RFC 9110 §10.1.1: the server "MAY omit
    // sending a 100 (Continue) response if it has already received some or all of the
    // content").
    let mut request = head.to_vec();
    request.extend_from_slice(b"hello again");
    stream.write_all(&request).unwrap();
    expect_ok(&mut stream, "PUT /up hello again");
    // A chunked body too.
    let head = b"POST /c HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n";
    stream.write_all(head).unwrap();
    stream.read_exact(&mut interim).unwrap();
    assert_eq!(interim, CONTINUE);
    stream.write_all(b"2\r\nok\r\n0\r\n\r\n").unwrap();
    expect_ok(&mut stream, "POST /c ok");
    server.shutdown().unwrap();
}

#[test]
fn expectations_that_cannot_be_met_and_bodies_too_large_get_no_100() {
    let mut config = config();
    config.max_body_size = 10;
    let server = start(config, App);
    let addr = server.local_addr();
    let handle = server.handle();
    let head = expect_error(
        addr,
        b"PUT /up HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 417 Expectation Failed",
        "only the 100-continue expectation is supported",
    );
    assert_eq!(
        without_date(&head),
        format!(
            "HTTP/1.1 417 Expectation Failed\r\n{CONTENT_TYPE}Connection: close\r\n\
             Content-Length: 71\r\n\r\n"
        )
    );
    // 413 at once from Content-Length, instead of inviting a body that would be refused.
    expect_error(
        addr,
        b"PUT /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n",
        "HTTP/1.1 413 Content Too Large",
        "10 byte limit",
    );
    // HTTP/1.0 ignores the expectation (RFC 9110 §10.1.1 "MUST ignore"): no interim response,
    // the body is simply awaited.
    let mut stream = raw(addr);
    write_and_wait(
        &mut stream,
        &handle,
        b"PUT /old HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
    );
    stream.write_all(b"abc").unwrap();
    let (head, body) = read_http_response(&mut stream).unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert_eq!(body, b"PUT /old abc");
    server.shutdown().unwrap();
}

/// RFC 9112 §7.1: "A recipient MUST be able to parse and decode the chunked transfer coding."
#[test]
fn chunked_request_bodies_are_decoded() {
    let server = start(config(), App);
    let handle = server.handle();
    let mut stream = raw(server.local_addr());
    // Whole, with an extension and a trailer (dropped).
    stream
        .write_all(
            b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
              5;name=v\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: 1\r\n\r\n",
        )
        .unwrap();
    expect_ok(&mut stream, "POST /c hello world");
    // Dribbled: head, then each chunk once the server has read the previous one; the handler
    // sees nothing until the last chunk.
    write_and_wait(
        &mut stream,
        &handle,
        b"POST /d HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n",
    );
    for piece in [
        &b"3\r\nabc\r"[..],
        b"\n",
        b"1",
        b"0\r\n0123456789ABCDEF\r\n",
    ] {
        write_and_wait(&mut stream, &handle, piece);
    }
    assert_eq!(handle.stats().http_requests, 1);
    stream
        .write_all(b"0\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    expect_ok(&mut stream, "POST /d abc0123456789ABCDEF");
    expect_ok(&mut stream, "GET /next");
    server.shutdown().unwrap();
}

#[test]
fn chunked_bodies_over_the_limit_or_badly_framed_are_refused() {
    let mut config = config();
    config.max_body_size = 10;
    let server = start(config, App);
    let addr = server.local_addr();
    let head = "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    // Ten decoded bytes are fine whatever the framing costs; eleven are not.
    let mut stream = raw(addr);
    let ten = format!("{head}1\r\na\r\n1\r\nb\r\n8;x=yyyyyyyy\r\ncdefghij\r\n0\r\n\r\n");
    stream.write_all(ten.as_bytes()).unwrap();
    expect_ok(&mut stream, "POST /c abcdefghij");
    let eleven = format!("{head}5\r\nhello\r\n6\r\n");
    let got = expect_error(
        addr,
        eleven.as_bytes(),
        "HTTP/1.1 413 Content Too Large",
        "10 byte limit",
    );
    assert!(without_date(&got).contains("\r\nConnection: close\r\n"));
    let bad: [(String, &str); 5] = [
        (format!("{head}zz\r\n"), "invalid chunk size"),
        (
            format!("{head}11111111111111111\r\n"),
            "chunk size has more than 16 hex digits",
        ),
        (
            format!("{head}3\r\nabcd\r\n"),
            "chunk data not followed by CRLF",
        ),
        (
            format!("{head}3\nabc\r\n"),
            "chunk size line not ended by CRLF",
        ),
        (format!("{head}0\r\nX: 1\n\r\n"), "invalid trailer field"),
    ];
    for (request, why) in bad {
        expect_error(addr, request.as_bytes(), "HTTP/1.1 400 Bad Request", why);
    }
    expect_error(
        addr,
        b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        "HTTP/1.1 400 Bad Request",
        "both Transfer-Encoding and Content-Length",
    );
    expect_error(
        addr,
        b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        "HTTP/1.1 400 Bad Request",
        "does not end with chunked",
    );
    server.shutdown().unwrap();
}
