//! The harness's stand-ins for everything around the core: a tiny application run as the workers
//! would run it, a poller that only records interest, a job queue emptied by hand, and the bytes
//! a client sends.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::{Arc, Mutex};

use mio::{Interest, Token};

use crate::conn_id::ConnId;
use crate::dispatch::{
    After, Call, Compressing, Deferral, DeferredCell, HttpTail, Inbound, Job, JobQueue, JobRunner,
    Lease, Offered, Output, Pending, Reclaimed, Reply, Returned, Run, SessionBox, TimerBook, Work,
};
use crate::harness::commands::{timer_command, timer_key, topic_command};
use crate::harness::unordered_cell::TestUnordered;
use crate::http::{Response, Version, switching_protocols};
use crate::netpoller::Poller;
use crate::transport::memory::MemoryTransport;
use crate::ws::deflate::negotiate;
use crate::ws::{CloseCode, CloseFrame, Message, OpCode};

/// The largest message the test application inflates; beyond it, close `1009`.
pub const TEST_APP_MAX_INFLATED: usize = 64 * 1024;

/// What the test application saw, in order, for every connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppEvent {
    /// `on_open` ran (the upgrade was accepted).
    Open(ConnId),
    /// `on_message` ran with this message.
    Message(ConnId, Message),
    /// `on_close` ran with this code.
    Close(ConnId, CloseCode),
    /// `on_http_request` ran for this path.
    Http(ConnId, String),
    /// `on_drain` ran: the output fell from the high-water mark to the low one.
    Drain(ConnId),
    /// A job after the upgrade came without this connection's session (a bug in the core,
    /// which must carry it from the upgrade's reply to every job and to `on_close`).
    LostSession(ConnId),
    /// The message `defer` deferred its completion.
    Deferred(ConnId),
    /// `on_deferred_timeout` ran (the test application then closes with `1011`).
    DeferredTimeout(ConnId),
    /// `on_timer` ran for this key.
    Timer(ConnId, u64),
    /// `timer:K:MS` was refused: the connection had as many timers as it may.
    TimerRefused(ConnId, u64),
    /// `on_pong` ran with this payload (a pong to a `ping:PAYLOAD` of the application).
    Pong(ConnId, Vec<u8>),
    /// `unordered:TAG` was refused: the connection had as many outstanding as it may.
    UnorderedRefused(ConnId, u64),
    /// An out-of-order completion ran, echoing this text.
    Completed(ConnId, String),
    /// `on_unordered_timeout` ran for this tag (the application then closes with `1011`).
    UnorderedTimeout(ConnId, u64),
}

/// The timers a connection may arm, and its out-of-order completions outstanding.
type Limits = (usize, usize);

/// What the test application does after one message.
enum Act {
    Next,
    Stop,
    Defer,
}

/// The test application's session: whose it is, and how many messages it has seen.
type TestSession = (ConnId, u64);

/// The session a job brought, if it is `conn`'s.
fn own_session(session: Option<SessionBox>, conn: ConnId) -> Option<Box<TestSession>> {
    session?
        .downcast::<TestSession>()
        .ok()
        .filter(|session| session.0 == conn)
}

/// A tiny application, as a worker runs it: HTTP requests get `200 ok` (keep-alive as asked;
/// a request with a body gets its body back instead of `ok`),
/// upgrades are accepted (except on the path `/reject`, answered `403`), messages are echoed —
/// except the text `close`, which makes the handler close with `1000`, and the text `panic`,
/// which stands for a panicking handler (`1011`), and the topic commands, which are not echoed:
/// `sub:T` and `unsub:T` (subscribe to, unsubscribe from topic `T`), `pub:T:text` (publish
/// `text` to `T`, the sender too if it is subscribed) and `others:T:text` (to everyone but the
/// sender). A client that offers permessage-deflate gets it, and its echoes are compressed
/// (every message, whatever its size). The text `defer` defers the rest of its batch: the test
/// completes it, or lets its deadline pass (then the application closes with `1011`, as
/// `on_deferred_timeout` does by default). Timers: `timer:K:MS` sets timer `K` to fire in `MS`
/// milliseconds (refused past `max_timers_per_connection`, and recorded), `cancel:K` cancels
/// it; each timer that fires is recorded, before the messages of its job. `ping:PAYLOAD` sends
/// a ping; its pong is recorded.
#[derive(Debug, Default)]
pub struct TestApp {
    events: Mutex<Vec<AppEvent>>,
    /// `Config::max_timers_per_connection`.
    pub(crate) timer_limit: usize,
    /// Deferred calls, oldest first, for the test to complete.
    pub(crate) deferred: Mutex<VecDeque<Arc<TestCell>>>,
    /// `Config::max_unordered_per_connection`.
    pub(crate) unordered_limit: usize,
    /// Out-of-order calls started, with their tags, for the test to complete.
    pub(crate) unordered: Mutex<Vec<(u64, Arc<TestUnordered>)>>,
}

