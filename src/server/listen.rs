//! The listening sockets: one per event loop on one address, bound with `socket2` for the
//! backlog and `SO_REUSEPORT`; the loops take them from `build` and accept on them.

use std::net::SocketAddr;

use mio::net::TcpListener;
use socket2::{Domain, Protocol, Socket, Type};

use crate::config::Config;
use crate::error::Error;

/// One listening socket per event loop on the same address (`SO_REUSEPORT` when there are
/// several); with port 0 the first bind picks the port for the others.
pub(super) fn listen_all(config: &Config) -> Result<(Vec<TcpListener>, SocketAddr), Error> {
    let reuse_port = config.event_loops > 1;
    let first = listen(config.addr, config, reuse_port)?;
    let local_addr = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..config.event_loops {
        listeners.push(listen(local_addr, config, reuse_port)?);
    }
    Ok((listeners, local_addr))
}

/// Binds a listening socket with `SO_REUSEADDR` (and `SO_REUSEPORT` for several loops) and the
/// configured backlog.
pub(super) fn listen(
    addr: SocketAddr,
    config: &Config,
    reuse_port: bool,
) -> Result<TcpListener, Error> {
    let bind = || -> std::io::Result<TcpListener> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        if reuse_port {
            socket.set_reuse_port(true)?;
        }
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(i32::try_from(config.backlog).unwrap_or(i32::MAX))?;
        Ok(TcpListener::from_std(socket.into()))
    };
    bind().map_err(|source| Error::Bind { addr, source })
}
