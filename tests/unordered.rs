//! Out-of-order completions over real sockets (`Context::defer_unordered`): off by default (an
//! error value); up to `max_unordered_per_connection` outstanding while the connection goes on
//! to its next messages, one more refused in the same call; at the limit the next message's
//! handler does not run until one completes; completions in any order run in order on the
//! connection, with its session; the deadline calls `on_unordered_timeout` (by default a close
//! with `1011`) and a late completion gets `TimedOut`; a close ends them (`Closed`) and
//! `on_close` runs once, never beside a completion; with permessage-deflate, completions that
//! come out of order decode at the client; the counters are in the Prometheus text.

mod common;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::*;
use tungstenite::Message as TMessage;
use tungstenite::protocol::frame::coding::CloseCode as TCloseCode;
use wsreactor::{
    CloseInfo, ConnId, Context, DeferredError, Handler, Message, ServerHandle, Unordered,
};

/// Each connection counts its messages (a completion adds a hundred).
#[derive(Debug, Default)]
struct Count(u32);

/// `req:N` defers out of order with tag `N` and parks the handle (or answers
/// `refused:N:{error:?}`); `now:N` defers and completes inside the call; `pair:A:B` defers
/// twice in one call; anything else is echoed with
/// the count. With `answer_timeouts`, a timeout is answered `timeout:N` instead of closing.
#[derive(Default, Clone)]
struct Backend {
    parked: Arc<Mutex<Vec<Unordered<Count>>>>,
    seen: Arc<Mutex<Vec<String>>>,
    answer_timeouts: bool,
}

impl Backend {
    fn defer(&self, ctx: &mut Context<'_, Count>, tag: u64) {
        match ctx.defer_unordered(tag) {
            Ok(handle) => self.parked.lock().unwrap().push(handle),
            Err(err) => drop(ctx.send(format!("refused:{tag}:{err:?}"))),
        }
    }

    /// Waits until the handle tagged `tag` is parked, and takes it.
    fn take(&self, tag: u64) -> Unordered<Count> {
        poll_until("a parked handle", || {
            let mut parked = self.parked.lock().unwrap();
            let at = parked.iter().position(|handle| handle.tag() == tag)?;
            Some(parked.remove(at))
        })
    }

