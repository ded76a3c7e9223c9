//! The owned, parsed HTTP request handed to handlers (and possibly to worker threads).
//!
//! Requests enter either from the parser ([`crate::http::RequestParser`], which copies the
//! borrowed `httparse` view into owned fields) or from [`Request::builder`] (tests and embedding
//! users calling handlers directly). They leave through read-only accessors; header lookups are
//! ASCII case-insensitive because RFC 9110 §5.1 says "Field names are case-insensitive".

use std::net::SocketAddr;

use super::token;

/// The HTTP version of a request line. Only 1.0 and 1.1 are accepted (RFC 9112 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `HTTP/1.0`: connections close after the response unless the client asked for keep-alive.
    Http10,
    /// `HTTP/1.1`: connections are persistent unless either side says `Connection: close`.
    Http11,
}

/// An owned, parsed HTTP request (owned so it can be sent to a worker thread).
///
/// Its method, request-target and header fields are packed in one buffer, with one list of
/// where each field ends: copying a request out of the receive buffer costs two allocations,
/// whatever its number of fields (and a third for a body).
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    /// The method, the request-target, then each field's name and value, back to back. All
    /// but the values are UTF-8 (`httparse` checks the method, target and names are tokens
    /// and visible ASCII; the builder takes them as `&str`).
    text: Vec<u8>,
    /// Where the method ends in `text`; the target follows it.
    method_end: usize,
    /// Where the target ends in `text`; the fields follow it.
    target_end: usize,
    /// Where each field's name ends and its value ends in `text`, in the order received (each
    /// name starts where the value before it ends).
    fields: Vec<(usize, usize)>,
    version: Version,
    body: Vec<u8>,
    peer_addr: Option<SocketAddr>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<(&str, String)> = self
            .headers()
            .map(|(name, value)| (name, String::from_utf8_lossy(value).into_owned()))
            .collect();
        f.debug_struct("Request")
            .field("method", &self.method())
            .field("target", &self.target())
            .field("version", &self.version)
            .field("headers", &headers)
            .field("body", &self.body.len())
            .field("peer_addr", &self.peer_addr)
            .finish()
    }
}

impl Request {
    /// A request with no fields and no body yet, with room for `fields` fields of `bytes`
    /// bytes of names and values (the parser, which knows both).
    pub(crate) fn with_capacity(
        method: &str,
        target: &str,
        version: Version,
        (fields, bytes): (usize, usize),
    ) -> Request {
        let mut text = Vec::with_capacity(method.len() + target.len() + bytes);
        text.extend_from_slice(method.as_bytes());
        let method_end = text.len();
        text.extend_from_slice(target.as_bytes());
        Request {
            target_end: text.len(),
            text,
            method_end,
            fields: Vec::with_capacity(fields),
            version,
            body: Vec::new(),
            peer_addr: None,
        }
    }

    /// Appends a header field (names keep their case; repeated names are kept in order).
    pub(crate) fn push_field(&mut self, name: &str, value: &[u8]) {
        self.text.extend_from_slice(name.as_bytes());
        let name_end = self.text.len();
        self.text.extend_from_slice(value);
        self.fields.push((name_end, self.text.len()));
    }

    /// Both buffers hold exactly what they were sized for (the parser's copy grew none).
    #[cfg(test)]
    pub(crate) fn is_packed_exactly(&self) -> bool {
        self.text.capacity() == self.text.len() && self.fields.capacity() == self.fields.len()
    }

    /// `text[range]` as text: the method, the target or a name, UTF-8 by construction.
    fn str_at(&self, range: std::ops::Range<usize>) -> &str {
        self.text
            .get(range)
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .unwrap_or_default()
    }

    /// The address of the client that sent it (`None` for a request built by hand without
    /// one).
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer_addr
    }

    /// Records the client's address (the session, for each request it parses).
    pub(crate) fn set_peer_addr(&mut self, addr: Option<SocketAddr>) {
        self.peer_addr = addr;
    }

    /// The same request with `body` (the parser, once a chunked body is decoded).
    pub(crate) fn with_body(mut self, body: Vec<u8>) -> Request {
        self.body = body;
        self
    }

    /// Starts building a request by hand (tests, or calling handlers without a socket).
    /// The version defaults to HTTP/1.1, with no headers and an empty body.
    pub fn builder(method: &str, target: &str) -> RequestBuilder {
        RequestBuilder {
            request: Request::with_capacity(method, target, Version::Http11, (0, 0)),
        }
    }

    /// The request method, e.g. `GET` (case-sensitive, RFC 9110 §9.1).
    pub fn method(&self) -> &str {
        self.str_at(0..self.method_end)
    }

    /// The request-target up to (not including) the first `?`, or the whole target if none.
    pub fn path(&self) -> &str {
        split_target(self.target()).0
    }

    /// The part of the request-target after the first `?`, if there is a `?`.
    pub fn query(&self) -> Option<&str> {
        split_target(self.target()).1
    }

    /// The full request-target exactly as sent.
    pub fn target(&self) -> &str {
        self.str_at(self.method_end..self.target_end)
    }

    /// The HTTP version from the request line.
    pub fn version(&self) -> Version {
        self.version
    }

    /// First header with this name (ASCII case-insensitive), if its value is valid UTF-8.
    /// If the first such header is not UTF-8 this returns `None` (later ones are not consulted).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.fields_raw()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .and_then(|(_, value)| std::str::from_utf8(value).ok())
    }

    /// All values of a header (case-insensitive), raw bytes, in the order received.
    pub fn headers_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.fields_raw()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, value)| value)
    }

    /// Every header field as `(name, raw value)`, in the order received, names as sent.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.fields_raw()
            .map(|(name, value)| (std::str::from_utf8(name).unwrap_or_default(), value))
    }

    /// Every field as `(name, value)`, both as bytes.
    fn fields_raw(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let starts = std::iter::once(self.target_end).chain(self.fields.iter().map(|f| f.1));
        starts.zip(&self.fields).map(|(start, &(name_end, end))| {
            let name = self.text.get(start..name_end).unwrap_or_default();
            (name, self.text.get(name_end..end).unwrap_or_default())
        })
    }

    /// The request body: the `Content-Length` bytes, or a chunked body decoded (empty when the
    /// request had neither).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Does the connection stay open after the response? HTTP/1.1: yes unless a Connection header
    /// has the token "close"; HTTP/1.0: only if a Connection header has the token "keep-alive"
    /// (and none has "close"). Connection is a comma-separated, case-insensitive token list and
    /// may appear several times.
    pub fn keep_alive(&self) -> bool {
        // RFC 9112 §9.3: "If the "close" connection option is present ..., the connection will
        // not persist after the current response"; else for HTTP/1.1 it persists; else for
        // HTTP/1.0 it persists only with the "keep-alive" option.
        if self.has_token("connection", "close") {
            return false;
        }
        match self.version {
            Version::Http11 => true,
            Version::Http10 => self.has_token("connection", "keep-alive"),
        }
    }

    /// Does any header `name` contain `token` in its comma-separated list (case-insensitive)?
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers_all(name)
            .any(|value| token::list_contains(value, token))
    }
}

