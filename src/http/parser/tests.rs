//! Unit tests of [`RequestParser`](super::RequestParser): complete requests, pipelining, every
//! error, the limits and the cost model. Bodies — chunked decoding through the parser and the
//! `100 Continue` it owes — are in the `body` submodule.

use std::time::{Duration, Instant};

use super::*;
use crate::http::Version;

mod body;

const LIMITS: HttpLimits = HttpLimits {
    max_header_bytes: 8192,
    max_headers: 64,
    max_body_size: 1024,
};

fn calls() -> usize {
    crate::http::head::httparse_calls()
}

/// Parses `buf` in one call, expecting a complete request.
fn one_shot(buf: &[u8], limits: &HttpLimits) -> Result<(Request, usize), HttpError> {
    match RequestParser::new().parse(buf, limits)? {
        Parsed::Complete { request, consumed } => Ok((request, consumed)),
        Parsed::Partial { .. } => {
            panic!("unexpected Partial for {:?}", String::from_utf8_lossy(buf))
        }
    }
}

/// Splits at every position (fresh parser: prefix → Partial, whole → Complete), then feeds
/// byte by byte through one parser, checking httparse ran at most twice.
fn assert_split_invariant(buf: &[u8], expected: &Request) {
    for i in 0..buf.len() {
        let mut parser = RequestParser::new();
        assert_eq!(
            parser.parse(&buf[..i], &LIMITS),
            Ok(Parsed::Partial { consumed: 0 }),
            "prefix {i}"
        );
        let complete = parser.parse(buf, &LIMITS).unwrap();
        let want = Parsed::Complete {
            request: expected.clone(),
            consumed: buf.len(),
        };
        assert_eq!(complete, want, "split at {i}");
    }
    let mut parser = RequestParser::new();
    let before = calls();
    for i in 0..buf.len() {
        assert_eq!(
            parser.parse(&buf[..i], &LIMITS),
            Ok(Parsed::Partial { consumed: 0 }),
            "byte {i}"
        );
    }
    let Ok(Parsed::Complete { request, consumed }) = parser.parse(buf, &LIMITS) else {
        panic!("byte-by-byte did not complete");
    };
    assert_eq!((&request, consumed), (expected, buf.len()));
    assert!(
        calls() - before <= 2,
        "httparse ran {} times",
        calls() - before
    );
}

#[test]
fn complete_requests_table() {
    let get = Request::builder("GET", "/chat?room=1")
        .header("Host", "example.com")
        .header("Accept", "*/*")
        .build();
    let table: &[(&[u8], Request)] = &[
        (
            b"GET /chat?room=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n",
            get.clone(),
        ),
        // RFC 9112 §2.2: leading empty lines and bare-LF line endings.
        (
            b"\r\n\r\nGET /chat?room=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n",
            get.clone(),
        ),
        (
            b"\nGET /chat?room=1 HTTP/1.1\nHost: example.com\nAccept: */*\n\n",
            get,
        ),
        (
            b"GET / HTTP/1.0\r\n\r\n",
            Request::builder("GET", "/")
                .version(Version::Http10)
                .build(),
        ),
        (
            b"POST /f HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
            Request::builder("POST", "/f")
                .header("Host", "x")
                .header("Content-Length", "5")
                .body("hello")
                .build(),
        ),
        (
            b"POST /f HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n\r\n\r",
            Request::builder("POST", "/f")
                .header("Host", "x")
                .header("Content-Length", "3")
                .header("Content-Length", "3")
                .body("\r\n\r")
                .build(),
        ),
    ];
    for (buf, expected) in table {
        assert_eq!(one_shot(buf, &LIMITS), Ok((expected.clone(), buf.len())));
        assert_split_invariant(buf, expected);
    }
}

#[test]
fn pipelined_requests() {
    let buf = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhiGET /c HTTP/1.1\r\nHost: x\r\n";
    let mut parser = RequestParser::new();
    let mut rest = &buf[..];
    for path in ["/a", "/b"] {
        let Ok(Parsed::Complete { request, consumed }) = parser.parse(rest, &LIMITS) else {
            panic!("expected {path}");
        };
        assert_eq!(request.path(), path);
        rest = &rest[consumed..];
    }
    assert_eq!(rest, b"GET /c HTTP/1.1\r\nHost: x\r\n");
    assert_eq!(
        parser.parse(rest, &LIMITS),
        Ok(Parsed::Partial { consumed: 0 })
    );
}

/// Limits small enough that the error tables reach them.
const SMALL: HttpLimits = HttpLimits {
    max_header_bytes: 80,
    max_headers: 3,
    max_body_size: 10,
};

