//! HTTP responses: a small owned value built by handlers, and its HTTP/1.1 wire encoding.
//!
//! Responses enter from handlers, [`crate::http::HttpError::to_response`] and
//! [`crate::http::switching_protocols`]; they leave as bytes appended to the connection's write
//! buffer by [`Response::encode`], which owns the framing headers (`Content-Length`,
//! `Connection`) so a handler cannot get them wrong, and adds `Date` (RFC 9110 §6.6.1) from the
//! encoding thread's once-per-second cache (`date.rs`).
//!
//! Header injection: a header whose name is not an RFC 9110 §5.6.2 token, or whose value
//! contains CR, LF or NUL, is **dropped** by [`Response::with_header`] (never sent, not visible
//! through [`Response::header`]). RFC 9110 §5.5: "Field values containing CR, LF, or NUL
//! characters are invalid and dangerous" and a recipient "MUST either reject the message or
//! replace each of those characters with SP"; as a sender we simply never emit them.

use std::borrow::Cow;

use super::date;
use super::request::Version;
use super::token;

/// An HTTP response: status code, header fields and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    /// Name and value; borrowed when fixed (the constructors' `Content-Type`): a response of
    /// a constructor allocates no field.
    headers: Vec<(Cow<'static, str>, Cow<'static, str>)>,
    body: Vec<u8>,
}

/// Is `b` a `tchar` (RFC 9110 §5.6.2)?
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Can this field be written without breaking the message syntax?
fn is_safe_field(name: &str, value: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(is_tchar)
        && !value.bytes().any(|b| matches!(b, b'\r' | b'\n' | b'\0'))
}

/// Statuses whose responses never have content nor `Content-Length` here.
/// RFC 9110 §8.6: "A server MUST NOT send a Content-Length header field in any response with a
/// status code of 1xx (Informational) or 204 (No Content)". 304 is included as the spec for this
/// crate asks (a 304 Content-Length would have to describe the unsent representation).
fn is_bodiless(status: u16) -> bool {
    (100..200).contains(&status) || status == 204 || status == 304
}

