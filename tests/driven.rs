//! The caller-driven server (`ServerBuilder::build_driven`): it runs only inside `turn`, on the
//! test's own thread (tests/embed.rs checks that such a process has one thread); a push from another thread wakes a waiting turn; its file descriptor says
//! when a turn has work; the driving thread's pushes never wait on themselves; a shutdown
//! closes WebSockets with `1001` and then every turn says `Stopped`; its handler and sessions
//! may be `Rc<RefCell<_>>` state shared with the caller, who reads it between turns.

mod common;

use std::cell::RefCell;
use std::os::fd::AsRawFd;
use std::rc::Rc;
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

/// The board of a driven test: what the handler saw, shared with the test's own loop.
type Board = Rc<RefCell<Vec<String>>>;

/// A handler whose state, and every connection's session, is an `Rc<RefCell<_>>` — neither
/// `Send` nor `Sync` — shared with the caller's loop: each connection's session is the board
/// (given in `on_upgrade`), plus a counter of its own in an `Rc<Cell<_>>`.
struct Local {
    board: Board,
}

#[derive(Default)]
struct Seat {
    board: Board,
    count: Rc<std::cell::Cell<u32>>,
}

impl wsreactor::Handler for Local {
    type Session = Seat;

    fn on_upgrade(
        &self,
        _: &wsreactor::Request,
        _: &wsreactor::UpgradeOffer,
    ) -> wsreactor::Upgrade<Seat> {
        wsreactor::Upgrade::accept_with(Seat {
            board: Rc::clone(&self.board),
            count: Rc::default(),
        })
    }

    fn on_message(&self, ctx: &mut wsreactor::Context<'_, Seat>, message: wsreactor::Message) {
        let text = String::from_utf8_lossy(message.as_bytes()).into_owned();
        let seat = ctx.session();
        seat.count.set(seat.count.get() + 1);
        seat.board.borrow_mut().push(text.clone());
        let count = seat.count.get();
        ctx.send(format!("{text}:{count}"));
    }

    fn on_close(
        &self,
        _: wsreactor::ConnId,
        seat: Seat,
        _: &wsreactor::CloseInfo,
        _: &wsreactor::ServerHandle,
    ) {
        seat.board
            .borrow_mut()
            .push(format!("closed after {}", seat.count.get()));
    }
}

#[test]
fn a_driven_server_takes_handlers_and_sessions_that_are_not_send_and_the_caller_reads_them() {
    let board: Board = Rc::default();
    let mut server = Server::builder()
        .config(config())
        .build_driven(Local {
            board: Rc::clone(&board),
        })
        .expect("binds");
    let addr = server.local_addr();
    let (go, next) = std::sync::mpsc::channel::<&'static str>();
    let client = thread::spawn(move || {
        let mut client = connect(addr);
        for text in next {
            client.send(TMessage::text(text)).unwrap();
            let answer = client.read().unwrap();
            assert!(answer.to_text().unwrap().starts_with(text), "{answer:?}");
        }
        close_client(client);
    });
    // Between turns the caller reads what the handler wrote, through its own `Rc`.
    for (n, text) in ["a", "b", "c"].into_iter().enumerate() {
        go.send(text).unwrap();
        turn_until(&mut server, "the message on the board", || {
            board.borrow().len() == n + 1
        });
        assert_eq!(board.borrow().last().map(String::as_str), Some(text));
        assert!(
            Rc::strong_count(&board) >= 3,
            "the handler's and the session's"
        );
    }
    drop(go);
    turn_until(&mut server, "on_close", || board.borrow().len() == 4);
    assert_eq!(*board.borrow(), ["a", "b", "c", "closed after 3"]);
    client.join().unwrap();
    server.shutdown().unwrap();
    assert_eq!(
        Rc::strong_count(&board),
        1,
        "the server dropped its handler"
    );
}

/// Counts each connection's messages; `later` defers its answer to a thread that completes it.
struct Later {
    parked: std::sync::Arc<std::sync::Mutex<Vec<wsreactor::Deferred<u32>>>>,
}

impl wsreactor::Handler for Later {
    type Session = u32;

    fn on_message(&self, ctx: &mut wsreactor::Context<'_, u32>, message: wsreactor::Message) {
        *ctx.session_mut() += 1;
        if message.as_bytes() == b"later" {
            self.parked.lock().unwrap().push(ctx.defer());
        } else {
            let count = *ctx.session();
            ctx.send(format!("count:{count}"));
        }
    }
}

