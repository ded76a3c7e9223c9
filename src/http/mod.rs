//! HTTP/1.1 for the session: request parsing, response encoding and the WebSocket upgrade check.
//!
//! Data flow: the session (`src/session/`) appends bytes read from a socket to a per-connection
//! buffer and hands that buffer to [`RequestParser::parse`], which either asks for more bytes
//! ([`Parsed::Partial`], saying how many it used up: a chunked body is decoded as it arrives),
//! yields an owned [`Request`] plus the number of bytes it used, or fails with an [`HttpError`]
//! (which knows its status code and renders its own [`Response`]). On the way every head is
//! checked: `Host` (`host.rs`), the body's framing (`framing.rs`, `chunked.rs`) and `Expect`
//! (`expect.rs`; the parser then says when a `100 Continue` is owed,
//! [`RequestParser::take_continue`]). A request is then either classified as a WebSocket
//! handshake by [`check_upgrade`] (answered with [`switching_protocols`]; its origin checked
//! against the configured policy by `origin/`, so a cross-site page is refused with `403` here)
//! or routed to a handler, whose [`Response`] is turned back into bytes by [`Response::encode`],
//! dated from a per-thread cache (`date.rs`). The two answers written before any handler — `503`
//! at capacity, `400` for plaintext on a TLS port — are here too (`canned.rs`). Nothing here
//! does I/O.
//!
//! Only the crate uses this module, except with the `fuzzing` feature, which makes it public
//! for the fuzz targets and property tests; items only they use are not dead code.

#![cfg_attr(not(feature = "fuzzing"), allow(dead_code, unused_imports))]

mod canned;
mod chunked;
mod date;
pub mod error;
mod expect;
mod framing;
mod head;
mod host;
pub mod origin;
pub mod parser;
pub mod request;
pub mod response;
mod token;
pub mod upgrade;

#[cfg(feature = "tls")]
pub(crate) use canned::plaintext_on_tls_port;
pub(crate) use canned::too_many_connections;
pub use error::HttpError;
pub use origin::{
    ForwardedHost, OriginCheck, OriginPattern, OriginPolicy, OriginRefusal, UpgradeOrigin,
};
pub use parser::{HttpLimits, Parsed, RequestParser};
pub(crate) use request::split_target;
pub use request::{Request, RequestBuilder, Version};
pub use response::{Response, reason_phrase};
pub use upgrade::{UpgradeRequest, check_upgrade, switching_protocols};

/// `(name, value)` pairs as the header fields `httparse` would hand over, for the unit tests of
/// the rules that read them (framing, Host, Expect).
#[cfg(test)]
pub(crate) fn test_headers<'a>(fields: &[(&'a str, &'a str)]) -> Vec<httparse::Header<'a>> {
    fields
        .iter()
        .map(|&(name, value)| httparse::Header {
            name,
            value: value.as_bytes(),
        })
        .collect()
}
