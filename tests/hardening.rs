//! Production hardening over real sockets: keepalive pings and pong timeouts, maximum lifetime,
//! write stalls (a client that never reads), HTTP idle and request timeouts, the close-handshake
//! timeout, the Prometheus and health endpoints, a blocking handler, resets and half-closes,
//! connect-and-drop churn, and `max_connections` with WebSockets.
//!
//! Every assertion is on exact bytes, close codes or the server's own counters; time passes only
//! while the tests poll for a condition with a deadline.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::*;
use tungstenite::Message as TMessage;
use tungstenite::protocol::frame::coding::CloseCode as TCloseCode;
use wsreactor::{CloseCode, CloseInfo, ConnId, Context, Handler, Message, ServerHandle};

const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// Echoes, and records the close code of every `on_close`.
#[derive(Default, Clone)]
struct CloseRecorder {
    closes: Arc<Mutex<Vec<u16>>>,
}

impl CloseRecorder {
    /// Waits until `n` connections have had `on_close`, and returns their codes.
    fn wait_closes(&self, n: usize) -> Vec<u16> {
        wait_until(&format!("{n} on_close calls"), || {
            self.closes.lock().unwrap().len() >= n
        });
        self.closes.lock().unwrap().clone()
    }
}

impl Handler for CloseRecorder {
    type Session = ();

    fn on_message(&self, ctx: &mut Context<'_>, message: Message) {
        ctx.send(message);
    }

    fn on_close(&self, _conn: ConnId, _session: (), close: &CloseInfo, _server: &ServerHandle) {
        self.closes.lock().unwrap().push(close.code.as_u16());
    }
}

/// Reads the next frame that is not a keepalive ping (answering pings with a masked pong).
fn read_data_frame(stream: &mut TcpStream) -> (bool, u8, Vec<u8>) {
    loop {
        let (fin, opcode, payload) = read_frame(stream).expect("a frame");
        if opcode == PING {
            stream.write_all(&masked(true, PONG, &payload)).unwrap();
            continue;
        }
        return (fin, opcode, payload);
    }
}

// 1. WebSocket keepalive.

#[test]
fn keepalive_pings_and_drops_peers_that_do_not_answer() {
    let mut config = config();
    config.ping_interval = Some(Duration::from_millis(200));
    config.pong_timeout = Duration::from_millis(300);
    let recorder = CloseRecorder::default();
    let server = start(config, recorder.clone());
    let addr = server.local_addr();
    let handle = server.handle();

    let answering = raw_websocket(addr);
    let mut silent = raw_websocket(addr);

    // The answering client, on its own thread so its pongs are never late: it answers every
    // ping with a masked pong until told to stop (after at least two pings), then checks that
    // the connection still echoes.
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let answerer = thread::spawn(move || {
        let mut stream = answering;
        let mut pings = 0;
        loop {
            let (fin, opcode, payload) = read_frame(&mut stream).expect("a ping");
            assert_eq!((fin, opcode, payload.as_slice()), (true, PING, &b""[..]));
            pings += 1;
            stream.write_all(&masked(true, PONG, &payload)).unwrap();
            if pings >= 2 && stop_rx.try_recv().is_ok() {
                break;
            }
        }
        stream
            .write_all(&masked(true, TEXT, b"still here"))
            .unwrap();
        let echoed = read_data_frame(&mut stream);
        (stream, pings, echoed)
    });

    // The silent one gets its ping too, never answers, and is dropped after pong_timeout.
    let (fin, opcode, payload) = read_frame(&mut silent).unwrap();
    assert_eq!((fin, opcode, payload.as_slice()), (true, PING, &b""[..]));
    assert!(handle.stats().pings_sent >= 1);
    assert!(reaches_eof(&mut silent), "silent client still connected");
    let stats = wait_for_stats(&handle, "the silent client is dropped", |s| {
        s.timeouts_pong == 1 && s.connections_open == 1
    });
    assert_eq!(stats.websocket_open, 1, "{stats:?}");
    assert_eq!(stats.closed_timeout, 1, "{stats:?}");
    assert_eq!(recorder.wait_closes(1), vec![1006]);

    // The answering client outlived it, got at least two pings, and still echoes.
    stop_tx.send(()).unwrap();
    let (mut answering, pings, echoed) = answerer.join().unwrap();
    assert!(pings >= 2, "{pings}");
    assert_eq!(echoed, (true, TEXT, b"still here".to_vec()));
    let stats = handle.stats();
    assert!(stats.pings_sent >= 3, "{stats:?}");
    assert_eq!(stats.timeouts_pong, 1, "{stats:?}");
    assert_eq!(stats.websocket_open, 1, "{stats:?}");
    assert_eq!(stats.messages_in, 1, "{stats:?}");

    // Clean close of the survivor.
    answering
        .write_all(&masked(true, CLOSE, &1000u16.to_be_bytes()))
        .unwrap();
    assert_eq!(read_close_code(&mut answering), Some(1000));
    assert!(reaches_eof(&mut answering));
    drop(answering);
    assert_eq!(recorder.wait_closes(2), vec![1006, 1000]);
    wait_for_stats(&handle, "all closed", |s| s.connections_open == 0);
    assert_eq!(handle.stats().timeouts_pong, 1);
    server.shutdown().unwrap();
}

