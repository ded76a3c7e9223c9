//! Per-connection timers over real sockets: `Context::set_timer` arms one, `on_timer` is called
//! in order with the connection's other calls (a timer that comes due while a call runs waits
//! for it, then goes before the messages that came meanwhile); setting an armed key resets it,
//! `cancel_timer` removes it, one past `max_timers_per_connection` is an `Err`; zero and
//! `Duration::MAX` are taken; a connection that closes never calls back, and `on_close` comes
//! after the last `on_timer`.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use tungstenite::Message as TMessage;
use wsreactor::{CloseCode, CloseInfo, ConnId, Context, Handler, Message, ServerHandle};

/// What the application saw, in order: (the connection's number, what).
type Seen = Arc<Mutex<Vec<(u32, String)>>>;

/// Commands: `id:N` names the connection; `set:K:MS`, `forever:K`, `cancel:K`, `armed`;
/// `block:MS` holds the worker (and raises `blocking` first); anything else is echoed. Timer
/// `9` closes the connection when it fires; every other fires as a `timer:K` message.
#[derive(Default, Clone)]
struct Ticker {
    seen: Seen,
    blocking: Arc<AtomicBool>,
}

impl Ticker {
    fn saw(&self, ctx: &Context<'_, u32>, what: String) {
        self.seen.lock().unwrap().push((*ctx.session(), what));
    }

    fn seen_by(&self, n: u32) -> Vec<String> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .filter(|(who, _)| *who == n)
            .map(|(_, what)| what.clone())
            .collect()
    }
}

impl Handler for Ticker {
    type Session = u32;

    fn on_message(&self, ctx: &mut Context<'_, u32>, message: Message) {
        let text = String::from_utf8_lossy(message.as_bytes()).into_owned();
        let parts: Vec<&str> = text.split(':').collect();
        let reply = match parts.as_slice() {
            ["id", n] => {
                *ctx.session_mut() = n.parse().unwrap();
                "named".to_owned()
            }
            ["set", key, ms] => {
                let after = Duration::from_millis(ms.parse().unwrap());
                match ctx.set_timer(key.parse().unwrap(), after) {
                    Ok(()) => format!("set:{key}:ok"),
                    Err(err) => format!("set:{key}:err:{err}"),
                }
            }
            ["forever", key] => format!("{:?}", ctx.set_timer(key.parse().unwrap(), Duration::MAX)),
            ["cancel", key] => format!("cancel:{key}:{}", ctx.cancel_timer(key.parse().unwrap())),
            ["armed"] => format!("armed:{}", ctx.armed_timers()),
            ["block", ms] => {
                self.blocking.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(ms.parse().unwrap()));
                "blocked".to_owned()
            }
            _ => format!("echo:{text}"),
        };
        self.saw(ctx, format!("message:{text}"));
        ctx.send(reply);
    }

    fn on_timer(&self, ctx: &mut Context<'_, u32>, key: u64) {
        self.saw(ctx, format!("timer:{key}"));
        if key == 9 {
            ctx.close(CloseCode::Normal, "timer 9");
        } else {
            ctx.send(format!("timer:{key}"));
        }
    }

    fn on_close(&self, _: ConnId, n: u32, close: &CloseInfo, _: &ServerHandle) {
        let code: u16 = close.code.into();
        self.seen.lock().unwrap().push((n, format!("close:{code}")));
    }
}

fn send(client: &mut Client, text: &str) {
    client.send(TMessage::text(text)).unwrap();
}

fn text(client: &mut Client) -> String {
    match client.read().expect("a message") {
        TMessage::Text(text) => text.as_str().to_owned(),
        other => panic!("expected text, got {other:?}"),
    }
}

/// Sends `command` and returns the answer.
fn ask(client: &mut Client, command: &str) -> String {
    send(client, command);
    text(client)
}

/// A client whose connection is named `n`.
fn named(server: &wsreactor::Server, n: u32) -> Client {
    let mut client = connect(server.local_addr());
    assert_eq!(ask(&mut client, &format!("id:{n}")), "named");
    client
}

#[test]
fn a_timer_due_during_a_call_waits_for_it_and_goes_before_the_messages_that_came_meanwhile() {
    let app = Ticker::default();
    let mut config = config();
    // The call blocks on purpose: a worker's, not the loop's (an inline loop would read the
    // message that came meanwhile before its clock saw the timer due).
    config.inline_handlers = false;
    let server = start(config, app.clone());
    let mut client = named(&server, 1);
    assert_eq!(ask(&mut client, "set:1:50"), "set:1:ok");
    send(&mut client, "block:300");
    wait_until("the worker is in the call", || {
        app.blocking.load(Ordering::SeqCst)
    });
    send(&mut client, "after");
    assert_eq!(text(&mut client), "blocked");
    assert_eq!(text(&mut client), "timer:1", "due at 50 ms, after the call");
    assert_eq!(text(&mut client), "echo:after");
    assert_eq!(
        app.seen_by(1)[2..],
        ["message:block:300", "timer:1", "message:after"]
    );
    let stats = server.handle().stats();
    assert_eq!((stats.timers_fired, stats.connection_timers), (1, 0));
    close_client(client);
}

