//! The `Host` header field rules (RFC 9112 §3.2), checked on every request head.
//!
//! Input is the header fields `httparse` found and the request's version; output is nothing, or
//! the [`HttpError::BadRequest`] (400) that rejects the request — upgrade requests included,
//! since they pass through the parser like any other. RFC 9112 §3.2: "A server MUST respond with
//! a 400 (Bad Request) status code to any HTTP/1.1 request message that lacks a Host header field
//! and to any request message that contains more than one Host header field line or a Host header
//! field with an invalid field value." So:
//!
//! - HTTP/1.1 without `Host` → 400. HTTP/1.0 may omit it (it predates the field).
//! - Two or more `Host` lines, in any version → 400.
//! - A value that is not `uri-host [ ":" port ]` (RFC 9110 §7.2) → 400. The check is RFC 3986
//!   §3.2.2's grammar by character class, nothing more: a bracketed `IP-literal` (an IPv6
//!   address as `std` parses it, or `IPvFuture`), or a `reg-name` — letters, digits,
//!   `-._~`, the sub-delims `!$&'()*+,;=` and `%XX` escapes (an IPv4 address is one of those) —
//!   then optionally `:` and digits. That rejects whitespace inside the value, control
//!   characters, `/`, `?`, `#`, `@` (userinfo), `\`, `"`, `<`, `>`, non-ASCII bytes and a bad
//!   `%` escape. No DNS-name rules, no port range, no IPv6 zone identifiers (RFC 6874), no
//!   comparison with an absolute-form request target.
//! - An empty value is valid: a client "MUST send a Host header field with an empty field value"
//!   when the target URI has no authority (§3.2).

use std::net::Ipv6Addr;

use super::error::HttpError;
use super::request::Version;
use super::token::trim_ows;

/// `unreserved` (RFC 3986 §2.3) or `sub-delims` (§2.2): the plain characters of a `reg-name`.
fn is_reg_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b)
}

/// `reg-name = *( unreserved / pct-encoded / sub-delims )` (RFC 3986 §3.2.2); this also covers
/// `IPv4address`, whose digits and dots are `unreserved`.
pub(crate) fn is_reg_name(name: &[u8]) -> bool {
    let mut i = 0;
    while let Some(&b) = name.get(i) {
        match b {
            // pct-encoded = "%" HEXDIG HEXDIG
            b'%' => match name.get(i + 1..i + 3) {
                Some([hi, lo]) if hi.is_ascii_hexdigit() && lo.is_ascii_hexdigit() => i += 3,
                _ => return false,
            },
            b if is_reg_name_char(b) => i += 1,
            _ => return false,
        }
    }
    true
}

/// The inside of `IP-literal = "[" ( IPv6address / IPvFuture ) "]"` (RFC 3986 §3.2.2), where
/// `IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )`.
fn is_ip_literal(inside: &[u8]) -> bool {
    if let [b'v' | b'V', rest @ ..] = inside {
        let Some(dot) = rest.iter().position(|&b| b == b'.') else {
            return false;
        };
        let (version, address) = (&rest[..dot], &rest[dot + 1..]);
        return !version.is_empty()
            && version.iter().all(u8::is_ascii_hexdigit)
            && !address.is_empty()
            && address.iter().all(|&b| is_reg_name_char(b) || b == b':');
    }
    std::str::from_utf8(inside).is_ok_and(|text| text.parse::<Ipv6Addr>().is_ok())
}

/// Is `value` a valid `Host` field value, `uri-host [ ":" port ]` with `port = *DIGIT`?
fn is_valid_host(value: &[u8]) -> bool {
    let value = trim_ows(value);
    let (host_ok, port) = match value.strip_prefix(b"[") {
        Some(bracketed) => match bracketed.iter().position(|&b| b == b']') {
            Some(end) => match &bracketed[end + 1..] {
                [] => (is_ip_literal(&bracketed[..end]), &b""[..]),
                [b':', port @ ..] => (is_ip_literal(&bracketed[..end]), port),
                _ => return false,
            },
            None => return false,
        },
        // A reg-name has no ':', so the first one starts the port.
        None => match value.iter().position(|&b| b == b':') {
            Some(colon) => (is_reg_name(&value[..colon]), &value[colon + 1..]),
            None => (is_reg_name(value), &b""[..]),
        },
    };
    host_ok && port.iter().all(u8::is_ascii_digit)
}

