//! Request message framing: how the body that follows the header block is delimited
//! (RFC 9112 §6).
//!
//! Input is the header fields `httparse` found and the request's version; output is a
//! [`Framing`] — a body of known length, or a chunked one — or the [`HttpError`] that rejects the
//! request. Policy:
//! - `Transfer-Encoding: chunked` (the only coding, any case) → [`Framing::Chunked`], decoded by
//!   `chunked.rs`. RFC 9112 §7.1: "A recipient MUST be able to parse and decode the chunked
//!   transfer coding."
//! - `Transfer-Encoding` whose final coding is not `chunked` (`gzip`, `chunked, gzip`, an empty
//!   list) → [`HttpError::BadRequest`] (400). RFC 9112 §6.3 item 4: "If a Transfer-Encoding
//!   header field is present in a request and the chunked transfer coding is not the final
//!   encoding, the message body length cannot be determined reliably; the server MUST respond
//!   with the 400 (Bad Request) status code and then close the connection."
//! - `chunked` last, with other codings before it (`gzip, chunked`) →
//!   [`HttpError::UnsupportedTransferEncoding`] (501). RFC 9112 §6.1: "A server that receives a
//!   request message with a transfer coding it does not understand SHOULD respond with 501 (Not
//!   Implemented)." We decode `chunked` only.
//! - `Transfer-Encoding` in an HTTP/1.0 request → 400. RFC 9112 §6.1: a server "that receives an
//!   HTTP/1.0 message containing a Transfer-Encoding header field MUST treat the message as if
//!   the framing is faulty, even if a Content-Length is present".
//! - `Transfer-Encoding` together with `Content-Length` → [`HttpError::BadRequest`] (400).
//!   RFC 9112 §6.3 item 3: such a message "might indicate an attempt to perform request
//!   smuggling ... and ought to be handled as an error".
//! - An invalid `Content-Length` → 400. RFC 9112 §6.3 item 5: "If a message is received without
//!   Transfer-Encoding and with an invalid Content-Length header field, then the message framing
//!   is invalid and the recipient MUST treat it as an unrecoverable error ... the server MUST
//!   respond with a 400 (Bad Request) status code and then close the connection."
//!   Valid means `1*DIGIT` (no sign, no spaces, no overflow); several fields, or a comma list
//!   (RFC 9110 §8.6), are accepted only if every element is the same number.
//! - No framing header → empty body. RFC 9112 §6.3 item 7: "If this is a request message and
//!   none of the above are true, then the message body length is zero".
//! - A valid length above `max_body_size` → [`HttpError::PayloadTooLarge`] (413), decided from
//!   the header alone so the body is never buffered. (A chunked body is held to the same limit
//!   while it is decoded.)

use super::error::HttpError;
use super::request::Version;
use super::token::{list_elements, trim_ows};

/// How the body of a request is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// Exactly this many bytes follow the head (`Content-Length`, or 0 without framing fields).
    Length(usize),
    /// `Transfer-Encoding: chunked`: chunks until the last-chunk and the trailer section.
    Chunked,
}

/// Parses one `Content-Length` element: ASCII digits only, checked against overflow.
fn parse_decimal(digits: &[u8]) -> Result<usize, HttpError> {
    const INVALID: HttpError = HttpError::BadRequest("invalid Content-Length");
    if digits.is_empty() {
        return Err(INVALID);
    }
    digits.iter().try_fold(0usize, |acc, &b| {
        if !b.is_ascii_digit() {
            return Err(INVALID);
        }
        acc.checked_mul(10)
            .and_then(|acc| acc.checked_add(usize::from(b - b'0')))
            .ok_or(INVALID)
    })
}

/// What the `Transfer-Encoding` codings (in order, over every field) say about the body.
fn transfer_codings<'a>(codings: impl Iterator<Item = &'a [u8]>) -> Result<Framing, HttpError> {
    let chunked = |coding: &[u8]| coding.eq_ignore_ascii_case(b"chunked");
    // The last coding, how many came before it, and whether one of those was chunked.
    let (mut last, mut before, mut chunked_before) = (None, 0usize, false);
    for coding in codings {
        if let Some(previous) = last.replace(coding) {
            before += 1;
            chunked_before |= chunked(previous);
        }
    }
    match last {
        // "A sender MUST NOT apply the chunked transfer coding more than once to a message
        // body" (RFC 9112 §7.1): `chunked, chunked` is broken framing, not an unknown coding.
        Some(last) if chunked(last) && chunked_before => {
            Err(HttpError::BadRequest("chunked applied more than once"))
        }
        Some(last) if chunked(last) && before == 0 => Ok(Framing::Chunked),
        Some(last) if chunked(last) => Err(HttpError::UnsupportedTransferEncoding),
        _ => Err(HttpError::BadRequest(
            "Transfer-Encoding does not end with chunked",
        )),
    }
}

