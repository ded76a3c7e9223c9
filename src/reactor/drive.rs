//! The per-connection step: given what just happened to a connection (readiness, a reply, a
//! push), move it as far forward as it can go without blocking.
//!
//! [`drive`] reads (within the fairness budget), turns bytes into work, dispatches at most one
//! job, applies the phase rules that end connections, writes what is queued, gives idle buffers
//! back, and keeps the registered interest in step. It returns a [`Verdict`]: keep the connection,
//! or close it now. [`apply_reply`] and [`push`] feed a connection from the worker side.

use crossbeam_channel::TrySendError;

use crate::config::Config;
use crate::dispatch::{After, Job, Reply, Work, run_job};
use crate::handler::CloseInfo;
use crate::metrics::{CloseKind, add};
use crate::reactor::connection::{Connection, Phase, ReadResult};
use crate::reactor::deadline;
use crate::reactor::event_loop::Core;
use crate::reactor::inbound::{linger, process_input, take_http_batch};
use crate::ws::{CloseCode, CloseFrame, MessageDecoder, encode_close};

/// What the loop must do with a connection after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Keep it; it waits for readiness, a reply or a timer.
    Keep,
    /// Drop it now (deregister, close the socket, owe `on_close`).
    Close(CloseKind),
}

/// Moves one connection forward as far as it can go without blocking.
pub(crate) fn drive(conn: &mut Connection, core: &mut Core) -> Verdict {
    let mut budget = core.config.max_read_per_turn;
    loop {
        loop {
            if let Err(kind) = process_input(conn, core) {
                return Verdict::Close(kind);
            }
            if dispatch(conn, core) {
                // An inline job ran to completion: what is still buffered can go next.
                continue;
            }
            if !(conn.readable && wants_input(conn, core)) {
                break;
            }
            if budget == 0 {
                // Fairness: others get their turn; this one continues on the next turn.
                core.ready.push(conn.id);
                break;
            }
            let before = conn.input.as_ref().map_or(0, |input| input.len());
            match conn.read_once(core, max_input_len(&conn.phase, &core.config)) {
                ReadResult::Data => {
                    let after = conn.input.as_ref().map_or(0, |input| input.len());
                    budget = budget.saturating_sub(after.saturating_sub(before));
                }
                ReadResult::Drained => conn.readable = false,
                ReadResult::BufferFull => break,
                ReadResult::Eof => {
                    conn.peer_eof = true;
                    conn.readable = false;
                }
                ReadResult::Failed => return Verdict::Close(CloseKind::PeerGone),
            }
        }
        settle(conn, core);
        let held_back = conn.output_len() >= core.config.max_outbound_bytes;
        if conn.flush(core).is_err() {
            return Verdict::Close(CloseKind::PeerGone);
        }
        // Output at the limit held back `dispatch` and reading (`wants_input`) above. If this
        // flush took it below the limit, go round again: nothing else would wake this
        // connection (its pending messages are already here, and edge-triggered readiness
        // already reported the unread bytes), so it would stall until a timer fired. Each
        // extra round needs the output to have refilled past the limit, which the shared read
        // budget bounds.
        if !(held_back && conn.output_len() < core.config.max_outbound_bytes) {
            break;
        }
    }
    if matches!(conn.phase, Phase::Lingering) && conn.output_len() == 0 {
        if !conn.fin_sent {
            conn.fin_sent = true;
            // FIN after the last byte; what the peer still sends is read and discarded so the
            // kernel does not answer it with a reset that could destroy our last bytes.
            let _ = conn.socket.shutdown(std::net::Shutdown::Write);
            log::trace!("{}: FIN sent", conn.id);
        }
        // Done once the peer has closed too; during shutdown, as soon as our bytes are out.
        if conn.peer_eof || core.shutting_down {
            return Verdict::Close(conn.end_kind);
        }
    }
    conn.release_buffers(core);
    deadline::arm(conn, core);
    if let Err(err) = conn.update_interest(core) {
        log::debug!("{}: reregister failed: {err}", conn.id);
        return Verdict::Close(CloseKind::PeerGone);
    }
    Verdict::Keep
}

