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

/// Reads the next data message within `timeout`, or `None` if none came.
fn read_within(client: &mut Client, timeout: std::time::Duration) -> Option<Message> {
    client
        .get_mut()
        .set_read_timeout(Some(timeout))
        .expect("timeout");
    loop {
        match client.read() {
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => return Some(m),
            Ok(_) => continue,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None;
            }
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// `/sub/TOPIC` and `/pub/TOPIC` (the fan-out benchmark's paths): two subscribers get every
/// message of one publisher, in order; the publisher and a subscriber of another topic get
/// nothing; in worker and inline mode.
#[test]
fn sub_and_pub_paths_relay_a_topic() {
    use std::time::{Duration, Instant};
    for inline in [false, true] {
        let mut config = echo::flags::parse_config(&[]).expect("the echo's defaults");
        config.addr = "127.0.0.1:0".parse().expect("literal address");
        config.workers = 2;
        config.inline_handlers = inline;
        let server = Server::builder()
            .config(config.clone())
            .build(echo::Echo::new(&config))
            .expect("server starts");
        let addr = server.local_addr();
        let mut subs = [
            connect_path(addr, "/sub/news"),
            connect_path(addr, "/sub/news"),
        ];
        let mut other = connect_path(addr, "/sub/sport");
        let mut publisher = connect_path(addr, "/pub/news");
        // A subscription takes effect when the loop applies on_open's reply: publish warm-ups
        // until both subscribers have one.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut warm = [false, false];
        while warm != [true, true] {
            assert!(Instant::now() < deadline, "subscribers never got a warm-up");
            publisher.send(Message::text("warm")).expect("send");
            for (sub, got) in subs.iter_mut().zip(warm.iter_mut()) {
                *got |= read_within(sub, Duration::from_millis(50)).is_some();
            }
        }
        let sent: Vec<Message> = (0..5)
            .map(|i| Message::text(format!("m{i}")))
            .chain([Message::binary(vec![0u8, 1, 2, 255])])
            .collect();
        for m in &sent {
            publisher.send(m.clone()).expect("send");
        }
        for sub in subs.iter_mut() {
            let mut got = Vec::new();
            while got.len() < sent.len() {
                let m = read_within(sub, Duration::from_secs(5)).expect("a published message");
                if m != Message::text("warm") {
                    got.push(m);
                }
            }
            assert_eq!(got, sent, "inline {inline}");
        }
        assert_eq!(
            read_within(&mut publisher, Duration::from_millis(100)),
            None,
            "the publisher gets no echo"
        );
        assert_eq!(
            read_within(&mut other, Duration::from_millis(100)),
            None,
            "another topic's subscriber gets nothing"
        );
        // A subscriber's own messages go nowhere; /ws still echoes.
        subs[0].send(Message::text("ignored")).expect("send");
        assert_eq!(read_within(&mut subs[1], Duration::from_millis(100)), None);
        let mut plain = connect(addr);
        echo_text(&mut plain, "still an echo");
        server.shutdown().expect("clean shutdown");
    }
}
