//! The header block of one request: finding where it ends, and running `httparse` on it.
//!
//! Bytes enter as a slice of the receive buffer. [`find_head_end`] is a resumable scan for the
//! blank line that ends the head; [`with_parsed_head`] runs `httparse` on a head known to be
//! complete (so it is called once per request, never on every read) and lends the borrowed
//! result to a closure; [`to_owned_request`] copies it out as an owned [`Request`]. `httparse`
//! errors leave mapped to [`HttpError`]s.

use super::error::HttpError;
use super::request::{Request, Version};

/// Finds the end of the header block: an LF followed by LF or CRLF (RFC 9112 §2.2: a recipient
/// "MAY recognize a single LF as a line terminator and ignore any preceding CR"). Scans
/// `window[from..]`; returns `Ok(end)` (index just past the final LF) or `Err(resume)`, the
/// index of the first byte that could still begin the terminator once more bytes arrive.
pub(crate) fn find_head_end(window: &[u8], from: usize) -> Result<usize, usize> {
    let mut i = from;
    while let Some(offset) = window
        .get(i..)
        .and_then(|s| s.iter().position(|&b| b == b'\n'))
    {
        let lf = i + offset;
        match (window.get(lf + 1), window.get(lf + 2)) {
            (Some(b'\n'), _) => return Ok(lf + 2),
            (Some(b'\r'), Some(b'\n')) => return Ok(lf + 3),
            (None, _) | (Some(b'\r'), None) => return Err(lf),
            _ => i = lf + 1,
        }
    }
    Err(window.len().max(from))
}

