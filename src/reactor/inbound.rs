//! Turning a connection's buffered input bytes into work: HTTP requests and WebSocket messages.
//!
//! Bytes enter from the connection's read buffer; they leave as a batch of HTTP requests (for a
//! job), as decoded messages held on the connection until the next job, or as control-frame
//! answers queued at once on the loop (pong, close), which never wait for a worker. Protocol
//! errors leave as an HTTP error response or a close frame with the right code, and the
//! connection moves to `Lingering`.

use crate::dispatch::{HttpTail, Work};
use crate::handler::CloseInfo;
use crate::http::{Parsed, Version, check_upgrade};
use crate::metrics::{CloseKind, add};
use crate::reactor::connection::{Connection, Phase};
use crate::reactor::event_loop::Core;
use crate::ws::{CloseCode, Decoded, OpCode, WsError, encode_close, encode_frame};

/// Decodes the buffered bytes of a WebSocket connection, or discards those of a lingering one.
/// HTTP bytes are left alone: they are parsed when a job can be dispatched
/// ([`take_http_batch`]), so a connection never has more than one batch of requests in hand.
/// Returns `Err` when the connection must be dropped at once.
pub(crate) fn process_input(conn: &mut Connection, core: &mut Core) -> Result<(), CloseKind> {
    match conn.phase {
        Phase::Open { .. } => {
            decode_open(conn, core);
            Ok(())
        }
        Phase::Closing { .. } => decode_closing(conn, core),
        Phase::Lingering => {
            if let Some(input) = conn.input.as_mut() {
                input.consume(input.len());
            }
            Ok(())
        }
        Phase::Http { .. } | Phase::Upgrading => Ok(()),
    }
}

/// Decodes frames into `conn.pending` until the input is used up, the pending limits are
/// reached, the peer's close frame arrives, or the peer breaks the protocol.
fn decode_open(conn: &mut Connection, core: &mut Core) {
    loop {
        if conn.pending.len() >= core.config.max_pending_messages
            || conn.pending_bytes >= core.config.max_pending_bytes
        {
            return;
        }
        let Phase::Open {
            decoder,
            close_received: false,
        } = &mut conn.phase
        else {
            return;
        };
        let Some(input) = conn.input.as_mut().filter(|input| !input.is_empty()) else {
            return;
        };
        let item = match decoder.decode(input.data(), &core.decoder_limits) {
            Ok((0, None)) => return,
            Ok((consumed, item)) => {
                input.consume(consumed);
                item
            }
            Err(err) => return fail(conn, core, &err),
        };
        match item {
            None => {}
            Some(Decoded::Message(message)) => {
                add(&core.metrics.messages_in, 1);
                conn.pending_bytes += message.len();
                if conn.pending.capacity() == 0 {
                    // A batch usually holds several messages: skip the 1, 2, 4 reallocations.
                    conn.pending.reserve(8);
                }
                conn.pending.push(message);
                // This message fills what the connection may hold while its previous job runs,
                // so reading pauses until that job's reply (`wants_input` in drive.rs). Counted
                // once per pause, here at the message that reaches the limit. With no job in
                // flight or held, `dispatch` sends the pending messages at once: no pause.
                let full = conn.pending.len() >= core.config.max_pending_messages
                    || conn.pending_bytes >= core.config.max_pending_bytes;
                if full && (conn.job_in_flight || conn.stalled.is_some()) {
                    add(&core.metrics.backpressure_pauses, 1);
                }
            }
            Some(Decoded::Ping(payload)) => {
                // Upon receipt of a Ping frame, an endpoint MUST send a Pong frame in response,
                // with the same Application data. (RFC 6455 §5.5.2)
                let mut pong = Vec::with_capacity(2 + payload.as_bytes().len());
                encode_frame(&mut pong, OpCode::Pong, payload.as_bytes());
                conn.queue(core, &pong);
            }
            Some(Decoded::Pong(_)) => {}
            Some(Decoded::Close(frame)) => {
                log::debug!("{}: close frame received: {frame:?}", conn.id);
                if let Phase::Open { close_received, .. } = &mut conn.phase {
                    *close_received = true;
                }
                conn.set_close_info(match frame {
                    Some(frame) => CloseInfo::new(frame.code, frame.reason),
                    None => CloseInfo::new(CloseCode::Status, ""),
                });
                return;
            }
        }
    }
}

