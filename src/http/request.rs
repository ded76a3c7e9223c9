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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    method: String,
    target: String,
    version: Version,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    peer_addr: Option<SocketAddr>,
}

impl Request {
    /// Assembles a request from already-validated parts (used by the parser).
    pub(crate) fn from_parts(
        method: String,
        target: String,
        version: Version,
        headers: Vec<(String, Vec<u8>)>,
        body: Vec<u8>,
    ) -> Request {
        Request {
            method,
            target,
            version,
            headers,
            body,
            peer_addr: None,
        }
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
            request: Request::from_parts(
                method.to_owned(),
                target.to_owned(),
                Version::Http11,
                Vec::new(),
                Vec::new(),
            ),
        }
    }

    /// The request method, e.g. `GET` (case-sensitive, RFC 9110 §9.1).
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request-target up to (not including) the first `?`, or the whole target if none.
    pub fn path(&self) -> &str {
        split_target(&self.target).0
    }

    /// The part of the request-target after the first `?`, if there is a `?`.
    pub fn query(&self) -> Option<&str> {
        split_target(&self.target).1
    }

    /// The full request-target exactly as sent.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The HTTP version from the request line.
    pub fn version(&self) -> Version {
        self.version
    }

    /// First header with this name (ASCII case-insensitive), if its value is valid UTF-8.
    /// If the first such header is not UTF-8 this returns `None` (later ones are not consulted).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// All values of a header (case-insensitive), raw bytes, in the order received.
    pub fn headers_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// Every header field as `(name, raw value)`, in the order received, names as sent.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
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

/// A request-target's path and, after its first `?`, its query.
pub(crate) fn split_target(target: &str) -> (&str, Option<&str>) {
    match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
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
        self.request.headers.push((name.into(), value.into()));
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
