//! The server side of the WebSocket opening handshake (RFC 6455 §4.2).
//!
//! A parsed [`Request`] enters [`check_upgrade`], which says whether it is a plain HTTP request,
//! a valid upgrade (yielding the client's key, offered subprotocols and how its origin passed the
//! origin check), or an upgrade attempt to refuse (an [`HttpError`] to answer with: a broken
//! handshake, or an origin the policy does not allow). [`switching_protocols`] then builds the 101
//! response that the worker encodes before the session hands the connection to the WebSocket layer.

use super::error::HttpError;
use super::origin::{OriginCheck, UpgradeOrigin, check_origin};
use super::request::{Request, Version};
use super::response::Response;
use super::token;

/// What a valid WebSocket upgrade request asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeRequest {
    /// The `Sec-WebSocket-Key` value (trimmed), input to the `Sec-WebSocket-Accept` hash.
    pub key: String,
    /// The subprotocols offered in `Sec-WebSocket-Protocol`, in the client's order of preference.
    pub protocols: Vec<String>,
    /// How the request's `Origin` passed the origin check.
    pub origin: UpgradeOrigin,
}

/// Is `key` base64 for exactly 16 bytes: 22 alphabet characters followed by `==`?
/// (Non-zero trailing bits in the 22nd character are tolerated, as lenient decoders do.)
fn is_base64_16_bytes(key: &[u8]) -> bool {
    let is_alphabet = |b: &u8| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/';
    match key.split_at_checked(22) {
        Some((data, b"==")) => data.iter().all(is_alphabet),
        _ => false,
    }
}

/// Classifies a request per RFC 6455 §4.2.1:
/// - `Ok(None)`: not a WebSocket upgrade at all (no `Upgrade` header containing the token
///   "websocket", case-insensitive); treat it as a plain HTTP request.
/// - `Err(HttpError::BadRequest)`: an upgrade attempt that is not GET, is HTTP/1.0, lacks the
///   `upgrade` token in `Connection`, or lacks a single valid `Sec-WebSocket-Key`.
/// - `Err(HttpError::UpgradeRequired)` (426): `Sec-WebSocket-Version` missing or not 13.
/// - `Err(HttpError::OriginRefused)` (403): a well-formed upgrade whose `Origin` the `origins`
///   check refuses ([`check_origin`]): checked last, so a broken handshake gets its own status.
/// - `Ok(Some(_))` otherwise; `protocols` are the comma-separated tokens of all
///   `Sec-WebSocket-Protocol` headers, trimmed, in order.
pub fn check_upgrade(
    request: &Request,
    origins: &OriginCheck<'_>,
) -> Result<Option<UpgradeRequest>, HttpError> {
    // §4.2.1 item 3: "An |Upgrade| header field containing the value "websocket", treated as an
    // ASCII case-insensitive value."
    if !request.has_token("upgrade", "websocket") {
        return Ok(None);
    }
    // §4.2.1 item 1: "An HTTP/1.1 or higher GET request". §4.2.1: "If the server, while reading
    // the handshake, finds that the client did not send a handshake that matches the
    // description below ..., the server MUST stop processing the client's handshake and return
    // an HTTP response with an appropriate error code (such as 400 Bad Request)."
    if request.method() != "GET" {
        return Err(HttpError::BadRequest("WebSocket upgrade must use GET"));
    }
    if request.version() != Version::Http11 {
        return Err(HttpError::BadRequest("WebSocket upgrade requires HTTP/1.1"));
    }
    // §4.2.1 item 4: "A |Connection| header field that includes the token "Upgrade", treated
    // as an ASCII case-insensitive value."
    if !request.has_token("connection", "upgrade") {
        return Err(HttpError::BadRequest(
            "Connection header lacks the upgrade token",
        ));
    }
    let key = handshake_key(request)?;
    check_version(request)?;
    let protocols = offered_protocols(request)?;
    // RFC 6455 §10.2: "Servers that are not intended to process input from any web page but only
    // for certain sites SHOULD verify the |Origin| field is an origin they expect. If the origin
    // indicated is unacceptable to the server, then it SHOULD respond to the WebSocket handshake
    // with a reply containing HTTP 403 Forbidden status code."
    let origin = check_origin(request, origins).map_err(HttpError::OriginRefused)?;
    Ok(Some(UpgradeRequest {
        // The key passed the base64 check, so it is ASCII.
        key: String::from_utf8_lossy(key).into_owned(),
        protocols,
        origin,
    }))
}

