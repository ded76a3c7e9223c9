//! HTTP requests answered later, over real sockets (`HttpContext::answer_later`): the
//! responder completes on another thread and the response goes out framed as its request
//! asked (keep-alive, `Connection: close`, HTTP/1.0, `HEAD`); pipelined requests behind it are
//! neither handled nor answered before it; past `deferred_timeout` the client gets `504` and a
//! late completion `TimedOut`; a dropped responder answers `500`; a connection reset meanwhile
//! makes the completion fail with `Closed` and leaks nothing; a completion inside the call
//! answers at once; an answer that is not returned, or a panic, leaves its responder `Unused`;
//! an upgrade pipelined behind a deferred answer still opens its WebSocket.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::http::{CONTENT_TYPE, header, read_until_eof};
use common::*;
use wsreactor::{
    Answer, Context, DeferredError, Handler, HttpContext, Message, Request, Responder, Response,
};

/// `/later…` answers later (the responder is parked for the test), `/inside` completes inside
/// the call, `/drop` drops its responder, `/unused` answers now and parks the responder it
/// did not use, `/panic` parks its responder and panics; anything else is answered at once
/// with `"{method} {path}"`. Every call is recorded, in order.
#[derive(Default, Clone)]
struct Later {
    parked: Arc<Mutex<Vec<Responder>>>,
    handled: Arc<Mutex<Vec<String>>>,
}

impl Later {
    /// Waits until a responder is parked and takes the oldest.
    fn take(&self) -> Responder {
        poll_until("a parked responder", || {
            let mut parked = self.parked.lock().unwrap();
            (!parked.is_empty()).then(|| parked.remove(0))
        })
    }

    fn handled(&self) -> Vec<String> {
        self.handled.lock().unwrap().clone()
    }
}

impl Handler for Later {
    type Session = ();

    fn on_message(&self, ctx: &mut Context<'_>, message: Message) {
        ctx.send(message);
    }

    fn on_http(&self, ctx: &mut HttpContext<'_>, request: Request) -> Answer {
        let path = request.path().to_owned();
        self.handled.lock().unwrap().push(path.clone());
        match path.as_str() {
            "/inside" => {
                let (answer, responder) = ctx.answer_later();
                let result = responder.complete(Response::text(200, "inside"));
                assert_eq!(result, Ok(()));
                answer
            }
            "/drop" => ctx.answer_later().0,
            "/unused" | "/panic" => {
                let (_answer, responder) = ctx.answer_later();
                self.parked.lock().unwrap().push(responder);
                assert_ne!(path, "/panic", "handler panic requested by the test");
                Answer::now(Response::text(200, "now"))
            }
            later if later.starts_with("/later") => {
                let (answer, responder) = ctx.answer_later();
                assert!(answer.is_later());
                self.parked.lock().unwrap().push(responder);
                answer
            }
            _ => Answer::now(Response::text(200, format!("{} {path}", request.method()))),
        }
    }
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")
}

/// The exact response `Response::text(status, body)` makes on a keep-alive HTTP/1.1
/// connection, without its `Date`.
fn text_response(status_line: &str, body: &str) -> String {
    let len = body.len();
    format!("{status_line}\r\n{CONTENT_TYPE}Content-Length: {len}\r\n\r\n{body}")
}

/// Reads one response: its head without `Date`, and its body.
fn response(stream: &mut TcpStream) -> String {
    let (head, body) = read_http_response(stream).expect("a response");
    without_date(&head) + &String::from_utf8_lossy(&body)
}

/// Completes `responder` with `200 body` on another thread.
fn complete_elsewhere(responder: Responder, body: &'static str) -> Result<(), DeferredError> {
    thread::spawn(move || responder.complete(Response::text(200, body)))
        .join()
        .unwrap()
}

fn later_config(timeout: Duration) -> wsreactor::Config {
    let mut config = config();
    config.deferred_timeout = timeout;
    config
}

#[test]
fn a_completion_from_another_thread_answers_and_the_connection_stays_alive() {
    let app = Later::default();
    let server = start(later_config(Duration::from_secs(30)), app.clone());
    let mut client = raw(server.local_addr());
    client.write_all(get("/later/a").as_bytes()).unwrap();
    let responder = app.take();
    assert_eq!(complete_elsewhere(responder, "done a"), Ok(()));
    assert_eq!(
        response(&mut client),
        text_response("HTTP/1.1 200 OK", "done a")
    );
    client.write_all(get("/next").as_bytes()).unwrap();
    assert_eq!(
        response(&mut client),
        text_response("HTTP/1.1 200 OK", "GET /next")
    );
    let stats = server.handle().stats();
    assert_eq!((stats.deferred_calls, stats.deferred_expired), (1, 0));
    server.handle().shutdown();
    server.join().unwrap();
}

