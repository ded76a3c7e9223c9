//! Serialized origins (RFC 6454 §6.2) and `host [":" port]` values, as the origin check compares
//! them.
//!
//! Bytes enter — an `Origin` field value, a `Host` field value, a forwarded host, an allow-list
//! entry — and leave as an [`Origin`] (scheme, host, port) or a [`HostPort`], or as `None` when
//! they are not one. The comparison rules live here: hosts ASCII case-insensitively, IPv6
//! literals as addresses (`[::1]` is `[0:0:0:0:0:0:0:1]`), ports with the scheme's default
//! filled in (`:80` for `http`/`ws`, `:443` for `https`/`wss`). Nothing here allocates, and no
//! input makes it panic.

use std::net::Ipv6Addr;

use crate::http::host::is_reg_name;

/// A host as the origin check compares it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Host<'a> {
    /// A registered name or an IPv4 address (RFC 3986 `reg-name`), compared ASCII
    /// case-insensitively: `Example.COM` is `example.com`.
    Name(&'a [u8]),
    /// A bracketed IPv6 literal, compared as an address.
    Ipv6(Ipv6Addr),
}

impl PartialEq for Host<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Host::Name(a), Host::Name(b)) => a.eq_ignore_ascii_case(b),
            (Host::Ipv6(a), Host::Ipv6(b)) => a == b,
            _ => false,
        }
    }
}

/// `host [":" port]`: a `Host` field value, or the authority of an origin. `port` is `None`
/// when none was written (the scheme's default applies).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct HostPort<'a> {
    pub(crate) host: Host<'a>,
    pub(crate) port: Option<u16>,
}

/// A serialized origin: `scheme "://" host [ ":" port ]` (RFC 6454 §6.2), with no path, query,
/// fragment or userinfo.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Origin<'a> {
    /// As sent (compared case-insensitively).
    pub(crate) scheme: &'a [u8],
    pub(crate) authority: HostPort<'a>,
}

impl Origin<'_> {
    /// The port, the scheme's default if none was written; `None` for a scheme without a known
    /// default and no port.
    pub(crate) fn port(&self) -> Option<u16> {
        self.authority.port.or_else(|| default_port(self.scheme))
    }

    /// Is this origin the one of a page on `host` — the same host and port, the port of either
    /// side the scheme's default when it is not written? Only web schemes (`http`, `https`, `ws`,
    /// `wss`) can be: `chrome-extension://id` is never the server's own. The scheme itself is
    /// not compared (gorilla compares only the host, too): behind a proxy that ends TLS the
    /// server cannot know whether its client used `https`.
    pub(crate) fn is_on(&self, host: &HostPort<'_>) -> bool {
        let Some(default) = default_port(self.scheme) else {
            return false;
        };
        self.authority.host == host.host
            && self.authority.port.unwrap_or(default) == host.port.unwrap_or(default)
    }
}

/// The default port of the web schemes (RFC 6454 §4 step 6 takes it from the URI scheme; RFC
/// 6455 §3 gives `ws`/`wss` the ports of `http`/`https`).
pub(crate) fn default_port(scheme: &[u8]) -> Option<u16> {
    let is = |name: &str| scheme.eq_ignore_ascii_case(name.as_bytes());
    if is("http") || is("ws") {
        Some(80)
    } else if is("https") || is("wss") {
        Some(443)
    } else {
        None
    }
}

/// `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )` (RFC 3986 §3.1).
pub(crate) fn is_scheme(scheme: &[u8]) -> bool {
    match scheme.split_first() {
        Some((first, rest)) => {
            first.is_ascii_alphabetic()
                && rest
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        }
        None => false,
    }
}

/// Parses a serialized origin. `None` for anything else: `null`, a path (even `/`), userinfo,
/// an empty host or port, a port past 65535, bytes outside the grammar.
pub(crate) fn parse_origin(value: &[u8]) -> Option<Origin<'_>> {
    let separator = value.windows(3).position(|w| w == b"://")?;
    let (scheme, authority) = (&value[..separator], &value[separator + 3..]);
    if !is_scheme(scheme) {
        return None;
    }
    let authority = parse_authority(authority, false)?;
    Some(Origin { scheme, authority })
}