    /// Completes `handle` with `done:TAG:TEXT:COUNT`, adding a hundred to the count.
    fn complete(&self, handle: Unordered<Count>, text: &str) -> Result<(), DeferredError> {
        let (tag, text, seen) = (handle.tag(), text.to_owned(), Arc::clone(&self.seen));
        handle.complete(move |ctx| {
            ctx.session_mut().0 += 100;
            seen.lock().unwrap().push(format!("completed:{tag}"));
            ctx.send(format!("done:{tag}:{text}:{}", ctx.session().0));
        })
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Handler for Backend {
    type Session = Count;

    fn on_message(&self, ctx: &mut Context<'_, Count>, message: Message) {
        ctx.session_mut().0 += 1;
        let text = String::from_utf8_lossy(message.as_bytes()).into_owned();
        self.seen.lock().unwrap().push(format!("message:{text}"));
        let mut words = text.split(':');
        match (words.next(), words.next(), words.next()) {
            (Some("req"), Some(tag), None) => self.defer(ctx, tag.parse().unwrap()),
            (Some("now"), Some(tag), None) => {
                // Completed on the call's own thread, before the call returns.
                let handle = ctx.defer_unordered(tag.parse().unwrap()).expect("room");
                let result = self.complete(handle, "now");
                ctx.send(format!("inside:{result:?}"));
            }
            (Some("pair"), Some(a), Some(b)) => {
                self.defer(ctx, a.parse().unwrap());
                self.defer(ctx, b.parse().unwrap());
            }
            _ => drop(ctx.send(format!("echo:{text}:{}", ctx.session().0))),
        }
    }

    fn on_unordered_timeout(&self, ctx: &mut Context<'_, Count>, tag: u64) {
        self.seen.lock().unwrap().push(format!("timeout:{tag}"));
        if self.answer_timeouts {
            ctx.send(format!("timeout:{tag}"));
        } else {
            ctx.close(wsreactor::CloseCode::Error, "deferred reply timed out");
        }
    }

    fn on_close(&self, _conn: ConnId, count: Count, close: &CloseInfo, _server: &ServerHandle) {
        let seen = format!("closed:{}:{}", u16::from(close.code), count.0);
        self.seen.lock().unwrap().push(seen);
    }
}

fn unordered(limit: usize) -> wsreactor::Config {
    let mut config = config();
    config.max_unordered_per_connection = limit;
    config.workers = 4;
    config
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

/// Reads until the server's close frame: its code and reason.
fn close_frame(client: &mut Client) -> (TCloseCode, String) {
    match client.read().expect("a close frame") {
        TMessage::Close(Some(frame)) => (frame.code, frame.reason.as_str().to_owned()),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

#[test]
fn off_by_default_the_call_gets_an_error_value() {
    let app = Backend::default();
    let server = start(config(), app.clone());
    let mut client = connect(server.local_addr());
    send(&mut client, "req:1");
    assert_eq!(text(&mut client), "refused:1:Off");
    send(&mut client, "after");
    assert_eq!(text(&mut client), "echo:after:2", "the connection goes on");
    close_client(client);
    server.shutdown().unwrap();
}

#[test]
fn completions_in_any_order_run_in_order_on_the_connection_with_its_session() {
    let app = Backend::default();
    let server = start(unordered(4), app.clone());
    let mut client = connect(server.local_addr());
    for request in ["req:1", "req:2", "req:3", "x"] {
        send(&mut client, request);
    }
    assert_eq!(text(&mut client), "echo:x:4", "no wait for 1, 2 and 3");
    let handles = [app.take(1), app.take(2), app.take(3)];
    let stats = server.handle().stats();
    assert_eq!((stats.unordered_calls, stats.unordered_outstanding), (3, 3));
    let [one, two, three] = handles;
    for (handle, expected) in [
        (three, "done:3:c:104"),
        (one, "done:1:a:204"),
        (two, "done:2:b:304"),
    ] {
        let text_of = &expected[7..8];
        let completer = thread::spawn({
            let (app, text_of) = (app.clone(), text_of.to_owned());
            move || app.complete(handle, &text_of)
        });
        assert_eq!(completer.join().unwrap(), Ok(()));
        assert_eq!(text(&mut client), expected);
    }
    assert_eq!(server.handle().stats().unordered_outstanding, 0);
    close_client(client);
    wait_until("on_close", || {
        app.seen().iter().any(|s| s.starts_with("closed:"))
    });
    assert_eq!(app.seen().last().unwrap(), "closed:1005:304");
    server.shutdown().unwrap();
}

#[test]
fn one_past_the_limit_in_a_call_is_refused_and_at_the_limit_the_next_message_waits() {
    let app = Backend::default();
    let server = start(unordered(2), app.clone());
    let mut client = connect(server.local_addr());
    send(&mut client, "req:1");
    send(&mut client, "pair:2:3");
    assert_eq!(text(&mut client), "refused:3:TooMany(2)");
    send(&mut client, "next");
    // The loop has decoded `next`, but its handler does not run: two are outstanding.
    let handle = server.handle();
    let stats = wait_for_stats(&handle, "next in the inbox", |s| s.messages_in == 3);
    assert_eq!(stats.unordered_outstanding, 2);
    assert!(!app.seen().contains(&"message:next".to_owned()));
    assert!(
        handle.stats().messages_out == 1,
        "only the refusal went out"
    );
    let one = app.take(1);
    assert_eq!(app.complete(one, "a"), Ok(()));
    assert_eq!(
        text(&mut client),
        "echo:next:3",
        "the held message first, as it came first"
    );
    assert_eq!(text(&mut client), "done:1:a:103");
    let two = app.take(2);
    assert_eq!(app.complete(two, "b"), Ok(()));
    assert_eq!(text(&mut client), "done:2:b:203");
    close_client(client);
    server.shutdown().unwrap();
}

#[test]
fn past_the_deadline_on_unordered_timeout_closes_with_1011_by_default() {
    let app = Backend::default();
    let mut config = unordered(2);
    config.deferred_timeout = Duration::from_millis(200);
    let server = start(config, app.clone());
    let mut client = connect(server.local_addr());
    send(&mut client, "req:7");
    let handle = app.take(7);
    assert_eq!(
        close_frame(&mut client),
        (TCloseCode::Error, "deferred reply timed out".to_owned())
    );
    assert_eq!(app.complete(handle, "late"), Err(DeferredError::TimedOut));
    let stats = wait_for_stats(&server.handle(), "the late completion", |s| {
        s.deferred_late == 1
    });
    assert_eq!(
        (stats.unordered_expired, stats.unordered_outstanding),
        (1, 0)
    );
    drop(client);
    wait_until("on_close", || {
        app.seen().iter().any(|s| s.starts_with("closed:"))
    });
    assert_eq!(app.seen(), ["message:req:7", "timeout:7", "closed:1011:1"]);
    server.shutdown().unwrap();
}

#[test]
fn a_handler_may_answer_a_timeout_and_go_on() {
    let app = Backend {
        answer_timeouts: true,
        ..Backend::default()
    };
    let mut config = unordered(2);
    config.deferred_timeout = Duration::from_millis(200);
    let server = start(config, app.clone());
    let mut client = connect(server.local_addr());
    send(&mut client, "req:8");
    let handle = app.take(8);
    assert_eq!(text(&mut client), "timeout:8");
    assert_eq!(app.complete(handle, "late"), Err(DeferredError::TimedOut));
    send(&mut client, "still");
    assert_eq!(text(&mut client), "echo:still:2");
    close_client(client);
    server.shutdown().unwrap();
}

#[test]
fn a_close_ends_them_with_closed_and_on_close_runs_once() {
    let app = Backend::default();
    let server = start(unordered(4), app.clone());
    let mut client = connect(server.local_addr());
    send(&mut client, "req:1");
    send(&mut client, "req:2");
    let (one, two) = (app.take(1), app.take(2));
    server
        .handle()
        .close(one.conn(), wsreactor::CloseCode::Normal, "bye")
        .unwrap();
    assert_eq!(
        close_frame(&mut client),
        (TCloseCode::Normal, "bye".to_owned())
    );
    drop(client);
    wait_until("on_close", || {
        app.seen().iter().any(|s| s.starts_with("closed:"))
    });
    assert_eq!(app.complete(one, "a"), Err(DeferredError::Closed));
    drop(two);
    let stats = server.handle().stats();
    assert_eq!(stats.unordered_outstanding, 0, "nothing left counted");
    let closes = app
        .seen()
        .iter()
        .filter(|s| s.starts_with("closed:"))
        .count();
    assert_eq!(closes, 1);
    assert_eq!(app.seen().last().unwrap(), "closed:1000:2");
    server.shutdown().unwrap();
}

#[test]
fn after_the_clients_close_frame_they_are_awaited_then_the_close_is_answered() {
    let app = Backend::default();
    let server = start(unordered(4), app.clone());
    let mut client = connect(server.local_addr());
    send(&mut client, "req:1");
    let one = app.take(1);
    client.close(None).unwrap();
    wait_for_stats(&server.handle(), "the client's close", |s| {
        s.phase_peer_closed == 1
    });
    assert_eq!(app.complete(one, "a"), Ok(()));
    assert_eq!(text(&mut client), "done:1:a:101");
    loop {
        match client.read() {
            Ok(TMessage::Close(_)) => {}
            Ok(other) => panic!("unexpected {other:?}"),
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(err) => panic!("client: {err}"),
        }
    }
    wait_until("on_close", || {
        app.seen().iter().any(|s| s.starts_with("closed:"))
    });
    assert_eq!(app.seen().last().unwrap(), "closed:1005:101");
    server.shutdown().unwrap();
}

#[test]
fn on_close_never_runs_beside_a_running_completion() {
    let app = Backend::default();
    let server = start(unordered(4), app.clone());
    let mut client = connect(server.local_addr());
    send(&mut client, "req:1");
    let one = app.take(1);
    let conn = one.conn();
    let (release, gate) = mpsc::channel::<()>();
    let seen = Arc::clone(&app.seen);
    one.complete(move |ctx| {
        seen.lock().unwrap().push("completion:start".into());
        gate.recv().unwrap();
        seen.lock().unwrap().push("completion:end".into());
        ctx.send("late words");
    })
    .unwrap();
    wait_until("the completion running", || {
        app.seen().contains(&"completion:start".to_owned())
    });
    server
        .handle()
        .close(conn, wsreactor::CloseCode::Away, "going")
        .unwrap();
    assert_eq!(
        close_frame(&mut client),
        (TCloseCode::Away, "going".to_owned())
    );
    drop(client);
    wait_for_stats(&server.handle(), "the connection gone", |s| {
        s.websocket_open == 0
    });
    assert!(
        !app.seen().iter().any(|s| s.starts_with("closed:")),
        "on_close waits for the completion's job: {:?}",
        app.seen()
    );
    release.send(()).unwrap();
    wait_until("on_close", || {
        app.seen().iter().any(|s| s.starts_with("closed:"))
    });
    assert_eq!(
        app.seen(),
        [
            "message:req:1",
            "completion:start",
            "completion:end",
            "closed:1001:1"
        ]
    );
    server.shutdown().unwrap();
}

#[test]
fn compressed_completions_out_of_order_decode_at_the_client_and_are_in_metrics() {
    use std::io::Write;
    let app = Backend::default();
    let mut config = unordered(4);
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
    for request in ["req:1", "req:2", "req:3"] {
        stream
            .write_all(&masked(true, 0x1, request.as_bytes()))
            .unwrap();
    }
    let handles = [app.take(1), app.take(2), app.take(3)];
    let mut scrape = raw(addr);
    scrape
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (_, body) = read_http_response(&mut scrape).unwrap();
    let body = String::from_utf8(body).unwrap();
    for line in [
        "wsreactor_unordered_outstanding 3",
        "wsreactor_unordered_calls_total 3",
    ] {
        assert!(body.lines().any(|l| l == line), "{line} in\n{body}");
    }
    let [one, two, three] = handles;
    let long = |n: u32| format!("{n}: the same words again and again, ").repeat(20);
    app.complete(two, &long(2)).unwrap();
    app.complete(three, &long(3)).unwrap();
    app.complete(one, &long(1)).unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        let (first, payload) = read_raw_frame(&mut stream).unwrap();
        assert_eq!(first, 0xC1, "FIN, RSV1 (compressed), text");
        let inflated = wsreactor::ws::Compressed {
            text: true,
            payload,
        }
        .inflate(1 << 20)
        .unwrap();
        got.push(String::from_utf8(inflated.as_bytes().to_vec()).unwrap());
    }
    assert_eq!(
        got,
        [
            format!("done:2:{}:103", long(2)),
            format!("done:3:{}:203", long(3)),
            format!("done:1:{}:303", long(1)),
        ]
    );
    server.shutdown().unwrap();
}

#[test]
fn completed_inside_the_call_it_runs_after_it_with_workers_and_inline() {
    for inline in [false, true] {
        let app = Backend::default();
        let mut config = unordered(2);
        config.inline_handlers = inline;
        let server = start(config, app.clone());
        let mut client = connect(server.local_addr());
        send(&mut client, "now:5");
        send(&mut client, "after");
        assert_eq!(text(&mut client), "inside:Ok(())", "inline: {inline}");
        let next = [text(&mut client), text(&mut client)];
        // The completion joins the inbox when the call's reply is applied: `after` may have
        // been decoded before that (then it goes first) or not, never beside it.
        let either = [
            ["done:5:now:101", "echo:after:102"],
            ["echo:after:2", "done:5:now:102"],
        ];
        assert!(
            either.contains(&[next[0].as_str(), next[1].as_str()]),
            "inline: {inline}: {next:?}"
        );
        close_client(client);
        server.shutdown().unwrap();
    }
}