/// After our close frame: ignore data, wait for the peer's close frame, then linger.
fn decode_closing(conn: &mut Connection, core: &mut Core) -> Result<(), CloseKind> {
    loop {
        let Phase::Closing { decoder } = &mut conn.phase else {
            return Ok(());
        };
        let Some(input) = conn.input.as_mut().filter(|input| !input.is_empty()) else {
            return Ok(());
        };
        match decoder.decode(input.data(), &core.decoder_limits) {
            Ok((0, None)) => return Ok(()),
            Ok((consumed, item)) => {
                input.consume(consumed);
                if let Some(Decoded::Close(_)) = item {
                    log::debug!("{}: close handshake complete", conn.id);
                    conn.enter(Phase::Lingering, core.now);
                    return Ok(());
                }
            }
            Err(err) => {
                log::debug!("{}: protocol error while closing: {err}", conn.id);
                return Err(CloseKind::ProtocolError);
            }
        }
    }
}

/// "Fail the WebSocket Connection" (RFC 6455 §7.1.7): send a close frame with the error's code,
/// drop what was not yet handed to the handler, and linger until the peer goes.
pub(crate) fn fail(conn: &mut Connection, core: &mut Core, err: &WsError) {
    let code = err.close_code();
    log::debug!("{}: failing the connection with {code}: {err}", conn.id);
    let reason = err.to_string();
    let mut frame = Vec::with_capacity(4 + reason.len());
    encode_close(&mut frame, code, &reason);
    conn.queue(core, &frame);
    conn.set_close_info(CloseInfo::new(code, reason));
    conn.pending.clear();
    conn.pending_bytes = 0;
    conn.end_kind = CloseKind::ProtocolError;
    linger(conn, core);
}

/// Moves to `Lingering` (its `close_timeout` runs once the output has drained).
pub(crate) fn linger(conn: &mut Connection, core: &Core) {
    conn.enter(Phase::Lingering, core.now);
}

/// Parses every complete request in the read buffer into one batch, stopping after an upgrade
/// request, a request that asks to close, or an error. An error with no request before it is
/// answered here on the loop (no handler is involved) and returns `None`.
pub(crate) fn take_http_batch(conn: &mut Connection, core: &mut Core) -> Option<Work> {
    let Phase::Http { parser } = &mut conn.phase else {
        return None;
    };
    let input = conn.input.as_mut()?;
    let mut requests = Vec::new();
    let mut tail = HttpTail::None;
    while requests.len() < core.config.max_pending_messages && !input.is_empty() {
        match parser.parse(input.data(), &core.http_limits) {
            Ok(Parsed::Partial) => break,
            Ok(Parsed::Complete { request, consumed }) => {
                input.consume(consumed);
                match check_upgrade(&request) {
                    Ok(Some(upgrade)) => {
                        tail = HttpTail::Upgrade(Box::new((request, upgrade)));
                        break;
                    }
                    Ok(None) => {
                        add(&core.metrics.http_requests, 1);
                        let keep_alive = request.keep_alive();
                        requests.push(request);
                        if !keep_alive {
                            break;
                        }
                    }
                    Err(err) => {
                        tail = HttpTail::Error(err);
                        break;
                    }
                }
            }
            Err(err) => {
                tail = HttpTail::Error(err);
                break;
            }
        }
    }
    match tail {
        HttpTail::None if requests.is_empty() => return None,
        HttpTail::None => {}
        HttpTail::Upgrade(_) => conn.enter(Phase::Upgrading, core.now),
        HttpTail::Error(ref err) => {
            log::debug!("{}: bad request: {err}", conn.id);
            conn.end_kind = CloseKind::ProtocolError;
            if requests.is_empty() {
                let mut bytes = Vec::new();
                err.to_response()
                    .encode(&mut bytes, Version::Http11, false, false);
                conn.queue_vec(core, bytes);
                linger(conn, core);
                return None;
            }
        }
    }
    Some(Work::Http { requests, tail })
}
