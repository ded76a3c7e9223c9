//! Plain TCP: the transport the event loop gives every session, a non-blocking
//! `mio::net::TcpStream`. Each call is one syscall (`read`, `write`, `writev`, `shutdown`)
//! classified by `io.rs`; nothing is buffered here, so there is never anything to flush.

use std::io::IoSlice;
use std::net::Shutdown;

use mio::net::TcpStream;

use super::io;
use super::{IoOutcome, PeerGone, Transport};

impl Transport for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> IoOutcome {
        io::read(self, buf)
    }

    fn write(&mut self, buf: &[u8]) -> IoOutcome {
        io::write(self, buf)
    }

    fn write_vectored(&mut self, slices: &[IoSlice<'_>]) -> IoOutcome {
        io::write_vectored(self, slices)
    }

    fn buffered_output(&self) -> usize {
        0
    }

    fn flush(&mut self) -> Result<(), PeerGone> {
        Ok(()) // nothing is held here
    }

    fn shutdown_write(&mut self) {
        // ENOTCONN after a reset is the only likely error, and the next read reports that.
        if let Err(err) = self.shutdown(Shutdown::Write) {
            log::trace!("shutdown(Write): {err}");
        }
    }
}
