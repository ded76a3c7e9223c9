//! The worker pool and everything that crosses threads: many concurrent clients with
//! per-connection order, pushes and broadcasts from other threads, stale `ConnId`s, handler
//! panics, `on_close` ordering, graceful shutdown, and backpressure when the workers are busy.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

use common::*;
use tungstenite::Message;
use tungstenite::protocol::CloseFrame as TCloseFrame;
use tungstenite::protocol::frame::coding::CloseCode as TCloseCode;
use wsreactor::{CloseCode, CloseInfo, ConnId, Context, Handler, SendError, ServerHandle};

/// Reads the next message and expects a close frame; returns its code.
fn read_close(client: &mut Client) -> u16 {
    match client.read().expect("a close frame") {
        Message::Close(Some(frame)) => u16::from(frame.code),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

/// Echoes, and records every connection id in `on_open`.
#[derive(Default, Clone)]
struct Recorder {
    opened: Arc<Mutex<Vec<ConnId>>>,
}

impl Recorder {
    fn wait_opened(&self, n: usize) -> Vec<ConnId> {
        wait_until(&format!("{n} connections opened"), || {
            self.opened.lock().unwrap().len() >= n
        });
        let opened = self.opened.lock().unwrap().clone();
        assert_eq!(opened.len(), n);
        opened
    }
}

impl Handler for Recorder {
    type Session = ();

    fn on_open(&self, ctx: &mut Context<'_>) {
        self.opened.lock().unwrap().push(ctx.conn());
    }

    fn on_message(&self, ctx: &mut Context<'_>, message: wsreactor::Message) {
        ctx.send(message);
    }
}

#[test]
fn five_hundred_clients_keep_per_connection_order() {
    const THREADS: usize = 10;
    const CLIENTS_PER_THREAD: usize = 50;
    const MESSAGES: usize = 100;
    let mut config = config();
    config.workers = 4;
    let server = start(config, echo());
    let addr = server.local_addr();

    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            thread::spawn(move || {
                let ids: Vec<usize> = (0..CLIENTS_PER_THREAD)
                    .map(|c| t * CLIENTS_PER_THREAD + c)
                    .collect();
                let mut clients: Vec<Client> = ids.iter().map(|_| connect(addr)).collect();
                // Pipelined: every client sends all its messages, then reads all the echoes.
                for (client, id) in clients.iter_mut().zip(&ids) {
                    for i in 0..MESSAGES {
                        client.write(Message::text(format!("{id}:{i}"))).unwrap();
                    }
                    client.flush().unwrap();
                }
                for (client, id) in clients.iter_mut().zip(&ids) {
                    for i in 0..MESSAGES {
                        let got = client.read().unwrap();
                        assert_eq!(got, Message::text(format!("{id}:{i}")), "client {id}");
                    }
                }
                for mut client in clients {
                    client.close(None).unwrap();
                    // Drive the close handshake to its end.
                    while client.read().is_ok() {}
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("client thread");
    }
    let total = (THREADS * CLIENTS_PER_THREAD) as u64;
    let stats = wait_for_stats(&server.handle(), "all connections closed", |s| {
        s.connections_open == 0
    });
    assert_eq!(stats.upgrades, total, "{stats:?}");
    assert_eq!(stats.messages_in, total * MESSAGES as u64, "{stats:?}");
    assert_eq!(stats.messages_out, total * MESSAGES as u64, "{stats:?}");
    assert_eq!(stats.handler_panics, 0);
    server.shutdown().unwrap();
}

#[test]
fn push_from_another_thread_reaches_the_client() {
    let recorder = Recorder::default();
    let server = start(config(), recorder.clone());
    let handle = server.handle();
    let mut client = connect(server.local_addr());
    let id = recorder.wait_opened(1)[0];

    let pusher = {
        let handle = handle.clone();
        thread::spawn(move || {
            handle.send(id, "pushed text").unwrap();
            handle.send(id, vec![9u8, 8, 7]).unwrap();
        })
    };
    pusher.join().unwrap();
    assert_eq!(client.read().unwrap(), Message::text("pushed text"));
    assert_eq!(client.read().unwrap(), Message::binary(vec![9u8, 8, 7]));
    // The connection still echoes afterwards.
    client.send(Message::text("echo")).unwrap();
    assert_eq!(client.read().unwrap(), Message::text("echo"));
    assert_eq!(handle.stats().stale_replies_dropped, 0);
    client.close(None).unwrap();
    server.shutdown().unwrap();
}

#[test]
fn broadcast_from_another_thread_reaches_every_client() {
    let recorder = Recorder::default();
    let server = start(config(), recorder.clone());
    let handle = server.handle();
    let mut clients: Vec<Client> = (0..3).map(|_| connect(server.local_addr())).collect();
    recorder.wait_opened(3);

    let before = handle.stats().messages_out;
    let broadcaster = {
        let handle = handle.clone();
        thread::spawn(move || handle.broadcast("to everyone").unwrap())
    };
    broadcaster.join().unwrap();
    for client in &mut clients {
        assert_eq!(client.read().unwrap(), Message::text("to everyone"));
    }
    assert_eq!(handle.stats().messages_out - before, 3);
    for mut client in clients {
        client.close(None).unwrap();
    }
    server.shutdown().unwrap();
}

#[test]
fn push_to_a_closed_connection_is_dropped_not_delivered_to_its_successor() {
    let recorder = Recorder::default();
    // One loop: this test is about a slab slot being reused, which needs both on one loop.
    let mut config = config();
    config.event_loops = 1;
    let server = start(config, recorder.clone());
    let handle = server.handle();

    let mut a = connect(server.local_addr());
    let a_id = recorder.wait_opened(1)[0];
    a.close(None).unwrap();
    while a.read().is_ok() {}
    drop(a); // our FIN ends the server's lingering at once
    wait_for_stats(&handle, "A closed", |s| {
        s.connections_open == 0 && s.websocket_open == 0
    });

    let mut b = connect(server.local_addr());
    let b_id = recorder.wait_opened(2)[1];
    assert_eq!(b_id.index(), a_id.index(), "B should reuse A's slab slot");
    assert_ne!(b_id, a_id);
    assert!(b_id.generation() > a_id.generation());

    handle.send(a_id, "for A only").unwrap();
    handle
        .close(a_id, CloseCode::Normal, "stale close")
        .unwrap();
    let stats = wait_for_stats(&handle, "stale pushes dropped", |s| {
        s.stale_replies_dropped >= 2
    });
    assert_eq!(stats.stale_replies_dropped, 2, "{stats:?}");

    b.send(Message::text("B's own")).unwrap();
    assert_eq!(b.read().unwrap(), Message::text("B's own"));
    // Still open and still only its own traffic.
    b.send(Message::text("again")).unwrap();
    assert_eq!(b.read().unwrap(), Message::text("again"));
    b.close(None).unwrap();
    server.shutdown().unwrap();
}

#[test]
fn handler_panic_closes_only_that_connection_with_1011() {
    let handler = |ctx: &mut Context<'_>, msg: wsreactor::Message| {
        if msg == wsreactor::Message::from("boom") {
            panic!("test panic on purpose");
        }
        ctx.send(msg);
    };
    let server = start(config(), handler);
    let handle = server.handle();
    let addr = server.local_addr();
    let mut victim = connect(addr);
    let mut bystander = connect(addr);
    bystander.send(Message::text("before")).unwrap();
    assert_eq!(bystander.read().unwrap(), Message::text("before"));

    victim.send(Message::text("fine")).unwrap();
    assert_eq!(victim.read().unwrap(), Message::text("fine"));
    victim.send(Message::text("boom")).unwrap();
    assert_eq!(read_close(&mut victim), 1011);
    while victim.read().is_ok() {}
    drop(victim);
    let stats = wait_for_stats(&handle, "victim closed", |s| s.connections_open == 1);
    assert_eq!(stats.handler_panics, 1, "{stats:?}");

    for i in 0..10 {
        bystander.send(Message::text(format!("after {i}"))).unwrap();
        assert_eq!(
            bystander.read().unwrap(),
            Message::text(format!("after {i}"))
        );
    }
    let mut newcomer = connect(addr);
    newcomer.send(Message::binary(vec![1u8, 2])).unwrap();
    assert_eq!(newcomer.read().unwrap(), Message::binary(vec![1u8, 2]));
    assert_eq!(handle.stats().handler_panics, 1);
    bystander.close(None).unwrap();
    newcomer.close(None).unwrap();
    server.shutdown().unwrap();
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Open,
    Message(String),
    Close(u16, String),
}

/// Records every call per connection; closes with 4001 on "close-me".
#[derive(Default, Clone)]
struct Lifecycle {
    events: Arc<Mutex<Vec<(ConnId, Event)>>>,
}

impl Lifecycle {
    fn of(&self, conn: ConnId) -> Vec<Event> {
        let events = self.events.lock().unwrap();
        events
            .iter()
            .filter(|(c, _)| *c == conn)
            .map(|(_, e)| e.clone())
            .collect()
    }

    fn opened(&self) -> Vec<ConnId> {
        let events = self.events.lock().unwrap();
        events
            .iter()
            .filter(|(_, e)| *e == Event::Open)
            .map(|(c, _)| *c)
            .collect()
    }

    fn closes(&self) -> usize {
        let events = self.events.lock().unwrap();
        events
            .iter()
            .filter(|(_, e)| matches!(e, Event::Close(..)))
            .count()
    }
}

impl Handler for Lifecycle {
    type Session = ();

    fn on_open(&self, ctx: &mut Context<'_>) {
        self.events.lock().unwrap().push((ctx.conn(), Event::Open));
    }

    fn on_message(&self, ctx: &mut Context<'_>, message: wsreactor::Message) {
        let wsreactor::Message::Text(text) = &message else {
            panic!("text only in this test");
        };
        self.events
            .lock()
            .unwrap()
            .push((ctx.conn(), Event::Message(text.clone())));
        if text == "close-me" {
            ctx.close(CloseCode::Other(4001), "bye");
        } else {
            ctx.send(message);
        }
    }

    fn on_close(&self, conn: ConnId, _session: (), close: &CloseInfo, _server: &ServerHandle) {
        self.events.lock().unwrap().push((
            conn,
            Event::Close(close.code.as_u16(), close.reason.clone()),
        ));
    }
}

#[test]
fn on_close_runs_once_after_the_last_message() {
    let lifecycle = Lifecycle::default();
    let mut config = config();
    config.workers = 4;
    let server = start(config, lifecycle.clone());
    let addr = server.local_addr();
    let texts = |prefix: &str, n: usize| -> Vec<Event> {
        (0..n)
            .map(|i| Event::Message(format!("{prefix}{i}")))
            .collect()
    };

    // 1. The client closes with a close handshake.
    let mut handshake = connect(addr);
    for i in 0..5 {
        handshake.send(Message::text(format!("h{i}"))).unwrap();
    }
    for i in 0..5 {
        assert_eq!(handshake.read().unwrap(), Message::text(format!("h{i}")));
    }
    handshake
        .close(Some(TCloseFrame {
            code: TCloseCode::Normal,
            reason: "done".into(),
        }))
        .unwrap();
    assert_eq!(read_close(&mut handshake), 1000);
    while handshake.read().is_ok() {}
    drop(handshake);

    // 2. The client drops TCP without a close frame, after its echo arrived.
    let mut dropper = connect(addr);
    dropper.send(Message::text("d0")).unwrap();
    assert_eq!(dropper.read().unwrap(), Message::text("d0"));
    drop(dropper);

    // 3. The server closes (ctx.close(4001, "bye")).
    let mut closed = connect(addr);
    closed.send(Message::text("s0")).unwrap();
    assert_eq!(closed.read().unwrap(), Message::text("s0"));
    closed.send(Message::text("close-me")).unwrap();
    match closed.read().unwrap() {
        Message::Close(Some(frame)) => {
            assert_eq!(u16::from(frame.code), 4001);
            assert_eq!(frame.reason.as_str(), "bye");
        }
        other => panic!("expected close 4001, got {other:?}"),
    }
    while closed.read().is_ok() {}
    drop(closed);

    // 4. The client sends a burst and drops at once: on_close still follows every on_message
    //    that ran, whatever was in flight when the socket went away.
    let mut burst = connect(addr);
    for i in 0..20 {
        burst.write(Message::text(format!("b{i}"))).unwrap();
    }
    burst.flush().unwrap();
    drop(burst);

    wait_until("four on_close calls", || lifecycle.closes() >= 4);
    let opened = lifecycle.opened();
    assert_eq!(opened.len(), 4);

    let mut expected = vec![Event::Open];
    expected.extend(texts("h", 5));
    expected.push(Event::Close(1000, "done".into()));
    assert_eq!(lifecycle.of(opened[0]), expected);

    assert_eq!(
        lifecycle.of(opened[1]),
        [
            Event::Open,
            Event::Message("d0".into()),
            Event::Close(1006, String::new())
        ]
    );

    assert_eq!(
        lifecycle.of(opened[2]),
        [
            Event::Open,
            Event::Message("s0".into()),
            Event::Message("close-me".into()),
            Event::Close(4001, "bye".into())
        ]
    );

    let burst = lifecycle.of(opened[3]);
    assert_eq!(burst.first(), Some(&Event::Open));
    assert_eq!(burst.last(), Some(&Event::Close(1006, String::new())));
    let messages = &burst[1..burst.len() - 1];
    assert_eq!(
        messages,
        &texts("b", messages.len())[..],
        "messages in order, then on_close"
    );

    // Exactly once each, and nothing more arrives later.
    let stats = wait_for_stats(&server.handle(), "all closed", |s| {
        s.connections_open == 0 && s.job_queue_depth == 0 && s.busy_workers == 0
    });
    assert_eq!(stats.upgrades, 4);
    server.shutdown().unwrap();
    assert_eq!(lifecycle.closes(), 4);
    let mut per_conn: HashMap<ConnId, usize> = HashMap::new();
    for (conn, event) in lifecycle.events.lock().unwrap().iter() {
        if matches!(event, Event::Close(..)) {
            *per_conn.entry(*conn).or_default() += 1;
        }
    }
    assert!(per_conn.values().all(|&n| n == 1), "{per_conn:?}");
}

#[test]
fn shutdown_sends_1001_to_every_client_and_joins() {
    let recorder = Recorder::default();
    let server = start(config(), recorder.clone());
    let handle = server.handle();
    let mut clients: Vec<Client> = (0..3).map(|_| connect(server.local_addr())).collect();
    let ids = recorder.wait_opened(3);
    for (i, client) in clients.iter_mut().enumerate() {
        client.send(Message::text(format!("hello {i}"))).unwrap();
        assert_eq!(client.read().unwrap(), Message::text(format!("hello {i}")));
    }

    let (done_tx, done_rx) = mpsc::channel();
    let stopper = thread::spawn(move || done_tx.send(server.shutdown()).unwrap());
    for client in &mut clients {
        assert_eq!(read_close(client), 1001);
        // Reply to the close (tungstenite queues the reply; reading flushes it) and see EOF.
        while client.read().is_ok() {}
    }
    let joined = done_rx
        .recv_timeout(DEADLINE)
        .expect("shutdown finished within the deadline");
    joined.expect("clean join");
    stopper.join().unwrap();

    assert_eq!(handle.send(ids[0], "too late"), Err(SendError::Stopped));
    assert_eq!(handle.broadcast("too late"), Err(SendError::Stopped));
    let stats = handle.stats();
    assert_eq!(stats.connections_open, 0, "{stats:?}");
    assert_eq!(stats.closed_server, 3, "{stats:?}");
}

/// Echoes, but only once the gate is open.
struct Gated {
    gate: Arc<(Mutex<bool>, Condvar)>,
}

impl Handler for Gated {
    type Session = ();

    fn on_message(&self, ctx: &mut Context<'_>, message: wsreactor::Message) {
        let (open, changed) = &*self.gate;
        let mut open = open.lock().unwrap();
        while !*open {
            open = changed.wait(open).unwrap();
        }
        drop(open);
        ctx.send(message);
    }
}

#[test]
fn backpressure_holds_messages_without_dropping_any() {
    const MESSAGES: usize = 200;
    let mut config = config();
    config.workers = 1;
    config.job_queue_capacity = 1;
    config.max_pending_messages = 2;
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let server = start(
        config,
        Gated {
            gate: Arc::clone(&gate),
        },
    );
    let handle = server.handle();
    let mut client = connect(server.local_addr());
    for i in 0..MESSAGES {
        client.write(Message::text(format!("msg {i}"))).unwrap();
    }
    client.flush().unwrap();

    // The only worker is blocked and the connection holds all it may: reading pauses.
    let stats = wait_for_stats(&handle, "reading paused", |s| {
        s.busy_workers == 1 && s.backpressure_pauses > 0
    });
    assert!(
        stats.messages_in < MESSAGES as u64,
        "the server kept reading while the worker was blocked: {stats:?}"
    );

    {
        let (open, changed) = &*gate;
        *open.lock().unwrap() = true;
        changed.notify_all();
    }
    for i in 0..MESSAGES {
        assert_eq!(client.read().unwrap(), Message::text(format!("msg {i}")));
    }
    let stats = handle.stats();
    assert_eq!(stats.messages_in, MESSAGES as u64, "{stats:?}");
    assert_eq!(stats.messages_out, MESSAGES as u64, "{stats:?}");
    client.close(None).unwrap();
    server.shutdown().unwrap();
}

/// Where a handler call waits until the test lets it go, telling the test that it waits.
#[derive(Clone, Default)]
struct Gate {
    held: Arc<(Mutex<bool>, Condvar)>,
    open: Arc<(Mutex<bool>, Condvar)>,
}

impl Gate {
    /// In the handler: says it is held, then waits for [`open`](Self::open).
    fn hold(&self) {
        let (held, signal) = &*self.held;
        *held.lock().unwrap() = true;
        signal.notify_all();
        let (open, changed) = &*self.open;
        let mut open = open.lock().unwrap();
        while !*open {
            open = changed.wait(open).unwrap();
        }
    }

    /// In the test: waits until a call is held.
    fn wait_held(&self) {
        let (held, signal) = &*self.held;
        let mut held = held.lock().unwrap();
        while !*held {
            held = signal.wait(held).unwrap();
        }
    }

    /// In the test: lets the held call (and any later one) go on.
    fn open(&self) {
        let (open, changed) = &*self.open;
        *open.lock().unwrap() = true;
        changed.notify_all();
    }
}

/// Holds `on_upgrade` until released, and records the lifecycle calls.
#[derive(Clone, Default)]
struct SlowUpgrade {
    gate: Gate,
    events: Arc<Mutex<Vec<String>>>,
}

impl Handler for SlowUpgrade {
    type Session = ();

    fn on_upgrade(
        &self,
        _: &wsreactor::Request,
        _: &wsreactor::UpgradeOffer,
    ) -> wsreactor::Upgrade {
        self.gate.hold();
        wsreactor::Upgrade::accept()
    }

    fn on_open(&self, ctx: &mut Context<'_>) {
        self.events
            .lock()
            .unwrap()
            .push(format!("open {}", ctx.conn()));
    }

    fn on_message(&self, ctx: &mut Context<'_>, message: wsreactor::Message) {
        ctx.send(message);
    }

    fn on_close(&self, conn: ConnId, _session: (), close: &CloseInfo, _: &ServerHandle) {
        let code = close.code.as_u16();
        self.events
            .lock()
            .unwrap()
            .push(format!("close {conn} {code}"));
    }
}

/// Regression: a connection dropped by the server while `on_upgrade` was still running (here:
/// the shutdown deadline passed) used to get `on_open` (the worker went on and accepted) but never
/// `on_close`, leaking whatever the handler registered in `on_open`.
#[test]
fn a_connection_dropped_during_the_upgrade_still_gets_on_close_after_on_open() {
    let handler = SlowUpgrade::default();
    let mut config = config();
    config.shutdown_timeout = std::time::Duration::from_millis(200);
    let server = start(config, handler.clone());
    let handle = server.handle();
    let mut stream = raw(server.local_addr());
    stream.write_all(upgrade_request("/ws").as_bytes()).unwrap();
    handler.gate.wait_held();
    // The worker is inside on_upgrade; the shutdown deadline passes and the loop drops the
    // connection.
    handle.shutdown();
    wait_for_stats(&handle, "the connection dropped", |s| {
        s.connections_open == 0
    });
    handler.gate.open();
    server.join().unwrap();
    drop(stream);
    let events = handler.events.lock().unwrap().clone();
    assert_eq!(
        events.len(),
        2,
        "on_open, then on_close exactly once: {events:?}"
    );
    assert!(events[0].starts_with("open "), "{events:?}");
    assert!(
        events[1].starts_with("close ") && events[1].ends_with(" 1006"),
        "{events:?}"
    );
}

/// Holds `on_message` for a "block" message until released; echoes the rest.
#[derive(Clone, Default)]
struct SlowMessage {
    gate: Gate,
}

impl Handler for SlowMessage {
    type Session = ();

    fn on_message(&self, ctx: &mut Context<'_>, message: wsreactor::Message) {
        if message.as_bytes() == b"block" {
            self.gate.hold();
        }
        ctx.send(message);
    }
}

/// Regression: a reply that reached the loop after the shutdown had given up waiting for it
/// (`shutdown_timeout`) was dropped with the loop's reply channel, its lease never given back:
/// the loop thread panicked on the lost-lease check (a fresh-clone CI run met it through
/// `tests/extreme_configs.rs`, `shutdown_timeout` = 1 ms). Here the loop waits to queue an
/// idle connection's `on_close` behind a queued upgrade while the worker finishes the blocked
/// message: its reply lands in the channel before the loop drops it.
#[test]
fn a_reply_that_comes_after_the_shutdown_gave_up_on_it_is_let_go() {
    let handler = SlowMessage::default();
    let mut config = config();
    config.workers = 1;
    config.event_loops = 1;
    config.job_queue_capacity = 1;
    config.shutdown_timeout = std::time::Duration::ZERO;
    let server = start(config, handler.clone());
    let handle = server.handle();
    let addr = server.local_addr();
    let (_idle, _) = tungstenite::connect(format!("ws://{addr}/ws")).expect("upgrade");
    let (mut blocked, _) = tungstenite::connect(format!("ws://{addr}/ws")).expect("upgrade");
    blocked.send(Message::text("block")).unwrap();
    handler.gate.wait_held();
    // The worker is held; this upgrade's job fills the queue.
    let mut queued = raw(addr);
    queued.write_all(upgrade_request("/ws").as_bytes()).unwrap();
    wait_for_stats(&handle, "the upgrade queued", |s| s.job_queue_depth == 1);
    handle.shutdown();
    wait_for_stats(&handle, "the connections dropped", |s| {
        s.connections_open == 0
    });
    handler.gate.open();
    server.join().expect("no thread panicked");
}
