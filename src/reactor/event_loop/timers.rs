//! Deadlines coming due: pop them from the timer heap, skip the stale ones, re-arm those whose
//! clock moved later, and act on the rest (ping, `408`, close `1001`, drop).

use super::{EventLoop, live};
use crate::dispatch::ConnId;
use crate::handler::CloseInfo;
use crate::http::{Response, Version};
use crate::metrics::{CloseKind, TimeoutKind, add};
use crate::reactor::connection::Phase;
use crate::reactor::deadline::{self, Due};
use crate::reactor::drive::start_close;
use crate::reactor::inbound::linger;
use crate::ws::{CloseCode, OpCode, encode_frame};

impl EventLoop {
    pub(super) fn fire_timers(&mut self) {
        let now = self.core.now;
        while let Some((at, id)) = self.core.timers.pop_due(now) {
            let Some(conn) =
                live(&mut self.connections, id).filter(|conn| conn.deadline == Some(at))
            else {
                continue; // replaced by an earlier entry, or the connection is gone
            };
            conn.deadline = None;
            match deadline::next(conn, &self.core.config) {
                Some((when, due)) if when <= now => self.expire(id, due),
                // A clock moved later (bytes arrived): schedule its new instant.
                _ => deadline::arm(conn, &mut self.core),
            }
        }
    }

    /// Acts on a deadline that came due.
    fn expire(&mut self, id: ConnId, due: Due) {
        let Some(conn) = live(&mut self.connections, id) else {
            return;
        };
        let kind = match due {
            Due::Ping => {
                log::trace!("{id}: silent, sending a keepalive ping");
                let mut ping = Vec::with_capacity(2);
                encode_frame(&mut ping, OpCode::Ping, b"");
                conn.queue(&mut self.core, &ping);
                conn.ping_sent = Some(self.core.now);
                add(&self.core.metrics.pings_sent, 1);
                return self.drive_conn(id.index());
            }
            Due::Timeout(kind) => kind,
        };
        if kind == TimeoutKind::Close && matches!(conn.phase, Phase::Lingering) && conn.fin_sent {
            // Everything was said and our FIN sent; only the peer's FIN is missing. The
            // connection ends for the reason it was ending, not as a failed close handshake.
            log::debug!("{id}: linger over, peer never closed");
            let end = conn.end_kind;
            return self.close(id.index(), end);
        }
        log::debug!("{id}: {kind:?} timeout in {}", conn.phase.name());
        self.core.metrics.timeout(kind);
        match kind {
            TimeoutKind::Request if conn.input.as_ref().is_some_and(|i| !i.is_empty()) => {
                let mut bytes = Vec::new();
                Response::text(408, "request timeout\n").encode(
                    &mut bytes,
                    Version::Http11,
                    false,
                    false,
                );
                conn.queue_vec(&mut self.core, bytes);
                conn.end_kind = CloseKind::Timeout;
                linger(conn, &self.core);
                self.drive_conn(id.index());
            }
            TimeoutKind::Lifetime => {
                conn.end_kind = CloseKind::Server;
                start_close(
                    conn,
                    &mut self.core,
                    CloseCode::Away,
                    "connection lifetime exceeded",
                );
                self.drive_conn(id.index());
            }
            TimeoutKind::WriteStall => {
                // Nothing can be sent to a client that does not read: drop it, free its buffers.
                conn.set_close_info(CloseInfo::new(CloseCode::Policy, "write stall"));
                self.close(id.index(), CloseKind::Timeout);
            }
            TimeoutKind::Request | TimeoutKind::Idle | TimeoutKind::Pong | TimeoutKind::Close => {
                self.close(id.index(), CloseKind::Timeout);
            }
        }
    }
}
