//! A chat room: every message a client sends goes to every connected client.
//!
//! ```text
//! cargo run --release --example chat -- 127.0.0.1:9002
//! ```
//!
//! Open `http://127.0.0.1:9002/` in two browser tabs. The page connects to `/ws`; what one tab
//! sends, all tabs show. Joins and leaves are announced through `on_open` / `on_close`, which use
//! the same [`ServerHandle::broadcast`] any thread could use. A client that stops reading while
//! others talk is dropped when its queued output passes the server's limit (`1008`), so one slow
//! browser cannot make the server's memory grow.

use std::net::SocketAddr;
use std::process::ExitCode;

use wsreactor::{
    CloseInfo, ConnId, Context, Handler, Message, Request, Response, Server, ServerHandle,
};

struct Chat;

impl Handler for Chat {
    type Session = ();

    fn on_open(&self, ctx: &mut Context<'_>) {
        let _ = ctx.server().broadcast(format!("{} joined", ctx.conn()));
    }

    fn on_message(&self, ctx: &mut Context<'_>, message: Message) {
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => {
                ctx.send("this room only takes text");
                return;
            }
        };
        let _ = ctx.server().broadcast(format!("{}: {text}", ctx.conn()));
    }

    fn on_close(&self, conn: ConnId, _session: (), _close: &CloseInfo, server: &ServerHandle) {
        let _ = server.broadcast(format!("{conn} left"));
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
    let addr: SocketAddr = match std::env::args()
        .nth(1)
        .unwrap_or("127.0.0.1:9002".into())
        .parse()
    {
        Ok(addr) => addr,
        Err(err) => {
            eprintln!("chat: bad address: {err}");
            return ExitCode::from(2);
        }
    };
    let server = match Server::builder().addr(addr).build(Chat) {
        Ok(server) => server,
        Err(err) => {
            eprintln!("chat: {err}");
            return ExitCode::FAILURE;
        }
    };
    println!("chat on http://{}/", server.local_addr());
    match server.join() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("chat: {err}");
            ExitCode::FAILURE
        }
    }
}

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>wsreactor chat</title>
<h1>wsreactor chat</h1>
<form id="f"><input id="m" autofocus> <button>send</button></form>
<pre id="log"></pre>
<script>
const log = (line) => document.getElementById("log").textContent += line + "\n";
const ws = new WebSocket(`ws://${location.host}/ws`);
ws.onmessage = (e) => log(e.data);
ws.onclose = (e) => log(`-- closed ${e.code} ${e.reason}`);
document.getElementById("f").onsubmit = (e) => {
  e.preventDefault();
  ws.send(document.getElementById("m").value);
  document.getElementById("m").value = "";
};
</script>
</html>
"#;
