//! The host a reverse proxy says its client asked for: `X-Forwarded-Host`, or the `host`
//! parameter of `Forwarded` (RFC 7239 §5.3).
//!
//! A request enters; the raw host value the configured header carries leaves (not yet parsed:
//! the origin check parses it as it parses `Host`), or `None` when the request has no such
//! header (then `Host` is used). Only the first value counts — the one the proxy nearest the
//! client wrote — so a chain of proxies that each append still yields the client's host. Which
//! header, if any, is trusted is configuration (`Config::forwarded_host`): a client that talks
//! to the server directly can send either.

use crate::http::request::Request;
use crate::http::token::{list_elements, trim_ows};

/// Which header, if any, names the host the client asked for, as a reverse proxy in front of
/// the server set it. Used by the origin check only, in place of `Host`, when present.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ForwardedHost {
    /// Neither: the origin check compares with `Host`. The default: a server reached directly
    /// cannot know which of these headers a proxy wrote and which a client made up.
    #[default]
    Ignore,
    /// `X-Forwarded-Host: app.example.com` (its first element), when present.
    XForwardedHost,
    /// `Forwarded: host=app.example.com` (the first `host` parameter, RFC 7239), when present.
    Forwarded,
}

/// The raw host value of the header `which` names, if the request has one. A value that cannot
/// be a host (an empty one, a quoted string with an escape) is returned as it is, to fail the
/// host parser.
pub(crate) fn forwarded_host(request: &Request, which: ForwardedHost) -> Option<&[u8]> {
    match which {
        ForwardedHost::Ignore => None,
        ForwardedHost::XForwardedHost => {
            let first = request.headers_all("x-forwarded-host").next()?;
            Some(list_elements(first).next().unwrap_or_default())
        }
        ForwardedHost::Forwarded => request
            .headers_all("forwarded")
            .find_map(first_host_parameter),
    }
}

/// The value of the first `host` parameter of a `Forwarded` value: `forwarded-element` is
/// `[ pair ] *( ";" [ pair ] )`, elements are separated by `,`, `pair` is `token "=" value` and a
/// value is a token or a quoted string (RFC 7239 §4), in which `,` and `;` do not separate.
fn first_host_parameter(value: &[u8]) -> Option<&[u8]> {
    let (mut start, mut i, mut quoted) = (0, 0, false);
    while i <= value.len() {
        let mut split = false;
        match value.get(i).copied() {
            // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ): the next byte is literal.
            Some(b'\\') if quoted && i + 1 < value.len() => i += 1,
            Some(b'"') => quoted = !quoted,
            // The end of the value ends the last pair, even inside an unterminated quote.
            Some(b';' | b',') if !quoted => split = true,
            None => split = true,
            _ => {}
        }
        if split {
            if let Some(host) = host_pair(&value[start..i]) {
                return Some(host);
            }
            start = i + 1;
        }
        i += 1;
    }
    None
}

/// The value of a `host=value` pair, unquoted; `None` for another pair.
fn host_pair(pair: &[u8]) -> Option<&[u8]> {
    let pair = trim_ows(pair);
    let equals = pair.iter().position(|&b| b == b'=')?;
    if !trim_ows(&pair[..equals]).eq_ignore_ascii_case(b"host") {
        return None;
    }
    let value = trim_ows(&pair[equals + 1..]);
    Some(match value {
        // A quoted host never needs an escape; one with a `\` stays quoted, and fails.
        [b'"', inner @ .., b'"'] if !inner.contains(&b'\\') => inner,
        _ => value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_of(fields: &[(&str, &str)], which: ForwardedHost) -> Option<String> {
        let mut builder = Request::builder("GET", "/");
        for (name, value) in fields {
            builder = builder.header(*name, *value);
        }
        let request = builder.build();
        forwarded_host(&request, which).map(|h| String::from_utf8_lossy(h).into_owned())
    }

    #[test]
    fn x_forwarded_host_first_element() {
        use ForwardedHost::*;
        let some = |s: &str| Some(s.to_owned());
        // (header lines, trusted header, host found)
        type Case<'a> = (&'a [(&'a str, &'a str)], ForwardedHost, Option<String>);
        let table: &[Case<'_>] = &[
            (
                &[("X-Forwarded-Host", "app.example.com")],
                XForwardedHost,
                some("app.example.com"),
            ),
            (
                &[("x-forwarded-host", " a.example:8443 , proxy")],
                XForwardedHost,
                some("a.example:8443"),
            ),
            (
                &[("X-Forwarded-Host", "a"), ("X-Forwarded-Host", "b")],
                XForwardedHost,
                some("a"),
            ),
            (&[("X-Forwarded-Host", "")], XForwardedHost, some("")),
            (&[("Host", "h")], XForwardedHost, None),
            // Not trusted: ignored.
            (&[("X-Forwarded-Host", "app.example.com")], Ignore, None),
            (&[("X-Forwarded-Host", "app.example.com")], Forwarded, None),
        ];
        for (fields, which, expected) in table {
            assert_eq!(&host_of(fields, *which), expected, "{fields:?} {which:?}");
        }
    }

    #[test]
    fn forwarded_host_parameter() {
        use ForwardedHost::*;
        let some = |s: &str| Some(s.to_owned());
        let table: &[(&str, Option<String>)] = &[
            ("host=app.example.com", some("app.example.com")),
            (
                "for=192.0.2.60;proto=https;host=app.example.com",
                some("app.example.com"),
            ),
            (
                "for=192.0.2.60; Host = app.example.com ;by=x",
                some("app.example.com"),
            ),
            ("host=\"[::1]:8080\"", some("[::1]:8080")),
            ("for=\"[2001:db8::1]\";host=a.example", some("a.example")),
            ("for=\"x;host=evil\";host=good", some("good")),
            ("for=\"x,host=evil\", host=second", some("second")),
            ("host=first, host=second", some("first")),
            ("for=a, for=b;host=second", some("second")),
            ("host=\"a\\\"b\"", some("\"a\\\"b\"")),
            ("for=192.0.2.60;proto=https", None),
            ("hostname=x", None),
            ("host", None),
            ("", None),
            ("\"", None),
            ("host=\"a.example", some("\"a.example")),
            ("host=\"a\\", some("\"a\\")),
        ];
        for (value, expected) in table {
            assert_eq!(
                &host_of(&[("Forwarded", value)], Forwarded),
                expected,
                "{value:?}"
            );
            assert_eq!(host_of(&[("Forwarded", value)], XForwardedHost), None);
        }
        assert_eq!(
            host_of(
                &[("Forwarded", "for=x"), ("Forwarded", "host=h")],
                Forwarded
            ),
            some("h")
        );
    }
}
