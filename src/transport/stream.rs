//! [`Stream`]: the transport the event loop reads and writes for each accepted connection — the
//! non-blocking TCP socket itself, or (feature `tls`) TLS over it. One enum, so the loop's table
//! holds one type; each call is one `match`. On plain TCP each call is one syscall (`read`,
//! `write`, `writev`, `shutdown`), classified by `io.rs`; nothing is buffered, so there is never
//! anything to flush.
//!
//! A TLS stream is boxed: rustls's state is a few KiB, and the slab entry of every plain
//! connection stays as small as before.

use std::io::{IoSlice, IoSliceMut};
use std::net::Shutdown;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

#[cfg(feature = "tls")]
use super::TlsStream;
use super::io;
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
impl Transport for Stream {
    fn read(&mut self, buf: &mut [u8]) -> IoOutcome {
        match self {
            Stream::Plain(socket) => io::read(socket, buf),
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.read(buf),
        }
    }

    fn read_two(&mut self, first: &mut [u8], then: &mut [u8]) -> IoOutcome {
        match self {
            Stream::Plain(socket) => {
                let mut bufs = [IoSliceMut::new(first), IoSliceMut::new(then)];
                io::read_vectored(socket, &mut bufs)
            }
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.read_two(first, then),
        }
    }

    fn read_drained(&self, asked: usize, got: usize) -> bool {
        match self {
            Stream::Plain(_) => got < asked,
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.read_drained(asked, got),
        }
    }

    fn write(&mut self, buf: &[u8]) -> IoOutcome {
        match self {
            Stream::Plain(socket) => io::write(socket, buf),
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.write(buf),
        }
    }

    fn write_vectored(&mut self, slices: &[IoSlice<'_>]) -> IoOutcome {
        match self {
            Stream::Plain(socket) => io::write_vectored(socket, slices),
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.write_vectored(slices),
        }
    }

    /// Plain TCP holds nothing: each call is one syscall.
    fn buffered_output(&self) -> usize {
        match self {
            Stream::Plain(_) => 0,
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.buffered_output(),
        }
    }

    fn buffered_input(&self) -> usize {
        match self {
            Stream::Plain(_) => 0,
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.buffered_input(),
        }
    }

    fn flush(&mut self) -> Result<(), PeerGone> {
        match self {
            Stream::Plain(_) => Ok(()),
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => Transport::flush(tls.as_mut()),
        }
    }

    fn shutdown_write(&mut self) {
        match self {
            Stream::Plain(socket) => {
                // ENOTCONN after a reset is the only likely error; the next read reports that.
                if let Err(err) = socket.shutdown(Shutdown::Write) {
                    log::trace!("shutdown(Write): {err}");
                }
            }
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.shutdown_write(),
        }
    }

    fn release_idle(&mut self) {
        match self {
            Stream::Plain(_) => {}
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.release_idle(),
        }
    }
}

/// The poller watches the socket underneath, whatever speaks over it.
impl mio::event::Source for Stream {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> std::io::Result<()> {
        self.socket().register(registry, token, interest)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> std::io::Result<()> {
        self.socket().reregister(registry, token, interest)
    }

    fn deregister(&mut self, registry: &Registry) -> std::io::Result<()> {
        self.socket().deregister(registry)
    }
}
