//! Per-connection state and the request after the upgrade, over real sockets: each connection's
//! `Handler::Session` is its own across calls (with two workers taking turns), reaches
//! `on_close` with everything the last messages did, even when the client closes right after
//! sending; `Context` knows the peer address, path, query and subprotocol for the connection's
//! life and the full upgrade request in `on_open`; plain HTTP requests carry the peer address.

mod common;

use std::net::TcpStream;
use std::sync::{Arc, Mutex};

use common::*;
use tungstenite::Message as TMessage;
use tungstenite::client::IntoClientRequest;
use wsreactor::{
    CloseInfo, ConnId, Context, Handler, Message, Request, Response, ServerHandle, Upgrade,
    UpgradeOffer,
};

/// What each connection keeps.
#[derive(Default, Debug)]
struct Visitor {
    name: String,
    seen: u64,
    agent_in_open: bool,
}

/// Answers every message with `name seen peer path query protocol request-later`; records
/// each `on_close`'s session.
#[derive(Default, Clone)]
struct Counting {
    closed: Arc<Mutex<Vec<(String, u64, bool)>>>,
}

impl Handler for Counting {
    type Session = Visitor;

    /// The name comes with the upgrade's acceptance: the session starts with it.
    fn on_upgrade(&self, request: &Request, offer: &UpgradeOffer) -> Upgrade<Visitor> {
        let name = request
            .query()
            .and_then(|q| q.strip_prefix("name="))
            .unwrap_or("anon")
            .to_owned();
        let accept = Upgrade::accept_with(Visitor {
            name,
            ..Visitor::default()
        });
        match offer.protocols().first() {
            Some(protocol) => accept.with_protocol(protocol.clone()),
            None => accept,
        }
    }

    fn on_open(&self, ctx: &mut Context<'_, Visitor>) {
        assert_ne!(ctx.session().name, "", "on_upgrade's session is here");
        let agent = ctx
            .request()
            .and_then(|r| r.header("User-Agent"))
            .is_some_and(|a| a == "sessions-test");
        ctx.session_mut().agent_in_open = agent;
    }

    fn on_message(&self, ctx: &mut Context<'_, Visitor>, _message: Message) {
        ctx.session_mut().seen += 1;
        let line = format!(
            "{} {} {} {} {} {} {}",
            ctx.session().name,
            ctx.session().seen,
            ctx.peer_addr().map_or("-".to_owned(), |a| a.to_string()),
            ctx.path(),
            ctx.query().unwrap_or("-"),
            ctx.protocol().unwrap_or("-"),
            ctx.request().is_some(),
        );
        ctx.send(line);
    }

    fn on_close(&self, _conn: ConnId, visitor: Visitor, _close: &CloseInfo, _: &ServerHandle) {
        self.closed
            .lock()
            .unwrap()
            .push((visitor.name, visitor.seen, visitor.agent_in_open));
    }

    fn on_http_request(&self, request: &Request) -> Response {
        let peer = request
            .peer_addr()
            .map_or("-".to_owned(), |a| a.to_string());
        Response::text(200, peer)
    }
}

fn connect_as(addr: std::net::SocketAddr, name: &str, protocol: Option<&str>) -> (Client, String) {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let local = stream.local_addr().unwrap().to_string();
    let mut request = format!("ws://{addr}/room/a?name={name}")
        .into_client_request()
        .unwrap();
    let headers = request.headers_mut();
    headers.insert("User-Agent", "sessions-test".parse().unwrap());
    if let Some(protocol) = protocol {
        headers.insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    }
    let (client, _) = tungstenite::client(request, stream).expect("upgrade");
    (client, local)
}

#[test]
fn each_connection_keeps_its_own_session_and_knows_its_peer() {
    let app = Counting::default();
    let server = start(config(), app.clone());
    let addr = server.local_addr();
    let (mut ann, ann_addr) = connect_as(addr, "ann", Some("chat"));
    let (mut bob, bob_addr) = connect_as(addr, "bob", None);
    for n in 1..=20u64 {
        for (client, name, peer, protocol) in [
            (&mut ann, "ann", &ann_addr, "chat"),
            (&mut bob, "bob", &bob_addr, "-"),
        ] {
            client.send(TMessage::text("hi")).unwrap();
            let expected = format!("{name} {n} {peer} /room/a name={name} {protocol} false");
            assert_eq!(client.read().unwrap(), TMessage::text(expected));
        }
    }
    close_client(ann);
    close_client(bob);
    wait_until("both on_close calls", || {
        app.closed.lock().unwrap().len() == 2
    });
    let mut closed = app.closed.lock().unwrap().clone();
    closed.sort();
    assert_eq!(
        closed,
        [("ann".to_owned(), 20, true), ("bob".to_owned(), 20, true)],
        "on_close gets the session as the last message left it, and on_open saw the headers"
    );
    server.shutdown().unwrap();
}

#[test]
fn on_close_gets_the_session_of_messages_still_running_when_the_client_leaves() {
    let app = Counting::default();
    let server = start(config(), app.clone());
    let (mut client, _) = connect_as(server.local_addr(), "quick", None);
    for _ in 0..50 {
        client.send(TMessage::text("x")).unwrap();
    }
    // Gone without reading a reply or a close frame (FIN only, so no reset can destroy what
    // it sent): the last batches may still be with a worker when the loop sees the EOF.
    client
        .get_mut()
        .shutdown(std::net::Shutdown::Write)
        .unwrap();
    wait_until("on_close", || app.closed.lock().unwrap().len() == 1);
    drop(client);
    assert_eq!(
        app.closed.lock().unwrap()[0],
        ("quick".to_owned(), 50, true),
        "every message handled reached the session that on_close got"
    );
    server.shutdown().unwrap();
}

#[test]
fn a_plain_http_request_carries_the_peer_address() {
    let server = start(config(), Counting::default());
    let mut stream = raw(server.local_addr());
    let local = stream.local_addr().unwrap().to_string();
    use std::io::Write;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (head, body) = read_http_response(&mut stream).unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert_eq!(String::from_utf8(body).unwrap(), local);
    server.shutdown().unwrap();
}
