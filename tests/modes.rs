//! The server's two performance modes: several event loops (`SO_REUSEPORT`), and inline
//! handlers on the loop thread. Same behaviour as the default mode, checked end to end.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::thread;

use common::*;
use tungstenite::Message;
use wsreactor::{CloseCode, ConnId, Context, Handler, SendError};

/// Echoes, remembers every opened `ConnId`, and on "push-self" pushes through the handle.
#[derive(Clone, Default)]
struct Recorder {
    opened: Arc<Mutex<Vec<ConnId>>>,
    closed: Arc<Mutex<Vec<(ConnId, u16)>>>,
}

impl Handler for Recorder {
    type Session = ();

    fn on_open(&self, ctx: &mut Context<'_>) {
        self.opened.lock().unwrap().push(ctx.conn());
    }

    fn on_message(&self, ctx: &mut Context<'_>, message: wsreactor::Message) {
        match message.as_bytes() {
            b"boom" => panic!("handler panic on purpose"),
            b"id?" => {
                ctx.send(ctx.conn().to_string());
            }
            b"push-self" => {
                // From inside the handler: on a loop thread (inline mode) this must not wait
                // on the queue that only this thread drains.
                let sent = ctx.server().send(ctx.conn(), "pushed");
                assert!(matches!(sent, Ok(()) | Err(SendError::Full)));
                ctx.send("replied");
            }
            _ => {
                ctx.send(message);
            }
        }
    }

    fn on_close(
        &self,
        conn: ConnId,
        _session: (),
        close: &wsreactor::CloseInfo,
        _: &wsreactor::ServerHandle,
    ) {
        self.closed
            .lock()
            .unwrap()
            .push((conn, close.code.as_u16()));
    }
}

fn echo_round(client: &mut Client, tag: &str, count: usize) {
    for i in 0..count {
        client.send(Message::text(format!("{tag}:{i}"))).unwrap();
    }
    for i in 0..count {
        assert_eq!(client.read().unwrap(), Message::text(format!("{tag}:{i}")));
    }
}

#[test]
fn inline_handlers_echo_in_order_and_survive_a_panic() {
    let mut config = config();
    config.inline_handlers = true;
    let recorder = Recorder::default();
    let server = start(config, recorder.clone());
    let handle = server.handle();
    let addr = server.local_addr();

    let mut a = connect(addr);
    let mut b = connect(addr);
    echo_round(&mut a, "a", 200);
    echo_round(&mut b, "b", 200);

    // A push from inside an inline handler reaches the client after the reply.
    a.send(Message::text("push-self")).unwrap();
    assert_eq!(a.read().unwrap(), Message::text("replied"));
    assert_eq!(a.read().unwrap(), Message::text("pushed"));

    // A panic closes only that connection, with 1011.
    b.send(Message::text("boom")).unwrap();
    match b.read().unwrap() {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1011),
        other => panic!("expected close 1011, got {other:?}"),
    }
    echo_round(&mut a, "a2", 10);
    let stats = wait_for_stats(&handle, "panic counted", |s| s.handler_panics == 1);
    assert_eq!(stats.busy_workers, 0, "inline mode runs no workers");
    drop(b);
    a.close(None).unwrap();
    while a.read().is_ok() {}
    drop(a);
    wait_for_stats(&handle, "both closed", |s| s.connections_open == 0);
    server.shutdown().unwrap();
    let closed = recorder.closed.lock().unwrap();
    assert_eq!(closed.len(), 2, "on_close once per connection: {closed:?}");
    assert!(closed.iter().any(|&(_, code)| code == 1011));
    // tungstenite's `close(None)` sends a close frame without a code: 1005.
    assert!(closed.iter().any(|&(_, code)| code == 1005));
}

