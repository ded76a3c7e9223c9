//! The echo server: every text and binary WebSocket message goes back to its sender.
//!
//! ```text
//! cargo run --release --example echo -- --addr 127.0.0.1:9001
//! ```
//!
//! It upgrades on any path (`/ws` is what most tools use), answers `GET /` with a small page that
//! talks to it and `GET /debug` with a live dashboard of the event loops (it polls the Prometheus
//! text at `/metrics` once a second), answers a plain `GET /ws` (a browser or curl that did not
//! ask to upgrade) with `426 Upgrade Required` and a hint, and exposes every limit of
//! [`wsreactor::Config`] as a flag
//! (`flags.rs`; or as an environment variable: `--max-message-size` is also
//! `WSREACTOR_MAX_MESSAGE_SIZE`; flags win). Its defaults are generous enough for the Autobahn
//! test suite (64 MiB messages, 131,072 fragments) and still bounded. Like any wsreactor server it
//! refuses upgrades from pages of other origins (`403`): its own page works, and
//! `--allow-origin https://app.example.com` (repeatable; `'*'` for any) lets others in. Ctrl-C or SIGTERM shuts it
//! down gracefully (close 1001 to every client).
//!
//! Two path prefixes turn it into a publish/subscribe relay (the fan-out benchmark uses them): a
//! connection on `/sub/TOPIC` subscribes to TOPIC (and echoes nothing), and every message that
//! arrives on `/pub/TOPIC` is published to TOPIC's subscribers (the publisher gets no echo).

#[path = "../common/cli.rs"]
mod cli;
pub(crate) mod flags;
mod tls;

use std::process::ExitCode;

use wsreactor::{Config, Context, Handler, Message, Request, Response, Server};

/// The page on `GET /`: a form that talks to the echo.
const PAGE: &str = include_str!("page.html");

/// The page on `GET /debug`: the live loop dashboard (no external assets).
const DASHBOARD: &str = include_str!("dashboard.html");

/// The path the echo advertises for WebSocket clients (every path upgrades).
pub const WS_PATH: &str = "/ws";

/// The path prefix whose connections subscribe to the topic after it.
pub const SUB_PREFIX: &str = "/sub/";
/// The path prefix whose messages are published to the topic after it.
pub const PUB_PREFIX: &str = "/pub/";

/// Echoes every message (or relays it: `/sub/TOPIC`, `/pub/TOPIC`); serves the two pages.
pub struct Echo {
    /// The dashboard, pointed at this server's metrics path (`None`: metrics are off).
    dashboard: Option<String>,
    /// Declare its calls non-blocking (they are), so the event loop makes them itself even
    /// with the worker pool; `false` with `--handlers-may-block`.
    on_loop: bool,
}

impl Echo {
    /// The echo handler for a server built with `config`.
    pub fn new(config: &Config) -> Self {
        let dashboard = config
            .metrics_path
            .as_ref()
            .map(|path| DASHBOARD.replace("{{METRICS_PATH}}", path));
        Echo {
            dashboard,
            on_loop: true,
        }
    }

    /// The same, declaring none of its calls non-blocking (`--handlers-may-block`).
    pub fn handlers_may_block(self) -> Self {
        Echo {
            on_loop: false,
            ..self
        }
    }
}

impl Handler for Echo {
    type Session = ();

    fn on_open(&self, ctx: &mut Context<'_>) {
        if let Some(topic) = ctx.path().strip_prefix(SUB_PREFIX) {
            let topic = topic.to_owned();
            if let Err(err) = ctx.subscribe(&topic) {
                log::warn!("subscribe to {topic:?}: {err}");
            }
        }
    }

    fn on_message(&self, ctx: &mut Context<'_>, message: Message) {
        // The path is split from its query once per message (`ctx.path()` is not free).
        let path = ctx.path();
        if let Some(topic) = path.strip_prefix(PUB_PREFIX) {
            let topic = topic.to_owned();
            if let Err(err) = ctx.publish_to_others(&topic, message) {
                log::warn!("publish to {topic:?}: {err}");
            }
        } else if !path.starts_with(SUB_PREFIX) {
            ctx.send(message);
        }
    }

    /// Every page here comes from memory: the loop answers it, with no hop to a worker.
    fn answers_without_blocking(&self, _request: &Request) -> bool {
        self.on_loop
    }

    /// An echo, a publication or nothing: the loop makes the call, with no hop to a worker.
    fn handles_without_blocking(&self, _message: &Message) -> bool {
        self.on_loop
    }

    fn on_http_request(&self, request: &Request) -> Response {
        match (request.method(), request.path(), &self.dashboard) {
            ("GET" | "HEAD", "/", _) => Response::html(200, PAGE),
            ("GET" | "HEAD", "/debug", Some(page)) => Response::html(200, page.as_str()),
            ("GET" | "HEAD", "/debug", None) => Response::text(
                404,
                "the dashboard needs the metrics path (--metrics-path)\n",
            ),
            ("GET" | "HEAD", WS_PATH, _) => upgrade_required(request),
            _ => Response::text(404, "not found: connect a WebSocket client to any path\n"),
        }
    }
}

