//! Request message framing: how many body bytes follow the header block (RFC 9112 §6).
//!
//! Input is the header fields `httparse` found; output is the body length in bytes, or the
//! [`HttpError`] that rejects the request. Only `Content-Length` framing is supported. Policy:
//! - `Transfer-Encoding` alone → [`HttpError::UnsupportedTransferEncoding`] (501). RFC 9112 §6.1:
//!   "A server that receives a request message with a transfer coding it does not understand
//!   SHOULD respond with 501 (Not Implemented)." We understand none, not even chunked.
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
//!   the header alone so the body is never buffered.

use super::error::HttpError;
use super::token::trim_ows;

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

/// The body length declared by `headers`, validated as described in the module docs.
pub(crate) fn body_length(
    headers: &[httparse::Header<'_>],
    max_body_size: usize,
) -> Result<usize, HttpError> {
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
        (true, None) => Err(HttpError::UnsupportedTransferEncoding),
        (false, Some(n)) if n > max_body_size => Err(HttpError::PayloadTooLarge {
            limit: max_body_size,
        }),
        (false, Some(n)) => Ok(n),
        (false, None) => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn length(fields: &[(&str, &str)]) -> Result<usize, HttpError> {
        let headers: Vec<httparse::Header<'_>> = fields
            .iter()
            .map(|(name, value)| httparse::Header {
                name,
                value: value.as_bytes(),
            })
            .collect();
        body_length(&headers, 1000)
    }

    const BAD: Result<usize, HttpError> = Err(HttpError::BadRequest("invalid Content-Length"));
    const CONFLICT: Result<usize, HttpError> =
        Err(HttpError::BadRequest("conflicting Content-Length values"));

    #[test]
    fn table() {
        type Case<'a> = (&'a [(&'a str, &'a str)], Result<usize, HttpError>);
        let table: &[Case<'_>] = &[
            (&[], Ok(0)),
            (&[("Content-Length", "0")], Ok(0)),
            (&[("content-length", "42")], Ok(42)),
            (&[("Content-Length", "007")], Ok(7)),
            (&[("Content-Length", "5"), ("CONTENT-LENGTH", "5")], Ok(5)),
            (&[("Content-Length", "5, 5 ,5")], Ok(5)),
            (&[("Content-Length", "1000")], Ok(1000)),
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
            (
                &[("Transfer-Encoding", "chunked")],
                Err(HttpError::UnsupportedTransferEncoding),
            ),
            (
                &[("transfer-encoding", "gzip, chunked")],
                Err(HttpError::UnsupportedTransferEncoding),
            ),
            (
                &[("Transfer-Encoding", "chunked"), ("Content-Length", "5")],
                Err(HttpError::BadRequest(
                    "both Transfer-Encoding and Content-Length",
                )),
            ),
        ];
        for (fields, expected) in table {
            assert_eq!(&length(fields), expected, "{fields:?}");
        }
    }
}
