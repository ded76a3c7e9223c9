//! ws-rs-echo: the ws-rs (the `ws` crate) WebSocket echo peer of the wsreactor
//! benchmark: a mio 0.6 event loop on one thread, thread-per-server.
//!
//! The crate's own echo (its README and `examples/server.rs`): the handler of
//! every connection is `move |msg| out.send(msg)`, so each text or binary
//! message goes back as it came. ws-rs answers pings and close frames itself.
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
    let server = ws::Builder::new()
        .with_settings(settings)
        .build(|out: ws::Sender| move |msg: ws::Message| out.send(msg));
    match server.and_then(|server| server.listen(args.addr)) {
        Ok(_) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ws-rs-echo: {}: {err}", args.addr);
            ExitCode::FAILURE
        }
    }
}
