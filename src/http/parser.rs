//! Incremental HTTP/1.1 request parsing on top of `httparse`.
//!
//! Bytes enter as the connection's receive buffer, which always starts at the current request's
//! first byte and only grows between calls; a [`Parsed::Complete`] leaves with an owned
//! [`Request`] and the number of bytes it used (the caller drops them; pipelined bytes after it
//! are the next request). Errors leave as [`HttpError`]s; the caller answers and closes.
//!
//! Cost model (the point of this file): `httparse` re-parses from the start on every call, so
//! calling it after each read of a dribbled request is O(n²) (CVE-2023-43669). Instead the
//! parser remembers how far it has scanned for the blank line ending the header block and runs
//! `httparse` only once that line is present: once per request, plus once more if the body had
//! to be waited for. Scanning never goes past `max_header_bytes`.
//!
//! Every complete head is checked before its body is awaited: the `Host` rules of RFC 9112 §3.2
//! (`host.rs`: missing in HTTP/1.1, repeated, or invalid → 400), then the framing
//! (`framing.rs`).

use super::error::HttpError;
use super::framing;
use super::head::{self, find_head_end, to_owned_request, with_parsed_head};
use super::host::check_host;
use super::request::Request;

/// Size limits applied while parsing a request.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Request line + headers incl. the final CRLFCRLF (and any leading empty lines);
    /// over → 431 ([`HttpError::HeadersTooLarge`]).
    pub max_header_bytes: usize,
    /// Number of header fields; over → 431 ([`HttpError::TooManyHeaders`]).
    pub max_headers: usize,
    /// `Content-Length` above this → 413 ([`HttpError::PayloadTooLarge`]), decided before any
    /// of the body is buffered.
    pub max_body_size: usize,
}

/// Outcome of one [`RequestParser::parse`] call.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole request is in the buffer.
    Complete {
        /// The parsed request.
        request: Request,
        /// How many bytes of the buffer belong to it (leading empty lines, head and body).
        consumed: usize,
    },
    /// More bytes are needed; call again with the longer buffer.
    Partial,
}

/// Where the parser is within the current request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Looking for the end of the header block. `start` is the first byte after the leading
    /// empty lines seen so far (RFC 9112 §2.2: a server "SHOULD ignore at least one empty line
    /// (CRLF) received prior to the request-line"); `scanned` is where the scan resumes, or 0
    /// while still skipping those lines.
    Head { start: usize, scanned: usize },
    /// The head is valid and `head_len` bytes long; waiting for `body_len` body bytes.
    Body { head_len: usize, body_len: usize },
}

impl Default for State {
    fn default() -> State {
        State::Head {
            start: 0,
            scanned: 0,
        }
    }
}

/// Per-connection incremental parser state: three words, no allocation.
#[derive(Debug, Default, Clone)]
pub struct RequestParser {
    state: State,
}

impl RequestParser {
    /// A parser at the start of a request.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses the request at the start of `buf`.
    ///
    /// `buf` holds the bytes received for this request so far, starting at its first byte; call
    /// again with the longer buffer after [`Parsed::Partial`]. After [`Parsed::Complete`] the
    /// caller drops `consumed` bytes and this parser is already reset for the next request.
    /// After an error the connection should be answered with [`HttpError::to_response`] and
    /// closed; the parser is reset too.
    ///
    /// Framing policy (see also the `framing` module): `Content-Length` bodies are awaited in
    /// full; `Transfer-Encoding` → 501, `Transfer-Encoding` + `Content-Length` → 400; bad or
    /// conflicting `Content-Length` → 400; `Content-Length` over the limit → 413 at once.
    /// `HTTP/x.y` other than 1.0/1.1 → 505; other malformed versions → 400.
    pub fn parse(&mut self, buf: &[u8], limits: &HttpLimits) -> Result<Parsed, HttpError> {
        let result = self.step(buf, limits);
        if !matches!(result, Ok(Parsed::Partial)) {
            self.state = State::default();
        }
        result
    }

    /// One parse attempt; `parse` resets the state after anything but `Partial`.
    fn step(&mut self, buf: &[u8], limits: &HttpLimits) -> Result<Parsed, HttpError> {
        let (start, scanned) = match self.state {
            State::Body { head_len, body_len } => {
                // Cannot overflow: checked before entering this state.
                let total = head_len.saturating_add(body_len);
                if buf.len() < total {
                    return Ok(Parsed::Partial);
                }
                let request =
                    with_parsed_head(&buf[..head_len], limits.max_headers, |parsed, _| {
                        Ok(to_owned_request(parsed, &buf[head_len..total]))
                    })?;
                return Ok(Parsed::Complete {
                    request,
                    consumed: total,
                });
            }
            // A caller that handed us a shorter buffer than before broke the contract; start
            // over rather than index out of bounds.
            State::Head { start, scanned } if start.max(scanned) > buf.len() => (0, 0),
            State::Head { start, scanned } => (start, scanned),
        };
        let window = &buf[..buf.len().min(limits.max_header_bytes)];
        let Some(end) = self.scan_head(window, start, scanned) else {
            // RFC 6585 §5: 431 "indicates that the server is unwilling to process the request
            // because its header fields are too large". The end was not within the limit.
            return if buf.len() >= limits.max_header_bytes {
                Err(HttpError::HeadersTooLarge)
            } else {
                Ok(Parsed::Partial)
            };
        };
        with_parsed_head(&buf[..end], limits.max_headers, |parsed, head_len| {
            check_host(parsed.headers, head::version(parsed))?;
            let body_len = framing::body_length(parsed.headers, limits.max_body_size)?;
            let total = head_len
                .checked_add(body_len)
                .ok_or(HttpError::PayloadTooLarge {
                    limit: limits.max_body_size,
                })?;
            match buf.get(head_len..total) {
                Some(body) => Ok(Parsed::Complete {
                    request: to_owned_request(parsed, body),
                    consumed: total,
                }),
                None => {
                    self.state = State::Body { head_len, body_len };
                    Ok(Parsed::Partial)
                }
            }
        })
    }