#[test]
fn setting_an_armed_key_resets_it_and_cancel_removes_it() {
    let app = Ticker::default();
    let server = start(config(), app.clone());
    let mut client = named(&server, 1);
    assert_eq!(ask(&mut client, "set:1:100"), "set:1:ok");
    assert_eq!(ask(&mut client, "set:2:150"), "set:2:ok");
    let reset_at = Instant::now();
    assert_eq!(ask(&mut client, "set:1:400"), "set:1:ok");
    assert_eq!(ask(&mut client, "cancel:2"), "cancel:2:true");
    assert_eq!(
        ask(&mut client, "cancel:2"),
        "cancel:2:false",
        "not armed now"
    );
    assert_eq!(ask(&mut client, "armed"), "armed:1");
    assert_eq!(text(&mut client), "timer:1", "not timer:2 at 150 ms");
    let waited = reset_at.elapsed();
    assert!(
        waited >= Duration::from_millis(400),
        "fired after {waited:?}"
    );
    assert_eq!(ask(&mut client, "armed"), "armed:0", "a timer fires once");
    assert_eq!(ask(&mut client, "x"), "echo:x");
    close_client(client);
}

#[test]
fn one_past_max_timers_per_connection_is_an_err_and_a_reset_is_not_one_more() {
    let app = Ticker::default();
    let mut config = config();
    config.max_timers_per_connection = 3;
    let server = start(config, app.clone());
    let mut client = named(&server, 1);
    for key in 1..=3 {
        assert_eq!(
            ask(&mut client, &format!("set:{key}:60000")),
            format!("set:{key}:ok")
        );
    }
    assert_eq!(
        ask(&mut client, "set:4:10"),
        "set:4:err:the connection has 3 timers armed, as many as max_timers_per_connection allows"
    );
    assert_eq!(ask(&mut client, "set:2:60000"), "set:2:ok", "a reset");
    assert_eq!(ask(&mut client, "armed"), "armed:3");
    wait_for_stats(&server.handle(), "three timers armed", |s| {
        s.connection_timers == 3
    });
    assert_eq!(ask(&mut client, "cancel:1"), "cancel:1:true");
    assert_eq!(ask(&mut client, "set:4:10"), "set:4:ok");
    assert_eq!(text(&mut client), "timer:4");
    close_client(client);
    wait_for_stats(
        &server.handle(),
        "the connection's timers gone with it",
        |s| s.connection_timers == 0,
    );
}

#[test]
fn zero_fires_with_the_next_job_and_duration_max_never_panics() {
    let app = Ticker::default();
    let server = start(config(), app.clone());
    let mut client = named(&server, 1);
    assert_eq!(ask(&mut client, "forever:5"), "Ok(())");
    assert_eq!(ask(&mut client, "set:6:0"), "set:6:ok");
    assert_eq!(text(&mut client), "timer:6");
    assert_eq!(
        ask(&mut client, "armed"),
        "armed:1",
        "5 is armed for a century"
    );
    close_client(client);
}

#[test]
fn a_connection_that_closed_never_calls_back_and_on_close_follows_the_last_on_timer() {
    let app = Ticker::default();
    let server = start(config(), app.clone());
    let mut gone = named(&server, 1);
    let mut witness = named(&server, 2);
    let mut closing = named(&server, 3);
    assert_eq!(ask(&mut gone, "set:1:200"), "set:1:ok");
    assert_eq!(ask(&mut witness, "set:1:600"), "set:1:ok");
    assert_eq!(ask(&mut closing, "set:9:50"), "set:9:ok");
    close_client(gone);
    // Timer 9 closes its connection from `on_timer`: `on_close` comes after it.
    match closing.read() {
        Ok(TMessage::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 1000),
        other => panic!("expected the close of timer 9, got {other:?}"),
    }
    assert_eq!(text(&mut witness), "timer:1", "600 ms passed");
    wait_until("on_close for the first", || app.seen_by(1).len() == 3);
    // A close frame without a code: `on_close` hears 1005, and never a timer.
    assert_eq!(
        app.seen_by(1),
        ["message:id:1", "message:set:1:200", "close:1005"]
    );
    wait_until("on_close for the third", || app.seen_by(3).len() == 4);
    assert_eq!(app.seen_by(3)[2..], ["timer:9", "close:1000"]);
    close_client(witness);
}
