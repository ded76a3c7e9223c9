//! HTTP answers given later, in the core: the requests pipelined after a deferred answer are
//! kept by the session and become its next job only once the answer's reply is in; the
//! deadline writes `504` (keep-alive as the request asked, or a close); a response that does
//! not keep the connection alive closes it; an upgrade behind a deferred answer waits for it;
//! a close takes the job back and drops what waited.

use std::sync::{Arc, Mutex};

use super::*;
use crate::dispatch::{
    After, Deferral, DeferredCell, Framing, HttpLater, Job, Output, Pending, Reclaimed, Returned,
    Run, Work,
};
use crate::harness::AppEvent;
use crate::http::Response;

/// An answer given later: its pending job, until the test completes it or the loop takes it.
#[derive(Debug, Default)]
struct LaterCell {
    pending: Mutex<Option<Pending>>,
    framing: Mutex<Option<Framing>>,
}

impl DeferredCell for LaterCell {
    fn announce(&self) -> Option<Pending> {
        None
    }

    fn reclaim(&self, _why: Reclaimed) -> Option<Pending> {
        self.pending.lock().unwrap().take()
    }
}

/// Runs the oldest queued job as the runner would — each request answered `200` with its
/// path — until a request whose path starts with `/later`: its answer is deferred, and the
/// deferral (with the requests after it) goes to the loop.
fn run_deferring(h: &mut Harness) -> Arc<LaterCell> {
    let Some(Job::Run(Run {
        lease,
        work: Work::Http { requests, tail },
        ..
    })) = h.table.jobs_mut().jobs.pop_front()
    else {
        panic!("an HTTP job");
    };
    let conn = lease.conn();
    let mut output = Output::default();
    let mut requests = requests.into_iter();
    let cell = Arc::new(LaterCell::default());
    for request in requests.by_ref() {
        let framing = Framing::of(&request, false);
        if request.path().starts_with("/later") {
            *cell.framing.lock().unwrap() = Some(framing);
            break;
        }
        let response = Response::text(200, request.path().to_owned());
        response.encode(
            &mut output.bytes,
            framing.version,
            framing.keep_alive,
            false,
        );
    }
    let framing = cell.framing.lock().unwrap().expect("a /later request");
    output.http = Some(Box::new(HttpLater {
        owed: Some(framing),
        requests: requests.collect(),
        tail,
    }));
    *cell.pending.lock().unwrap() = Some(Pending {
        lease,
        output: Output::default(),
        session: None,
        unhandled: Vec::new(),
    });
    let link = Arc::clone(&cell) as _;
    let deferral = Deferral {
        conn,
        link,
        output,
        after: After::Continue,
    };
    h.table.reply(Returned::Deferred(deferral), h.now);
    h.turn();
    cell
}

/// The answer comes: `200` with `body`, framed as its request asked. False if the loop took
/// the job back first.
fn complete(h: &mut Harness, cell: &LaterCell, body: &str) -> bool {
    let Some(mut pending) = cell.pending.lock().unwrap().take() else {
        return false;
    };
    let framing = cell.framing.lock().unwrap().expect("framing");
    let response = Response::text(200, body.to_owned());
    let out = &mut pending.output.bytes;
    response.encode(out, framing.version, framing.keep_alive, framing.head_only);
    h.table.reply(Returned::Reply(pending.into_reply()), h.now);
    h.turn();
    true
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")
}

/// Status and body of each response in `out`, in order.
fn answers(out: &[u8]) -> Vec<(u16, String)> {
    let text = String::from_utf8_lossy(out).into_owned();
    text.split("HTTP/1.1 ")
        .skip(1)
        .map(|response| {
            let status = response[..3].parse().unwrap();
            let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
            (status, body.to_owned())
        })
        .collect()
}

fn later_config(timeout: Duration) -> Config {
    Config {
        deferred_timeout: timeout,
        ..config()
    }
}

#[test]
fn requests_after_a_deferred_answer_wait_for_it_and_keep_their_order() {
    let mut h = harness(later_config(secs(30)));
    let peer = h.connect();
    h.send(peer, (get("/a") + &get("/later") + &get("/b")).as_bytes());
    let cell = run_deferring(&mut h);
    assert_eq!(answers(&h.take_output(peer)), [(200, "/a".into())]);
    assert_eq!(h.queued_jobs(), 0, "/b waits for the answer");
    h.send(peer, get("/c").as_bytes());
    assert_eq!(h.queued_jobs(), 0, "and nothing more is read meanwhile");
    assert_eq!(h.stats().deferred_calls, 1);
    h.check_invariants().unwrap();
    assert!(complete(&mut h, &cell, "later"));
    assert_eq!(answers(&h.take_output(peer)), [(200, "later".into())]);
    assert_eq!(
        h.queued_jobs(),
        1,
        "then /b, which waited, as a job of its own"
    );
    h.run_jobs(1);
    assert_eq!(answers(&h.take_output(peer)), [(200, "ok\n".into())]);
    assert_eq!(h.queued_jobs(), 1, "then /c, read once /b's reply was in");
    h.run_jobs(1);
    assert_eq!(answers(&h.take_output(peer)), [(200, "ok\n".into())]);
    assert_eq!(h.phase(peer), Some("Http"));
    assert!(!complete(&mut h, &cell, "again"), "answered already");
    h.check_invariants().unwrap();
}

