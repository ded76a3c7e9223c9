//! How jobs leave an event loop: onto the worker pool's bounded queue, or — with inline
//! handlers — straight into the handler on the loop thread. This enum is the one seam where the
//! loop may run user code, and only when the user asked for it (`Config::inline_handlers`).

use std::sync::Arc;

use crossbeam_channel::{Sender, TrySendError};

use crate::session::{Job, JobQueue, JobRunner, Offered};

/// Where this loop's jobs go.
pub(crate) enum Executor {
    /// The shared, bounded job queue that every worker receives from.
    Pool(Sender<Job>),
    /// Run here, on the loop thread, at once.
    Inline(Arc<dyn JobRunner>),
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Executor::Pool(jobs) => write!(f, "Pool(depth {})", jobs.len()),
            Executor::Inline(_) => f.write_str("Inline"),
        }
    }
}

impl JobQueue for Executor {
    fn offer(&mut self, job: Job) -> Offered {
        match self {
            Executor::Pool(jobs) => {
                let described = log::log_enabled!(log::Level::Trace)
                    .then(|| format!("{}: job queued: {}", job.conn, job.work.describe()));
                match jobs.try_send(job) {
                    Ok(()) => {
                        if let Some(what) = described {
                            log::trace!("{what} (queue depth {})", jobs.len());
                        }
                        Offered::Queued
                    }
                    Err(TrySendError::Full(job)) => Offered::Full(job),
                    Err(TrySendError::Disconnected(_)) => Offered::Gone,
                }
            }
            Executor::Inline(runner) => Offered::Ran(runner.run(job)),
        }
    }

    fn has_room(&self) -> bool {
        match self {
            Executor::Pool(jobs) => !jobs.is_full(),
            Executor::Inline(_) => true,
        }
    }
}

impl Executor {
    /// Hands over a job even if that means waiting for room: only at the very end of shutdown,
    /// when the workers are known to keep taking jobs. False when nobody runs jobs any more.
    pub(crate) fn send_waiting(&self, job: Job) -> bool {
        match self {
            Executor::Pool(jobs) => jobs.send(job).is_ok(),
            Executor::Inline(runner) => {
                runner.run(job);
                true
            }
        }
    }
}
