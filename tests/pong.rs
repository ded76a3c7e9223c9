//! The pong hook over real sockets: a handler pings its client (`Context::ping`, here from a
//! timer, the shape of an application keepalive), the client's pong comes back to
//! `Handler::on_pong` with the ping's payload, in order with the connection's messages, and the
//! handler measures the round trip.

mod common;

use std::time::{Duration, Instant};

use common::*;
use tungstenite::Message as TMessage;
use wsreactor::{Context, Handler, Message};

/// Each connection's pings in flight: (payload, when it went out).
#[derive(Default)]
struct Pinger {
    sent: Vec<(Vec<u8>, Instant)>,
    count: u32,
}

/// `ping` pings at once, `later` arms a timer that pings in 20 ms; `on_pong` answers
/// `pong:PAYLOAD:MICROS`, or `stray:PAYLOAD` for a pong it did not send.
struct Rtt;

impl Rtt {
    fn ping(ctx: &mut Context<'_, Pinger>) {
        let pinger = ctx.session_mut();
        pinger.count += 1;
        let payload = format!("rtt-{}", pinger.count).into_bytes();
        pinger.sent.push((payload.clone(), Instant::now()));
        ctx.ping(&payload).expect("a short payload");
    }
}

impl Handler for Rtt {
    type Session = Pinger;

    fn on_message(&self, ctx: &mut Context<'_, Pinger>, message: Message) {
        match message.as_bytes() {
            b"ping" => Rtt::ping(ctx),
            b"later" => ctx.set_timer(1, Duration::from_millis(20)).expect("room"),
            other => {
                let text = String::from_utf8_lossy(other).into_owned();
                ctx.send(format!("echo:{text}"));
            }
        }
    }

    fn on_timer(&self, ctx: &mut Context<'_, Pinger>, _key: u64) {
        Rtt::ping(ctx);
    }

    fn on_pong(&self, ctx: &mut Context<'_, Pinger>, payload: &[u8]) {
        let sent = &mut ctx.session_mut().sent;
        let answer = match sent.iter().position(|(p, _)| p == payload) {
            Some(i) => {
                let (_, at) = sent.remove(i);
                let rtt = at.elapsed().as_micros();
                format!("pong:{}:{rtt}", String::from_utf8_lossy(payload))
            }
            None => format!("stray:{}", String::from_utf8_lossy(payload)),
        };
        ctx.send(answer);
    }
}

/// Reads until a text message, answering the pings on the way (tungstenite queues the pong
/// and sends it on the next write or flush); returns the text and the pings seen.
fn next_text(client: &mut Client) -> (String, Vec<Vec<u8>>) {
    let mut pings = Vec::new();
    loop {
        match client.read().expect("a frame") {
            TMessage::Text(text) => return (text.as_str().to_owned(), pings),
            TMessage::Ping(payload) => {
                pings.push(payload.to_vec());
                client.flush().expect("the pong goes out");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn rtt_of(answer: &str, payload: &str) -> u128 {
    let rest = answer
        .strip_prefix(&format!("pong:{payload}:"))
        .unwrap_or_else(|| panic!("a pong for {payload}: {answer}"));
    rest.parse().expect("micros")
}

#[test]
fn the_pong_of_a_handlers_ping_comes_back_with_its_payload_and_a_round_trip_time() {
    let server = start(config(), Rtt);
    let mut client = connect(server.local_addr());
    let started = Instant::now();
    client.send(TMessage::text("ping")).unwrap();
    let (answer, pings) = next_text(&mut client);
    assert_eq!(
        pings,
        [b"rtt-1".to_vec()],
        "the ping, as the handler sent it"
    );
    let rtt = rtt_of(&answer, "rtt-1");
    assert!(
        rtt <= started.elapsed().as_micros(),
        "the server's round trip fits inside the client's: {rtt} µs"
    );
    // From a timer, and in order with a message sent right behind the pong.
    client.send(TMessage::text("later")).unwrap();
    match client.read().expect("the timer's ping") {
        TMessage::Ping(payload) => assert_eq!(&payload[..], b"rtt-2"),
        other => panic!("expected a ping, got {other:?}"),
    }
    client.flush().unwrap(); // the pong, then right behind it a message
    client.send(TMessage::text("after")).unwrap();
    let (first, _) = next_text(&mut client);
    rtt_of(&first, "rtt-2");
    assert_eq!(next_text(&mut client).0, "echo:after");
    // A pong nobody asked for goes nowhere: the next answer is the echo.
    client
        .send(TMessage::Pong(b"unasked".to_vec().into()))
        .unwrap();
    client.send(TMessage::text("x")).unwrap();
    assert_eq!(next_text(&mut client).0, "echo:x");
    close_client(client);
}
