//! The history thread: answers the recoveries of connections subscribed with
//! `Context::subscribe_from`, on a Redis connection of its own.
//!
//! A [`Request`] comes from the subscriber thread once the topic's channel is subscribed (or
//! marked failed, past `backplane_timeout` without it). The thread reads the topic's history
//! after the position ([`history::read`], within `backplane_timeout`) and sends the outcome to
//! the connection's loop as a `Command::History`, waiting at most `backplane_timeout` for room
//! in its queue (this thread is the only one that waits). The loop delivers the history, then
//! the live publications it held meanwhile that came after it — or, when the position cannot be
//! recovered, the application's "cannot recover" frame, then those live publications.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use redis::{Client, Connection};

use super::Recovery;
use super::connect::{TICK, connect};
use super::history::{self, Keys, Limits, Unrecoverable};
use crate::conn_id::ConnId;
use crate::dispatch::{Command, History, LoopLink};
use crate::metrics::{Metrics, add};
use crate::topic::{Position, Topic};

/// One connection's recovery.
#[derive(Debug)]
pub(crate) struct Request {
    pub conn: ConnId,
    pub topic: Topic,
    pub since: Position,
    /// Past it, the answer is "unavailable".
    pub deadline: Instant,
    /// The topic's subscription could not be made in time.
    pub failed: bool,
}

/// The history thread's state.
pub(crate) struct HistoryReader {
    pub client: Client,
    pub node: u64,
    pub keys: Keys,
    pub limits: Limits,
    pub recovery: Recovery,
    pub timeout: Duration,
    pub metrics: Arc<Metrics>,
    pub stop: Arc<AtomicBool>,
    pub requests: Receiver<Request>,
    pub loops: Vec<LoopLink>,
    /// `Config::max_outbound_bytes`: a history larger than this is refused.
    pub max_bytes: usize,
}

impl HistoryReader {
    pub(crate) fn run(self) {
        let mut connection: Option<Connection> = None;
        loop {
            let request = match self.requests.recv_timeout(TICK) {
                Ok(request) => request,
                Err(RecvTimeoutError::Timeout) if self.stop.load(Ordering::Acquire) => return,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let outcome = self.read(&mut connection, &request);
            self.answer(request, outcome);
        }
    }

    fn read(
        &self,
        connection: &mut Option<Connection>,
        request: &Request,
    ) -> Result<history::Recovered, Unrecoverable> {
        if request.failed || Instant::now() >= request.deadline {
            return Err(Unrecoverable::Unavailable);
        }
        if connection.is_none() {
            let name = format!("wsreactor-history-{:016x}", self.node);
            match connect(&self.client, self.timeout, &name) {
                Ok(made) => *connection = Some(made),
                Err(err) => {
                    log::warn!("backplane: cannot read a history: {err}");
                    return Err(Unrecoverable::Unavailable);
                }
            }
        }
        let Some(made) = connection.as_mut() else {
            return Err(Unrecoverable::Unavailable);
        };
        match history::read(
            made,
            &self.keys,
            &request.topic,
            request.since,
            &self.limits,
        ) {
            Ok(outcome) => outcome,
            Err(err) => {
                log::warn!(
                    "backplane: reading the history of {:?} failed: {err}",
                    request.topic
                );
                *connection = None;
                Err(Unrecoverable::Unavailable)
            }
        }
    }

    fn answer(&self, request: Request, outcome: Result<history::Recovered, Unrecoverable>) {
        let Request {
            conn, topic, since, ..
        } = request;
        let too_large = |recovered: &history::Recovered| {
            let bytes: usize = recovered.entries.iter().map(|(_, f)| f.len()).sum();
            bytes > self.max_bytes
        };
        let outcome = match outcome {
            Ok(recovered) if too_large(&recovered) => Err(Unrecoverable::TooLarge),
            other => other,
        };
        let outcome = match outcome {
            Ok(recovered) => {
                add(
                    &self.metrics.backplane_recovered,
                    recovered.entries.len() as u64,
                );
                let entries = recovered
                    .entries
                    .into_iter()
                    .map(|(position, frame)| {
                        (position, self.recovery.frame(&topic, position, frame))
                    })
                    .collect();
                Ok((entries, recovered.top))
            }
            Err(why) => {
                add(&self.metrics.backplane_recovery_refused, 1);
                log::debug!("{conn}: cannot recover {topic:?} from {since}: {why}");
                Err(why.to_string())
            }
        };
        let Some(link) = self.loops.get(conn.event_loop()) else {
            return;
        };
        let command = Command::History(Box::new(History {
            conn,
            topic,
            outcome,
        }));
        if link.commands.send_timeout(command, self.timeout).is_ok() {
            link.waker.wake();
        } else {
            log::warn!("{conn}: its loop's queue stayed full: its recovery is not delivered");
        }
    }
}