#[test]
fn several_event_loops_share_the_connections() {
    let mut config = config();
    config.event_loops = 2;
    config.workers = 2;
    let recorder = Recorder::default();
    let server = start(config, recorder.clone());
    let handle = server.handle();
    let addr = server.local_addr();

    let clients: Vec<_> = (0..8)
        .map(|t| {
            thread::spawn(move || {
                let mut mine: Vec<Client> = (0..10).map(|_| connect(addr)).collect();
                for (i, client) in mine.iter_mut().enumerate() {
                    echo_round(client, &format!("{t}-{i}"), 20);
                }
                mine
            })
        })
        .collect();
    let mut clients: Vec<Client> = clients
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let opened = recorder.opened.lock().unwrap().clone();
    assert_eq!(opened.len(), 80);
    let loops: HashSet<usize> = opened.iter().map(|id| id.event_loop()).collect();
    assert_eq!(
        loops,
        HashSet::from([0, 1]),
        "80 connections over SO_REUSEPORT should reach both loops"
    );

    // A push to a connection on loop 1 is routed to that loop. Ask each client for its id.
    let ids: Vec<String> = clients
        .iter_mut()
        .map(|client| {
            client.send(Message::text("id?")).unwrap();
            client.read().unwrap().into_text().unwrap().to_string()
        })
        .collect();
    let on_loop_1 = *opened.iter().find(|id| id.event_loop() == 1).unwrap();
    let position = ids
        .iter()
        .position(|id| *id == on_loop_1.to_string())
        .unwrap();
    handle.send(on_loop_1, "to loop 1").unwrap();
    assert_eq!(
        clients[position].read().unwrap(),
        Message::text("to loop 1")
    );

    // A broadcast reaches every connection on every loop.
    handle.broadcast("everyone").unwrap();
    for client in &mut clients {
        assert_eq!(client.read().unwrap(), Message::text("everyone"));
    }
    let stats = handle.stats();
    assert_eq!(stats.websocket_open, 80);
    assert_eq!(stats.upgrades, 80);

    // Shutdown closes the connections of both loops with 1001 and joins both loop threads.
    let stopper = thread::spawn(move || server.shutdown());
    for client in &mut clients {
        match client.read().unwrap() {
            Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1001),
            other => panic!("expected close 1001, got {other:?}"),
        }
    }
    drop(clients);
    stopper.join().unwrap().unwrap();
    assert_eq!(recorder.closed.lock().unwrap().len(), 80);
    assert_eq!(handle.send(on_loop_1, "late"), Err(SendError::Stopped));
    assert_eq!(handle.stats().connections_open, 0);
}

#[test]
fn several_inline_loops_echo() {
    let mut config = config();
    config.event_loops = 2;
    config.inline_handlers = true;
    let server = start(config, echo());
    let addr = server.local_addr();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            thread::spawn(move || {
                for i in 0..5 {
                    let mut client = connect(addr);
                    echo_round(&mut client, &format!("{t}-{i}"), 50);
                    client
                        .close(Some(tungstenite::protocol::CloseFrame {
                            code: CloseCode::Normal.as_u16().into(),
                            reason: "done".into(),
                        }))
                        .unwrap();
                    while client.read().is_ok() {}
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let stats = wait_for_stats(&server.handle(), "all closed", |s| s.connections_open == 0);
    assert_eq!(stats.upgrades, 20);
    assert_eq!(stats.messages_in, 1000);
    assert_eq!(stats.messages_out, 1000);
    server.shutdown().unwrap();
}

#[test]
fn max_connections_holds_across_event_loops() {
    let mut config = config();
    config.event_loops = 2;
    config.max_connections = 5;
    let server = start(config, echo());
    let handle = server.handle();
    let addr = server.local_addr();
    let mut held: Vec<Client> = (0..5).map(|_| connect(addr)).collect();
    // Whichever loop the kernel hands them to, the next ones are refused.
    for _ in 0..4 {
        let mut extra = raw(addr);
        let (head, _) = read_http_response(&mut extra).expect("a 503");
        assert_eq!(status(&head), 503, "{head}");
    }
    let stats = handle.stats();
    assert_eq!(stats.connections_open, 5);
    assert_eq!(stats.connections_rejected, 4);
    for (i, client) in held.iter_mut().enumerate() {
        echo_round(client, &format!("held-{i}"), 3);
    }
    drop(held);
    wait_for_stats(&handle, "all closed", |s| s.connections_open == 0);
    server.shutdown().unwrap();
}