/// Parses a `Host` value (RFC 9110 §7.2: `uri-host [ ":" port ]`); an empty port (`host:`) is
/// no port. `None` for an empty host, a port past 65535, or bytes outside the grammar.
pub(crate) fn parse_host_port(value: &[u8]) -> Option<HostPort<'_>> {
    parse_authority(value, true)
}

/// `host [ ":" port ]`, where `host` is a bracketed IPv6 address or a non-empty `reg-name`.
fn parse_authority(value: &[u8], empty_port: bool) -> Option<HostPort<'_>> {
    let (host, port) = match value.strip_prefix(b"[") {
        Some(bracketed) => {
            let end = bracketed.iter().position(|&b| b == b']')?;
            let address = std::str::from_utf8(&bracketed[..end]).ok()?;
            let host = Host::Ipv6(address.parse().ok()?);
            match &bracketed[end + 1..] {
                [] => (host, None),
                [b':', port @ ..] => (host, Some(port)),
                _ => return None,
            }
        }
        None => {
            // A reg-name has no ':', so the first one starts the port.
            let (name, port) = match value.iter().position(|&b| b == b':') {
                Some(colon) => (&value[..colon], Some(&value[colon + 1..])),
                None => (value, None),
            };
            if name.is_empty() || !is_reg_name(name) {
                return None;
            }
            (Host::Name(name), port)
        }
    };
    let port = match port {
        None => None,
        Some([]) if empty_port => None,
        Some(digits) => Some(parse_port(digits)?),
    };
    Some(HostPort { host, port })
}

