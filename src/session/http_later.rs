//! An HTTP request answered later: the session's side.
//!
//! A job of pipelined requests whose handler answers one of them later comes back as a
//! deferral (`deferral.rs`) whose output carries an [`HttpLater`]: the responses before the
//! deferred one (queued at once), the framing of the response still owed, and the requests
//! after it with the batch's tail (an upgrade, an error), not yet handled. The session keeps
//! it in its phase (`Http`, or `Upgrading` when an upgrade request ended the batch) and, as
//! for any job out, reads no more requests meanwhile. The answer's reply — the completion's
//! response, or the `500` of an abandoned one — comes home like any reply; at the deadline
//! the session writes `504 Gateway Timeout` itself, framed as the request asked. Either way a
//! response that does not keep the connection alive closes it (it lingers, as after any
//! such response); otherwise the requests that waited become the next job, ahead of
//! anything still unparsed. The connection closing meanwhile drops them with its phase.
//!
//! While the answer is awaited the connection reads on, one read buffer's worth at most, so
//! that the client's EOF (or reset: a read cannot tell them apart) is seen: a client that
//! closes while its answer is pending has given up on it — nginx's `499`, a Go handler's
//! cancelled context — so the job is taken back (the completion gets `Closed`), what waited
//! and what was read after it are dropped, and the connection lingers out after the
//! responses already queued.

use crate::dispatch::{After, HttpLater, Reclaimed, Work};
use crate::http::Response;
use crate::session::connection::Session;
use crate::session::env::Env;
use crate::session::phase::{JobSlot, Phase, Taken};

/// The body of the `504` a request answered later gets when its answer did not come within
/// `Config::deferred_timeout`.
const TIMED_OUT: &str = "gateway timeout: the answer did not come in time\n";

impl Session {
    /// What a reply (or a deferral) brings for a request answered later, before its bytes are
    /// queued: a deferral's `later` is kept; the reply that brings the owed answer settles
    /// it, and the connection closes after it if its request did not keep it alive. Returns
    /// what the session does after the bytes.
    pub(crate) fn resume_http(&mut self, later: Option<Box<HttpLater>>, after: After) -> After {
        let Some(kept) = self.phase.http_later() else {
            return after;
        };
        if let Some(later) = later {
            debug_assert!(kept.is_none(), "{}: a second deferred answer", self.id);
            log::trace!("{}: an HTTP answer is deferred", self.id);
            *kept = Some(later);
            return after;
        }
        let Some(owed) = kept.as_mut().and_then(|later| later.owed.take()) else {
            return after;
        };
        if kept.as_ref().is_some_and(|later| later.is_spent()) {
            *kept = None;
        }
        if owed.keep_alive {
            after
        } else {
            After::CloseHttp { bad_request: false }
        }
    }

    /// The client closed its side while an answer is deferred: the answer is given up (see
    /// the module's docs). A completion already running is awaited instead, as for any job.
    pub(crate) fn http_answer_given_up(&mut self) {
        let Phase::Http(http) = &mut self.phase else {
            return;
        };
        if !http.peer_eof || !matches!(self.job, JobSlot::Deferred(_)) {
            return;
        }
        if let Taken::Back(reply) = self.job.take_back(Reclaimed::Closed) {
            log::debug!(
                "{}: the client closed while its answer was deferred",
                self.id
            );
            self.job.give_back(reply.lease);
            http.later = None;
            if let Some(input) = self.input.as_mut() {
                input.consume(input.len());
            }
        }
    }

    /// The deferred answer's deadline passed: its request gets `504 Gateway Timeout`, framed as
    /// it asked (its reply, which follows, closes the connection if it did not keep it alive).
    pub(crate) fn http_answer_expired(&mut self, env: &mut Env<'_>) {
        let owed = match self.phase.http_later() {
            Some(Some(later)) => later.owed,
            _ => None,
        };
        let Some(framing) = owed else {
            return;
        };
        log::debug!("{}: a deferred HTTP answer timed out: 504", self.id);
        let mut bytes = Vec::with_capacity(160);
        let response = Response::text(504, TIMED_OUT);
        response.encode(
            &mut bytes,
            framing.version,
            framing.keep_alive,
            framing.head_only,
        );
        self.queue_vec(env, bytes);
    }

    /// Requests (or a batch's tail) that waited for an answer deferred before them, as the
    /// next job.
    pub(crate) fn take_resumed_http(&mut self) -> Option<Work> {
        let kept = self.phase.http_later()?;
        let later = kept.take_if(|later| later.owed.is_none())?;
        let HttpLater { requests, tail, .. } = *later;
        log::trace!("{}: {} HTTP requests resume", self.id, requests.len());
        Some(Work::Http { requests, tail })
    }

    /// Requests that waited for an answer deferred before them are ready for the next job.
    pub(crate) fn http_waiting(&self) -> bool {
        later(&self.phase).is_some_and(HttpLater::has_work)
    }

    /// Bytes held by requests waiting for an answer deferred before them, while no job
    /// carries them (the deferred job's lease counts them until its reply).
    pub(crate) fn http_waiting_bytes(&self) -> usize {
        match later(&self.phase) {
            Some(later) if !self.job.is_out() => later.bytes(),
            _ => 0,
        }
    }
}

/// What a deferred HTTP answer left, in the phases that can have it.
fn later(phase: &Phase) -> Option<&HttpLater> {
    match phase {
        Phase::Http(http) => http.later.as_deref(),
        Phase::Upgrading(upgrading) => upgrading.later.as_deref(),
        _ => None,
    }
}
