//! The out-of-order completions an open WebSocket waits for, as its inbox keeps them (boxed,
//! and only while there are some): each with its id, its tag, its deadline and its link to the
//! completer's cell. What arrives and expires is `unordered.rs`; dropped with the inbox — the
//! conversation is over — every one still waiting is ended as closed.

use std::time::Instant;

use crate::dispatch::{Reclaimed, UnorderedLink};

/// The out-of-order completions an open WebSocket waits for.
#[derive(Debug, Default)]
pub(crate) struct Outstanding {
    pub waiting: Vec<Waiting>,
    pub next_id: u32,
}

/// One outstanding completion.
#[derive(Debug)]
pub(crate) struct Waiting {
    pub id: u32,
    pub tag: u64,
    /// When it expires; `None` once its completion is on its way (ended too late to refuse it).
    pub deadline: Option<Instant>,
    pub link: UnorderedLink,
}

impl Drop for Outstanding {
    /// The conversation is over: every completion still outstanding gets `Err(Closed)`.
    fn drop(&mut self) {
        for waiting in self.waiting.drain(..) {
            waiting.link.end(Reclaimed::Closed);
        }
    }
}
