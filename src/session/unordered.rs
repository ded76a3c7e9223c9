//! The out-of-order completions a connection waits for: the session's side.
//!
//! A job's reply brings the completions its calls started (`Output::unordered`,
//! `dispatch/unordered.rs`); [`register_unordered`](Session::register_unordered) gives each an
//! id and the deadline `deferred_timeout`, in the connection's inbox (`Outstanding` in `outstanding.rs`: boxed,
//! and only while there are some, so an idle connection pays 8 bytes). Then, whichever comes
//! first:
//!
//! - its [`Arrival`] ([`unordered_arrived`](Session::unordered_arrived)): the closure joins the
//!   inbox, behind the messages that came before it, and the next job runs it — in order with
//!   the connection's other calls, one job at a time;
//! - its deadline ([`unordered_expired`](Session::unordered_expired)): the cell is ended (a late
//!   completion gets `Err(TimedOut)`), and `on_unordered_timeout` with its tag joins the inbox;
//! - the end of the conversation: the inbox is dropped with the phase that holds it
//!   (`Closing`, `Lingering`, `Closed`), and `Outstanding`'s drop ends every cell as closed.
//!
//! While as many are outstanding as `max_unordered_per_connection` allows, the next job takes
//! no message from the peer (`Inbox::take_own`): they wait in the inbox, which fills, and then
//! reading stops — TCP backpressure. Completions and their timeouts still go out: they free
//! the room the messages wait for.

use std::time::Instant;

use crate::config::{Config, deadline_after};
use crate::dispatch::{Arrival, Inbound, Reclaimed, Registered, UnorderedLink};
use crate::metrics::add;
use crate::session::connection::Session;
use crate::session::env::Env;
use crate::session::outstanding::Waiting;
use crate::session::phase::Inbox;

impl Inbox {
    /// Out-of-order completions outstanding.
    pub(crate) fn unordered(&self) -> usize {
        self.unordered.as_ref().map_or(0, |o| o.waiting.len())
    }

    /// As many outstanding as the connection may have: messages from the peer wait.
    pub(crate) fn at_unordered_limit(&self, config: &Config) -> bool {
        self.unordered.is_some() && self.unordered() >= config.max_unordered_per_connection
    }

    /// The earliest deadline of an outstanding completion.
    pub(crate) fn unordered_deadline(&self) -> Option<Instant> {
        let outstanding = self.unordered.as_ref()?;
        outstanding.waiting.iter().filter_map(|w| w.deadline).min()
    }

    /// Gives the box back once nothing is outstanding.
    fn shrink_unordered(&mut self) {
        if self
            .unordered
            .as_ref()
            .is_some_and(|o| o.waiting.is_empty())
        {
            self.unordered = None;
        }
    }
}

impl Session {
    /// A reply's calls started these out-of-order completions: the connection waits for each
    /// until `deferred_timeout`. One completed (or dropped) before the reply came joins the
    /// inbox at once. Without an inbox (the conversation is over) each is ended as closed.
    pub(crate) fn register_unordered(&mut self, env: &Env<'_>, started: Vec<(u64, UnorderedLink)>) {
        let deadline = deadline_after(env.now, env.config.deferred_timeout);
        let Some(inbox) = self.phase.inbox_mut() else {
            for (_, link) in started {
                link.end(Reclaimed::Closed);
            }
            return;
        };
        for (tag, link) in started {
            let outstanding = inbox.unordered.get_or_insert_with(Box::default);
            let id = outstanding.next_id;
            outstanding.next_id = id.wrapping_add(1);
            match link.register(id) {
                Registered::Waiting => outstanding.waiting.push(Waiting {
                    id,
                    tag,
                    deadline: Some(deadline),
                    link,
                }),
                Registered::Completed(Some(call)) => inbox.push(Inbound::Completion(call)),
                Registered::Completed(None) => add(&env.metrics.deferred_abandoned, 1),
            }
        }
        inbox.shrink_unordered();
    }

    /// An out-of-order completion came: its closure joins the inbox for the next job (one
    /// dropped without completing only frees its place). One the connection no longer waits
    /// for — it was ended as its arrival was on its way, and the phase is gone — is dropped.
    pub(crate) fn unordered_arrived(&mut self, env: &Env<'_>, arrival: Arrival) {
        let Arrival { id, call, .. } = arrival;
        let found = self.phase.inbox_mut().and_then(|inbox| {
            let waiting = &mut inbox.unordered.as_mut()?.waiting;
            let at = waiting.iter().position(|w| w.id == id)?;
            waiting.swap_remove(at);
            inbox.shrink_unordered();
            Some(inbox)
        });
        match (found, call) {
            (Some(inbox), Some(call)) => inbox.push(Inbound::Completion(call)),
            (Some(_), None) => add(&env.metrics.deferred_abandoned, 1),
            (None, _) => {
                log::debug!("{}: an out-of-order completion came too late", self.id);
                add(&env.metrics.deferred_late, 1);
            }
        }
    }

    /// Out-of-order completions past their deadline: each is ended (its completion, if it
    /// comes, gets `Err(TimedOut)`) and `on_unordered_timeout` with its tag joins the inbox.
    /// One whose completion is on its way already is waited for instead.
    pub(crate) fn unordered_expired(&mut self, env: &Env<'_>) {
        let Some(inbox) = self.phase.inbox_mut() else {
            return;
        };
        let Some(outstanding) = inbox.unordered.as_mut() else {
            return;
        };
        let mut expired = Vec::new();
        outstanding.waiting.retain_mut(|waiting| {
            if waiting.deadline.is_none_or(|at| at > env.now) {
                return true;
            }
            if waiting.link.end(Reclaimed::Expired) {
                expired.push(waiting.tag);
                return false;
            }
            waiting.deadline = None;
            true
        });
        for tag in expired {
            log::debug!("{}: out-of-order completion {tag} timed out", self.id);
            add(&env.metrics.unordered_expired, 1);
            inbox.push(Inbound::UnorderedTimeout(tag));
        }
        inbox.shrink_unordered();
    }
}
