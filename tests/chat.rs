//! The chat example (`examples/chat/`): rooms are isolated, a member's text reaches every other
//! member of its room as `NAME: text`, everyone in a room — the joiner too — sees `NAME joined`
//! and `NAME left`; tungstenite clients, Python `websockets` clients and the page in headless
//! Chromium (two pages in one room, one in another); SIGTERM closes everyone with `1001`. The
//! Python and Chromium tests are `#[ignore]`d, as every test that needs a program from outside
//! Rust (tests/common/tools.rs); `bash .ci/run` runs them.

#[path = "../examples/chat/main.rs"]
#[allow(dead_code)]
mod chat;

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::browser::Browser;
use common::*;
use serde_json::json;
use tungstenite::Message as TMessage;
use tungstenite::protocol::frame::coding::CloseCode as TCloseCode;
use wsreactor::Server;

/// The chat on one event loop. With several, a join published on one loop reaches the
/// subscribers of the others when that loop forwards it, at the end of its turn: a member who
/// joins another loop meanwhile may hear the join that came just before its own — the race
/// docs/architecture.md states ("a publication already on its way from another loop may or may
/// not reach it"). These tests check what the chat says, in order; tests/topics.rs checks the
/// loops' forwarding.
fn chat_server() -> Server {
    let mut config = config();
    config.event_loops = 1;
    start(config, chat::Chat::default())
}

fn member(addr: std::net::SocketAddr, query: &str) -> Client {
    connect_path(addr, &format!("/ws?{query}"))
}

/// The next text message.
fn next_text(client: &mut Client) -> String {
    match client.read().expect("a message") {
        TMessage::Text(text) => text.as_str().to_owned(),
        other => panic!("expected text, got {other:?}"),
    }
}

#[test]
fn rooms_are_isolated_and_everyone_sees_joins_and_leaves() {
    let server = chat_server();
    let addr = server.local_addr();
    let mut ann = member(addr, "room=a&name=ann");
    assert_eq!(
        next_text(&mut ann),
        "ann joined",
        "the joiner sees its own join"
    );
    let mut bob = member(addr, "room=a&name=bob");
    assert_eq!(next_text(&mut bob), "bob joined");
    assert_eq!(next_text(&mut ann), "bob joined");
    let mut cy = member(addr, "room=b&name=cy");
    assert_eq!(next_text(&mut cy), "cy joined");

    ann.send(TMessage::text("hello a")).unwrap();
    assert_eq!(next_text(&mut bob), "ann: hello a");
    cy.send(TMessage::text("hello b")).unwrap();
    bob.send(TMessage::text("still a")).unwrap();
    assert_eq!(
        next_text(&mut ann),
        "bob: still a",
        "cy's message never reached room a"
    );
    close_client(bob);
    assert_eq!(next_text(&mut ann), "bob left");

    // cy saw nothing of room a: its next message is the one it gets from a newcomer.
    let mut dee = member(addr, "name=dee&room=b");
    assert_eq!(next_text(&mut dee), "dee joined");
    assert_eq!(next_text(&mut cy), "dee joined");
    close_client(ann);
    close_client(cy);
    close_client(dee);
    server.shutdown().unwrap();
}

#[test]
fn the_lobby_and_guest_names_are_the_defaults() {
    let server = chat_server();
    let addr = server.local_addr();
    let mut first = member(addr, "");
    let joined = next_text(&mut first);
    assert!(
        joined.starts_with("guest-") && joined.ends_with(" joined"),
        "{joined}"
    );
    let mut named = member(addr, "room=lobby&name=eve");
    assert_eq!(next_text(&mut named), "eve joined");
    assert_eq!(next_text(&mut first), "eve joined", "both in the lobby");
    named.send(TMessage::binary(vec![1, 2])).unwrap();
    assert_eq!(next_text(&mut named), "this chat only takes text");
    close_client(first);
    close_client(named);
    server.shutdown().unwrap();
}

/// Three Python `websockets` clients: two in one room, one in another.
const PYTHON_ROOMS: &str = r#"
import asyncio, json, sys
import websockets

async def main(base):
    async with websockets.connect(base + "?room=r1&name=ada") as ada, \
               websockets.connect(base + "?room=r1&name=bo") as bo, \
               websockets.connect(base + "?room=r2&name=cid") as cid:
        seen = {"ada": [], "bo": [], "cid": []}
        async def until(ws, who, text):
            while True:
                message = await asyncio.wait_for(ws.recv(), 10)
                seen[who].append(message)
                if message == text:
                    return
        await until(ada, "ada", "bo joined")
        await until(cid, "cid", "cid joined")
        await ada.send("hi from ada")
        await until(bo, "bo", "ada: hi from ada")
        await cid.send("hi from cid")
        await ada.send("again")
        await until(bo, "bo", "ada: again")
    print(json.dumps(seen))

asyncio.run(main(sys.argv[1]))
"#;

#[test]
#[ignore = "needs a Python with websockets: bash .ci/run installs it"]
fn python_clients_in_two_rooms() {
    let python = tools::python_websockets();
    let server = chat_server();
    let url = format!("ws://{}/ws", server.local_addr());
    let seen = run_python_json(&python, PYTHON_ROOMS, &url);
    assert_eq!(seen["ada"], json!(["ada joined", "bo joined"]));
    assert_eq!(
        seen["bo"],
        json!(["bo joined", "ada: hi from ada", "ada: again"]),
        "room r1 never heard cid"
    );
    assert_eq!(seen["cid"], json!(["cid joined"]));
    server.shutdown().unwrap();
}