/// A request-target's path and, after its first `?`, its query. A byte search: a target is
/// short, and `str::split_once` with a `char` costs about ten times as much on one
/// (`Context::path` runs this on every message of a handler that routes by path).
pub(crate) fn split_target(target: &str) -> (&str, Option<&str>) {
    match target.bytes().position(|byte| byte == b'?') {
        // `?` is ASCII: both sides of it are whole characters.
        Some(at) => (&target[..at], Some(&target[at + 1..])),
        None => (target, None),
    }
}

/// Builds a [`Request`] by hand; see [`Request::builder`].
#[derive(Debug, Clone)]
pub struct RequestBuilder {
    request: Request,
}

impl RequestBuilder {
    /// Appends a header field (names keep their case; repeated names are kept in order).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.request.push_field(&name.into(), &value.into());
        self
    }

    /// Sets the body. No `Content-Length` header is added.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.request.body = body.into();
        self
    }

    /// Sets the client's address ([`Request::peer_addr`]).
    pub fn peer_addr(mut self, addr: SocketAddr) -> Self {
        self.request.peer_addr = Some(addr);
        self
    }

    /// Sets the HTTP version (default HTTP/1.1).
    pub fn version(mut self, version: Version) -> Self {
        self.request.version = version;
        self
    }

    /// Finishes the request.
    pub fn build(self) -> Request {
        self.request
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_and_query() {
        let table = [
            ("/", "/", None),
            ("/a/b?x=1&y", "/a/b", Some("x=1&y")),
            ("/a?", "/a", Some("")),
            ("/a?b?c", "/a", Some("b?c")),
            ("?", "", Some("")),
            ("/é/ü?ß=ö", "/é/ü", Some("ß=ö")),
            ("*", "*", None),
        ];
        for (target, path, query) in table {
            let r = Request::builder("GET", target).build();
            assert_eq!(r.target(), target);
            assert_eq!(r.path(), path, "{target}");
            assert_eq!(r.query(), query, "{target}");
        }
    }

    #[test]
    fn header_lookup() {
        let r = Request::builder("GET", "/")
            .header("Host", "example")
            .header("X-Bin", &b"\xff"[..])
            .header("x-multi", "a")
            .header("X-Multi", "b")
            .body("hi")
            .build();
        assert_eq!(r.header("HOST"), Some("example"));
        assert_eq!(r.header("x-bin"), None);
        assert_eq!(r.header("missing"), None);
        let all: Vec<&[u8]> = r.headers_all("X-MULTI").collect();
        assert_eq!(all, vec![&b"a"[..], b"b"]);
        assert_eq!(r.headers().count(), 4);
        assert_eq!(r.headers().next(), Some(("Host", &b"example"[..])));
        assert_eq!(r.body(), b"hi");
    }

    #[test]
    fn keep_alive_table() {
        use Version::*;
        let table: &[(Version, &[&str], bool)] = &[
            (Http11, &[], true),
            (Http11, &["close"], false),
            (Http11, &["Close"], false),
            (Http11, &["keep-alive, close"], false),
            (Http11, &["keep-alive", "CLOSE"], false),
            (Http11, &["keep-alive"], true),
            (Http11, &["closed"], true),
            (Http10, &[], false),
            (Http10, &["keep-alive"], true),
            (Http10, &["Keep-Alive"], true),
            (Http10, &["upgrade,  keep-alive "], true),
            (Http10, &["keep-alive, close"], false),
        ];
        for (version, values, expected) in table {
            let mut b = Request::builder("GET", "/").version(*version);
            for v in *values {
                b = b.header("Connection", *v);
            }
            let r = b.build();
            assert_eq!(r.keep_alive(), *expected, "{version:?} {values:?}");
        }
    }

    #[test]
    fn has_token_works_on_any_header() {
        let r = Request::builder("GET", "/")
            .header("Upgrade", "h2c, WebSocket")
            .build();
        assert!(r.has_token("upgrade", "websocket"));
        assert!(!r.has_token("upgrade", "web"));
        assert!(!r.has_token("connection", "upgrade"));
    }
}
