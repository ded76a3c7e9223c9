//! The handler API for programs that do real work, over real sockets: what `on_upgrade`
//! accepts with is the session `on_open` and every later call see (and `on_close` gets back);
//! `Context::ping` reaches the client as a ping frame, and a payload past 125 bytes is refused;
//! `ServerHandle::try_close` says `Full` instead of waiting and closes once there is room;
//! `on_http` gets a context with the server handle while `on_http_request` handlers still
//! work; `write_metrics` appends the application's families to the server's Prometheus text,
//! and a panic there costs only its own part.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use tungstenite::Message as TMessage;
use tungstenite::client::IntoClientRequest;
use wsreactor::{
    Answer, CloseCode, CloseInfo, ConnId, Context, Exposition, Handler, HttpContext, Message,
    MetricKind, Request, Response, SendError, Server, ServerHandle, Turned, Upgrade, UpgradeOffer,
};

/// Who a connection belongs to: decided by `on_upgrade` from the `X-User` header.
#[derive(Debug, Default)]
struct Who {
    user: String,
    messages: u32,
}

#[derive(Default, Clone)]
struct Api {
    opened: Arc<Mutex<Vec<ConnId>>>,
    closed: Arc<Mutex<Vec<(String, u32)>>>,
    panic_in_metrics: Arc<AtomicBool>,
}

impl Handler for Api {
    type Session = Who;

    fn on_upgrade(&self, request: &Request, _offer: &UpgradeOffer) -> Upgrade<Who> {
        match request.header("X-User") {
            Some(user) => Upgrade::accept_with(Who {
                user: user.to_owned(),
                messages: 0,
            }),
            None => Upgrade::reject(401, "X-User required\n"),
        }
    }

    fn on_open(&self, ctx: &mut Context<'_, Who>) {
        self.opened.lock().unwrap().push(ctx.conn());
        let hello = format!("hello {}", ctx.session().user);
        ctx.send(hello);
    }

    fn on_message(&self, ctx: &mut Context<'_, Who>, message: Message) {
        ctx.session_mut().messages += 1;
        let text = String::from_utf8_lossy(message.as_bytes()).into_owned();
        if let Some(payload) = text.strip_prefix("ping:") {
            let answer = match ctx.ping(payload) {
                Ok(()) => "pinged".to_owned(),
                Err(err) => err.to_string(),
            };
            ctx.send(answer);
        } else if text == "whoami" {
            let who = format!(
                "{} ({} messages)",
                ctx.session().user,
                ctx.session().messages
            );
            ctx.send(who);
        }
    }

    fn on_close(&self, _conn: ConnId, who: Who, _close: &CloseInfo, _server: &ServerHandle) {
        self.closed.lock().unwrap().push((who.user, who.messages));
    }

    fn on_http(&self, ctx: &mut HttpContext<'_>, request: Request) -> Answer {
        if request.path() != "/who" {
            return Response::not_found().into();
        }
        let open = ctx.server().stats().websocket_open;
        let peer = ctx.peer_addr().map(|a| a.ip().to_string());
        let text = format!("open={open} peer={}", peer.unwrap_or_default());
        Answer::now(Response::text(200, text))
    }

    fn write_metrics(&self, exposition: &mut Exposition<'_>) {
        let open = self.opened.lock().unwrap().len() - self.closed.lock().unwrap().len();
        exposition.family("api_users", MetricKind::Gauge, "connections with a user");
        exposition.sample("api_users", &[("kind", "any")], open as f64);
        if self.panic_in_metrics.load(Ordering::Relaxed) {
            panic!("write_metrics panics on request of the test");
        }
    }
}

fn connect_as(addr: std::net::SocketAddr, user: &str) -> Client {
    let stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("X-User", user.parse().unwrap());
    let (client, _) = tungstenite::client(request, stream).expect("upgrade");
    client
}

fn next_text(client: &mut Client) -> String {
    match client.read().expect("a message") {
        TMessage::Text(text) => text.as_str().to_owned(),
        other => panic!("expected text, got {other:?}"),
    }
}

fn get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let mut stream = raw(addr);
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let (head, body) = read_http_response(&mut stream).expect("a response");
    (head, String::from_utf8(body).expect("UTF-8 body"))
}

#[test]
fn the_session_starts_with_what_on_upgrade_accepted_with() {
    let app = Api::default();
    let server = start(config(), app.clone());
    let addr = server.local_addr();
    let mut ann = connect_as(addr, "ann");
    assert_eq!(next_text(&mut ann), "hello ann", "on_open sees it");
    ann.send(TMessage::text("whoami")).unwrap();
    assert_eq!(next_text(&mut ann), "ann (1 messages)");
    close_client(ann);
    wait_until("on_close", || !app.closed.lock().unwrap().is_empty());
    assert_eq!(*app.closed.lock().unwrap(), [("ann".to_owned(), 1)]);

    let mut anonymous = raw(addr);
    anonymous
        .write_all(upgrade_request("/ws").as_bytes())
        .unwrap();
    let (head, body) = read_http_response(&mut anonymous).unwrap();
    assert_eq!(status(&head), 401);
    assert_eq!(body, b"X-User required\n");
    server.shutdown().unwrap();
}

