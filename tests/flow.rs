//! Visible backpressure over real sockets: a handler sees the bytes queued for its connection
//! grow as it sends, `Context::send` answers `Pressure::High` past `high_water_bytes`, and
//! `on_drain` comes once the client has read the output down to `low_water_bytes`.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use tungstenite::Message as TMessage;
use wsreactor::{Context, Handler, Message, Pressure};

/// On `flood`, sends 1 KiB messages until the output is past the high-water mark, and records
/// how many it sent and what `queued_bytes` said; `on_drain` sends `drained`.
#[derive(Default, Clone)]
struct Flooder {
    seen: Arc<Mutex<Vec<(usize, usize)>>>,
}

impl Handler for Flooder {
    type Session = ();

    fn on_message(&self, ctx: &mut Context<'_>, _message: Message) {
        let mut sent = 0;
        while sent < 10_000 {
            sent += 1;
            if ctx.send(vec![b'f'; 1024]) == Pressure::High {
                break;
            }
        }
        assert_eq!(ctx.pressure(), Pressure::High);
        self.seen.lock().unwrap().push((sent, ctx.queued_bytes()));
    }

    fn on_drain(&self, ctx: &mut Context<'_>) {
        ctx.send("drained");
    }
}

#[test]
fn send_says_past_the_high_water_mark_and_on_drain_follows_the_reads() {
    let mut config = config();
    config.high_water_bytes = 64 * 1024;
    config.low_water_bytes = 8 * 1024;
    let app = Flooder::default();
    let server = start(config, app.clone());
    let mut client = connect(server.local_addr());
    client.send(TMessage::text("flood")).unwrap();
    let mut floods = 0;
    loop {
        match client.read().unwrap() {
            TMessage::Binary(bytes) => {
                assert_eq!(bytes.len(), 1024);
                floods += 1;
            }
            TMessage::Text(text) => {
                assert_eq!(text.as_str(), "drained", "on_drain's message comes last");
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let seen = app.seen.lock().unwrap().clone();
    // 64 frames of 1 KiB + 4 bytes of header each pass 64 KiB.
    assert_eq!(seen, [(64, 64 * 1028)], "the handler stopped at the mark");
    assert_eq!(floods, 64);
    close_client(client);
    server.shutdown().unwrap();
}

#[test]
fn a_small_outbound_limit_brings_the_marks_down_with_it() {
    let mut config = config();
    config.max_outbound_bytes = 16 * 1024; // high water taken as 16 KiB, low as 8 KiB
    let app = Flooder::default();
    let server = start(config, app.clone());
    let mut client = connect(server.local_addr());
    client.send(TMessage::text("flood")).unwrap();
    let mut floods = 0;
    while let TMessage::Binary(_) = client.read().unwrap() {
        floods += 1;
    }
    // 16 frames of 1028 bytes pass 16 KiB; then the client's reads bring on_drain.
    assert_eq!(floods, 16);
    assert_eq!(app.seen.lock().unwrap().clone(), [(16, 16 * 1028)]);
    close_client(client);
    server.shutdown().unwrap();
}
