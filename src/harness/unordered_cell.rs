//! The test application's out-of-order completion cell: what the session registers and ends,
//! and what the test completes (`unordered.rs`).

use std::sync::Mutex;

use crate::conn_id::ConnId;
use crate::dispatch::{CompletionBox, Reclaimed, Registered, UnorderedCell};

/// An out-of-order completion of the test application.
#[derive(Debug)]
pub(crate) struct TestUnordered {
    pub conn: ConnId,
    pub stage: Mutex<Stage>,
}

impl TestUnordered {
    pub(crate) fn new(conn: ConnId) -> Self {
        TestUnordered {
            conn,
            stage: Mutex::new(Stage::Starting),
        }
    }
}

/// Where it stands, as in the application's cell (`handler/unordered.rs`).
#[derive(Debug)]
pub(crate) enum Stage {
    Starting,
    Early(Option<CompletionBox>),
    Waiting(u32),
    /// Completed (true), or ended by the loop (false).
    Done(bool),
}

impl UnorderedCell for TestUnordered {
    fn register(&self, id: u32) -> Registered {
        let Ok(mut stage) = self.stage.lock() else {
            return Registered::Completed(None);
        };
        match std::mem::replace(&mut *stage, Stage::Done(true)) {
            Stage::Starting => {
                *stage = Stage::Waiting(id);
                Registered::Waiting
            }
            Stage::Early(call) => Registered::Completed(call),
            Stage::Waiting(_) | Stage::Done(_) => Registered::Completed(None),
        }
    }

    fn end(&self, _why: Reclaimed) -> bool {
        let Ok(mut stage) = self.stage.lock() else {
            return true;
        };
        if matches!(*stage, Stage::Done(true)) {
            return false;
        }
        *stage = Stage::Done(false);
        true
    }
}