/// A deferred call of the test application: its pending job, until a completion or the loop
/// takes it.
#[derive(Debug, Default)]
pub(crate) struct TestCell {
    pending: Mutex<Option<Pending>>,
}

impl TestCell {
    /// The pending job, if neither a completion nor the loop took it.
    pub(crate) fn take(&self) -> Option<Pending> {
        self.pending.lock().ok()?.take()
    }
}

impl DeferredCell for TestCell {
    fn announce(&self) -> Option<Pending> {
        None
    }

    fn reclaim(&self, _why: Reclaimed) -> Option<Pending> {
        self.take()
    }
}

impl Drop for TestCell {
    /// A call the test never completed, and the loop never took back (the table was dropped
    /// first): its lease ends with it.
    fn drop(&mut self) {
        if let Some(pending) = self.take() {
            pending.lease.end();
        }
    }
}

impl TestApp {
    /// The application of a core whose connections may arm `limit` timers.
    pub(crate) fn with_timer_limit(limit: usize) -> Self {
        TestApp {
            timer_limit: limit,
            ..TestApp::default()
        }
    }

    pub(crate) fn record(&self, event: AppEvent) {
        if let Ok(mut events) = self.events.lock() {
            events.push(event);
        }
    }

    /// Everything seen so far.
    pub fn events(&self) -> Vec<AppEvent> {
        self.events_from(0)
    }

    /// The events after the first `start`.
    pub(crate) fn events_from(&self, start: usize) -> Vec<AppEvent> {
        self.events
            .lock()
            .map(|e| e.get(start..).unwrap_or_default().to_vec())
            .unwrap_or_default()
    }
}

impl JobRunner for TestApp {
    fn run(&self, job: Job) -> Option<Returned> {
        let Run {
            lease,
            work,
            session,
            ..
        } = match job {
            Job::Run(run) => run,
            Job::Close {
                conn,
                info,
                session,
            } => {
                if own_session(session, conn).is_none() {
                    self.record(AppEvent::LostSession(conn));
                }
                self.record(AppEvent::Close(conn, info.code));
                return None;
            }
        };
        let conn = lease.conn();
        let (output, after, session) = match work {
            Work::Messages(batch) => {
                let (output, session, unhandled) = self.messages(conn, batch, session);
                if let Some(unhandled) = unhandled {
                    return Some(self.defer(lease, output, session, unhandled));
                }
                (output, After::Continue, session)
            }
            Work::Http { requests, tail } => self.http(conn, requests, tail),
        };
        Some(Returned::Reply(reply(lease, output, after, session)))
    }
}

impl TestApp {
    /// Parks a job whose message `defer` deferred: the test completes it
    /// (`Harness::complete_deferred`), or the loop takes it back.
    fn defer(
        &self,
        lease: Lease,
        output: Output,
        session: Option<SessionBox>,
        unhandled: Vec<Inbound>,
    ) -> Returned {
        let conn = lease.conn();
        self.record(AppEvent::Deferred(conn));
        let cell = Arc::new(TestCell {
            pending: Mutex::new(Some(Pending {
                lease,
                output: output.sibling(),
                session,
                unhandled,
            })),
        });
        if let Ok(mut deferred) = self.deferred.lock() {
            deferred.push_back(Arc::clone(&cell));
        }
        Returned::Deferred(Deferral {
            conn,
            link: cell,
            output,
            after: After::Continue,
        })
    }
}

