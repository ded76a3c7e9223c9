//! The echo example's HTTP side, over real sockets: a plain `GET` on its WebSocket path gets
//! `426 Upgrade Required` with a hint (exact bytes), while every path still upgrades and echoes,
//! and `/`, `/debug`, `/metrics` and `/healthz` are served.

#[path = "../examples/echo/main.rs"]
#[allow(dead_code)]
mod echo;

mod common;

use std::io::Write;

use common::*;
use tungstenite::Message;
use wsreactor::Server;

/// The echo example as `cargo run --example echo` configures it, on a free port.
fn start_echo() -> Server {
    let mut config = echo::flags::parse_config(&[]).expect("the echo's defaults");
    config.addr = "127.0.0.1:0".parse().expect("literal address");
    config.workers = 2;
    Server::builder()
        .config(config.clone())
        .build(echo::Echo::new(&config))
        .expect("server starts")
}

/// `GET path` on a fresh connection: the head without its `Date`, and the body.
fn get(server: &Server, path: &str, extra: &str) -> (String, Vec<u8>) {
    let mut stream = raw(server.local_addr());
    let request = format!("GET {path} HTTP/1.1\r\nHost: echo.test:9001\r\n{extra}\r\n");
    stream.write_all(request.as_bytes()).expect("write");
    let (head, body) = read_http_response(&mut stream).expect("a response");
    (without_date(&head), body)
}

#[test]
fn a_plain_get_on_the_websocket_path_gets_426_with_a_hint() {
    let server = start_echo();
    let hint = "this is a WebSocket endpoint: connect with ws://echo.test:9001/ws\n";
    let expected_head = |connection: &str| {
        format!(
            "HTTP/1.1 426 Upgrade Required\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Upgrade: websocket\r\nConnection: {connection}\r\nSec-WebSocket-Version: 13\r\n\
             Content-Length: {}\r\n\r\n",
            hint.len()
        )
    };
    let (head, body) = get(&server, "/ws", "");
    assert_eq!(head, expected_head("Upgrade"));
    assert_eq!(String::from_utf8_lossy(&body), hint);
    // A client that asks to close: one Connection field with both options, never two fields.
    let (head, _) = get(&server, "/ws", "Connection: close\r\n");
    assert_eq!(head, expected_head("Upgrade, close"));
    // The query does not matter; another path is still a plain 404.
    let (head, _) = get(&server, "/ws?x=1", "");
    assert!(
        head.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
        "{head}"
    );
    let (head, _) = get(&server, "/nope", "");
    assert!(head.starts_with("HTTP/1.1 404 Not Found\r\n"), "{head}");
    server.shutdown().expect("clean shutdown");
}

#[test]
fn every_path_still_upgrades_and_the_pages_are_served() {
    let server = start_echo();
    let addr = server.local_addr();
    for path in ["/ws", "/", "/anything"] {
        let mut client = connect_path(addr, path);
        client.send(Message::text("hi")).expect("send");
        assert_eq!(client.read().expect("echo"), Message::text("hi"), "{path}");
        client.close(None).expect("close");
    }
    for (path, status, content) in [
        ("/", "200 OK", "text/html"),
        ("/debug", "200 OK", "text/html"),
        ("/metrics", "200 OK", "text/plain"),
        ("/healthz", "200 OK", "text/plain"),
    ] {
        let (head, body) = get(&server, path, "");
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{path}: {head}"
        );
        assert!(
            head.contains(&format!("Content-Type: {content}")),
            "{path}: {head}"
        );
        assert!(!body.is_empty(), "{path}");
    }
    server.shutdown().expect("clean shutdown");
}

/// The compression flags: on by default in the echo, `--compression=false` turns it off (a
/// switch takes its value after `=`), and a level past 9 is refused when the server is built.
#[test]
fn compression_flags() {
    let args = |list: &[&str]| list.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let defaults = echo::flags::parse_config(&[]).expect("defaults");
    assert!(defaults.compression);
    assert_eq!(defaults.compression_threshold, 1024);
    assert_eq!(defaults.compression_level, 1);
    let off = echo::flags::parse_config(&args(&["--compression=false"])).expect("off");
    assert!(!off.compression);
    let tuned = echo::flags::parse_config(&args(&[
        "--compression-threshold",
        "0",
        "--compression-level",
        "6",
    ]))
    .expect("tuned");
    assert_eq!(
        (tuned.compression_threshold, tuned.compression_level),
        (0, 6)
    );
    assert!(
        echo::flags::parse_config(&args(&["--compression", "false"])).is_err(),
        "a switch does not take a separate value"
    );
    let too_high =
        echo::flags::parse_config(&args(&["--compression-level", "10"])).expect("parses");
    let err = too_high
        .validate()
        .expect_err("level 10 is refused")
        .to_string();
    assert!(err.contains("compression_level"), "{err}");
}

/// The monitoring reserve's flags: its defaults, both set, and a zero timeout refused when the
/// server is built.
#[test]
fn monitoring_reserve_flags() {
    let args = |list: &[&str]| list.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let defaults = echo::flags::parse_config(&[]).expect("defaults");
    assert_eq!(defaults.monitoring_reserve, 8);
    assert_eq!(
        defaults.monitoring_timeout,
        std::time::Duration::from_secs(2)
    );
    let tuned = echo::flags::parse_config(&args(&[
        "--monitoring-reserve",
        "2",
        "--monitoring-timeout-ms=500",
    ]))
    .expect("tuned");
    assert_eq!(
        (tuned.monitoring_reserve, tuned.monitoring_timeout),
        (2, std::time::Duration::from_millis(500))
    );
    let zero = echo::flags::parse_config(&args(&["--monitoring-timeout-ms", "0"])).expect("parses");
    let err = zero.validate().expect_err("refused").to_string();
    assert!(err.contains("monitoring_timeout"), "{err}");
}
