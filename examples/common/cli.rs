//! What the small examples share: an `--addr HOST:PORT` / `--help` command line, and serving
//! until Ctrl-C or SIGTERM starts a graceful shutdown (every WebSocket gets `1001`).
//!
//! Included by path (`#[path = ...] mod cli;`) from each example that uses it; the echo example
//! has its own flags (every `Config` field) but shares the signal handling.

use std::net::SocketAddr;
use std::process::ExitCode;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use wsreactor::Server;

/// `--addr HOST:PORT` (or `--addr=HOST:PORT`; `default` if absent) from `args`. `Err` is the
/// exit code to return: after printing `usage` for `--help` (0), or an error and `usage` for a
/// mistake (2).
#[allow(dead_code)]
pub fn parse_addr(
    program: &str,
    args: &[String],
    default: &str,
    usage: &str,
) -> Result<SocketAddr, ExitCode> {
    let mut addr = default.to_owned();
    let mut args = args.iter();
    let mistake = |why: String| {
        eprint!("{program}: {why}\n\n{usage}");
        ExitCode::from(2)
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--help" | "-h" => {
                print!("{usage}");
                return Err(ExitCode::SUCCESS);
            }
            "--addr" => match args.next() {
                Some(value) => addr = value.clone(),
                None => return Err(mistake("--addr needs a value".into())),
            },
            other => match other.strip_prefix("--addr=") {
                Some(value) => addr = value.to_owned(),
                None => return Err(mistake(format!("unknown argument {other}"))),
            },
        }
    }
    addr.parse()
        .map_err(|err| mistake(format!("bad address {addr:?}: {err}")))
}

/// Prints `banner` (the address to connect to) and waits for `server` to stop, starting its
/// graceful shutdown on SIGINT or SIGTERM (a thread of `signal-hook` waits for the signal). The
/// handlers are in place before the banner shows, so a signal sent as soon as a tool reads the
/// address shuts the server down gracefully instead of killing it.
#[allow(dead_code)]
pub fn serve_until_signal(program: &str, server: Server, banner: &str) -> ExitCode {
    let handle = server.handle();
    match Signals::new([SIGINT, SIGTERM]) {
        Ok(mut signals) => {
            std::thread::spawn(move || {
                if let Some(signal) = signals.forever().next() {
                    log::info!("signal {signal}: shutting down");
                    handle.shutdown();
                }
            });
        }
        Err(err) => log::warn!("cannot install signal handlers: {err}"),
    }
    println!("{banner}");
    match server.join() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{program}: {err}");
            ExitCode::FAILURE
        }
    }
}