// 2. max_lifetime.

#[test]
fn max_lifetime_closes_with_1001() {
    let mut config = config();
    config.ping_interval = None;
    config.max_lifetime = Some(Duration::from_millis(300));
    let server = start(config, echo());
    let handle = server.handle();
    let mut client = connect(server.local_addr());
    echo_text(&mut client, "before");
    match client.read().expect("a close frame") {
        TMessage::Close(Some(frame)) => {
            assert_eq!(frame.code, TCloseCode::Away);
            assert_eq!(frame.reason.as_str(), "connection lifetime exceeded");
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
    // tungstenite answers the close; the server then ends TCP.
    match client.read() {
        Err(tungstenite::Error::ConnectionClosed) => {}
        other => panic!("after close: {other:?}"),
    }
    // The server waits for our FIN after the handshake (or for its close_timeout).
    drop(client);
    let stats = wait_for_stats(&handle, "closed", |s| s.connections_open == 0);
    assert_eq!(stats.timeouts_lifetime, 1, "{stats:?}");
    assert_eq!(stats.closed_server, 1, "{stats:?}");
    assert_eq!(stats.pings_sent, 0, "{stats:?}");
    assert_eq!(stats.websocket_open, 0, "{stats:?}");
    server.shutdown().unwrap();
}

/// The slow-body attack: a frame header announcing 1 MiB, then a few bytes and nothing more
/// (or a trickle: it is not silent, so no ping would catch it). `message_timeout` closes it
/// with `1008`, while the same server goes on echoing for everyone else.
#[test]
fn a_message_that_never_finishes_arriving_is_closed_with_1008() {
    let mut config = config();
    config.message_timeout = Duration::from_millis(400);
    let server = start(config, echo());
    let handle = server.handle();
    let mut slow = raw_websocket(server.local_addr());
    let mut header = vec![0x82, 0xFF, 0, 0, 0, 0, 0, 0x10, 0, 0];
    header.extend_from_slice(&[1, 2, 3, 4]);
    slow.write_all(&header).unwrap();
    slow.write_all(&[0; 10]).unwrap();
    let started = std::time::Instant::now();
    let mut client = connect(server.local_addr());
    echo_text(&mut client, "still served");
    assert_eq!(read_close_code(&mut slow), Some(1008));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    echo_text(&mut client, "still served after");
    let stats = wait_for_stats(&handle, "the slow one closed", |s| s.timeouts_message == 1);
    assert_eq!(stats.closed_protocol_error, 0, "{stats:?}");
    close_client(client);
    server.shutdown().unwrap();
}

// 3. Write stall: a client that sends as fast as it can and never reads.

#[test]
fn client_that_never_reads_is_bounded_and_dropped() {
    const MESSAGE: usize = 64 * 1024;
    const MESSAGES: usize = 1_000; // 64 MB: far more than any kernel buffering on loopback
    let mut config = config();
    config.ping_interval = None;
    config.write_stall_timeout = Duration::from_millis(300);
    config.max_outbound_bytes = 64 * 1024;
    // A job carries at most max_pending_bytes of messages (plus the one that crossed it), so
    // one reply is at most that much echo.
    config.max_pending_bytes = 64 * 1024;
    config.max_message_size = 128 * 1024;
    // Output may be up to max_outbound_bytes when a job is dispatched; its reply adds at most
    // max_pending_bytes + one message (+ frame headers, far less than a read buffer).
    let bound =
        (config.max_outbound_bytes * 2 + config.max_message_size + config.read_buffer_size) as u64;
    let max_outbound = config.max_outbound_bytes as u64;
    let server = start(config, echo());
    let handle = server.handle();

    let mut stream = raw_websocket(server.local_addr());
    // A small receive window, so the server's output stops at once instead of filling an
    // autotuned (tens of MB) loopback buffer first.
    socket2::SockRef::from(&stream)
        .set_recv_buffer_size(16 * 1024)
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let writer = thread::spawn(move || {
        let frame = masked(true, BINARY, &vec![0xAB; MESSAGE]);
        let mut sent = 0usize;
        for _ in 0..MESSAGES {
            if stream.write_all(&frame).is_err() {
                break; // the server dropped us
            }
            sent += 1;
        }
        sent
    });

    let mut max_seen = 0u64;
    let mut samples = 0u64;
    let mut stats = handle.stats();
    wait_until("the stalled client is dropped", || {
        stats = handle.stats();
        max_seen = max_seen.max(stats.pending_outbound_bytes);
        samples += 1;
        assert!(
            stats.pending_outbound_bytes <= bound,
            "pending outbound {} > bound {bound}: {stats:?}",
            stats.pending_outbound_bytes
        );
        stats.timeouts_write_stall >= 1
    });
    let sent = writer.join().unwrap();
    assert!(
        sent < MESSAGES,
        "the writer was never stopped ({sent} messages)"
    );
    assert!(
        max_seen >= max_outbound,
        "output never reached max_outbound_bytes ({max_seen} in {samples} samples)"
    );
    assert_eq!(stats.timeouts_write_stall, 1, "{stats:?}");
    // Counted after the timeout, in the same loop step: a snapshot may fall between the two.
    let stats = wait_for_stats(&handle, "everything freed", |s| {
        s.connections_open == 0 && s.websocket_open == 0
    });
    assert!(stats.closed_timeout >= 1, "{stats:?}");
    assert_eq!(stats.pending_outbound_bytes, 0, "{stats:?}");
    assert_eq!(stats.timeouts_write_stall, 1, "{stats:?}");
    assert!(
        stats.messages_in < MESSAGES as u64,
        "the server read everything: no backpressure ({stats:?})"
    );
    server.shutdown().unwrap();
}

/// Regression: a reply that fills the output to `max_outbound_bytes` holds back the next job;
/// when the loop's own flush then drained it, nothing drove the connection again (its messages
/// were already decoded, its unread bytes already reported by edge-triggered readiness), so a
/// client pipelining large messages stalled forever (or until a keepalive ping).
#[test]
fn pipelined_messages_larger_than_max_outbound_do_not_stall() {
    const MESSAGE: usize = 64 * 1024;
    const MESSAGES: usize = 24;
    let mut config = config();
    config.ping_interval = None;
    config.max_outbound_bytes = MESSAGE;
    config.max_pending_bytes = MESSAGE;
    let server = start(config, echo());
    let handle = server.handle();
    let mut stream = raw_websocket(server.local_addr());
    let mut writer = stream.try_clone().unwrap();
    let sender = thread::spawn(move || {
        for i in 0..MESSAGES {
            let payload = vec![i as u8; MESSAGE];
            writer.write_all(&masked(true, BINARY, &payload)).unwrap();
        }
    });
    for i in 0..MESSAGES {
        let (fin, opcode, payload) = read_frame(&mut stream).unwrap();
        assert_eq!(
            (fin, opcode, payload.len()),
            (true, BINARY, MESSAGE),
            "message {i}"
        );
        assert!(payload.iter().all(|&b| b == i as u8), "message {i}");
    }
    sender.join().unwrap();
    let stats = handle.stats();
    assert_eq!(stats.messages_in, MESSAGES as u64, "{stats:?}");
    assert_eq!(stats.messages_out, MESSAGES as u64, "{stats:?}");
    stream
        .write_all(&masked(true, CLOSE, &1000u16.to_be_bytes()))
        .unwrap();
    assert_eq!(read_close_code(&mut stream), Some(1000));
    server.shutdown().unwrap();
}

// 4. Keep-alive idle vs request timeout.

#[test]
fn idle_keep_alive_connection_is_closed_without_a_response() {
    let mut config = config();
    config.keep_alive_timeout = Duration::from_millis(200);
    config.request_timeout = Duration::from_secs(5);
    let server = start(config, echo());
    let handle = server.handle();
    let mut stream = raw(server.local_addr());
    stream
        .write_all(b"GET /once HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (head, body) = read_http_response(&mut stream).unwrap();
    assert_eq!(status(&head), 404, "{head}");
    assert_eq!(body, b"404 Not Found\n");
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"", "no 408 for an idle keep-alive connection");
    let stats = wait_for_stats(&handle, "closed", |s| s.connections_open == 0);
    assert_eq!(stats.timeouts_idle, 1, "{stats:?}");
    assert_eq!(stats.timeouts_request, 0, "{stats:?}");
    assert_eq!(stats.closed_timeout, 1, "{stats:?}");
    assert_eq!(stats.http_requests, 1, "{stats:?}");
    server.shutdown().unwrap();
}

#[test]
fn silent_new_connection_hits_the_request_timeout() {
    let mut config = config();
    config.keep_alive_timeout = Duration::from_secs(5);
    config.request_timeout = Duration::from_millis(200);
    let server = start(config, echo());
    let handle = server.handle();
    let mut stream = raw(server.local_addr());
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    assert_eq!(
        rest, b"",
        "nothing is sent to a connection that sent nothing"
    );
    let stats = wait_for_stats(&handle, "closed", |s| s.connections_open == 0);
    assert_eq!(stats.timeouts_request, 1, "{stats:?}");
    assert_eq!(stats.timeouts_idle, 0, "{stats:?}");
    assert_eq!(stats.closed_timeout, 1, "{stats:?}");
    assert_eq!(stats.http_requests, 0, "{stats:?}");
    server.shutdown().unwrap();
}

// 5. Close-handshake timeout.

#[test]
fn close_handshake_times_out_when_the_peer_never_answers() {
    let mut config = config();
    config.close_timeout = Duration::from_millis(300);
    config.ping_interval = None;
    let closer = |ctx: &mut Context<'_>, _msg: Message| ctx.close(CloseCode::Normal, "bye");
    let server = start(config, closer);
    let handle = server.handle();
    let mut stream = raw_websocket(server.local_addr());
    stream.write_all(&masked(true, TEXT, b"hello")).unwrap();
    let (fin, opcode, payload) = read_frame(&mut stream).unwrap();
    assert_eq!((fin, opcode), (true, CLOSE));
    assert_eq!(payload, b"\x03\xe8bye");
    // Never answer; keep reading: the server gives up after close_timeout.
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"");
    let stats = wait_for_stats(&handle, "closed", |s| s.connections_open == 0);
    assert_eq!(stats.timeouts_close, 1, "{stats:?}");
    assert_eq!(stats.closed_timeout, 1, "{stats:?}");
    assert_eq!(stats.websocket_open, 0, "{stats:?}");
    server.shutdown().unwrap();
}

// 6. /metrics and /healthz.

/// Checks `name[{label="value"}] integer` with name and label made of `[a-z_]`.
fn is_sample_line(line: &str) -> bool {
    let lower = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    let Some((series, value)) = line.split_once(' ') else {
        return false;
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, Some(rest)),
        None => (series, None),
    };
    let Some(suffix) = name.strip_prefix("wsreactor_") else {
        return false;
    };
    if !lower(suffix) {
        return false;
    }
    match labels {
        None => true,
        Some(rest) => {
            let Some(inner) = rest.strip_suffix('}') else {
                return false;
            };
            let Some((label, quoted)) = inner.split_once('=') else {
                return false;
            };
            let Some(value) = quoted.strip_prefix('"').and_then(|q| q.strip_suffix('"')) else {
                return false;
            };
            lower(label) && lower(value)
        }
    }
}

