//! `examples/embed.rs` as a program: its process has exactly one thread while it serves, its
//! clients get `tick N` at its frame rate with N counting up by one, text is echoed, SIGTERM
//! closes them with `1001` and the program exits 0; `--help` and bad arguments are answered.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::DEADLINE;
use tungstenite::Message;
use tungstenite::protocol::frame::coding::CloseCode;

/// The example binary `cargo test` built next to this test's own.
fn example() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let debug = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let path = debug.join("examples").join("embed");
    assert!(
        path.exists(),
        "{} not built (cargo test builds examples)",
        path.display()
    );
    path
}

/// Starts the example on a free port; returns it and its address.
fn start() -> (Child, String) {
    let mut child = Command::new(example())
        .args(["--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the embed example");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the first line");
    let addr = line
        .split("ws://")
        .nth(1)
        .map(|rest| rest.trim().trim_end_matches('/').to_owned())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    (child, addr)
}

fn threads_of(child: &Child) -> usize {
    std::fs::read_dir(format!("/proc/{}/task", child.id()))
        .expect("/proc/PID/task")
        .count()
}

/// The number in a `tick N` message.
fn tick(message: &Message) -> Option<u64> {
    message.to_text().ok()?.strip_prefix("tick ")?.parse().ok()
}

#[test]
fn one_thread_ticks_echoes_and_closes_with_1001_on_sigterm() {
    let (mut child, addr) = start();
    assert_eq!(threads_of(&child), 1, "the program has one thread");
    let stream = TcpStream::connect(&addr).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let (mut client, _) = tungstenite::client(format!("ws://{addr}/"), stream).expect("upgrade");

    // 30 consecutive ticks, at about 60 a second.
    let first = tick(&client.read().unwrap()).expect("a tick");
    let started = Instant::now();
    for n in 1..=30 {
        assert_eq!(
            tick(&client.read().unwrap()),
            Some(first + n),
            "ticks count up by one"
        );
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(300),
        "30 ticks in {elapsed:?}: faster than 60 Hz"
    );
    assert_eq!(
        threads_of(&child),
        1,
        "still one thread with a client connected"
    );

    client.send(Message::text("echo me")).unwrap();
    loop {
        let message = client.read().unwrap();
        if tick(&message).is_none() {
            assert_eq!(message, Message::text("echo me"));
            break;
        }
    }

    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let code = loop {
        match client.read() {
            Ok(Message::Close(frame)) => break frame.map(|f| f.code),
            Ok(_) => continue,
            Err(err) => panic!("before the close frame: {err}"),
        }
    };
    assert_eq!(code, Some(CloseCode::Away));
    // Answer the close (tungstenite queued the reply), so shutdown need not wait it out.
    let _ = client.flush();
    let end = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < end,
            "the program did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{status}");
}

#[test]
fn help_and_bad_arguments() {
    let help = Command::new(example()).arg("--help").output().unwrap();
    assert!(help.status.success());
    let text = String::from_utf8(help.stdout).unwrap();
    assert!(
        text.starts_with("usage: embed [--addr HOST:PORT]"),
        "{text}"
    );
    let bad = Command::new(example())
        .args(["--addr", "nowhere"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("bad address"));
    let unknown = Command::new(example()).arg("--fast").output().unwrap();
    assert_eq!(unknown.status.code(), Some(2));
}
