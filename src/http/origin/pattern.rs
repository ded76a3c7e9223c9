//! One entry of an origin allow-list: an exact origin, or every subdomain of a domain.
//!
//! Text enters through [`OriginPattern::new`] (from the configuration) and is parsed once, there;
//! a malformed entry keeps its [`PatternError`], which `Config::validate` reports, so a server
//! never starts with one. On every upgrade the origin check asks [`OriginPattern::matches`] of a
//! parsed [`Origin`]: no allocation, no parsing.

use std::fmt;
use std::net::Ipv6Addr;

use super::serialized::{Host, Origin, is_scheme, parse_origin};

/// An entry of [`OriginPolicy::Allow`](crate::OriginPolicy::Allow): the pages whose origin it
/// names may open a WebSocket on this server.
///
/// - An exact origin, `scheme://host[:port]` as a browser sends it: `https://app.example.com`,
///   `http://localhost:8080`, `http://[::1]:3000`. Scheme and host are compared ignoring case,
///   the port with the scheme's default filled in (`https://app.example.com:443` is the same
///   entry as `https://app.example.com`).
/// - Every subdomain of a domain, `scheme://*.domain[:port]`: `https://*.example.com` allows
///   `https://app.example.com` and `https://a.b.example.com`, not `https://example.com` itself
///   (list it too if it should be) and not `http://app.example.com` (another scheme) or
///   `https://app.example.com:8443` (another port). The domain has at least two labels:
///   `*.com` would allow every site under a top-level domain.
///
/// Not entries: `null` (sandboxed iframes, `file://` pages and some redirects all send it, so it
/// names no one), `*` (that is [`OriginPolicy::Any`](crate::OriginPolicy::Any)), a path or a
/// trailing `/`, a `*` anywhere else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPattern {
    /// As configured, for messages and for `as_str`.
    text: String,
    parsed: Result<Parsed, PatternError>,
}

/// A pattern, lowercased, with its port filled in (`None`: a scheme without a default port and
/// no port written).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Parsed {
    Exact {
        scheme: String,
        host: OwnedHost,
        port: Option<u16>,
    },
    /// `suffix` is `.domain`, with its leading dot.
    Subdomains {
        scheme: String,
        suffix: String,
        port: Option<u16>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum OwnedHost {
    Name(String),
    Ipv6(Ipv6Addr),
}

/// Why an allow-list entry is not one (`Config::validate` reports it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatternError {
    Null,
    AnyAsEntry,
    Path,
    Wildcard,
    WildcardDomain,
    Malformed,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PatternError::Null => {
                "\"null\" cannot be allowed: sandboxed iframes, file:// pages and redirects all \
                 send it, so it names no one"
            }
            PatternError::AnyAsEntry => {
                "\"*\" is not an entry of a list: use OriginPolicy::Any to accept every origin"
            }
            PatternError::Path => {
                "an origin has no path, not even a trailing '/': scheme://host[:port]"
            }
            PatternError::Wildcard => {
                "a wildcard must be the whole first label of the host: scheme://*.domain[:port]"
            }
            PatternError::WildcardDomain => {
                "*. must be followed by a domain of at least two labels (letters, digits, '-'), \
                 as in https://*.example.com"
            }
            PatternError::Malformed => {
                "not an origin: expected scheme://host[:port], e.g. https://app.example.com"
            }
        })
    }
}

impl OriginPattern {
    /// An allow-list entry from its text (see the type's documentation for the forms). A
    /// malformed one is reported by [`Config::validate`](crate::Config::validate), when the
    /// server is built, and matches nothing.
    pub fn new(text: impl Into<String>) -> OriginPattern {
        let text = text.into();
        let parsed = parse(&text);
        OriginPattern { text, parsed }
    }

    /// The entry as it was configured.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Why the entry is malformed, if it is.
    pub(crate) fn error(&self) -> Option<PatternError> {
        self.parsed.as_ref().err().copied()
    }

