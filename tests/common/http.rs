//! Helpers for the plain-HTTP integration tests (tests/http.rs, tests/http_bodies.rs): an app
//! that answers with what it was asked, and assertions on exact responses.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};

use super::{raw, read_http_response, without_date};
use wsreactor::{Context, Handler, Message, Request, Response};

/// Answers every plain request with `"{method} {path}"`, or `"{method} {path} {body}"` when the
/// request has a body; `/panic` panics.
pub struct App;

impl Handler for App {
    type Session = ();

    fn on_message(&self, ctx: &mut Context<'_>, message: Message) {
        ctx.send(message);
    }

    fn on_http_request(&self, request: &Request) -> Response {
        if request.path() == "/panic" {
            panic!("handler panic requested by the test");
        }
        let mut text = format!("{} {}", request.method(), request.path());
        if !request.body().is_empty() {
            text.push(' ');
            text.push_str(&String::from_utf8_lossy(request.body()));
        }
        Response::text(200, text)
    }
}

pub const CONTENT_TYPE: &str = "Content-Type: text/plain; charset=utf-8\r\n";

/// The exact head `App` sends for a body of `len` bytes on a keep-alive HTTP/1.1 connection.
pub fn ok_head(len: usize) -> String {
    format!("HTTP/1.1 200 OK\r\n{CONTENT_TYPE}Content-Length: {len}\r\n\r\n")
}

/// Reads one response and asserts it is exactly `App`'s keep-alive answer `body`.
pub fn expect_ok(stream: &mut TcpStream, body: &str) {
    let (head, got) = read_http_response(stream).expect("a response");
    assert_eq!(without_date(&head), ok_head(body.len()));
    assert_eq!(String::from_utf8_lossy(&got), body);
}

/// All values of header `name` in a response head (case-insensitive name).
pub fn header_values(head: &str, name: &str) -> Vec<String> {
    head.lines()
        .skip(1)
        .filter_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
        .collect()
}

/// The single value of header `name`; panics if absent or repeated.
pub fn header(head: &str, name: &str) -> String {
    let values = header_values(head, name);
    assert_eq!(values.len(), 1, "header {name} in {head:?}");
    values.into_iter().next().unwrap()
}

/// Reads until EOF and returns what came; fails the test on a timeout.
pub fn read_until_eof(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return out,
            Err(e) => panic!("no EOF within the deadline: {e}"),
        }
    }
}

/// A fresh connection still gets a correct answer (the server keeps serving).
pub fn assert_serves(addr: SocketAddr) {
    let mut stream = raw(addr);
    stream
        .write_all(b"GET /alive HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    expect_ok(&mut stream, "GET /alive");
}

/// Sends `request` on a fresh connection and expects exactly one error response with
/// `status_line`, `Connection: close`, a body containing `body_part`, then EOF with nothing
/// after the response. Returns the head.
pub fn expect_error(
    addr: SocketAddr,
    request: &[u8],
    status_line: &str,
    body_part: &str,
) -> String {
    let mut stream = raw(addr);
    stream.write_all(request).unwrap();
    let (head, body) = read_http_response(&mut stream).expect("an error response");
    assert!(
        head.starts_with(&format!("{status_line}\r\n")),
        "expected {status_line:?}, got {head:?}"
    );
    assert!(
        header_values(&head, "connection")
            .iter()
            .flat_map(|v| v.split(','))
            .any(|option| option.trim().eq_ignore_ascii_case("close")),
        "{head:?}"
    );
    // The loop's own error responses are dated too (RFC 9110 §6.6.1).
    without_date(&head);
    let body = String::from_utf8_lossy(&body).into_owned();
    assert!(body.contains(body_part), "{body:?} lacks {body_part:?}");
    assert_eq!(
        read_until_eof(&mut stream),
        b"",
        "nothing may follow the error"
    );
    head
}
