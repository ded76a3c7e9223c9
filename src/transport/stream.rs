//! [`Stream`]: the transport the event loop gives each accepted connection — the TCP socket
//! itself, or (feature `tls`) TLS over it. One enum, so the loop's table holds one type and the
//! session runs unchanged on either; each call is one `match`.
//!
//! A TLS stream is boxed: rustls's state is a few KiB, and the slab entry of every plain
//! connection stays as small as before.

use std::io::{self, IoSlice};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

#[cfg(feature = "tls")]
use super::TlsStream;
use super::{IoOutcome, PeerGone, Transport};

/// An accepted connection's transport.
#[derive(Debug)]
pub(crate) enum Stream {
    /// Plain TCP (`http://`, `ws://`).
    Plain(TcpStream),
    /// TLS over TCP (`https://`, `wss://`).
    #[cfg(feature = "tls")]
    Tls(Box<TlsStream>),
}

impl Stream {
    fn socket(&mut self) -> &mut TcpStream {
        match self {
            Stream::Plain(socket) => socket,
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.socket_mut(),
        }
    }
}

/// Calls the same method on whichever transport this is.
macro_rules! each {
    ($self:ident, $t:ident => $call:expr) => {
        match $self {
            Stream::Plain($t) => $call,
            #[cfg(feature = "tls")]
            Stream::Tls($t) => $call,
        }
    };
}

impl Transport for Stream {
    fn read(&mut self, buf: &mut [u8]) -> IoOutcome {
        each!(self, t => t.read(buf))
    }

    fn write(&mut self, buf: &[u8]) -> IoOutcome {
        each!(self, t => t.write(buf))
    }

    fn write_vectored(&mut self, slices: &[IoSlice<'_>]) -> IoOutcome {
        each!(self, t => t.write_vectored(slices))
    }

    fn buffered_output(&self) -> usize {
        each!(self, t => t.buffered_output())
    }

    fn buffered_input(&self) -> usize {
        each!(self, t => t.buffered_input())
    }

    fn flush(&mut self) -> Result<(), PeerGone> {
        // Spelled out: `io::Write::flush` would be found first on the socket.
        match self {
            Stream::Plain(socket) => Transport::flush(socket),
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => Transport::flush(tls.as_mut()),
        }
    }

    fn shutdown_write(&mut self) {
        each!(self, t => t.shutdown_write())
    }

    fn release_idle(&mut self) {
        each!(self, t => t.release_idle())
    }
}

/// The poller watches the socket underneath, whatever speaks over it.
impl mio::event::Source for Stream {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.socket().register(registry, token, interest)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.socket().reregister(registry, token, interest)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.socket().deregister(registry)
    }
}
