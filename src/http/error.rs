//! The ways a request can be rejected, each tied to the HTTP status code it is answered with.
//!
//! Errors enter from the parser ([`crate::http::RequestParser`]) and the upgrade check
//! ([`crate::http::check_upgrade`]); they leave as a status code ([`HttpError::status`]) or as a
//! complete `Connection: close` response ([`HttpError::to_response`]) that the session sends before
//! closing the connection (after a framing error the rest of the byte stream cannot be trusted).

use std::fmt;

use super::origin::OriginRefusal;
use super::response::{Response, reason_phrase};

/// Why a request could not be accepted. Every variant maps to one HTTP status code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// Malformed request (syntax, framing or handshake); the text names the problem.
    /// Answered with **400 Bad Request**.
    BadRequest(&'static str),
    /// The request line plus header block is longer than the configured limit.
    /// Answered with **431 Request Header Fields Too Large**.
    HeadersTooLarge,
    /// The request has more header fields than the configured limit.
    /// Answered with **431 Request Header Fields Too Large**.
    TooManyHeaders,
    /// The declared `Content-Length`, or the decoded size of a chunked body so far plus the
    /// next chunk's size, exceeds `limit` bytes.
    /// Answered with **413 Content Too Large** ("Payload Too Large").
    PayloadTooLarge {
        /// The configured maximum body size in bytes.
        limit: usize,
    },
    /// The request's `Transfer-Encoding` ends with `chunked` but lists other codings before it
    /// (e.g. `gzip, chunked`): only `chunked` alone is decoded.
    /// Answered with **501 Not Implemented**.
    UnsupportedTransferEncoding,
    /// The request's `Expect` field holds an expectation other than `100-continue`.
    /// Answered with **417 Expectation Failed**.
    ExpectationFailed,
    /// A well-formed `HTTP/x.y` version other than 1.0 and 1.1.
    /// Answered with **505 HTTP Version Not Supported**.
    VersionNotSupported,
    /// A WebSocket upgrade whose `Sec-WebSocket-Version` is missing or not 13.
    /// Answered with **426 Upgrade Required** carrying `Sec-WebSocket-Version: 13`.
    UpgradeRequired,
    /// A WebSocket upgrade from a page of another origin than the policy allows (Cross-Site
    /// WebSocket Hijacking: see `origin/`). Answered with **403 Forbidden**, the reason in the
    /// body.
    OriginRefused(OriginRefusal),
}

impl HttpError {
    /// The HTTP status code this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            HttpError::BadRequest(_) => 400,
            HttpError::HeadersTooLarge | HttpError::TooManyHeaders => 431,
            HttpError::PayloadTooLarge { .. } => 413,
            HttpError::UnsupportedTransferEncoding => 501,
            HttpError::ExpectationFailed => 417,
            HttpError::VersionNotSupported => 505,
            HttpError::UpgradeRequired => 426,
            HttpError::OriginRefused(_) => 403,
        }
    }

    /// A complete response for this error: one `Connection` field with the `close` option,
    /// `Content-Type: text/plain`, and a one-line body naming the problem (`Content-Length` is
    /// added by [`Response::encode`]). For [`HttpError::UpgradeRequired`] the `Connection`
    /// field is `Upgrade, close`, with `Sec-WebSocket-Version: 13` and `Upgrade: websocket`.
    pub fn to_response(&self) -> Response {
        let status = self.status();
        let detail = match self {
            HttpError::BadRequest(why) => (*why).to_owned(),
            other => other.to_string(),
        };
        let body = format!("{} {}: {}\n", status, reason_phrase(status), detail);
        let response = Response::text(status, body);
        match self {
            // RFC 6455 §4.2.2: on a version mismatch the server "MUST abort the WebSocket
            // handshake ... and instead send an appropriate HTTP error code (such as 426 Upgrade
            // Required) and a |Sec-WebSocket-Version| header field indicating the version(s) the
            // server is capable of understanding."
            // RFC 9110 §15.5.22: "The server MUST send an Upgrade header field in a 426 response
            // to indicate the required protocol(s)", and §7.8: a sender of Upgrade "MUST also
            // send an "upgrade" connection option in the Connection header field". The
            // connection still closes after an error (§9.6: "close" connection option), so
            // both options go in one field, `Connection: Upgrade, close`, rather than
            // `Connection: close` alone (which would break §7.8's MUST) or two `Connection`
            // lines (which mean the same but trip clients that read only one of them).
            HttpError::UpgradeRequired => response
                .with_header("Connection", "Upgrade, close")
                .with_header("Upgrade", "websocket")
                .with_header("Sec-WebSocket-Version", "13"),
            _ => response.with_header("Connection", "close"),
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::BadRequest(why) => write!(f, "bad request: {why}"),
            HttpError::HeadersTooLarge => f.write_str("request header block too large"),
            HttpError::TooManyHeaders => f.write_str("too many request header fields"),
            HttpError::PayloadTooLarge { limit } => {
                write!(f, "request body larger than the {limit} byte limit")
            }
            HttpError::UnsupportedTransferEncoding => {
                f.write_str("only the chunked transfer coding is supported")
            }
            HttpError::ExpectationFailed => {
                f.write_str("only the 100-continue expectation is supported")
            }
            HttpError::VersionNotSupported => {
                f.write_str("only HTTP/1.0 and HTTP/1.1 are supported")
            }
            HttpError::UpgradeRequired => {
                f.write_str("unsupported WebSocket version, use Sec-WebSocket-Version: 13")
            }
            HttpError::OriginRefused(why) => {
                write!(f, "cross-origin WebSocket upgrade refused: {why}")
            }
        }
    }
}