/// Each input fails with its error under [`SMALL`], and the parser resets after it.
fn assert_errors(table: Vec<(String, HttpError)>) {
    for (input, expected) in table {
        let mut parser = RequestParser::new();
        assert_eq!(
            parser.parse(input.as_bytes(), &SMALL),
            Err(expected),
            "{input:?}"
        );
        // The parser resets after an error.
        assert_eq!(parser.state, State::default());
    }
}

#[test]
fn head_syntax_errors() {
    assert_errors(vec![
        (
            "GARBAGE\r\n\r\n".into(),
            HttpError::BadRequest("invalid request line"),
        ),
        (
            "\x01\x02\x03\r\n\r\n".into(),
            HttpError::BadRequest("invalid request line"),
        ),
        (
            "\rGET / HTTP/1.1\r\nHost: x\r\n\r\n".into(),
            HttpError::BadRequest("invalid line ending"),
        ),
        (
            "GET / HTTP/2.0\r\n\r\n".into(),
            HttpError::VersionNotSupported,
        ),
        (
            "GET / HTTP/1.2\r\n\r\n".into(),
            HttpError::VersionNotSupported,
        ),
        (
            "GET / FOO/1.1\r\n\r\n".into(),
            HttpError::BadRequest("invalid HTTP version"),
        ),
        (
            "GET / HTTP/1.1\r\nHost: x\r\nBad Name: x\r\n\r\n".into(),
            HttpError::BadRequest("invalid header name"),
        ),
    ]);
}

#[test]
fn framing_errors() {
    let cl = |v: &str| format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {v}\r\n\r\n");
    let bad_cl = HttpError::BadRequest("invalid Content-Length");
    assert_errors(vec![
        (cl("abc"), bad_cl.clone()),
        (cl("-1"), bad_cl.clone()),
        (cl("1 2"), bad_cl.clone()),
        (cl("99999999999999999999999"), bad_cl),
        (
            cl("1, 2"),
            HttpError::BadRequest("conflicting Content-Length values"),
        ),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab".into(),
            HttpError::BadRequest("conflicting Content-Length values"),
        ),
        (cl("11"), HttpError::PayloadTooLarge { limit: 10 }),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".into(),
            HttpError::UnsupportedTransferEncoding,
        ),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n".into(),
            HttpError::BadRequest("Transfer-Encoding does not end with chunked"),
        ),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nExpect: x\r\n\r\n".into(),
            HttpError::ExpectationFailed,
        ),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n".into(),
            HttpError::BadRequest("invalid chunk size"),
        ),
    ]);
}

/// RFC 9112 §3.2: the Host rules, checked on the head.
#[test]
fn host_errors() {
    assert_errors(vec![
        (
            "GET / HTTP/1.1\r\n\r\n".into(),
            HttpError::BadRequest("missing Host header"),
        ),
        (
            "GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n".into(),
            HttpError::BadRequest("more than one Host header"),
        ),
        (
            "GET / HTTP/1.1\r\nHost: a@b\r\n\r\n".into(),
            HttpError::BadRequest("invalid Host header"),
        ),
    ]);
}

#[test]
fn header_limit_errors() {
    let long = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Long: {}\r\n",
        "a".repeat(100)
    );
    let long_ended = format!("{long}\r\n");
    assert_errors(vec![
        (long, HttpError::HeadersTooLarge),
        (long_ended, HttpError::HeadersTooLarge),
        ("\r\n".repeat(40), HttpError::HeadersTooLarge),
        (
            "GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n".into(),
            HttpError::TooManyHeaders,
        ),
    ]);
}

#[test]
fn payload_too_large_does_not_wait_for_body() {
    let head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n";
    let err = RequestParser::new().parse(head, &LIMITS).unwrap_err();
    assert_eq!(
        (err.status(), err),
        (413, HttpError::PayloadTooLarge { limit: 1024 })
    );
}

#[test]
fn header_limit_boundary() {
    let buf = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let exact = HttpLimits {
        max_header_bytes: buf.len(),
        ..LIMITS
    };
    assert!(one_shot(buf, &exact).is_ok());
    let under = HttpLimits {
        max_header_bytes: buf.len() - 1,
        ..LIMITS
    };
    assert_eq!(one_shot(buf, &under), Err(HttpError::HeadersTooLarge));
    // Dribbled: the error comes as soon as the limit is reached.
    let mut parser = RequestParser::new();
    for i in 0..buf.len() - 1 {
        assert_eq!(
            parser.parse(&buf[..i], &under),
            Ok(Parsed::Partial { consumed: 0 })
        );
    }
    assert_eq!(
        parser.parse(&buf[..buf.len() - 1], &under),
        Err(HttpError::HeadersTooLarge)
    );
}