#[test]
fn a_handler_pings_and_a_long_payload_is_refused() {
    let server = start(config(), Api::default());
    let mut bob = connect_as(server.local_addr(), "bob");
    assert_eq!(next_text(&mut bob), "hello bob");
    bob.send(TMessage::text("ping:rtt-1")).unwrap();
    assert_eq!(
        bob.read().unwrap(),
        TMessage::Ping(b"rtt-1".to_vec().into()),
        "the ping comes before what the handler sent after it"
    );
    assert_eq!(next_text(&mut bob), "pinged");
    bob.send(TMessage::text(format!("ping:{}", "x".repeat(126))))
        .unwrap();
    assert_eq!(
        next_text(&mut bob),
        "a ping carries at most 125 bytes (RFC 6455 §5.5), not 126"
    );
    // The client's automatic pong went back; the connection is still fine.
    bob.send(TMessage::text("whoami")).unwrap();
    assert_eq!(next_text(&mut bob), "bob (3 messages)");
    close_client(bob);
    server.shutdown().unwrap();
}

/// In a caller-driven server nothing drains the command queue between turns: `try_close` finds
/// it full and says so at once; after a turn it closes.
#[test]
fn try_close_says_full_instead_of_waiting() {
    let app = Api::default();
    let mut config = config();
    config.command_queue_capacity = 2;
    let mut server = Server::builder()
        .config(config)
        .build_driven(app.clone())
        .expect("binds");
    let addr = server.local_addr();
    let client = thread::spawn(move || {
        let mut client = connect_as(addr, "cy");
        let mut seen = Vec::new();
        loop {
            match client.read() {
                Ok(TMessage::Text(text)) => seen.push(text.as_str().to_owned()),
                Ok(TMessage::Close(Some(frame))) => {
                    seen.push(format!("close {} {}", u16::from(frame.code), frame.reason));
                }
                Ok(_) => {}
                Err(tungstenite::Error::ConnectionClosed) => return seen,
                Err(err) => panic!("client: {err}"),
            }
        }
    });
    let end = Instant::now() + DEADLINE;
    while app.opened.lock().unwrap().is_empty() {
        assert!(Instant::now() < end, "the client never opened");
        server.turn(Some(Duration::from_millis(20))).unwrap();
    }
    let conn = app.opened.lock().unwrap()[0];
    let handle = server.handle();
    handle.try_send(conn, "one").unwrap();
    handle.try_send(conn, "two").unwrap();
    let started = Instant::now();
    assert_eq!(
        handle.try_close(conn, CloseCode::Normal, "bye"),
        Err(SendError::Full)
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "it did not wait"
    );
    assert_eq!(server.turn(Some(Duration::ZERO)).unwrap(), Turned::Running);
    handle.try_close(conn, CloseCode::Normal, "bye").unwrap();
    while !client.is_finished() {
        assert!(Instant::now() < end, "the client never saw the close");
        server.turn(Some(Duration::from_millis(20))).unwrap();
    }
    assert_eq!(
        client.join().unwrap(),
        ["hello cy", "one", "two", "close 1000 bye"]
    );
}

#[test]
fn on_http_has_a_context_and_old_handlers_still_answer() {
    let server = start(config(), Api::default());
    let addr = server.local_addr();
    let _dee = connect_as(addr, "dee");
    wait_for_stats(&server.handle(), "dee open", |s| s.websocket_open == 1);
    let (head, body) = get(addr, "/who");
    assert_eq!(status(&head), 200);
    assert_eq!(body, "open=1 peer=127.0.0.1");
    assert_eq!(status(&get(addr, "/nothing").0), 404);
    server.shutdown().unwrap();

    // A handler written for `on_http_request` alone is answered through the default `on_http`.
    let old = start(config(), common::http::App);
    let (head, body) = get(old.local_addr(), "/old");
    assert_eq!(status(&head), 200);
    assert_eq!(body, "GET /old");
    old.shutdown().unwrap();
}

#[test]
fn write_metrics_appends_the_applications_families() {
    let app = Api::default();
    let mut config = config();
    config.metrics_path = Some("/metrics".into());
    let server = start(config, app.clone());
    let addr = server.local_addr();
    let _eve = connect_as(addr, "eve");
    wait_until("eve open", || app.opened.lock().unwrap().len() == 1);
    let (head, body) = get(addr, "/metrics");
    assert_eq!(status(&head), 200);
    assert!(body.starts_with("# HELP wsreactor_"), "{body}");
    assert!(
        body.ends_with(
            "# HELP api_users connections with a user\n\
             # TYPE api_users gauge\n\
             api_users{kind=\"any\"} 1\n"
        ),
        "{body}"
    );

    app.panic_in_metrics.store(true, Ordering::Relaxed);
    let (head, body) = get(addr, "/metrics");
    assert_eq!(status(&head), 200);
    assert!(body.starts_with("# HELP wsreactor_"), "{body}");
    assert!(
        !body.contains("api_users"),
        "the application's part is left out"
    );
    assert_eq!(server.handle().stats().handler_panics, 1);
    server.shutdown().unwrap();
}
