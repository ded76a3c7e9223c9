//! The exact bytes `Response::encode` writes, and its rules on framing fields.

use super::*;

/// The fixed date the exact-bytes tests encode with.
const DATE: &str = "Tue, 01 Dec 2026 22:00:43 GMT";

#[test]
fn decimals_are_written_as_to_string_writes_them() {
    for n in [
        0,
        1,
        9,
        10,
        99,
        100,
        204,
        999,
        65_536,
        1_000_000_007,
        usize::MAX,
    ] {
        let mut out = b"x".to_vec();
        push_decimal(&mut out, n);
        assert_eq!(out, format!("x{n}").into_bytes());
    }
}

fn encode(r: &Response, version: Version, keep_alive: bool, head_only: bool) -> String {
    let mut out = Vec::new();
    r.encode_dated(&mut out, version, keep_alive, head_only, DATE.as_bytes());
    String::from_utf8(out).unwrap()
}

#[test]
fn exact_bytes_table() {
    use Version::*;
    let hello = Response::text(200, "hello");
    let ct = "Content-Type: text/plain; charset=utf-8\r\n";
    let table = [
        (
            &hello,
            Http11,
            true,
            false,
            format!("HTTP/1.1 200 OK\r\nDate: {DATE}\r\n{ct}Content-Length: 5\r\n\r\nhello"),
        ),
        (
            &hello,
            Http11,
            false,
            false,
            format!(
                "HTTP/1.1 200 OK\r\nDate: {DATE}\r\n{ct}Content-Length: 5\r\nConnection: close\r\n\r\nhello"
            ),
        ),
        (
            &hello,
            Http10,
            true,
            false,
            format!(
                "HTTP/1.1 200 OK\r\nDate: {DATE}\r\n{ct}Content-Length: 5\r\nConnection: keep-alive\r\n\r\nhello"
            ),
        ),
        (
            &hello,
            Http10,
            false,
            false,
            format!(
                "HTTP/1.1 200 OK\r\nDate: {DATE}\r\n{ct}Content-Length: 5\r\nConnection: close\r\n\r\nhello"
            ),
        ),
        // HEAD: same headers including Content-Length, no body.
        (
            &hello,
            Http11,
            true,
            true,
            format!("HTTP/1.1 200 OK\r\nDate: {DATE}\r\n{ct}Content-Length: 5\r\n\r\n"),
        ),
    ];
    for (resp, version, keep_alive, head_only, expected) in table {
        assert_eq!(encode(resp, version, keep_alive, head_only), expected);
    }
}

#[test]
fn bodiless_statuses_have_no_content_length() {
    for status in [101, 100, 204, 304] {
        let r = Response::new(status)
            .with_header("X", "y")
            .with_body("ignored");
        assert_eq!(
            encode(&r, Version::Http11, true, false),
            format!(
                "HTTP/1.1 {status} {}\r\nDate: {DATE}\r\nX: y\r\n\r\n",
                reason_phrase(status)
            )
        );
    }
}

#[test]
fn user_framing_headers_are_replaced() {
    let r = Response::new(200)
        .with_header("Content-Length", "999")
        .with_header("Transfer-Encoding", "chunked")
        .with_body("ab");
    assert_eq!(
        encode(&r, Version::Http11, true, false),
        format!("HTTP/1.1 200 OK\r\nDate: {DATE}\r\nContent-Length: 2\r\n\r\nab")
    );
}

#[test]
fn header_injection_is_dropped() {
    let r = Response::new(200)
        .with_header("X-Ok", "fine")
        .with_header("X-Evil", "a\r\nSet-Cookie: pwned=1")
        .with_header("X-Evil2", "a\nb")
        .with_header("X-Nul", "a\0b")
        .with_header("Bad\r\nName", "v")
        .with_header("Bad Name", "v")
        .with_header("", "v");
    assert_eq!(r.header("x-evil"), None);
    let wire = encode(&r, Version::Http11, true, false);
    assert_eq!(
        wire,
        format!("HTTP/1.1 200 OK\r\nDate: {DATE}\r\nX-Ok: fine\r\nContent-Length: 0\r\n\r\n")
    );
    assert!(!wire.contains("Set-Cookie"));
}