/// Should the loop read from this socket now? This is where backpressure happens: when a
/// connection holds as much as it may (pending messages, outbound bytes, a job in flight for HTTP)
/// the loop stops reading, the kernel buffer fills, and TCP flow control slows the client.
fn wants_input(conn: &Connection, core: &Core) -> bool {
    let config = &core.config;
    if conn.peer_eof {
        return false;
    }
    let room_out = conn.output_len() < config.max_outbound_bytes;
    match conn.phase {
        Phase::Http { .. } => conn.is_idle() && room_out && !core.shutting_down,
        Phase::Upgrading => false,
        Phase::Open { close_received, .. } => {
            !close_received
                && !core.shutting_down
                && room_out
                && conn.pending.len() < config.max_pending_messages
                && conn.pending_bytes < config.max_pending_bytes
        }
        Phase::Closing { .. } | Phase::Lingering => true,
    }
}

/// How large the read buffer may grow: a whole HTTP request must fit for the parser; WebSocket
/// frames stream through the decoder, so the pooled size is enough.
fn max_input_len(phase: &Phase, config: &Config) -> usize {
    match phase {
        Phase::Http { .. } => config.max_header_bytes + config.max_body_size,
        _ => config.read_buffer_size,
    }
}

/// Sends the connection's next job to the worker pool, if it has work and none in flight.
/// Returns true when the job ran inline and is already complete.
fn dispatch(conn: &mut Connection, core: &mut Core) -> bool {
    if conn.job_in_flight || conn.output_len() >= core.config.max_outbound_bytes {
        return false;
    }
    let was_stalled = conn.stalled.is_some();
    let job = match conn.stalled.take() {
        Some(job) => *job,
        None => {
            let work = match conn.phase {
                Phase::Http { .. } if !core.shutting_down => take_http_batch(conn, core),
                Phase::Open { .. } if !conn.pending.is_empty() => {
                    conn.pending_bytes = 0;
                    Some(Work::Messages(std::mem::take(&mut conn.pending)))
                }
                _ => None,
            };
            match work {
                Some(work) => Job {
                    conn: conn.id,
                    work,
                },
                None => return false,
            }
        }
    };
    if let Some(handler) = core.inline.take() {
        // Inline: run the handler here and now; its reply applies at once.
        add(&core.metrics.jobs_dispatched, 1);
        conn.job_in_flight = true;
        let reply = run_job(&*handler, &core.server, job);
        core.inline = Some(handler);
        if let Some(reply) = reply {
            apply_reply(conn, core, reply);
        }
        return true;
    }
    match core.jobs.try_send(job) {
        Ok(()) => {
            conn.job_in_flight = true;
            add(&core.metrics.jobs_dispatched, 1);
            log::trace!("{}: job dispatched", conn.id);
        }
        Err(TrySendError::Full(job)) => {
            // Backpressure: keep the job here. Reading stops as the connection fills up: HTTP at
            // once (`is_idle`), WebSocket when its pending limits are reached.
            conn.stalled = Some(Box::new(job));
            if !was_stalled {
                // Listed once; `retry_stalled` re-lists it if a retry fails.
                core.stalled.push_back(conn.id);
                add(&core.metrics.backpressure_pauses, 1);
            }
            log::trace!("{}: job queue full, job held", conn.id);
        }
        Err(TrySendError::Disconnected(_)) => {
            log::error!("{}: worker pool is gone; job dropped", conn.id);
        }
    }
    false
}

/// Phase rules that finish connections once their handler work is done.
fn settle(conn: &mut Connection, core: &mut Core) {
    if !conn.is_idle() {
        return;
    }
    match conn.phase {
        Phase::Http { .. } if conn.peer_eof || core.shutting_down => {
            // A half-closed client got its answers; or the server is going away between requests.
            linger(conn, core);
        }
        Phase::Open {
            close_received: true,
            ..
        } => {
            // If an endpoint receives a Close frame and did not previously send a Close frame,
            // the endpoint MUST send a Close frame in response, typically echoing the status
            // code it received. (RFC 6455 §5.5.1)
            let code = conn
                .close_info
                .as_ref()
                .map_or(CloseCode::Status, |info| info.code);
            let mut frame = Vec::with_capacity(4);
            encode_close(&mut frame, code, "");
            conn.queue(core, &frame);
            linger(conn, core);
        }
        Phase::Open { .. } if conn.peer_eof => {
            // EOF without a close frame: answers to what arrived before it are flushed (the
            // client may have only half-closed), then the connection ends as abnormal (1006).
            conn.set_close_info(CloseInfo::abnormal());
            conn.end_kind = CloseKind::PeerGone;
            linger(conn, core);
        }
        Phase::Open { .. } if core.shutting_down => {
            conn.end_kind = CloseKind::Server;
            start_close(conn, core, CloseCode::Away, "server shutting down");
        }
        Phase::Closing { .. } if conn.peer_eof => linger(conn, core),
        _ => {}
    }
}