#[test]
fn sample_line_checker_rejects_bad_lines() {
    assert!(is_sample_line("wsreactor_a_total 1"));
    assert!(is_sample_line("wsreactor_a{reason=\"peer_gone\"} 0"));
    for bad in [
        "wsreactor_a 1.5",
        "wsreactor_A 1",
        "other_a 1",
        "wsreactor_a{reason=\"x\"",
        "wsreactor_a{reason=x} 1",
        "wsreactor_a  1",
        "wsreactor_a",
        "wsreactor_ 1",
    ] {
        assert!(!is_sample_line(bad), "{bad}");
    }
}

fn header_value(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

#[test]
fn metrics_and_health_endpoints() {
    let mut config = config();
    config.metrics_path = Some("/metrics".into());
    config.health_path = Some("/healthz".into());
    let server = start(config, echo());
    let addr = server.local_addr();
    let mut client = connect(addr);
    echo_text(&mut client, "one");

    let mut stream = raw(addr);
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (head, body) = read_http_response(&mut stream).unwrap();
    assert_eq!(status(&head), 200, "{head}");
    assert_eq!(
        header_value(&head, "content-type").as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    let text = String::from_utf8(body).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.contains(&"wsreactor_messages_received_total 1"),
        "{text}"
    );
    assert!(
        lines.contains(&"# TYPE wsreactor_connections_open gauge"),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("wsreactor_connections_closed_total{reason=\"clean\"} ")),
        "{text}"
    );
    // Two connections open: the WebSocket and this one.
    assert!(lines.contains(&"wsreactor_connections_open 2"), "{text}");
    let samples: Vec<&&str> = lines.iter().filter(|l| !l.starts_with('#')).collect();
    assert!(samples.len() > 20, "{text}");
    for line in samples {
        assert!(is_sample_line(line), "bad sample line {line:?}");
    }

    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (head, body) = read_http_response(&mut stream).unwrap();
    assert_eq!(status(&head), 200, "{head}");
    assert_eq!(body, b"ok\n");
    // `http_requests` counts every parsed plain request, built-in answers included.
    assert_eq!(server.handle().stats().http_requests, 2);
    close_client(client);
    server.shutdown().unwrap();

    // Unset (the default): the paths go to the handler (its default 404).
    let server = start(common::config(), echo());
    let mut stream = raw(server.local_addr());
    for path in ["/metrics", "/healthz"] {
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        let (head, body) = read_http_response(&mut stream).unwrap();
        assert_eq!(status(&head), 404, "{path}: {head}");
        assert_eq!(body, b"404 Not Found\n");
    }
    assert_eq!(server.handle().stats().http_requests, 2);
    server.shutdown().unwrap();
}