/// The request's one `Sec-WebSocket-Key`, trimmed, if it is valid.
fn handshake_key(request: &Request) -> Result<&[u8], HttpError> {
    // §4.2.1 item 5: "A |Sec-WebSocket-Key| header field with a base64-encoded value that, when
    // decoded, is 16 bytes in length." (§11.3.1: it "MUST NOT appear more than once".)
    let mut keys = request.headers_all("sec-websocket-key");
    let key = match (keys.next(), keys.next()) {
        (Some(key), None) => token::trim_ows(key),
        (None, _) => return Err(HttpError::BadRequest("missing Sec-WebSocket-Key")),
        (Some(_), Some(_)) => return Err(HttpError::BadRequest("repeated Sec-WebSocket-Key")),
    };
    if !is_base64_16_bytes(key) {
        return Err(HttpError::BadRequest("invalid Sec-WebSocket-Key"));
    }
    Ok(key)
}

/// Does the request ask for version 13 of the protocol, and that one alone?
fn check_version(request: &Request) -> Result<(), HttpError> {
    // §4.2.1 item 6: "A |Sec-WebSocket-Version| header field, with a value of 13."
    // §4.2.2: otherwise the server "MUST abort the WebSocket handshake ... and instead send an
    // appropriate HTTP error code (such as 426 Upgrade Required)".
    let mut versions = request
        .headers_all("sec-websocket-version")
        .flat_map(token::list_elements);
    if !matches!((versions.next(), versions.next()), (Some(b"13"), None)) {
        return Err(HttpError::UpgradeRequired);
    }
    Ok(())
}

/// The subprotocols the client offers, in its order: the elements of every
/// `Sec-WebSocket-Protocol` field.
fn offered_protocols(request: &Request) -> Result<Vec<String>, HttpError> {
    // §4.2.1 item 8 (optional): "A |Sec-WebSocket-Protocol| header field, with a list of values
    // indicating which protocols the client would like to speak, ordered by preference."
    request
        .headers_all("sec-websocket-protocol")
        .flat_map(token::list_elements)
        .map(|p| {
            std::str::from_utf8(p)
                .map(str::to_owned)
                .map_err(|_| HttpError::BadRequest("invalid Sec-WebSocket-Protocol"))
        })
        .collect()
}