/// Sends our close frame and waits for the peer's (`Open` → `Closing`). Messages not yet handed
/// to the handler are dropped: the conversation is ending.
pub(crate) fn start_close(conn: &mut Connection, core: &mut Core, code: CloseCode, reason: &str) {
    let Phase::Open { decoder, .. } = &mut conn.phase else {
        return;
    };
    let decoder = std::mem::take(decoder);
    log::debug!("{}: closing with {code}", conn.id);
    let mut frame = Vec::with_capacity(4 + reason.len());
    encode_close(&mut frame, code, reason);
    conn.queue(core, &frame);
    conn.set_close_info(CloseInfo::new(code, reason));
    conn.pending.clear();
    conn.pending_bytes = 0;
    conn.stalled = None;
    conn.enter(Phase::Closing { decoder }, core.now);
}

/// Applies a worker's reply: queue its bytes, then do what it says.
pub(crate) fn apply_reply(conn: &mut Connection, core: &mut Core, reply: Reply) {
    conn.job_in_flight = false;
    let Reply {
        mut output, after, ..
    } = reply;
    if matches!(conn.phase, Phase::Closing { .. } | Phase::Lingering) {
        // After sending a Close frame, the endpoint MUST NOT send any more data frames.
        // (RFC 6455 §5.5.1)
        if !output.is_empty() {
            log::debug!("{}: reply dropped, close already sent", conn.id);
        }
        return;
    }
    add(&core.metrics.messages_out, output.messages);
    let close = output.close.take();
    for chunk in output.into_chunks() {
        conn.queue_vec(core, chunk);
    }
    match after {
        After::Continue => {
            // Keep-alive: once the response drains, the idle clock starts (`deadline.rs`).
            conn.served = true;
        }
        After::Upgraded => {
            conn.enter(
                Phase::Open {
                    decoder: MessageDecoder::new(),
                    close_received: false,
                },
                core.now,
            );
            conn.last_read = core.now;
            conn.upgraded = true;
            add(&core.metrics.upgrades, 1);
            add(&core.metrics.websocket_open, 1);
            if let Some(early) = conn.early_output.take() {
                conn.queue_vec(core, *early);
            }
        }
        After::CloseHttp => {
            conn.early_output = None;
            linger(conn, core);
        }
    }
    if let Some(CloseFrame { code, reason }) = close {
        if code == CloseCode::Error {
            conn.end_kind = CloseKind::Server;
        }
        start_close(conn, core, code, &reason);
    }
}

/// Queues pushed frames (from a `ServerHandle`) for one connection. A connection that lets more
/// than twice `max_outbound_bytes` pile up is a slow consumer and is dropped with `1008`, so one
/// client that never reads cannot make the server's memory grow without bound.
pub(crate) fn push(conn: &mut Connection, core: &mut Core, bytes: &[u8]) -> Verdict {
    let limit = 2 * core.config.max_outbound_bytes;
    match conn.phase {
        Phase::Open { .. } => {
            if conn.output_len() + bytes.len() > limit {
                log::debug!(
                    "{}: slow consumer, {} bytes queued",
                    conn.id,
                    conn.output_len()
                );
                conn.set_close_info(CloseInfo::new(CloseCode::Policy, "slow consumer"));
                return Verdict::Close(CloseKind::Server);
            }
            conn.queue(core, bytes);
            add(&core.metrics.messages_out, 1);
        }
        Phase::Upgrading => {
            let early = conn.early_output.get_or_insert_with(Box::default);
            if early.len() + bytes.len() > limit {
                return Verdict::Close(CloseKind::Server);
            }
            early.extend_from_slice(bytes);
            add(&core.metrics.messages_out, 1);
        }
        _ => add(&core.metrics.stale_replies_dropped, 1),
    }
    Verdict::Keep
}