/// Two pipelined requests in one write, the first answered later: the second is parsed (the
/// server counted it) but not handled until the first's answer is in, and the responses come
/// in request order.
fn pipelined_after_a_deferred_answer(inline: bool) {
    let app = Later::default();
    let mut config = later_config(Duration::from_secs(30));
    config.inline_handlers = inline;
    let server = start(config, app.clone());
    let handle = server.handle();
    let mut client = raw(server.local_addr());
    let both = get("/later/1") + &get("/second");
    client.write_all(both.as_bytes()).unwrap();
    let responder = app.take();
    wait_for_stats(&handle, "both requests parsed", |s| s.http_requests == 2);
    assert_eq!(app.handled(), ["/later/1"], "/second waits for the answer");
    assert_eq!(complete_elsewhere(responder, "first"), Ok(()));
    assert_eq!(
        response(&mut client),
        text_response("HTTP/1.1 200 OK", "first")
    );
    assert_eq!(
        response(&mut client),
        text_response("HTTP/1.1 200 OK", "GET /second")
    );
    assert_eq!(app.handled(), ["/later/1", "/second"]);
    handle.shutdown();
    server.join().unwrap();
}

#[test]
fn pipelined_requests_wait_for_a_deferred_answer_and_keep_their_order() {
    pipelined_after_a_deferred_answer(false);
}

#[test]
fn pipelined_requests_wait_for_a_deferred_answer_with_inline_handlers() {
    pipelined_after_a_deferred_answer(true);
}

#[test]
fn past_the_deadline_the_client_gets_504_and_a_late_completion_timed_out() {
    let app = Later::default();
    let server = start(later_config(Duration::from_millis(200)), app.clone());
    let mut client = raw(server.local_addr());
    let both = get("/later/slow") + &get("/after");
    client.write_all(both.as_bytes()).unwrap();
    let responder = app.take();
    let body = "gateway timeout: the answer did not come in time\n";
    assert_eq!(
        response(&mut client),
        text_response("HTTP/1.1 504 Gateway Timeout", body)
    );
    assert_eq!(
        response(&mut client),
        text_response("HTTP/1.1 200 OK", "GET /after"),
        "the connection stays alive: the pipelined request is answered after the 504"
    );
    let late = responder.complete(Response::text(200, "late"));
    assert_eq!(late, Err(DeferredError::TimedOut));
    let stats = server.handle().stats();
    assert_eq!((stats.deferred_expired, stats.deferred_late), (1, 1));
    server.handle().shutdown();
    server.join().unwrap();
}

#[test]
fn a_504_for_a_request_that_asked_to_close_closes_the_connection() {
    let app = Later::default();
    let server = start(later_config(Duration::from_millis(100)), app.clone());
    let mut client = raw(server.local_addr());
    let request = "GET /later/close HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    client.write_all(request.as_bytes()).unwrap();
    let _responder = app.take();
    let rest = String::from_utf8(read_until_eof(&mut client)).unwrap();
    assert!(
        rest.starts_with("HTTP/1.1 504 Gateway Timeout\r\n"),
        "{rest}"
    );
    assert_eq!(header(&rest, "connection"), "close");
    server.handle().shutdown();
    server.join().unwrap();
}

#[test]
fn a_dropped_responder_answers_500_and_the_connection_goes_on() {
    let app = Later::default();
    let server = start(later_config(Duration::from_secs(30)), app.clone());
    let mut client = raw(server.local_addr());
    let error = text_response(
        "HTTP/1.1 500 Internal Server Error",
        "internal server error\n",
    );
    client.write_all(get("/drop").as_bytes()).unwrap();
    assert_eq!(response(&mut client), error, "dropped inside the call");
    client.write_all(get("/later/d").as_bytes()).unwrap();
    drop(app.take());
    assert_eq!(response(&mut client), error, "dropped on another thread");
    client.write_all(get("/next").as_bytes()).unwrap();
    assert_eq!(
        response(&mut client),
        text_response("HTTP/1.1 200 OK", "GET /next")
    );
    let stats = server.handle().stats();
    assert_eq!((stats.deferred_abandoned, stats.deferred_calls), (2, 1));
    server.handle().shutdown();
    server.join().unwrap();
}

/// The client goes away (with a reset, or a plain close) while its answer is pending: the
/// server gives the answer up, the completion fails with `Closed`, and nothing is left behind.
fn client_gone_while_the_answer_is_pending(reset: bool) {
    let app = Later::default();
    let server = start(later_config(Duration::from_secs(30)), app.clone());
    let handle = server.handle();
    let mut client = raw(server.local_addr());
    client.write_all(get("/later/gone").as_bytes()).unwrap();
    let responder = app.take();
    if reset {
        socket2::SockRef::from(&client)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
    }
    drop(client);
    wait_for_stats(&handle, "the connection gone", |s| s.connections_open == 0);
    let result = responder.complete(Response::text(200, "too late"));
    assert_eq!(result, Err(DeferredError::Closed));
    let stats = wait_for_stats(&handle, "the budget refunded", |s| s.buffered_bytes == 0);
    assert_eq!((stats.deferred_late, stats.connections_open), (1, 0));
    common::http::assert_serves(server.local_addr());
    handle.shutdown();
    server.join().unwrap();
}

