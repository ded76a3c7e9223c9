//! The origin check of a WebSocket upgrade: which pages may open a WebSocket here.
//!
//! A valid upgrade [`Request`] and the configured [`OriginCheck`] enter [`check_origin`]; out
//! comes how the origin was let through ([`UpgradeOrigin`], for `UpgradeOffer::origin`) or why
//! it is refused ([`OriginRefusal`], answered `403` by the loop). It is a pure function of the
//! request's `Origin`, `Host` (or the trusted forwarded host) and the policy.
//!
//! Why: a browser sends a page's cookies and HTTP credentials with a WebSocket upgrade to any
//! site, whichever site the page came from, and the same-origin policy does not apply to
//! WebSockets. Without this check any page a logged-in user visits can open a WebSocket to this
//! server as that user and read the answers (Cross-Site WebSocket Hijacking). The browser tells
//! where the page came from in `Origin`, which page scripts cannot change.

use super::forwarded::{ForwardedHost, forwarded_host};
use super::pattern::OriginPattern;
use super::refusal::OriginRefusal;
use super::serialized::{HostPort, parse_host_port, parse_origin};
use crate::http::request::Request;
use crate::http::token::trim_ows;

/// Which browser pages may open a WebSocket on this server, judged by the `Origin` header of the
/// upgrade request ([`Config::allowed_origins`](crate::Config::allowed_origins)). A request
/// without `Origin` is always accepted: browsers always send it on an upgrade, so it comes from
/// a program (Python, Node, curl), which could send any `Origin` it liked anyway.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OriginPolicy {
    /// Pages of this server only: the origin's host and port are the request's `Host` (or the
    /// trusted forwarded host, [`ForwardedHost`]), the ports with their scheme's default filled
    /// in. `Origin: null` and every other origin get `403`. The default, as gorilla's `Upgrader`
    /// without a `CheckOrigin`.
    #[default]
    SameOrigin,
    /// Pages of this server, and of these origins (exact, or `https://*.example.com` for the
    /// subdomains of a domain: see [`OriginPattern`]). An empty list is `SameOrigin`.
    Allow(Vec<OriginPattern>),
    /// Every page of every site, and `null`: no protection. For a public endpoint that uses no
    /// cookies or HTTP authentication, or a handler that checks the origin itself in
    /// `on_upgrade` ([`UpgradeOffer::origin`](crate::UpgradeOffer::origin) still tells which
    /// requests are same-origin).
    Any,
}

impl OriginPolicy {
    /// [`OriginPolicy::Allow`] from texts: `OriginPolicy::allow(["https://app.example.com"])`.
    pub fn allow<I>(patterns: I) -> OriginPolicy
    where
        I: IntoIterator,
        I::Item: Into<OriginPattern>,
    {
        OriginPolicy::Allow(patterns.into_iter().map(Into::into).collect())
    }

    /// The entries of the allow-list (none for `SameOrigin` and `Any`).
    pub(crate) fn patterns(&self) -> &[OriginPattern] {
        match self {
            OriginPolicy::Allow(patterns) => patterns,
            OriginPolicy::SameOrigin | OriginPolicy::Any => &[],
        }
    }
}

/// What the origin check needs from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct OriginCheck<'a> {
    /// `Config::allowed_origins`.
    pub policy: &'a OriginPolicy,
    /// `Config::forwarded_host`.
    pub forwarded: ForwardedHost,
}

impl OriginCheck<'static> {
    /// The defaults: same origin only, `Host` only.
    pub const DEFAULT: OriginCheck<'static> = OriginCheck {
        policy: &OriginPolicy::SameOrigin,
        forwarded: ForwardedHost::Ignore,
    };
}

/// How the origin check let an upgrade through, as
/// [`UpgradeOffer::origin`](crate::UpgradeOffer::origin) tells the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpgradeOrigin {
    /// No `Origin` header: not a browser page (browsers always send one on an upgrade).
    Absent,
    /// The page is this server's own: its host and port are the request's `Host` (or the
    /// trusted forwarded host). The `Origin` value, as sent.
    SameOrigin(String),
    /// Another site's page, allowed by this entry of [`OriginPolicy::Allow`].
    Listed {
        /// The `Origin` value, as sent.
        origin: String,
        /// The first entry that allows it.
        pattern: OriginPattern,
    },
    /// Another site's page (or `null`, or a value that is not an origin), let through only
    /// because the policy is [`OriginPolicy::Any`]: the handler decides.
    CrossOrigin(String),
}

impl UpgradeOrigin {
    /// The `Origin` header's value, if the request had one.
    pub fn value(&self) -> Option<&str> {
        match self {
            UpgradeOrigin::Absent => None,
            UpgradeOrigin::SameOrigin(origin)
            | UpgradeOrigin::Listed { origin, .. }
            | UpgradeOrigin::CrossOrigin(origin) => Some(origin),
        }
    }
}

