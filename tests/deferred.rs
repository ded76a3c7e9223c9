//! Deferred completions over real sockets: a handler call hands its completion to another
//! thread (`Context::defer`), and the connection's next message waits for it; the completion
//! sends, changes the session and is compressed as the handler would be; past
//! `deferred_timeout` the connection is closed with `1011` and a late completion gets
//! `TimedOut`; a completion after the close gets `Closed`, and `on_close` never runs beside a
//! completion; completing twice, inside the call, or dropping every handle are each harmless;
//! a completion's messages are compressed as the connection agreed (a raw client that offers
//! permessage-deflate), and the deferred counters are in the Prometheus text.

mod common;

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::*;
use tungstenite::Message as TMessage;
use tungstenite::protocol::frame::coding::CloseCode as TCloseCode;
use wsreactor::{
    CloseInfo, ConnId, Context, Deferred, DeferredError, Handler, Message, ServerHandle,
};

/// Each connection counts the messages it handled (completions add ten).
#[derive(Debug, Default)]
struct Count(u32);

/// What the test application saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Completed(String),
    Closed(u16, u32),
}

/// `later:X` defers and parks the handle for the test to complete; `now:X` defers and
/// completes inside the call; `drop` defers and drops the handle; `twice` parks two handles
/// on one call; anything else is echoed with the count.
#[derive(Default, Clone)]
struct Backend {
    parked: Arc<Mutex<Vec<Deferred<Count>>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Backend {
    /// Waits until a handle is parked and takes the oldest.
    fn take(&self) -> Deferred<Count> {
        poll_until("a parked deferral", || {
            let mut parked = self.parked.lock().unwrap();
            (!parked.is_empty()).then(|| parked.remove(0))
        })
    }

    /// Completes `deferred` with a reply `done:TEXT`, adding ten to the count.
    fn complete(&self, deferred: Deferred<Count>, text: &str) -> Result<(), DeferredError> {
        let (text, seen) = (text.to_owned(), Arc::clone(&self.seen));
        deferred.complete(move |ctx| {
            ctx.session_mut().0 += 10;
            seen.lock().unwrap().push(Seen::Completed(text.clone()));
            ctx.send(format!("done:{text}:{}", ctx.session().0));
        })
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Handler for Backend {
    type Session = Count;

    fn on_message(&self, ctx: &mut Context<'_, Count>, message: Message) {
        ctx.session_mut().0 += 1;
        let text = String::from_utf8_lossy(message.as_bytes()).into_owned();
        match text.as_str() {
            "drop" => drop(ctx.defer()),
            "twice" => {
                let (first, second) = (ctx.defer(), ctx.defer());
                self.parked.lock().unwrap().extend([first, second]);
            }
            _ if text.starts_with("later:") => {
                ctx.send(format!("deferring:{text}"));
                let deferred = ctx.defer();
                self.parked.lock().unwrap().push(deferred);
            }
            _ if text.starts_with("now:") => {
                let deferred = ctx.defer();
                let result = self.complete(deferred, &text);
                ctx.send(format!("inside:{result:?}"));
            }
            _ => {
                let count = ctx.session().0;
                ctx.send(format!("echo:{text}:{count}"));
            }
        }
    }

    fn on_close(&self, _conn: ConnId, count: Count, close: &CloseInfo, _server: &ServerHandle) {
        let seen = Seen::Closed(close.code.into(), count.0);
        self.seen.lock().unwrap().push(seen);
    }
}

fn text(client: &mut Client) -> String {
    match client.read().expect("a message") {
        TMessage::Text(text) => text.as_str().to_owned(),
        other => panic!("expected text, got {other:?}"),
    }
}

fn send(client: &mut Client, text: &str) {
    client.send(TMessage::text(text)).unwrap();
}

#[test]
fn the_next_message_waits_for_the_completion_which_sends_and_keeps_the_session() {
    let app = Backend::default();
    let server = start(config(), app.clone());
    let mut client = connect(server.local_addr());
    send(&mut client, "later:a");
    send(&mut client, "b");
    send(&mut client, "c");
    assert_eq!(
        text(&mut client),
        "deferring:later:a",
        "sent before deferring: now"
    );
    let deferred = app.take();
    let handle = server.handle();
    // The worker is free: nothing else of this connection ran meanwhile.
    let stats = wait_for_stats(&handle, "the deferral and the messages after", |s| {
        s.deferred_calls == 1 && s.messages_in == 3
    });
    assert_eq!(stats.messages_out, 1, "b and c wait for the completion");
    let completer = thread::spawn({
        let app = app.clone();
        move || app.complete(deferred, "a")
    });
    assert_eq!(completer.join().unwrap(), Ok(()));
    assert_eq!(text(&mut client), "done:a:11");
    assert_eq!(
        text(&mut client),
        "echo:b:12",
        "then the messages that waited"
    );
    assert_eq!(text(&mut client), "echo:c:13");
    close_client(client);
    wait_until("on_close", || app.seen().len() == 2);
    assert_eq!(
        app.seen(),
        [Seen::Completed("a".into()), Seen::Closed(1005, 13)]
    );
    server.shutdown().unwrap();
}

#[test]
fn past_the_deadline_the_connection_closes_with_1011_and_a_late_completion_is_refused() {
    let app = Backend::default();
    let mut config = config();
    config.deferred_timeout = Duration::from_millis(200);
    let server = start(config, app.clone());
    let mut client = connect(server.local_addr());
    send(&mut client, "later:slow");
    assert_eq!(text(&mut client), "deferring:later:slow");
    let deferred = app.take();
    match client.read().expect("a close frame") {
        TMessage::Close(Some(frame)) => {
            assert_eq!(frame.code, TCloseCode::Error);
            assert_eq!(frame.reason.as_str(), "deferred reply timed out");
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
    assert_eq!(app.complete(deferred, "slow"), Err(DeferredError::TimedOut));
    let stats = wait_for_stats(&server.handle(), "the late completion", |s| {
        s.deferred_late == 1
    });
    assert_eq!((stats.deferred_expired, stats.deferred_calls), (1, 1));
    drop(client);
    wait_until("on_close", || !app.seen().is_empty());
    assert_eq!(
        app.seen(),
        [Seen::Closed(1011, 1)],
        "the completion never ran"
    );
    server.shutdown().unwrap();
}

#[test]
fn a_connection_closed_meanwhile_takes_the_call_back_and_on_close_comes_first() {
    let app = Backend::default();
    let server = start(config(), app.clone());
    let mut client = connect(server.local_addr());
    send(&mut client, "later:x");
    assert_eq!(text(&mut client), "deferring:later:x");
    let deferred = app.take();
    server
        .handle()
        .close(deferred.conn(), wsreactor::CloseCode::Normal, "bye")
        .unwrap();
    // The client answers the server's close frame (it sends none of its own first: after the
    // peer's close frame the server would wait for the completion, as for any message before
    // it).
    loop {
        match client.read() {
            Ok(TMessage::Close(frame)) => assert_eq!(frame.unwrap().code, TCloseCode::Normal),
            Ok(other) => panic!("unexpected {other:?}"),
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(err) => panic!("client: {err}"),
        }
    }
    wait_until("on_close", || !app.seen().is_empty());
    assert_eq!(app.complete(deferred, "x"), Err(DeferredError::Closed));
    assert_eq!(app.seen(), [Seen::Closed(1000, 1)]);
    server.shutdown().unwrap();
}

#[test]
fn after_the_peers_eof_on_close_waits_for_the_completion() {
    let app = Backend::default();
    let server = start(config(), app.clone());
    let mut client = connect(server.local_addr());
    send(&mut client, "later:y");
    assert_eq!(text(&mut client), "deferring:later:y");
    let deferred = app.take();
    client
        .get_mut()
        .shutdown(std::net::Shutdown::Write)
        .unwrap();
    let stats = wait_for_stats(&server.handle(), "the peer's EOF", |s| {
        s.phase_peer_closed == 1
    });
    assert_eq!(stats.websocket_open, 1, "on_close waits for the completion");
    assert!(app.seen().is_empty());
    assert_eq!(app.complete(deferred, "y"), Ok(()));
    assert_eq!(text(&mut client), "done:y:11", "its answer still goes out");
    wait_until("on_close", || app.seen().len() == 2);
    assert_eq!(
        app.seen(),
        [Seen::Completed("y".into()), Seen::Closed(1006, 11)]
    );
    server.shutdown().unwrap();
}

#[test]
fn completing_inside_the_call_twice_or_never_is_harmless() {
    let app = Backend::default();
    let server = start(config(), app.clone());
    let mut client = connect(server.local_addr());
    send(&mut client, "now:n");
    assert_eq!(text(&mut client), "inside:Ok(())");
    assert_eq!(text(&mut client), "done:now:n:11", "right after the call");
    send(&mut client, "drop");
    send(&mut client, "e");
    assert_eq!(
        text(&mut client),
        "echo:e:13",
        "a dropped handle completes with nothing"
    );
    send(&mut client, "twice");
    let (first, second) = (app.take(), app.take());
    assert_eq!(first.conn(), second.conn());
    assert_eq!(app.complete(second, "2nd"), Ok(()));
    assert_eq!(app.complete(first, "1st"), Err(DeferredError::Completed));
    assert_eq!(text(&mut client), "done:2nd:24");
    let stats = server.handle().stats();
    assert_eq!((stats.deferred_calls, stats.deferred_abandoned), (1, 1));
    close_client(client);
    server.shutdown().unwrap();
}

#[test]
fn a_handle_dropped_on_another_thread_lets_the_connection_go_on() {
    let app = Backend::default();
    let server = start(config(), app.clone());
    let mut client = connect(server.local_addr());
    send(&mut client, "later:z");
    send(&mut client, "after");
    assert_eq!(text(&mut client), "deferring:later:z");
    let deferred = app.take();
    thread::spawn(move || drop(deferred)).join().unwrap();
    assert_eq!(text(&mut client), "echo:after:2");
    assert_eq!(server.handle().stats().deferred_abandoned, 1);
    close_client(client);
    server.shutdown().unwrap();
}

#[test]
fn a_completions_messages_are_compressed_as_the_connection_agreed_and_counted_in_metrics() {
    use std::io::Write;
    let app = Backend::default();
    let mut config = config();
    config.compression = true;
    config.compression_threshold = 64;
    config.metrics_path = Some("/metrics".into());
    let server = start(config, app.clone());
    let addr = server.local_addr();
    // tungstenite cannot deflate: a raw client that offers it.
    let mut stream = raw(addr);
    let offer = "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n";
    let request = upgrade_request("/ws").replacen("\r\n\r\n", &format!("\r\n{offer}"), 1);
    stream.write_all(request.as_bytes()).unwrap();
    let head = read_http_head(&mut stream).unwrap();
    assert_eq!(status(&head), 101, "{head}");
    assert!(head.contains("permessage-deflate"), "{head}");
    stream.write_all(&masked(true, 0x1, b"later:zip")).unwrap();
    let (first, payload) = read_raw_frame(&mut stream).unwrap();
    assert_eq!(
        (first, &payload[..]),
        (0x81, &b"deferring:later:zip"[..]),
        "short: uncompressed"
    );
    let long = "the same words again and again, ".repeat(20);
    app.complete(app.take(), &long).unwrap();
    let (first, payload) = read_raw_frame(&mut stream).unwrap();
    assert_eq!(first, 0xC1, "FIN, RSV1 (compressed), text");
    assert!(payload.len() < long.len() / 4, "{} bytes", payload.len());
    let inflated = wsreactor::ws::Compressed {
        text: true,
        payload,
    }
    .inflate(1 << 20)
    .unwrap();
    assert_eq!(inflated, Message::from(format!("done:{long}:11")));
    let mut scrape = raw(addr);
    scrape
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (_, body) = read_http_response(&mut scrape).unwrap();
    let body = String::from_utf8(body).unwrap();
    for line in [
        "wsreactor_deferred_calls_total 1",
        "wsreactor_deferred_expired_total 0",
        "wsreactor_deferred_abandoned_total 0",
        "wsreactor_deferred_late_total 0",
    ] {
        assert!(body.lines().any(|l| l == line), "{line} in\n{body}");
    }
    server.shutdown().unwrap();
}
