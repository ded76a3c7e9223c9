//! Accepting: drain the listener until `WouldBlock`, admit each socket into the table — within
//! `max_connections`, else on the monitoring reserve if `metrics_path` or `health_path` is set,
//! else answered `503` at once — and pause instead of spinning when `accept` fails for lack of
//! file descriptors. Sockets enter here and leave as registered connections, each with the
//! [`Admission`] that says which count its place was taken from.

use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr};

use mio::net::TcpStream;

use super::EventLoop;
use crate::config::{Config, deadline_after};
use crate::metrics::{Admission, Metrics, add};
use crate::session::at_capacity_response;
use crate::transport::{Stream, is_resource_exhausted};

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
                    self.accept_paused_until = Some(deadline_after(self.now, backoff));
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

    fn admit(&mut self, socket: TcpStream, peer: SocketAddr) {
        add(&self.metrics.connections_accepted, 1);
        let Some(admission) = take_place(&self.metrics, &self.config) else {
            add(&self.metrics.connections_rejected, 1);
            log::debug!("rejecting {peer}: max_connections reached");
            if self.serves_tls() {
                // A `503` in plaintext would only be a bad record to a TLS client.
                drop(socket);
            } else {
                reject(socket);
            }
            return;
        };
        if let Err(err) = socket.set_nodelay(true) {
            log::debug!("set_nodelay for {peer}: {err}");
        }
        let Some(stream) = self.wrap(socket, peer) else {
            self.metrics.release(admission);
            return;
        };
        match self.table.admit(stream, Some(peer), self.now, admission) {
            Ok(id) if admission == Admission::MonitoringReserve => {
                log::debug!("{id}: accepted from {peer} on the monitoring reserve");
            }
            Ok(id) => log::debug!("{id}: accepted from {peer}"),
            Err(err) => {
                log::warn!("cannot register {peer}: {err}");
                self.metrics.release(admission);
            }
        }
    }
}

impl EventLoop {
    fn serves_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The transport for an accepted socket: the socket itself, or TLS over it.
    #[cfg(not(feature = "tls"))]
    fn wrap(&self, socket: TcpStream, _peer: SocketAddr) -> Option<Stream> {
        Some(Stream::Plain(socket))
    }

    /// The transport for an accepted socket: the socket itself, or TLS over it with the
    /// configuration current now (a reload changes it for later sockets only).
    #[cfg(feature = "tls")]
    fn wrap(&self, socket: TcpStream, peer: SocketAddr) -> Option<Stream> {
        let Some(acceptor) = &self.tls else {
            return Some(Stream::Plain(socket));
        };
        match acceptor.accept(socket, &self.metrics) {
            Ok(tls) => Some(Stream::Tls(Box::new(tls))),
            Err(err) => {
                log::warn!("TLS for {peer}: {err}");
                None
            }
        }
    }
}

/// A place for a new connection: one of `max_connections`, else one of the monitoring reserve
/// (only while there is something to monitor), else none. Both limits are for the whole server:
/// their counts are shared by every loop, and taking a place is one atomic step, so loops
/// cannot overshoot them together.
fn take_place(metrics: &Metrics, config: &Config) -> Option<Admission> {
    if metrics.reserve_connection(config.max_connections) {
        return Some(Admission::Ordinary);
    }
    let monitored = config.metrics_path.is_some() || config.health_path.is_some();
    let reserve = if monitored {
        config.monitoring_reserve
    } else {
        0
    };
    metrics
        .reserve_monitoring_connection(reserve)
        .then_some(Admission::MonitoringReserve)
}

/// Answers a connection past `max_connections` and its reserve with `503` and closes it.
fn reject(mut socket: TcpStream) {
    // Best effort: a fresh socket's send buffer is empty, so this small write lands whole.
    let _ = socket.write(&at_capacity_response());
    let _ = socket.shutdown(Shutdown::Write);
}
