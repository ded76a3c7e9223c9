//! Why the origin check refuses an upgrade: the reasons a `403` names.
//!
//! [`check_origin`](super::check_origin) produces an [`OriginRefusal`]; `HttpError::OriginRefused`
//! carries it to the response, whose body is its one-line `Display`. A leaf: it imports nothing,
//! so the HTTP error type can name it without importing the check.

use std::fmt;

/// Why an upgrade's origin is refused. Answered with **403 Forbidden** and this reason, then the
/// connection is closed (`HttpError::OriginRefused`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginRefusal {
    /// `Origin: null`: a sandboxed iframe, a `file://` page, a redirect — no one to trust.
    Null,
    /// An `Origin` value that is not `scheme://host[:port]`.
    Malformed,
    /// More than one `Origin` field (RFC 6454 §7.3: a user agent "MUST NOT include more than
    /// one Origin header field in any HTTP request").
    Repeated,
    /// Another site's page, not in the allow-list.
    NotAllowed,
}

impl fmt::Display for OriginRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OriginRefusal::Null => "Origin null (a sandboxed or file: page) is not allowed",
            OriginRefusal::Malformed => "the Origin header is not an origin (scheme://host[:port])",
            OriginRefusal::Repeated => "more than one Origin header",
            OriginRefusal::NotAllowed => {
                "the Origin is neither this server's own (its Host) nor an allowed origin"
            }
        })
    }
}
