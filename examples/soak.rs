//! Soak client: holds thousands of WebSocket connections against a running server for a while,
//! with churn and traffic, and checks every echo. Used by `scripts/soak.sh`, which starts the
//! echo server, reads its `/metrics` and `/proc` before and after, and prints the comparison.
//!
//! ```text
//! cargo run --release --example soak -- --addr 127.0.0.1:9001 --connections 4000 --seconds 120
//! ```
//!
//! Each of `--threads` threads owns `connections / threads` clients and goes round them: send a
//! message, read its echo, verify it byte for byte. After every round it replaces
//! `--churn-percent` of its clients: half end with a close handshake, half just drop the TCP
//! connection (the server must see 1006 and free everything either way). The run ends by
//! itself after `--seconds` and prints one JSON line.

use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tungstenite::{Message, WebSocket};

#[derive(Default)]
struct Totals {
    messages: AtomicU64,
    errors: AtomicU64,
    connects: AtomicU64,
    clean_closes: AtomicU64,
    drops: AtomicU64,
}

struct Options {
    addr: SocketAddr,
    connections: usize,
    threads: usize,
    seconds: u64,
    churn_percent: usize,
}

fn parse() -> Result<Options, String> {
    let mut options = Options {
        addr: SocketAddr::from(([127, 0, 0, 1], 9001)),
        connections: 4000,
        threads: 4,
        seconds: 60,
        churn_percent: 5,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let [flag, value] = pair else {
            return Err(format!("{} needs a value", pair[0]));
        };
        let bad = |e: &dyn std::fmt::Display| format!("{flag}: {e}");
        match flag.as_str() {
            "--addr" => options.addr = value.parse().map_err(|e| bad(&e))?,
            "--connections" => options.connections = value.parse().map_err(|e| bad(&e))?,
            "--threads" => options.threads = value.parse().map_err(|e| bad(&e))?,
            "--seconds" => options.seconds = value.parse().map_err(|e| bad(&e))?,
            "--churn-percent" => options.churn_percent = value.parse().map_err(|e| bad(&e))?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if options.threads == 0 || options.connections < options.threads {
        return Err("need at least one connection per thread".into());
    }
    Ok(options)
}

fn connect(addr: SocketAddr, totals: &Totals) -> Option<WebSocket<TcpStream>> {
    let stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    stream.set_nodelay(true).ok()?;
    match tungstenite::client(format!("ws://{addr}/ws"), stream) {
        Ok((client, _)) => {
            totals.connects.fetch_add(1, Ordering::Relaxed);
            Some(client)
        }
        Err(_) => None,
    }
}

/// The next data message, skipping the server's keepalive pings (tungstenite answers them).
fn read_data(client: &mut WebSocket<TcpStream>) -> Option<Message> {
    loop {
        match client.read().ok()? {
            Message::Ping(_) | Message::Pong(_) => continue,
            message => return Some(message),
        }
    }
}

fn run_thread(thread: usize, count: usize, options: &Options, totals: &Totals) {
    let deadline = Instant::now() + Duration::from_secs(options.seconds);
    let mut clients: Vec<Option<WebSocket<TcpStream>>> =
        (0..count).map(|_| connect(options.addr, totals)).collect();
    let mut seq = 0u64;
    while Instant::now() < deadline {
        for (i, slot) in clients.iter_mut().enumerate() {
            let Some(client) = slot.as_mut() else {
                *slot = connect(options.addr, totals);
                continue;
            };
            seq += 1;
            let text = format!("soak {thread}-{i}-{seq}");
            let ok = client.send(Message::text(text.clone())).is_ok()
                && matches!(read_data(client), Some(Message::Text(echo)) if echo.as_str() == text);
            if ok {
                totals.messages.fetch_add(1, Ordering::Relaxed);
            } else {
                totals.errors.fetch_add(1, Ordering::Relaxed);
                *slot = None;
            }
        }
        // Churn: replace a few clients, alternating clean closes and abrupt drops.
        let churn = count * options.churn_percent / 100;
        for k in 0..churn {
            let index = (seq as usize + k * 7919) % count;
            if let Some(mut client) = clients[index].take() {
                if k % 2 == 0 {
                    let _ = client.close(None);
                    while client.read().is_ok() {}
                    totals.clean_closes.fetch_add(1, Ordering::Relaxed);
                } else {
                    totals.drops.fetch_add(1, Ordering::Relaxed);
                }
            }
            clients[index] = connect(options.addr, totals);
        }
    }
    for mut client in clients.into_iter().flatten() {
        let _ = client.close(None);
        while client.read().is_ok() {}
    }
}

fn main() -> ExitCode {
    let options = match parse() {
        Ok(options) => Arc::new(options),
        Err(err) => {
            eprintln!("soak: {err}");
            return ExitCode::from(2);
        }
    };
    let totals = Arc::new(Totals::default());
    let started = Instant::now();
    let per_thread = options.connections / options.threads;
    let threads: Vec<_> = (0..options.threads)
        .map(|thread| {
            let (options, totals) = (Arc::clone(&options), Arc::clone(&totals));
            std::thread::spawn(move || run_thread(thread, per_thread, &options, &totals))
        })
        .collect();
    for thread in threads {
        let _ = thread.join();
    }
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let messages = get(&totals.messages);
    println!(
        "{{\"connections\":{},\"seconds\":{:.1},\"messages\":{},\"messages_per_sec\":{:.0},\
         \"errors\":{},\"connects\":{},\"clean_closes\":{},\"drops\":{}}}",
        per_thread * options.threads,
        started.elapsed().as_secs_f64(),
        messages,
        messages as f64 / started.elapsed().as_secs_f64(),
        get(&totals.errors),
        get(&totals.connects),
        get(&totals.clean_closes),
        get(&totals.drops),
    );
    if get(&totals.errors) == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
