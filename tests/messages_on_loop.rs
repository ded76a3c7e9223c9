//! WebSocket messages the handler handles without blocking (`Handler::handles_without_blocking`):
//! with the worker pool, the event loop calls `on_message` itself — after inflating it, on a
//! connection that agreed to compression, if that fits in a turn's budget; every other message,
//! a batch with one such message in it, and the calls that are not messages (`on_open`,
//! `on_close`) still go to a worker. Each reply says which thread made
//! it, so the tests see where it ran, through real sockets.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::thread;

use common::*;
use wsreactor::ws::deflate::compress;
use wsreactor::{Config, Context, Handler, Message};

/// The name of the thread this runs on.
fn here() -> String {
    thread::current().name().unwrap_or("unnamed").to_owned()
}

/// Answers every text with the text and the name of the thread that ran `on_message` (and says
/// where `on_open` ran). Declares texts starting with `fast` cheap; panics when asked about
/// `confused`.
struct WhereHandled;

impl Handler for WhereHandled {
    type Session = ();

    fn on_open(&self, ctx: &mut Context<'_>) {
        ctx.send(Message::Text(format!("opened on {}", here())));
    }

    fn on_message(&self, ctx: &mut Context<'_>, message: Message) {
        if let Message::Text(text) = message {
            ctx.send(Message::Text(format!("{text} on {}", here())));
        }
    }

    fn handles_without_blocking(&self, message: &Message) -> bool {
        match message {
            Message::Text(text) if text == "confused" => {
                panic!("a panic in handles_without_blocking, requested by the test")
            }
            Message::Text(text) => text.starts_with("fast"),
            Message::Binary(_) => false,
        }
    }
}

fn server(config: Config) -> (wsreactor::Server, SocketAddr) {
    let server = start(config, WhereHandled);
    let addr = server.local_addr();
    (server, addr)
}

fn pool_config() -> Config {
    let mut config = config();
    config.inline_handlers = false;
    config
}

/// Upgrades with `extra` header lines (each ending in CRLF); returns the stream after `on_open`'s message, and that
/// message.
fn open(addr: SocketAddr, extra: &str) -> (TcpStream, String) {
    let mut stream = raw(addr);
    let request = upgrade_request("/ws").replace("\r\n\r\n", &format!("\r\n{extra}\r\n"));
    stream.write_all(request.as_bytes()).expect("write upgrade");
    let head = read_http_head(&mut stream).expect("101");
    assert_eq!(status(&head), 101, "{head}");
    let opened = text_frame(&mut stream);
    (stream, opened)
}

fn text_frame(stream: &mut TcpStream) -> String {
    let (fin, opcode, payload) = read_frame(stream).expect("a frame");
    assert_eq!((fin, opcode), (true, 0x1));
    String::from_utf8(payload).expect("UTF-8")
}

/// Sends `texts` in one write and reads as many replies, in order.
fn replies(stream: &mut TcpStream, texts: &[&str]) -> Vec<String> {
    let frames: Vec<u8> = texts
        .iter()
        .flat_map(|text| masked(true, 0x1, text.as_bytes()))
        .collect();
    stream.write_all(&frames).expect("write");
    texts.iter().map(|_| text_frame(stream)).collect()
}

#[test]
fn a_message_declared_cheap_is_handled_on_the_loop_and_others_by_a_worker() {
    let (server, addr) = server(pool_config());
    let (mut stream, opened) = open(addr, "");
    assert!(
        opened.starts_with("opened on wsreactor-worker-"),
        "{opened}"
    );
    for _ in 0..3 {
        let fast = replies(&mut stream, &["fast"]);
        assert!(fast[0].starts_with("fast on wsreactor-loop-"), "{fast:?}");
        let slow = replies(&mut stream, &["slow"]);
        assert!(slow[0].starts_with("slow on wsreactor-worker-"), "{slow:?}");
    }
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_batch_stays_on_the_loop_only_if_every_message_in_it_is_cheap() {
    let (server, addr) = server(pool_config());
    let (mut stream, _) = open(addr, "");
    let all_cheap = replies(&mut stream, &["fast 1", "fast 2", "fast 3"]);
    for (reply, text) in all_cheap.iter().zip(["fast 1", "fast 2", "fast 3"]) {
        let on_loop = format!("{text} on wsreactor-loop-");
        assert!(reply.starts_with(&on_loop), "{reply:?} in {all_cheap:?}");
    }
    let mixed = replies(&mut stream, &["fast 4", "slow", "fast 5"]);
    // "slow" and what came after it in its batch went to a worker.
    let slow = mixed.iter().position(|r| r.starts_with("slow on "));
    assert!(slow.is_some_and(|at| {
        mixed[at..]
            .iter()
            .all(|r| r.contains(" on wsreactor-worker-"))
    }));
    server.shutdown().expect("clean shutdown");
}

/// A masked text frame of `text` deflated, RSV1 set.
fn compressed(text: &str) -> Vec<u8> {
    let mut frame = masked(true, 0x1, &compress(text.as_bytes(), 15, 1));
    frame[0] |= 0x40;
    frame
}

/// On a connection that agreed to compression, the loop inflates a compressed message to ask
/// about it: declared cheap, it is handled there, as an uncompressed one is; not declared, or
/// inflating past `max_read_per_turn` (the loop's work for one connection in a turn), it goes to
/// a worker, which inflates it. One that does not inflate still fails the connection (`1007`),
/// counted once.
#[test]
fn a_compressed_message_declared_cheap_is_inflated_and_handled_on_the_loop_within_the_turns_budget()
{
    let mut config = pool_config();
    config.compression = true;
    config.compression_threshold = 1 << 20; // the replies stay uncompressed, readable here
    config.max_read_per_turn = 4096;
    let (server, addr) = server(config);
    let offer = "Sec-WebSocket-Extensions: permessage-deflate\r\n";
    let (mut stream, _) = open(addr, offer);
    let long = format!("fast {}", "x".repeat(5000));
    let expected = [
        (compressed("fast"), "fast on wsreactor-loop-"),
        (
            masked(true, 0x1, b"fast plain"),
            "fast plain on wsreactor-loop-",
        ),
        (compressed("slow"), "slow on wsreactor-worker-"),
        (compressed(&long), "on wsreactor-worker-"),
        (compressed("fast again"), "fast again on wsreactor-loop-"),
    ];
    for (frame, reply) in expected {
        stream.write_all(&frame).expect("write");
        let got = text_frame(&mut stream);
        assert!(
            got.contains(reply),
            "{reply:?} in {:?}",
            &got[got.len().saturating_sub(60)..]
        );
    }
    let mut broken = masked(true, 0x1, &[0xff, 0xff, 0xff]);
    broken[0] |= 0x40;
    stream.write_all(&broken).expect("write");
    assert_eq!(read_close_code(&mut stream), Some(1007));
    assert_eq!(server.handle().stats().inflate_failures, 1);
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_panic_in_the_declaration_sends_the_message_to_a_worker_and_is_counted() {
    let (server, addr) = server(pool_config());
    let (mut stream, _) = open(addr, "");
    let confused = replies(&mut stream, &["confused"]);
    assert!(
        confused[0].starts_with("confused on wsreactor-worker-"),
        "{confused:?}"
    );
    // The loop survived, and still handles declared messages itself.
    let fast = replies(&mut stream, &["fast"]);
    assert!(fast[0].starts_with("fast on wsreactor-loop-"), "{fast:?}");
    assert_eq!(server.handle().stats().handler_panics, 1);
    server.shutdown().expect("clean shutdown");
}
