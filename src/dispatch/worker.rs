//! The worker pool: N OS threads that run jobs from one shared, bounded queue.
//!
//! Each worker loops on `jobs.recv()`, hands the job to the [`JobRunner`] (the application's
//! handler calls), sends the [`Reply`](crate::session::Reply) to the loop that owns the
//! connection and rings its waker. It ends when every loop has dropped its job sender and the
//! queue is empty, so every job queued before shutdown still runs. Any idle worker takes the next
//! job of any connection: load spreads, and order holds because a connection has one job out at
//! a time.

use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Instant;

use crossbeam_channel::Receiver;

use crate::dispatch::handle::ServerHandle;
use crate::metrics::{add, sub};
use crate::session::{Job, JobRunner};

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
        runner: Arc<dyn JobRunner>,
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

fn work(n: usize, jobs: &Receiver<Job>, runner: &dyn JobRunner, server: &ServerHandle) {
    let metrics = server.metrics();
    while let Ok(job) = jobs.recv() {
        let conn = job.conn;
        let narrate = log::log_enabled!(log::Level::Trace);
        if narrate {
            log::trace!("worker {n}: took {}'s job: {}", conn, job.work.describe());
        }
        // The clock is read only for the trace: it is not free on the hot path.
        let started = narrate.then(Instant::now);
        add(&metrics.busy_workers, 1);
        let reply = runner.run(job);
        sub(&metrics.busy_workers, 1);
        let Some(reply) = reply else {
            if let Some(started) = started {
                let took = started.elapsed();
                log::trace!("worker {n}: {conn}: on_close ran in {took:?}");
            }
            continue;
        };
        if let Some(started) = started {
            let bytes = reply.output.len();
            let took = started.elapsed();
            log::trace!("worker {n}: {conn}: handled in {took:?}, reply of {bytes} bytes");
        }
        // Back to the loop that owns the connection. The reply channel is unbounded: each job
        // yields at most one reply and jobs are bounded by the job queue, so it never grows past
        // that, and never blocks a worker.
        let link = server.link(conn);
        if link.replies.send(reply).is_err() {
            log::debug!("worker {n}: event loop gone; reply dropped");
            continue;
        }
        let rang = link.waker.wake();
        if narrate {
            let how = if rang {
                "waker rung"
            } else {
                "a wake was already pending (coalesced)"
            };
            log::trace!(
                "worker {n}: reply sent to loop {}, {how}",
                conn.event_loop()
            );
        }
    }
}