impl Response {
    /// An empty response with this status. Statuses outside `100..=999` are encoded as 500
    /// because RFC 9112 §4 allows exactly three digits.
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A `text/plain; charset=utf-8` response.
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response::new(status)
            .with_fixed_header("Content-Type", "text/plain; charset=utf-8")
            .with_body(body.into())
    }

    /// A `text/html; charset=utf-8` response.
    pub fn html(status: u16, body: impl Into<String>) -> Response {
        Response::new(status)
            .with_fixed_header("Content-Type", "text/html; charset=utf-8")
            .with_body(body.into())
    }

    /// `404 Not Found` with a short plain-text body.
    pub fn not_found() -> Response {
        Response::text(404, "404 Not Found\n")
    }

    /// Appends a header field (repeats are kept, in order). A field that could inject headers
    /// (CR/LF/NUL in the value, or a name that is not a token) is silently dropped.
    /// `Content-Length` and `Transfer-Encoding` given here are ignored by [`Response::encode`].
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Response {
        let (name, value) = (name.into(), value.into());
        if is_safe_field(&name, &value) {
            self.headers.push((Cow::Owned(name), Cow::Owned(value)));
        }
        self
    }

    /// [`with_header`](Self::with_header) for a field known at compile time: kept borrowed.
    fn with_fixed_header(mut self, name: &'static str, value: &'static str) -> Response {
        debug_assert!(is_safe_field(name, value), "{name}: {value}");
        self.headers
            .push((Cow::Borrowed(name), Cow::Borrowed(value)));
        self
    }

    /// Replaces the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Response {
        self.body = body.into();
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The first header with this name (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Does any header `name` carry `token` in its comma-separated list?
    fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case(name) && token::list_contains(v.as_bytes(), token))
    }

    /// Appends the wire form to `out`: `HTTP/1.1 {status} {reason}\r\n`, `Date` (the current
    /// second, unless the response has its own `Date` field), the headers, then
    /// `Content-Length` (always computed from the body, replacing any user-given one, except for
    /// 1xx/204/304 which carry no body and no `Content-Length`), `Connection: close` when
    /// `!keep_alive` (unless a header already says close), `Connection: keep-alive` when
    /// `keep_alive` and `version == Http10` — appended to the response's own `Connection`
    /// field if it has one, so there is only ever one such field — then CRLF and the body unless `head_only` (HEAD
    /// requests: headers incl. `Content-Length`, no body). User `Transfer-Encoding` fields are
    /// not sent, since the body is always framed by `Content-Length`.
    pub fn encode(&self, out: &mut Vec<u8>, version: Version, keep_alive: bool, head_only: bool) {
        self.encode_dated(out, version, keep_alive, head_only, &date::now());
    }

    /// [`encode`](Self::encode) with the `Date` value given (an IMF-fixdate), for tests that
    /// compare exact bytes.
    pub(crate) fn encode_dated(
        &self,
        out: &mut Vec<u8>,
        version: Version,
        keep_alive: bool,
        head_only: bool,
        date: &[u8],
    ) {
        out.reserve(self.wire_len_bound(date.len()));
        let status = self.wire_status();
        push_status_line(out, status);
        // RFC 9110 §6.6.1: an origin server with a clock "MUST generate a Date header field in
        // all 2xx (Successful), 3xx (Redirection), and 4xx (Client Error) responses, and MAY
        // generate a Date header field in 1xx (Informational) and 5xx (Server Error)
        // responses". Sent on all of them; a handler's own `Date` wins (one field, not two).
        if self.header("date").is_none() {
            out.extend_from_slice(b"Date: ");
            out.extend_from_slice(date);
            out.extend_from_slice(b"\r\n");
        }
        let option = self.connection_option(version, keep_alive);
        let option_sent = self.push_fields(out, option);
        let bodiless = is_bodiless(status);
        if !bodiless {
            out.extend_from_slice(b"Content-Length: ");
            push_decimal(out, self.body.len());
            out.extend_from_slice(b"\r\n");
        }
        if let Some(option) = option.filter(|_| !option_sent) {
            push_field(out, "Connection", option);
        }
        out.extend_from_slice(b"\r\n");
        // RFC 9110 §9.3.2: "The server SHOULD send the same header fields in response to a HEAD
        // request as it would have sent if the request method had been GET", but no content.
        if !head_only && !bodiless {
            out.extend_from_slice(&self.body);
        }
    }

    /// At least the length of the wire form, so that encoding grows `out` once, not once per
    /// field: the fixed parts at their longest (status line, `Date`, `Content-Length`, the
    /// connection option, each field's `: ` and CRLF), the fields and the body.
    fn wire_len_bound(&self, date_len: usize) -> usize {
        const FIXED: usize = "HTTP/1.1 431 Request Header Fields Too Large\r\n".len()
            + "Date: \r\n".len()
            + "Content-Length: 18446744073709551615\r\n".len()
            + "Connection: keep-alive\r\n".len()
            + "\r\n".len();
        let fields: usize = self
            .headers
            .iter()
            .map(|(name, value)| name.len() + value.len() + ": , keep-alive\r\n".len())
            .sum();
        FIXED + date_len + fields + self.body.len()
    }

    /// The status code sent: this one, or 500 if it is not three digits (RFC 9112 §4).
    #[inline]
    fn wire_status(&self) -> u16 {
        if (100..=999).contains(&self.status) {
            self.status
        } else {
            500
        }
    }

    /// The connection option the server adds, if the response does not say it already:
    /// `close` when the connection ends, `keep-alive` when an HTTP/1.0 one stays open.
    #[inline]
    fn connection_option(&self, version: Version, keep_alive: bool) -> Option<&'static str> {
        if !keep_alive {
            // RFC 9112 §9.6: "A server that sends a "close" connection option MUST initiate
            // closure of the connection ... after it sends the response containing close".
            (!self.has_token("connection", "close")).then_some("close")
        } else {
            let http10 = version == Version::Http10;
            (http10 && !self.has_token("connection", "keep-alive")).then_some("keep-alive")
        }
    }

    /// Writes the response's own header fields, all but the framing ones, with `option` joined
    /// to its first `Connection` field if it has one. Returns whether `option` was sent so.
    #[inline]
    fn push_fields(&self, out: &mut Vec<u8>, option: Option<&str>) -> bool {
        let mut option_sent = false;
        for (name, value) in &self.headers {
            // RFC 9112 §6.2: "A sender MUST NOT send a Content-Length header field in any
            // message that contains a Transfer-Encoding header field." We own both.
            if name.eq_ignore_ascii_case("content-length")
                || name.eq_ignore_ascii_case("transfer-encoding")
            {
                continue;
            }
            match option {
                // A handler's own `Connection` field (e.g. `Upgrade` on a 426) takes the option
                // as one more list element: one field, not a second `Connection` line.
                Some(option) if !option_sent && name.eq_ignore_ascii_case("connection") => {
                    option_sent = true;
                    if token::trim_ows(value.as_bytes()).is_empty() {
                        push_field(out, name, option);
                    } else {
                        push_field(out, name, &format!("{value}, {option}"));
                    }
                }
                _ => push_field(out, name, value),
            }
        }
        option_sent
    }
}

impl Response {
    /// The wire form of a response that ends its connection (`HTTP/1.1`, `Connection: close`,
    /// with its body): what the loop itself answers with, no handler involved — a request
    /// error, `408` at the request deadline, `503` at `max_connections`.
    pub fn to_closing_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(128 + self.body.len());
        self.encode(&mut bytes, Version::Http11, false, false);
        bytes
    }
}

/// Writes the status line: `HTTP/1.1 {status} {reason}\r\n`.
fn push_status_line(out: &mut Vec<u8>, status: u16) {
    // RFC 9110 §2.5: a server "SHOULD send a response version equal to the highest version
    // to which the sender is conformant" whose major version matches the request: HTTP/1.1.
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, usize::from(status));
    out.push(b' ');
    out.extend_from_slice(reason_phrase(status).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Writes `n` in decimal, without the allocation `to_string` makes: this runs for every
/// response.
fn push_decimal(out: &mut Vec<u8>, n: usize) {
    let width = n.checked_ilog10().map_or(1, |log| log as usize + 1);
    let mut digits = [0u8; 20];
    date::put_digits(&mut digits[..width], n as u64);
    out.extend_from_slice(&digits[..width]);
}

/// Writes `name: value\r\n`.
fn push_field(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Standard reason phrase for a status code (RFC 9110 §15; "Unknown" otherwise).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests;
