//! Accepting: drain the listener until `WouldBlock`, admit each socket into the table (or answer
//! `503` past `max_connections`), and pause instead of spinning when `accept` fails for lack of
//! file descriptors. Sockets enter here and leave as registered connections.

use std::io;
use std::net::Shutdown;

use mio::net::TcpStream;

use super::EventLoop;
use crate::http::Response;
use crate::metrics::{add, sub};
use crate::transport::{Transport, is_resource_exhausted};

impl EventLoop {
    /// Accepts until the listen backlog is empty (edge-triggered: no second event would come).
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
                    add(&self.metrics.accept_errors, 1);
                    let backoff = self.config.accept_backoff;
                    if is_resource_exhausted(&err) {
                        log::warn!("accept: {err}; pausing accepts for {backoff:?}");
                    } else {
                        log::error!("accept: {err}; pausing accepts for {backoff:?}");
                    }
                    self.accept_paused_until = Some(self.now + backoff);
                    break;
                }
            }
        }
        self.listener = Some(listener);
    }

    /// Accepts again once the pause after an `accept` failure is over.
    pub(super) fn resume_accepting(&mut self) {
        if self
            .accept_paused_until
            .is_some_and(|until| self.now >= until)
        {
            self.accept_paused_until = None;
            self.accept();
        }
    }

    fn admit(&mut self, socket: TcpStream, peer: std::net::SocketAddr) {
        add(&self.metrics.connections_accepted, 1);
        // The limit is for the whole server: `connections_open` is shared by every loop, and
        // taking a place in it is one atomic step, so loops cannot overshoot it together.
        if !self.metrics.reserve_connection(self.config.max_connections) {
            add(&self.metrics.connections_rejected, 1);
            log::debug!("rejecting {peer}: max_connections reached");
            reject(socket);
            return;
        }
        if let Err(err) = socket.set_nodelay(true) {
            log::debug!("set_nodelay for {peer}: {err}");
        }
        match self.table.admit(socket, self.now) {
            Ok(id) => log::debug!("{id}: accepted from {peer}"),
            Err(err) => {
                log::warn!("cannot register {peer}: {err}");
                sub(&self.metrics.connections_open, 1);
            }
        }
    }
}

/// Answers a connection over `max_connections` with `503` and closes it.
fn reject(mut socket: TcpStream) {
    let response = Response::text(503, "too many connections\n").with_header("Retry-After", "1");
    // Best effort: a fresh socket's send buffer is empty, so this small write lands whole.
    let _ = socket.write(&response.to_closing_bytes());
    let _ = socket.shutdown(Shutdown::Write);
}
