//! Topics over real sockets, with two event loops and subscribers on both: rooms kept apart,
//! "everyone but the sender", publications from a `ServerHandle` on another thread, large
//! frames, order, the per-connection limit, and subscriptions gone once their connections close.
//!
//! The handler is a small chat: `join:R` and `leave:R` subscribe and unsubscribe (and answer
//! `joined R` / `left R`, in the same reply, so a client that reads the answer knows its loop has
//! the subscription), `say:R:text` publishes to everyone in `R` but the sender, `all:R:text` to
//! everyone in it, the sender too, between the sends `before` and `after`.

mod common;

use std::thread;

use common::*;
use tungstenite::Message;
use wsreactor::{Config, Context, Handler, MAX_TOPIC_LEN, SendError, Server, TopicError};

struct Chat;

impl Handler for Chat {
    type Session = ();

    fn on_open(&self, ctx: &mut Context<'_>) {
        let event_loop = ctx.conn().event_loop();
        ctx.send(format!("loop {event_loop}"));
    }

    fn on_message(&self, ctx: &mut Context<'_>, message: wsreactor::Message) {
        let text = String::from_utf8_lossy(message.as_bytes()).into_owned();
        let (verb, rest) = text.split_once(':').unwrap_or((&text, ""));
        let (room, said) = rest.split_once(':').unwrap_or((rest, ""));
        let answer = match verb {
            "join" => ctx.subscribe(room).map(|()| format!("joined {room}")),
            "leave" => ctx.unsubscribe(room).map(|()| format!("left {room}")),
            "say" => ctx.publish_to_others(room, said).map(|()| "said".into()),
            "all" => {
                ctx.send("before");
                let published = ctx.publish(room, said);
                ctx.send("after");
                published.map(|()| "done".into())
            }
            _ => Ok(format!("echo {text}")),
        };
        let reply = match answer {
            Ok(answer) => answer,
            Err(TopicError::TooLong(len)) => format!("too long: {len}"),
            Err(err) => format!("error: {err}"),
        };
        ctx.send(reply);
    }
}

/// Two event loops, workers as in every test.
fn two_loops() -> Config {
    let mut config = config();
    config.event_loops = 2;
    config
}

fn start_chat(config: Config) -> Server {
    start(config, Chat)
}

/// The next text message.
fn read_text(client: &mut Client) -> String {
    match client.read().expect("a message") {
        Message::Text(text) => text.to_string(),
        other => panic!("expected text, got {other:?}"),
    }
}

/// Sends `text` and expects `answer` as the next message.
fn ask(client: &mut Client, text: &str, answer: &str) {
    client.send(Message::text(text)).expect("send");
    assert_eq!(read_text(client), answer, "the answer to {text:?}");
}

