//! A chat with rooms: `/ws?room=ROOM&name=NAME` joins ROOM (`lobby` if none) as NAME (a
//! `guest-N` if none). What a member sends reaches every other member of the room, and no one
//! outside it, as `NAME: text`; everyone in the room, the joiner too, sees `NAME joined` and
//! `NAME left`. `GET /` serves a page to pick a room and a name; `GET /metrics` the server's
//! counters (Prometheus text).
//!
//! ```text
//! cargo run --release --example chat -- --addr 127.0.0.1:9002
//! cargo run --release --features redis --example chat -- --addr 127.0.0.1:9003 --redis redis://127.0.0.1:6379
//! ```
//!
//! **Across nodes** (feature `redis`): every chat started with the same `--redis URL` shares its
//! rooms (README: two nodes behind nginx). Rooms then keep a history in Redis, and every line
//! a member gets begins with its position: `9f86d081884c7d65-42 ann: hello`. A client that
//! reconnects with `&since=POSITION` (the last one it saw; the page does it by itself) gets
//! exactly the lines it missed, then the live ones — or the line `* cannot recover what you
//! missed: reload`, when the history no longer has them. Guest names are `guest-TAG-N`, with a
//! tag drawn by each node, so two nodes never give the same one.
//!
//! Each connection's name and room are its `Handler::Session`, decided in `on_upgrade` and
//! accepted with (`Upgrade::accept_with`), so `on_open` finds them ready; rooms are topics, so a message is
//! encoded once and shared by every member on every event loop. A member that stops reading
//! while others talk is dropped once its queued output passes the server's limit (`1008`).
//! Ctrl-C or SIGTERM closes everyone with `1001`.

#[path = "../common/cli.rs"]
mod cli;
mod room;

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use wsreactor::{
    CloseInfo, ConnId, Context, Handler, Message, Position, Request, Response, Server,
    ServerBuilder, ServerHandle, Upgrade, UpgradeOffer,
};

const USAGE: &str = "\
usage: chat [--addr HOST:PORT] [--redis redis://HOST:PORT] [--help]

A chat with rooms. Open http://HOST:PORT/ to pick a room and a name, or connect a WebSocket to
ws://HOST:PORT/ws?room=ROOM&name=NAME[&since=POSITION].

  --addr HOST:PORT   address to listen on [127.0.0.1:9002]
  --redis URL        share the rooms with every chat started with this Redis (feature redis);
                     lines then begin with their position, for &since= on a reconnect
  --help             this text
";

/// What a member gets when what it missed cannot be had (`&since=` too old, or the history was
/// lost).
pub const CANNOT_RECOVER: &str = "* cannot recover what you missed: reload";

/// The room and name of one member.
#[derive(Default)]
pub struct Member {
    name: String,
    room: String,
    /// The position given with `&since=`, until `on_open` subscribes from it.
    since: Option<Position>,
}

/// The chat's handler (public for tests/chat.rs, which serves it in-process).
#[derive(Default)]
pub struct Chat {
    /// Numbers the guests that come without a name.
    guests: AtomicU64,
    /// Across nodes: this node's tag in guest names (`guest-TAG-N`), so no two nodes give the
    /// same name.
    node_tag: Option<String>,
}

impl Chat {
    /// The chat of a node among others: guest names carry a tag drawn for this node.
    pub fn on_many_nodes() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        Chat {
            guests: AtomicU64::new(0),
            node_tag: Some(format!("{:06x}", hasher.finish() & 0xff_ffff)),
        }
    }

    fn guest_name(&self) -> String {
        let n = self.guests.fetch_add(1, Ordering::Relaxed) + 1;
        match &self.node_tag {
            Some(tag) => format!("guest-{tag}-{n}"),
            None => format!("guest-{n}"),
        }
    }
}

/// A room's topic: rooms are `room/NAME` (the prefix whose history the backplane keeps).
fn topic(room: &str) -> String {
    format!("room/{room}")
}

impl Handler for Chat {
    type Session = Member;