/// `1*5DIGIT` within 0..=65535.
fn parse_port(digits: &[u8]) -> Option<u16> {
    if digits.is_empty() || digits.len() > 5 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(host: &str) -> Host<'_> {
        Host::Name(host.as_bytes())
    }

    /// (value, scheme, host, written port, effective port)
    type Case<'a> = (&'a str, &'a str, Host<'a>, Option<u16>, Option<u16>);

    fn assert_parse(table: &[Case<'_>]) {
        for &(value, scheme, host, written, effective) in table {
            let origin = parse_origin(value.as_bytes()).unwrap_or_else(|| panic!("{value}"));
            assert_eq!(origin.scheme, scheme.as_bytes(), "{value}");
            assert_eq!(origin.authority.host, host, "{value}");
            assert_eq!(origin.authority.port, written, "{value}");
            assert_eq!(origin.port(), effective, "{value}");
        }
    }

    #[test]
    fn origins_that_parse() {
        let ipv6: Ipv6Addr = "::1".parse().unwrap();
        assert_parse(&[
            (
                "https://app.example.com",
                "https",
                name("app.example.com"),
                None,
                Some(443),
            ),
            (
                "HTTP://Example.COM:80",
                "HTTP",
                name("example.com"),
                Some(80),
                Some(80),
            ),
            ("ws://127.0.0.1", "ws", name("127.0.0.1"), None, Some(80)),
            (
                "https://[0:0:0:0:0:0:0:1]",
                "https",
                Host::Ipv6(ipv6),
                None,
                Some(443),
            ),
            (
                "chrome-extension://abcdef",
                "chrome-extension",
                name("abcdef"),
                None,
                None,
            ),
        ]);
    }

    #[test]
    fn ports_that_parse() {
        let ipv6: Ipv6Addr = "::1".parse().unwrap();
        assert_parse(&[
            (
                "http://localhost:8080",
                "http",
                name("localhost"),
                Some(8080),
                Some(8080),
            ),
            (
                "wss://[::1]:9001",
                "wss",
                Host::Ipv6(ipv6),
                Some(9001),
                Some(9001),
            ),
            ("http://h:0", "http", name("h"), Some(0), Some(0)),
            ("http://h:00080", "http", name("h"), Some(80), Some(80)),
            (
                "http://h:65535",
                "http",
                name("h"),
                Some(65535),
                Some(65535),
            ),
        ]);
    }

    #[test]
    fn values_that_are_not_origins() {
        let table: &[&[u8]] = &[
            b"",
            b"null",
            b"https://",
            b"https://:443",
            b"example.com",
            b"//example.com",
            b"://example.com",
            b"1http://example.com",
            b"ht tp://example.com",
            b"https://example.com/",
            b"https://example.com/path",
            b"https://example.com?q",
            b"https://example.com#f",
            b"https://user@example.com",
            b"https://example.com:",
            b"https://example.com:65536",
            b"https://example.com:123456",
            b"https://example.com:-1",
            b"https://example.com:80:80",
            b"https://exa mple.com",
            b"https://[::1",
            b"https://[::1]x",
            b"https://[::1]:",
            b"https://[example.com]",
            b"https://[::1%25eth0]",
            b"https://\xff\xfe",
            b"https://b\xc3\xbccher.example",
            b"https://a%zz",
            b" https://example.com",
            b"https://example.com\r\n",
            b"\x00\x01\x02",
            b"https://[\xff]",
        ];
        for value in table {
            assert_eq!(
                parse_origin(value),
                None,
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn host_values() {
        fn h(v: &str) -> Option<HostPort<'_>> {
            parse_host_port(v.as_bytes())
        }
        assert_eq!(
            h("Example.com:8080"),
            Some(HostPort {
                host: name("example.com"),
                port: Some(8080)
            })
        );
        assert_eq!(h("example.com:").map(|hp| hp.port), Some(None));
        assert_eq!(h("[::1]:80").map(|hp| hp.port), Some(Some(80)));
        for bad in [
            "",
            ":80",
            "example.com:99999",
            "[::1",
            "a b",
            "[v1.x]",
            "x:8a",
        ] {
            assert_eq!(h(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn same_origin_normalises_default_ports_case_and_ipv6() {
        let same = |origin: &str, host: &str| {
            let origin = parse_origin(origin.as_bytes()).unwrap();
            origin.is_on(&parse_host_port(host.as_bytes()).unwrap())
        };
        // (origin, Host, same?)
        let table = [
            ("http://example.com", "example.com", true),
            ("http://example.com", "example.com:80", true),
            ("http://example.com:80", "example.com", true),
            ("ws://example.com", "example.com:80", true),
            ("https://example.com", "example.com", true),
            ("https://example.com", "example.com:443", true),
            ("https://example.com:443", "example.com", true),
            ("wss://example.com", "example.com:443", true),
            ("http://EXAMPLE.com", "example.COM", true),
            ("http://127.0.0.1:9001", "127.0.0.1:9001", true),
            ("http://[::1]:9001", "[0::1]:9001", true),
            ("https://[2001:DB8::7]", "[2001:db8::7]:443", true),
            // The scheme is not compared, only host and port (a TLS-ending proxy).
            ("https://example.com:8080", "example.com:8080", true),
            ("http://example.com", "example.com:443", false),
            ("https://example.com", "example.com:80", false),
            ("http://example.com:8080", "example.com", false),
            ("http://example.com", "example.com:8080", false),
            ("http://example.com", "example.com.", false),
            ("http://evil.example.com", "example.com", false),
            ("http://example.com.evil", "example.com", false),
            ("http://127.0.0.1:9001", "localhost:9001", false),
            ("http://[::1]:9001", "127.0.0.1:9001", false),
            ("http://127.0.0.1:9001", "127.0.0.1:9002", false),
            // Not a web scheme: never the server's own.
            ("chrome-extension://example.com", "example.com", false),
            ("ftp://example.com:80", "example.com:80", false),
        ];
        for (origin, host, expected) in table {
            assert_eq!(same(origin, host), expected, "{origin} on {host}");
        }
    }
}
