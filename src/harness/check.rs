//! The invariants of the connection core, checked by the harness after every step of a test
//! or a script: what the table, each session, the poller and the application have seen must
//! agree. The harness's state enters by reference; what does not hold leaves as an `Err`
//! naming the connection and the broken rule.

use std::collections::HashMap;

use mio::Token;

use super::{AppEvent, Harness};
use crate::conn_id::ConnId;
use crate::metrics::Admission;

/// What [`Harness::check_invariants`] has learned from the application's events so far.
#[derive(Debug, Default)]
pub(super) struct EventAudit {
    /// How many of the events were read.
    checked: usize,
    /// Per connection: `on_open` seen, `on_close` seen.
    state: HashMap<ConnId, (bool, bool)>,
    /// Connections on the monitoring reserve that asked for a monitoring path.
    served: Vec<ConnId>,
}

impl EventAudit {
    /// An ordinary connection's event: `on_open` once, then its calls, then `on_close` once.
    fn lifecycle(&mut self, event: AppEvent) -> Result<(), String> {
        match event {
            AppEvent::Open(id) => {
                let seen = self.state.entry(id).or_default();
                if seen.0 {
                    return Err(format!("{id}: on_open twice"));
                }
                seen.0 = true;
            }
            AppEvent::Message(id, _)
            | AppEvent::Deferred(id)
            | AppEvent::DeferredTimeout(id)
            | AppEvent::Timer(id, _)
            | AppEvent::TimerRefused(id, _)
            | AppEvent::Pong(id, _)
            | AppEvent::UnorderedRefused(id, _)
            | AppEvent::Completed(id, _)
            | AppEvent::UnorderedTimeout(id, _) => {
                let seen = self.state.get(&id).copied().unwrap_or_default();
                if !seen.0 || seen.1 {
                    return Err(format!("{id}: on_message outside open..close"));
                }
            }
            AppEvent::Close(id, _) => {
                let seen = self.state.entry(id).or_default();
                if !seen.0 || seen.1 {
                    return Err(format!("{id}: on_close without on_open, or twice"));
                }
                seen.1 = true;
            }
            AppEvent::Http(..) | AppEvent::Drain(_) => {}
            AppEvent::LostSession(id) => {
                return Err(format!("{id}: a job or on_close came without its session"));
            }
        }
        Ok(())
    }
}

impl Harness {
    /// Checks what must hold after every step; returns what does not.
    pub fn check_invariants(&self) -> Result<(), String> {
        let config = &self.config;
        self.table.check_topics()?;
        let charged = self.table.charged();
        let budget = self.table.buffered_bytes();
        if charged != budget {
            return Err(format!(
                "the budget counts {budget} bytes, the connections are charged {charged}"
            ));
        }
        for (session, wanted, charge_right) in self.table.connections() {
            let id = session.id;
            if !charge_right {
                return Err(format!("{id}: charged other than what it holds"));
            }
            let input = session.input_len();
            let max_input = config.max_http_input();
            if input > max_input.max(config.read_buffer_size) {
                return Err(format!("{id}: {input} bytes of input held"));
            }
            let output = session.output_len();
            // A reply may add one handler batch past the limit; pushes stop at twice it.
            let bound = config.max_pushed_bytes().saturating_add(64 * 1024);
            if output > bound {
                return Err(format!("{id}: {output} bytes of output held"));
            }
            let inbox = session.inbox_len();
            // The peer's messages, and one arrival or timeout per out-of-order completion.
            let bound = config.max_pending_messages;
            if inbox > bound.saturating_add(config.max_unordered_per_connection) {
                return Err(format!("{id}: {inbox} messages held"));
            }
            let timers = session.armed_timers();
            if timers > config.max_timers_per_connection {
                return Err(format!("{id}: {timers} timers armed"));
            }
            let registered = self
                .table
                .poller()
                .interest
                .get(&Token(id.index()))
                .copied();
            if registered != Some(wanted) {
                return Err(format!("{id}: interest {registered:?}, needs {wanted:?}"));
            }
            let phase = session.phase_name();
            if phase == "Closed" {
                return Err(format!("{id}: closed but still in the table"));
            }
            if session.is_on_reserve() && !matches!(phase, "Http" | "Lingering") {
                return Err(format!("{id}: on the reserve, and {phase}"));
            }
        }
        self.check_app_events()
    }

    /// `on_open` before any message, at most one `on_close` per connection, and none after it;
    /// a connection on the monitoring reserve asks the application one thing at most, for a
    /// monitoring path, and never opens.
    /// Only the events since the last check are read: the audit keeps what it learned, so a
    /// long script costs linear time, not quadratic.
    fn check_app_events(&self) -> Result<(), String> {
        let mut audit = self.audit.borrow_mut();
        let reserve: Vec<ConnId> = self
            .peers
            .iter()
            .filter(|peer| peer.admission == Admission::MonitoringReserve)
            .map(|peer| peer.id)
            .collect();
        let monitored = |path: &str| {
            Some(path) == self.config.metrics_path.as_deref()
                || Some(path) == self.config.health_path.as_deref()
        };
        let events = self.app.events_from(audit.checked);
        audit.checked += events.len();
        for event in events {
            match event {
                AppEvent::Open(id) if reserve.contains(&id) => {
                    return Err(format!("{id}: opened from the monitoring reserve"));
                }
                AppEvent::Http(id, path) if reserve.contains(&id) => {
                    if !monitored(&path) || audit.served.contains(&id) {
                        return Err(format!("{id}: asked for {path} from the reserve"));
                    }
                    audit.served.push(id);
                }
                event => audit.lifecycle(event)?,
            }
        }
        Ok(())
    }

    /// Every connection that had `on_open` and is gone has had its `on_close` (once no job is
    /// left to run).
    pub fn check_every_close_delivered(&self) -> Result<(), String> {
        let events = self.app.events();
        for peer in &self.peers {
            let id = peer.id;
            if self.table.session(id).is_some() {
                continue;
            }
            let opened = events.contains(&AppEvent::Open(id));
            let closed = events
                .iter()
                .any(|e| matches!(e, AppEvent::Close(c, _) if *c == id));
            if opened && !closed {
                return Err(format!("{id}: opened, gone, and never got on_close"));
            }
        }
        Ok(())
    }
}
