//! The test application's out-of-order completions: `unordered:TAG` starts one (refused past
//! `max_unordered_per_connection`, and recorded), the test completes it with a text
//! ([`Harness::complete_unordered`]) or drops it, and the completion's job echoes the text.

use std::sync::Arc;

use crate::conn_id::ConnId;
use crate::dispatch::{Arrival, CompletionBox, Output, Returned};
use crate::harness::unordered_cell::{Stage, TestUnordered};
use crate::harness::{AppEvent, Harness, TestApp};
use crate::ws::{CloseCode, CloseFrame, Message};

impl TestApp {
    /// `unordered:TAG`: starts an out-of-order completion, or records its refusal at the limit.
    /// True if the text was that command.
    pub(crate) fn unordered_command(
        &self,
        conn: ConnId,
        output: &mut Output,
        text: &[u8],
        outstanding: usize,
    ) -> bool {
        let Some(tag) = text
            .strip_prefix(b"unordered:")
            .and_then(|tag| std::str::from_utf8(tag).ok()?.parse().ok())
        else {
            return false;
        };
        if outstanding + output.unordered.len() >= self.unordered_limit {
            self.record(AppEvent::UnorderedRefused(conn, tag));
            return true;
        }
        let cell = Arc::new(TestUnordered::new(conn));
        output.unordered.push(tag, Arc::clone(&cell) as _);
        if let Ok(mut started) = self.unordered.lock() {
            started.push((tag, cell));
        }
        true
    }

    /// The calls a batch of the test application makes for a completion (echo its text) or
    /// a completion's timeout (close `1011`). True if `call` was one.
    pub(crate) fn unordered_call(
        &self,
        conn: ConnId,
        output: &mut Output,
        call: &mut Option<crate::dispatch::Call>,
    ) -> bool {
        match call.take() {
            Some(crate::dispatch::Call::Completion(text)) => {
                let text = text
                    .downcast::<String>()
                    .map_or_else(|_| String::new(), |t| *t);
                self.record(AppEvent::Completed(conn, text.clone()));
                output.push_message(Message::from(text));
                true
            }
            Some(crate::dispatch::Call::UnorderedTimeout(tag)) => {
                self.record(AppEvent::UnorderedTimeout(conn, tag));
                output.close = Some(CloseFrame {
                    code: CloseCode::Error,
                    reason: "deferred reply timed out".into(),
                });
                true
            }
            other => {
                *call = other;
                false
            }
        }
    }
}

impl Harness {
    /// Messages (and completions) waiting in peer `peer`'s inbox.
    pub fn inbox_len(&self, peer: usize) -> usize {
        let id = self.peers[peer].id;
        self.table
            .session(id)
            .map_or(0, |session| session.inbox_len())
    }

    /// Completes the test application's out-of-order call `tag` with `text`, as a completer on
    /// another thread would: its arrival reaches the loop at once (or waits in the cell if the
    /// loop has not registered it). False if it was ended (deadline, close) or completed.
    pub fn complete_unordered(&mut self, tag: u64, text: &str) -> bool {
        self.finish_unordered(tag, Some(Box::new(text.to_owned())))
    }

    /// Drops the test application's out-of-order call `tag` without completing it.
    pub fn drop_unordered(&mut self, tag: u64) -> bool {
        self.finish_unordered(tag, None)
    }

    fn finish_unordered(&mut self, tag: u64, call: Option<CompletionBox>) -> bool {
        let cell = self.app.unordered.lock().ok().and_then(|mut started| {
            let at = started.iter().position(|(t, _)| *t == tag)?;
            Some(started.remove(at).1)
        });
        let Some(cell) = cell else {
            return false;
        };
        let Ok(mut stage) = cell.stage.lock() else {
            return false;
        };
        match std::mem::replace(&mut *stage, Stage::Done(true)) {
            Stage::Starting => *stage = Stage::Early(call),
            Stage::Waiting(id) => {
                drop(stage);
                let conn = cell.conn;
                let arrival = Arrival { conn, id, call };
                self.table.reply(Returned::Unordered(arrival), self.now);
                self.turn();
            }
            ended @ (Stage::Early(_) | Stage::Done(_)) => {
                *stage = ended;
                return false;
            }
        }
        true
    }
}