// 7. A handler that blocks does not stop other connections.

#[test]
fn blocked_handler_does_not_stop_other_connections() {
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    let handler = move |ctx: &mut Context<'_>, msg: Message| {
        if msg.as_bytes() == b"block" {
            release_rx
                .lock()
                .unwrap()
                .recv_timeout(DEADLINE)
                .expect("released");
        }
        ctx.send(msg);
    };
    let mut config = config();
    config.workers = 2;
    let server = start(config, handler);
    let addr = server.local_addr();
    let handle = server.handle();

    let mut a = connect(addr);
    let mut b = connect(addr);
    let mut c = connect(addr);
    a.send(TMessage::text("block")).unwrap();
    wait_for_stats(&handle, "one worker blocked", |s| s.busy_workers == 1);
    for i in 0..20 {
        echo_text(&mut b, &format!("b{i}"));
        echo_text(&mut c, &format!("c{i}"));
    }
    assert_eq!(handle.stats().busy_workers, 1, "A's handler still blocked");
    release_tx.send(()).unwrap();
    assert_eq!(a.read().unwrap(), TMessage::text("block"));
    assert_eq!(handle.stats().messages_in, 41);
    for client in [a, b, c] {
        close_client(client);
    }
    server.shutdown().unwrap();
}

// 8. Connection reset mid-frame.