/// Applies the module's rules to a request head's fields.
pub(crate) fn check_host(
    headers: &[httparse::Header<'_>],
    version: Version,
) -> Result<(), HttpError> {
    let mut hosts = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("host"));
    match (hosts.next(), hosts.next()) {
        (None, _) if version == Version::Http11 => {
            Err(HttpError::BadRequest("missing Host header"))
        }
        (None, _) => Ok(()),
        (Some(_), Some(_)) => Err(HttpError::BadRequest("more than one Host header")),
        (Some(host), None) if is_valid_host(host.value) => Ok(()),
        (Some(_), None) => Err(HttpError::BadRequest("invalid Host header")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        let valid: &[&str] = &[
            "example.com",
            "example.com:8080",
            "EXAMPLE.com:",
            "localhost",
            "127.0.0.1",
            "127.0.0.1:9001",
            "[::1]",
            "[::1]:9001",
            "[2001:db8::7]",
            "[::ffff:192.0.2.1]:80",
            "[v1.fe80::a+en1]",
            "xn--bcher-kva.example",
            "under_score.example",
            "a%20b",
            "",
            "  example.com ",
            "sub-delims!$&'()*+,;=",
        ];
        for host in valid {
            assert!(is_valid_host(host.as_bytes()), "{host:?} should be valid");
        }
        let invalid: &[&[u8]] = &[
            b"exa mple.com",
            b"example.com/path",
            b"user@example.com",
            b"example.com?q",
            b"example.com#f",
            b"example.com:80a",
            b"example.com:-1",
            b"example.com:80:90",
            b"a\\b",
            b"\"quoted\"",
            b"<x>",
            b"a\tb",
            b"a\x01b",
            b"a\x7fb",
            b"b\xc3\xbccher.example",
            b"a%2",
            b"a%zz",
            b"[::1",
            b"[::1]x",
            b"[::1]:80a",
            b"[example.com]",
            b"[]",
            b"[v1.]",
            b"[v.x]",
            b"::1",
            b"[::1%25eth0]",
        ];
        for host in invalid {
            assert!(
                !is_valid_host(host),
                "{:?} should be invalid",
                String::from_utf8_lossy(host)
            );
        }
    }

    #[test]
    fn field_rules() {
        let check = |fields: &[(&str, &str)], version| {
            let headers = crate::http::test_headers(fields);
            check_host(&headers, version)
        };
        use Version::*;
        let missing = Err(HttpError::BadRequest("missing Host header"));
        let twice = Err(HttpError::BadRequest("more than one Host header"));
        let invalid = Err(HttpError::BadRequest("invalid Host header"));
        type Case<'a> = (&'a [(&'a str, &'a str)], Version, Result<(), HttpError>);
        let table: &[Case<'_>] = &[
            (&[("Host", "x")], Http11, Ok(())),
            (&[("hOsT", "x:1")], Http11, Ok(())),
            (&[("Host", "")], Http11, Ok(())),
            (&[], Http11, missing.clone()),
            (&[("Accept", "*/*")], Http11, missing),
            (&[], Http10, Ok(())),
            (&[("Host", "x")], Http10, Ok(())),
            (&[("Host", "x"), ("Host", "x")], Http11, twice.clone()),
            (&[("Host", "x"), ("HOST", "y")], Http10, twice),
            (&[("Host", "a b")], Http11, invalid.clone()),
            (&[("Host", "a/b")], Http10, invalid),
        ];
        for (fields, version, expected) in table {
            assert_eq!(&check(fields, *version), expected, "{fields:?} {version:?}");
        }
    }
}