    /// Does `origin` fall under this entry?
    pub(crate) fn matches(&self, origin: &Origin<'_>) -> bool {
        let (scheme, port) = match &self.parsed {
            Ok(Parsed::Exact { scheme, port, .. } | Parsed::Subdomains { scheme, port, .. }) => {
                (scheme, *port)
            }
            Err(_) => return false,
        };
        if !origin.scheme.eq_ignore_ascii_case(scheme.as_bytes()) || origin.port() != port {
            return false;
        }
        match (&self.parsed, origin.authority.host) {
            (Ok(Parsed::Exact { host, .. }), origin_host) => match (host, origin_host) {
                (OwnedHost::Name(name), Host::Name(other)) => {
                    name.as_bytes().eq_ignore_ascii_case(other)
                }
                (OwnedHost::Ipv6(address), Host::Ipv6(other)) => *address == other,
                _ => false,
            },
            (Ok(Parsed::Subdomains { suffix, .. }), Host::Name(name)) => {
                is_subdomain(name, suffix.as_bytes())
            }
            _ => false,
        }
    }
}

/// Is `name` one or more labels followed by `suffix` (`.example.com`)? `a.example.com` and
/// `a.b.example.com` are; `example.com`, `.example.com` and `a..example.com` are not.
fn is_subdomain(name: &[u8], suffix: &[u8]) -> bool {
    let Some(split) = name.len().checked_sub(suffix.len()) else {
        return false;
    };
    let (labels, tail) = name.split_at(split);
    tail.eq_ignore_ascii_case(suffix)
        && !labels.is_empty()
        && labels.split(|&b| b == b'.').all(|label| !label.is_empty())
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl From<&str> for OriginPattern {
    fn from(text: &str) -> Self {
        OriginPattern::new(text)
    }
}

impl From<String> for OriginPattern {
    fn from(text: String) -> Self {
        OriginPattern::new(text)
    }
}

fn parse(text: &str) -> Result<Parsed, PatternError> {
    match text {
        "null" => return Err(PatternError::Null),
        "*" => return Err(PatternError::AnyAsEntry),
        _ => {}
    }
    let (scheme, authority) = text.split_once("://").ok_or(PatternError::Malformed)?;
    if !is_scheme(scheme.as_bytes()) {
        return Err(PatternError::Malformed);
    }
    if authority.contains(['/', '?', '#']) {
        return Err(PatternError::Path);
    }
    let scheme_lower = scheme.to_ascii_lowercase();
    if let Some(domain) = authority.strip_prefix("*.") {
        if domain.contains('*') {
            return Err(PatternError::Wildcard);
        }
        // Parse the domain as an origin's authority, for its port and the host's grammar.
        let rebuilt = format!("{scheme}://{domain}");
        let origin = parse_origin(rebuilt.as_bytes()).ok_or(PatternError::WildcardDomain)?;
        let Host::Name(name) = origin.authority.host else {
            return Err(PatternError::WildcardDomain);
        };
        if !is_domain(name) {
            return Err(PatternError::WildcardDomain);
        }
        let suffix = format!(".{}", String::from_utf8_lossy(name).to_ascii_lowercase());
        return Ok(Parsed::Subdomains {
            scheme: scheme_lower,
            suffix,
            port: origin.port(),
        });
    }
    if authority.contains('*') {
        return Err(PatternError::Wildcard);
    }
    let origin = parse_origin(text.as_bytes()).ok_or(PatternError::Malformed)?;
    let host = match origin.authority.host {
        Host::Name(name) => OwnedHost::Name(String::from_utf8_lossy(name).to_ascii_lowercase()),
        Host::Ipv6(address) => OwnedHost::Ipv6(address),
    };
    Ok(Parsed::Exact {
        scheme: scheme_lower,
        host,
        port: origin.port(),
    })
}

/// At least two labels of letters, digits and `-`, the last not all digits (that would be an
/// IPv4 address, which has no subdomains).
fn is_domain(name: &[u8]) -> bool {
    let labels: Vec<&[u8]> = name.split(|&b| b == b'.').collect();
    let last = labels.last().copied().unwrap_or_default();
    labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && !last.iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, origin: &str) -> bool {
        let pattern = OriginPattern::new(pattern);
        assert_eq!(pattern.error(), None, "{pattern}");
        pattern.matches(&parse_origin(origin.as_bytes()).unwrap())
    }

    #[test]
    fn exact_entries() {
        let table = [
            ("https://app.example.com", "https://app.example.com", true),
            ("https://app.example.com", "https://APP.example.COM", true),
            ("HTTPS://App.Example.com", "https://app.example.com", true),
            (
                "https://app.example.com",
                "https://app.example.com:443",
                true,
            ),
            (
                "https://app.example.com:443",
                "https://app.example.com",
                true,
            ),
            ("http://localhost:8080", "http://localhost:8080", true),
            ("http://[::1]:3000", "http://[0:0::1]:3000", true),
            ("chrome-extension://abc", "chrome-extension://abc", true),
            ("https://app.example.com", "http://app.example.com", false),
            ("https://app.example.com", "wss://app.example.com", false),
            (
                "https://app.example.com",
                "https://app.example.com:8443",
                false,
            ),
            ("http://localhost:8080", "http://localhost", false),
            (
                "https://app.example.com",
                "https://x.app.example.com",
                false,
            ),
            (
                "https://app.example.com",
                "https://app.example.com.evil",
                false,
            ),
            ("http://[::1]:3000", "http://127.0.0.1:3000", false),
            ("chrome-extension://abc", "chrome-extension://abc:1", false),
        ];
        for (pattern, origin, expected) in table {
            assert_eq!(matches(pattern, origin), expected, "{pattern} vs {origin}");
        }
    }

    #[test]
    fn wildcard_entries_need_one_label_or_more() {
        let table = [
            ("https://*.example.com", "https://app.example.com", true),
            ("https://*.example.com", "https://a.b.example.com", true),
            ("https://*.example.com", "https://App.EXAMPLE.com", true),
            ("https://*.Example.COM", "https://app.example.com", true),
            ("https://*.example.com", "https://app.example.com:443", true),
            (
                "https://*.example.com:8443",
                "https://app.example.com:8443",
                true,
            ),
            ("https://*.example.com", "https://example.com", false),
            ("https://*.example.com", "https://.example.com", false),
            ("https://*.example.com", "https://a..example.com", false),
            ("https://*.example.com", "https://appexample.com", false),
            (
                "https://*.example.com",
                "https://app.example.com.evil",
                false,
            ),
            ("https://*.example.com", "https://evil-example.com", false),
            ("https://*.example.com", "http://app.example.com", false),
            (
                "https://*.example.com",
                "https://app.example.com:8443",
                false,
            ),
            (
                "https://*.example.com:8443",
                "https://app.example.com",
                false,
            ),
            ("https://*.example.com", "https://[::1]", false),
        ];
        for (pattern, origin, expected) in table {
            assert_eq!(matches(pattern, origin), expected, "{pattern} vs {origin}");
        }
    }

    #[test]
    fn malformed_entries_say_why_and_match_nothing() {
        use PatternError::*;
        let table = [
            ("null", Null),
            ("*", AnyAsEntry),
            ("https://app.example.com/", Path),
            ("https://app.example.com/chat", Path),
            ("https://app.example.com?x", Path),
            ("https://*", Wildcard),
            ("https://*.com", WildcardDomain),
            ("https://*.", WildcardDomain),
            ("https://*.example..com", WildcardDomain),
            ("https://*.1.2.3", WildcardDomain),
            ("https://*.[::1]", WildcardDomain),
            ("https://*.ex_ample.com", WildcardDomain),
            ("https://*.example.com:99999", WildcardDomain),
            ("https://*.*.example.com", Wildcard),
            ("https://app.*.example.com", Wildcard),
            ("https://*example.com", Wildcard),
            ("*.example.com", Malformed),
            ("", Malformed),
            ("app.example.com", Malformed),
            ("https://", Malformed),
            ("https://app.example.com:", Malformed),
            ("https://user@app.example.com", Malformed),
            (" https://app.example.com", Malformed),
            ("https://app example.com", Malformed),
            ("ht!tp://app.example.com", Malformed),
            ("https://bücher.example", Malformed),
        ];
        let origin = parse_origin(b"https://app.example.com").unwrap();
        for (text, error) in table {
            let pattern = OriginPattern::new(text);
            assert_eq!(pattern.error(), Some(error), "{text:?}");
            assert!(!pattern.matches(&origin), "{text:?}");
            assert_eq!(pattern.as_str(), text);
        }
        assert!(PatternError::Null.to_string().contains("null"));
    }
}