/// How the body of a request with `headers` is delimited, validated as described in the module
/// docs.
pub(crate) fn body_framing(
    headers: &[httparse::Header<'_>],
    version: Version,
    max_body_size: usize,
) -> Result<Framing, HttpError> {
    let mut content_length: Option<usize> = None;
    let mut transfer_encoding = false;
    for header in headers {
        if header.name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = true;
        } else if header.name.eq_ignore_ascii_case("content-length") {
            for element in header.value.split(|&b| b == b',') {
                let n = parse_decimal(trim_ows(element))?;
                match content_length {
                    Some(previous) if previous != n => {
                        return Err(HttpError::BadRequest("conflicting Content-Length values"));
                    }
                    _ => content_length = Some(n),
                }
            }
        }
    }
    match (transfer_encoding, content_length) {
        (true, Some(_)) => Err(HttpError::BadRequest(
            "both Transfer-Encoding and Content-Length",
        )),
        (true, None) if version == Version::Http10 => Err(HttpError::BadRequest(
            "Transfer-Encoding in an HTTP/1.0 request",
        )),
        (true, None) => transfer_codings(
            headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case("transfer-encoding"))
                .flat_map(|h| list_elements(h.value)),
        ),
        (false, Some(n)) if n > max_body_size => Err(HttpError::PayloadTooLarge {
            limit: max_body_size,
        }),
        (false, Some(n)) => Ok(Framing::Length(n)),
        (false, None) => Ok(Framing::Length(0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn length(fields: &[(&str, &str)]) -> Result<Framing, HttpError> {
        framing(fields, Version::Http11)
    }

    fn framing(fields: &[(&str, &str)], version: Version) -> Result<Framing, HttpError> {
        let headers = crate::http::test_headers(fields);
        body_framing(&headers, version, 1000)
    }

    const BAD: Result<Framing, HttpError> = Err(HttpError::BadRequest("invalid Content-Length"));
    const CONFLICT: Result<Framing, HttpError> =
        Err(HttpError::BadRequest("conflicting Content-Length values"));

    type Case<'a> = (&'a [(&'a str, &'a str)], Result<Framing, HttpError>);

    fn check(table: &[Case<'_>]) {
        for (fields, expected) in table {
            assert_eq!(&length(fields), expected, "{fields:?}");
        }
    }

    #[test]
    fn content_length_table() {
        use Framing::*;
        check(&[
            (&[], Ok(Length(0))),
            (&[("Content-Length", "0")], Ok(Length(0))),
            (&[("content-length", "42")], Ok(Length(42))),
            (&[("Content-Length", "007")], Ok(Length(7))),
            (
                &[("Content-Length", "5"), ("CONTENT-LENGTH", "5")],
                Ok(Length(5)),
            ),
            (&[("Content-Length", "5, 5 ,5")], Ok(Length(5))),
            (&[("Content-Length", "1000")], Ok(Length(1000))),
            (
                &[("Content-Length", "1001")],
                Err(HttpError::PayloadTooLarge { limit: 1000 }),
            ),
            (&[("Content-Length", "abc")], BAD),
            (&[("Content-Length", "-1")], BAD),
            (&[("Content-Length", "+1")], BAD),
            (&[("Content-Length", "1 2")], BAD),
            (&[("Content-Length", "")], BAD),
            (&[("Content-Length", "5,")], BAD),
            (&[("Content-Length", "0x10")], BAD),
            (&[("Content-Length", "99999999999999999999999")], BAD),
            (
                &[("Content-Length", "5"), ("Content-Length", "6")],
                CONFLICT,
            ),
            (&[("Content-Length", "5, 6")], CONFLICT),
        ]);
    }

    #[test]
    fn transfer_encoding_table() {
        let not_final = Err(HttpError::BadRequest(
            "Transfer-Encoding does not end with chunked",
        ));
        let chunked = Ok(Framing::Chunked);
        check(&[
            (&[("Transfer-Encoding", "chunked")], chunked.clone()),
            (&[("transfer-encoding", " CHUNKED ")], chunked.clone()),
            (&[("Transfer-Encoding", "chunked,")], chunked),
            (
                &[("transfer-encoding", "gzip, chunked")],
                Err(HttpError::UnsupportedTransferEncoding),
            ),
            (
                &[
                    ("Transfer-Encoding", "gzip"),
                    ("Transfer-Encoding", "chunked"),
                ],
                Err(HttpError::UnsupportedTransferEncoding),
            ),
            (
                &[("Transfer-Encoding", "chunked, chunked")],
                Err(HttpError::BadRequest("chunked applied more than once")),
            ),
            (
                &[
                    ("Transfer-Encoding", "gzip, chunked"),
                    ("Transfer-Encoding", "chunked"),
                ],
                Err(HttpError::BadRequest("chunked applied more than once")),
            ),
            (&[("Transfer-Encoding", "gzip")], not_final.clone()),
            (&[("Transfer-Encoding", "chunked, gzip")], not_final.clone()),
            (
                &[
                    ("Transfer-Encoding", "chunked"),
                    ("Transfer-Encoding", "identity"),
                ],
                not_final.clone(),
            ),
            (&[("Transfer-Encoding", "")], not_final.clone()),
            (&[("Transfer-Encoding", "chunkedx")], not_final),
            (
                &[("Transfer-Encoding", "chunked"), ("Content-Length", "5")],
                Err(HttpError::BadRequest(
                    "both Transfer-Encoding and Content-Length",
                )),
            ),
        ]);
    }

    #[test]
    fn transfer_encoding_in_http10_is_faulty_framing() {
        assert_eq!(
            framing(&[("Transfer-Encoding", "chunked")], Version::Http10),
            Err(HttpError::BadRequest(
                "Transfer-Encoding in an HTTP/1.0 request"
            ))
        );
        assert_eq!(
            framing(&[("Content-Length", "3")], Version::Http10),
            Ok(Framing::Length(3))
        );
    }
}