/// The 101 Switching Protocols response (RFC 6455 §4.2.2 item 5): `Upgrade: websocket`,
/// `Connection: Upgrade`, `Sec-WebSocket-Accept: derive_accept_key(key)`,
/// `Sec-WebSocket-Protocol: p` if `protocol` is `Some(p)`, then the `extra` headers.
/// Encode it with `keep_alive = true` so no `Connection: close` is added.
pub fn switching_protocols(
    key: &str,
    protocol: Option<&str>,
    extra: &[(String, String)],
) -> Response {
    let mut response = Response::new(101)
        .with_header("Upgrade", "websocket")
        .with_header("Connection", "Upgrade")
        .with_header(
            "Sec-WebSocket-Accept",
            tungstenite::handshake::derive_accept_key(key.as_bytes()),
        );
    if let Some(protocol) = protocol {
        response = response.with_header("Sec-WebSocket-Protocol", protocol);
    }
    for (name, value) in extra {
        response = response.with_header(name.as_str(), value.as_str());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    /// A valid upgrade request with `overrides` replacing (or, with value `None`, removing)
    /// the default headers of the same name.
    fn upgrade(method: &str, version: Version, overrides: &[(&str, Option<&str>)]) -> Request {
        let defaults = [
            ("Host", "example.com"),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", KEY),
            ("Sec-WebSocket-Version", "13"),
        ];
        let mut b = Request::builder(method, "/chat").version(version);
        for (name, value) in defaults {
            if !overrides.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                b = b.header(name, value);
            }
        }
        for (name, value) in overrides {
            if let Some(value) = value {
                b = b.header(*name, *value);
            }
        }
        b.build()
    }

    fn ok(protocols: &[&str]) -> Result<Option<UpgradeRequest>, HttpError> {
        Ok(Some(UpgradeRequest {
            key: KEY.to_owned(),
            protocols: protocols.iter().map(|p| p.to_string()).collect(),
            origin: UpgradeOrigin::Absent,
        }))
    }

    /// A request (method, version, header overrides) and how it is classified.
    type Case<'a> = (
        (&'a str, Version, &'a [(&'a str, Option<&'a str>)]),
        Result<Option<UpgradeRequest>, HttpError>,
    );

    fn check_table(table: &[Case<'_>]) {
        for ((method, version, overrides), expected) in table {
            let request = upgrade(method, *version, overrides);
            assert_eq!(
                &check_upgrade(&request, &OriginCheck::DEFAULT),
                expected,
                "{method} {version:?} {overrides:?}"
            );
        }
    }

    #[test]
    fn upgrades_and_plain_requests() {
        use Version::*;
        check_table(&[
            (("GET", Http11, &[]), ok(&[])),
            (
                (
                    "GET",
                    Http11,
                    &[("Connection", Some("keep-alive, Upgrade"))],
                ),
                ok(&[]),
            ),
            (("GET", Http11, &[("Upgrade", Some("WebSocket"))]), ok(&[])),
            (
                (
                    "GET",
                    Http11,
                    &[("Sec-WebSocket-Key", Some(" dGhlIHNhbXBsZSBub25jZQ== "))],
                ),
                ok(&[]),
            ),
            (
                (
                    "GET",
                    Http11,
                    &[("Sec-WebSocket-Protocol", Some("chat, superchat"))],
                ),
                ok(&["chat", "superchat"]),
            ),
            (("GET", Http11, &[("Upgrade", None)]), Ok(None)),
            (("GET", Http11, &[("Upgrade", Some("h2c"))]), Ok(None)),
        ]);
    }

    #[test]
    fn broken_handshakes_are_refused() {
        use Version::*;
        let bad = |why| Err(HttpError::BadRequest(why));
        check_table(&[
            (("POST", Http11, &[]), bad("WebSocket upgrade must use GET")),
            (
                ("GET", Http10, &[]),
                bad("WebSocket upgrade requires HTTP/1.1"),
            ),
            (
                ("GET", Http11, &[("Connection", None)]),
                bad("Connection header lacks the upgrade token"),
            ),
            (
                ("GET", Http11, &[("Connection", Some("keep-alive"))]),
                bad("Connection header lacks the upgrade token"),
            ),
            (
                ("GET", Http11, &[("Sec-WebSocket-Version", Some("8"))]),
                Err(HttpError::UpgradeRequired),
            ),
            (
                ("GET", Http11, &[("Sec-WebSocket-Version", None)]),
                Err(HttpError::UpgradeRequired),
            ),
            (
                ("GET", Http11, &[("Sec-WebSocket-Version", Some("13, 8"))]),
                Err(HttpError::UpgradeRequired),
            ),
        ]);
    }

    #[test]
    fn missing_and_invalid_keys_are_refused() {
        let table: &[(Option<&str>, &str)] = &[
            (None, "missing Sec-WebSocket-Key"),
            (Some("dGhlIHNhbXBsZQ=="), "invalid Sec-WebSocket-Key"),
            (
                Some("dGhlIHNhbXBsZSBub25jZ!=="),
                "invalid Sec-WebSocket-Key",
            ),
            (
                Some("dGhlIHNhbXBsZSBub25jZQ=A"),
                "invalid Sec-WebSocket-Key",
            ),
            (
                Some("dGhlIHNhbXBsZSBub25jZQ==="),
                "invalid Sec-WebSocket-Key",
            ),
        ];
        for &(key, why) in table {
            let request = upgrade("GET", Version::Http11, &[("Sec-WebSocket-Key", key)]);
            assert_eq!(
                check_upgrade(&request, &OriginCheck::DEFAULT),
                Err(HttpError::BadRequest(why)),
                "{key:?}"
            );
        }
    }

    #[test]
    fn repeated_key_and_multiple_protocol_headers() {
        let r2 = Request::builder("GET", "/")
            .header("Upgrade", "websocket")
            .header("Connection", "Upgrade")
            .header("Sec-WebSocket-Key", KEY)
            .header("Sec-WebSocket-Key", KEY)
            .header("Sec-WebSocket-Version", "13")
            .build();
        assert_eq!(
            check_upgrade(&r2, &OriginCheck::DEFAULT),
            Err(HttpError::BadRequest("repeated Sec-WebSocket-Key"))
        );
        let r3 = Request::builder("GET", "/")
            .header("Upgrade", "websocket")
            .header("Connection", "Upgrade")
            .header("Sec-WebSocket-Key", KEY)
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Protocol", "a ,b")
            .header("Sec-WebSocket-Protocol", "c")
            .build();
        assert_eq!(
            check_upgrade(&r3, &OriginCheck::DEFAULT)
                .unwrap()
                .unwrap()
                .protocols,
            ["a", "b", "c"]
        );
    }

    #[test]
    fn origin_is_checked_last() {
        use crate::http::origin::{OriginPolicy, OriginRefusal};
        use Version::Http11;
        let evil = ("Origin", Some("https://evil.example"));
        let refused = Err(HttpError::OriginRefused(OriginRefusal::NotAllowed));
        let default = OriginCheck::DEFAULT;
        assert_eq!(
            check_upgrade(&upgrade("GET", Http11, &[evil]), &default),
            refused
        );
        // A broken handshake gets its own status, whatever its origin.
        let broken = upgrade("GET", Http11, &[evil, ("Sec-WebSocket-Version", Some("8"))]);
        assert_eq!(
            check_upgrade(&broken, &default),
            Err(HttpError::UpgradeRequired)
        );
        // A plain request is not an upgrade: no origin check (CORS is the handler's).
        let plain = upgrade("GET", Http11, &[evil, ("Upgrade", None)]);
        assert_eq!(check_upgrade(&plain, &default), Ok(None));
        // The page's own origin (Host example.com), and an allowed one.
        let own = upgrade("GET", Http11, &[("Origin", Some("https://example.com"))]);
        let accepted = check_upgrade(&own, &default).unwrap().unwrap();
        assert_eq!(
            accepted.origin,
            UpgradeOrigin::SameOrigin("https://example.com".into())
        );
        let policy = OriginPolicy::allow(["https://evil.example"]);
        let allowing = OriginCheck {
            policy: &policy,
            ..default
        };
        let listed = check_upgrade(&upgrade("GET", Http11, &[evil]), &allowing);
        assert_eq!(
            listed.unwrap().unwrap().origin,
            UpgradeOrigin::Listed {
                origin: "https://evil.example".into(),
                pattern: "https://evil.example".into(),
            }
        );
    }

    #[test]
    fn rfc6455_accept_key_in_101_bytes() {
        let mut out = Vec::new();
        switching_protocols(KEY, Some("chat"), &[("X-Extra".into(), "1".into())]).encode_dated(
            &mut out,
            Version::Http11,
            true,
            false,
            b"Tue, 01 Dec 2026 22:00:43 GMT",
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 101 Switching Protocols\r\nDate: Tue, 01 Dec 2026 22:00:43 GMT\r\n\
             Upgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
             Sec-WebSocket-Protocol: chat\r\nX-Extra: 1\r\n\r\n"
        );
        let plain = switching_protocols(KEY, None, &[]);
        assert_eq!(plain.header("sec-websocket-protocol"), None);
        assert_eq!(plain.status(), 101);
    }

    #[test]
    fn version_8_gets_426_with_version_header() {
        let request = upgrade(
            "GET",
            Version::Http11,
            &[("Sec-WebSocket-Version", Some("8"))],
        );
        let err = check_upgrade(&request, &OriginCheck::DEFAULT).unwrap_err();
        assert_eq!(err.status(), 426);
        let mut out = Vec::new();
        err.to_response()
            .encode(&mut out, Version::Http11, false, false);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nSec-WebSocket-Version: 13\r\n"), "{text}");
        assert!(text.contains("\r\nUpgrade: websocket\r\n"), "{text}");
        // One Connection field with both options (RFC 9110 §7.8 and §9.6).
        assert!(
            text.contains("\r\nConnection: Upgrade, close\r\n"),
            "{text}"
        );
        assert_eq!(text.matches("Connection:").count(), 1, "{text}");
    }
}