#[test]
fn reset_in_the_middle_of_a_frame() {
    let recorder = CloseRecorder::default();
    let server = start(config(), recorder.clone());
    let addr = server.local_addr();
    let handle = server.handle();
    let mut stream = raw_websocket(addr);
    let frame = masked(true, TEXT, &[b'x'; 100]);
    stream.write_all(&frame[..frame.len() / 2]).unwrap();
    wait_for_stats(&handle, "the half frame is read", |s| {
        s.bytes_in >= (upgrade_request("/ws").len() + frame.len() / 2) as u64
    });
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(stream); // RST
    let stats = wait_for_stats(&handle, "the reset connection is gone", |s| {
        s.connections_open == 0
    });
    assert_eq!(stats.closed_peer_gone, 1, "{stats:?}");
    assert_eq!(stats.websocket_open, 0, "{stats:?}");
    assert_eq!(stats.messages_in, 0, "{stats:?}");
    assert_eq!(stats.pending_outbound_bytes, 0, "{stats:?}");
    assert_eq!(recorder.wait_closes(1), vec![1006]);

    let mut client = connect(addr);
    echo_text(&mut client, "after the reset");
    close_client(client);
    server.shutdown().unwrap();
}

// 9. WebSocket half-close.

#[test]
fn half_closed_websocket_gets_its_echoes_then_eof() {
    let recorder = CloseRecorder::default();
    let server = start(config(), recorder.clone());
    let handle = server.handle();
    let mut stream = raw_websocket(server.local_addr());
    for text in ["one", "two", "three"] {
        stream
            .write_all(&masked(true, TEXT, text.as_bytes()))
            .unwrap();
    }
    stream.shutdown(Shutdown::Write).unwrap();
    for text in ["one", "two", "three"] {
        assert_eq!(
            read_frame(&mut stream).unwrap(),
            (true, TEXT, text.as_bytes().to_vec())
        );
    }
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"", "no close frame after a half-close");
    assert_eq!(recorder.wait_closes(1), vec![1006]);
    let stats = wait_for_stats(&handle, "closed", |s| s.connections_open == 0);
    assert_eq!(stats.messages_in, 3, "{stats:?}");
    assert_eq!(stats.messages_out, 3, "{stats:?}");
    assert_eq!(stats.closed_peer_gone, 1, "{stats:?}");
    server.shutdown().unwrap();
}