    fn on_upgrade(&self, request: &Request, _offer: &UpgradeOffer) -> Upgrade<Member> {
        if request.path() != "/ws" {
            return Upgrade::reject(404, "the chat is at /ws?room=ROOM&name=NAME\n");
        }
        let (room, name, since) = room::parse(request.query());
        let name = name.unwrap_or_else(|| self.guest_name());
        let room = room.unwrap_or_else(|| room::DEFAULT_ROOM.to_owned());
        let since = since.and_then(|since| since.parse::<Position>().ok());
        Upgrade::accept_with(Member { name, room, since })
    }

    fn on_open(&self, ctx: &mut Context<'_, Member>) {
        let Member { name, room, since } = ctx.session_mut();
        let (joined, since) = (format!("{name} joined"), since.take());
        let (topic, room) = (topic(room), room.clone());
        // Rooms are at most room::MAX_LEN characters: far inside a topic name's limit.
        let subscribed = match since {
            Some(since) => ctx.subscribe_from(&topic, since, CANNOT_RECOVER),
            None => ctx.subscribe(&topic),
        };
        if let Err(err) = subscribed.and_then(|()| ctx.publish(&topic, joined)) {
            log::warn!("{}: cannot join {room:?}: {err}", ctx.conn());
        }
    }

    fn on_message(&self, ctx: &mut Context<'_, Member>, message: Message) {
        let Message::Text(text) = message else {
            ctx.send("this chat only takes text");
            return;
        };
        let Member { name, room, .. } = ctx.session();
        let (line, room) = (format!("{name}: {text}"), topic(room));
        if let Err(err) = ctx.publish_to_others(&room, line) {
            log::warn!("{}: cannot say it in {room:?}: {err}", ctx.conn());
        }
    }

    fn on_close(&self, _conn: ConnId, member: Member, _: &CloseInfo, server: &ServerHandle) {
        // The member's subscription ended with its connection: the others hear it leave.
        let _ = server.publish(&topic(&member.room), format!("{} left", member.name));
    }

    fn on_http_request(&self, request: &Request) -> Response {
        match request.path() {
            "/" => Response::html(200, PAGE),
            _ => Response::not_found(),
        }
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let redis = match take_redis(&mut args) {
        Ok(redis) => redis,
        Err(why) => {
            eprint!("chat: {why}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let addr = match cli::parse_addr("chat", &args, "127.0.0.1:9002", USAGE) {
        Ok(addr) => addr,
        Err(code) => return code,
    };
    let builder = Server::builder()
        .addr(addr)
        .configure(|config| config.metrics_path = Some("/metrics".into()));
    let built = match redis {
        None => builder.build(Chat::default()),
        Some(url) => match with_redis(builder, &url) {
            Ok(builder) => builder.build(Chat::on_many_nodes()),
            Err(why) => {
                eprintln!("chat: {why}");
                return ExitCode::from(2);
            }
        },
    };
    let server = match built {
        Ok(server) => server,
        Err(err) => {
            eprintln!("chat: {err}");
            return ExitCode::FAILURE;
        }
    };
    let banner = format!("chat on http://{}/", server.local_addr());
    cli::serve_until_signal("chat", server, &banner)
}

/// Takes `--redis URL` (or `--redis=URL`) out of `args`.
fn take_redis(args: &mut Vec<String>) -> Result<Option<String>, String> {
    let mut redis = None;
    let mut i = 0;
    while i < args.len() {
        if args[i] == "--redis" {
            if i + 1 == args.len() {
                return Err("--redis needs a value".into());
            }
            redis = Some(args.remove(i + 1));
            args.remove(i);
        } else if let Some(url) = args[i].strip_prefix("--redis=") {
            redis = Some(url.to_owned());
            args.remove(i);
        } else {
            i += 1;
        }
    }
    Ok(redis)
}

/// The builder with the Redis backplane at `url`: rooms keep a history, lines their positions.
#[cfg(feature = "redis")]
fn with_redis(builder: ServerBuilder, url: &str) -> Result<ServerBuilder, String> {
    use wsreactor::{Framing, RedisBackplane};
    let backplane = RedisBackplane::new(url).map_err(|err| err.to_string())?;
    Ok(builder.backplane(backplane.recover("room/", Framing::PositionFirst)))
}

#[cfg(not(feature = "redis"))]
fn with_redis(_: ServerBuilder, _: &str) -> Result<ServerBuilder, String> {
    Err("--redis needs the chat built with `--features redis`".into())
}

const PAGE: &str = include_str!("page.html");
