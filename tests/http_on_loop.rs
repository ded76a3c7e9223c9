//! HTTP requests the handler answers without blocking (`Handler::answers_without_blocking`):
//! with the worker pool, the event loop answers them itself; every other request, a batch with
//! one such request in it, an upgrade and the metrics path still go to a worker. Each answer
//! says which thread wrote it, so the tests see where it ran, through real sockets.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::thread;

use common::*;
use wsreactor::{Config, Context, Exposition, Handler, Message, MetricKind, Request, Response};

/// The name of the thread this runs on.
fn here() -> String {
    thread::current().name().unwrap_or("unnamed").to_owned()
}

/// Answers every request with the name of the thread that ran `on_http_request` (and
/// `on_open`, `write_metrics`). Declares `/fast*` cheap; panics when asked about `/confused`.
struct WhereAnswered;

impl Handler for WhereAnswered {
    type Session = ();

    fn on_open(&self, ctx: &mut Context<'_>) {
        ctx.send(Message::Text(format!("opened on {}", here())));
    }

    fn on_message(&self, ctx: &mut Context<'_>, message: Message) {
        ctx.send(message);
    }

    fn answers_without_blocking(&self, request: &Request) -> bool {
        if request.path() == "/confused" {
            panic!("a panic in answers_without_blocking, requested by the test");
        }
        request.path().starts_with("/fast")
    }

    fn on_http_request(&self, request: &Request) -> Response {
        Response::text(200, format!("{} on {}", request.path(), here()))
    }

    fn write_metrics(&self, exposition: &mut Exposition<'_>) {
        let help = "The thread that wrote this exposition.";
        exposition.family("scraped_on", MetricKind::Gauge, help);
        exposition.sample("scraped_on", &[("thread", &here())], 1.0);
    }
}

fn server(config: Config) -> (wsreactor::Server, SocketAddr) {
    let server = start(config, WhereAnswered);
    let addr = server.local_addr();
    (server, addr)
}

fn pool_config() -> Config {
    let mut config = config();
    config.inline_handlers = false;
    config
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")
}

/// Sends `requests` in one write and reads as many answers: their bodies, in order.
fn answers(stream: &mut TcpStream, requests: &[&str]) -> Vec<String> {
    let batch: String = requests.iter().map(|path| get(path)).collect();
    stream.write_all(batch.as_bytes()).expect("write");
    requests
        .iter()
        .map(|_| {
            let (head, body) = read_http_response(stream).expect("a response");
            assert_eq!(status(&head), 200, "{head}");
            String::from_utf8(body).expect("UTF-8 body")
        })
        .collect()
}

#[test]
fn a_request_declared_cheap_is_answered_on_the_loop_and_others_by_a_worker() {
    let (server, addr) = server(pool_config());
    let mut stream = raw(addr);
    for _ in 0..3 {
        let fast = answers(&mut stream, &["/fast"]);
        assert!(fast[0].starts_with("/fast on wsreactor-loop-"), "{fast:?}");
        let slow = answers(&mut stream, &["/slow"]);
        assert!(
            slow[0].starts_with("/slow on wsreactor-worker-"),
            "{slow:?}"
        );
    }
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_pipelined_batch_stays_on_the_loop_only_if_every_request_in_it_is_cheap() {
    let (server, addr) = server(pool_config());
    let mut stream = raw(addr);
    let all_cheap = answers(&mut stream, &["/fast/1", "/fast/2", "/fast/3"]);
    for (answer, path) in all_cheap.iter().zip(["/fast/1", "/fast/2", "/fast/3"]) {
        let on_loop = format!("{path} on wsreactor-loop-");
        assert!(answer.starts_with(&on_loop), "{answer:?} in {all_cheap:?}");
    }
    let mixed = answers(&mut stream, &["/fast/4", "/slow", "/fast/5"]);
    assert_eq!(mixed.len(), 3);
    for (answer, path) in mixed.iter().zip(["/fast/4", "/slow", "/fast/5"]) {
        let worker = format!("{path} on wsreactor-worker-");
        assert!(answer.starts_with(&worker), "{answer:?} in {mixed:?}");
    }
    server.shutdown().expect("clean shutdown");
}

#[test]
fn an_upgrade_behind_a_cheap_request_opens_on_a_worker() {
    let (server, addr) = server(pool_config());
    let mut stream = raw(addr);
    let both = format!("{}{}", get("/fast"), upgrade_request("/fast/ws"));
    stream.write_all(both.as_bytes()).expect("write");
    let (head, body) = read_http_response(&mut stream).expect("the page");
    assert_eq!(status(&head), 200);
    assert!(String::from_utf8_lossy(&body).starts_with("/fast on wsreactor-worker-"));
    let head = read_http_head(&mut stream).expect("the upgrade");
    assert_eq!(status(&head), 101, "{head}");
    let (fin, opcode, payload) = read_frame(&mut stream).expect("on_open's message");
    assert_eq!((fin, opcode), (true, 0x1));
    let text = String::from_utf8(payload).expect("UTF-8");
    assert!(text.starts_with("opened on wsreactor-worker-"), "{text}");
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_panic_in_the_declaration_sends_the_request_to_a_worker_and_is_counted() {
    let (server, addr) = server(pool_config());
    let mut stream = raw(addr);
    let answer = answers(&mut stream, &["/confused"]);
    assert!(
        answer[0].starts_with("/confused on wsreactor-worker-"),
        "{answer:?}"
    );
    // The loop survived, and still answers on its own.
    let fast = answers(&mut stream, &["/fast"]);
    assert!(fast[0].starts_with("/fast on wsreactor-loop-"), "{fast:?}");
    assert_eq!(server.handle().stats().handler_panics, 1);
    server.shutdown().expect("clean shutdown");
}

#[test]
fn the_metrics_path_is_answered_by_a_worker_and_the_health_path_still_answers() {
    let mut config = pool_config();
    config.health_path = Some("/healthz".into());
    config.metrics_path = Some("/metrics".into());
    let (server, addr) = server(config);
    let mut stream = raw(addr);
    stream.write_all(get("/healthz").as_bytes()).expect("write");
    let (head, body) = read_http_response(&mut stream).expect("health");
    assert_eq!((status(&head), body.as_slice()), (200, &b"ok\n"[..]));
    stream.write_all(get("/metrics").as_bytes()).expect("write");
    let (head, body) = read_http_response(&mut stream).expect("metrics");
    assert_eq!(status(&head), 200);
    let body = String::from_utf8(body).expect("UTF-8");
    assert!(
        body.contains("scraped_on{thread=\"wsreactor-worker-"),
        "{body}"
    );
    server.shutdown().expect("clean shutdown");
}
