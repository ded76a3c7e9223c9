//! A slow backend on demand (`--backend-delay`): a TCP relay on 127.0.0.1 in front of Redis
//! that holds every chunk sent to Redis for a fixed delay before passing it on, and passes
//! Redis's answers straight back. Each command then takes the delay longer, as with a backend
//! far away or busy, while Redis itself stays healthy.
//!
//! Bytes enter on an accepted connection, wait in an unbounded-in-time but bounded-in-count
//! channel (at most [`MAX_CHUNKS`] chunks in flight per connection: the reader stops when it
//! is full, which is TCP backpressure to the pool's connection) and leave to Redis once their
//! time has come. Threads: one acceptor, and three per relayed connection (the pool holds a
//! few); at most [`MAX_RELAYED`] connections at once.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Chunks held per connection before the relay stops reading from it.
const MAX_CHUNKS: usize = 1024;

/// Connections relayed at once; more are refused (closed at once).
pub const MAX_RELAYED: usize = 1024;

/// Starts the relay; returns the address to connect to instead of `target`.
pub fn start(target: SocketAddr, delay: Duration) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    let addr = listener.local_addr()?;
    let open = Arc::new(AtomicUsize::new(0));
    thread::Builder::new()
        .name("gateway-delay".into())
        .spawn(move || {
            for client in listener.incoming() {
                match client {
                    Ok(client) if open.load(Ordering::Relaxed) < MAX_RELAYED => {
                        relay(client, target, delay, Arc::clone(&open));
                    }
                    Ok(client) => drop(client),
                    Err(err) => log::warn!("delay relay: accept: {err}"),
                }
            }
        })?;
    log::info!("delay relay on {addr}: {delay:?} added before each chunk reaches {target}");
    Ok(addr)
}

/// Relays one connection: client to Redis delayed, Redis to client as it comes.
fn relay(client: TcpStream, target: SocketAddr, delay: Duration, open: Arc<AtomicUsize>) {
    let server = match TcpStream::connect(target) {
        Ok(server) => server,
        Err(err) => {
            // The pool sees its connection close, as if Redis had refused it.
            log::debug!("delay relay: {target}: {err}");
            return;
        }
    };
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    let (Ok(client_in), Ok(server_out), Ok(server_in), Ok(client_out)) = (
        client.try_clone(),
        server.try_clone(),
        server.try_clone(),
        client.try_clone(),
    ) else {
        return;
    };
    open.fetch_add(1, Ordering::Relaxed);
    let (chunks, due) = crossbeam_channel::bounded::<(Instant, Vec<u8>)>(MAX_CHUNKS);
    let spawn = |name: &str, work: Box<dyn FnOnce() + Send>| {
        let _ = thread::Builder::new().name(name.into()).spawn(work);
    };
    spawn(
        "gateway-delay-in",
        Box::new(move || {
            let mut client_in = client_in;
            let mut buf = vec![0; 16 * 1024];
            while let Ok(n @ 1..) = client_in.read(&mut buf) {
                if chunks
                    .send((Instant::now() + delay, buf[..n].to_vec()))
                    .is_err()
                {
                    break;
                }
            }
        }),
    );
    spawn(
        "gateway-delay-to",
        Box::new(move || {
            let mut server_out = server_out;
            for (at, chunk) in due {
                thread::sleep(at.saturating_duration_since(Instant::now()));
                if server_out.write_all(&chunk).is_err() {
                    break;
                }
            }
            let _ = server_out.shutdown(Shutdown::Write);
        }),
    );
    spawn(
        "gateway-delay-back",
        Box::new(move || {
            let (mut server_in, mut client_out) = (server_in, client_out);
            let _ = io::copy(&mut server_in, &mut client_out);
            let _ = client_out.shutdown(Shutdown::Both);
            let _ = server_in.shutdown(Shutdown::Both);
            open.fetch_sub(1, Ordering::Relaxed);
        }),
    );
}