// 10. Thousands of WebSocket connect-and-drop cycles.

#[test]
fn websocket_connect_and_drop_churn() {
    const CYCLES: u64 = 1_000;
    let server = start(config(), echo());
    let addr = server.local_addr();
    let handle = server.handle();
    for i in 0..CYCLES {
        drop(connect(addr));
        // Let the server catch up every 50 cycles, so at most 50 are ever open together.
        if i % 50 == 49 {
            wait_for_stats(&handle, "the batch is closed", |s| {
                s.upgrades == i + 1 && s.connections_open == 0
            });
        }
    }
    let stats = wait_for_stats(&handle, "every connection closed", |s| {
        s.connections_open == 0 && s.websocket_open == 0 && s.upgrades == CYCLES
    });
    assert_eq!(stats.upgrades, CYCLES, "{stats:?}");
    assert_eq!(stats.connections_accepted, CYCLES, "{stats:?}");
    assert_eq!(stats.pending_outbound_bytes, 0, "{stats:?}");
    assert!(stats.slab_capacity < 100, "{stats:?}");
    let mut client = connect(addr);
    echo_text(&mut client, "still serving");
    close_client(client);
    server.shutdown().unwrap();
}

// 11. max_connections with WebSockets.

#[test]
fn max_connections_with_websockets() {
    let mut config = config();
    config.max_connections = 3;
    let server = start(config, echo());
    let addr = server.local_addr();
    let handle = server.handle();
    let mut clients: Vec<Client> = (0..3).map(|_| connect(addr)).collect();
    wait_for_stats(&handle, "three open", |s| {
        s.connections_open == 3 && s.websocket_open == 3
    });

    let mut fourth = raw(addr);
    let (head, body) = read_http_response(&mut fourth).unwrap();
    assert!(
        head.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{head}"
    );
    assert_eq!(header_value(&head, "retry-after").as_deref(), Some("1"));
    assert_eq!(body, b"too many connections\n");
    assert!(reaches_eof(&mut fourth));
    let stats = handle.stats();
    assert_eq!(stats.connections_rejected, 1, "{stats:?}");
    assert_eq!(stats.connections_open, 3, "{stats:?}");

    for (i, client) in clients.iter_mut().enumerate() {
        echo_text(client, &format!("client {i}"));
    }
    for client in clients {
        close_client(client);
    }
    server.shutdown().unwrap();
}