#[test]
fn a_connection_reset_while_the_answer_is_pending_fails_the_completion_with_closed() {
    client_gone_while_the_answer_is_pending(true);
}

#[test]
fn a_client_closing_while_the_answer_is_pending_fails_the_completion_with_closed() {
    client_gone_while_the_answer_is_pending(false);
}

#[test]
fn a_completion_inside_the_call_answers_at_once() {
    let app = Later::default();
    let server = start(later_config(Duration::from_secs(30)), app.clone());
    let mut client = raw(server.local_addr());
    let both = get("/inside") + &get("/next");
    client.write_all(both.as_bytes()).unwrap();
    assert_eq!(
        response(&mut client),
        text_response("HTTP/1.1 200 OK", "inside")
    );
    assert_eq!(
        response(&mut client),
        text_response("HTTP/1.1 200 OK", "GET /next")
    );
    assert_eq!(
        server.handle().stats().deferred_calls,
        0,
        "nothing was deferred"
    );
    server.handle().shutdown();
    server.join().unwrap();
}

#[test]
fn head_http10_and_close_are_framed_as_for_an_answer_now() {
    let app = Later::default();
    let server = start(later_config(Duration::from_secs(30)), app.clone());
    let mut client = raw(server.local_addr());
    let head = "HEAD /later/head HTTP/1.1\r\nHost: x\r\n\r\n".to_owned() + &get("/next");
    client.write_all(head.as_bytes()).unwrap();
    assert_eq!(complete_elsewhere(app.take(), "abc"), Ok(()));
    let got = read_http_head(&mut client).unwrap();
    assert_eq!(
        without_date(&got),
        text_response("HTTP/1.1 200 OK", "abc").replace("abc", "")
    );
    assert_eq!(
        response(&mut client),
        text_response("HTTP/1.1 200 OK", "GET /next"),
        "no body after the HEAD response's head: the next response follows it"
    );
    let mut old = raw(server.local_addr());
    old.write_all(b"GET /later/10 HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(complete_elsewhere(app.take(), "one-oh"), Ok(()));
    let rest = String::from_utf8(read_until_eof(&mut old)).unwrap();
    assert_eq!(without_date(&rest), close_response("one-oh"));
    let mut closing = raw(server.local_addr());
    let request = "GET /later/c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    closing.write_all(request.as_bytes()).unwrap();
    assert_eq!(complete_elsewhere(app.take(), "bye"), Ok(()));
    let rest = String::from_utf8(read_until_eof(&mut closing)).unwrap();
    assert_eq!(without_date(&rest), close_response("bye"));
    server.handle().shutdown();
    server.join().unwrap();
}

/// `Response::text(200, body)` with `Connection: close`, without its `Date`.
fn close_response(body: &str) -> String {
    let len = body.len();
    format!(
        "HTTP/1.1 200 OK\r\n{CONTENT_TYPE}Content-Length: {len}\r\nConnection: close\r\n\r\n{body}"
    )
}

#[test]
fn an_answer_not_returned_or_a_panic_leaves_the_responder_unused() {
    let app = Later::default();
    let server = start(later_config(Duration::from_secs(30)), app.clone());
    let mut client = raw(server.local_addr());
    client.write_all(get("/unused").as_bytes()).unwrap();
    assert_eq!(
        response(&mut client),
        text_response("HTTP/1.1 200 OK", "now")
    );
    let unused = app.take().complete(Response::text(200, "never"));
    assert_eq!(unused, Err(DeferredError::Unused));
    client.write_all(get("/panic").as_bytes()).unwrap();
    let rest = String::from_utf8(read_until_eof(&mut client)).unwrap();
    assert!(
        rest.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
        "{rest}"
    );
    let panicked = app.take().complete(Response::text(200, "never"));
    assert_eq!(panicked, Err(DeferredError::Unused));
    assert_eq!(server.handle().stats().handler_panics, 1);
    server.handle().shutdown();
    server.join().unwrap();
}

#[test]
fn an_upgrade_pipelined_behind_a_deferred_answer_still_opens() {
    let app = Later::default();
    let server = start(later_config(Duration::from_secs(30)), app.clone());
    let mut client = raw(server.local_addr());
    let both = get("/later/first") + &upgrade_request("/ws");
    client.write_all(both.as_bytes()).unwrap();
    let responder = app.take();
    assert_eq!(complete_elsewhere(responder, "first"), Ok(()));
    assert_eq!(
        response(&mut client),
        text_response("HTTP/1.1 200 OK", "first")
    );
    let head = read_http_head(&mut client).unwrap();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    client.write_all(&masked(true, 1, b"hello")).unwrap();
    assert_eq!(
        read_frame(&mut client).unwrap(),
        (true, 1, b"hello".to_vec())
    );
    server.handle().shutdown();
    server.join().unwrap();
}