/// Connects until it has `per_loop` clients on each of the two loops (the kernel spreads
/// connections over the loops' listeners: `SO_REUSEPORT`). Returns them by loop.
fn clients_on_both_loops(server: &Server, per_loop: usize) -> [Vec<Client>; 2] {
    let mut by_loop: [Vec<Client>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..200 {
        if by_loop.iter().all(|clients| clients.len() >= per_loop) {
            return by_loop;
        }
        let mut client = connect(server.local_addr());
        let event_loop = match read_text(&mut client).as_str() {
            "loop 0" => 0,
            "loop 1" => 1,
            other => panic!("not a greeting: {other}"),
        };
        if by_loop[event_loop].len() < per_loop {
            by_loop[event_loop].push(client);
        } else {
            close_client(client);
        }
    }
    panic!("200 connections did not reach both event loops");
}

#[test]
fn rooms_are_kept_apart_across_event_loops() {
    let server = start_chat(two_loops());
    let [mut zero, mut one] = clients_on_both_loops(&server, 2);
    // Room red: one client on each loop; room blue: the others.
    ask(&mut zero[0], "join:red", "joined red");
    ask(&mut one[0], "join:red", "joined red");
    ask(&mut zero[1], "join:blue", "joined blue");
    ask(&mut one[1], "join:blue", "joined blue");

    ask(&mut zero[0], "all:red:for red", "before");
    assert_eq!(read_text(&mut zero[0]), "for red");
    assert_eq!(read_text(&mut zero[0]), "after");
    assert_eq!(read_text(&mut zero[0]), "done");
    assert_eq!(read_text(&mut one[0]), "for red", "across loops");
    ask(&mut one[1], "all:blue:for blue", "before");
    assert_eq!(read_text(&mut one[1]), "for blue");
    // Blue heard nothing of red: its next message is blue's own.
    assert_eq!(read_text(&mut zero[1]), "for blue");
    ask(&mut zero[1], "ping", "echo ping");
    ask(&mut one[0], "ping", "echo ping");
    server.shutdown().expect("clean shutdown");
}

#[test]
fn everyone_but_the_sender_hears_what_it_says() {
    let server = start_chat(two_loops());
    let [mut zero, mut one] = clients_on_both_loops(&server, 2);
    for client in zero.iter_mut().chain(one.iter_mut()) {
        ask(client, "join:lobby", "joined lobby");
    }
    ask(&mut zero[0], "say:lobby:hello", "said");
    for client in zero[1..].iter_mut().chain(one.iter_mut()) {
        assert_eq!(read_text(client), "hello");
    }
    // The sender got nothing but its answer: the next message is the echo.
    ask(&mut zero[0], "ping", "echo ping");
    ask(&mut one[1], "say:lobby:from loop 1", "said");
    for client in zero.iter_mut().chain(one[..1].iter_mut()) {
        assert_eq!(read_text(client), "from loop 1");
    }
    ask(&mut one[1], "ping", "echo ping");
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_publisher_s_messages_keep_their_order_on_both_loops() {
    let server = start_chat(two_loops());
    let [mut zero, mut one] = clients_on_both_loops(&server, 2);
    for client in zero.iter_mut().chain(one.iter_mut()) {
        ask(client, "join:seq", "joined seq");
    }
    // Sent without waiting for the answers: several messages per job, many jobs.
    for n in 0..200 {
        zero[0]
            .send(Message::text(format!("say:seq:{n}")))
            .expect("send");
    }
    for n in 0..200 {
        assert_eq!(read_text(&mut zero[0]), "said", "answer {n}");
    }
    for client in zero[1..].iter_mut().chain(one.iter_mut()) {
        for n in 0..200 {
            assert_eq!(read_text(client), n.to_string());
        }
    }
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_handle_on_another_thread_publishes_to_every_loop() {
    let server = start_chat(two_loops());
    let [mut zero, mut one] = clients_on_both_loops(&server, 1);
    ask(&mut zero[0], "join:news", "joined news");
    ask(&mut one[0], "join:news", "joined news");
    let handle = server.handle();
    let publisher = thread::spawn(move || {
        for n in 0..50 {
            handle
                .publish("news", format!("item {n}"))
                .expect("publish");
        }
        handle
            .try_publish("news", "last")
            .expect("room in the queues");
        handle
            .publish("sports", "nobody reads this")
            .expect("publish");
        assert_eq!(
            handle.publish(&"x".repeat(MAX_TOPIC_LEN + 1), "no"),
            Err(SendError::TopicTooLong)
        );
    });
    publisher.join().expect("the publisher thread");
    for client in [&mut zero[0], &mut one[0]] {
        for n in 0..50 {
            assert_eq!(read_text(client), format!("item {n}"), "in order");
        }
        assert_eq!(read_text(client), "last");
    }
    let stats = wait_for_stats(&server.handle(), "every delivery", |s| {
        s.topic_deliveries >= 102
    });
    assert_eq!(stats.publishes, 52);
    assert_eq!(stats.topic_deliveries, 102, "two subscribers, 51 items");
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_large_publication_reaches_both_loops_intact() {
    let server = start_chat(two_loops());
    let [mut zero, mut one] = clients_on_both_loops(&server, 2);
    for client in zero.iter_mut().chain(one.iter_mut()) {
        ask(client, "join:big", "joined big");
    }
    let payload: String = (0..256 * 1024)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    server
        .handle()
        .publish("big", payload.clone())
        .expect("publish");
    for client in zero.iter_mut().chain(one.iter_mut()) {
        assert_eq!(read_text(client), payload);
    }
    ask(
        &mut zero[0],
        &format!("say:big:{}", &payload[..70_000]),
        "said",
    );
    for client in zero[1..].iter_mut().chain(one.iter_mut()) {
        assert_eq!(read_text(client), payload[..70_000]);
    }
    server.shutdown().expect("clean shutdown");
}

#[test]
fn subscriptions_are_gone_once_their_connections_close() {
    let server = start_chat(two_loops());
    let handle = server.handle();
    let [zero, one] = clients_on_both_loops(&server, 2);
    let mut clients: Vec<Client> = zero.into_iter().chain(one).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        ask(client, "join:everyone", "joined everyone");
        ask(client, &format!("join:own-{i}"), &format!("joined own-{i}"));
    }
    let stats = wait_for_stats(&handle, "8 subscriptions", |s| s.subscriptions == 8);
    // "everyone" on both loops, and four rooms of one.
    assert_eq!(stats.topics, 6, "summed over the loops");
    let mut kept = clients.split_off(2);
    for client in clients {
        close_client(client);
    }
    // One goes without a close frame (FIN only).
    drop(kept.remove(0));
    let stats = wait_for_stats(&handle, "5 connections closed", |s| {
        s.subscriptions == 2 && s.websocket_open == 1
    });
    assert_eq!(stats.topics, 2);
    handle.publish("everyone", "still here").expect("publish");
    assert_eq!(read_text(&mut kept[0]), "still here");
    close_client(kept.remove(0));
    wait_for_stats(&handle, "no subscriptions left", |s| {
        s.subscriptions == 0 && s.topics == 0
    });
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_connection_may_hold_max_subscriptions_and_names_are_bounded() {
    let mut config = two_loops();
    config.max_subscriptions = 2;
    let server = start_chat(config);
    let mut client = connect(server.local_addr());
    read_text(&mut client); // the greeting
    ask(&mut client, "join:a", "joined a");
    ask(&mut client, "join:b", "joined b");
    ask(&mut client, "join:c", "joined c"); // refused by the loop, not by the handler
    let stats = wait_for_stats(&server.handle(), "a refusal", |s| {
        s.subscriptions_refused == 1
    });
    assert_eq!(stats.subscriptions, 2);
    server
        .handle()
        .publish("c", "not for you")
        .expect("publish");
    server.handle().publish("a", "for you").expect("publish");
    assert_eq!(read_text(&mut client), "for you");
    let long = "n".repeat(MAX_TOPIC_LEN + 1);
    ask(
        &mut client,
        &format!("join:{long}"),
        &format!("too long: {}", MAX_TOPIC_LEN + 1),
    );
    close_client(client);
    server.shutdown().expect("clean shutdown");
}

#[test]
fn subscribers_that_do_not_read_are_dropped_and_the_rest_are_served() {
    let mut config = two_loops();
    config.max_outbound_bytes = 64 * 1024;
    let server = start_chat(config);
    let [mut zero, mut one] = clients_on_both_loops(&server, 2);
    for client in zero.iter_mut().chain(one.iter_mut()) {
        ask(client, "join:firehose", "joined firehose");
    }
    // zero[1] and one[1] never read; the others read everything. 16 MiB each: more than the
    // kernel's socket buffers can hide from the server.
    const ITEMS: usize = 1024;
    let handle = server.handle();
    let item = "f".repeat(16 * 1024);
    let publisher = thread::spawn(move || {
        for _ in 0..ITEMS {
            handle.publish("firehose", item.clone()).expect("publish");
        }
    });
    let readers = [zero.remove(0), one.remove(0)].map(|mut client| {
        thread::spawn(move || {
            for _ in 0..ITEMS {
                assert_eq!(read_text(&mut client).len(), 16 * 1024);
            }
            client
        })
    });
    publisher.join().expect("publisher");
    for reader in readers {
        close_client(reader.join().expect("a reader got everything"));
    }
    wait_for_stats(&server.handle(), "the slow consumers dropped", |s| {
        s.closed_server == 2 && s.subscriptions == 0
    });
    drop((zero, one));
    server.shutdown().expect("clean shutdown");
}
