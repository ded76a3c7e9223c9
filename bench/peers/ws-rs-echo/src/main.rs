//! ws-rs-echo: the ws-rs (the `ws` crate) WebSocket echo peer of the wsreactor
//! benchmark: a mio 0.6 event loop on one thread, thread-per-server.
//!
//! The crate's own echo (its README and `examples/server.rs`): the handler of
//! every connection does `out.send(msg)` for each message, so each text or
//! binary message goes back as it came (here a `Handler` impl rather than the
//! README's closure, the same calls). ws-rs answers pings and close frames itself.
//! A `send` is a command through the server's channel to its event loop,
//! which writes it on its next turn.
//!
//! Settings are ws-rs's defaults but two:
//! * `max_connections`: `--max-connections` (default 20,000, as the echo
//!   example is run with; ws-rs's own default is 100, which would refuse most
//!   connections of the 1,000- to 15,000-connection scenarios). The command
//!   channel is `max_connections` × `queue_size` (5) deep.
//! * `tcp_nodelay`: on, as wsreactor, tokio-echo and Go's net package set it,
//!   so that Nagle's algorithm is not what the comparison measures.
//!
//! Errors go to stderr in their `Debug` form (ws 0.9's `Display` of an I/O
//! error prints only "description() is deprecated"); connection resets are
//! skipped, as ws-rs's default handler skips them.
//!
//! Outgoing messages over 65,535 bytes are sent as two or more fragments
//! (ws-rs's `fragment_size`); the load generator reassembles them.
//!
//! Usage: `ws-rs-echo --addr 127.0.0.1:PORT [--max-connections N]`

use std::net::SocketAddr;
use std::process::ExitCode;

const USAGE: &str = "usage: ws-rs-echo --addr HOST:PORT [--max-connections N]";

struct Args {
    addr: SocketAddr,
    max_connections: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut addr = None;
    let mut max_connections = 20_000;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => {
                let v = value()?;
                addr = Some(v.parse().map_err(|e| format!("--addr {v}: {e}"))?);
            }
            "--max-connections" => {
                let v = value()?;
                max_connections = v
                    .parse()
                    .map_err(|e| format!("--max-connections {v}: {e}"))?;
                if max_connections == 0 {
                    return Err("--max-connections must be at least 1".into());
                }
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        addr: addr.ok_or("--addr is required")?,
        max_connections,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(err) => {
            eprintln!("ws-rs-echo: {err}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let settings = ws::Settings {
        max_connections: args.max_connections,
        tcp_nodelay: true,
        ..ws::Settings::default()
    };
    let server = match ws::Builder::new().with_settings(settings).build(Echo) {
        Ok(server) => server,
        Err(err) => {
            eprintln!("ws-rs-echo: {err:?}");
            return ExitCode::FAILURE;
        }
    };
    match server.listen(args.addr) {
        Ok(_) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ws-rs-echo: {}: {err:?}", args.addr);
            ExitCode::FAILURE
        }
    }
}

/// One connection's echo: every message goes back on its own `Sender`.
struct Echo(ws::Sender);

impl ws::Handler for Echo {
    fn on_message(&mut self, msg: ws::Message) -> ws::Result<()> {
        self.0.send(msg)
    }

    /// As ws-rs's default (which skips connection resets), but in the error's `Debug` form:
    /// ws 0.9's `Display` prints the deprecated `description()` of an I/O error, i.e. nothing.
    fn on_error(&mut self, err: ws::Error) {
        if let ws::ErrorKind::Io(io) = &err.kind
            && io.kind() == std::io::ErrorKind::ConnectionReset
        {
            return;
        }
        eprintln!("ws-rs-echo: {err:?}");
    }
}
