//! The whole reactor idea on one screen: a WebSocket echo server on `mio` alone.
//!
//! ```text
//! cargo run --example minimal_reactor -- --addr 127.0.0.1:9002
//! ```
//!
//! One thread, one `Poll`, a `Slab` of connections keyed by their `Token`. Accept until
//! `WouldBlock`; read until `WouldBlock`; parse the upgrade with `httparse`, answer `101` with
//! `derive_accept_key`; unmask each frame and echo it; answer pings; echo a close and hang up.
//! Ctrl-C or SIGTERM rings a `mio::Waker` from a signal thread; the loop sends `1001` and exits.
//! No worker pool, no timers, no limits, no fragmentation, no buffer pool: `docs/netpoller.md`
//! walks through this file first and then lists, for each thing left out, where the real server
//! (`src/`) handles it.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use signal_hook::consts::{SIGINT, SIGTERM};
use slab::Slab;
use tungstenite::handshake::derive_accept_key;

const LISTENER: Token = Token(usize::MAX);
const WAKER: Token = Token(usize::MAX - 1);

/// One client: its socket, what it sent that we have not used yet, what we owe it, and whether
/// it is upgraded and, once we echoed a close, closing (hang up when `output` is written).
struct Conn {
    socket: TcpStream,
    input: Vec<u8>,
    output: Vec<u8>,
    upgraded: bool,
    closing: bool,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("minimal_reactor: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> io::Result<()> {
    let listener = TcpListener::bind(parse_addr()?)?;
    println!("minimal reactor on ws://{}/", listener.local_addr()?);
    serve(listener)
}

/// The event loop, until Ctrl-C or SIGTERM.
pub fn serve(mut listener: TcpListener) -> io::Result<()> {
    let mut poll = Poll::new()?;
    // Another thread cannot touch our sockets, but it can ring the poller's doorbell.
    let waker = Waker::new(poll.registry(), WAKER)?;
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::spawn(move || signals.forever().next().map(|_| waker.wake()));
    let mut events = Events::with_capacity(256);
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut conns: Slab<Conn> = Slab::new();
    loop {
        // The netpoller: sleep until the kernel says a socket is ready (no timeout: no timers).
        match poll.poll(&mut events, None) {
            Err(err) if interrupted(&err) => continue,
            result => result?,
        }
        for event in events.iter() {
            match event.token() {
                LISTENER => accept(&listener, &mut conns, &poll)?,
                WAKER => {
                    // Shut down: a close frame "going away" (1001) to every WebSocket.
                    for (_, conn) in conns.iter_mut().filter(|(_, c)| c.upgraded) {
                        let _ = conn.socket.write(&[0x88, 2, 0x03, 0xe9]);
                    }
                    return Ok(());
                }
                Token(key) => {
                    // (An event for a key no longer in the slab is spurious: ignored.)
                    if conns.get_mut(key).is_some_and(|conn| !drive(conn)) {
                        let mut conn = conns.remove(key);
                        poll.registry().deregister(&mut conn.socket)?;
                    } else if let Some(conn) = conns.get_mut(key) {
                        // WRITABLE interest only while bytes wait for the socket.
                        let interest = if conn.output.is_empty() {
                            Interest::READABLE
                        } else {
                            Interest::READABLE | Interest::WRITABLE
                        };
                        poll.registry()
                            .reregister(&mut conn.socket, Token(key), interest)?;
                    }
                }
            }
        }
    }
}

/// Accepts until the backlog is empty: edge-triggered readiness will not say it twice.
fn accept(listener: &TcpListener, conns: &mut Slab<Conn>, poll: &Poll) -> io::Result<()> {
    loop {
        let (mut socket, _peer) = match listener.accept() {
            Ok(pair) => pair,
            Err(err) if would_block(&err) => return Ok(()),
            Err(err) if interrupted(&err) => continue,
            Err(err) => return Err(err),
        };
        let entry = conns.vacant_entry();
        poll.registry()
            .register(&mut socket, Token(entry.key()), Interest::READABLE)?;
        entry.insert(Conn {
            socket,
            input: Vec::new(),
            output: Vec::new(),
            upgraded: false,
            closing: false,
        });
    }
}

/// Reads all there is, answers it, writes what the socket takes. False: drop the connection.
fn drive(conn: &mut Conn) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match conn.socket.read(&mut buf) {
            Ok(0) => return false, // EOF
            Ok(n) => conn.input.extend_from_slice(&buf[..n]),
            Err(err) if would_block(&err) => break,
            Err(err) if interrupted(&err) => continue,
            Err(_) => return false,
        }
    }
    if !conn.upgraded && !upgrade(conn) {
        return false;
    }
    while conn.upgraded && !conn.closing {
        match decode_frame(&mut conn.input) {
            Some(Ok((opcode, payload))) => answer(conn, opcode, &payload),
            Some(Err(())) => return false, // unmasked or too large: no polite close here
            None => break,                 // need more bytes
        }
    }
    while !conn.output.is_empty() {
        match conn.socket.write(&conn.output) {
            Ok(n) => drop(conn.output.drain(..n)),
            Err(err) if would_block(&err) => return true, // wait for WRITABLE
            Err(err) if interrupted(&err) => continue,
            Err(_) => return false,
        }
    }
    !conn.closing
}