/// The origin check. Accepts a request without `Origin`, one from the server's own origin, or
/// one the policy allows; refuses the rest. Never panics, whatever the header bytes.
pub fn check_origin(
    request: &Request,
    check: &OriginCheck<'_>,
) -> Result<UpgradeOrigin, OriginRefusal> {
    let mut fields = request.headers_all("origin");
    let (value, repeated) = match (fields.next(), fields.next()) {
        (None, _) => return Ok(UpgradeOrigin::Absent),
        (Some(value), second) => (trim_ows(value), second.is_some()),
    };
    let text = || String::from_utf8_lossy(value).into_owned();
    let origin = parse_origin(value);
    let host = request_host(request, check.forwarded);
    let same = !repeated && origin.zip(host).is_some_and(|(o, h)| o.is_on(&h));
    if same {
        return Ok(UpgradeOrigin::SameOrigin(text()));
    }
    if matches!(check.policy, OriginPolicy::Any) {
        return Ok(UpgradeOrigin::CrossOrigin(text()));
    }
    if repeated {
        return Err(OriginRefusal::Repeated);
    }
    if value == b"null" {
        return Err(OriginRefusal::Null);
    }
    let origin = origin.ok_or(OriginRefusal::Malformed)?;
    match check.policy.patterns().iter().find(|p| p.matches(&origin)) {
        Some(pattern) => Ok(UpgradeOrigin::Listed {
            origin: text(),
            pattern: pattern.clone(),
        }),
        None => Err(OriginRefusal::NotAllowed),
    }
}