#[cfg(test)]
thread_local! {
    /// Test-only count of `httparse` invocations on this thread.
    static HTTPARSE_CALLS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Maps an `httparse` error to ours. A well-formed `HTTP/x.y` other than 1.0/1.1 gets 505.
fn map_httparse_error(err: httparse::Error, head: &[u8]) -> HttpError {
    match err {
        httparse::Error::TooManyHeaders => HttpError::TooManyHeaders,
        httparse::Error::Version => {
            // RFC 9112 §2.3: HTTP-version = HTTP-name "/" DIGIT "." DIGIT
            let line = head
                .split(|&b| b == b'\n')
                .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
                .find(|l| !l.is_empty())
                .unwrap_or_default();
            let version = line.rsplit(|&b| b == b' ').next().unwrap_or_default();
            match version {
                [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
                    if major.is_ascii_digit() && minor.is_ascii_digit() =>
                {
                    HttpError::VersionNotSupported
                }
                _ => HttpError::BadRequest("invalid HTTP version"),
            }
        }
        httparse::Error::HeaderName => HttpError::BadRequest("invalid header name"),
        httparse::Error::HeaderValue => HttpError::BadRequest("invalid header value"),
        httparse::Error::NewLine => HttpError::BadRequest("invalid line ending"),
        httparse::Error::Status | httparse::Error::Token => {
            HttpError::BadRequest("invalid request line")
        }
    }
}

/// Runs `httparse` once on a complete head (with room for `max_headers` fields) and hands the
/// result to `f`.
pub(crate) fn with_parsed_head<T>(
    head: &[u8],
    max_headers: usize,
    f: impl FnOnce(&httparse::Request<'_, '_>, usize) -> Result<T, HttpError>,
) -> Result<T, HttpError> {
    #[cfg(test)]
    HTTPARSE_CALLS.with(|c| c.set(c.get() + 1));
    // A header field takes at least 3 bytes (`a:` and a line feed), so room for more fields than
    // that could never be used: the slots follow the head's length, and a `max_headers` of
    // `usize::MAX` allocates no more than a head of that length needs.
    let slots = max_headers.min(head.len() / 3 + 1);
    let mut stack = [httparse::EMPTY_HEADER; 64];
    let mut heap;
    let headers: &mut [httparse::Header<'_>] = match stack.get_mut(..slots) {
        Some(slice) => slice,
        None => {
            heap = vec![httparse::EMPTY_HEADER; slots];
            &mut heap
        }
    };
    let mut request = httparse::Request::new(headers);
    match request.parse(head) {
        Ok(httparse::Status::Complete(len)) => f(&request, len),
        // The blank line was found, so httparse stopping short means the head is malformed.
        Ok(httparse::Status::Partial) => Err(HttpError::BadRequest("malformed header block")),
        Err(err) => Err(map_httparse_error(err, head)),
    }
}

/// The version of a parsed head (`httparse` accepts only `HTTP/1.0` and `HTTP/1.1`).
pub(crate) fn version(parsed: &httparse::Request<'_, '_>) -> Version {
    match parsed.version {
        Some(0) => Version::Http10,
        _ => Version::Http11,
    }
}

/// Copies the borrowed `httparse` view into an owned [`Request`] (two allocations, three with
/// a body: see `Request`).
pub(crate) fn to_owned_request(parsed: &httparse::Request<'_, '_>, body: &[u8]) -> Request {
    let bytes = parsed
        .headers
        .iter()
        .map(|h| h.name.len() + h.value.len())
        .sum();
    let mut request = Request::with_capacity(
        parsed.method.unwrap_or_default(),
        parsed.path.unwrap_or_default(),
        version(parsed),
        (parsed.headers.len(), bytes),
    );
    for header in parsed.headers.iter() {
        request.push_field(header.name, header.value);
    }
    if body.is_empty() {
        request
    } else {
        request.with_body(body.to_vec())
    }
}

/// Test-only: how many times `httparse` has run on this thread.
#[cfg(test)]
pub(crate) fn httparse_calls() -> usize {
    HTTPARSE_CALLS.with(|c| c.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_head_end_table() {
        let table: &[(&[u8], usize, Result<usize, usize>)] = &[
            (b"GET / HTTP/1.1\r\n\r\n", 1, Ok(18)),
            (b"GET / HTTP/1.1\n\n", 1, Ok(16)),
            (b"GET / HTTP/1.1\r\nA: b\n\r\nbody", 1, Ok(23)),
            (b"GET / HTTP/1.1\r\n", 1, Err(15)),
            (b"GET / HTTP/1.1\r\n\r", 1, Err(15)),
            (b"GET / HTTP/1.1\r\nA", 1, Err(17)),
            (b"GET", 1, Err(3)),
            (b"GET / HTTP/1.1\r\nA", 15, Err(17)),
        ];
        for (window, from, expected) in table {
            assert_eq!(find_head_end(window, *from), *expected, "{window:?}");
        }
    }

    /// The owned copy holds what `httparse` saw, packed in two buffers sized exactly once.
    #[test]
    fn the_owned_request_is_what_was_parsed() {
        let head = b"POST /a/b?x=1 HTTP/1.0\r\nHost: h\r\nX-Obs: caf\xe9\r\n\
                     x-multi: 1\r\nX-Multi: 2\r\nEmpty:\r\n\r\n";
        let request = with_parsed_head(head, 8, |parsed, _| Ok(to_owned_request(parsed, b"body")))
            .expect("parsed");
        assert_eq!(request.method(), "POST");
        assert_eq!(request.target(), "/a/b?x=1");
        assert_eq!((request.path(), request.query()), ("/a/b", Some("x=1")));
        assert_eq!(request.version(), Version::Http10);
        let fields: Vec<(&str, &[u8])> = request.headers().collect();
        let expected: [(&str, &[u8]); 5] = [
            ("Host", b"h"),
            ("X-Obs", b"caf\xe9"),
            ("x-multi", b"1"),
            ("X-Multi", b"2"),
            ("Empty", b""),
        ];
        assert_eq!(fields, expected);
        assert_eq!(request.header("HOST"), Some("h"));
        assert_eq!(request.header("x-obs"), None, "not UTF-8");
        assert_eq!(request.header("empty"), Some(""));
        assert_eq!(request.header("missing"), None);
        let multi: Vec<&[u8]> = request.headers_all("X-MULTI").collect();
        assert_eq!(multi, [b"1", b"2"]);
        assert_eq!(request.body(), b"body");
        assert!(request.is_packed_exactly(), "{request:?}");
        let built = Request::builder("POST", "/a/b?x=1")
            .version(Version::Http10)
            .header("Host", "h")
            .header("X-Obs", &b"caf\xe9"[..])
            .header("x-multi", "1")
            .header("X-Multi", "2")
            .header("Empty", "")
            .body("body")
            .build();
        assert_eq!(built, request, "the builder packs the same way");
    }

    #[test]
    fn version_errors() {
        let table: &[(&[u8], HttpError)] = &[
            (b"GET / HTTP/2.0\r\n\r\n", HttpError::VersionNotSupported),
            (
                b"\r\nGET / HTTP/3.0\r\n\r\n",
                HttpError::VersionNotSupported,
            ),
            (
                b"GET / HTTP/2\r\n\r\n",
                HttpError::BadRequest("invalid HTTP version"),
            ),
            (
                b"GET / http/1.1\r\n\r\n",
                HttpError::BadRequest("invalid HTTP version"),
            ),
        ];
        for (head, expected) in table {
            assert_eq!(
                with_parsed_head(head, 4, |_, _| Ok(())),
                Err(expected.clone())
            );
        }
    }
}
