//! The hand-off: a job leaves its event loop, a worker runs it, and the reply comes back — the
//! whole round trip between the loops and the worker threads, in one place.
//!
//! 1. **Offer** ([`Executor::offer`]): the loop `try_send`s the job on the one bounded crossbeam
//!    channel every worker receives from. A full queue gives the job back (`Offered::Full`): the
//!    loop keeps it on the connection and stops reading that socket. With inline handlers the
//!    [`JobRunner`] runs it right there, on the loop thread — the one place where the loop may run
//!    user code, and only when the user asked for it: every job with `Config::inline_handlers`,
//!    and in the pool's mode the HTTP requests and WebSocket messages the handler says it handles
//!    without blocking (`Handler::answers_without_blocking`, `handles_without_blocking`; asked
//!    through [`JobRunner::runs_on_loop`]), which then skip the hop to a worker and back.
//! 2. **Run** (`work`, on each worker thread): any idle worker takes the next job of any
//!    connection and hands it to the application's [`JobRunner`] (`src/runner.rs`).
//! 3. **Reply and wake**: the worker sends the [`Reply`] on the owning loop's reply channel and
//!    rings that loop's waker (`link.rs`) — only if the loop sleeps: a loop that is awake drains
//!    its channels before it sleeps, and a burst of replies to a sleeping loop costs one syscall.
//!
//! Order holds because a connection has one job out at a time (its [`Lease`](super::Lease)), so
//! any worker may take any connection's next batch: load spreads without reordering.

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::{self, JoinHandle};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::dispatch::deferred::Returned;
use crate::dispatch::handle::ServerHandle;
use crate::dispatch::job::Job;

/// Runs one job's handler calls and encodes what they send: its reply, or the deferral of a
/// call that hands its completion to another thread (`deferred.rs`). `None` for `on_close`,
/// which needs no answer. Implemented once by the application layer; called by the worker
/// threads ([`SharedRunner`]), or by the loop itself with inline handlers — in a driven server
/// on the one thread that drives it, where the handler need not be `Send` (`Executor::Local`).
pub(crate) trait JobRunner {
    fn run(&self, job: Job) -> Option<Returned>;

    /// May this job run on the loop thread although jobs go to the workers? Only if every call
    /// it makes was declared not to block. Asked of every job the pool's loops offer: keep it
    /// cheap. It may inflate the job's small compressed messages, to ask about them: they
    /// stay inflated whatever the answer.
    fn runs_on_loop(&self, job: &mut Job) -> bool {
        let _ = job;
        false
    }
}

/// A runner the worker threads and the loop threads share.
pub(crate) type SharedRunner = Arc<dyn JobRunner + Send + Sync>;

/// Where a loop offers its jobs: the [`Executor`], or a queue the unit tests empty by hand.
pub(crate) trait JobQueue {
    /// Takes the job, runs it, or gives it back because there is no room.
    fn offer(&mut self, job: Job) -> Offered;

    /// Would an offer now find room? (Held jobs are retried only then.)
    fn has_room(&self) -> bool;
}

/// What became of an offered job.
#[derive(Debug)]
pub(crate) enum Offered {
    /// A worker will take it; its reply comes later.
    Queued,
    /// The queue is full: the job comes back, to be held and offered again (backpressure).
    Full(Job),
    /// It ran at once (inline handlers); here is its reply (or deferral), if it has one.
    Ran(Option<Returned>),
    /// Nobody runs jobs any more (the workers are gone): here it is back, never to run.
    Gone(Job),
}

/// Where an event loop's jobs go.
pub(crate) enum Executor {
    /// The shared, bounded job queue that every worker receives from — and the runner, for the
    /// jobs it says may run on the loop thread ([`JobRunner::runs_on_loop`]).
    Pool(Sender<Job>, SharedRunner),
    /// Run here, on the loop thread, at once.
    Inline(SharedRunner),
    /// Run here, at once, on the thread that drives the loop and the only one that ever will
    /// (a driven server): the runner and the sessions it keeps need not be `Send`. An executor
    /// with it is not `Send` either: the loop is made on the thread that runs it.
    Local(Rc<dyn JobRunner>),
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Executor::Pool(jobs, _) => write!(f, "Pool(depth {})", jobs.len()),
            Executor::Inline(_) => f.write_str("Inline"),
            Executor::Local(_) => f.write_str("Local"),
        }
    }
}

impl JobQueue for Executor {
    fn offer(&mut self, mut job: Job) -> Offered {
        match self {
            Executor::Pool(jobs, runner) => {
                if runner.runs_on_loop(&mut job) {
                    return Offered::Ran(runner.run(job));
                }
                let described = log::log_enabled!(log::Level::Trace)
                    .then(|| format!("{}: job queued: {}", job.conn(), job.describe()));
                match jobs.try_send(job) {
                    Ok(()) => {
                        if let Some(what) = described {
                            log::trace!("{what} (queue depth {})", jobs.len());
                        }
                        Offered::Queued
                    }
                    Err(TrySendError::Full(job)) => Offered::Full(job),
                    Err(TrySendError::Disconnected(job)) => Offered::Gone(job),
                }
            }
            Executor::Inline(runner) => Offered::Ran(runner.run(job)),
            Executor::Local(runner) => Offered::Ran(runner.run(job)),
        }
    }

