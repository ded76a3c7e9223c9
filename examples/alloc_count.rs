//! Heap allocations per echoed message, counted by a global allocator wrapper.
//!
//! ```text
//! cargo run --release --example alloc_count
//! ```
//!
//! Starts an echo server in this process (worker-pool mode, then inline mode), drives it with a
//! raw client that reuses pre-encoded frames and one read buffer (so the client allocates
//! nothing in steady state), and divides the allocations made during the measured window by the
//! messages echoed. Pipelined batches of 8 and single round trips are both reported, because
//! batching is what amortises the per-job allocations. Then the same for keep-alive `GET`
//! requests answered with a small page, by a handler that declares it answers without blocking
//! (answered on the loop) and by one that does not (answered by a worker).

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};

use wsreactor::{Config, Context, Handler, Message, Request, Response, Server};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: delegates to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A masked client text frame of `size` bytes.
fn frame(size: usize) -> Vec<u8> {
    let mask = [1u8, 2, 3, 4];
    let mut out = vec![0x81, 0x80 | size as u8];
    out.extend_from_slice(&mask);
    out.extend((0..size).map(|i| b'a' ^ mask[i % 4]));
    out
}

/// A response head, read byte by byte up to its blank line (so nothing after it is taken).
fn read_head(stream: &mut TcpStream) -> Vec<u8> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("a response head");
        head.push(byte[0]);
    }
    head
}

fn handshake(stream: &mut TcpStream) {
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .expect("write upgrade");
    assert!(read_head(stream).starts_with(b"HTTP/1.1 101"));
}

/// One worker, inline handlers or not, no keepalive pings, on a free port.
fn config(inline: bool) -> Config {
    let mut config = Config::default();
    config.addr = "127.0.0.1:0".parse().expect("address");
    config.workers = 1;
    config.inline_handlers = inline;
    config.ping_interval = None;
    config
}

/// Allocations per unit of `run`, over `rounds` of them, after 1,000 to warm up (pools, slab,
/// channel blocks).
fn count(mut run: impl FnMut(usize), rounds: usize, per_round: usize) -> f64 {
    run(1000);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    run(rounds);
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    (after - before) as f64 / (rounds * per_round) as f64
}

/// Echoes `rounds` batches of `batch` 32-byte messages; returns allocations per message.
fn measure(inline: bool, batch: usize, rounds: usize) -> f64 {
    let server = Server::builder()
        .config(config(inline))
        .build(|ctx: &mut Context<'_>, msg: Message| ctx.send(msg))
        .expect("server");
    let mut stream = TcpStream::connect(server.local_addr()).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    handshake(&mut stream);
    let one = frame(32);
    let burst: Vec<u8> = one
        .iter()
        .copied()
        .cycle()
        .take(one.len() * batch)
        .collect();
    let echo_len = (2 + 32) * batch;
    let mut echo = vec![0u8; echo_len];
    let run = |rounds: usize| {
        for _ in 0..rounds {
            stream.write_all(&burst).expect("write");
            stream.read_exact(&mut echo).expect("read echo");
        }
    };
    let per_message = count(run, rounds, batch);
    drop(stream);
    server.shutdown().expect("shutdown");
    per_message
}

/// A page for every `GET`, answered on the loop if `on_loop`.
struct Page {
    on_loop: bool,
}

impl Handler for Page {
    type Session = ();

    fn on_message(&self, _: &mut Context<'_>, _: Message) {}

    fn on_http_request(&self, _: &Request) -> Response {
        Response::html(
            200,
            "<!doctype html><title>page</title><p>a small page</p>\n",
        )
    }

    fn answers_without_blocking(&self, _: &Request) -> bool {
        self.on_loop
    }
}

/// Sends `rounds` keep-alive `GET /` requests one at a time; returns allocations per request.
fn measure_http(inline: bool, on_loop: bool, rounds: usize) -> f64 {
    let server = Server::builder()
        .config(config(inline))
        .build(Page { on_loop })
        .expect("server");
    let mut stream = TcpStream::connect(server.local_addr()).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let request = b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: alloc_count\r\nAccept: */*\r\n\r\n";
    // Every answer has the same length (the Date header's is fixed): learn it from the first.
    stream.write_all(request).expect("write");
    let first = read_head(&mut stream);
    let head = String::from_utf8_lossy(&first).to_ascii_lowercase();
    let body: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("a content-length");
    let mut answer = vec![0u8; first.len() + body];
    stream
        .read_exact(&mut answer[first.len()..])
        .expect("the body");
    let run = |rounds: usize| {
        for _ in 0..rounds {
            stream.write_all(request).expect("write");
            stream.read_exact(&mut answer).expect("read the answer");
            assert!(answer.starts_with(b"HTTP/1.1 200"), "a page");
        }
    };
    let per_request = count(run, rounds, 1);
    drop(stream);
    server.shutdown().expect("shutdown");
    per_request
}

fn main() {
    println!("allocations per echoed 32-byte message (server side; the client allocates none)");
    for (name, inline) in [("worker pool", false), ("inline", true)] {
        for batch in [1, 8] {
            let per_message = measure(inline, batch, 20_000);
            println!("  {name:<12} batch {batch}: {per_message:.2}");
        }
    }
    println!("allocations per keep-alive GET (server side; reallocations count too)");
    for (name, inline, on_loop) in [
        ("worker pool, answered by a worker", false, false),
        ("worker pool, declared: on the loop", false, true),
        ("inline", true, false),
    ] {
        let per_request = measure_http(inline, on_loop, 20_000);
        println!("  {name:<36} {per_request:.2}");
    }
}
