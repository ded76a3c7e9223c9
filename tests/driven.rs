//! The caller-driven server (`ServerBuilder::build_driven`): it runs only inside `turn`, on the
//! test's own thread (tests/embed.rs checks that such a process has one thread); a push from another thread wakes a waiting turn; its file descriptor says
//! when a turn has work; the driving thread's pushes never wait on themselves; a shutdown
//! closes WebSockets with `1001` and then every turn says `Stopped`.

mod common;

use std::os::fd::AsRawFd;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use tungstenite::Message as TMessage;
use tungstenite::protocol::frame::coding::CloseCode as TCloseCode;
use wsreactor::{DrivenServer, SendError, Server, Turned};

fn driven() -> DrivenServer {
    let _ = env_logger::builder().is_test(true).try_init();
    Server::builder()
        .config(config())
        .build_driven(echo())
        .expect("binds")
}

/// Turns until `done` says so (the client threads do the checking), with a deadline.
fn turn_until(server: &mut DrivenServer, what: &str, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !done() {
        assert!(Instant::now() < end, "timed out turning until: {what}");
        let turned = server.turn(Some(Duration::from_millis(20))).unwrap();
        assert_eq!(turned, Turned::Running);
    }
}

#[test]
fn it_serves_only_inside_turn_on_the_callers_thread() {
    let mut server = driven();
    let addr = server.local_addr();
    let client = thread::spawn(move || {
        let mut client = connect(addr);
        echo_text(&mut client, "hello from a client");
        client
    });
    turn_until(&mut server, "the client's echo", || client.is_finished());
    let mut client = client.join().expect("the echo came back");
    assert_eq!(server.handle().stats().websocket_open, 1);

    // A push from another thread wakes a turn that would otherwise wait 10 s.
    let handle = server.handle();
    let pusher = thread::spawn(move || handle.broadcast("pushed").unwrap());
    let started = Instant::now();
    while server.handle().stats().messages_out < 2 {
        server.turn(Some(Duration::from_secs(10))).unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the push did not wake the turn"
        );
    }
    pusher.join().unwrap();
    assert_eq!(client.read().unwrap(), TMessage::text("pushed"));

    // Shutdown from another handle: the client hears 1001, then every turn says Stopped.
    server.handle().shutdown();
    let reader = thread::spawn(move || {
        loop {
            match client.read() {
                Ok(TMessage::Close(Some(frame))) => return frame.code,
                Ok(_) => continue,
                Err(err) => panic!("before the close frame: {err}"),
            }
        }
    });
    let end = Instant::now() + DEADLINE;
    while server.turn(Some(Duration::from_millis(20))).unwrap() == Turned::Running {
        assert!(Instant::now() < end, "shutdown did not complete");
    }
    assert_eq!(reader.join().unwrap(), TCloseCode::Away);
    assert_eq!(server.turn(Some(Duration::ZERO)).unwrap(), Turned::Stopped);
}

#[test]
fn its_file_descriptor_is_readable_when_a_turn_has_work() {
    let mut server = driven();
    let fd = server.as_raw_fd();
    let readable = |timeout_ms: i32| {
        let mut pollfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, for the length given.
        let ready = unsafe { libc::poll(&mut pollfd, 1, timeout_ms) };
        ready == 1 && pollfd.revents & libc::POLLIN != 0
    };
    assert!(!readable(0), "nothing to do yet");
    let addr = server.local_addr();
    let client = thread::spawn(move || {
        let mut client = connect(addr);
        echo_text(&mut client, "outer loop");
        close_client(client);
    });
    assert!(
        readable(20_000),
        "a connecting client makes the descriptor readable before any turn"
    );
    // An outer loop: wait on the descriptor (no longer than the server's own next deadline),
    // then turn without waiting.
    let end = Instant::now() + DEADLINE;
    while !client.is_finished() {
        assert!(
            Instant::now() < end,
            "the outer loop never saw the client through"
        );
        let wait = server
            .timeout()
            .map_or(100, |t| t.as_millis().min(100) as i32);
        readable(wait);
        server.turn(Some(Duration::ZERO)).unwrap();
    }
    client.join().expect("echo and close over the outer loop");
    assert!(server.handle().stats().messages_in >= 1);
    server.shutdown().unwrap();
}

#[test]
fn pushes_on_the_driving_thread_fail_instead_of_waiting_on_themselves() {
    let mut config = config();
    config.command_queue_capacity = 2;
    let mut server = Server::builder()
        .config(config)
        .build_driven(echo())
        .unwrap();
    let handle = server.handle();
    assert_eq!(handle.broadcast("1"), Ok(()));
    assert_eq!(handle.broadcast("2"), Ok(()));
    assert_eq!(
        handle.broadcast("3"),
        Err(SendError::Full),
        "only this thread empties the queue: waiting would never end"
    );
    server.turn(Some(Duration::ZERO)).unwrap();
    assert_eq!(handle.broadcast("4"), Ok(()), "a turn emptied it");
    server.shutdown().unwrap();
    assert_eq!(handle.broadcast("5"), Err(SendError::Stopped));
}

#[test]
fn run_until_returns_at_its_deadline() {
    let mut server = driven();
    let deadline = Instant::now() + Duration::from_millis(50);
    assert_eq!(server.run_until(deadline).unwrap(), Turned::Running);
    assert!(Instant::now() >= deadline);
    server.shutdown().unwrap();
}
