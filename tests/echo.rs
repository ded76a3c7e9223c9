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

/// Every numeric flag of the echo at 0, 1 and `u64::MAX`: the flag is refused (it names
/// itself), or the configuration is refused by `Config::validate` (naming the field), or the
/// echo is built with it, answers a request and shuts down without a panic. With
/// `--message-timeout-ms 18446744073709551615` it used to panic its loop on the first message
/// in part (see also the binary below).
#[test]
fn every_flag_at_its_extremes_is_refused_or_serves() {
    use std::io::Read;
    let usage = echo::flags::usage();
    let names: Vec<&str> = usage
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("--"))
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert!(names.len() > 40, "{names:?}");
    let mut served = 0;
    for name in &names {
        for value in ["0", "1", "18446744073709551615"] {
            let args = [format!("--{name}={value}")];
            let mut config = match echo::flags::parse_config(&args) {
                Ok(config) => config,
                Err(why) => {
                    assert!(why.starts_with(&format!("{name}: ")), "{why}");
                    continue;
                }
            };
            config.addr = "127.0.0.1:0".parse().expect("literal address");
            let built = Server::builder()
                .config(config.clone())
                .build(echo::Echo::new(&config));
            let server = match built {
                Ok(server) => server,
                Err(wsreactor::Error::InvalidConfig(why)) => {
                    let field = match name.trim_end_matches("-ms") {
                        "loops" => "event_loops".into(),
                        "allow-origin" => "allowed_origins".into(),
                        "trust-forwarded-host" => "forwarded_host".into(),
                        flag => flag.replace('-', "_"),
                    };
                    let named = why
                        .strip_prefix(&field)
                        .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with(':'));
                    assert!(named, "--{name} {value}: {why}");
                    continue;
                }
                Err(err) => panic!("--{name} {value}: {err}"),
            };
            let mut stream = raw(server.local_addr());
            stream
                .set_read_timeout(Some(std::time::Duration::from_secs(1)))
                .expect("timeout");
            let _ =
                stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let _ = stream.read_to_end(&mut Vec::new());
            drop(stream);
            server
                .shutdown()
                .unwrap_or_else(|err| panic!("--{name} {value}: {err}"));
            served += 1;
        }
    }
    eprintln!("{served} flag values served");
    assert!(served > 60, "{served}");
}

/// The echo binary `cargo test` built next to this test's own.
fn echo_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    dir.join("examples").join("echo")
}

/// The binary: a flag that makes a configuration the server cannot have is refused with a
/// clear error and exit status 1 (not an abort in the allocator); a flag that means "forever"
/// is served (a message in part with `--message-timeout-ms` at its maximum, then a ping,
/// answered).
#[test]
fn the_echo_binary_refuses_what_cannot_work_and_serves_forever() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let refused = Command::new(echo_binary())
        .args([
            "--addr",
            "127.0.0.1:0",
            "--job-queue-capacity",
            "18446744073709551615",
        ])
        .output()
        .expect("the echo example runs");
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("echo: invalid configuration: job_queue_capacity is too large: "),
        "{stderr}"
    );

    let mut child = Command::new(echo_binary())
        .args(["--addr", "127.0.0.1:0", "--loops", "1"])
        .args(["--message-timeout-ms", "18446744073709551615"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the echo example starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the address line");
    let addr = line
        .strip_prefix("echo server listening on ws://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("{line:?}"))
        .parse()
        .expect("an address");
    let mut ws = raw_websocket(addr);
    ws.write_all(&masked(false, 0x1, b"hel"))
        .expect("a first fragment");
    ws.write_all(&masked(true, 0x9, b"p")).expect("a ping");
    let (fin, opcode, payload) = read_frame(&mut ws).expect("a pong");
    assert_eq!((fin, opcode, payload.as_slice()), (true, 0xA, &b"p"[..]));
    ws.write_all(&masked(true, 0x0, b"lo")).expect("the rest");
    let (fin, opcode, payload) = read_frame(&mut ws).expect("the echo");
    assert_eq!(
        (fin, opcode, payload.as_slice()),
        (true, 0x1, &b"hello"[..])
    );
    ws.write_all(&masked(true, 0x8, &1000u16.to_be_bytes()))
        .expect("a close frame");
    assert_eq!(read_close_code(&mut ws), Some(1000));
    assert!(reaches_eof(&mut ws));
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let status = child.wait().expect("the echo exits");
    assert!(status.success(), "{status}");
}