/// Parses the request once its head is complete and queues the `101`. False: not an upgrade.
fn upgrade(conn: &mut Conn) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(&conn.input) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return true, // wait for the rest
        Err(_) => return false,
    };
    let key = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-key"));
    let Some(key) = key else { return false };
    let accept = derive_accept_key(key.value);
    conn.output.extend_from_slice(
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        )
        .as_bytes(),
    );
    conn.input.drain(..head_len); // frames sent right after the request stay
    conn.upgraded = true;
    true
}

/// Takes one whole client frame off the front of `input`: (opcode, unmasked payload).
fn decode_frame(input: &mut Vec<u8>) -> Option<Result<(u8, Vec<u8>), ()>> {
    let (&b0, &b1) = (input.first()?, input.get(1)?);
    if b1 & 0x80 == 0 {
        return Some(Err(())); // a client MUST mask its frames (RFC 6455 §5.1)
    }
    let (len, mut at) = match b1 & 0x7f {
        126 => (
            u16::from_be_bytes([*input.get(2)?, *input.get(3)?]) as usize,
            4,
        ),
        127 => return Some(Err(())), // 64-bit lengths: not in one screen
        n => (n as usize, 2),
    };
    let mask: [u8; 4] = input.get(at..at + 4)?.try_into().ok()?;
    at += 4;
    let payload = input.get(at..at + len)?;
    let unmasked = payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]);
    let frame = (b0 & 0x0f, unmasked.collect());
    input.drain(..at + len);
    Some(Ok(frame))
}

/// Echoes data, answers a ping with a pong, a close with a close.
fn answer(conn: &mut Conn, opcode: u8, payload: &[u8]) {
    let reply = match opcode {
        0x1 | 0x2 => opcode, // text, binary: echo
        0x9 => 0xA,          // ping → pong
        0x8 => {
            conn.closing = true; // close → close, then hang up
            0x8
        }
        _ => return, // pongs, continuations: ignored here
    };
    conn.output.push(0x80 | reply);
    match payload.len() {
        n if n < 126 => conn.output.push(n as u8),
        n => {
            conn.output.push(126);
            conn.output.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    conn.output.extend_from_slice(payload);
}

fn would_block(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::WouldBlock
}

fn interrupted(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::Interrupted
}

fn parse_addr() -> io::Result<SocketAddr> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("usage: minimal_reactor [--addr HOST:PORT]   (default 127.0.0.1:9002)");
        std::process::exit(0);
    }
    let addr = match &args[..] {
        [] => "127.0.0.1:9002",
        [flag, addr] if flag == "--addr" => addr,
        _ => return Err(io::Error::other(format!("bad arguments {args:?}"))),
    };
    let bad = |err| io::Error::other(format!("--addr {addr}: {err}"));
    addr.parse().map_err(bad)
}
