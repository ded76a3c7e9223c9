//! Accepting: drain the listener until `WouldBlock`, admit each socket into the slab (or answer
//! `503` past `max_connections`), and pause instead of spinning when `accept` fails for lack of
//! file descriptors. Sockets enter here and leave as registered `Connection`s.

use std::io;

use mio::net::TcpStream;
use mio::{Interest, Token};

use super::EventLoop;
use crate::dispatch::ConnId;
use crate::http::{Response, Version};
use crate::metrics::{add, sub};
use crate::reactor::connection::Connection;
use crate::reactor::deadline;
use crate::reactor::io::{is_resource_exhausted, write};

impl EventLoop {
    pub(super) fn accept(&mut self) {
        let Some(listener) = self.listener.take() else {
            return;
        };
        loop {
            match listener.accept() {
                Ok((socket, peer)) => self.admit(socket, peer),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) if err.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(err) => {
                    // EMFILE and friends: the pending connection stays in the backlog, so
                    // retrying now would fail again at once. Pause instead of spinning.
                    add(&self.core.metrics.accept_errors, 1);
                    let backoff = self.core.config.accept_backoff;
                    if is_resource_exhausted(&err) {
                        log::warn!("accept: {err}; pausing accepts for {backoff:?}");
                    } else {
                        log::error!("accept: {err}; pausing accepts for {backoff:?}");
                    }
                    self.accept_paused_until = Some(self.core.now + backoff);
                    break;
                }
            }
        }
        self.listener = Some(listener);
    }

    pub(super) fn resume_accepting(&mut self) {
        if self
            .accept_paused_until
            .is_some_and(|until| self.core.now >= until)
        {
            self.accept_paused_until = None;
            self.accept();
        }
    }

    fn admit(&mut self, mut socket: TcpStream, peer: std::net::SocketAddr) {
        add(&self.core.metrics.connections_accepted, 1);
        // The limit is for the whole server: `connections_open` is shared by every loop, and
        // taking a place in it is one atomic step, so loops cannot overshoot it together.
        if !self
            .core
            .metrics
            .reserve_connection(self.core.config.max_connections)
        {
            add(&self.core.metrics.connections_rejected, 1);
            log::debug!("rejecting {peer}: max_connections reached");
            reject(socket);
            return;
        }
        if let Err(err) = socket.set_nodelay(true) {
            log::debug!("set_nodelay for {peer}: {err}");
        }
        let entry = self.connections.vacant_entry();
        let index = entry.key();
        let id = ConnId::new(self.index, index, self.next_generation);
        self.next_generation += 1;
        let registered = self
            .core
            .registry
            .register(&mut socket, Token(index), Interest::READABLE);
        if let Err(err) = registered {
            log::warn!("cannot register {peer}: {err}");
            sub(&self.core.metrics.connections_open, 1);
            return;
        }
        let mut conn = Connection::new(id, socket, self.core.now);
        deadline::arm(&mut conn, &mut self.core);
        entry.insert(conn);
        log::debug!("{id}: accepted from {peer}");
    }
}

/// Answers a connection over `max_connections` with `503` and closes it.
fn reject(mut socket: TcpStream) {
    let mut bytes = Vec::new();
    Response::text(503, "too many connections\n")
        .with_header("Retry-After", "1")
        .encode(&mut bytes, Version::Http11, false, false);
    // Best effort: a fresh socket's send buffer is empty, so this small write lands whole.
    let _ = write(&mut socket, &bytes);
    let _ = socket.shutdown(std::net::Shutdown::Write);
}
