//! The `Expect` request header (RFC 9110 §10.1.1): does the client wait for `100 Continue`?
//!
//! Input is the header fields `httparse` found and the request's version; output is whether the
//! request expects `100-continue`, or [`HttpError::ExpectationFailed`] (**417**). The interim
//! `100 Continue` itself is the session's to send (`session/inbound.rs`), once the parser says
//! it is owed ([`crate::http::RequestParser::take_continue`]): the head is complete and valid,
//! and the body has not fully arrived. Policy:
//!
//! - `100-continue` (case-insensitive, RFC 9110 §10.1.1: "The Expect field value is
//!   case-insensitive") → expects continue. "The only expectation defined by this
//!   specification is "100-continue" (with no defined parameters)."
//! - Any other expectation (or `100-continue` with parameters) → 417: "A server that receives
//!   an Expect field value containing a member other than 100-continue MAY respond with a 417
//!   (Expectation Failed) status code to indicate that the unexpected expectation cannot be
//!   met."
//! - HTTP/1.0: the field is ignored. "A server that receives a 100-continue expectation in an
//!   HTTP/1.0 request MUST ignore that expectation" — and an HTTP/1.0 client cannot be sent the
//!   interim response anyway, so other expectations are ignored too.
//! - Empty list elements are skipped (RFC 9110 §5.6.1), so `Expect:` alone expects nothing.

use super::error::HttpError;
use super::request::Version;
use super::token::list_elements;

/// Does the request ask for `100 Continue` before it sends its body? See the module docs.
pub(crate) fn expects_continue(
    headers: &[httparse::Header<'_>],
    version: Version,
) -> Result<bool, HttpError> {
    if version == Version::Http10 {
        return Ok(false);
    }
    let mut expects = false;
    for header in headers {
        if !header.name.eq_ignore_ascii_case("expect") {
            continue;
        }
        for expectation in list_elements(header.value) {
            if !expectation.eq_ignore_ascii_case(b"100-continue") {
                return Err(HttpError::ExpectationFailed);
            }
            expects = true;
        }
    }
    Ok(expects)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        use Version::*;
        type Case<'a> = (&'a [(&'a str, &'a str)], Version, Result<bool, HttpError>);
        let failed = Err(HttpError::ExpectationFailed);
        let table: &[Case<'_>] = &[
            (&[], Http11, Ok(false)),
            (&[("Expect", "100-continue")], Http11, Ok(true)),
            (&[("expect", "100-Continue")], Http11, Ok(true)),
            (&[("Expect", " 100-continue , ")], Http11, Ok(true)),
            (&[("Expect", "")], Http11, Ok(false)),
            (
                &[("Expect", "100-continue"), ("Expect", "100-continue")],
                Http11,
                Ok(true),
            ),
            (&[("Expect", "200-ok")], Http11, failed.clone()),
            (&[("Expect", "100-continue, x")], Http11, failed.clone()),
            (&[("Expect", "100-continue;a=b")], Http11, failed.clone()),
            (
                &[("Expect", "100-continue"), ("Expect", "x")],
                Http11,
                failed,
            ),
            // HTTP/1.0: ignored, whatever it says.
            (&[("Expect", "100-continue")], Http10, Ok(false)),
            (&[("Expect", "200-ok")], Http10, Ok(false)),
        ];
        for (fields, version, expected) in table {
            let headers = crate::http::test_headers(fields);
            assert_eq!(
                &expects_continue(&headers, *version),
                expected,
                "{fields:?} {version:?}"
            );
        }
    }
}
