//! The responses written before any handler hears of a request: `503` to a connection the server
//! has no room for, and `400` to plaintext HTTP sent to a TLS port. Each is written whole into a
//! fresh socket (or queued by the session) and the connection closes after it.

use crate::http::response::Response;

/// The answer to a connection the server has no room for: past `max_connections` and its
/// monitoring reserve (written at accept), or on the reserve for something other than
/// monitoring (queued by the session).
pub(crate) fn too_many_connections() -> Response {
    Response::text(503, "too many connections\n").with_header("Retry-After", "1")
}

/// What a plaintext HTTP request on a TLS port gets (a browser pointed at `http://`): a `400`
/// that says to use `https://`, written in plaintext by the TLS transport before it fails the
/// connection. No `Date`: the transport writes it from below the HTTP layer, once.
#[cfg(feature = "tls")]
pub(crate) fn plaintext_on_tls_port() -> Vec<u8> {
    let body = "This port speaks TLS: use https:// or wss://\n";
    format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