impl TestApp {
    /// Echoes a batch (with the topic commands and `close`/`panic` carried out).
    fn messages(
        &self,
        conn: ConnId,
        mut batch: crate::dispatch::Batch,
        session: Option<SessionBox>,
    ) -> (Output, Option<SessionBox>, Option<Vec<Inbound>>) {
        let mut output = Output::default();
        let Some(mut own) = own_session(session, conn) else {
            self.record(AppEvent::LostSession(conn));
            return (output, None, None);
        };
        own.1 += batch.messages.len() as u64;
        if self.hooks(conn, &mut batch, &mut output) {
            return (output, Some(own as SessionBox), None);
        }
        let limits = (self.timer_limit, batch.unordered);
        output.compressing = batch.deflate.map(|agreement| Compressing {
            window_bits: agreement.server_window_bits(),
            level: 1,
            threshold: 0,
        });
        let mut messages = batch.messages.into_iter();
        while let Some(message) = messages.next() {
            let mut call = match message.into_call(TEST_APP_MAX_INFLATED) {
                Ok(call) => Some(call),
                Err(err) => {
                    output.failed = Some(err);
                    break;
                }
            };
            if self.unordered_call(conn, &mut output, &mut call) {
                continue;
            }
            let message = match call {
                Some(Call::Message(message)) => message,
                Some(Call::Pong(payload)) => {
                    self.record(AppEvent::Pong(conn, payload));
                    continue;
                }
                _ => continue,
            };
            match self.act(conn, &mut output, message, limits) {
                Act::Next => {}
                Act::Stop => break,
                Act::Defer => {
                    return (output, Some(own as SessionBox), Some(messages.collect()));
                }
            }
        }
        (output, Some(own as SessionBox), None)
    }

    /// Handles one message: echoes it, or carries out its command.
    fn act(&self, conn: ConnId, output: &mut Output, message: Message, limits: Limits) -> Act {
        let (limit, outstanding) = limits;
        self.record(AppEvent::Message(conn, message.clone()));
        match message.as_bytes() {
            b"close" => output.close = Some(frame(CloseCode::Normal, "bye")),
            b"panic" => output.close = Some(frame(CloseCode::Error, "handler panicked")),
            b"defer" => return Act::Defer,
            text if topic_command(output, text) => {}
            text if timer_command(output, text, limit) => {}
            text if self.unordered_command(conn, output, text, outstanding) => {}
            text if text.starts_with(b"timer:") => {
                let key = timer_key(text).unwrap_or(u64::MAX);
                self.record(AppEvent::TimerRefused(conn, key));
            }
            [b'p', b'i', b'n', b'g', b':', payload @ ..] => {
                output.push_control(OpCode::Ping, payload);
            }
            _ => output.push_message(message),
        }
        if output.close.is_some() {
            Act::Stop
        } else {
            Act::Next
        }
    }

    /// The calls a batch owes before its messages: `on_deferred_timeout` (which closes: true),
    /// `on_drain`, `on_timer` for each timer that fired.
    fn hooks(&self, conn: ConnId, batch: &mut crate::dispatch::Batch, output: &mut Output) -> bool {
        if batch.expired {
            self.record(AppEvent::DeferredTimeout(conn));
            output.close = Some(frame(CloseCode::Error, "deferred reply timed out"));
            return true;
        }
        if batch.drained {
            self.record(AppEvent::Drain(conn));
        }
        let limit = self.timer_limit;
        output.timers = batch
            .timers
            .take()
            .map(|timers| Box::new(TimerBook::new(*timers, limit)));
        while let Some(key) = output.timers.as_mut().and_then(|book| book.next_fired()) {
            self.record(AppEvent::Timer(conn, key));
        }
        false
    }