#[test]
fn constructors_and_accessors() {
    let r = Response::html(201, "<p>");
    assert_eq!(r.status(), 201);
    assert_eq!(r.header("CONTENT-TYPE"), Some("text/html; charset=utf-8"));
    assert_eq!(r.body(), b"<p>");
    let nf = Response::not_found();
    assert_eq!(nf.status(), 404);
    assert!(nf.header("content-type").unwrap().starts_with("text/plain"));
    let out = encode(&Response::new(1000), Version::Http11, true, false);
    assert!(out.starts_with("HTTP/1.1 500 Internal Server Error\r\n"));
    assert_eq!(reason_phrase(431), "Request Header Fields Too Large");
    assert_eq!(reason_phrase(426), "Upgrade Required");
    assert_eq!(reason_phrase(299), "Unknown");
}

#[test]
fn the_connection_option_joins_the_handlers_connection_field() {
    let r = Response::new(426)
        .with_header("Upgrade", "websocket")
        .with_header("Connection", "Upgrade");
    let d = format!("Date: {DATE}\r\n");
    let table = [
        (Version::Http11, true, "Connection: Upgrade\r\n"),
        (Version::Http11, false, "Connection: Upgrade, close\r\n"),
        (Version::Http10, true, "Connection: Upgrade, keep-alive\r\n"),
    ];
    for (version, keep_alive, connection) in table {
        assert_eq!(
            encode(&r, version, keep_alive, false),
            format!(
                "HTTP/1.1 426 Upgrade Required\r\n{d}Upgrade: websocket\r\n{connection}\
                 Content-Length: 0\r\n\r\n"
            )
        );
    }
    let empty = Response::new(200).with_header("Connection", " ");
    let wire = encode(&empty, Version::Http11, false, false);
    assert!(wire.contains("\r\nConnection: close\r\n"), "{wire}");
    assert_eq!(wire.matches("Connection").count(), 1, "{wire}");
}

#[test]
fn user_connection_close_is_not_duplicated() {
    let r = Response::new(200).with_header("Connection", "close");
    let wire = encode(&r, Version::Http11, false, false);
    assert_eq!(wire.matches("Connection").count(), 1);
}

#[test]
fn every_response_carries_the_current_date_once() {
    let mut out = Vec::new();
    Response::text(404, "no").encode(&mut out, Version::Http11, true, false);
    let wire = String::from_utf8(out).unwrap();
    let dates: Vec<&str> = wire.lines().filter(|l| l.starts_with("Date: ")).collect();
    assert_eq!(dates.len(), 1, "{wire}");
    assert_eq!(
        dates[0].len(),
        "Date: ".len() + super::date::IMF_FIXDATE_LEN
    );
    assert!(dates[0].ends_with(" GMT"), "{wire}");
    assert!(
        wire.starts_with("HTTP/1.1 404 Not Found\r\nDate: "),
        "{wire}"
    );
}

#[test]
fn a_handler_date_is_sent_instead_of_ours() {
    let r = Response::new(204).with_header("date", "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(
        encode(&r, Version::Http11, true, false),
        "HTTP/1.1 204 No Content\r\ndate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n"
    );
}

/// Encoding reserves the wire form's length first: `out` grows once, whatever the status, the
/// fields, the framing (the option joined to a handler's `Connection` field is the longest).
#[test]
fn encoding_grows_the_output_once() {
    let mut longest_reason = 0;
    for status in 100..=999u16 {
        longest_reason = longest_reason.max(reason_phrase(status).len());
        let responses = [
            Response::new(status),
            Response::html(status, "<p>a page</p>"),
            Response::text(status, "x".repeat(300))
                .with_header("Connection", "upgrade")
                .with_header("X-A", "b"),
        ];
        for response in responses {
            for (version, keep_alive, head_only) in [
                (Version::Http11, true, false),
                (Version::Http11, false, true),
                (Version::Http10, true, false),
                (Version::Http10, false, false),
            ] {
                let mut out = Vec::new();
                response.encode(&mut out, version, keep_alive, head_only);
                let bound = response.wire_len_bound(date::IMF_FIXDATE_LEN);
                assert!(out.len() <= bound, "{status}: {} > {bound}", out.len());
                assert_eq!(out.capacity(), bound, "{status}: grown once");
            }
        }
    }
    assert_eq!(longest_reason, "Request Header Fields Too Large".len());
}
