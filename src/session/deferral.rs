//! A job whose handler call deferred its completion to another thread: the session's side.
//!
//! The loop hands the session the job's [`Deferral`] instead of a reply
//! ([`deferred`](Session::deferred)): the bytes the calls sent before deferring are queued as
//! any reply's, and the job slot keeps the link to the completion with its deadline
//! (`Config::deferred_timeout`), which `deadline.rs` reports with the connection's other clocks.
//! Meanwhile the connection reads on into its inbox, within its limits, and hands out no job:
//! its next message waits for the completion, as goroutine-per-connection order would. The
//! completion's reply comes back like any other (`Session::replied`). If the deadline comes first,
//! [`deferral_expired`](Session::deferral_expired) takes the job back: its lease goes home, the
//! session and the messages the job did not reach return to the connection, and the next job
//! calls `on_deferred_timeout` first. A connection that closes meanwhile takes it back too
//! (`Session::outcome`), so `on_close` never runs beside a completion.

use crate::config::deadline_after;
use crate::dispatch::{Deferral, Reclaimed, Returned};
use crate::metrics::add;
use crate::session::connection::Session;
use crate::session::env::Env;
use crate::session::phase::Taken;

impl Session {
    /// What running a job sent home: its reply, the deferral of one of its calls, or an
    /// out-of-order completion (`unordered.rs`).
    pub(crate) fn returned(&mut self, env: &mut Env<'_>, returned: Returned) {
        match returned {
            Returned::Reply(reply) => self.replied(env, reply),
            Returned::Deferred(deferral) => self.deferred(env, deferral),
            Returned::Unordered(arrival) => self.unordered_arrived(env, arrival),
        }
    }

    /// A call of the job out deferred its completion: queue what the job sent so far, do what
    /// it says after (a `101` may be among it), and wait for the completion until the deadline.
    pub(crate) fn deferred(&mut self, env: &mut Env<'_>, deferral: Deferral) {
        let Deferral {
            link,
            mut output,
            after,
            ..
        } = deferral;
        log::trace!("{}: a handler call deferred its completion", self.id);
        add(&env.metrics.deferred_calls, 1);
        let deadline = deadline_after(env.now, env.config.deferred_timeout);
        self.job.defer(link, deadline);
        // An HTTP answer deferred: the requests after it wait (`http_later.rs`).
        let after = self.resume_http(output.http.take(), after);
        self.apply_reply(env, output, after);
    }

    /// The deferred job's deadline passed without its completion: it is taken back (a
    /// completion that comes later gets an `Err`), and the WebSocket's next job calls
    /// `on_deferred_timeout` — by default a close with `1011`; after the peer's close (in
    /// `PeerClosed`) the hook runs but the connection ends as the peer asked. Once we have
    /// closed (`Closing`, `Lingering`) no job runs any more: the handler hears of it in
    /// `on_close` alone. If a completion is running already, its reply is awaited like any
    /// job's.
    pub(crate) fn deferral_expired(&mut self, env: &mut Env<'_>) {
        match self.job.take_back(Reclaimed::Expired) {
            Taken::Back(reply) => {
                log::debug!("{}: a deferred completion timed out", self.id);
                add(&env.metrics.deferred_expired, 1);
                // Its next job says so — the peer may have closed meanwhile (`PeerClosed`: the
                // messages before its close are still handled). Past our own close nothing
                // but `on_close` runs.
                if let Some(inbox) = self.phase.inbox_mut() {
                    inbox.expired = true;
                }
                // An HTTP request answered later gets its `504` (`http_later.rs`).
                self.http_answer_expired(env);
                self.replied(env, *reply);
            }
            Taken::Completing => {
                log::trace!("{}: deadline passed as its completion ran", self.id);
            }
            Taken::Nothing => {}
        }
    }
}