/// The answer to a plain `GET` on the WebSocket path: `426 Upgrade Required`, which RFC 9110
/// §15.5.22 says "MUST send an Upgrade header field" naming the protocol, with the `upgrade`
/// connection option §7.8 asks of a sender of `Upgrade` (`Response::encode` adds `close` to
/// that same field when the connection ends), and the version RFC 6455 §4.4 speaks. The body
/// says what to do instead.
fn upgrade_required(request: &Request) -> Response {
    let host = request
        .header("Host")
        .filter(|h| !h.is_empty())
        .unwrap_or("HOST");
    Response::text(
        426,
        format!("this is a WebSocket endpoint: connect with ws://{host}{WS_PATH}\n"),
    )
    .with_header("Upgrade", "websocket")
    .with_header("Connection", "Upgrade")
    .with_header("Sec-WebSocket-Version", "13")
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || format!("{}\n{}{REDIS_USAGE}{HOP_USAGE}", flags::usage(), tls::USAGE);
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{}", usage());
        return ExitCode::SUCCESS;
    }
    let on_loop = !take_switch(&mut args, "--handlers-may-block");
    let redis = match take_redis(&mut args) {
        Ok(redis) => redis,
        Err(err) => {
            eprintln!("echo: {err}\n\n{}", usage());
            return ExitCode::from(2);
        }
    };
    let parsed =
        tls::TlsFlags::take(&mut args).and_then(|tls| Ok((flags::parse_config(&args)?, tls)));
    let (config, tls_flags) = match parsed {
        Ok(parsed) => parsed,
        Err(err) => {
            eprintln!("echo: {err}\n\n{}", usage());
            return ExitCode::from(2);
        }
    };
    let handler = if on_loop {
        Echo::new(&config)
    } else {
        Echo::new(&config).handlers_may_block()
    };
    let builder = match with_redis(Server::builder().config(config), redis) {
        Ok(builder) => builder,
        Err(err) => {
            eprintln!("echo: {err}");
            return ExitCode::from(2);
        }
    };
    // `_pem`: the self-signed certificate's file, removed when the echo exits.
    #[cfg(feature = "tls")]
    let (builder, _pem) = match tls::config(&tls_flags) {
        Ok((Some(tls), pem)) => (builder.tls(tls), pem),
        Ok((None, pem)) => (builder, pem),
        Err(err) => {
            eprintln!("echo: {err}");
            return ExitCode::FAILURE;
        }
    };
    #[cfg(not(feature = "tls"))]
    if let Err(err) = tls::check_available(&tls_flags) {
        eprintln!("echo: {err}");
        return ExitCode::from(2);
    }
    let server = match builder.build(handler) {
        Ok(server) => server,
        Err(err) => {
            eprintln!("echo: {err}");
            return ExitCode::FAILURE;
        }
    };
    // Before the address is printed: a SIGHUP sent as soon as it shows must find the handler.
    #[cfg(feature = "tls")]
    tls::reload_on_sighup(&tls_flags, server.handle());
    let addr = server.local_addr();
    let (ws, http) = if tls_flags.enabled() {
        ("wss", "https")
    } else {
        ("ws", "http")
    };
    let banner = format!(
        "echo server listening on {ws}://{addr}{WS_PATH} (dashboard: {http}://{addr}/debug)"
    );
    cli::serve_until_signal("echo", server, &banner)
}

const HOP_USAGE: &str = "\
  --handlers-may-block       declare none of the echo's calls non-blocking: with the worker pool,
                             every request and message goes to a worker and back (what a handler
                             that may block costs)
";

/// Takes the switch `name` out of `args`; true if it was there.
fn take_switch(args: &mut Vec<String>, name: &str) -> bool {
    let before = args.len();
    args.retain(|arg| arg != name);
    args.len() != before
}

const REDIS_USAGE: &str = "\
  --redis URL                share /pub/ and /sub/ topics with every echo started with this Redis
                             (redis://[:PASSWORD@]HOST:PORT; feature redis): the fan-out benchmark
                             across nodes (bench/backplane.sh)
";

/// Takes `--redis URL` (or `--redis=URL`) out of `args`.
fn take_redis(args: &mut Vec<String>) -> Result<Option<String>, String> {
    let Some(at) = args
        .iter()
        .position(|a| a == "--redis" || a.starts_with("--redis="))
    else {
        return Ok(None);
    };
    let flag = args.remove(at);
    match flag.strip_prefix("--redis=") {
        Some(url) => Ok(Some(url.to_owned())),
        None if at < args.len() => Ok(Some(args.remove(at))),
        None => Err("--redis needs a value".into()),
    }
}

/// The builder with the Redis backplane at `url`, if one was given.
#[cfg(feature = "redis")]
fn with_redis(
    builder: wsreactor::ServerBuilder,
    url: Option<String>,
) -> Result<wsreactor::ServerBuilder, String> {
    let Some(url) = url else { return Ok(builder) };
    let backplane = wsreactor::RedisBackplane::new(&url).map_err(|err| err.to_string())?;
    Ok(builder.backplane(backplane))
}

#[cfg(not(feature = "redis"))]
fn with_redis(
    builder: wsreactor::ServerBuilder,
    url: Option<String>,
) -> Result<wsreactor::ServerBuilder, String> {
    match url {
        None => Ok(builder),
        Some(_) => Err("--redis needs the echo built with `--features redis`".into()),
    }
}