/// `max_headers` at its maximum (unbounded) takes the densest head there is — fields of three
/// bytes each — without reserving room for `usize::MAX` fields (which would panic).
#[test]
fn unbounded_max_headers_sizes_by_the_head() {
    for line_end in ["\n", "\r\n"] {
        let mut buf = format!("GET / HTTP/1.1{line_end}Host: x{line_end}").into_bytes();
        for _ in 0..5000 {
            buf.extend_from_slice(format!("a:{line_end}").as_bytes());
        }
        buf.extend_from_slice(line_end.as_bytes());
        let unbounded = HttpLimits {
            max_header_bytes: 1 << 20,
            max_headers: usize::MAX,
            ..LIMITS
        };
        assert_eq!(
            one_shot(&buf, &unbounded).map(|(r, _)| r.headers().count()),
            Ok(5001),
            "{line_end:?}"
        );
    }
}

#[test]
fn ten_thousand_headers_rejected_quickly() {
    let mut buf = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..10_000 {
        buf.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    buf.extend_from_slice(b"\r\n");
    let roomy = HttpLimits {
        max_header_bytes: 1 << 20,
        max_headers: 100,
        ..LIMITS
    };
    let start = Instant::now();
    assert_eq!(one_shot(&buf, &LIMITS), Err(HttpError::HeadersTooLarge));
    assert_eq!(one_shot(&buf, &roomy), Err(HttpError::TooManyHeaders));
    // A configured limit above the 64-entry stack array uses a heap array.
    let huge = HttpLimits {
        max_headers: 20_000,
        ..roomy
    };
    assert_eq!(
        one_shot(&buf, &huge).map(|(r, _)| r.headers().count()),
        Ok(10_001)
    );
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn dribbled_8k_header_block_is_linear() {
    let mut buf = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    let mut i = 0;
    while buf.len() < 8 * 1024 - 64 {
        buf.extend_from_slice(format!("X-Header-{i}: {}\r\n", "v".repeat(200)).as_bytes());
        i += 1;
    }
    buf.extend_from_slice(b"\r\n");
    let limits = HttpLimits {
        max_header_bytes: 16 * 1024,
        ..LIMITS
    };
    let (before, start) = (calls(), Instant::now());
    let mut parser = RequestParser::new();
    for end in 1..buf.len() {
        assert_eq!(
            parser.parse(&buf[..end], &limits),
            Ok(Parsed::Partial { consumed: 0 })
        );
    }
    let result = parser.parse(&buf, &limits);
    let Ok(Parsed::Complete { consumed, .. }) = result else {
        panic!("did not complete: {result:?}");
    };
    assert_eq!(consumed, buf.len());
    assert_eq!(calls() - before, 1, "httparse must run once per request");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn keep_alive_from_the_wire() {
    let table: &[(&[u8], bool)] = &[
        (b"GET / HTTP/1.0\r\n\r\n", false),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", true),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Close\r\n\r\n",
            false,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\n",
            false,
        ),
    ];
    for (buf, keep_alive) in table {
        let (request, _) = one_shot(buf, &LIMITS).unwrap();
        assert_eq!(
            request.keep_alive(),
            *keep_alive,
            "{:?}",
            String::from_utf8_lossy(buf)
        );
    }
}

#[test]
fn body_split_waits_then_completes() {
    let buf = b"PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody";
    let head = buf.len() - 4;
    let mut parser = RequestParser::new();
    assert_eq!(
        parser.parse(&buf[..head], &LIMITS),
        Ok(Parsed::Partial { consumed: 0 })
    );
    assert!(matches!(parser.state, State::Body { body_len: 4, .. }));
    assert_eq!(
        parser.parse(&buf[..head + 1], &LIMITS),
        Ok(Parsed::Partial { consumed: 0 })
    );
    let Ok(Parsed::Complete { request, consumed }) = parser.parse(buf, &LIMITS) else {
        panic!("did not complete");
    };
    assert_eq!((request.body(), consumed), (&b"body"[..], buf.len()));
    assert_eq!(parser.state, State::default());
}

#[test]
fn shrunken_buffer_does_not_panic() {
    let mut parser = RequestParser::new();
    assert_eq!(
        parser.parse(b"GET / HTTP/1.1\r\nHost", &LIMITS),
        Ok(Parsed::Partial { consumed: 0 })
    );
    assert_eq!(
        parser.parse(b"GET", &LIMITS),
        Ok(Parsed::Partial { consumed: 0 })
    );
    assert!(one_shot(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", &LIMITS).is_ok());
    assert!(std::mem::size_of::<RequestParser>() <= 3 * std::mem::size_of::<usize>());
}