/// Joins `room` as `name` on the page, and waits until it is connected.
fn join(page: &mut common::browser::Page, room: &str, name: &str) {
    page.evaluate(&format!(
        "document.getElementById('room').value = {room:?};
         document.getElementById('name').value = {name:?};
         document.getElementById('join').requestSubmit(); true"
    ));
    poll_until("the page joined", || {
        page.text("document.getElementById('status').textContent")
            .starts_with("in ")
            .then_some(())
    });
}

fn log_of(page: &mut common::browser::Page) -> String {
    page.text("document.getElementById('log').textContent")
}

#[test]
#[ignore = "needs chromium: bash .ci/run installs it"]
fn the_page_in_chromium_two_rooms_three_tabs() {
    let chromium = tools::chromium();
    let server = chat_server();
    let addr = server.local_addr();
    let browser = Browser::launch(&chromium);
    let mut pages: Vec<_> = (0..3).map(|_| browser.open_page()).collect();
    for page in &mut pages {
        page.call("Page.enable", json!({}));
        page.call("Page.navigate", json!({ "url": format!("http://{addr}/") }));
        poll_until("the chat page", || {
            (page.text("document.readyState") == "complete"
                && page.text("document.title") == "wsreactor chat")
                .then_some(())
        });
    }
    join(&mut pages[0], "red", "ann");
    join(&mut pages[1], "red", "bob");
    join(&mut pages[2], "blue", "cy");
    poll_until("ann sees bob join", || {
        log_of(&mut pages[0]).contains("bob joined").then_some(())
    });
    pages[0].evaluate(
        "document.getElementById('text').value = 'hello red';
         document.getElementById('say').requestSubmit(); true",
    );
    poll_until("bob's page shows ann's message", || {
        log_of(&mut pages[1])
            .contains("ann: hello red")
            .then_some(())
    });
    assert!(
        log_of(&mut pages[0]).contains("you: hello red"),
        "the sender shows its own"
    );
    pages[2].evaluate(
        "document.getElementById('text').value = 'hello blue';
         document.getElementById('say').requestSubmit(); true",
    );
    poll_until("the blue message is sent", || {
        log_of(&mut pages[2])
            .contains("you: hello blue")
            .then_some(())
    });
    // A last red message: once bob has it, anything blue would have reached him before it.
    pages[1].evaluate(
        "document.getElementById('text').value = 'last';
         document.getElementById('say').requestSubmit(); true",
    );
    poll_until("ann sees bob's last", || {
        log_of(&mut pages[0]).contains("bob: last").then_some(())
    });
    for page in &mut pages[..2] {
        let log = log_of(page);
        assert!(
            !log.contains("cy") && !log.contains("blue"),
            "red saw blue: {log}"
        );
    }
    let blue = log_of(&mut pages[2]);
    assert!(
        blue.contains("cy joined") && !blue.contains("ann") && !blue.contains("bob"),
        "{blue}"
    );
    if let Ok(path) = std::env::var("WSREACTOR_SCREENSHOT") {
        pages[1].screenshot(std::path::Path::new(&path));
    }
    drop(pages);
    drop(browser);
    server.shutdown().unwrap();
}

/// The example binary `cargo test` built next to this test's own.
fn example() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    dir.join("examples").join("chat")
}

/// Starts the chat example on a free port; returns it and the address its banner printed.
fn spawn_chat() -> (Child, String) {
    let mut child = Command::new(example())
        .args(["--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("chat on http://"), "{line}");
    let addr = line
        .trim()
        .trim_start_matches("chat on http://")
        .trim_end_matches('/')
        .to_owned();
    (child, addr)
}

/// A SIGTERM sent the moment the address is printed finds the handler (it used to be installed
/// after the banner: a signal in between killed the process, and a client saw a reset).
#[test]
fn sigterm_right_after_the_banner_is_a_graceful_shutdown() {
    for _ in 0..10 {
        let (mut child, _addr) = spawn_chat();
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
        let status = child.wait().unwrap();
        assert!(status.success(), "killed instead of shut down: {status}");
    }
}

#[test]
fn sigterm_closes_everyone_with_1001_and_help_works() {
    let help = Command::new(example()).arg("--help").output().unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).starts_with("usage: chat [--addr HOST:PORT]"));
    let bad = Command::new(example()).arg("--nope").output().unwrap();
    assert_eq!(bad.status.code(), Some(2));

    let (mut child, addr) = spawn_chat();
    let stream = TcpStream::connect(&addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let (mut client, _) = tungstenite::client(format!("ws://{addr}/ws?name=zed"), stream).unwrap();
    assert_eq!(next_text(&mut client), "zed joined");
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let code = loop {
        match client.read() {
            Ok(TMessage::Close(frame)) => break frame.map(|f| f.code),
            Ok(_) => continue,
            Err(err) => panic!("before the close frame: {err}"),
        }
    };
    assert_eq!(code, Some(TCloseCode::Away));
    let _ = client.flush();
    let end = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < end, "chat did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{status}");
}