#[test]
fn a_driven_servers_deferred_completion_keeps_the_session() {
    let parked = std::sync::Arc::default();
    let mut server = Server::builder()
        .config(config())
        .build_driven(Later {
            parked: std::sync::Arc::clone(&parked),
        })
        .expect("binds");
    let addr = server.local_addr();
    let client = thread::spawn(move || {
        let mut client = connect(addr);
        client.send(TMessage::text("a")).unwrap();
        client.send(TMessage::text("later")).unwrap();
        client.send(TMessage::text("b")).unwrap();
        let answers: Vec<String> = (0..3)
            .map(|_| client.read().unwrap().to_text().unwrap().to_owned())
            .collect();
        close_client(client);
        answers
    });
    turn_until(&mut server, "the deferral", || {
        !parked.lock().unwrap().is_empty()
    });
    let deferred = parked.lock().unwrap().pop().unwrap();
    let completer = thread::spawn(move || {
        deferred.complete(|ctx| {
            *ctx.session_mut() += 10;
            let count = *ctx.session();
            ctx.send(format!("done:{count}"));
        })
    });
    turn_until(&mut server, "the answers", || client.is_finished());
    assert_eq!(completer.join().unwrap(), Ok(()));
    assert_eq!(client.join().unwrap(), ["count:1", "done:12", "count:13"]);
    server.shutdown().unwrap();
}

/// Sessions that are not `Send` (a `Seat`), and calls that complete out of order: `req`
/// defers, anything else is counted and echoed.
struct Requests {
    board: Board,
    parked: std::sync::Arc<std::sync::Mutex<Vec<wsreactor::Unordered<Seat>>>>,
}

impl wsreactor::Handler for Requests {
    type Session = Seat;

    fn on_upgrade(
        &self,
        _: &wsreactor::Request,
        _: &wsreactor::UpgradeOffer,
    ) -> wsreactor::Upgrade<Seat> {
        wsreactor::Upgrade::accept_with(Seat {
            board: Rc::clone(&self.board),
            count: Rc::default(),
        })
    }

    fn on_message(&self, ctx: &mut wsreactor::Context<'_, Seat>, message: wsreactor::Message) {
        let seat = ctx.session();
        seat.count.set(seat.count.get() + 1);
        if message.as_bytes() == b"req" {
            let handle = ctx.defer_unordered(1).expect("room for one");
            self.parked.lock().unwrap().push(handle);
        } else {
            let count = seat.count.get();
            ctx.send(format!("count:{count}"));
        }
    }
}

#[test]
fn a_driven_server_completes_out_of_order_with_a_session_that_is_not_send() {
    let board: Board = Rc::default();
    let parked = std::sync::Arc::default();
    let mut server = Server::builder()
        .config(config())
        .configure(|config| config.max_unordered_per_connection = 1)
        .build_driven(Requests {
            board: Rc::clone(&board),
            parked: std::sync::Arc::clone(&parked),
        })
        .expect("binds");
    let addr = server.local_addr();
    let client = thread::spawn(move || {
        let mut client = connect(addr);
        client.send(TMessage::text("req")).unwrap();
        client.send(TMessage::text("b")).unwrap();
        let answers: Vec<String> = (0..2)
            .map(|_| client.read().unwrap().to_text().unwrap().to_owned())
            .collect();
        close_client(client);
        answers
    });
    turn_until(&mut server, "the handle", || {
        !parked.lock().unwrap().is_empty()
    });
    let handle = parked.lock().unwrap().pop().unwrap();
    let completer = thread::spawn(move || {
        handle.complete(|ctx| {
            let seat = ctx.session();
            seat.count.set(seat.count.get() + 10);
            seat.board.borrow_mut().push("completed".into());
            let count = seat.count.get();
            ctx.send(format!("done:{count}"));
        })
    });
    turn_until(&mut server, "the answers", || client.is_finished());
    assert_eq!(completer.join().unwrap(), Ok(()));
    let answers = client.join().unwrap();
    assert!(
        answers == ["count:2", "done:12"] || answers == ["done:11", "count:12"],
        "{answers:?}"
    );
    assert_eq!(*board.borrow(), ["completed"]);
    server.shutdown().unwrap();
}
