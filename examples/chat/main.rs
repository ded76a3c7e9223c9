//! A chat with rooms: `/ws?room=ROOM&name=NAME` joins ROOM (`lobby` if none) as NAME (a
//! `guest-N` if none). What a member sends reaches every other member of the room, and no one
//! outside it, as `NAME: text`; everyone in the room, the joiner too, sees `NAME joined` and
//! `NAME left`. `GET /` serves a page to pick a room and a name.
//!
//! ```text
//! cargo run --release --example chat -- --addr 127.0.0.1:9002
//! ```
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
    CloseInfo, ConnId, Context, Handler, Message, Request, Response, Server, ServerHandle, Upgrade,
    UpgradeOffer,
};

const USAGE: &str = "\
usage: chat [--addr HOST:PORT] [--help]

A chat with rooms. Open http://HOST:PORT/ to pick a room and a name, or connect a WebSocket to
ws://HOST:PORT/ws?room=ROOM&name=NAME.

  --addr HOST:PORT   address to listen on [127.0.0.1:9002]
  --help             this text
";

/// The room and name of one member.
#[derive(Default)]
pub struct Member {
    name: String,
    room: String,
}

/// The chat's handler (public for tests/chat.rs, which serves it in-process).
#[derive(Default)]
pub struct Chat {
    /// Numbers the guests that come without a name.
    guests: AtomicU64,
}

impl Handler for Chat {
    type Session = Member;

    fn on_upgrade(&self, request: &Request, _offer: &UpgradeOffer) -> Upgrade<Member> {
        if request.path() != "/ws" {
            return Upgrade::reject(404, "the chat is at /ws?room=ROOM&name=NAME\n");
        }
        let (room, name) = room::parse(request.query());
        let name = name.unwrap_or_else(|| {
            format!("guest-{}", self.guests.fetch_add(1, Ordering::Relaxed) + 1)
        });
        let room = room.unwrap_or_else(|| room::DEFAULT_ROOM.to_owned());
        Upgrade::accept_with(Member { name, room })
    }

    fn on_open(&self, ctx: &mut Context<'_, Member>) {
        let Member { name, room } = ctx.session();
        let (joined, room) = (format!("{name} joined"), room.clone());
        // Rooms are at most room::MAX_LEN characters: far inside a topic name's limit.
        if let Err(err) = ctx
            .subscribe(&room)
            .and_then(|()| ctx.publish(&room, joined))
        {
            log::warn!("{}: cannot join {room:?}: {err}", ctx.conn());
        }
    }

    fn on_message(&self, ctx: &mut Context<'_, Member>, message: Message) {
        let Message::Text(text) = message else {
            ctx.send("this chat only takes text");
            return;
        };
        let Member { name, room } = ctx.session();
        let (line, room) = (format!("{name}: {text}"), room.clone());
        if let Err(err) = ctx.publish_to_others(&room, line) {
            log::warn!("{}: cannot say it in {room:?}: {err}", ctx.conn());
        }
    }

    fn on_close(&self, _conn: ConnId, member: Member, _: &CloseInfo, server: &ServerHandle) {
        // The member's subscription ended with its connection: the others hear it leave.
        let _ = server.publish(&member.room, format!("{} left", member.name));
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
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = match cli::parse_addr("chat", &args, "127.0.0.1:9002", USAGE) {
        Ok(addr) => addr,
        Err(code) => return code,
    };
    let server = match Server::builder().addr(addr).build(Chat::default()) {
        Ok(server) => server,
        Err(err) => {
            eprintln!("chat: {err}");
            return ExitCode::FAILURE;
        }
    };
    println!("chat on http://{}/", server.local_addr());
    cli::serve_until_signal("chat", server)
}

const PAGE: &str = include_str!("page.html");