    /// Skips leading empty lines, then scans for the end of the header block within `window`,
    /// resuming where the previous call stopped. Records progress in `self.state` when the end
    /// is not found yet.
    fn scan_head(&mut self, window: &[u8], mut start: usize, mut scanned: usize) -> Option<usize> {
        if scanned == 0 {
            while let Some(b'\r' | b'\n') = window.get(start) {
                start += 1;
            }
            if start == window.len() {
                self.state = State::Head { start, scanned: 0 };
                return None;
            }
            // window[start] begins the request line, so a terminator starts after it.
            scanned = start + 1;
        }
        match find_head_end(window, scanned) {
            Ok(end) => Some(end),
            Err(resume) => {
                self.state = State::Head {
                    start,
                    scanned: resume.max(start + 1),
                };
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Version;
    use std::time::{Duration, Instant};

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
            Parsed::Partial => panic!("unexpected Partial for {:?}", String::from_utf8_lossy(buf)),
        }
    }

    /// Splits at every position (fresh parser: prefix → Partial, whole → Complete), then feeds
    /// byte by byte through one parser, checking httparse ran at most twice.
    fn assert_split_invariant(buf: &[u8], expected: &Request) {
        for i in 0..buf.len() {
            let mut parser = RequestParser::new();
            assert_eq!(
                parser.parse(&buf[..i], &LIMITS),
                Ok(Parsed::Partial),
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
                Ok(Parsed::Partial),
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
        assert_eq!(parser.parse(rest, &LIMITS), Ok(Parsed::Partial));
    }

    #[test]
    fn error_table() {
        let small = HttpLimits {
            max_header_bytes: 80,
            max_headers: 3,
            max_body_size: 10,
        };
        let long = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nX-Long: {}\r\n",
            "a".repeat(100)
        );
        let long_ended = format!("{long}\r\n");
        let cl = |v: &str| format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {v}\r\n\r\n");
        let bad_cl = HttpError::BadRequest("invalid Content-Length");
        let table: Vec<(String, HttpError)> = vec![
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
            (cl("abc"), bad_cl.clone()),
            (cl("-1"), bad_cl.clone()),
            (cl("1 2"), bad_cl.clone()),
            (cl("99999999999999999999999"), bad_cl),
            (
                cl("1, 2"),
                HttpError::BadRequest("conflicting Content-Length values"),
            ),
            (
                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"
                    .into(),
                HttpError::BadRequest("conflicting Content-Length values"),
            ),
            (cl("11"), HttpError::PayloadTooLarge { limit: 10 }),
            (
                "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".into(),
                HttpError::UnsupportedTransferEncoding,
            ),
            // RFC 9112 §3.2: the Host rules, checked on the head.
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
            (long, HttpError::HeadersTooLarge),
            (long_ended, HttpError::HeadersTooLarge),
            ("\r\n".repeat(40), HttpError::HeadersTooLarge),
            (
                "GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n".into(),
                HttpError::TooManyHeaders,
            ),
        ];
        for (input, expected) in table {
            let mut parser = RequestParser::new();
            assert_eq!(
                parser.parse(input.as_bytes(), &small),
                Err(expected),
                "{input:?}"
            );
            // The parser resets after an error.
            assert_eq!(parser.state, State::default());
        }
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
            assert_eq!(parser.parse(&buf[..i], &under), Ok(Parsed::Partial));
        }
        assert_eq!(
            parser.parse(&buf[..buf.len() - 1], &under),
            Err(HttpError::HeadersTooLarge)
        );
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
            assert_eq!(parser.parse(&buf[..end], &limits), Ok(Parsed::Partial));
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
        assert_eq!(parser.parse(&buf[..head], &LIMITS), Ok(Parsed::Partial));
        assert!(matches!(parser.state, State::Body { body_len: 4, .. }));
        assert_eq!(parser.parse(&buf[..head + 1], &LIMITS), Ok(Parsed::Partial));
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
            Ok(Parsed::Partial)
        );
        assert_eq!(parser.parse(b"GET", &LIMITS), Ok(Parsed::Partial));
        assert!(one_shot(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", &LIMITS).is_ok());
        assert!(std::mem::size_of::<RequestParser>() <= 3 * std::mem::size_of::<usize>());
    }
}
