//! A program that owns its main loop — a game's fixed 60 Hz tick — and serves WebSockets from it,
//! on its one thread: each frame it lets the server run for the time left in the frame, then
//! broadcasts `tick N` to every connected client. No thread is started, not even for signals
//! (`signal_hook::flag` sets an atomic the loop reads each frame).
//!
//! ```text
//! cargo run --example embed -- --addr 127.0.0.1:9002
//! ```
//!
//! Clients may connect on any path; text they send is echoed. Ctrl-C or SIGTERM closes every
//! client with `1001` and exits.

#[path = "common/cli.rs"]
mod cli;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};
use wsreactor::{Context, Handler, Message, Request, Response, Server, Turned};

/// The frame rate of the program's own loop.
const TICKS_PER_SECOND: u32 = 60;

const USAGE: &str = "\
usage: embed [--addr HOST:PORT] [--help]

A 60 Hz loop on one thread that serves WebSockets between frames and broadcasts `tick N` to
every client each frame. Text a client sends is echoed.

  --addr HOST:PORT   address to listen on [127.0.0.1:9002]
  --help             this text
";

/// Echoes text, and answers plain HTTP with what to do.
struct Ticker;

impl Handler for Ticker {
    type Session = ();

    fn on_message(&self, ctx: &mut Context<'_>, message: Message) {
        ctx.send(message);
    }

    fn on_http_request(&self, request: &Request) -> Response {
        let host = request.header("Host").unwrap_or("HOST");
        Response::text(
            200,
            format!(
                "connect a WebSocket client to ws://{host}/: it gets `tick N` {TICKS_PER_SECOND} times a second\n"
            ),
        )
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = match cli::parse_addr("embed", &args, "127.0.0.1:9002", USAGE) {
        Ok(addr) => addr,
        Err(code) => return code,
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        if let Err(err) = signal_hook::flag::register(signal, Arc::clone(&stop)) {
            log::warn!("cannot install a handler for signal {signal}: {err}");
        }
    }
    let mut server = match Server::builder().addr(addr).build_driven(Ticker) {
        Ok(server) => server,
        Err(err) => {
            eprintln!("embed: {err}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "embed: ticking at {TICKS_PER_SECOND} Hz on ws://{}/",
        server.local_addr()
    );
    let handle = server.handle();
    let frame = Duration::from_secs(1) / TICKS_PER_SECOND;
    let start = Instant::now();
    let mut tick: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        // The program's own work for this frame would go here; then the server gets the rest
        // of the frame. Frames are on a fixed schedule, so a slow one does not shift the rest.
        tick += 1;
        let frame_end = start + frame * u32::try_from(tick).unwrap_or(u32::MAX);
        match server.run_until(frame_end) {
            Ok(Turned::Running) => {}
            Ok(Turned::Stopped) => return ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("embed: {err}");
                return ExitCode::FAILURE;
            }
        }
        // On the loop's own thread a broadcast never waits: a full queue is an error, skipped.
        if let Err(err) = handle.broadcast(format!("tick {tick}")) {
            log::warn!("tick {tick} not broadcast: {err}");
        }
    }
    log::info!("signal: shutting down after tick {tick}");
    match server.shutdown() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("embed: {err}");
            ExitCode::FAILURE
        }
    }
}