#[test]
fn past_the_deadline_the_loop_answers_504_and_the_rest_goes_on() {
    let mut h = harness(later_config(secs(5)));
    let peer = h.connect();
    h.send(peer, (get("/later") + &get("/b")).as_bytes());
    let cell = run_deferring(&mut h);
    h.advance(Duration::from_millis(4_999));
    assert!(h.take_output(peer).is_empty(), "not yet");
    h.advance(Duration::from_millis(1));
    let out = h.take_output(peer);
    let body = "gateway timeout: the answer did not come in time\n";
    assert_eq!(answers(&out), [(504, body.into())]);
    assert_eq!(h.stats().deferred_expired, 1);
    assert!(
        !complete(&mut h, &cell, "late"),
        "a late answer finds nothing"
    );
    assert_eq!(h.queued_jobs(), 1, "/b, kept alive");
    h.run_jobs(1);
    assert_eq!(answers(&h.take_output(peer)), [(200, "ok\n".into())]);
    assert_eq!(h.phase(peer), Some("Http"));
    h.check_invariants().unwrap();
}

#[test]
fn a_504_for_a_request_that_closes_ends_the_connection() {
    let mut h = harness(later_config(secs(5)));
    let peer = h.connect();
    h.send(
        peer,
        b"GET /later HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let _cell = run_deferring(&mut h);
    h.advance(secs(5));
    let out = String::from_utf8(h.take_output(peer)).unwrap();
    assert!(out.starts_with("HTTP/1.1 504 Gateway Timeout\r\n"), "{out}");
    assert!(out.contains("\r\nConnection: close\r\n"), "{out}");
    assert!(h.fin_received(peer));
    h.peer_eof(peer);
    assert_eq!(h.phase(peer), None);
    h.check_invariants().unwrap();
}

#[test]
fn an_answer_that_closes_the_connection_lingers_after_it() {
    let mut h = harness(later_config(secs(30)));
    let peer = h.connect();
    h.send(peer, b"GET /later HTTP/1.0\r\n\r\n");
    let cell = run_deferring(&mut h);
    assert!(complete(&mut h, &cell, "one-oh"));
    let out = String::from_utf8(h.take_output(peer)).unwrap();
    assert!(out.contains("\r\nConnection: close\r\n"), "{out}");
    assert_eq!(h.phase(peer), Some("Lingering"));
    assert!(h.fin_received(peer));
    h.peer_eof(peer);
    assert_eq!(h.phase(peer), None);
    h.check_invariants().unwrap();
}

#[test]
fn an_upgrade_behind_a_deferred_answer_waits_for_it() {
    let mut h = harness(later_config(secs(30)));
    let peer = h.connect();
    let mut bytes = get("/later").into_bytes();
    bytes.extend(upgrade_request("/ws"));
    h.send(peer, &bytes);
    let cell = run_deferring(&mut h);
    assert_eq!(h.phase(peer), Some("Upgrading"));
    assert_eq!(h.queued_jobs(), 0);
    assert!(complete(&mut h, &cell, "first"));
    assert_eq!(answers(&h.take_output(peer)), [(200, "first".into())]);
    assert_eq!(h.queued_jobs(), 1, "the upgrade, as the next job");
    h.run_jobs(1);
    assert!(h.take_output(peer).starts_with(b"HTTP/1.1 101 "));
    assert_eq!(h.phase(peer), Some("Open"));
    h.send(peer, &text("hi"));
    h.run_jobs(1);
    assert_eq!(texts(&h.take_output(peer)), ["hi"]);
    h.check_invariants().unwrap();
}

#[test]
fn a_close_takes_the_job_back_and_drops_what_waited() {
    let mut h = harness(later_config(secs(30)));
    let peer = h.connect();
    h.send(peer, (get("/later") + &get("/b")).as_bytes());
    let cell = run_deferring(&mut h);
    h.check_invariants().unwrap();
    h.reset(peer);
    assert_eq!(h.phase(peer), None);
    assert!(!complete(&mut h, &cell, "late"), "the loop took it back");
    assert_eq!(h.open_connections(), 0);
    assert_eq!(h.queued_jobs(), 0);
    h.check_invariants().unwrap();
}

#[test]
fn the_client_closing_while_the_answer_is_deferred_gives_it_up() {
    let mut h = harness(later_config(secs(30)));
    let peer = h.connect();
    h.send(peer, (get("/a") + &get("/later") + &get("/b")).as_bytes());
    let cell = run_deferring(&mut h);
    h.send(peer, get("/c").as_bytes());
    h.peer_eof(peer);
    let out = h.take_output(peer);
    assert_eq!(
        answers(&out),
        [(200, "/a".into())],
        "what was queued still goes out"
    );
    assert!(h.fin_received(peer));
    assert_eq!(h.phase(peer), None, "closed: its EOF is in, our FIN out");
    assert!(
        !complete(&mut h, &cell, "late"),
        "the loop took the answer back"
    );
    assert_eq!(h.queued_jobs(), 0, "/b and /c are dropped");
    assert!(
        !h.app_events()
            .iter()
            .any(|e| matches!(e, AppEvent::Http(..)))
    );
    h.check_invariants().unwrap();
}