    fn has_room(&self) -> bool {
        match self {
            Executor::Pool(jobs, _) => !jobs.is_full(),
            Executor::Inline(_) | Executor::Local(_) => true,
        }
    }
}

impl Executor {
    /// Hands over a job even if that means waiting for room: only at the very end of shutdown,
    /// when the workers are known to keep taking jobs. False when nobody runs jobs any more.
    pub(crate) fn send_waiting(&self, job: Job) -> bool {
        match self {
            Executor::Pool(jobs, _) => jobs.send(job).is_ok(),
            Executor::Inline(runner) => {
                let _ = runner.run(job);
                true
            }
            Executor::Local(runner) => {
                let _ = runner.run(job);
                true
            }
        }
    }
}

/// The running worker threads.
#[derive(Debug)]
pub(crate) struct WorkerPool {
    threads: Vec<JoinHandle<()>>,
}

impl WorkerPool {
    /// Starts `count` workers named `wsreactor-worker-N`.
    pub(crate) fn spawn(
        count: usize,
        jobs: Receiver<Job>,
        runner: SharedRunner,
        server: ServerHandle,
    ) -> std::io::Result<Self> {
        let mut threads = Vec::with_capacity(count);
        for n in 0..count {
            let jobs = jobs.clone();
            let (runner, server) = (Arc::clone(&runner), server.clone());
            let thread = thread::Builder::new()
                .name(format!("wsreactor-worker-{n}"))
                .spawn(move || work(n, &jobs, &*runner, &server))?;
            threads.push(thread);
        }
        Ok(WorkerPool { threads })
    }

    /// Waits for every worker to finish; false if one panicked outside a handler call.
    pub(crate) fn join(self) -> bool {
        self.threads.into_iter().all(|t| t.join().is_ok())
    }
}

/// A worker's life: take a job, run it, send its reply home and ring the loop's waker. Ends when
/// every loop has dropped its job sender and the queue is empty, so every job queued before
/// shutdown still runs.
fn work(n: usize, jobs: &Receiver<Job>, runner: &dyn JobRunner, server: &ServerHandle) {
    let busy = &server.metrics().busy_workers;
    while let Ok(job) = jobs.recv() {
        let conn = job.conn();
        let narrate = log::log_enabled!(log::Level::Trace);
        if narrate {
            log::trace!("worker {n}: took {conn}'s job: {}", job.describe());
        }
        // The clock is read only for the trace: it is not free on the hot path.
        let started = narrate.then(Instant::now);
        busy.fetch_add(1, Ordering::Relaxed);
        let reply = runner.run(job);
        busy.fetch_sub(1, Ordering::Relaxed);
        let took = started.map(|started| started.elapsed());
        let Some(reply) = reply else {
            if let Some(took) = took {
                log::trace!("worker {n}: {conn}: on_close ran in {took:?}");
            }
            continue;
        };
        if let Some(took) = took {
            let bytes = reply.output_len();
            log::trace!("worker {n}: {conn}: handled in {took:?}, reply of {bytes} bytes");
        }
        // Back to the loop that owns the connection. The reply channel is unbounded: each job
        // yields at most one reply, or a deferral and then one reply, and jobs are bounded by
        // the job queue, so it never grows past that, and never blocks a worker.
        let Some(rang) = send_home(server, reply) else {
            log::debug!("worker {n}: event loop gone; reply dropped");
            continue;
        };
        if narrate {
            let how = if rang {
                "waker rung"
            } else {
                "not rung (the loop is awake, or already rung)"
            };
            let loop_index = conn.event_loop();
            log::trace!("worker {n}: reply sent to loop {loop_index}, {how}");
        }
    }
}

/// Sends a job's reply (or deferral) to the loop that owns its connection and rings its waker:
/// whether it rang, or `None` if the loop is gone (a reply's lease then ends here; a deferral's
/// stays with its completion, which finds the loop gone in turn). A deferral is announced once
/// it is on the channel — completions wait for that, so their replies come after it — and one
/// whose every handle was dropped meanwhile comes home at once, completed with nothing.
pub(crate) fn send_home(server: &ServerHandle, returned: Returned) -> Option<bool> {
    let link = server.link(returned.conn());
    let announce = match &returned {
        Returned::Deferred(deferral) => Some(Arc::clone(&deferral.link)),
        Returned::Reply(_) | Returned::Unordered(_) => None,
    };
    let sent = link.replies.send(returned);
    let abandoned = announce.and_then(|cell| cell.announce());
    if let Err(unsent) = sent {
        if let Returned::Reply(reply) = unsent.into_inner() {
            reply.lease.end();
        }
        if let Some(pending) = abandoned {
            pending.lease.end();
        }
        return None;
    }
    if let Some(pending) = abandoned
        && let Err(unsent) = link.replies.send(Returned::Reply(pending.into_reply()))
        && let Returned::Reply(reply) = unsent.into_inner()
    {
        reply.lease.end();
    }
    Some(link.waker.wake())
}