/// The host the client asked for: the trusted forwarded header's if it has one, else `Host`.
/// `None` if that value is not a host (it then matches no origin).
fn request_host(request: &Request, forwarded: ForwardedHost) -> Option<HostPort<'_>> {
    let value =
        forwarded_host(request, forwarded).or_else(|| request.headers_all("host").next())?;
    parse_host_port(trim_ows(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An upgrade request's headers that matter here: `Host` and any others.
    fn request(host: &str, fields: &[(&str, &[u8])]) -> Request {
        let mut builder = Request::builder("GET", "/ws").header("Host", host);
        for (name, value) in fields {
            builder = builder.header(*name, value.to_vec());
        }
        builder.build()
    }

    fn check(request: &Request, policy: &OriginPolicy) -> Result<UpgradeOrigin, OriginRefusal> {
        let check = OriginCheck {
            policy,
            forwarded: ForwardedHost::Ignore,
        };
        check_origin(request, &check)
    }

    fn same(origin: &str) -> Result<UpgradeOrigin, OriginRefusal> {
        Ok(UpgradeOrigin::SameOrigin(origin.to_owned()))
    }

    /// (Host, Origin, expected) under the default policy.
    type Case<'a> = (&'a str, &'a [u8], Result<UpgradeOrigin, OriginRefusal>);

    fn check_same_origin(table: &[Case<'_>]) {
        for (host, origin, expected) in table {
            let request = request(host, &[("Origin", origin)]);
            let checked = check(&request, &OriginPolicy::SameOrigin);
            assert_eq!(&checked, expected, "{host} {origin:?}");
        }
    }

    #[test]
    fn same_origin_by_default() {
        check_same_origin(&[
            (
                "example.com",
                b"http://example.com",
                same("http://example.com"),
            ),
            (
                "example.com",
                b"https://example.com",
                same("https://example.com"),
            ),
            (
                "example.com:443",
                b"https://example.com",
                same("https://example.com"),
            ),
            (
                "example.com:80",
                b" http://EXAMPLE.com ",
                same("http://EXAMPLE.com"),
            ),
            (
                "127.0.0.1:9001",
                b"http://127.0.0.1:9001",
                same("http://127.0.0.1:9001"),
            ),
            (
                "[::1]:9001",
                b"http://[0::1]:9001",
                same("http://[0::1]:9001"),
            ),
        ]);
        let no_origin = request("example.com", &[]);
        let checked = check(&no_origin, &OriginPolicy::SameOrigin);
        assert_eq!(checked, Ok(UpgradeOrigin::Absent));
    }

    #[test]
    fn other_origins_are_refused_by_default() {
        use OriginRefusal::*;
        check_same_origin(&[
            ("example.com", b"https://evil.example", Err(NotAllowed)),
            ("example.com", b"https://example.com:8443", Err(NotAllowed)),
            ("example.com:8080", b"http://example.com", Err(NotAllowed)),
            ("localhost:9001", b"http://127.0.0.1:9001", Err(NotAllowed)),
            // A Host that is not one matches nothing.
            ("", b"http://example.com", Err(NotAllowed)),
        ]);
    }

    #[test]
    fn null_malformed_and_repeated_origins_are_refused() {
        use OriginRefusal::*;
        check_same_origin(&[
            ("example.com", b"null", Err(Null)),
            ("example.com", b"NULL", Err(Malformed)),
            ("example.com", b"", Err(Malformed)),
            ("example.com", b"example.com", Err(Malformed)),
            ("example.com", b"http://example.com/", Err(Malformed)),
            (
                "example.com",
                b"http://example.com http://evil",
                Err(Malformed),
            ),
            ("example.com", b"\xff\x00garbage", Err(Malformed)),
        ]);
        let twice = request(
            "example.com",
            &[
                ("Origin", b"http://example.com"),
                ("Origin", b"http://example.com"),
            ],
        );
        assert_eq!(check(&twice, &OriginPolicy::SameOrigin), Err(Repeated));
    }

    #[test]
    fn allow_list_adds_to_same_origin() {
        let policy = OriginPolicy::allow(["https://app.example.com", "https://*.example.org"]);
        let ok = |host: &str, origin: &str| {
            check(&request(host, &[("Origin", origin.as_bytes())]), &policy)
        };
        assert_eq!(
            ok("api.example.com", "https://api.example.com"),
            same("https://api.example.com")
        );
        assert_eq!(
            ok("api.example.com", "https://app.example.com"),
            Ok(UpgradeOrigin::Listed {
                origin: "https://app.example.com".into(),
                pattern: "https://app.example.com".into(),
            })
        );
        assert_eq!(
            ok("api.example.com", "https://a.b.example.org:443"),
            Ok(UpgradeOrigin::Listed {
                origin: "https://a.b.example.org:443".into(),
                pattern: "https://*.example.org".into(),
            })
        );
        for refused in [
            "https://example.org",
            "http://app.example.com",
            "https://evil.com",
        ] {
            assert_eq!(
                ok("api.example.com", refused),
                Err(OriginRefusal::NotAllowed),
                "{refused}"
            );
        }
        assert_eq!(ok("api.example.com", "null"), Err(OriginRefusal::Null));
        assert_eq!(
            check(
                &request("x", &[("Origin", b"https://app.example.com")]),
                &OriginPolicy::Allow(vec![])
            ),
            Err(OriginRefusal::NotAllowed),
            "an empty list is same-origin only"
        );
    }

    #[test]
    fn any_lets_everything_through_and_still_tells_same_origin() {
        let policy = OriginPolicy::Any;
        let r = |origin: &[u8]| check(&request("example.com", &[("Origin", origin)]), &policy);
        assert_eq!(r(b"http://example.com"), same("http://example.com"));
        for other in [&b"https://evil.example"[..], b"null", b"garbage", b"\xff"] {
            let text = String::from_utf8_lossy(other).into_owned();
            assert_eq!(r(other), Ok(UpgradeOrigin::CrossOrigin(text)));
        }
        let twice = request(
            "example.com",
            &[("Origin", b"http://a"), ("Origin", b"http://b")],
        );
        assert_eq!(
            check(&twice, &policy),
            Ok(UpgradeOrigin::CrossOrigin("http://a".into()))
        );
    }

    #[test]
    fn forwarded_host_only_when_trusted() {
        let proxied = request(
            "127.0.0.1:9001",
            &[
                ("Origin", b"https://app.example.com"),
                ("X-Forwarded-Host", b"app.example.com"),
                (
                    "Forwarded",
                    b"for=192.0.2.1;host=app.example.com;proto=https",
                ),
            ],
        );
        let policy = OriginPolicy::SameOrigin;
        let with = |forwarded| {
            check_origin(
                &proxied,
                &OriginCheck {
                    policy: &policy,
                    forwarded,
                },
            )
        };
        assert_eq!(with(ForwardedHost::Ignore), Err(OriginRefusal::NotAllowed));
        assert_eq!(
            with(ForwardedHost::XForwardedHost),
            same("https://app.example.com")
        );
        assert_eq!(
            with(ForwardedHost::Forwarded),
            same("https://app.example.com")
        );
        // Trusted but absent: Host is used.
        let direct = request("app.example.com", &[("Origin", b"https://app.example.com")]);
        let trusted = OriginCheck {
            policy: &policy,
            forwarded: ForwardedHost::XForwardedHost,
        };
        assert_eq!(
            check_origin(&direct, &trusted),
            same("https://app.example.com")
        );
        // Trusted and present but not a host: no fallback to Host.
        let bad = request(
            "app.example.com",
            &[
                ("Origin", b"https://app.example.com"),
                ("X-Forwarded-Host", b"a b"),
            ],
        );
        assert_eq!(check_origin(&bad, &trusted), Err(OriginRefusal::NotAllowed));
    }

    #[test]
    fn reasons_are_one_line() {
        use OriginRefusal::*;
        for refusal in [Null, Malformed, Repeated, NotAllowed] {
            let text = refusal.to_string();
            assert!(!text.is_empty() && !text.contains('\n'), "{text}");
        }
    }
}