impl std::error::Error for HttpError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Version;

    const DATE: &[u8] = b"Tue, 01 Dec 2026 22:00:43 GMT";

    #[test]
    fn statuses() {
        let table = [
            (HttpError::BadRequest("x"), 400),
            (HttpError::HeadersTooLarge, 431),
            (HttpError::TooManyHeaders, 431),
            (HttpError::PayloadTooLarge { limit: 1 }, 413),
            (HttpError::UnsupportedTransferEncoding, 501),
            (HttpError::ExpectationFailed, 417),
            (HttpError::VersionNotSupported, 505),
            (HttpError::UpgradeRequired, 426),
            (HttpError::OriginRefused(OriginRefusal::NotAllowed), 403),
        ];
        for (err, status) in table {
            assert_eq!(err.status(), status, "{err:?}");
            let resp = err.to_response();
            assert_eq!(resp.status(), status);
            let connection = resp.header("connection").unwrap();
            assert!(connection.ends_with("close"), "{connection}");
            assert!(
                resp.header("content-type")
                    .unwrap()
                    .starts_with("text/plain")
            );
            let body = std::str::from_utf8(resp.body()).unwrap();
            assert_eq!(body.lines().count(), 1, "{body:?}");
            assert!(body.starts_with(&status.to_string()));
        }
    }

    #[test]
    fn error_response_bytes_have_single_connection_close() {
        let mut out = Vec::new();
        HttpError::BadRequest("invalid Content-Length")
            .to_response()
            .encode_dated(&mut out, Version::Http11, false, false, DATE);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "HTTP/1.1 400 Bad Request\r\nDate: Tue, 01 Dec 2026 22:00:43 GMT\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\
             Connection: close\r\nContent-Length: 40\r\n\r\n\
             400 Bad Request: invalid Content-Length\n"
        );
    }

    /// One `Connection` field carrying both options: never `Connection: close` next to
    /// `Connection: Upgrade`.
    #[test]
    fn upgrade_required_exact_bytes() {
        let mut out = Vec::new();
        HttpError::UpgradeRequired.to_response().encode_dated(
            &mut out,
            Version::Http11,
            false,
            false,
            DATE,
        );
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "HTTP/1.1 426 Upgrade Required\r\nDate: Tue, 01 Dec 2026 22:00:43 GMT\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\
             Connection: Upgrade, close\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Content-Length: 83\r\n\r\n\
             426 Upgrade Required: unsupported WebSocket version, use Sec-WebSocket-Version: 13\n"
        );
    }

    #[test]
    fn origin_refused_exact_bytes() {
        let mut out = Vec::new();
        HttpError::OriginRefused(OriginRefusal::Null)
            .to_response()
            .encode_dated(&mut out, Version::Http11, false, false, DATE);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "HTTP/1.1 403 Forbidden\r\nDate: Tue, 01 Dec 2026 22:00:43 GMT\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\
             Connection: close\r\nContent-Length: 110\r\n\r\n\
             403 Forbidden: cross-origin WebSocket upgrade refused: \
             Origin null (a sandboxed or file: page) is not allowed\n"
        );
    }

    #[test]
    fn upgrade_required_carries_version_header() {
        let resp = HttpError::UpgradeRequired.to_response();
        assert_eq!(resp.header("sec-websocket-version"), Some("13"));
        assert_eq!(resp.header("upgrade"), Some("websocket"));
    }
}