    /// Answers a batch of requests, then its tail (upgrades accepted but on `/reject`).
    fn http(
        &self,
        conn: ConnId,
        requests: Vec<crate::http::Request>,
        tail: HttpTail,
    ) -> (Output, After, Option<SessionBox>) {
        let mut output = Output::default();
        let last_closes = matches!(tail, HttpTail::Close);
        let count = requests.len();
        for (i, request) in requests.into_iter().enumerate() {
            self.record(AppEvent::Http(conn, request.path().to_owned()));
            let keep_alive = request.keep_alive() && !(last_closes && i + 1 == count);
            let response = match request.body() {
                [] => Response::text(200, "ok\n"),
                body => Response::new(200).with_body(body.to_vec()),
            };
            response.encode(&mut output.bytes, request.version(), keep_alive, false);
            if !keep_alive {
                return (output, After::CloseHttp { bad_request: false }, None);
            }
        }
        let after = match tail {
            HttpTail::None => After::Continue,
            HttpTail::Close => After::CloseHttp { bad_request: false },
            HttpTail::Error(err) => {
                output.bytes.extend(err.to_response().to_closing_bytes());
                After::CloseHttp { bad_request: true }
            }
            HttpTail::Upgrade(upgrade) if upgrade.0.path() == "/reject" => {
                let response = Response::text(403, "no\n");
                response.encode(&mut output.bytes, Version::Http11, false, false);
                After::CloseHttp { bad_request: false }
            }
            HttpTail::Upgrade(upgrade) => {
                let deflate = negotiate(upgrade.0.headers_all("sec-websocket-extensions"));
                let extension = deflate.map(|agreement| {
                    (
                        "Sec-WebSocket-Extensions".into(),
                        agreement.response_header(),
                    )
                });
                let headers: Vec<_> = extension.into_iter().collect();
                let response = switching_protocols(&upgrade.1.key, None, &headers);
                response.encode(&mut output.bytes, Version::Http11, true, false);
                self.record(AppEvent::Open(conn));
                let session = Some(Box::new((conn, 0u64)) as SessionBox);
                return (output, After::Upgraded { deflate }, session);
            }
        };
        (output, after, None)
    }
}

fn frame(code: CloseCode, reason: &str) -> CloseFrame {
    CloseFrame {
        code,
        reason: reason.into(),
    }
}

fn reply(lease: Lease, output: Output, after: After, session: Option<SessionBox>) -> Reply {
    Reply {
        lease,
        output,
        after,
        session,
    }
}

/// A poller that records what each token is registered for.
#[derive(Debug, Default)]
pub(crate) struct RecordingPoller {
    pub(crate) interest: HashMap<Token, Interest>,
}

impl Poller<MemoryTransport> for RecordingPoller {
    fn register(&mut self, t: &mut MemoryTransport, token: Token, i: Interest) -> io::Result<()> {
        self.reregister(t, token, i)
    }

    fn reregister(
        &mut self,
        _: &mut MemoryTransport,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.interest.insert(token, interest);
        Ok(())
    }

    fn deregister(&mut self, _: &mut MemoryTransport) {}
}

/// A bounded job queue that the test empties by hand (or, inline, runs each job at once).
#[derive(Debug)]
pub(crate) struct ManualQueue {
    pub(crate) jobs: VecDeque<Job>,
    pub(crate) capacity: usize,
    pub(crate) inline: Option<Arc<TestApp>>,
}

impl Drop for ManualQueue {
    /// Jobs a test left in the queue are never run: as lost as a job whose worker died.
    fn drop(&mut self) {
        for job in self.jobs.drain(..) {
            if let Job::Run(run) = job {
                run.lease.end();
            }
        }
    }
}

impl JobQueue for ManualQueue {
    fn offer(&mut self, job: Job) -> Offered {
        if let Some(app) = &self.inline {
            return Offered::Ran(app.run(job));
        }
        if self.jobs.len() >= self.capacity {
            return Offered::Full(job);
        }
        self.jobs.push_back(job);
        Offered::Queued
    }

    fn has_room(&self) -> bool {
        self.inline.is_some() || self.jobs.len() < self.capacity
    }
}
